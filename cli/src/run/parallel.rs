//! Rule evaluation spread over worker threads, for floods one core cannot
//! keep up with (`driver.evaluation_workers`).
//!
//! The reading thread copies each batch of records out of the rings (so
//! their space goes back to the module at once) and hands the same batch
//! to every worker. Each worker keeps a replica of the state: it merges and
//! applies every event, as the single loop does, so every field it reads
//! (parents, ancestors, fds) is what the single loop would read. It
//! evaluates the rules only for the events of the threads it owns (a hash
//! of the thread id, the same on every worker), so each event is evaluated
//! exactly once, by one worker, with every rule. The alerts come back per
//! batch, and the reading thread sends them out in event order.
//!
//! State is cheap next to rules and alert formatting, which are what is
//! spread; the price is one state replica per worker in memory.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use peregrine_engine::event::merge::{MergeStats, Merger};
use peregrine_engine::event::EventView;
use peregrine_engine::output::Alert;
use peregrine_engine::rules::CompiledRules;
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

use crate::metrics::StateCounts;
use crate::run::{Pipeline, RingSource, RunError};
use crate::sources::drops::DropCounters;

/// Records per batch handed to the workers.
const BATCH_RECORDS: usize = 4096;
/// Batches a worker may have queued before the reader waits for it.
const QUEUE_DEPTH: usize = 4;
/// Batches in flight before the reader collects the oldest's alerts.
const IN_FLIGHT: usize = 3;

/// Records copied out of the rings: their bytes and, per record, where it
/// is and which ring (CPU) it came from.
struct Batch {
    bytes: Vec<u8>,
    records: Vec<(usize, usize, u16)>,
}

enum Job {
    Batch(Arc<Batch>),
    /// Rules swapped in by a reload, from the next batch on.
    Rules(Box<CompiledRules<SyscallFields>>),
}

/// What one worker found in one batch.
struct Found {
    /// Events after merging enter and exit records (every worker counts
    /// them all).
    events: u64,
    /// (record index in the batch, alert), in record order.
    alerts: Vec<(usize, Alert)>,
    state: StateCounts,
    merge: MergeStats,
    undecodable: u64,
}

struct Worker {
    jobs: Sender<Job>,
    found: Receiver<Found>,
    thread: std::thread::JoinHandle<()>,
}

/// Which worker evaluates the events of thread `tid` among `workers`.
pub fn owner(tid: u64, workers: usize) -> usize {
    // Fibonacci hashing: consecutive tids spread evenly.
    let mixed = tid.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    (mixed % workers.max(1) as u64) as usize
}

fn run_worker(
    index: usize,
    workers: usize,
    mut state: State,
    mut rules: CompiledRules<SyscallFields>,
    hostname: String,
    jobs: Receiver<Job>,
    found: Sender<Found>,
) {
    let mut merger = Merger::new();
    for job in jobs {
        let batch = match job {
            Job::Rules(new) => {
                rules = *new;
                continue;
            }
            Job::Batch(batch) => batch,
        };
        let mut out = Found {
            events: 0,
            alerts: Vec::new(),
            state: StateCounts::default(),
            merge: MergeStats::default(),
            undecodable: 0,
        };
        for (at, &(start, len, cpu)) in batch.records.iter().enumerate() {
            let Some(record) = batch.bytes.get(start..start + len) else {
                continue;
            };
            let mut event = match EventView::parse(record) {
                Ok(event) => event,
                Err(_) => {
                    out.undecodable += 1;
                    continue;
                }
            };
            event.cpu = cpu;
            let Some(event) = merger.push(&event) else {
                continue;
            };
            out.events += 1;
            // Every worker applies every event: the first one keeps them
            // for the console.
            if index == 0 {
                crate::servers::console::recent::Recent::global().record(&event, &state);
            }
            state.apply(&event);
            if owner(event.tid, workers) != index {
                continue;
            }
            // Parser plugins see each event once, from its owner: their
            // state is one for all workers.
            crate::sources::plugins::syscall::parse(&event, &state);
            // One input (one memo of lookups) for conditions and outputs.
            let input = SyscallEvent::new(&event, &state);
            rules.evaluate(&input, |rule, source| {
                out.alerts
                    .push((at, Alert::new(rule, source, &input, event.ts, &hostname)));
            });
        }
        out.state = StateCounts::of(&state);
        out.merge = merger.stats;
        if found.send(out).is_err() {
            return;
        }
    }
}

