//! Reads rule files: YAML documents of lists, macros and rules, applied in
//! order onto the [`Definitions`] loaded so far.

use serde_yaml::{Mapping, Value as Yaml};

use super::diagnostics::{Code, Diagnostic, LoadResult, Location};
use super::exceptions::check_comps;
use super::items::{
    Definitions, Exception, ExceptionEntry, ListItem, MacroItem, Origin, PluginVersion, Priority,
    RuleItem,
};
use super::marks::{self, ItemMarks};
use super::open_scalar;
use super::quoted_clip;

/// The rules-engine version Peregrine reports and accepts rules up to, in
/// Falco's numbering (`required_engine_version: 15` means 0.15.0). It is
/// the last Falco engine whose language is implemented whole: 0.59-0.62
/// brought the multi-value transformers (`join`, `concat`, `getopt` and
/// its selector, transformer lists), the list modifiers (`startswith
/// oneof (...)`) and ancestor lineage in outputs, all implemented. 0.63
/// matches conditions on raw bytes (`\xHH` escapes name any byte), feeds
/// `regex` the text with invalid sequences replaced, refuses NUL outside
/// buffers and escapes text alerts; see crate::text.
pub const ENGINE_VERSION: (u64, u64, u64) = (0, 63, 0);

/// Keys a rule may carry; others are warned about (LOAD_UNKNOWN_KEY).
pub(super) const RULE_KEYS: &[&str] = &[
    "rule",
    "condition",
    "output",
    "desc",
    "priority",
    "source",
    "enabled",
    "capture",
    "capture_duration",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "tags",
    "exceptions",
    "override",
    "append",
];

struct Ctx<'a> {
    file: &'a str,
    result: &'a mut LoadResult,
    /// The marks of the item being read, when its place is known.
    item: Option<ItemMarks>,
}

impl Ctx<'_> {
    fn report(
        &mut self,
        code: Code,
        item_type: &str,
        item_name: &str,
        line: Option<usize>,
        message: impl Into<String>,
    ) {
        self.report_in(&[], code, item_type, item_name, line, message);
    }

    /// Reports about an item nested in others (`context`, outermost first).
    fn report_in(
        &mut self,
        context: &[(String, String)],
        code: Code,
        item_type: &str,
        item_name: &str,
        line: Option<usize>,
        message: impl Into<String>,
    ) {
        let locations = match &self.item {
            Some(marks) => item_locations(self.file, marks, context, item_type, item_name),
            None => Vec::new(),
        };
        self.result.push(Diagnostic {
            code,
            message: message.into(),
            item_type: item_type.to_string(),
            item_name: item_name.to_string(),
            context: context.to_vec(),
            file: self.file.to_string(),
            line,
            condition_pos: None,
            locations,
        });
    }
}

/// Falco's context chain for an item of a rules file and what is nested
/// in it: each step at the item's mark, but an exception at its own entry.
pub(crate) fn item_locations(
    file: &str,
    marks: &ItemMarks,
    context: &[(String, String)],
    item_type: &str,
    item_name: &str,
) -> Vec<Location> {
    let mut out = vec![Location::content(file)];
    if item_type == "rules content" {
        return out;
    }
    let mut previous = marks.item;
    for (depth, (t, n)) in context
        .iter()
        .map(|(t, n)| (t.as_str(), n.as_str()))
        .chain(std::iter::once((item_type, item_name)))
        .enumerate()
    {
        let mark = match t {
            "exception" => marks.exception(n),
            // A key's value straight under the item is placed at the
            // value, as yaml-cpp marks it; deeper ones (inside an
            // exception) at what holds them, whose marks are known.
            "value for" if depth == 1 => marks.value(n),
            "rule priority" => marks.value("priority"),
            "exception values" | "exception fields" | "exception comps" => {
                let entry = context.iter().rev().find(|(t, _)| t == "exception");
                let key = t.trim_start_matches("exception ");
                entry.map_or(previous, |(_, name)| marks.exception_value(name, key))
            }
            "value for" => previous,
            _ => marks.item,
        };
        previous = mark;
        out.push(Location::new(t, n, file, mark));
    }
    out
}

