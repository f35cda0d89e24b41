//! Watching the kernel's drop counters, as Falco's `syscall_event_drops`.
//!
//! Once per second of event time the counters are compared with the
//! previous reading. When the share of dropped events in that second is
//! above the threshold, the configured actions run, at most as often as a
//! token bucket (`rate` per second, `max_burst` tokens) allows. Counting by
//! event time, not wall time, makes a replayed capture behave as it did
//! live, which is what the regression cases rely on.

use crate::config::{DropAction, SyscallEventDrops};

const ONE_SECOND_NS: u64 = 1_000_000_000;

/// The name of the internal alert. Falco's, kept so that consumers that
/// route on rule names (Falcosidekick, dashboards) work unchanged.
pub const DROP_RULE: &str = "Falco internal: syscall event drop";

/// Cumulative counters as the driver reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// Events the driver handled, written or dropped.
    pub n_evts: u64,
    pub n_drops_buffer: u64,
    pub n_drops_pf: u64,
    pub n_drops_too_large: u64,
    pub n_preemptions: u64,
}

impl DropCounters {
    /// Events lost against the user's will. Sampling (dropping mode) is
    /// asked for, so it is not a drop.
    pub fn n_drops(&self) -> u64 {
        self.n_drops_buffer + self.n_drops_pf + self.n_drops_too_large
    }

    fn since(&self, earlier: &DropCounters) -> DropCounters {
        DropCounters {
            n_evts: self.n_evts.saturating_sub(earlier.n_evts),
            n_drops_buffer: self.n_drops_buffer.saturating_sub(earlier.n_drops_buffer),
            n_drops_pf: self.n_drops_pf.saturating_sub(earlier.n_drops_pf),
            n_drops_too_large: self
                .n_drops_too_large
                .saturating_sub(earlier.n_drops_too_large),
            n_preemptions: self.n_preemptions.saturating_sub(earlier.n_preemptions),
        }
    }
}

/// What the caller must do about one second with drops.
#[derive(Debug, Clone, PartialEq)]
pub struct DropReport {
    /// Event time of the check, ns.
    pub time_ns: u64,
    /// Counters for the second just past (drops include a simulated one).
    pub delta: DropCounters,
    pub n_drops: u64,
    pub actions: Vec<DropAction>,
}

impl DropReport {
    /// `Falco internal: syscall event drop. 3 system calls dropped in last second.`
    pub fn message(&self) -> String {
        format!(
            "{DROP_RULE}. {} system calls dropped in last second.",
            self.n_drops
        )
    }

    /// The alert's fields: current Falco's set, with its names. The module
    /// does not count buffer drops per syscall category, nor has scratch
    /// maps or eBPF: those read 0. Drops of events too large are in
    /// n_drops (ring_health and /metrics have them apart).
    pub fn fields(&self) -> Vec<(String, Option<String>)> {
        let d = &self.delta;
        [
            ("n_evts", d.n_evts),
            ("n_drops", self.n_drops),
            ("n_drops_buffer_total", d.n_drops_buffer),
            ("n_drops_buffer_clone_fork_exit", 0),
            ("n_drops_buffer_execve_exit", 0),
            ("n_drops_buffer_connect_exit", 0),
            ("n_drops_buffer_open_exit", 0),
            ("n_drops_buffer_dir_file_exit", 0),
            ("n_drops_buffer_other_interest_exit", 0),
            ("n_drops_buffer_close_exit", 0),
            ("n_drops_buffer_proc_exit", 0),
            ("n_drops_scratch_map", 0),
            ("n_drops_page_faults", d.n_drops_pf),
            ("n_drops_bug", 0),
            ("ebpf_enabled", 0),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), Some(value.to_string())))
        .collect()
    }
}

/// Falco's token bucket: `rate` tokens a second up to `max`, full at start.
#[derive(Debug, Clone)]
struct TokenBucket {
    rate: f64,
    max: f64,
    tokens: f64,
    last_ns: Option<u64>,
}

