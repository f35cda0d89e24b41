//! The main job: events from a source, through state and rules, to alerts.

pub mod parallel;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peregrine_driver_sys::{Driver, DriverConfig, DriverError, MergedReader};
use peregrine_engine::event::merge::Merger;
use peregrine_engine::event::EventView;
use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::output::Alert;
use peregrine_engine::rules::CompiledRules;
use peregrine_engine::scap::Capture;
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

use crate::alert::Priority;
use crate::capture::on_alert::AlertCapture;
use crate::capture::record::Recorder;
use crate::config::BaseSyscalls;
use crate::metrics::Metrics;
use crate::outputs::Dispatcher;
use crate::sources::drops::{DropCounters, DropMonitor, DROP_RULE};
use crate::sources::interest::Interest;

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

use crate::alert::STATS_RULE;

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

    pub(crate) fn count(&mut self, rule: &str, priority: Priority) {
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
    /// Capture on alert, when `capture.enabled`.
    pub capture: Option<AlertCapture>,
    /// Whether a stats snapshot goes out as an alert (`metrics.output_rule`).
    pub stats_rule: bool,
    /// `metrics.output_file`, when set.
    pub stats_file: Option<crate::metrics::file::MetricsFile>,
    /// The container metadata thread, for live sources.
    pub containers: Option<crate::containers::Link>,
    /// Async events plugins send into the syscall source, live.
    pub async_events: Option<std::sync::mpsc::Receiver<crate::sources::plugins::PluginEvent>>,
    /// The number of the last event: what an async event is numbered.
    pub async_num: u64,
}

/// Async events taken between two syscall events at most: a plugin that
/// floods must not starve the rings.
const ASYNC_PER_EVENT: usize = 256;