/// Splits the text into YAML documents, each with the line it starts at,
/// so serde_yaml's positions can be turned back into file lines.
fn documents(content: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in content.lines().enumerate() {
        if line.starts_with("---") && line[3..].trim().is_empty() {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
            // Keep line numbers: the separator becomes an empty line.
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    docs
}

/// Lines (1-based, within the document) where top-level sequence items
/// begin, used to give each item a line.
fn item_lines(doc: &str) -> Vec<usize> {
    doc.lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("- ") || *l == "-" || l.starts_with("-\t"))
        .map(|(i, _)| i + 1)
        .collect()
}

/// Loads one file's text onto `defs`, reporting into `result`.
pub fn load_content(defs: &mut Definitions, file: &str, content: &str, result: &mut LoadResult) {
    load_content_once(defs, file, content, result, Pass::AsWritten);
}

/// Which text [`load_content_once`] reads.
#[derive(Debug, Clone, Copy)]
enum Pass {
    /// The file as written.
    AsWritten,
    /// The file with the quoted scalar its end left open closed where
    /// yaml-cpp ends it (see open_scalar); `quote` is that scalar's
    /// opening quote, `end` yaml-cpp's mark at the file's end (line,
    /// column, offset), `as_key` whether the scalar was also made an
    /// explicit key.
    Closed {
        quote: usize,
        end: (usize, usize, usize),
        as_key: bool,
    },
}

/// [`load_content`] of `content` as `pass` says it was made.
fn load_content_once(
    defs: &mut Definitions,
    file: &str,
    content: &str,
    result: &mut LoadResult,
    pass: Pass,
) {
    let mut ctx = Ctx {
        file,
        result,
        item: None,
    };
    let mut parsed = Vec::new();
    let docs = documents(content);
    let starts: Vec<usize> = docs.iter().map(|(start, _)| *start).collect();
    for (n, (start, doc)) in docs.into_iter().enumerate() {
        let e = match serde_yaml::from_str::<Yaml>(&doc) {
            Ok(mut v) => {
                quoted_clip::clip_as_yaml_cpp(&doc, &mut v);
                parsed.push((start, doc, v));
                continue;
            }
            Err(e) => e,
        };
        let (mut line, mut column) = e
            .location()
            .map(|l| (l.line() + start - 1, l.column()))
            .unwrap_or((start, 0));
        let mut offset = marks::index_of(content, line, column);
        let mut problem = yaml_cpp_problem(&yaml_problem(&e));
        let message = e.to_string();
        // An unknown escape: libyaml marks the backslash; yaml-cpp names
        // the byte after it and marks the byte after that.
        if problem.starts_with("found unknown escape character") {
            let backslash = char_offset(content, line, column.saturating_sub(1))
                .filter(|&at| content.as_bytes().get(at) == Some(&b'\\'));
            if let Some((at, &escaped)) =
                backslash.and_then(|at| Some((at, content.as_bytes().get(at + 1)?)))
            {
                let line_start = content[..at].rfind('\n').map_or(0, |n| n + 1);
                offset = at + 2;
                column = offset - line_start + 1;
                problem = format!(
                    "unknown escape character: {}",
                    crate::text::decode(&[escaped])
                );
            }
        }
        // The file's text at 1-based `line` of this document and 0-based
        // character `column`, as a byte offset.
        let at_char = |line: usize, column: usize| char_offset(content, line + start - 1, column);
        match pass {
            // A quoted scalar left open: libyaml refuses it where yaml-cpp,
            // which Falco reads rules with, may not (see open_scalar).
            Pass::AsWritten => {
                if let Some((quote_line, quote_column)) = open_scalar::parser_open_quote(&message) {
                    let refusal = match starts.get(n + 1) {
                        // yaml-cpp reads on into the next document's `---`.
                        Some(&next) => Some(open_scalar::Refusal::DocumentIndicator {
                            line: next - 2,
                            column: 0,
                            offset: marks::index_of(content, next - 1, 1),
                        }),
                        None => {
                            let quote = at_char(quote_line, quote_column);
                            match quote
                                .and_then(|q| Some((q, open_scalar::close_at_end(content, q)?)))
                            {
                                Some((quote, Ok(closed))) => {
                                    let end = open_scalar::end_mark(content);
                                    let pass = Pass::Closed {
                                        quote,
                                        end,
                                        as_key: false,
                                    };
                                    load_content_once(defs, file, &closed, ctx.result, pass);
                                    return;
                                }
                                Some((_, Err(refusal))) => Some(refusal),
                                None => None,
                            }
                        }
                    };
                    if let Some(refusal) = refusal {
                        let (l, c, o) = refusal.mark();
                        (line, column, offset) = (l + 1, c + 1, o);
                        problem = refusal.to_string();
                    }
                }
            }
            Pass::Closed { quote, end, as_key } => {
                // The closed scalar where a key belongs, with no `:` after
                // it: yaml-cpp ends the file with that key and no value
                // (a rule gets an unknown key `KEY `), which an explicit
                // key (`? `) says to libyaml.
                let key =
                    open_scalar::parser_keyless_key(&message).and_then(|(l, c)| at_char(l, c));
                if !as_key && key == Some(quote) {
                    let keyed = format!("{}? {}", &content[..quote], &content[quote..]);
                    let pass = Pass::Closed {
                        quote: quote + 2,
                        end,
                        as_key: true,
                    };
                    load_content_once(defs, file, &keyed, ctx.result, pass);
                    return;
                }
                // yaml-cpp reads the scalar to the file's end, where it
                // finds what is then missing (a flow collection's end).
                if offset > quote {
                    (line, column, offset) = (end.0 + 1, end.1 + 1, end.2);
                }
            }
        }
        // Falco places a parse error at yaml-cpp's mark, a "value for"
        // step under the rules content.
        let at = marks::Mark {
            line: line.saturating_sub(1),
            column: column.saturating_sub(1),
            offset,
        };
        ctx.report(
            Code::ErrYamlParse,
            "rules content",
            "",
            Some(line),
            format!("yaml-cpp: error at line {line}, column {column}: {problem}"),
        );
        if let Some(error) = ctx.result.errors.last_mut() {
            error.locations = vec![
                Location::content(file),
                Location::new("value for", "", file, at),
            ];
        }
        return;
    }
    for (_, _, value) in &parsed {
        if !matches!(value, Yaml::Null) {
            let status = super::schema_check::check(value);
            ctx.result.schema_status.extend(status);
        }
    }
    for (start, doc, value) in parsed {
        let items = match value {
            Yaml::Null => continue,
            Yaml::Sequence(items) => items,
            Yaml::Mapping(_) => {
                ctx.report(
                    Code::ErrYamlValidate,
                    "rules content",
                    "",
                    Some(start),
                    "Rules content is not yaml array of objects",
                );
                return;
            }
            _ => {
                ctx.report(
                    Code::ErrYamlValidate,
                    "rules content",
                    "",
                    Some(start),
                    "Rules content is not yaml",
                );
                return;
            }
        };
        let lines = item_lines(&doc);
        let line_of = |i: usize| {
            if lines.len() == items.len() {
                lines.get(i).map(|l| l + start - 1)
            } else {
                None
            }
        };
        let marks = if lines.len() == items.len() {
            let zero_based: Vec<usize> = lines.iter().map(|l| l + start - 2).collect();
            marks::item_marks(content, &zero_based)
        } else {
            Vec::new()
        };
        for (i, item) in items.iter().enumerate() {
            let line = line_of(i);
            ctx.item = marks.get(i).cloned();
            if item.is_null() {
                // An empty `-` entry: Falco skips it.
                continue;
            }
            let Yaml::Mapping(map) = item else {
                ctx.report(
                    Code::ErrYamlValidate,
                    "rules content item",
                    "",
                    line,
                    "Unexpected element type. Each element should be a yaml associative array.",
                );
                return;
            };
            let origin = Origin {
                file: file.to_string(),
                line,
                marks: ctx.item.clone().unwrap_or_default(),
            };
            // Falco stops at the first error in a file.
            if !load_item(defs, map, origin, &mut ctx) {
                return;
            }
        }
    }
}

fn scalar_string(v: &Yaml) -> Option<String> {
    match v {
        // `desc: != after x` reads as a tag: the text after it is the value.
        Yaml::Tagged(t) => {
            let rest = scalar_string(&t.value)?;
            Some(rest)
        }
        Yaml::String(s) => Some(s.clone()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn get<'m>(map: &'m Mapping, key: &str) -> Option<&'m Yaml> {
    map.get(Yaml::String(key.to_string()))
}

/// An error that stops loading the file. `nested` names the items below
/// the list, macro or rule being read that the error is about, outermost
/// first (Falco's context chain: `exceptions`, `exception 'ex1'`...).
#[derive(Debug)]
struct ItemError {
    code: Code,
    message: String,
    nested: Vec<(String, String)>,
}

impl ItemError {
    fn yaml(message: impl Into<String>) -> Self {
        ItemError {
            code: Code::ErrYamlValidate,
            message: message.into(),
            nested: Vec::new(),
        }
    }

    fn validate(message: impl Into<String>) -> Self {
        ItemError {
            code: Code::ErrValidate,
            message: message.into(),
            nested: Vec::new(),
        }
    }

    /// Places the error inside `item_type 'item_name'` (one level out).
    fn inside(mut self, item_type: &str, item_name: &str) -> Self {
        self.nested
            .insert(0, (item_type.to_string(), item_name.to_string()));
        self
    }
}

/// Reports an item's error: the item (`kind 'name'`) and what is nested
/// below it, the innermost as the diagnostic's own item.
fn report_error(ctx: &mut Ctx<'_>, kind: &str, name: &str, line: Option<usize>, e: ItemError) {
    let mut chain = vec![(kind.to_string(), name.to_string())];
    chain.extend(e.nested);
    let (item_type, item_name) = chain.pop().unwrap_or_default();
    ctx.report_in(&chain, e.code, &item_type, &item_name, line, e.message);
}

/// A scalar under `key`, read as Falco's `decode_val`/`decode_optional_val`
/// read it: absent (an error unless optional), null, not a scalar, empty.
fn decode_scalar(map: &Mapping, key: &str, optional: bool) -> Result<Option<String>, ItemError> {
    match get(map, key) {
        None if optional => Ok(None),
        None => Err(ItemError::yaml(format!(
            "Item has no mapping for key '{key}'"
        ))),
        Some(Yaml::Null) => Err(ItemError::yaml(format!("Mapping for key '{key}' is empty"))),
        Some(v) => match scalar_string(v) {
            None => Err(ItemError::yaml("Value is not a scalar value").inside("value for", key)),
            Some(s) if s.is_empty() => {
                Err(ItemError::yaml("Value must be non-empty").inside("value for", key))
            }
            Some(s) => Ok(Some(s)),
        },
    }
}

fn decode_required(map: &Mapping, key: &str) -> Result<String, ItemError> {
    decode_scalar(map, key, false).map(Option::unwrap_or_default)
}

/// A boolean as YAML 1.1 spells it (`true`, `yes`, `on`...), as yaml-cpp
/// reads it for Falco.
fn decode_bool(map: &Mapping, key: &str) -> Result<Option<bool>, ItemError> {
    if let Some(Yaml::Bool(b)) = get(map, key) {
        return Ok(Some(*b));
    }
    let Some(text) = decode_scalar(map, key, true)? else {
        return Ok(None);
    };
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "y" => Ok(Some(true)),
        "false" | "no" | "off" | "n" => Ok(Some(false)),
        _ => Err(ItemError::yaml("Can't decode YAML scalar value").inside("value for", key)),
    }
}

/// A whole number of milliseconds that fits Falco's 32 bits
/// (`capture_duration`).
fn decode_millis(map: &Mapping, key: &str) -> Result<Option<u32>, ItemError> {
    let Some(text) = decode_scalar(map, key, true)? else {
        return Ok(None);
    };
    text.trim()
        .parse::<u32>()
        .map(Some)
        .map_err(|_| ItemError::yaml("Can't decode YAML scalar value").inside("value for", key))
}

/// A sequence of scalars under `key` (`items`, `tags`).
fn decode_seq(map: &Mapping, key: &str, optional: bool) -> Result<Option<Vec<String>>, ItemError> {
    let v = match get(map, key) {
        None if optional => return Ok(None),
        None => {
            return Err(ItemError::yaml(format!(
                "Item has no mapping for key '{key}'"
            )))
        }
        Some(v) => v,
    };
    let Yaml::Sequence(items) = v else {
        return Err(ItemError::yaml("Value is not a sequence").inside("value for", key));
    };
    items
        .iter()
        .map(|item| {
            scalar_string(item).ok_or_else(|| {
                ItemError::yaml("sequence value is not scalar")
                    .inside("list item", "")
                    .inside("value for", key)
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Which keys an `override:` asks to append and which to replace.
#[derive(Default)]
struct Overrides {
    append: Vec<String>,
    replace: Vec<String>,
}

impl Overrides {
    fn is_empty(&self) -> bool {
        self.append.is_empty() && self.replace.is_empty()
    }
}

fn decode_overrides(
    map: &Mapping,
    appendable: &[&str],
    replaceable: &[&str],
) -> Result<Overrides, ItemError> {
    let mut out = Overrides::default();
    let Some(v) = get(map, "override") else {
        return Ok(out);
    };
    let Yaml::Mapping(o) = v else {
        return Err(ItemError::yaml("Value is not a map").inside("overrides", ""));
    };
    for (k, how) in o {
        let key = scalar_string(k).unwrap_or_default();
        let how = scalar_string(how).unwrap_or_default();
        let in_key = |e: ItemError| e.inside("overrides", &key).inside("overrides", "");
        match how.as_str() {
            "append" if appendable.contains(&key.as_str()) => out.append.push(key),
            "append" => {
                return Err(in_key(ItemError::yaml(format!(
                    "Key '{key}' cannot be appended to, use 'replace' instead"
                ))))
            }
            "replace" if replaceable.contains(&key.as_str()) => out.replace.push(key),
            "replace" => {
                return Err(in_key(ItemError::yaml(format!(
                    "Key '{key}' cannot be replaced"
                ))))
            }
            other => {
                let mut allowed = String::new();
                if appendable.contains(&key.as_str()) {
                    allowed.push_str("append ");
                }
                if replaceable.contains(&key.as_str()) {
                    allowed.push_str("replace ");
                }
                return Err(ItemError::yaml(format!(
                    "Invalid override operation for key '{key}': '{other}'. Allowed values are: {allowed}"
                ))
                .inside("value for", &key)
                .inside("overrides", ""));
            }
        }
    }
    Ok(out)
}

/// Falco's words for the forms it still reads but reports.
const WARNING_APPEND: &str = "'append' key is deprecated. Add an 'append' entry (e.g. \
'condition: append') under 'override' instead.";
const WARNING_ENABLED: &str = "The standalone 'enabled' key usage is deprecated. The correct \
approach requires also a 'replace' entry under the 'override' key (i.e. 'enabled: replace').";
const ERROR_OVERRIDE_APPEND: &str = "Keys 'override' and 'append: true' cannot be used \
together. Add an 'append' entry (e.g. 'condition: append') under 'override' instead.";
const ERROR_NO_PREVIOUS_MACRO: &str = "Macro uses 'append' or 'override.condition: append' \
but no macro by that name already exists";
const ERROR_NO_PREVIOUS_LIST: &str =
    "List uses 'append' or 'override.items: append' but no list by that name already exists";
const ERROR_NO_PREVIOUS_RULE_APPEND: &str = "Rule uses 'append' or 'override.<key>: append' \
but no rule by that name already exists";
const ERROR_NO_PREVIOUS_RULE_REPLACE: &str = "An 'override.<key>: replace' to a rule was \
requested but no rule by that name already exists";

/// The pattern list names must match, as libsinsp's parser reads a bare
/// word; names are only warned about, as Falco does.
const LIST_NAME_PATTERN: &str = "([^()\"'[:space:]=,]+)";
const MACRO_NAME_PATTERN: &str = "([a-zA-Z]+[a-zA-Z0-9_]*)";

fn is_list_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || "()\"'=,".contains(c))
}

fn is_macro_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Warns (LOAD_UNKNOWN_KEY) about each key an item kind does not have.
fn warn_unknown_keys(
    map: &Mapping,
    known: &[&str],
    kind: &str,
    name: &str,
    line: Option<usize>,
    ctx: &mut Ctx<'_>,
) {
    for key in map.keys().filter_map(scalar_string) {
        if !known.contains(&key.as_str()) {
            ctx.report(
                Code::UnknownKey,
                kind,
                name,
                line,
                format!("Unknown key '{key}'. The key will be ignored."),
            );
        }
    }
}

fn load_item(defs: &mut Definitions, map: &Mapping, origin: Origin, ctx: &mut Ctx<'_>) -> bool {
    let line = origin.line;
    if let Some(v) = get(map, "required_engine_version") {
        let required = engine_version(map, v, line, ctx);
        if let Some(version) = required {
            // Falco keeps the highest version any file required.
            defs.required_engine_version = defs.required_engine_version.max(version);
            warn_unknown_keys(
                map,
                &["required_engine_version"],
                "required_engine_version",
                "",
                line,
                ctx,
            );
        }
        return required.is_some();
    }
    if let Some(entries) = get(map, "required_plugin_versions") {
        // Checked against the loaded plugins when the rules are used (the
        // k8s audit source is built in); kept here for `-L`.
        defs.required_plugin_versions
            .extend(plugin_requirements(entries));
        return true;
    }
    if get(map, "list").is_some() {
        return load_list(defs, map, origin, ctx);
    }
    if get(map, "macro").is_some() {
        return load_macro(defs, map, origin, ctx);
    }
    if get(map, "rule").is_some() {
        return load_rule(defs, map, origin, ctx);
    }
    ctx.report(
        Code::UnknownItem,
        "rules content item",
        "",
        line,
        "Unknown top level item",
    );
    true
}

/// A semantic version `x.y.z`, as libsinsp's `sinsp_version` reads one.
fn parse_semver(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.trim().splitn(3, '.');
    let mut next = || -> Option<u64> {
        let p = parts.next()?;
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        // The patch may carry a suffix (`0-rc1`); major and minor may not.
        digits.parse().ok()
    };
    let (major, minor, patch) = (next()?, next()?, next()?);
    Some((major, minor, patch))
}

/// The entries of a `required_plugin_versions` item that name a plugin
/// and a version, each with its alternatives, as Falco's collector keeps
/// them; malformed ones are left to the requirement check to refuse.
fn plugin_requirements(entries: &Yaml) -> Vec<Vec<PluginVersion>> {
    let wanted = |item: &Yaml| -> Option<PluginVersion> {
        let map = item.as_mapping()?;
        Some(PluginVersion {
            name: decode_required(map, "name").ok()?,
            version: decode_required(map, "version").ok()?,
        })
    };
    let Some(entries) = entries.as_sequence() else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let mut alternatives = vec![wanted(entry)?];
            if let Some(others) = entry.get("alternatives").and_then(Yaml::as_sequence) {
                alternatives.extend(others.iter().filter_map(wanted));
            }
            Some(alternatives)
        })
        .collect()
}

/// The engine version a `required_engine_version` item asks for, when it
/// is one this engine meets (the item is reported otherwise).
fn engine_version(
    map: &Mapping,
    v: &Yaml,
    line: Option<usize>,
    ctx: &mut Ctx<'_>,
) -> Option<(u64, u64, u64)> {
    let required = match v {
        // A plain number N is Falco's old numbering: engine 0.N.0.
        Yaml::Number(n) if n.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)) => {
            (0, n.as_u64().unwrap_or_default(), 0)
        }
        _ => {
            let text = match decode_required(map, "required_engine_version") {
                Ok(t) => t,
                Err(e) => {
                    report_error(ctx, "required_engine_version", "", line, e);
                    return None;
                }
            };
            match text.parse::<u32>() {
                Ok(n) => (0, u64::from(n), 0),
                Err(_) => match parse_semver(&text) {
                    Some(v) => v,
                    None => {
                        ctx.report(
                            Code::ErrYamlValidate,
                            "required_engine_version",
                            "",
                            line,
                            format!(
                                "Unable to parse engine version '{text}' as a semver string. Expected \"x.y.z\" semver format."
                            ),
                        );
                        return None;
                    }
                },
            }
        }
    };
    let (x, y, z) = ENGINE_VERSION;
    if required.0 != x || required > ENGINE_VERSION {
        let (a, b, c) = required;
        ctx.report(
            Code::ErrValidate,
            "required_engine_version",
            "",
            line,
            format!("Rules require engine version {a}.{b}.{c}, but engine version is {x}.{y}.{z}"),
        );
        return None;
    }
    Some(required)
}

