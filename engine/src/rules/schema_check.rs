//! The rule-schema check Falco runs on every rules document before loading
//! it: a file that breaks the schema still loads (the loader decides), but
//! `-V` reports `schema_valid: false` and the schema's complaints.
//!
//! Falco checks with valijson against its rule schema, reading YAML with
//! weak types (a scalar is a string, and also a boolean when it reads
//! `true` or `false`, an integer when it parses as one). The complaints are
//! given here in valijson's words and order: each constraint of a schema in
//! valijson's order (type, anyOf, enum, items, minProperties, properties in
//! name order with the first unknown key after them, required), an inner
//! complaint before the one that wraps it, each as `failed for <path>: ...`.

use serde_yaml::Value as Yaml;

/// What one document's check gives: `ok`, or its complaints.
pub const OK: &str = "ok";

/// The statuses of a document, as Falco lists them: [`OK`] alone, or one
/// line per complaint.
pub fn check(doc: &Yaml) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = vec!["<root>".to_string()];
    root(doc, &mut path, &mut out);
    if out.is_empty() {
        out.push(OK.to_string());
    }
    out
}

/// The shapes of Falco's rule schema.
#[derive(Clone, Copy)]
enum Shape {
    String,
    Boolean,
    Integer,
    /// A string from the list of priority names, upper case.
    Priority,
    /// `append` or `replace`.
    Overridden,
    /// A list item: an integer or a string.
    ListItem,
    Strings,
    ListItems,
    Exceptions,
    Override,
    PluginVersions,
    Alternatives,
    /// Anything (an exception's fields, comps and values).
    Any,
}

/// The keys of a rules item, in name order (valijson checks them so).
const ITEM_KEYS: &[(&str, Shape)] = &[
    ("append", Shape::Boolean),
    ("capture", Shape::Boolean),
    ("capture_duration", Shape::Integer),
    ("condition", Shape::String),
    ("desc", Shape::String),
    ("enabled", Shape::Boolean),
    ("exceptions", Shape::Exceptions),
    ("items", Shape::ListItems),
    ("list", Shape::String),
    ("macro", Shape::String),
    ("output", Shape::String),
    ("override", Shape::Override),
    ("priority", Shape::Priority),
    ("required_engine_version", Shape::String),
    ("required_plugin_versions", Shape::PluginVersions),
    ("rule", Shape::String),
    ("skip-if-unknown-filter", Shape::Boolean),
    ("source", Shape::String),
    ("tags", Shape::Strings),
    ("warn_evttypes", Shape::Boolean),
];

const EXCEPTION_KEYS: &[(&str, Shape)] = &[
    ("comps", Shape::Any),
    ("fields", Shape::Any),
    ("name", Shape::String),
    ("values", Shape::Any),
];

const OVERRIDE_KEYS: &[(&str, Shape)] = &[
    ("capture", Shape::Overridden),
    ("capture_duration", Shape::Overridden),
    ("condition", Shape::Overridden),
    ("desc", Shape::Overridden),
    ("enabled", Shape::Overridden),
    ("exceptions", Shape::Overridden),
    ("items", Shape::Overridden),
    ("output", Shape::Overridden),
    ("priority", Shape::Overridden),
    ("skip-if-unknown-filter", Shape::Overridden),
    ("tags", Shape::Overridden),
    ("warn_evttypes", Shape::Overridden),
];

const PLUGIN_KEYS: &[(&str, Shape)] = &[
    ("alternatives", Shape::Alternatives),
    ("name", Shape::String),
    ("version", Shape::String),
];

const ALTERNATIVE_KEYS: &[(&str, Shape)] = &[("name", Shape::String), ("version", Shape::String)];

const PRIORITIES: &[&str] = &[
    "EMERGENCY",
    "ALERT",
    "CRITICAL",
    "ERROR",
    "WARNING",
    "NOTICE",
    "INFO",
    "INFORMATIONAL",
    "DEBUG",
];