impl Pipeline<'_> {
    /// One event: state first (rules see the state after the event, as in
    /// Falco), then the rules, then drop accounting.
    pub(crate) fn process(
        &mut self,
        state: &mut State,
        event: &EventView<'_>,
        counters: impl FnOnce() -> DropCounters,
    ) {
        if self.containers.is_some() {
            self.take_container_news(state, event.ts);
        }
        if self.async_events.is_some() {
            self.async_num = event.num;
            self.take_async_events(state, event.ts);
        }
        self.evaluate(state, event);
        if state.containers.has_wanted() {
            if let Some(link) = &self.containers {
                link.ask(state.containers.take_wanted());
            }
        }
        if self.detections.events % 4096 == 0 {
            // The table keeps its own count: walking 200k threads every
            // 4096 events is work the metrics need not cost.
            let counts = crate::metrics::StateCounts::of(state);
            self.metrics
                .threads
                .store(counts.threads, Ordering::Relaxed);
            self.metrics.set_state(counts);
            self.maybe_send_stats(event.ts);
            self.maybe_reload();
        }
        self.check_drops(event.ts, counters);
    }

    /// Between events (and before the first): asks about the containers
    /// seen and takes what the runtimes answered, so a container's
    /// metadata and its container event do not wait for its next event.
    pub fn idle(&mut self, state: &mut State, ts: u64) {
        if self.async_events.is_some() {
            self.take_async_events(state, ts);
        }
        let Some(link) = &self.containers else { return };
        if state.containers.has_wanted() {
            link.ask(state.containers.take_wanted());
        }
        self.take_container_news(state, ts);
    }

    /// What the runtimes said since the last event: a container's metadata
    /// goes through the state and the rules as a container event (Falco's
    /// `evt.type=container`), before the event that follows it.
    fn take_container_news(&mut self, state: &mut State, ts: u64) {
        while let Some(news) = self.containers.as_ref().and_then(|l| l.news()) {
            match news {
                crate::containers::News::Arrived(info, tid, users) => {
                    // The users first, so the container event names them.
                    if let Some(users) = users {
                        let id = info.id.clone();
                        state.containers.insert((*info).clone());
                        state.containers.set_users(&id, users);
                    }
                    let raw = peregrine_engine::state::containers::container_event(ts, tid, &info);
                    if let Ok(event) = EventView::parse(&raw) {
                        self.evaluate(state, &event);
                    }
                }
                crate::containers::News::Gone(id) => state.containers.remove(&id),
            }
        }
    }

    /// The next async event a plugin sent into the syscall source, as
    /// scap bytes. One sent without a time (all ones, as libsinsp lets a
    /// plugin do) takes `ts`, the time of the stream where it joins.
    pub(crate) fn next_async(&self, ts: u64) -> Option<Vec<u8>> {
        let mut event = self.async_events.as_ref()?.try_recv().ok()?;
        if event.ts() == u64::MAX {
            event.set_ts(ts);
        }
        Some(event.into_bytes())
    }

    /// Async events through the state, the parsers and the rules, before
    /// the syscall event at `ts`, as libsinsp interleaves them.
    fn take_async_events(&mut self, state: &mut State, ts: u64) {
        for _ in 0..ASYNC_PER_EVENT {
            let Some(bytes) = self.next_async(ts) else {
                return;
            };
            // The handler checked the layout; a view that still fails is
            // skipped rather than trusted.
            if let Ok(mut event) = EventView::parse(&bytes) {
                event.num = self.async_num;
                self.evaluate(state, &event);
            }
        }
    }

    /// One event through the state and the rules.
    fn evaluate(&mut self, state: &mut State, event: &EventView<'_>) {
        self.detections.events += 1;
        self.metrics.events.fetch_add(1, Ordering::Relaxed);
        crate::servers::console::recent::Recent::global().record(event, state);
        state.apply(event);
        crate::sources::plugins::syscall::parse(event, state);
        // One input for the conditions and the outputs of this event: what
        // their fields share is looked up once, and gone with the input
        // before the next event is applied.
        let input = SyscallEvent::new(event, state);
        let (dispatcher, hostname, detections, metrics, capture) = (
            self.dispatcher,
            self.hostname,
            &mut self.detections,
            self.metrics,
            &mut self.capture,
        );
        self.rules.evaluate(&input, |rule, source| {
            detections.count(&rule.name, rule.priority);
            metrics.count_rule_alert(&rule.name, rule.priority, &rule.source, &rule.tags);
            dispatcher.send(Alert::new(rule, source, &input, event.ts, hostname));
            if let Some(capture) = capture.as_mut() {
                capture.on_alert(event.ts, rule.capture, rule.capture_duration_ms);
            }
        });
        if let Some(capture) = self.capture.as_mut() {
            capture.after_event(event, self.detections.events, state, self.dispatcher);
        }
    }

    /// Counts events evaluated elsewhere (the parallel evaluators).
    pub(crate) fn count_events(&mut self, n: u64) {
        self.detections.events += n;
        self.metrics.events.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts and sends out an alert raised elsewhere.
    pub(crate) fn send_alert(&mut self, alert: Alert) {
        self.detections.count(&alert.rule, alert.priority);
        self.metrics
            .count_rule_alert(&alert.rule, alert.priority, &alert.source, &alert.tags);
        self.dispatcher.send(alert);
    }

    /// What the loop does between batches when events are evaluated
    /// elsewhere: stats, reloads and drop accounting.
    pub(crate) fn after_batch(&mut self, time_ns: u64, counters: impl FnOnce() -> DropCounters) {
        self.maybe_send_stats(time_ns);
        self.maybe_reload();
        self.check_drops(time_ns, counters);
    }

    /// Drop accounting, and the drop actions it calls for.
    fn check_drops(&mut self, time_ns: u64, counters: impl FnOnce() -> DropCounters) {
        let (dispatcher, hostname) = (self.dispatcher, self.hostname);
        if let Some(monitor) = self.drops.as_deref_mut() {
            if let Some(report) = monitor.on_event(time_ns, counters) {
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
        let any_rule_captures = self.any_rule_captures();
        if let Some(monitor) = self.drops.as_deref_mut() {
            monitor.reconfigure(&update.drops);
        }
        let every = crate::metrics::file::stats_period(&update.metrics);
        self.stats_rule = update.metrics.output_rule;
        self.stats_file = crate::metrics::file::MetricsFile::open(&update.metrics.output_file);
        self.metrics.reloaded((&update.metrics).into());
        // An unchanged period keeps its schedule: a reload does not delay
        // the next stats alert.
        if every != self.stats_every {
            self.stats_every = every;
            self.next_stats = every.map(|every| Instant::now() + every);
        }
        let capture_changed = match &self.capture {
            Some(capture) => capture.settings() != &update.capture,
            None => update.capture.enabled,
        };
        if capture_changed {
            // The old one closes its file when dropped; a replay's tables
            // are kept for the new one.
            let tables = self.capture.as_mut().and_then(AlertCapture::take_tables);
            self.capture = AlertCapture::new(&update.capture, self.hostname);
            if let (Some(capture), Some((users, groups, machine))) = (self.capture.as_mut(), tables)
            {
                capture.set_tables(users, groups, machine);
            }
        }
        if let Some(capture) = self.capture.as_mut() {
            capture.set_rules_capture(any_rule_captures);
        }
        self.reloaded = Some(update.base_syscalls);
        crate::log::message("syscall rules reloaded");
    }

    /// Whether an enabled rule has `capture: true`.
    pub fn any_rule_captures(&self) -> bool {
        self.rules.rules().iter().any(|r| r.enabled && r.capture)
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
        let source = self.metrics.snapshot_source();
        let fields = self.metrics.falco_snapshot(&source);
        if let Some(file) = self.stats_file.as_mut() {
            file.append(&fields);
        }
        if !self.stats_rule {
            return;
        }
        self.dispatcher.send(Alert {
            time_ns,
            rule: STATS_RULE.to_string(),
            priority: Priority::Informational,
            source: "internal".into(),
            tags: Vec::new(),
            hostname: self.hostname.to_string(),
            output: "Falco metrics snapshot".into(),
            output_fields: fields
                .into_iter()
                .map(|(name, value)| (name, Some(value.to_string())))
                .collect(),
        });
    }

    /// How long an idle live loop may block before it must look again: at
    /// most [`IDLE_WAIT`], and no later than the run's deadline, the next
    /// stats or `also_due`. What other threads leave it rings the
    /// doorbell ([`crate::wakeup`]) and ends the wait sooner.
    pub(crate) fn idle_wait(&self, also_due: Option<Instant>) -> Duration {
        let now = Instant::now();
        [self.deadline, self.next_stats, also_due]
            .into_iter()
            .flatten()
            .map(|due| due.saturating_duration_since(now))
            .fold(IDLE_WAIT, Duration::min)
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
    replay_capture(&mut capture, &path.display().to_string(), pipeline)
}

/// Replays an opened capture (`name` says which in errors).
pub fn replay_capture(
    capture: &mut Capture,
    name: &str,
    pipeline: &mut Pipeline<'_>,
) -> Result<(), RunError> {
    let mut state = State::from_capture(capture);
    if let Some(alert_capture) = pipeline.capture.as_mut() {
        alert_capture.set_tables(
            capture.users.clone(),
            capture.groups.clone(),
            capture.machine.clone().unwrap_or_default(),
        );
    }
    let mut merger = Merger::new();
    let mut events = capture.events();
    while let Some(event) = events.next() {
        let event = event.map_err(|source| RunError::Capture {
            path: name.to_string(),
            source,
        })?;
        if let Some(event) = merger.push(&event) {
            pipeline.process(&mut state, &event, DropCounters::default);
        }
        if pipeline.should_stop() {
            break;
        }
    }
    pipeline.metrics.set_merge(merger.stats);
    Ok(())
}

/// Chooses the syscalls the module writes for the rules now loaded, and
/// says which.
pub(crate) fn choose_interest(
    pipeline: &Pipeline<'_>,
    base: &BaseSyscalls,
    all_flag: bool,
) -> Interest {
    let interest =
        crate::sources::interest::choose(&pipeline.rules.event_type_names(), base, all_flag);
    for warning in &interest.warnings {
        crate::log::message(warning);
    }
    crate::log::message(&interest.summary);
    interest
}

/// Every syscall number the module knows, for when no narrowing applies.
pub(crate) fn every_syscall() -> BTreeSet<u32> {
    (0..peregrine_driver_sys::abi::PG_SYSCALL_NR_MAX).collect()
}

/// Where the live loop reads records: the kernel module's rings, or rings
/// made in userspace with the module's layout (the host benchmark).
pub trait RingSource {
    fn reader(&mut self) -> &mut MergedReader;
    /// Narrows what the producer writes to these syscalls.
    fn set_interest(&mut self, syscalls: &BTreeSet<u32>) -> Result<(), DriverError>;
    /// True once the producer will write nothing more; the loop then ends
    /// when the rings are empty. The kernel never is.
    fn exhausted(&self) -> bool {
        false
    }
}

impl RingSource for Driver {
    fn reader(&mut self) -> &mut MergedReader {
        self.events()
    }

    fn set_interest(&mut self, syscalls: &BTreeSet<u32>) -> Result<(), DriverError> {
        Driver::set_interest(self, syscalls)
    }
}

/// Reads the kernel module until stopped. The module writes only the
/// syscalls the rules and the state need (see [`crate::interest`]),
/// chosen again when a reload changes the rules.
/// How the live loop runs beside what the driver is told.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveTuning {
    /// Threads evaluating rules (`driver.evaluation_workers`); 0: the
    /// reading thread does.
    pub evaluation_workers: usize,
    /// `falco_libs.thread_table_size`; 0: the state's default.
    pub thread_table_size: usize,
    /// How often idle threads are checked against /proc, and how long
    /// idle they must be (`falco_libs.thread_table_auto_purging_*`).
    pub purge: Purge,
}

/// Falco's auto-purging of the thread table, on a live system: a thread
/// with no event for `timeout` whose /proc entry is gone lost its exit
/// (dropped events) and is removed. A thread still in /proc stays however
/// idle it is: nothing would bring its process's name back.
#[derive(Debug, Clone, Copy)]
pub struct Purge {
    pub every: Duration,
    pub timeout: Duration,
}

/// Falco's defaults for both (`falco_common.h`).
pub const DEFAULT_PURGE_SECS: u64 = 300;

impl Default for Purge {
    fn default() -> Purge {
        Purge {
            every: Duration::from_secs(DEFAULT_PURGE_SECS),
            timeout: Duration::from_secs(DEFAULT_PURGE_SECS),
        }
    }
}

impl Purge {
    /// From `falco_libs` (0: Falco's default).
    pub fn from_config(libs: &crate::config::FalcoLibs) -> Purge {
        let secs = |v: u64| Duration::from_secs(if v == 0 { DEFAULT_PURGE_SECS } else { v });
        Purge {
            every: secs(libs.thread_table_auto_purging_interval_s),
            timeout: secs(libs.thread_table_auto_purging_thread_timeout_s),
        }
    }

    /// Removes the idle threads that /proc (under `proc_root`) no longer
    /// has; how many.
    pub fn run(&self, state: &mut State, proc_root: &std::path::Path) -> u64 {
        let timeout = u64::try_from(self.timeout.as_nanos()).unwrap_or(u64::MAX);
        let before = state.latest_ts.saturating_sub(timeout);
        let mut purged = 0;
        for tid in state.idle_threads(before) {
            if !proc_root.join(tid.to_string()).exists() && state.purge_thread(tid) {
                purged += 1;
            }
        }
        purged
    }
}

pub fn live(
    mut config: DriverConfig,
    base: &BaseSyscalls,
    all_flag: bool,
    tuning: LiveTuning,
    record: Option<&std::path::Path>,
    pipeline: &mut Pipeline<'_>,
) -> Result<(), RunError> {
    let interest = choose_interest(pipeline, base, all_flag);
    config.interest = Some(interest.syscalls.unwrap_or_else(every_syscall));
    let mut driver = Driver::open(config)?;
    if let Some(bell) = crate::wakeup::doorbell() {
        driver.events().set_doorbell(std::sync::Arc::clone(bell));
    }
    let mut state = State::new();
    if tuning.thread_table_size > 0 {
        state.max_threads = tuning.thread_table_size;
    }
    let (users, groups) = crate::sources::users::host_users();
    state.users = peregrine_engine::state::Users::from_capture(&users, &groups);
    if let Err(e) = peregrine_engine::state::procfs::scan(&mut state, &crate::host::path("/proc")) {
        crate::log::message(&format!(
            "reading /proc for the processes already running failed: {e}"
        ));
    }
    pipeline.idle(&mut state, now_ns());
    let mut recorder = match record {
        Some(path) => Some(
            Recorder::create(path, &state, (&users, &groups), pipeline.hostname)
                .map_err(RunError::Traced)?,
        ),
        None => None,
    };
    driver.start_capture()?;
    let undecodable = if tuning.evaluation_workers > 0 {
        let mut evaluators = crate::run::parallel::Evaluators::start(
            tuning.evaluation_workers,
            &state,
            pipeline.rules,
            pipeline.hostname,
        )
        .map_err(|e| RunError::Traced(format!("cannot start the evaluation workers: {e}")))?;
        let outcome = crate::run::parallel::drain_rings_parallel(
            &mut driver,
            &mut evaluators,
            all_flag,
            recorder.as_mut(),
            pipeline,
        );
        let undecodable = evaluators.undecodable;
        evaluators.stop();
        outcome?;
        undecodable
    } else {
        drain_rings_purging(
            &mut driver,
            &mut state,
            all_flag,
            Some(tuning.purge),
            recorder.as_mut(),
            pipeline,
        )?
    };
    driver.stop_capture()?;
    if let (Some(recorder), Some(path)) = (recorder, record) {
        let written = recorder.finish().map_err(RunError::Traced)?;
        crate::log::write_whole(&format!(
            "{written} kernel events recorded to {}",
            path.display()
        ));
    }
    let stats = driver.stats();
    let t = stats.total;
    crate::log::write_whole(&format!(
        "Kernel events: {} written, {} dropped (buffer full {}, page faults {}, too large {}), {} sampled out, {} re-entries skipped, {} undecodable",
        t.n_evts,
        t.n_drops_buffer + t.n_drops_pf + t.n_drops_too_large,
        t.n_drops_buffer,
        t.n_drops_pf,
        t.n_drops_too_large,
        t.n_drops_sampling,
        t.n_preemptions,
        undecodable
    ));
    Ok(())
}

/// Records the live loop takes from the rings at a time.
const RING_BATCH: usize = 4096;

/// The longest an idle live loop blocks (see [`Pipeline::idle_wait`]).
/// Only a module that wakes its reader (ABI 2.1) blocks that long; on
/// an older one and on user rings the reader's pauses stay timed.
pub const IDLE_WAIT: Duration = Duration::from_secs(1);

/// The live loop: drains the rings through state and rules until the
/// pipeline stops (or a finite source is exhausted and drained). Returns
/// how many records could not be decoded.
pub fn drain_rings(
    source: &mut impl RingSource,
    state: &mut State,
    all_flag: bool,
    pipeline: &mut Pipeline<'_>,
) -> Result<u64, RunError> {
    drain_rings_purging(source, state, all_flag, None, None, pipeline)
}

/// [`drain_rings`], purging lost threads as `purge` says (live only:
/// /proc must be the events' system), and writing every record to
/// `recorder` when there is one.
pub fn drain_rings_purging(
    source: &mut impl RingSource,
    state: &mut State,
    all_flag: bool,
    purge: Option<Purge>,
    mut recorder: Option<&mut Recorder>,
    pipeline: &mut Pipeline<'_>,
) -> Result<u64, RunError> {
    let mut next_purge = purge.map(|p| Instant::now() + p.every);
    let counters_of = |t: &peregrine_driver_sys::RingStats| DropCounters {
        n_evts: t.n_evts + t.n_drops_buffer + t.n_drops_pf + t.n_drops_too_large,
        n_drops_buffer: t.n_drops_buffer,
        n_drops_pf: t.n_drops_pf,
        n_drops_too_large: t.n_drops_too_large,
        n_preemptions: t.n_preemptions,
    };
    let mut undecodable = 0u64;
    // The module may still write enter+exit pairs: one event per syscall.
    let mut merger = Merger::new();
    pipeline.metrics.rings.set_reader_thread();
    while !pipeline.should_stop() {
        // Read once per batch (every ring's counters, into a new list):
        // a trickle of small batches must not pay it twice.
        let ring_stats = source.reader().stats();
        let stats_now = counters_of(&ring_stats.total);
        pipeline.metrics.set_ring_stats(ring_stats);
        let mut decode_error = None;
        let read = source.reader().next_batch(RING_BATCH, |ring, record| {
            match EventView::parse(record.bytes()) {
                Ok(mut event) => {
                    // The record does not carry its CPU: the ring it came from is that CPU.
                    event.cpu = u16::try_from(ring).unwrap_or(u16::MAX);
                    if let Some(recorder) = recorder.as_deref_mut() {
                        recorder.record(&event);
                    }
                    if let Some(event) = merger.push(&event) {
                        pipeline.process(state, &event, || stats_now)
                    }
                }
                Err(e) => {
                    undecodable += 1;
                    decode_error.get_or_insert(e);
                }
            }
        });
        pipeline.metrics.set_merge(merger.stats);
        if let Some(e) = decode_error {
            if undecodable.is_power_of_two() {
                crate::log::message(&format!(
                    "{undecodable} kernel events could not be decoded so far, the last: {e}"
                ));
            }
        }
        if let (Some(purge), Some(due)) = (purge, next_purge) {
            if Instant::now() >= due {
                purge.run(state, &crate::host::path("/proc"));
                next_purge = Some(Instant::now() + purge.every);
            }
        }
        if let Some(base) = pipeline.reloaded.take() {
            let interest = choose_interest(pipeline, &base, all_flag);
            source.set_interest(&interest.syscalls.unwrap_or_else(every_syscall))?;
        }
        match read {
            Ok(n) => {
                if n == 0 && source.exhausted() && !source.reader().has_data() {
                    break;
                }
                // A short batch emptied the rings. As libscap, sleep before
                // the next one unless a ring is busy: the reader's own
                // syscalls (every one under -A, and clock_gettime where the
                // vDSO cannot serve it) would otherwise keep it reading its
                // own trail, a CPU's worth on an idle machine.
                if n < RING_BATCH {
                    pipeline.idle(state, now_ns());
                    pipeline.maybe_send_stats(now_ns());
                    pipeline.maybe_reload();
                    source.reader().wait(pipeline.idle_wait(next_purge));
                }
            }
            Err(e) => {
                crate::log::message(&format!("{e}; skipping the rest of that ring"));
                source.reader().discard_all(e.ring_id);
            }
        }
    }
    Ok(undecodable)
}

/// The largest audit file read: it is parsed whole, and a path naming
/// /dev/zero or a FIFO must end in an error rather than in all memory.
pub const MAX_AUDIT_FILE_BYTES: u64 = 256 << 20;

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
    let text = peregrine_engine::bounded_read::read_text(path, MAX_AUDIT_FILE_BYTES)
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
        metrics.count_rule_alert(&rule.name, rule.priority, &rule.source, &rule.tags);
        dispatcher.send(Alert::new(rule, source, &event, time_ns, hostname));
    });
}

pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Shared flag set by SIGINT/SIGTERM (see [`crate::signals`]).
pub fn stop_flag() -> Arc<AtomicBool> {
    crate::signals::stop_flag()
}

#[cfg(test)]
mod purge_tests {
    use super::*;
    use peregrine_engine::state::Thread;

    #[test]
    fn a_purge_removes_only_idle_threads_gone_from_proc() {
        let proc_root = tempfile::tempdir().unwrap();
        // Thread 10 still runs; 11 and 12 are gone; 12 was seen lately.
        std::fs::create_dir(proc_root.path().join("10")).unwrap();
        let mut state = State::new();
        let second = 1_000_000_000;
        for (tid, seen) in [(10, 1), (11, 1), (12, 400 * second)] {
            state.insert_thread(Thread {
                tid,
                pid: tid,
                last_seen: seen,
                ..Thread::default()
            });
        }
        state.latest_ts = 400 * second;
        let purge = Purge::from_config(&crate::config::FalcoLibs::default());
        assert_eq!(purge.timeout, Duration::from_secs(300));
        assert_eq!(purge.run(&mut state, proc_root.path()), 1);
        assert!(state.thread(11).is_none());
        assert!(state.thread(10).is_some(), "still in /proc: kept");
        assert!(state.thread(12).is_some(), "not idle long enough: kept");
        assert_eq!(state.purged, 1);
        let counts = crate::metrics::StateCounts::of(&state);
        assert_eq!((counts.threads, counts.threads_purged), (2, 1));
    }
}
