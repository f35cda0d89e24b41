//! Channels tested against real counterparts on this machine: files, a
//! shell program, a syslog datagram socket and an HTTP server on loopback.

use std::os::unix::net::UnixDatagram;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::alert::{Alert, Priority, RenderOptions};

fn alert(n: u64, priority: Priority) -> Alert {
    Alert {
        time_ns: 1_700_000_000_000_000_000 + n,
        rule: format!("rule {n}"),
        priority,
        source: "syscall".into(),
        tags: vec!["test".into()],
        hostname: "host".into(),
        output: format!("alert number {n}"),
        output_fields: vec![("evt.num".into(), Some(n.to_string()))],
    }
}

fn json_options() -> RenderOptions {
    RenderOptions {
        json_output: true,
        ..RenderOptions::default()
    }
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn file_channel_appends_and_reopens_after_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.txt");
    std::fs::write(&path, "earlier line\n").unwrap();
    let channel = FileChannel::open(path.clone(), true, true).unwrap();
    let dispatcher = Dispatcher::new(vec![Box::new(channel)], json_options(), 64).unwrap();
    dispatcher.send(alert(1, Priority::Warning));
    dispatcher.send(alert(2, Priority::Warning));
    // logrotate: move the file away, then signal; later alerts must land in
    // a new file at the old path.
    let rotated = dir.path().join("alerts.txt.1");
    // Let the worker write the first two before the rename.
    while dispatcher.reports()[0].sent < 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::rename(&path, &rotated).unwrap();
    dispatcher.reopen();
    dispatcher.send(alert(3, Priority::Error));
    let reports = dispatcher.shutdown();
    assert_eq!(reports[0].sent, 3);
    assert_eq!(reports[0].overflowed, 0);

    let old = lines(&rotated);
    assert_eq!(old.len(), 3);
    assert_eq!(old[0], "earlier line");
    assert!(old[1].contains("\"rule\":\"rule 1\""), "{}", old[1]);
    let new = lines(&path);
    assert_eq!(new.len(), 1);
    assert!(new[0].contains("\"rule\":\"rule 3\""));
}

#[test]
fn file_channel_reports_a_bad_path_at_startup() {
    let error = FileChannel::open("/nonexistent-dir/alerts.txt".into(), false, true)
        .err()
        .unwrap();
    assert!(
        error.to_string().contains("/nonexistent-dir/alerts.txt"),
        "{error}"
    );
}

#[test]
fn program_channel_runs_through_the_shell_per_alert_and_kept_alive() {
    let dir = tempfile::tempdir().unwrap();
    for keep_alive in [false, true] {
        let path = dir.path().join(format!("program-{keep_alive}.txt"));
        let command = format!("cat >> '{}'", path.display());
        let channel = ProgramChannel::new(command, keep_alive);
        let dispatcher =
            Dispatcher::new(vec![Box::new(channel)], RenderOptions::default(), 64).unwrap();
        for n in 0..5 {
            dispatcher.send(alert(n, Priority::Notice));
        }
        let reports = dispatcher.shutdown();
        assert_eq!(reports[0].sent, 5);
        assert_eq!(reports[0].failed, 0);
        let got = lines(&path);
        assert_eq!(got.len(), 5, "keep_alive={keep_alive}: {got:?}");
        for (n, line) in got.iter().enumerate() {
            assert!(
                line.ends_with(&format!(": Notice alert number {n}")),
                "{line}"
            );
        }
    }
}

#[test]
fn program_channel_counts_a_failing_program() {
    let channel = ProgramChannel::new("cat > /dev/null; exit 3".into(), false);
    let dispatcher = Dispatcher::new(vec![Box::new(channel)], RenderOptions::default(), 8).unwrap();
    dispatcher.send(alert(1, Priority::Notice));
    let reports = dispatcher.shutdown();
    assert_eq!(reports[0].sent, 0);
    assert_eq!(reports[0].failed, 1);
}

