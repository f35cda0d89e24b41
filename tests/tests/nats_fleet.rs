//! `nats_output` and `peregrine fleet` against a real three-node NATS
//! cluster with JetStream, on loopback: nodes publish while a NATS node is
//! killed, while the whole cluster is down, and across a Peregrine restart
//! with alerts left in its spool. At the end the stream must hold every
//! alert exactly once and `fleet` must count each node's alerts right.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use peregrine_tests::nats::{
    node_config, read_stream, server_available, spool_pending, stream_exists, Cluster,
};
use peregrine_tests::nodes::{audit_file, finish, node_run, POD_CREATED_RULES as RULES};
use peregrine_tests::peregrine_binary;

fn config(dir: &Path, cluster: &Cluster, node: &str, shutdown_ms: u64) -> PathBuf {
    node_config(dir, cluster, node, "ALERTS", "alerts", shutdown_ms)
}

#[test]
fn every_alert_reaches_the_stream_once_through_outages_and_restarts() {
    if !server_available() {
        eprintln!("skipped: nats-server is not installed (Debian package nats-server)");
        return;
    }
    let binary = peregrine_binary().unwrap();
    let scratch = std::env::temp_dir().join(format!("peregrine-nats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let dir = scratch.as_path();
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let mut cluster = Cluster::new(dir);
    cluster.start_all();

    // Node A publishes 3,000 alerts; one NATS node dies under it.
    let a_config = config(dir, &cluster, "node-a", 60_000);
    let a = node_run(
        &binary,
        &rules,
        &a_config,
        "node-a",
        &audit_file(dir, "a.json", 0, 3000),
    );
    // The kill waits for node-a to have made its stream: a three-replica
    // stream cannot be created with a node down, and on a slow machine the
    // cluster may still be electing its leader 800 ms after the start.
    let started = Instant::now();
    while !stream_exists(&cluster, "ALERTS") && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        stream_exists(&cluster, "ALERTS"),
        "node-a made no stream on the full cluster in 60 s"
    );
    cluster.kill(0);
    finish(a, "node-a");
    // A stop waits a bounded time for acknowledgements (a NATS leader
    // election can outlast it); what is left goes out at the next start.
    let empty = audit_file(dir, "none.json", 0, 0);
    for _ in 0..5 {
        if spool_pending(dir, "node-a") == 0 {
            break;
        }
        let again = node_run(&binary, &rules, &a_config, "node-a", &empty);
        finish(again, "node-a again");
    }
    assert_eq!(
        spool_pending(dir, "node-a"),
        0,
        "node-a's spool never drained"
    );
    cluster.start(0);

    // Node B publishes while the whole cluster is down for ten seconds,
    // and stops before it comes back: its alerts stay in its spool.
    cluster.kill_all();
    let down = Instant::now();
    let b_config = config(dir, &cluster, "node-b", 500);
    let b = node_run(
        &binary,
        &rules,
        &b_config,
        "node-b",
        &audit_file(dir, "b.json", 10_000, 2000),
    );
    finish(b, "node-b while the cluster is down");
    assert!(
        spool_pending(dir, "node-b") > 0,
        "node-b's alerts should wait in its spool"
    );
    std::thread::sleep(Duration::from_secs(10).saturating_sub(down.elapsed()));
    cluster.start_all();

    // Node B again, with its spool from the first run and 50 new alerts.
    let b_config = config(dir, &cluster, "node-b", 60_000);
    let b = node_run(
        &binary,
        &rules,
        &b_config,
        "node-b",
        &audit_file(dir, "b2.json", 20_000, 50),
    );
    finish(b, "node-b restarted");
    for _ in 0..5 {
        if spool_pending(dir, "node-b") == 0 {
            break;
        }
        let again = node_run(&binary, &rules, &b_config, "node-b", &empty);
        finish(again, "node-b again");
    }
    assert_eq!(
        spool_pending(dir, "node-b"),
        0,
        "node-b's spool never drained"
    );

    // The other end: every node's alerts, each once.
    let mut fleet = Command::new(&binary);
    fleet.args(["fleet", "--stream", "ALERTS", "--json", "--idle-exit", "3"]);
    for url in cluster.urls() {
        fleet.args(["--server", &url]);
    }
    let out = fleet.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fleet printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(summary["nodes"]["node-a"]["alerts"], 3000, "{summary}");
    assert_eq!(summary["nodes"]["node-b"]["alerts"], 2050, "{summary}");
    assert_eq!(summary["duplicates"], 0, "{summary}");
    assert_eq!(summary["messages"], 5050, "{summary}");
    drop(cluster);
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Several nodes start at the same moment against a stream that does not
/// exist yet, as a fleet does after a cluster is set up: each may try to
/// create it. Every node must leave with its spool empty (a stop waits
/// `shutdown_timeout_ms` for the acknowledgements, not the outputs' 5 s
/// shutdown deadline), and the stream must hold each node's alerts, every
/// one once by id, read back by the NATS client itself and by `fleet`.
#[test]
fn nodes_starting_together_put_every_alert_in_a_new_stream_once() {
    if !server_available() {
        eprintln!("skipped: nats-server is not installed (Debian package nats-server)");
        return;
    }
    let binary = peregrine_binary().unwrap();
    let scratch = std::env::temp_dir().join(format!("peregrine-nats-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let dir = scratch.as_path();
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let per_node = 10_000;
    let nodes: Vec<String> = (0..4).map(|i| format!("node-{i}")).collect();
    let audit = audit_file(dir, "race.json", 0, per_node);
    let mut cluster = Cluster::new(dir);
    let configs: Vec<PathBuf> = nodes
        .iter()
        .map(|n| node_config(dir, &cluster, n, "RACE", "race", 120_000))
        .collect();
    let runs: Vec<Child> = nodes
        .iter()
        .zip(&configs)
        .map(|(n, c)| node_run(&binary, &rules, c, n, &audit))
        .collect();
    // The cluster comes up once the nodes have replayed their alerts and
    // are stopping: each stop must wait for the stream (up to its
    // shutdown_timeout_ms), and the nodes all reach it, and try to create
    // the stream, at the same moment.
    std::thread::sleep(Duration::from_secs(8));
    cluster.start_all();
    let mut logs = String::new();
    for (run, node) in runs.into_iter().zip(&nodes) {
        let out = finish(run, node);
        logs.push_str(&format!(
            "--- {node}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    for node in &nodes {
        assert_eq!(
            spool_pending(dir, node),
            0,
            "{node} stopped with alerts not acknowledged\n{logs}"
        );
    }
    let contents = read_stream(&cluster, "RACE").unwrap();
    let expected: std::collections::BTreeMap<String, u64> =
        nodes.iter().map(|n| (n.clone(), per_node as u64)).collect();
    assert_eq!(contents.per_node(), expected, "{logs}");
    assert_eq!(contents.stored, (per_node * nodes.len()) as u64, "{logs}");
    assert_eq!(contents.repeated_or_missing_ids(), (0, 0), "{logs}");

    // `peregrine fleet` counts the same.
    let mut fleet = Command::new(&binary);
    fleet.args(["fleet", "--stream", "RACE", "--json", "--idle-exit", "3"]);
    for url in cluster.urls() {
        fleet.args(["--server", &url]);
    }
    let out = fleet.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for node in &nodes {
        assert_eq!(summary["nodes"][node]["alerts"], per_node, "{summary}");
    }
    assert_eq!(summary["unique"], per_node * nodes.len(), "{summary}");
    assert_eq!(summary["duplicates"], 0, "{summary}");
    drop(cluster);
    let _ = std::fs::remove_dir_all(&scratch);
}
