use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::alert::{render, Alert, Priority, RenderOptions};
use crate::outputs::{Channel, ConsoleChannel, Dispatcher, FileChannel};
use crate::servers::listener::{Health, Limits, Listener, Setup};
use crate::servers::webserver::Routes;

struct Served {
    listener: Listener,
    _runtime: tokio::runtime::Runtime,
}

fn serve(console: Option<Console>) -> Served {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let health = Arc::new(Health::default());
    let mut routes = Routes::new(Arc::clone(&health));
    routes.healthz = Some("/healthz".into());
    routes.console = console;
    let setup = Setup {
        name: "webserver".into(),
        service: Arc::new(routes),
        limits: Limits {
            max_connections: 128,
            ..Limits::default()
        },
        tls: None,
        health,
    };
    let listener = Listener::start("127.0.0.1:0", setup, runtime.handle()).unwrap();
    Served {
        listener,
        _runtime: runtime,
    }
}

/// One request on a fresh connection: status, lower-cased head, body.
fn request(address: SocketAddr, head: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(format!("{head}\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head[9..12].parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn alert(rule: &str, output: &str, priority: Priority) -> Alert {
    Alert {
        time_ns: 1_700_000_000_000_000_000,
        rule: rule.into(),
        priority,
        source: "syscall".into(),
        tags: vec!["container".into()],
        hostname: "box".into(),
        output: output.into(),
        output_fields: vec![
            ("container.image.repository".into(), Some("nginx".into())),
            ("container.name".into(), Some("web".into())),
            ("proc.name".into(), Some("sh".into())),
        ],
    }
}

fn publish(hub: &Hub, alert: Alert) {
    hub.publish(&render(alert, &RenderOptions::default()));
}

#[test]
fn no_console_unless_configured() {
    let served = serve(None);
    assert_eq!(request(served.listener.address, "GET / HTTP/1.1").0, 404);
    assert_eq!(
        request(served.listener.address, "GET /console/api/summary HTTP/1.1").0,
        404
    );
    served.listener.stop();
}

#[test]
fn page_has_a_strict_policy_and_no_inline_script_or_outside_resource() {
    let served = serve(Some(Console::new(Arc::new(Hub::new()), "", None)));
    let address = served.listener.address;
    let (status, head, body) = request(address, "GET / HTTP/1.1");
    assert_eq!(status, 200);
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(head.contains("content-type: text/html"), "{head}");
    // Every script comes from a file of this origin; no handler attributes.
    for (at, _) in body.match_indices("<script") {
        assert!(body[at..].starts_with("<script src=\"/console/"), "{body}");
    }
    assert!(!body.contains(" on"), "an inline handler: {body}");
    for asset in [assets::INDEX_HTML, assets::APP_JS, assets::APP_CSS] {
        assert!(!asset.contains("http://") && !asset.contains("https://"));
        assert!(!asset.contains("innerHTML") && !asset.contains("insertAdjacentHTML"));
        assert!(!asset.contains("eval("));
    }
    let (status, head, _) = request(address, "GET /console/app.js HTTP/1.1");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/javascript"), "{head}");
    // No write endpoints.
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let (status, head, _) = request(
            address,
            &format!("{method} /console/api/rules HTTP/1.1\r\nContent-Length: 0"),
        );
        assert_eq!(status, 405, "{method}");
        assert!(head.contains("allow: get, head"), "{head}");
    }
    assert_eq!(request(address, "GET /console/nothing HTTP/1.1").0, 404);
    // The other endpoints are where they were.
    assert_eq!(request(address, "GET /healthz HTTP/1.1").0, 200);
    served.listener.stop();
}

fn get_with(path: &str, peer: &str, header: Option<(&str, &str)>) -> hyper::Request<()> {
    let mut request = hyper::Request::get(path);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let mut request = request.body(()).unwrap();
    request.extensions_mut().insert(ConnectionInfo {
        peer: Some(peer.parse().unwrap()),
        tls: false,
        client_certificate: false,
    });
    request
}

#[test]
fn without_a_token_only_loopback_clients_are_answered() {
    let console = Console::new(Arc::new(Hub::new()), "", None);
    let status = |peer| console.answer(&get_with("/", peer, None)).status().as_u16();
    assert_eq!(status("127.0.0.1:5000"), 200);
    assert_eq!(status("[::1]:5000"), 200);
    assert_eq!(status("[::ffff:127.0.0.1]:5000"), 200);
    assert_eq!(status("10.1.2.3:5000"), 403);
    assert_eq!(status("[2001:db8::1]:5000"), 403);
    // Unknown peer: refused.
    let mut request = hyper::Request::get("/").body(()).unwrap();
    request.extensions_mut().insert(ConnectionInfo {
        peer: None,
        tls: false,
        client_certificate: false,
    });
    assert_eq!(console.answer(&request).status().as_u16(), 403);
}

#[test]
fn with_a_token_every_client_must_show_it() {
    let console = Console::new(Arc::new(Hub::new()), "s3cret-token", None);
    let status = |path, peer, header| {
        console
            .answer(&get_with(path, peer, header))
            .status()
            .as_u16()
    };
    for peer in ["127.0.0.1:1", "10.1.2.3:1"] {
        assert_eq!(status("/", peer, None), 401);
        assert_eq!(status("/console/api/rules", peer, None), 401);
        assert_eq!(status("/?token=s3cret-tokeN", peer, None), 401);
        assert_eq!(status("/?token=s3cret", peer, None), 401);
        let bearer = Some(("authorization", "Bearer s3cret-token"));
        assert_eq!(status("/console/api/rules", peer, bearer), 200);
        let cookie = Some(("cookie", "a=b; peregrine_console=s3cret-token"));
        assert_eq!(status("/console/api/summary", peer, cookie), 200);
        let wrong = Some(("cookie", "peregrine_console=nope"));
        assert_eq!(status("/console/api/summary", peer, wrong), 401);
    }
    // The token in the address: a cookie, and a redirect that drops it.
    let response = console.answer(&get_with("/?token=s3cret%2Dtoken", "10.1.2.3:1", None));
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(response.headers()["location"], "/");
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert_eq!(
        cookie,
        "peregrine_console=s3cret-token; Path=/; HttpOnly; SameSite=Strict"
    );
    assert!(response.headers().contains_key("content-security-policy"));
    // Only on the page, not on the API.
    assert_eq!(
        status("/console/api/rules?token=s3cret-token", "10.1.2.3:1", None),
        401
    );
}

/// Reads server-sent events from `stream` until `until` says stop or the
/// stream ends; returns the `data:` of each `alert` and whether a
/// `dropped` event came.
fn read_events(
    reader: &mut impl BufRead,
    mut until: impl FnMut(&[serde_json::Value]) -> bool,
) -> (Vec<serde_json::Value>, bool) {
    let mut alerts = Vec::new();
    let mut event = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return (alerts, false),
            Ok(_) => {}
        }
        let line = line.trim_end();
        if let Some(name) = line.strip_prefix("event: ") {
            event = name.to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            if event == "dropped" {
                return (alerts, true);
            }
            if event == "alert" {
                alerts.push(serde_json::from_str(data).unwrap());
                if until(&alerts) {
                    return (alerts, false);
                }
            }
        }
    }
}

