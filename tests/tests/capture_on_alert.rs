//! Capture on alert, as Falco's `capture:` config and the rules' `capture`
//! / `capture_duration` keys define it (falco/userspace/falco/app/actions/
//! process_events.cpp): an alert opens PREFIX_<time>_<number>.scap, events
//! go in until the first one at or past the deadline, and the size cap
//! stops a capture with Falco's internal message. Past Falco, the file
//! starts with the events of `capture.pre_alert_duration` before the
//! alert. Files are read back by Peregrine's reader, by Peregrine's replay
//! and by Debian's sysdig.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use peregrine_engine::scap::{Capture, Writer};

/// The connect to port 80 in curl_google.scap.
const CONNECT_TS: u64 = 1_534_527_348_547_379_676;

const RULES: &str = r#"
- rule: http connect
  desc: curl connects to a web server
  condition: evt.type = connect and fd.name endswith ":80"
  output: http connect (proc=%proc.name fd=%fd.name)
  priority: WARNING
  capture: true
  capture_duration: 20
- rule: dns connect
  desc: curl asks a resolver
  condition: evt.type = connect and fd.name endswith ":53"
  output: dns connect (proc=%proc.name fd=%fd.name)
  priority: NOTICE
"#;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "peregrine-capture-on-alert-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn curl_google() -> Option<PathBuf> {
    let Some(kit) = peregrine_tests::conformance_kit() else {
        eprintln!("skipped: ../shared/conformance is absent (no capture to replay)");
        return None;
    };
    Some(kit.join("captures/curl_google.scap"))
}

/// Replays `capture` with `rules` and `-o` options; the config is Falco's
/// defaults but for capture, enabled under `dir`.
fn replay(dir: &Path, capture: &Path, rules: &str, options: &[&str]) -> Output {
    let rules_path = dir.join("rules.yaml");
    std::fs::write(&rules_path, rules).unwrap();
    let config = dir.join("falco.yaml");
    std::fs::write(
        &config,
        format!(
            "capture:\n  enabled: true\n  path_prefix: {}/cap\n  mode: rules\n  default_duration: 5000\n",
            dir.display()
        ),
    )
    .unwrap();
    let mut command = Command::new(peregrine_tests::peregrine_binary().unwrap());
    command
        .arg("-c")
        .arg(&config)
        .arg("-r")
        .arg(&rules_path)
        .arg("-e")
        .arg(capture);
    for option in options {
        command.args(["-o", option]);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "peregrine failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The capture files under `dir`, in name (= time) order.
fn capture_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "scap"))
        .collect();
    files.sort();
    files
}

/// Each event of a capture as (time, name), read by Peregrine's reader.
fn events(path: &Path) -> Vec<(u64, String)> {
    let mut capture = Capture::open(path).unwrap();
    let mut events = capture.events();
    let mut out = Vec::new();
    while let Some(event) = events.next() {
        let event = event.unwrap();
        out.push((event.ts, event.name().to_string()));
    }
    out
}