/// The workers of one live loop.
pub struct Evaluators {
    workers: Vec<Worker>,
    /// Batches handed out whose alerts are not collected yet.
    in_flight: VecDeque<()>,
    pub undecodable: u64,
}

impl Evaluators {
    /// Starts `count` workers, each with a replica of `state` and a copy
    /// of the rules.
    pub fn start(
        count: usize,
        state: &State,
        rules: &CompiledRules<SyscallFields>,
        hostname: &str,
    ) -> std::io::Result<Evaluators> {
        let count = count.max(1);
        let mut workers = Vec::with_capacity(count);
        for index in 0..count {
            let (jobs_tx, jobs_rx) = bounded(QUEUE_DEPTH);
            let (found_tx, found_rx) = bounded(QUEUE_DEPTH);
            let (state, rules, hostname) = (state.clone(), rules.clone(), hostname.to_string());
            let thread = std::thread::Builder::new()
                .name(format!("evaluate-{index}"))
                .spawn(move || {
                    run_worker(index, count, state, rules, hostname, jobs_rx, found_tx)
                })?;
            workers.push(Worker {
                jobs: jobs_tx,
                found: found_rx,
                thread,
            });
        }
        Ok(Evaluators {
            workers,
            in_flight: VecDeque::new(),
            undecodable: 0,
        })
    }

    fn hand_out(&mut self, job: impl Fn() -> Job) -> bool {
        self.workers.iter().all(|w| w.jobs.send(job()).is_ok())
    }

    /// Gives every worker the rules a reload swapped in.
    pub fn reload(&mut self, rules: &CompiledRules<SyscallFields>) -> bool {
        self.hand_out(|| Job::Rules(Box::new(rules.clone())))
    }

    /// Collects the oldest batch's alerts from every worker and sends them
    /// out in event order. False when a worker is gone.
    fn collect_oldest(&mut self, pipeline: &mut Pipeline<'_>) -> bool {
        if self.in_flight.pop_front().is_none() {
            return true;
        }
        let mut alerts: Vec<(usize, Alert)> = Vec::new();
        let mut events = 0;
        for (index, worker) in self.workers.iter().enumerate() {
            let Ok(found) = worker.found.recv() else {
                return false;
            };
            if index == 0 {
                events = found.events;
                self.undecodable += found.undecodable;
                pipeline.metrics.set_state(found.state);
                pipeline.metrics.set_merge(found.merge);
            }
            alerts.extend(found.alerts);
        }
        // Each worker's list is in record order; one event's alerts come
        // from one worker, in rule order, which a stable sort keeps.
        alerts.sort_by_key(|&(at, _)| at);
        pipeline.count_events(events);
        for (_, alert) in alerts {
            pipeline.send_alert(alert);
        }
        true
    }

    /// Collects every batch still out.
    pub fn collect_all(&mut self, pipeline: &mut Pipeline<'_>) -> bool {
        while !self.in_flight.is_empty() {
            if !self.collect_oldest(pipeline) {
                return false;
            }
        }
        true
    }

