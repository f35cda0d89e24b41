//! Events per second read from a large capture, decoded, applied to state
//! and filtered on `evt.type = open` (a compiled filter), side by
//! side with `sysdig -r FILE -q 'evt.type=open'` on the same file. Every
//! pass is a process of its own, timed whole (start-up included) with its
//! peak resident memory, like sysdig's.
//!
//! The large capture repeats the events of a kit capture (timestamps
//! shifted) after its tables. Run: `cargo bench -p peregrine-engine
//! --bench scap_throughput [-- REPEATS]`.

mod common;

use peregrine_engine::event::merge::Merger;
use peregrine_engine::rules::Filter;
use peregrine_engine::scap::Capture;
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn source_capture() -> Option<PathBuf> {
    let p = common::kit()?.join("captures/curl_google.scap");
    p.exists().then_some(p)
}

/// Read, decode, merge each syscall's enter into its exit, apply to state,
/// and filter on `evt.type = open` (the condition given to sysdig,
/// compiled the same way `peregrine capture` compiles its filter): what
/// `peregrine -e` does to every event before its rules.
fn state_pass(path: &Path) {
    let start = Instant::now();
    let mut cap = Capture::open(path).unwrap();
    let mut state = State::from_capture(&cap);
    let mut filter = Filter::new("evt.type=open", SyscallFields::new()).unwrap();
    let mut merger = Merger::new();
    let (mut n, mut opens) = (0u64, 0u64);
    let mut events = cap.events();
    while let Some(ev) = events.next() {
        let ev = ev.unwrap();
        n += 1;
        let Some(ev) = merger.push(&ev) else {
            continue;
        };
        state.apply(&ev);
        opens += u64::from(filter.matches(&SyscallEvent::new(&ev, &state)));
    }
    let ns = start.elapsed().as_nanos();
    println!("events={n} matches={opens} loop_ns={ns}");
}

/// Reading and decoding alone, to show what state tracking costs.
fn decode_pass(path: &Path) {
    let start = Instant::now();
    let mut cap = Capture::open(path).unwrap();
    let (mut n, mut params) = (0u64, 0u64);
    let mut events = cap.events();
    while let Some(ev) = events.next() {
        let ev = ev.unwrap();
        params += u64::from(ev.nparams);
        n += 1;
    }
    assert!(params > 0);
    let ns = start.elapsed().as_nanos();
    println!("events={n} matches=0 loop_ns={ns}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--pass") {
        let path = Path::new(&args[i + 2]);
        match args[i + 1].as_str() {
            "state" => state_pass(path),
            "decode" => decode_pass(path),
            // Only writes the large capture, for profiling a pass alone:
            // `--pass build OUT REPEATS`.
            "build" => {
                let src = source_capture().expect("kit capture");
                let repeats = args[i + 3].parse().expect("repeats");
                println!("events={}", common::build_large(&src, repeats, path));
            }
            other => panic!("unknown pass {other}"),
        }
        return;
    }
    let repeats: u64 = args
        .iter()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(2000);
    let Some(src_path) = source_capture() else {
        println!("SKIP: ../shared/conformance/captures/curl_google.scap not found");
        return;
    };
    let large = std::env::temp_dir().join(format!("peregrine-bench-{}.scap", std::process::id()));
    let events = common::build_large(&src_path, repeats, &large);
    let size = std::fs::metadata(&large).map(|m| m.len()).unwrap_or(0);
    println!(
        "capture: {} events, {:.1} MB (curl_google x{repeats}, uncompressed); one core; \
         every pass a whole process; medians of 5, rounds interleaved",
        events,
        size as f64 / 1e6
    );

    let runs = 5;
    let (mut ours, mut decode, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    let mut opens = 0;
    for _ in 0..runs {
        let r = common::self_pass(&["state".as_ref(), large.as_os_str()]);
        assert_eq!(common::reported(&r, "events"), events);
        opens = common::reported(&r, "matches");
        ours.push(r);
        decode.push(common::self_pass(&["decode".as_ref(), large.as_os_str()]));
        if let Some(r) = common::sysdig_pass(&large, "evt.type=open") {
            theirs.push(r);
        }
    }
    common::header();
    let loop_ns = |runs: &[common::Run]| {
        common::median_u64(
            runs.iter()
                .map(|r| common::reported(r, "loop_ns"))
                .collect(),
        )
    };
    common::row(
        "peregrine read+decode+merge+state+filter",
        events,
        &ours,
        Some(loop_ns(&ours)),
    );
    common::row(
        "peregrine read+decode only",
        events,
        &decode,
        Some(loop_ns(&decode)),
    );
    if theirs.is_empty() {
        println!("sysdig: not available");
    } else {
        common::row("sysdig -r F -q 'evt.type=open'", events, &theirs, None);
        common::ratios("decode+state pass", &ours, &theirs);
    }
    println!("open events seen: {opens}");
    let _ = std::fs::remove_file(&large);
}