fn open_stream(address: SocketAddr) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(b"GET /console/api/alerts HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if line.to_ascii_lowercase().starts_with("http/1.1") {
            assert!(line.contains(" 200 "), "{line}");
        }
    }
    reader
}

/// hyper sends the stream chunked: this strips the chunk framing.
struct Dechunk<R> {
    inner: R,
    left: usize,
}

impl<R: BufRead> Read for Dechunk<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.left == 0 {
            let mut size = String::new();
            if self.inner.read_line(&mut size)? == 0 {
                return Ok(0);
            }
            let size = size.trim();
            if size.is_empty() {
                continue;
            }
            self.left = usize::from_str_radix(size, 16)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            if self.left == 0 {
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n;
        Ok(n)
    }
}

fn events(address: SocketAddr) -> BufReader<Dechunk<BufReader<TcpStream>>> {
    BufReader::new(Dechunk {
        inner: open_stream(address),
        left: 0,
    })
}

#[test]
fn the_stream_sends_the_alerts_kept_then_each_new_one_once() {
    let hub = Arc::new(Hub::new());
    for n in 0..3 {
        publish(&hub, alert("Kept", &format!("kept {n}"), Priority::Notice));
    }
    let served = serve(Some(Console::new(Arc::clone(&hub), "", None)));
    let mut stream = events(served.listener.address);
    let (kept, _) = read_events(&mut stream, |a| a.len() == 3);
    assert_eq!(
        kept.iter().map(|a| a["output"].clone()).collect::<Vec<_>>(),
        ["kept 0", "kept 1", "kept 2"]
    );
    publish(
        &hub,
        alert(
            "Live",
            "<script>alert(1)</script> & \"x\"\nnext",
            Priority::Critical,
        ),
    );
    let (live, dropped) = read_events(&mut stream, |a| !a.is_empty());
    assert!(!dropped);
    let live = &live[0];
    assert_eq!(live["id"], 4);
    // The text as it was: the page puts it in as text.
    assert_eq!(live["output"], "<script>alert(1)</script> & \"x\"\nnext");
    assert_eq!(live["priority"], "Critical");
    assert_eq!(live["image"], "nginx");
    assert_eq!(live["container"], "web");
    assert_eq!(live["fields"]["proc.name"], "sh");
    assert_eq!(live["raw"]["rule"], "Live");
    assert_eq!(hub.total(), 4);
    let summary = hub.summary();
    assert_eq!(summary["by_priority"]["Critical"], 1);
    assert_eq!(summary["by_rule"]["Kept"], 3);
    assert_eq!(summary["by_image"]["nginx"], 4);
    assert_eq!(summary["by_tag"]["container"], 4);
    let timeline = summary["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), hub::TIMELINE_MINUTES);
    assert_eq!(timeline.last().unwrap()["by_priority"]["Notice"], 3);
    served.listener.stop();
}

#[test]
fn memory_is_bounded_whatever_the_alert_rate() {
    let hub = Arc::new(Hub::new());
    let fired = hub::RING_ALERTS + 500;
    for n in 0..fired {
        publish(&hub, alert(&format!("rule {n}"), "out", Priority::Warning));
    }
    // A new client starts at the last BACKLOG_ALERTS; the ring holds
    // RING_ALERTS: one reading from the first alert is told it is behind.
    let (client, first) = hub.subscribe();
    assert_eq!(first, (fired + 1 - hub::BACKLOG_ALERTS) as u64);
    let waker = &futures_noop_waker();
    match hub.read(client, 1, waker) {
        hub::Read::Behind(missed) => assert_eq!(missed, 500),
        _ => panic!("the first alerts are still kept"),
    }
    match hub.read(client, (fired + 1) as u64, waker) {
        hub::Read::Waiting => {}
        _ => panic!("an alert past the last one"),
    }
    let summary = hub.summary();
    let rules = summary["by_rule"].as_object().unwrap();
    assert_eq!(rules.len(), hub::MAX_DISTINCT + 1);
    assert_eq!(rules["(other)"], (fired - hub::MAX_DISTINCT) as u64);
    assert_eq!(summary["total"], fired as u64);
}

/// A waker that does nothing (`Waker::noop` is newer than our Rust floor).
fn futures_noop_waker() -> std::task::Waker {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    std::task::Waker::from(Arc::new(Noop))
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// 50 browsers watch while 10k alerts fire, and one client stops reading:
/// the file output gets every alert, the stalled client is dropped, the
/// console's memory stays bounded, and the publisher never waits.
#[test]
fn fifty_clients_and_a_stalled_one_while_ten_thousand_alerts_fire() {
    const ALERTS: usize = 10_000;
    const CLIENTS: usize = 50;
    let hub = Arc::new(Hub::new());
    let served = serve(Some(Console::new(Arc::clone(&hub), "", None)));
    let address = served.listener.address;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.txt");

    // The stalled client: asks for the stream and never reads.
    let mut stalled = TcpStream::connect(address).unwrap();
    stalled
        .write_all(b"GET /console/api/alerts HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // A small receive buffer, so that it stalls soon.
    let readers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let mut stream = events(address);
            // Counts without parsing: 50 readers must not starve the
            // machine they share with the publisher.
            std::thread::spawn(move || {
                let (mut got, mut line) = (0, String::new());
                loop {
                    line.clear();
                    match stream.read_line(&mut line) {
                        Ok(0) | Err(_) => return (got, false),
                        Ok(_) => {}
                    }
                    if line.starts_with("event: alert") {
                        got += 1;
                    } else if line.starts_with("event: dropped") {
                        return (got, true);
                    } else if line.contains(r#""output":"last""#) {
                        return (got, false);
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.live_clients() < CLIENTS + 1 {
        assert!(Instant::now() < deadline, "clients did not connect");
        std::thread::sleep(Duration::from_millis(10));
    }

    let rss_before = rss_bytes();
    let channels: Vec<Box<dyn Channel>> = vec![
        Box::new(ConsoleChannel::new(Arc::clone(&hub))),
        Box::new(FileChannel::open(file.clone(), true, true).unwrap()),
    ];
    let dispatcher = Dispatcher::new(channels, RenderOptions::default(), 16_384).unwrap();
    let started = Instant::now();
    // A long output, so that the stalled client's buffers fill.
    let padding = "x".repeat(600);
    for n in 0..ALERTS - 1 {
        dispatcher.send(alert(
            "Storm",
            &format!("alert {n} {padding}"),
            Priority::Warning,
        ));
    }
    dispatcher.send(alert("Storm", "last", Priority::Warning));
    let sending = started.elapsed();
    // The console's thread takes its time on a loaded machine: what
    // matters is that it gets every alert, never that it is quick.
    let deadline = Instant::now() + Duration::from_secs(120);
    while hub.total() < ALERTS as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let publishing = started.elapsed();
    let reports = dispatcher.shutdown();
    let rss_after = rss_bytes();

    for report in &reports {
        assert_eq!(report.sent, ALERTS as u64, "{report:?}");
        assert_eq!(report.overflowed, 0, "{report:?}");
    }
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written.lines().count(), ALERTS);
    assert_eq!(hub.total(), ALERTS as u64);

    let results: Vec<(usize, bool)> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let kept_up = results.iter().filter(|(n, d)| !d && *n >= ALERTS).count();
    let dropped = results.iter().filter(|(_, d)| *d).count();
    eprintln!(
        "console load: {ALERTS} alerts sent in {sending:?}, all in the console after \
         {publishing:?}; of {CLIENTS} reading clients {kept_up} got every alert, {dropped} fell a \
         ring behind and were dropped; RSS {} -> {} MiB",
        rss_before >> 20,
        rss_after >> 20
    );
    // Every reading client ended with the last alert or a drop notice.
    assert_eq!(kept_up + dropped, CLIENTS, "{results:?}");

    // The stalled client is a ring behind: once it reads, it learns it
    // was dropped, and its stream ends.
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut seen = Vec::new();
    let _ = stalled.read_to_end(&mut seen);
    let seen = String::from_utf8_lossy(&seen);
    assert!(
        seen.contains("event: dropped"),
        "the stalled client was not dropped"
    );
    assert!(seen.matches("event: alert").count() < ALERTS);
    // Bounded: the ring and the live backlog, not the storm.
    assert!(
        rss_after.saturating_sub(rss_before) < 64 << 20,
        "RSS grew by {} MiB",
        (rss_after - rss_before) >> 20
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while hub.live_clients() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    served.listener.stop();
    let _ = Ordering::Relaxed;
}

#[test]
fn live_clients_are_capped() {
    let hub = Arc::new(Hub::new());
    let console = Console::new(Arc::clone(&hub), "", None);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let streams: Vec<_> = (0..MAX_LIVE_CLIENTS)
        .map(|_| console.answer(&get_with("/console/api/alerts", "127.0.0.1:1", None)))
        .collect();
    assert!(streams.iter().all(|s| s.status() == 200));
    let refused = console.answer(&get_with("/console/api/alerts", "127.0.0.1:1", None));
    assert_eq!(refused.status(), 503);
    drop(streams);
    let again = console.answer(&get_with("/console/api/alerts", "127.0.0.1:1", None));
    assert_eq!(again.status(), 200);
}

#[test]
fn health_reads_the_metrics_text() {
    let parsed = parse_prometheus(
        "peregrine_events_total 10\n\
         peregrine_output_alerts_total{output=\"stdout\",outcome=\"failed\"} 2\n\
         peregrine_rule_alerts_total{rule=\"a \\\"q\\\", b\",priority=\"Error\"} 3\n",
    );
    assert_eq!(parsed.len(), 3);
    assert_eq!(parsed[0]["name"], "peregrine_events_total");
    assert_eq!(parsed[0]["value"], 10.0);
    assert_eq!(parsed[1]["labels"]["output"], "stdout");
    assert_eq!(parsed[1]["labels"]["outcome"], "failed");
    assert_eq!(parsed[2]["labels"]["rule"], "a \"q\", b");
    assert_eq!(parsed[2]["labels"]["priority"], "Error");
}

#[test]
fn rules_show_conditions_expanded_and_fire_counts() {
    let ruleset = crate::ruleset::load(
        &[crate::ruleset::RulesInput::Text {
            name: "test.yaml".into(),
            text: "- macro: etc\n  condition: fd.name startswith /etc\n\
                   - rule: Etc write\n  desc: writes below etc\n  condition: etc and evt.type=open\n  \
                   output: \"x %fd.name\"\n  priority: ERROR\n  tags: [filesystem]\n\
                   - rule: Off\n  desc: off\n  condition: evt.type=close\n  output: x\n  \
                   priority: INFO\n  enabled: false\n"
                .into(),
        }],
        None,
    );
    assert!(!ruleset.has_errors());
    let hub = Hub::new();
    hub.set_rules(&ruleset);
    publish(&hub, alert("Etc write", "x /etc/a", Priority::Error));
    let rules = hub.rules();
    let list = rules["rules"].as_array().unwrap();
    let etc = list.iter().find(|r| r["name"] == "Etc write").unwrap();
    assert_eq!(etc["condition"], "etc and evt.type=open");
    assert_eq!(
        etc["expanded"],
        "(fd.name startswith /etc) and evt.type=open"
    );
    assert_eq!(etc["fired"], 1);
    assert_eq!(etc["enabled"], true);
    assert_eq!(etc["description"], "writes below etc");
    let off = list.iter().find(|r| r["name"] == "Off").unwrap();
    assert_eq!(off["enabled"], false);
    assert_eq!(off["fired"], 0);
    assert_eq!(rules["reloads"], 0);
    hub.set_rules(&ruleset);
    assert_eq!(hub.rules()["reloads"], 1);
}

#[test]
fn the_console_keys_load_off_by_default_and_typos_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("falco.yaml");
    std::fs::write(&path, "webserver:\n  enabled: true\n").unwrap();
    let config = crate::config::Config::load(Some(&path), &[])
        .unwrap()
        .config;
    assert!(!config.webserver.console);
    assert_eq!(config.webserver.console_token, "");
    std::fs::write(
        &path,
        "webserver:\n  enabled: true\n  console: true\n  console_token: abc\n",
    )
    .unwrap();
    let config = crate::config::Config::load(Some(&path), &[])
        .unwrap()
        .config;
    assert!(config.webserver.console);
    assert_eq!(config.webserver.console_token, "abc");
    let config = crate::config::Config::load(Some(&path), &["webserver.console=false".into()])
        .unwrap()
        .config;
    assert!(!config.webserver.console);
    std::fs::write(&path, "webserver:\n  consol: true\n").unwrap();
    let error = match crate::config::Config::load(Some(&path), &[]) {
        Ok(_) => panic!("a typo is accepted"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("consol"), "{error}");
}

/// Runs openssl in `dir`; false when it is missing or fails.
fn openssl(dir: &std::path::Path, args: &[&str]) -> bool {
    std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A CA, a server certificate for localhost, a client certificate the
/// CA signed and one it did not; None without a working openssl.
fn certificates(dir: &std::path::Path) -> Option<()> {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let self_signed = |name: &str, subject: &str, extra: &[&str]| {
        let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
        let mut args = vec!["req", "-x509", "-days", "2", "-subj", subject];
        args.extend(ec);
        args.extend(extra);
        args.extend(["-keyout", &key, "-out", &cert]);
        openssl(dir, &args)
    };
    let leaf = ["-addext", "basicConstraints=critical,CA:FALSE"];
    let server = [&["-addext", "subjectAltName=DNS:localhost"][..], &leaf].concat();
    if !(self_signed("ca", "/CN=console test CA", &[])
        && self_signed("server", "/CN=localhost", &server)
        && self_signed("rogue", "/CN=rogue", &leaf))
    {
        return None;
    }
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .ok()?;
    let mut request = vec!["req", "-subj", "/CN=client"];
    request.extend(ec);
    request.extend(["-keyout", "client.key", "-out", "client.csr"]);
    let signed = openssl(dir, &request)
        && openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "client.ext",
                "-out",
                "client.pem",
            ],
        );
    let key = std::fs::read(dir.join("server.key")).ok()?;
    let cert = std::fs::read(dir.join("server.pem")).ok()?;
    std::fs::write(dir.join("server-both.pem"), [key, cert].concat()).ok()?;
    signed.then_some(())
}

fn tls_agent(dir: &std::path::Path, client: Option<&str>) -> ureq::Agent {
    use ureq::tls::{ClientCert, PemItem, RootCerts, TlsConfig};
    let read = |name: String| std::fs::read(dir.join(name)).unwrap();
    let certs = |pem: &[u8]| -> Vec<_> {
        ureq::tls::parse_pem(pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(cert)) => Some(cert.to_owned()),
                _ => None,
            })
            .collect()
    };
    let mut tls = TlsConfig::builder().root_certs(RootCerts::new_with_certs(&certs(&read(
        "server.pem".into(),
    ))));
    if let Some(name) = client {
        let key = ureq::tls::parse_pem(&read(format!("{name}.key")))
            .find_map(|item| match item {
                Ok(PemItem::PrivateKey(key)) => Some(key.to_owned()),
                _ => None,
            })
            .unwrap();
        let chain = certs(&read(format!("{name}.pem")));
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls.build())
        .build()
        .new_agent()
}

#[test]
fn a_client_certificate_from_the_console_ca_opens_it_over_https() {
    let dir = tempfile::tempdir().unwrap();
    if certificates(dir.path()).is_none() {
        eprintln!("skipped: the openssl command is missing or failed");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let health = Arc::new(Health::default());
    let mut routes = Routes::new(Arc::clone(&health));
    routes.healthz = Some("/healthz".into());
    // A token no client here shows: only the certificate can open it.
    routes.console = Some(Console::new(Arc::new(Hub::new()), "unused-token", None));
    let tls = crate::servers::webserver::tls_acceptor_verifying(
        &dir.path().join("server-both.pem"),
        Some(&dir.path().join("ca.pem")),
    )
    .unwrap();
    let setup = Setup {
        name: "webserver".into(),
        service: Arc::new(routes),
        limits: Limits::default(),
        tls: Some(tls),
        health,
    };
    let listener = Listener::start("127.0.0.1:0", setup, runtime.handle()).unwrap();
    let base = format!("https://localhost:{}", listener.address.port());
    let status = |agent: &ureq::Agent, path: &str| {
        agent
            .get(&format!("{base}{path}"))
            .call()
            .map(|r| r.status().as_u16())
    };
    let anonymous = tls_agent(dir.path(), None);
    assert_eq!(
        status(&anonymous, "/healthz").unwrap(),
        200,
        "probes need no certificate"
    );
    assert_eq!(status(&anonymous, "/").unwrap(), 401);
    let client = tls_agent(dir.path(), Some("client"));
    assert_eq!(status(&client, "/").unwrap(), 200);
    assert_eq!(status(&client, "/console/api/summary").unwrap(), 200);
    // A certificate from another CA fails the handshake.
    let rogue = tls_agent(dir.path(), Some("rogue"));
    assert!(status(&rogue, "/").is_err());
    listener.stop();
    // The client CA file is checked when the listener is set up.
    let missing = crate::servers::webserver::tls_acceptor_verifying(
        &dir.path().join("server-both.pem"),
        Some(&dir.path().join("absent.pem")),
    )
    .err()
    .unwrap();
    assert!(
        missing.contains("cannot read the client CA file"),
        "{missing}"
    );
}
