//! Falco itself as the oracle: runs a Falco binary and the `peregrine`
//! binary on the same command line and reduces what each printed to the
//! facts a user relies on, so that the two can be compared item by item:
//! the exit status, the load results of `-V` (code, item, line, message),
//! the load codes a failing run names, the alerts (rule, priority,
//! source, tags, output fields, output text), and the JSON description of
//! `-L`/`-l` (compared with Falco's unordered arrays as sets).
//!
//! Falco is never built or shipped here: the caller gives the path of a
//! binary built elsewhere (see `falco-oracle --help`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use crate::conformance::run_with_timeout;

/// How Falco is run: its binary and the configuration every run starts
/// from (Falco refuses to start without one, Peregrine does not need one).
#[derive(Debug, Clone)]
pub struct FalcoSetup {
    pub binary: PathBuf,
    /// libcontainer.so: current Falco's rules ask for the container plugin
    /// (`required_plugin_versions`), and the container.* fields live in it.
    pub container_plugin: Option<PathBuf>,
    /// The configuration used when a case gives none (Falco's own
    /// falco.yaml from the kit).
    pub base_config: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read the Falco configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the Falco configuration {path} is not YAML: {source}")]
    Yaml {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("the Falco configuration {path} is not a map")]
    Shape { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl FalcoSetup {
    /// Writes, into `scratch`, the configuration Falco runs a case with:
    /// the case's own (`conf`) or the base one, loading the container
    /// plugin when given (see `use_container_plugin`).
    pub fn config_for(&self, conf: Option<&Path>, scratch: &Path) -> Result<PathBuf, SetupError> {
        let source = conf.unwrap_or(&self.base_config);
        let text = std::fs::read_to_string(source).map_err(|e| SetupError::Read {
            path: source.into(),
            source: e,
        })?;
        let mut doc: Yaml = if text.trim().is_empty() {
            Yaml::Mapping(Default::default())
        } else {
            serde_yaml::from_str(&text).map_err(|e| SetupError::Yaml {
                path: source.into(),
                source: e,
            })?
        };
        let map = doc.as_mapping_mut().ok_or_else(|| SetupError::Shape {
            path: source.into(),
        })?;
        if let Some(plugin) = &self.container_plugin {
            use_container_plugin(map, plugin);
        }
        let name = source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "falco.yaml".into());
        let out = scratch.join(format!("oracle-{name}"));
        let text = serde_yaml::to_string(&doc).unwrap_or_default();
        std::fs::write(&out, text).map_err(|source| SetupError::Write {
            path: out.clone(),
            source,
        })?;
        Ok(out)
    }
}

/// Makes the configuration load the container plugin at `plugin`. An
/// entry named `container` keeps its place and settings with this path
/// (upstream falco.yaml has one, with a path relative to an installed
/// Falco's plugin folder, absent here: a second entry would not replace
/// it). Otherwise one is appended after any plugins the file has, so that
/// `plugins[N]` options of a case keep their meaning.
fn use_container_plugin(map: &mut serde_yaml::Mapping, plugin: &Path) {
    let path = Yaml::from(plugin.display().to_string());
    let plugins = sequence(map, "plugins");
    let existing = plugins
        .iter_mut()
        .filter_map(Yaml::as_mapping_mut)
        .find(|entry| entry.get("name").and_then(Yaml::as_str) == Some("container"));
    match existing {
        Some(entry) => {
            entry.insert("library_path".into(), path);
        }
        None => {
            // Upstream falco.yaml's init_config: the plugin's schema
            // refuses an empty one.
            let mut init = serde_yaml::Mapping::new();
            init.insert("label_max_len".into(), 100.into());
            init.insert("with_size".into(), false.into());
            let mut entry = serde_yaml::Mapping::new();
            entry.insert("name".into(), "container".into());
            entry.insert("library_path".into(), path);
            entry.insert("init_config".into(), Yaml::Mapping(init));
            plugins.push(Yaml::Mapping(entry));
        }
    }
    let load = sequence(map, "load_plugins");
    if !load.iter().any(|name| name.as_str() == Some("container")) {
        load.push("container".into());
    }
}

/// The list under `key`, made an empty one when absent or not a list.
fn sequence<'a>(map: &'a mut serde_yaml::Mapping, key: &str) -> &'a mut Vec<Yaml> {
    let value = map
        .entry(key.into())
        .or_insert_with(|| Yaml::Sequence(Vec::new()));
    if !value.is_sequence() {
        *value = Yaml::Sequence(Vec::new());
    }
    value.as_sequence_mut().expect("made a list just above")
}

