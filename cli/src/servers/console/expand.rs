//! A rule's condition with its macros written out, for reading in the
//! console. Text only: the engine compiles conditions on its own, this
//! never feeds it.
//!
//! A macro reference is a bare word equal to a macro's name, outside
//! quotes and outside the value list of `in`, `intersects` or `pmatch`
//! (where bare words are values and list names). Each becomes the
//! macro's condition, expanded in turn, in parentheses.

use std::collections::BTreeMap;

/// Nesting beyond this is left as the macro's name (the loader refuses
/// deeper conditions anyway).
const MAX_DEPTH: usize = 32;
/// Text beyond this is cut, with a note: a page, not a memory bomb.
const MAX_LEN: usize = 64 * 1024;

/// Operators whose parenthesised right side is a list of values.
const LIST_OPERATORS: [&str; 3] = ["in", "intersects", "pmatch"];

pub fn expand_macros(condition: &str, macros: &BTreeMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut stack = Vec::new();
    expand_into(condition.trim(), macros, &mut stack, &mut out);
    if out.len() > MAX_LEN {
        let mut cut = MAX_LEN;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str(" … (cut: too long to show)");
    }
    out
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']' | '/' | '*')
}

fn expand_into<'a>(
    text: &str,
    macros: &BTreeMap<&'a str, &'a str>,
    stack: &mut Vec<&'a str>,
    out: &mut String,
) {
    // Paren levels opened right after a list operator: their bare words
    // are values.
    let mut value_lists: Vec<bool> = Vec::new();
    let mut last_word = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if out.len() > MAX_LEN {
            return;
        }
        match c {
            '"' | '\'' => {
                // A quoted string, with backslash escapes, copied whole.
                let mut end = text.len();
                let mut escaped = false;
                for (i, d) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == c {
                        end = i + d.len_utf8();
                        break;
                    }
                }
                out.push_str(&text[start..end]);
                last_word.clear();
            }
            '(' => {
                value_lists.push(LIST_OPERATORS.contains(&last_word.as_str()));
                out.push(c);
                last_word.clear();
            }
            ')' => {
                value_lists.pop();
                out.push(c);
                last_word.clear();
            }
            c if is_word_char(c) => {
                let mut end = start + c.len_utf8();
                while let Some(&(i, d)) = chars.peek() {
                    if !is_word_char(d) {
                        break;
                    }
                    end = i + d.len_utf8();
                    chars.next();
                }
                let word = &text[start..end];
                let in_values = value_lists.last().copied().unwrap_or(false);
                match macros.get_key_value(word) {
                    Some((name, body))
                        if !in_values && stack.len() < MAX_DEPTH && !stack.contains(name) =>
                    {
                        stack.push(name);
                        out.push('(');
                        expand_into(body.trim(), macros, stack, out);
                        out.push(')');
                        stack.pop();
                    }
                    _ => out.push_str(word),
                }
                last_word.clear();
                last_word.push_str(word);
            }
            c => {
                out.push(c);
                if !c.is_whitespace() {
                    last_word.clear();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn macros() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([
            (
                "open_write",
                "evt.type in (open, openat) and evt.is_open_write=true",
            ),
            ("etc_dir", "fd.name startswith /etc"),
            ("bad", "open_write and etc_dir"),
            ("loop_a", "loop_b"),
            ("loop_b", "loop_a"),
            ("shells", "proc.name in (shells)"),
        ])
    }

    #[test]
    fn macros_are_written_out_recursively() {
        assert_eq!(
            expand_macros("bad and not proc.name=vi", &macros()),
            "((evt.type in (open, openat) and evt.is_open_write=true) and (fd.name startswith \
             /etc)) and not proc.name=vi"
        );
    }

    #[test]
    fn values_strings_and_fields_are_left_alone() {
        // A list item or a quoted string named like a macro is a value.
        assert_eq!(
            expand_macros("proc.name in (etc_dir, bad) and fd.name='bad'", &macros()),
            "proc.name in (etc_dir, bad) and fd.name='bad'"
        );
        assert_eq!(
            expand_macros("shells", &macros()),
            "(proc.name in (shells))"
        );
        assert_eq!(expand_macros("etc_dir.x = 1", &macros()), "etc_dir.x = 1");
    }

    #[test]
    fn cycles_stop() {
        assert_eq!(expand_macros("loop_a", &macros()), "((loop_a))");
    }
}
