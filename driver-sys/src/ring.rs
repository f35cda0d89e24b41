//! The consumer side of one ring: reads records in place from a mapping laid
//! out as `[info page][data][the same data again]`, whether the kernel made it
//! (a device) or we did (a [`UserRing`](crate::UserRing)).

use crate::abi::{pg_ring_info, EVENT_HDR_LEN, PG_INFO_PAGE_SIZE};
use crate::event::EventRef;
use crate::stats::RingStats;
use crate::user_ring::DoubleMapping;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What keeps a ring's memory mapped for as long as the [`Ring`] lives.
pub(crate) enum Backing {
    Device(#[allow(dead_code)] memmap2::MmapRaw),
    User(#[allow(dead_code)] Arc<DoubleMapping>),
}

/// A ring whose content breaks the protocol. Reading stops at the bad
/// record; [`Ring::discard_all`] skips past it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ring}: corrupt ring at byte {position} (tail): {problem}")]
pub struct RingError {
    /// The ring's name (its device path for a device).
    pub ring: String,
    /// The ring's id (its CPU for a device), for [`MergedReader::discard_all`](crate::MergedReader::discard_all).
    pub ring_id: usize,
    pub position: u64,
    pub problem: Corruption,
}

/// The ways a ring can break the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error("head is {readable} bytes past tail, more than the {buffer_size}-byte ring holds")]
    HeadOutOfRange { readable: u64, buffer_size: u64 },
    #[error("only {readable} bytes before head, less than a {EVENT_HDR_LEN}-byte event header")]
    TruncatedHeader { readable: u64 },
    #[error("record length {len} is shorter than the {EVENT_HDR_LEN}-byte event header")]
    LengthTooSmall { len: u32 },
    #[error("record length {len} is larger than the {buffer_size}-byte ring")]
    LengthTooLarge { len: u32, buffer_size: u64 },
    #[error("record length {len} runs past head ({readable} bytes readable)")]
    LengthPastHead { len: u32, readable: u64 },
}

/// Why a ring could not be set up over a mapping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ring}: buffer size {buffer_size} is not a power of two of at least {min} bytes that fits in memory")]
pub struct BadBufferSize {
    pub ring: String,
    pub buffer_size: u64,
    pub min: u64,
}

/// The single consumer of one ring.
///
/// Records in `[tail, head)` are read in place as [`EventRef`] views that
/// borrow the ring, so they are gone before the space they cover is given
/// back (which needs `&mut self`). Space is given back in batches: at the
/// end of every [`read_batch`](Ring::read_batch), and within a batch
/// whenever a quarter of the ring has been consumed.
pub struct Ring {
    info: NonNull<pg_ring_info>,
    data: NonNull<u8>,
    buffer_size: u64,
    mask: u64,
    /// Head as last loaded; records up to here are readable.
    head: u64,
    /// Our read position; ahead of `released` within a batch.
    tail: u64,
    /// The tail last stored in the info page.
    released: u64,
    release_every: u64,
    id: usize,
    name: String,
    /// The device to block on in poll() (a module of ABI 2.1 or later);
    /// None for a ring that can only be polled by sleeping.
    wake_fd: Option<OwnedFd>,
    _backing: Backing,
}

// SAFETY: a Ring is the only consumer of its mapping, which it keeps alive
// through `_backing`; the raw pointers are not tied to the creating thread.
unsafe impl Send for Ring {}

impl Ring {
    /// Sets a ring over a mapping.
    ///
    /// # Safety
    /// `base` must be page-aligned and point to `abi::mmap_len(buffer_size)`
    /// mapped bytes laid out as the ABI header says (the info page, then the
    /// data pages twice in a row, the second run aliasing the first), which
    /// `backing` keeps mapped; the producer must follow the ring protocol, and
    /// nothing but this `Ring` may store the info page's `tail`.
    pub(crate) unsafe fn from_mapping(
        base: NonNull<u8>,
        buffer_size: u64,
        id: usize,
        name: String,
        backing: Backing,
    ) -> Result<Ring, BadBufferSize> {
        let min = 2 * EVENT_HDR_LEN as u64;
        if !buffer_size.is_power_of_two()
            || buffer_size < min
            || usize::try_from(buffer_size).is_err()
        {
            return Err(BadBufferSize {
                ring: name,
                buffer_size,
                min,
            });
        }
        let info = base.cast::<pg_ring_info>();
        // SAFETY: the data starts one info page into the mapping (contract).
        let data = unsafe { base.add(PG_INFO_PAGE_SIZE as usize) };
        let mut ring = Ring {
            info,
            data,
            buffer_size,
            mask: buffer_size - 1,
            head: 0,
            tail: 0,
            released: 0,
            release_every: buffer_size / 4,
            id,
            name,
            wake_fd: None,
            _backing: backing,
        };
        // Pick up where a previous reader of the same ring stopped.
        ring.tail = ring.tail_word().load(Ordering::Acquire);
        ring.released = ring.tail;
        ring.head = ring.tail;
        Ok(ring)
    }

