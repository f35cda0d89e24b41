//! Peregrine processes standing in for the nodes of a fleet, shared by the
//! NATS and Kafka delivery tests and the fleet bench: one rule that raises
//! an alert per audit event, audit files of numbered events, runs, and the
//! checks of what reached the far side.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::webhook::audit_event;

/// One alert for every pod created.
pub const POD_CREATED_RULES: &str = r#"
- rule: Pod Created
  desc: a pod was created
  condition: ka.verb = create and ka.target.resource = pods
  output: pod created (user=%ka.user.name pod=%ka.target.name)
  priority: WARNING
  source: k8s_audit
"#;

/// An audit file of `count` pod creations numbered from `from`.
pub fn audit_file(dir: &Path, name: &str, from: usize, count: usize) -> PathBuf {
    let path = dir.join(name);
    let lines: Vec<String> = (from..from + count)
        .map(|i| audit_event(i, "create").replace('\n', ""))
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").expect("the audit file is written");
    path
}

/// Peregrine as `node` (its hostname), reading `audit` with `rules`.
pub fn node_run(binary: &Path, rules: &Path, config: &Path, node: &str, audit: &Path) -> Child {
    Command::new(binary)
        .env("FALCO_HOSTNAME", node)
        .arg("-c")
        .arg(config)
        .arg("-r")
        .arg(rules)
        .arg("--k8s-audit-file")
        .arg(audit)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("peregrine starts")
}

/// Waits for a run, which must succeed.
pub fn finish(child: Child, what: &str) -> Output {
    let output = child.wait_with_output().expect("peregrine ends");
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Ids that appear more than once, and messages without an id (empty).
pub fn repeated_or_missing<'a>(ids: impl IntoIterator<Item = &'a str>) -> (usize, usize) {
    let mut seen = HashSet::new();
    let (mut repeated, mut missing) = (0, 0);
    for id in ids {
        if id.is_empty() {
            missing += 1;
        } else if !seen.insert(id) {
            repeated += 1;
        }
    }
    (repeated, missing)
}

/// How many messages each hostname sent.
pub fn per_node<'a>(hosts: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for host in hosts {
        *counts.entry(host.to_string()).or_default() += 1;
    }
    counts
}
