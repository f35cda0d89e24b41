//! Where the nodes of a rules file start, counted as yaml-cpp counts them
//! (0-based line and column, byte offset): Falco's load results locate
//! every error with these marks, so the same numbers are given here.
//!
//! serde_yaml keeps no positions in its values, so the marks are read from
//! the text: a top-level item starts after its `- ` (the mark of its first
//! key, where yaml-cpp puts the start of a block mapping), and the value of
//! one of its keys starts at its first character after `key:` (on the
//! same line or on the first line below that holds something). Block
//! style is what rules files are written in; an item written in flow
//! style keeps its item mark for its values.

/// A position in the file, as a yaml-cpp `Mark`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
}

/// The marks of one top-level item: the item itself and the values of
/// its keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemMarks {
    pub item: Mark,
    pub values: Vec<(String, Mark)>,
    /// Entries of the item's `exceptions`, by name.
    pub exceptions: Vec<(String, Mark)>,
    /// The values of each exception entry's keys, by entry name.
    pub exception_values: Vec<(String, Vec<(String, Mark)>)>,
}

impl ItemMarks {
    /// The mark of `key`'s value; the item's own when it is not found.
    pub fn value(&self, key: &str) -> Mark {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, m)| *m)
            .unwrap_or(self.item)
    }

    /// The mark of `key`'s value in the exception entry named `name`; the
    /// entry's own when it is not found.
    pub fn exception_value(&self, name: &str, key: &str) -> Mark {
        self.exception_values
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, keys)| keys.iter().find(|(k, _)| k == key))
            .map_or_else(|| self.exception(name), |(_, m)| *m)
    }

    /// The mark of the exception entry named `name` (its first key).
    pub fn exception(&self, name: &str) -> Mark {
        self.exceptions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| *m)
            .unwrap_or(self.item)
    }
}

