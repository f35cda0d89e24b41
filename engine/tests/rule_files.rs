//! The real rule files load and compile: upstream Falco rules and the
//! versions the regression suite used.

mod common;

use common::conformance_dir;
use peregrine_engine::condition::parse_condition;
use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::rules::{Code, RulesLoader};
use peregrine_engine::syscall_fields::SyscallFields;

/// Loads one kit rule file, which must load without error; None (with a
/// SKIP line) when the kit is absent.
fn load(rel: &str) -> Option<RulesLoader> {
    let Some(dir) = conformance_dir() else {
        println!("SKIP: ../shared/conformance not found; {rel} not checked");
        return None;
    };
    let mut loader = RulesLoader::new();
    let result = loader.load_file(dir.join(rel)).clone();
    assert!(
        result.errors.is_empty(),
        "load errors: {:#?}",
        result.errors
    );
    Some(loader)
}

fn load_and_compile_k8s(rel: &str) {
    let Some(mut loader) = load(rel) else { return };
    let compiled = loader.compile(K8sAuditSource::new());
    let errors: Vec<_> = loader
        .results()
        .iter()
        .flat_map(|r| r.errors.iter())
        .collect();
    assert!(errors.is_empty(), "compile errors: {errors:#?}");
    let k8s_rules = loader
        .definitions()
        .rules
        .iter()
        .filter(|r| r.source == "k8s_audit")
        .count();
    assert!(k8s_rules > 20, "only {k8s_rules} k8s rules in {rel}");
    assert_eq!(
        compiled.rules().len(),
        k8s_rules,
        "every k8s_audit rule compiles"
    );
}

#[test]
fn upstream_k8s_audit_rules_load_and_every_rule_compiles() {
    load_and_compile_k8s("upstream-rules/k8s_audit_rules.yaml");
}

#[test]
fn regression_k8s_audit_rules_0_6_0_load_and_every_rule_compiles() {
    load_and_compile_k8s("falco-regression/k8s_audit_rules-0.6.0.yaml");
}

fn load_and_compile_syscall(rel: &str) {
    let Some(mut loader) = load(rel) else { return };
    // Every macro and rule condition parses on its own.
    let defs = loader.definitions();
    for m in defs.macros.iter() {
        parse_condition(&m.condition).unwrap_or_else(|e| panic!("macro {}: {e}", m.name));
    }
    for r in defs.rules.iter() {
        parse_condition(&r.condition).unwrap_or_else(|e| panic!("rule {}: {e}", r.name));
    }
    let total = defs.rules.iter().filter(|r| r.source == "syscall").count();
    let compiled = loader.compile(SyscallFields::new());
    let errors: Vec<_> = loader
        .results()
        .iter()
        .flat_map(|r| r.errors.iter())
        .collect();
    assert!(errors.is_empty(), "compile errors: {errors:#?}");
    assert_eq!(compiled.rules().len(), total, "every syscall rule compiles");
    // Nearly all default rules are limited to a few event types.
    let indexed = compiled
        .rules()
        .iter()
        .filter(|r| r.event_types().is_some())
        .count();
    assert!(
        indexed * 10 >= total * 9,
        "only {indexed} of {total} rules indexed by event type"
    );
    let no_evttype: Vec<_> = loader.results()[0]
        .warnings
        .iter()
        .filter(|w| w.code == Code::NoEvttype)
        .collect();
    println!(
        "{rel}: {total} rules compiled, {indexed} indexed by event type, {} LOAD_NO_EVTTYPE",
        no_evttype.len()
    );
}

#[test]
fn upstream_falco_rules_load_and_compile_with_test_syscall_fields() {
    load_and_compile_syscall("upstream-rules/falco_rules.yaml");
}

#[test]
fn regression_falco_rules_1_0_1_load_and_compile_with_test_syscall_fields() {
    load_and_compile_syscall("falco-regression/falco_rules-1.0.1.yaml");
}

/// Falco's three upstream syscall rule files, loaded together in the order
/// a user enables them (stable, incubating, sandbox; the later ones use
/// the macros and lists of the first), unchanged: no load error, and
/// every syscall rule of the three compiles.
#[test]
fn upstream_stable_incubating_and_sandbox_rules_load_together_and_every_rule_compiles() {
    let Some(dir) = conformance_dir() else {
        println!("SKIP: ../shared/conformance not found; upstream rule files not checked");
        return;
    };
    let files = [
        "upstream-rules/falco_rules.yaml",
        "upstream-rules/falco-incubating_rules.yaml",
        "upstream-rules/falco-sandbox_rules.yaml",
    ];
    let mut loader = RulesLoader::new();
    for rel in files {
        let result = loader.load_file(dir.join(rel)).clone();
        assert!(
            result.errors.is_empty(),
            "{rel}: load errors: {:#?}",
            result.errors
        );
    }
    let total = loader
        .definitions()
        .rules
        .iter()
        .filter(|r| r.source == "syscall")
        .count();
    let compiled = loader.compile(SyscallFields::new());
    let errors: Vec<_> = loader
        .results()
        .iter()
        .flat_map(|r| r.errors.iter())
        .collect();
    assert!(errors.is_empty(), "compile errors: {errors:#?}");
    // Each file brings rules of its own: far more than stable's alone.
    assert!(total > 80, "only {total} syscall rules in the three files");
    assert_eq!(compiled.rules().len(), total, "every syscall rule compiles");
    println!("stable + incubating + sandbox: {total} rules compiled");
}
