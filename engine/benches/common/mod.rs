//! What the benchmarks share: a large capture made from a kit capture,
//! medians, and timing whole processes (ours and sysdig) side by side
//! with their peak memory.
//!
//! Reading the tables: "wall ms" and "ev/s wall" time the whole process
//! (start-up included, as for sysdig); "cpu ms" is user+system time from
//! GNU time (10 ms resolution), steadier than wall time on a machine
//! shared with other work; "loop ev/s" is our event loop alone, as the
//! pass measures it; "RSS MiB" is the peak resident set.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use peregrine_engine::scap::{Capture, Writer};

/// The shared conformance kit, or None (the bench prints a SKIP line).
pub fn kit() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance");
    dir.is_dir().then_some(dir)
}

/// Writes the events of `src` `repeats` times (timestamps shifted) after
/// its tables, reading the source again for every repeat so nothing but
/// one event is held in memory.
pub fn build_large(src: &Path, repeats: u64, out: &Path) -> u64 {
    let mut first_read = Capture::open(src).unwrap();
    let (mut first, mut last) = (None, 0);
    let mut events = first_read.events();
    while let Some(ev) = events.next() {
        let ev = ev.unwrap();
        first.get_or_insert(ev.ts);
        last = ev.ts;
    }
    let first = first.unwrap_or(0);
    let span = last - first + 1;
    let file = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let mut w = Writer::new(file, &first_read.machine.clone().unwrap_or_default()).unwrap();
    w.write_users(&first_read.users, &first_read.groups)
        .unwrap();
    w.write_processes(&first_read.processes).unwrap();
    w.write_fd_table(&first_read.fds).unwrap();
    for r in 0..repeats {
        let mut cap = Capture::open(src).unwrap();
        let mut events = cap.events();
        while let Some(ev) = events.next() {
            let ev = ev.unwrap();
            w.write_event_at(&ev, ev.ts + r * span).unwrap();
        }
    }
    let n = w.events_written();
    w.finish().unwrap();
    n
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort();
    v[v.len() / 2]
}

/// One run of a whole process: its wall time, peak resident memory, and
/// what it printed.
pub struct Run {
    pub wall: Duration,
    /// User plus system CPU time, which other load on the machine
    /// disturbs less than wall time.
    pub cpu: Option<Duration>,
    pub max_rss_kib: Option<u64>,
    pub stdout: String,
}

/// Runs a command to its end, timing it from before the fork to after the
/// wait. The peak RSS comes from GNU time when it is installed (its own
/// cost is the same for every command measured).
pub fn run_measured(program: &Path, args: &[&std::ffi::OsStr]) -> Option<Run> {
    let time = Path::new("/usr/bin/time");
    let rss_file = std::env::temp_dir().join(format!("peregrine-bench-rss-{}", std::process::id()));
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-f")
            .arg("%M %U %S")
            .arg("-o")
            .arg(&rss_file)
            .arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args).stderr(std::process::Stdio::null());
    let start = Instant::now();
    let out = cmd.output().ok()?;
    let wall = start.elapsed();
    if !out.status.success() {
        return None;
    }
    let report = std::fs::read_to_string(&rss_file).unwrap_or_default();
    let fields: Vec<&str> = report
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let max_rss_kib = fields.first().and_then(|v| v.parse().ok());
    let cpu = match (fields.get(1), fields.get(2)) {
        (Some(u), Some(s)) => match (u.parse::<f64>(), s.parse::<f64>()) {
            (Ok(u), Ok(s)) => Some(Duration::from_secs_f64(u + s)),
            _ => None,
        },
        _ => None,
    };
    let _ = std::fs::remove_file(&rss_file);
    Some(Run {
        wall,
        cpu,
        max_rss_kib,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    })
}