    /// The ring's id: its CPU for a device ring.
    pub fn id(&self) -> usize {
        self.id
    }

    /// The ring's name in errors: its device path for a device ring.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes of data in the ring.
    pub fn buffer_size(&self) -> u64 {
        self.buffer_size
    }

    /// Reads up to `max` records in order, each as a view handed to `f`, then
    /// gives their space back. Returns how many records `f` saw. On a corrupt
    /// ring the records before the bad one are still delivered and released.
    pub fn read_batch(
        &mut self,
        max: usize,
        mut f: impl FnMut(EventRef<'_>),
    ) -> Result<usize, RingError> {
        self.refresh_head();
        let mut seen = 0;
        let outcome = loop {
            if seen == max {
                break Ok(());
            }
            let len = match self.front() {
                Ok(Some(event)) => {
                    let len = event.len();
                    f(event);
                    len
                }
                Ok(None) => break Ok(()),
                Err(err) => break Err(err),
            };
            seen += 1;
            self.advance(len);
        };
        self.release();
        outcome.map(|()| seen)
    }

    /// Lets the reader block on `fd` (the ring's device, whose poll()
    /// honours the info page's wake_bytes) instead of sleeping on a timer.
    pub(crate) fn wake_through(&mut self, fd: OwnedFd) {
        self.wake_fd = Some(fd);
    }

    /// The fd to poll() for this ring's wake-ups, if it has one.
    pub(crate) fn wake_fd(&self) -> Option<RawFd> {
        self.wake_fd.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Asks the producer to wake a poll() on [`wake_fd`](Ring::wake_fd) once
    /// `bytes` wait in the ring (0: never). Sequentially consistent, so the
    /// store is visible before the poll() that follows reads head.
    pub(crate) fn set_wake_bytes(&self, bytes: u64) {
        if self.wake_fd.is_some() {
            self.wake_word().store(bytes, Ordering::SeqCst);
        }
    }

    /// Whether the producer has published records not yet read.
    pub fn has_data(&self) -> bool {
        self.head_word().load(Ordering::Acquire) != self.tail
    }

    /// Drops everything published so far, unread; the way past a corrupt
    /// record. Returns the bytes skipped.
    pub fn discard_all(&mut self) -> u64 {
        self.refresh_head();
        let skipped = self.head.wrapping_sub(self.tail);
        self.tail = self.head;
        self.release();
        skipped
    }

    /// Bytes published and not given back yet, as the producer sees them
    /// now: the ring's fill. Capped at the ring's size (a producer that
    /// breaks the protocol is reported by the reads, not here).
    pub fn used_bytes(&self) -> u64 {
        let head = self.head_word().load(Ordering::Acquire);
        head.wrapping_sub(self.released).min(self.buffer_size)
    }

    /// The producer's counters from the info page.
    pub fn stats(&self) -> RingStats {
        // SAFETY: `info` points to the live info page (from_mapping contract);
        // the counters are u64 words on their natural alignment.
        let word = |field: *mut u64| unsafe { AtomicU64::from_ptr(field) }.load(Ordering::Relaxed);
        let info = self.info.as_ptr();
        // SAFETY (for each addr_of_mut! below): only computes field addresses
        // inside the live info page; no reference to it is made.
        unsafe {
            RingStats {
                n_evts: word(ptr::addr_of_mut!((*info).n_evts)),
                n_drops_buffer: word(ptr::addr_of_mut!((*info).n_drops_buffer)),
                n_drops_pf: word(ptr::addr_of_mut!((*info).n_drops_pf)),
                n_preemptions: word(ptr::addr_of_mut!((*info).n_preemptions)),
                n_drops_sampling: word(ptr::addr_of_mut!((*info).n_drops_sampling)),
                n_drops_too_large: word(ptr::addr_of_mut!((*info).n_drops_too_large)),
                n_faults: word(ptr::addr_of_mut!((*info).n_faults)),
            }
        }
    }

    /// The ring size the producer wrote in the info page; a device whose
    /// info page disagrees with its ioctl is not speaking our ABI.
    pub(crate) fn advertised_buffer_size(&self) -> u64 {
        // SAFETY: `info` points to the live, 8-aligned info page; the
        // producer writes buffer_size before the ring is mapped and the
        // atomic load tolerates any concurrent store.
        let word =
            unsafe { AtomicU64::from_ptr(ptr::addr_of_mut!((*self.info.as_ptr()).buffer_size)) };
        word.load(Ordering::Relaxed)
    }

    /// Loads head (acquire): the records before it are complete in memory.
    pub(crate) fn refresh_head(&mut self) {
        self.head = self.head_word().load(Ordering::Acquire);
    }

    /// The record at our tail if one was published by the last
    /// [`refresh_head`](Ring::refresh_head), checked against the ring's bounds.
    pub(crate) fn front(&self) -> Result<Option<EventRef<'_>>, RingError> {
        let readable = self.head.wrapping_sub(self.tail);
        if readable == 0 {
            return Ok(None);
        }
        if readable > self.buffer_size {
            return Err(self.corrupt(Corruption::HeadOutOfRange {
                readable,
                buffer_size: self.buffer_size,
            }));
        }
        let offset = (self.tail & self.mask) as usize;
        // SAFETY: the data run is mapped twice back to back, so the
        // 2 * buffer_size bytes from `data` are valid, and offset < buffer_size
        // with readable <= buffer_size stays inside them. The producer writes
        // nothing in [tail, head) until a tail past it is stored, which takes
        // `&mut self`, so no write can happen while this shared borrow lives.
        let window = unsafe {
            std::slice::from_raw_parts(self.data.as_ptr().add(offset), readable as usize)
        };
        let Some(hdr) = window.first_chunk::<EVENT_HDR_LEN>() else {
            return Err(self.corrupt(Corruption::TruncatedHeader { readable }));
        };
        let len = u32::from_ne_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]);
        if (len as usize) < EVENT_HDR_LEN {
            return Err(self.corrupt(Corruption::LengthTooSmall { len }));
        }
        if u64::from(len) > self.buffer_size {
            return Err(self.corrupt(Corruption::LengthTooLarge {
                len,
                buffer_size: self.buffer_size,
            }));
        }
        match EventRef::at_start_of(window) {
            Some(event) => Ok(Some(event)),
            None => Err(self.corrupt(Corruption::LengthPastHead { len, readable })),
        }
    }

