//! Signals against the real binary: SIGHUP and SIGUSR1 while rules still
//! load, a second SIGTERM while an output is stuck, and `peregrine run`
//! stopped before its command finished. Every wait is bounded.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use peregrine_tests::peregrine_binary;
use peregrine_tests::webhook::{audit_event, post};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("peregrine-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rule(name: &str, pod: &str) -> String {
    format!(
        "- rule: {name}\n  desc: d\n  condition: ka.verb = create and ka.target.name = {pod}\n  output: {name} fired (pod=%ka.target.name)\n  priority: WARNING\n  source: k8s_audit\n"
    )
}

struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// stderr lines read so far.
    seen: Vec<String>,
    /// stdout, read on a thread of its own: a program output left behind
    /// would hold the pipe open, and the test must not block on it.
    stdout: mpsc::Receiver<String>,
}

impl Daemon {
    /// Starts peregrine with the webhook on an ephemeral port; returns at
    /// once (the caller may signal it while it loads).
    fn spawn(args: &[&str]) -> Daemon {
        let mut child = Command::new(peregrine_binary().unwrap())
            .args(args)
            .args(["--disable-source", "syscall"])
            .args([
                "-o",
                "k8s_audit.enabled=true",
                "-o",
                "k8s_audit.listen_address=127.0.0.1",
            ])
            .args(["-o", "k8s_audit.listen_port=0"])
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
        let mut out = child.stdout.take().unwrap();
        let (stdout_tx, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            let _ = stdout_tx.send(text);
        });
        Daemon {
            child,
            lines,
            seen: Vec::new(),
            stdout,
        }
    }

    /// Waits for a stderr line containing `text`; the line.
    fn wait_for(&mut self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with '{text}' in time: {:#?}", self.seen),
            }
        }
    }

    fn webhook(&mut self) -> String {
        let line = self.wait_for("webhook listening on ", Duration::from_secs(120));
        let address = line.split("webhook listening on ").nth(1).unwrap().trim();
        format!("http://{address}")
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit, at most `limit`; the status code, stdout, and
    /// how long it took.
    fn wait_exit(mut self, limit: Duration) -> (Option<i32>, String, Duration, Vec<String>) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let stdout = self
                    .stdout
                    .recv_timeout(Duration::from_secs(10))
                    .expect("stdout closes: nothing outlived peregrine");
                self.seen.extend(self.lines.try_iter());
                return (status.code(), stdout, started.elapsed(), self.seen);
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("peregrine did not exit within {limit:?}: {:#?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn sighup_and_sigusr1_during_startup_are_handled_once_ready() {
    let dir = scratch("startup-signals");
    let rules = dir.join("rules.yaml");
    // Enough rules that loading them takes a while.
    let mut body = String::new();
    for i in 0..4_000 {
        body.push_str(&rule(&format!("Rule {i}"), &format!("pod-{i}")));
    }
    std::fs::write(&rules, body).unwrap();
    let mut daemon = Daemon::spawn(&["-r", rules.to_str().unwrap()]);
    // Past exec, well before the rules are loaded.
    std::thread::sleep(Duration::from_millis(30));
    let signalled = Instant::now();
    daemon.signal("HUP");
    daemon.signal("USR1");
    let url = daemon.webhook();
    println!(
        "the webhook listened {:?} after the signals",
        signalled.elapsed()
    );
    daemon.wait_for("SIGHUP received: reloading", Duration::from_secs(120));
    daemon.wait_for("rules reloaded from", Duration::from_secs(120));
    assert_eq!(post(&url, &audit_event(7, "create")), 200);
    std::thread::sleep(Duration::from_millis(500));
    daemon.signal("TERM");
    let (code, stdout, _, seen) = daemon.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{seen:#?}");
    assert!(stdout.contains("Rule 7 fired (pod=pod-7)"), "{stdout}");
    let reloads = seen
        .iter()
        .filter(|l| l.contains("SIGHUP received"))
        .count();
    assert_eq!(reloads, 1, "the early SIGHUP is handled once: {seen:#?}");
}

/// Process ids whose process group is `pgid`, leaving out zombies other
/// than the leader: the leader (the shell) is Peregrine's child to reap,
/// its orphaned children are init's.
fn group_members(pgid: i32) -> Vec<i32> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after "(comm)": state ppid pgrp ...
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        let pgrp: i32 = fields.get(2).and_then(|f| f.parse().ok()).unwrap_or(0);
        let zombie = fields.first() == Some(&"Z");
        if pgrp == pgid && (!zombie || pid == pgid) {
            members.push(pid);
        }
    }
    members
}

