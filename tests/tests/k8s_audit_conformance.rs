//! Runs Falco's k8s audit regression cases (falco_k8s_audit_tests.yaml
//! format) through Peregrine's rules engine and the k8s audit source.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use peregrine_engine::k8s_audit::{events_from_json, K8sAuditSource};
use peregrine_engine::rules::{Priority, RulesLoader};
use serde_yaml::Value as Yaml;

/// One case's outcome: None when it passed, else why not.
#[derive(Debug)]
pub struct CaseOutcome {
    pub name: String,
    pub failure: Option<String>,
}

fn conformance_dir() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance");
    root.is_dir().then_some(root)
}

/// Maps a case's rule path onto the files of the conformance kit.
fn rules_path(spec_dir: &Path, raw: &str) -> PathBuf {
    if raw.starts_with("BUILD_DIR/") {
        if raw.ends_with("k8s_audit_rules.yaml") {
            return spec_dir.join("k8s_audit_rules-0.6.0.yaml");
        }
        if raw.ends_with("falco_rules.yaml") {
            return spec_dir.join("falco_rules-1.0.1.yaml");
        }
        return spec_dir.join(raw.trim_start_matches("BUILD_DIR/test/"));
    }
    spec_dir.join(raw)
}

fn as_list(v: Option<&Yaml>) -> Vec<Yaml> {
    match v {
        None | Some(Yaml::Null) => Vec::new(),
        Some(Yaml::Sequence(s)) => s.clone(),
        Some(other) => vec![other.clone()],
    }
}

