//! A Falco user's falco.yaml runs Peregrine as it is: Falco's current
//! falco.yaml (verbatim, from the conformance kit) and the settings of each
//! release's falco.yaml back to 0.36 (tests/falco-configs) replay a capture through
//! `engine.kind=replay`, and the config's rule selection, rule matching
//! and output shaping act on the alerts as in Falco.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "peregrine-falco-config-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs peregrine on `config` replaying `capture` through Falco's engine
/// keys, with `rules` and the extra `-o` options.
fn replay(config: &Path, rules: &Path, capture: &Path, options: &[&str]) -> Output {
    let binary = peregrine_tests::peregrine_binary().unwrap();
    let mut command = Command::new(binary);
    command
        .arg("-c")
        .arg(config)
        .arg("-r")
        .arg(rules)
        .args(["-o", "engine.kind=replay"])
        .arg("-o")
        .arg(format!("engine.replay.capture_file={}", capture.display()))
        // The stock configs start a webserver on a fixed port and log to
        // syslog: not in a test.
        .args([
            "-o",
            "webserver.enabled=false",
            "-o",
            "syslog_output.enabled=false",
        ])
        .args(["-o", "log_syslog=false", "-o", "json_output=true"])
        .env("FALCO_HOSTNAME", "test-falco-hostname");
    for option in options {
        command.args(["-o", option]);
    }
    command.output().unwrap()
}

fn json_alerts(stdout: &[u8]) -> Vec<Json> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Json>(line).ok())
        .filter(|v| v.get("rule").is_some())
        .collect()
}

#[test]
fn each_falco_release_config_replays_a_capture() {
    let Some(kit) = peregrine_tests::conformance_kit() else {
        eprintln!("skipped: ../shared/conformance is absent (no capture to replay)");
        return;
    };
    let regression = kit.join("falco-regression");
    let settings = peregrine_tests::repo_root().join("tests/falco-configs");
    let mut configs: Vec<PathBuf> = std::fs::read_dir(&settings)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .collect();
    configs.sort();
    configs.push(kit.join("upstream-config/falco.yaml"));
    let mut runs = 0;
    for config in &configs {
        let output = replay(
            config,
            &regression.join("rules/single_rule_with_tags.yaml"),
            &regression.join("trace_files/cat_write.scap"),
            &[],
        );
        let name = config.display().to_string();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        assert!(!stderr.contains("unknown key"), "{name}: {stderr}");
        let alerts = json_alerts(&output.stdout);
        assert!(!alerts.is_empty(), "{name}: no alert");
        for alert in &alerts {
            assert_eq!(alert["rule"], "open_from_cat", "{name}");
            assert_eq!(alert["hostname"], "test-falco-hostname", "{name}");
            assert_eq!(alert["output_fields"]["proc.cmdline"], "cat /dev/null");
        }
        runs += 1;
    }
    assert!(runs >= 10, "only {runs} release configs");
}

const RULES: &str = r#"
- rule: cat opens
  desc: first
  condition: evt.type=open and proc.name=cat
  output: "cat opened a file (file=%fd.name)"
  priority: WARNING
  tags: [filesystem, testing]
- rule: any open by pid
  desc: second
  condition: evt.type=open and proc.name=cat
  output: "open seen (pid=%proc.pid)"
  priority: NOTICE
  tags: [process]
- rule: disabled in the file
  desc: third
  condition: evt.type=open and proc.name=cat
  output: "third (pid=%proc.pid)"
  priority: ERROR
  enabled: false
  tags: [testing]
"#;

const CONFIG: &str = r#"
rule_matching: all
time_format_iso_8601: true
json_include_message_property: true
append_output:
  - match:
      tags: [filesystem]
    extra_output: "on cpu %evt.cpu"
    extra_fields:
      - team: "blue %proc.name"
      - proc.pid
  - match:
      rule: any open by pid
    suggested_output: true
static_fields:
  zone: eu-1
"#;

