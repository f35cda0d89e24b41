//! Which rules run: loading files and folders (or the built-in default
//! rules), compiling them for each event source, the selection flags
//! (-D, -T, -t, priority), and the reports of -V, -L and -l (`describe`:
//! their JSON form).

mod describe;
pub use describe::{describe_json, DescribeJsonError};

use std::path::PathBuf;
use std::sync::Arc;

use peregrine_engine::field::FieldSource;
use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::rules::expand::ParsedMacros;
use peregrine_engine::rules::{
    Code, CompiledRule, CompiledRules, Definitions, Diagnostic, ExtraOutputField, LoadResult,
    Location, Mark, Matching, OutputAppend, RulesLoader, Usage,
};
use peregrine_engine::syscall_fields::SyscallFields;
use serde_json::{json, Value as Json};

use crate::alert::Priority;
use crate::config::{Config, RuleMatching, RuleSelection};
use crate::sources::plugins::fields::PluginFields;

/// Peregrine's default rules, built into the binary so that a plain
/// `peregrine` always runs with them, wherever it is installed.
const DEFAULT_RULES: &[(&str, &str)] = &[(
    "peregrine_rules.yaml",
    include_str!("../../../rules/peregrine_rules.yaml"),
)];

/// Where rules come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesInput {
    File(PathBuf),
    BuiltIn {
        name: &'static str,
        text: &'static str,
    },
    /// A file's text as read at one moment (a reload's snapshot).
    Text {
        name: String,
        text: String,
    },
}

impl RulesInput {
    pub fn name(&self) -> String {
        match self {
            RulesInput::File(path) => path.display().to_string(),
            RulesInput::BuiltIn { name, .. } => format!("(built-in) {name}"),
            RulesInput::Text { name, .. } => name.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read rules folder {path}: {source}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rules file {0} does not exist")]
    Missing(PathBuf),
}

/// The built-in default rules.
pub fn built_in() -> Vec<RulesInput> {
    DEFAULT_RULES
        .iter()
        .map(|(name, text)| RulesInput::BuiltIn { name, text })
        .collect()
}

/// The files among `inputs` (not the built-in rules nor a snapshot).
pub fn input_files(inputs: &[RulesInput]) -> Vec<PathBuf> {
    inputs
        .iter()
        .filter_map(|input| match input {
            RulesInput::File(path) => Some(path.clone()),
            _ => None,
        })
        .collect()
}

/// Expands the paths given (files, or folders whose `*.yaml`/`*.yml`
/// files load in name order, as Falco's rules.d does).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<RulesInput>, RulesError> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| RulesError::Folder {
                path: path.clone(),
                source,
            })?;
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            files.sort();
            inputs.extend(files.into_iter().map(RulesInput::File));
        } else if path.exists() {
            inputs.push(RulesInput::File(path.clone()));
        } else {
            return Err(RulesError::Missing(path.clone()));
        }
    }
    Ok(inputs)
}

/// The rules a run loads: the command line's `-r` paths replace the
/// config's `rules_file` list, whose missing entries are skipped (Falco's
/// default list names files that are often absent); with neither, the
/// built-in rules. At startup and at each reload alike.
pub fn chosen_inputs(
    command_line: &[PathBuf],
    rules_file: &[PathBuf],
) -> Result<Vec<RulesInput>, RulesError> {
    if !command_line.is_empty() {
        return expand(command_line);
    }
    let present: Vec<PathBuf> = rules_file.iter().filter(|p| p.exists()).cloned().collect();
    if present.is_empty() {
        Ok(built_in())
    } else {
        expand(&present)
    }
}