    /// Moves our read position past a record returned by `front`, giving the
    /// space back once enough has piled up.
    pub(crate) fn advance(&mut self, len: u32) {
        self.tail = self.tail.wrapping_add(u64::from(len));
        if self.tail.wrapping_sub(self.released) >= self.release_every {
            self.release();
        }
    }

    /// Stores tail (release): our reads of the records before it are done.
    pub(crate) fn release(&mut self) {
        if self.tail != self.released {
            self.tail_word().store(self.tail, Ordering::Release);
            self.released = self.tail;
        }
    }

    fn corrupt(&self, problem: Corruption) -> RingError {
        RingError {
            ring: self.name.clone(),
            ring_id: self.id,
            position: self.tail,
            problem,
        }
    }

    fn head_word(&self) -> &AtomicU64 {
        // SAFETY: `info` points to the live, 8-aligned info page (from_mapping
        // contract); both sides only ever access `head` atomically.
        unsafe { AtomicU64::from_ptr(ptr::addr_of_mut!((*self.info.as_ptr()).head)) }
    }

    fn tail_word(&self) -> &AtomicU64 {
        // SAFETY: as for `head_word`; `tail` is only ever accessed atomically.
        unsafe { AtomicU64::from_ptr(ptr::addr_of_mut!((*self.info.as_ptr()).tail)) }
    }

