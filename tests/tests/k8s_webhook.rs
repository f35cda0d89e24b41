//! The Kubernetes audit webhook, end to end: `peregrine` listens on
//! loopback, a concurrent client POSTs audit events, and every event must
//! be evaluated (the closing summary counts them) with no alert lost.

use std::sync::mpsc;
use std::time::Instant;

use peregrine_tests::webhook::{audit_event, post, start, stop};

const RULES: &str = r#"
- rule: Pod Created
  desc: a pod was created
  condition: ka.verb = create and ka.target.resource = pods
  output: pod created (user=%ka.user.name pod=%ka.target.name ns=%ka.target.namespace)
  priority: WARNING
  source: k8s_audit
  tags: [k8s]
"#;

fn count(stdout: &str, label: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no '{label}' in:\n{stdout}"))
}

#[test]
fn ten_thousand_audit_events_are_all_evaluated() {
    let dir = std::env::temp_dir().join(format!("peregrine-webhook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let running = start(&rules);
    let url = running.url.clone();

    // A bad body is refused and the server keeps going.
    assert_eq!(post(&url, "{not json"), 400);

    let clients = 8;
    let per_client = 1250;
    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (url, tx) = (url.clone(), tx.clone());
            std::thread::spawn(move || {
                for k in 0..per_client {
                    let i = c * per_client + k;
                    // Every third event is a `get`, which the rule ignores.
                    let verb = if i % 3 == 0 { "get" } else { "create" };
                    let started = Instant::now();
                    let status = post(&url, &audit_event(i, verb));
                    tx.send((status, started.elapsed())).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for t in threads {
        t.join().unwrap();
    }
    let mut latencies = Vec::new();
    for (status, latency) in rx {
        assert_eq!(status, 200, "an event was refused");
        latencies.push(latency);
    }
    let total = clients * per_client;
    assert_eq!(latencies.len(), total);
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    println!(
        "webhook: {total} events from {clients} clients; latency p50 {:?} p90 {:?} p99 {:?} max {:?}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        latencies[latencies.len() - 1]
    );

    let (stdout, _stderr) = stop(running);
    let creates = (0..total).filter(|i| i % 3 != 0).count() as u64;
    let alerts = stdout
        .lines()
        .filter(|l| l.contains("\"rule\":\"Pod Created\""))
        .count() as u64;
    assert_eq!(alerts, creates, "alerts printed");
    assert_eq!(count(&stdout, "Events detected:"), creates);
    assert_eq!(count(&stdout, "Pod Created:"), creates);
}