    /// Ends the workers once their queues are done.
    pub fn stop(self) {
        let Evaluators { workers, .. } = self;
        let threads: Vec<_> = workers
            .into_iter()
            .map(|w| {
                drop(w.jobs);
                w.thread
            })
            .collect();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// The live loop with evaluation on `evaluators`: as
/// [`crate::run::drain_rings`], one batch at a time.
pub fn drain_rings_parallel(
    source: &mut impl RingSource,
    evaluators: &mut Evaluators,
    all_flag: bool,
    mut recorder: Option<&mut crate::capture::record::Recorder>,
    pipeline: &mut Pipeline<'_>,
) -> Result<(), RunError> {
    let counters_of = |t: &peregrine_driver_sys::RingStats| DropCounters {
        n_evts: t.n_evts + t.n_drops_buffer + t.n_drops_pf + t.n_drops_too_large,
        n_drops_buffer: t.n_drops_buffer,
        n_drops_pf: t.n_drops_pf,
        n_drops_too_large: t.n_drops_too_large,
        n_preemptions: t.n_preemptions,
    };
    let lost = || RunError::Traced("an evaluation worker stopped".into());
    pipeline.metrics.rings.set_reader_thread();
    while !pipeline.should_stop() {
        let mut batch = Batch {
            bytes: Vec::with_capacity(BATCH_RECORDS * 128),
            records: Vec::with_capacity(BATCH_RECORDS),
        };
        let mut last_ts = 0;
        let read = source.reader().next_batch(BATCH_RECORDS, |ring, record| {
            let bytes = record.bytes();
            if let Some(recorder) = recorder.as_deref_mut() {
                recorder.record_bytes(ring, bytes);
            }
            batch.records.push((
                batch.bytes.len(),
                bytes.len(),
                u16::try_from(ring).unwrap_or(u16::MAX),
            ));
            batch.bytes.extend_from_slice(bytes);
            last_ts = record.ts();
        });
        // Async events plugins sent join the batch after its records: every
        // worker applies them, the owner of their thread evaluates them.
        let mut joined = 0;
        while joined < BATCH_RECORDS {
            let ts = if last_ts == 0 {
                crate::run::now_ns()
            } else {
                last_ts
            };
            let Some(bytes) = pipeline.next_async(ts) else {
                break;
            };
            batch.records.push((batch.bytes.len(), bytes.len(), 0));
            batch.bytes.extend_from_slice(&bytes);
            joined += 1;
        }
        let read = read.map(|n| n + joined);
        let ring_stats = source.reader().stats();
        let stats_now = counters_of(&ring_stats.total);
        pipeline.metrics.set_ring_stats(ring_stats);
        match read {
            Ok(0) => {
                if !evaluators.collect_all(pipeline) {
                    return Err(lost());
                }
                if source.exhausted() && !source.reader().has_data() {
                    break;
                }
                pipeline.maybe_send_stats(crate::run::now_ns());
                pipeline.maybe_reload();
                // Nothing in flight: idle as the single loop does.
                source.reader().wait(pipeline.idle_wait(None));
            }
            Ok(n) => {
                let batch = Arc::new(batch);
                if !evaluators.hand_out(|| Job::Batch(Arc::clone(&batch))) {
                    return Err(lost());
                }
                evaluators.in_flight.push_back(());
                if evaluators.in_flight.len() >= IN_FLIGHT && !evaluators.collect_oldest(pipeline) {
                    return Err(lost());
                }
                pipeline.after_batch(last_ts, || stats_now);
                // A short batch emptied the rings: sleep before the next
                // unless a ring is busy (see crate::run::drain_rings).
                if n < BATCH_RECORDS {
                    source.reader().wait(Duration::from_millis(100));
                }
            }
            Err(e) => {
                crate::log::message(&format!("{e}; skipping the rest of that ring"));
                source.reader().discard_all(e.ring_id);
            }
        }
        if let Some(base) = pipeline.reloaded.take() {
            // The workers take the new rules between two batches.
            if !evaluators.collect_all(pipeline) || !evaluators.reload(pipeline.rules) {
                return Err(lost());
            }
            let interest = crate::run::choose_interest(pipeline, &base, all_flag);
            source.set_interest(&interest.syscalls.unwrap_or_else(crate::run::every_syscall))?;
        }
    }
    if !evaluators.collect_all(pipeline) {
        return Err(lost());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{RenderOptions, SharedAlert};
    use crate::capture::record::Recorder;
    use crate::metrics::Metrics;
    use crate::outputs::{Channel, Dispatcher, OutputError};
    use crate::ruleset::{self, RulesInput};
    use crate::run::{drain_rings_purging, Detections};
    use peregrine_driver_sys::{DriverError, MergedReader, UserRing, WriteOutcome};
    use std::collections::BTreeSet;
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    /// Collects what it is given, in order.
    struct Collect(Arc<Mutex<Vec<String>>>);

    impl Channel for Collect {
        fn name(&self) -> &'static str {
            "collect"
        }
        fn emit(&mut self, alert: &SharedAlert) -> Result<(), OutputError> {
            if let Ok(mut seen) = self.0.lock() {
                seen.push(alert.alert.output.clone());
            }
            Ok(())
        }
    }

    struct Fed {
        reader: MergedReader,
        done: Arc<AtomicBool>,
    }

    impl RingSource for Fed {
        fn reader(&mut self) -> &mut MergedReader {
            &mut self.reader
        }
        fn set_interest(&mut self, _: &BTreeSet<u32>) -> Result<(), DriverError> {
            Ok(())
        }
        fn exhausted(&self) -> bool {
            self.done.load(std::sync::atomic::Ordering::Acquire)
        }
    }

    const RULES: &str = "
- rule: late threads
  desc: threads above 50
  condition: thread.tid > 50
  output: late %thread.tid %evt.num
  priority: WARNING
- rule: chosen threads
  desc: a few threads
  condition: thread.tid in (5, 7, 11, 13)
  output: chosen %thread.tid %evt.num
  priority: ERROR
";

    /// Runs `drive` on a pipeline with [`RULES`]; what the outputs got, in
    /// order, and the counts.
    fn with_pipeline(drive: impl FnOnce(&mut Pipeline<'_>)) -> (Vec<String>, Detections) {
        let ruleset = ruleset::load(
            &[RulesInput::Text {
                name: "order.yaml".into(),
                text: RULES.into(),
            }],
            None,
        );
        assert!(!ruleset.has_errors());
        let mut rules = ruleset.syscall;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let channels: Vec<Box<dyn Channel>> = vec![Box::new(Collect(Arc::clone(&seen)))];
        let dispatcher = Dispatcher::new(channels, RenderOptions::default(), 0).unwrap();
        let metrics = Metrics::new(Box::new(Vec::new), None);
        let stop = AtomicBool::new(false);
        let mut pipeline = Pipeline {
            rules: &mut rules,
            dispatcher: &dispatcher,
            metrics: &metrics,
            stats_every: None,
            next_stats: None,
            hostname: "test",
            drops: None,
            stop: &stop,
            reload: None,
            deadline: None,
            detections: Detections::default(),
            exit_requested: false,
            reloaded: None,
            stats_rule: false,
            stats_file: None,
            capture: None,
            containers: None,
            async_events: None,
            async_num: 0,
        };
        drive(&mut pipeline);
        let detections = std::mem::take(&mut pipeline.detections);
        drop(pipeline);
        dispatcher.shutdown();
        let seen = seen.lock().unwrap().clone();
        (seen, detections)
    }

    /// Runs `events` generic events of threads 1..=97 through the live
    /// loop (in parallel with `workers`, or on one thread with None) from
    /// a small ring a producer thread fills as it drains, recording them
    /// to `record` when given; what the outputs got, in order.
    fn alerts_of(
        events: u64,
        workers: Option<usize>,
        record: Option<&std::path::Path>,
    ) -> (Vec<String>, Detections) {
        with_pipeline(|pipeline| {
            let (mut producer, ring) = UserRing::create(0, 64 * 1024).unwrap().split().unwrap();
            let done = Arc::new(AtomicBool::new(false));
            let mut source = Fed {
                reader: MergedReader::new(vec![ring]),
                done: Arc::clone(&done),
            };
            let writer = std::thread::spawn(move || {
                for n in 0..events {
                    loop {
                        match producer.write_event(1_000 + n, 1 + n % 97, 1, &[]) {
                            Ok(WriteOutcome::Written) => break,
                            _ => std::thread::yield_now(),
                        }
                    }
                }
                done.store(true, std::sync::atomic::Ordering::Release);
            });
            let mut state = State::new();
            let mut recorder =
                record.map(|path| Recorder::create(path, &state, (&[], &[]), "test").unwrap());
            match workers {
                Some(n) => {
                    let mut evaluators =
                        Evaluators::start(n, &state, pipeline.rules, "test").unwrap();
                    drain_rings_parallel(
                        &mut source,
                        &mut evaluators,
                        false,
                        recorder.as_mut(),
                        pipeline,
                    )
                    .unwrap();
                    evaluators.stop();
                }
                None => {
                    drain_rings_purging(
                        &mut source,
                        &mut state,
                        false,
                        None,
                        recorder.as_mut(),
                        pipeline,
                    )
                    .unwrap();
                }
            }
            writer.join().unwrap();
            if let Some(recorder) = recorder {
                assert_eq!(recorder.finish().unwrap(), events);
            }
        })
    }

    /// A source that writes a record each time the loop looks at it: the
    /// reader's own syscalls, as the module records them under `-A`.
    struct SelfFeeding {
        reader: MergedReader,
        producer: peregrine_driver_sys::Producer,
        written: u64,
    }

    impl RingSource for SelfFeeding {
        fn reader(&mut self) -> &mut MergedReader {
            if let Ok(WriteOutcome::Written) =
                self.producer.write_event(self.written + 1, 7, 1, &[])
            {
                self.written += 1;
            }
            &mut self.reader
        }
        fn set_interest(&mut self, _: &BTreeSet<u32>) -> Result<(), DriverError> {
            Ok(())
        }
    }

    #[test]
    fn a_reader_that_records_itself_still_sleeps() {
        for workers in [None, Some(2)] {
            let mut written = 0;
            with_pipeline(|pipeline| {
                let (producer, ring) = UserRing::create(0, 1 << 20).unwrap().split().unwrap();
                let mut source = SelfFeeding {
                    reader: MergedReader::new(vec![ring]),
                    producer,
                    written: 0,
                };
                pipeline.deadline = Some(std::time::Instant::now() + Duration::from_millis(600));
                let mut state = State::new();
                match workers {
                    Some(n) => {
                        let mut evaluators =
                            Evaluators::start(n, &state, pipeline.rules, "test").unwrap();
                        drain_rings_parallel(&mut source, &mut evaluators, false, None, pipeline)
                            .unwrap();
                        evaluators.stop();
                    }
                    None => {
                        drain_rings_purging(&mut source, &mut state, false, None, None, pipeline)
                            .unwrap();
                    }
                }
                written = source.written;
            });
            // Pauses double from 0.5 ms to 30 ms: some forty rounds in
            // 600 ms, a few records each. Reading its own trail at once
            // would take hundreds of thousands.
            assert!(
                written < 1_000,
                "{workers:?}: {written} self-made records read"
            );
        }
    }

    #[test]
    fn a_recorded_live_run_replays_to_the_same_alerts() {
        let dir = tempfile::tempdir().unwrap();
        for workers in [None, Some(3)] {
            let path = dir.path().join(format!("live-{workers:?}.scap"));
            let events = 5_000;
            let (live, live_counts) = alerts_of(events, workers, Some(&path));
            let (replayed, replay_counts) =
                with_pipeline(|pipeline| crate::run::replay(&path, pipeline).unwrap());
            assert!(!live.is_empty());
            assert_eq!(replay_counts.events, events, "{workers:?}");
            assert_eq!(replay_counts.by_rule, live_counts.by_rule, "{workers:?}");
            assert!(replayed == live, "{workers:?}: the replay's alerts differ");
        }
    }

    #[test]
    fn parallel_evaluation_raises_each_alert_once_in_event_order() {
        let events = 20_000;
        let (single, single_counts) = alerts_of(events, None, None);
        let late = (0..events).filter(|n| 1 + n % 97 > 50).count();
        let chosen = (0..events)
            .filter(|n| [5, 7, 11, 13].contains(&(1 + n % 97)))
            .count();
        assert_eq!(single.len(), late + chosen);
        assert_eq!(single_counts.events, events);
        for workers in [1, 3, 4] {
            let (parallel, counts) = alerts_of(events, Some(workers), None);
            assert_eq!(counts.events, events, "{workers} workers");
            assert_eq!(counts.alerts, single_counts.alerts, "{workers} workers");
            assert_eq!(counts.by_rule, single_counts.by_rule, "{workers} workers");
            // Same alerts, same order: exactly once each, in event order.
            assert!(parallel == single, "{workers} workers: alerts differ");
        }
    }

    #[test]
    fn every_thread_has_one_owner_and_threads_spread() {
        for workers in 1..=8 {
            let mut per = vec![0u32; workers];
            for tid in 1..=10_000u64 {
                per[owner(tid, workers)] += 1;
            }
            let (min, max) = (per.iter().min().unwrap(), per.iter().max().unwrap());
            assert!(f64::from(*max) <= f64::from(*min) * 1.2, "{per:?}");
        }
    }
}
