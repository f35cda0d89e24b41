//! The last syscall events the rules saw, kept for the console's "try a
//! condition" box (see `tryout.rs`), while the console is on.
//!
//! A condition reads the state as it was at its event (the process, its
//! parents, its fds), not as it is when someone types in the box. So the
//! events are kept in segments, each with a copy of the state taken just
//! before its first event: trying a condition replays a segment's events
//! through a copy of its state, as the live loop applied them, and so
//! reads every field as the rules read it.
//!
//! What this costs the capture thread: a copy of each event's record (a
//! few hundred bytes) into a buffer reused per segment, and a copy of the
//! state at most once per [`MIN_SNAPSHOT_GAP`]. When events come faster
//! than a segment per gap, recording rests until the gap is over: the
//! kept events are then the last ones recorded, at most that old. A state
//! of more than [`MAX_SNAPSHOT_THREADS`] threads is not copied at all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use peregrine_engine::event::EventView;
use peregrine_engine::state::State;

/// Events per segment; two are kept, so between this many and twice as
/// many events are tried.
pub const SEGMENT_EVENTS: usize = 4096;
/// Bytes of records per segment, whatever their count.
pub const SEGMENT_BYTES: usize = 4 << 20;
/// The least time between two copies of the state.
pub const MIN_SNAPSHOT_GAP: Duration = Duration::from_secs(1);
/// A state larger than this is not copied (two copies of a huge thread
/// table are memory the console should not take).
pub const MAX_SNAPSHOT_THREADS: usize = 32_768;
/// Bytes of a record's header in the current layout.
const RECORD_HEADER_LEN: usize = 26;

/// Events recorded from one copy of the state on.
pub struct Segment {
    /// The state just before the first event.
    pub start: Arc<State>,
    bytes: Vec<u8>,
    /// (offset, length, cpu) of each record in `bytes`.
    records: Vec<(usize, usize, u16)>,
}

impl Segment {
    /// The events, oldest first, as parsed views with their CPU.
    pub fn events(&self) -> impl Iterator<Item = EventView<'_>> {
        self.records.iter().filter_map(|&(at, len, cpu)| {
            let mut event = EventView::parse(self.bytes.get(at..at + len)?).ok()?;
            event.cpu = cpu;
            Some(event)
        })
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn full(&self) -> bool {
        self.records.len() >= SEGMENT_EVENTS || self.bytes.len() >= SEGMENT_BYTES
    }

    /// A copy for a reader: the records so far and the same start.
    fn copy(&self) -> Segment {
        Segment {
            start: Arc::clone(&self.start),
            bytes: self.bytes.clone(),
            records: self.records.clone(),
        }
    }
}

#[derive(Default)]
struct Inner {
    older: Option<Arc<Segment>>,
    current: Option<Segment>,
    last_snapshot: Option<Instant>,
    /// Why nothing is recorded, when a state was too large to copy.
    refused: Option<String>,
}

/// The kept events of the process (one syscall source per process).
#[derive(Default)]
pub struct Recent {
    on: AtomicBool,
    inner: Mutex<Inner>,
}

/// What a reader gets: the segments, oldest first, and why none may be.
pub struct Kept {
    pub segments: Vec<Arc<Segment>>,
    pub refused: Option<String>,
}

impl Recent {
    pub fn global() -> &'static Recent {
        static RECENT: OnceLock<Recent> = OnceLock::new();
        RECENT.get_or_init(Recent::default)
    }

    /// Recording starts with the console; without it this costs one
    /// relaxed load per event.
    pub fn enable(&self) {
        self.on.store(true, Ordering::Relaxed);
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One event, before `state` applies it.
    #[inline]
    pub fn record(&self, event: &EventView<'_>, state: &State) {
        if self.on.load(Ordering::Relaxed) {
            self.record_slow(event, state);
        }
    }

    #[inline(never)]
    fn record_slow(&self, event: &EventView<'_>, state: &State) {
        let mut inner = self.inner();
        if inner.current.as_ref().map_or(true, Segment::full) {
            if let Some(full) = inner.current.take() {
                inner.older = Some(Arc::new(full));
            }
            if inner
                .last_snapshot
                .is_some_and(|at| at.elapsed() < MIN_SNAPSHOT_GAP)
            {
                return;
            }
            inner.last_snapshot = Some(Instant::now());
            let threads = state.thread_count();
            if threads > MAX_SNAPSHOT_THREADS {
                inner.older = None;
                inner.refused = Some(format!(
                    "no events are kept: the state holds {threads} threads, more than the \
                     {MAX_SNAPSHOT_THREADS} the console copies"
                ));
                return;
            }
            inner.refused = None;
            inner.current = Some(Segment {
                start: Arc::new(state.clone()),
                bytes: Vec::with_capacity(SEGMENT_EVENTS * 128),
                records: Vec::with_capacity(SEGMENT_EVENTS),
            });
        }
        let Some(segment) = inner.current.as_mut() else {
            return;
        };
        let (lens, data, _) = event.body();
        let len = RECORD_HEADER_LEN + lens.len() + data.len();
        let Ok(len32) = u32::try_from(len) else {
            return;
        };
        let at = segment.bytes.len();
        let bytes = &mut segment.bytes;
        bytes.extend_from_slice(&event.ts.to_le_bytes());
        bytes.extend_from_slice(&event.tid.to_le_bytes());
        bytes.extend_from_slice(&len32.to_le_bytes());
        bytes.extend_from_slice(&event.event_type.to_le_bytes());
        bytes.extend_from_slice(&event.nparams.to_le_bytes());
        bytes.extend_from_slice(lens);
        bytes.extend_from_slice(data);
        segment.records.push((at, len, event.cpu));
    }

    /// The kept events now, for a reader; the recording goes on meanwhile.
    pub fn kept(&self) -> Kept {
        let inner = self.inner();
        let mut segments: Vec<Arc<Segment>> = inner.older.iter().cloned().collect();
        if let Some(current) = inner.current.as_ref().filter(|c| !c.is_empty()) {
            segments.push(Arc::new(current.copy()));
        }
        Kept {
            segments,
            refused: inner.refused.clone(),
        }
    }

    /// Forgets the kept events (tests; a new replay).
    pub fn clear(&self) {
        *self.inner() = Inner::default();
    }
}
