//! Rule files a user got wrong must give load errors, never panics: every
//! kit rule file (and our defaults) is cut short at many places, has
//! characters swapped for YAML and condition punctuation, and has lines
//! dropped; each variant is loaded and compiled for both sources.

mod common;

use common::conformance_dir;
use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::rules::RulesLoader;
use peregrine_engine::syscall_fields::SyscallFields;

fn load_and_compile(name: &str, text: &str) {
    let mut loader = RulesLoader::new();
    loader.load_str(name, text);
    loader.compile(SyscallFields::new());
    loader.compile(K8sAuditSource::new());
    for result in loader.results() {
        for d in result.errors.iter().chain(result.warnings.iter()) {
            assert!(
                !d.message.is_empty(),
                "{name}: a diagnostic without a message: {d:?}"
            );
        }
    }
}

/// A few thousand variants of `text`, deterministic (no randomness: a
/// failure must reproduce).
fn variants(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let step = (chars.len() / 150).max(1);
    for cut in (0..chars.len()).step_by(step) {
        out.push(chars[..cut].iter().collect());
    }
    const SWAPS: &[char] = &[
        '(', ')', '"', '\'', ':', '-', '[', ']', '%', '\\', '{', '\n', ' ', '\t', 'é',
    ];
    for (i, at) in (0..chars.len()).step_by(step).enumerate() {
        let mut changed = chars.clone();
        changed[at] = SWAPS[i % SWAPS.len()];
        out.push(changed.into_iter().collect());
    }
    let lines: Vec<&str> = text.lines().collect();
    let line_step = (lines.len() / 60).max(1);
    for drop in (0..lines.len()).step_by(line_step) {
        let kept: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != drop)
            .map(|(_, l)| *l)
            .collect();
        out.push(kept.join("\n"));
    }
    out
}

#[test]
fn damaged_rule_files_never_panic() {
    let mut files = vec![(
        "peregrine_rules.yaml".to_string(),
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../rules/peregrine_rules.yaml"
        ))
        .unwrap(),
    )];
    match conformance_dir() {
        Some(kit) => {
            for rel in [
                "upstream-rules/k8s_audit_rules.yaml",
                "falco-regression/rules/invalid_macro_loop.yaml",
                "falco-regression/rules/list_append.yaml",
                "falco-regression/rules/double_rule.yaml",
            ] {
                let text =
                    std::fs::read_to_string(kit.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
                files.push((rel.to_string(), text));
            }
        }
        None => println!(
            "SKIP (partly): ../shared/conformance not found; only our own rules are damaged"
        ),
    }
    let mut loaded = 0;
    for (name, text) in &files {
        for variant in variants(text) {
            load_and_compile(name, &variant);
            loaded += 1;
        }
    }
    println!("{loaded} damaged variants loaded without a panic");
    assert!(loaded > 400);
}
