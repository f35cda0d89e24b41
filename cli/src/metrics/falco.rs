//! Peregrine's counters under the names Falco gives its own
//! (userspace/falco/falco_metrics.cpp and libsinsp's metrics collector):
//! the `falcosecurity_falco_*`, `falcosecurity_scap_*` and
//! `falcosecurity_evt_*` families of `/metrics`, and the `falco.*` /
//! `scap.*` fields of the metrics snapshot alert and `metrics.output_file`.
//! Falco's dashboards and alerting rules then read Peregrine unchanged.
//! Counters Falco does not have keep Falco's scheme under the
//! `falcosecurity_peregrine_` prefix (see [`crate::metrics`]).

use std::fmt::Write as _;

use peregrine_driver_sys::{CpuStats, RingStats};

use crate::alert::Priority;

/// Which families are reported, as Falco's `metrics.*_enabled` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    pub rules_counters: bool,
    pub resource_utilization: bool,
    pub state_counters: bool,
    pub kernel_event_counters: bool,
    /// Events and drops of each CPU's ring.
    pub kernel_event_counters_per_cpu: bool,
    /// Zero values in the snapshot alert (Prometheus always has them).
    pub include_empty_values: bool,
    /// Memory in the snapshot alert in MB (Prometheus always has bytes).
    pub convert_memory_to_mb: bool,
    /// The metrics each loaded plugin reports through `get_metrics`.
    pub plugins: bool,
}

impl From<&crate::config::Metrics> for Families {
    /// The families the `metrics` keys enable.
    fn from(keys: &crate::config::Metrics) -> Self {
        Families {
            rules_counters: keys.rules_counters_enabled,
            resource_utilization: keys.resource_utilization_enabled,
            state_counters: keys.state_counters_enabled,
            kernel_event_counters: keys.kernel_event_counters_enabled,
            kernel_event_counters_per_cpu: keys.kernel_event_counters_per_cpu_enabled,
            include_empty_values: keys.include_empty_values,
            convert_memory_to_mb: keys.convert_memory_to_mb,
            plugins: keys.plugins_metrics_enabled,
        }
    }
}

impl Default for Families {
    fn default() -> Self {
        Families {
            rules_counters: true,
            resource_utilization: true,
            state_counters: true,
            kernel_event_counters: true,
            kernel_event_counters_per_cpu: false,
            include_empty_values: false,
            convert_memory_to_mb: true,
            plugins: true,
        }
    }
}

/// What the running process is, fixed at start (and at each reload for
/// `reload_ts`).
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub families: Families,
    /// The event sources running, with Falco's engine names (`kmod`,
    /// `nodriver`, `source_plugin`; empty for a capture file, which Falco
    /// names no engine for).
    pub sources: Vec<(String, String)>,
    pub hostname: String,
    pub start_ts: u64,
    pub reload_ts: u64,
    /// The rules files loaded and the config files read (the main one and
    /// its drop-ins), each with its SHA-256 in hex, as Falco reports them.
    pub rules_files_sha256: Vec<(String, String)>,
    pub config_files_sha256: Vec<(String, String)>,
}

/// The SHA-256 of a file's content in lowercase hex; None when it cannot
/// be read (a file removed since it was loaded is not reported).
pub fn file_sha256(path: &std::path::Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let mut hex = String::with_capacity(64);
    for byte in hasher.finalize() {
        let _ = write!(hex, "{byte:02x}");
    }
    Some(hex)
}

/// Each readable file of `paths`, with its SHA-256.
pub fn files_sha256(paths: &[std::path::PathBuf]) -> Vec<(String, String)> {
    paths
        .iter()
        .filter_map(|path| Some((path.display().to_string(), file_sha256(path)?)))
        .collect()
}

/// The file name Falco labels a file's checksum with.
fn file_name(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

/// Falco's numbering of priorities (falco_common::priority_type), which
/// its rule counters carry as a label.
pub fn priority_number(priority: Priority) -> u8 {
    match priority {
        Priority::Emergency => 0,
        Priority::Alert => 1,
        Priority::Critical => 2,
        Priority::Error => 3,
        Priority::Warning => 4,
        Priority::Notice => 5,
        Priority::Informational => 6,
        Priority::Debug => 7,
    }
}

/// One rule's matches, with what Falco labels them by.
#[derive(Debug, Clone)]
pub struct RuleMatches {
    pub rule: String,
    pub priority: Priority,
    pub source: String,
    pub tags: Vec<String>,
    pub count: u64,
}

/// The values the families are made of, read at one instant.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub events: u64,
    pub rules: Vec<RuleMatches>,
    pub kernel: Option<RingStats>,
    /// Each CPU's ring, when the module is read.
    pub kernel_cpus: Vec<CpuStats>,
    pub threads: Option<u64>,
    pub outputs_queue_drops: u64,
    /// What the loaded plugins report, read at the same instant.
    pub plugins: Vec<PluginMetric>,
}

