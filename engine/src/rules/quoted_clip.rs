//! The trailing line breaks of a quoted scalar, kept as yaml-cpp (Falco's
//! YAML parser) keeps them.
//!
//! A quoted scalar folds each empty line before its closing quote into a
//! line break, so `"abc` followed by two empty lines and `"` reads
//! `abc\n\n` by the YAML spec and by libyaml, which reads rules here.
//! yaml-cpp then "clips" a quoted scalar as a block scalar without a
//! chomping indicator: it keeps one trailing line break, and `abc\n` is
//! what Falco shows as that rule's description or output. A scalar made
//! only of line breaks becomes empty. An escaped last character (`\t`,
//! `\n`, `\` at the end of a line, `''` in single quotes) is protected
//! with the position after it: yaml-cpp keeps up to two line breaks after
//! it, whatever they are.
//!
//! libyaml's event parser gives each quoted scalar's value and where it
//! lies in the text; the values that yaml-cpp would clip are then
//! replaced in the parsed document.

use std::collections::HashMap;
use std::mem::MaybeUninit;

use serde_yaml::Value as Yaml;
use unsafe_libyaml_norway as unsafe_libyaml;

/// Whether some quoted scalar of `text` may end in two folded line breaks
/// or more: two empty lines followed by a line that starts (after blanks)
/// with a quote. Rules files rarely have one, so most are never parsed
/// twice.
fn may_end_in_folded_breaks(text: &str) -> bool {
    let mut empty_run = 0;
    for line in text.split('\n') {
        let blank = line.trim_start_matches([' ', '\t']);
        if blank.is_empty() || blank == "\r" {
            empty_run += 1;
            continue;
        }
        if empty_run >= 2 && (blank.starts_with('"') || blank.starts_with('\'')) {
            return true;
        }
        empty_run = 0;
    }
    false
}

/// What libyaml says of one quoted scalar.
struct QuotedScalar {
    value: String,
    /// The scalar's text, quotes included.
    raw: std::ops::Range<usize>,
    double: bool,
}

/// The quoted scalars of `text` whose value ends in two line breaks or
/// more, in order; the ones before a syntax error when there is one (the
/// document's own parse reports it).
fn quoted_scalars_ending_in_breaks(text: &str) -> Vec<QuotedScalar> {
    let mut found = Vec::new();
    // The parser keeps pointers into itself: it lives on the heap, and is
    // never moved while initialized.
    let mut parser = Box::new(MaybeUninit::<unsafe_libyaml::yaml_parser_t>::uninit());
    let parser = parser.as_mut_ptr();
    // SAFETY: `parser` points to memory for a yaml_parser_t, which this
    // initializes; a failed initialization (out of memory) leaves nothing
    // to free.
    if unsafe { unsafe_libyaml::yaml_parser_initialize(parser) }.fail {
        return found;
    }
    // SAFETY: the parser is initialized, and `text` outlives it (it is
    // deleted at the end of this function).
    unsafe {
        unsafe_libyaml::yaml_parser_set_encoding(parser, unsafe_libyaml::YAML_UTF8_ENCODING);
        unsafe_libyaml::yaml_parser_set_input_string(parser, text.as_ptr(), text.len() as u64);
    }
    loop {
        let mut event = MaybeUninit::<unsafe_libyaml::yaml_event_t>::uninit();
        // SAFETY: the parser is initialized with input that is alive, and
        // `event` is memory for one event, which the call fills on success.
        if unsafe { unsafe_libyaml::yaml_parser_parse(parser, event.as_mut_ptr()) }.fail {
            break;
        }
        // SAFETY: yaml_parser_parse succeeded, so the event is initialized.
        let event = unsafe { event.assume_init_mut() };
        let mut end = event.type_ == unsafe_libyaml::YAML_STREAM_END_EVENT;
        if event.type_ == unsafe_libyaml::YAML_SCALAR_EVENT {
            // SAFETY: a scalar event's data is the scalar member, whose
            // value points to `length` bytes the event owns.
            let (style, value) = unsafe {
                let scalar = &event.data.scalar;
                (
                    scalar.style,
                    std::slice::from_raw_parts(scalar.value, scalar.length as usize),
                )
            };
            let double = style == unsafe_libyaml::YAML_DOUBLE_QUOTED_SCALAR_STYLE;
            let quoted = double || style == unsafe_libyaml::YAML_SINGLE_QUOTED_SCALAR_STYLE;
            if quoted && value.ends_with(b"\n\n") {
                let raw = event.start_mark.index as usize..event.end_mark.index as usize;
                match std::str::from_utf8(value) {
                    Ok(value) if text.get(raw.clone()).is_some() => found.push(QuotedScalar {
                        value: value.to_string(),
                        raw,
                        double,
                    }),
                    _ => {}
                }
            }
        }
        // SAFETY: the event was filled by yaml_parser_parse and is deleted
        // once, after its data was copied out.
        unsafe { unsafe_libyaml::yaml_event_delete(event) };
        if found.len() > 10_000 {
            end = true;
        }
        if end {
            break;
        }
    }
    // SAFETY: the parser was initialized above and is deleted once.
    unsafe { unsafe_libyaml::yaml_parser_delete(parser) };
    found
}

/// How a quoted scalar's text (quotes included) ends: whether its last
/// non-blank character is part of an escape, and how many line breaks
/// the empty lines after that character fold into (one per empty line).
struct Tail {
    escaped: bool,
    folded: usize,
}

