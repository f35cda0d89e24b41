//! Runs Falco's regression-suite spec files (falco_tests.yaml and
//! falco_k8s_audit_tests.yaml, or any file of that format) against the
//! `peregrine` binary, the way Falco's own harness ran them against
//! `falco`: same command line, same checks on stdout, stderr, exit status,
//! validation JSON, alert counts and output files.
//!
//! What each key means is taken from the upstream harness
//! (falco_test.py.txt in the kit).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// One case of a spec file.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub params: serde_yaml::Mapping,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not YAML: {source}")]
    Yaml {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("{path}: expected a top-level key holding a map of cases")]
    Shape { path: PathBuf },
}

/// Reads a spec file: one top-level key (tagged `!mux` upstream) whose
/// value maps case names to their parameters.
pub fn load_spec(path: &Path) -> Result<Vec<Case>, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.into(),
        source,
    })?;
    let document: Yaml = serde_yaml::from_str(&text).map_err(|source| SpecError::Yaml {
        path: path.into(),
        source,
    })?;
    let shape = || SpecError::Shape { path: path.into() };
    let top = document.as_mapping().ok_or_else(shape)?;
    let (_, cases) = top.iter().next().ok_or_else(shape)?;
    let cases = untag(cases).as_mapping().ok_or_else(shape)?;
    Ok(cases
        .iter()
        .filter_map(|(name, params)| {
            Some(Case {
                name: name.as_str()?.to_string(),
                params: untag(params).as_mapping()?.clone(),
            })
        })
        .collect())
}

/// Where the 2023 suite expects what the Falco of 2023 printed and current
/// Falco prints something else: the case is checked against current
/// Falco, and both texts stay on record in tests/conformance/status.yaml.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrentFalco {
    pub reason: String,
    pub changes: Vec<Change>,
}

/// One expected value: as the suite has it, and as current Falco gives it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub was: String,
    pub now: String,
}

impl Case {
    /// Replaces each expected value equal to a change's `was` with its
    /// `now`. A `was` the case does not hold is an error: the record is
    /// stale and would hide nothing.
    pub fn follow_current_falco(&mut self, current: &CurrentFalco) -> Result<(), String> {
        for change in &current.changes {
            if !replace_scalars(&mut self.params, change) {
                return Err(format!(
                    "{}: status.yaml records {:?}, which the case does not expect",
                    self.name, change.was
                ));
            }
        }
        Ok(())
    }
}

fn replace_scalars(map: &mut serde_yaml::Mapping, change: &Change) -> bool {
    fn walk(value: &mut Yaml, change: &Change) -> bool {
        match value {
            Yaml::String(s) if *s == change.was => {
                *s = change.now.clone();
                true
            }
            Yaml::Number(n) if n.to_string() == change.was => {
                *value = Yaml::String(change.now.clone());
                true
            }
            Yaml::Sequence(items) => items
                .iter_mut()
                .fold(false, |found, v| walk(v, change) | found),
            Yaml::Mapping(map) => map
                .iter_mut()
                .fold(false, |found, (_, v)| walk(v, change) | found),
            Yaml::Tagged(tagged) => walk(&mut tagged.value, change),
            _ => false,
        }
    }
    map.iter_mut()
        .fold(false, |found, (_, v)| walk(v, change) | found)
}

fn untag(value: &Yaml) -> &Yaml {
    match value {
        Yaml::Tagged(tagged) => untag(&tagged.value),
        other => other,
    }
}

/// Where a spec's relative paths point.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The folder holding the spec file, rules/, trace_files/, confs/.
    pub base: PathBuf,
    /// The default syscall rules the suite expected
    /// (`BUILD_DIR/.../falco_rules.yaml`).
    pub falco_rules: PathBuf,
    /// The k8s audit rules the suite expected
    /// (`BUILD_DIR/.../k8s_audit_rules.yaml`).
    pub k8s_audit_rules: PathBuf,
}

impl Layout {
    /// The kit's layout: versioned rule files beside the spec.
    pub fn kit(spec: &Path) -> Layout {
        let base = spec.parent().map(Path::to_path_buf).unwrap_or_default();
        Layout {
            falco_rules: base.join("falco_rules-1.0.1.yaml"),
            k8s_audit_rules: base.join("k8s_audit_rules-0.6.0.yaml"),
            base,
        }
    }

