//! The Kubernetes audit event source: a [`FieldSource`] over the JSON of
//! `audit.k8s.io` Events, with the `ka.*` and `jevt.*` fields the k8s audit
//! rules use.

mod fields;
mod time;

use serde_json::Value as Json;

pub use fields::K8sAuditSource;
pub use time::parse_rfc3339_ns;

/// Why an audit file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("JSON value at line {line} is not an audit Event or EventList")]
    NotAnEvent { line: usize },
}

/// Splits text holding audit Events (one per line, concatenated, or as an
/// EventList) into single Events.
pub fn events_from_json(text: &str) -> Result<Vec<Json>, AuditError> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Json>();
    loop {
        // Where the previous value ended; the line is counted only for an
        // error (counting from the start for each value made many small
        // events quadratic).
        let offset = stream.byte_offset().min(text.len());
        match stream.next() {
            None => break,
            Some(Err(e)) => {
                return Err(AuditError::Json {
                    line: e.line(),
                    column: e.column(),
                    message: e.to_string(),
                })
            }
            Some(Ok(mut value)) => match value.get("kind").and_then(Json::as_str) {
                Some("EventList") => {
                    if let Some(Json::Array(items)) = value.get_mut("items").map(Json::take) {
                        out.extend(items);
                    }
                }
                Some("Event") => out.push(value),
                // Falco's old audit webhook payloads carry no kind.
                None if value.get("auditID").is_some() || value.get("verb").is_some() => {
                    out.push(value)
                }
                _ => {
                    return Err(AuditError::NotAnEvent {
                        line: line_of_value_after(text, offset),
                    })
                }
            },
        }
    }
    Ok(out)
}

/// The line on which the value following byte `offset` starts.
fn line_of_value_after(text: &str, offset: usize) -> usize {
    let rest = &text.as_bytes()[offset..];
    let blanks = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
    text.as_bytes()[..offset + blanks]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The time of an audit event in nanoseconds since the epoch (its
/// `stageTimestamp`, else `timestamp`), or 0.
pub fn event_time_ns(event: &Json) -> u64 {
    [
        "/stageTimestamp",
        "/timestamp",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .filter_map(|p| event.pointer(p).and_then(Json::as_str))
    .find_map(parse_rfc3339_ns)
    .unwrap_or(0)
}
