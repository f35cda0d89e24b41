//! Turns condition text into an [`Expr`] (read by [`syntax`]), and a
//! field or transformer written alone (as in an output) into a
//! [`FieldRef`] with pest.

use pest::iterators::Pair;
use pest::Parser;

use super::ast::{Composite, Expr, FieldRef, Pos, Transformer};
use super::limits::{nesting_exceeded, LineIndex, MAX_NESTING};
use super::syntax;

#[derive(pest_derive::Parser)]
#[grammar = "condition/grammar.pest"]
struct ConditionGrammar;

/// A condition that does not parse, with where in its text it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line}, column {column})")]
pub struct ParseError {
    /// Falco-style description, e.g. `unexpected token after 'execve', expecting 'or', 'and'`.
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// Parses one condition, as libsinsp's parser reads it (see
/// [`syntax`]): its errors have libsinsp's words and positions.
pub fn parse_condition(text: &str) -> Result<Expr, ParseError> {
    parse_condition_with_max_depth(text, syntax::MAX_DEPTH)
}

/// [`parse_condition`] failing at `max_depth` levels of libsinsp's
/// parser, not at the 1000 Falco's rules loader allows: other callers of
/// that parser keep its default of 100.
pub fn parse_condition_with_max_depth(text: &str, max_depth: u32) -> Result<Expr, ParseError> {
    syntax::parse_with_max_depth(text, max_depth).map_err(|e| {
        let (line, column) = syntax::line_col(text, e.offset);
        ParseError {
            message: e.message,
            line,
            column,
        }
    })
}

fn internal(what: &str) -> ParseError {
    ParseError {
        message: format!("internal parser error: {what}"),
        line: 1,
        column: 1,
    }
}

/// A field or transformer that pest refuses. Its only caller, the output
/// compiler, reports the whole `%token` instead, so the wording just says
/// where reading stopped.
fn to_parse_error(text: &str, err: pest::error::Error<Rule>) -> ParseError {
    let (line, column) = match err.line_col {
        pest::error::LineColLocation::Pos(p) => p,
        pest::error::LineColLocation::Span(p, _) => p,
    };
    let offset = match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((p, _)) => p,
    };
    let message = if offset >= text.trim_end().len() {
        "unexpected end of condition".to_string()
    } else {
        let rest: String = text[offset..].chars().take(20).collect();
        format!("unexpected token at '{rest}'")
    };
    ParseError {
        message,
        line,
        column,
    }
}

fn pos_of(pair: &Pair<'_, Rule>, index: &LineIndex) -> Pos {
    let (line, column) = index.line_col(pair.as_span().start());
    Pos { line, column }
}

fn build_operand(pair: Pair<'_, Rule>, index: &LineIndex) -> Result<FieldRef, ParseError> {
    let pos = pos_of(&pair, index);
    match pair.as_rule() {
        Rule::field => {
            let mut inner = pair.into_inner();
            let name = inner
                .next()
                .ok_or_else(|| internal("field without name"))?
                .as_str()
                .to_string();
            let arg = inner.next().map(|a| a.as_str().to_string());
            Ok(FieldRef::field(name, arg, pos))
        }
        Rule::transformed => {
            let mut inner = pair.into_inner();
            let name = inner
                .next()
                .ok_or_else(|| internal("transformer without name"))?
                .as_str()
                .to_string();
            let mut args = Vec::new();
            let mut selector = None;
            for p in inner {
                if p.as_rule() == Rule::selector {
                    selector = Some(build_selector(p, index)?);
                } else {
                    args.push(build_operand(p, index)?);
                }
            }
            // One argument and a single-value transformer: the common
            // `tolower(proc.name)`, kept as a chain on its argument.
            if let (Some(t), [_], None) =
                (Transformer::from_name(&name), args.as_slice(), &selector)
            {
                let mut field = args.pop().ok_or_else(|| internal("transformer argument"))?;
                field.transformers.push(t);
                return Ok(field);
            }
            Ok(FieldRef {
                name: name.clone(),
                arg: selector,
                transformers: Vec::new(),
                pos,
                composite: Some(Box::new(Composite::Call { name, args })),
            })
        }
        Rule::transformer_list => {
            let items = pair
                .into_inner()
                .map(|p| build_operand(p, index))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(FieldRef {
                name: "list".into(),
                arg: None,
                transformers: Vec::new(),
                pos,
                composite: Some(Box::new(Composite::List(items))),
            })
        }
        Rule::quoted | Rule::number => {
            let text = match pair.as_rule() {
                Rule::quoted => build_quoted(pair, index)?,
                _ => pair.as_str().to_string(),
            };
            Ok(FieldRef {
                name: "literal".into(),
                arg: None,
                transformers: Vec::new(),
                pos,
                composite: Some(Box::new(Composite::Literal(text))),
            })
        }
        other => Err(internal(&format!("unexpected operand {other:?}"))),
    }
}