/// One metric a plugin reports, named as libsinsp names it:
/// `<plugin name>.<metric name>`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginMetric {
    pub name: String,
    /// A counter (`SS_PLUGIN_METRIC_TYPE_MONOTONIC`), else a gauge.
    pub monotonic: bool,
    pub value: PluginValue,
}

/// A plugin metric's value: the API's seven types in the three shapes
/// they print in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PluginValue {
    Unsigned(u64),
    Signed(i64),
    Double(f64),
}

impl PluginValue {
    fn is_zero(self) -> bool {
        match self {
            PluginValue::Unsigned(v) => v == 0,
            PluginValue::Signed(v) => v == 0,
            PluginValue::Double(v) => v == 0.0,
        }
    }

    /// As C++'s std::to_string prints it, which Falco's Prometheus text uses.
    fn prometheus(self) -> String {
        match self {
            PluginValue::Unsigned(v) => v.to_string(),
            PluginValue::Signed(v) => v.to_string(),
            PluginValue::Double(v) => double(v),
        }
    }

    fn field(self) -> Value {
        match self {
            PluginValue::Unsigned(v) => Value::Int(v),
            PluginValue::Signed(v) => Value::Signed(v),
            PluginValue::Double(v) => Value::Float(v),
        }
    }
}

/// The Prometheus name of a plugin metric, built as libsinsp builds it:
/// `falcosecurity_plugins_` + the name + `_`, with the unit suffixes it
/// strips anywhere in the name removed, then `total` (a plugin metric's
/// unit is always a count), then every character Prometheus refuses
/// made `_` and runs of `_` made one.
pub fn plugin_metric_name(name: &str) -> String {
    const UNIT_SUFFIXES: [&str; 10] = [
        "_percentage",
        "_bytes",
        "_ratio",
        "_total",
        "_perc",
        "_sec",
        "_kb",
        "_mb",
        "_ns",
        "_ts",
    ];
    let qualified = format!("falcosecurity_plugins_{name}_");
    let mut stripped = String::with_capacity(qualified.len() + 5);
    let mut rest = qualified.as_str();
    // Leftmost, longest first (`_percentage` before `_perc`), as the POSIX
    // regular expression libsinsp uses matches.
    'scan: while !rest.is_empty() {
        for suffix in UNIT_SUFFIXES {
            if let Some(after) = rest.strip_prefix(suffix) {
                rest = after;
                continue 'scan;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            stripped.push(c);
        }
        rest = chars.as_str();
    }
    stripped.push_str("total");
    let mut out = String::with_capacity(stripped.len());
    for c in stripped.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    out
}

/// A value of the snapshot alert: Falco's are JSON numbers or strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(u64),
    /// A plugin's signed metric.
    Signed(i64),
    Float(f64),
    Text(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Signed(v) => write!(f, "{v}"),
            // Always with a decimal point, as a JSON double prints.
            Value::Float(v) => write!(f, "{v:?}"),
            Value::Text(v) => f.write_str(v),
        }
    }
}

impl Value {
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Int(v) => serde_json::Value::from(*v),
            Value::Signed(v) => serde_json::Value::from(*v),
            Value::Float(v) => serde_json::Value::from(*v),
            Value::Text(v) => serde_json::Value::from(v.as_str()),
        }
    }
}

/// The machine and process figures of `resource_utilization_enabled`, as
/// libsinsp reads them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub cpu_usage_perc: f64,
    pub memory_rss_kb: u64,
    pub memory_vsz_kb: u64,
    pub memory_pss_kb: u64,
    pub container_memory_used_bytes: u64,
    pub host_cpu_usage_perc: f64,
    pub host_memory_used_kb: u64,
    pub host_procs_running: u64,
    pub host_open_fds: u64,
}

