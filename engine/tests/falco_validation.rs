//! Falco's rule-validation regression cases (the `validate_rules_file`
//! cases of falco_tests.yaml): Peregrine must report the same codes,
//! messages and items.

mod common;

use std::path::Path;

use common::conformance_dir;
use peregrine_engine::rules::{Diagnostic, LoadResult, RulesLoader};
use peregrine_engine::syscall_fields::SyscallFields;
use serde_yaml::Value as Yaml;

fn as_list(v: Option<&Yaml>) -> Vec<Yaml> {
    match v {
        None | Some(Yaml::Null) => Vec::new(),
        Some(Yaml::Sequence(s)) => s.clone(),
        Some(other) => vec![other.clone()],
    }
}

fn text(v: Option<&Yaml>) -> String {
    match v {
        Some(Yaml::String(s)) => s.clone(),
        Some(Yaml::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Whether some diagnostic matches an expectation of the harness: same
/// code, same message (or containing `message_contains`), same item.
fn found(diags: &[&Diagnostic], want: &serde_yaml::Mapping) -> bool {
    let get = |k: &str| want.get(Yaml::String(k.into()));
    diags.iter().any(|d| {
        d.code.as_str() == text(get("code"))
            && match (get("message"), get("message_contains")) {
                (Some(m), _) => d.message == text(Some(m)),
                (None, Some(c)) => d.message.contains(&text(Some(c))),
                (None, None) => true,
            }
            && d.item_type == text(get("item_type"))
            && d.item_name == text(get("item_name"))
    })
}

fn run_case(dir: &Path, case: &serde_yaml::Mapping) -> Result<(), String> {
    let get = |k: &str| case.get(Yaml::String(k.into()));
    let mut loader = RulesLoader::new();
    for f in as_list(get("validate_rules_file")) {
        let path = dir.join(text(Some(&f)));
        loader.load_file(&path);
        if loader.results().last().is_some_and(LoadResult::successful) {
            loader.compile(SyscallFields::new());
        }
    }
    let results = loader.results();
    let errors: Vec<&Diagnostic> = results.iter().flat_map(|r| r.errors.iter()).collect();
    let warnings: Vec<&Diagnostic> = results.iter().flat_map(|r| r.warnings.iter()).collect();
    let exit_status = get("exit_status").and_then(Yaml::as_u64).unwrap_or(0);
    if (exit_status != 0) == errors.is_empty() {
        return Err(format!(
            "exit status {exit_status} expected, errors were: {errors:#?}"
        ));
    }
    for want in as_list(get("validate_errors")) {
        let Yaml::Mapping(w) = want else { continue };
        if !found(&errors, &w) {
            return Err(format!("missing error {w:?}; got {errors:#?}"));
        }
    }
    for want in as_list(get("validate_warnings")) {
        let Yaml::Mapping(w) = want else { continue };
        if !found(&warnings, &w) {
            return Err(format!("missing warning {w:?}; got {warnings:#?}"));
        }
    }
    for ok in as_list(get("validate_ok")) {
        let name = text(Some(&ok));
        let good = results.iter().any(|r| {
            r.successful()
                && Path::new(&r.name)
                    .file_name()
                    .is_some_and(|f| f == name.as_str())
        });
        if !good {
            return Err(format!("no successful result for {name}"));
        }
    }
    Ok(())
}

/// The suite's expectations that current Falco words differently, as
/// tests/conformance/status.yaml records them (`current_falco_text`): pairs of
/// (as in the suite, as current Falco gives it), per case.
fn current_falco_changes() -> std::collections::HashMap<String, Vec<(String, String)>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/status.yaml");
    let status: Yaml = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut out = std::collections::HashMap::new();
    let Some(Yaml::Mapping(cases)) = status["falco_tests.yaml"].get("current_falco_text") else {
        return out;
    };
    for (name, record) in cases {
        let changes = as_list(record.get("changes"))
            .iter()
            .map(|c| (text(c.get("was")), text(c.get("now"))))
            .collect();
        out.insert(text(Some(name)), changes);
    }
    out
}

fn replace_expected(value: &mut Yaml, was: &str, now: &str) {
    match value {
        Yaml::String(s) if s == was => *s = now.to_string(),
        Yaml::Sequence(items) => items.iter_mut().for_each(|v| replace_expected(v, was, now)),
        Yaml::Mapping(map) => map
            .iter_mut()
            .for_each(|(_, v)| replace_expected(v, was, now)),
        _ => {}
    }
}

#[test]
fn falco_rule_validation_cases() {
    let Some(root) = conformance_dir() else {
        println!("SKIP: ../shared/conformance not found; validation cases not run");
        return;
    };
    let dir = root.join("falco-regression");
    let spec: Yaml =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("falco_tests.yaml")).unwrap())
            .unwrap();
    let cases = match spec.get("trace_files") {
        Some(Yaml::Tagged(t)) => t.value.clone(),
        Some(v) => v.clone(),
        None => Yaml::Null,
    };
    let Yaml::Mapping(cases) = cases else {
        panic!("no cases")
    };
    let mut ran = 0;
    let mut failures = Vec::new();
    let current = current_falco_changes();
    for (name, case) in &cases {
        let mut case = case.clone();
        for (was, now) in current.get(&text(Some(name))).into_iter().flatten() {
            replace_expected(&mut case, was, now);
        }
        let Yaml::Mapping(case) = &case else { continue };
        if case
            .get(Yaml::String("validate_rules_file".into()))
            .is_none()
        {
            continue;
        }
        ran += 1;
        if let Err(e) = run_case(&dir, case) {
            failures.push(format!("{}: {e}", text(Some(name))));
        }
    }
    println!(
        "rule validation cases: {}/{ran} passed",
        ran - failures.len()
    );
    for f in &failures {
        println!("  FAIL {f}");
    }
    assert!(ran >= 30, "expected the validation cases, found {ran}");
    assert!(
        failures.is_empty(),
        "{} validation cases failed",
        failures.len()
    );
}