/// Rules loaded and compiled for every source.
pub struct Ruleset {
    pub syscall: CompiledRules<SyscallFields>,
    pub k8s_audit: CompiledRules<K8sAuditSource>,
    pub results: Vec<LoadResult>,
    /// The lists, macros and rules as loaded, for `-L`/`-l` in JSON.
    pub definitions: Definitions,
    /// The macros parsed and checked by the load, for conditions compiled
    /// later against the same definitions (the console's try box).
    pub macros: Arc<ParsedMacros>,
    /// The macros and lists the load found used, for `-L`.
    pub usage: Usage,
    /// The rules of each plugin event source, in plugin load order.
    pub plugin_sources: Vec<CompiledRules<PluginFields>>,
    /// Rules whose source nothing provides: Falco skips them with a
    /// warning, and so does Peregrine.
    pub unknown_sources: Vec<String>,
    /// A condition libsinsp's event code search refuses, in its words:
    /// Falco stops with a runtime error before any report or event.
    pub fatal: Option<String>,
}

impl Ruleset {
    pub fn has_errors(&self) -> bool {
        self.results.iter().any(|r| !r.successful())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.results.iter().flat_map(|r| r.warnings.iter())
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.results.iter().flat_map(|r| r.errors.iter())
    }

    /// Every compiled rule of every source, in load order per source.
    pub fn rules(&self) -> impl Iterator<Item = &CompiledRule> {
        self.syscall
            .rules()
            .iter()
            .chain(self.k8s_audit.rules().iter())
            .chain(self.plugin_sources.iter().flat_map(|s| s.rules().iter()))
    }
}

/// The stack of the thread rules load and compile on. The same at start,
/// for -V and on every SIGHUP (a reload thread's 2 MiB once let a file
/// that -V accepted abort the daemon); with the engine's nesting limits a
/// condition needs far less, so this is the margin, not the defence.
pub const LOADER_STACK_BYTES: usize = 64 << 20;

/// The fields Falco's container plugin marks as suggested output, in its
/// order: `append_output` with `suggested_output` appends each to syscall
/// rules' outputs as `container_id=%container.id`.
pub const CONTAINER_SUGGESTED_FIELDS: [&str; 6] = [
    "container.id",
    "container.name",
    "container.image.repository",
    "container.image.tag",
    "k8s.pod.name",
    "k8s.ns.name",
];

/// What the outputs of the loaded rules get besides their own text: the
/// `-p` text, and the config's `append_output` and `static_fields`.
#[derive(Debug, Clone, Default)]
pub struct Shaping {
    pub print: Option<String>,
    pub appends: Vec<OutputAppend>,
    pub static_fields: Vec<(String, String)>,
    pub buffer_format_base64: bool,
}

impl Shaping {
    /// `-p`'s text (see [`output_extra`]) with what `config` adds.
    pub fn new(print: Option<String>, config: &Config) -> Shaping {
        let static_fields: Vec<(String, String)> = config
            .static_fields
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let mut appends = Vec::new();
        for item in &config.append_output {
            let matching = OutputAppend {
                rule: item.matching.rule.clone(),
                source: item.matching.source.clone(),
                tags: item.matching.tags.clone(),
                ..OutputAppend::default()
            };
            if !item.extra_output.is_empty() || !item.extra_fields.is_empty() {
                appends.push(OutputAppend {
                    text: item.extra_output.clone(),
                    fields: item
                        .extra_fields
                        .iter()
                        .map(|f| ExtraOutputField {
                            name: f.name.clone(),
                            format: f.format.clone(),
                            raw: f.raw,
                        })
                        .collect(),
                    ..matching.clone()
                });
            }
            // Falco's suggested fields: the container plugin's, and the
            // static fields (`static_NAME=VALUE` once the loader has put
            // each value in place).
            if item.suggested_output {
                // The static fields, as `%static.NAME` tokens, which the
                // loader replaces by their values; Falco lists them before
                // the container plugin's fields.
                for (name, _) in &static_fields {
                    appends.push(OutputAppend {
                        text: format!("static_{}=%static.{name}", name.replace('.', "_")),
                        ..matching.clone()
                    });
                }
                // The container plugin's suggested fields, on syscall
                // rules: formats appended to the output, as Falco adds them
                // (the alert's output fields come from the text).
                if matching.source.as_deref().map_or(true, |s| s == "syscall") {
                    for field in CONTAINER_SUGGESTED_FIELDS {
                        appends.push(OutputAppend {
                            text: format!("{}=%{field}", field.replace('.', "_")),
                            source: Some("syscall".into()),
                            ..matching.clone()
                        });
                    }
                }
            }
        }
        Shaping {
            print,
            appends,
            static_fields,
            buffer_format_base64: config.buffer_format_base64,
        }
    }
}