impl Resources {
    /// Reads /proc (the host's under HOST_ROOT for the host figures).
    pub fn read() -> Resources {
        let mut r = Resources::default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        r.memory_rss_kb = kb_line(&status, "VmRSS:");
        r.memory_vsz_kb = kb_line(&status, "VmSize:");
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
        r.memory_pss_kb = kb_line(&rollup, "Pss:");
        r.container_memory_used_bytes = std::fs::read_to_string("/sys/fs/cgroup/memory.current")
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        let host = |p: &str| std::fs::read_to_string(crate::host::path(p)).unwrap_or_default();
        let meminfo = host("/proc/meminfo");
        r.host_memory_used_kb = kb_line(&meminfo, "MemTotal:")
            .saturating_sub(kb_line(&meminfo, "MemFree:"))
            .saturating_sub(kb_line(&meminfo, "Buffers:"))
            .saturating_sub(kb_line(&meminfo, "Cached:"));
        r.host_open_fds = host("/proc/sys/fs/file-nr")
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let stat = host("/proc/stat");
        for line in stat.lines() {
            if let Some(rest) = line.strip_prefix("cpu ") {
                let cols: Vec<u64> = rest
                    .split_whitespace()
                    .take(7)
                    .filter_map(|v| v.parse().ok())
                    .collect();
                let sum: u64 = cols.iter().sum();
                if cols.len() == 7 && sum > 0 {
                    r.host_cpu_usage_perc = round1(100.0 - cols[3] as f64 * 100.0 / sum as f64);
                }
            } else if let Some(rest) = line.strip_prefix("procs_running ") {
                r.host_procs_running = rest.trim().parse().unwrap_or(0);
            }
        }
        r.cpu_usage_perc = own_cpu_perc(&host("/proc/uptime")).unwrap_or(0.0);
        r
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn kb_line(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time used over the time since the process started, in percent.
fn own_cpu_perc(uptime: &str) -> Option<f64> {
    let uptime: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()? as f64;
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let start: f64 = fields.get(19)?.parse().ok()?;
    let elapsed = uptime - start / ticks;
    (elapsed > 0.0).then(|| round1(100.0 * (utime + stime) / ticks / elapsed))
}

/// What the machine is, for the wrapper values.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub kernel_release: String,
    pub boot_ts: u64,
    pub num_cpus: u64,
}

impl Machine {
    pub fn read() -> Machine {
        let kernel_release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let stat = std::fs::read_to_string(crate::host::path("/proc/stat")).unwrap_or_default();
        let boot_ts = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(0, |s| s * 1_000_000_000);
        let num_cpus = std::thread::available_parallelism().map_or(0, |n| n.get() as u64);
        Machine {
            kernel_release,
            boot_ts,
            num_cpus,
        }
    }
}

/// Prometheus label values escape backslash, quote and newline (Falco's
/// do not; a rule name with a quote would break its page).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Label names keep letters, digits and `_`, as libsinsp sanitizes them.
fn label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    out
}

/// One sample, with its HELP and TYPE lines as Falco writes each.
fn sample(text: &mut String, name: &str, kind: &str, labels: &[(String, String)], value: &str) {
    let _ = writeln!(text, "# HELP {name} https://falco.org/docs/metrics/");
    let _ = writeln!(text, "# TYPE {name} {kind}");
    text.push_str(name);
    if !labels.is_empty() {
        let mut sorted: Vec<&(String, String)> = labels.iter().collect();
        sorted.sort();
        text.push('{');
        for (i, (k, v)) in sorted.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let _ = write!(text, "{}=\"{}\"", label_name(k), escape(v));
        }
        text.push('}');
    }
    let _ = writeln!(text, " {value}");
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A double as C++'s std::to_string writes it (six decimals).
fn double(v: f64) -> String {
    format!("{v:.6}")
}

/// The Falco families of `/metrics`.
pub fn prometheus_text(
    ctx: &Context,
    sample_now: &Sample,
    resources: Option<&Resources>,
    machine: &Machine,
    now_ns: u64,
) -> String {
    let f = ctx.families;
    let mut t = String::new();
    sample(
        &mut t,
        "falcosecurity_falco_version_info",
        "gauge",
        &labels(&[("version", env!("CARGO_PKG_VERSION"))]),
        "1",
    );
    for (family, files) in [
        ("sha256_rules_files", &ctx.rules_files_sha256),
        ("sha256_config_files", &ctx.config_files_sha256),
    ] {
        for (path, sha256) in files {
            sample(
                &mut t,
                &format!("falcosecurity_falco_{family}_info"),
                "gauge",
                &labels(&[("file_name", &file_name(path)), ("sha256", sha256)]),
                "1",
            );
        }
    }
    if f.rules_counters {
        for rule in sample_now.rules.iter().filter(|r| r.count > 0) {
            let mut l = labels(&[("rule_name", &rule.rule), ("source", &rule.source)]);
            l.push((
                "priority".into(),
                priority_number(rule.priority).to_string(),
            ));
            for tag in &rule.tags {
                l.push((format!("tag_{tag}"), "true".into()));
            }
            sample(
                &mut t,
                "falcosecurity_falco_rules_matches_total",
                "counter",
                &l,
                &rule.count.to_string(),
            );
        }
    }
    for (source, engine) in &ctx.sources {
        if !engine.is_empty() {
            sample(
                &mut t,
                "falcosecurity_scap_engine_name_info",
                "gauge",
                &labels(&[("engine_name", engine), ("evt_source", source)]),
                "1",
            );
        }
    }
    if f.kernel_event_counters {
        if let Some(k) = &sample_now.kernel {
            let counter = |t: &mut String, name: &str, v: u64| {
                sample(
                    t,
                    &format!("falcosecurity_scap_{name}_total"),
                    "counter",
                    &[],
                    &v.to_string(),
                )
            };
            counter(&mut t, "n_evts", k.n_evts);
            // The module counts buffer drops as one total: one series,
            // so that sums over `drop` stay right.
            sample(
                &mut t,
                "falcosecurity_scap_n_drops_buffer_total",
                "counter",
                &labels(&[("dir", "exit"), ("drop", "all")]),
                &k.n_drops_buffer.to_string(),
            );
            counter(&mut t, "n_drops_page_faults", k.n_drops_pf);
            counter(&mut t, "n_drops_bug", 0);
            counter(
                &mut t,
                "n_drops",
                k.n_drops_buffer + k.n_drops_pf + k.n_drops_too_large,
            );
            counter(&mut t, "n_preemptions", k.n_preemptions);
        }
    }
    if f.kernel_event_counters_per_cpu {
        for cpu in &sample_now.kernel_cpus {
            let label = labels(&[("cpu", &cpu.cpu.to_string())]);
            sample(
                &mut t,
                "falcosecurity_scap_n_evts_cpu_total",
                "counter",
                &label,
                &cpu.stats.n_evts.to_string(),
            );
            sample(
                &mut t,
                "falcosecurity_scap_n_drops_cpu_total",
                "counter",
                &label,
                &cpu_drops(&cpu.stats).to_string(),
            );
        }
    }
    if f.resource_utilization {
        if let Some(r) = resources {
            let gauge = |t: &mut String, name: &str, v: String| {
                sample(t, &format!("falcosecurity_falco_{name}"), "gauge", &[], &v)
            };
            gauge(&mut t, "cpu_usage_ratio", double(r.cpu_usage_perc / 100.0));
            gauge(
                &mut t,
                "memory_rss_bytes",
                double(r.memory_rss_kb as f64 * 1024.0),
            );
            gauge(
                &mut t,
                "memory_vsz_bytes",
                double(r.memory_vsz_kb as f64 * 1024.0),
            );
            gauge(
                &mut t,
                "memory_pss_bytes",
                double(r.memory_pss_kb as f64 * 1024.0),
            );
            gauge(
                &mut t,
                "container_memory_used_bytes",
                double(r.container_memory_used_bytes as f64),
            );
            gauge(
                &mut t,
                "host_cpu_usage_ratio",
                double(r.host_cpu_usage_perc / 100.0),
            );
            gauge(
                &mut t,
                "host_memory_used_bytes",
                double(r.host_memory_used_kb as f64 * 1024.0),
            );
            gauge(
                &mut t,
                "host_procs_running_total",
                r.host_procs_running.to_string(),
            );
            gauge(&mut t, "host_open_fds_total", r.host_open_fds.to_string());
        }
    }
    if f.state_counters {
        if let Some(threads) = sample_now.threads {
            sample(
                &mut t,
                "falcosecurity_scap_n_threads_total",
                "gauge",
                &[],
                &threads.to_string(),
            );
        }
    }
    if f.plugins {
        for metric in &sample_now.plugins {
            sample(
                &mut t,
                &plugin_metric_name(&metric.name),
                if metric.monotonic { "counter" } else { "gauge" },
                &[],
                &metric.value.prometheus(),
            );
        }
    }
    sample(
        &mut t,
        "falcosecurity_falco_kernel_release_info",
        "gauge",
        &labels(&[("kernel_release", &machine.kernel_release)]),
        "1",
    );
    sample(
        &mut t,
        "falcosecurity_evt_hostname_info",
        "gauge",
        &labels(&[("hostname", &ctx.hostname)]),
        "1",
    );
    sample(
        &mut t,
        "falcosecurity_falco_outputs_queue_num_drops_total",
        "counter",
        &[],
        &sample_now.outputs_queue_drops.to_string(),
    );
    sample(
        &mut t,
        "falcosecurity_falco_reload_timestamp_nanoseconds",
        "gauge",
        &[],
        &ctx.reload_ts.to_string(),
    );
    sample(
        &mut t,
        "falcosecurity_falco_start_timestamp_nanoseconds",
        "gauge",
        &[],
        &ctx.start_ts.to_string(),
    );
    sample(
        &mut t,
        "falcosecurity_falco_duration_seconds_total",
        "counter",
        &[],
        &(now_ns.saturating_sub(ctx.start_ts) / 1_000_000_000).to_string(),
    );
    sample(
        &mut t,
        "falcosecurity_falco_host_boot_timestamp_nanoseconds",
        "gauge",
        &[],
        &machine.boot_ts.to_string(),
    );
    sample(
        &mut t,
        "falcosecurity_falco_host_num_cpus_total",
        "gauge",
        &[],
        &machine.num_cpus.to_string(),
    );
    t
}

/// A CPU's drops, counted as the totals' `n_drops` are.
fn cpu_drops(stats: &RingStats) -> u64 {
    stats.n_drops_buffer + stats.n_drops_pf + stats.n_drops_too_large
}

/// Rule names as Falco turns them into field names: anything but
/// letters, digits, `_` and `:` becomes `_`, runs of `_` become one, and a
/// final `_` goes.
pub fn sanitize_rule_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == ':' {
            c
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    if out.ends_with('_') {
        out.pop();
    }
    out
}

/// What the previous snapshot saw, for Falco's `_prev` and rate fields.
#[derive(Debug, Clone, Default)]
pub struct Previous {
    pub num_evts: u64,
    pub n_evts: u64,
    pub n_drops: u64,
    pub at_ns: u64,
}

/// The fields of one metrics snapshot (Falco's stats_writer), for the
/// snapshot alert and `metrics.output_file`.
pub fn output_fields(
    ctx: &Context,
    source: &str,
    s: &Sample,
    resources: Option<&Resources>,
    machine: &Machine,
    now_ns: u64,
    prev: &mut Previous,
) -> Vec<(String, Value)> {
    let f = ctx.families;
    let mut out: Vec<(String, Value)> = Vec::new();
    let mut put = |name: &str, v: Value| out.push((name.to_string(), v));
    let delta_sec = if prev.at_ns > 0 {
        now_ns.saturating_sub(prev.at_ns) as f64 / 1e9
    } else {
        0.0
    };
    put("evt.time", Value::Int(now_ns));
    put("falco.reload_ts", Value::Int(ctx.reload_ts));
    put(
        "falco.version",
        Value::Text(env!("CARGO_PKG_VERSION").into()),
    );
    put("falco.start_ts", Value::Int(ctx.start_ts));
    put(
        "falco.duration_sec",
        Value::Int(now_ns.saturating_sub(ctx.start_ts) / 1_000_000_000),
    );
    put(
        "falco.kernel_release",
        Value::Text(machine.kernel_release.clone()),
    );
    put("evt.hostname", Value::Text(ctx.hostname.clone()));
    put("falco.host_boot_ts", Value::Int(machine.boot_ts));
    put("falco.host_num_cpus", Value::Int(machine.num_cpus));
    put(
        "falco.outputs_queue_num_drops",
        Value::Int(s.outputs_queue_drops),
    );
    for (path, sha256) in &ctx.rules_files_sha256 {
        put(
            &format!(
                "falco.sha256_rules_file.{}",
                sanitize_rule_name(&file_name(path))
            ),
            Value::Text(sha256.clone()),
        );
    }
    for (path, sha256) in &ctx.config_files_sha256 {
        put(
            &format!(
                "falco.sha256_config_file.{}",
                sanitize_rule_name(&file_name(path))
            ),
            Value::Text(sha256.clone()),
        );
    }
    put("evt.source", Value::Text(source.to_string()));
    if let Some((_, engine)) = ctx.sources.iter().find(|(src, _)| src == source) {
        if !engine.is_empty() {
            put("scap.engine_name", Value::Text(engine.clone()));
        }
    }
    if prev.num_evts != 0 && delta_sec > 0.0 {
        put(
            "falco.evts_rate_sec",
            Value::Float(round1((s.events - prev.num_evts) as f64 / delta_sec)),
        );
    }
    put("falco.num_evts", Value::Int(s.events));
    put("falco.num_evts_prev", Value::Int(prev.num_evts));
    prev.num_evts = s.events;
    prev.at_ns = now_ns;
    let keep = |v: f64| f.include_empty_values || v != 0.0;
    if f.rules_counters {
        let total: u64 = s.rules.iter().map(|r| r.count).sum();
        put("falco.rules.matches_total", Value::Int(total));
        for rule in &s.rules {
            if keep(rule.count as f64) {
                put(
                    &format!("falco.rules.{}", sanitize_rule_name(&rule.rule)),
                    Value::Int(rule.count),
                );
            }
        }
    }
    // Kernel and state counters belong to the syscall source only.
    let syscall = source == "syscall";
    if f.kernel_event_counters && syscall {
        if let Some(k) = &s.kernel {
            let n_drops = k.n_drops_buffer + k.n_drops_pf + k.n_drops_too_large;
            let evts_delta = k.n_evts.saturating_sub(prev.n_evts);
            let drops_delta = n_drops.saturating_sub(prev.n_drops);
            let rate = |d: u64| {
                if d != 0 && delta_sec > 0.0 {
                    round1(d as f64 / delta_sec)
                } else {
                    0.0
                }
            };
            put("scap.n_evts", Value::Int(k.n_evts));
            put("scap.n_evts_prev", Value::Int(prev.n_evts));
            put("scap.evts_rate_sec", Value::Float(rate(evts_delta)));
            put("scap.n_drops", Value::Int(n_drops));
            put("scap.n_drops_prev", Value::Int(prev.n_drops));
            put("scap.evts_drop_rate_sec", Value::Float(rate(drops_delta)));
            for (name, v) in [
                ("scap.n_drops_buffer_total", k.n_drops_buffer),
                ("scap.n_drops_page_faults", k.n_drops_pf),
                ("scap.n_preemptions", k.n_preemptions),
            ] {
                if keep(v as f64) {
                    put(name, Value::Int(v));
                }
            }
            let perc = if evts_delta > 0 {
                100.0 * drops_delta as f64 / evts_delta as f64
            } else {
                0.0
            };
            put("scap.n_drops_perc", Value::Float(perc));
            prev.n_evts = k.n_evts;
            prev.n_drops = n_drops;
        }
    }
    if f.kernel_event_counters_per_cpu && syscall {
        for cpu in &s.kernel_cpus {
            for (name, v) in [
                (format!("scap.n_evts_cpu_{}", cpu.cpu), cpu.stats.n_evts),
                (
                    format!("scap.n_drops_cpu_{}", cpu.cpu),
                    cpu_drops(&cpu.stats),
                ),
            ] {
                if keep(v as f64) {
                    put(&name, Value::Int(v));
                }
            }
        }
    }
    if f.resource_utilization {
        if let Some(r) = resources {
            let memory = |name: &str, kb: f64| -> (String, Value) {
                if f.convert_memory_to_mb {
                    (format!("falco.{name}_mb"), Value::Float(kb / 1024.0))
                } else {
                    (format!("falco.{name}_kb"), Value::Int(kb as u64))
                }
            };
            let mut fields = vec![
                (
                    "falco.cpu_usage_perc".to_string(),
                    Value::Float(r.cpu_usage_perc),
                ),
                memory("memory_rss", r.memory_rss_kb as f64),
                memory("memory_vsz", r.memory_vsz_kb as f64),
                memory("memory_pss", r.memory_pss_kb as f64),
                (
                    "falco.host_cpu_usage_perc".to_string(),
                    Value::Float(r.host_cpu_usage_perc),
                ),
                memory("host_memory_used", r.host_memory_used_kb as f64),
                (
                    "falco.host_procs_running".to_string(),
                    Value::Int(r.host_procs_running),
                ),
                (
                    "falco.host_open_fds".to_string(),
                    Value::Int(r.host_open_fds),
                ),
            ];
            let container = r.container_memory_used_bytes as f64;
            fields.push(if f.convert_memory_to_mb {
                (
                    "falco.container_memory_used_mb".into(),
                    Value::Float(container / (1024.0 * 1024.0)),
                )
            } else {
                (
                    "falco.container_memory_used_bytes".into(),
                    Value::Int(r.container_memory_used_bytes),
                )
            });
            for (name, v) in fields {
                let zero = matches!(v, Value::Int(0)) || v == Value::Float(0.0);
                if f.include_empty_values || !zero {
                    put(&name, v);
                }
            }
        }
    }
    if f.state_counters && syscall {
        if let Some(threads) = s.threads {
            if keep(threads as f64) {
                put("falco.n_threads", Value::Int(threads));
            }
        }
    }
    if f.plugins {
        for metric in &s.plugins {
            if f.include_empty_values || !metric.value.is_zero() {
                put(&format!("plugins.{}", metric.name), metric.value.field());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        Context {
            families: Families::default(),
            sources: vec![("syscall".into(), "kmod".into())],
            hostname: "node-1".into(),
            start_ts: 1_000_000_000_000,
            reload_ts: 1_000_000_000_000,
            ..Context::default()
        }
    }

    fn sample_now() -> Sample {
        Sample {
            events: 100,
            rules: vec![RuleMatches {
                rule: "Read \"sensitive\" file".into(),
                priority: Priority::Warning,
                source: "syscall".into(),
                tags: vec!["T1555".into(), "maturity-stable".into()],
                count: 3,
            }],
            kernel: Some(RingStats {
                n_evts: 1000,
                n_drops_buffer: 7,
                n_drops_pf: 2,
                n_preemptions: 1,
                ..RingStats::default()
            }),
            kernel_cpus: Vec::new(),
            threads: Some(42),
            outputs_queue_drops: 0,
            plugins: Vec::new(),
        }
    }

    #[test]
    fn prometheus_names_types_and_labels_are_falcos() {
        let machine = Machine {
            kernel_release: "6.1.0-test".into(),
            boot_ts: 5,
            num_cpus: 2,
        };
        let resources = Resources {
            cpu_usage_perc: 1.5,
            memory_rss_kb: 2,
            ..Resources::default()
        };
        let text = prometheus_text(
            &context(),
            &sample_now(),
            Some(&resources),
            &machine,
            11_000_000_000_000,
        );
        for expected in [
            "# HELP falcosecurity_falco_rules_matches_total https://falco.org/docs/metrics/\n\
             # TYPE falcosecurity_falco_rules_matches_total counter\n\
             falcosecurity_falco_rules_matches_total{priority=\"4\",rule_name=\"Read \\\"sensitive\\\" file\",source=\"syscall\",tag_T1555=\"true\",tag_maturity_stable=\"true\"} 3\n",
            "falcosecurity_scap_engine_name_info{engine_name=\"kmod\",evt_source=\"syscall\"} 1\n",
            "falcosecurity_scap_n_evts_total 1000\n",
            "falcosecurity_scap_n_drops_total 9\n",
            "falcosecurity_scap_n_drops_buffer_total{dir=\"exit\",drop=\"all\"} 7\n",
            "# TYPE falcosecurity_falco_cpu_usage_ratio gauge\nfalcosecurity_falco_cpu_usage_ratio 0.015000\n",
            "falcosecurity_falco_memory_rss_bytes 2048.000000\n",
            "# TYPE falcosecurity_scap_n_threads_total gauge\nfalcosecurity_scap_n_threads_total 42\n",
            "falcosecurity_falco_kernel_release_info{kernel_release=\"6.1.0-test\"} 1\n",
            "falcosecurity_evt_hostname_info{hostname=\"node-1\"} 1\n",
            "falcosecurity_falco_duration_seconds_total 10000\n",
            "# TYPE falcosecurity_falco_host_num_cpus_total gauge\n",
            "falcosecurity_falco_reload_timestamp_nanoseconds 1000000000000\n",
            "falcosecurity_falco_version_info{version=\"",
        ] {
            assert!(text.contains(expected), "{expected}\nnot in\n{text}");
        }
        let mut off = context();
        off.families.rules_counters = false;
        off.families.kernel_event_counters = false;
        let text = prometheus_text(&off, &sample_now(), None, &machine, 0);
        assert!(!text.contains("rules_matches"));
        assert!(!text.contains("n_evts"));
        assert!(!text.contains("memory_rss"));
    }

    #[test]
    fn snapshot_fields_are_falcos_with_rates_from_the_previous_one() {
        let machine = Machine::default();
        let mut prev = Previous::default();
        let fields = output_fields(
            &context(),
            "syscall",
            &sample_now(),
            None,
            &machine,
            2_000_000_000_000,
            &mut prev,
        );
        let get = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("falco.rules.Read_sensitive_file"), Some(Value::Int(3)));
        assert_eq!(get("falco.rules.matches_total"), Some(Value::Int(3)));
        assert_eq!(get("scap.n_evts"), Some(Value::Int(1000)));
        assert_eq!(get("scap.n_drops"), Some(Value::Int(9)));
        assert_eq!(get("scap.n_drops_perc"), Some(Value::Float(0.9)));
        assert_eq!(get("falco.num_evts"), Some(Value::Int(100)));
        assert_eq!(get("evt.source"), Some(Value::Text("syscall".into())));
        assert_eq!(get("scap.engine_name"), Some(Value::Text("kmod".into())));
        assert_eq!(get("falco.duration_sec"), Some(Value::Int(1000)));
        let mut later = sample_now();
        later.events = 300;
        later.kernel.as_mut().unwrap().n_evts = 3000;
        let fields = output_fields(
            &context(),
            "syscall",
            &later,
            None,
            &machine,
            2_010_000_000_000,
            &mut prev,
        );
        let get = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("falco.evts_rate_sec"), Some(Value::Float(20.0)));
        assert_eq!(get("scap.evts_rate_sec"), Some(Value::Float(200.0)));
        assert_eq!(get("scap.n_evts_prev"), Some(Value::Int(1000)));
        assert_eq!(get("scap.n_drops_perc"), Some(Value::Float(0.0)));
    }

    /// Falco's checksum and per-CPU families, rendered from a context and
    /// a stats struct (per-CPU rings exist only with the kernel module,
    /// which the replay and ptrace sources do not have).
    #[test]
    fn file_checksums_and_per_cpu_counters_are_falcos() {
        let dir = std::env::temp_dir().join(format!("peregrine-sha256-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rules = dir.join("my rules.yaml");
        std::fs::write(&rules, "abc").unwrap();
        let config = dir.join("falco.yaml");
        std::fs::write(&config, "").unwrap();
        let mut ctx = context();
        ctx.rules_files_sha256 = files_sha256(&[rules.clone(), dir.join("gone.yaml")]);
        ctx.config_files_sha256 = files_sha256(&[config]);
        // FIPS 180-2's example, and the digest of nothing.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            ctx.rules_files_sha256.len(),
            1,
            "an unreadable file is left out"
        );
        ctx.families.kernel_event_counters_per_cpu = true;
        let mut s = sample_now();
        let ring = |n_evts, n_drops_buffer| RingStats {
            n_evts,
            n_drops_buffer,
            n_drops_pf: 1,
            ..RingStats::default()
        };
        s.kernel_cpus = vec![
            CpuStats {
                cpu: 0,
                stats: ring(600, 0),
                used_bytes: 0,
                buffer_size: 8 << 20,
            },
            CpuStats {
                cpu: 3,
                stats: ring(400, 7),
                used_bytes: 0,
                buffer_size: 8 << 20,
            },
        ];
        let text = prometheus_text(&ctx, &s, None, &Machine::default(), 0);
        for expected in [
            format!("# TYPE falcosecurity_falco_sha256_rules_files_info gauge\nfalcosecurity_falco_sha256_rules_files_info{{file_name=\"my rules.yaml\",sha256=\"{abc}\"}} 1\n"),
            format!("falcosecurity_falco_sha256_config_files_info{{file_name=\"falco.yaml\",sha256=\"{empty}\"}} 1\n"),
            "# TYPE falcosecurity_scap_n_evts_cpu_total counter\nfalcosecurity_scap_n_evts_cpu_total{cpu=\"0\"} 600\n".to_string(),
            "falcosecurity_scap_n_evts_cpu_total{cpu=\"3\"} 400\n".to_string(),
            "# TYPE falcosecurity_scap_n_drops_cpu_total counter\nfalcosecurity_scap_n_drops_cpu_total{cpu=\"0\"} 1\n".to_string(),
            "falcosecurity_scap_n_drops_cpu_total{cpu=\"3\"} 8\n".to_string(),
        ] {
            assert!(text.contains(&expected), "{expected}\nnot in\n{text}");
        }
        let mut prev = Previous::default();
        let fields = output_fields(&ctx, "syscall", &s, None, &Machine::default(), 1, &mut prev);
        let get = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get("falco.sha256_rules_file.my_rules_yaml"),
            Some(Value::Text(abc.into()))
        );
        assert_eq!(
            get("falco.sha256_config_file.falco_yaml"),
            Some(Value::Text(empty.into()))
        );
        assert_eq!(get("scap.n_evts_cpu_3"), Some(Value::Int(400)));
        assert_eq!(get("scap.n_drops_cpu_3"), Some(Value::Int(8)));
        assert_eq!(get("scap.n_evts_cpu_0"), Some(Value::Int(600)));
        // Off, as Falco's default: no per-CPU series or fields.
        ctx.families.kernel_event_counters_per_cpu = false;
        let text = prometheus_text(&ctx, &s, None, &Machine::default(), 0);
        assert!(!text.contains("_cpu_total"), "{text}");
        let fields = output_fields(&ctx, "syscall", &s, None, &Machine::default(), 1, &mut prev);
        assert!(!fields.iter().any(|(n, _)| n.contains("_cpu_")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn plugin_metric_names_are_built_as_libsinsp_builds_them() {
        for (name, prometheus) in [
            ("dummy.events", "falcosecurity_plugins_dummy_events_total"),
            // A unit suffix the name already has goes, wherever it is.
            ("dummy.n_total", "falcosecurity_plugins_dummy_n_total"),
            (
                "k8smeta.queue_total_sec",
                "falcosecurity_plugins_k8smeta_queue_total",
            ),
            ("x.used_percentage", "falcosecurity_plugins_x_used_total"),
            ("x.used_perc", "falcosecurity_plugins_x_used_total"),
            // Characters Prometheus refuses, and runs of `_`.
            ("my-plugin.a b", "falcosecurity_plugins_my_plugin_a_b_total"),
            ("p.__x", "falcosecurity_plugins_p_x_total"),
        ] {
            assert_eq!(plugin_metric_name(name), prometheus, "{name}");
        }
    }

    #[test]
    fn plugin_metrics_in_prometheus_and_in_the_snapshot() {
        let ctx = context();
        let mut s = sample_now();
        s.plugins = vec![
            PluginMetric {
                name: "dummy.events".into(),
                monotonic: true,
                value: PluginValue::Unsigned(12),
            },
            PluginMetric {
                name: "dummy.lag".into(),
                monotonic: false,
                value: PluginValue::Signed(-3),
            },
            PluginMetric {
                name: "dummy.ratio".into(),
                monotonic: false,
                value: PluginValue::Double(0.25),
            },
            PluginMetric {
                name: "dummy.idle".into(),
                monotonic: false,
                value: PluginValue::Unsigned(0),
            },
        ];
        let text = prometheus_text(&ctx, &s, None, &Machine::default(), 0);
        for expected in [
            "# TYPE falcosecurity_plugins_dummy_events_total counter\nfalcosecurity_plugins_dummy_events_total 12\n",
            "# TYPE falcosecurity_plugins_dummy_lag_total gauge\nfalcosecurity_plugins_dummy_lag_total -3\n",
            "falcosecurity_plugins_dummy_ratio_total 0.250000\n",
            // Prometheus always has zeros.
            "falcosecurity_plugins_dummy_idle_total 0\n",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
        let mut prev = Previous::default();
        let fields = output_fields(&ctx, "syscall", &s, None, &Machine::default(), 1, &mut prev);
        let get = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("plugins.dummy.events"), Some(Value::Int(12)));
        assert_eq!(get("plugins.dummy.lag"), Some(Value::Signed(-3)));
        assert_eq!(get("plugins.dummy.ratio"), Some(Value::Float(0.25)));
        // The snapshot leaves zeros out unless include_empty_values.
        assert_eq!(get("plugins.dummy.idle"), None);
        let mut off = ctx.clone();
        off.families.plugins = false;
        let text = prometheus_text(&off, &s, None, &Machine::default(), 0);
        assert!(!text.contains("falcosecurity_plugins_"), "{text}");
        let fields = output_fields(&off, "syscall", &s, None, &Machine::default(), 1, &mut prev);
        assert!(!fields.iter().any(|(n, _)| n.starts_with("plugins.")));
    }
}
