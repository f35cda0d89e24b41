//! `kafka_output` against a real Kafka broker (tansu, on loopback): nodes
//! publish while the broker is killed under them, while it is down for ten
//! seconds, across a Peregrine restart with alerts left in its spool, and
//! after a crash between a send and its acknowledgement. At the end the
//! topic must hold every alert exactly once, by id, under its node's key.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use peregrine_tests::kafka::{
    broker_binary, node_config, read_topic, read_topic_with, socat_available, Access, Broker,
};
use peregrine_tests::nats::{spool_dir, spool_pending};
use peregrine_tests::nodes::{audit_file, finish, node_run, POD_CREATED_RULES as RULES};
use peregrine_tests::peregrine_binary;
use peregrine_tests::pki::make_pki;

const TOPIC: &str = "alerts";

/// Runs the node with no new alerts until its spool is empty (a stop waits
/// a bounded time; what is left goes out at the next start).
fn drain(binary: &Path, rules: &Path, config: &Path, dir: &Path, node: &str) -> String {
    let empty = audit_file(dir, "none.json", 0, 0);
    let mut logs = String::new();
    for _ in 0..5 {
        if spool_pending(dir, node) == 0 {
            break;
        }
        let again = finish(node_run(binary, rules, config, node, &empty), node);
        logs.push_str(&String::from_utf8_lossy(&again.stderr));
    }
    assert_eq!(
        spool_pending(dir, node),
        0,
        "{node}'s spool never drained\n{logs}"
    );
    logs
}