pub(super) const LIST_KEYS: &[&str] = &["list", "items", "append", "override"];

fn load_list(defs: &mut Definitions, map: &Mapping, origin: Origin, ctx: &mut Ctx<'_>) -> bool {
    let line = origin.line;
    let name = match decode_required(map, "list") {
        Ok(n) => n,
        Err(e) => {
            report_error(ctx, "list", "", line, e);
            return false;
        }
    };
    if !is_list_name(&name) {
        ctx.report(
            Code::InvalidListName,
            "list",
            &name,
            line,
            format!(
                "List has an invalid name. List names should match a regular expression: {LIST_NAME_PATTERN}"
            ),
        );
    }
    let outcome = (|| -> Result<(), ItemError> {
        let items = decode_seq(map, "items", false)?.unwrap_or_default();
        let append = decode_bool(map, "append")?.unwrap_or(false);
        if append {
            ctx.report(Code::DeprecatedItem, "list", &name, line, WARNING_APPEND);
        }
        let ov = decode_overrides(map, &["items"], &["items"])?;
        if append && !ov.is_empty() {
            return Err(ItemError::yaml(ERROR_OVERRIDE_APPEND));
        }
        let id = defs.counter;
        if append || !ov.append.is_empty() {
            let Some(existing) = defs.lists.get_mut(&name) else {
                return Err(ItemError::validate(ERROR_NO_PREVIOUS_LIST));
            };
            existing.items.extend(items);
            existing.visibility = id;
        } else {
            let index = defs.lists.get(&name).map_or(id, |l| l.index);
            defs.lists.insert(
                &name,
                ListItem {
                    name: name.clone(),
                    items,
                    origin,
                    visibility: id,
                    index,
                },
            );
        }
        defs.counter += 1;
        Ok(())
    })();
    if let Err(e) = outcome {
        report_error(ctx, "list", &name, line, e);
        return false;
    }
    warn_unknown_keys(map, LIST_KEYS, "list", &name, line, ctx);
    true
}

