//! A ring made in userspace: an anonymous double mapping with the device's
//! layout, and a [`Producer`] that writes into it with the kernel's protocol.
//! It feeds the host tests and benchmarks, and the ptrace capture driver.

use crate::abi::{
    pg_ring_info, EVENT_HDR_LEN, PG_INFO_PAGE_SIZE, PG_MAX_BUFFER_SIZE, PG_MIN_BUFFER_SIZE,
};
use crate::event::{write_header, EventRef, RecordError};
use crate::ring::{Backing, BadBufferSize, Ring};
use crate::stats::RingStats;
use nix::errno::Errno;
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::mman::{mmap, mmap_anonymous, munmap, MapFlags, ProtFlags};
use std::num::NonZeroUsize;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Why a user ring could not be made.
#[derive(Debug, thiserror::Error)]
pub enum UserRingError {
    #[error(
        "user ring buffer size {0} must be a power of two from {PG_MIN_BUFFER_SIZE} to {PG_MAX_BUFFER_SIZE} bytes"
    )]
    BadSize(u64),
    #[error("user ring: {step} failed: {errno}")]
    Sys { step: &'static str, errno: Errno },
    #[error(transparent)]
    Ring(#[from] BadBufferSize),
}

/// `[info page][data][data again]`, the data pages being one memfd range
/// mapped twice, so a record crossing the end of the ring reads as one slice.
pub(crate) struct DoubleMapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; access to
// it is coordinated by the ring protocol, not by the owning thread.
unsafe impl Send for DoubleMapping {}
// SAFETY: as above; DoubleMapping itself exposes no access to the memory.
unsafe impl Sync for DoubleMapping {}

impl DoubleMapping {
    fn create(buffer_size: usize) -> Result<DoubleMapping, UserRingError> {
        let sys = |step| move |errno| UserRingError::Sys { step, errno };
        let info_len = PG_INFO_PAGE_SIZE as usize;
        let file_len = info_len + buffer_size;
        let len = file_len + buffer_size;
        let fd =
            memfd_create(c"peregrine-ring", MFdFlags::MFD_CLOEXEC).map_err(sys("memfd_create"))?;
        let file_len_off = libc::off_t::try_from(file_len)
            .map_err(|_| UserRingError::BadSize(buffer_size as u64))?;
        nix::unistd::ftruncate(&fd, file_len_off).map_err(sys("ftruncate"))?;
        let nonzero =
            |n: usize| NonZeroUsize::new(n).ok_or(UserRingError::BadSize(buffer_size as u64));

        // SAFETY: a fresh inaccessible reservation at an address of the
        // kernel's choosing; it aliases nothing of ours.
        let reserved = unsafe {
            mmap_anonymous(
                None,
                nonzero(len)?,
                ProtFlags::PROT_NONE,
                MapFlags::MAP_PRIVATE,
            )
        }
        .map_err(sys("mmap (reserve)"))?;
        // From here on, dropping `mapping` unmaps the whole region.
        let mapping = DoubleMapping {
            base: reserved.cast(),
            len,
        };
        let rw = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        let fixed = MapFlags::MAP_SHARED | MapFlags::MAP_FIXED;
        let first = nonzero(mapping.base.as_ptr() as usize)?;
        let second = first
            .checked_add(file_len)
            .ok_or(UserRingError::BadSize(buffer_size as u64))?;
        // SAFETY: MAP_FIXED replaces pages inside the reservation made above,
        // which we own and to which no reference exists yet.
        unsafe { mmap(Some(first), nonzero(file_len)?, rw, fixed, &fd, 0) }
            .map_err(sys("mmap (info page and data)"))?;
        // SAFETY: as above, for the reservation's last buffer_size bytes.
        unsafe {
            mmap(
                Some(second),
                nonzero(buffer_size)?,
                rw,
                fixed,
                &fd,
                info_len as libc::off_t,
            )
        }
        .map_err(sys("mmap (data again)"))?;
        // The fd can go: the two shared mappings keep the memfd's pages.
        Ok(mapping)
    }
}

impl Drop for DoubleMapping {
    fn drop(&mut self) {
        // SAFETY: `base..base+len` is the region this value reserved and
        // mapped; the Producer and Ring that point into it each hold an Arc,
        // so none is left when the last owner drops.
        let _ = unsafe { munmap(self.base.cast(), self.len) };
    }
}

/// An anonymous ring with the device layout, before it is split into its
/// two ends.
pub struct UserRing {
    mapping: Arc<DoubleMapping>,
    buffer_size: u64,
    id: usize,
}

impl UserRing {
    /// Makes a ring of `buffer_size` data bytes (a power of two, at least
    /// two pages). `id` plays the role of the CPU number in stats and merges.
    pub fn create(id: usize, buffer_size: u64) -> Result<UserRing, UserRingError> {
        if !buffer_size.is_power_of_two()
            || buffer_size < u64::from(PG_MIN_BUFFER_SIZE)
            || buffer_size > u64::from(PG_MAX_BUFFER_SIZE)
        {
            return Err(UserRingError::BadSize(buffer_size));
        }
        let size = usize::try_from(buffer_size).map_err(|_| UserRingError::BadSize(buffer_size))?;
        let mapping = Arc::new(DoubleMapping::create(size)?);
        // A fresh memfd reads as zeros: head = tail = 0 and all counters 0.
        // SAFETY: only computes a field address inside the live info page.
        let size_word = unsafe {
            ptr::addr_of_mut!((*mapping.base.cast::<pg_ring_info>().as_ptr()).buffer_size)
        };
        // SAFETY: the info page is mapped read-write and no one else sees it yet.
        unsafe { size_word.write(buffer_size) };
        Ok(UserRing {
            mapping,
            buffer_size,
            id,
        })
    }

    /// The two ends: the one producer and the one consumer.
    pub fn split(self) -> Result<(Producer, Ring), UserRingError> {
        let base = self.mapping.base;
        // SAFETY: `base` is our mapping, laid out as the ABI says, kept alive
        // by the Arc inside the Ring; the Producer below follows the protocol
        // and never stores tail.
        let ring = unsafe {
            Ring::from_mapping(
                base,
                self.buffer_size,
                self.id,
                format!("user ring {}", self.id),
                Backing::User(Arc::clone(&self.mapping)),
            )
        }?;
        // SAFETY: the data run starts one info page into the mapping.
        let data = unsafe { base.add(PG_INFO_PAGE_SIZE as usize) };
        let producer = Producer {
            info: base.cast(),
            data,
            buffer_size: self.buffer_size,
            mask: self.buffer_size - 1,
            head: 0,
            cached_tail: 0,
            counts: RingStats::default(),
            _mapping: self.mapping,
        };
        Ok((producer, ring))
    }
}

/// What became of one record offered to a [`Producer`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// Not written: the free space was too small (counted in n_drops_buffer).
    DroppedFull,
    /// Not written: larger than the whole ring (counted in n_drops_too_large).
    DroppedTooLarge,
}