    /// Maps a path as a case writes it to a file on this machine.
    fn resolve(&self, path: &str) -> PathBuf {
        if path.starts_with("BUILD_DIR") {
            if path.ends_with("k8s_audit_rules.yaml") {
                return self.k8s_audit_rules.clone();
            }
            if path.ends_with("falco_rules.yaml") {
                return self.falco_rules.clone();
            }
            if let Some(rest) = path.split_once("/test/").map(|(_, rest)| rest) {
                return self.base.join(rest);
            }
        }
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        }
    }
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    /// Empty when the case passed.
    pub failures: Vec<String>,
    pub command: String,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

fn strings(value: Option<&Yaml>) -> Vec<String> {
    match value.map(untag) {
        None | Some(Yaml::Null) => Vec::new(),
        Some(Yaml::Sequence(items)) => items.iter().filter_map(scalar).collect(),
        Some(other) => scalar(other)
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect(),
    }
}

fn scalar(value: &Yaml) -> Option<String> {
    match untag(value) {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn flag(params: &serde_yaml::Mapping, key: &str, default: bool) -> bool {
    match params.get(key).map(untag) {
        Some(Yaml::Bool(b)) => *b,
        Some(Yaml::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => default,
    }
}

/// `[{a: 1}, {b: 2}]` -> {a: 1, b: 2}, the shape of detect_counts and outputs.
fn pairs(value: Option<&Yaml>) -> Vec<(String, Yaml)> {
    let mut out = Vec::new();
    if let Some(Yaml::Sequence(items)) = value.map(untag) {
        for item in items {
            if let Some(map) = untag(item).as_mapping() {
                for (k, v) in map {
                    if let Some(k) = scalar(k) {
                        out.push((k, untag(v).clone()));
                    }
                }
            }
        }
    }
    out
}

/// Python's `re.search`, with `re.DOTALL` when asked. The suite's patterns
/// use look-ahead, which the `regex` crate leaves out, hence fancy-regex.
fn regex_found(pattern: &str, text: &str, dot_all: bool) -> Result<bool, String> {
    let pattern_with_flags = if dot_all {
        format!("(?s){pattern}")
    } else {
        pattern.to_string()
    };
    fancy_regex::Regex::new(&pattern_with_flags)
        .map_err(|e| format!("pattern {pattern:?} does not compile here: {e}"))?
        .is_match(text)
        .map_err(|e| format!("pattern {pattern:?} failed on the output: {e}"))
}

/// The command line Falco's harness gave `falco` for a case, with the
/// spec's relative paths resolved: what both binaries are run with.
pub fn case_args(layout: &Layout, case: &Case) -> Vec<String> {
    let p = &case.params;
    let mut args: Vec<String> = Vec::new();
    let validate = strings(p.get("validate_rules_file"));
    let json_output = !validate.is_empty() || flag(p, "json_output", false);
    for file in &validate {
        args.push("-V".into());
        args.push(layout.resolve(file).display().to_string());
    }
    let mut rules = strings(p.get("rules_file"));
    if rules.is_empty() && !p.contains_key("rules_file") {
        rules.push("BUILD_DIR/falco_rules.yaml".into());
    }
    for file in &rules {
        args.push("-r".into());
        args.push(layout.resolve(file).display().to_string());
    }
    for rule in strings(p.get("disabled_rules")) {
        args.push("-D".into());
        args.push(rule);
    }
    if let Some(conf) = strings(p.get("conf_file")).first() {
        args.push("-c".into());
        args.push(layout.resolve(conf).display().to_string());
    }
    if let Some(trace) = strings(p.get("trace_file")).first() {
        args.push("-e".into());
        args.push(layout.resolve(trace).display().to_string());
    }
    let json_include_output = flag(p, "json_include_output_property", true);
    let json_include_tags = flag(p, "json_include_tags_property", true);
    let priority = strings(p.get("priority"))
        .first()
        .cloned()
        .unwrap_or_else(|| "debug".into());
    for option in [
        format!("json_output={json_output}"),
        format!("json_include_output_property={json_include_output}"),
        format!("json_include_tags_property={json_include_tags}"),
        format!("priority={priority}"),
    ] {
        args.push("-o".into());
        args.push(option);
    }
    args.push("-v".into());
    // addl_cmdline_opts: `-o plugins[0].open_params=trace_files/...`:
    // relative paths in it are the spec's.
    let extra = strings(p.get("addl_cmdline_opts")).join(" ");
    let mut words = extra.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if word == "-o" {
            if let Some(option) = words.next() {
                let option = match option.split_once('=') {
                    Some((key, value)) if key.ends_with("open_params") && !value.is_empty() => {
                        format!("{key}={}", layout.resolve(value).display())
                    }
                    _ => option.to_string(),
                };
                args.push("-o".into());
                args.push(option);
            }
        } else {
            args.push(word.to_string());
        }
    }
    for tag in strings(p.get("disable_tags")) {
        args.push("-T".into());
        args.push(tag);
    }
    for tag in strings(p.get("run_tags")) {
        args.push("-t".into());
        args.push(tag);
    }
    if let Some(duration) = strings(p.get("run_duration")).first() {
        args.push("-M".into());
        args.push(duration.clone());
    }
    if flag(p, "all_events", false) {
        args.push("-A".into());
    }
    if flag(p, "time_iso_8601", false) {
        args.push("-o".into());
        args.push("time_format_iso_8601=true".into());
    }
    args
}

/// The files a case's file or program output writes and the suite reads
/// back (every `outputs` and `output_strictly_contains` key but stdout).
pub fn output_files(case: &Case) -> Vec<PathBuf> {
    let p = &case.params;
    pairs(p.get("outputs"))
        .into_iter()
        .chain(pairs(p.get("output_strictly_contains")))
        .filter(|(file, _)| file != "stdout")
        .map(|(file, _)| PathBuf::from(file))
        .collect()
}

/// Output files a case reads back must start empty, in a folder that
/// exists, as Falco's harness made them: a file output (Falco's and
/// Peregrine's alike) opens its file but does not create the folder.
pub fn prepare_output_files(files: &[PathBuf]) {
    for path in files {
        let _ = std::fs::remove_file(path);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
    }
}

/// Runs one case with `binary` and returns what did not hold.
pub fn run_case(binary: &Path, layout: &Layout, case: &Case, scratch: &Path) -> Outcome {
    let p = &case.params;
    let mut failures = Vec::new();
    let args = case_args(layout, case);
    let validate = strings(p.get("validate_rules_file"));
    let json_output = !validate.is_empty() || flag(p, "json_output", false);
    let json_include_output = flag(p, "json_include_output_property", true);
    let json_include_tags = flag(p, "json_include_tags_property", true);

    let outputs = pairs(p.get("outputs"));
    let strict = pairs(p.get("output_strictly_contains"));
    prepare_output_files(&output_files(case));

    let command = format!("{} {}", binary.display(), args.join(" "));
    let grpc = match p.get("grpc").map(untag) {
        Some(value) => match GrpcCheck::read(value) {
            Ok(check) => Some(check),
            Err(e) => {
                failures.push(e);
                None
            }
        },
        None => None,
    };
    for file in strings(p.get("trace_file")) {
        let path = layout.resolve(&file);
        if !path.exists() {
            failures.push(format!("trace file {} is not in the kit", path.display()));
        }
    }
    let collector = grpc
        .as_ref()
        .map(|check| crate::grpc::Collector::start(check.socket.clone(), check.method));
    let output = run_with_timeout(binary, &args, scratch, Duration::from_secs(180));
    if let (Some(check), Some(collector)) = (&grpc, collector) {
        check.verify(collector.finish(), &mut failures);
    }
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            return Outcome {
                name: case.name.clone(),
                failures: failures.into_iter().chain([e]).collect(),
                command,
            };
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let exit_status = output.status.code().unwrap_or(-1);

    let mut check = |what: &str, result: Result<bool, String>, want: bool| match result {
        Ok(found) if found == want => {}
        Ok(_) => failures.push(what.to_string()),
        Err(e) => failures.push(e),
    };
    for pattern in strings(p.get("stderr_contains")) {
        check(
            &format!("stderr lacks {pattern:?}"),
            regex_found(&pattern, &stderr, true),
            true,
        );
    }
    for pattern in strings(p.get("stdout_contains")) {
        check(
            &format!("stdout lacks {pattern:?}"),
            regex_found(&pattern, &stdout, true),
            true,
        );
    }
    for pattern in strings(p.get("stderr_not_contains")) {
        check(
            &format!("stderr has {pattern:?}"),
            regex_found(&pattern, &stderr, false),
            false,
        );
    }
    for pattern in strings(p.get("stdout_not_contains")) {
        check(
            &format!("stdout has {pattern:?}"),
            regex_found(&pattern, &stdout, false),
            false,
        );
    }
    let want_exit = p
        .get("exit_status")
        .and_then(|v| untag(v).as_i64())
        .unwrap_or(0) as i32;
    if exit_status != want_exit {
        failures.push(format!("exit status {exit_status}, expected {want_exit}"));
    }

    let wants_validation = ["validate_ok", "validate_errors", "validate_warnings"]
        .iter()
        .any(|k| p.contains_key(*k));
    if wants_validation {
        check_validation(p, &stdout, &mut failures);
    }
    if exit_status == 0 && failures.is_empty() {
        if validate.is_empty() && flag(p, "check_detection_counts", true) {
            check_detections(p, &stdout, &mut failures);
        }
        let counts = pairs(p.get("detect_counts"));
        if !counts.is_empty() {
            check_counts(&counts, &stdout, &mut failures);
        }
        if validate.is_empty() && json_output {
            check_json_lines(
                &stdout,
                json_include_output,
                json_include_tags,
                &mut failures,
            );
        }
        for (file, pattern) in &outputs {
            let pattern = scalar(pattern).unwrap_or_default();
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("cannot read the output file {file}: {e}"));
                    continue;
                }
            };
            let found = text
                .lines()
                .any(|line| regex_found(&pattern, line, false).unwrap_or(false));
            if !found {
                failures.push(format!("no line matching {pattern:?} in {file}"));
            }
        }
        for (actual, expected) in &strict {
            // A file that cannot be read fails the case: read as empty, it
            // would let any output pass unchecked.
            let expected_path = layout.resolve(&scalar(expected).unwrap_or_default());
            // A case whose expected file is absent cannot be checked: it
            // fails rather than passing on an empty expectation.
            let expected = match std::fs::read_to_string(&expected_path) {
                Ok(text) if !text.trim().is_empty() => text,
                Ok(_) => {
                    failures.push(format!(
                        "expected file {} is empty",
                        expected_path.display()
                    ));
                    continue;
                }
                Err(e) => {
                    failures.push(format!(
                        "cannot read the expected file {}: {e}",
                        expected_path.display()
                    ));
                    continue;
                }
            };
            let actual_text = if actual == "stdout" {
                stdout.clone()
            } else {
                match std::fs::read_to_string(actual) {
                    Ok(text) => text,
                    Err(e) => {
                        failures.push(format!("cannot read {actual}: {e}"));
                        continue;
                    }
                }
            };
            let is_json = expected_path.extension().is_some_and(|e| e == "json");
            if let Some(failure) =
                strictly_contains(&actual_text, &expected, is_json, actual, &expected_path)
            {
                failures.push(failure);
            }
        }
    }
    Outcome {
        name: case.name.clone(),
        failures,
        command,
    }
}

