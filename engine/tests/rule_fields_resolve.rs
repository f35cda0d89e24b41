//! Every syscall field named by Falco's rule files (the kit's default
//! rules and the current upstream rules: stable, incubating and sandbox)
//! must resolve, so those rules load. `container.info` is left out: it is
//! an output placeholder that Falco expands from its configuration, not a
//! field.

use peregrine_engine::field::FieldSource;
use peregrine_engine::syscall_fields::SyscallFields;
use std::collections::BTreeSet;
use std::path::Path;

const NOT_SUPPORTED: &[&str] = &["container.info"];

/// (name, bracket argument) of every field reference in `text`.
fn field_refs(text: &str) -> BTreeSet<(String, Option<String>)> {
    let b = text.as_bytes();
    let mut out = BTreeSet::new();
    let prefixes = [
        "evt.",
        "proc.",
        "fd.",
        "user.",
        "group.",
        "container.",
        "thread.",
        "k8s.",
        "syscall.",
        "fdlist.",
    ];
    let mut i = 0;
    while i < b.len() {
        let at_word =
            i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.');
        let Some(p) = prefixes
            .iter()
            .find(|p| at_word && text[i..].starts_with(*p))
        else {
            i += 1;
            continue;
        };
        let start = i;
        i += p.len();
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
            i += 1;
        }
        let name = text[start..i].trim_end_matches('.').to_string();
        let mut arg = None;
        if i < b.len() && b[i] == b'[' {
            if let Some(end) = text[i..].find(']') {
                arg = Some(text[i + 1..i + end].to_string());
                i += end + 1;
            }
        }
        // Skip words that only look like fields: k8s.io registries and
        // user.log file names in lists.
        if name.contains('.')
            && !name.ends_with(".io")
            && !name.contains(".gcr")
            && !name.ends_with(".log")
        {
            out.insert((name, arg));
        }
    }
    out
}

#[test]
fn fields_of_falco_rules_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance");
    let mut files = vec![
        root.join("falco-regression/falco_rules-1.0.1.yaml"),
        root.join("upstream-rules/falco_rules.yaml"),
        root.join("upstream-rules/falco-incubating_rules.yaml"),
        root.join("upstream-rules/falco-sandbox_rules.yaml"),
    ];
    // The regression suite's own rule files, except those that must fail
    // to load (invalid_*) or name unknown fields on purpose (skip_unknown_*).
    if let Ok(rd) = std::fs::read_dir(root.join("falco-regression/rules")) {
        files.extend(
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .filter(|p| {
                    let n = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    !n.contains("invalid") && !n.starts_with("skip_unknown")
                }),
        );
    }
    let texts: Vec<String> = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    if texts.is_empty() {
        println!("SKIP: ../shared/conformance rule files not found");
        return;
    }
    let mut source = SyscallFields::new();
    let mut refs = BTreeSet::new();
    for t in &texts {
        // Comments may name fields loosely (`evt.arg*`).
        let code: String = t
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        refs.extend(field_refs(&code));
    }
    let mut failed = Vec::new();
    let mut resolved = 0;
    for (name, arg) in &refs {
        if NOT_SUPPORTED.contains(&name.as_str()) {
            continue;
        }
        let arg = arg.as_deref().filter(|a| !a.is_empty());
        match source.resolve(name, arg) {
            Ok(_) => resolved += 1,
            Err(e) => failed.push(format!("{name}[{arg:?}]: {e}")),
        }
    }
    println!("{resolved} field references resolve");
    assert!(resolved > 50);
    assert!(failed.is_empty(), "unresolved:\n{}", failed.join("\n"));
}

#[test]
fn unknown_fields_and_bad_arguments_are_errors() {
    let mut source = SyscallFields::new();
    assert!(source.resolve("proc.nobody", None).is_err());
    assert!(source.resolve("evt.rawarg.no_such_param", None).is_err());
    assert!(source.resolve("proc.aname", Some("x")).is_err());
    assert!(source.resolve("proc.name", Some("1")).is_err());
    assert!(source.resolve("container.mount.dest", None).is_err());
    assert!(source.resolve("proc.aname", Some("3")).is_ok());
    assert!(source.resolve("evt.arg.anything", None).is_ok());
}
