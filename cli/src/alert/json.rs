//! Falco's JSON alert: the keys in Falco's order (its JSON library sorts
//! them: hostname, message, output, output_fields, priority, rule, source,
//! tags, time) and each output field with the JSON type Falco gives it:
//! numbers for integer fields and for the event time fields (Falco writes
//! the event's nanoseconds for `evt.time`, `evt.time.iso8601`...), `true`/
//! `false` for booleans, `null` for a field with no value, an array for a
//! list field, text for the rest.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use chrono::SecondsFormat;
use peregrine_engine::field::{FieldSource, FieldType};
use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::output::MISSING;
use peregrine_engine::syscall_fields::SyscallFields;
use serde_json::{Map, Value as Json};

use super::{event_time, render_text_raw, Alert, RenderOptions};

/// Time fields whose JSON value is the event's time in nanoseconds.
const EVENT_TIME_FIELDS: &[&str] = &[
    "evt.time",
    "evt.time.s",
    "evt.time.iso8601",
    "evt.datetime",
    "evt.datetime.s",
];

/// Fields Falco writes as JSON numbers whatever their text form.
const NUMERIC_FIELDS: &[&str] = &[
    "evt.rawtime",
    "evt.rawtime.s",
    "evt.rawtime.ns",
    "evt.reltime",
    "evt.reltime.s",
    "evt.reltime.ns",
    "evt.latency",
    "evt.latency.s",
    "evt.latency.ns",
    "evt.deltatime",
    "evt.deltatime.s",
    "evt.deltatime.ns",
];

/// Fields Falco writes as text though their type is an integer (their
/// print format is hexadecimal).
const TEXT_FIELDS: &[&str] = &["fd.dev"];

/// How a field's text becomes JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Integer,
    /// A double, a JSON number as in Falco (from the printed value).
    Float,
    Bool,
}

/// (source, field) to the field's JSON kind and whether it is a list.
type KindCache = Mutex<HashMap<(String, String), (Kind, bool)>>;

/// A field's JSON kind and whether it is a list, per source.
fn field_kind(source: &str, field: &str) -> (Kind, bool) {
    static CACHE: OnceLock<KindCache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (source.to_string(), field.to_string());
    if let Some(found) = cache.lock().ok().and_then(|c| c.get(&key).copied()) {
        return found;
    }
    let found = resolve_kind(source, field);
    if let Ok(mut cache) = cache.lock() {
        cache.insert(key, found);
    }
    found
}

fn resolve_kind(source: &str, field: &str) -> (Kind, bool) {
    if NUMERIC_FIELDS.contains(&field) {
        return (Kind::Integer, false);
    }
    if TEXT_FIELDS.contains(&field) {
        return (Kind::Text, false);
    }
    let Some(field_ref) = peregrine_engine::condition::parse_field_ref(field) else {
        return (Kind::Text, false);
    };
    // A transformed field is text in Falco's JSON.
    if !field_ref.transformers.is_empty() {
        return (Kind::Text, false);
    }
    let (name, arg) = (&field_ref.name, field_ref.arg.as_deref());
    let built_in = match source {
        "syscall" => SyscallFields::new().resolve_output(name, arg).ok(),
        "k8s_audit" => K8sAuditSource::new().resolve(name, arg).ok(),
        _ => None,
    };
    let typed = match built_in {
        Some(resolved) => Some((resolved.ty, resolved.is_list)),
        // A plugin's field, on the syscall source or its own.
        None => crate::sources::plugins::output_field_type(source, name),
    };
    match typed {
        Some((ty, is_list)) => {
            let kind = match ty {
                FieldType::Int | FieldType::Uint => Kind::Integer,
                FieldType::Double => Kind::Float,
                FieldType::Bool => Kind::Bool,
                _ => Kind::Text,
            };
            (kind, is_list)
        }
        // Extra fields may have names of their own: their value is text.
        None => (Kind::Text, false),
    }
}

fn scalar(kind: Kind, text: &str) -> Json {
    match kind {
        Kind::Integer => {
            if let Ok(n) = text.parse::<u64>() {
                return Json::from(n);
            }
            if let Ok(n) = text.parse::<i64>() {
                return Json::from(n);
            }
        }
        Kind::Float => {
            if let Some(n) = text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                return Json::Number(n);
            }
        }
        Kind::Bool => match text {
            "true" => return Json::Bool(true),
            "false" => return Json::Bool(false),
            _ => {}
        },
        Kind::Text => {}
    }
    Json::String(text.to_string())
}