/// Whether `actual` holds the lines of `expected`, in order. JSON lines
/// are compared as JSON values, as Falco's own suite does (its
/// `require.JSONEq`): the same keys with the same values of the same types,
/// whatever the spacing; the key order of the expected files is that of
/// Falco before 0.40, which wrote `output_fields` last by hand.
fn strictly_contains(
    actual: &str,
    expected: &str,
    is_json: bool,
    actual_name: &str,
    expected_path: &Path,
) -> Option<String> {
    if is_json {
        let mut lines = actual
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
        for (number, line) in expected.lines().enumerate() {
            let want: serde_json::Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    return Some(format!(
                        "{} line {}: not JSON: {e}",
                        expected_path.display(),
                        number + 1
                    ))
                }
            };
            match lines.next() {
                Some(got) if got == want => {}
                Some(got) => {
                    return Some(format!(
                    "{actual_name}: JSON alert {} differs from {}:\n  got  {got}\n  want {want}",
                    number + 1,
                    expected_path.display()
                ))
                }
                None => {
                    return Some(format!(
                        "{actual_name} has {} JSON lines, {} expects more",
                        number,
                        expected_path.display()
                    ))
                }
            }
        }
        return None;
    }
    let mut cursor = actual;
    for line in expected.lines() {
        match cursor.find(line) {
            Some(pos) => cursor = &cursor[pos + line.len()..],
            None => {
                return Some(format!(
                    "{actual_name} does not contain, in order, {}",
                    expected_path.display()
                ))
            }
        }
    }
    None
}

