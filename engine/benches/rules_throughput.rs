//! Events per second through decode + state + rule evaluation with whole
//! rule files loaded (Falco's default rules 1.0.1, current upstream, and
//! Peregrine's own), on one core over a large capture; a single filter
//! side by side with sysdig filtering the same file; and the memory the
//! compiled rules take. Prints a table; asserts nothing about speed.
//!
//! Run: `cargo bench -p peregrine-engine --bench rules_throughput [-- REPEATS]`

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

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
fn rules_pass(path: &Path, rules: &mut CompiledRules<SyscallFields>) -> (Duration, u64, u64) {
    let start = Instant::now();
    let capture = Capture::open(path).unwrap();
    let mut state = State::from_capture(&capture);
    let (mut events, mut matches) = (0u64, 0u64);
    for event in capture.events() {
        let event = event.unwrap();
        state.apply(&event);
        matches += rules.evaluate(
            &SyscallEvent {
                event: &event,
                state: &state,
            },
            |_, _| {},
        ) as u64;
        events += 1;
    }
    (start.elapsed(), events, matches)
}

fn filter_pass(path: &Path, text: &str) -> (Duration, u64) {
    let start = Instant::now();
    let capture = Capture::open(path).unwrap();
    let mut state = State::from_capture(&capture);
    let mut filter = Filter::new(text, SyscallFields::new()).unwrap();
    let mut kept = 0u64;
    for event in capture.events() {
        let event = event.unwrap();
        state.apply(&event);
        kept += u64::from(filter.matches(&SyscallEvent {
            event: &event,
            state: &state,
        }));
    }
    (start.elapsed(), kept)
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

fn main() {
    let repeats: u64 = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(300);
    let Some(kit) = common::kit() else {
        println!("SKIP: ../shared/conformance not found");
        return;
    };
    let regression = kit.join("falco-regression/falco_rules-1.0.1.yaml");
    let upstream = kit.join("upstream-rules/falco_rules.yaml");
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/peregrine_rules.yaml");

    // Memory first, before the capture is in memory.
    let before = resident_kib();
    let loaded = [
        compile(&[&regression]),
        compile(&[&upstream]),
        compile(&[&ours]),
    ];
    let after = resident_kib();
    let rule_count: usize = loaded.iter().map(|r| r.rules().len()).sum();
    drop(loaded);

    let src = Capture::open(kit.join("captures/curl_google.scap")).unwrap();
    let large =
        std::env::temp_dir().join(format!("peregrine-rules-bench-{}.scap", std::process::id()));
    let events = common::build_large(&src, repeats, &large);
    println!("capture: {events} events (curl_google x{repeats}); one core; medians of 3 passes");
    println!(
        "rules compiled: {rule_count} (three rule sets), resident memory {:.1} MiB -> {:.1} MiB",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    println!(
        "{:<52} {:>10} {:>14} {:>9}",
        "pass", "wall ms", "events/s", "matches"
    );
    for (name, file) in [
        ("falco_rules-1.0.1.yaml (regression suite's)", &regression),
        ("falco_rules.yaml (upstream, current)", &upstream),
        ("peregrine_rules.yaml (our defaults)", &ours),
    ] {
        let mut rules = compile(&[file]);
        let mut times = Vec::new();
        let mut matches = 0;
        for _ in 0..3 {
            let (d, n, m) = rules_pass(&large, &mut rules);
            assert_eq!(n, events);
            matches = m;
            times.push(d);
        }
        let t = common::median(times);
        println!(
            "{name:<52} {:>10.1} {:>14.0} {matches:>9}",
            t.as_secs_f64() * 1e3,
            events as f64 / t.as_secs_f64()
        );
    }
    let filter = "evt.type=open and proc.name=curl and fd.name contains /etc";
    let mut times = Vec::new();
    let mut kept = 0;
    for _ in 0..3 {
        let (d, k) = filter_pass(&large, filter);
        kept = k;
        times.push(d);
    }
    let ours_t = common::median(times);
    println!(
        "{:<52} {:>10.1} {:>14.0} {kept:>9}",
        "peregrine filter (one condition)",
        ours_t.as_secs_f64() * 1e3,
        events as f64 / ours_t.as_secs_f64()
    );
    let theirs: Vec<_> = (0..3)
        .filter_map(|_| common::sysdig_pass(&large, filter))
        .collect();
    if theirs.is_empty() {
        println!("sysdig: not available");
    } else {
        let t = common::median(theirs);
        println!(
            "{:<52} {:>10.1} {:>14.0}",
            "sysdig -r F -q (same condition)",
            t.as_secs_f64() * 1e3,
            events as f64 / t.as_secs_f64()
        );
        println!(
            "ratio sysdig/peregrine wall time: {:.2}x",
            t.as_secs_f64() / ours_t.as_secs_f64()
        );
    }
    let _ = std::fs::remove_file(&large);
}
