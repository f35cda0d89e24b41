//! What keeps a hostile condition from costing more than its length: a
//! nesting limit checked before pest's recursive parser runs on an
//! output's operand, stack that grows under deep recursions, and
//! positions looked up in an index built once per condition.

/// How deep parentheses (a transformer's or a list's) may nest in a field
/// or transformer written alone, as in an output; checked before pest's
/// recursive parser runs. Conditions are read by [`super::syntax`], which
/// stops where libsinsp's parser stops (its depth of 1000).
pub const MAX_NESTING: usize = 100;

/// Checks the nesting of `text` without recursion. Returns the byte offset
/// where the limit is first exceeded.
///
/// The count is an upper bound of the parser's depth: a `not` opens a
/// level that its operand closes, and since `not` binds tighter than
/// `and`/`or`, the operand ends at the next `and`, `or` or `)` of its own
/// level. Quoted strings and field arguments (`name[...]`) are skipped as
/// the grammar skips them.
pub fn nesting_exceeded(text: &str) -> Option<usize> {
    #[derive(PartialEq)]
    enum Open {
        Paren,
        Not,
    }
    let bytes = text.as_bytes();
    let mut stack: Vec<Open> = Vec::new();
    let close_nots = |stack: &mut Vec<Open>| {
        while stack.last() == Some(&Open::Not) {
            stack.pop();
        }
    };
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'.';
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' | b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'[' if i > 0 && is_name(bytes[i - 1]) => {
                match bytes[i..].iter().position(|&c| c == b']') {
                    Some(end) => i += end + 1,
                    // Unterminated: the parser rejects it without recursing.
                    None => return None,
                }
            }
            b'(' => {
                stack.push(Open::Paren);
                if stack.len() > MAX_NESTING {
                    return Some(i);
                }
                i += 1;
            }
            b')' => {
                close_nots(&mut stack);
                if stack.last() == Some(&Open::Paren) {
                    stack.pop();
                }
                i += 1;
            }
            _ if is_name(b) => {
                let start = i;
                while i < bytes.len() && is_name(bytes[i]) {
                    i += 1;
                }
                match &text[start..i] {
                    "not" => {
                        stack.push(Open::Not);
                        if stack.len() > MAX_NESTING {
                            return Some(start);
                        }
                    }
                    "and" | "or" => close_nots(&mut stack),
                    _ => {}
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Below this much stack left, a deep recursion gets a new segment...
const STACK_RED_ZONE: usize = 64 << 10;
/// ...of this size.
const STACK_GROWTH: usize = 1 << 20;

/// Runs one level of a recursion over a condition (parsing it, expanding
/// its macros, compiling it) with room on the stack: a condition nested
/// as deep as Falco allows takes more than a small thread's stack in some
/// builds, so the stack grows instead of overflowing.
pub fn with_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(STACK_RED_ZONE, STACK_GROWTH, f)
}

/// Line and column (1-based, columns in characters) of byte offsets in one
/// text, each found in logarithmic time: a lookup that scanned from the
/// start for every node made compiling a long condition quadratic.
pub struct LineIndex {
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
    /// For text that is not ASCII: the character index of each byte offset.
    char_index: Option<Vec<u32>>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        let char_index = (!text.is_ascii()).then(|| {
            let mut index = vec![0u32; text.len() + 1];
            let mut chars = 0u32;
            for (offset, c) in text.char_indices() {
                for slot in &mut index[offset..offset + c.len_utf8()] {
                    *slot = chars;
                }
                chars += 1;
            }
            index[text.len()] = chars;
            index
        });
        LineIndex {
            line_starts,
            char_index,
        }
    }

    /// The line and column of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line.saturating_sub(1)];
        let column = match &self.char_index {
            None => offset - start,
            Some(index) => {
                let at = |o: usize| index.get(o).copied().unwrap_or(0) as usize;
                at(offset) - at(start)
            }
        };
        (line, column + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parentheses_and_not_chains_count_as_levels() {
        let ok = format!(
            "{}a.b=1{}",
            "(".repeat(MAX_NESTING),
            ")".repeat(MAX_NESTING)
        );
        assert_eq!(nesting_exceeded(&ok), None);
        let deep = format!("x.y=1 and {}a.b=1", "(".repeat(MAX_NESTING + 1));
        assert_eq!(nesting_exceeded(&deep), Some(10 + MAX_NESTING));
        let nots = format!("{}a.b=1", "not ".repeat(MAX_NESTING + 1));
        assert_eq!(nesting_exceeded(&nots), Some(4 * MAX_NESTING));
        let mixed = "not (not (not a.b=1))".to_string();
        assert_eq!(nesting_exceeded(&mixed), None);
    }

    #[test]
    fn siblings_do_not_add_up() {
        let siblings = vec!["not a.b=1"; 5 * MAX_NESTING].join(" and ");
        assert_eq!(nesting_exceeded(&siblings), None);
        let groups = vec!["(a.b=1)"; 5 * MAX_NESTING].join(" or ");
        assert_eq!(nesting_exceeded(&groups), None);
    }

    #[test]
    fn quoted_text_and_field_arguments_are_not_structure() {
        let quoted = format!(
            "a.b = \"{}\" and c.d='{}'",
            "(".repeat(500),
            "\\'(".repeat(500)
        );
        assert_eq!(nesting_exceeded(&quoted), None);
        let arg = format!("a.b[{}] = 1", "(".repeat(500));
        assert_eq!(nesting_exceeded(&arg), None);
    }

    #[test]
    fn positions_match_a_scan_from_the_start() {
        let text = "a\nbé c\n\nd";
        let index = LineIndex::new(text);
        for (offset, _) in text.char_indices() {
            let before = &text[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            assert_eq!(index.line_col(offset), (line, column), "offset {offset}");
        }
    }
}