fn text(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// Runs one case and compares with its expectations.
fn run_case(spec_dir: &Path, case: &serde_yaml::Mapping) -> Result<(), String> {
    let get = |k: &str| case.get(Yaml::String(k.into()));
    let mut loader = RulesLoader::new();
    for f in as_list(get("rules_file")) {
        let path = rules_path(spec_dir, &text(&f));
        let result = loader.load_file(&path);
        if let Some(e) = result.errors.first() {
            return Err(format!("rules file {} failed to load: {e}", path.display()));
        }
    }
    let mut rules = loader.compile(K8sAuditSource::new());
    if let Some(e) = loader.results().iter().flat_map(|r| r.errors.iter()).next() {
        return Err(format!("compile error: {e}"));
    }
    let opts = get("addl_cmdline_opts").map(text).unwrap_or_default();
    let trace = opts
        .split_whitespace()
        .find_map(|o| o.split_once("open_params=").map(|(_, f)| f.to_string()))
        .ok_or("no open_params in addl_cmdline_opts")?;
    let json =
        std::fs::read_to_string(spec_dir.join(&trace)).map_err(|e| format!("{trace}: {e}"))?;
    let stderr_expected = get("stderr_contains").map(text);
    let events = match events_from_json(&json) {
        Ok(ev) => ev,
        Err(e) => {
            // A case may expect the input to be rejected.
            return match stderr_expected {
                Some(_) => Ok(()),
                None => Err(format!("events rejected: {e}")),
            };
        }
    };
    if let Some(s) = stderr_expected {
        return Err(format!(
            "expected the input to be rejected ({s}), it was accepted"
        ));
    }
    let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_priority: BTreeMap<Priority, u64> = BTreeMap::new();
    for ev in &events {
        rules.evaluate(&ev, |rule, _| {
            *by_rule.entry(rule.name.clone()).or_default() += 1;
            *by_priority.entry(rule.priority).or_default() += 1;
        });
    }
    let total: u64 = by_rule.values().sum();
    let detect = get("detect").and_then(Yaml::as_bool).unwrap_or(false);
    if !detect && total > 0 {
        return Err(format!(
            "detected {total} events when it should detect none: {by_rule:?}"
        ));
    }
    if detect {
        if total == 0 {
            return Err("detected nothing when it should detect".into());
        }
        for level in as_list(get("detect_level")) {
            let level: Priority = text(&level)
                .parse()
                .map_err(|e| format!("bad detect_level: {e}"))?;
            if by_priority.get(&level).copied().unwrap_or(0) == 0 {
                return Err(format!("no detection at level {level}: {by_priority:?}"));
            }
        }
    }
    for entry in as_list(get("detect_counts")) {
        let Yaml::Mapping(m) = entry else { continue };
        for (rule, count) in m {
            let rule = text(&rule);
            let want = count.as_u64().ok_or("bad detect_counts")?;
            let got = by_rule.get(&rule).copied().unwrap_or(0);
            if got != want {
                return Err(format!(
                    "rule '{rule}': expected {want} detections, got {got}"
                ));
            }
        }
    }
    Ok(())
}

/// Runs every case of a spec file in falco_k8s_audit_tests.yaml's format.
pub fn run_spec(spec: &Path) -> Vec<CaseOutcome> {
    let spec_dir = spec.parent().unwrap_or(Path::new("."));
    let content = std::fs::read_to_string(spec).unwrap();
    // The avocado `!mux` tag is only a marker: read the map under it.
    let doc: Yaml = serde_yaml::from_str(&content).unwrap();
    let cases = match doc.get("trace_files") {
        Some(Yaml::Tagged(t)) => t.value.clone(),
        Some(v) => v.clone(),
        None => Yaml::Null,
    };
    let Yaml::Mapping(cases) = cases else {
        panic!("no trace_files map in {}", spec.display())
    };
    cases
        .iter()
        .map(|(name, case)| {
            let failure = match case {
                Yaml::Mapping(m) => run_case(spec_dir, m).err(),
                _ => Some("case is not a map".into()),
            };
            CaseOutcome {
                name: text(name),
                failure,
            }
        })
        .collect()
}

#[test]
fn k8s_audit_regression_cases() {
    let Some(dir) = conformance_dir() else {
        println!("SKIP: ../shared/conformance not found; k8s audit conformance not run");
        return;
    };
    let spec = dir.join("falco-regression/falco_k8s_audit_tests.yaml");
    let outcomes = run_spec(&spec);
    let failed: Vec<&CaseOutcome> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    println!(
        "k8s audit conformance: {}/{} passed",
        outcomes.len() - failed.len(),
        outcomes.len()
    );
    for f in &failed {
        println!("  FAIL {}: {}", f.name, f.failure.as_deref().unwrap_or(""));
    }
    assert!(
        outcomes.len() >= 60,
        "expected the 67 cases, found {}",
        outcomes.len()
    );
    assert!(failed.is_empty(), "{} k8s audit cases failed", failed.len());
}

/// The runner must notice wrong expectations, not only confirm right ones.
#[test]
fn runner_reports_mismatches() {
    let Some(dir) = conformance_dir() else {
        println!("SKIP: ../shared/conformance not found; runner self-check not run");
        return;
    };
    let reg = dir.join("falco-regression");
    let rules = reg.join("k8s_audit_rules-0.6.0.yaml");
    let trace = reg.join("trace_files/k8s_audit/create_nginx_pod_privileged.json");
    let spec = format!(
        "trace_files: !mux\n\
         \x20 right:\n    detect: True\n    detect_level: WARNING\n    rules_file: [{r}]\n    detect_counts:\n      - Create Privileged Pod: 1\n    addl_cmdline_opts: -o plugins[0].open_params={t}\n\
         \x20 wrong_count:\n    detect: True\n    rules_file: [{r}]\n    detect_counts:\n      - Create Privileged Pod: 2\n    addl_cmdline_opts: -o plugins[0].open_params={t}\n\
         \x20 wrong_level:\n    detect: True\n    detect_level: CRITICAL\n    rules_file: [{r}]\n    addl_cmdline_opts: -o plugins[0].open_params={t}\n\
         \x20 wrong_detect:\n    detect: False\n    rules_file: [{r}]\n    addl_cmdline_opts: -o plugins[0].open_params={t}\n",
        r = rules.display(),
        t = trace.display()
    );
    let tmp = std::env::temp_dir().join(format!("peregrine-k8s-spec-{}.yaml", std::process::id()));
    std::fs::write(&tmp, spec).unwrap();
    let outcomes = run_spec(&tmp);
    std::fs::remove_file(&tmp).ok();
    let by_name: BTreeMap<&str, bool> = outcomes
        .iter()
        .map(|o| (o.name.as_str(), o.failure.is_none()))
        .collect();
    assert!(by_name["right"], "{outcomes:?}");
    assert!(!by_name["wrong_count"]);
    assert!(!by_name["wrong_level"]);
    assert!(!by_name["wrong_detect"]);
}

/// Runs another spec file of the same format, named by
/// PEREGRINE_K8S_AUDIT_SPEC, and fails if any of its cases fails.
#[test]
fn k8s_audit_spec_from_environment() {
    let Some(path) = std::env::var_os("PEREGRINE_K8S_AUDIT_SPEC") else {
        println!("SKIP: PEREGRINE_K8S_AUDIT_SPEC not set; no extra spec file to run");
        return;
    };
    let outcomes = run_spec(Path::new(&path));
    let failed: Vec<&CaseOutcome> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    println!(
        "{}: {}/{} passed",
        Path::new(&path).display(),
        outcomes.len() - failed.len(),
        outcomes.len()
    );
    for f in &failed {
        println!("  FAIL {}: {}", f.name, f.failure.as_deref().unwrap_or(""));
    }
    assert!(failed.is_empty());
}