/// A case's `grpc:` block: a client calls `method` on the unix socket
/// while the case runs; each of `results` must be part of a line of the
/// answers in protobuf text format.
struct GrpcCheck {
    socket: PathBuf,
    method: crate::grpc::Method,
    results: Vec<String>,
}

impl GrpcCheck {
    fn read(value: &Yaml) -> Result<GrpcCheck, String> {
        let map = value
            .as_mapping()
            .ok_or("the grpc block is not a mapping")?;
        let address = strings(map.get("address"))
            .first()
            .cloned()
            .unwrap_or_else(|| "unix:///run/falco/falco.sock".into());
        let socket = address
            .strip_prefix("unix://")
            .ok_or_else(|| format!("grpc address {address}: only unix sockets are checked"))?;
        let service = strings(map.get("service"))
            .first()
            .cloned()
            .unwrap_or_default();
        if service != crate::grpc::SERVICE {
            return Err(format!(
                "grpc service {service:?} is not {}",
                crate::grpc::SERVICE
            ));
        }
        let method_name = strings(map.get("method"))
            .first()
            .cloned()
            .unwrap_or_default();
        let method = crate::grpc::Method::parse(&method_name)
            .ok_or_else(|| format!("grpc method {method_name:?} is neither get nor sub"))?;
        Ok(GrpcCheck {
            socket: PathBuf::from(socket),
            method,
            results: strings(map.get("results")),
        })
    }

