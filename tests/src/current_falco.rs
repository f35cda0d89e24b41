//! Where current Falco expects otherwise than the 2023 regression suite.
//!
//! The suite's counts and output files are those of the Falco of 2023,
//! which evaluated a syscall's enter and exit events. Since libs 0.22
//! Falco evaluates one event per syscall (the exit, carrying every
//! parameter), so a rule on `evt.type=open` fires half as often on the same
//! capture. tests/conformance/status.yaml records, per case, each value
//! current Falco expects beside the suite's (`was`, checked against the
//! spec so the record cannot drift from it) and why. The case then runs
//! with current Falco's value, and still checks everything else it did.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::Value as Yaml;

use crate::conformance::Case;

/// One case's departures from the 2023 suite.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Why current Falco expects otherwise.
    pub reason: String,
    /// Per case key, what the suite says and what current Falco expects.
    pub keys: BTreeMap<String, Change>,
}

/// What one case key becomes.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// The suite's value, as its spec file has it.
    pub was: Yaml,
    /// Current Falco's value.
    #[serde(default)]
    pub now: Option<Yaml>,
    /// For a key naming expected output files: the lines of those files
    /// (from 1) current Falco still writes. The files are read from the
    /// kit; only the selection is recorded here.
    #[serde(default)]
    pub lines: Option<Vec<usize>>,
}

/// The case as current Falco's expectations make it. `base` is the
/// folder the case's relative paths start from; selected lines of output
/// files are written under `scratch`.
pub fn apply(case: &Case, ov: &Override, base: &Path, scratch: &Path) -> Result<Case, String> {
    let mut out = case.clone();
    for (key, change) in &ov.keys {
        let current = case
            .params
            .get(key.as_str())
            .ok_or_else(|| format!("{}: the case has no key {key:?}", case.name))?;
        if *current != change.was {
            return Err(format!(
                "{}: {key} is {current:?} in the spec, status.yaml says it was {:?}",
                case.name, change.was
            ));
        }
        let now = match (&change.now, &change.lines) {
            (Some(now), None) => now.clone(),
            (None, Some(lines)) => select_lines(&case.name, current, lines, base, scratch)?,
            _ => {
                return Err(format!(
                    "{}: {key}: give `now` or `lines`, one of them",
                    case.name
                ))
            }
        };
        out.params.insert(Yaml::from(key.as_str()), now);
    }
    Ok(out)
}

/// `[{destination: expected_file}, ...]` with each expected file replaced
/// by a copy holding only `lines` of it.
fn select_lines(
    case: &str,
    value: &Yaml,
    lines: &[usize],
    base: &Path,
    scratch: &Path,
) -> Result<Yaml, String> {
    let entries = value
        .as_sequence()
        .ok_or_else(|| format!("{case}: `lines` applies to a list of output files"))?;
    let mut out = Vec::new();
    for (n, entry) in entries.iter().enumerate() {
        let map = entry
            .as_mapping()
            .ok_or_else(|| format!("{case}: output entry {n} is not a map"))?;
        let mut new_map = serde_yaml::Mapping::new();
        for (destination, expected) in map {
            let expected = expected
                .as_str()
                .ok_or_else(|| format!("{case}: output entry {n} names no file"))?;
            let path = base.join(expected);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("{case}: {}: {e}", path.display()))?;
            let all: Vec<&str> = text.lines().collect();
            let mut kept = String::new();
            for &line in lines {
                let text = line
                    .checked_sub(1)
                    .and_then(|i| all.get(i))
                    .ok_or_else(|| format!("{case}: {} has no line {line}", path.display()))?;
                kept.push_str(text);
                kept.push('\n');
            }
            let copy = scratch.join(format!("{case}-{n}-current-falco.txt"));
            std::fs::write(&copy, kept).map_err(|e| format!("{}: {e}", copy.display()))?;
            new_map.insert(destination.clone(), Yaml::from(copy.display().to_string()));
        }
        out.push(Yaml::Mapping(new_map));
    }
    Ok(Yaml::Sequence(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(yaml: &str) -> Case {
        Case {
            name: "c".into(),
            params: serde_yaml::from_str(yaml).unwrap(),
        }
    }

    #[test]
    fn a_count_is_replaced_only_when_the_spec_still_says_what_was_recorded() {
        let c = case("detect_counts: [{r: 8}]\ntrace_file: t.scap");
        let ov: Override = serde_yaml::from_str(
            "reason: one event per syscall\nkeys:\n  detect_counts: {was: [{r: 8}], now: [{r: 4}]}",
        )
        .unwrap();
        let dir = std::env::temp_dir();
        let out = apply(&c, &ov, &dir, &dir).unwrap();
        assert_eq!(
            out.params.get("detect_counts").unwrap(),
            &serde_yaml::from_str::<Yaml>("[{r: 4}]").unwrap()
        );
        assert_eq!(out.params.get("trace_file"), c.params.get("trace_file"));
        let stale = case("detect_counts: [{r: 6}]");
        assert!(apply(&stale, &ov, &dir, &dir).unwrap_err().contains("was"));
    }

    #[test]
    fn lines_of_an_expected_file_are_selected_in_order() {
        let dir = std::env::temp_dir().join(format!("current-falco-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("want.txt"), "e1\nx1\ne2\nx2\n").unwrap();
        let c = case("output_strictly_contains: [{stdout: want.txt}]");
        let ov: Override = serde_yaml::from_str(
            "reason: r\nkeys:\n  output_strictly_contains: {was: [{stdout: want.txt}], lines: [2, 4]}",
        )
        .unwrap();
        let out = apply(&c, &ov, &dir, &dir).unwrap();
        let entry = &out.params.get("output_strictly_contains").unwrap()[0];
        let copy = entry.get("stdout").unwrap().as_str().unwrap();
        assert_eq!(std::fs::read_to_string(copy).unwrap(), "x1\nx2\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