pub(super) const MACRO_KEYS: &[&str] = &["macro", "condition", "append", "override"];

fn load_macro(defs: &mut Definitions, map: &Mapping, origin: Origin, ctx: &mut Ctx<'_>) -> bool {
    let line = origin.line;
    let name = match decode_required(map, "macro") {
        Ok(n) => n,
        Err(e) => {
            report_error(ctx, "macro", "", line, e);
            return false;
        }
    };
    if !is_macro_name(&name) {
        ctx.report(
            Code::InvalidMacroName,
            "macro",
            &name,
            line,
            format!(
                "Macro has an invalid name. Macro names should match a regular expression: {MACRO_NAME_PATTERN}"
            ),
        );
    }
    let outcome = (|| -> Result<(), ItemError> {
        let condition = decode_required(map, "condition")?;
        let append = decode_bool(map, "append")?.unwrap_or(false);
        if append {
            ctx.report(Code::DeprecatedItem, "macro", &name, line, WARNING_APPEND);
        }
        let ov = decode_overrides(map, &["condition"], &["condition"])?;
        if append && !ov.is_empty() {
            return Err(ItemError::yaml(ERROR_OVERRIDE_APPEND));
        }
        if append || !ov.append.is_empty() {
            let id = defs.counter;
            let Some(existing) = defs.macros.get_mut(&name) else {
                return Err(ItemError::validate(ERROR_NO_PREVIOUS_MACRO));
            };
            existing.condition = format!("{} {}", existing.condition, condition);
            existing.visibility = id;
        } else {
            let id = defs.counter;
            let index = defs.macros.get(&name).map_or(id, |m| m.index);
            defs.macros.insert(
                &name,
                MacroItem {
                    name: name.clone(),
                    condition,
                    origin,
                    visibility: id,
                    index,
                },
            );
        }
        defs.counter += 1;
        Ok(())
    })();
    if let Err(e) = outcome {
        report_error(ctx, "macro", &name, line, e);
        return false;
    }
    warn_unknown_keys(map, MACRO_KEYS, "macro", &name, line, ctx);
    true
}

