//! What the live path costs per event against the replay path, on the same
//! recorded stream: the whole pipeline (ring reader, decode, state, rules,
//! outputs, metrics) fed from a userspace ring by a producer thread that
//! stands in for the kernel module, and the same events replayed from an
//! in-memory capture. Prints one table: the median over the rounds of the
//! agent's CPU per event (the process's CPU minus the producer's), its wall
//! time per event, and live/replay.
//!
//! The stream is recorded once by `scripts/record-busy-stream` into
//! `$HOME/.cache/peregrine/busy-stream.records` (PEREGRINE_BUSY_STREAM names
//! another file); without it the bench says so and skips.
//!
//! Run: `cargo bench -p peregrine --bench live_pipeline`
//! (LIVE_BENCH_ROUNDS=N, default 5; LIVE_BENCH_RULES=FILE loads that rules
//! file instead of the built-in rules; LIVE_BENCH_ONLY=live|replay runs one
//! side, for `valgrind --tool=callgrind`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peregrine::alert::RenderOptions;
use peregrine::config::Config;
use peregrine::metrics::Metrics;
use peregrine::outputs::{Channel, Dispatcher, FileChannel};
use peregrine::ruleset::{self, RulesInput};
use peregrine::run::parallel::{drain_rings_parallel, Evaluators};
use peregrine::run::{drain_rings, replay_capture, Detections, Pipeline, RingSource};
use peregrine::sources::drops::{DropCounters, DropMonitor};
use peregrine_driver_sys::abi::EVENT_HDR_LEN;
use peregrine_driver_sys::{DriverError, MergedReader, UserRing, WriteOutcome};
use peregrine_engine::event::EventView;
use peregrine_engine::scap::snapshot::machine_info;
use peregrine_engine::scap::{Capture, Writer};
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::SyscallFields;

const RING_SIZE: u64 = 8 << 20;

fn stream_path() -> PathBuf {
    if let Some(path) = std::env::var_os("PEREGRINE_BUSY_STREAM") {
        return path.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/peregrine/busy-stream.records")
}

/// The records of the file, each a whole record (header and body).
fn split_records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut records = Vec::new();
    let mut at = 0;
    while let Some(hdr) = bytes.get(at..at + EVENT_HDR_LEN) {
        let len = u32::from_ne_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]) as usize;
        if len < EVENT_HDR_LEN || at + len > bytes.len() {
            break;
        }
        records.push((at, len));
        at += len;
    }
    records
}

/// The same records as a capture, for the replay side.
fn as_capture(bytes: &[u8], records: &[(usize, usize)]) -> Vec<u8> {
    let machine = machine_info(std::path::Path::new("/proc"), "bench");
    let mut writer = Writer::new(Vec::new(), &machine).expect("capture header");
    for &(at, len) in records {
        let Ok(event) = EventView::parse(&bytes[at..at + len]) else {
            continue;
        };
        writer.write_event(&event).expect("in-memory write");
    }
    writer.finish().expect("in-memory finish")
}

