//! Which rules run: loading files and folders (or the built-in default
//! rules), compiling them for each event source, the selection flags
//! (-D, -T, -t, priority), and the reports of -V, -L and -l.

use std::path::PathBuf;

use peregrine_engine::field::FieldSource;
use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::rules::{CompiledRule, CompiledRules, Diagnostic, LoadResult, RulesLoader};
use peregrine_engine::syscall_fields::SyscallFields;
use serde_json::{json, Value as Json};

use crate::alert::Priority;

/// Peregrine's default rules, built into the binary so that a plain
/// `peregrine` always runs with them, wherever it is installed.
const DEFAULT_RULES: &[(&str, &str)] = &[(
    "peregrine_rules.yaml",
    include_str!("../../rules/peregrine_rules.yaml"),
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
    }
}

/// Loads `inputs` in order and compiles them for each source. Load errors
/// stay in the results; nothing here decides to exit.
pub fn load(inputs: &[RulesInput], output_extra: Option<String>) -> Ruleset {
    let mut loader = RulesLoader::new();
    loader.set_output_extra(output_extra);
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
    let syscall = loader.compile(SyscallFields::new());
    let k8s_audit = loader.compile(K8sAuditSource::new());
    Ruleset {
        syscall,
        k8s_audit,
        results: loader.results().to_vec(),
    }
}

/// What `-p` adds to outputs: `c`/`container` names the container; other
/// text is used as it is.
pub fn output_extra(print: Option<&str>) -> Option<String> {
    match print? {
        "c" | "container" | "k" | "kubernetes" => {
            Some("container_id=%container.id container_name=%container.name".into())
        }
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
}

impl Selection {
    fn keeps(&self, rule: &CompiledRule) -> bool {
        if self.min_priority.is_some_and(|min| rule.priority > min) {
            return false;
        }
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

    /// Disables the rules this selection leaves out.
    pub fn apply<S: FieldSource>(&self, rules: &mut CompiledRules<S>) {
        rules.set_enabled(false, |rule| rule.enabled && !self.keeps(rule));
    }
}

/// Falco's `-V` answer as JSON: `{"falco_load_results": [...]}`.
pub fn validation_json(results: &[LoadResult]) -> Json {
    let diagnostics = |list: &[Diagnostic]| -> Json {
        list.iter()
            .map(|d| {
                json!({
                    "code": d.code.as_str(),
                    "codedesc": code_description(d.code.as_str()),
                    "message": d.message,
                    "context": {
                        "locations": [{
                            "item_type": d.item_type,
                            "item_name": d.item_name,
                            "position": {"name": d.file, "line": d.line.unwrap_or(0)},
                        }],
                    },
                })
            })
            .collect()
    };
    let files: Vec<Json> = results
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "successful": r.successful(),
                "errors": diagnostics(&r.errors),
                "warnings": diagnostics(&r.warnings),
            })
        })
        .collect();
    json!({ "falco_load_results": files })
}

/// Falco's short descriptions of its load codes.
fn code_description(code: &str) -> &'static str {
    match code {
        "LOAD_ERR_FILE_READ" => "Error reading file",
        "LOAD_ERR_YAML_PARSE" => "Invalid YAML",
        "LOAD_ERR_YAML_VALIDATE" => "Invalid YAML contents",
        "LOAD_ERR_COMPILE_CONDITION" => "Error compiling condition",
        "LOAD_ERR_COMPILE_OUTPUT" => "Error compiling output",
        "LOAD_ERR_VALIDATE" => "Error validating rule/macro/list/exception objects",
        "LOAD_ERR_EXTENSION" => "Error loading extension",
        "LOAD_UNKNOWN_SOURCE" => "Unknown source",
        "LOAD_UNKNOWN_FIELD" => "Unknown field or event-type in condition or output",
        "LOAD_UNKNOWN_FILTER" => "Unknown field or event-type in condition or output",
        "LOAD_NO_EVTTYPE" => "Condition has no event-type restriction",
        "LOAD_UNUSED_MACRO" => "Unused macro",
        "LOAD_UNUSED_LIST" => "Unused list",
        "LOAD_COMPILE_CONDITION" => "Condition has problems",
        "LOAD_DEPRECATED_ITEM" => "Used deprecated item",
        "LOAD_UNKNOWN_ITEM" => "Unknown rules file item",
        _ => "",
    }
}

/// The text form of `-V` for one file.
pub fn validation_text(result: &LoadResult) -> String {
    let mut text = String::new();
    let verdict = match (result.successful(), result.warnings.is_empty()) {
        (true, true) => "Ok",
        (true, false) => "Ok, with warnings",
        (false, _) => "Invalid",
    };
    text.push_str(&format!("{}: {verdict}\n", result.name));
    for d in result.errors.iter().chain(result.warnings.iter()) {
        text.push_str(&format!("  {d}\n"));
    }
    text
}

/// `-L`: every rule with its description.
pub fn list_rules(ruleset: &Ruleset) -> String {
    let mut text = String::new();
    for rule in ruleset.rules() {
        let state = if rule.enabled { "" } else { " (disabled)" };
        text.push_str(&format!("{}{state}\n    {}\n", rule.name, rule.desc.trim()));
    }
    text
}

/// `-l RULE`: one rule in full.
pub fn describe_rule(ruleset: &Ruleset, name: &str) -> Option<String> {
    let rule = ruleset.rules().find(|r| r.name == name)?;
    Some(format!(
        "Rule: {}\nSource: {}\nPriority: {}\nTags: {}\nEnabled: {}\nDescription: {}\n",
        rule.name,
        rule.source,
        rule.priority,
        rule.tags.join(", "),
        rule.enabled,
        rule.desc.trim()
    ))
}