fn load_rule(defs: &mut Definitions, map: &Mapping, origin: Origin, ctx: &mut Ctx<'_>) -> bool {
    let line = origin.line;
    let name = match decode_required(map, "rule") {
        Ok(n) => n,
        Err(e) => {
            report_error(ctx, "rule", "", line, e);
            return false;
        }
    };
    let mut reader = RuleReader {
        defs,
        map,
        name: &name,
        origin,
        ctx,
    };
    if let Err(e) = reader.read() {
        report_error(reader.ctx, "rule", &name, line, e);
        return false;
    }
    reader.defs.counter += 1;
    warn_unknown_keys(map, RULE_KEYS, "rule", &name, line, reader.ctx);
    true
}

/// Keys a rule's `override:` may append to and may replace.
pub(super) const RULE_APPENDABLE: &[&str] = &["condition", "output", "desc", "tags", "exceptions"];
pub(super) const RULE_REPLACEABLE: &[&str] = &[
    "condition",
    "output",
    "desc",
    "priority",
    "capture",
    "capture_duration",
    "tags",
    "exceptions",
    "enabled",
    "warn_evttypes",
    "skip-if-unknown-filter",
];

/// What a rule item that changes an earlier rule carries.
#[derive(Default)]
struct RuleUpdate {
    condition: Option<String>,
    output: Option<String>,
    desc: Option<String>,
    tags: Option<Vec<String>>,
    exceptions: Option<Vec<Exception>>,
    priority: Option<Priority>,
    enabled: Option<bool>,
    warn_evttypes: Option<bool>,
    skip_if_unknown_filter: Option<bool>,
    capture: Option<bool>,
    capture_duration_ms: Option<u32>,
}