/// Loads `inputs` in order and compiles them for each source. Load errors
/// stay in the results; nothing here decides to exit.
pub fn load(inputs: &[RulesInput], output_extra: Option<String>) -> Ruleset {
    load_shaped(
        inputs,
        &Shaping {
            print: output_extra,
            ..Shaping::default()
        },
    )
}

/// [`load`], with the outputs shaped as the config says, on a thread of
/// [`LOADER_STACK_BYTES`].
pub fn load_shaped(inputs: &[RulesInput], shaping: &Shaping) -> Ruleset {
    load_with_plugins(inputs, shaping, Vec::new())
}

/// [`load_shaped`], compiling rules also for the plugin event sources
/// whose fields are given.
pub fn load_with_plugins(
    inputs: &[RulesInput],
    shaping: &Shaping,
    plugin_fields: Vec<PluginFields>,
) -> Ruleset {
    let owned = inputs.to_vec();
    let shaped = shaping.clone();
    let spawned = std::thread::Builder::new()
        .name("rules-loader".into())
        .stack_size(LOADER_STACK_BYTES)
        .spawn(move || load_on_this_thread(&owned, &shaped, plugin_fields));
    match spawned {
        Ok(thread) => loaded_or_refused(thread.join(), inputs, shaping),
        Err(e) => {
            crate::log::message(&format!(
                "cannot start the rules loader thread ({e}); loading on this one"
            ));
            load_on_this_thread(inputs, shaping, Vec::new())
        }
    }
}

/// The loader thread's ruleset; when it panicked, an empty one refused
/// with what the panic said. A bug of the loader on some input must not
/// end the agent (a reload keeps the rules it runs): the load fails,
/// naming the files, like any other refusal.
fn loaded_or_refused(
    joined: std::thread::Result<Ruleset>,
    inputs: &[RulesInput],
    shaping: &Shaping,
) -> Ruleset {
    let panic = match joined {
        Ok(ruleset) => return ruleset,
        Err(panic) => panic,
    };
    let mut refused = load_on_this_thread(&[], shaping, Vec::new());
    let names: Vec<String> = inputs.iter().map(RulesInput::name).collect();
    refused.fatal = Some(format!(
        "the rules loader failed on {}: {}",
        names.join(", "),
        panic_message(panic.as_ref())
    ));
    refused
}

/// What a panic said, when it said it as text.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("an internal error")
}

fn load_on_this_thread(
    inputs: &[RulesInput],
    shaping: &Shaping,
    plugin_fields: Vec<PluginFields>,
) -> Ruleset {
    let mut loader = RulesLoader::new();
    loader.set_output_extra(shaping.print.clone());
    loader.set_output_appends(shaping.appends.clone());
    loader.set_static_fields(shaping.static_fields.clone());
    loader.set_buffer_format_base64(shaping.buffer_format_base64);
    for input in inputs {
        match input {
            RulesInput::File(path) => {
                loader.load_file(path);
            }
            RulesInput::BuiltIn { name, text } => {
                loader.load_str(name, text);
            }
            RulesInput::Text { name, text } => {
                loader.load_str(name, text);
            }
        }
    }
    // Every rule set shares the table the background resolver fills.
    let mut syscall_fields = SyscallFields::with_domain_names(crate::dns::shared_names().clone());
    if let Some(extension) = crate::sources::plugins::syscall::installed() {
        syscall_fields = syscall_fields.with_extension(extension);
    }
    syscall_fields =
        syscall_fields.with_async_events(&crate::sources::plugins::syscall::async_names());
    let syscall = loader.compile(syscall_fields);
    let k8s_audit = loader.compile(K8sAuditSource::new());
    let mut known: Vec<&str> = vec!["syscall", "k8s_audit"];
    let plugin_sources: Vec<CompiledRules<PluginFields>> = plugin_fields
        .into_iter()
        .map(|fields| loader.compile(fields))
        .collect();
    known.extend(plugin_sources.iter().map(|s| s.source().name()));
    let definitions = loader.definitions().clone();
    let unknown_sources = definitions
        .rules
        .iter()
        .filter(|rule| !known.contains(&rule.source.as_str()))
        .map(|rule| {
            // As the load's other warnings are logged, with Falco's code.
            let line = rule
                .origin
                .line
                .map(|l| format!(":{l}"))
                .unwrap_or_default();
            format!(
                "{}{line}: {} rule '{}': Unknown source {}, skipping",
                rule.origin.file,
                Code::UnknownSource,
                rule.name,
                rule.source
            )
        })
        .collect();
    Ruleset {
        syscall,
        k8s_audit,
        fatal: loader.fatal().map(str::to_string),
        results: loader.results().to_vec(),
        usage: loader.usage().clone(),
        macros: Arc::new(loader.take_macros()),
        definitions,
        plugin_sources,
        unknown_sources,
    }
}

