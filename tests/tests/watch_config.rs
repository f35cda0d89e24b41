//! Falco's `watch_config_files` (on by default): saving the config or a
//! rules file reloads as SIGHUP does, with no signal sent; a broken save
//! keeps what runs; `watch_config_files: false` turns it off.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use peregrine_tests::webhook::{audit_event, post, start_args, stop};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "peregrine-watch-config-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn audit_rule(name: &str) -> String {
    format!(
        "- rule: {name}\n  desc: d\n  condition: ka.verb = create\n  output: {name} fired (pod=%ka.target.name)\n  priority: WARNING\n  source: k8s_audit\n"
    )
}

/// Saves as editors do: a new file renamed over the old one.
fn save(path: &Path, text: &str) {
    let temp = path.with_extension("tmp~");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// The first line containing `wanted` within `limit`, if any.
fn line_with(lines: &mpsc::Receiver<String>, wanted: &str, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()?;
        if line.contains(wanted) {
            return Some(line);
        }
    }
}

fn start(dir: &Path, rules: &Path, watch: bool) -> peregrine_tests::webhook::Running {
    let config = dir.join("falco.yaml");
    std::fs::write(
        &config,
        format!(
            "rules_files:\n  - {}\nwatch_config_files: {watch}\n",
            rules.display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    start_args(&["-c", &config])
}

#[test]
fn a_saved_rules_file_reloads_and_a_broken_one_keeps_the_old_rules() {
    let dir = scratch("on");
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, audit_rule("First Rule")).unwrap();
    let running = start(&dir, &rules, true);
    assert_eq!(post(&running.url, &audit_event(1, "create")), 200);

    save(&rules, &audit_rule("Edited Rule"));
    line_with(
        &running.stderr_lines,
        "rules reloaded from",
        Duration::from_secs(20),
    )
    .expect("the saved rules file reloads");
    assert_eq!(post(&running.url, &audit_event(2, "create")), 200);

    save(&rules, "- rule: Broken\n  condition: (((\n");
    line_with(
        &running.stderr_lines,
        "did not load",
        Duration::from_secs(20),
    )
    .expect("the broken save is reported");
    assert_eq!(post(&running.url, &audit_event(3, "create")), 200);

    let (stdout, _) = stop(running);
    assert!(stdout.contains("First Rule fired (pod=pod-1)"), "{stdout}");
    assert!(stdout.contains("Edited Rule fired (pod=pod-2)"), "{stdout}");
    assert!(stdout.contains("Edited Rule fired (pod=pod-3)"), "{stdout}");
    assert!(!stdout.contains("First Rule fired (pod=pod-2)"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_saved_config_reloads_and_watching_can_be_turned_off() {
    let dir = scratch("config");
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, audit_rule("First Rule")).unwrap();
    let running = start(&dir, &rules, true);
    let other = dir.join("other.yaml");
    std::fs::write(&other, audit_rule("Other Rule")).unwrap();
    save(
        &dir.join("falco.yaml"),
        &format!("rules_files:\n  - {}\n", other.display()),
    );
    line_with(
        &running.stderr_lines,
        "rules reloaded from",
        Duration::from_secs(20),
    )
    .expect("the saved config reloads");
    assert_eq!(post(&running.url, &audit_event(1, "create")), 200);
    let (stdout, _) = stop(running);
    assert!(stdout.contains("Other Rule fired (pod=pod-1)"), "{stdout}");

    let running = start(&dir, &rules, false);
    save(&rules, &audit_rule("Edited Rule"));
    assert!(
        line_with(
            &running.stderr_lines,
            "rules reloaded",
            Duration::from_secs(3)
        )
        .is_none(),
        "watch_config_files: false still reloaded"
    );
    assert_eq!(post(&running.url, &audit_event(2, "create")), 200);
    let (stdout, _) = stop(running);
    assert!(stdout.contains("First Rule fired (pod=pod-2)"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