/// Flags of Falco's command line whose next word is their value, passed
/// through as they are: a value is never read as a flag.
const TAKES_VALUE: [&str; 8] = ["-c", "-o", "-r", "-V", "-M", "-p", "-P", "-l"];

/// The command line for current Falco that says what `args` says in the
/// flags of the 2023 suite. Peregrine keeps those flags (`-e`, `-D`, `-T`,
/// `-t`, `-A`), but current Falco removed them and refuses to start
/// ("Option ‘e’ does not exist"), so every case would differ on that alone;
/// here they become the configuration options (`-o`) that replaced them.
/// Anything else is passed through unchanged.
pub fn current_falco_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut run_tags = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let flag = word.as_str();
        if flag == "-A" {
            // All syscalls, also those Falco leaves out by default for speed.
            push_options(&mut out, ["base_syscalls.all=true".to_string()]);
            continue;
        }
        let removed = matches!(flag, "-e" | "-D" | "-T" | "-t");
        if !removed && !TAKES_VALUE.contains(&flag) {
            out.push(word.clone());
            continue;
        }
        let Some(value) = words.next() else {
            // A flag missing its value stays as given, for Falco to refuse.
            out.push(word.clone());
            continue;
        };
        match flag {
            "-e" => push_options(
                &mut out,
                [
                    "engine.kind=replay".to_string(),
                    format!("engine.replay.capture_file={value}"),
                ],
            ),
            // -D disabled every rule whose name contains the text; rule
            // selection matches whole names, with wildcards.
            "-D" => push_options(&mut out, [format!("rules[].disable.rule=*{value}*")]),
            "-T" => push_options(&mut out, [format!("rules[].disable.tag={value}")]),
            "-t" => run_tags.push(value),
            _ => out.extend([word.clone(), value.clone()]),
        }
    }
    if !run_tags.is_empty() {
        // -t ran only the rules with these tags. Selections apply in order,
        // so all rules are disabled first, after any -D or -T.
        let only = run_tags.iter().map(|t| format!("rules[].enable.tag={t}"));
        push_options(
            &mut out,
            std::iter::once("rules[].disable.rule=*".to_string()).chain(only),
        );
    }
    out
}

/// The error of Falco 0.35 (the 2023 suite's) for -D or -T given with -t,
/// which Peregrine keeps for those flags; current Falco has neither the
/// flags nor the error, and applies its `rules[]` items in order.
pub const MIXED_SELECTION_ERROR: &str =
    "You can not specify both disabled (-D/-T) and enabled (-t) rules";

/// The flags of `args` that current Falco removed (`-e`, `-D`, `-T`, `-t`,
/// `-A`), each once, in the order first used; as in `current_falco_args`,
/// a value is never read as a flag.
pub fn removed_flags(args: &[String]) -> Vec<&str> {
    let mut found: Vec<&str> = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let flag = word.as_str();
        let removed = matches!(flag, "-e" | "-D" | "-T" | "-t" | "-A");
        if removed && !found.contains(&flag) {
            found.push(flag);
        }
        if flag != "-A" && (removed || TAKES_VALUE.contains(&flag)) {
            words.next();
        }
    }
    found
}

/// How Peregrine's run with the suite's own (2023) flags compares to its
/// run with the current spelling, the run compared with Falco.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Legacy {
    /// Both spellings gave the same.
    Same,
    /// -D/-T with -t: the old flags keep the 2023 error (exit 1), where the
    /// current spelling runs the selection as current Falco does.
    Kept2023Error,
    /// They differ otherwise: the old flags do not mean what their
    /// current spelling means, a fault of Peregrine's.
    Differs(Vec<String>),
}

/// Judges Peregrine's run of `args` (the 2023 flags, `legacy`) against
/// its run of `current_falco_args(args)` (`current`).
pub fn legacy_verdict(args: &[String], current: &Observed, legacy: &Observed) -> Legacy {
    let diff = differences_between(("current spelling", current), ("2023 spelling", legacy));
    if diff.is_empty() {
        return Legacy::Same;
    }
    let flags = removed_flags(args);
    let mixed = flags.contains(&"-t") && (flags.contains(&"-D") || flags.contains(&"-T"));
    if mixed
        && legacy.failure.is_none()
        && legacy.exit_status == 1
        && legacy.alerts.is_empty()
        && legacy.stderr_tail.contains(MIXED_SELECTION_ERROR)
    {
        Legacy::Kept2023Error
    } else {
        Legacy::Differs(diff)
    }
}

