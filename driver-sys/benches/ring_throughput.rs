//! How fast the reader drains records, printed as a table (medians of
//! several runs). Run with `cargo bench -p peregrine-driver-sys`.
//!
//! - streamed: a producer thread on one core writes (waiting for space, so
//!   nothing is dropped) while the reader on the other core drains: the
//!   end-to-end rate of the protocol.
//! - drain: the reader alone empties a ring filled beforehand: the cost of
//!   reading in place, without the producer's share of the memory bus.
//! - merged x4: the same through MergedReader over 4 prefilled rings.

use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use peregrine_driver_sys::{MergedReader, Ring, UserRing, WriteOutcome};
use std::hint::black_box;
use std::thread;
use std::time::Instant;

const RING_SIZE: u64 = 8 * 1024 * 1024;
const STREAMED_EVENTS: u64 = 4_000_000;
const RUNS: usize = 5;
const BATCH: usize = 1024;

fn pin_to(cpu: usize) -> bool {
    let mut set = CpuSet::new();
    set.set(cpu).is_ok() && sched_setaffinity(Pid::from_raw(0), &set).is_ok()
}

/// Touches what a consumer needs (header fields) so the loop is not elided.
#[inline(always)]
fn consume(acc: &mut u64, ts: u64, len: u32, ty: u16) {
    *acc = acc.wrapping_add(ts ^ u64::from(len) ^ u64::from(ty));
}

fn streamed(record_size: usize) -> f64 {
    let (mut producer, mut ring) = UserRing::create(0, RING_SIZE).unwrap().split().unwrap();
    let body_len = record_size - 26;
    let writer = thread::spawn(move || {
        pin_to(1);
        for seq in 0..STREAMED_EVENTS {
            loop {
                let outcome = producer
                    .write_with(seq, 42, 3, 1, body_len, |body| {
                        body[..2].copy_from_slice(&((body_len - 2) as u16).to_ne_bytes());
                    })
                    .unwrap();
                if outcome == WriteOutcome::Written {
                    break;
                }
                std::hint::spin_loop();
            }
        }
    });
    pin_to(0);
    let start = Instant::now();
    let mut got = 0u64;
    let mut acc = 0u64;
    while got < STREAMED_EVENTS {
        let n = ring
            .read_batch(BATCH, |ev| {
                consume(&mut acc, ev.ts(), ev.len(), ev.event_type())
            })
            .unwrap();
        if n == 0 {
            std::hint::spin_loop();
        }
        got += n as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    writer.join().unwrap();
    black_box(acc);
    got as f64 / secs
}

fn fill(id: usize, record_size: usize) -> (Ring, u64) {
    let (mut producer, ring) = UserRing::create(id, RING_SIZE).unwrap().split().unwrap();
    let body_len = record_size - 26;
    let mut n = 0u64;
    while producer
        .write_with(n * 4 + id as u64, 42, 3, 1, body_len, |_| ())
        .unwrap()
        == WriteOutcome::Written
    {
        n += 1;
    }
    // The producer end is dropped; the Ring keeps the mapping alive.
    (ring, n)
}

fn drain(record_size: usize) -> f64 {
    pin_to(0);
    let (mut ring, n) = fill(0, record_size);
    let mut acc = 0u64;
    let start = Instant::now();
    let mut got = 0;
    while got < n {
        got += ring
            .read_batch(BATCH, |ev| {
                consume(&mut acc, ev.ts(), ev.len(), ev.event_type())
            })
            .unwrap() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    black_box(acc);
    n as f64 / secs
}

fn merged_drain(record_size: usize) -> f64 {
    pin_to(0);
    let mut rings = Vec::new();
    let mut total = 0;
    for id in 0..4 {
        let (ring, n) = fill(id, record_size);
        rings.push(ring);
        total += n;
    }
    let mut reader = MergedReader::new(rings);
    let mut acc = 0u64;
    let start = Instant::now();
    let mut got = 0;
    while got < total {
        got += reader
            .next_batch(BATCH, |_, ev| {
                consume(&mut acc, ev.ts(), ev.len(), ev.event_type())
            })
            .unwrap() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    black_box(acc);
    total as f64 / secs
}

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; a test run (`cargo test --benches`)
    // does not, and gets one quick pass instead of the full table.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs = if quick { 1 } else { RUNS };
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "ring reader throughput, median of {runs} runs, {} MiB rings, batches of {BATCH}, {cores} cores{}",
        RING_SIZE >> 20,
        if cores < 2 { " (producer and reader share a core)" } else { "" }
    );
    println!(
        "{:>12} {:>18} {:>18} {:>18}",
        "record bytes", "streamed ev/s", "drain ev/s", "merged x4 ev/s"
    );
    for size in [32usize, 64, 256] {
        let s = median((0..runs).map(|_| streamed(size)).collect());
        let d = median((0..runs).map(|_| drain(size)).collect());
        let m = median((0..runs).map(|_| merged_drain(size)).collect());
        println!("{size:>12} {:>18.0} {:>18.0} {:>18.0}", s, d, m);
    }
}