/// What `-p` appends to outputs, as Falco 0.41 and later: a format is
/// appended as it is; `c`/`container` and `k`/`kubernetes` add nothing, as
/// the container plugin's suggested fields (`append_output` with
/// `suggested_output: true`) name the container and the pod.
pub fn output_extra(print: Option<&str>) -> Option<String> {
    match print? {
        "c" | "container" | "k" | "kubernetes" => None,
        other => Some(other.to_string()),
    }
}

/// The command-line and config choices of which loaded rules run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Rules less severe than this are disabled (config `priority`).
    pub min_priority: Option<Priority>,
    /// -D: disable rules whose name contains any of these.
    pub disabled_names: Vec<String>,
    /// -T: disable rules with any of these tags.
    pub disabled_tags: Vec<String>,
    /// -t: only rules with one of these tags run.
    pub run_tags: Vec<String>,
    /// The config's `rules:` list, applied in order after the flags.
    pub rules: Vec<RuleSelection>,
    /// The config's `rule_matching`.
    pub matching: RuleMatching,
}

impl Selection {
    /// This selection with what `config` says (`priority`, `rules`,
    /// `rule_matching`); the command line's flags stay.
    pub fn with_config(&self, config: &Config) -> Selection {
        Selection {
            min_priority: Some(config.priority),
            rules: config.rules.clone(),
            matching: config.rule_matching,
            ..self.clone()
        }
    }

    /// Whether the -D/-T/-t flags keep `rule` enabled.
    fn flags_keep(&self, rule: &CompiledRule) -> bool {
        if self
            .disabled_names
            .iter()
            .any(|n| rule.name.contains(n.as_str()))
        {
            return false;
        }
        if rule.tags.iter().any(|t| self.disabled_tags.contains(t)) {
            return false;
        }
        if !self.run_tags.is_empty() && !rule.tags.iter().any(|t| self.run_tags.contains(t)) {
            return false;
        }
        true
    }

    /// Enables and disables rules as Falco does: the flags first, then
    /// each `rules:` item in order (a later item overrides an earlier one
    /// for the rules both name), and `priority` last: a rule less severe
    /// than it never runs, whatever enabled it.
    pub fn apply<S: FieldSource>(&self, rules: &mut CompiledRules<S>) {
        rules.set_enabled(false, |rule| rule.enabled && !self.flags_keep(rule));
        for item in &self.rules {
            if let Some(pattern) = &item.rule {
                rules.set_enabled(item.enable, |rule| matches_wildcard(pattern, &rule.name));
            }
            if let Some(tag) = &item.tag {
                rules.set_enabled(item.enable, |rule| rule.tags.contains(tag));
            }
        }
        if let Some(min) = self.min_priority {
            rules.set_enabled(false, |rule| rule.enabled && rule.priority > min);
        }
        rules.matching = match self.matching {
            RuleMatching::First => Matching::First,
            RuleMatching::All => Matching::All,
        };
    }
}