/// One output field's JSON value, from its rendered text.
fn field_value(alert: &Alert, name: &str, text: Option<&str>) -> Json {
    if EVENT_TIME_FIELDS.contains(&name) {
        return Json::from(alert.time_ns);
    }
    let Some(text) = text else {
        return Json::Null;
    };
    let (kind, is_list) = field_kind(&alert.source, name);
    if is_list {
        // Rendered as `(a,b,c)`; `<NA>` when the list is empty.
        if text == MISSING {
            return Json::Null;
        }
        let inner = text
            .strip_prefix('(')
            .and_then(|t| t.strip_suffix(')'))
            .unwrap_or(text);
        if inner.is_empty() {
            return Json::Array(Vec::new());
        }
        return Json::Array(inner.split(',').map(|item| scalar(kind, item)).collect());
    }
    scalar(kind, text)
}

/// The alert as Falco's JSON object. Internal alerts (drops, stats) carry
/// their message and their fields as text, as Falco's do.
pub(super) fn render_json(alert: &Alert, options: &RenderOptions) -> String {
    let internal = alert.source == "internal";
    let mut object = Map::new();
    object.insert("hostname".into(), Json::String(alert.hostname.clone()));
    if options.json_include_output_property {
        let output = if internal {
            alert.output.clone()
        } else {
            render_text_raw(alert, options)
        };
        object.insert("output".into(), Json::String(output));
    }
    if options.json_include_message_property && !internal {
        object.insert("message".into(), Json::String(alert.output.clone()));
    }
    if options.json_include_output_fields_property {
        let mut fields: Map<String, Json> = Map::new();
        for (name, value) in &alert.output_fields {
            let json = if alert.rule == super::STATS_RULE {
                value.as_deref().map_or(Json::Null, snapshot_value)
            } else if internal {
                value.clone().map_or(Json::Null, Json::String)
            } else {
                field_value(alert, name, value.as_deref())
            };
            fields.insert(name.clone(), json);
        }
        // The time field that starts the output line, as Falco's prefix
        // format puts it there.
        if !internal {
            let time_field = if options.time_format_iso_8601 {
                "evt.time.iso8601"
            } else {
                "evt.time"
            };
            fields
                .entry(time_field)
                .or_insert_with(|| Json::from(alert.time_ns));
        }
        object.insert("output_fields".into(), Json::Object(fields));
    }
    object.insert(
        "priority".into(),
        Json::String(alert.priority.as_str().into()),
    );
    // A rules file's bytes that are not UTF-8 show as U+FFFD, as Falco's
    // JSON writer replaces them.
    let shown = |text: &str| peregrine_engine::text::sanitize(text).into_owned();
    object.insert("rule".into(), Json::String(shown(&alert.rule)));
    object.insert("source".into(), Json::String(alert.source.clone()));
    if options.json_include_tags_property {
        // Falco holds a rule's tags in a set: sorted, each once.
        let mut tags: Vec<&String> = alert.tags.iter().collect();
        tags.sort();
        tags.dedup();
        let tags = tags.into_iter().map(|t| Json::String(shown(t))).collect();
        object.insert("tags".into(), Json::Array(tags));
    }
    let time = event_time(alert.time_ns).to_rfc3339_opts(SecondsFormat::Nanos, true);
    object.insert("time".into(), Json::String(time));
    Json::Object(object).to_string()
}

/// A field of the metrics snapshot alert as Falco's JSON has it: counters,
/// timestamps and rates are numbers, names and versions are text.
fn snapshot_value(text: &str) -> Json {
    let numeric = !text.is_empty()
        && text.len() <= 24
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-' || c == 'e');
    if numeric {
        if let Ok(v) = text.parse::<u64>() {
            return Json::from(v);
        }
        // A plugin's signed metric.
        if let Ok(v) = text.parse::<i64>() {
            return Json::from(v);
        }
        if let Ok(v) = text.parse::<f64>() {
            if v.is_finite() && text.contains('.') && text.matches('.').count() == 1 {
                return Json::from(v);
            }
        }
    }
    Json::String(text.to_string())
}
