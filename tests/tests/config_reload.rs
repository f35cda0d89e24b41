//! SIGHUP re-reads the config file and applies it to a running peregrine:
//! outputs, the rules its `rules_file` names and its `priority`,
//! `metrics`, `syscall_event_drops`, the webserver and the webhook. A
//! config or rules that no longer load change nothing, and settings that
//! need a restart are named as such. Real processes, real signals, real
//! files.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use peregrine_tests::webhook::{audit_event, get, post, start_args, start_with, stop, Running};

/// These tests reload by SIGHUP alone: the watch of the files they
/// rewrite (watch_config_files, tests/tests/watch_config.rs) would reload
/// too, at its own moment.
const NO_WATCH: &str = "watch_config_files=false";

const RULES: &str = r#"
- rule: Pod Created
  desc: a pod was created
  condition: ka.verb = create
  output: pod created (pod=%ka.target.name)
  priority: WARNING
  source: k8s_audit
"#;

/// A scratch folder holding the audit rules `RULES` as rules.yaml, and the
/// path the test's config goes to: (folder, rules, config).
fn scratch_with_rules(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch(name);
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let config = dir.join("peregrine.yaml");
    (dir, rules, config)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "peregrine-config-reload-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An audit rule on pods created (or updated, with `verb`).
fn audit_rule(name: &str, priority: &str) -> String {
    audit_rule_on(name, priority, "create")
}

fn audit_rule_on(name: &str, priority: &str, verb: &str) -> String {
    format!(
        "- rule: {name}\n  desc: d\n  condition: ka.verb = {verb}\n  output: {name} fired (pod=%ka.target.name)\n  priority: {priority}\n  source: k8s_audit\n"
    )
}

fn send_hup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Sends SIGHUP and waits for a stderr line containing `wanted`.
fn hangup_until(running: &Running, wanted: &str) -> String {
    send_hup(running.child.id());
    wait_for(&running.stderr_lines, wanted)
}

/// Waits for a line containing `wanted`.
fn wait_for(lines: &mpsc::Receiver<String>, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no line with {wanted:?}: {seen:#?}"));
        if line.contains(wanted) {
            return line;
        }
        seen.push(line);
    }
}

fn alerts_in(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The rule and pod of each JSON alert on stdout, in order.
fn fired(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|a| a["source"] == "k8s_audit")
        .map(|a| {
            (
                a["rule"].as_str().unwrap().to_string(),
                a["output_fields"]["ka.target.name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn sighup_applies_output_settings_and_names_what_needs_a_restart() {
    let (dir, rules, config) = scratch_with_rules("outputs");
    let (first, second) = (dir.join("first.json"), dir.join("second.json"));
    std::fs::write(
        &config,
        format!(
            "file_output:\n  enabled: true\n  filename: {}\n",
            first.display()
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let running = start_with(&rules, &["-c", &config_arg, "-o", NO_WATCH]);
    let url = running.url.clone();
    assert_eq!(post(&url, &audit_event(1, "create")), 200);

    // New file, no output property, and a driver change.
    std::fs::write(
        &config,
        format!(
            "file_output:\n  enabled: true\n  filename: {}\njson_include_output_property: false\n\
             driver:\n  snaplen: 4096\n",
            second.display()
        ),
    )
    .unwrap();
    let reloaded = hangup_until(&running, "configuration reloaded");
    assert!(reloaded.contains("outputs now stdout, file"), "{reloaded}");
    // The restart note follows the reload line.
    let restart = wait_for(&running.stderr_lines, "take effect at the next restart");
    assert!(restart.contains("driver"), "{restart}");
    assert_eq!(post(&url, &audit_event(2, "create")), 200);

    // A config that no longer loads leaves the outputs as they are, and
    // says which file is at fault.
    std::fs::write(&config, "file_output: [\n").unwrap();
    let refused = hangup_until(&running, "nothing was changed");
    assert!(refused.contains(&config_arg), "{refused}");
    assert_eq!(post(&url, &audit_event(3, "create")), 200);

    let (stdout, _stderr) = stop(running);
    let pods = |alerts: &[serde_json::Value]| -> Vec<String> {
        alerts
            .iter()
            .map(|a| {
                a["output_fields"]["ka.target.name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let before = alerts_in(&first);
    assert_eq!(pods(&before), ["pod-1"]);
    assert!(before[0].get("output").is_some());
    let after = alerts_in(&second);
    assert_eq!(pods(&after), ["pod-2", "pod-3"]);
    assert!(
        after.iter().all(|a| a.get("output").is_none()),
        "json_include_output_property: false applies after the reload"
    );
    let printed = stdout.lines().filter(|l| l.starts_with('{')).count();
    assert_eq!(printed, 3, "stdout kept every alert across reloads");
}

/// A pod created, then updated.
fn post_both(url: &str, i: usize) {
    assert_eq!(post(url, &audit_event(i, "create")), 200);
    assert_eq!(post(url, &audit_event(i, "update")), 200);
}

#[test]
fn sighup_loads_the_rules_files_and_priority_of_the_new_config() {
    let dir = scratch("rules");
    let first = dir.join("first.yaml");
    std::fs::write(&first, audit_rule("First Rule", "WARNING")).unwrap();
    // A folder, as rules.d: its files load in name order.
    let second = dir.join("second.d");
    std::fs::create_dir_all(&second).unwrap();
    std::fs::write(second.join("a.yaml"), audit_rule("Second Rule", "WARNING")).unwrap();
    std::fs::write(
        second.join("b.yaml"),
        audit_rule_on("Low Rule", "NOTICE", "update"),
    )
    .unwrap();
    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, "- rule: Broken\n  condition: (((\n").unwrap();
    let config = dir.join("peregrine.yaml");
    let write_config = |rules: &Path, priority: &str| {
        std::fs::write(
            &config,
            format!(
                "rules_file:\n  - {}\npriority: {priority}\n",
                rules.display()
            ),
        )
        .unwrap();
    };
    write_config(&first, "debug");
    let config_arg = config.display().to_string();
    let running = start_args(&["-c", &config_arg, "-o", NO_WATCH]);
    let url = running.url.clone();
    post_both(&url, 1);

    // Another rules folder, and a priority that leaves out NOTICE.
    write_config(&second, "warning");
    let line = hangup_until(&running, "rules reloaded from");
    assert!(line.contains("a.yaml") && line.contains("b.yaml"), "{line}");
    post_both(&url, 2);

    // The same rules, every priority again.
    write_config(&second, "debug");
    hangup_until(&running, "rules reloaded from");
    post_both(&url, 3);

    // A config that is not YAML: nothing changes.
    std::fs::write(&config, "rules_file: [\n").unwrap();
    let refused = hangup_until(&running, "nothing was changed");
    assert!(refused.contains(&config_arg), "{refused}");
    post_both(&url, 4);

    // A key of the wrong form: named, nothing changes.
    std::fs::write(
        &config,
        format!("rules_file:\n  - {}\npriority: loud\n", first.display()),
    )
    .unwrap();
    let refused = hangup_until(&running, "nothing was changed");
    assert!(refused.contains("priority"), "{refused}");
    post_both(&url, 5);

    // A config naming rules that do not compile: the file is named, and
    // neither the rules nor the new priority apply.
    write_config(&broken, "warning");
    let refused = hangup_until(&running, "did not load");
    assert!(refused.contains(&broken.display().to_string()), "{refused}");
    post_both(&url, 6);

    let (stdout, _stderr) = stop(running);
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(r, p)| (r.to_string(), p.to_string()))
            .collect()
    };
    assert_eq!(
        fired(&stdout),
        pairs(&[
            ("First Rule", "pod-1"),
            ("Second Rule", "pod-2"),
            ("Second Rule", "pod-3"),
            ("Low Rule", "pod-3"),
            ("Second Rule", "pod-4"),
            ("Low Rule", "pod-4"),
            ("Second Rule", "pod-5"),
            ("Low Rule", "pod-5"),
            ("Second Rule", "pod-6"),
            ("Low Rule", "pod-6"),
        ]),
        "{stdout}"
    );
}

#[test]
fn command_line_rules_win_over_a_reloaded_rules_file() {
    let dir = scratch("cli-rules");
    let cli_rules = dir.join("cli.yaml");
    std::fs::write(&cli_rules, audit_rule("Command Line Rule", "WARNING")).unwrap();
    let config_rules = dir.join("config.yaml");
    std::fs::write(&config_rules, audit_rule("Config Rule", "WARNING")).unwrap();
    let config = dir.join("peregrine.yaml");
    std::fs::write(&config, "priority: debug\n").unwrap();
    let config_arg = config.display().to_string();
    let running = start_with(&cli_rules, &["-c", &config_arg, "-o", NO_WATCH]);
    std::fs::write(
        &config,
        format!("rules_file:\n  - {}\n", config_rules.display()),
    )
    .unwrap();
    let line = hangup_until(&running, "rules reloaded from");
    assert!(line.contains("cli.yaml"), "{line}");
    assert_eq!(post(&running.url, &audit_event(1, "create")), 200);
    let (stdout, _stderr) = stop(running);
    assert_eq!(
        fired(&stdout),
        [("Command Line Rule".to_string(), "pod-1".to_string())]
    );
}

/// The `falcosecurity_peregrine_output_alerts_total` value of one output and outcome.
fn output_counter(metrics: &str, output: &str) -> Option<u64> {
    let prefix = format!(
        "falcosecurity_peregrine_output_alerts_total{{output=\"{output}\",outcome=\"sent\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

fn webserver_url(line: &str) -> String {
    let address = line
        .split("Webserver listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line}"));
    format!("http://{address}")
}

#[test]
fn sighup_restarts_the_webserver_and_applies_metrics() {
    let (dir, rules, config) = scratch_with_rules("webserver");
    let alerts = dir.join("alerts.json");
    let webserver = |endpoint: &str, port: u16| {
        format!(
            "webserver:\n  enabled: true\n  listen_address: 127.0.0.1\n  listen_port: {port}\n  \
             k8s_healthz_endpoint: {endpoint}\n"
        )
    };
    std::fs::write(&config, webserver("/healthz", 0)).unwrap();
    let config_arg = config.display().to_string();
    let running = start_with(&rules, &["-c", &config_arg, "-o", NO_WATCH]);
    let first = running.web.clone().expect("the webserver listens");
    assert_eq!(get(&format!("{first}/healthz")).0, 200);
    assert_eq!(post(&running.url, &audit_event(1, "create")), 200);

    // A file output and another health endpoint: the webserver is
    // restarted (on a new ephemeral port).
    std::fs::write(
        &config,
        format!(
            "{}file_output:\n  enabled: true\n  filename: {}\n",
            webserver("/health2", 0),
            alerts.display()
        ),
    )
    .unwrap();
    send_hup(running.child.id());
    let second = webserver_url(&wait_for(&running.stderr_lines, "Webserver listening on"));
    wait_for(
        &running.stderr_lines,
        "webserver restarted with its new settings",
    );
    assert_ne!(first, second);
    assert_eq!(get(&format!("{second}/health2")).0, 200);
    assert_eq!(get(&format!("{second}/healthz")).0, 404);
    assert_eq!(
        get(&format!("{first}/healthz")).0,
        0,
        "the old one is closed"
    );
    assert_eq!(post(&running.url, &audit_event(2, "create")), 200);

    // /metrics shows the output the reload added, with its count.
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let (status, metrics) = get(&format!("{second}/metrics"));
        assert_eq!(status, 200);
        if output_counter(&metrics, "file") == Some(1) || Instant::now() > deadline {
            break metrics;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(output_counter(&metrics, "file"), Some(1), "{metrics}");
    assert_eq!(output_counter(&metrics, "stdout"), Some(2), "{metrics}");
    assert!(
        metrics.contains("\nfalcosecurity_peregrine_k8s_audit_events_total 2\n"),
        "{metrics}"
    );

    // A port that is taken: the running webserver stays where it is.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    std::fs::write(&config, webserver("/health2", port)).unwrap();
    let kept = hangup_until(&running, "webserver keeps its previous settings");
    assert!(kept.contains(&port.to_string()), "{kept}");
    assert_eq!(get(&format!("{second}/health2")).0, 200);

    let (stdout, _stderr) = stop(running);
    assert_eq!(fired(&stdout).len(), 2, "{stdout}");
    assert_eq!(alerts_in(&alerts).len(), 1);
    drop(taken);
}

#[test]
fn sighup_turns_the_stats_alert_on() {
    let (_dir, rules, config) = scratch_with_rules("metrics");
    std::fs::write(&config, "metrics:\n  enabled: false\n").unwrap();
    let config_arg = config.display().to_string();
    let running = start_with(&rules, &["-c", &config_arg, "-o", NO_WATCH]);
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(&config, "metrics:\n  enabled: true\n  interval: 1s\n").unwrap();
    hangup_until(&running, "rules reloaded from");
    std::thread::sleep(Duration::from_millis(2500));
    let (stdout, _stderr) = stop(running);
    let snapshots = stdout.matches("Falco internal: metrics snapshot").count();
    assert!(
        (1..=4).contains(&snapshots),
        "one stats alert a second since the reload, none before: {snapshots}\n{stdout}"
    );
}

/// A syscall rule on opening `marker`.
fn open_rule(name: &str) -> String {
    format!(
        "- rule: {name}\n  desc: d\n  condition: evt.type in (open, openat) and evt.dir = < and fd.name endswith /marker\n  output: {name} fired (file=%fd.name)\n  priority: WARNING\n"
    )
}

/// Lines of a child's pipe, from a thread, as they come.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// The syscall loop, under `peregrine run`: the rules of the new
/// `rules_file` replace the old ones, and drop actions the new
/// `syscall_event_drops` adds start acting.
#[test]
fn sighup_reloads_syscall_rules_and_drop_actions() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let dir = scratch("syscall");
    let (before, after) = (dir.join("before.yaml"), dir.join("after.yaml"));
    std::fs::write(&before, open_rule("Before Rule")).unwrap();
    std::fs::write(&after, open_rule("After Rule")).unwrap();
    std::fs::write(dir.join("marker"), "").unwrap();
    let config = dir.join("peregrine.yaml");
    // A simulated drop every second, first with no action, then alerted.
    let write_config = |rules: &Path, actions: &str| {
        std::fs::write(
            &config,
            format!(
                "rules_file:\n  - {}\njson_output: true\nsyscall_event_drops:\n  actions: {actions}\n  \
                 simulate_drops: true\n  rate: 100\n  max_burst: 100\n",
                rules.display()
            ),
        )
        .unwrap();
    };
    write_config(&before, "[]");
    let mut child = Command::new(&peregrine)
        .current_dir(&dir)
        .args(["run", "-o", NO_WATCH, "-c"])
        .arg(&config)
        .args([
            "--",
            "sh",
            "-c",
            // About 12 s of opening the marker, then one last open once
            // the test has seen the reload (the file `go` appears).
            "i=0; while [ $i -lt 120 ] && [ ! -e go ]; do cat marker; sleep 0.1; i=$((i+1)); done; \
             sleep 1.5; cat marker",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = lines_of(child.stdout.take().unwrap());
    let stderr = lines_of(child.stderr.take().unwrap());
    wait_for(&stdout, "Before Rule fired");

    write_config(&after, "[alert]");
    send_hup(child.id());
    wait_for(&stderr, "syscall rules reloaded");
    std::fs::write(dir.join("go"), "").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");

    let rest: Vec<String> = stdout.try_iter().collect();
    let rule_of = |line: &String| {
        serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|a| a["rule"].as_str().map(str::to_string))
    };
    let rules: Vec<String> = rest.iter().filter_map(rule_of).collect();
    let last_before = rules.iter().rposition(|r| r == "Before Rule");
    let first_after = rules.iter().position(|r| r == "After Rule");
    let first_drop = rules
        .iter()
        .position(|r| r == "Falco internal: syscall event drop");
    assert!(first_after.is_some(), "the new rules fire: {rules:?}");
    assert!(first_drop.is_some(), "the new drop action acts: {rules:?}");
    if let Some(last_before) = last_before {
        assert!(
            last_before < first_after.unwrap() && last_before < first_drop.unwrap(),
            "nothing of the old config after the new: {rules:?}"
        );
    }
}

#[test]
fn sighup_moves_the_grpc_server_and_turns_the_grpc_output_off() {
    use peregrine_tests::grpc;
    let (dir, rules, config) = scratch_with_rules("grpc");
    let (first, second) = (dir.join("a.sock"), dir.join("b.sock"));
    let write_config = |socket: &Path, output: bool| {
        std::fs::write(
            &config,
            format!(
                "grpc:\n  enabled: true\n  bind_address: unix://{}\ngrpc_output:\n  enabled: {output}\n",
                socket.display()
            ),
        )
        .unwrap();
    };
    write_config(&first, true);
    let config_arg = config.display().to_string();
    let running = start_with(&rules, &["-c", &config_arg, "-o", NO_WATCH]);
    assert!(first.exists());
    assert_eq!(post(&running.url, &audit_event(1, "create")), 200);

    // Another socket: the server moves, and what no client collected yet
    // moves with it.
    write_config(&second, true);
    let line = hangup_until(&running, "gRPC server listening on");
    assert!(line.contains("b.sock"), "{line}");
    assert!(second.exists() && !first.exists());
    assert_eq!(post(&running.url, &audit_event(2, "create")), 200);
    let runtime = grpc::runtime();
    let collected = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut collected = Vec::new();
        while collected.len() < 2 && Instant::now() < deadline {
            let mut client = grpc::connect_unix(&second).await.unwrap();
            collected.extend(grpc::get(&mut client).await.unwrap());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        collected
    });
    let pods: Vec<&str> = collected
        .iter()
        .map(|r| r.output_fields["ka.target.name"].as_str())
        .collect();
    assert_eq!(pods, ["pod-1", "pod-2"]);

    // The output off: its server stops.
    write_config(&second, false);
    let line = hangup_until(&running, "configuration reloaded: outputs now");
    assert!(!line.contains("grpc"), "{line}");
    assert!(!second.exists());
    let (stdout, _stderr) = stop(running);
    assert_eq!(fired(&stdout).len(), 2);
}

#[test]
fn sighup_restarts_the_webhook_and_no_accepted_event_is_lost() {
    let (_dir, rules, config) = scratch_with_rules("webhook");
    std::fs::write(&config, "k8s_audit:\n  path: /k8s-audit\n").unwrap();
    let config_arg = config.display().to_string();
    let running = start_with(&rules, &["-c", &config_arg, "-o", NO_WATCH]);
    let first = running.url.clone();
    for i in 0..20 {
        assert_eq!(post(&first, &audit_event(i, "create")), 200);
    }
    // Another path (and, with port 0, another port): the webhook moves.
    std::fs::write(&config, "k8s_audit:\n  path: /audit2\n").unwrap();
    send_hup(running.child.id());
    let line = wait_for(&running.stderr_lines, "webhook listening on");
    let second = format!(
        "http://{}",
        line.split("webhook listening on ").nth(1).unwrap().trim()
    );
    assert!(second.ends_with("/audit2"), "{second}");
    wait_for(
        &running.stderr_lines,
        "Kubernetes audit webhook restarted with its new settings",
    );
    assert_eq!(post(&first, &audit_event(20, "create")), 0, "closed");
    assert_eq!(post(&second, &audit_event(21, "create")), 200);
    let (stdout, _stderr) = stop(running);
    let pods: Vec<String> = fired(&stdout).into_iter().map(|(_, pod)| pod).collect();
    let mut expected: Vec<String> = (0..20).map(|i| format!("pod-{i}")).collect();
    expected.push("pod-21".into());
    assert_eq!(
        pods, expected,
        "every event taken before the restart, and after"
    );
}
