//! A plugin source's event through field extraction and rules, beside the
//! built-in k8s audit source's event through the same shape of rules.
//! Prints a table; run with `cargo bench -p peregrine --bench plugin_source`.
//!
//! The plugin is tests/plugins/c/ctest.c, built with gcc here. Both sides
//! compile RULES rules of two comparisons each (a string equality and a
//! second field), none of which matches, so every rule is evaluated on
//! every event and no output is formatted.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use peregrine::sources::plugins::fields::PluginFields;
use peregrine::sources::plugins::{Batch, Plugin, PluginEvent};
use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::rules::RulesLoader;

const RULES: usize = 10;
const EVENTS: usize = 1000;
const ROUNDS: usize = 50;

fn rules(source: &str, string_field: &str, second: &str) -> String {
    (0..RULES)
        .map(|i| {
            format!(
                "- rule: r{i}\n  desc: d\n  condition: {string_field} = \"nothing {i}\" and {second}\n  output: o\n  priority: INFO\n  source: {source}\n"
            )
        })
        .collect()
}

fn main() {
    let dir = std::env::temp_dir().join(format!("peregrine-plugin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let library = dir.join("libctest.so");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins/c/ctest.c");
    let built = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .status();
    if !matches!(built, Ok(s) if s.success()) {
        println!("SKIP: gcc could not build the C test plugin; benchmark not run");
        return;
    }

    // The plugin side: its own events, its own fields.
    let mut plugin = Plugin::load(&library, &format!("{{\"count\":{EVENTS}}}")).unwrap();
    plugin.open("").unwrap();
    let mut events: Vec<PluginEvent> = Vec::new();
    while plugin.next_batch(&mut events).unwrap() != Batch::Eof {}
    let shared = Arc::new(Mutex::new(plugin));
    let mut loader = RulesLoader::new();
    loader.load_str(
        "plugin.yaml",
        &rules("ctest", "ctest.msg", "ctest.even = true"),
    );
    let mut plugin_rules =
        loader.compile(PluginFields::new("ctest", Some(shared.clone()), &[shared]));
    assert_eq!(plugin_rules.rules().len(), RULES);

    // The k8s audit side: audit events of the same count.
    let audit: Vec<serde_json::Value> = (0..EVENTS)
        .map(|i| {
            serde_json::json!({
                "kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": "create",
                "objectRef": {"resource": "pods", "namespace": "default", "name": format!("p{i}")},
                "user": {"username": "system:admin"}, "stage": "ResponseComplete"
            })
        })
        .collect();
    let mut loader = RulesLoader::new();
    loader.load_str(
        "audit.yaml",
        &rules("k8s_audit", "ka.target.name", "ka.verb = create"),
    );
    let mut audit_rules = loader.compile(K8sAuditSource::new());
    assert_eq!(audit_rules.rules().len(), RULES);

    let mut matched = 0usize;
    let t = Instant::now();
    for _ in 0..ROUNDS {
        for event in &events {
            matched += plugin_rules.evaluate(event, |_, _| {});
        }
    }
    let plugin_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..ROUNDS {
        for event in &audit {
            matched += audit_rules.evaluate(&event, |_, _| {});
        }
    }
    let audit_secs = t.elapsed().as_secs_f64();
    assert_eq!(matched, 0);

    let n = (ROUNDS * EVENTS) as f64;
    let per = |secs: f64| secs * 1e9 / n;
    println!("| source | rules | events | per event | events/s |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| plugin (ctest, C ABI) | {RULES} | {} | {:.0} ns | {:.0} |",
        ROUNDS * EVENTS,
        per(plugin_secs),
        n / plugin_secs
    );
    println!(
        "| built-in k8s_audit | {RULES} | {} | {:.0} ns | {:.0} |",
        ROUNDS * EVENTS,
        per(audit_secs),
        n / audit_secs
    );
    println!(
        "| plugin / k8s_audit | | | {:.2}x | |",
        plugin_secs / audit_secs
    );
    let _ = std::fs::remove_dir_all(&dir);
}