/// `peregrine fleet --kafka` on the broker's topic until it has been idle
/// two seconds: its JSON summary, or its error output.
fn fleet_summary(
    binary: &Path,
    broker: &Broker,
    more: &[&str],
) -> Result<serde_json::Value, String> {
    let out = Command::new(binary)
        .args(["fleet", "--json", "--idle-exit", "2", "--kafka"])
        .arg(broker.address())
        .args(["--topic", TOPIC])
        .args(more)
        .output()
        .expect("peregrine fleet runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("fleet's JSON summary: {e}"))
}

#[test]
fn every_alert_reaches_the_topic_once_through_outages_restarts_and_crashes() {
    let Some(tansu) = broker_binary() else {
        eprintln!(
            "skipped: no Kafka broker (cargo install tansu --features libsql, or PEREGRINE_TANSU)"
        );
        return;
    };
    let binary = peregrine_binary().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let mut broker = Broker::new(&tansu, dir);
    broker.start();

    // Node A publishes 3,000 alerts; the broker is killed as A starts
    // sending and comes back two seconds later.
    let a_config = node_config(dir, &broker, "node-a", TOPIC, 60_000, "");
    let a = node_run(
        &binary,
        &rules,
        &a_config,
        "node-a",
        &audit_file(dir, "a.json", 0, 3000),
    );
    let mark = spool_dir(dir, "node-a").join("kafka-mark");
    let started = Instant::now();
    while !mark.exists() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(mark.exists(), "node-a never reached the broker");
    broker.kill();
    std::thread::sleep(Duration::from_secs(2));
    broker.start();
    finish(a, "node-a");
    drain(&binary, &rules, &a_config, dir, "node-a");

    // Node B publishes while the broker is down for ten seconds, and stops
    // before it comes back: its alerts stay in its spool.
    broker.kill();
    let down = Instant::now();
    let b_config = node_config(dir, &broker, "node-b", TOPIC, 500, "");
    let b = node_run(
        &binary,
        &rules,
        &b_config,
        "node-b",
        &audit_file(dir, "b.json", 10_000, 2000),
    );
    finish(b, "node-b while the broker is down");
    assert!(
        spool_pending(dir, "node-b") > 0,
        "node-b's alerts should wait in its spool"
    );
    std::thread::sleep(Duration::from_secs(10).saturating_sub(down.elapsed()));
    broker.start();
    // Node B again, with its spool from the first run and 50 new alerts.
    let b_config = node_config(dir, &broker, "node-b", TOPIC, 60_000, "");
    let b = node_run(
        &binary,
        &rules,
        &b_config,
        "node-b",
        &audit_file(dir, "b2.json", 20_000, 50),
    );
    finish(b, "node-b again");
    drain(&binary, &rules, &b_config, dir, "node-b");

    // Node C sends 500, then "crashes" after its last batch was stored but
    // before the spool heard of it: the last 100 records are unacknowledged
    // again and the mark is back at the partition's start (a mark that
    // lags costs a longer check, never a resend).
    let c_config = node_config(dir, &broker, "node-c", TOPIC, 60_000, "");
    let c = node_run(
        &binary,
        &rules,
        &c_config,
        "node-c",
        &audit_file(dir, "c.json", 30_000, 500),
    );
    finish(c, "node-c");
    drain(&binary, &rules, &c_config, dir, "node-c");
    let spool = spool_dir(dir, "node-c");
    let alerts = std::fs::read(spool.join("alerts")).unwrap();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            alerts
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    assert!(
        line_starts.len() > 101,
        "node-c's spool keeps its sent lines until it is compacted"
    );
    let rewound = line_starts[line_starts.len() - 101];
    std::fs::write(spool.join("acked"), format!("{rewound}\n")).unwrap();
    let mark = std::fs::read_to_string(spool.join("kafka-mark")).unwrap();
    let words: Vec<&str> = mark.split_whitespace().collect();
    std::fs::write(
        spool.join("kafka-mark"),
        format!("{} {} 0\n", words[0], words[1]),
    )
    .unwrap();
    assert!(spool_pending(dir, "node-c") > 0);
    let logs = drain(&binary, &rules, &c_config, dir, "node-c");
    assert!(
        logs.contains("100 alerts sent before their acknowledgement were already stored"),
        "node-c's restart did not find its stored batch:\n{logs}"
    );

    let contents = read_topic(&broker, TOPIC).unwrap();
    let (repeated, missing) = contents.repeated_or_missing_ids();
    assert_eq!((repeated, missing), (0, 0), "ids repeated or missing");
    let per_node = contents.per_node();
    let expected = [("node-a", 3000), ("node-b", 2050), ("node-c", 500)];
    assert_eq!(
        per_node,
        expected.iter().map(|&(n, c)| (n.to_string(), c)).collect(),
        "alerts per node in the topic"
    );
    assert!(
        contents.records.iter().all(|(_, key, host)| key == host),
        "every record's key is its node's hostname"
    );

    // `peregrine fleet --kafka` counts the same, and with an offsets file a
    // second run resumes past what the first read.
    let offsets = dir.join("fleet-offsets");
    let offsets = offsets.to_str().unwrap();
    let fleet = |what: &str| {
        fleet_summary(&binary, &broker, &["--kafka-offsets", offsets])
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    };
    let first = fleet("fleet");
    for (node, count) in expected {
        assert_eq!(first["nodes"][node]["alerts"], count, "fleet: {node}");
    }
    assert_eq!(first["duplicates"], 0);
    assert_eq!(first["messages"], 5550);
    let again = fleet("fleet resumed");
    assert_eq!(again["messages"], 0, "a resumed fleet reads nothing twice");
}

#[test]
fn alerts_go_over_tls_with_scram_and_wait_in_the_spool_when_refused() {
    let Some(tansu) = broker_binary() else {
        eprintln!(
            "skipped: no Kafka broker (cargo install tansu --features libsql, or PEREGRINE_TANSU)"
        );
        return;
    };
    if !socat_available() {
        eprintln!("skipped: socat is not installed (Debian package socat), to terminate TLS");
        return;
    }
    let binary = peregrine_binary().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let pki = make_pki();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca = write("ca.crt", &pki.ca);
    let cert = write("server.crt", &pki.server_cert);
    let key = write("server.key", &pki.server_key);

    // The user is made while the broker is open, then it asks for TLS and
    // SCRAM-SHA-512 from everyone.
    let mut broker = Broker::new(&tansu, dir);
    broker.start();
    broker.create_user("peregrine", "s3cret");
    broker.kill();
    broker.tls = Some((cert, key));
    broker.authentication = true;
    broker.start();

    let secure = |password: &str| {
        format!(
            "  tls_ca: {}\n  sasl_mechanism: SCRAM-SHA-512\n  user: peregrine\n  password: {password}\n",
            ca.display()
        )
    };
    // A wrong password: nothing is stored, the alerts wait in the spool.
    let refused = node_config(dir, &broker, "node-s", TOPIC, 500, &secure("wrong"));
    let run = finish(
        node_run(
            &binary,
            &rules,
            &refused,
            "node-s",
            &audit_file(dir, "s.json", 0, 200),
        ),
        "node-s with a wrong password",
    );
    let logs = String::from_utf8_lossy(&run.stderr);
    assert!(
        spool_pending(dir, "node-s") > 0,
        "refused alerts must stay in the spool"
    );
    assert!(
        logs.contains("kafka_output:") && logs.to_lowercase().contains("sasl"),
        "{logs}"
    );
    // Without TLS the broker is not reached either.
    let plain = node_config(
        dir,
        &broker,
        "node-p",
        TOPIC,
        500,
        "  sasl_mechanism: SCRAM-SHA-512\n  user: peregrine\n  password: s3cret\n",
    );
    finish(
        node_run(
            &binary,
            &rules,
            &plain,
            "node-p",
            &audit_file(dir, "p.json", 0, 10),
        ),
        "node-p without TLS",
    );
    assert!(
        spool_pending(dir, "node-p") > 0,
        "alerts sent without TLS must stay in the spool"
    );

    // The right password: the spool of the refused run goes out with the
    // new alerts.
    let accepted = node_config(dir, &broker, "node-s", TOPIC, 60_000, &secure("s3cret"));
    finish(
        node_run(
            &binary,
            &rules,
            &accepted,
            "node-s",
            &audit_file(dir, "s2.json", 1000, 50),
        ),
        "node-s with the right password",
    );
    assert_eq!(spool_pending(dir, "node-s"), 0);
    let access = Access {
        ca: Some(pki.ca.clone()),
        scram512: Some(("peregrine".into(), "s3cret".into())),
    };
    let contents = read_topic_with(&broker, TOPIC, &access).unwrap();
    assert_eq!(contents.repeated_or_missing_ids(), (0, 0));
    assert_eq!(contents.per_node().get("node-s"), Some(&250));
    let ca_path = ca.to_str().unwrap();
    let secure_fleet = |password: &str| {
        fleet_summary(
            &binary,
            &broker,
            &[
                "--tls-ca",
                ca_path,
                "--sasl-mechanism",
                "SCRAM-SHA-512",
                "--user",
                "peregrine",
                "--password",
                password,
            ],
        )
    };
    let summary = secure_fleet("s3cret").unwrap();
    assert_eq!(summary["nodes"]["node-s"]["alerts"], 250);
    let refused = secure_fleet("wrong").unwrap_err();
    assert!(refused.to_lowercase().contains("sasl"), "{refused}");
    assert!(
        read_topic(&broker, TOPIC).is_err(),
        "the topic is closed to a client without TLS"
    );
}
