//! The main job: events from a source, through state and rules, to alerts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peregrine_driver_sys::{Driver, DriverConfig};
use peregrine_engine::event::EventView;
use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::output::Alert;
use peregrine_engine::rules::CompiledRules;
use peregrine_engine::scap::Capture;
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

use crate::alert::Priority;
use crate::config::BaseSyscalls;
use crate::drops::{DropCounters, DropMonitor, DROP_RULE};
use crate::interest::Interest;
use crate::metrics::Metrics;
use crate::outputs::Dispatcher;

/// Why the main loop stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot read capture {path}: {source}")]
    Capture {
        path: String,
        #[source]
        source: peregrine_engine::scap::ScapError,
    },
    #[error(transparent)]
    Driver(#[from] peregrine_driver_sys::DriverError),
    #[error("{0}")]
    Audit(String),
    #[error("{0}")]
    Traced(String),
}

/// The name of the periodic stats alert; Falco's, so dashboards built for
/// Falco's metrics alerts pick it up.
pub const STATS_RULE: &str = "Falco internal: metrics snapshot";

/// Counts that the closing summary prints, in Falco's words.
#[derive(Debug, Default)]
pub struct Detections {
    pub events: u64,
    pub alerts: u64,
    pub by_priority: BTreeMap<Priority, u64>,
    /// Per rule, in the order rules first fired.
    pub by_rule: Vec<(String, u64)>,
}

impl Detections {
    /// Adds another source's counts (the audit thread's) to these.
    pub fn merge(&mut self, other: Detections) {
        self.events += other.events;
        self.alerts += other.alerts;
        for (priority, n) in other.by_priority {
            *self.by_priority.entry(priority).or_default() += n;
        }
        for (rule, n) in other.by_rule {
            match self.by_rule.iter_mut().find(|(name, _)| *name == rule) {
                Some((_, total)) => *total += n,
                None => self.by_rule.push((rule, n)),
            }
        }
    }

    fn count(&mut self, rule: &str, priority: Priority) {
        self.alerts += 1;
        *self.by_priority.entry(priority).or_default() += 1;
        match self.by_rule.iter_mut().find(|(name, _)| name == rule) {
            Some((_, n)) => *n += 1,
            None => self.by_rule.push((rule.to_string(), 1)),
        }
    }

    /// The block Falco prints at the end of a run, which its regression
    /// harness and users' scripts read.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "Events detected: {}\nRule counts by severity:\n",
            self.alerts
        );
        for (priority, n) in &self.by_priority {
            // Falco's summary says INFO where alerts say Informational.
            let name = match priority {
                Priority::Informational => "INFO".to_string(),
                other => other.as_str().to_uppercase(),
            };
            text.push_str(&format!("   {name}: {n}\n"));
        }
        text.push_str("Triggered rules by rule name:\n");
        for (rule, n) in &self.by_rule {
            text.push_str(&format!("   {rule}: {n}\n"));
        }
        text
    }
}

/// What the loop needs besides events.
pub struct Pipeline<'a> {
    pub rules: &'a mut CompiledRules<SyscallFields>,
    pub dispatcher: &'a Dispatcher,
    pub metrics: &'a Metrics,
    /// Periodic stats alerts (`metrics.enabled`), every this often.
    pub stats_every: Option<Duration>,
    pub next_stats: Option<Instant>,
    pub hostname: &'a str,
    pub drops: Option<&'a mut DropMonitor>,
    pub stop: &'a AtomicBool,
    pub reload: Option<crate::reload::Inbox<crate::reload::SyscallUpdate>>,
    pub deadline: Option<Instant>,
    pub detections: Detections,
    /// Set when a drop action asked to exit.
    pub exit_requested: bool,
    /// Set when a reload swapped the rules in, to the `base_syscalls` that
    /// came with them; a live source takes it to choose its syscalls again.
    pub reloaded: Option<BaseSyscalls>,
}