impl TokenBucket {
    fn new(rate: f64, max: f64) -> Self {
        TokenBucket {
            rate,
            max,
            tokens: max,
            last_ns: None,
        }
    }

    fn claim(&mut self, now_ns: u64) -> bool {
        if let Some(last) = self.last_ns {
            let gained = self.rate * now_ns.saturating_sub(last) as f64 / ONE_SECOND_NS as f64;
            self.tokens = (self.tokens + gained).min(self.max);
        }
        self.last_ns = Some(now_ns);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

#[derive(Debug, Clone)]
pub struct DropMonitor {
    actions: Vec<DropAction>,
    threshold: f64,
    simulate: bool,
    bucket: TokenBucket,
    next_check_ns: Option<u64>,
    last: DropCounters,
    /// Seconds in which drops passed the threshold.
    pub occurrences: u64,
    /// Of those, the ones the token bucket let act on.
    pub actions_taken: u64,
}

impl DropMonitor {
    pub fn new(settings: &SyscallEventDrops, initial: DropCounters) -> Self {
        DropMonitor {
            actions: settings.actions.clone(),
            // A simulated drop must always be acted on.
            threshold: if settings.simulate_drops {
                0.0
            } else {
                settings.threshold
            },
            simulate: settings.simulate_drops,
            bucket: TokenBucket::new(settings.rate, f64::from(settings.max_burst)),
            next_check_ns: None,
            last: initial,
            occurrences: 0,
            actions_taken: 0,
        }
    }

    /// Takes new settings (a config reload) and keeps what was measured:
    /// the last counters, the next check and the totals of the summary.
    /// The token bucket starts full, as at startup.
    pub fn reconfigure(&mut self, settings: &SyscallEventDrops) {
        let fresh = DropMonitor::new(settings, self.last);
        self.actions = fresh.actions;
        self.threshold = fresh.threshold;
        self.simulate = fresh.simulate;
        self.bucket = fresh.bucket;
    }

    /// Whether any action is configured (with none, drops are still
    /// measured, so that a reload adding actions acts on the next second,
    /// but nothing is said about them).
    pub fn acting(&self) -> bool {
        !self.actions.is_empty()
    }

    /// Called for every event with its time; reads the counters only once
    /// per second of event time.
    pub fn on_event(
        &mut self,
        time_ns: u64,
        counters: impl FnOnce() -> DropCounters,
    ) -> Option<DropReport> {
        let next = *self
            .next_check_ns
            .get_or_insert(time_ns.saturating_add(ONE_SECOND_NS));
        if time_ns <= next {
            return None;
        }
        self.next_check_ns = Some(time_ns.saturating_add(ONE_SECOND_NS));
        let now = counters();
        let delta = now.since(&self.last);
        self.last = now;
        let n_drops = delta.n_drops() + u64::from(self.simulate);
        if n_drops == 0 {
            return None;
        }
        // n_evts counts drops too; a simulated drop may have no events.
        let ratio = n_drops as f64 / delta.n_evts.max(n_drops) as f64;
        if ratio <= self.threshold {
            return None;
        }
        self.occurrences += 1;
        if !self.bucket.claim(time_ns) {
            return None;
        }
        self.actions_taken += 1;
        Some(DropReport {
            time_ns,
            delta,
            n_drops,
            actions: self.actions.clone(),
        })
    }

    /// The closing lines Falco prints on stderr.
    pub fn summary(&self) -> String {
        format!(
            "Syscall event drop monitoring:\n   - event drop detected: {} occurrences\n   - num times actions taken: {}",
            self.occurrences, self.actions_taken
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(actions: Vec<DropAction>, simulate: bool, max_burst: u32) -> SyscallEventDrops {
        SyscallEventDrops {
            threshold: 0.1,
            actions,
            rate: 0.03333,
            max_burst,
            simulate_drops: simulate,
        }
    }

    #[test]
    fn reconfigure_keeps_the_counters_and_takes_the_actions() {
        let mut monitor =
            DropMonitor::new(&settings(Vec::new(), true, 10), DropCounters::default());
        assert!(!monitor.acting());
        let start = 1_000 * ONE_SECOND_NS;
        // Two seconds of simulated drops with no action: measured, quiet.
        for i in 0..21u64 {
            if let Some(report) =
                monitor.on_event(start + i * ONE_SECOND_NS / 10, DropCounters::default)
            {
                assert!(report.actions.is_empty());
            }
        }
        let seen = monitor.occurrences;
        assert!(seen >= 1);
        monitor.reconfigure(&settings(vec![DropAction::Alert], true, 10));
        assert!(monitor.acting());
        assert_eq!(monitor.occurrences, seen, "the totals carry over");
        let report = (21..40u64)
            .find_map(|i| monitor.on_event(start + i * ONE_SECOND_NS / 10, DropCounters::default))
            .expect("the next second acts");
        assert_eq!(report.actions, [DropAction::Alert]);
    }

    #[test]
    fn checks_once_per_second_of_event_time_and_simulates() {
        let mut monitor = DropMonitor::new(
            &settings(vec![DropAction::Alert], true, 10),
            DropCounters::default(),
        );
        let start = 1_000 * ONE_SECOND_NS;
        let mut reports = 0;
        // 12.5 seconds of events, 10 per second.
        for i in 0..125u64 {
            let t = start + i * ONE_SECOND_NS / 10;
            if monitor.on_event(t, DropCounters::default).is_some() {
                reports += 1;
            }
        }
        // The first check is one second after the first event, then one
        // per second after a check.
        assert_eq!(monitor.occurrences, 11);
        assert_eq!(
            monitor.actions_taken, 10,
            "the bucket holds 10 tokens and barely refills"
        );
        assert_eq!(reports, 10);
    }

    #[test]
    fn acts_only_above_the_threshold() {
        let mut monitor = DropMonitor::new(
            &settings(vec![DropAction::Log], false, 10),
            DropCounters::default(),
        );
        let s = ONE_SECOND_NS;
        assert!(monitor.on_event(s, DropCounters::default).is_none());
        // 5 drops out of 100 events: 5%, under 10%.
        let c1 = DropCounters {
            n_evts: 100,
            n_drops_buffer: 5,
            ..DropCounters::default()
        };
        assert!(monitor.on_event(3 * s, || c1).is_none());
        assert_eq!(monitor.occurrences, 0);
        // 30 more drops out of 100 more events: 30%.
        let c2 = DropCounters {
            n_evts: 200,
            n_drops_buffer: 25,
            n_drops_pf: 10,
            ..DropCounters::default()
        };
        let report = monitor.on_event(5 * s, || c2).expect("30% is above 10%");
        assert_eq!(report.n_drops, 30);
        assert_eq!(report.delta.n_drops_pf, 10);
        assert_eq!(
            report.message(),
            "Falco internal: syscall event drop. 30 system calls dropped in last second."
        );
        assert_eq!(
            monitor.summary().lines().nth(1),
            Some("   - event drop detected: 1 occurrences")
        );
    }

    #[test]
    fn the_token_bucket_limits_actions_but_not_occurrences() {
        let mut monitor = DropMonitor::new(
            &settings(vec![DropAction::Exit], true, 1),
            DropCounters::default(),
        );
        let s = ONE_SECOND_NS;
        let mut acted = Vec::new();
        for i in 0..10 {
            acted.push(
                monitor
                    .on_event(i * 2 * s + 1, DropCounters::default)
                    .is_some(),
            );
        }
        assert_eq!(monitor.actions_taken, 1);
        assert_eq!(monitor.occurrences, 9);
        assert_eq!(acted.iter().filter(|a| **a).count(), 1);
    }
}
