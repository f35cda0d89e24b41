//! Rule outputs: `%field`, `%field[arg]` and `%(field)` substitution with
//! Falco's rendering, and the alert record the CLI serializes.

use crate::condition::{parse_field_ref, FieldRef};
use crate::field::{FieldSource, Value};
use crate::rules::compile::{bind_field, BoundField};
use crate::rules::Priority;

#[derive(Debug, Clone)]
enum Segment {
    Text(String),
    Field { name: String, field: BoundField },
}

/// A compiled output format.
#[derive(Debug, Clone)]
pub struct OutputFormat {
    segments: Vec<Segment>,
}

/// What Falco prints for a field with no value.
pub const MISSING: &str = "<NA>";

fn is_field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

impl OutputFormat {
    /// Compiles `text`; on an unknown field returns the offending token.
    pub fn compile<S: FieldSource>(text: &str, source: &mut S) -> Result<OutputFormat, String> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('%') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (token, consumed) = if let Some(inner) = after.strip_prefix('(') {
                match inner.find(')') {
                    Some(end) => (inner[..end].trim().to_string(), end + 2),
                    None => return Err(inner.to_string()),
                }
            } else {
                let mut end = after
                    .find(|c: char| !is_field_char(c))
                    .unwrap_or(after.len());
                // A sentence-ending dot is not part of the field name.
                while end > 0 && after[..end].ends_with('.') {
                    end -= 1;
                }
                if after[end..].starts_with('[') {
                    match after[end..].find(']') {
                        Some(close) => end += close + 1,
                        None => return Err(after.to_string()),
                    }
                }
                (after[..end].to_string(), end)
            };
            if token.is_empty() {
                // A lone percent sign is kept as text.
                literal.push('%');
                rest = after;
                continue;
            }
            let field_ref: FieldRef = parse_field_ref(&token).ok_or_else(|| token.clone())?;
            let field = bind_field(source, &field_ref).map_err(|_| token.clone())?;
            if !literal.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut literal)));
            }
            segments.push(Segment::Field { name: token, field });
            rest = &after[consumed..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Text(literal));
        }
        Ok(OutputFormat { segments })
    }

    /// Renders the output for one event into `out` (cleared first).
    pub fn render_into<'e, S: FieldSource>(
        &self,
        source: &S,
        event: &S::Event<'e>,
        values: &mut Vec<Value<'e>>,
        out: &mut String,
    ) {
        out.clear();
        for seg in &self.segments {
            match seg {
                Segment::Text(t) => out.push_str(t),
                Segment::Field { field, .. } => {
                    values.clear();
                    source.extract(&field.resolved, event, values);
                    render_values(values, field.resolved.is_list, out);
                }
            }
        }
    }

    pub fn render<'e, S: FieldSource>(&self, source: &S, event: &S::Event<'e>) -> String {
        let mut out = String::new();
        self.render_into(source, event, &mut Vec::new(), &mut out);
        out
    }

    /// The fields named in the output and their rendered values (None when
    /// missing), for JSON's `output_fields`.
    pub fn fields<'e, S: FieldSource>(
        &self,
        source: &S,
        event: &S::Event<'e>,
    ) -> Vec<(String, Option<String>)> {
        let mut values = Vec::new();
        let mut out = Vec::new();
        for seg in &self.segments {
            if let Segment::Field { name, field } = seg {
                values.clear();
                source.extract(&field.resolved, event, &mut values);
                let rendered = (!values.is_empty()).then(|| {
                    let mut s = String::new();
                    render_values(&values, field.resolved.is_list, &mut s);
                    s
                });
                if !out
                    .iter()
                    .any(|(n, _): &(String, Option<String>)| n == name)
                {
                    out.push((name.clone(), rendered));
                }
            }
        }
        out
    }
}

fn render_values(values: &[Value<'_>], is_list: bool, out: &mut String) {
    use std::fmt::Write;
    match values {
        [] => out.push_str(MISSING),
        [one] if !is_list => {
            let _ = write!(out, "{one}");
        }
        many => {
            out.push('(');
            for (i, v) in many.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{v}");
            }
            out.push(')');
        }
    }
}

/// One alert, as the CLI prints or serializes it (Falco's JSON shape).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Event time, nanoseconds since the epoch.
    pub time_ns: u64,
    pub rule: String,
    pub priority: Priority,
    pub source: String,
    pub tags: Vec<String>,
    pub hostname: String,
    pub output: String,
    pub output_fields: Vec<(String, Option<String>)>,
}

impl Alert {
    /// Builds the alert for a matched rule.
    pub fn new<'e, S: FieldSource>(
        rule: &crate::rules::CompiledRule,
        source: &S,
        event: &S::Event<'e>,
        time_ns: u64,
        hostname: &str,
    ) -> Alert {
        Alert {
            time_ns,
            rule: rule.name.clone(),
            priority: rule.priority,
            source: rule.source.clone(),
            tags: rule.tags.clone(),
            hostname: hostname.to_string(),
            output: rule.output.render(source, event),
            output_fields: rule.output.fields(source, event),
        }
    }

    /// The alert in Falco's JSON shape (`json_output: true`), with the
    /// output and tags included.
    pub fn to_json(&self) -> serde_json::Value {
        let fields: serde_json::Map<String, serde_json::Value> = self
            .output_fields
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.clone()
                        .map_or(serde_json::Value::Null, serde_json::Value::String),
                )
            })
            .collect();
        serde_json::json!({
            "hostname": self.hostname,
            "output": self.output,
            "output_fields": fields,
            "priority": self.priority.as_str(),
            "rule": self.rule,
            "source": self.source,
            "tags": self.tags,
            "time": self.time_iso8601(),
        })
    }

    /// The time as Falco's JSON `time`: `2016-08-04T16:17:57.881781397Z`.
    pub fn time_iso8601(&self) -> String {
        iso8601(self.time_ns)
    }

    /// The alert as Falco prints it in text: `TIME: Priority output`, the
    /// time as `2016-08-04T16:17:57.881781397+0000` with `iso8601`, else
    /// `16:17:57.881781397` (UTC).
    pub fn text_line(&self, iso8601_time: bool) -> String {
        let full = iso8601(self.time_ns);
        let time = if iso8601_time {
            format!("{}+0000", full.trim_end_matches('Z'))
        } else {
            full.get(11..full.len() - 1).unwrap_or("").to_string()
        };
        format!("{time}: {} {}", self.priority, self.output)
    }
}

/// Formats nanoseconds since the epoch as UTC ISO 8601 with nanoseconds.
pub fn iso8601(time_ns: u64) -> String {
    let secs = time_ns / 1_000_000_000;
    let nanos = time_ns % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Standard base64 (with or without padding), for the `b64` transformer.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}
