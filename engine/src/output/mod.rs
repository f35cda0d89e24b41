//! Rule outputs: `%field`, `%field[arg]` and `%(field)` substitution with
//! Falco's rendering, and the alert record the CLI serializes.

use crate::condition::{parse_field_ref, parse_operand, print, Composite, FieldRef};
use crate::field::{FieldSource, Value};
use crate::rules::compile::{bind_field, bind_output_field, BoundField};
use crate::rules::eval::extract_values;
use crate::rules::Priority;

#[derive(Debug, Clone)]
enum Segment {
    Text(String),
    Field {
        name: String,
        field: BoundField,
        /// For a transformed token, the plain fields inside it: what
        /// Falco lists in `output_fields` in its place.
        inner: Vec<(String, BoundField)>,
        /// `%20proc.name`: the value cut or padded with spaces to this many
        /// bytes in the text output (0: as it is), as libsinsp's formatter.
        width: usize,
    },
}

/// A compiled output format.
#[derive(Debug, Clone)]
pub struct OutputFormat {
    segments: Vec<Segment>,
    /// Falco's `buffer_format_base64`: I/O buffers rendered in base64.
    buffer_base64: bool,
}

/// What Falco prints for a field with no value.
pub const MISSING: &str = "<NA>";

fn is_field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// One piece of an output format: text, or a field token.
enum Piece {
    Text(String),
    Field {
        /// The token as written (`proc.name`, `toupper(proc.name)`).
        token: String,
        field: FieldRef,
        width: usize,
    },
}

