//! Events per second through decode + state + rule evaluation with whole
//! rule files loaded (Falco's default rules 1.0.1, current upstream, and
//! Peregrine's own), on one core over a large capture; a single filter
//! side by side with sysdig filtering the same file; and the memory the
//! compiled rules take. Every pass is a process of its own, timed whole
//! (rules compiled, start-up included) with its peak resident memory, like
//! sysdig's; "loop ev/s" is the event loop alone. Prints a table; asserts
//! nothing about speed.
//!
//! Run: `cargo bench -p peregrine-engine --bench rules_throughput [-- REPEATS]`

mod common;

use std::path::Path;
use std::time::Instant;

use peregrine_engine::rules::{CompiledRules, Filter, RulesLoader};
use peregrine_engine::scap::Capture;
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

fn compile(files: &[&Path]) -> CompiledRules<SyscallFields> {
    let mut loader = RulesLoader::new();
    for file in files {
        loader.load_file(file);
    }
    let rules = loader.compile(SyscallFields::new());
    assert!(
        !loader.has_errors(),
        "{:?}",
        loader.results().iter().flat_map(|r| &r.errors).next()
    );
    rules
}

/// One pass: every event decoded, applied to state and run through the rules.
fn rules_pass(rules_file: &Path, path: &Path) {
    let mut rules = compile(&[rules_file]);
    let start = Instant::now();
    let mut capture = Capture::open(path).unwrap();
    let mut state = State::from_capture(&capture);
    let (mut n, mut matches) = (0u64, 0u64);
    let mut events = capture.events();
    while let Some(event) = events.next() {
        let event = event.unwrap();
        state.apply(&event);
        matches += rules.evaluate(
            &SyscallEvent {
                event: &event,
                state: &state,
            },
            |_, _| {},
        ) as u64;
        n += 1;
    }
    let ns = start.elapsed().as_nanos();
    println!("events={n} matches={matches} loop_ns={ns}");
}

fn filter_pass(text: &str, path: &Path) {
    let mut filter = Filter::new(text, SyscallFields::new()).unwrap();
    let start = Instant::now();
    let mut capture = Capture::open(path).unwrap();
    let mut state = State::from_capture(&capture);
    let (mut n, mut kept) = (0u64, 0u64);
    let mut events = capture.events();
    while let Some(event) = events.next() {
        let event = event.unwrap();
        state.apply(&event);
        kept += u64::from(filter.matches(&SyscallEvent {
            event: &event,
            state: &state,
        }));
        n += 1;
    }
    let ns = start.elapsed().as_nanos();
    println!("events={n} matches={kept} loop_ns={ns}");
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

const FILTER: &str = "evt.type=open and proc.name=curl and fd.name contains /etc";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--pass") {
        let path = Path::new(&args[i + 3]);
        match args[i + 1].as_str() {
            "rules" => rules_pass(Path::new(&args[i + 2]), path),
            "filter" => filter_pass(&args[i + 2], path),
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
    let Some(kit) = common::kit() else {
        println!("SKIP: ../shared/conformance not found");
        return;
    };
    let regression = kit.join("falco-regression/falco_rules-1.0.1.yaml");
    let upstream = kit.join("upstream-rules/falco_rules.yaml");
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/peregrine_rules.yaml");

    // Memory of the compiled rules alone, in this process.
    let before = resident_kib();
    let loaded = [
        compile(&[&regression]),
        compile(&[&upstream]),
        compile(&[&ours]),
    ];
    let after = resident_kib();
    let rule_count: usize = loaded.iter().map(|r| r.rules().len()).sum();
    drop(loaded);

    let large =
        std::env::temp_dir().join(format!("peregrine-rules-bench-{}.scap", std::process::id()));
    let events = common::build_large(&kit.join("captures/curl_google.scap"), repeats, &large);
    println!(
        "capture: {events} events (curl_google x{repeats}); one core; every pass a whole \
         process; medians of 5, rounds interleaved"
    );
    println!(
        "rules compiled: {rule_count} (three rule sets), resident memory {:.1} MiB -> {:.1} MiB",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    let passes: Vec<(&str, Vec<&std::ffi::OsStr>)> = vec![
        (
            "falco_rules-1.0.1.yaml (regression suite's)",
            vec!["rules".as_ref(), regression.as_os_str()],
        ),
        (
            "falco_rules.yaml (upstream, current)",
            vec!["rules".as_ref(), upstream.as_os_str()],
        ),
        (
            "peregrine_rules.yaml (our defaults)",
            vec!["rules".as_ref(), ours.as_os_str()],
        ),
        (
            "peregrine filter (one condition)",
            vec!["filter".as_ref(), FILTER.as_ref()],
        ),
    ];
    let mut results: Vec<Vec<common::Run>> = passes.iter().map(|_| Vec::new()).collect();
    let mut theirs = Vec::new();
    for _ in 0..5 {
        for (i, (_, pass_args)) in passes.iter().enumerate() {
            let mut a = pass_args.clone();
            a.push(large.as_os_str());
            let r = common::self_pass(&a);
            assert_eq!(common::reported(&r, "events"), events);
            results[i].push(r);
        }
        if let Some(r) = common::sysdig_pass(&large, FILTER) {
            theirs.push(r);
        }
    }
    common::header();
    for ((name, _), runs) in passes.iter().zip(&results) {
        let loop_ns = common::median_u64(
            runs.iter()
                .map(|r| common::reported(r, "loop_ns"))
                .collect(),
        );
        common::row(name, events, runs, Some(loop_ns));
    }
    for ((name, _), runs) in passes.iter().zip(&results) {
        println!("{name}: {} matches", common::reported(&runs[0], "matches"));
    }
    if theirs.is_empty() {
        println!("sysdig: not available");
    } else {
        common::row("sysdig -r F -q (same condition)", events, &theirs, None);
        if let Some(filter_runs) = results.last() {
            common::ratios("filter", filter_runs, &theirs);
        }
    }
    let _ = std::fs::remove_file(&large);
}
