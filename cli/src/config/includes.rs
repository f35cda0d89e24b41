//! Falco's `config_files`: drop-in config files and folders merged into
//! the main config after it is read and before `-o` overrides, in order.
//! A folder's files are merged in name order. Each top-level key of a
//! drop-in is merged by the entry's strategy: `append` (the default: a
//! list is extended, anything else replaced), `override` (replaced) or
//! `add-only` (set only where the main config has no such key). A path
//! that does not exist is skipped, as Falco does; a drop-in may not name
//! further drop-ins.

use peregrine_engine::bounded_read::{read_text, BoundedReadError};
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value as Yaml};

use super::overrides::untag;
use super::ConfigError;

/// The key, as Falco spells it.
pub(super) const KEY: &str = "config_files";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Append,
    Override,
    AddOnly,
}

/// Takes `config_files` out of `document` and merges the files it names.
/// Returns the drop-in files merged, in order.
pub(super) fn merge(
    document: &mut Mapping,
    main: Option<&Path>,
    origin: &str,
) -> Result<Vec<PathBuf>, ConfigError> {
    let Some(mut entries) = document.remove(KEY) else {
        return Ok(Vec::new());
    };
    untag(&mut entries);
    let bad = |index: Option<usize>, message: String| ConfigError::Value {
        origin: origin.to_string(),
        key: match index {
            Some(i) => format!("{KEY}[{i}]"),
            None => KEY.to_string(),
        },
        message,
    };
    let entries = match entries {
        Yaml::Null => Vec::new(),
        Yaml::Sequence(items) => items,
        Yaml::String(path) => vec![Yaml::String(path)],
        _ => return Err(bad(None, "expected a list of paths".into())),
    };
    let mut merged = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let (path, strategy) = match &entry {
            Yaml::String(path) => (PathBuf::from(path), Strategy::Append),
            Yaml::Mapping(map) => {
                let path = map
                    .get("path")
                    .and_then(Yaml::as_str)
                    .ok_or_else(|| bad(Some(index), "an entry names its `path`".into()))?;
                let strategy = match map.get("strategy").map(|s| s.as_str()) {
                    None => Strategy::Append,
                    Some(Some("append")) => Strategy::Append,
                    Some(Some("override")) => Strategy::Override,
                    Some(Some("add-only")) => Strategy::AddOnly,
                    Some(_) => {
                        return Err(bad(
                            Some(index),
                            "strategy is one of append, override, add-only".into(),
                        ))
                    }
                };
                (PathBuf::from(path), strategy)
            }
            _ => {
                return Err(bad(
                    Some(index),
                    "an entry is a path or {path, strategy}".into(),
                ))
            }
        };
        if main.is_some_and(|main| same_file(main, &path)) {
            return Err(bad(
                Some(index),
                format!("includes the main config file {}", path.display()),
            ));
        }
        let files = if path.is_dir() {
            let read = std::fs::read_dir(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source: BoundedReadError::Io(source),
            })?;
            let mut files: Vec<PathBuf> = read
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            files
        } else if path.is_file() {
            vec![path]
        } else {
            // Falco skips an absent path, as it does a rules file.
            continue;
        };
        for file in files {
            include(document, &file, strategy)?;
            merged.push(file);
        }
    }
    Ok(merged)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Merges one drop-in file into `document`.
fn include(document: &mut Mapping, file: &Path, strategy: Strategy) -> Result<(), ConfigError> {
    // Drop-ins are capped like the main file.
    let text =
        read_text(file, super::MAX_CONFIG_FILE_BYTES).map_err(|source| ConfigError::Read {
            path: file.to_owned(),
            source,
        })?;
    let mut parsed: Yaml = if text.trim().is_empty() {
        Yaml::Null
    } else {
        serde_yaml::from_str(&text).map_err(|source| ConfigError::Yaml {
            path: file.to_owned(),
            source,
        })?
    };
    untag(&mut parsed);
    let items = match parsed {
        Yaml::Null => return Ok(()),
        Yaml::Mapping(items) => items,
        _ => {
            return Err(ConfigError::Value {
                origin: file.display().to_string(),
                key: "(top level)".into(),
                message: "expected a mapping of keys to values".into(),
            })
        }
    };
    for (key, value) in items {
        if key.as_str() == Some(KEY) {
            return Err(ConfigError::Value {
                origin: file.display().to_string(),
                key: KEY.into(),
                message: "a drop-in config file cannot include others".into(),
            });
        }
        match strategy {
            Strategy::Append => {
                if let (Some(Yaml::Sequence(list)), Yaml::Sequence(more)) =
                    (document.get_mut(&key), &value)
                {
                    list.extend(more.iter().cloned());
                } else {
                    document.insert(key, value);
                }
            }
            Strategy::Override => {
                document.insert(key, value);
            }
            Strategy::AddOnly => {
                if !document.contains_key(&key) {
                    document.insert(key, value);
                }
            }
        }
    }
    Ok(())
}
