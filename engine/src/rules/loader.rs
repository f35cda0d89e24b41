//! Reads rule files: YAML documents of lists, macros and rules, applied in
//! order onto the [`Definitions`] loaded so far.

use serde_yaml::{Mapping, Value as Yaml};

use super::diagnostics::{Code, Diagnostic, LoadResult};
use super::items::{
    Definitions, Exception, ExceptionValue, ListItem, MacroItem, Origin, Priority, RuleItem,
};

/// The rules-engine version Peregrine implements, in Falco's numbering
/// (`required_engine_version: 15` means 0.15.0).
pub const ENGINE_VERSION: (u64, u64, u64) = (0, 57, 0);

/// Keys a rule may carry; others are warned about.
const RULE_KEYS: &[&str] = &[
    "rule",
    "desc",
    "condition",
    "output",
    "priority",
    "source",
    "tags",
    "enabled",
    "exceptions",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "append",
    "override",
    "capture",
    "capture_duration",
];

struct Ctx<'a> {
    file: &'a str,
    result: &'a mut LoadResult,
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
        self.result.push(Diagnostic {
            code,
            message: message.into(),
            item_type: item_type.to_string(),
            item_name: item_name.to_string(),
            file: self.file.to_string(),
            line,
            condition_pos: None,
        });
    }
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
    let mut ctx = Ctx { file, result };
    let mut parsed = Vec::new();
    for (start, doc) in documents(content) {
        match serde_yaml::from_str::<Yaml>(&doc) {
            Ok(v) => parsed.push((start, doc, v)),
            Err(e) => {
                let (line, column) = e
                    .location()
                    .map(|l| (l.line() + start - 1, l.column()))
                    .unwrap_or((start, 0));
                let line_of = Some(line);
                ctx.report(
                    Code::ErrYamlParse,
                    "rules content",
                    "",
                    line_of,
                    format!(
                        "yaml parse error at line {line}, column {column}: {}",
                        yaml_problem(&e)
                    ),
                );
                return;
            }
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
        for (i, item) in items.iter().enumerate() {
            let line = line_of(i);
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

fn get_bool(map: &Mapping, key: &str) -> Result<Option<bool>, String> {
    match get(map, key) {
        None => Ok(None),
        Some(Yaml::Bool(b)) => Ok(Some(*b)),
        Some(Yaml::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
        Some(_) => Err(format!("Can't decode YAML scalar value for key '{key}'")),
    }
}

/// The item's name under `key`: an error when present but empty.
fn item_name(map: &Mapping, key: &str) -> Result<String, String> {
    match get(map, key).and_then(scalar_string) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(format!("Mapping for key '{key}' is empty")),
    }
}

fn string_list(v: &Yaml) -> Option<Vec<String>> {
    match v {
        Yaml::Sequence(items) => items.iter().map(scalar_string).collect(),
        Yaml::Null => Some(Vec::new()),
        _ => None,
    }
}

/// Which keys an `override:` asks to append and which to replace.
struct Overrides {
    append: Vec<String>,
    replace: Vec<String>,
}

fn overrides(map: &Mapping) -> Result<Option<Overrides>, String> {
    let Some(v) = get(map, "override") else {
        return Ok(None);
    };
    let Yaml::Mapping(o) = v else {
        return Err("Override must be a mapping".into());
    };
    let mut out = Overrides {
        append: Vec::new(),
        replace: Vec::new(),
    };
    for (k, how) in o {
        let key = scalar_string(k).ok_or("Override key must be a string")?;
        if get(map, &key).is_none() {
            return Err(format!(
                "An override is defined for '{key}' but the item has no '{key}' key"
            ));
        }
        match how.as_str() {
            Some("append") => out.append.push(key),
            Some("replace") => out.replace.push(key),
            _ => {
                return Err(format!(
                    "Key '{key}' cannot be overridden with '{}'",
                    scalar_string(how).unwrap_or_default()
                ))
            }
        }
    }
    Ok(Some(out))
}

fn load_item(defs: &mut Definitions, map: &Mapping, origin: Origin, ctx: &mut Ctx<'_>) -> bool {
    let line = origin.line;
    if let Some(v) = get(map, "required_engine_version") {
        return engine_version(v, line, ctx);
    }
    if get(map, "required_plugin_versions").is_some() {
        // The k8s audit source is built in; other plugins are not supported
        // and rules needing them fail at compile time on unknown fields.
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
    let key = map
        .keys()
        .next()
        .and_then(scalar_string)
        .unwrap_or_default();
    ctx.report(
        Code::UnknownItem,
        "rules content item",
        &key,
        line,
        "Unknown top level object",
    );
    true
}

fn parse_version(v: &Yaml) -> Option<(u64, u64, u64)> {
    match v {
        Yaml::Number(n) => n.as_u64().map(|n| (0, n, 0)),
        Yaml::String(s) => {
            let parts: Vec<u64> = s
                .split('.')
                .map(|p| p.trim().parse().ok())
                .collect::<Option<_>>()?;
            match parts.as_slice() {
                [major, minor, patch] => Some((*major, *minor, *patch)),
                [n] => Some((0, *n, 0)),
                _ => None,
            }
        }
        _ => None,
    }
}

fn engine_version(v: &Yaml, line: Option<usize>, ctx: &mut Ctx<'_>) -> bool {
    let Some(required) = parse_version(v) else {
        ctx.report(
            Code::ErrYamlValidate,
            "required_engine_version",
            "",
            line,
            "Can't decode YAML scalar value",
        );
        return false;
    };
    if required > ENGINE_VERSION {
        let (a, b, c) = required;
        let (x, y, z) = ENGINE_VERSION;
        ctx.report(
            Code::ErrValidate,
            "required_engine_version",
            "",
            line,
            format!(
                "Rules require engine version {}, but engine version is {x}.{y}.{z}",
                scalar_string(v).unwrap_or_else(|| format!("{a}.{b}.{c}"))
            ),
        );
        return false;
    }
    true
}

fn load_list(defs: &mut Definitions, map: &Mapping, origin: Origin, ctx: &mut Ctx<'_>) -> bool {
    let line = origin.line;
    let name = match item_name(map, "list") {
        Ok(n) => n,
        Err(msg) => {
            ctx.report(Code::ErrYamlValidate, "list", "", line, msg);
            return false;
        }
    };
    let Some(items_value) = get(map, "items") else {
        ctx.report(
            Code::ErrYamlValidate,
            "list",
            &name,
            line,
            "Item has no mapping for key 'items'",
        );
        return false;
    };
    let Some(items) = string_list(items_value) else {
        ctx.report(
            Code::ErrYamlValidate,
            "list",
            &name,
            line,
            "Can't decode YAML sequence value for key 'items'",
        );
        return false;
    };
    let (append, replace) = match append_or_override(map, "list", &name, line, ctx) {
        Some(v) => v,
        None => return false,
    };
    if append || replace {
        let Some(existing) = defs.lists.get_mut(&name) else {
            ctx.report(
                Code::ErrValidate,
                "list",
                &name,
                line,
                "List has 'append' key but no list by that name already exists",
            );
            return false;
        };
        if append {
            existing.items.extend(items);
        } else {
            existing.items = items;
        }
        return true;
    }
    defs.lists.insert(
        &name.clone(),
        ListItem {
            name,
            items,
            origin,
        },
    );
    true
}

/// Reads `append:` and `override:` for items with one overridable body
/// key; returns (append, replace) or None after reporting an error.
fn append_or_override(
    map: &Mapping,
    kind: &str,
    name: &str,
    line: Option<usize>,
    ctx: &mut Ctx<'_>,
) -> Option<(bool, bool)> {
    let append = match get_bool(map, "append") {
        Ok(v) => v.unwrap_or(false),
        Err(msg) => {
            ctx.report(Code::ErrYamlValidate, kind, name, line, msg);
            return None;
        }
    };
    let ov = match overrides(map) {
        Ok(o) => o,
        Err(msg) => {
            ctx.report(Code::ErrYamlValidate, kind, name, line, msg);
            return None;
        }
    };
    if append && ov.is_some() {
        ctx.report(
            Code::ErrValidate,
            kind,
            name,
            line,
            "Keys 'override' and 'append: true' cannot be used together.",
        );
        return None;
    }
    match ov {
        None => {
            if append {
                ctx.report(Code::DeprecatedItem, kind, name, line, DEPRECATED_APPEND);
            }
            Some((append, false))
        }
        Some(o) => Some((!o.append.is_empty(), !o.replace.is_empty())),
    }
}

/// Why `append: true` still works but is reported: `override:` says per key
/// whether it appends or replaces, which `append:` cannot.
const DEPRECATED_APPEND: &str = "The 'append' key is deprecated: name what to extend under \
'override' instead (for example 'override: {condition: append}')";

/// Why a rule item holding only `enabled:` is reported: `override:` makes
/// the intent to change an earlier rule explicit.
const DEPRECATED_ENABLED_ALONE: &str = "Switching a rule on or off with a lone 'enabled' key \
is deprecated: add 'override: {enabled: replace}'";

fn load_macro(defs: &mut Definitions, map: &Mapping, origin: Origin, ctx: &mut Ctx<'_>) -> bool {
    let line = origin.line;
    let name = match item_name(map, "macro") {
        Ok(n) => n,
        Err(msg) => {
            ctx.report(Code::ErrYamlValidate, "macro", "", line, msg);
            return false;
        }
    };
    let Some(condition) = get(map, "condition").and_then(scalar_string) else {
        ctx.report(
            Code::ErrYamlValidate,
            "macro",
            &name,
            line,
            "Item has no mapping for key 'condition'",
        );
        return false;
    };
    let (append, replace) = match append_or_override(map, "macro", &name, line, ctx) {
        Some(v) => v,
        None => return false,
    };
    if append || replace {
        let Some(existing) = defs.macros.get_mut(&name) else {
            ctx.report(
                Code::ErrValidate,
                "macro",
                &name,
                line,
                "Macro has 'append' key but no macro by that name already exists",
            );
            return false;
        };
        if append {
            existing.condition = format!("{} {}", existing.condition, condition);
        } else {
            existing.condition = condition;
        }
        return true;
    }
    defs.macros.insert(
        &name.clone(),
        MacroItem {
            name,
            condition,
            origin,
        },
    );
    true
}

fn load_rule(defs: &mut Definitions, map: &Mapping, origin: Origin, ctx: &mut Ctx<'_>) -> bool {
    let line = origin.line;
    let name = match item_name(map, "rule") {
        Ok(n) => n,
        Err(msg) => {
            ctx.report(Code::ErrYamlValidate, "rule", "", line, msg);
            return false;
        }
    };
    for key in map.keys().filter_map(scalar_string) {
        if !RULE_KEYS.contains(&key.as_str()) {
            ctx.report(
                Code::UnknownItem,
                "rule",
                &name,
                line,
                format!("Unknown key '{key}'"),
            );
        }
    }
    match rule_from_map(defs, map, &name, origin) {
        Ok(deprecation) => {
            if let Some(message) = deprecation {
                ctx.report(Code::DeprecatedItem, "rule", &name, line, message);
            }
            true
        }
        Err((code, msg)) => {
            ctx.report(code, "rule", &name, line, msg);
            false
        }
    }
}

type ItemError = (Code, String);

fn yaml_err(msg: impl Into<String>) -> ItemError {
    (Code::ErrYamlValidate, msg.into())
}

/// Defines, appends to or overrides a rule; on success returns the
/// deprecated form the item used, if any, for a warning.
fn rule_from_map(
    defs: &mut Definitions,
    map: &Mapping,
    name: &str,
    origin: Origin,
) -> Result<Option<&'static str>, ItemError> {
    let append = get_bool(map, "append").map_err(yaml_err)?.unwrap_or(false);
    let ov = overrides(map).map_err(yaml_err)?;
    if append && ov.is_some() {
        return Err((
            Code::ErrValidate,
            "Keys 'override' and 'append: true' cannot be used together.".into(),
        ));
    }
    let str_key = |key: &str| -> Result<Option<String>, ItemError> {
        match get(map, key) {
            None => Ok(None),
            Some(v) => scalar_string(v)
                .map(Some)
                .ok_or_else(|| yaml_err(format!("Can't decode YAML scalar value for key '{key}'"))),
        }
    };
    let exceptions = match get(map, "exceptions") {
        None => None,
        Some(v) => Some(parse_exceptions(v).map_err(yaml_err)?),
    };
    let enabled = get_bool(map, "enabled").map_err(yaml_err)?;

    if append {
        let condition = str_key("condition")?;
        if condition.is_none() && exceptions.is_none() {
            return Err((
                Code::ErrValidate,
                "Appended rule must have exceptions or condition property".into(),
            ));
        }
        let Some(rule) = defs.rules.get_mut(name) else {
            return Err((
                Code::ErrValidate,
                "Rule has 'append' key but no rule by that name already exists".into(),
            ));
        };
        if let Some(c) = condition {
            rule.condition = format!("{} {}", rule.condition, c);
        }
        if let Some(excs) = exceptions {
            merge_exceptions(&mut rule.exceptions, excs)?;
        }
        return Ok(Some(DEPRECATED_APPEND));
    }

    if let Some(ov) = ov {
        let Some(rule) = defs.rules.get_mut(name) else {
            return Err((
                Code::ErrValidate,
                "An override was specified but no rule by that name already exists".into(),
            ));
        };
        for key in &ov.append {
            match key.as_str() {
                "condition" => {
                    rule.condition = format!(
                        "{} {}",
                        rule.condition,
                        str_key("condition")?.unwrap_or_default()
                    )
                }
                "output" => {
                    rule.output =
                        format!("{} {}", rule.output, str_key("output")?.unwrap_or_default())
                }
                "desc" => {
                    rule.desc = format!("{} {}", rule.desc, str_key("desc")?.unwrap_or_default())
                }
                "tags" => rule
                    .tags
                    .extend(get(map, "tags").and_then(string_list).unwrap_or_default()),
                "exceptions" => {
                    merge_exceptions(&mut rule.exceptions, exceptions.clone().unwrap_or_default())?
                }
                other => {
                    return Err((
                        Code::ErrValidate,
                        format!("Key '{other}' cannot be appended to"),
                    ))
                }
            }
        }
        for key in &ov.replace {
            match key.as_str() {
                "condition" => rule.condition = str_key("condition")?.unwrap_or_default(),
                "output" => rule.output = str_key("output")?.unwrap_or_default(),
                "desc" => rule.desc = str_key("desc")?.unwrap_or_default(),
                "priority" => {
                    rule.priority = parse_priority(&str_key("priority")?.unwrap_or_default())?
                }
                "tags" => rule.tags = get(map, "tags").and_then(string_list).unwrap_or_default(),
                "exceptions" => rule.exceptions = exceptions.clone().unwrap_or_default(),
                "enabled" => rule.enabled = enabled.unwrap_or(true),
                "warn_evttypes" => {
                    rule.warn_evttypes = get_bool(map, "warn_evttypes")
                        .map_err(yaml_err)?
                        .unwrap_or(true)
                }
                "skip-if-unknown-filter" => {
                    rule.skip_if_unknown_filter = get_bool(map, "skip-if-unknown-filter")
                        .map_err(yaml_err)?
                        .unwrap_or(false)
                }
                _ => {}
            }
        }
        return Ok(None);
    }

    // `- rule: X` with only `enabled:` switches an existing rule on or off.
    let only_enabled = map
        .keys()
        .filter_map(scalar_string)
        .all(|k| k == "rule" || k == "enabled");
    if only_enabled {
        if let Some(rule) = defs.rules.get_mut(name) {
            rule.enabled = enabled.unwrap_or(true);
            return Ok(Some(DEPRECATED_ENABLED_ALONE));
        }
    }

    let required = |key: &str| -> Result<String, ItemError> {
        match get(map, key) {
            None => Err(yaml_err(format!("Item has no mapping for key '{key}'"))),
            Some(Yaml::Null) => Err(yaml_err(format!("Mapping for key '{key}' is empty"))),
            Some(v) => scalar_string(v)
                .ok_or_else(|| yaml_err(format!("Can't decode YAML scalar value for key '{key}'"))),
        }
    };
    let condition = required("condition")?;
    let output = required("output")?;
    let desc = required("desc")?;
    let priority = parse_priority(&required("priority")?)?;
    let source = str_key("source")?.unwrap_or_else(|| "syscall".to_string());
    let tags = match get(map, "tags") {
        None => Vec::new(),
        Some(v) => string_list(v)
            .ok_or_else(|| yaml_err("Can't decode YAML sequence value for key 'tags'"))?,
    };
    let rule = RuleItem {
        name: name.to_string(),
        desc,
        condition,
        output: output.trim().to_string(),
        priority,
        source,
        tags,
        enabled: enabled.unwrap_or(true),
        exceptions: exceptions.unwrap_or_default(),
        warn_evttypes: get_bool(map, "warn_evttypes")
            .map_err(yaml_err)?
            .unwrap_or(true),
        skip_if_unknown_filter: get_bool(map, "skip-if-unknown-filter")
            .map_err(yaml_err)?
            .unwrap_or(false),
        origin,
    };
    defs.rules.insert(name, rule);
    Ok(None)
}

fn parse_priority(s: &str) -> Result<Priority, ItemError> {
    s.parse::<Priority>()
        .map_err(|_| (Code::ErrYamlValidate, "Invalid priority".to_string()))
}

fn merge_exceptions(existing: &mut Vec<Exception>, new: Vec<Exception>) -> Result<(), ItemError> {
    for exc in new {
        match existing.iter_mut().find(|e| e.name == exc.name) {
            Some(e) => e.values.extend(exc.values),
            None => {
                if exc.fields.is_empty() {
                    return Err((
                        Code::ErrValidate,
                        format!("Rule exception new item {}: must have fields property with a list of fields", exc.name),
                    ));
                }
                existing.push(exc);
            }
        }
    }
    Ok(())
}

fn parse_exceptions(v: &Yaml) -> Result<Vec<Exception>, String> {
    let Yaml::Sequence(items) = v else {
        return Err("Rule exceptions must be a sequence".into());
    };
    let mut out = Vec::new();
    for item in items {
        let Yaml::Mapping(m) = item else {
            return Err("Rule exception must be a mapping".into());
        };
        let name = get(m, "name")
            .and_then(scalar_string)
            .ok_or("Item has no mapping for key 'name'")?;
        let (fields, single_field) = match get(m, "fields") {
            None => (Vec::new(), false),
            Some(Yaml::Sequence(_)) => (
                string_list(get(m, "fields").unwrap_or(&Yaml::Null)).ok_or("Invalid fields")?,
                false,
            ),
            Some(v) => (vec![scalar_string(v).ok_or("Invalid fields")?], true),
        };
        let comps = match get(m, "comps") {
            None => vec![
                if single_field {
                    "in".to_string()
                } else {
                    "=".to_string()
                };
                fields.len()
            ],
            Some(Yaml::Sequence(_)) => {
                string_list(get(m, "comps").unwrap_or(&Yaml::Null)).ok_or("Invalid comps")?
            }
            Some(v) => vec![scalar_string(v).ok_or("Invalid comps")?],
        };
        if !fields.is_empty() && comps.len() != fields.len() {
            return Err(format!(
                "Rule exception item {name}: fields and comps lists must have equal length"
            ));
        }
        let mut values = Vec::new();
        if let Some(Yaml::Sequence(vals)) = get(m, "values") {
            for val in vals {
                if single_field {
                    values.push(vec![exception_value(val).ok_or("Invalid exception value")?]);
                    continue;
                }
                let Yaml::Sequence(tuple) = val else {
                    return Err(format!(
                        "Rule exception item {name}: values must be a list of lists"
                    ));
                };
                let tuple: Vec<ExceptionValue> = tuple
                    .iter()
                    .map(exception_value)
                    .collect::<Option<_>>()
                    .ok_or("Invalid exception value")?;
                if !fields.is_empty() && tuple.len() != fields.len() {
                    return Err(format!(
                        "Rule exception item {name}: value tuple has {} values but there are {} fields",
                        tuple.len(),
                        fields.len()
                    ));
                }
                values.push(tuple);
            }
        }
        out.push(Exception {
            name,
            fields,
            single_field,
            comps,
            values,
        });
    }
    Ok(out)
}

fn exception_value(v: &Yaml) -> Option<ExceptionValue> {
    match v {
        Yaml::Sequence(_) => string_list(v).map(ExceptionValue::List),
        other => scalar_string(other).map(ExceptionValue::Scalar),
    }
}

/// serde_yaml's message without its own position suffix (we give the
/// position relative to the file instead).
fn yaml_problem(e: &serde_yaml::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}
