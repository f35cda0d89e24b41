//! SIGHUP re-reads the config file too: output settings change in a
//! running peregrine, a config that no longer loads changes nothing, and
//! settings that need a restart are named as such.

use std::time::{Duration, Instant};

use peregrine_tests::webhook::{audit_event, post, start_with, stop, Running};

const RULES: &str = r#"
- rule: Pod Created
  desc: a pod was created
  condition: ka.verb = create
  output: pod created (pod=%ka.target.name)
  priority: WARNING
  source: k8s_audit
"#;

/// Sends SIGHUP and waits for a stderr line containing `wanted`.
fn hangup_until(running: &Running, wanted: &str) -> String {
    std::process::Command::new("kill")
        .args(["-HUP", &running.child.id().to_string()])
        .status()
        .unwrap();
    wait_for(running, wanted)
}

/// Waits for a stderr line containing `wanted`.
fn wait_for(running: &Running, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let line = running
            .stderr_lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no line with {wanted:?} after SIGHUP: {seen:#?}"));
        if line.contains(wanted) {
            return line;
        }
        seen.push(line);
    }
}

fn alerts_in(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn sighup_applies_output_settings_and_names_what_needs_a_restart() {
    let dir = std::env::temp_dir().join(format!("peregrine-config-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let (first, second) = (dir.join("first.json"), dir.join("second.json"));
    let config = dir.join("peregrine.yaml");
    std::fs::write(
        &config,
        format!(
            "file_output:\n  enabled: true\n  filename: {}\n",
            first.display()
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let running = start_with(&rules, &["-c", &config_arg]);
    let url = running.url.clone();
    assert_eq!(post(&url, &audit_event(1, "create")), 200);

    // New file, no output property, and a webserver change.
    std::fs::write(
        &config,
        format!(
            "file_output:\n  enabled: true\n  filename: {}\njson_include_output_property: false\n\
             webserver:\n  listen_port: 9999\n",
            second.display()
        ),
    )
    .unwrap();
    let reloaded = hangup_until(&running, "configuration reloaded");
    assert!(reloaded.contains("outputs now stdout, file"), "{reloaded}");
    // The restart note follows the reload line.
    let restart = wait_for(&running, "take effect at the next restart");
    assert!(restart.contains("webserver"), "{restart}");
    assert_eq!(post(&url, &audit_event(2, "create")), 200);

    // A config that no longer loads leaves the outputs as they are.
    std::fs::write(&config, "file_output: [\n").unwrap();
    hangup_until(&running, "the outputs keep their previous settings");
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