/// Falco's rule-name wildcard: `*` matches any run of characters, all
/// else matches itself. As Falco's matcher, each literal part after a `*`
/// is matched at its first occurrence (no backtracking), so that a pattern
/// selects exactly the rules it selects in Falco.
pub fn matches_wildcard(pattern: &str, name: &str) -> bool {
    let Some(star) = pattern.find('*') else {
        return pattern == name;
    };
    if star > 0 {
        return name.get(..star) == Some(&pattern[..star])
            && matches_wildcard(&pattern[star..], &name[star..]);
    }
    let rest = pattern.trim_start_matches('*');
    if rest.is_empty() {
        return true;
    }
    let literal = &rest[..rest.find('*').unwrap_or(rest.len())];
    match name.find(literal) {
        Some(at) => matches_wildcard(&rest[literal.len()..], &name[at + literal.len()..]),
        None => false,
    }
}

/// Falco's `-V` answer as JSON: `{"falco_load_results": [...]}`. Each
/// error and warning carries its context as Falco's does: the rules
/// content (the file), the enclosing items, then the item itself.
pub fn validation_json(results: &[LoadResult]) -> Json {
    let diagnostics = |list: &[Diagnostic], content: Option<&str>| -> Json {
        list.iter()
            .map(|d| {
                let locations: Vec<Json> = locations(d)
                    .iter()
                    .map(|loc| {
                        json!({
                            "item_type": loc.item_type,
                            "item_name": loc.item_name,
                            "position": {
                                "name": loc.name,
                                "line": loc.mark.line,
                                "column": loc.mark.column,
                                "offset": loc.mark.offset,
                            },
                        })
                    })
                    .collect();
                let mut entry = json!({
                    "code": d.code.as_str(),
                    "codedesc": d.code.description(),
                    "message": d.message,
                    "context": {
                        "locations": locations,
                        "snippet": snippet(d, content),
                    },
                });
                if let Some(field) = d.code.deprecated_field() {
                    entry["deprecated_field"] = Json::from(field);
                }
                entry
            })
            .collect()
    };
    let files: Vec<Json> = results
        .iter()
        .map(|r| {
            let mut file = json!({
                "name": r.name,
                "successful": r.successful(),
                "errors": diagnostics(&r.errors, r.content.as_deref()),
                "warnings": diagnostics(&r.warnings, r.content.as_deref()),
            });
            if let Some(valid) = r.schema_valid() {
                file["schema_valid"] = Json::Bool(valid);
                file["schema_warnings"] = if valid {
                    json!([])
                } else {
                    json!(r.schema_status)
                };
            }
            file
        })
        .collect();
    let mut results = json!({ "falco_load_results": files });
    sanitize_strings(&mut results);
    results
}

/// Falco writes its JSON with invalid UTF-8 replaced (nlohmann's
/// `replace` handler): each invalid sequence of a name, snippet or
/// message is one U+FFFD.
pub fn sanitize_strings(value: &mut Json) {
    match value {
        Json::String(s) => {
            if let std::borrow::Cow::Owned(clean) = peregrine_engine::text::sanitize(s) {
                *s = clean;
            }
        }
        Json::Array(items) => items.iter_mut().for_each(sanitize_strings),
        Json::Object(map) => map.values_mut().for_each(sanitize_strings),
        Json::Null | Json::Bool(_) | Json::Number(_) => {}
    }
}

/// A diagnostic's context chain, from the rules content down to the item,
/// with the marks Falco gives (0-based lines and columns). Where the
/// engine could not place the item, each step is put on its line.
fn locations(d: &Diagnostic) -> Vec<Location> {
    if !d.locations.is_empty() {
        return d.locations.clone();
    }
    let mark = Mark {
        line: d.line.map_or(0, |l| l.saturating_sub(1)),
        ..Mark::default()
    };
    let mut out = vec![Location::content(&d.file)];
    if d.item_type != "rules content" {
        out.extend(
            d.context
                .iter()
                .map(|(t, n)| Location::new(t, n, &d.file, mark)),
        );
        out.push(Location::new(&d.item_type, &d.item_name, &d.file, mark));
    }
    out
}

