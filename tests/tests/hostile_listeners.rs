//! The webserver and the audit webhook against clients that mean harm, on
//! loopback, with the real binary: declared bodies larger than memory,
//! bodies that never come, more idle connections than descriptors, a
//! storm of reloads while posting, a `max_body_bytes` that once wrapped to
//! 0, and syscall evaluation carrying on meanwhile. Each case counts the
//! alerts: nothing accepted is lost, nothing is evaluated twice, nothing
//! refused or abandoned is evaluated. Every loop is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use peregrine_tests::webhook::{
    audit_event, get, post, stop, Running, WEBHOOK_ON_LOOPBACK, WEBSERVER_ON_LOOPBACK,
};

const RULES: &str = r#"
- rule: Pod Created
  desc: a pod was created
  condition: ka.verb = create
  output: pod created (pod=%ka.target.name)
  priority: WARNING
  source: k8s_audit
"#;

/// 2^63-1 and 2^64-1: what killed the process and its workers.
const HUGE_LENGTHS: [&str; 2] = ["9223372036854775807", "18446744073709551615"];

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("peregrine-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rules_in(dir: &Path) -> PathBuf {
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    rules
}

/// A port free now (bound and released), for configs that name one.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `peregrine args` (under `prlimit --nofile=N` when given) and
/// waits until it names its webhook; the webserver's URL when it has one.
fn launch(args: &[&str], nofile: Option<u32>) -> Running {
    let binary = peregrine_tests::peregrine_binary().unwrap();
    let mut command = match nofile {
        Some(n) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg(&binary);
            c
        }
        None => Command::new(&binary),
    };
    let mut child = command
        .args(args)
        .args(["--disable-source", "syscall", "-o", "json_output=true"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut web, mut startup) = (None, Vec::new());
    let url = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the webhook never said it listens: {startup:#?}"));
        startup.push(line.clone());
        if let Some(rest) = line.split("Webserver listening on ").nth(1) {
            web = rest
                .split_whitespace()
                .next()
                .map(|a| format!("http://{a}"));
        }
        if let Some(rest) = line.split("webhook listening on ").nth(1) {
            break format!("http://{}", rest.trim());
        }
    };
    Running {
        child,
        url,
        web,
        startup,
        stderr_lines: rx,
    }
}

/// The webhook and the webserver on ephemeral loopback ports.
fn launch_both(rules: &Path, nofile: Option<u32>) -> Running {
    let rules = rules.display().to_string();
    launch(
        &[
            &["-r", &rules][..],
            &WEBHOOK_ON_LOOPBACK,
            &WEBSERVER_ON_LOOPBACK,
        ]
        .concat(),
        nofile,
    )
}

fn socket_of(url: &str) -> SocketAddr {
    let rest = url.trim_start_matches("http://");
    rest.split('/').next().unwrap().parse().unwrap()
}

/// Sends `request` raw and reads the status of the answer (None: no
/// answer within `wait`).
fn raw_status(address: SocketAddr, request: &[u8], wait: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.write_all(request).ok()?;
    status_of(&mut stream, wait)
}

fn status_of(stream: &mut TcpStream, wait: Duration) -> Option<u16> {
    stream.set_read_timeout(Some(wait)).ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") && head.len() < 256 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace().nth(1)?.parse().ok()
}

fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The pods named by the JSON alerts of `stdout`, in order.
fn alerted_pods(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|a| {
            let output = a["output"].as_str()?.to_string();
            Some(
                output
                    .split("pod=")
                    .nth(1)?
                    .trim_end_matches(')')
                    .to_string(),
            )
        })
        .collect()
}

fn expect_each_once(stdout: &str, pods: impl IntoIterator<Item = usize>) {
    let mut alerted = alerted_pods(stdout);
    alerted.sort();
    let mut wanted: Vec<String> = pods.into_iter().map(|i| format!("pod-{i}")).collect();
    wanted.sort();
    assert_eq!(
        alerted, wanted,
        "each accepted event evaluated exactly once"
    );
}