    fn verify(
        &self,
        collected: Result<Vec<crate::grpc::Response>, String>,
        failures: &mut Vec<String>,
    ) {
        let responses = match collected {
            Ok(responses) => responses,
            Err(e) => {
                failures.push(format!("gRPC: {e}"));
                return;
            }
        };
        let text: String = responses.iter().map(crate::grpc::text_format).collect();
        for expected in &self.results {
            if !text.lines().any(|line| line.contains(expected.as_str())) {
                failures.push(format!(
                    "no line with {expected:?} in the gRPC answers ({} responses)",
                    responses.len()
                ));
            }
        }
    }
}

pub fn run_with_timeout(
    binary: &Path,
    args: &[String],
    dir: &Path,
    timeout: Duration,
) -> Result<std::process::Output, String> {
    let child = Command::new(binary)
        .args(args)
        .current_dir(dir)
        .env("FALCO_HOSTNAME", "test-falco-hostname")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(timeout).is_err() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let output = child
        .wait_with_output()
        .map_err(|e| format!("waiting for peregrine: {e}"));
    let _ = done_tx.send(());
    let _ = watchdog.join();
    output
}

fn check_detections(p: &serde_yaml::Mapping, stdout: &str, failures: &mut Vec<String>) {
    let detected = regex::Regex::new(r"Events detected: (\d+)")
        .ok()
        .and_then(|re| re.captures(stdout))
        .and_then(|c| c[1].parse::<u64>().ok());
    let Some(detected) = detected else {
        failures.push("no 'Events detected: N' line on stdout".into());
        return;
    };
    let should_detect = flag(p, "detect", false);
    if !should_detect && detected > 0 {
        failures.push(format!("detected {detected} events, expected none"));
    }
    if should_detect {
        if detected == 0 {
            failures.push("detected no events, expected some".into());
        }
        for level in strings(p.get("detect_level")) {
            let pattern = format!("(?i){}: (\\d+)", regex::escape(&level));
            let count = regex::Regex::new(&pattern)
                .ok()
                .and_then(|re| re.captures(stdout))
                .and_then(|c| c[1].parse::<u64>().ok());
            match count {
                Some(n) if n > 0 => {}
                _ => failures.push(format!("no '{level}: N' line with N > 0 on stdout")),
            }
        }
    }
}