/// Process CPU time (every thread), or one thread's.
fn cpu_time(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A user ring whose producer thread writes the recording, waiting for
/// room (as a module with a large enough ring would drop nothing).
struct UserSource {
    reader: MergedReader,
    done: Arc<AtomicBool>,
}

impl RingSource for UserSource {
    fn reader(&mut self) -> &mut MergedReader {
        &mut self.reader
    }

    fn set_interest(
        &mut self,
        _syscalls: &std::collections::BTreeSet<u32>,
    ) -> Result<(), DriverError> {
        Ok(())
    }

    fn exhausted(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

struct Agent {
    rules: peregrine_engine::rules::CompiledRules<SyscallFields>,
    dispatcher: Dispatcher,
    metrics: Metrics,
    /// Measured on every event, as the agent does.
    drops: DropMonitor,
    stop: AtomicBool,
}

impl Agent {
    fn new(inputs: &[RulesInput]) -> Agent {
        let ruleset = ruleset::load(inputs, None);
        if let Some(e) = ruleset.errors().next() {
            panic!("rules do not load: {e:?}");
        }
        // Alerts are rendered and written, to a sink that costs no disk.
        let sink = FileChannel::open("/dev/null".into(), true, true).expect("/dev/null");
        let channels: Vec<Box<dyn Channel>> = vec![Box::new(sink)];
        let dispatcher = Dispatcher::new(channels, RenderOptions::default(), 0).expect("outputs");
        Agent {
            rules: ruleset.syscall,
            dispatcher,
            metrics: Metrics::new(Box::new(Vec::new), None),
            drops: DropMonitor::new(
                &Config::default().syscall_event_drops,
                DropCounters::default(),
            ),
            stop: AtomicBool::new(false),
        }
    }

    fn pipeline(&mut self) -> Pipeline<'_> {
        Pipeline {
            rules: &mut self.rules,
            dispatcher: &self.dispatcher,
            metrics: &self.metrics,
            stats_every: None,
            next_stats: None,
            hostname: "bench",
            drops: Some(&mut self.drops),
            stop: &self.stop,
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
        }
    }
}

struct Round {
    events: u64,
    alerts: u64,
    cpu: Duration,
    wall: Duration,
}

/// One live round; `workers` > 0 evaluates on that many worker threads.
fn live_round(
    agent: &mut Agent,
    bytes: &Arc<Vec<u8>>,
    records: &Arc<Vec<(usize, usize)>>,
    workers: usize,
) -> Round {
    let (mut producer, ring) = UserRing::create(0, RING_SIZE)
        .and_then(|r| r.split())
        .expect("user ring");
    let done = Arc::new(AtomicBool::new(false));
    let mut source = UserSource {
        reader: MergedReader::new(vec![ring]),
        done: Arc::clone(&done),
    };
    let (bytes, records) = (Arc::clone(bytes), Arc::clone(records));
    let cpu_start = cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID);
    let wall_start = Instant::now();
    let writer = std::thread::spawn(move || {
        let start = cpu_time(libc::CLOCK_THREAD_CPUTIME_ID);
        let empty = producer.free_bytes();
        for &(at, len) in records.iter() {
            while producer.free_bytes() < len as u64 {
                std::thread::yield_now();
            }
            let outcome = producer
                .write_record(&bytes[at..at + len])
                .expect("recorded record");
            assert_eq!(outcome, WriteOutcome::Written, "room was waited for");
        }
        done.store(true, Ordering::Release);
        // The reader has taken the last batch once the ring is empty again.
        while producer.free_bytes() < empty {
            std::thread::yield_now();
        }
        (
            cpu_time(libc::CLOCK_THREAD_CPUTIME_ID) - start,
            Instant::now(),
        )
    });
    let mut state = State::new();
    let mut pipeline = agent.pipeline();
    if workers == 0 {
        drain_rings(&mut source, &mut state, false, &mut pipeline).expect("live loop");
    } else {
        let mut evaluators =
            Evaluators::start(workers, &state, pipeline.rules, "bench").expect("workers");
        drain_rings_parallel(&mut source, &mut evaluators, false, None, &mut pipeline)
            .expect("parallel live loop");
        evaluators.stop();
    }
    let returned = Instant::now();
    let detections = std::mem::take(&mut pipeline.detections);
    let (producer_cpu, drained) = writer.join().expect("producer");
    // The single loop learns that the stream has ended only at the end of
    // an idle wait (up to IDLE_WAIT, a second), which a live agent never
    // reaches; its time ends with the last batch taken (that batch's
    // evaluation, a few ms at most, is left out). The workers' loop
    // returns as soon as they are done.
    let end = if workers == 0 { drained } else { returned };
    Round {
        events: detections.events,
        alerts: detections.alerts,
        cpu: (cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID) - cpu_start).saturating_sub(producer_cpu),
        wall: end.saturating_duration_since(wall_start),
    }
}