/// Lines of `text` with the byte offset each starts at.
fn lines_with_offsets(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split('\n') {
        out.push((offset, line.strip_suffix('\r').unwrap_or(line)));
        offset += line.len() + 1;
    }
    out
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// The marks of the items starting at `item_lines` (0-based file lines,
/// each a `- ` at column 0), in order.
pub fn item_marks(text: &str, item_lines: &[usize]) -> Vec<ItemMarks> {
    let lines = lines_with_offsets(text);
    let mut out = Vec::with_capacity(item_lines.len());
    for (n, &start) in item_lines.iter().enumerate() {
        let end = item_lines.get(n + 1).copied().unwrap_or(lines.len());
        out.push(one_item(&lines, start, end.min(lines.len())));
    }
    out
}

fn one_item(lines: &[(usize, &str)], start: usize, end: usize) -> ItemMarks {
    let Some(&(_, first)) = lines.get(start) else {
        return ItemMarks::default();
    };
    // The item's content: after the `-` and the blanks that follow it, or
    // on the first line below when the dash stands alone.
    let after_dash = first.len() - first[1.min(first.len())..].trim_start().len();
    let (item_line, column) = if first[after_dash..].is_empty() {
        match (start + 1..end).find(|&l| !is_blank_or_comment(lines[l].1)) {
            Some(l) => {
                let t = lines[l].1;
                (l, t.len() - t.trim_start().len())
            }
            None => (start, after_dash),
        }
    } else {
        (start, after_dash)
    };
    let item = Mark {
        line: item_line,
        column,
        offset: lines[item_line].0 + column,
    };
    let mut values = Vec::new();
    for l in item_line..end {
        let text = lines[l].1;
        // A key of this item sits at the item's column (on the first line,
        // after the dash). The column is the item's: on another line it may
        // fall inside a character, and then no key starts there.
        let (Some(head), Some(rest)) = (text.get(..column), text.get(column..)) else {
            continue;
        };
        if rest.is_empty() || (l != item_line && !head.trim().is_empty()) {
            continue;
        }
        if l != item_line && head.contains('-') {
            continue;
        }
        if rest.starts_with(' ') || rest.starts_with('#') {
            continue;
        }
        let Some(colon) = key_end(rest) else {
            continue;
        };
        let key = rest[..colon].trim().trim_matches(|c| c == '"' || c == '\'');
        let mark = value_mark(lines, l, column + colon, end);
        values.push((key.to_string(), mark));
    }
    let mut exceptions = Vec::new();
    let mut exception_values = Vec::new();
    let from = values
        .iter()
        .find(|(k, _)| k == "exceptions")
        .map(|(_, m)| m.line);
    if let Some(from) = from {
        for (l, &(line_offset, text)) in lines.iter().enumerate().take(end).skip(from) {
            let t = text.trim_start();
            let Some(entry) = t.strip_prefix('-') else {
                continue;
            };
            let entry_start = entry.len() - entry.trim_start().len();
            let Some(name) = entry.trim_start().strip_prefix("name:") else {
                continue;
            };
            let c = text.len() - t.len() + 1 + entry_start;
            let name = name.trim().trim_matches(|c| c == '"' || c == '\'');
            exception_values.push((name.to_string(), entry_keys(lines, l, c, end)));
            exceptions.push((
                name.to_string(),
                Mark {
                    line: l,
                    column: c,
                    offset: line_offset + c,
                },
            ));
        }
    }
    ItemMarks {
        item,
        values,
        exceptions,
        exception_values,
    }
}

/// Where the value of the key whose `:` is at `colon` on line `l` starts:
/// after the colon on the same line, or on the next line that holds
/// something when the value is a block below.
fn value_mark(lines: &[(usize, &str)], l: usize, colon: usize, end: usize) -> Mark {
    let (line_offset, text) = lines[l];
    let after = &text[colon + 1..];
    if after.trim().is_empty() || after.trim_start().starts_with('#') {
        return match (l + 1..end).find(|&n| !is_blank_or_comment(lines[n].1)) {
            Some(n) => {
                let t = lines[n].1;
                let c = t.len() - t.trim_start().len();
                Mark {
                    line: n,
                    column: c,
                    offset: lines[n].0 + c,
                }
            }
            None => Mark {
                line: l,
                column: text.len(),
                offset: line_offset + text.len(),
            },
        };
    }
    let value_col = colon + 1 + (after.len() - after.trim_start().len());
    Mark {
        line: l,
        column: value_col,
        offset: line_offset + value_col,
    }
}

/// The keys of the exception entry starting on line `first` with its keys
/// at `column` (the first after the dash), with their value marks, up to
/// the next entry or the end of the block.
fn entry_keys(
    lines: &[(usize, &str)],
    first: usize,
    column: usize,
    end: usize,
) -> Vec<(String, Mark)> {
    let mut keys = Vec::new();
    for l in first..end {
        let text = lines[l].1;
        if is_blank_or_comment(text) {
            continue;
        }
        let indent = text.len() - text.trim_start().len();
        if l != first && indent < column {
            break;
        }
        if text.len() <= column || (l != first && indent != column) {
            continue;
        }
        let rest = &text[column..];
        let Some(colon) = key_end(rest) else {
            continue;
        };
        let key = rest[..colon].trim().trim_matches(|c| c == '"' || c == '\'');
        keys.push((key.to_string(), value_mark(lines, l, column + colon, end)));
    }
    keys
}

/// The index of the `:` that ends a plain or quoted key, when `rest`
/// starts with one.
fn key_end(rest: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    let mut i = 0;
    if let Some(&q) = bytes.first().filter(|b| **b == b'"' || **b == b'\'') {
        i = 1 + rest[1..].find(q as char)? + 1;
    }
    while i < bytes.len() {
        if bytes[i] == b':'
            && (i + 1 == bytes.len() || bytes[i + 1] == b' ' || bytes[i + 1] == b'\t')
        {
            return Some(i);
        }
        if bytes[i] == b'#' && i > 0 && bytes[i - 1] == b' ' {
            return None;
        }
        i += 1;
    }
    None
}

/// The mark of the character at 1-based `line`/`column` of `text`, as a
/// byte index (libsinsp's parser position `idx`).
pub fn index_of(text: &str, line: usize, column: usize) -> usize {
    let mut idx = 0;
    for (n, l) in text.split('\n').enumerate() {
        if n + 1 == line {
            return idx + column.saturating_sub(1).min(l.len());
        }
        idx += l.len() + 1;
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_across_the_items_column_is_no_key_and_no_panic() {
        // 'ÿ' takes bytes 1 and 2 of its line: the item's column (2) falls
        // inside it.
        let text = "- rule: r\n  desc: d\n \u{ff} x: y\n#\u{ff}\n  condition: evt.type=open\n";
        let marks = item_marks(text, &[0]);
        let keys: Vec<&str> = marks[0].values.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["rule", "desc", "condition"]);
        assert_eq!(marks[0].value("condition").line, 4);
    }

    #[test]
    fn items_and_values_as_yaml_cpp_marks_them() {
        let text = "# c\n- rule: a\n  condition: >\n    evt.type=open\n  output: x\n\n-\n  macro: m\n  condition:\n    proc.name=cat\n";
        let marks = item_marks(text, &[1, 6]);
        assert_eq!(
            marks[0].item,
            Mark {
                line: 1,
                column: 2,
                offset: 6
            }
        );
        assert_eq!(marks[0].value("rule").column, 8);
        let cond = marks[0].value("condition");
        assert_eq!((cond.line, cond.column), (2, 13));
        assert_eq!(&text[cond.offset..cond.offset + 1], ">");
        assert_eq!(
            (
                marks[0].value("output").line,
                marks[0].value("output").column
            ),
            (4, 10)
        );
        assert_eq!((marks[1].item.line, marks[1].item.column), (7, 2));
        let cond = marks[1].value("condition");
        assert_eq!((cond.line, cond.column), (9, 4));
        assert_eq!(index_of("a\nbc", 2, 2), 3);
    }
}
