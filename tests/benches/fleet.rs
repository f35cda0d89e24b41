//! The fleet pipeline's figures: Peregrine nodes publish their alerts
//! through `nats_output` to a three-node JetStream cluster on loopback, and
//! `peregrine fleet` reads them back.
//!
//!     cargo bench -p peregrine-tests --bench fleet
//!     FLEET_NODES=4 FLEET_ALERTS=20000 FLEET_RATE=500 FLEET_SECONDS=10 \
//!         FLEET_KAFKA_ALERTS=5000 cargo bench -p peregrine-tests --bench fleet
//!
//! Three phases, each printed as a table:
//! 1. throughput: every node replays an audit file of FLEET_ALERTS alerts
//!    at full speed; alerts/s from start until the stream acknowledged the
//!    last one (the node exits only then), and the spool's high-water mark;
//! 2. latency: every node's webhook takes FLEET_RATE alerts/s stamped with
//!    the time they are posted, for FLEET_SECONDS; `peregrine fleet`
//!    reports each node's delivery latency (event time to arrival at the
//!    fleet), p50 and p99;
//! 3. outage: the same load while the whole cluster is down for ten
//!    seconds; the spool's high-water mark, the time it takes to drain once
//!    the cluster is back, and a count of the stream: every alert once.
//!
//! Then the same three phases through `kafka_output` onto one Kafka broker
//! (tansu), where one is installed: the delay is measured from the event
//! time to the record's Kafka timestamp, read back from the topic.
//!
//! Every process it starts talks only to loopback and is stopped at the end.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use peregrine_tests::kafka;
use peregrine_tests::nats::{node_config, server_available, spool_pending, Cluster};
use peregrine_tests::nodes::POD_CREATED_RULES as RULES;
use peregrine_tests::peregrine_binary;
use peregrine_tests::webhook::{self, post};

const OUTAGE: Duration = Duration::from_secs(10);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One audit event the rule matches, stamped `time`.
fn audit_event(i: usize, time: &str) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"id-{i}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"create","user":{{"username":"alice"}},"objectRef":{{"resource":"pods","namespace":"default","name":"pod-{i}","apiVersion":"v1"}},"responseStatus":{{"code":201}},"requestReceivedTimestamp":"{time}","stageTimestamp":"{time}"}}"#
    )
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Samples every node's spool until stopped; the largest backlog each had.
struct SpoolWatch {
    stop: Arc<AtomicBool>,
    high: Arc<Mutex<Vec<u64>>>,
    thread: Option<JoinHandle<()>>,
}