#[test]
fn syslog_channel_maps_priority_to_severity() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("log.sock");
    let daemon = UnixDatagram::bind(&socket_path).unwrap();
    daemon
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let channel = SyslogChannel::connect_to(&socket_path).unwrap();
    let dispatcher = Dispatcher::new(vec![Box::new(channel)], RenderOptions::default(), 8).unwrap();
    dispatcher.send(alert(1, Priority::Critical));
    dispatcher.send(alert(2, Priority::Debug));
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..2 {
        let n = daemon.recv(&mut buf).unwrap();
        received.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    dispatcher.shutdown();
    // <facility * 8 + severity>: LOG_USER is 1; critical is 2, debug 7.
    assert!(received[0].starts_with("<10>"), "{}", received[0]);
    assert!(received[0].contains("peregrine[") && received[0].contains("Critical alert number 1"));
    assert!(received[1].starts_with("<15>"), "{}", received[1]);
}

#[test]
fn http_channel_posts_falco_json_and_retries() {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", server.server_addr().to_ip().unwrap());
    let (bodies_tx, bodies_rx) = mpsc::channel();
    let server_thread = std::thread::spawn(move || {
        // Refuse the first request so the channel has to retry.
        for (i, mut request) in server.incoming_requests().enumerate() {
            let mut body = String::new();
            request.as_reader().read_to_string(&mut body).unwrap();
            let content_type = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Content-Type"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            let status = if i == 0 { 503 } else { 200 };
            request.respond(tiny_http::Response::empty(status)).unwrap();
            if status == 200 {
                bodies_tx.send((content_type, body)).unwrap();
            }
            if i == 2 {
                break;
            }
        }
    });
    let options = HttpOptions {
        url,
        ..HttpOptions::default()
    };
    let channel = HttpChannel::new(options).unwrap();
    let dispatcher = Dispatcher::new(vec![Box::new(channel)], RenderOptions::default(), 8).unwrap();
    dispatcher.send(alert(7, Priority::Warning));
    dispatcher.send(alert(8, Priority::Warning));
    let reports = dispatcher.shutdown();
    server_thread.join().unwrap();
    assert_eq!(reports[0].sent, 2);
    let (content_type, body) = bodies_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(content_type, "application/json");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["rule"], "rule 7");
    assert_eq!(v["priority"], "Warning");
    assert_eq!(v["output_fields"]["evt.num"], "7");
    let (_, body) = bodies_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(body.contains("\"rule\":\"rule 8\""));
}

#[test]
fn http_channel_refuses_a_non_http_url() {
    let options = HttpOptions {
        url: "ftp://x".into(),
        ..HttpOptions::default()
    };
    let error = HttpChannel::new(options).err().unwrap().to_string();
    assert!(error.contains("not an http:// or https:// URL"), "{error}");
}

/// A channel that holds its first alert until released, standing in for a
/// stalled network peer.
struct Stalled {
    entered: mpsc::Sender<()>,
    release: Arc<Mutex<mpsc::Receiver<()>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Channel for Stalled {
    fn name(&self) -> &'static str {
        "stalled"
    }
    fn emit(&mut self, alert: &SharedAlert) -> Result<(), OutputError> {
        let first = self.seen.lock().unwrap().is_empty();
        self.seen.lock().unwrap().push(alert.alert.rule.clone());
        if first {
            self.entered.send(()).unwrap();
            self.release.lock().unwrap().recv().unwrap();
        }
        Ok(())
    }
}

