//! `peregrine fleet --listen`: the fleet view in a real headless Chromium
//! (over WebDriver, as the console test drives it), fed by a real
//! nats-server with JetStream and three `peregrine` nodes replaying the
//! conformance kit's captures with `nats_output` on.
//!
//! The view starts before the stream exists, and waits for it. Node A
//! replays once (creating the stream), node B once, node C again and again
//! until told to stop. Checked: the JSON endpoint counts,
//! per node, what each node wrote to its own file output (and the stream,
//! read back by the NATS client, holds the same); the page lists each node
//! with that count, marks A and B quiet (red) while C still publishes and
//! C once it stops, lists the latest alerts with their node, shows an
//! alert's markup as text, and says so when NATS is gone. A screenshot
//! goes to target/console-screenshots/fleet.png.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use peregrine_tests::nats::{node_config_on, read_stream_at, server_available, Server};
use peregrine_tests::peregrine_binary;
use peregrine_tests::webhook::get;
use serde_json::{json, Value as Json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

const STREAM: &str = "FLEETVIEW";

/// Seconds of silence after which the view marks a node quiet.
const QUIET_AFTER: u64 = 4;

const RULES: &str = r#"
- rule: Connect
  desc: a connection
  condition: evt.type=connect
  output: connect (proc=%proc.name connection=%fd.name)
  priority: NOTICE
- rule: Open below etc
  desc: a file below /etc opened
  condition: evt.type in (open, openat, openat2) and fd.name startswith /etc
  output: <img src=x onerror="window.pwned=1"> open below etc (proc=%proc.name file=%fd.name)
  priority: WARNING
- rule: Write to a file
  desc: a file written
  condition: evt.type=write and fd.typechar=f
  output: write (proc=%proc.name file=%fd.name)
  priority: CRITICAL
"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills a process left running when the test fails.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One node: replays a capture with `nats_output` on, and writes the same
/// alerts to a file of its own, which is what it published.
struct Node {
    name: &'static str,
    config: PathBuf,
}

impl Node {
    fn replay(&self, binary: &Path, rules: &Path, capture: &Path, alerts: &Path) -> u64 {
        let out = Command::new(binary)
            .env("FALCO_HOSTNAME", self.name)
            .arg("-c")
            .arg(&self.config)
            .arg("-r")
            .arg(rules)
            .arg("-e")
            .arg(capture)
            .args(["-o", "file_output.enabled=true", "-o"])
            .arg(format!("file_output.filename={}", alerts.display()))
            .stdin(Stdio::null())
            .output()
            .expect("peregrine runs");
        assert!(
            out.status.success(),
            "{} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(alerts)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with('{'))
            .count() as u64
    }
}

fn fleet_json(web: &str) -> Json {
    let (status, body) = get(&format!("{web}/console/api/fleet"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls the JSON endpoint until `check` holds on it.
fn wait_json(web: &str, within: Duration, what: &str, check: impl Fn(&Json) -> bool) -> Json {
    let started = Instant::now();
    loop {
        let fleet = fleet_json(web);
        if check(&fleet) {
            return fleet;
        }
        assert!(
            started.elapsed() < within,
            "{what}: not within {within:?}: {fleet:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The node table as the page shows it: per node, its alert count, its
/// state text, whether the row is marked quiet and the row's text colour.
async fn node_rows(client: &Client) -> Json {
    client
        .execute(
            "return Object.fromEntries(Array.from(document.querySelectorAll('#nodes tbody tr'), \
             r => [r.dataset.node, {alerts: r.querySelector('td.alerts').textContent, \
             state: r.querySelector('td.state').textContent, \
             quiet: r.classList.contains('quiet'), colour: getComputedStyle(r).color}]));",
            vec![],
        )
        .await
        .unwrap()
}

async fn wait_rows(
    client: &Client,
    within: Duration,
    what: &str,
    check: impl Fn(&Json) -> bool,
) -> Json {
    let started = Instant::now();
    loop {
        let rows = node_rows(client).await;
        if check(&rows) {
            return rows;
        }
        assert!(
            started.elapsed() < within,
            "{what}: not within {within:?}; rows: {rows:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn counted(rows: &Json, node: &str, alerts: u64) -> bool {
    rows[node]["alerts"] == json!(alerts.to_string())
}

const QUIET_RED: &str = "rgb(176, 0, 32)";

#[test]
fn the_fleet_view_in_a_real_browser_shows_each_node_and_which_went_quiet() {
    if !server_available() {
        eprintln!("skipped: nats-server is not installed (Debian package nats-server)");
        return;
    }
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        eprintln!(
            "skipped: chromium or chromedriver is absent (scripts/install-deps installs them)"
        );
        return;
    }
    let Some(kit) = peregrine_tests::conformance_kit() else {
        eprintln!("skipped: the conformance kit (../shared/conformance) is absent");
        return;
    };
    let binary = peregrine_binary().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let server = Server::start(dir);
    let urls = vec![server.url()];
    let node = |name: &'static str| Node {
        name,
        config: node_config_on(dir, &urls, 1, name, STREAM, "fleetview", 20_000),
    };
    let (a, b, c) = (node("node-a"), node("node-b"), node("node-c"));
    let captures = (
        kit.join("captures/curl_google.scap"),
        kit.join("captures/single_ipv6_conn.scap"),
        kit.join("falco-regression/trace_files/cat_write.scap"),
    );

    // The view starts first, before the stream exists: it serves, and
    // waits for the stream.
    let web_port = free_port();
    let web = format!("http://127.0.0.1:{web_port}");
    let fleet_log = std::fs::File::create(dir.join("fleet.log")).unwrap();
    let fleet = Command::new(&binary)
        .args(["fleet", "--server", &server.url(), "--stream", STREAM])
        .args(["--listen", &format!("127.0.0.1:{web_port}")])
        .args(["--quiet-after", &QUIET_AFTER.to_string()])
        .args(["--latest", "20", "--every", "3600"])
        .stdout(Stdio::null())
        .stderr(fleet_log)
        .spawn()
        .expect("peregrine fleet starts");
    let mut fleet = Reaped(fleet);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", web_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the fleet view did not listen: {}",
            std::fs::read_to_string(dir.join("fleet.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let empty = wait_json(&web, Duration::from_secs(10), "an empty view", |f| {
        f["nats_connected"] == true
    });
    assert_eq!(empty["nodes"], json!({}), "{empty:#}");

    // Node A publishes first (its first alert creates the stream).
    let a_alerts = a.replay(&binary, &rules, &captures.0, &dir.join("a.json"));
    assert!(a_alerts > 0, "curl_google.scap raised no alert");
    wait_json(&web, Duration::from_secs(15), "node-a counted", |f| {
        f["nodes"]["node-a"]["alerts"] == a_alerts
    });
    let log = std::fs::read_to_string(dir.join("fleet.log")).unwrap();
    assert!(
        log.contains(&format!("stream {STREAM}")) && log.contains("trying again"),
        "{log}"
    );

    // Node B once, node C over and over until told to stop.
    let b_alerts = b.replay(&binary, &rules, &captures.1, &dir.join("b.json"));
    let stop_c = Arc::new(AtomicBool::new(false));
    let c_runs = {
        let (binary, rules, capture, dir) = (
            binary.clone(),
            rules.clone(),
            captures.2.clone(),
            dir.to_path_buf(),
        );
        let stop_c = Arc::clone(&stop_c);
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut published = 0;
            let mut runs = 0;
            // Bounded, should the test fail before it says stop.
            while !stop_c.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(90) {
                runs += 1;
                let alerts = dir.join(format!("c-{runs}.json"));
                published += c.replay(&binary, &rules, &capture, &alerts);
                std::thread::sleep(Duration::from_millis(300));
            }
            (published, runs)
        })
    };

    let driver_port = free_port();
    let driver = Reaped(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", driver_port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (client, c_published) = runtime.block_on(async {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1500,950"],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
            .expect("chromedriver session");
        client.goto(&format!("{web}/")).await.unwrap();

        // A and B have stopped and C goes on: A and B in red, C not, and
        // A and B with what they published.
        let rows = wait_rows(
            &client,
            Duration::from_secs(30),
            "A and B quiet while C publishes",
            |rows| {
                rows["node-a"]["quiet"] == true
                    && rows["node-b"]["quiet"] == true
                    && rows["node-c"]["quiet"] == false
                    && rows["node-c"]["alerts"] != json!("0")
            },
        )
        .await;
        assert!(counted(&rows, "node-a", a_alerts), "{rows:#}");
        assert!(counted(&rows, "node-b", b_alerts), "{rows:#}");
        assert_eq!(rows["node-a"]["state"], "QUIET", "{rows:#}");
        assert_eq!(rows["node-a"]["colour"], QUIET_RED, "{rows:#}");
        assert_eq!(rows["node-c"]["state"], "ok", "{rows:#}");
        assert_ne!(rows["node-c"]["colour"], QUIET_RED, "{rows:#}");
        let banner = client
            .execute(
                "return document.getElementById('banner').textContent;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(banner, "Quiet: node-a, node-b");
        let link = client
            .execute(
                "return document.getElementById('link').textContent;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(link, "live");
        // The latest alerts, newest first, carry their node; C's are the
        // newest. Its rule's markup is text in the page, and did not run.
        let latest = client
            .execute(
                "return [Array.from(document.querySelectorAll('#latest tbody tr'), \
                 r => [r.cells[1].textContent, r.cells[3].textContent, r.cells[5].textContent]), \
                 window.pwned === undefined, \
                 document.querySelectorAll('#latest img, #latest script').length];",
                vec![],
            )
            .await
            .unwrap();
        let listed = latest[0].as_array().unwrap();
        assert!(!listed.is_empty() && listed.len() <= 20, "{latest:#}");
        assert_eq!(listed[0][0], "node-c", "{latest:#}");
        assert_eq!(listed[0][1], "Open below etc", "{latest:#}");
        assert!(
            listed[0][2]
                .as_str()
                .unwrap()
                .contains(r#"<img src=x onerror="window.pwned=1"> open below etc"#),
            "{latest:#}"
        );
        assert_eq!(latest[1], true, "markup from an alert ran");
        assert_eq!(latest[2], 0, "markup from an alert became elements");
        let png = client.screenshot().await.unwrap();
        let shots = peregrine_tests::repo_root().join("target/console-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        std::fs::write(shots.join("fleet.png"), png).unwrap();

        // C stops: the page counts all it published, then marks it quiet.
        stop_c.store(true, Ordering::Relaxed);
        let (c_published, c_runs) = c_runs.join().unwrap();
        eprintln!("fleet view: node-c published {c_published} alerts in {c_runs} runs");
        assert!(c_runs >= 2, "node-c ran {c_runs} time(s)");
        let stopped = Instant::now();
        wait_rows(
            &client,
            Duration::from_secs(10),
            "C's last alerts",
            |rows| counted(rows, "node-c", c_published),
        )
        .await;
        let rows = wait_rows(
            &client,
            Duration::from_secs(QUIET_AFTER + 10),
            "C quiet once stopped",
            |rows| rows["node-c"]["quiet"] == true,
        )
        .await;
        eprintln!(
            "fleet view: node-c marked quiet {:?} after its last run ended",
            stopped.elapsed()
        );
        assert_eq!(rows["node-c"]["colour"], QUIET_RED, "{rows:#}");
        assert!(counted(&rows, "node-c", c_published), "{rows:#}");
        (client, c_published)
    });

    // The JSON endpoint counts what each node published, once each; the
    // stream itself (read by the NATS client) holds the same.
    let fleet_view = fleet_json(&web);
    let expected = [
        ("node-a", a_alerts),
        ("node-b", b_alerts),
        ("node-c", c_published),
    ];
    for (node, alerts) in expected {
        assert_eq!(
            fleet_view["nodes"][node]["alerts"], alerts,
            "{fleet_view:#}"
        );
        assert_eq!(fleet_view["nodes"][node]["quiet"], true, "{fleet_view:#}");
        assert_eq!(
            fleet_view["nodes"][node]["drop_reports"], 0,
            "{fleet_view:#}"
        );
    }
    assert_eq!(fleet_view["duplicates"], 0, "{fleet_view:#}");
    let total = a_alerts + b_alerts + c_published;
    assert_eq!(fleet_view["unique"], total, "{fleet_view:#}");
    assert_eq!(
        fleet_view["latest"].as_array().map(Vec::len),
        Some(total.min(20) as usize)
    );
    let stream = read_stream_at(urls.clone(), STREAM).unwrap();
    let per_node: std::collections::BTreeMap<String, u64> = expected
        .iter()
        .map(|(n, count)| (n.to_string(), *count))
        .collect();
    assert_eq!(stream.per_node(), per_node);

    // NATS gone: the view says so above the nodes it no longer hears.
    drop(server);
    runtime.block_on(async {
        let started = Instant::now();
        loop {
            let banner = client
                .execute(
                    "return document.getElementById('banner').textContent;",
                    vec![],
                )
                .await
                .unwrap();
            if banner
                .as_str()
                .is_some_and(|b| b.starts_with("Not connected to NATS"))
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the page does not say NATS is lost: {banner}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        client.close().await.unwrap();
    });
    drop(driver);
    assert_eq!(fleet_json(&web)["nats_connected"], false);

    // A stop (SIGTERM) ends the consumer and closes the view.
    Command::new("kill")
        .args(["-TERM", &fleet.0.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = fleet.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "fleet did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(dir.join("fleet.log")).unwrap_or_default()
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", web_port)).is_err(),
        "the view still listens after fleet stopped"
    );
}