/// An EventList of `n` audit events that the rules match.
fn event_list(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| audit_event(i, "create")).collect();
    format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{}]}}"#,
        items.join(",")
    )
}

/// The process group of the program started last (it writes its pid).
fn last_program_group(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("program.pid"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

/// A daemon whose program output never reads; returns it and the
/// program's process group once the program runs.
fn daemon_with_stuck_program(dir: &Path, output_timeout_ms: u64) -> (Daemon, i32) {
    let rules = dir.join("rules.yaml");
    // Lines of ~250 bytes: 1,000 alerts are far more than a pipe holds.
    let padding = "x".repeat(200);
    std::fs::write(
        &rules,
        format!("- rule: Any Create\n  desc: d\n  condition: ka.verb = create\n  output: created {padding} (pod=%ka.target.name)\n  priority: WARNING\n  source: k8s_audit\n"),
    )
    .unwrap();
    let pid_file = dir.join("program.pid");
    let program = format!(
        "program_output.program=echo $$ > {}; sleep 1000",
        pid_file.display()
    );
    let timeout = format!("output_timeout={output_timeout_ms}");
    let mut daemon = Daemon::spawn(&[
        "-r",
        rules.to_str().unwrap(),
        "-o",
        "program_output.enabled=true",
        "-o",
        "program_output.keep_alive=true",
        "-o",
        &program,
        "-o",
        &timeout,
        "-o",
        "stdout_output.enabled=false",
    ]);
    let url = daemon.webhook();
    assert_eq!(post(&url, &event_list(1_000)), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let pgid = loop {
        if let Some(pid) = last_program_group(dir) {
            break pid;
        }
        assert!(Instant::now() < deadline, "the program never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let the pipe fill: the output is now stuck in a write. With a short
    // output_timeout the stuck program may already have been killed and
    // started again: take the one running now.
    std::thread::sleep(Duration::from_millis(500));
    let mut pgid = pgid;
    while group_members(pgid).is_empty() {
        assert!(Instant::now() < deadline, "no program keeps running");
        std::thread::sleep(Duration::from_millis(20));
        pgid = last_program_group(dir).unwrap_or(pgid);
    }
    (daemon, pgid)
}

#[test]
fn a_second_sigterm_forces_the_stop_and_kills_the_program() {
    let dir = scratch("second-sigterm");
    let (daemon, pgid) = daemon_with_stuck_program(&dir, 60_000);
    daemon.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    daemon.signal("TERM");
    let (code, _, took, seen) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(1), "{seen:#?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let said = seen.join("\n");
    assert!(said.contains("forcing the stop"), "{said}");
    assert!(
        said.contains("output 'program':") && said.contains("queued alerts were not delivered"),
        "{said}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        group_members(pgid),
        Vec::<i32>::new(),
        "the program's group is gone"
    );
    let last = last_program_group(&dir).unwrap();
    assert_eq!(
        group_members(last),
        Vec::<i32>::new(),
        "the last program's too"
    );
}

#[test]
fn one_sigterm_stops_within_the_deadline_despite_a_program_that_never_reads() {
    let dir = scratch("stuck-program");
    let (daemon, pgid) = daemon_with_stuck_program(&dir, 500);
    daemon.signal("TERM");
    let (code, _, took, seen) = daemon.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{seen:#?}");
    println!("stopped {took:?} after SIGTERM");
    let said = seen.join("\n");
    assert!(
        said.contains("did not take the alert within output_timeout"),
        "{said}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(group_members(pgid), Vec::<i32>::new(), "killed and reaped");
    let last = last_program_group(&dir).unwrap();
    assert_eq!(group_members(last), Vec::<i32>::new(), "every restart too");
}

#[test]
fn peregrine_run_stopped_before_its_command_ends_exits_125() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let dir = scratch("run-stopped");
    let marker = dir.join("started");
    let script = format!("touch {}; sleep 5", marker.display());
    let mut run = Command::new(&peregrine)
        .args([
            "run",
            "-o",
            "stdout_output.enabled=false",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !marker.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the command never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    let mut stderr = String::new();
    run.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("stopped before the traced command finished"),
        "{stderr}"
    );
}