#[test]
fn a_slow_channel_overflows_its_own_queue_and_counts_it() {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stalled = Stalled {
        entered: entered_tx,
        release: Arc::new(Mutex::new(release_rx)),
        seen: seen.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fast.txt");
    let fast = FileChannel::open(path.clone(), true, true).unwrap();
    let capacity = 4;
    let dispatcher = Dispatcher::new(
        vec![Box::new(stalled), Box::new(fast)],
        json_options(),
        capacity,
    )
    .unwrap();
    dispatcher.send(alert(0, Priority::Warning));
    entered_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    // One alert is held inside emit; `capacity` more fit the queue.
    let total = 20;
    for n in 1..total {
        dispatcher.send(alert(n, Priority::Warning));
        // Keep the fast channel's queue from filling while we flood.
        while dispatcher.reports()[1].queued >= capacity {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let during = dispatcher.reports();
    assert_eq!(during[0].overflowed, total - 1 - capacity as u64);
    assert_eq!(during[1].overflowed, 0);
    release_tx.send(()).unwrap();
    let reports = dispatcher.shutdown();
    assert_eq!(reports[0].sent, 1 + capacity as u64);
    assert_eq!(reports[0].sent + reports[0].overflowed, total);
    assert_eq!(reports[1].sent, total);
    assert_eq!(lines(&path).len(), total as usize);
    assert_eq!(seen.lock().unwrap().len(), 1 + capacity);
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with the
/// openssl command; None (with a reason printed) where it is missing.
fn tls_material(dir: &std::path::Path) -> Option<(std::path::PathBuf, Vec<u8>, Vec<u8>)> {
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if !run(&["version"]) {
        eprintln!(
            "skipped: the openssl command is not installed (scripts/install-deps installs it)"
        );
        return None;
    }
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    let made = run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Peregrine test CA",
    ]) && run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    assert!(made, "openssl could not make the test certificates");
    Some((
        dir.join("ca.pem"),
        std::fs::read(dir.join("server.pem")).unwrap(),
        std::fs::read(dir.join("server.key")).unwrap(),
    ))
}

#[test]
fn https_output_trusts_the_configured_ca_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let Some((ca, certificate, private_key)) = tls_material(dir.path()) else {
        return;
    };
    let server = tiny_http::Server::https(
        "127.0.0.1:0",
        tiny_http::SslConfig {
            certificate,
            private_key,
        },
    )
    .unwrap();
    let url = format!("https://{}/", server.server_addr().to_ip().unwrap());
    let server_thread = std::thread::spawn(move || {
        let mut received = 0;
        // Long enough for the two expected deliveries, then a short look
        // for any unexpected third.
        while let Ok(Some(mut request)) =
            server.recv_timeout(Duration::from_secs(if received < 2 { 10 } else { 1 }))
        {
            let mut body = String::new();
            let _ = request.as_reader().read_to_string(&mut body);
            let _ = request.respond(tiny_http::Response::empty(200));
            received += 1;
        }
        received
    });
    let deliver = |options: HttpOptions| {
        let channel = HttpChannel::new(options).unwrap();
        let dispatcher =
            Dispatcher::new(vec![Box::new(channel)], RenderOptions::default(), 8).unwrap();
        dispatcher.send(alert(1, Priority::Warning));
        dispatcher.shutdown().remove(0)
    };
    let trusted = deliver(HttpOptions {
        url: url.clone(),
        ca_cert: Some(ca.clone()),
        max_attempts: 1,
        ..HttpOptions::default()
    });
    assert_eq!(
        (trusted.sent, trusted.failed),
        (1, 0),
        "the configured CA must be trusted"
    );
    let untrusted = deliver(HttpOptions {
        url: url.clone(),
        max_attempts: 1,
        ..HttpOptions::default()
    });
    assert_eq!(
        (untrusted.sent, untrusted.failed),
        (0, 1),
        "a server signed by an unknown CA must be refused"
    );
    let insecure = deliver(HttpOptions {
        url,
        insecure: true,
        max_attempts: 1,
        ..HttpOptions::default()
    });
    assert_eq!(
        (insecure.sent, insecure.failed),
        (1, 0),
        "insecure skips verification"
    );
    assert_eq!(
        server_thread.join().unwrap(),
        2,
        "exactly the two accepted deliveries reached the server"
    );
}
