//! `--rule-schema`: the JSON Schema (draft-07) of a rules file as the
//! loader reads it, as Falco prints its own. The keys of each item kind
//! are the loader's own lists (a key added there shows here), and each
//! key's form is what the loader's decoding accepts: text where a scalar
//! is read as text, YAML 1.1 booleans (`yes`, `on`...), priorities in any
//! case, `capture_duration` as whole milliseconds.

use serde_json::{json, Map, Value};

use super::loader::{LIST_KEYS, MACRO_KEYS, RULE_APPENDABLE, RULE_KEYS, RULE_REPLACEABLE};

/// The JSON Schema draft the schema is written in.
pub const DRAFT: &str = "http://json-schema.org/draft-07/schema#";

/// The priority names the loader reads (any case, spaces around allowed).
pub const PRIORITY_NAMES: &[&str] = &[
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "info",
    "debug",
];

/// The words the loader reads as booleans, besides YAML's own.
const BOOL_WORDS: &[&str] = &["true", "yes", "on", "y", "false", "no", "off", "n"];

/// A case-insensitive pattern of names, spaces around allowed.
pub fn names_pattern(names: &[&str]) -> String {
    let alternatives: Vec<String> = names
        .iter()
        .map(|name| {
            name.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    format!("^\\s*(?:{})\\s*$", alternatives.join("|"))
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/definitions/{name}") })
}

/// The form of one key of a rule, list or macro item, or `None` for a
/// key the loader lists but this table does not know (a test keeps it
/// from happening).
fn key_form(key: &str, kind: &str) -> Option<Value> {
    Some(match key {
        "rule" | "list" | "macro" | "condition" | "output" | "desc" | "source" => reference("Text"),
        "priority" => reference("Priority"),
        "enabled" | "capture" | "warn_evttypes" | "skip-if-unknown-filter" | "append" => {
            reference("Bool")
        }
        "capture_duration" => reference("Milliseconds"),
        "tags" | "items" => reference("Texts"),
        "exceptions" => json!({"type": ["array", "null"], "items": reference("Exception")}),
        "override" => reference(&format!("{kind}Override")),
        _ => return None,
    })
}

fn item_kind(kind: &str, name_key: &str, keys: &[&str]) -> Value {
    let mut properties = Map::new();
    for key in keys {
        properties.insert((*key).to_string(), key_form(key, kind).unwrap_or(json!({})));
    }
    json!({
        "type": "object",
        "title": kind,
        "required": [name_key],
        "additionalProperties": false,
        "properties": properties,
    })
}

/// `override:` of an item kind: each key it may name, with the
/// operations the loader allows on it.
fn override_kind(appendable: &[&str], replaceable: &[&str]) -> Value {
    let mut properties = Map::new();
    let mut keys: Vec<&str> = appendable.iter().chain(replaceable).copied().collect();
    keys.dedup();
    for key in keys {
        if properties.contains_key(key) {
            continue;
        }
        let mut operations = Vec::new();
        if appendable.contains(&key) {
            operations.push("append");
        }
        if replaceable.contains(&key) {
            operations.push("replace");
        }
        properties.insert(
            key.to_string(),
            json!({"type": "string", "enum": operations}),
        );
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    })
}

/// The schema `--rule-schema` prints: one YAML document of a rules file.
pub fn rule_schema() -> Value {
    let text = json!({"type": ["string", "number", "boolean"]});
    let version_text = json!({"type": ["string", "number"]});
    json!({
        "$schema": DRAFT,
        "title": "Peregrine rules file",
        "description": "One YAML document of a rules file: a list of lists, macros, rules and \
                        version requirements, applied in order. Unknown keys are warned about \
                        and ignored.",
        "type": ["array", "null"],
        "items": reference("Item"),
        "definitions": {
            "Item": {
                "oneOf": [
                    reference("RequiredEngineVersion"),
                    reference("RequiredPluginVersions"),
                    reference("List"),
                    reference("Macro"),
                    reference("Rule"),
                ]
            },
            "RequiredEngineVersion": {
                "type": "object",
                "required": ["required_engine_version"],
                "additionalProperties": false,
                "properties": {
                    "required_engine_version": {
                        "description": "x.y.z, or N for Falco's old numbering (0.N.0)",
                        "anyOf": [
                            {"type": "integer", "minimum": 0, "maximum": u32::MAX},
                            {"type": "string"}
                        ]
                    }
                }
            },
            "RequiredPluginVersions": {
                "type": "object",
                "required": ["required_plugin_versions"],
                "additionalProperties": false,
                "properties": {
                    "required_plugin_versions": {
                        "type": "array",
                        "items": reference("PluginVersion")
                    }
                }
            },
            "PluginVersion": {
                "type": "object",
                "required": ["name", "version"],
                "additionalProperties": false,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "version": version_text,
                    "alternatives": {"type": "array", "items": reference("Alternative")}
                }
            },
            "Alternative": {
                "type": "object",
                "required": ["name", "version"],
                "additionalProperties": false,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "version": version_text
                }
            },
            "List": item_kind("List", "list", LIST_KEYS),
            "Macro": item_kind("Macro", "macro", MACRO_KEYS),
            "Rule": item_kind("Rule", "rule", RULE_KEYS),
            "ListOverride": override_kind(&["items"], &["items"]),
            "MacroOverride": override_kind(&["condition"], &["condition"]),
            "RuleOverride": override_kind(RULE_APPENDABLE, RULE_REPLACEABLE),
            "Text": text,
            "Texts": {"type": "array", "items": text},
            "Bool": {
                "anyOf": [
                    {"type": "boolean"},
                    {"type": "string", "pattern": names_pattern(BOOL_WORDS)}
                ]
            },
            "Priority": {"type": "string", "pattern": names_pattern(PRIORITY_NAMES)},
            "Milliseconds": {
                "anyOf": [
                    {"type": "integer", "minimum": 0, "maximum": u32::MAX},
                    {"type": "string", "pattern": "^\\s*[0-9]+\\s*$"}
                ]
            },
            "Exception": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": false,
                "properties": {
                    "name": text,
                    "fields": reference("ExceptionEntry"),
                    "comps": reference("ExceptionEntry"),
                    "values": {"type": "array", "items": reference("ExceptionEntry")}
                }
            },
            "ExceptionEntry": {
                "anyOf": [
                    {"type": "string", "minLength": 1},
                    {"type": ["number", "boolean"]},
                    {"type": "array", "items": reference("ExceptionEntry")}
                ]
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_the_loader_reads_has_a_form() {
        for (kind, keys) in [
            ("Rule", RULE_KEYS),
            ("List", LIST_KEYS),
            ("Macro", MACRO_KEYS),
        ] {
            for key in keys {
                assert!(key_form(key, kind).is_some(), "{kind}: {key} has no form");
            }
        }
        let schema = rule_schema();
        let rule = &schema["definitions"]["Rule"]["properties"];
        assert_eq!(rule.as_object().map(Map::len), Some(RULE_KEYS.len()));
        assert_eq!(
            schema["definitions"]["RuleOverride"]["properties"]["output"]["enum"],
            json!(["append", "replace"])
        );
        assert_eq!(
            schema["definitions"]["RuleOverride"]["properties"]["priority"]["enum"],
            json!(["replace"])
        );
    }

    #[test]
    fn priority_and_bool_patterns_match_what_the_loader_reads() {
        let priority = regex::Regex::new(&names_pattern(PRIORITY_NAMES)).unwrap();
        for name in ["WARNING", "Warning", "Informational", "debug"] {
            assert!(priority.is_match(name), "{name}");
            assert!(name.parse::<super::super::Priority>().is_ok(), "{name}");
        }
        // The schema's pattern allows spaces around the name; Falco's
        // loader does not (checked against Falco master: "Invalid
        // priority" for " WARNING" and "WARNING ").
        assert!(priority.is_match(" info "));
        assert!(" info ".parse::<super::super::Priority>().is_err());
        for name in ["loud", "warn", "WARNINGS", ""] {
            assert!(!priority.is_match(name), "{name}");
            assert!(name.parse::<super::super::Priority>().is_err(), "{name}");
        }
        let words = regex::Regex::new(&names_pattern(BOOL_WORDS)).unwrap();
        assert!(words.is_match("Yes") && words.is_match("OFF") && !words.is_match("maybe"));
    }

    fn validator() -> jsonschema::Validator {
        let schema = rule_schema();
        assert!(jsonschema::draft7::meta::is_valid(&schema));
        jsonschema::draft7::new(&schema).expect("the schema compiles")
    }

    fn documents(text: &str) -> Vec<Value> {
        text.split("\n---")
            .filter_map(|doc| serde_yaml::from_str::<serde_yaml::Value>(doc).ok())
            .map(|doc| serde_json::to_value(doc).unwrap())
            .collect()
    }

    /// Falco's own rules files validate; so does each kind of item and
    /// override the loader takes, and what it refuses does not.
    #[test]
    fn falco_rules_files_validate_and_bad_items_do_not() {
        let validator = validator();
        let kit = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/conformance/upstream-rules");
        match std::fs::read_dir(&kit) {
            Ok(entries) => {
                let mut checked = 0;
                for entry in entries.flatten() {
                    let text = std::fs::read_to_string(entry.path()).unwrap();
                    for document in documents(&text) {
                        let errors: Vec<String> = validator
                            .iter_errors(&document)
                            .map(|e| format!("{e} at {}", e.instance_path))
                            .take(5)
                            .collect();
                        assert!(errors.is_empty(), "{}: {errors:#?}", entry.path().display());
                    }
                    checked += 1;
                }
                assert!(checked >= 4, "{checked}");
            }
            Err(_) => eprintln!("skipped (partly): no {}", kit.display()),
        }
        let good = "- required_engine_version: 0.31.0\n\
                    - required_plugin_versions:\n  - name: k8saudit\n    version: 0.7.0\n    alternatives:\n      - name: k8saudit-eks\n        version: 0.4.0\n\
                    - list: shells\n  items: [bash, sh, 1]\n\
                    - list: shells\n  items: [zsh]\n  override:\n    items: append\n\
                    - macro: spawned\n  condition: evt.type = execve\n\
                    - rule: A\n  desc: d\n  condition: spawned\n  output: o\n  priority: Warning\n  enabled: yes\n  capture: true\n  capture_duration: 2000\n  tags: [a]\n  exceptions:\n    - name: e\n      fields: [proc.name, fd.name]\n      comps: [=, startswith]\n      values:\n        - [bash, /tmp]\n\
                    - rule: A\n  output: more\n  priority: ERROR\n  override:\n    output: append\n    priority: replace\n";
        let document = &documents(good)[0];
        let errors: Vec<String> = validator
            .iter_errors(document)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        // The loader takes it without an error or a warning.
        let mut defs = super::super::Definitions::default();
        let mut result = super::super::LoadResult::default();
        super::super::loader::load_content(&mut defs, "good.yaml", good, &mut result);
        assert!(
            result.errors.is_empty() && result.warnings.is_empty(),
            "{result:?}"
        );
        for bad in [
            "- rule: A\n  priority: loud\n",
            "- rule: A\n  enabled: maybe\n",
            "- rule: A\n  capture_duration: -1\n",
            "- rule: A\n  tags: a\n",
            "- rule: A\n  override:\n    priority: append\n",
            "- rule: A\n  colour: red\n",
            "- list: l\n  items: a\n",
            "- macro: m\n  override:\n    items: append\n",
            "- rule: A\n  exceptions:\n    - fields: [a]\n",
            "- required_plugin_versions:\n  - name: x\n",
            "- colour: red\n",
            "rule: A\n",
        ] {
            let document = &documents(bad)[0];
            assert!(!validator.is_valid(document), "schema took {bad}");
        }
    }
}