/// Cuts an output format into text and field tokens, as libsinsp's
/// formatter reads it; an error names the token that is not a field or
/// transformer (or what is malformed).
fn pieces(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        literal.push_str(&rest[..at]);
        let mut after = &rest[at + 1..];
        // A width before the field (`%20proc.name`), as libsinsp reads
        // it; it must be followed by a field.
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let mut width = 0;
        if digits > 0 {
            width = after[..digits].parse().map_err(|_| after.to_string())?;
            after = &after[digits..];
            if after.is_empty() {
                return Err(format!(
                    "{}: formatting cannot end with a number",
                    &rest[at + 1..]
                ));
            }
        }
        let (token, consumed) = if let Some(len) = transformer_token_len(after) {
            (after[..len].to_string(), len)
        } else if let Some(inner) = after.strip_prefix('(') {
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
            if digits > 0 {
                return Err(rest[at + 1..].to_string());
            }
            // A lone percent sign is kept as text.
            literal.push('%');
            rest = after;
            continue;
        }
        let field: FieldRef = if transformer_token_len(&token).is_some() {
            parse_operand(&token).map_err(|_| token.clone())?
        } else {
            parse_field_ref(&token).ok_or_else(|| token.clone())?
        };
        if !literal.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Field {
            token,
            field,
            width,
        });
        rest = &after[consumed..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// The names libsinsp's formatter gives the fields of an output format
/// (its resolution tokens), in order and repeated as often as they are:
/// each field as libsinsp prints it (`proc.aname[2]`), and for a
/// transformer the plain fields inside it, then the transformer itself
/// (the outermost one only, when transformers nest). What Falco's `-L`
/// lists as a rule's `output_fields`.
pub fn field_names(text: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for piece in pieces(text)? {
        if let Piece::Field { field, .. } = piece {
            let mut last_was_transformer = false;
            resolution_names(&field, &mut names, &mut last_was_transformer);
        }
    }
    Ok(names)
}

/// libsinsp's formatter visiting one token: a field adds its name; a
/// transformer visits what it applies to, then adds itself in place of
/// a transformer added just before (the inner one of a nest).
fn resolution_names(field: &FieldRef, names: &mut Vec<String>, last_was_transformer: &mut bool) {
    let add_transformer = |names: &mut Vec<String>, last: &mut bool, text: String| {
        if *last {
            names.pop();
        }
        names.push(text);
        *last = true;
    };
    match field.composite.as_deref() {
        None => {
            let mut text = String::new();
            print::write_field(field, 0, &mut text);
            names.push(text);
            *last_was_transformer = false;
        }
        Some(Composite::Literal(_)) => {}
        Some(Composite::List(items)) => {
            for item in items {
                resolution_names(item, names, last_was_transformer);
            }
        }
        Some(Composite::Call { args, .. }) => {
            for arg in args {
                resolution_names(arg, names, last_was_transformer);
            }
            let mut text = String::new();
            print::write_field(field, 0, &mut text);
            add_transformer(names, last_was_transformer, text);
        }
    }
    for level in 1..=field.transformers.len() {
        let mut text = String::new();
        print::write_field(field, level, &mut text);
        add_transformer(names, last_was_transformer, text);
    }
}

impl OutputFormat {
    /// Compiles `text`; on an unknown field returns the offending token.
    pub fn compile<S: FieldSource>(text: &str, source: &mut S) -> Result<OutputFormat, String> {
        let mut segments = Vec::new();
        for piece in pieces(text)? {
            match piece {
                Piece::Text(text) => segments.push(Segment::Text(text)),
                Piece::Field {
                    token,
                    field: field_ref,
                    width,
                } => {
                    let field = bind_output_field(source, &field_ref).map_err(|_| token.clone())?;
                    let mut inner = Vec::new();
                    if field_ref.composite.is_some() || !field_ref.transformers.is_empty() {
                        let mut plain = Vec::new();
                        field_ref.visit_fields(&mut |f| plain.push(f.clone()));
                        for f in plain {
                            let bound = bind_field(source, &f).map_err(|_| token.clone())?;
                            inner.push((f.to_string(), bound));
                        }
                    }
                    segments.push(Segment::Field {
                        name: token,
                        field,
                        inner,
                        width,
                    });
                }
            }
        }
        // Bytes of the rules file that are not UTF-8 print as U+FFFD, as
        // libsinsp's formatter shows them.
        for segment in &mut segments {
            if let Segment::Text(text) = segment {
                if let std::borrow::Cow::Owned(clean) = crate::text::sanitize(text) {
                    *text = clean;
                }
            }
        }
        Ok(OutputFormat {
            segments,
            buffer_base64: false,
        })
    }

    /// Renders byte buffers (`evt.buffer`, `evt.arg.data`...) in base64
    /// rather than as text, as Falco's `buffer_format_base64`.
    pub fn set_buffer_base64(&mut self, on: bool) {
        self.buffer_base64 = on;
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
                Segment::Field { field, width, .. } => {
                    values.clear();
                    extract_values(field, source, event, values);
                    let start = out.len();
                    let buffers = self.buffers(source, field);
                    render_values(values, field.is_list, buffers, Shown::Text, out);
                    if *width > 0 {
                        fit_to_width(out, start, *width);
                    }
                }
            }
        }
    }

    fn buffers<S: FieldSource>(&self, source: &S, field: &BoundField) -> Buffers {
        match (
            self.buffer_base64,
            source.renders_buffer_twice(&field.resolved),
        ) {
            (false, _) => Buffers::Dots,
            (true, false) => Buffers::Base64,
            (true, true) => Buffers::Base64Twice,
        }
    }

    pub fn render<'e, S: FieldSource>(&self, source: &S, event: &S::Event<'e>) -> String {
        let mut out = String::new();
        self.render_into(source, event, &mut Vec::new(), &mut out);
        out
    }

    /// The fields named in the output and their rendered values (None when
    /// missing), for JSON's `output_fields`: text values as Falco's JSON
    /// shows them, which differs from the output text for bytes that are
    /// not UTF-8 (see [`crate::text::json_field`]).
    pub fn fields<'e, S: FieldSource>(
        &self,
        source: &S,
        event: &S::Event<'e>,
    ) -> Vec<(String, Option<String>)> {
        let mut values = Vec::new();
        let mut out = Vec::new();
        for seg in &self.segments {
            let Segment::Field {
                name, field, inner, ..
            } = seg
            else {
                continue;
            };
            // A transformed token is not a key of its own: the fields it
            // reads are (Falco leaves transformed values out of
            // `output_fields`).
            let keys: Vec<(&String, &BoundField)> = if inner.is_empty() {
                vec![(name, field)]
            } else {
                inner.iter().map(|(n, f)| (n, f)).collect()
            };
            for (name, field) in keys {
                values.clear();
                extract_values(field, source, event, &mut values);
                let rendered = (!values.is_empty()).then(|| {
                    let mut s = String::new();
                    render_values(
                        &values,
                        field.is_list,
                        self.buffers(source, field),
                        Shown::JsonField,
                        &mut s,
                    );
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

/// Cuts or pads `out[start..]` to `width` bytes, as libsinsp resizes a
/// token with a width; a cut never splits a character (the few bytes it
/// leaves are padding).
fn fit_to_width(out: &mut String, start: usize, width: usize) {
    let mut end = start + width;
    if out.len() > end {
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    while out.len() < start + width {
        out.push(' ');
    }
}

/// The length of a transformer token at the start of `text`
/// (`toupper(proc.name)`, `getopt(proc.args, "n:")[n]`), up to its closing
/// parenthesis and selector; None when `text` does not start with one.
fn transformer_token_len(text: &str) -> Option<usize> {
    const NAMES: &[&str] = &[
        "tolower", "toupper", "b64", "basename", "len", "join", "concat", "getopt",
    ];
    let name = NAMES.iter().find(|n| text.starts_with(**n))?;
    let rest = &text[name.len()..];
    if !rest.trim_start().starts_with('(') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = name.len();
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' => depth += 1,
            b')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    let mut end = i + 1;
                    if bytes.get(end) == Some(&b'[') {
                        end += text[end..].find(']')? + 1;
                    }
                    return Some(end);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Where a text value is shown: Falco reads bytes that are not UTF-8 one
/// way in its output text and another in its JSON `output_fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// The output text (and JSON's `output`): each invalid sequence is one
    /// U+FFFD, as libsinsp's formatter sanitizes.
    Text,
    /// JSON's `output_fields`: the bytes as libsinsp's JSON writer reads
    /// them, each value on its own (a list's items one by one), since a
    /// sequence cut by the end of a value reads differently.
    JsonField,
}

/// How an output shows a byte buffer, as libsinsp's buffer formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Buffers {
    /// Each byte that is not printable ASCII as a dot.
    Dots,
    /// `buffer_format_base64`.
    Base64,
    /// `buffer_format_base64` on a field libsinsp renders twice
    /// (`evt.buffer`): the base64 text encoded again, as are the words
    /// it shows for no data.
    Base64Twice,
}

fn render_values(
    values: &[Value<'_>],
    is_list: bool,
    buffers: Buffers,
    shown: Shown,
    out: &mut String,
) {
    use std::fmt::Write;
    let one = |v: &Value<'_>, out: &mut String| match (v, buffers) {
        (Value::Bytes(bytes), Buffers::Dots) => crate::event::render::push_printable(out, bytes),
        (Value::Bytes(bytes), Buffers::Base64) => base64_encode(bytes, out),
        (Value::Bytes(bytes), Buffers::Base64Twice) => {
            let mut once = String::new();
            base64_encode(bytes, &mut once);
            base64_encode(once.as_bytes(), out);
        }
        (Value::Str(text), Buffers::Base64Twice) => base64_encode(text.as_bytes(), out),
        (Value::Str(text), _) => match shown {
            Shown::Text => out.push_str(&crate::text::sanitize(text)),
            Shown::JsonField => out.push_str(&crate::text::json_field(text)),
        },
        (other, _) => {
            let _ = write!(out, "{other}");
        }
    };
    match values {
        [] => out.push_str(MISSING),
        [single] if !is_list => one(single, out),
        // Several values of a field that is no list (ancestors, as an
        // output prints them): separated by spaces.
        many if !is_list => {
            for (i, v) in many.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                one(v, out);
            }
        }
        many => {
            out.push('(');
            for (i, v) in many.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                one(v, out);
            }
            out.push(')');
        }
    }
}

/// Standard base64 with padding, appended to `out`.
pub fn base64_encode(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
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
    /// Each output field and its value as Falco's JSON `output_fields`
    /// show it (None when missing); see [`OutputFormat::fields`].
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
            output_fields: output_fields(rule, source, event),
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

/// The output's fields, then the rule's extra fields (`append_output`),
/// which replace an output field of the same name as in Falco. A raw extra
/// field goes through libsinsp's JSON writer in Falco as output fields do;
/// a formatted one is Falco's output text.
fn output_fields<'e, S: FieldSource>(
    rule: &crate::rules::CompiledRule,
    source: &S,
    event: &S::Event<'e>,
) -> Vec<(String, Option<String>)> {
    let mut fields = rule.output.fields(source, event);
    for extra in &rule.extra_fields {
        let value = if extra.raw {
            extra
                .format
                .fields(source, event)
                .into_iter()
                .next()
                .and_then(|(_, value)| value)
        } else {
            Some(extra.format.render(source, event))
        };
        match fields.iter_mut().find(|(name, _)| *name == extra.name) {
            Some(slot) => slot.1 = value,
            None => fields.push((extra.name.clone(), value)),
        }
    }
    fields
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_libsinsps_resolution_tokens() {
        // As Falco master lists them for this output (`-L`'s
        // output_fields): a repeated field twice, a nest of transformers
        // once, after the field inside it.
        let names = field_names(
            "x %proc.aname[2] %toupper(tolower(proc.name)) %proc.name %evt.arg.flags %20fd.name.",
        )
        .unwrap();
        assert_eq!(
            names,
            [
                "proc.aname[2]",
                "proc.name",
                "toupper(tolower(proc.name))",
                "proc.name",
                "evt.arg.flags",
                "fd.name"
            ]
        );
        // A transformer of several arguments follows its fields; one
        // right before it is replaced by it.
        assert_eq!(
            field_names("%concat(proc.pname, tolower(proc.name))").unwrap(),
            [
                "proc.pname",
                "proc.name",
                "concat(proc.pname,tolower(proc.name))"
            ]
        );
        assert!(field_names("no fields, 100%").unwrap().is_empty());
    }

    #[test]
    fn buffers_render_in_base64_when_asked() {
        let values = [Value::Bytes(std::borrow::Cow::Borrowed(b"GET /\x00\xff"))];
        let mut out = String::new();
        render_values(&values, false, Buffers::Base64, Shown::Text, &mut out);
        assert_eq!(out, "R0VUIC8A/w==");
        assert_eq!(base64_decode(&out).unwrap(), b"GET /\x00\xff");
        // Other values, and buffers without the option, are unchanged.
        out.clear();
        render_values(
            &[Value::Uint(7), Value::Bytes(b"ab"[..].into())],
            true,
            Buffers::Base64,
            Shown::Text,
            &mut out,
        );
        assert_eq!(out, "(7,YWI=)");
        out.clear();
        render_values(&values[..], false, Buffers::Dots, Shown::Text, &mut out);
        assert!(out.starts_with("GET /"));
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            let mut out = String::new();
            base64_encode(plain.as_bytes(), &mut out);
            assert_eq!(out, encoded);
        }
    }
}