impl RuleUpdate {
    fn has_any_value(&self) -> bool {
        self.condition.is_some()
            || self.output.is_some()
            || self.desc.is_some()
            || self.tags.is_some()
            || self.exceptions.is_some()
            || self.priority.is_some()
            || self.enabled.is_some()
            || self.warn_evttypes.is_some()
            || self.skip_if_unknown_filter.is_some()
            || self.capture.is_some()
            || self.capture_duration_ms.is_some()
    }
}

struct RuleReader<'a, 'c> {
    defs: &'a mut Definitions,
    map: &'a Mapping,
    name: &'a str,
    origin: Origin,
    ctx: &'a mut Ctx<'c>,
}

impl RuleReader<'_, '_> {
    fn warn(&mut self, code: Code, nested: &[(String, String)], message: impl Into<String>) {
        let mut chain = vec![("rule".to_string(), self.name.to_string())];
        chain.extend(nested.iter().cloned());
        let (item_type, item_name) = chain.pop().unwrap_or_default();
        self.ctx.report_in(
            &chain,
            code,
            &item_type,
            &item_name,
            self.origin.line,
            message,
        );
    }

    fn read(&mut self) -> Result<(), ItemError> {
        let map = self.map;
        let append_flag = decode_bool(map, "append")?.unwrap_or(false);
        if append_flag {
            self.warn(Code::DeprecatedItem, &[], WARNING_APPEND);
        }
        let ov = decode_overrides(map, RULE_APPENDABLE, RULE_REPLACEABLE)?;
        if append_flag && !ov.is_empty() {
            return Err(ItemError::yaml(ERROR_OVERRIDE_APPEND));
        }
        if !ov.is_empty() {
            return self.read_overrides(&ov);
        }
        if append_flag {
            let mut update = RuleUpdate::default();
            if get(map, "condition").is_some() {
                update.condition = Some(decode_required(map, "condition")?);
            }
            if get(map, "exceptions").is_some() {
                update.exceptions = Some(self.read_exceptions(true)?);
            }
            return self.append(update);
        }
        let defines = ["condition", "output", "desc", "priority"]
            .iter()
            .any(|k| get(map, k).is_some());
        if !defines {
            let enabled = decode_bool(map, "enabled")?;
            let Some(enabled) = enabled else {
                return Err(ItemError::yaml("Item has no mapping for key 'enabled'"));
            };
            self.warn(Code::DeprecatedItem, &[], WARNING_ENABLED);
            let Some(rule) = self.defs.rules.get_mut(self.name) else {
                return Err(ItemError::validate(
                    "Rule has 'enabled' key but no rule by that name already exists",
                ));
            };
            rule.enabled = enabled;
            return Ok(());
        }
        self.define()
    }

    fn define(&mut self) -> Result<(), ItemError> {
        let map = self.map;
        let condition = decode_required(map, "condition")?;
        let output = decode_required(map, "output")?;
        let desc = decode_required(map, "desc")?;
        let priority = decode_priority(&decode_required(map, "priority")?)?;
        let source = decode_scalar(map, "source", true)?.unwrap_or_else(|| "syscall".into());
        let enabled = decode_bool(map, "enabled")?.unwrap_or(true);
        let capture = decode_bool(map, "capture")?.unwrap_or(false);
        let capture_duration_ms = decode_millis(map, "capture_duration")?.unwrap_or(0);
        let warn_evttypes = decode_bool(map, "warn_evttypes")?.unwrap_or(true);
        let skip_if_unknown_filter = decode_bool(map, "skip-if-unknown-filter")?.unwrap_or(false);
        let tags = decode_seq(map, "tags", true)?.unwrap_or_default();
        let mut exceptions = self.read_exceptions(false)?;
        if let Some(prev) = self.defs.rules.get(self.name) {
            if prev.source != source {
                return Err(ItemError::validate(
                    "Rule has been re-defined with a different source",
                ));
            }
        }
        for ex in &mut exceptions {
            let fields_valid = ex.fields.as_ref().is_some_and(ExceptionEntry::is_valid);
            if !fields_valid {
                return Err(ItemError::validate(
                    "Rule exception item must have fields property with a list of fields",
                )
                .inside("exception", &ex.name));
            }
            check_comps(ex).map_err(|m| ItemError::validate(m).inside("exception", &ex.name))?;
        }
        let rule = RuleItem {
            name: self.name.to_string(),
            desc,
            condition,
            output: output.trim().to_string(),
            priority,
            source,
            tags,
            enabled,
            exceptions,
            warn_evttypes,
            skip_if_unknown_filter,
            capture,
            capture_duration_ms,
            origin: self.origin.clone(),
        };
        self.defs.rules.insert(self.name, rule);
        Ok(())
    }