    fn wake_word(&self) -> &AtomicU64 {
        // SAFETY: as for `head_word`; `wake_bytes` is only ever accessed atomically.
        unsafe { AtomicU64::from_ptr(ptr::addr_of_mut!((*self.info.as_ptr()).wake_bytes)) }
    }
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("name", &self.name)
            .field("buffer_size", &self.buffer_size)
            .field("tail", &self.tail)
            .field("head", &self.head)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::PG_MIN_BUFFER_SIZE;
    use crate::event::write_header;
    use crate::{Producer, UserRing, WriteOutcome};

    const SIZE: u64 = PG_MIN_BUFFER_SIZE as u64;

    fn ring() -> (Producer, Ring) {
        UserRing::create(0, SIZE).unwrap().split().unwrap()
    }

    fn header_with_len(len: u32) -> [u8; EVENT_HDR_LEN] {
        let mut hdr = [0u8; EVENT_HDR_LEN];
        write_header(&mut hdr, 7, 8, len, 9, 0);
        hdr
    }

    fn read_all(ring: &mut Ring) -> Result<Vec<(u64, Vec<u8>)>, RingError> {
        let mut out = Vec::new();
        ring.read_batch(usize::MAX, |ev| out.push((ev.ts(), ev.payload().to_vec())))?;
        Ok(out)
    }

    #[test]
    fn a_record_crossing_the_end_reads_as_one_slice() {
        let (mut p, mut r) = ring();
        // 26 + 2 + 4068 = 4096: after it is read, the next record starts mid-ring.
        let filler = vec![0xAB; 4068];
        assert_eq!(
            p.write_event(0, 1, 2, &[&filler]).unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(read_all(&mut r).unwrap().len(), 1);
        let big: Vec<u8> = (0..8000u32).map(|i| (i % 251) as u8).collect();
        // 8028 bytes from offset 4096 run 3932 bytes past the end of the ring.
        assert_eq!(
            p.write_event(3, 1, 2, &[&big]).unwrap(),
            WriteOutcome::Written
        );
        let got = read_all(&mut r).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 3);
        assert_eq!(&got[0].1[2..], &big[..]);
        assert_eq!(got[0].1[..2], 8000u16.to_ne_bytes());
    }

    #[test]
    fn fill_counts_what_is_written_until_it_is_given_back() {
        let (mut p, mut r) = ring();
        assert_eq!(r.used_bytes(), 0);
        assert_eq!(
            p.write_event(1, 1, 1, &[b"ok"]).unwrap(),
            WriteOutcome::Written
        );
        // 26-byte header, one 2-byte length, 2 bytes of payload.
        assert_eq!(r.used_bytes(), 30);
        assert_eq!(read_all(&mut r).unwrap().len(), 1);
        assert_eq!(r.used_bytes(), 0);
    }

    #[test]
    fn length_shorter_than_header_is_corruption() {
        let (mut p, mut r) = ring();
        assert_eq!(
            p.write_event(1, 1, 1, &[b"ok"]).unwrap(),
            WriteOutcome::Written
        );
        p.publish_unchecked(&header_with_len(10));
        let mut seen = 0;
        let err = r.read_batch(100, |_| seen += 1).unwrap_err();
        assert_eq!(seen, 1, "the good record before the bad one is delivered");
        assert_eq!(err.problem, Corruption::LengthTooSmall { len: 10 });
        assert_eq!(err.position, 26 + 2 + 2);
        assert!(err.to_string().contains("user ring 0"), "{err}");
        // Still refused on the next read, and skippable.
        assert!(r.read_batch(100, |_| ()).is_err());
        assert_eq!(r.discard_all(), EVENT_HDR_LEN as u64);
        assert_eq!(r.read_batch(100, |_| ()).unwrap(), 0);
    }

    #[test]
    fn length_larger_than_ring_is_corruption() {
        let (mut p, mut r) = ring();
        p.publish_unchecked(&header_with_len(SIZE as u32 + 1));
        assert_eq!(
            read_all(&mut r).unwrap_err().problem,
            Corruption::LengthTooLarge {
                len: SIZE as u32 + 1,
                buffer_size: SIZE
            }
        );
    }

