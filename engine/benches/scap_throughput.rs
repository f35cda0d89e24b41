//! Events per second read from a large capture, decoded, applied to state
//! and filtered on `evt.type = open` through the field source, side by
//! side with `sysdig -r FILE -q 'evt.type=open'` on the same file.
//!
//! The large capture repeats the events of a kit capture (timestamps
//! shifted) after its tables. Run: `cargo bench -p peregrine-engine
//! --bench scap_throughput [-- REPEATS]`.

mod common;

use peregrine_engine::field::{FieldSource, Value};
use peregrine_engine::scap::Capture;
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn source_capture() -> Option<PathBuf> {
    let p = common::kit()?.join("captures/curl_google.scap");
    p.exists().then_some(p)
}

fn peregrine_pass(path: &Path) -> (Duration, u64, u64) {
    let start = Instant::now();
    let cap = Capture::open(path).unwrap();
    let mut state = State::from_capture(&cap);
    let mut fields = SyscallFields::new();
    let evt_type = fields.resolve("evt.type", None).unwrap();
    let (mut n, mut opens) = (0u64, 0u64);
    for ev in cap.events() {
        let ev = ev.unwrap();
        state.apply(&ev);
        let e = SyscallEvent {
            event: &ev,
            state: &state,
        };
        let mut out = Vec::with_capacity(1);
        fields.extract(&evt_type, &e, &mut out);
        if matches!(out.first(), Some(Value::Str(s)) if s == "open") {
            opens += 1;
        }
        n += 1;
    }
    (start.elapsed(), n, opens)
}

/// Reading and decoding alone, to show what state tracking costs.
fn decode_pass(path: &Path) -> (Duration, u64) {
    let start = Instant::now();
    let cap = Capture::open(path).unwrap();
    let mut n = 0u64;
    let mut params = 0u64;
    for ev in cap.events() {
        let ev = ev.unwrap();
        params += u64::from(ev.nparams);
        n += 1;
    }
    assert!(params > 0);
    (start.elapsed(), n)
}

fn main() {
    let repeats: u64 = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(300);
    let Some(src_path) = source_capture() else {
        println!("SKIP: ../shared/conformance/captures/curl_google.scap not found");
        return;
    };
    let src = Capture::open(&src_path).unwrap();
    let large = std::env::temp_dir().join(format!("peregrine-bench-{}.scap", std::process::id()));
    let events = common::build_large(&src, repeats, &large);
    let size = std::fs::metadata(&large).map(|m| m.len()).unwrap_or(0);
    println!(
        "capture: {} events, {:.1} MB (curl_google x{repeats}, uncompressed)",
        events,
        size as f64 / 1e6
    );

    let runs = 5;
    let mut ours = Vec::new();
    let mut opens = 0;
    for _ in 0..runs {
        let (d, n, o) = peregrine_pass(&large);
        assert_eq!(n, events);
        opens = o;
        ours.push(d);
    }
    let ours = common::median(ours);
    let decode = common::median((0..runs).map(|_| decode_pass(&large).0).collect());
    let mut theirs = Vec::new();
    for _ in 0..3 {
        match common::sysdig_pass(&large, "evt.type=open") {
            Some(d) => theirs.push(d),
            None => break,
        }
    }
    println!(
        "{:<44} {:>10} {:>14}",
        "reader (median)", "wall ms", "events/s"
    );
    println!(
        "{:<44} {:>10.1} {:>14.0}",
        "peregrine read+decode+state+evt.type",
        ours.as_secs_f64() * 1e3,
        events as f64 / ours.as_secs_f64()
    );
    println!(
        "{:<44} {:>10.1} {:>14.0}",
        "peregrine read+decode only",
        decode.as_secs_f64() * 1e3,
        events as f64 / decode.as_secs_f64()
    );
    if theirs.is_empty() {
        println!("sysdig: not available");
    } else {
        let t = common::median(theirs);
        println!(
            "{:<44} {:>10.1} {:>14.0}",
            "sysdig -r F -q 'evt.type=open'",
            t.as_secs_f64() * 1e3,
            events as f64 / t.as_secs_f64()
        );
    }
    println!("open events seen: {opens}");
    let _ = std::fs::remove_file(&large);
}