    fn read_overrides(&mut self, ov: &Overrides) -> Result<(), ItemError> {
        let map = self.map;
        // Keys that are set and could be overridden: each must be named
        // under `override`.
        let mut expected: Vec<&str> = RULE_APPENDABLE
            .iter()
            .chain(RULE_REPLACEABLE)
            .copied()
            .filter(|k| get(map, k).is_some())
            .collect();
        expected.sort_unstable();
        expected.dedup();
        let mut take = |keys: &[String], how: &str, key: &str| -> Result<bool, ItemError> {
            if !keys.iter().any(|k| k == key) {
                return Ok(false);
            }
            let Some(at) = expected.iter().position(|k| *k == key) else {
                return Err(ItemError::yaml(format!(
                    "An {how} override for '{key}' was specified but '{key}' is not defined"
                )));
            };
            expected.remove(at);
            Ok(true)
        };
        if !ov.append.is_empty() {
            let mut update = RuleUpdate::default();
            if take(&ov.append, "append", "condition")? {
                update.condition = Some(decode_required(map, "condition")?);
            }
            if take(&ov.append, "append", "exceptions")? {
                update.exceptions = Some(self.read_exceptions(true)?);
            }
            if take(&ov.append, "append", "output")? {
                update.output = Some(decode_required(map, "output")?);
            }
            if take(&ov.append, "append", "desc")? {
                update.desc = Some(decode_required(map, "desc")?);
            }
            if take(&ov.append, "append", "tags")? {
                update.tags = decode_seq(map, "tags", true)?;
            }
            self.append(update)?;
        }
        if !ov.replace.is_empty() {
            let mut update = RuleUpdate::default();
            if take(&ov.replace, "replace", "condition")? {
                update.condition = Some(decode_required(map, "condition")?);
            }
            if take(&ov.replace, "replace", "exceptions")? {
                update.exceptions = Some(self.read_exceptions(false)?);
            }
            if take(&ov.replace, "replace", "output")? {
                update.output = Some(decode_required(map, "output")?);
            }
            if take(&ov.replace, "replace", "desc")? {
                update.desc = Some(decode_required(map, "desc")?);
            }
            if take(&ov.replace, "replace", "tags")? {
                update.tags = decode_seq(map, "tags", true)?;
            }
            if take(&ov.replace, "replace", "priority")? {
                update.priority = Some(decode_priority(&decode_required(map, "priority")?)?);
            }
            if take(&ov.replace, "replace", "capture")? {
                update.capture = decode_bool(map, "capture")?;
            }
            if take(&ov.replace, "replace", "capture_duration")? {
                decode_required(map, "capture_duration")?;
                update.capture_duration_ms = decode_millis(map, "capture_duration")?;
            }
            if take(&ov.replace, "replace", "enabled")? {
                update.enabled = decode_bool(map, "enabled")?;
            }
            if take(&ov.replace, "replace", "warn_evttypes")? {
                update.warn_evttypes = decode_bool(map, "warn_evttypes")?;
            }
            if take(&ov.replace, "replace", "skip-if-unknown-filter")? {
                update.skip_if_unknown_filter = decode_bool(map, "skip-if-unknown-filter")?;
            }
            self.replace(update)?;
        }
        if let Some(key) = expected.first() {
            return Err(ItemError::yaml(format!(
                "Unexpected key '{key}': no corresponding entry under 'override' is defined."
            ))
            .inside("overrides", key));
        }
        Ok(())
    }

    fn append(&mut self, update: RuleUpdate) -> Result<(), ItemError> {
        let Some(rule) = self.defs.rules.get_mut(self.name) else {
            return Err(ItemError::validate(ERROR_NO_PREVIOUS_RULE_APPEND));
        };
        if !update.has_any_value() {
            return Err(ItemError::validate(
                "Appended rule must have exceptions or condition property",
            ));
        }
        let join = |to: &mut String, more: Option<String>| {
            if let Some(more) = more.filter(|m| !m.is_empty()) {
                to.push(' ');
                to.push_str(&more);
            }
        };
        join(&mut rule.condition, update.condition);
        join(&mut rule.output, update.output);
        join(&mut rule.desc, update.desc);
        for tag in update.tags.unwrap_or_default() {
            if !rule.tags.contains(&tag) {
                rule.tags.push(tag);
            }
        }
        for mut ex in update.exceptions.unwrap_or_default() {
            match rule.exceptions.iter_mut().find(|e| e.name == ex.name) {
                None => {
                    let in_ex = |e: ItemError| e.inside("exception", &ex.name);
                    if !ex.fields.as_ref().is_some_and(ExceptionEntry::is_valid) {
                        return Err(in_ex(ItemError::validate(
                            "Rule exception must have fields property with a list of fields",
                        )));
                    }
                    if ex.values.is_empty() {
                        return Err(in_ex(ItemError::validate(
                            "Rule exception must have values property with a list of values",
                        )));
                    }
                    check_comps(&mut ex)
                        .map_err(|m| ItemError::validate(m).inside("exception", &ex.name))?;
                    rule.exceptions.push(ex);
                }
                Some(prev) => {
                    let in_ex = |e: ItemError| e.inside("exception", &ex.name);
                    if ex.fields.as_ref().is_some_and(ExceptionEntry::is_valid) {
                        return Err(in_ex(ItemError::validate(
                            "Can not append exception fields to existing exception, only values",
                        )));
                    }
                    if ex.comps.as_ref().is_some_and(ExceptionEntry::is_valid) {
                        return Err(in_ex(ItemError::validate(
                            "Can not append exception comps to existing exception, only values",
                        )));
                    }
                    prev.values.extend(ex.values);
                }
            }
        }
        Ok(())
    }

    fn replace(&mut self, update: RuleUpdate) -> Result<(), ItemError> {
        let Some(rule) = self.defs.rules.get_mut(self.name) else {
            return Err(ItemError::validate(ERROR_NO_PREVIOUS_RULE_REPLACE));
        };
        if !update.has_any_value() {
            return Err(ItemError::validate(
                "The rule must have at least one field that can be replaced",
            ));
        }
        if let Some(v) = update.condition {
            rule.condition = v;
        }
        if let Some(v) = update.output {
            rule.output = v.trim().to_string();
        }
        if let Some(v) = update.desc {
            rule.desc = v;
        }
        if let Some(v) = update.tags {
            rule.tags = v;
        }
        if let Some(v) = update.exceptions {
            rule.exceptions = v;
        }
        if let Some(v) = update.priority {
            rule.priority = v;
        }
        if let Some(v) = update.enabled {
            rule.enabled = v;
        }
        if let Some(v) = update.warn_evttypes {
            rule.warn_evttypes = v;
        }
        if let Some(v) = update.skip_if_unknown_filter {
            rule.skip_if_unknown_filter = v;
        }
        if let Some(v) = update.capture {
            rule.capture = v;
        }
        if let Some(v) = update.capture_duration_ms {
            rule.capture_duration_ms = v;
        }
        Ok(())
    }

