//! Which rules run: loading files and folders (or the built-in default
//! rules), compiling them for each event source, the selection flags
//! (-D, -T, -t, priority), and the reports of -V, -L and -l.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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

/// What SIGHUP leaves for the loops: the rules text as it was when the
/// signal came (so edits made afterwards cannot race a loop's reload) and
/// a counter the loops compare with the last one they applied.
pub struct ReloadSignal {
    generation: AtomicU64,
    snapshot: Mutex<Vec<RulesInput>>,
}

impl ReloadSignal {
    /// Reads the rule files now and lets the loops know.
    pub fn take_snapshot(&self, inputs: &[RulesInput]) {
        let snapshot = inputs
            .iter()
            .map(|input| match input {
                // A file that cannot be read stays a path: loading it then
                // reports the read error with the file's name.
                RulesInput::File(path) => match std::fs::read_to_string(path) {
                    Ok(text) => RulesInput::Text {
                        name: path.display().to_string(),
                        text,
                    },
                    Err(_) => input.clone(),
                },
                other => other.clone(),
            })
            .collect();
        if let Ok(mut slot) = self.snapshot.lock() {
            *slot = snapshot;
        }
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// Starts watching SIGHUP; each signal snapshots `inputs` for the loops.
pub fn reload_on_sighup(inputs: Vec<RulesInput>) -> Arc<ReloadSignal> {
    let signal = Arc::new(ReloadSignal {
        generation: AtomicU64::new(0),
        snapshot: Mutex::new(Vec::new()),
    });
    match signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]) {
        Ok(mut signals) => {
            let shared = Arc::clone(&signal);
            let spawned = std::thread::Builder::new()
                .name("sighup".into())
                .spawn(move || {
                    for _ in signals.forever() {
                        shared.take_snapshot(&inputs);
                        crate::log::message("SIGHUP received: reloading rules");
                    }
                });
            if let Err(e) = spawned {
                crate::log::message(&format!(
                    "cannot watch SIGHUP, rules will not reload on it: {e}"
                ));
            }
        }
        Err(e) => crate::log::message(&format!(
            "cannot catch SIGHUP, rules will not reload on it: {e}"
        )),
    }
    signal
}

/// One loop's view of reloading. Each loop (syscall, audit) holds its own
/// and polls between events: a reload never stops event reading, and rules
/// that fail to load leave the running ones in place.
#[derive(Clone)]
pub struct Reload {
    signal: Arc<ReloadSignal>,
    seen: u64,
    selection: Selection,
    output_extra: Option<String>,
}

impl Reload {
    pub fn new(
        signal: Arc<ReloadSignal>,
        selection: Selection,
        output_extra: Option<String>,
    ) -> Reload {
        let seen = signal.generation.load(Ordering::Acquire);
        Reload {
            signal,
            seen,
            selection,
            output_extra,
        }
    }

    /// The new rules, when a reload was asked for since the last call and
    /// they load without error.
    pub fn poll(&mut self) -> Option<Ruleset> {
        let now = self.signal.generation.load(Ordering::Acquire);
        if now == self.seen {
            return None;
        }
        self.seen = now;
        let inputs = self.signal.snapshot.lock().ok()?.clone();
        let mut ruleset = load(&inputs, self.output_extra.clone());
        if ruleset.has_errors() {
            for error in ruleset.errors() {
                crate::log::message(&format!("Error: {error}"));
            }
            crate::log::message(
                "Error: the new rules did not load; the rules loaded before keep running",
            );
            return None;
        }
        self.selection.apply(&mut ruleset.syscall);
        self.selection.apply(&mut ruleset.k8s_audit);
        Some(ruleset)
    }
}