fn tail(raw: &str, double: bool) -> Tail {
    let bytes = raw.as_bytes();
    // Between the quotes.
    let body = &bytes[1.min(bytes.len())..bytes.len().saturating_sub(1).max(1)];
    let last = body
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    let after = last.map_or(0, |l| l + 1);
    let breaks = body[after..].iter().filter(|&&b| b == b'\n').count();
    let Some(last) = last else {
        return Tail {
            escaped: false,
            folded: breaks.saturating_sub(1),
        };
    };
    let mut at = 0;
    let mut last_escape_end = None;
    while at < body.len() {
        let len = match (double, body[at]) {
            (true, b'\\') => match body.get(at + 1) {
                Some(b'x') => 4,
                Some(b'u') => 6,
                Some(b'U') => 10,
                Some(_) => 2,
                None => 1,
            },
            (false, b'\'') if body.get(at + 1) == Some(&b'\'') => 2,
            _ => {
                at += 1;
                continue;
            }
        };
        last_escape_end = Some(at + len);
        at += len;
    }
    Tail {
        escaped: last_escape_end.is_some_and(|end| end > last),
        folded: breaks.saturating_sub(1),
    }
}

/// The value yaml-cpp gives a quoted scalar that libyaml reads as `value`
/// (which ends in two line breaks or more) and whose text ends as `tail`.
fn clipped(value: &str, tail: &Tail) -> String {
    if tail.escaped {
        // The position after the escaped character, and two more.
        let escaped_end = value.len().saturating_sub(tail.folded);
        return value
            .get(..value.len().min(escaped_end + 2))
            .unwrap_or(value)
            .to_string();
    }
    let content = value.trim_end_matches('\n');
    if content.is_empty() {
        return String::new();
    }
    format!("{content}\n")
}

/// Replaces, in the parsed document `value` of `text`, the quoted scalars
/// yaml-cpp would read with fewer trailing line breaks. Values are
/// matched by their text: a block scalar with the very same text (two
/// trailing line breaks kept with `|+`) would be clipped too, a file no
/// one writes.
pub(crate) fn clip_as_yaml_cpp(text: &str, value: &mut Yaml) {
    if !may_end_in_folded_breaks(text) {
        return;
    }
    let fixes: HashMap<String, String> = quoted_scalars_ending_in_breaks(text)
        .into_iter()
        .filter_map(|s| {
            let fixed = clipped(&s.value, &tail(&text[s.raw], s.double));
            (fixed != s.value).then_some((s.value, fixed))
        })
        .collect();
    if !fixes.is_empty() {
        replace_strings(value, &fixes);
    }
}

fn replace_strings(value: &mut Yaml, fixes: &HashMap<String, String>) {
    match value {
        Yaml::String(s) => {
            if let Some(fixed) = fixes.get(s.as_str()) {
                *s = fixed.clone();
            }
        }
        Yaml::Sequence(items) => items.iter_mut().for_each(|v| replace_strings(v, fixes)),
        Yaml::Mapping(map) => map.values_mut().for_each(|v| replace_strings(v, fixes)),
        Yaml::Tagged(tagged) => replace_strings(&mut tagged.value, fixes),
        Yaml::Null | Yaml::Bool(_) | Yaml::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Yaml {
        let mut value: Yaml = serde_yaml::from_str(text).unwrap();
        clip_as_yaml_cpp(text, &mut value);
        value
    }

    fn desc(text: &str) -> String {
        read(text)["desc"].as_str().unwrap().to_string()
    }

    #[test]
    fn trailing_empty_lines_keep_one_break_as_yaml_cpp() {
        assert_eq!(desc("desc: \"x y\n\n\n  \"\n"), "x y\n");
        assert_eq!(desc("desc: 'x y\n\n\n\n'\n"), "x y\n");
        // One empty line is one break in both parsers.
        assert_eq!(desc("desc: \"x y\n\n  \"\n"), "x y\n");
        // Nothing but breaks: nothing.
        assert_eq!(desc("desc: \"\n\n\n\"\n"), "");
        // Breaks inside the scalar stay.
        assert_eq!(desc("desc: \"a\n\n\nb\"\n"), "a\n\nb");
    }

    #[test]
    fn an_escaped_last_character_keeps_two_breaks() {
        assert_eq!(desc("desc: \"x\\t\n\n\n\n  \"\n"), "x\t\n\n");
        assert_eq!(desc("desc: \"x\\n\n\n\n\n\"\n"), "x\n\n\n");
        assert_eq!(desc("desc: \"x\\\n\n\n\n\"\n"), "x\n\n");
        assert_eq!(desc("desc: 'it''\n\n\n\n'\n"), "it'\n\n");
        // An escaped backslash is an escape too; the break after it is
        // not escaped.
        assert_eq!(desc("desc: \"x\\\\\n\n\n\n  \"\n"), "x\\\n\n");
        // An escape earlier in the scalar protects nothing at its end.
        assert_eq!(desc("desc: \"\\tx\n\n\n\"\n"), "\tx\n");
    }

    #[test]
    fn block_scalars_and_plain_text_are_untouched() {
        assert_eq!(desc("desc: |+\n  x\n\n\n\"q\": 1\n"), "x\n\n\n");
        assert_eq!(desc("desc: plain\n\n\n\"k\": v\n"), "plain");
        let v = read("- rule: r\n  desc: \"a\n\n\n  \"\n  items: [\"b\n\n\n  \", c]\n");
        assert_eq!(v[0]["desc"].as_str(), Some("a\n"));
        assert_eq!(v[0]["items"][0].as_str(), Some("b\n"));
        assert_eq!(v[0]["items"][1].as_str(), Some("c"));
    }
}
