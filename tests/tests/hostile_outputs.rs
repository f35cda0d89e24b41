//! Outputs that misbehave, against the real binary on loopback: an HTTP
//! receiver that accepts and never answers, and a syslog daemon that is
//! absent at start and appears later. Neither may stall the engine, and
//! both show in the counters.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use peregrine_tests::peregrine_binary;
use peregrine_tests::webhook::{audit_event, get, post};

const RULES: &str = "- rule: Any Create\n  desc: d\n  condition: ka.verb = create\n  output: created (pod=%ka.target.name)\n  priority: WARNING\n  source: k8s_audit\n";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("peregrine-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Daemon {
    child: Child,
    webhook: String,
    web: String,
    seen: Vec<String>,
    lines: mpsc::Receiver<String>,
}

/// Starts peregrine with the webhook and the webserver on ephemeral
/// ports, the config overrides `options`, and environment `env`.
fn start(dir: &std::path::Path, options: &[&str], env: &[(&str, &str)]) -> Daemon {
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let mut command = Command::new(peregrine_binary().unwrap());
    command
        .args(["-r", rules.to_str().unwrap(), "--disable-source", "syscall"])
        .args([
            "-o",
            "k8s_audit.enabled=true",
            "-o",
            "k8s_audit.listen_address=127.0.0.1",
        ])
        .args([
            "-o",
            "k8s_audit.listen_port=0",
            "-o",
            "webserver.enabled=true",
        ])
        .args([
            "-o",
            "webserver.listen_address=127.0.0.1",
            "-o",
            "webserver.listen_port=0",
        ])
        .args(["-o", "stdout_output.enabled=false"]);
    for option in options {
        command.args(["-o", option]);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut webhook, mut web) = (None, None);
    let mut seen = Vec::new();
    while webhook.is_none() || web.is_none() {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("peregrine did not start: {seen:#?}"));
        if let Some(rest) = line.split("webhook listening on ").nth(1) {
            webhook = Some(format!("http://{}", rest.trim()));
        }
        if let Some(rest) = line.split("Webserver listening on ").nth(1) {
            web = rest
                .split_whitespace()
                .next()
                .map(|a| format!("http://{a}"));
        }
        seen.push(line);
    }
    Daemon {
        child,
        webhook: webhook.unwrap(),
        web: web.unwrap(),
        seen,
        lines,
    }
}

impl Daemon {
    /// The value of one metrics line (`name{labels}`), if present.
    fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = get(&format!("{}/metrics", self.web));
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    /// Polls a metric until `ok`, at most `limit`; its last value.
    fn wait_metric(&self, series: &str, limit: Duration, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.metric(series).unwrap_or(f64::NAN);
            if ok(value) {
                return value;
            }
            assert!(Instant::now() < deadline, "{series} stayed at {value}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM; exit code, time to exit and stderr.
    fn stop(mut self, limit: Duration) -> (Option<i32>, Duration, String) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stdout = String::new();
                let _ = self
                    .child
                    .stdout
                    .take()
                    .unwrap()
                    .read_to_string(&mut stdout);
                self.seen.extend(self.lines.try_iter());
                return (status.code(), started.elapsed(), self.seen.join("\n"));
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("no exit within {limit:?}: {:#?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn an_http_receiver_that_never_answers_costs_output_timeout_per_alert() {
    let dir = scratch("http-silent");
    // Accepts (the kernel completes the handshake) and never reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http_output.url=http://{}/", silent.local_addr().unwrap());
    let daemon = start(
        &dir,
        &["http_output.enabled=true", &url, "output_timeout=400"],
        &[],
    );
    let alerts = 5;
    for i in 0..alerts {
        assert_eq!(post(&daemon.webhook, &audit_event(i, "create")), 200);
    }
    let depth = r#"falcosecurity_peregrine_output_queue_depth{output="http"}"#;
    let age = r#"falcosecurity_peregrine_output_oldest_queued_age_seconds{output="http"}"#;
    let failed = r#"falcosecurity_peregrine_output_alerts_total{output="http",outcome="failed"}"#;
    // At once: the queue and the age of the alert in delivery show.
    let seen_depth = daemon.wait_metric(depth, Duration::from_secs(2), |v| v >= 1.0);
    let seen_age = daemon.wait_metric(age, Duration::from_secs(2), |v| v > 0.0);
    println!("at once: depth {seen_depth}, oldest age {seen_age}s");
    // Each alert costs output_timeout (0.4 s): all five fail within ~2 s.
    let started = Instant::now();
    daemon.wait_metric(failed, Duration::from_secs(20), |v| v == alerts as f64);
    println!("{alerts} alerts failed {:?} later", started.elapsed());
    assert_eq!(daemon.metric(depth), Some(0.0));
    assert_eq!(daemon.metric(age), Some(0.0));
    // More alerts, then a stop: bounded by the shutdown deadline.
    for i in 0..50 {
        assert_eq!(post(&daemon.webhook, &audit_event(100 + i, "create")), 200);
    }
    let (code, took, said) = daemon.stop(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{said}");
    assert!(took < Duration::from_secs(15), "{took:?}: {said}");
    assert!(said.contains("output 'http'"), "{said}");
    drop(silent);
}

#[test]
fn syslog_absent_at_start_then_present_gets_the_alerts() {
    let dir = scratch("syslog");
    let socket = dir.join("log.sock");
    let daemon = start(
        &dir,
        &["syslog_output.enabled=true"],
        &[("PEREGRINE_SYSLOG_SOCKET", socket.to_str().unwrap())],
    );
    assert!(
        daemon
            .seen
            .iter()
            .any(|l| l.contains("syslog output will connect")),
        "{:#?}",
        daemon.seen
    );
    let failed = r#"falcosecurity_peregrine_output_alerts_total{output="syslog",outcome="failed"}"#;
    let sent = r#"falcosecurity_peregrine_output_alerts_total{output="syslog",outcome="sent"}"#;
    assert_eq!(post(&daemon.webhook, &audit_event(1, "create")), 200);
    daemon.wait_metric(failed, Duration::from_secs(10), |v| v == 1.0);

    let receive = |server: &UnixDatagram| {
        let mut buf = [0u8; 8192];
        let n = server
            .recv(&mut buf)
            .expect("an alert on the syslog socket");
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    for (round, pod) in [(1, 2), (2, 3)] {
        // The daemon appears (round 1), then restarts (round 2).
        let _ = std::fs::remove_file(&socket);
        let server = UnixDatagram::bind(&socket).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        std::thread::sleep(Duration::from_millis(1_100));
        assert_eq!(post(&daemon.webhook, &audit_event(pod, "create")), 200);
        let got = receive(&server);
        assert!(
            got.contains(&format!("pod=pod-{pod}")),
            "round {round}: {got}"
        );
    }
    daemon.wait_metric(sent, Duration::from_secs(10), |v| v == 2.0);
    let (code, _, said) = daemon.stop(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{said}");
}