fn push_options(out: &mut Vec<String>, options: impl IntoIterator<Item = String>) {
    for option in options {
        out.extend(["-o".to_string(), option]);
    }
}

/// One binary's run, reduced to what is compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub exit_status: i32,
    /// `-V` results, one line per file, error and warning (sorted).
    pub load_results: Vec<String>,
    /// LOAD_* codes named anywhere in the output of a run that is not a
    /// `-V` run (a rules file that fails to load stops the run).
    pub load_codes: BTreeSet<String>,
    /// The alerts, in the order printed.
    pub alerts: Vec<Alert>,
    /// Start failure (the binary did not run or timed out).
    pub failure: Option<String>,
    /// The last lines of stderr, to explain a difference in exit status.
    pub stderr_tail: String,
    /// The JSON of `-L` or `-l RULE` (`rules`, and with `-L` the macros,
    /// lists and required versions).
    pub description: Option<Json>,
}

/// One JSON alert, reduced.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Alert {
    pub rule: String,
    pub priority: String,
    pub source: String,
    pub tags: BTreeSet<String>,
    /// Output fields as canonical JSON text, masked fields removed.
    pub fields: BTreeMap<String, String>,
    pub output: String,
}

/// Runs `binary args` in `dir` and reduces what it printed.
pub fn observe(binary: &Path, args: &[String], dir: &Path, masked: &[String]) -> Observed {
    let output = match run_with_timeout(binary, args, dir, Duration::from_secs(300)) {
        Ok(output) => output,
        Err(e) => {
            return Observed {
                failure: Some(e),
                ..Observed::default()
            }
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut seen = Observed {
        exit_status: output.status.code().unwrap_or(-1),
        ..Observed::default()
    };
    if output.status.code().is_none() {
        seen.failure = Some(format!(
            "{} was killed ({})",
            binary.display(),
            output.status
        ));
    }
    let validating = args.iter().any(|a| a == "-V");
    for line in stdout.lines() {
        let Ok(json) = serde_json::from_str::<Json>(line) else {
            continue;
        };
        if let Some(files) = json["falco_load_results"].as_array() {
            seen.load_results = load_results(files);
        } else if json.get("rule").is_some() {
            seen.alerts.push(alert(&json, masked));
        } else if json.get("rules").is_some() {
            seen.description = Some(json);
        }
    }
    if !validating {
        let code = regex::Regex::new(r"\bLOAD_[A-Z_]+\b").expect("a constant pattern");
        for text in [&stdout, &stderr] {
            for m in code.find_iter(text) {
                seen.load_codes.insert(m.as_str().to_string());
            }
        }
    }
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    seen.stderr_tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    seen
}

fn load_results(files: &[Json]) -> Vec<String> {
    let mut out = Vec::new();
    for file in files {
        let name = file["name"]
            .as_str()
            .and_then(|n| Path::new(n).file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push(format!(
            "{name}: successful={}",
            file["successful"].as_bool().unwrap_or(false)
        ));
        for list in ["errors", "warnings"] {
            let mut items: Vec<String> = file[list]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|item| {
                    let at: Vec<String> = item["context"]["locations"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .map(|loc| {
                            format!(
                                "{} '{}' line {}",
                                loc["item_type"].as_str().unwrap_or("?"),
                                loc["item_name"].as_str().unwrap_or(""),
                                loc["position"]["line"]
                            )
                        })
                        .collect();
                    format!(
                        "{name}: {} {} [{}]: {}",
                        &list[..list.len() - 1],
                        item["code"].as_str().unwrap_or("?"),
                        at.join(" > "),
                        item["message"].as_str().unwrap_or("")
                    )
                })
                .collect();
            items.sort();
            out.extend(items);
        }
    }
    out
}

fn alert(json: &Json, masked: &[String]) -> Alert {
    let text = |key: &str| json[key].as_str().unwrap_or("").to_string();
    let tags = json["tags"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    let fields = json["output_fields"]
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .filter(|(k, _)| !masked.iter().any(|m| m == *k))
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    Alert {
        rule: text("rule"),
        priority: text("priority"),
        source: text("source"),
        tags,
        fields,
        output: if masked.is_empty() {
            text("output")
        } else {
            String::new()
        },
    }
}

/// What differs between Falco's run (`falco`) and Peregrine's (`ours`),
/// one line per fact; empty when they agree.
pub fn differences(falco: &Observed, ours: &Observed) -> Vec<String> {
    differences_between(("falco", falco), ("peregrine", ours))
}

/// What differs between two runs, each named by who made it (the names
/// start the lines: `falco`, `peregrine`, or two spellings of one command
/// line); empty when they agree.
pub fn differences_between(left: (&str, &Observed), right: (&str, &Observed)) -> Vec<String> {
    let ((ln, l), (rn, r)) = (left, right);
    let mut out = Vec::new();
    for (who, seen) in [(ln, l), (rn, r)] {
        if let Some(failure) = &seen.failure {
            out.push(format!("{who} did not finish: {failure}"));
        }
    }
    if l.exit_status != r.exit_status {
        out.push(format!(
            "exit status: {ln} {}, {rn} {} ({ln} stderr: {}; {rn} stderr: {})",
            l.exit_status, r.exit_status, l.stderr_tail, r.stderr_tail
        ));
    }
    let (f, o): (BTreeSet<_>, BTreeSet<_>) = (
        l.load_results.iter().collect(),
        r.load_results.iter().collect(),
    );
    // Padded to one width, so that the two sides' lines align.
    let width = ln.len().max(rn.len()) + 1;
    for line in f.difference(&o) {
        out.push(format!(
            "load result only {:width$} {line}",
            format!("{ln}:")
        ));
    }
    for line in o.difference(&f) {
        out.push(format!(
            "load result only {:width$} {line}",
            format!("{rn}:")
        ));
    }
    if l.load_codes != r.load_codes {
        out.push(format!(
            "load codes named: {ln} {:?}, {rn} {:?}",
            l.load_codes, r.load_codes
        ));
    }
    alert_differences((ln, &l.alerts), (rn, &r.alerts), &mut out);
    let (ld, rd) = (l.description.as_ref(), r.description.as_ref());
    match (ld, rd) {
        (Some(a), Some(b)) => out.extend(description_differences((ln, a), (rn, b))),
        (None, None) => {}
        (Some(_), None) => out.push(format!("description printed by {ln} only")),
        (None, Some(_)) => out.push(format!("description printed by {rn} only")),
    }
    out
}

/// How many differences of a description are shown.
const DESCRIPTION_LINES: usize = 25;

/// What differs between two `-L`/`-l` descriptions, one line per place
/// (a path of keys and item names). Falco builds most of the arrays it
/// prints from unordered sets, so arrays of values compare as multisets;
/// rules, macros and lists compare by name, their order apart.
pub fn description_differences(left: (&str, &Json), right: (&str, &Json)) -> Vec<String> {
    let (ln, rn) = (left.0, right.0);
    let mut out = Vec::new();
    diff_json(
        "describe",
        &canonical(left.1),
        &canonical(right.1),
        (ln, rn),
        &mut out,
    );
    if out.len() > DESCRIPTION_LINES {
        let more = out.len() - DESCRIPTION_LINES;
        out.truncate(DESCRIPTION_LINES);
        out.push(format!("... {more} more differences in the description"));
    }
    out
}

/// Where a named item's order is kept once its array becomes an object.
const ORDER_KEY: &str = "(order)";

/// `value` with its arrays made comparable: named items (an `info.name`
/// each) as an object by name plus their order, values sorted.
fn canonical(value: &Json) -> Json {
    match value {
        Json::Object(map) => {
            Json::Object(map.iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        Json::Array(items)
            if !items.is_empty() && items.iter().all(|i| i["info"]["name"].is_string()) =>
        {
            let mut by_name = serde_json::Map::new();
            let order: Vec<&str> = items
                .iter()
                .filter_map(|i| i["info"]["name"].as_str())
                .collect();
            by_name.insert(ORDER_KEY.into(), Json::String(order.join(" | ")));
            for item in items {
                let name = item["info"]["name"].as_str().unwrap_or_default();
                by_name.insert(name.to_string(), canonical(item));
            }
            Json::Object(by_name)
        }
        Json::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
            let mut sorted = items.clone();
            sorted.sort_by_key(|v| v.to_string());
            Json::Array(sorted)
        }
        Json::Array(items) => Json::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// A value cut to a length fit for one line.
fn short(value: &Json) -> String {
    let text = value.to_string();
    match text.char_indices().nth(160) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

fn diff_json(path: &str, left: &Json, right: &Json, names: (&str, &str), out: &mut Vec<String>) {
    let (ln, rn) = names;
    match (left, right) {
        (Json::Object(a), Json::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let at = format!("{path}/{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff_json(&at, x, y, names, out),
                    (Some(x), None) => out.push(format!("{at}: only {ln}: {}", short(x))),
                    (None, Some(y)) => out.push(format!("{at}: only {rn}: {}", short(y))),
                    (None, None) => {}
                }
            }
        }
        (Json::Array(a), Json::Array(b))
            if a.iter().chain(b).all(|v| !v.is_array() && !v.is_object()) =>
        {
            // Both sorted: what each has more of than the other.
            let mut only_left = Vec::new();
            let mut rest: Vec<&Json> = b.iter().collect();
            for v in a {
                match rest.iter().position(|w| *w == v) {
                    Some(i) => {
                        rest.remove(i);
                    }
                    None => only_left.push(v),
                }
            }
            if !only_left.is_empty() || !rest.is_empty() {
                let list =
                    |vs: &[&Json]| short(&Json::Array(vs.iter().map(|v| (*v).clone()).collect()));
                out.push(format!(
                    "{path}: only {ln} {}, only {rn} {}",
                    list(&only_left),
                    list(&rest)
                ));
            }
        }
        (Json::Array(a), Json::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_json(&format!("{path}[{i}]"), x, y, names, out);
            }
        }
        _ if left != right => out.push(format!(
            "{path}: {ln} {}, {rn} {}",
            short(left),
            short(right)
        )),
        _ => {}
    }
}

/// Alerts compared as multisets: per rule counts first, then the alerts
/// of each side that the other lacks, paired by rule to show which output
/// fields differ.
fn alert_differences(left: (&str, &[Alert]), right: (&str, &[Alert]), out: &mut Vec<String>) {
    let ((ln, falco), (rn, ours)) = (left, right);
    let count = |alerts: &[Alert]| {
        let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
        for a in alerts {
            *by_rule.entry(a.rule.clone()).or_default() += 1;
        }
        by_rule
    };
    let (fc, oc) = (count(falco), count(ours));
    let rules: BTreeSet<&String> = fc.keys().chain(oc.keys()).collect();
    for rule in rules {
        let (a, b) = (
            fc.get(rule).copied().unwrap_or(0),
            oc.get(rule).copied().unwrap_or(0),
        );
        if a != b {
            out.push(format!("alerts of {rule:?}: {ln} {a}, {rn} {b}"));
        }
    }
    let mut only_ours: Vec<&Alert> = ours.iter().collect();
    let mut only_falco = Vec::new();
    for a in falco {
        if let Some(i) = only_ours.iter().position(|b| *b == a) {
            only_ours.remove(i);
        } else {
            only_falco.push(a);
        }
    }
    const SHOWN: usize = 5;
    let mut shown = 0;
    let mut unpaired_ours = only_ours.clone();
    for a in &only_falco {
        let Some(i) = unpaired_ours.iter().position(|b| b.rule == a.rule) else {
            continue;
        };
        let b = unpaired_ours.remove(i);
        if shown < SHOWN {
            out.push(format!(
                "alert of {:?} differs: {}",
                a.rule,
                alert_diff((ln, a), (rn, b))
            ));
        }
        shown += 1;
    }
    if shown > SHOWN {
        out.push(format!("... {} more alerts that differ", shown - SHOWN));
    }
}

fn alert_diff(left: (&str, &Alert), right: (&str, &Alert)) -> String {
    let ((ln, falco), (rn, ours)) = (left, right);
    let mut text = String::new();
    if falco.priority != ours.priority {
        let _ = write!(text, "priority {} / {}; ", falco.priority, ours.priority);
    }
    if falco.source != ours.source {
        let _ = write!(text, "source {} / {}; ", falco.source, ours.source);
    }
    if falco.tags != ours.tags {
        let _ = write!(text, "tags {:?} / {:?}; ", falco.tags, ours.tags);
    }
    let keys: BTreeSet<&String> = falco.fields.keys().chain(ours.fields.keys()).collect();
    for key in keys {
        let (a, b) = (falco.fields.get(key), ours.fields.get(key));
        if a != b {
            let _ = write!(
                text,
                "{key} {} / {}; ",
                a.map(String::as_str).unwrap_or("(absent)"),
                b.map(String::as_str).unwrap_or("(absent)")
            );
        }
    }
    if text.is_empty() && falco.output != ours.output {
        let width = ln.len().max(rn.len()) + 1;
        let _ = write!(
            text,
            "output text\n        {:width$} {}\n        {:width$} {}",
            format!("{ln}:"),
            falco.output,
            format!("{rn}:"),
            ours.output
        );
    }
    text.trim_end_matches("; ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert_line(rule: &str, pid: u64) -> Json {
        serde_json::json!({
            "rule": rule, "priority": "Warning", "source": "syscall",
            "tags": ["a"], "output": format!("x pid={pid}"),
            "output_fields": {"proc.pid": pid, "evt.time": 1},
        })
    }

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn removed_flags_get_current_falco_spellings() {
        let args = words("-r r.yaml -D cat -e t.scap -T net -A -o priority=debug -v");
        assert_eq!(
            current_falco_args(&args),
            words(
                "-r r.yaml -o rules[].disable.rule=*cat*
                 -o engine.kind=replay -o engine.replay.capture_file=t.scap
                 -o rules[].disable.tag=net -o base_syscalls.all=true
                 -o priority=debug -v"
            )
        );
    }

    #[test]
    fn run_tags_enable_only_their_rules_last() {
        let args = words("-t a -r r.yaml -t b");
        assert_eq!(
            current_falco_args(&args),
            words(
                "-r r.yaml -o rules[].disable.rule=*
                 -o rules[].enable.tag=a -o rules[].enable.tag=b"
            )
        );
    }

    #[test]
    fn removed_flags_are_found_once_and_values_skipped() {
        let args = words("-r -t -e t.scap -T a -T b -o x=-D -A -t c");
        assert_eq!(removed_flags(&args), vec!["-e", "-T", "-A", "-t"]);
        assert!(removed_flags(&words("-r r.yaml -o json_output=true")).is_empty());
    }

    #[test]
    fn the_2023_error_is_kept_only_for_mixed_flags() {
        let ran = Observed {
            alerts: vec![alert(&alert_line("A", 1), &[])],
            ..Default::default()
        };
        let refused = Observed {
            exit_status: 1,
            stderr_tail: format!("Error: {MIXED_SELECTION_ERROR}"),
            ..Default::default()
        };
        let mixed = words("-T a -t a -r r.yaml -e t.scap");
        assert_eq!(legacy_verdict(&mixed, &ran, &ran), Legacy::Same);
        assert_eq!(
            legacy_verdict(&mixed, &ran, &refused),
            Legacy::Kept2023Error
        );
        // The same refusal without -D/-T and -t together is a fault.
        let only_run_tags = words("-t a -r r.yaml -e t.scap");
        let Legacy::Differs(diff) = legacy_verdict(&only_run_tags, &ran, &refused) else {
            panic!("a refusal of -t alone must count as a difference");
        };
        assert!(
            diff.iter()
                .any(|d| d.starts_with("exit status: current spelling 0, 2023 spelling 1")),
            "{diff:?}"
        );
    }

    #[test]
    fn values_are_not_read_as_flags() {
        // A rules file named -A, and a trailing -e without its value.
        let args = words("-r -A -o x=-t -e");
        assert_eq!(current_falco_args(&args), args);
    }

    #[test]
    fn an_existing_container_entry_gets_the_plugin_path() {
        let mut doc: Yaml = serde_yaml::from_str(
            "load_plugins: []\nplugins:\n- name: container\n  library_path: libcontainer.so\n  init_config: {label_max_len: 100}\n",
        )
        .expect("YAML");
        let map = doc.as_mapping_mut().expect("a map");
        use_container_plugin(map, Path::new("/x/libcontainer.so"));
        let expected: Yaml = serde_yaml::from_str(
            "load_plugins: [container]\nplugins:\n- name: container\n  library_path: /x/libcontainer.so\n  init_config: {label_max_len: 100}\n",
        )
        .expect("YAML");
        assert_eq!(doc, expected);
    }

    #[test]
    fn a_container_entry_is_added_after_the_others() {
        let mut doc: Yaml =
            serde_yaml::from_str("plugins:\n- name: json\n  library_path: libjson.so\n")
                .expect("YAML");
        let map = doc.as_mapping_mut().expect("a map");
        use_container_plugin(map, Path::new("/x/libcontainer.so"));
        assert_eq!(doc["plugins"][1]["name"].as_str(), Some("container"));
        assert_eq!(
            doc["plugins"][1]["init_config"]["with_size"].as_bool(),
            Some(false)
        );
        assert_eq!(doc["load_plugins"][0].as_str(), Some("container"));
    }

    #[test]
    fn descriptions_compare_sets_as_sets_and_items_by_name() {
        let falco = serde_json::json!({
            "required_engine_version": "0.40.0",
            "rules": [
                {"info": {"name": "A", "tags": ["x", "y"]}, "details": {"events": ["open", "asyncevent"]}},
                {"info": {"name": "B", "tags": []}, "details": {"events": ["close"]}},
            ],
        });
        let same = serde_json::json!({
            "required_engine_version": "0.40.0",
            "rules": [
                {"info": {"name": "A", "tags": ["y", "x"]}, "details": {"events": ["asyncevent", "open"]}},
                {"info": {"name": "B", "tags": []}, "details": {"events": ["close"]}},
            ],
        });
        assert!(description_differences(("falco", &falco), ("peregrine", &same)).is_empty());
        let other = serde_json::json!({
            "required_engine_version": "0.0.0",
            "rules": [
                {"info": {"name": "B", "tags": []}, "details": {"events": ["close", "open"]}},
                {"info": {"name": "A", "tags": ["x", "y"]}, "details": {"events": ["open", "asyncevent"]}},
            ],
        });
        let diff = description_differences(("falco", &falco), ("peregrine", &other));
        assert_eq!(
            diff,
            [
                "describe/required_engine_version: falco \"0.40.0\", peregrine \"0.0.0\"",
                "describe/rules/(order): falco \"A | B\", peregrine \"B | A\"",
                "describe/rules/B/details/events: only falco [], only peregrine [\"open\"]",
            ]
        );
    }

    #[test]
    fn alerts_agree_whatever_their_order() {
        let f = vec![
            alert(&alert_line("A", 1), &[]),
            alert(&alert_line("B", 2), &[]),
        ];
        let o = vec![f[1].clone(), f[0].clone()];
        let (falco, ours) = (
            Observed {
                alerts: f,
                ..Default::default()
            },
            Observed {
                alerts: o,
                ..Default::default()
            },
        );
        assert!(differences(&falco, &ours).is_empty());
    }

    #[test]
    fn a_differing_field_and_count_are_named() {
        let falco = Observed {
            alerts: vec![
                alert(&alert_line("A", 1), &[]),
                alert(&alert_line("A", 3), &[]),
            ],
            ..Default::default()
        };
        let ours = Observed {
            alerts: vec![alert(&alert_line("A", 2), &[])],
            ..Default::default()
        };
        let diff = differences(&falco, &ours);
        assert!(
            diff.contains(&"alerts of \"A\": falco 2, peregrine 1".to_string()),
            "{diff:?}"
        );
        assert!(
            diff.iter().any(|d| d.contains("proc.pid 1 / 2")),
            "{diff:?}"
        );
    }

    #[test]
    fn a_masked_field_is_not_compared() {
        let mask = vec!["proc.pid".to_string()];
        let falco = Observed {
            alerts: vec![alert(&alert_line("A", 1), &mask)],
            ..Default::default()
        };
        let ours = Observed {
            alerts: vec![alert(&alert_line("A", 2), &mask)],
            ..Default::default()
        };
        assert!(differences(&falco, &ours).is_empty());
    }

    #[test]
    fn load_results_compare_code_item_line_and_message() {
        let results = |line: u64| {
            serde_json::json!([{
                "name": "/x/r.yaml", "successful": false,
                "errors": [{"code": "LOAD_ERR_YAML_VALIDATE", "message": "m",
                    "context": {"locations": [{"item_type": "rule", "item_name": "r",
                        "position": {"line": line}}]}}],
                "warnings": []
            }])
        };
        let a = load_results(results(3).as_array().expect("an array"));
        let b = load_results(results(4).as_array().expect("an array"));
        assert_eq!(
            a[1],
            "r.yaml: error LOAD_ERR_YAML_VALIDATE [rule 'r' line 3]: m"
        );
        let (falco, ours) = (
            Observed {
                load_results: a,
                ..Default::default()
            },
            Observed {
                load_results: b,
                ..Default::default()
            },
        );
        assert_eq!(differences(&falco, &ours).len(), 2);
    }
}