/// A record the producer refuses before it reaches the ring.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("parameter {index} is {len} bytes, more than its length field can say")]
    ParamTooLong { index: usize, len: usize },
    #[error("a record of {0} bytes does not fit the u32 length field")]
    RecordTooLong(usize),
    #[error("not a record: {0}")]
    BadRecord(#[from] RecordError),
}

/// The single producer of a user ring, writing with the kernel's protocol:
/// a whole record at head, then head published with release ordering; a
/// record that does not fit is dropped whole and counted.
pub struct Producer {
    info: NonNull<pg_ring_info>,
    data: NonNull<u8>,
    buffer_size: u64,
    mask: u64,
    head: u64,
    /// Tail as last loaded; reloaded only when it says the ring is full.
    cached_tail: u64,
    counts: RingStats,
    _mapping: Arc<DoubleMapping>,
}

// SAFETY: the Producer is the only writer of its ring's data and producer
// words, and keeps the mapping alive; nothing ties it to one thread.
unsafe impl Send for Producer {}

impl Producer {
    /// Writes one record: the 26-byte header from the arguments, then
    /// `body_len` bytes (parameter lengths and parameters) filled in place by
    /// `fill`, which sees exactly those bytes.
    pub fn write_with(
        &mut self,
        ts: u64,
        tid: u64,
        event_type: u16,
        nparams: u32,
        body_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<WriteOutcome, WriteError> {
        let total = EVENT_HDR_LEN + body_len;
        let len = u32::try_from(total).map_err(|_| WriteError::RecordTooLong(total))?;
        let Some(record) = self.reserve(len) else {
            return Ok(self.count_drop(len));
        };
        let (hdr, body) = record.split_at_mut(EVENT_HDR_LEN);
        if let Some(hdr) = hdr.first_chunk_mut::<EVENT_HDR_LEN>() {
            write_header(hdr, ts, tid, len, event_type, nparams);
        }
        fill(body);
        self.publish(len);
        Ok(WriteOutcome::Written)
    }

    /// Writes an event whose parameter lengths are u16 (most scap events).
    pub fn write_event(
        &mut self,
        ts: u64,
        tid: u64,
        event_type: u16,
        params: &[&[u8]],
    ) -> Result<WriteOutcome, WriteError> {
        self.write_params::<2>(ts, tid, event_type, params, u64::from(u16::MAX))
    }

    /// Writes an event whose parameter lengths are u32 (the scap schema's
    /// large-payload events).
    pub fn write_event_large(
        &mut self,
        ts: u64,
        tid: u64,
        event_type: u16,
        params: &[&[u8]],
    ) -> Result<WriteOutcome, WriteError> {
        self.write_params::<4>(ts, tid, event_type, params, u64::from(u32::MAX))
    }

    /// Copies a complete record (header included) into the ring.
    pub fn write_record(&mut self, record: &[u8]) -> Result<WriteOutcome, WriteError> {
        let event = EventRef::parse(record)?;
        let Some(dest) = self.reserve(event.len()) else {
            return Ok(self.count_drop(event.len()));
        };
        dest.copy_from_slice(record);
        self.publish(event.len());
        Ok(WriteOutcome::Written)
    }

    /// Bytes a record may take now, tail reloaded. A producer that must not
    /// drop (a benchmark replaying a recording) waits until its record fits.
    pub fn free_bytes(&mut self) -> u64 {
        self.cached_tail = self.tail_word().load(Ordering::Acquire);
        self.buffer_size
            .saturating_sub(self.head.wrapping_sub(self.cached_tail))
    }

    /// What this producer has counted so far (also in the info page).
    pub fn stats(&self) -> RingStats {
        self.counts
    }

    fn write_params<const W: usize>(
        &mut self,
        ts: u64,
        tid: u64,
        event_type: u16,
        params: &[&[u8]],
        max_param: u64,
    ) -> Result<WriteOutcome, WriteError> {
        let mut body_len = W * params.len();
        for (index, p) in params.iter().enumerate() {
            if p.len() as u64 > max_param {
                return Err(WriteError::ParamTooLong {
                    index,
                    len: p.len(),
                });
            }
            body_len += p.len();
        }
        let nparams =
            u32::try_from(params.len()).map_err(|_| WriteError::RecordTooLong(body_len))?;
        self.write_with(ts, tid, event_type, nparams, body_len, |body| {
            let (lens, mut rest) = body.split_at_mut(W * params.len());
            for (slot, p) in lens.chunks_exact_mut(W).zip(params) {
                // Checked above against max_param, so the casts are exact.
                if W == 2 {
                    slot.copy_from_slice(&(p.len() as u16).to_ne_bytes());
                } else {
                    slot.copy_from_slice(&(p.len() as u32).to_ne_bytes());
                }
                let (dest, after) = rest.split_at_mut(p.len());
                dest.copy_from_slice(p);
                rest = after;
            }
        })
    }

    /// The `len` bytes at head, if they are free.
    fn reserve(&mut self, len: u32) -> Option<&mut [u8]> {
        let len = u64::from(len);
        if len > self.buffer_size {
            return None;
        }
        if self.buffer_size - self.head.wrapping_sub(self.cached_tail) < len {
            self.cached_tail = self.tail_word().load(Ordering::Acquire);
            if self
                .buffer_size
                .saturating_sub(self.head.wrapping_sub(self.cached_tail))
                < len
            {
                return None;
            }
        }
        let offset = (self.head & self.mask) as usize;
        // SAFETY: the data run is mapped twice back to back, so offset <
        // buffer_size plus len <= buffer_size stays inside it. These bytes
        // lie in [head, tail + buffer_size), which the consumer does not read
        // (it reads only [tail, head)), and `&mut self` makes this the only
        // reference the producer hands out.
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.data.as_ptr().add(offset), len as usize)
        })
    }

    /// Makes a record written by `reserve` visible (release).
    fn publish(&mut self, len: u32) {
        self.head = self.head.wrapping_add(u64::from(len));
        self.head_word().store(self.head, Ordering::Release);
        self.counts.n_evts += 1;
        self.counter_word(Counter::Events)
            .store(self.counts.n_evts, Ordering::Relaxed);
    }

    fn count_drop(&mut self, len: u32) -> WriteOutcome {
        if u64::from(len) > self.buffer_size {
            self.counts.n_drops_too_large += 1;
            self.counter_word(Counter::TooLarge)
                .store(self.counts.n_drops_too_large, Ordering::Relaxed);
            WriteOutcome::DroppedTooLarge
        } else {
            self.counts.n_drops_buffer += 1;
            self.counter_word(Counter::Full)
                .store(self.counts.n_drops_buffer, Ordering::Relaxed);
            WriteOutcome::DroppedFull
        }
    }

    /// Writes raw bytes at head and publishes them unchecked, to build the
    /// broken rings the reader must refuse.
    #[cfg(test)]
    pub(crate) fn publish_unchecked(&mut self, bytes: &[u8]) {
        let offset = (self.head & self.mask) as usize;
        assert!(bytes.len() as u64 <= self.buffer_size);
        // SAFETY: in bounds of the double mapping as in `reserve`; tests use
        // it only on a ring whose reader is not running concurrently.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.data.as_ptr().add(offset),
                bytes.len(),
            )
        };
        self.head = self.head.wrapping_add(bytes.len() as u64);
        self.head_word().store(self.head, Ordering::Release);
    }

    #[cfg(test)]
    pub(crate) fn tail_for_tests(&self) -> u64 {
        self.tail_word().load(Ordering::Acquire)
    }

    fn head_word(&self) -> &AtomicU64 {
        // SAFETY: `info` is the live, 8-aligned info page of our mapping;
        // `head` is only ever accessed atomically.
        unsafe { AtomicU64::from_ptr(ptr::addr_of_mut!((*self.info.as_ptr()).head)) }
    }

    fn tail_word(&self) -> &AtomicU64 {
        // SAFETY: as for `head_word`.
        unsafe { AtomicU64::from_ptr(ptr::addr_of_mut!((*self.info.as_ptr()).tail)) }
    }

    fn counter_word(&self, counter: Counter) -> &AtomicU64 {
        let info = self.info.as_ptr();
        // SAFETY: only computes a field address inside the live info page.
        let field = unsafe {
            match counter {
                Counter::Events => ptr::addr_of_mut!((*info).n_evts),
                Counter::Full => ptr::addr_of_mut!((*info).n_drops_buffer),
                Counter::TooLarge => ptr::addr_of_mut!((*info).n_drops_too_large),
            }
        };
        // SAFETY: an aligned u64 of the live info page, accessed only atomically.
        unsafe { AtomicU64::from_ptr(field) }
    }
}

#[derive(Clone, Copy)]
enum Counter {
    Events,
    Full,
    TooLarge,
}