/// The text of `[...]` after a transformer, quotes removed; empty brackets
/// are refused with libsinsp's words.
fn build_selector(pair: Pair<'_, Rule>, index: &LineIndex) -> Result<String, ParseError> {
    let start = pair.as_span().start();
    match pair.into_inner().next() {
        Some(p) if p.as_rule() == Rule::quoted => build_quoted(p, index),
        Some(p) => Ok(p.as_str().to_string()),
        None => {
            let (line, column) = index.line_col(start);
            Err(ParseError {
                message: "expected a valid field argument: a quoted string or a bare string".into(),
                line,
                column,
            })
        }
    }
}

/// The text of a quoted string, escapes resolved.
fn build_quoted(pair: Pair<'_, Rule>, index: &LineIndex) -> Result<String, ParseError> {
    // A bad escape is found, as Falco finds it, after the closing quote.
    let end = pair.as_span().end();
    let quote = pair.as_str().chars().next().unwrap_or('"');
    let inner = pair.into_inner().next().map(|p| p.as_str()).unwrap_or("");
    unescape(inner, quote).map_err(|message| {
        let (line, column) = index.line_col(end);
        ParseError {
            message,
            line,
            column,
        }
    })
}

/// Resolves the backslash escapes of a string written between `quote`
/// characters, as libsinsp does: `\b \f \n \r \t \\ \/`, the quote in
/// use, `\xHH` for one byte, and `\ ` read as a backslash (kept by libsinsp
/// for rules written that way). Any other escape is an error, with
/// libsinsp's words. `\xHH` may give any byte, UTF-8 or not.
pub fn unescape(s: &str, quote: char) -> Result<String, String> {
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    // A rules file's own bytes that are not UTF-8 are read as those bytes
    // (decoded once more at the end, as `\xHH` escapes are).
    let raw = crate::text::raw_bytes(s);
    let bytes: &[u8] = &raw;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&next) = bytes.get(i) else {
            break;
        };
        i += 1;
        match next {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b' ' | b'\\' => out.push(b'\\'),
            b'/' => out.push(b'/'),
            b'"' if quote == '"' => out.push(b'"'),
            b'"' => return Err("invalid \\\" escape in '-quoted string".into()),
            b'\'' if quote == '\'' => out.push(b'\''),
            b'\'' => return Err("invalid \\' escape in \"-quoted string".into()),
            b'x' => {
                let Some(hex) = bytes.get(i..i + 2) else {
                    return Err("truncated hex char escape sequence".into());
                };
                let text = String::from_utf8_lossy(hex);
                let value = std::str::from_utf8(hex)
                    .ok()
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("invalid hex char escape sequence: {text}"))?;
                out.push(value);
                i += 2;
            }
            _ => {
                let rest = crate::text::decode(&bytes[i - 1..])
                    .chars()
                    .next()
                    .unwrap_or('?');
                return Err(format!("unsupported string escape sequence: \\{rest}"));
            }
        }
    }
    // Bytes that are not UTF-8 are kept as the values they compare with
    // are (see crate::text): `contains "\\xff"` finds a raw 0xff byte.
    Ok(crate::text::decode_owned(out))
}

/// Parses a field reference written alone, as in an exception's `fields`
/// or an output's `%field[arg]`: `name` or `name[arg]`.
pub fn parse_field_ref(text: &str) -> Option<FieldRef> {
    let text = text.trim();
    let (name, arg) = match text.find('[') {
        Some(open) if text.ends_with(']') => (
            &text[..open],
            Some(text[open + 1..text.len() - 1].to_string()),
        ),
        Some(_) => return None,
        None => (text, None),
    };
    let valid = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    valid.then(|| FieldRef::field(name, arg, Pos::default()))
}

/// Parses a field or a transformer written alone (`toupper(proc.name)`,
/// `join("-", (proc.name, fd.name))`), as after `%` in an output.
pub fn parse_operand(text: &str) -> Result<FieldRef, ParseError> {
    let index = LineIndex::new(text);
    if let Some(offset) = nesting_exceeded(text) {
        let (line, column) = index.line_col(offset);
        return Err(ParseError {
            message: format!("exceeded max depth limit of {MAX_NESTING}"),
            line,
            column,
        });
    }
    let mut pairs =
        ConditionGrammar::parse(Rule::lone_operand, text).map_err(|e| to_parse_error(text, e))?;
    let operand = pairs
        .next()
        .and_then(|p| p.into_inner().next())
        .ok_or_else(|| internal("no operand"))?;
    build_operand(operand, &index)
}
