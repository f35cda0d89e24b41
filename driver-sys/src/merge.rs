//! Reading many rings (one per CPU) as one stream in timestamp order.

use crate::doorbell::Doorbell;
use crate::event::EventRef;
use crate::ring::{Ring, RingError};
use crate::stats::{CpuStats, Stats};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How [`MergedReader::wait`] waits for data, as libscap's ring reader
/// does: while no ring holds more than `busy_bytes`, sleep, with pauses
/// doubling from `first_sleep` up to `max_sleep`, and after each sleep
/// take whatever has come; a ring past `busy_bytes` is read at once and
/// brings the pause back to `first_sleep`.
///
/// Judging by bytes waiting, not by records seen, is what keeps an idle
/// reader asleep: its own sleeps, and the futex calls of the threads it
/// wakes, are syscalls the module records (all of them under `-A`), and
/// a trickle of those must not make it read again at once.
///
/// Rings that can wake their reader (a module of ABI 2.1 or later) do
/// better than libscap's timer: each pause is a poll() the kernel ends as
/// soon as a ring passes `busy_bytes`, and once [`IDLE_AFTER`] `max_sleep`
/// pauses in a row have gone by with no record at all the reader blocks
/// until the first record comes (or the caller's timeout). An idle machine
/// wakes it only as often as its caller asks, a burst never waits a pause
/// out, and a trickle wakes it no more often than the timer would: one
/// record every k pauses costs at most k + 1 wake-ups, k being at least
/// [`IDLE_AFTER`]. A [`Doorbell`] another thread rings, and a signal, end
/// such a wait too.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    pub first_sleep: Duration,
    pub max_sleep: Duration,
    /// Bytes waiting in one ring that count as real traffic.
    pub busy_bytes: u64,
}

