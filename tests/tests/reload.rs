//! SIGHUP reloads the rules without stopping event intake, and a rules
//! file that no longer loads leaves the running rules in place.

use std::time::{Duration, Instant};

use peregrine_tests::webhook::{audit_event, post, start, stop};

fn rule(name: &str) -> String {
    format!(
        "- rule: {name}\n  desc: d\n  condition: ka.verb = create\n  output: {name} fired (pod=%ka.target.name)\n  priority: WARNING\n  source: k8s_audit\n"
    )
}

/// Signals, then waits until peregrine's stderr says how the reload ended
/// (the new rules are in place, or refused); returns the stderr lines read
/// meanwhile. Waiting for the outcome and not for "SIGHUP received" is
/// what makes the next event meet the reloaded rules.
fn hangup(running: &peregrine_tests::webhook::Running) -> Vec<String> {
    let mut seen = Vec::new();
    std::process::Command::new("kill")
        .args(["-HUP", &running.child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = running
            .stderr_lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("peregrine never acknowledged SIGHUP");
        let done = line.contains("rules reloaded from") || line.contains("did not load");
        seen.push(line);
        if done {
            return seen;
        }
    }
}

#[test]
fn sighup_swaps_rules_and_keeps_them_when_the_new_ones_are_bad() {
    let dir = std::env::temp_dir().join(format!("peregrine-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, rule("First Rule")).unwrap();
    let running = start(&rules);
    let url = running.url.clone();
    assert_eq!(post(&url, &audit_event(1, "create")), 200);

    std::fs::write(&rules, rule("Second Rule")).unwrap();
    let mut log = hangup(&running);
    assert_eq!(post(&url, &audit_event(2, "create")), 200);

    std::fs::write(&rules, "- rule: Broken\n  condition: (((\n").unwrap();
    log.extend(hangup(&running));
    assert_eq!(post(&url, &audit_event(3, "create")), 200);

    let (stdout, rest) = stop(running);
    let stderr = format!("{}\n{rest}", log.join("\n"));
    let fired: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" fired (pod="))
        .collect();
    assert_eq!(fired.len(), 3, "{stdout}\n{stderr}");
    assert!(
        fired[0].contains("First Rule fired (pod=pod-1)"),
        "{}",
        fired[0]
    );
    assert!(
        fired[1].contains("Second Rule fired (pod=pod-2)"),
        "{}",
        fired[1]
    );
    assert!(
        fired[2].contains("Second Rule fired (pod=pod-3)"),
        "the old rules keep running: {}",
        fired[2]
    );
    assert!(
        stderr.contains("the rules loaded before keep running")
            && stderr.contains(&rules.display().to_string()),
        "{stderr}"
    );
}