    #[test]
    fn length_past_head_is_corruption() {
        let (mut p, mut r) = ring();
        p.publish_unchecked(&header_with_len(40));
        assert_eq!(
            read_all(&mut r).unwrap_err().problem,
            Corruption::LengthPastHead {
                len: 40,
                readable: 26
            }
        );
    }

    #[test]
    fn truncated_header_and_runaway_head_are_corruption() {
        let (mut p, mut r) = ring();
        p.publish_unchecked(&[0u8; 5]);
        assert_eq!(
            read_all(&mut r).unwrap_err().problem,
            Corruption::TruncatedHeader { readable: 5 }
        );
        r.discard_all();
        // A head more than the ring ahead of tail.
        p.publish_unchecked(&vec![0u8; SIZE as usize]);
        p.publish_unchecked(&[0u8; 8]);
        assert_eq!(
            read_all(&mut r).unwrap_err().problem,
            Corruption::HeadOutOfRange {
                readable: SIZE + 8,
                buffer_size: SIZE
            }
        );
    }

    #[test]
    fn tail_is_given_back_once_per_batch_not_per_record() {
        let (mut p, mut r) = ring();
        for ts in 0..10 {
            assert_eq!(p.write_event(ts, 1, 1, &[]).unwrap(), WriteOutcome::Written);
        }
        let mut tails_seen = Vec::new();
        r.read_batch(usize::MAX, |_| tails_seen.push(r_tail(&p)))
            .unwrap();
        // While the batch runs the producer still sees tail 0 ...
        assert!(tails_seen.iter().all(|&t| t == 0));
        // ... and the whole batch at once afterwards.
        assert_eq!(r_tail(&p), 10 * 26);
    }

    fn r_tail(p: &Producer) -> u64 {
        p.tail_for_tests()
    }

    #[test]
    fn random_garbage_is_refused_or_read_within_bounds_never_a_panic() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2_000 {
            let (mut p, mut r) = ring();
            let mut published = 0u64;
            for _ in 0..(next() % 6) {
                let n = (next() % 300) as usize;
                let mut bytes: Vec<u8> = (0..n).map(|_| next() as u8).collect();
                // Often a plausible length, so that reading gets past the header.
                if n >= EVENT_HDR_LEN && next() % 2 == 0 {
                    let len = (next() % (n as u64 + 40)) as u32;
                    bytes[16..20].copy_from_slice(&len.to_ne_bytes());
                }
                p.publish_unchecked(&bytes);
                published += n as u64;
            }
            let mut delivered = 0u64;
            let outcome = r.read_batch(usize::MAX, |ev| {
                assert!(ev.len() as usize >= EVENT_HDR_LEN);
                assert_eq!(ev.bytes().len(), ev.len() as usize);
                delivered += u64::from(ev.len());
            });
            assert!(delivered <= published);
            if outcome.is_ok() {
                assert_eq!(
                    delivered, published,
                    "Ok means the whole ring was well-formed"
                );
            }
        }
    }

    #[test]
    fn the_info_page_advertises_the_ring_size() {
        let (_p, r) = ring();
        assert_eq!(r.advertised_buffer_size(), SIZE);
        assert_eq!(r.buffer_size(), SIZE);
    }

    #[test]
    fn producer_counts_drops_and_never_tears_a_record() {
        let (mut p, mut r) = ring();
        let body = vec![0u8; 1000 - 26 - 2];
        let mut written = 0;
        while p.write_event(written, 1, 1, &[&body]).unwrap() == WriteOutcome::Written {
            written += 1;
        }
        assert_eq!(written, 8, "8 records of 1000 bytes fit in 8192");
        let huge = vec![0u8; SIZE as usize];
        assert_eq!(
            p.write_event(0, 1, 1, &[&huge]).unwrap(),
            WriteOutcome::DroppedTooLarge
        );
        let stats = r.stats();
        assert_eq!(
            (stats.n_evts, stats.n_drops_buffer, stats.n_drops_too_large),
            (8, 1, 1)
        );
        assert_eq!(read_all(&mut r).unwrap().len(), 8);
        assert_eq!(
            p.write_event(99, 1, 1, &[&body]).unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(read_all(&mut r).unwrap()[0].0, 99);
    }
}
