//! A quoted scalar that the end of a rules file leaves open, read as
//! yaml-cpp (Falco's YAML parser) reads it.
//!
//! yaml-cpp scans a quoted scalar line by line: it reads a line up to its
//! break, folds the break, skips the next line's leading blanks, and only
//! when it runs out of input in the middle of a line does it refuse the
//! scalar ("illegal EOF in scalar"). So a file whose last value is
//! `"abc` followed by a line break (and maybe blank lines, or spaces and
//! tabs with no break after them) loads in Falco, the value being what was
//! folded so far: `abc ` (the last break folded into a space), or `abc\n`
//! when blank lines follow (yaml-cpp keeps one trailing line break of a
//! quoted scalar, "clip"), or nothing at all for a scalar of blank lines.
//! A quoted scalar has no indentation in yaml-cpp, so every line up to the
//! end belongs to it, `- rule:` lines included; a document marker (`---`,
//! `...`) at the start of a line is refused ("illegal document indicator
//! in scalar"). The YAML parser used here (libyaml's) refuses every open
//! scalar: [`close_at_end`] puts the closing quote where it then reads the
//! value yaml-cpp reads, or gives yaml-cpp's refusal.

/// yaml-cpp's refusal of an open quoted scalar, with its mark (0-based
/// line and column in bytes, as yaml-cpp counts them, and byte offset).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// The input ends in the middle of a line of the scalar.
    #[error("illegal EOF in scalar")]
    EofInScalar {
        line: usize,
        column: usize,
        offset: usize,
    },
    /// A document marker starts a line of the scalar.
    #[error("illegal document indicator in scalar")]
    DocumentIndicator {
        line: usize,
        column: usize,
        offset: usize,
    },
    /// A double-quoted scalar's last character starts an escape: yaml-cpp
    /// reads the end of its input (its stream's end character, 0x04) as
    /// the escaped character, one column past the end.
    #[error("unknown escape character: {character}")]
    UnknownEscape {
        character: char,
        line: usize,
        column: usize,
        offset: usize,
    },
}

impl Refusal {
    /// The mark as (line, column, offset).
    pub(crate) fn mark(&self) -> (usize, usize, usize) {
        match *self {
            Refusal::EofInScalar {
                line,
                column,
                offset,
            }
            | Refusal::DocumentIndicator {
                line,
                column,
                offset,
            }
            | Refusal::UnknownEscape {
                line,
                column,
                offset,
                ..
            } => (line, column, offset),
        }
    }
}

/// `content` with its open quoted scalar closed where yaml-cpp would end
/// it, or yaml-cpp's refusal; None when `quote`, which should be the byte
/// offset of the scalar's opening quote, is no quote. Nothing after that
/// quote closes it: the caller knows it from the YAML parser's own
/// refusal. Document markers are the caller's: this looks at one
/// document, the last.
pub(crate) fn close_at_end(content: &str, quote: usize) -> Option<Result<String, Refusal>> {
    let quote_char = match content.as_bytes().get(quote) {
        Some(&q @ (b'"' | b'\'')) => q,
        _ => return None,
    };
    // The last line: yaml-cpp skips its leading blanks (spaces, tabs) and
    // refuses anything else it then reads, since no break follows.
    let last_line = content.rfind('\n').map_or(0, |at| at + 1);
    if quote >= last_line || !is_blank(&content[last_line..]) {
        let text = &content[last_line.max(quote + 1)..];
        let backslashes = text.len() - text.trim_end_matches('\\').len();
        if quote_char == b'"' && backslashes % 2 == 1 {
            let (line, column, offset) = end_mark(content);
            return Some(Err(Refusal::UnknownEscape {
                character: '\u{4}',
                line,
                column: column + 1,
                offset: offset + 1,
            }));
        }
        return Some(Err(eof_refusal(content)));
    }
    let body = &content[quote + 1..];
    let breaks_after = |from: usize| body[from..].bytes().filter(|&b| b == b'\n').count();
    let at = match last_content_end(body) {
        // Folded so far: the lines, then a space for one break after the
        // last of them, or one line break for more (the rest clipped).
        Some(end) => {
            let keep = breaks_after(end).min(2);
            end + nth_break_end(&body[end..], keep)
        }
        // Only blanks and breaks: one break folds into a space, more clip
        // to nothing.
        None if breaks_after(0) >= 2 => 0,
        None => nth_break_end(body, 1),
    };
    let split = quote + 1 + at;
    let mut closed = String::with_capacity(content.len() + 1);
    closed.push_str(&content[..split]);
    closed.push(char::from(quote_char));
    closed.push_str(&content[split..]);
    Some(Ok(closed))
}

/// yaml-cpp's refusal at the end of `content`.
fn eof_refusal(content: &str) -> Refusal {
    let (line, column, offset) = end_mark(content);
    Refusal::EofInScalar {
        line,
        column,
        offset,
    }
}

fn is_blank(text: &str) -> bool {
    text.bytes().all(|b| b == b' ' || b == b'\t')
}

/// The byte index just past the last character of `body` that is text of
/// the scalar: not a blank, not a line break (`\n`, or `\r` before `\n`;
/// a lone `\r` is text to yaml-cpp).
fn last_content_end(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    (0..bytes.len()).rev().find_map(|i| {
        let b = bytes[i];
        let space =
            matches!(b, b' ' | b'\t' | b'\n') || (b == b'\r' && bytes.get(i + 1) == Some(&b'\n'));
        (!space).then(|| {
            // Past the whole character, for a multibyte one.
            let mut end = i + 1;
            while !body.is_char_boundary(end) {
                end += 1;
            }
            end
        })
    })
}