/// Falco's snippet: the line holding the last step's mark, cut to 80
/// characters on each side of it (an end that reaches 80 shows `...`,
/// as Falco's does even where the line ends there), then a marker
/// under the mark. The text is the loaded content (never the file read
/// again) or, for a condition expression, the condition, where the mark's
/// offset is taken as Falco takes it (past the end means its last line).
fn snippet(d: &Diagnostic, content: Option<&str>) -> String {
    const HALF: usize = 80;
    let chain = locations(d);
    let Some(last) = chain.last() else {
        return String::new();
    };
    let text = match (&last.condition, content) {
        (Some(condition), _) => condition.as_str(),
        (None, Some(content)) => content,
        (None, None) => return format!("<No context for file + {}>\n", last.name),
    };
    // Marks count the file's bytes (see marks_in_raw_bytes); the line is
    // shown as those bytes, which -V's text prints raw and its JSON with
    // U+FFFD for what is not UTF-8.
    let raw = peregrine_engine::text::raw_bytes(text);
    let bytes: &[u8] = &raw;
    // The mark, moved back off the end and off a line break.
    let mut pos = last.mark.offset.min(bytes.len());
    while pos > 0 && (pos == bytes.len() || bytes[pos] == b'\n') {
        pos -= 1;
    }
    if bytes.is_empty() || bytes[pos] == b'\n' {
        return "<No context available>\n".into();
    }
    let line_start = bytes[..pos]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line_end = bytes[pos..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| pos + i);
    let from = line_start.max(pos.saturating_sub(HALF));
    let to = line_end.min(pos + HALF + 1);
    let mut line = peregrine_engine::text::decode(&bytes[from..to]).into_owned();
    if pos - from >= HALF && line.is_char_boundary(3) {
        line.replace_range(..3, "...");
    }
    if to - 1 - pos >= HALF && line.len() >= 3 && line.is_char_boundary(line.len() - 3) {
        let at = line.len() - 3;
        line.replace_range(at.., "...");
    }
    format!("{line}\n{}^\n", " ".repeat(pos - from))
}

/// The text form of `-V` for one file, as Falco prints it: the verdict,
/// then (for a file with errors) each error and warning with its context
/// chain, the line it is on and `CODE (title): message`. A file that is
/// only warned about reads `Ok, with warnings`; its details go to stderr.
pub fn validation_text(result: &LoadResult) -> String {
    let mut text = String::new();
    if result.successful() && !result.warnings.is_empty() {
        text.push_str(&format!("{}: Ok, with warnings\n", result.name));
        crate::log::block(&validation_details(result, "Ok, with warnings"));
        return text;
    }
    let verdict = if result.successful() { "Ok" } else { "Invalid" };
    text.push_str(&validation_details(result, verdict));
    // Falco ends a report with blocks (errors, schema warnings) with a
    // blank line: its details end with a newline and it prints one more.
    if !result.successful() || result.schema_valid() == Some(false) {
        text.push('\n');
    }
    text
}

