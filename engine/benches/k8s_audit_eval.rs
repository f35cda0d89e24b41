//! Throughput of rule evaluation: the upstream k8s audit rules against the
//! regression suite's audit events. Prints a table; run with
//! `cargo bench -p peregrine-engine --bench k8s_audit_eval`.

use std::path::PathBuf;
use std::time::Instant;

use peregrine_engine::k8s_audit::{events_from_json, K8sAuditSource};
use peregrine_engine::rules::RulesLoader;

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance");
    if !dir.is_dir() {
        println!("SKIP: ../shared/conformance not found; benchmark not run");
        return;
    }
    let mut loader = RulesLoader::new();
    let t = Instant::now();
    loader.load_file(dir.join("upstream-rules/k8s_audit_rules.yaml"));
    let mut rules = loader.compile(K8sAuditSource::new());
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut events = Vec::new();
    for entry in std::fs::read_dir(dir.join("falco-regression/trace_files/k8s_audit"))
        .unwrap()
        .flatten()
    {
        if let Ok(text) = std::fs::read_to_string(entry.path()) {
            if let Ok(evs) = events_from_json(&text) {
                events.extend(evs);
            }
        }
    }
    let rounds = 2000;
    let mut matched = 0usize;
    let t = Instant::now();
    for _ in 0..rounds {
        for ev in &events {
            matched += rules.evaluate(&ev, |_, _| {});
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let n = (rounds * events.len()) as f64;
    println!("| what | value |");
    println!("| --- | --- |");
    println!("| rules compiled | {} |", rules.rules().len());
    println!("| load + compile | {load_ms:.1} ms |");
    println!("| events evaluated | {} |", rounds * events.len());
    println!("| matches | {matched} |");
    println!("| throughput | {:.0} events/s |", n / secs);
    println!("| per event | {:.2} us |", secs * 1e6 / n);
}
