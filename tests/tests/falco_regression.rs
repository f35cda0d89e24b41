//! Falco's regression suite, run against the `peregrine` binary.
//!
//! tests/conformance/status.yaml lists, per spec file, the cases known to
//! pass (a ratchet: any of them failing fails this test) and the cases
//! that do not apply to Peregrine, each with its reason. Every other case
//! is reported with what did not hold, so the list of work left is printed
//! on every run.

use std::collections::BTreeMap;
use std::path::Path;

use peregrine_tests::conformance::{load_spec, run_case, CurrentFalco, Layout};
use peregrine_tests::current_falco::{self, Override};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecStatus {
    #[serde(default)]
    passing: Vec<String>,
    #[serde(default)]
    not_applicable: BTreeMap<String, String>,
    /// Cases whose expectations current Falco changed (event counts,
    /// output lines), with the suite's.
    #[serde(default)]
    current_falco: BTreeMap<String, Override>,
    /// Cases whose expected text is that of the Falco of 2023 where
    /// current Falco's words differ: checked against current Falco's.
    #[serde(default)]
    current_falco_text: BTreeMap<String, CurrentFalco>,
}

fn status() -> BTreeMap<String, SpecStatus> {
    let path = peregrine_tests::repo_root().join("tests/conformance/status.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run_spec(file: &str) {
    let Some(kit) = peregrine_tests::conformance_kit() else {
        eprintln!("skipped: ../shared/conformance is absent (a fresh clone has no kit)");
        return;
    };
    let spec = kit.join("falco-regression").join(file);
    let cases = load_spec(&spec).unwrap();
    let status = status().remove(file).unwrap_or_default();
    let binary = peregrine_tests::peregrine_binary().unwrap();
    let layout = Layout::kit(&spec);
    let scratch = tempdir();

    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    for listed in status
        .passing
        .iter()
        .chain(status.not_applicable.keys())
        .chain(status.current_falco.keys())
    {
        assert!(
            names.contains(&listed.as_str()),
            "status.yaml names {listed:?}, which {file} does not have"
        );
    }

    let (mut passed, mut failed, mut not_applicable) = (0, 0, 0);
    let mut regressions = Vec::new();
    let mut newly_passing = Vec::new();
    for case in &cases {
        if let Some(reason) = status.not_applicable.get(&case.name) {
            not_applicable += 1;
            println!("N/A  {}: {reason}", case.name);
            continue;
        }
        let mut case = match status.current_falco.get(&case.name) {
            Some(ov) => {
                println!("CURRENT FALCO {}: {}", case.name, ov.reason);
                current_falco::apply(case, ov, &layout.base, scratch.as_path())
                    .unwrap_or_else(|e| panic!("status.yaml: {e}"))
            }
            None => case.clone(),
        };
        if let Some(current) = status.current_falco_text.get(&case.name) {
            println!("CURRENT FALCO {}: {}", case.name, current.reason);
            case.follow_current_falco(current)
                .unwrap_or_else(|e| panic!("status.yaml: {e}"));
        }
        let outcome = run_case(&binary, &layout, &case, scratch.as_path());
        let expected_to_pass = status.passing.contains(&case.name);
        if outcome.passed() {
            passed += 1;
            println!("PASS {}", case.name);
            if !expected_to_pass {
                newly_passing.push(case.name.clone());
            }
        } else {
            failed += 1;
            println!("FAIL {}: {}", case.name, outcome.failures.join("; "));
            if expected_to_pass {
                regressions.push(format!(
                    "{}: {}\n    {}",
                    case.name,
                    outcome.failures.join("; "),
                    outcome.command
                ));
            }
        }
    }
    println!(
        "{file}: {passed} passed, {failed} failed, {not_applicable} not applicable, of {}",
        cases.len()
    );
    if !newly_passing.is_empty() {
        println!("newly passing (add to tests/conformance/status.yaml): {newly_passing:?}");
    }
    assert!(
        regressions.is_empty(),
        "cases that passed before fail now:\n{}",
        regressions.join("\n")
    );
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("peregrine-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn falco_syscall_regression_suite() {
    run_spec("falco_tests.yaml");
}

#[test]
fn falco_k8s_audit_regression_suite() {
    run_spec("falco_k8s_audit_tests.yaml");
}

#[test]
fn status_file_is_well_formed() {
    let status = status();
    assert!(status
        .keys()
        .all(|k| Path::new(k).extension().is_some_and(|e| e == "yaml")));
}