impl Pipeline<'_> {
    /// One event: state first (rules see the state after the event, as in
    /// Falco), then the rules, then drop accounting.
    pub(crate) fn process(
        &mut self,
        state: &mut State,
        event: &EventView<'_>,
        counters: impl FnOnce() -> DropCounters,
    ) {
        self.detections.events += 1;
        self.metrics.events.fetch_add(1, Ordering::Relaxed);
        state.apply(event);
        let input = SyscallEvent { event, state };
        let (dispatcher, hostname, detections, metrics) = (
            self.dispatcher,
            self.hostname,
            &mut self.detections,
            self.metrics,
        );
        self.rules.evaluate(&input, |rule, source| {
            detections.count(&rule.name, rule.priority);
            metrics.count_alert(&rule.name, rule.priority);
            dispatcher.send(Alert::new(rule, source, &input, event.ts, hostname));
        });
        if self.detections.events % 4096 == 0 {
            self.maybe_send_stats(event.ts);
            self.maybe_reload();
        }
        if let Some(monitor) = self.drops.as_deref_mut() {
            if let Some(report) = monitor.on_event(event.ts, counters) {
                for action in &report.actions {
                    match action {
                        crate::config::DropAction::Ignore => {}
                        crate::config::DropAction::Log => crate::log::message(&report.message()),
                        crate::config::DropAction::Alert => dispatcher.send(Alert {
                            time_ns: report.time_ns,
                            rule: DROP_RULE.to_string(),
                            priority: Priority::Debug,
                            source: "internal".into(),
                            tags: Vec::new(),
                            hostname: hostname.to_string(),
                            output: report.message(),
                            output_fields: report.fields(),
                        }),
                        crate::config::DropAction::Exit => {
                            crate::log::message(&report.message());
                            crate::log::message("Exiting.");
                            self.exit_requested = true;
                        }
                    }
                }
            }
        }
    }

    /// Swaps in what a reload (SIGHUP) published, between two events: the
    /// rules, the drop actions and the stats period.
    pub fn maybe_reload(&mut self) {
        let Some(update) = self.reload.as_mut().and_then(crate::reload::Inbox::poll) else {
            return;
        };
        *self.rules = update.rules;
        if let Some(monitor) = self.drops.as_deref_mut() {
            monitor.reconfigure(&update.drops);
        }
        let every = update
            .metrics
            .enabled
            .then(|| Duration::from_secs(update.metrics.interval.max(1)));
        // An unchanged period keeps its schedule: a reload does not delay
        // the next stats alert.
        if every != self.stats_every {
            self.stats_every = every;
            self.next_stats = every.map(|every| Instant::now() + every);
        }
        self.reloaded = Some(update.base_syscalls);
        crate::log::message("syscall rules reloaded");
    }

    /// Sends the periodic stats alert when it is due.
    pub fn maybe_send_stats(&mut self, time_ns: u64) {
        let (Some(every), Some(due)) = (self.stats_every, self.next_stats) else {
            return;
        };
        let now = Instant::now();
        if now < due {
            return;
        }
        self.next_stats = Some(now + every);
        let fields: Vec<(String, Option<String>)> = self
            .metrics
            .snapshot()
            .into_iter()
            .map(|(name, value)| (name, Some(value.to_string())))
            .collect();
        let summary = fields
            .iter()
            .map(|(name, value)| format!("{name}={}", value.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(" ");
        self.dispatcher.send(Alert {
            time_ns,
            rule: STATS_RULE.to_string(),
            priority: Priority::Informational,
            source: "internal".into(),
            tags: Vec::new(),
            hostname: self.hostname.to_string(),
            output: format!("{STATS_RULE} ({summary})"),
            output_fields: fields,
        });
    }

    pub(crate) fn should_stop(&self) -> bool {
        self.exit_requested
            || self.stop.load(Ordering::Relaxed)
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Only the webhook runs: wait for a signal or the deadline, sending the
/// periodic stats meanwhile.
pub fn wait_until_stopped(pipeline: &mut Pipeline<'_>) {
    while !pipeline.should_stop() {
        pipeline.maybe_send_stats(now_ns());
        pipeline.maybe_reload();
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Replays a capture file.
pub fn replay(path: &std::path::Path, pipeline: &mut Pipeline<'_>) -> Result<(), RunError> {
    let mut capture = Capture::open(path).map_err(|source| RunError::Capture {
        path: path.display().to_string(),
        source,
    })?;
    let mut state = State::from_capture(&capture);
    let mut events = capture.events();
    while let Some(event) = events.next() {
        let event = event.map_err(|source| RunError::Capture {
            path: path.display().to_string(),
            source,
        })?;
        pipeline.process(&mut state, &event, DropCounters::default);
        if pipeline.should_stop() {
            break;
        }
    }
    Ok(())
}

/// Chooses the syscalls the module writes for the rules now loaded, and
/// says which.
fn choose_interest(pipeline: &Pipeline<'_>, base: &BaseSyscalls, all_flag: bool) -> Interest {
    let interest = crate::interest::choose(&pipeline.rules.event_type_names(), base, all_flag);
    for warning in &interest.warnings {
        crate::log::message(warning);
    }
    crate::log::message(&interest.summary);
    interest
}

/// Every syscall number the module knows, for when no narrowing applies.
fn every_syscall() -> BTreeSet<u32> {
    (0..peregrine_driver_sys::abi::PG_SYSCALL_NR_MAX).collect()
}

/// Reads the kernel module until stopped. The module writes only the
/// syscalls the rules and the state need (see [`crate::interest`]),
/// chosen again when a reload changes the rules.
pub fn live(
    mut config: DriverConfig,
    base: &BaseSyscalls,
    all_flag: bool,
    pipeline: &mut Pipeline<'_>,
) -> Result<(), RunError> {
    let mut base = base.clone();
    let interest = choose_interest(pipeline, &base, all_flag);
    config.interest = Some(interest.syscalls.unwrap_or_else(every_syscall));
    let mut driver = Driver::open(config)?;
    let mut state = State::new();
    if let Err(e) = peregrine_engine::state::procfs::scan(&mut state, std::path::Path::new("/proc"))
    {
        crate::log::message(&format!(
            "reading /proc for the processes already running failed: {e}"
        ));
    }
    driver.start_capture()?;
    let counters_of = |driver: &Driver| {
        let t = driver.stats().total;
        DropCounters {
            n_evts: t.n_evts + t.n_drops_buffer + t.n_drops_pf + t.n_drops_too_large,
            n_drops_buffer: t.n_drops_buffer,
            n_drops_pf: t.n_drops_pf,
            n_drops_too_large: t.n_drops_too_large,
            n_preemptions: t.n_preemptions,
        }
    };
    let mut undecodable = 0u64;
    while !pipeline.should_stop() {
        let stats_now = counters_of(&driver);
        let mut decode_error = None;
        let read = driver.events().next_batch(4096, |ring, record| {
            match EventView::parse(record.bytes()) {
                Ok(mut event) => {
                    // The record does not carry its CPU: the ring it came from is that CPU.
                    event.cpu = u16::try_from(ring).unwrap_or(u16::MAX);
                    pipeline.process(&mut state, &event, || stats_now)
                }
                Err(e) => {
                    undecodable += 1;
                    decode_error.get_or_insert(e);
                }
            }
        });
        if let Some(e) = decode_error {
            if undecodable.is_power_of_two() {
                crate::log::message(&format!(
                    "{undecodable} kernel events could not be decoded so far, the last: {e}"
                ));
            }
        }
        pipeline.metrics.set_kernel(driver.stats().total);
        if let Some(reloaded) = pipeline.reloaded.take() {
            base = reloaded;
            let interest = choose_interest(pipeline, &base, all_flag);
            driver.set_interest(&interest.syscalls.unwrap_or_else(every_syscall))?;
        }
        match read {
            Ok(0) => {
                pipeline.maybe_send_stats(now_ns());
                pipeline.maybe_reload();
                driver.events().wait(Duration::from_millis(100));
            }
            Ok(_) => {}
            Err(e) => {
                crate::log::message(&format!("{e}; skipping the rest of that ring"));
                driver.events().discard_all(e.ring_id);
            }
        }
    }
    driver.stop_capture()?;
    let stats = driver.stats();
    let t = stats.total;
    eprintln!(
        "Kernel events: {} written, {} dropped (buffer full {}, page faults {}, too large {}), {} sampled out, {} re-entries skipped, {} undecodable",
        t.n_evts,
        t.n_drops_buffer + t.n_drops_pf + t.n_drops_too_large,
        t.n_drops_buffer,
        t.n_drops_pf,
        t.n_drops_too_large,
        t.n_drops_sampling,
        t.n_preemptions,
        undecodable
    );
    Ok(())
}

/// Evaluates the Kubernetes audit events of a file (one Event, an
/// EventList, or one object per line).
pub fn k8s_audit_file(
    path: &std::path::Path,
    rules: &mut CompiledRules<K8sAuditSource>,
    dispatcher: &Dispatcher,
    hostname: &str,
    detections: &mut Detections,
    metrics: &Metrics,
) -> Result<(), RunError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RunError::Audit(format!("cannot read {}: {e}", path.display())))?;
    let events = match peregrine_engine::k8s_audit::events_from_json(&text) {
        Ok(events) => events,
        Err(e) => {
            // As Falco's audit source does: say so and carry on with no events.
            crate::log::message(&format!(
                "Error: {}: data not recognized as a k8s audit event: {e}",
                path.display()
            ));
            Vec::new()
        }
    };
    for event in &events {
        evaluate_audit_event(rules, event, dispatcher, hostname, detections, metrics);
    }
    Ok(())
}

/// One audit event through the audit rules.
pub fn evaluate_audit_event(
    rules: &mut CompiledRules<K8sAuditSource>,
    event: &serde_json::Value,
    dispatcher: &Dispatcher,
    hostname: &str,
    detections: &mut Detections,
    metrics: &Metrics,
) {
    detections.events += 1;
    metrics.events.fetch_add(1, Ordering::Relaxed);
    let time_ns = peregrine_engine::k8s_audit::event_time_ns(event);
    rules.evaluate(&event, |rule, source| {
        detections.count(&rule.name, rule.priority);
        metrics.count_alert(&rule.name, rule.priority);
        dispatcher.send(Alert::new(rule, source, &event, time_ns, hostname));
    });
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Shared flag set by SIGINT/SIGTERM.
pub fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&flag)) {
            crate::log::message(&format!("cannot catch signal {signal}: {e}"));
        }
    }
    flag
}