fn check_counts(counts: &[(String, Yaml)], stdout: &str, failures: &mut Vec<String>) {
    let Some(block) = stdout
        .split_once("Triggered rules by rule name:")
        .map(|(_, rest)| rest)
    else {
        failures.push("no 'Triggered rules by rule name:' block on stdout".into());
        return;
    };
    for (rule, want) in counts {
        let want = want.as_u64().unwrap_or(0);
        let pattern = format!(r"\s{}: (\d+)", regex::escape(rule));
        let got = regex::Regex::new(&pattern)
            .ok()
            .and_then(|re| re.captures(block))
            .and_then(|c| c[1].parse::<u64>().ok())
            .unwrap_or(0);
        if got != want {
            failures.push(format!("rule {rule:?}: {got} alerts, expected {want}"));
        }
    }
}

fn check_json_lines(stdout: &str, with_output: bool, with_tags: bool, failures: &mut Vec<String>) {
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let Ok(object) = serde_json::from_str::<Json>(line) else {
            failures.push(format!("stdout line is not JSON: {line}"));
            return;
        };
        let mut wanted = vec!["time", "rule", "priority"];
        if with_output {
            wanted.push("output");
        }
        if with_tags {
            wanted.push("tags");
        }
        if let Some(missing) = wanted.iter().find(|k| object.get(**k).is_none()) {
            failures.push(format!("JSON alert lacks '{missing}': {line}"));
            return;
        }
    }
}

