//! Events per second through decode + state + rule evaluation with whole
//! rule files loaded (Falco's default rules 1.0.1, current upstream, and
//! Peregrine's own), on one core over a large capture; current upstream
//! again with the processes in 16 containers whose metadata is known (the
//! cost of container fields); a single filter
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
use peregrine_engine::state::containers::{ContainerInfo, ContainerKind};
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

/// Where the pass's processes run: on the host, as the capture has them,
/// or spread over containers the runtime has already described (so every
/// `container.*` field is a lookup in the container table).
#[derive(Clone, Copy, PartialEq)]
enum Placement {
    Host,
    KnownContainers,
}

const CONTAINERS: usize = 16;

fn container_id(i: usize) -> String {
    format!("{:012x}", 0xc0ffee000000u64 + i as u64)
}

fn describe_containers(state: &mut State) {
    for i in 0..CONTAINERS {
        let id = container_id(i);
        state.containers.insert(ContainerInfo {
            full_id: format!("{id}{}", "0".repeat(52)),
            id,
            kind: ContainerKind::Containerd,
            name: format!("app-{i}"),
            image: format!("registry.example/team/app-{i}:1.{i}"),
            image_repository: format!("registry.example/team/app-{i}"),
            image_tag: format!("1.{i}"),
            ..ContainerInfo::default()
        });
    }
}

/// Moves the thread of `tid` into a container when it is on the host:
/// once per thread, as the capture's processes were made on the host.
fn containerize(state: &mut State, tid: i64) {
    let Some(t) = state.thread(tid).filter(|t| t.container_id == "host") else {
        return;
    };
    let mut t = t.clone();
    t.container_id = container_id(t.pid.unsigned_abs() as usize % CONTAINERS);
    state.insert_thread(t);
}

/// One pass: every event decoded, applied to state and run through the rules.
fn rules_pass(rules_file: &Path, path: &Path, placement: Placement) {
    let mut rules = compile(&[rules_file]);
    let start = Instant::now();
    let mut capture = Capture::open(path).unwrap();
    let mut state = State::from_capture(&capture);
    if placement == Placement::KnownContainers {
        describe_containers(&mut state);
    }
    let (mut n, mut matches) = (0u64, 0u64);
    let mut events = capture.events();
    while let Some(event) = events.next() {
        let event = event.unwrap();
        state.apply(&event);
        if placement == Placement::KnownContainers {
            containerize(&mut state, event.tid as i64);
        }
        matches += rules.evaluate(&SyscallEvent::new(&event, &state), |_, _| {}) as u64;
        n += 1;
    }
    let ns = start.elapsed().as_nanos();
    println!("events={n} matches={matches} loop_ns={ns}");
}

fn filter_pass(text: &str, path: &Path, placement: Placement) {
    let mut filter = Filter::new(text, SyscallFields::new()).unwrap();
    let start = Instant::now();
    let mut capture = Capture::open(path).unwrap();
    let mut state = State::from_capture(&capture);
    if placement == Placement::KnownContainers {
        describe_containers(&mut state);
    }
    let (mut n, mut kept) = (0u64, 0u64);
    let mut events = capture.events();
    while let Some(event) = events.next() {
        let event = event.unwrap();
        state.apply(&event);
        if placement == Placement::KnownContainers {
            containerize(&mut state, event.tid as i64);
        }
        kept += u64::from(filter.matches(&SyscallEvent::new(&event, &state)));
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

/// A condition that reads a container field on every event.
const CONTAINER_FILTER: &str = "container.image.repository startswith registry.example/";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--pass") {
        let path = Path::new(&args[i + 3]);
        match args[i + 1].as_str() {
            "rules" => rules_pass(Path::new(&args[i + 2]), path, Placement::Host),
            "rules-containers" => {
                rules_pass(Path::new(&args[i + 2]), path, Placement::KnownContainers)
            }
            "filter" => filter_pass(&args[i + 2], path, Placement::Host),
            "filter-containers" => filter_pass(&args[i + 2], path, Placement::KnownContainers),
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
            "falco_rules.yaml, in 16 known containers",
            vec!["rules-containers".as_ref(), upstream.as_os_str()],
        ),
        (
            "peregrine_rules.yaml (our defaults)",
            vec!["rules".as_ref(), ours.as_os_str()],
        ),
        (
            "peregrine filter (one condition)",
            vec!["filter".as_ref(), FILTER.as_ref()],
        ),
        (
            "filter container.image.repository, 16 known",
            vec!["filter-containers".as_ref(), CONTAINER_FILTER.as_ref()],
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
    // Issue 16's bound: known containers move the throughput by < 5%.
    let loop_rate = |i: usize| {
        let ns = common::median_u64(
            results[i]
                .iter()
                .map(|r| common::reported(r, "loop_ns"))
                .collect(),
        );
        events as f64 / (ns as f64 / 1e9)
    };
    println!(
        "falco_rules.yaml: loop ev/s in known containers / on the host: {:.3}x",
        loop_rate(2) / loop_rate(1)
    );
    if theirs.is_empty() {
        println!("sysdig: not available");
    } else {
        common::row("sysdig -r F -q (same condition)", events, &theirs, None);
        common::ratios("filter", &results[4], &theirs);
    }
    let _ = std::fs::remove_file(&large);
}
