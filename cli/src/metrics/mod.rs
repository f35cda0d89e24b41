//! Counters of a running Peregrine, shared by the event loop, the audit
//! thread, the outputs and the webserver; rendered as Prometheus text for
//! `/metrics` and as the fields of the periodic stats alert.

pub mod falco;
pub mod file;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use peregrine_driver_sys::{RingStats, Stats};
use peregrine_engine::event::merge::MergeStats;

use self::falco::{Context, Machine, Previous, Resources, RuleMatches, Sample};
use crate::alert::Priority;
use crate::outputs::ChannelStats;
use crate::servers::listener::ListenerStats;
use crate::servers::webserver::{AuditIntakeStats, MetricsSource};

#[derive(Default)]
struct RuleCount {
    priority: Option<Priority>,
    alerts: u64,
    /// The rule's source and tags, which Falco's rule counters carry.
    source: String,
    tags: Vec<String>,
}

/// Reads what the loaded plugins report through `get_metrics`.
pub type PluginMetricsRead = dyn Fn() -> Vec<falco::PluginMetric> + Send + Sync;

/// The output channels running now, with their counters. Asked at each
/// scrape: a config reload changes the channels.
pub type OutputStats = dyn Fn() -> Vec<(&'static str, Arc<ChannelStats>)> + Send + Sync;

pub struct Metrics {
    started: Instant,
    pub events: AtomicU64,
    pub alerts: AtomicU64,
    by_rule: Mutex<BTreeMap<String, RuleCount>>,
    /// The rings' total as last published. Its lock also covers
    /// publishing [`Self::rings`]' per-CPU counters, so that a snapshot
    /// pairs a total with the CPUs it is the sum of.
    kernel: Mutex<Option<RingStats>>,
    state: Mutex<Option<StateCounts>>,
    /// What the enter/exit merge met, as last published by the event loop
    /// (once per batch: stores, not a lock), once it has published.
    merge: MergeCounts,
    outputs: Box<OutputStats>,
    /// The webhook's counters while it listens (a reload may start or
    /// stop it).
    audit: Mutex<Option<Arc<AuditIntakeStats>>>,
    /// The counters of each listening socket, by listener.
    listeners: Mutex<BTreeMap<&'static str, Arc<ListenerStats>>>,
    /// What Falco's families say about the process (set at start).
    falco: Mutex<Context>,
    machine: Machine,
    /// Threads in the syscall state, u64::MAX until the source says.
    pub threads: AtomicU64,
    /// The previous snapshot, per source, for Falco's rate fields.
    previous: Mutex<BTreeMap<String, Previous>>,
    /// The container runtimes' lookup counters, when metadata is looked up.
    containers: Mutex<Option<Arc<crate::containers::ContainerStats>>>,
    /// Per-CPU ring counters and the reading thread's CPU time.
    pub rings: crate::sources::ring_health::RingHealth,
    /// The plugins' own metrics, when plugins are loaded.
    plugins: Mutex<Option<Arc<PluginMetricsRead>>>,
}

impl Metrics {
    pub fn new(outputs: Box<OutputStats>, audit: Option<Arc<AuditIntakeStats>>) -> Self {
        Metrics {
            started: Instant::now(),
            events: AtomicU64::new(0),
            alerts: AtomicU64::new(0),
            by_rule: Mutex::new(BTreeMap::new()),
            kernel: Mutex::new(None),
            state: Mutex::new(None),
            merge: MergeCounts::default(),
            outputs,
            audit: Mutex::new(audit),
            listeners: Mutex::default(),
            falco: Mutex::new(Context {
                start_ts: now_ns(),
                reload_ts: now_ns(),
                ..Context::default()
            }),
            machine: Machine::read(),
            threads: AtomicU64::new(u64::MAX),
            previous: Mutex::default(),
            containers: Mutex::default(),
            rings: Default::default(),
            plugins: Mutex::default(),
        }
    }

    /// Sets what Falco's families say about the process: the families
    /// enabled, the sources and their engines, the host name. The start
    /// time stays.
    pub fn set_falco_context(&self, context: Context) {
        if let Ok(mut slot) = self.falco.lock() {
            let (start_ts, reload_ts) = (slot.start_ts, slot.reload_ts);
            *slot = Context {
                start_ts,
                reload_ts,
                ..context
            };
        }
    }

    /// A reload: Falco's `reload_ts` and the families enabled.
    pub fn reloaded(&self, families: falco::Families) {
        if let Ok(mut slot) = self.falco.lock() {
            slot.reload_ts = now_ns();
            slot.families = families;
        }
    }

    /// The rules files just loaded and the config files just read, whose
    /// checksums Falco's `sha256_*_files_info` report.
    pub fn set_loaded_files(&self, rules: &[std::path::PathBuf], config: &[std::path::PathBuf]) {
        let rules = falco::files_sha256(rules);
        let config = falco::files_sha256(config);
        if let Ok(mut slot) = self.falco.lock() {
            slot.rules_files_sha256 = rules;
            slot.config_files_sha256 = config;
        }
    }

    /// An alert, with the rule's source and tags for Falco's rule counters.
    pub fn count_rule_alert(&self, rule: &str, priority: Priority, source: &str, tags: &[String]) {
        self.count_alert(rule, priority);
        if let Ok(mut by_rule) = self.by_rule.lock() {
            if let Some(entry) = by_rule.get_mut(rule) {
                if entry.source.is_empty() {
                    entry.source = source.to_string();
                    entry.tags = tags.to_vec();
                }
            }
        }
    }

    /// The source a snapshot speaks for: syscall when it runs, else the
    /// first one running.
    pub fn snapshot_source(&self) -> String {
        let context = self.falco.lock().map(|c| c.clone()).unwrap_or_default();
        context
            .sources
            .iter()
            .map(|(source, _)| source.clone())
            .find(|s| s == "syscall")
            .or_else(|| context.sources.first().map(|(s, _)| s.clone()))
            .unwrap_or_else(|| "syscall".into())
    }

    fn falco_sample(&self) -> (Context, Sample) {
        let context = self.falco.lock().map(|c| c.clone()).unwrap_or_default();
        let rules = self
            .by_rule
            .lock()
            .map(|by_rule| {
                by_rule
                    .iter()
                    .map(|(rule, count)| RuleMatches {
                        rule: rule.clone(),
                        priority: count.priority.unwrap_or(Priority::Debug),
                        source: count.source.clone(),
                        tags: count.tags.clone(),
                        count: count.alerts,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let threads = self.threads.load(Ordering::Relaxed);
        let per_cpu = self.per_cpu_wanted();
        // Total and CPUs under one lock, as set_ring_stats publishes them:
        // Falco's per-CPU counters must add up to its totals.
        let (kernel, kernel_cpus) = match self.kernel.lock() {
            Ok(kernel) => (
                *kernel,
                if per_cpu {
                    self.rings.cpus()
                } else {
                    Vec::new()
                },
            ),
            Err(_) => (None, Vec::new()),
        };
        // Read outside every other lock: a plugin may take a moment.
        let plugins = if context.families.plugins {
            let read = self.plugins.lock().ok().and_then(|slot| slot.clone());
            read.map(|read| read()).unwrap_or_default()
        } else {
            Vec::new()
        };
        let sample = Sample {
            events: self.events.load(Ordering::Relaxed),
            rules,
            kernel,
            kernel_cpus,
            threads: (threads != u64::MAX).then_some(threads),
            outputs_queue_drops: (self.outputs)()
                .iter()
                .map(|(_, stats)| stats.overflowed.load(Ordering::Relaxed))
                .sum(),
            plugins,
        };
        (context, sample)
    }

    /// The fields of a metrics snapshot of `source`, under Falco's names
    /// (the snapshot alert and `metrics.output_file`).
    pub fn falco_snapshot(&self, source: &str) -> Vec<(String, falco::Value)> {
        let (context, sample) = self.falco_sample();
        let resources = context.families.resource_utilization.then(Resources::read);
        let mut previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
        let prev = previous.entry(source.to_string()).or_default();
        falco::output_fields(
            &context,
            source,
            &sample,
            resources.as_ref(),
            &self.machine,
            now_ns(),
            prev,
        )
    }

    /// The counters of the listener `name`, or None when it stops.
    pub fn set_listener(&self, name: &'static str, stats: Option<Arc<ListenerStats>>) {
        if let Ok(mut listeners) = self.listeners.lock() {
            match stats {
                Some(stats) => listeners.insert(name, stats),
                None => listeners.remove(name),
            };
        }
    }

    /// What reads the loaded plugins' metrics.
    pub fn set_plugins(&self, read: Option<Arc<PluginMetricsRead>>) {
        if let Ok(mut slot) = self.plugins.lock() {
            *slot = read;
        }
    }

    /// The container runtimes' lookup counters.
    pub fn set_containers(&self, stats: Option<Arc<crate::containers::ContainerStats>>) {
        if let Ok(mut slot) = self.containers.lock() {
            *slot = stats;
        }
    }

    /// The webhook's counters, or None when it stops listening.
    pub fn set_audit(&self, audit: Option<Arc<AuditIntakeStats>>) {
        if let Ok(mut slot) = self.audit.lock() {
            *slot = audit;
        }
    }

    pub fn count_alert(&self, rule: &str, priority: Priority) {
        self.alerts.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut by_rule) = self.by_rule.lock() {
            let entry = by_rule.entry(rule.to_string()).or_default();
            entry.priority = Some(priority);
            entry.alerts += 1;
        }
    }

    pub fn set_kernel(&self, stats: RingStats) {
        if let Ok(mut kernel) = self.kernel.lock() {
            *kernel = Some(stats);
        }
    }

    /// One read of every ring: the total and each CPU's counters, made
    /// visible together. Published apart, a scrape between the two could
    /// pair one read's CPUs with another read's total.
    pub fn set_ring_stats(&self, stats: Stats) {
        if let Ok(mut kernel) = self.kernel.lock() {
            *kernel = Some(stats.total);
            self.rings.set_cpus(stats.per_cpu);
        }
    }

    /// Whether Falco's per-CPU kernel counters are asked for; the counters
    /// themselves are the rings' ([`Self::rings`]), read once per batch.
    fn per_cpu_wanted(&self) -> bool {
        self.falco
            .lock()
            .map(|c| c.families.kernel_event_counters_per_cpu)
            .unwrap_or(false)
    }

    /// The syscall state's table sizes and evictions, as last published
    /// by the event loop.
    pub fn set_state(&self, counts: StateCounts) {
        if let Ok(mut state) = self.state.lock() {
            *state = Some(counts);
        }
    }

    /// The enter/exit merge's counts (see [`MergeStats`]), as last
    /// published by the event loop.
    pub fn set_merge(&self, stats: MergeStats) {
        let m = &self.merge;
        m.rebuilt.store(stats.merged, Ordering::Relaxed);
        m.exits_without_enter
            .store(stats.exits_without_enter, Ordering::Relaxed);
        m.enters_without_exit
            .store(stats.enters_without_exit, Ordering::Relaxed);
        m.named_from_enter
            .store(stats.enter_preferred, Ordering::Relaxed);
        m.published.store(true, Ordering::Relaxed);
    }

    /// The values of the stats snapshot, named as in `/metrics`.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let mut values = vec![
            (
                "peregrine_events_total".to_string(),
                self.events.load(Ordering::Relaxed),
            ),
            (
                "peregrine_alerts_total".to_string(),
                self.alerts.load(Ordering::Relaxed),
            ),
            (
                "peregrine_uptime_seconds".to_string(),
                self.started.elapsed().as_secs(),
            ),
        ];
        if let Some(rss) = resident_bytes() {
            values.push(("peregrine_resident_memory_bytes".into(), rss));
        }
        if let Some(cpu) = cpu_seconds() {
            values.push(("peregrine_cpu_seconds_total".into(), cpu));
        }
        if let Ok(kernel) = self.kernel.lock() {
            if let Some(k) = kernel.as_ref() {
                values.extend([
                    ("peregrine_kernel_events_total".to_string(), k.n_evts),
                    (
                        "peregrine_kernel_drops_buffer_total".to_string(),
                        k.n_drops_buffer,
                    ),
                    (
                        "peregrine_kernel_drops_page_fault_total".to_string(),
                        k.n_drops_pf,
                    ),
                    (
                        "peregrine_kernel_drops_too_large_total".to_string(),
                        k.n_drops_too_large,
                    ),
                    (
                        "peregrine_kernel_param_faults_total".to_string(),
                        k.n_faults,
                    ),
                    (
                        "peregrine_kernel_sampled_out_total".to_string(),
                        k.n_drops_sampling,
                    ),
                    (
                        "peregrine_kernel_reentries_skipped_total".to_string(),
                        k.n_preemptions,
                    ),
                ]);
            }
        }
        if let Ok(state) = self.state.lock() {
            if let Some(st) = state.as_ref() {
                values.extend([
                    ("peregrine_state_threads".to_string(), st.threads),
                    (
                        "peregrine_state_threads_evicted_total".to_string(),
                        st.threads_evicted,
                    ),
                    (
                        "peregrine_state_threads_purged_total".to_string(),
                        st.threads_purged,
                    ),
                    (
                        "peregrine_state_fds_evicted_total".to_string(),
                        st.fds_evicted,
                    ),
                ]);
            }
        }
        let m = &self.merge;
        if m.published.load(Ordering::Relaxed) {
            let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
            values.extend([
                (
                    "peregrine_merge_exits_rebuilt_total".to_string(),
                    load(&m.rebuilt),
                ),
                (
                    "peregrine_merge_exits_without_enter_total".to_string(),
                    load(&m.exits_without_enter),
                ),
                (
                    "peregrine_merge_enters_without_exit_total".to_string(),
                    load(&m.enters_without_exit),
                ),
                // An open whose path (flags, dirfd) changed between its
                // enter and its exit: another thread rewrote it under the
                // call, the way around a rule on the file's name.
                (
                    "peregrine_merge_opens_named_from_enter_total".to_string(),
                    load(&m.named_from_enter),
                ),
            ]);
        }
        values
    }
}

/// [`MergeStats`] as `/metrics` reads them, each a counter of its own.
#[derive(Debug, Default)]
struct MergeCounts {
    published: AtomicBool,
    rebuilt: AtomicU64,
    exits_without_enter: AtomicU64,
    enters_without_exit: AtomicU64,
    named_from_enter: AtomicU64,
}

/// What the thread and fd tables hold and have dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StateCounts {
    pub threads: u64,
    /// Threads dropped to make room in a full table.
    pub threads_evicted: u64,
    /// Threads removed after they exited (or, live, vanished unseen).
    pub threads_purged: u64,
    /// Fds dropped to make room in a process's full table.
    pub fds_evicted: u64,
}

impl StateCounts {
    pub fn of(state: &peregrine_engine::state::State) -> StateCounts {
        StateCounts {
            threads: state.thread_count() as u64,
            threads_evicted: state.evicted,
            threads_purged: state.purged,
            fds_evicted: state.fds_evicted,
        }
    }
}

impl MetricsSource for Metrics {
    /// Falco's families first, then Peregrine's own counters under
    /// `falcosecurity_peregrine_` (the names of [`Metrics::snapshot`]
    /// with that prefix).
    fn prometheus_text(&self) -> String {
        let (context, sample) = self.falco_sample();
        let resources = context.families.resource_utilization.then(Resources::read);
        let mut text = falco::prometheus_text(
            &context,
            &sample,
            resources.as_ref(),
            &self.machine,
            now_ns(),
        );
        for (name, value) in self.snapshot() {
            let _ = writeln!(text, "{} {value}", own(&name));
        }
        self.rings.write_prometheus(&mut text);
        if let Ok(by_rule) = self.by_rule.lock() {
            for (rule, count) in by_rule.iter() {
                let priority = count.priority.map(|p| p.as_str()).unwrap_or("");
                let _ = writeln!(
                    text,
                    "falcosecurity_peregrine_rule_alerts_total{{rule=\"{}\",priority=\"{priority}\"}} {}",
                    escape_label(rule),
                    count.alerts
                );
            }
        }
        for (name, stats) in (self.outputs)() {
            for (what, value) in [
                ("sent", &stats.sent),
                ("overflowed", &stats.overflowed),
                ("failed", &stats.failed),
                ("dropped", &stats.dropped),
            ] {
                let _ = writeln!(
                    text,
                    "falcosecurity_peregrine_output_alerts_total{{output=\"{name}\",outcome=\"{what}\"}} {}",
                    value.load(Ordering::Relaxed)
                );
            }
            // Read live, so a channel stuck on its first alert shows at
            // once, not when that alert finally fails.
            let _ = writeln!(
                text,
                "falcosecurity_peregrine_output_queue_depth{{output=\"{name}\"}} {}",
                stats.queued()
            );
            let _ = writeln!(
                text,
                "falcosecurity_peregrine_output_oldest_queued_age_seconds{{output=\"{name}\"}} {:.3}",
                stats.oldest_age().as_secs_f64()
            );
        }
        let audit = self.audit.lock().ok().and_then(|a| a.clone());
        if let Some(audit) = audit {
            for (what, value) in [
                ("requests", &audit.requests),
                ("events", &audit.events),
                ("bad_requests", &audit.bad_requests),
                ("too_large", &audit.too_large),
                ("busy", &audit.busy),
                ("timed_out", &audit.timed_out),
            ] {
                let _ = writeln!(
                    text,
                    "falcosecurity_peregrine_k8s_audit_{what}_total {}",
                    value.load(Ordering::Relaxed)
                );
            }
        }
        let listeners: Vec<_> = self
            .listeners
            .lock()
            .map(|l| l.iter().map(|(n, s)| (*n, Arc::clone(s))).collect())
            .unwrap_or_default();
        for (name, stats) in listeners {
            for (what, value) in [
                ("connections_accepted", &stats.accepted),
                ("accept_errors", &stats.accept_errors),
                ("connections_evicted", &stats.evicted),
            ] {
                let _ = writeln!(
                    text,
                    "falcosecurity_peregrine_http_{what}_total{{listener=\"{name}\"}} {}",
                    value.load(Ordering::Relaxed)
                );
            }
        }
        let containers = self.containers.lock().ok().and_then(|c| c.clone());
        if let Some(containers) = containers {
            text.push_str(&containers.prometheus_text());
        }
        text
    }
}

/// A counter of [`Metrics::snapshot`] as `/metrics` names it: Falco's
/// `namespace_subsystem_name` scheme, subsystem `peregrine`.
fn own(name: &str) -> String {
    format!("falcosecurity_{name}")
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Prometheus label values escape backslash, quote and newline.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User plus system CPU time, in whole seconds.
fn cpu_seconds() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may hold spaces, in parentheses.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()?;
    Some((utime + stime) / u64::try_from(ticks).ok()?.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_evictions_reach_the_metrics_text() {
        use peregrine_engine::state::{State, Thread};
        let metrics = Metrics::new(Box::new(Vec::new), None);
        assert!(!metrics.prometheus_text().contains("peregrine_state_"));
        let mut state = State::new();
        state.max_threads = 4;
        for tid in 1..=6 {
            state.insert_thread(Thread {
                tid,
                pid: tid,
                last_seen: tid as u64,
                ..Thread::default()
            });
        }
        metrics.set_state(StateCounts::of(&state));
        let text = metrics.prometheus_text();
        assert!(text.contains("peregrine_state_threads 4\n"), "{text}");
        assert!(
            text.contains("peregrine_state_threads_evicted_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("peregrine_state_threads_purged_total 0\n"),
            "{text}"
        );
        assert!(
            text.contains("peregrine_state_fds_evicted_total 0\n"),
            "{text}"
        );
    }

    #[test]
    fn per_cpu_counters_come_with_the_total_of_the_same_read() {
        use peregrine_driver_sys::CpuStats;
        let metrics = Metrics::new(Box::new(Vec::new), None);
        let mut context = Context::default();
        context.families.kernel_event_counters_per_cpu = true;
        metrics.set_falco_context(context);
        let ring = |cpu, n_evts, n_drops_buffer| CpuStats {
            cpu,
            stats: RingStats {
                n_evts,
                n_drops_buffer,
                ..RingStats::default()
            },
            used_bytes: 0,
            buffer_size: 8192,
        };
        metrics.set_ring_stats(Stats::new(vec![ring(0, 5, 1), ring(1, 9, 0)]));
        metrics.set_ring_stats(Stats::new(vec![ring(0, 7, 1), ring(1, 11, 2)]));
        let text = metrics.prometheus_text();
        for line in [
            "falcosecurity_scap_n_evts_cpu_total{cpu=\"0\"} 7",
            "falcosecurity_scap_n_evts_cpu_total{cpu=\"1\"} 11",
            "falcosecurity_scap_n_drops_cpu_total{cpu=\"1\"} 2",
            "falcosecurity_scap_n_evts_total 18",
            "falcosecurity_scap_n_drops_total 3",
            "falcosecurity_peregrine_kernel_cpu_events_total{cpu=\"1\"} 11",
        ] {
            assert!(text.contains(&format!("\n{line}\n")), "{line} in:\n{text}");
        }
    }

    #[test]
    fn prometheus_text_has_counters_rules_and_outputs() {
        let stdout = Arc::new(ChannelStats::default());
        stdout.sent.store(3, Ordering::Relaxed);
        let metrics = Metrics::new(
            Box::new(move || vec![("stdout", Arc::clone(&stdout))]),
            Some(Arc::default()),
        );
        metrics.events.store(10, Ordering::Relaxed);
        metrics.count_alert("Write \"below\" etc", Priority::Error);
        metrics.count_alert("Write \"below\" etc", Priority::Error);
        metrics.set_kernel(RingStats {
            n_evts: 7,
            n_drops_buffer: 2,
            ..RingStats::default()
        });
        let text = metrics.prometheus_text();
        assert!(
            text.contains("\nfalcosecurity_peregrine_events_total 10\n"),
            "{text}"
        );
        assert!(text.contains("\nfalcosecurity_peregrine_alerts_total 2\n"));
        assert!(text.contains(
            "\nfalcosecurity_peregrine_rule_alerts_total{rule=\"Write \\\"below\\\" etc\",priority=\"Error\"} 2\n"
        ));
        assert!(text.contains(
            "\nfalcosecurity_peregrine_output_alerts_total{output=\"stdout\",outcome=\"sent\"} 3\n"
        ));
        assert!(text.contains("\nfalcosecurity_peregrine_kernel_drops_buffer_total 2\n"));
        assert!(text.contains("\nfalcosecurity_peregrine_k8s_audit_busy_total 0\n"));
        assert!(text.contains("\nfalcosecurity_peregrine_resident_memory_bytes "));
        // Falco's families come first, under Falco's names.
        assert!(text.starts_with("# HELP falcosecurity_falco_version_info "));
        assert!(text.contains("\nfalcosecurity_scap_n_evts_total 7\n"));
        assert!(text.contains(
            "\nfalcosecurity_falco_rules_matches_total{priority=\"3\",rule_name=\"Write \\\"below\\\" etc\",source=\"\"} 2\n"
        ));
    }
}