/// `sysdig -r FILE -q FILTER`, or None without sysdig.
pub fn sysdig_pass(path: &Path, filter: &str) -> Option<Run> {
    let sysdig = ["/usr/bin/sysdig", "/usr/local/bin/sysdig"]
        .iter()
        .map(Path::new)
        .find(|p| p.exists())?;
    run_measured(
        sysdig,
        &[
            "-r".as_ref(),
            path.as_os_str(),
            "-q".as_ref(),
            filter.as_ref(),
        ],
    )
}

/// This bench binary again, running one pass in a process of its own
/// (`--pass NAME ARGS...`), so its memory and start-up count like
/// sysdig's do.
pub fn self_pass(args: &[&std::ffi::OsStr]) -> Run {
    let exe = std::env::current_exe().unwrap();
    let mut all: Vec<&std::ffi::OsStr> = vec!["--pass".as_ref()];
    all.extend_from_slice(args);
    run_measured(&exe, &all).expect("bench pass failed")
}

/// The `key=value` numbers a pass prints on its stdout.
pub fn reported(run: &Run, key: &str) -> u64 {
    run.stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .unwrap_or(0)
}

pub fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1}", k as f64 / 1024.0))
        .unwrap_or_else(|| "n/a".into())
}

/// Median CPU time of runs, when GNU time reported it for all of them.
pub fn median_cpu(runs: &[Run]) -> Option<Duration> {
    let cpu: Option<Vec<Duration>> = runs.iter().map(|r| r.cpu).collect();
    cpu.filter(|c| !c.is_empty()).map(median)
}

/// One table row: name, process wall time, events/s over it, CPU time
/// and events/s over it, events/s of the event loop alone (when the pass
/// reports it), peak RSS.
pub fn row(name: &str, events: u64, runs: &[Run], loop_ns: Option<u64>) {
    let wall = median(runs.iter().map(|r| r.wall).collect());
    let cpu = median_cpu(runs);
    let rss = runs.iter().filter_map(|r| r.max_rss_kib).max();
    let loop_rate = loop_ns
        .filter(|&ns| ns > 0)
        .map(|ns| format!("{:.0}", events as f64 / (ns as f64 / 1e9)))
        .unwrap_or_else(|| "-".into());
    let (cpu_ms, cpu_rate) = match cpu {
        Some(c) if !c.is_zero() => (
            format!("{:.0}", c.as_secs_f64() * 1e3),
            format!("{:.0}", events as f64 / c.as_secs_f64()),
        ),
        _ => ("n/a".into(), "n/a".into()),
    };
    println!(
        "{name:<44} {:>8.1} {:>11.0} {cpu_ms:>7} {cpu_rate:>11} {loop_rate:>11} {:>7}",
        wall.as_secs_f64() * 1e3,
        events as f64 / wall.as_secs_f64(),
        mib(rss)
    );
}

pub fn header() {
    println!(
        "{:<44} {:>8} {:>11} {:>7} {:>11} {:>11} {:>7}",
        "pass (median of 5)", "wall ms", "ev/s wall", "cpu ms", "ev/s cpu", "loop ev/s", "RSS MiB"
    );
}

/// "sysdig / peregrine" ratios of wall and CPU time.
pub fn ratios(what: &str, ours: &[Run], theirs: &[Run]) {
    let wall = |r: &[Run]| median(r.iter().map(|r| r.wall).collect()).as_secs_f64();
    let mut line = format!(
        "{what}: sysdig/peregrine wall time {:.2}x",
        wall(theirs) / wall(ours)
    );
    if let (Some(a), Some(b)) = (median_cpu(ours), median_cpu(theirs)) {
        line.push_str(&format!(
            ", CPU time {:.2}x",
            b.as_secs_f64() / a.as_secs_f64()
        ));
    }
    let rss = |r: &[Run]| r.iter().filter_map(|r| r.max_rss_kib).max();
    line.push_str(&format!(
        "; peak RSS {} MiB vs sysdig {} MiB",
        mib(rss(ours)),
        mib(rss(theirs))
    ));
    println!("{line}");
}