#[test]
fn declared_bodies_larger_than_memory_are_refused_and_cost_nothing() {
    let dir = scratch("huge");
    let running = launch_both(&rules_in(&dir), None);
    let webhook = socket_of(&running.url);
    let web = socket_of(running.web.as_deref().expect("the webserver listens"));
    let before = resident_kib(running.child.id());
    for length in HUGE_LENGTHS {
        for (address, path) in [
            (webhook, "/k8s-audit"),
            (webhook, "/elsewhere"),
            (web, "/healthz"),
            (web, "/metrics"),
            (web, "/versions"),
        ] {
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: {length}\r\n\r\n{{\"kind\":"
            );
            let status = raw_status(address, request.as_bytes(), Duration::from_secs(10));
            let status = status.unwrap_or_else(|| panic!("no answer to {length} on {path}"));
            if path == "/k8s-audit" && length == HUGE_LENGTHS[0] {
                assert_eq!(status, 413, "{length} on {path}");
            } else {
                // 2^64-1 is no length HTTP can carry: hyper refuses the
                // head itself (431); the other paths take no body.
                assert!((400..500).contains(&status), "{length} on {path}: {status}");
            }
        }
    }
    // Many more, all at once: the process neither dies nor grows.
    let threads: Vec<_> = (0..40)
        .map(|i| {
            let address = if i % 2 == 0 { webhook } else { web };
            let length = HUGE_LENGTHS[i % 2];
            std::thread::spawn(move || {
                let request = format!(
                    "POST /k8s-audit HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
                );
                raw_status(address, request.as_bytes(), Duration::from_secs(10))
            })
        })
        .collect();
    for thread in threads {
        assert!(
            thread.join().unwrap().is_some(),
            "a request was not answered"
        );
    }
    let grown = resident_kib(running.child.id()).saturating_sub(before);
    assert!(grown < 64 * 1024, "resident memory grew by {grown} KiB");
    let web_url = running.web.clone().unwrap();
    assert_eq!(get(&format!("{web_url}/healthz")).0, 200);
    for i in 0..5 {
        assert_eq!(post(&running.url, &audit_event(i, "create")), 200);
    }
    let (stdout, _) = stop(running);
    expect_each_once(&stdout, 0..5);
}

#[test]
fn bodies_that_never_come_block_no_one_and_are_never_evaluated() {
    let dir = scratch("silent");
    let running = launch_both(&rules_in(&dir), None);
    let webhook = socket_of(&running.url);
    let web = socket_of(running.web.as_deref().unwrap());
    // More silent clients than tiny_http had workers (2 and 4), each half
    // way through an event that would alert.
    let event = audit_event(900, "create");
    let half = &event[..event.len() / 2];
    let mut silent: Vec<TcpStream> = (0..12)
        .map(|_| {
            let mut stream = TcpStream::connect(webhook).unwrap();
            let head = format!(
                "POST /k8s-audit HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{half}",
                event.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream
        })
        .collect();
    let idle_web: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut stream = TcpStream::connect(web).unwrap();
            stream
                .write_all(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
                .unwrap();
            stream
        })
        .collect();
    // Everyone else is served at once.
    let started = Instant::now();
    for i in 0..20 {
        assert_eq!(post(&running.url, &audit_event(i, "create")), 200);
    }
    let web_url = running.web.clone().unwrap();
    assert_eq!(get(&format!("{web_url}/healthz")).0, 200);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "served in {:?}",
        started.elapsed()
    );
    // The silent ones are told so (408) within the body timeouts.
    for stream in &mut silent {
        assert_eq!(status_of(stream, Duration::from_secs(30)), Some(408));
    }
    drop(idle_web);
    // SIGTERM while clients still hold connections stops promptly.
    let _held: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut stream = TcpStream::connect(webhook).unwrap();
            stream
                .write_all(b"POST /k8s-audit HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
                .unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let stopping = Instant::now();
    let (stdout, _) = stop(running);
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "stopped in {:?}",
        stopping.elapsed()
    );
    expect_each_once(&stdout, 0..20);
}

