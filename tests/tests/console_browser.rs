//! The web console in a real headless Chromium, driven over WebDriver
//! (chromedriver): Peregrine's webserver, webhook, outputs and engine run
//! in this process as `peregrine` wires them; a capture is replayed and
//! audit events are posted to the webhook while the page watches.
//!
//! Checked in the page: alerts appear within a second, filters and the
//! search box narrow them, the detail view shows the fields and the raw
//! JSON, markup in an output stays text, and the kernel's drop counters
//! (set as the module reports them: no module loads on this machine)
//! show in the health view and its banner. Screenshots of the views go to
//! target/console-screenshots/.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use peregrine::alert::RenderOptions;
use peregrine::config::{K8sAudit, Webserver};
use peregrine::metrics::Metrics;
use peregrine::outputs::{Channel, ConsoleChannel, Dispatcher, FileChannel};
use peregrine::ruleset::{self, RulesInput};
use peregrine::run;
use peregrine::servers::console::Hub;
use peregrine::servers::{AuditQueue, Servers};
use peregrine_driver_sys::{MergedReader, RingStats, UserRing, WriteOutcome};
use serde_json::{json, Value as Json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

const RULES: &str = r#"
- rule: Curl connects
  desc: curl opened a connection
  condition: evt.type=connect and proc.name=curl
  output: curl connected (command=%proc.cmdline connection=%fd.name)
  priority: WARNING
  tags: [network, curl]
- list: curl_names
  items: [curl]
- macro: is_curl
  condition: proc.name in (curl_names)
- rule: Curl opens a file
  desc: curl opened a file
  condition: evt.type in (open, openat) and is_curl and fd.name startswith /etc
  output: curl opened a file (file=%fd.name command=%proc.cmdline)
  priority: NOTICE
  tags: [filesystem, curl]
- rule: Configmap created
  desc: a configmap was created
  condition: ka.verb=create and ka.target.resource=configmaps
  output: <img src=x onerror="window.pwned=1"><script>window.pwned=2</script> configmap %ka.target.name by %ka.user.name
  priority: CRITICAL
  source: k8s_audit
  tags: [k8s]
"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_chromedriver(port: u16) -> Driver {
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    driver
}