fn validation_details(result: &LoadResult, verdict: &str) -> String {
    let mut text = format!("{}: {verdict}\n", result.name);
    // Each block after the first is set off by a blank line.
    let mut blocks = 0;
    if result.schema_valid() == Some(false) {
        text.push_str(&format!(
            "{} Schema warnings:\n",
            result.schema_status.len()
        ));
        for status in &result.schema_status {
            text.push_str(&format!("------\n{status}\n"));
        }
        text.push_str("------\n");
        blocks += 1;
    }
    for (title, list) in [("Errors", &result.errors), ("Warnings", &result.warnings)] {
        if list.is_empty() {
            continue;
        }
        if blocks > 0 {
            text.push('\n');
        }
        blocks += 1;
        text.push_str(&format!("{} {title}:\n", list.len()));
        for d in list.iter() {
            for (i, loc) in locations(d).iter().enumerate() {
                text.push_str(if i == 0 { "In " } else { "    " });
                text.push_str(&loc.item_type);
                if !loc.item_name.is_empty() {
                    text.push_str(&format!(" '{}'", loc.item_name));
                }
                text.push_str(&format!(
                    ": ({}:{}:{})\n",
                    loc.name, loc.mark.line, loc.mark.column
                ));
            }
            text.push_str("------\n");
            text.push_str(&snippet(d, result.content.as_deref()));
            text.push_str("------\n");
            text.push_str(&format!(
                "{} ({}): {}",
                d.code.as_str(),
                d.code.headline(),
                d.message
            ));
            // The position in the condition is in the locations above
            // (`condition expression`), as Falco gives it: not repeated.
            text.push('\n');
        }
    }
    text
}

/// `-L` (or `-l RULE` for one rule) as Falco prints it without
/// `json_output`: a two-column table of each rule's name and description
/// (wrapped, see [`wrap_description`]), a blank line after each rule.
/// None when `only` names no loaded rule.
pub fn list_rules(ruleset: &Ruleset, only: Option<&str>) -> Option<String> {
    let mut text = String::new();
    two_columns(&mut text, "Rule", "Description");
    two_columns(&mut text, "----", "-----------");
    let mut listed = 0;
    for rule in ruleset
        .rules()
        .filter(|r| only.map_or(true, |name| r.name == name))
    {
        let description = format!("{}\n", wrap_description(&rule.desc));
        two_columns(&mut text, &rule.name, &description);
        listed += 1;
    }
    (only.is_none() || listed > 0).then_some(text)
}

/// One line of Falco's table: the left column padded to 50 bytes, the
/// whole line cut at 4,094 bytes (its buffer).
fn two_columns(out: &mut String, left: &str, right: &str) {
    const LINE_MAX: usize = 4094;
    let raw_len = |text: &str| peregrine_engine::text::raw_bytes(text).len();
    let mut line = format!(
        "{left}{} {right}",
        " ".repeat(50usize.saturating_sub(raw_len(left)))
    );
    if raw_len(&line) > LINE_MAX {
        let bytes = peregrine_engine::text::raw_bytes(&line).into_owned();
        line = peregrine_engine::text::decode(&bytes[..LINE_MAX]).into_owned();
    }
    out.push_str(&line);
    out.push('\n');
}