fn fail(path: &[String], out: &mut Vec<String>, what: &str) {
    out.push(format!("failed for {}: {what}", path.concat()));
}

fn inner(v: &Yaml) -> &Yaml {
    match v {
        Yaml::Tagged(t) => inner(&t.value),
        v => v,
    }
}

/// A scalar's text as yaml-cpp holds it; None for null and collections.
fn scalar(v: &Yaml) -> Option<String> {
    match inner(v) {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn is_empty_collection(v: &Yaml) -> bool {
    match inner(v) {
        Yaml::Sequence(s) => s.is_empty(),
        Yaml::Mapping(m) => m.is_empty(),
        _ => false,
    }
}

fn maybe_string(v: &Yaml) -> bool {
    scalar(v).is_some() || is_empty_collection(v)
}

fn maybe_array(v: &Yaml) -> bool {
    match inner(v) {
        Yaml::Sequence(_) => true,
        Yaml::Mapping(m) => m.is_empty(),
        _ => false,
    }
}

fn maybe_object(v: &Yaml) -> bool {
    match inner(v) {
        Yaml::Mapping(_) => true,
        Yaml::Sequence(s) => s.is_empty(),
        _ => false,
    }
}

fn maybe_boolean(v: &Yaml) -> bool {
    scalar(v).is_some_and(|s| s == "true" || s == "false")
}

fn maybe_integer(v: &Yaml) -> bool {
    scalar(v).is_some_and(|s| s.trim_start().parse::<i64>().is_ok())
}

/// Checks a type; a mismatch is one complaint at `path`.
fn typed(ok: bool, path: &[String], out: &mut Vec<String>) -> bool {
    if !ok {
        fail(path, out, "Value type not permitted by 'type' constraint.");
    }
    ok
}

fn root(doc: &Yaml, path: &mut Vec<String>, out: &mut Vec<String>) {
    typed(maybe_array(doc), path, out);
    array_items(doc, path, out, |item, path, out| {
        object(item, ITEM_KEYS, &[], None, path, out)
    });
}

/// Each item of an array through `each`; a failing item is followed by
/// valijson's note at the array.
fn array_items(
    v: &Yaml,
    path: &mut Vec<String>,
    out: &mut Vec<String>,
    each: impl Fn(&Yaml, &mut Vec<String>, &mut Vec<String>),
) {
    let Yaml::Sequence(items) = inner(v) else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let before = out.len();
        path.push(format!("[{i}]"));
        each(item, path, out);
        path.pop();
        if out.len() > before {
            fail(
                path,
                out,
                &format!("Failed to validate item #{i} in array."),
            );
        }
    }
}

fn object(
    v: &Yaml,
    keys: &[(&str, Shape)],
    required: &[&str],
    min_properties: Option<usize>,
    path: &mut Vec<String>,
    out: &mut Vec<String>,
) {
    typed(maybe_object(v), path, out);
    let Yaml::Mapping(map) = inner(v) else {
        return;
    };
    let key_text = |k: &Yaml| scalar(k).unwrap_or_default();
    if let Some(min) = min_properties {
        if map.len() < min {
            fail(
                path,
                out,
                &format!("Object should have no fewer than {min} properties."),
            );
        }
    }
    for (name, shape) in keys {
        let Some((_, value)) = map.iter().find(|(k, _)| key_text(k) == *name) else {
            continue;
        };
        let before = out.len();
        path.push(format!("[{name}]"));
        value_of(*shape, value, path, out);
        path.pop();
        if out.len() > before {
            fail(
                path,
                out,
                &format!(
                    "Failed to validate against schema associated with property name '{name}'."
                ),
            );
        }
    }
    if let Some(unknown) = map
        .keys()
        .map(key_text)
        .find(|k| !keys.iter().any(|(name, _)| name == k))
    {
        fail(
            path,
            out,
            &format!(
                "Object contains a property that could not be validated using 'properties' or \
                 'additionalProperties' constraints: '{unknown}'."
            ),
        );
    }
    for name in required {
        if !map.keys().any(|k| key_text(k) == *name) {
            fail(path, out, &format!("Missing required property '{name}'."));
        }
    }
}

fn value_of(shape: Shape, v: &Yaml, path: &mut Vec<String>, out: &mut Vec<String>) {
    match shape {
        Shape::Any => {}
        Shape::String => {
            typed(maybe_string(v), path, out);
        }
        Shape::Boolean => {
            typed(maybe_boolean(v), path, out);
        }
        Shape::Integer => {
            typed(maybe_integer(v), path, out);
        }
        Shape::Priority => {
            typed(maybe_string(v), path, out);
            one_of(v, PRIORITIES, path, out);
        }
        Shape::Overridden => one_of(v, &["append", "replace"], path, out),
        Shape::ListItem => {
            // anyOf integer, string: each failing choice is noted, then
            // the anyOf itself.
            if !maybe_integer(v) && !maybe_string(v) {
                for (i, _) in ["integer", "string"].iter().enumerate() {
                    typed(false, path, out);
                    fail(
                        path,
                        out,
                        &format!("Failed to validate against child schema #{i}."),
                    );
                }
                fail(
                    path,
                    out,
                    "Failed to validate against any schemas allowed by anyOf constraint.",
                );
            }
        }
        Shape::Strings => {
            typed(maybe_array(v), path, out);
            array_items(v, path, out, |item, path, out| {
                typed(maybe_string(item), path, out);
            });
        }
        Shape::ListItems => {
            typed(maybe_array(v), path, out);
            array_items(v, path, out, |item, path, out| {
                value_of(Shape::ListItem, item, path, out)
            });
        }
        Shape::Exceptions => objects(v, EXCEPTION_KEYS, &["name"], path, out),
        Shape::Override => object(v, OVERRIDE_KEYS, &[], Some(1), path, out),
        Shape::PluginVersions => objects(v, PLUGIN_KEYS, &["name", "version"], path, out),
        Shape::Alternatives => objects(v, ALTERNATIVE_KEYS, &["name", "version"], path, out),
    }
}

/// An enum: the value must be one of `names` (valijson's enum check).
fn one_of(v: &Yaml, names: &[&str], path: &[String], out: &mut Vec<String>) {
    if !scalar(v).is_some_and(|s| names.contains(&s.as_str())) {
        fail(path, out, "Failed to match against any enum values.");
    }
}

/// An array of objects with `keys`, each requiring `required`.
fn objects(
    v: &Yaml,
    keys: &[(&str, Shape)],
    required: &[&str],
    path: &mut Vec<String>,
    out: &mut Vec<String>,
) {
    typed(maybe_array(v), path, out);
    array_items(v, path, out, |item, path, out| {
        object(item, keys, required, None, path, out)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(text: &str) -> Vec<String> {
        check(&serde_yaml::from_str(text).unwrap())
    }

    #[test]
    fn a_valid_file_is_ok() {
        assert_eq!(
            statuses("- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: WARNING\n  tags: [a]\n  enabled: true\n- list: l\n  items: [a, 1]\n"),
            ["ok"]
        );
    }

    // The expectations below are what Falco master printed for the same
    // documents.
    #[test]
    fn complaints_come_in_valijsons_words_and_order() {
        assert_eq!(
            statuses("- rule: t\n  priority: Warning\n  tags: [a, [b]]\n  enabled: yes\n"),
            [
                "failed for <root>[0][enabled]: Value type not permitted by 'type' constraint.",
                "failed for <root>[0]: Failed to validate against schema associated with property name 'enabled'.",
                "failed for <root>[0][priority]: Failed to match against any enum values.",
                "failed for <root>[0]: Failed to validate against schema associated with property name 'priority'.",
                "failed for <root>[0][tags][1]: Value type not permitted by 'type' constraint.",
                "failed for <root>[0][tags]: Failed to validate item #1 in array.",
                "failed for <root>[0]: Failed to validate against schema associated with property name 'tags'.",
                "failed for <root>: Failed to validate item #0 in array.",
            ]
        );
        assert_eq!(
            statuses("- list: l\n  items: [a, 1, [x]]\n- 5\n"),
            [
                "failed for <root>[0][items][2]: Value type not permitted by 'type' constraint.",
                "failed for <root>[0][items][2]: Failed to validate against child schema #0.",
                "failed for <root>[0][items][2]: Value type not permitted by 'type' constraint.",
                "failed for <root>[0][items][2]: Failed to validate against child schema #1.",
                "failed for <root>[0][items][2]: Failed to validate against any schemas allowed by anyOf constraint.",
                "failed for <root>[0][items]: Failed to validate item #2 in array.",
                "failed for <root>[0]: Failed to validate against schema associated with property name 'items'.",
                "failed for <root>: Failed to validate item #0 in array.",
                "failed for <root>[1]: Value type not permitted by 'type' constraint.",
                "failed for <root>: Failed to validate item #1 in array.",
            ]
        );
        assert_eq!(
            statuses("- rule: t\n  override: {}\n  exceptions:\n    - fields: [a]\n      extra: 1\n"),
            [
                "failed for <root>[0][exceptions][0]: Object contains a property that could not be validated using 'properties' or 'additionalProperties' constraints: 'extra'.",
                "failed for <root>[0][exceptions][0]: Missing required property 'name'.",
                "failed for <root>[0][exceptions]: Failed to validate item #0 in array.",
                "failed for <root>[0]: Failed to validate against schema associated with property name 'exceptions'.",
                "failed for <root>[0][override]: Object should have no fewer than 1 properties.",
                "failed for <root>[0]: Failed to validate against schema associated with property name 'override'.",
                "failed for <root>: Failed to validate item #0 in array.",
            ]
        );
        assert_eq!(
            statuses("- required_plugin_versions:\n    - name: x\n      alternatives:\n        - name: y\n- required_engine_version: 15\n"),
            [
                "failed for <root>[0][required_plugin_versions][0][alternatives][0]: Missing required property 'version'.",
                "failed for <root>[0][required_plugin_versions][0][alternatives]: Failed to validate item #0 in array.",
                "failed for <root>[0][required_plugin_versions][0]: Failed to validate against schema associated with property name 'alternatives'.",
                "failed for <root>[0][required_plugin_versions][0]: Missing required property 'version'.",
                "failed for <root>[0][required_plugin_versions]: Failed to validate item #0 in array.",
                "failed for <root>[0]: Failed to validate against schema associated with property name 'required_plugin_versions'.",
                "failed for <root>: Failed to validate item #0 in array.",
            ]
        );
        assert_eq!(
            statuses("- rule: a\n  capture_duration: 1.5\n  override:\n    condition: prepend\n    zzz: append\n"),
            [
                "failed for <root>[0][capture_duration]: Value type not permitted by 'type' constraint.",
                "failed for <root>[0]: Failed to validate against schema associated with property name 'capture_duration'.",
                "failed for <root>[0][override][condition]: Failed to match against any enum values.",
                "failed for <root>[0][override]: Failed to validate against schema associated with property name 'condition'.",
                "failed for <root>[0][override]: Object contains a property that could not be validated using 'properties' or 'additionalProperties' constraints: 'zzz'.",
                "failed for <root>[0]: Failed to validate against schema associated with property name 'override'.",
                "failed for <root>: Failed to validate item #0 in array.",
            ]
        );
        assert_eq!(
            statuses("- macro: m\n  condition:\n"),
            [
                "failed for <root>[0][condition]: Value type not permitted by 'type' constraint.",
                "failed for <root>[0]: Failed to validate against schema associated with property name 'condition'.",
                "failed for <root>: Failed to validate item #0 in array.",
            ]
        );
        assert_eq!(
            statuses("foo: bar\n"),
            ["failed for <root>: Value type not permitted by 'type' constraint."]
        );
    }
}
