//! What the benchmarks share: a large capture made from a kit capture,
//! and medians.
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

/// Repeats the events of `src` (timestamps shifted) after its tables.
pub fn build_large(src: &Capture, repeats: u64, out: &Path) -> u64 {
    let file = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let mut w = Writer::new(file, &src.machine.clone().unwrap_or_default()).unwrap();
    w.write_users(&src.users, &src.groups).unwrap();
    w.write_processes(&src.processes).unwrap();
    w.write_fd_table(&src.fds).unwrap();
    let events: Vec<_> = src.events().map(|e| e.unwrap()).collect();
    let first = events.first().map(|e| e.ts).unwrap_or(0);
    let span = events.last().map(|e| e.ts).unwrap_or(0) - first + 1;
    for r in 0..repeats {
        for ev in &events {
            w.write_event_at(ev, ev.ts + r * span).unwrap();
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

/// Wall time of `sysdig -r FILE -q FILTER`, or None without sysdig.
pub fn sysdig_pass(path: &Path, filter: &str) -> Option<Duration> {
    let start = Instant::now();
    let status = Command::new("sysdig")
        .arg("-r")
        .arg(path)
        .arg("-q")
        .arg(filter)
        .status()
        .ok()?;
    status.success().then(|| start.elapsed())
}