    /// The rule's `exceptions:` as Falco's reader takes them; `append`
    /// makes `fields` optional (values added to an existing exception).
    fn read_exceptions(&mut self, append: bool) -> Result<Vec<Exception>, ItemError> {
        let mut out: Vec<Exception> = Vec::new();
        let exs = match get(self.map, "exceptions") {
            None | Some(Yaml::Null) => return Ok(out),
            Some(v) => v,
        };
        let Yaml::Sequence(exs) = exs else {
            return Err(
                ItemError::yaml("Rule exceptions must be a sequence").inside("exceptions", "")
            );
        };
        for ex in exs {
            let unnamed = |e: ItemError| e.inside("exception", "").inside("exceptions", "");
            let Yaml::Mapping(ex) = ex else {
                return Err(unnamed(ItemError::yaml("Rule exception must be a mapping")));
            };
            let name = decode_required(ex, "name").map_err(unnamed)?;
            let in_ex = |e: ItemError| e.inside("exception", &name);
            if out.iter().any(|e| e.name == name) {
                self.warn(
                    Code::ExceptionNameNotUnique,
                    &[("exception".into(), name.clone())],
                    format!("Multiple definitions of exception '{name}' in the same rule"),
                );
            }
            let fields = decode_entry_key(ex, "fields", append).map_err(in_ex)?;
            let comps = decode_entry_key(ex, "comps", true).map_err(in_ex)?;
            let mut values = Vec::new();
            match get(ex, "values") {
                Some(Yaml::Sequence(vals)) => {
                    for v in vals {
                        values.push(decode_entry(v).map_err(|e| {
                            in_ex(
                                e.inside("exception value", "")
                                    .inside("exception values", ""),
                            )
                        })?);
                    }
                }
                Some(_) => {
                    return Err(in_ex(
                        ItemError::yaml("Rule exception values must be a sequence")
                            .inside("exception values", ""),
                    ))
                }
                None if append => self.warn(
                    Code::AppendNoValues,
                    &[("exception".into(), name.clone())],
                    "Overriding/appending exception with no values",
                ),
                None => {}
            }
            out.push(Exception {
                name,
                fields,
                comps,
                values,
            });
        }
        Ok(out)
    }
}

/// An exception's `fields`/`comps` entry under `key`.
fn decode_entry_key(
    map: &Mapping,
    key: &str,
    optional: bool,
) -> Result<Option<ExceptionEntry>, ItemError> {
    match get(map, key) {
        None if optional => Ok(None),
        None => Err(ItemError::yaml(format!(
            "Item has no mapping for key '{key}'"
        ))),
        Some(v) => decode_entry(v)
            .map(Some)
            .map_err(|e| e.inside("value for", key)),
    }
}

/// A scalar, or a sequence of entries; anything else reads as an empty
/// (invalid) entry, as in Falco.
fn decode_entry(v: &Yaml) -> Result<ExceptionEntry, ItemError> {
    match v {
        Yaml::Sequence(items) => items
            .iter()
            .map(|item| decode_entry(item).map_err(|e| e.inside("exception", "")))
            .collect::<Result<Vec<_>, _>>()
            .map(ExceptionEntry::List),
        other => match scalar_string(other) {
            Some(s) if s.is_empty() => Err(ItemError::yaml("Value must be non-empty")),
            Some(s) => Ok(ExceptionEntry::Scalar(s)),
            None => Ok(ExceptionEntry::Scalar(String::new())),
        },
    }
}

fn decode_priority(s: &str) -> Result<Priority, ItemError> {
    s.parse::<Priority>()
        .map_err(|_| ItemError::yaml("Invalid priority").inside("rule priority", ""))
}

/// serde_yaml's message without its own position suffix (we give the
/// position relative to the file instead).
/// Falco reads rules with yaml-cpp and reports its parse errors in
/// yaml-cpp's words, prefixed `yaml-cpp: error at line L, column C:`.
/// Where the YAML parser here names the same problem differently, the
/// problem takes yaml-cpp's name; any other keeps the parser's words.
fn yaml_cpp_problem(problem: &str) -> String {
    const SAME_PROBLEM: &[(&str, &str)] = &[
        (
            "mapping values are not allowed in this context",
            "illegal map value",
        ),
        (
            "block sequence entries are not allowed in this context",
            "illegal block entry",
        ),
        (
            "found character that cannot start any token",
            "unknown token",
        ),
        (
            "found a tab character that violates indentation",
            "illegal tab when looking for indentation",
        ),
        (
            "did not find expected ',' or ']'",
            "end of sequence flow not found",
        ),
        (
            "did not find expected ',' or '}'",
            "end of map flow not found",
        ),
        (
            "found unexpected document indicator",
            "illegal document indicator in scalar",
        ),
    ];
    SAME_PROBLEM
        .iter()
        .find(|(ours, _)| problem.starts_with(ours))
        .map_or_else(|| problem.to_string(), |(_, theirs)| (*theirs).to_string())
}

/// The byte offset of the character at 1-based `line` and 0-based
/// `column` (counted in characters, as libyaml counts them) of `text`.
fn char_offset(text: &str, line: usize, column: usize) -> Option<usize> {
    let mut start = 0;
    for (n, l) in text.split('\n').enumerate() {
        if n + 1 == line {
            return l.char_indices().nth(column).map(|(at, _)| start + at);
        }
        start += l.len() + 1;
    }
    None
}

fn yaml_problem(e: &serde_yaml::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}