#[test]
fn rule_matching_selection_and_append_output_act_as_in_falco() {
    let Some(kit) = peregrine_tests::conformance_kit() else {
        eprintln!("skipped: ../shared/conformance is absent (no capture to replay)");
        return;
    };
    let capture = kit.join("falco-regression/trace_files/cat_write.scap");
    let dir = scratch("shaping");
    let rules = dir.join("rules.yaml");
    let config = dir.join("falco.yaml");
    std::fs::write(&rules, RULES).unwrap();
    std::fs::write(&config, CONFIG).unwrap();

    // rule_matching: all: both enabled rules fire for each event, in
    // load order.
    let output = replay(&config, &rules, &capture, &[]);
    assert!(output.status.success(), "{output:?}");
    let alerts = json_alerts(&output.stdout);
    assert!(
        alerts.len() >= 2 && alerts.chunks_exact(2).remainder().is_empty(),
        "{alerts:?}"
    );
    for pair in alerts.chunks(2) {
        assert_eq!(pair[0]["rule"], "cat opens");
        assert_eq!(pair[1]["rule"], "any open by pid");
        assert_eq!(pair[0]["time"], pair[1]["time"], "one event, two rules");
    }
    let first = &alerts[0];
    let message = first["message"].as_str().unwrap();
    assert!(
        message.starts_with("cat opened a file (file=") && message.contains(") on cpu "),
        "{message}"
    );
    assert!(first["output"].as_str().unwrap().ends_with(message));
    let fields = &first["output_fields"];
    assert_eq!(fields["team"], "blue cat");
    assert!(fields["proc.pid"].is_u64(), "{fields}");
    assert!(fields["evt.cpu"].is_u64(), "{fields}");
    assert!(fields["evt.time.iso8601"].is_u64(), "{fields}");
    // Suggested output: the static field, in the text and the fields,
    // before the container plugin's fields as Falco lists them (Peregrine
    // stands in for the plugin).
    let second = &alerts[1];
    assert!(
        second["message"]
            .as_str()
            .unwrap()
            .contains(" static_zone=eu-1 container_id="),
        "{second}"
    );
    assert_eq!(second["output_fields"]["static.zone"], "eu-1");
    assert!(second["output_fields"].get("team").is_none());

    // The rules: list, given on the command line as Falco takes it:
    // disable everything, enable by tag (which also enables a rule the
    // file disables), then disable one by name.
    let output = replay(
        &config,
        &rules,
        &capture,
        &[
            "rules[].disable.rule=*",
            "rules[].enable.tag=testing",
            "rules[].disable.rule=cat*",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let fired: std::collections::BTreeSet<String> = json_alerts(&output.stdout)
        .iter()
        .map(|a| a["rule"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        fired.into_iter().collect::<Vec<_>>(),
        vec!["disabled in the file"]
    );

    // rule_matching: first: only the first rule.
    let output = replay(&config, &rules, &capture, &["rule_matching=first"]);
    let alerts = json_alerts(&output.stdout);
    assert!(
        alerts.iter().all(|a| a["rule"] == "cat opens"),
        "{alerts:?}"
    );
    assert_eq!(
        alerts.len() * 2,
        json_alerts(&replay(&config, &rules, &capture, &[]).stdout).len()
    );

    // -D/-T/-t keep working.
    let binary = peregrine_tests::peregrine_binary().unwrap();
    let output = Command::new(binary)
        .arg("-c")
        .arg(&config)
        .arg("-r")
        .arg(&rules)
        .arg("-e")
        .arg(&capture)
        .args(["-T", "filesystem", "-o", "json_output=true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let alerts = json_alerts(&output.stdout);
    assert!(!alerts.is_empty());
    assert!(alerts.iter().all(|a| a["rule"] == "any open by pid"));
}

/// Five rules for the `rules:` orderings below: tags, a rule the file
/// disables, one below the `priority` of one ordering, one without tags.
const SELECTION_RULES: &str = r#"- rule: Alpha one
  desc: a
  condition: evt.type = open
  output: "A1 %fd.name"
  priority: WARNING
  tags: [ta, tb]
- rule: Alpha two
  desc: a
  condition: evt.type = open
  output: "A2 %fd.name"
  priority: WARNING
  tags: [tb]
- rule: Beta one
  desc: b
  condition: evt.type = open
  output: "B1 %fd.name"
  priority: WARNING
  enabled: false
  tags: [ta]
- rule: Beta two
  desc: b
  condition: evt.type = open
  output: "B2 %fd.name"
  priority: DEBUG
  tags: [tc]
- rule: Gamma
  desc: g
  condition: evt.type = open
  output: "G %fd.name"
  priority: WARNING
"#;

#[test]
fn rules_items_select_in_order_as_falco_master() {
    let Some(kit) = peregrine_tests::conformance_kit() else {
        eprintln!("skipped: ../shared/conformance is absent (no capture to replay)");
        return;
    };
    let capture = kit.join("falco-regression/trace_files/open-multiple-files.scap");
    let dir = scratch("selection");
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, SELECTION_RULES).unwrap();
    let config = dir.join("falco.yaml");
    std::fs::write(&config, "priority: debug\nrule_matching: all\n").unwrap();
    // Each ordering of `-o rules[]...` items and the rules that fired,
    // as Falco master (0.45.0-36, engine 0.63) fired them on this capture
    // with these rules and `rule_matching: all`: the items apply in
    // order, an enable overrides the file's `enabled: false`, `*` in a
    // rule name matches any text (each literal at its first occurrence),
    // other characters match themselves (no `?`, case counts), tags are
    // matched whole, and `priority` removes a rule whatever enables it.
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["rules[].disable.tag=ta", "rules[].enable.tag=tb"],
            &["Alpha one", "Alpha two", "Beta two", "Gamma"],
        ),
        (
            &["rules[].enable.tag=tb", "rules[].disable.tag=ta"],
            &["Alpha two", "Beta two", "Gamma"],
        ),
        (
            &["rules[].enable.tag=ta"],
            &["Alpha one", "Alpha two", "Beta one", "Beta two", "Gamma"],
        ),
        (
            &["rules[].disable.rule=*", "rules[].enable.tag=ta"],
            &["Alpha one", "Beta one"],
        ),
        (&["rules[].disable.rule=Alpha*"], &["Beta two", "Gamma"]),
        (
            &["rules[].disable.rule=*one"],
            &["Alpha two", "Beta two", "Gamma"],
        ),
        (&["rules[].disable.rule=*a*o"], &["Alpha one", "Gamma"]),
        (
            &["rules[].disable.rule=A*o*e"],
            &["Alpha two", "Beta two", "Gamma"],
        ),
        (
            &["rules[].disable.rule=alpha one"],
            &["Alpha one", "Alpha two", "Beta two", "Gamma"],
        ),
        (
            &["rules[].disable.rule=Alpha?one"],
            &["Alpha one", "Alpha two", "Beta two", "Gamma"],
        ),
        (
            &["rules[].disable.tag=t*"],
            &["Alpha one", "Alpha two", "Beta two", "Gamma"],
        ),
        (
            &["rules[].disable.rule=*", "rules[].enable.rule=B*"],
            &["Beta one", "Beta two"],
        ),
        (
            &["priority=warning", "rules[].enable.rule=Beta two"],
            &["Alpha one", "Alpha two", "Gamma"],
        ),
        (
            &[
                "rules[].disable.rule=*",
                "rules[].enable.rule=Beta*",
                "rules[].disable.tag=tc",
            ],
            &["Beta one"],
        ),
        (
            &[
                "rules[].disable.rule=Gamma",
                "rules[].disable.tag=tb",
                "rules[].enable.rule=*one",
            ],
            &["Alpha one", "Beta one", "Beta two"],
        ),
    ];
    for (options, expected) in cases {
        let output = replay(&config, &rules, &capture, options);
        assert!(output.status.success(), "{options:?}: {output:?}");
        let fired: std::collections::BTreeSet<String> = json_alerts(&output.stdout)
            .iter()
            .map(|a| a["rule"].as_str().unwrap_or("").to_string())
            .collect();
        let expected: std::collections::BTreeSet<String> =
            expected.iter().map(|r| r.to_string()).collect();
        assert_eq!(fired, expected, "{options:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn buffer_format_base64_renders_buffers_in_base64() {
    let Some(kit) = peregrine_tests::conformance_kit() else {
        eprintln!("skipped: ../shared/conformance is absent (no capture to replay)");
        return;
    };
    let capture = kit.join("falco-regression/trace_files/cat_write.scap");
    let dir = scratch("base64");
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        "- rule: reads\n  desc: r\n  condition: evt.type = read and evt.buffer exists\n  \
         output: \"read (buf=%evt.buffer data=%evt.arg.data)\"\n  priority: WARNING\n",
    )
    .unwrap();
    let config = dir.join("falco.yaml");
    std::fs::write(&config, "buffer_format_base64: true\n").unwrap();
    let output = replay(&config, &rules, &capture, &[]);
    assert!(output.status.success(), "{output:?}");
    let alerts = json_alerts(&output.stdout);
    // cat reads an ELF file first: "\x7fELF" is "f0VMR" in base64. As in
    // Falco master, evt.arg.data is the bytes in base64, and evt.buffer
    // that text in base64 again (libsinsp renders it twice).
    let decode = |text: &str| peregrine_engine::output::base64_decode(text).unwrap();
    let data = alerts[0]["output_fields"]["evt.arg.data"].as_str().unwrap();
    assert!(data.starts_with("f0VMR"), "{data}");
    assert!(decode(data).starts_with(b"\x7fELF"), "{data}");
    let buffer = alerts[0]["output_fields"]["evt.buffer"].as_str().unwrap();
    assert_eq!(decode(buffer), data.as_bytes(), "{buffer}");
    for text in [data, buffer] {
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)));
    }
}