/// The byte index just past the `n`th `\n` of `text` (0 for n = 0).
fn nth_break_end(text: &str, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    text.match_indices('\n')
        .nth(n - 1)
        .map_or(text.len(), |(at, _)| at + 1)
}

/// Where the YAML parser's refusal of an open quoted scalar says that
/// scalar starts, as a 1-based line and a 0-based column in characters;
/// None for any other refusal. libyaml names the scalar's start as the
/// context of its "unexpected end of stream".
pub(crate) fn parser_open_quote(message: &str) -> Option<(usize, usize)> {
    context_mark(
        message,
        "found unexpected end of stream",
        "while scanning a quoted scalar",
    )
}

/// Where the YAML parser's refusal of a key without `:` says that key
/// starts (as [`parser_open_quote`]); None for any other refusal.
pub(crate) fn parser_keyless_key(message: &str) -> Option<(usize, usize)> {
    context_mark(
        message,
        "could not find expected ':'",
        "while scanning a simple key",
    )
}

/// The context mark of a libyaml refusal whose problem starts with
/// `problem` and whose context is `context`: serde's message ends with
/// `, CONTEXT at line L column C`, the mark left out when it is the
/// first character of the document (line 1, column 0).
fn context_mark(message: &str, problem: &str, context: &str) -> Option<(usize, usize)> {
    if !message.starts_with(problem) {
        return None;
    }
    let context = format!(", {context}");
    let at = message.rfind(&context)?;
    let rest = &message[at + context.len()..];
    if rest.is_empty() {
        return Some((1, 0));
    }
    let rest = rest.strip_prefix(" at line ")?;
    let (line, column) = rest.split_once(" column ")?;
    let line: usize = line.parse().ok()?;
    let column: usize = column.parse().ok()?;
    Some((line, column.checked_sub(1)?))
}

/// yaml-cpp's mark at the end of `content`: (line, column, offset).
pub(crate) fn end_mark(content: &str) -> (usize, usize, usize) {
    let last_line = content.rfind('\n').map_or(0, |at| at + 1);
    (
        content.bytes().filter(|&b| b == b'\n').count(),
        content.len() - last_line,
        content.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(text: &str) -> Result<String, Refusal> {
        let quote = text.find(['"', '\'']).unwrap_or(0);
        close_at_end(text, quote).unwrap_or(Ok(String::new()))
    }

    #[test]
    fn the_quote_goes_where_the_value_is_yaml_cpps() {
        // One break after the text: the break folds into a space.
        assert_eq!(close("a: \"abc\n").as_deref(), Ok("a: \"abc\n\""));
        assert_eq!(close("a: 'abc  \n\t ").as_deref(), Ok("a: 'abc  \n'\t "));
        assert_eq!(close("a: \"abc\r\n").as_deref(), Ok("a: \"abc\r\n\""));
        // More: one line break kept, the rest left out of the scalar.
        assert_eq!(
            close("a: \"abc\n\n  \n\n").as_deref(),
            Ok("a: \"abc\n\n\"  \n\n")
        );
        // Later lines, at any indentation, belong to the scalar.
        assert_eq!(
            close("a: \"abc\n- b: c\n").as_deref(),
            Ok("a: \"abc\n- b: c\n\"")
        );
        // Blank lines only: a space for one break, nothing for more.
        assert_eq!(close("a: \"  \n").as_deref(), Ok("a: \"  \n\""));
        assert_eq!(close("a: '\n\n").as_deref(), Ok("a: ''\n\n"));
        // A multibyte last character.
        assert_eq!(close("a: \"ab€\n").as_deref(), Ok("a: \"ab€\n\""));
    }

    #[test]
    fn yaml_cpp_refuses_a_scalar_the_input_ends_inside() {
        let refused = |text: &str, line, column| {
            assert_eq!(
                close(text),
                Err(Refusal::EofInScalar {
                    line,
                    column,
                    offset: text.len()
                }),
                "{text:?}"
            );
        };
        refused("a: 1\nb: \"abc", 1, 7);
        refused("b: \"abc\n  more", 1, 6);
        // A lone carriage return is no line break to yaml-cpp.
        refused("b: \"abc\r", 0, 8);
        refused("b: \"abc\n\r", 1, 1);
        // An escaped backslash is text; a last lone one starts an escape
        // that the end of the input cuts.
        refused("b: \"abc\\\\", 0, 9);
        refused("b: 'abc\\", 0, 8);
        assert_eq!(
            close("b: \"abc\\\\\\"),
            Err(Refusal::UnknownEscape {
                character: '\u{4}',
                line: 0,
                column: 11,
                offset: 11
            })
        );
        // No quote where the caller said: nothing to close.
        assert_eq!(close_at_end("a: b\n", 1), None);
        assert_eq!(
            Refusal::EofInScalar {
                line: 0,
                column: 0,
                offset: 0
            }
            .to_string(),
            "illegal EOF in scalar"
        );
    }

    #[test]
    fn the_parsers_refusal_names_the_quote() {
        assert_eq!(
            parser_open_quote(
                "found unexpected end of stream at line 6 column 1, while scanning a quoted scalar at line 5 column 9"
            ),
            Some((5, 8))
        );
        assert_eq!(
            parser_open_quote(
                "found unexpected end of stream at line 2 column 1, while scanning a quoted scalar"
            ),
            Some((1, 0))
        );
        assert_eq!(
            parser_open_quote(
                "found unexpected document indicator at line 6 column 1, while scanning a quoted scalar at line 5 column 9"
            ),
            None
        );
        assert_eq!(
            parser_keyless_key(
                "could not find expected ':' at line 7 column 2, while scanning a simple key at line 6 column 3"
            ),
            Some((6, 2))
        );
    }
}
