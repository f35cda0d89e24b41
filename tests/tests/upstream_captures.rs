//! Falco's three upstream rule files on the kit's captures, through the
//! `peregrine` binary, against what Falco (built from falco 2656c5a3 and
//! libs 6fbc055d) gave on the same captures; and `-V` in JSON, located as
//! Falco locates its load results.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

fn kit() -> Option<PathBuf> {
    let kit = peregrine_tests::conformance_kit();
    if kit.is_none() {
        eprintln!("skipped: ../shared/conformance is absent (a fresh clone has no kit)");
    }
    kit
}

/// The rules that fired, one entry per alert, with `json_output`.
fn alerts(kit: &Path, capture: &str) -> Vec<Json> {
    let rules = kit.join("upstream-rules");
    let out = Command::new(peregrine_tests::peregrine_binary().unwrap())
        .arg("-r")
        .arg(rules.join("falco_rules.yaml"))
        .arg("-r")
        .arg(rules.join("falco-incubating_rules.yaml"))
        .arg("-r")
        .arg(rules.join("falco-sandbox_rules.yaml"))
        .args(["-o", "json_output=true", "-e"])
        .arg(kit.join("captures").join(capture))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter(|j| j.get("rule").is_some())
        .collect()
}

#[test]
fn dns_over_udp_is_not_unexpected_udp_traffic() {
    let Some(kit) = kit() else { return };
    // curl resolves www.google.com over UDP to port 53 (connect on a UDP
    // socket). `fd.port in (expected_udp_ports)` holds when either end's
    // port is in the list, as libsinsp compares fd.port: Falco gives no
    // "Unexpected UDP Traffic" on this capture.
    let alerts = alerts(&kit, "curl_google.scap");
    let udp: Vec<&Json> = alerts
        .iter()
        .filter(|a| a["rule"] == "Unexpected UDP Traffic")
        .collect();
    assert!(udp.is_empty(), "{udp:#?}");
}