#[test]
fn pidfile_holds_the_process_id() {
    let Some(kit) = peregrine_tests::conformance_kit() else {
        eprintln!("skipped: ../shared/conformance is absent (no capture to replay)");
        return;
    };
    let dir = scratch("pidfile");
    let pidfile = dir.join("peregrine.pid");
    let binary = peregrine_tests::peregrine_binary().unwrap();
    let child = Command::new(binary)
        .arg("-r")
        .arg(kit.join("falco-regression/rules/single_rule_with_tags.yaml"))
        .arg("-e")
        .arg(kit.join("falco-regression/trace_files/cat_write.scap"))
        .arg("-P")
        .arg(&pidfile)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // Not written by a dry run; an unwritable path is an error.
    let binary = peregrine_tests::peregrine_binary().unwrap();
    let dry = dir.join("dry.pid");
    let output = Command::new(&binary)
        .args(["--dry-run", "-P"])
        .arg(&dry)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(!dry.exists());
    let output = Command::new(&binary)
        .arg("-e")
        .arg(kit.join("falco-regression/trace_files/cat_write.scap"))
        .args(["-P", "/no/such/dir/x.pid"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("pidfile"));
}

/// `--support` prints Falco's bug-report document: the system as uname
/// says, the versions, the command line, the config as merged from the
/// file, its drop-ins and -o, and each rules file with its content.
#[test]
fn support_prints_the_system_the_merged_config_and_the_rules_files() {
    let dir = scratch("support");
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    let config = dir.join("falco.yaml");
    std::fs::write(
        &config,
        format!(
            "config_files:\n  - {}\njson_output: false\n",
            dir.join("conf.d").display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("conf.d/a.yaml"), "priority: warning\n").unwrap();
    let rules = dir.join("rules.yaml");
    let rules_text =
        "- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n";
    std::fs::write(&rules, rules_text).unwrap();
    let output = Command::new(peregrine_tests::peregrine_binary().unwrap())
        .arg("-c")
        .arg(&config)
        .arg("-r")
        .arg(&rules)
        .args(["-o", "json_output=true", "--support"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let support: Json = serde_json::from_slice(&output.stdout).unwrap();
    let uname = |flag: &str| {
        let out = Command::new("uname").arg(flag).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(support["system_info"]["sysname"], uname("-s"));
    assert_eq!(support["system_info"]["release"], uname("-r"));
    assert_eq!(support["system_info"]["machine"], uname("-m"));
    assert_eq!(support["version"], support["engine_info"]["falco_version"]);
    assert!(support["engine_info"]["engine_version_semver"].is_string());
    assert!(support["cmdline"]
        .as_str()
        .unwrap()
        .ends_with("-o json_output=true --support"));
    assert_eq!(support["config"]["json_output"], true, "{support}");
    assert_eq!(support["config"]["priority"], "warning", "{support}");
    let files = support["rules_files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["name"], rules.display().to_string());
    assert_eq!(files[0]["variants"][0]["content"], rules_text);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An HTTP receiver on loopback that answers every request with `body`;
/// returns its URL and the number of requests it answered when dropped.
fn answering_receiver(body: &'static str) -> (String, std::thread::JoinHandle<usize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let mut answered = 0;
        // Peregrine may take long to start on a loaded machine; once it
        // posts, a few quiet seconds mean it is done.
        let idle_until = |from: std::time::Instant| from + std::time::Duration::from_secs(3);
        let mut deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut stream = stream;
            // Keep-alive: answer requests on this connection until it closes.
            loop {
                let mut length = 0usize;
                let mut line = String::new();
                let mut got_any = false;
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    got_any = true;
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                if !got_any {
                    break;
                }
                let mut request_body = vec![0; length];
                if reader.read_exact(&mut request_body).is_err() {
                    break;
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(answer.as_bytes()).is_err() {
                    break;
                }
                answered += 1;
                deadline = idle_until(std::time::Instant::now());
            }
        }
        answered
    });
    (url, handle)
}

/// `http_output.echo` writes the receiver's answers to stdout, as Falco's
/// curl does; off, nothing of them shows.
#[test]
fn http_output_echo_writes_the_answers_to_stdout() {
    let Some(kit) = peregrine_tests::conformance_kit() else {
        eprintln!("skipped: ../shared/conformance is absent (no capture to replay)");
        return;
    };
    let regression = kit.join("falco-regression");
    let dir = scratch("echo");
    let config = dir.join("falco.yaml");
    std::fs::write(&config, "stdout_output:\n  enabled: true\n").unwrap();
    for echo in [true, false] {
        let (url, receiver) = answering_receiver("answer-from-the-receiver");
        let output = replay(
            &config,
            &regression.join("rules/single_rule_with_tags.yaml"),
            &regression.join("trace_files/cat_write.scap"),
            &[
                "http_output.enabled=true",
                &format!("http_output.url={url}"),
                &format!("http_output.echo={echo}"),
            ],
        );
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let alerts = json_alerts(&output.stdout).len();
        let answered = receiver.join().unwrap();
        assert!(
            alerts > 0 && answered == alerts,
            "{alerts} alerts, {answered} posts"
        );
        let echoed = stdout.matches("answer-from-the-receiver").count();
        assert_eq!(
            echoed,
            if echo { alerts } else { 0 },
            "echo={echo}: {stdout}"
        );
    }
}

/// As Falco, a replay starts no webserver (Falco's start_webserver returns
/// at once in capture mode): replaying beside a running agent that holds
/// the port must work, and not fight the agent for it.
#[test]
fn a_replay_starts_no_webserver() {
    let Some(kit) = peregrine_tests::conformance_kit() else {
        eprintln!("skipped: ../shared/conformance is absent (no capture to replay)");
        return;
    };
    let regression = kit.join("falco-regression");
    // The "agent": a listener on the port the replay's config names.
    let agent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = agent.local_addr().unwrap().port();
    let port_option = format!("webserver.listen_port={port}");
    let out = replay(
        &kit.join("upstream-config/falco.yaml"),
        &regression.join("rules/single_rule.yaml"),
        &regression.join("trace_files/cat_write.scap"),
        &[
            "webserver.enabled=true",
            "webserver.listen_address=127.0.0.1",
            &port_option,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!json_alerts(&out.stdout).is_empty(), "{stderr}");
    drop(agent);
}

/// A rules file that does not load ends the run as Falco master ends it:
/// `Error: ` and the file's report as `-V` prints it (then a blank line),
/// exit 1. The expected text is Falco's on the same file.
#[test]
fn a_run_whose_rules_fail_prints_falcos_report() {
    let dir = scratch("run-load-error");
    let rules = dir.join("w.yaml");
    std::fs::write(
        &rules,
        "- rule: empty\n  desc: ''\n  condition: evt.type = open\n  output: o\n  priority: INFO\n",
    )
    .unwrap();
    let out = std::process::Command::new(peregrine_tests::peregrine_binary().unwrap())
        .arg("-L")
        .arg("-r")
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = rules.display();
    let expected = format!(
        "Error: {name}: Invalid\n1 Errors:\nIn rules content: ({name}:0:0)\n    rule 'empty': ({name}:0:2)\n    value for 'desc': ({name}:1:8)\n------\n  desc: ''\n        ^\n------\nLOAD_ERR_YAML_VALIDATE (Error validating internal structure of YAML file): Value must be non-empty\n\n"
    );
    assert!(stderr.ends_with(&expected), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
