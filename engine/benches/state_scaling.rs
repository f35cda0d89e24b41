//! How the cost per event and the memory grow with the work: curves, one
//! row per point, each point a process of its own (so its peak memory is
//! its own), medians of the rounds.
//!
//! - rules: 10 to 2,000 rules loaded, all but 10 on event types the
//!   capture does not have (what a large rule set mostly is for any one
//!   event). The goal is a flat curve: a rule that cannot match the event
//!   type costs nothing.
//! - threads: 1k to 200k idle threads in the table besides the capture's
//!   own, then the capture; per-event cost and peak memory. With the
//!   default table size (131,072) the largest points evict, so memory
//!   stops growing at the bound (threads are boxed: the table's buckets,
//!   a power of two, hold pointers, not threads).
//! - fds: one process holding 1k to 1M open fds (its table bound raised to
//!   hold them all), then the same with the default bound (4,096): memory
//!   is linear in what is held and flat at the bound.
//!
//! Run: `cargo bench -p peregrine-engine --bench state_scaling [-- ROUNDS]`

mod common;

use std::path::Path;
use std::time::Instant;

use peregrine_engine::rules::{CompiledRules, RulesLoader};
use peregrine_engine::scap::Capture;
use peregrine_engine::state::{Fd, FdKind, State, Thread};
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

/// Event types absent from the capture, for the rules that cannot match.
const OTHER_TYPES: &[&str] = &[
    "ptrace",
    "init_module",
    "finit_module",
    "delete_module",
    "setns",
    "unshare",
    "mount",
    "umount2",
    "bpf",
    "pivot_root",
    "chroot",
    "kill",
    "tgkill",
    "memfd_create",
    "userfaultfd",
    "kexec_load",
    "mkdirat",
    "unlinkat",
    "renameat2",
    "fchmodat",
];

/// The rules that may match the capture's events.
const MATCHING: usize = 10;

fn rules_text(count: usize) -> String {
    let mut text = String::new();
    for i in 0..count {
        let condition = if i < MATCHING {
            // Types the capture has; conditions that read state and fds.
            let ty = ["open", "openat", "connect", "read", "write"][i % 5];
            format!("evt.type = {ty} and proc.name = curl and fd.name contains /never{i}")
        } else {
            let ty = OTHER_TYPES[i % OTHER_TYPES.len()];
            format!(
                "evt.type = {ty} and proc.name in (tool{i}, other{i}) and fd.name startswith /x{i}"
            )
        };
        text.push_str(&format!(
            "- rule: rule {i}\n  desc: scaling rule {i}\n  condition: {condition}\n  \
             output: \"rule {i} %proc.name %fd.name\"\n  priority: WARNING\n\n"
        ));
    }
    text
}

fn compile_text(text: &str) -> CompiledRules<SyscallFields> {
    let mut loader = RulesLoader::new();
    loader.load_str("scaling.yaml", text);
    let rules = loader.compile(SyscallFields::new());
    assert!(
        !loader.has_errors(),
        "{:?}",
        loader.results().iter().flat_map(|r| &r.errors).next()
    );
    rules
}

/// Decode, state and rules over the capture; prints the loop's time.
fn run_capture(state: &mut State, rules: &mut CompiledRules<SyscallFields>, capture: &Path) {
    let mut capture = Capture::open(capture).unwrap();
    let start = Instant::now();
    let (mut n, mut matches) = (0u64, 0u64);
    let mut events = capture.events();
    while let Some(event) = events.next() {
        let event = event.unwrap();
        state.apply(&event);
        matches += rules.evaluate(&SyscallEvent::new(&event, state), |_, _| {}) as u64;
        n += 1;
    }
    let ns = start.elapsed().as_nanos();
    println!(
        "events={n} matches={matches} loop_ns={ns} threads={} evicted={} fds_evicted={}",
        state.thread_count(),
        state.evicted,
        state.fds_evicted
    );
}

