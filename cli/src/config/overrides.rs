//! `-o key=value` overrides, in Falco's key syntax: `a.b.c`, `list[2].x`,
//! `list[].x` (a new item at the end of the list, e.g.
//! `-o rules[].disable.rule=PATTERN`), and `\.`, `\[`, `\]`, `\\` for
//! those characters inside a key name (`static_fields.app\.kubernetes=x`).

use serde_yaml::{Mapping, Value as Yaml};

use super::ConfigError;

/// One segment of an override key path.
#[derive(Debug, PartialEq)]
pub(super) enum Segment {
    Key(String),
    Index(usize),
    /// `[]`: a new item appended to the list.
    Append,
}

/// Splits `a.b[2].c\.d[]` into its segments, or says what is wrong and where.
pub(super) fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    let mut key = String::new();
    // Whether a key may start here: at the beginning, or after a dot.
    let mut expect_key = true;
    let mut chars = path.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, escaped @ ('.' | '[' | ']' | '\\'))) => {
                    if !expect_key && key.is_empty() {
                        return Err(format!("expected '.' before position {at}"));
                    }
                    key.push(escaped);
                }
                Some((_, other)) => return Err(format!("invalid escape '\\{other}' at {at}")),
                None => return Err(format!("trailing backslash at position {at}")),
            },
            '.' => {
                if key.is_empty() && expect_key {
                    return Err(format!("empty key name at position {at}"));
                }
                if !key.is_empty() {
                    segments.push(Segment::Key(std::mem::take(&mut key)));
                }
                expect_key = true;
            }
            '[' => {
                if !key.is_empty() {
                    segments.push(Segment::Key(std::mem::take(&mut key)));
                } else if expect_key {
                    return Err(format!("a list index needs a key before it, at {at}"));
                }
                let mut index = String::new();
                loop {
                    match chars.next() {
                        Some((_, ']')) => break,
                        Some((_, d)) => index.push(d),
                        None => return Err(format!("'[' at {at} is never closed")),
                    }
                }
                if index.is_empty() {
                    segments.push(Segment::Append);
                } else {
                    let index = index
                        .parse()
                        .map_err(|_| format!("expected a numeric index, found '{index}'"))?;
                    segments.push(Segment::Index(index));
                }
                expect_key = false;
            }
            other => {
                if !expect_key && key.is_empty() {
                    return Err(format!("expected '.' before position {at}"));
                }
                key.push(other);
            }
        }
    }
    if !key.is_empty() {
        segments.push(Segment::Key(key));
    } else if expect_key {
        return Err("the key ends with '.' or is empty".into());
    }
    Ok(segments)
}

/// A YAML tag (`!name`) does not change what a key path reaches: an
/// override looks through it, as `is_mapping` does.
pub(super) fn untag(node: &mut Yaml) {
    while let Yaml::Tagged(tagged) = node {
        let inner = std::mem::take(&mut tagged.value);
        *node = inner;
    }
}

/// Applies `key.path[0].leaf=value`; the value is read as YAML, so
/// `true`, `5`, `[a, b]` and `{a: 1}` have their YAML types.
pub(super) fn apply_override(document: &mut Yaml, text: &str) -> Result<(), ConfigError> {
    let fail = |message: &str| ConfigError::Override {
        text: text.to_string(),
        message: message.into(),
    };
    let (path, value) = text
        .split_once('=')
        .ok_or_else(|| fail("expected key=value"))?;
    let segments = parse_path(path.trim())
        .map_err(|why| fail(&format!("the key is not of the form a.b[0].c: {why}")))?;
    let value: Yaml = if value.is_empty() {
        Yaml::String(String::new())
    } else {
        serde_yaml::from_str(value).unwrap_or_else(|_| Yaml::String(value.to_string()))
    };
    let mut node = document;
    for segment in segments {
        untag(node);
        node = match segment {
            Segment::Key(key) => {
                if !matches!(node, Yaml::Mapping(_)) {
                    *node = Yaml::Mapping(Mapping::new());
                }
                let Yaml::Mapping(map) = node else {
                    unreachable!("made a mapping above")
                };
                map.entry(Yaml::String(key)).or_insert(Yaml::Null)
            }
            Segment::Index(_) | Segment::Append => {
                if !matches!(node, Yaml::Sequence(_)) {
                    *node = Yaml::Sequence(Vec::new());
                }
                let Yaml::Sequence(items) = node else {
                    unreachable!("made a sequence above")
                };
                let index = match segment {
                    Segment::Index(index) => index,
                    _ => items.len(),
                };
                if index > items.len() {
                    return Err(fail("list index past the end of the list"));
                }
                if index == items.len() {
                    items.push(Yaml::Null);
                }
                &mut items[index]
            }
        };
    }
    *node = value;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_as_falco_reads_them() {
        use Segment::*;
        assert_eq!(
            parse_path("rules[].disable.rule").unwrap(),
            vec![
                Key("rules".into()),
                Append,
                Key("disable".into()),
                Key("rule".into())
            ]
        );
        assert_eq!(
            parse_path("a[1][2].b").unwrap(),
            vec![Key("a".into()), Index(1), Index(2), Key("b".into())]
        );
        assert_eq!(
            parse_path(r"static_fields.app\.kubernetes\\x").unwrap(),
            vec![Key("static_fields".into()), Key(r"app.kubernetes\x".into())]
        );
        for bad in [
            "", ".", "a.", "a..b", "[0]", "a[x]", "a[0", r"a\q", "a\\", "a[0]b",
        ] {
            assert!(parse_path(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn append_adds_one_item_per_override() {
        let mut document = Yaml::Mapping(Mapping::new());
        for text in [
            "rules[].disable.rule=*",
            "rules[].enable.tag=network",
            "rules[1].enable.rule=Read sensitive file*",
        ] {
            apply_override(&mut document, text).unwrap();
        }
        let rules = document["rules"].as_sequence().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["disable"]["rule"], Yaml::from("*"));
        assert_eq!(rules[1]["enable"]["tag"], Yaml::from("network"));
        assert_eq!(
            rules[1]["enable"]["rule"],
            Yaml::from("Read sensitive file*")
        );
    }
}