fn check_validation(p: &serde_yaml::Mapping, stdout: &str, failures: &mut Vec<String>) {
    let first = stdout.lines().next().unwrap_or("");
    let Ok(result) = serde_json::from_str::<Json>(first) else {
        failures.push(format!(
            "first stdout line is not the validation JSON: {first:?}"
        ));
        return;
    };
    let empty = Vec::new();
    let files = result["falco_load_results"].as_array().unwrap_or(&empty);
    for expected in strings(p.get("validate_ok")) {
        let ok = files.iter().any(|f| {
            f["successful"] == Json::Bool(true)
                && f["name"]
                    .as_str()
                    .and_then(|n| Path::new(n).file_name())
                    .and_then(|n| n.to_str())
                    == Some(expected.as_str())
        });
        if !ok {
            failures.push(format!("no successful validation result for {expected}"));
        }
    }
    for (key, list) in [
        ("validate_errors", "errors"),
        ("validate_warnings", "warnings"),
    ] {
        let Some(Yaml::Sequence(wanted)) = p.get(key).map(untag) else {
            continue;
        };
        for want in wanted {
            let want: BTreeMap<String, String> = untag(want)
                .as_mapping()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((scalar(k)?, scalar(v).unwrap_or_default())))
                        .collect()
                })
                .unwrap_or_default();
            let get = |k: &str| want.get(k).cloned().unwrap_or_default();
            let found = files
                .iter()
                .flat_map(|f| f[list].as_array().unwrap_or(&empty).iter())
                .any(|item| {
                    let message = item["message"].as_str().unwrap_or("");
                    let message_ok = match (want.get("message"), want.get("message_contains")) {
                        (Some(m), _) => message == m,
                        (None, Some(m)) => message.contains(m.as_str()),
                        (None, None) => true,
                    };
                    item["code"].as_str() == Some(get("code").as_str())
                        && message_ok
                        && item["context"]["locations"]
                            .as_array()
                            .unwrap_or(&empty)
                            .iter()
                            .any(|loc| {
                                loc["item_type"].as_str() == Some(get("item_type").as_str())
                                    && loc["item_name"].as_str() == Some(get("item_name").as_str())
                            })
                });
            if !found {
                failures.push(format!(
                    "no {list} entry {} for {} '{}' ({})",
                    get("code"),
                    get("item_type"),
                    get("item_name"),
                    want.get("message")
                        .or(want.get("message_contains"))
                        .cloned()
                        .unwrap_or_default()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn json_lines_compare_as_json_with_their_types() {
        let path = Path::new("x.json");
        let want = r#"{"a":1,"b":"x", "c": {"t":5}}"#;
        let same = "log line\n{\"c\":{\"t\":5},\"b\":\"x\",\"a\":1}\n";
        assert_eq!(strictly_contains(same, want, true, "stdout", path), None);
        // A number written as text is a difference.
        let typed = "{\"c\":{\"t\":\"5\"},\"b\":\"x\",\"a\":1}\n";
        assert!(strictly_contains(typed, want, true, "stdout", path).is_some());
        assert!(strictly_contains("", want, true, "stdout", path).is_some());
        // Text files: each line, in order.
        assert_eq!(
            strictly_contains("a\nb\nc\n", "a\nc", false, "f", path),
            None
        );
        assert!(strictly_contains("c\na\n", "a\nc", false, "f", path).is_some());
    }

    use super::*;

    #[test]
    fn build_dir_paths_map_to_the_kit_files() {
        let layout = Layout::kit(Path::new("/kit/falco_tests.yaml"));
        assert_eq!(
            layout.resolve("BUILD_DIR/falcosecurity-rules-falco-prefix/src/falcosecurity-rules-falco/falco_rules.yaml"),
            Path::new("/kit/falco_rules-1.0.1.yaml")
        );
        assert_eq!(
            layout
                .resolve("BUILD_DIR/k8saudit-rules-prefix/src/k8saudit-rules/k8s_audit_rules.yaml"),
            Path::new("/kit/k8s_audit_rules-0.6.0.yaml")
        );
        assert_eq!(
            layout.resolve("BUILD_DIR/test/confs/plugins/k8s_audit.yaml"),
            Path::new("/kit/confs/plugins/k8s_audit.yaml")
        );
        assert_eq!(
            layout.resolve("rules/a.yaml"),
            Path::new("/kit/rules/a.yaml")
        );
        assert_eq!(layout.resolve("/abs.yaml"), Path::new("/abs.yaml"));
    }

    fn case(yaml: &str) -> Case {
        Case {
            name: "c".into(),
            params: serde_yaml::from_str(yaml).unwrap(),
        }
    }

    #[test]
    fn an_expected_file_that_cannot_be_read_fails_the_case() {
        let dir = std::env::temp_dir().join(format!("conformance-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("empty.json"), "").unwrap();
        let layout = Layout::kit(&dir.join("spec.yaml"));
        // `true` prints nothing: only the expected file decides. An empty
        // one would check nothing, so it fails too.
        let run = |expected: &str| {
            let c = case(&format!(
                "check_detection_counts: false\nrules_file: []\noutput_strictly_contains:\n  - stdout: {expected}\n"
            ));
            run_case(Path::new("/bin/true"), &layout, &c, &dir)
        };
        let empty = run("empty.json");
        assert!(!empty.passed());
        assert!(
            empty.failures[0].contains("is empty"),
            "{:?}",
            empty.failures
        );
        let missing = run("missing.json");
        assert!(!missing.passed());
        assert!(
            missing.failures[0].contains("cannot read the expected file"),
            "{:?}",
            missing.failures
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn current_falco_changes_replace_the_suite_text_and_stale_ones_fail() {
        let mut c = case("validate_warnings:\n  - code: LOAD_UNKNOWN_FIELD\n    item_name: r\n");
        let current = CurrentFalco {
            reason: "renamed".into(),
            changes: vec![Change {
                was: "LOAD_UNKNOWN_FIELD".into(),
                now: "LOAD_UNKNOWN_FILTER".into(),
            }],
        };
        c.follow_current_falco(&current).unwrap();
        let text = serde_yaml::to_string(&c.params).unwrap();
        assert!(text.contains("LOAD_UNKNOWN_FILTER") && !text.contains("LOAD_UNKNOWN_FIELD"));
        assert!(
            c.follow_current_falco(&current).is_err(),
            "a stale record passes"
        );
    }

    #[test]
    fn counts_are_read_from_the_triggered_block() {
        let stdout = "Events detected: 9\nTriggered rules by rule name:\n   Open From Cat ($\\.*+?()[]{}|^): 8\n   other: 1\n";
        let mut failures = Vec::new();
        check_counts(
            &[("Open From Cat ($\\.*+?()[]{}|^)".into(), Yaml::from(8))],
            stdout,
            &mut failures,
        );
        assert!(failures.is_empty(), "{failures:?}");
        check_counts(&[("other".into(), Yaml::from(2))], stdout, &mut failures);
        assert_eq!(failures.len(), 1);
    }
}