impl SpoolWatch {
    fn start(dir: &Path, nodes: &[String]) -> SpoolWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let high = Arc::new(Mutex::new(vec![0; nodes.len()]));
        let thread = {
            let (stop, high, dir, nodes) = (
                Arc::clone(&stop),
                Arc::clone(&high),
                dir.to_path_buf(),
                nodes.to_vec(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut high = high.lock().unwrap();
                    for (i, node) in nodes.iter().enumerate() {
                        high[i] = high[i].max(spool_pending(&dir, node));
                    }
                    drop(high);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        SpoolWatch {
            stop,
            high,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let high = self.high.lock().unwrap().clone();
        high
    }
}

/// `peregrine fleet` on `stream` until it has been idle `idle` seconds;
/// its JSON summary.
fn fleet(binary: &Path, cluster: &Cluster, stream: &str, durable: &str, idle: u64) -> Child {
    let mut command = Command::new(binary);
    command.args(["fleet", "--stream", stream, "--durable", durable, "--json"]);
    command.args(["--idle-exit", &idle.to_string()]);
    for url in cluster.urls() {
        command.args(["--server", &url]);
    }
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("peregrine fleet starts")
}

fn summary(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().expect("peregrine fleet ends");
    assert!(
        out.status.success(),
        "fleet failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fleet printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn kib(bytes: u64) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}

fn main() {
    if !server_available() {
        println!("skipped: nats-server is not installed (Debian package nats-server)");
        return;
    }
    let node_count = env_usize("FLEET_NODES", 3);
    let alerts = env_usize("FLEET_ALERTS", 20_000);
    let rate = env_usize("FLEET_RATE", 500).max(10);
    let seconds = env_usize("FLEET_SECONDS", 10) as u64;
    let binary = peregrine_binary().expect("the peregrine binary");
    let scratch: PathBuf =
        std::env::temp_dir().join(format!("peregrine-fleet-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let dir = scratch.as_path();
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let mut cluster = Cluster::new(dir);
    cluster.start_all();
    let nodes: Vec<String> = (0..node_count).map(|i| format!("node-{i}")).collect();
    println!(
        "fleet bench: {node_count} nodes, 3 NATS servers (JetStream, 3 replicas), loopback, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // 1. Throughput.
    let stamp = now_rfc3339();
    let events: Vec<String> = (0..alerts).map(|i| audit_event(i, &stamp)).collect();
    let audit = dir.join("audit.json");
    std::fs::write(&audit, events.join("\n") + "\n").unwrap();
    let watch = SpoolWatch::start(dir, &nodes);
    let started = Instant::now();
    let runs: Vec<Child> = nodes
        .iter()
        .map(|node| {
            let config = node_config(dir, &cluster, node, "THROUGHPUT", "thr", 300_000);
            Command::new(&binary)
                .env("FALCO_HOSTNAME", node)
                .arg("-c")
                .arg(&config)
                .arg("-r")
                .arg(&rules)
                .arg("--k8s-audit-file")
                .arg(&audit)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("peregrine starts")
        })
        .collect();
    let took = until_each_ends(runs, &nodes, started);
    let high = watch.finish();
    let read = Instant::now();
    let counted = summary(fleet(&binary, &cluster, "THROUGHPUT", "count", 5));
    let read_took = read.elapsed().saturating_sub(Duration::from_secs(5));
    println!("\n1. throughput: {alerts} alerts per node at full speed, until acknowledged");
    let in_stream = |node: &str| counted["nodes"][node]["alerts"].as_u64().unwrap_or(0);
    throughput_table(&nodes, alerts, &took, &high, "in stream", in_stream);
    let total = (alerts * node_count) as f64;
    println!(
        "all nodes: {:.0} alerts/s into the stream; fleet read them at {:.0} alerts/s; {} duplicates",
        total / took.iter().max().copied().unwrap_or_default().as_secs_f64(),
        total / read_took.as_secs_f64().max(1e-3),
        counted["duplicates"]
    );

    // 2. Latency, with every node's webhook under a steady load.
    let config_of = |node: &str| node_config(dir, &cluster, node, "LIVE", "live", 300_000);
    let daemons: Vec<webhook::Running> = nodes
        .iter()
        .map(|node| {
            let config = config_of(node).display().to_string();
            let rules = rules.display().to_string();
            webhook::start_args_env(&["-c", &config, "-r", &rules], &[("FALCO_HOSTNAME", node)])
        })
        .collect();
    // A first alert from each node creates the stream.
    for (i, daemon) in daemons.iter().enumerate() {
        assert_eq!(post(&daemon.url, &audit_event(i, &now_rfc3339())), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while nodes.iter().any(|n| spool_pending(dir, n) > 0) {
        assert!(
            Instant::now() < deadline,
            "the first alerts never reached the stream"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let latency_fleet = fleet(&binary, &cluster, "LIVE", "latency", 3);
    let urls: Vec<String> = daemons.iter().map(|d| d.url.clone()).collect();
    let posted = load(&urls, rate, Duration::from_secs(seconds));
    let latency = summary(latency_fleet);
    println!(
        "\n2. latency: {rate} alerts/s per node through the webhook for {seconds} s (event time to `peregrine fleet`, last 4096 per node)"
    );
    delay_table(nodes.iter().map(|node| {
        let view = &latency["nodes"][node];
        (
            node.as_str(),
            view["alerts"].as_u64().unwrap_or(0),
            view["latency_p50_ms"].as_f64().unwrap_or(f64::NAN),
            view["latency_p99_ms"].as_f64().unwrap_or(f64::NAN),
        )
    }));

    // 3. The whole cluster down for ten seconds under the same load.
    let watch = SpoolWatch::start(dir, &nodes);
    cluster.kill_all();
    let during = load(&urls, rate, OUTAGE);
    cluster.start_all();
    let back = Instant::now();
    let deadline = back + Duration::from_secs(120);
    let mut drained = vec![None; nodes.len()];
    while drained.iter().any(Option::is_none) && Instant::now() < deadline {
        for (i, node) in nodes.iter().enumerate() {
            if drained[i].is_none() && spool_pending(dir, node) == 0 {
                drained[i] = Some(back.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let high = watch.finish();
    for daemon in daemons {
        webhook::stop(daemon);
    }
    let counted = summary(fleet(&binary, &cluster, "LIVE", "count", 3));
    println!(
        "\n3. outage: the whole cluster down {} s under {rate} alerts/s per node",
        OUTAGE.as_secs()
    );
    let expected: Vec<u64> = (0..nodes.len())
        .map(|i| 1 + posted[i] + during[i])
        .collect();
    let in_stream = |node: &str| counted["nodes"][node]["alerts"].as_u64().unwrap_or(0);
    outage_table(&nodes, &high, &drained, &expected, "in stream", in_stream);
    println!("duplicates in the stream: {}", counted["duplicates"]);
    drop(cluster);
    // tansu reads its SQLite log back at a few hundred records a second:
    // fewer alerts keep the count of the topic within minutes.
    let kafka_alerts = env_usize("FLEET_KAFKA_ALERTS", 5_000).min(alerts);
    let kafka_audit = dir.join("kafka-audit.json");
    std::fs::write(&kafka_audit, events[..kafka_alerts].join("\n") + "\n").unwrap();
    kafka_phases(
        &binary,
        dir,
        &rules,
        &nodes,
        &kafka_audit,
        (kafka_alerts, rate, seconds),
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The same three phases through `kafka_output` onto one Kafka broker
/// (tansu, its log in SQLite): alerts/s until stored, the delay from each
/// alert's event time to its Kafka timestamp (when the node produced it)
/// under the steady webhook load, and the broker down for ten seconds
/// under that load, with a count of the topic at the end.
fn kafka_phases(
    binary: &Path,
    dir: &Path,
    rules: &Path,
    nodes: &[String],
    audit: &Path,
    (alerts, rate, seconds): (usize, usize, u64),
) {
    let Some(tansu) = kafka::broker_binary() else {
        println!("\nkafka: skipped: no Kafka broker (cargo install tansu --features libsql, or PEREGRINE_TANSU)");
        return;
    };
    let dir = &dir.join("kafka");
    std::fs::create_dir_all(dir).unwrap();
    let mut broker = kafka::Broker::new(&tansu, dir);
    broker.start();
    println!(
        "\nkafka: {} nodes, one tansu broker (SQLite log), loopback",
        nodes.len()
    );
    let node_run = |node: &str, topic: &str| {
        let config = kafka::node_config(dir, &broker, node, topic, 300_000, "");
        Command::new(binary)
            .env("FALCO_HOSTNAME", node)
            .arg("-c")
            .arg(&config)
            .arg("-r")
            .arg(rules)
            .arg("--k8s-audit-file")
            .arg(audit)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("peregrine starts")
    };

    // 1. Throughput.
    let watch = SpoolWatch::start(dir, nodes);
    let started = Instant::now();
    let runs: Vec<Child> = nodes.iter().map(|n| node_run(n, "throughput")).collect();
    let took = until_each_ends(runs, nodes, started);
    let high = watch.finish();
    let read = Instant::now();
    let stored = kafka::read_topic(&broker, "throughput").expect("the topic reads back");
    let read_took = read.elapsed();
    let per_node = stored.per_node();
    println!("\n1k. throughput: {alerts} alerts per node at full speed, until stored");
    let in_topic = |node: &str| per_node.get(node).copied().unwrap_or(0);
    throughput_table(nodes, alerts, &took, &high, "in topic", in_topic);
    let total = (alerts * nodes.len()) as f64;
    println!(
        "all nodes: {:.0} alerts/s into the topic; read back at {:.0} alerts/s; {} duplicates",
        total / took.iter().max().copied().unwrap_or_default().as_secs_f64(),
        total / read_took.as_secs_f64().max(1e-3),
        stored.repeated_or_missing_ids().0
    );

    // 2. Delay under a steady load through every node's webhook.
    let daemons: Vec<webhook::Running> = nodes
        .iter()
        .map(|node| {
            let config = kafka::node_config(dir, &broker, node, "live", 300_000, "");
            let (config, rules) = (config.display().to_string(), rules.display().to_string());
            webhook::start_args_env(&["-c", &config, "-r", &rules], &[("FALCO_HOSTNAME", node)])
        })
        .collect();
    let urls: Vec<String> = daemons.iter().map(|d| d.url.clone()).collect();
    for (i, url) in urls.iter().enumerate() {
        assert_eq!(post(url, &audit_event(i, &now_rfc3339())), 200);
    }
    let drained = |deadline: Duration| {
        let until = Instant::now() + deadline;
        while nodes.iter().any(|n| spool_pending(dir, n) > 0) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    drained(Duration::from_secs(60));
    let posted = load(&urls, rate, Duration::from_secs(seconds));
    drained(Duration::from_secs(60));
    let live = kafka::read_topic(&broker, "live").expect("the topic reads back");
    println!(
        "\n2k. delay: {rate} alerts/s per node through the webhook for {seconds} s (event time to the record's Kafka timestamp)"
    );
    delay_table(nodes.iter().map(|node| {
        let mut delays = live.delays_ms.get(node).cloned().unwrap_or_default();
        delays.sort_by(f64::total_cmp);
        let at = |q: f64| {
            delays
                .get(((delays.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        (node.as_str(), delays.len() as u64, at(0.5), at(0.99))
    }));

    // 3. The broker down for ten seconds under the same load.
    let watch = SpoolWatch::start(dir, nodes);
    broker.kill();
    let during = load(&urls, rate, OUTAGE);
    broker.start();
    let back = Instant::now();
    let mut drained_after = vec![None; nodes.len()];
    while drained_after.iter().any(Option::is_none) && back.elapsed() < Duration::from_secs(120) {
        for (i, node) in nodes.iter().enumerate() {
            if drained_after[i].is_none() && spool_pending(dir, node) == 0 {
                drained_after[i] = Some(back.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let high = watch.finish();
    for daemon in daemons {
        webhook::stop(daemon);
    }
    let live = kafka::read_topic(&broker, "live").expect("the topic reads back");
    let per_node = live.per_node();
    println!(
        "\n3k. outage: the broker down {} s under {rate} alerts/s per node",
        OUTAGE.as_secs()
    );
    let expected: Vec<u64> = (0..nodes.len())
        .map(|i| 1 + posted[i] + during[i])
        .collect();
    let in_topic = |node: &str| per_node.get(node).copied().unwrap_or(0);
    outage_table(
        nodes,
        &high,
        &drained_after,
        &expected,
        "in topic",
        in_topic,
    );
    println!(
        "duplicates in the topic: {}",
        live.repeated_or_missing_ids().0
    );
}

/// How long after `started` each node's run ended (each must succeed).
fn until_each_ends(runs: Vec<Child>, nodes: &[String], started: Instant) -> Vec<Duration> {
    runs.into_iter()
        .zip(nodes)
        .map(|(child, node)| {
            let out = child.wait_with_output().expect("peregrine ends");
            assert!(
                out.status.success(),
                "{node}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            started.elapsed()
        })
        .collect()
}

/// Phase 1's table: per node, the time until all its alerts were stored
/// and the spool's high-water mark; `stored` counts what the far side
/// holds of a node's alerts.
fn throughput_table(
    nodes: &[String],
    alerts: usize,
    took: &[Duration],
    high: &[u64],
    place: &str,
    stored: impl Fn(&str) -> u64,
) {
    println!(
        "{:<10} {:>12} {:>12} {:>16} {:>12}",
        "node", "seconds", "alerts/s", "spool high-water", place
    );
    for (i, node) in nodes.iter().enumerate() {
        println!(
            "{:<10} {:>12.2} {:>12.0} {:>16} {:>12}",
            node,
            took[i].as_secs_f64(),
            alerts as f64 / took[i].as_secs_f64(),
            kib(high[i]),
            stored(node)
        );
    }
}

/// Phase 2's table: (node, alerts, p50 ms, p99 ms).
fn delay_table<'a>(rows: impl Iterator<Item = (&'a str, u64, f64, f64)>) {
    println!(
        "{:<10} {:>10} {:>10} {:>10}",
        "node", "alerts", "p50 ms", "p99 ms"
    );
    for (node, alerts, p50, p99) in rows {
        println!("{node:<10} {alerts:>10} {p50:>10.1} {p99:>10.1}");
    }
}

/// Phase 3's table, and the check that each node's alerts are all stored
/// once.
fn outage_table(
    nodes: &[String],
    high: &[u64],
    drained: &[Option<Duration>],
    expected: &[u64],
    place: &str,
    stored: impl Fn(&str) -> u64,
) {
    println!(
        "{:<10} {:>16} {:>14} {:>10} {:>10}",
        "node", "spool high-water", "drained after", "posted", place
    );
    for (i, node) in nodes.iter().enumerate() {
        let drained = drained[i].map_or_else(
            || "never".to_string(),
            |d| format!("{:.1} s", d.as_secs_f64()),
        );
        println!(
            "{:<10} {:>16} {:>14} {:>10} {:>10}",
            node,
            kib(high[i]),
            drained,
            expected[i],
            stored(node)
        );
        assert_eq!(
            stored(node),
            expected[i],
            "{node}: every alert once, {place}"
        );
    }
}

/// Posts `rate` alerts/s to each URL for `length`, in tenth-of-a-second
/// batches stamped when sent; how many each URL took.
fn load(urls: &[String], rate: usize, length: Duration) -> Vec<u64> {
    let batch = (rate / 10).max(1);
    let posters: Vec<JoinHandle<u64>> = urls
        .iter()
        .cloned()
        .map(|url| {
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut sent = 0u64;
                let mut tick = 0u32;
                while start.elapsed() < length {
                    let stamp = now_rfc3339();
                    let items: Vec<String> = (0..batch).map(|i| audit_event(i, &stamp)).collect();
                    let body = format!(
                        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{}]}}"#,
                        items.join(",")
                    );
                    assert_eq!(post(&url, &body), 200, "the webhook took the batch");
                    sent += batch as u64;
                    tick += 1;
                    let next = start + Duration::from_millis(100) * tick;
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                }
                sent
            })
        })
        .collect();
    posters
        .into_iter()
        .map(|p| p.join().expect("a poster"))
        .collect()
}