/// Falco's wrapping of a description beside the rule names: its words
/// (split at blanks, tabs and line breaks), each followed by a space, a
/// new line indented by 51 spaces once a line would pass 59 bytes.
fn wrap_description(text: &str) -> String {
    const INDENT: usize = 51;
    const WIDTH: usize = 110 - INDENT;
    let mut out = String::new();
    let mut len = 0;
    let is_blank = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}');
    for word in text.split(is_blank).filter(|w| !w.is_empty()) {
        let word_len = peregrine_engine::text::raw_bytes(word).len();
        if len + word_len < WIDTH {
            len += word_len + 1;
        } else {
            out.push('\n');
            out.push_str(&" ".repeat(INDENT));
            len = word_len + 1;
        }
        out.push_str(word);
        out.push(' ');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loader_that_panics_refuses_the_load_instead() {
        let inputs = [RulesInput::File("/etc/x/rules.yaml".into())];
        let joined = std::thread::spawn(|| -> Ruleset { panic!("index out of bounds") }).join();
        let refused = loaded_or_refused(joined, &inputs, &Shaping::default());
        let fatal = refused.fatal.expect("refused");
        assert_eq!(
            fatal,
            "the rules loader failed on /etc/x/rules.yaml: index out of bounds"
        );
        assert!(refused.syscall.rules().is_empty());
        let joined = std::thread::spawn(|| -> Ruleset { panic!("{} of {}", 3, 2) }).join();
        let fatal = loaded_or_refused(joined, &inputs, &Shaping::default()).fatal;
        assert!(fatal.unwrap().ends_with(": 3 of 2"));
    }

    const RULES: &str = r#"
- rule: Netcat Remote Code Execution
  desc: a
  condition: evt.type = open
  output: nc
  priority: WARNING
  tags: [network, mitre_execution]
- rule: Read sensitive file untrusted
  desc: b
  condition: evt.type = open
  output: read
  priority: WARNING
  tags: [filesystem, mitre_credential_access]
- rule: Read sensitive file trusted after startup
  desc: c
  condition: evt.type = open
  output: read2
  priority: NOTICE
  enabled: false
  tags: [filesystem]
- rule: Debug noise
  desc: d
  condition: evt.type = open
  output: noise
  priority: DEBUG
  tags: [network]
"#;

    fn enabled_after(selection: &Selection) -> Vec<String> {
        let mut ruleset = load(
            &[RulesInput::Text {
                name: "r.yaml".into(),
                text: RULES.into(),
            }],
            None,
        );
        selection.apply(&mut ruleset.syscall);
        ruleset
            .syscall
            .rules()
            .iter()
            .filter(|r| r.enabled)
            .map(|r| r.name.clone())
            .collect()
    }

    fn rule(enable: bool, rule: Option<&str>, tag: Option<&str>) -> RuleSelection {
        RuleSelection {
            enable,
            rule: rule.map(str::to_string),
            tag: tag.map(str::to_string),
        }
    }

    #[test]
    fn wildcards_match_as_falcos() {
        assert!(matches_wildcard("*", "anything"));
        assert!(matches_wildcard("**", ""));
        assert!(matches_wildcard(
            "Read sensitive file*",
            "Read sensitive file untrusted"
        ));
        assert!(!matches_wildcard(
            "Read sensitive file",
            "Read sensitive file untrusted"
        ));
        assert!(matches_wildcard(
            "*sensitive*",
            "Read sensitive file untrusted"
        ));
        assert!(matches_wildcard(
            "Read*untrusted",
            "Read sensitive file untrusted"
        ));
        assert!(!matches_wildcard(
            "Read*trusted*x",
            "Read sensitive file untrusted"
        ));
        // Falco matches each literal at its first occurrence, without
        // trying later ones: "*ab" does not match "abab" past the first.
        assert!(!matches_wildcard("*ab*c", "ab-x-abc-ab"));
        assert!(matches_wildcard("*ab*c", "ab-x-c"));
    }

    #[test]
    fn rules_items_apply_in_order_then_priority() {
        // Only the rules with a tag: disable all, enable by tag.
        let selection = Selection {
            rules: vec![
                rule(false, Some("*"), None),
                rule(true, None, Some("filesystem")),
            ],
            ..Selection::default()
        };
        // `enabled: false` in the file is overridden by an enable.
        assert_eq!(
            enabled_after(&selection),
            vec![
                "Read sensitive file untrusted",
                "Read sensitive file trusted after startup"
            ]
        );
        // A later item wins over an earlier one; priority comes last.
        let selection = Selection {
            min_priority: Some(Priority::Notice),
            rules: vec![
                rule(false, None, Some("network")),
                rule(true, Some("Netcat*"), None),
                rule(true, Some("Debug noise"), None),
            ],
            ..Selection::default()
        };
        assert_eq!(
            enabled_after(&selection),
            vec![
                "Netcat Remote Code Execution",
                "Read sensitive file untrusted"
            ]
        );
    }

    #[test]
    fn flags_apply_before_the_rules_list() {
        let selection = Selection {
            disabled_names: vec!["Read sensitive".into()],
            disabled_tags: vec!["network".into()],
            rules: vec![rule(true, Some("Read sensitive file untrusted"), None)],
            ..Selection::default()
        };
        assert_eq!(
            enabled_after(&selection),
            vec!["Read sensitive file untrusted"]
        );
        let only_tag = Selection {
            run_tags: vec!["mitre_execution".into()],
            ..Selection::default()
        };
        assert_eq!(
            enabled_after(&only_tag),
            vec!["Netcat Remote Code Execution"]
        );
    }
}
