//! Counters of a running Peregrine, shared by the event loop, the audit
//! thread, the outputs and the webserver; rendered as Prometheus text for
//! `/metrics` and as the fields of the periodic stats alert.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use peregrine_driver_sys::RingStats;

use crate::alert::Priority;
use crate::outputs::ChannelStats;
use crate::webserver::{AuditIntakeStats, MetricsSource};

#[derive(Default)]
struct RuleCount {
    priority: Option<Priority>,
    alerts: u64,
}

/// The output channels running now, with their counters. Asked at each
/// scrape: a config reload changes the channels.
pub type OutputStats = dyn Fn() -> Vec<(&'static str, Arc<ChannelStats>)> + Send + Sync;

pub struct Metrics {
    started: Instant,
    pub events: AtomicU64,
    pub alerts: AtomicU64,
    by_rule: Mutex<BTreeMap<String, RuleCount>>,
    kernel: Mutex<Option<RingStats>>,
    outputs: Box<OutputStats>,
    /// The webhook's counters while it listens (a reload may start or
    /// stop it).
    audit: Mutex<Option<Arc<AuditIntakeStats>>>,
}

impl Metrics {
    pub fn new(outputs: Box<OutputStats>, audit: Option<Arc<AuditIntakeStats>>) -> Self {
        Metrics {
            started: Instant::now(),
            events: AtomicU64::new(0),
            alerts: AtomicU64::new(0),
            by_rule: Mutex::new(BTreeMap::new()),
            kernel: Mutex::new(None),
            outputs,
            audit: Mutex::new(audit),
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
        values
    }
}

impl MetricsSource for Metrics {
    fn prometheus_text(&self) -> String {
        let mut text = String::new();
        for (name, value) in self.snapshot() {
            let _ = writeln!(text, "{name} {value}");
        }
        if let Ok(by_rule) = self.by_rule.lock() {
            for (rule, count) in by_rule.iter() {
                let priority = count.priority.map(|p| p.as_str()).unwrap_or("");
                let _ = writeln!(
                    text,
                    "peregrine_rule_alerts_total{{rule=\"{}\",priority=\"{priority}\"}} {}",
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
            ] {
                let _ = writeln!(
                    text,
                    "peregrine_output_alerts_total{{output=\"{name}\",outcome=\"{what}\"}} {}",
                    value.load(Ordering::Relaxed)
                );
            }
        }
        let audit = self.audit.lock().ok().and_then(|a| a.clone());
        if let Some(audit) = audit {
            for (what, value) in [
                ("requests", &audit.requests),
                ("events", &audit.events),
                ("bad_requests", &audit.bad_requests),
                ("too_large", &audit.too_large),
                ("busy", &audit.busy),
            ] {
                let _ = writeln!(
                    text,
                    "peregrine_k8s_audit_{what}_total {}",
                    value.load(Ordering::Relaxed)
                );
            }
        }
        text
    }
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
        assert!(text.contains("peregrine_events_total 10\n"), "{text}");
        assert!(text.contains("peregrine_alerts_total 2\n"));
        assert!(text.contains(
            "peregrine_rule_alerts_total{rule=\"Write \\\"below\\\" etc\",priority=\"Error\"} 2\n"
        ));
        assert!(
            text.contains("peregrine_output_alerts_total{output=\"stdout\",outcome=\"sent\"} 3\n")
        );
        assert!(text.contains("peregrine_kernel_drops_buffer_total 2\n"));
        assert!(text.contains("peregrine_k8s_audit_busy_total 0\n"));
        assert!(text.contains("peregrine_resident_memory_bytes "));
    }
}
