//! Alert channels, run off the event path.
//!
//! The event loop hands each alert to [`Dispatcher::send`], which renders it
//! once and offers it to every channel's bounded queue without blocking. A
//! channel is a thread that drains its queue. A slow channel fills only its
//! own queue: what does not fit is counted per channel and reported (stats,
//! metrics and a rate-limited line on stderr), never dropped silently.

mod console;
mod file;
mod grpc;
mod http;
pub mod kafka;
pub mod nats;
mod program;
pub mod reload;
pub mod spool;
pub mod spooled;
mod stdout;
mod syslog;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::alert::{render, Alert, RenderOptions, SharedAlert};
use crate::config::Config;

pub use self::console::ConsoleChannel;
pub use self::file::FileChannel;
pub use self::grpc::GrpcChannel;
pub use self::http::{HttpChannel, HttpOptions};
pub use self::kafka::KafkaOptions;
pub use self::nats::NatsOptions;
pub use self::program::ProgramChannel;
pub use self::stdout::StdoutChannel;
pub use self::syslog::SyslogChannel;

/// Why a channel could not deliver an alert.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{channel}: {source}")]
    Io {
        channel: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{channel}: {message}")]
    Other {
        channel: &'static str,
        message: String,
    },
}

/// A place alerts go. Each runs on its own thread, so `emit` may block.
pub trait Channel: Send {
    fn name(&self) -> &'static str;
    fn emit(&mut self, alert: &SharedAlert) -> Result<(), OutputError>;
    /// Called when the queue is momentarily empty and at shutdown.
    fn flush(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
    /// Called after SIGUSR1 (logrotate): reopen whatever the channel holds.
    fn reopen(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
    /// Called once at shutdown, after the last alert and flush.
    fn close(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
    /// A way to unblock the channel from another thread when it is stuck
    /// past the shutdown deadline (a program that never reads: kill it).
    fn interrupter(&self) -> Option<Interrupter> {
        None
    }
    /// How much longer than [`SHUTDOWN_DEADLINE`] its `close` may take:
    /// for a channel whose own settings promise a bounded wait at a stop
    /// (`nats_output.shutdown_timeout_ms`), so that the deadline does not
    /// cut that promise short and leave the process while it still waits.
    fn close_grace(&self) -> Duration {
        Duration::ZERO
    }
    /// Called for a channel a config reload keeps running instead of
    /// building it again (see `reload::KEPT_ACROSS_RELOADS`): take what
    /// the new config says. Returns what to log, or why the channel keeps
    /// its previous settings.
    fn reconfigure(&mut self, _config: &Config) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// Unblocks a channel stuck in `emit`, from another thread.
pub type Interrupter = Box<dyn Fn() + Send + Sync>;

/// Counters of one channel, shared between the event loop and its thread.
#[derive(Debug, Default)]
pub struct ChannelStats {
    pub sent: AtomicU64,
    /// Alerts that did not fit the queue.
    pub overflowed: AtomicU64,
    pub failed: AtomicU64,
    /// Alerts given up without an attempt: those that did not fit the
    /// queue, and those still queued at the shutdown deadline.
    pub dropped: AtomicU64,
    /// Alerts queued or being delivered.
    pending: AtomicU64,
    /// When the alert being delivered now was queued ([`clock_ns`]); 0
    /// while the channel is idle.
    busy_since: AtomicU64,
    /// Set at the shutdown deadline: what is still queued is dropped.
    abandon: AtomicBool,
    /// The `busy_since` last reported as past `output_timeout`, so that
    /// one slow delivery is said once.
    slow_reported: AtomicU64,
}

impl ChannelStats {
    /// Alerts waiting in the queue or being delivered.
    pub fn queued(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// How long the oldest alert not yet delivered has waited (zero when
    /// none is in delivery).
    pub fn oldest_age(&self) -> Duration {
        match self.busy_since.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => Duration::from_nanos(clock_ns().saturating_sub(since)),
        }
    }
}

/// Every running channel's counters, for a forced stop: it must say what
/// was not delivered even while the dispatcher is being shut down.
static LIVE_CHANNELS: Mutex<Vec<(&'static str, std::sync::Weak<ChannelStats>)>> =
    Mutex::new(Vec::new());

/// Alerts each running channel still has queued or in delivery.
pub fn undelivered() -> Vec<(&'static str, u64)> {
    let mut live = LIVE_CHANNELS.lock().unwrap_or_else(|p| p.into_inner());
    live.retain(|(_, stats)| stats.strong_count() > 0);
    live.iter()
        .filter_map(|(name, stats)| Some((*name, stats.upgrade()?.queued())))
        .collect()
}

/// Nanoseconds on a monotonic clock started with the process, never 0.
fn clock_ns() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    (origin.elapsed().as_nanos() as u64).max(1)
}

/// A snapshot of one channel's counters, for stats and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReport {
    pub name: &'static str,
    pub sent: u64,
    pub overflowed: u64,
    pub failed: u64,
    pub queued: usize,
}

struct Lane {
    name: &'static str,
    queue: Sender<Message>,
    stats: Arc<ChannelStats>,
    worker: JoinHandle<()>,
    interrupter: Option<Interrupter>,
    close_grace: Duration,
}

enum Message {
    /// An alert and when it was queued ([`clock_ns`]).
    Alert(SharedAlert, u64),
    Reopen,
    Reconfigure {
        config: Arc<Config>,
        reply: Sender<Result<Option<String>, String>>,
    },
}

/// Fans alerts out to the configured channels.
pub struct Dispatcher {
    /// Read by every `send`; written only when SIGHUP swaps the channels.
    state: RwLock<State>,
    last_overflow_report: Mutex<Option<Instant>>,
    /// Falco's `output_timeout`, in milliseconds: a delivery that takes
    /// longer is reported (capture never waits for it).
    output_timeout_ms: AtomicU64,
}

struct State {
    lanes: Vec<Lane>,
    render: RenderOptions,
}

/// How long a reload waits for a channel to take new settings.
const RECONFIGURE_TIMEOUT: Duration = Duration::from_secs(30);

/// Falco's default `output_timeout`.
pub const DEFAULT_OUTPUT_TIMEOUT: Duration = Duration::from_millis(2_000);

/// How long outputs get at shutdown (or when a reload retires them) to
/// deliver what they have queued; what is left then is dropped and said.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// How long a channel stuck past the deadline gets, once interrupted, to
/// end its thread before it is left behind.
const INTERRUPT_GRACE: Duration = Duration::from_secs(1);

/// Starts one thread per channel. A channel named like one in `previous`
/// carries on its counters, so totals and metrics span a reload.
fn start_lanes(
    channels: Vec<Box<dyn Channel>>,
    capacity: usize,
    previous: &[(&'static str, Arc<ChannelStats>)],
) -> std::io::Result<Vec<Lane>> {
    channels
        .into_iter()
        .map(|channel| {
            let (queue, receiver) = if capacity == 0 {
                crossbeam_channel::unbounded()
            } else {
                crossbeam_channel::bounded(capacity)
            };
            let name = channel.name();
            let stats = previous
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, stats)| Arc::clone(stats))
                .unwrap_or_default();
            let worker_stats = Arc::clone(&stats);
            let interrupter = channel.interrupter();
            let close_grace = channel.close_grace();
            {
                let mut live = LIVE_CHANNELS.lock().unwrap_or_else(|p| p.into_inner());
                // Channels retired by earlier reloads leave the list here.
                live.retain(|(_, stats)| stats.strong_count() > 0);
                // A channel a reload rebuilt keeps its counters: once.
                if !live.iter().any(|(_, s)| s.as_ptr() == Arc::as_ptr(&stats)) {
                    live.push((name, Arc::downgrade(&stats)));
                }
            }
            let worker = std::thread::Builder::new()
                .name(format!("output-{name}"))
                .spawn(move || drain(channel, receiver, &worker_stats))?;
            Ok(Lane {
                name,
                queue,
                stats,
                worker,
                interrupter,
                close_grace,
            })
        })
        .collect()
}

/// Waits until the thread ends or the deadline passes; whether it ended.
fn wait_until(worker: &JoinHandle<()>, deadline: Instant) -> bool {
    while !worker.is_finished() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Delivers what each lane has queued until `deadline`, then drops the
/// rest (interrupting a channel stuck in delivery), stops the threads and
/// reports. The lanes finish side by side: one slow channel does not eat
/// the others' time.
fn finish_lanes(lanes: Vec<Lane>, deadline: Instant) -> Vec<ChannelReport> {
    // Closing every queue first ends each thread once it is drained.
    let closing: Vec<_> = lanes
        .into_iter()
        .map(|lane| {
            let grace = lane.close_grace;
            (lane.name, lane.stats, lane.worker, lane.interrupter, grace)
        })
        .collect();
    let mut reports = Vec::new();
    for (name, stats, worker, interrupter, grace) in closing {
        if !wait_until(&worker, deadline + grace) {
            let left = stats.queued();
            stats.abandon.store(true, Ordering::SeqCst);
            if let Some(interrupt) = &interrupter {
                interrupt();
            }
            crate::log::message(&format!(
                "output '{name}' did not deliver its queue within {}s: {left} alerts dropped",
                (SHUTDOWN_DEADLINE + grace).as_secs()
            ));
        }
        if !wait_until(&worker, Instant::now() + INTERRUPT_GRACE) {
            crate::log::message(&format!(
                "output '{name}' is stuck delivering an alert; its thread is left behind"
            ));
        } else if worker.join().is_err() {
            crate::log::message(&format!("the {name} output thread panicked"));
        }
        reports.push(ChannelReport {
            name,
            sent: stats.sent.load(Ordering::Relaxed),
            overflowed: stats.overflowed.load(Ordering::Relaxed),
            failed: stats.failed.load(Ordering::Relaxed),
            queued: stats.queued() as usize,
        });
    }
    reports
}

impl Dispatcher {
    /// `capacity` bounds each channel's queue (0: unbounded, as Falco's
    /// `outputs_queue.capacity: 0`).
    pub fn new(
        channels: Vec<Box<dyn Channel>>,
        render: RenderOptions,
        capacity: usize,
    ) -> std::io::Result<Self> {
        let lanes = start_lanes(channels, capacity, &[])?;
        Ok(Dispatcher {
            state: RwLock::new(State { lanes, render }),
            last_overflow_report: Mutex::new(None),
            output_timeout_ms: AtomicU64::new(DEFAULT_OUTPUT_TIMEOUT.as_millis() as u64),
        })
    }

    /// Sets how long one delivery may take before it is reported.
    pub fn set_output_timeout(&self, timeout: Duration) {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.output_timeout_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// Says (once per delivery) which channels have spent longer than
    /// `output_timeout` on one alert.
    fn report_slow(&self, state: &State, now: u64) {
        let timeout_ns = self
            .output_timeout_ms
            .load(Ordering::Relaxed)
            .saturating_mul(1_000_000);
        for lane in &state.lanes {
            let since = lane.stats.busy_since.load(Ordering::Relaxed);
            if since == 0 || now.saturating_sub(since) <= timeout_ns {
                continue;
            }
            if lane.stats.slow_reported.swap(since, Ordering::Relaxed) != since {
                crate::log::message(&format!(
                    "output '{}' has spent {} ms on one alert, past output_timeout ({} ms); \
                     {} alerts wait behind it, event capture goes on",
                    lane.name,
                    (now - since) / 1_000_000,
                    timeout_ns / 1_000_000,
                    lane.stats.queued()
                ));
            }
        }
    }

    fn state(&self) -> RwLockReadGuard<'_, State> {
        // Lanes and options stay whole even if a writer panicked.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Renders the alert once and queues it on every channel. Never blocks;
    /// callable from any thread (syscall and audit sources share it).
    pub fn send(&self, alert: Alert) {
        let state = self.state();
        let shared: SharedAlert = Arc::new(render(alert, &state.render));
        let mut overflowed = false;
        let now = clock_ns();
        for lane in &state.lanes {
            // Counted before it is queued: the thread may deliver it at once.
            lane.stats.pending.fetch_add(1, Ordering::Relaxed);
            match lane
                .queue
                .try_send(Message::Alert(Arc::clone(&shared), now))
            {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    lane.stats.pending.fetch_sub(1, Ordering::Relaxed);
                    lane.stats.overflowed.fetch_add(1, Ordering::Relaxed);
                    lane.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    overflowed = true;
                }
            }
        }
        self.report_slow(&state, now);
        drop(state);
        if overflowed {
            self.report_overflow();
        }
    }

    /// Asks every channel to reopen its files or connections (SIGUSR1).
    pub fn reopen(&self) {
        for lane in &self.state().lanes {
            // A full queue still gets the request: it waits behind the
            // alerts already queued, which is the order logrotate expects.
            let _ = lane.queue.send(Message::Reopen);
        }
    }

    /// Swaps in new channels and rendering (a config reload). Channels
    /// `keep` names stay as they are, queue and all; every other old
    /// channel delivers what it has queued, then stops. Alerts sent
    /// meanwhile go to the new channels; none is lost in the swap.
    pub fn replace(
        &self,
        channels: Vec<Box<dyn Channel>>,
        render: RenderOptions,
        capacity: usize,
        keep: &[&str],
    ) -> std::io::Result<()> {
        let previous = self.stats_handles();
        let mut lanes = start_lanes(channels, capacity, &previous)?;
        let retired = {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            let (kept, retired): (Vec<Lane>, Vec<Lane>) = std::mem::take(&mut state.lanes)
                .into_iter()
                .partition(|lane| keep.contains(&lane.name));
            lanes.extend(kept);
            state.lanes = lanes;
            state.render = render;
            retired
        };
        finish_lanes(retired, Instant::now() + SHUTDOWN_DEADLINE);
        Ok(())
    }

    /// Hands `config` to the running channel called `name`, on its own
    /// thread after the alerts already queued, and waits for its answer.
    /// None when no such channel runs.
    pub fn reconfigure(
        &self,
        name: &str,
        config: Arc<Config>,
    ) -> Option<Result<Option<String>, String>> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let queue = {
            let state = self.state();
            let lane = state.lanes.iter().find(|lane| lane.name == name)?;
            lane.queue.clone()
        };
        // Blocks while the queue is full (the reload waits its turn), with
        // no lock held.
        queue.send(Message::Reconfigure { config, reply }).ok()?;
        Some(
            answer
                .recv_timeout(RECONFIGURE_TIMEOUT)
                .unwrap_or_else(|_| {
                    Err(format!(
                        "the {name} output did not answer within {}s; it applies the new settings when it gets to them",
                        RECONFIGURE_TIMEOUT.as_secs()
                    ))
                }),
        )
    }

    /// The channels running now, by name.
    pub fn channel_names(&self) -> Vec<&'static str> {
        self.state().lanes.iter().map(|lane| lane.name).collect()
    }

    #[cfg(test)]
    pub fn reports(&self) -> Vec<ChannelReport> {
        self.state()
            .lanes
            .iter()
            .map(|lane| ChannelReport {
                name: lane.name,
                sent: lane.stats.sent.load(Ordering::Relaxed),
                overflowed: lane.stats.overflowed.load(Ordering::Relaxed),
                failed: lane.stats.failed.load(Ordering::Relaxed),
                queued: lane.queue.len(),
            })
            .collect()
    }

    /// Each channel's live counters, for metrics.
    pub fn stats_handles(&self) -> Vec<(&'static str, Arc<ChannelStats>)> {
        self.state()
            .lanes
            .iter()
            .map(|lane| (lane.name, Arc::clone(&lane.stats)))
            .collect()
    }

    /// Delivers what is queued within [`SHUTDOWN_DEADLINE`], flushes every
    /// channel and stops the threads. Returns the final counters.
    pub fn shutdown(self) -> Vec<ChannelReport> {
        let state = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        finish_lanes(state.lanes, Instant::now() + SHUTDOWN_DEADLINE)
    }

    fn report_overflow(&self) {
        let now = Instant::now();
        {
            let Ok(mut last) = self.last_overflow_report.lock() else {
                return;
            };
            if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(10)) {
                return;
            }
            *last = Some(now);
        }
        for lane in &self.state().lanes {
            let lost = lane.stats.overflowed.load(Ordering::Relaxed);
            if lost > 0 {
                crate::log::message(&format!(
                    "output '{}' is too slow: {lost} alerts did not fit its queue so far",
                    lane.name
                ));
            }
        }
    }
}

fn drain(mut channel: Box<dyn Channel>, queue: Receiver<Message>, stats: &ChannelStats) {
    let mut last_error_report: Option<Instant> = None;
    let mut report = |error: OutputError| {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        if last_error_report.map_or(true, |t| now.duration_since(t) >= Duration::from_secs(10)) {
            last_error_report = Some(now);
            crate::log::message(&format!("output error: {error}"));
        }
    };
    while let Ok(message) = queue.recv() {
        let result = match message {
            Message::Alert(_, _) if stats.abandon.load(Ordering::Relaxed) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                stats.pending.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            Message::Alert(alert, queued_at) => {
                stats.busy_since.store(queued_at, Ordering::Relaxed);
                let result = channel.emit(&alert).map(|()| {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                });
                stats.busy_since.store(0, Ordering::Relaxed);
                stats.pending.fetch_sub(1, Ordering::Relaxed);
                result
            }
            Message::Reopen => channel.reopen(),
            Message::Reconfigure { config, reply } => {
                let _ = reply.send(channel.reconfigure(&config));
                Ok(())
            }
        };
        if let Err(error) = result {
            report(error);
        }
        if queue.is_empty() {
            if let Err(error) = channel.flush() {
                report(error);
            }
        }
    }
    if let Err(error) = channel.flush() {
        report(error);
    }
    // Said whatever was said in the last seconds: it is the last word.
    if let Err(error) = channel.close() {
        crate::log::message(&format!("output error: {error}"));
    }
}

#[cfg(test)]
mod tests;