fn idle_thread(tid: i64) -> Thread {
    Thread {
        tid,
        pid: tid,
        ptid: 1,
        comm: "worker".into(),
        exe: "/usr/sbin/worker".into(),
        exepath: "/usr/sbin/worker".into(),
        cwd: "/var/lib/worker/".into(),
        container_id: "host".into(),
        ..Thread::default()
    }
}

fn pass(kind: &str, n: usize, bounded: bool, capture: &Path) {
    let mut state = State::from_capture(&Capture::open(capture).unwrap());
    let mut rules = compile_text(&rules_text(if kind == "rules" { n } else { MATCHING }));
    match kind {
        "rules" => {}
        "threads" => {
            if !bounded {
                state.max_threads = n + 1024;
            }
            // Idle threads, seen before every event of the capture.
            for i in 0..n {
                state.insert_thread(idle_thread(10_000_000 + i as i64));
            }
        }
        "fds" => {
            let pid = 9_999_999;
            state.insert_thread(idle_thread(pid));
            if !bounded {
                state.max_fds_per_process = (n + 1).max(state.max_fds_per_process);
            }
            for fd in 0..n as i64 {
                state.insert_fd(
                    pid,
                    fd,
                    Fd::new(FdKind::File, format!("/var/lib/worker/data/{fd:08}.db")),
                );
            }
        }
        other => panic!("unknown pass {other}"),
    }
    run_capture(&mut state, &mut rules, capture);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--pass") {
        let n: usize = args[i + 2].parse().unwrap();
        pass(
            &args[i + 1],
            n,
            args[i + 3] == "bounded",
            Path::new(&args[i + 4]),
        );
        return;
    }
    let rounds: usize = args
        .iter()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(3);
    let Some(kit) = common::kit() else {
        println!("SKIP: ../shared/conformance not found");
        return;
    };
    let repeats = 100;
    let large = std::env::temp_dir().join(format!("peregrine-scaling-{}.scap", std::process::id()));
    let events = common::build_large(&kit.join("captures/curl_google.scap"), repeats, &large);
    println!(
        "capture: {events} events (curl_google x{repeats}); each point a process of its own; \
         medians of {rounds} rounds"
    );
    let curves: &[(&str, &str, &[usize])] = &[
        ("rules", "bounded", &[10, 100, 500, 1000, 2000]),
        (
            "threads",
            "unbounded",
            &[0, 1_000, 10_000, 50_000, 100_000, 200_000],
        ),
        ("threads", "bounded", &[200_000]),
        ("fds", "unbounded", &[0, 1_000, 10_000, 100_000, 1_000_000]),
        ("fds", "bounded", &[1_000_000]),
    ];
    println!(
        "{:<8} {:>10} {:>10} {:>12} {:>10} {:>10} {:>10}",
        "curve", "n", "table", "ns/event", "peak MiB", "evicted", "fds evict"
    );
    for &(kind, bound, points) in curves {
        for &n in points {
            let n_text = n.to_string();
            let mut runs = Vec::new();
            for _ in 0..rounds {
                let run = common::self_pass(&[
                    kind.as_ref(),
                    n_text.as_ref(),
                    bound.as_ref(),
                    large.as_os_str(),
                ]);
                assert_eq!(common::reported(&run, "events"), events);
                runs.push(run);
            }
            let loop_ns = common::median_u64(
                runs.iter()
                    .map(|r| common::reported(r, "loop_ns"))
                    .collect(),
            );
            let rss = runs.iter().filter_map(|r| r.max_rss_kib).max();
            let table = match (kind, bound) {
                ("rules", _) => "-",
                (_, "bounded") => "default",
                _ => "holds all",
            };
            println!(
                "{kind:<8} {n:>10} {table:>10} {:>12.1} {:>10} {:>10} {:>10}",
                loop_ns as f64 / events as f64,
                common::mib(rss),
                common::reported(&runs[0], "evicted"),
                common::reported(&runs[0], "fds_evicted"),
            );
        }
    }
    let _ = std::fs::remove_file(&large);
}
