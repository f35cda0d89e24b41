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
        let channel = ProgramChannel::new(command, keep_alive, Duration::from_secs(5));
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
    let channel = ProgramChannel::new(
        "cat > /dev/null; exit 3".into(),
        false,
        Duration::from_secs(5),
    );
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
    let channel = SyslogChannel::connect_to(&socket_path);
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
    assert_eq!(v["output_fields"]["evt.num"], 7);
    let (_, body) = bodies_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(body.contains("\"rule\":\"rule 8\""));
}

/// `http_output.max_consecutive_timeouts` is how many more times one
/// alert is tried: a receiver that always answers 503 sees it plus one
/// request per alert.
#[test]
fn max_consecutive_timeouts_bounds_the_attempts_per_alert() {
    for (more, expected) in [(0u64, 1usize), (2, 3), (256 + 1, 2)] {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", server.server_addr().to_ip().unwrap());
        let counter = std::thread::spawn(move || {
            let mut seen = 0;
            while let Ok(Some(request)) = server.recv_timeout(Duration::from_secs(2)) {
                seen += 1;
                request.respond(tiny_http::Response::empty(503)).unwrap();
            }
            seen
        });
        let mut config = crate::config::Config::default();
        config.http_output.url = url;
        config.http_output.max_consecutive_timeouts = more;
        config.output_timeout = 60_000;
        let options = HttpOptions::from_config(&config);
        let channel = HttpChannel::new(options).unwrap();
        let dispatcher =
            Dispatcher::new(vec![Box::new(channel)], RenderOptions::default(), 8).unwrap();
        dispatcher.send(alert(1, Priority::Warning));
        let reports = dispatcher.shutdown();
        assert_eq!(reports[0].sent, 0);
        assert_eq!(
            counter.join().unwrap(),
            expected,
            "max_consecutive_timeouts {more}"
        );
    }
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

#[test]
fn a_program_that_never_reads_costs_output_timeout_and_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    // The shell's child (sleep) holds the pipe too: killing only the shell
    // would leave it behind.
    let command = format!("echo $$ > '{}'; sleep 1000; cat", pid_file.display());
    let channel = ProgramChannel::new(command, true, Duration::from_millis(200));
    let dispatcher =
        Dispatcher::new(vec![Box::new(channel)], RenderOptions::default(), 4096).unwrap();
    // Far more than a pipe holds (64 KiB), in lines of ~100 bytes.
    let total = 2_000;
    for n in 0..total {
        dispatcher.send(alert(n, Priority::Notice));
    }
    let reports = dispatcher.shutdown();
    let report = &reports[0];
    assert!(report.failed >= 1, "{report:?}");
    assert_eq!(
        report.sent + report.failed + report.overflowed,
        total,
        "every alert is accounted once: {report:?}"
    );
    assert_eq!(report.queued, 0, "nothing left queued");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The group was killed and the shell reaped: no such process.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn file_output_kept_alive_counts_a_failed_write_once_and_never_writes_it_later() {
    // /dev/full opens and fails every write with ENOSPC.
    let channel = FileChannel::open("/dev/full".into(), true, false).unwrap();
    let dispatcher = Dispatcher::new(vec![Box::new(channel)], RenderOptions::default(), 8).unwrap();
    for n in 0..3 {
        dispatcher.send(alert(n, Priority::Notice));
    }
    let reports = dispatcher.shutdown();
    assert_eq!((reports[0].sent, reports[0].failed), (0, 3), "{reports:?}");
}

#[test]
fn syslog_starts_without_a_daemon_and_reconnects_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("log.sock");
    let channel = SyslogChannel::connect_to(&socket_path);
    let dispatcher = Dispatcher::new(vec![Box::new(channel)], RenderOptions::default(), 8).unwrap();
    dispatcher.send(alert(1, Priority::Warning));
    let wait_for = |done: &dyn Fn(&ChannelReport) -> bool| {
        for _ in 0..500 {
            if done(&dispatcher.reports()[0]) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("timed out: {:?}", dispatcher.reports());
    };
    wait_for(&|r| r.failed == 1);
    let receive = |daemon: &UnixDatagram| {
        let mut buf = [0u8; 4096];
        let n = daemon.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    for (round, n) in [(1, 2), (2, 3)] {
        // The daemon (re)starts on a fresh socket at the same path.
        let _ = std::fs::remove_file(&socket_path);
        let daemon = UnixDatagram::bind(&socket_path).unwrap();
        daemon
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // Past the retry interval the next alert connects.
        std::thread::sleep(Duration::from_millis(1_100));
        dispatcher.send(alert(n, Priority::Warning));
        let got = receive(&daemon);
        assert!(
            got.contains(&format!("alert number {n}")),
            "round {round}: {got}"
        );
        drop(daemon);
    }
    let reports = dispatcher.shutdown();
    assert_eq!((reports[0].sent, reports[0].failed), (2, 1), "{reports:?}");
}

/// A channel that blocks until told to go on, to watch the live counters.
struct Gate(Arc<Mutex<()>>);

impl Channel for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }
    fn emit(&mut self, _alert: &SharedAlert) -> Result<(), OutputError> {
        drop(self.0.lock().unwrap());
        Ok(())
    }
}

#[test]
fn queue_depth_and_oldest_age_are_live() {
    let gate = Arc::new(Mutex::new(()));
    let closed = gate.lock().unwrap();
    let dispatcher = Dispatcher::new(
        vec![Box::new(Gate(Arc::clone(&gate)))],
        RenderOptions::default(),
        8,
    )
    .unwrap();
    for n in 0..5 {
        dispatcher.send(alert(n, Priority::Notice));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (_, stats) = dispatcher.stats_handles().remove(0);
    assert_eq!(stats.queued(), 5);
    assert!(
        stats.oldest_age() >= Duration::from_millis(250),
        "{:?}",
        stats.oldest_age()
    );
    drop(closed);
    let reports = dispatcher.shutdown();
    assert_eq!(reports[0].sent, 5);
    assert_eq!(stats.queued(), 0);
    assert_eq!(stats.oldest_age(), Duration::ZERO);
}

#[test]
fn a_kept_alive_program_that_exits_is_reported_and_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one-line-each.txt");
    // Takes one alert, then exits: each later alert must find it gone and
    // start it again, not write into a pipe nobody reads.
    let command = format!("head -n 1 >> '{}'", path.display());
    let channel = ProgramChannel::new(command, true, Duration::from_secs(5));
    let dispatcher = Dispatcher::new(vec![Box::new(channel)], RenderOptions::default(), 8).unwrap();
    for n in 0..4 {
        dispatcher.send(alert(n, Priority::Notice));
        // Delivered, and the program had its time to exit.
        while dispatcher.reports()[0].sent < n + 1 {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let reports = dispatcher.shutdown();
    assert_eq!((reports[0].sent, reports[0].failed), (4, 0), "{reports:?}");
    assert_eq!(lines(&path).len(), 4, "{:?}", lines(&path));
}