/// Hands the record at `ring`'s tail to `f` and moves past it; false when
/// the ring has none.
fn deliver_front(
    ring: &mut Ring,
    f: &mut impl FnMut(usize, EventRef<'_>),
) -> Result<bool, RingError> {
    let Some(event) = ring.front()? else {
        return Ok(false);
    };
    f(ring.id(), event);
    let len = event.len();
    ring.advance(len);
    Ok(true)
}

impl Default for WaitPolicy {
    /// libscap's figures (ringbuffer/devset.h): 500 us to 30 ms, 20,000 bytes.
    fn default() -> WaitPolicy {
        WaitPolicy {
            first_sleep: Duration::from_micros(500),
            max_sleep: Duration::from_millis(30),
            busy_bytes: 20_000,
        }
    }
}

/// The k-way merge of N rings, each in timestamp order by itself.
///
/// A batch starts by loading every ring's head once (a snapshot); the
/// records published up to then are delivered in global timestamp order.
/// A CPU that publishes after the snapshot may still deliver an older
/// timestamp in a later batch, as with Falco's own reader.
pub struct MergedReader {
    rings: Vec<Ring>,
    /// Timestamp of each ring's next record in the snapshot.
    fronts: Vec<Option<u64>>,
    policy: WaitPolicy,
    /// The pause the next sleep starts from (see [`WaitPolicy`]).
    pause: std::cell::Cell<Duration>,
    /// `max_sleep` pauses in a row with no record (see [`IDLE_AFTER`]).
    empty_pauses: std::cell::Cell<u32>,
    /// Polled beside the rings' wake fds, when they have them.
    doorbell: Option<Arc<Doorbell>>,
}

/// Empty `max_sleep` pauses after which a reader whose rings can wake it
/// blocks until the first record.
pub const IDLE_AFTER: u32 = 3;

impl MergedReader {
    pub fn new(rings: Vec<Ring>) -> MergedReader {
        let fronts = vec![None; rings.len()];
        let policy = WaitPolicy::default();
        MergedReader {
            rings,
            fronts,
            policy,
            pause: std::cell::Cell::new(policy.first_sleep),
            empty_pauses: std::cell::Cell::new(0),
            doorbell: None,
        }
    }

    /// Lets other threads end a wait early by ringing `doorbell` (only
    /// where the rings wake through poll(); timed sleeps ignore it).
    pub fn set_doorbell(&mut self, doorbell: Arc<Doorbell>) {
        self.doorbell = Some(doorbell);
    }

    pub fn with_wait_policy(mut self, policy: WaitPolicy) -> MergedReader {
        self.policy = policy;
        self.pause.set(policy.first_sleep);
        self
    }

    pub fn rings(&self) -> &[Ring] {
        &self.rings
    }

    /// Skips everything published so far in the ring with id `ring_id`
    /// (a [`RingError`]'s `ring_id`), the way past a corrupt record.
    /// Returns the bytes skipped, or None if no ring has that id.
    pub fn discard_all(&mut self, ring_id: usize) -> Option<u64> {
        self.rings
            .iter_mut()
            .find(|r| r.id() == ring_id)
            .map(Ring::discard_all)
    }

    /// Delivers up to `max` records in timestamp order to `f`, each with the
    /// id of its ring (the CPU for a device), then gives their space back (one tail store per
    /// ring touched). Returns how many records `f` saw; 0 when all rings
    /// were empty. A corrupt ring stops the batch with its error, after
    /// releasing what was delivered.
    pub fn next_batch(
        &mut self,
        max: usize,
        mut f: impl FnMut(usize, EventRef<'_>),
    ) -> Result<usize, RingError> {
        let outcome = self.merge(max, &mut f);
        for ring in &mut self.rings {
            ring.release();
        }
        outcome
    }

    fn merge(
        &mut self,
        max: usize,
        f: &mut impl FnMut(usize, EventRef<'_>),
    ) -> Result<usize, RingError> {
        for (ring, front) in self.rings.iter_mut().zip(&mut self.fronts) {
            ring.refresh_head();
            *front = ring.front()?.map(|ev| ev.ts());
        }
        // The heads were read once above, so a ring empty now stays empty
        // for this batch: with one ring holding records there is no order
        // to keep but its own, and no need to look at the timestamp of
        // each next record (a flood from one CPU; every batch of a guest
        // with one).
        let mut holding = self.fronts.iter().enumerate().filter(|(_, f)| f.is_some());
        if let (Some((only, _)), None) = (holding.next(), holding.next()) {
            return self.drain_one(only, max, f);
        }
        let mut seen = 0;
        while seen < max {
            // A linear scan: for the CPU counts of real machines it beats a
            // heap, whose every pop and push would touch as many words.
            let mut best: Option<(usize, u64)> = None;
            for (index, front) in self.fronts.iter().enumerate() {
                if let Some(ts) = *front {
                    if best.map_or(true, |(_, best_ts)| ts < best_ts) {
                        best = Some((index, ts));
                    }
                }
            }
            let Some((index, _)) = best else { break };
            let (Some(ring), Some(front)) = (self.rings.get_mut(index), self.fronts.get_mut(index))
            else {
                break;
            };
            if !deliver_front(ring, f)? {
                break;
            }
            seen += 1;
            *front = ring.front()?.map(|ev| ev.ts());
        }
        Ok(seen)
    }

    /// [`MergedReader::merge`] when only ring `index` holds records.
    fn drain_one(
        &mut self,
        index: usize,
        max: usize,
        f: &mut impl FnMut(usize, EventRef<'_>),
    ) -> Result<usize, RingError> {
        let Some(ring) = self.rings.get_mut(index) else {
            return Ok(0);
        };
        let mut seen = 0;
        while seen < max && deliver_front(ring, f)? {
            seen += 1;
        }
        Ok(seen)
    }

    /// The pause the next sleep of [`MergedReader::wait`] starts from.
    pub fn current_pause(&self) -> Duration {
        self.pause.get()
    }

    /// Waits until some ring has data or `timeout` passes; true if data
    /// came. A busy ring (see [`WaitPolicy`]) returns at once; otherwise
    /// the reader sleeps at least one pause, so that a trickle of records
    /// is taken in batches rather than one by one.
    pub fn wait(&self, timeout: Duration) -> bool {
        if self.is_busy() {
            self.pause.set(self.policy.first_sleep);
            self.empty_pauses.set(0);
            return true;
        }
        let wake_fds = self.wake_fds();
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            if self.empty_pauses.get() >= IDLE_AFTER {
                if let Some(fds) = &wake_fds {
                    let interrupted = self.block(fds, 1, left);
                    if self.has_data() {
                        // The pause stays at its longest: what follows the
                        // first record is taken in batches again.
                        self.empty_pauses.set(0);
                        return true;
                    }
                    if interrupted || start.elapsed() >= timeout {
                        return false;
                    }
                    continue;
                }
            }
            let pause = self.pause.get();
            let interrupted = match &wake_fds {
                Some(fds) => self.block(fds, self.policy.busy_bytes + 1, pause.min(left)),
                None => {
                    std::thread::sleep(pause.min(left));
                    false
                }
            };
            self.pause.set((pause * 2).min(self.policy.max_sleep));
            if self.is_busy() {
                self.pause.set(self.policy.first_sleep);
                self.empty_pauses.set(0);
                return true;
            }
            if self.has_data() {
                self.empty_pauses.set(0);
                return true;
            }
            if pause >= self.policy.max_sleep {
                self.empty_pauses
                    .set(self.empty_pauses.get().saturating_add(1));
            }
            if interrupted || start.elapsed() >= timeout {
                return false;
            }
        }
    }

    /// Every ring's wake fd, when all of them have one, and then the
    /// doorbell's.
    fn wake_fds(&self) -> Option<Vec<libc::pollfd>> {
        let pollin = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut fds = self
            .rings
            .iter()
            .map(|ring| ring.wake_fd().map(pollin))
            .collect::<Option<Vec<_>>>()
            .filter(|fds| !fds.is_empty())?;
        if let Some(bell) = &self.doorbell {
            fds.push(pollin(bell.fd()));
        }
        Some(fds)
    }

    /// Blocks until some ring holds `wake_bytes` or `timeout` passes.
    /// Returns true when the doorbell or a signal ended it early.
    fn block(&self, fds: &[libc::pollfd], wake_bytes: u64, timeout: Duration) -> bool {
        for ring in &self.rings {
            ring.set_wake_bytes(wake_bytes);
        }
        let mut fds = fds.to_vec();
        // Rounded up: a 500 us pause must not become a busy poll(0).
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `fds` is a live, exclusively borrowed array of
        // `fds.len()` pollfd structs; every fd is a ring's device, kept
        // open by its Ring, or the doorbell's eventfd, kept open by the
        // Arc this reader holds, for as long as `self` lives.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        // Reading: no wake-ups wanted until the next wait.
        for ring in &self.rings {
            ring.set_wake_bytes(0);
        }
        let signalled = n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted;
        let rung = match &self.doorbell {
            Some(bell) if fds.len() > self.rings.len() => {
                let rung = fds[self.rings.len()].revents & libc::POLLIN != 0;
                if rung {
                    bell.silence();
                }
                rung
            }
            _ => false,
        };
        signalled || rung
    }

    /// Whether some ring holds more than the policy's `busy_bytes`.
    fn is_busy(&self) -> bool {
        self.rings
            .iter()
            .any(|r| r.used_bytes() > self.policy.busy_bytes)
    }

    /// Whether any ring has records not yet read.
    pub fn has_data(&self) -> bool {
        self.rings.iter().any(Ring::has_data)
    }

    /// Every ring's counters, and their sum.
    pub fn stats(&self) -> Stats {
        Stats::new(
            self.rings
                .iter()
                .map(|r| CpuStats {
                    cpu: r.id(),
                    stats: r.stats(),
                    used_bytes: r.used_bytes(),
                    buffer_size: r.buffer_size(),
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::EVENT_HDR_LEN;
    use crate::{UserRing, WriteOutcome};
    use std::os::fd::OwnedFd;

    /// A ring that polls like a module's but is never woken by data: its
    /// wake fd is the read end of a pipe nobody writes to.
    fn silent_polling_ring() -> (Ring, OwnedFd) {
        let (_, mut ring) = UserRing::create(0, 8192).unwrap().split().unwrap();
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        ring.wake_through(read_end);
        (ring, write_end)
    }

    #[test]
    fn the_doorbell_ends_an_idle_wait_at_once() {
        let (ring, _writer) = silent_polling_ring();
        let mut reader = MergedReader::new(vec![ring]);
        let bell = Arc::new(Doorbell::new().unwrap());
        reader.set_doorbell(Arc::clone(&bell));
        // Unrung, the wait runs its whole timeout.
        let start = Instant::now();
        assert!(!reader.wait(Duration::from_millis(200)));
        assert!(start.elapsed() >= Duration::from_millis(200));
        // Rung by another thread, a 60 s wait ends long before.
        let ringer = {
            let bell = Arc::clone(&bell);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                bell.ring();
            })
        };
        let start = Instant::now();
        assert!(!reader.wait(Duration::from_secs(60)));
        assert!(start.elapsed() < Duration::from_secs(30));
        ringer.join().unwrap();
        // The ring was taken: the next wait is a whole one again.
        let start = Instant::now();
        assert!(!reader.wait(Duration::from_millis(100)));
        assert!(start.elapsed() >= Duration::from_millis(100));
    }

    #[test]
    fn a_batch_with_one_ring_holding_records_takes_them_in_order_up_to_its_size() {
        let (mut busy, busy_ring) = UserRing::create(0, 8192).unwrap().split().unwrap();
        let (mut idle, idle_ring) = UserRing::create(1, 8192).unwrap().split().unwrap();
        for ts in 1..=20 {
            assert_eq!(
                busy.write_event(ts, 0, 1, &[]).unwrap(),
                WriteOutcome::Written
            );
        }
        let mut reader = MergedReader::new(vec![busy_ring, idle_ring]);
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        for _ in 0..2 {
            sizes.push(
                reader
                    .next_batch(7, |id, ev| seen.push((id, ev.ts())))
                    .unwrap(),
            );
        }
        // A record the other ring gets between batches (older than what
        // is left) is ordered with the rest from the next batch on.
        assert_eq!(
            idle.write_event(10, 0, 1, &[]).unwrap(),
            WriteOutcome::Written
        );
        while let Ok(n @ 1..) = reader.next_batch(7, |id, ev| seen.push((id, ev.ts()))) {
            sizes.push(n);
        }
        assert_eq!(sizes, [7, 7, 7]);
        let expected: Vec<(usize, u64)> = (1..=14)
            .map(|ts| (0, ts))
            .chain([(1, 10)])
            .chain((15..=20).map(|ts| (0, ts)))
            .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_corrupt_ring_stops_the_merge_after_the_good_records_and_can_be_skipped() {
        let (mut good, good_ring) = UserRing::create(3, 8192).unwrap().split().unwrap();
        let (mut bad, bad_ring) = UserRing::create(7, 8192).unwrap().split().unwrap();
        for ts in [1, 3] {
            assert_eq!(
                good.write_event(ts, 0, 1, &[]).unwrap(),
                WriteOutcome::Written
            );
        }
        assert_eq!(
            bad.write_event(2, 0, 1, &[]).unwrap(),
            WriteOutcome::Written
        );
        let mut broken = [0u8; EVENT_HDR_LEN];
        broken[16..20].copy_from_slice(&5u32.to_ne_bytes());
        bad.publish_unchecked(&broken);

        let mut reader = MergedReader::new(vec![good_ring, bad_ring]);
        let mut seen = Vec::new();
        let err = reader
            .next_batch(10, |id, ev| seen.push((id, ev.ts())))
            .unwrap_err();
        assert_eq!(seen, [(3, 1), (7, 2)]);
        assert_eq!(err.ring_id, 7);
        assert_eq!(err.problem, crate::Corruption::LengthTooSmall { len: 5 });
        // The delivered records were given back even though the batch failed.
        assert_eq!(good.tail_for_tests(), 26);

        assert_eq!(reader.discard_all(7), Some(EVENT_HDR_LEN as u64));
        assert_eq!(reader.discard_all(99), None);
        seen.clear();
        assert_eq!(
            reader
                .next_batch(10, |id, ev| seen.push((id, ev.ts())))
                .unwrap(),
            1
        );
        assert_eq!(seen, [(3, 3)]);
    }
}