fn screenshots() -> PathBuf {
    let dir = peregrine_tests::repo_root().join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn save_screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Rows of the alert table now, in one round trip to the browser.
async fn rows(client: &Client) -> Vec<String> {
    let texts = client
        .execute(
            "return Array.from(document.querySelectorAll('#alerts tbody tr'), r => r.innerText);",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(texts).unwrap()
}

/// Waits until `check` holds on the table's rows; returns how long it took.
async fn wait_rows(
    client: &Client,
    within: Duration,
    what: &str,
    check: impl Fn(&[String]) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let now = rows(client).await;
        if check(&now) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{what}: not within {within:?}; rows: {now:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_text(client: &Client, css: &str, within: Duration, check: impl Fn(&str) -> bool) {
    let started = Instant::now();
    loop {
        let text = match client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if check(&text) {
            return;
        }
        assert!(
            started.elapsed() < within,
            "{css}: not as expected within {within:?}: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn audit_event(name: &str, user: &str) -> Json {
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": format!("id-{name}"),
        "stage": "ResponseComplete",
        "requestURI": format!("/api/v1/namespaces/default/configmaps/{name}"),
        "verb": "create",
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.7"],
        "objectRef": {"resource": "configmaps", "namespace": "default", "name": name, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestReceivedTimestamp": "2026-12-03T10:00:00.000000Z",
        "stageTimestamp": "2026-12-03T10:00:00.100000Z"
    })
}

/// Everything `peregrine` runs for a live webhook plus a replay, minus
/// the browser.
struct Peregrine {
    servers: Arc<Servers>,
    dispatcher: Arc<Dispatcher>,
    metrics: Arc<Metrics>,
    web_port: u16,
    audit_port: u16,
    audit_thread: Option<std::thread::JoinHandle<()>>,
    syscall_rules: Option<
        peregrine_engine::rules::CompiledRules<peregrine_engine::syscall_fields::SyscallFields>,
    >,
    alerts_file: PathBuf,
}

fn start_peregrine(scratch: &Path) -> Peregrine {
    let loaded = ruleset::load(
        &[RulesInput::Text {
            name: "console.yaml".into(),
            text: RULES.into(),
        }],
        None,
    );
    assert!(
        !loaded.has_errors(),
        "{:?}",
        loaded.errors().collect::<Vec<_>>()
    );
    let hub = Arc::clone(Hub::global());
    hub.set_rules(&loaded);
    let alerts_file = scratch.join("alerts.txt");
    let channels: Vec<Box<dyn Channel>> = vec![
        Box::new(ConsoleChannel::new(Arc::clone(&hub))),
        Box::new(FileChannel::open(alerts_file.clone(), true, false).unwrap()),
    ];
    let dispatcher = Arc::new(Dispatcher::new(channels, RenderOptions::default(), 16_384).unwrap());
    let weak = Arc::downgrade(&dispatcher);
    let metrics = Arc::new(Metrics::new(
        Box::new(move || {
            weak.upgrade()
                .map(|d| d.stats_handles())
                .unwrap_or_default()
        }),
        None,
    ));
    let (web_port, audit_port) = (free_port(), free_port());
    let web = Webserver {
        enabled: true,
        listen_address: "127.0.0.1".into(),
        listen_port: web_port,
        console: true,
        ..Webserver::default()
    };
    let k8s = K8sAudit {
        enabled: true,
        listen_address: "127.0.0.1".into(),
        listen_port: audit_port,
        ..K8sAudit::default()
    };
    let (tx, rx) = crossbeam_channel::bounded::<Json>(1024);
    let servers = Arc::new(
        Servers::start(
            Some(&web),
            Some(&k8s),
            Some(AuditQueue::new(tx)),
            Arc::clone(&metrics),
        )
        .unwrap(),
    );
    let ruleset::Ruleset {
        syscall,
        mut k8s_audit,
        ..
    } = loaded;
    let audit_thread = {
        let (dispatcher, metrics) = (Arc::clone(&dispatcher), Arc::clone(&metrics));
        std::thread::spawn(move || {
            let mut detections = run::Detections::default();
            for event in rx {
                run::evaluate_audit_event(
                    &mut k8s_audit,
                    &event,
                    &dispatcher,
                    "console-test",
                    &mut detections,
                    &metrics,
                );
            }
        })
    };
    Peregrine {
        servers,
        dispatcher,
        metrics,
        web_port,
        audit_port,
        audit_thread: Some(audit_thread),
        syscall_rules: Some(syscall),
        alerts_file,
    }
}

impl Peregrine {
    fn replay(&mut self, capture: &Path) {
        let mut rules = self.syscall_rules.take().unwrap();
        let stop = AtomicBool::new(false);
        let mut pipeline = run::Pipeline {
            rules: &mut rules,
            dispatcher: &self.dispatcher,
            metrics: &self.metrics,
            stats_every: None,
            next_stats: None,
            hostname: "console-test",
            drops: None,
            stop: &stop,
            reload: None,
            deadline: None,
            detections: run::Detections::default(),
            exit_requested: false,
            reloaded: None,
            stats_rule: false,
            stats_file: None,
            capture: None,
            containers: None,
            async_events: None,
            async_num: 0,
        };
        run::replay(capture, &mut pipeline).unwrap();
        self.syscall_rules = Some(rules);
    }

    fn post_audit(&self, events: &[Json]) {
        let body = json!({"kind": "EventList", "items": events}).to_string();
        let status = ureq::post(&format!("http://127.0.0.1:{}/k8s-audit", self.audit_port))
            .send(&body)
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200);
    }

    fn stop(mut self) -> Vec<String> {
        self.servers.shutdown();
        if let Some(thread) = self.audit_thread.take() {
            thread.join().unwrap();
        }
        let dispatcher = Arc::try_unwrap(self.dispatcher).ok().expect("one owner");
        dispatcher.shutdown();
        std::fs::read_to_string(&self.alerts_file)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }
}

#[test]
fn the_console_in_a_real_browser() {
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
    let capture = kit.join("captures/curl_google.scap");
    let scratch = tempfile::tempdir().unwrap();
    let mut peregrine = start_peregrine(scratch.path());
    let driver_port = free_port();
    let _driver = start_chromedriver(driver_port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{}/", peregrine.web_port);

    runtime.block_on(async {
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

        client.goto(&url).await.unwrap();
        wait_text(&client, "#link", Duration::from_secs(10), |t| t == "live").await;

        // A capture replayed: its alerts appear within a second.
        let replay_started = Instant::now();
        peregrine.replay(&capture);
        let replayed = replay_started.elapsed();
        let delay = wait_rows(&client, Duration::from_secs(1), "replayed alerts", |rows| {
            rows.iter().any(|r| r.contains("Curl connects"))
        })
        .await;
        eprintln!("console: capture replayed in {replayed:?}; its alerts shown {delay:?} later");
        let from_capture = rows(&client).await.len();
        assert!(from_capture >= 1);

        // Audit events posted to the webhook: shown within a second,
        // newest first, markup as text.
        peregrine.post_audit(&[
            audit_event("settings", "alice"),
            audit_event("flags", "bob"),
        ]);
        let delay = wait_rows(&client, Duration::from_secs(1), "audit alerts", |rows| {
            rows.len() == from_capture + 2
        })
        .await;
        eprintln!("console: audit alerts shown {delay:?} after the webhook answered");
        let now = rows(&client).await;
        assert!(now[0].contains("configmap flags by bob"), "{:#?}", now);
        assert!(
            now[0]
                .contains(r#"<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>"#),
            "the markup is not shown as text: {}",
            now[0]
        );
        let injected = client
            .execute(
                "return [window.pwned === undefined, \
                 document.querySelectorAll('#alerts script, #alerts img').length];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(injected, json!([true, 0]), "markup from an output ran");
        save_screenshot(&client, "alerts").await;

        // The search box narrows: words anywhere in rule, output, fields.
        let search = client.find(Locator::Id("search")).await.unwrap();
        search.send_keys("alice").await.unwrap();
        wait_rows(&client, Duration::from_secs(2), "search alice", |rows| {
            rows.len() == 1 && rows[0].contains("configmap settings by alice")
        })
        .await;
        search.clear().await.unwrap();
        search.send_keys("ka.user.name=bob").await.unwrap();
        wait_rows(&client, Duration::from_secs(2), "search a field", |rows| {
            rows.len() == 1 && rows[0].contains("bob")
        })
        .await;
        client
            .find(Locator::Id("clear-filters"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_rows(&client, Duration::from_secs(2), "cleared", |rows| {
            rows.len() == from_capture + 2
        })
        .await;

        // Filters with counts: the priority facet, then the source.
        let chip = r#".chip[data-dim="priority"][data-value="Critical"]"#;
        wait_text(&client, chip, Duration::from_secs(5), |t| t.ends_with('2')).await;
        click_chip(&client, chip).await;
        wait_rows(&client, Duration::from_secs(2), "priority filter", |rows| {
            rows.len() == 2 && rows.iter().all(|r| r.contains("Critical"))
        })
        .await;
        click_chip(&client, chip).await;
        let source = r#".chip[data-dim="source"][data-value="syscall"]"#;
        click_chip(&client, source).await;
        wait_rows(&client, Duration::from_secs(2), "source filter", |rows| {
            rows.len() == from_capture && rows.iter().all(|r| r.contains("syscall"))
        })
        .await;
        let tag = r#".chip[data-dim="tag"][data-value="k8s"]"#;
        click_chip(&client, source).await;
        click_chip(&client, tag).await;
        wait_rows(&client, Duration::from_secs(2), "tag filter", |rows| {
            rows.len() == 2
        })
        .await;
        click_chip(&client, tag).await;

        // Pause holds the list; resume shows what came meanwhile.
        client
            .find(Locator::Id("pause"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        peregrine.post_audit(&[audit_event("paused", "carol")]);
        wait_text(&client, "#shown", Duration::from_secs(2), |t| {
            t.contains("(1 new)")
        })
        .await;
        assert!(!rows(&client).await.iter().any(|r| r.contains("carol")));
        client
            .find(Locator::Id("pause"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_rows(&client, Duration::from_secs(2), "resumed", |rows| {
            rows.first().is_some_and(|r| r.contains("carol"))
        })
        .await;

        // The detail view: every output field, the rule, the raw JSON.
        let first_curl = client
            .find(Locator::XPath(
                "//tr[contains(@class,'alert-row')][contains(., 'Curl connects')]",
            ))
            .await
            .unwrap();
        first_curl.click().await.unwrap();
        wait_text(&client, "#detail-rule", Duration::from_secs(2), |t| {
            t == "Curl connects"
        })
        .await;
        let fields = client
            .find(Locator::Id("detail-fields"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            fields.contains("proc.cmdline") && fields.contains("fd.name"),
            "{fields}"
        );
        assert!(fields.contains("curl"), "{fields}");
        wait_text(&client, "#detail-desc", Duration::from_secs(2), |t| {
            t == "curl opened a connection"
        })
        .await;
        wait_text(&client, "#detail-condition", Duration::from_secs(2), |t| {
            t == "evt.type=connect and proc.name=curl"
        })
        .await;
        let tags = client
            .find(Locator::Id("detail-tags"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(tags, "network, curl");
        let raw = client
            .find(Locator::Id("detail-raw"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let raw: Json = serde_json::from_str(&raw).expect("the raw JSON is JSON");
        assert_eq!(raw["rule"], "Curl connects");
        assert_eq!(raw["priority"], "Warning");
        save_screenshot(&client, "detail").await;

        // Health: the module's drop counters move in a storm (set as the
        // ring reader reports them) and the banner says so.
        client
            .find(Locator::Id("tab-health"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_text(&client, "#health-rules", Duration::from_secs(5), |t| {
            t == "3"
        })
        .await;
        wait_text(&client, "#health-outputs", Duration::from_secs(5), |t| {
            t.contains("console") && t.contains("file")
        })
        .await;
        for (buffer, page_fault) in [(0, 0), (120, 3), (5000, 7)] {
            peregrine.metrics.set_kernel(RingStats {
                n_evts: 1_000_000 + buffer,
                n_drops_buffer: buffer,
                n_drops_pf: page_fault,
                ..RingStats::default()
            });
            let expect = format!("drops_buffer {buffer}");
            wait_text(&client, "#health-drops", Duration::from_secs(5), |t| {
                t.contains(&expect)
            })
            .await;
        }
        wait_text(&client, "#banner", Duration::from_secs(5), |t| {
            t.contains("kernel drops_buffer: 5000") && t.contains("drops_page_fault: 7")
        })
        .await;
        rings_per_cpu(&client, &peregrine).await;
        save_screenshot(&client, "health").await;

        // Rules: loaded, enabled, fire counts, the condition expanded.
        client
            .find(Locator::Id("tab-rules"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_text(&client, "#rules-count", Duration::from_secs(5), |t| {
            t.starts_with("3 of 3 rules")
        })
        .await;
        let configmap = client
            .find(Locator::XPath(
                "//tr[contains(@class,'rule-row')][contains(., 'Configmap created')]",
            ))
            .await
            .unwrap();
        let fired = configmap
            .find(Locator::Css(".fired"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(fired, "3");
        configmap.click().await.unwrap();
        wait_text(&client, "#rule-expanded", Duration::from_secs(2), |t| {
            t == "ka.verb=create and ka.target.resource=configmaps"
        })
        .await;
        save_screenshot(&client, "rules").await;

        try_conditions(&client).await;
        client.close().await.unwrap();
    });

    let written = peregrine.stop();
    // The console took nothing from the other outputs.
    assert_eq!(
        written.iter().filter(|l| l.contains("Critical")).count(),
        3,
        "{written:#?}"
    );
    assert!(written
        .iter()
        .any(|l| l.contains("Curl connects") || l.contains("curl connected")));
}

/// Per CPU, from real rings as the reader sees them: the ring of CPU 1
/// fills and drops, CPU 0 does not; each shows as such, the full one in
/// the banner and with the health tab marked, and the reading thread's CPU
/// time shows.
async fn rings_per_cpu(client: &Client, peregrine: &Peregrine) {
    let (mut calm, calm_ring) = UserRing::create(0, 8192).unwrap().split().unwrap();
    let (mut busy, busy_ring) = UserRing::create(1, 8192).unwrap().split().unwrap();
    assert_eq!(
        calm.write_event(1, 1, 1, &[b"ok"]).unwrap(),
        WriteOutcome::Written
    );
    let filler = vec![0u8; 1000];
    let mut dropped = 0;
    for ts in 0..20 {
        if busy.write_event(ts, 1, 1, &[&filler]).unwrap() != WriteOutcome::Written {
            dropped += 1;
        }
    }
    assert!(dropped > 0);
    let reader = MergedReader::new(vec![calm_ring, busy_ring]);
    let stats = reader.stats();
    let busy_fill = stats.per_cpu[1].used_bytes as f64 * 100.0 / 8192.0;
    peregrine.metrics.rings.set_cpus(stats.per_cpu);
    peregrine.metrics.rings.set_reader_thread();
    let started = Instant::now();
    let (rows, banner, tab, reader_cpu) = loop {
        let got = client
            .execute(
                "return [Array.from(document.querySelectorAll('#health-cpus tbody tr'), \
                   r => [r.className].concat(Array.from(r.cells, c => c.textContent))), \
                 document.getElementById('banner').textContent, \
                 document.getElementById('tab-health').textContent, \
                 document.getElementById('health-reader-cpu').textContent];",
                vec![],
            )
            .await
            .unwrap();
        let got: (Vec<Vec<String>>, String, String, String) = serde_json::from_value(got).unwrap();
        if got.0.len() == 2 {
            break got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no per-CPU rows: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // [class, cpu, events, buffer, page fault, too large, re-entry, fill]
    assert_eq!(rows[0][..7], ["", "0", "1", "0", "0", "0", "0"], "{rows:?}");
    assert_eq!(rows[0][7], "0.4%");
    assert_eq!(rows[1][0], "alarm", "{rows:?}");
    assert_eq!(rows[1][1], "1");
    assert_eq!(rows[1][3], dropped.to_string());
    assert_eq!(rows[1][7], format!("{busy_fill:.1}%"));
    assert!(busy_fill >= 80.0, "{busy_fill}");
    assert!(
        banner.contains(&format!("cpu 1 dropped {dropped} (buffer)"))
            && banner.contains("cpu 1 ring"),
        "{banner}"
    );
    assert_eq!(tab, "Health ⚠");
    let seconds: f64 = reader_cpu
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("reader CPU: {reader_cpu:?}"));
    assert!(seconds > 0.0, "{reader_cpu}");
}

/// Clicks a facet chip; the chips are drawn again every two seconds, so a
/// chip found just before that is stale and is looked up again.
async fn click_chip(client: &Client, css: &str) {
    for _ in 0..5 {
        if let Ok(chip) = client.find(Locator::Css(css)).await {
            if chip.click().await.is_ok() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot click {css}");
}

/// The fire count the rules view shows for `rule`.
async fn fired(client: &Client, rule: &str) -> u64 {
    let count = client
        .execute(
            "return Array.from(document.querySelectorAll('#rules tbody tr')) \
             .filter(r => r.cells[0].textContent === arguments[0]) \
             .map(r => r.querySelector('.fired').textContent)[0];",
            vec![json!(rule)],
        )
        .await
        .unwrap();
    count.as_str().unwrap().parse().unwrap()
}

/// Types `condition` in the try box and waits for the answer.
async fn try_in_page(client: &Client, condition: &str) -> (String, String, Vec<Vec<String>>) {
    client
        .execute(
            "document.getElementById('try-status').textContent = ''; \
             document.getElementById('try-error').textContent = ''; \
             document.getElementById('try-condition').value = arguments[0];",
            vec![json!(condition)],
        )
        .await
        .unwrap();
    client
        .find(Locator::Id("try-run"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let got = client
            .execute(
                "return [document.getElementById('try-status').textContent, \
                 document.getElementById('try-error').textContent, \
                 Array.from(document.querySelectorAll('#try-matches tbody tr'), \
                   r => Array.from(r.cells, c => c.textContent))];",
                vec![],
            )
            .await
            .unwrap();
        let (status, error, rows): (String, String, Vec<Vec<String>>) =
            serde_json::from_value(got).unwrap();
        if (!status.is_empty() && status != "trying…") || !error.is_empty() {
            return (status, error, rows);
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no answer to {condition}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The try box: a rule's own condition matches the kept events as often
/// as the rule fired on them, macros and lists included; a bad condition
/// gets the load error as a rule load words it, as text.
async fn try_conditions(client: &Client) {
    let connects = fired(client, "Curl connects").await;
    let opens = fired(client, "Curl opens a file").await;
    assert!(connects > 0, "the capture fired no Curl connects");

    let (status, error, rows) = try_in_page(client, "evt.type=connect and proc.name=curl").await;
    assert!(error.is_empty(), "{error}");
    assert!(
        status.starts_with(&format!("{connects} of ")),
        "{status}: the rule fired {connects} times"
    );
    assert_eq!(rows.len() as u64, connects);
    // evt.time, evt.type, proc.name, ...
    assert!(
        rows.iter().all(|r| r[1] == "connect" && r[2] == "curl"),
        "{rows:?}"
    );
    let tried: u64 = status
        .split(" of ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(tried > 500, "{status}");
    save_screenshot(client, "try").await;

    // The macro and the list of the loaded rules.
    let (status, error, _) = try_in_page(
        client,
        "evt.type in (open, openat) and is_curl and fd.name startswith /etc",
    )
    .await;
    assert!(error.is_empty(), "{error}");
    assert!(status.starts_with(&format!("{opens} of ")), "{status}");

    let (_, error, rows) = try_in_page(client, "proc.nosuch = 1 and is_curl").await;
    assert_eq!(
        error,
        "LOAD_ERR_COMPILE_CONDITION (Error compiling condition): filter_check called with \
         nonexistent field proc.nosuch"
    );
    assert!(
        rows.is_empty()
            || client
                .find(Locator::Css("#try-matches[hidden]"))
                .await
                .is_ok()
    );
    let (_, error, _) = try_in_page(client, "not_a_macro and proc.name=\"<b>x</b>\"").await;
    assert!(error.starts_with("LOAD_ERR_"), "{error}");
    let injected = client
        .execute(
            "return document.querySelectorAll('#try b, #try script').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(injected, json!(0));
}

/// The `peregrine` command wires the console as configured: its output
/// channel gets the webhook's alerts, and the rules it loaded are listed.
#[test]
fn the_command_serves_the_console_it_is_configured_with() {
    use peregrine_tests::webhook::{
        audit_event, get, post, start_with, stop, WEBSERVER_ON_LOOPBACK,
    };
    let scratch = tempfile::tempdir().unwrap();
    let rules = scratch.path().join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let running = start_with(
        &rules,
        &[
            &WEBSERVER_ON_LOOPBACK[..],
            &["-o", "webserver.console=true"],
        ]
        .concat(),
    );
    let web = running.web.clone().expect("the webserver listens");
    let event = audit_event(1, "create").replace("pods", "configmaps");
    assert_eq!(post(&running.url, &event), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(&format!("{web}/console/api/summary"));
        assert_eq!(status, 200, "{body}");
        let summary: Json = serde_json::from_str(&body).unwrap();
        if summary["total"] == 1 {
            assert_eq!(summary["by_priority"]["Critical"], 1);
            break;
        }
        assert!(Instant::now() < deadline, "no alert in the console: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = get(&format!("{web}/console/api/rules"));
    assert_eq!(status, 200);
    let rules: Json = serde_json::from_str(&body).unwrap();
    let configmap = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Configmap created")
        .expect("the loaded rules are listed");
    assert_eq!(configmap["fired"], 1);
    assert_eq!(configmap["source"], "k8s_audit");
    let (status, page) = get(&format!("{web}/"));
    assert_eq!(status, 200);
    assert!(page.contains("<script src=\"/console/app.js\""));
    let (_, metrics) = get(&format!("{web}/metrics"));
    assert!(
        metrics.contains("peregrine_output_alerts_total{output=\"console\",outcome=\"sent\"} 1"),
        "{metrics}"
    );
    stop(running);
}
