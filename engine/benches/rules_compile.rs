//! What compiling Falco's three upstream rule files together (stable,
//! incubating, sandbox) costs: load + compile time and the resident
//! memory the compiled rules hold. Prints a table; asserts nothing about
//! speed.
//!
//! Run: `cargo bench -p peregrine-engine --bench rules_compile [-- REPEATS]`

mod common;

use std::time::Instant;

use peregrine_engine::rules::{CompiledRules, RulesLoader};
use peregrine_engine::syscall_fields::SyscallFields;

/// Resident memory of this process, in KiB (from /proc/self/statm).
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

fn main() {
    let Some(kit) = common::kit() else {
        println!("SKIP: ../shared/conformance not found");
        return;
    };
    let repeats: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let dir = kit.join("upstream-rules");
    let files = [
        dir.join("falco_rules.yaml"),
        dir.join("falco-incubating_rules.yaml"),
        dir.join("falco-sandbox_rules.yaml"),
    ];
    let compile = || -> CompiledRules<SyscallFields> {
        let mut loader = RulesLoader::new();
        for f in &files {
            loader.load_file(f);
        }
        let rules = loader.compile(SyscallFields::new());
        assert!(!loader.has_errors(), "the upstream files must load");
        rules
    };
    let mut times = Vec::new();
    for _ in 0..repeats {
        let start = Instant::now();
        let rules = compile();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        drop(rules);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let before = rss_kib();
    let kept: Vec<_> = (0..4).map(|_| compile()).collect();
    let per_copy = (rss_kib().saturating_sub(before)) as f64 / 4.0 / 1024.0;
    println!(
        "| rule files | rules | load+compile ms (median of {repeats}) | MiB per compiled set |"
    );
    println!("|---|---|---|---|");
    println!(
        "| stable + incubating + sandbox | {} | {:.1} | {:.2} |",
        kept[0].rules().len(),
        times[times.len() / 2],
        per_copy
    );
}
