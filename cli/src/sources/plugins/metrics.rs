//! The metrics plugins report (`get_metrics`), read for `/metrics` and the
//! metrics snapshot. A plugin takes one call at a time. One that only
//! extracts or parses is held for a call per event, so a reader takes its
//! turn; a source plugin is held by its event loop nearly all the time,
//! so the loop answers a reader's request between two batches. A reader
//! waits for that at most [`WAIT`]; a plugin stuck in `next_batch` past
//! it answers with what it reported last rather than stall a scrape.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use super::fields::{lock, SharedPlugin};
use super::Plugin;
use crate::metrics::falco::PluginMetric;

/// How long a read waits for a source plugin's loop to answer.
const WAIT: Duration = Duration::from_secs(1);

/// How long a read tries to take a plugin itself first.
const TRY: Duration = Duration::from_millis(10);

/// A plugin's last metrics, and a reader's request for fresh ones.
#[derive(Default)]
pub struct MetricsSlot {
    wanted: AtomicBool,
    /// The last metrics read and how many reads there have been.
    last: Mutex<(u64, Vec<PluginMetric>)>,
    served: Condvar,
}

impl MetricsSlot {
    fn last(&self) -> MutexGuard<'_, (u64, Vec<PluginMetric>)> {
        self.last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn store(&self, metrics: Vec<PluginMetric>) -> Vec<PluginMetric> {
        let mut last = self.last();
        last.0 += 1;
        last.1 = metrics.clone();
        self.served.notify_all();
        metrics
    }

    /// Called by whoever holds the plugin (a source loop between two
    /// batches): reads its metrics if a reader asked.
    pub fn serve(&self, plugin: &Plugin) {
        if self.wanted.swap(false, Ordering::AcqRel) {
            self.store(plugin.metrics());
        }
    }
}

struct Reported {
    plugin: SharedPlugin,
    slot: Arc<MetricsSlot>,
    /// Its loop holds it: wait for the loop rather than for the lock.
    sources: bool,
}

/// Reads the metrics of a run's plugins, in config order.
pub struct PluginMetricsReader {
    plugins: Vec<Reported>,
}

impl PluginMetricsReader {
    pub fn new(plugins: &[SharedPlugin]) -> PluginMetricsReader {
        PluginMetricsReader {
            plugins: plugins
                .iter()
                .map(|plugin| {
                    let guard = lock(plugin);
                    Reported {
                        plugin: Arc::clone(plugin),
                        slot: guard.metrics_slot(),
                        sources: guard.info().capabilities.sourcing,
                    }
                })
                .collect(),
        }
    }

    /// Every plugin's metrics now, or as last reported for a source
    /// plugin whose loop did not come back within [`WAIT`].
    pub fn read(&self) -> Vec<PluginMetric> {
        self.plugins.iter().flat_map(read_one).collect()
    }
}

fn read_one(reported: &Reported) -> Vec<PluginMetric> {
    let slot = &reported.slot;
    let before = slot.last().0;
    slot.wanted.store(true, Ordering::Release);
    let tried_until = Instant::now() + TRY;
    loop {
        match reported.plugin.try_lock() {
            Ok(guard) => return take(slot, &guard),
            // The plugin sits between two calls after a panic; usable.
            Err(TryLockError::Poisoned(poisoned)) => return take(slot, &poisoned.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() < tried_until => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(TryLockError::WouldBlock) => break,
        }
    }
    if !reported.sources {
        // Held for one extraction or parse at a time: wait for it.
        return take(slot, &lock(&reported.plugin));
    }
    let deadline = Instant::now() + WAIT;
    let mut last = slot.last();
    while last.0 == before {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        last = slot
            .served
            .wait_timeout(last, left)
            .map(|(guard, _)| guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner().0);
    }
    last.1.clone()
}

fn take(slot: &MetricsSlot, plugin: &Plugin) -> Vec<PluginMetric> {
    slot.wanted.store(false, Ordering::Release);
    slot.store(plugin.metrics())
}
