//! Alert channels, run off the event path.
//!
//! The event loop hands each alert to [`Dispatcher::send`], which renders it
//! once and offers it to every channel's bounded queue without blocking. A
//! channel is a thread that drains its queue. A slow channel fills only its
//! own queue: what does not fit is counted per channel and reported (stats,
//! metrics and a rate-limited line on stderr), never dropped silently.

mod file;
mod grpc;
mod http;
mod program;
pub mod reload;
mod stdout;
mod syslog;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::alert::{render, Alert, RenderOptions, SharedAlert};
use crate::config::Config;

pub use self::file::FileChannel;
pub use self::grpc::GrpcChannel;
pub use self::http::{HttpChannel, HttpOptions};
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
    /// Called for a channel a config reload keeps running instead of
    /// building it again (see `reload::KEPT_ACROSS_RELOADS`): take what
    /// the new config says. Returns what to log, or why the channel keeps
    /// its previous settings.
    fn reconfigure(&mut self, _config: &Config) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// Counters of one channel, shared between the event loop and its thread.
#[derive(Debug, Default)]
pub struct ChannelStats {
    pub sent: AtomicU64,
    pub overflowed: AtomicU64,
    pub failed: AtomicU64,
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
}

enum Message {
    Alert(SharedAlert),
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
}

struct State {
    lanes: Vec<Lane>,
    render: RenderOptions,
}

/// How long a reload waits for a channel to take new settings.
const RECONFIGURE_TIMEOUT: Duration = Duration::from_secs(30);

/// Queue bound per channel when the config does not set one.
pub const DEFAULT_QUEUE_CAPACITY: usize = 16_384;

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
            let worker = std::thread::Builder::new()
                .name(format!("output-{name}"))
                .spawn(move || drain(channel, receiver, &worker_stats))?;
            Ok(Lane {
                name,
                queue,
                stats,
                worker,
            })
        })
        .collect()
}

/// Delivers what a lane has queued, stops its thread, and reports.
fn finish_lane(lane: Lane) -> ChannelReport {
    drop(lane.queue);
    if lane.worker.join().is_err() {
        crate::log::message(&format!("the {} output thread panicked", lane.name));
    }
    ChannelReport {
        name: lane.name,
        sent: lane.stats.sent.load(Ordering::Relaxed),
        overflowed: lane.stats.overflowed.load(Ordering::Relaxed),
        failed: lane.stats.failed.load(Ordering::Relaxed),
        queued: 0,
    }
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
        })
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
        for lane in &state.lanes {
            match lane.queue.try_send(Message::Alert(Arc::clone(&shared))) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    lane.stats.overflowed.fetch_add(1, Ordering::Relaxed);
                    overflowed = true;
                }
            }
        }
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
        for lane in retired {
            finish_lane(lane);
        }
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

    /// Delivers everything queued, flushes every channel and stops the
    /// threads. Returns the final counters.
    pub fn shutdown(self) -> Vec<ChannelReport> {
        let state = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        state.lanes.into_iter().map(finish_lane).collect()
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
            Message::Alert(alert) => channel.emit(&alert).map(|()| {
                stats.sent.fetch_add(1, Ordering::Relaxed);
            }),
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