#[test]
fn an_alert_captures_its_event_its_predecessors_and_stops_at_the_duration() {
    let Some(input) = curl_google() else { return };
    let dir = scratch("window");
    let output = replay(&dir, &input, RULES, &["capture.pre_alert_duration=1"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("http connect"), "{stdout}");
    assert!(stdout.contains("dns connect"), "{stdout}");
    // Only the rule with `capture: true` opened a file, named as Falco
    // names it: the alert's time and event number, 20 digits each.
    let files = capture_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().to_string();
    let prefix = format!("cap_{CONNECT_TS:020}_");
    assert!(name.starts_with(&prefix), "{name}");
    assert_eq!(name.len(), prefix.len() + 20 + ".scap".len(), "{name}");

    let written = events(&files[0]);
    let alert_at = written
        .iter()
        .position(|(ts, name)| *ts == CONNECT_TS && name == "connect")
        .expect("the alert's event is in its capture");
    // The millisecond before the alert: the socket the connect used.
    assert!(alert_at > 0, "no event before the alert");
    assert!(
        written[..alert_at].iter().any(|(_, name)| name == "socket"),
        "{written:?}"
    );
    assert!(written[0].0 >= CONNECT_TS - 1_000_000, "{:?}", written[0]);
    // Time order holds across the window and the live part.
    assert!(written.windows(2).all(|w| w[0].0 <= w[1].0));
    // 20 ms after the alert: every event before the deadline, then the
    // first one at or past it, which ends the file although the input goes on.
    let deadline = CONNECT_TS + 20_000_000;
    let (last, before) = written.split_last().unwrap();
    assert!(last.0 >= deadline, "{last:?}");
    assert!(before.iter().all(|(ts, _)| *ts < deadline));
    let all = events(&input);
    assert!(all.iter().any(|(ts, _)| *ts > last.0), "input ended first");

    // Peregrine replays the file: the alert fires again from it.
    let again = scratch("window-again");
    let output = replay(&again, &files[0], RULES, &["capture.enabled=false"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("http connect"), "{stdout}");
    assert!(stdout.contains("proc=curl"), "{stdout}");

    // Debian's sysdig reads it, and sees the connect to port 80.
    match Command::new("sysdig")
        .arg("-r")
        .arg(&files[0])
        .args(["-p", "%evt.rawtime %evt.type %proc.name %fd.name"])
        .output()
    {
        Err(_) => eprintln!("sysdig check skipped: sysdig is not installed"),
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                text.lines().any(|l| l.starts_with(&CONNECT_TS.to_string())
                    && l.contains("connect curl")
                    && l.ends_with(":80")),
                "{text}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&again);
}

#[test]
fn without_a_pre_alert_window_the_file_starts_at_the_alert_as_in_falco() {
    let Some(input) = curl_google() else { return };
    let dir = scratch("falco");
    replay(&dir, &input, RULES, &["capture.pre_alert_duration=0"]);
    let files = capture_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let written = events(&files[0]);
    assert_eq!(written[0], (CONNECT_TS, "connect".to_string()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn all_rules_mode_captures_for_rules_without_capture_and_default_duration_applies() {
    let Some(input) = curl_google() else { return };
    let dir = scratch("all");
    let rules = RULES
        .replace("  capture: true\n", "")
        .replace("  capture_duration: 20\n", "");
    // Without capture: true and in mode rules, nothing is captured.
    replay(&dir, &input, &rules, &[]);
    assert!(capture_files(&dir).is_empty());
    // In mode all_rules the first dns connect opens a file that lasts the
    // default duration (1 ms here, pushed on by the second dns connect).
    replay(
        &dir,
        &input,
        &rules,
        &[
            "capture.mode=all_rules",
            "capture.default_duration=1",
            "capture.pre_alert_duration=0",
        ],
    );
    let files = capture_files(&dir);
    assert!(files.len() >= 2, "{files:?}");
    let first = events(&files[0]);
    assert_eq!(first[0].1, "connect");
    assert!(first.last().unwrap().0 >= first[0].0 + 1_000_000);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A capture of `copies` back-to-back copies of `input`, 100 ms apart.
fn long_capture(input: &Path, out: &Path, copies: u64) {
    let mut capture = Capture::open(input).unwrap();
    let machine = capture.machine.clone().unwrap_or_default();
    let file = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let mut writer = Writer::new(file, &machine).unwrap();
    writer.write_users(&capture.users, &capture.groups).unwrap();
    writer.write_processes(&capture.processes).unwrap();
    writer.write_fd_table(&capture.fds).unwrap();
    let mut times = Vec::new();
    let mut events = capture.events();
    while let Some(event) = events.next() {
        times.push(event.unwrap().ts);
    }
    let span = times.last().unwrap() - times[0] + 100_000_000;
    for copy in 0..copies {
        let mut again = Capture::open(input).unwrap();
        let mut events = again.events();
        while let Some(event) = events.next() {
            let event = event.unwrap();
            writer
                .write_event_at(&event, event.ts + copy * span)
                .unwrap();
        }
    }
    writer.finish().unwrap();
}

#[test]
fn the_size_cap_stops_a_capture_with_falcos_message_and_the_next_alert_opens_another() {
    let Some(input) = curl_google() else { return };
    let dir = scratch("size");
    let long = dir.join("long.scap.in");
    long_capture(&input, &long, 150);
    // Every alert captures, for as long as the default: only the cap stops.
    let rules = RULES.replace("  capture_duration: 20\n", "");
    let output = replay(
        &dir,
        &long,
        &rules,
        &[
            "capture.max_file_size_mb=1",
            // Longer than the whole input: only the cap can stop it.
            "capture.default_duration=3600000",
            "capture.mode=all_rules",
            "json_output=true",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let limit_alerts: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["rule"] == "Falco internal: capture size limit reached")
        .collect();
    assert!(!limit_alerts.is_empty(), "{stdout}");
    let first = &limit_alerts[0];
    assert_eq!(first["priority"], "Informational");
    assert_eq!(
        first["output"],
        "Falco internal: capture size limit reached. Configured limit: 1 MB."
    );
    assert_eq!(first["output_fields"]["max_file_size_mb"], "1");
    let files = capture_files(&dir);
    assert!(files.len() >= 2, "a new file after the cap: {files:?}");
    let cap = 1u64 << 20;
    for file in &files[..files.len() - 1] {
        let size = std::fs::metadata(file).unwrap().len();
        // The event that crossed the cap is the last one written.
        assert!(
            size >= cap && size < cap + 64 * 1024,
            "{}: {size}",
            file.display()
        );
        assert!(!events(file).is_empty());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_capture_that_cannot_be_written_is_reported_and_the_alerts_go_on() {
    let Some(input) = curl_google() else { return };
    let dir = scratch("unwritable");
    let output = replay(
        &dir,
        &input,
        RULES,
        &["capture.path_prefix=/nonexistent/peregrine/cap"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("http connect"), "{stdout}");
    assert!(
        stderr.contains("capture on alert: cannot write /nonexistent/peregrine/cap_"),
        "{stderr}"
    );
    assert!(stdout.contains("Events detected: 2"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_capture_mode_names_its_key() {
    let dir = scratch("badmode");
    let config = dir.join("falco.yaml");
    std::fs::write(&config, "capture:\n  mode: sometimes\n").unwrap();
    let output = Command::new(peregrine_tests::peregrine_binary().unwrap())
        .arg("-c")
        .arg(&config)
        .arg("--dry-run")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("capture.mode"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A reload (SIGHUP) that turns capture on applies to the running syscall
/// source: under `peregrine run`, alerts after it write a capture file
/// holding the traced command's open of the marker.
#[test]
fn a_reload_turns_capture_on_for_the_running_source() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let dir = scratch("reload");
    std::fs::write(dir.join("marker"), "").unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        "- rule: marker opened\n  desc: d\n  condition: evt.type in (open, openat) and fd.name endswith /marker\n  output: marker opened (file=%fd.name)\n  priority: WARNING\n  capture: true\n  capture_duration: 100\n",
    )
    .unwrap();
    let config = dir.join("falco.yaml");
    let write_config = |enabled: bool| {
        std::fs::write(
            &config,
            format!(
                "rules_files:\n  - {}\nwatch_config_files: false\ncapture:\n  enabled: {enabled}\n  path_prefix: {}/cap\n",
                rules.display(),
                dir.display()
            ),
        )
        .unwrap();
    };
    write_config(false);
    let mut child = Command::new(&peregrine)
        .current_dir(&dir)
        .args(["run", "-c"])
        .arg(&config)
        .args([
            "--",
            "sh",
            "-c",
            "i=0; while [ $i -lt 150 ] && [ ! -e go ]; do cat marker; sleep 0.1; i=$((i+1)); done; \
             sleep 1; cat marker; sleep 0.5; cat marker",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, stderr) = std::sync::mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(capture_files(&dir).is_empty(), "capture is off at first");
    write_config(true);
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let line = stderr
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("the reload is applied");
        if line.contains("Capture is enabled in mode 'rules'") {
            break;
        }
    }
    std::fs::write(dir.join("go"), "").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let files = capture_files(&dir);
    assert!(!files.is_empty(), "no capture after the reload");
    let written = events(&files[0]);
    assert!(
        written
            .iter()
            .any(|(_, name)| name == "openat" || name == "open"),
        "{written:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