fn replay_round(agent: &mut Agent, scap: &[u8]) -> Round {
    let cpu_start = cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID);
    let wall_start = Instant::now();
    let mut capture = Capture::from_bytes(scap.to_vec()).expect("capture");
    let mut pipeline = agent.pipeline();
    replay_capture(&mut capture, "busy stream", &mut pipeline).expect("replay");
    let detections = std::mem::take(&mut pipeline.detections);
    Round {
        events: detections.events,
        alerts: detections.alerts,
        cpu: cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID) - cpu_start,
        wall: wall_start.elapsed(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let path = stream_path();
    let Ok(bytes) = std::fs::read(&path) else {
        println!(
            "live_pipeline: skipped: no recorded stream at {} (make it with scripts/record-busy-stream)",
            path.display()
        );
        return;
    };
    let rounds: usize = std::env::var("LIVE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let only = std::env::var("LIVE_BENCH_ONLY").unwrap_or_default();
    let inputs = match std::env::var_os("LIVE_BENCH_RULES") {
        Some(file) => vec![RulesInput::File(file.into())],
        None => ruleset::built_in(),
    };
    let records = split_records(&bytes);
    let scap = as_capture(&bytes, &records);
    println!(
        "live_pipeline: {} records ({} MiB) from {}, {rounds} rounds",
        records.len(),
        bytes.len() >> 20,
        path.display()
    );
    let (bytes, records) = (Arc::new(bytes), Arc::new(records));

    let workers: Vec<usize> = std::env::var("LIVE_BENCH_WORKERS")
        .unwrap_or_else(|_| "2 4".into())
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .filter(|&w| w > 0)
        .collect();
    let mut agent = Agent::new(&inputs);
    let (mut live, mut replay) = (Vec::new(), Vec::new());
    let mut parallel: Vec<Vec<Round>> = workers.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        // Interleaved, so a change in the machine's load hits every side.
        if only.is_empty() || only == "live" {
            live.push(live_round(&mut agent, &bytes, &records, 0));
        }
        if only.is_empty() || only == "replay" {
            replay.push(replay_round(&mut agent, &scap));
        }
        if only.is_empty() || only == "parallel" {
            for (w, rounds) in workers.iter().zip(&mut parallel) {
                rounds.push(live_round(&mut agent, &bytes, &records, *w));
            }
        }
    }
    let per_event = |rounds: &[Round], pick: fn(&Round) -> Duration| {
        median(
            rounds
                .iter()
                .map(|r| pick(r).as_nanos() as f64 / r.events.max(1) as f64)
                .collect(),
        )
    };
    println!(
        "{:<12} {:>10} {:>8} {:>14} {:>14} {:>12}",
        "path", "events", "alerts", "CPU ns/event", "wall ns/event", "events/s"
    );
    let mut sides: Vec<(String, &Vec<Round>)> =
        vec![("live".into(), &live), ("replay".into(), &replay)];
    for (w, rounds) in workers.iter().zip(&parallel) {
        sides.push((format!("live x{w}"), rounds));
    }
    let mut medians = Vec::new();
    for (name, rounds) in sides {
        let Some(first) = rounds.first() else {
            continue;
        };
        let cpu = per_event(rounds, |r| r.cpu);
        let wall = per_event(rounds, |r| r.wall);
        medians.push((name.clone(), cpu, wall));
        println!(
            "{name:<12} {:>10} {:>8} {cpu:>14.0} {wall:>14.0} {:>12.0}",
            first.events,
            first.alerts,
            1e9 / wall
        );
    }
    let find = |name: &str| medians.iter().find(|(n, _, _)| n == name);
    if let (Some((_, live_cpu, live_wall)), Some((_, replay_cpu, replay_wall))) =
        (find("live"), find("replay"))
    {
        println!(
            "live/replay: CPU {:.2}x, wall {:.2}x",
            live_cpu / replay_cpu,
            live_wall / replay_wall
        );
    }
}