#[test]
fn idle_connections_beyond_the_descriptor_limit_leave_health_and_posts_working() {
    let dir = scratch("idle");
    let running = launch_both(&rules_in(&dir), Some(256));
    let webhook = socket_of(&running.url);
    let web = socket_of(running.web.as_deref().unwrap());
    // ~600 connections that say nothing, past the process's 256
    // descriptors: accept() fails with EMFILE for a while.
    let idle: Vec<TcpStream> = (0..600)
        .filter_map(|i| TcpStream::connect(if i % 3 == 0 { web } else { webhook }).ok())
        .collect();
    assert!(idle.len() > 500, "only {} connections made", idle.len());
    let web_url = running.web.clone().unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut health = (0, String::new());
    while Instant::now() < deadline {
        health = get(&format!("{web_url}/healthz"));
        if health.0 == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(health.0, 200, "/healthz: {health:?}");
    // What happened is counted: descriptors ran out, idle ones gave way.
    let metrics = get(&format!("{web_url}/metrics")).1;
    let total = |name: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    assert!(
        total("falcosecurity_peregrine_http_accept_errors_total") > 0,
        "{metrics}"
    );
    assert!(
        total("falcosecurity_peregrine_http_connections_evicted_total") > 0,
        "{metrics}"
    );
    let mut accepted = Vec::new();
    for i in 0..10 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = post(&running.url, &audit_event(i, "create"));
            if status == 200 {
                accepted.push(i);
                break;
            }
            assert!(status == 0 || status == 503, "post {i} answered {status}");
            assert!(Instant::now() < deadline, "post {i} never accepted");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    drop(idle);
    // The listeners are still there afterwards.
    assert_eq!(get(&format!("{web_url}/healthz")).0, 200);
    assert_eq!(post(&running.url, &audit_event(10, "create")), 200);
    accepted.push(10);
    let (stdout, _) = stop(running);
    expect_each_once(&stdout, accepted);
}

#[test]
fn a_reload_storm_on_the_same_port_refuses_nothing_and_evaluates_each_event_once() {
    let dir = scratch("storm");
    let rules = rules_in(&dir);
    let config = dir.join("peregrine.yaml");
    let port = free_port();
    let write_config = |max_body_bytes: usize| {
        std::fs::write(
            &config,
            format!(
                "rules_file: [{}]\nk8s_audit:\n  enabled: true\n  listen_address: 127.0.0.1\n  \
                 listen_port: {port}\n  max_body_bytes: {max_body_bytes}\n",
                rules.display()
            ),
        )
        .unwrap();
    };
    write_config(1_000_000);
    // Reloaded by SIGHUP alone, not also by the watch of the file.
    let running = launch(
        &[
            "-c",
            &config.display().to_string(),
            "-o",
            "watch_config_files=false",
        ],
        None,
    );
    let url = running.url.clone();
    let clients = 4;
    let per_client = 150;
    let posters: Vec<_> = (0..clients)
        .map(|c| {
            let url = url.clone();
            std::thread::spawn(move || {
                (0..per_client)
                    .map(|k| {
                        let i = c * per_client + k;
                        (i, post(&url, &audit_event(i, "create")))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    // Every reload changes the webhook's settings: each restarts it on
    // the same port while the posts go on.
    let pid = running.child.id().to_string();
    let mut reloads = 0;
    while !posters.iter().all(|p| p.is_finished()) && reloads < 200 {
        write_config(if reloads % 2 == 0 {
            2_000_000
        } else {
            1_000_000
        });
        Command::new("kill").args(["-HUP", &pid]).status().unwrap();
        reloads += 1;
        std::thread::sleep(Duration::from_millis(25));
    }
    let mut accepted = Vec::new();
    for poster in posters {
        for (i, status) in poster.join().unwrap() {
            assert_eq!(status, 200, "post {i} refused during the reload storm");
            accepted.push(i);
        }
    }
    assert!(reloads > 5, "only {reloads} reloads during the posts");
    // The webhook is up afterwards, on the same port.
    assert_eq!(post(&url, &audit_event(9999, "create")), 200);
    accepted.push(9999);
    let (stdout, stderr) = stop(running);
    assert!(!stderr.contains("is down"), "{stderr}");
    assert!(
        stderr.contains("webhook restarted with its new settings"),
        "no restart seen: {stderr}"
    );
    expect_each_once(&stdout, accepted);
}

#[test]
fn max_body_bytes_of_two_to_the_64_is_refused_at_load_with_its_key() {
    let dir = scratch("maxbody");
    let rules = rules_in(&dir);
    let binary = peregrine_tests::peregrine_binary().unwrap();
    let run = Command::new(binary)
        .args(["-r", &rules.display().to_string()])
        .args(["--disable-source", "syscall"])
        .args(WEBHOOK_ON_LOOPBACK)
        .args(["-o", "k8s_audit.max_body_bytes=18446744073709551615"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!run.status.success(), "started with a wrapped limit");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("k8s_audit.max_body_bytes"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
}

#[test]
fn syscall_evaluation_runs_on_while_the_listeners_are_attacked() {
    let Some(binary) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let dir = scratch("syscalls");
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        "- rule: Marker Run\n  desc: d\n  condition: evt.type = execve and proc.name = true\n  \
         output: marker (cmdline=%proc.cmdline)\n  priority: WARNING\n",
    )
    .unwrap();
    let markers = 16;
    let workload = format!(
        "i=0; while [ $i -lt {markers} ]; do /bin/true pg-hostile-$i; sleep 0.25; i=$((i+1)); done"
    );
    let mut child = Command::new(binary)
        .args(["run", "-r", &rules.display().to_string()])
        .args(["-o", "json_output=true"])
        .args(["-o", "webserver.enabled=true"])
        .args(["-o", "webserver.listen_address=127.0.0.1"])
        .args(["-o", "webserver.listen_port=0"])
        .args(["--", "sh", "-c", &workload])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = stderr.lines().map_while(Result::ok);
    let web = lines
        .by_ref()
        .take(200)
        .find_map(|l| {
            let rest = l.split("Webserver listening on ").nth(1)?.to_string();
            rest.split_whitespace().next()?.parse::<SocketAddr>().ok()
        })
        .expect("the webserver listens");
    std::thread::spawn(move || lines.for_each(drop));
    // The attack: huge lengths, silent bodies and idle sockets, until the
    // workload is over.
    let attack_until = Instant::now() + Duration::from_secs(3);
    let mut held = Vec::new();
    while Instant::now() < attack_until {
        for length in HUGE_LENGTHS {
            let request =
                format!("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n");
            let _ = raw_status(web, request.as_bytes(), Duration::from_secs(2));
        }
        if let Ok(mut stream) = TcpStream::connect(web) {
            let _ = stream.write_all(b"POST /x HTTP/1.1\r\nContent-Length: 9\r\n\r\n");
            held.push(stream);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    drop(held);
    assert!(status.success(), "peregrine run ended with {status}");
    for i in 0..markers {
        let marker = format!("pg-hostile-{i}\"");
        let marker_end = format!("pg-hostile-{i})");
        assert!(
            stdout.contains(&marker) || stdout.contains(&marker_end),
            "no alert for marker {i}:\n{stdout}"
        );
    }
}
