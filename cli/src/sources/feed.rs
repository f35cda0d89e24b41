//! What every event source of a run is to `main`: a [`Feed`] it starts
//! with the run's shared pieces, then a [`Running`] loop it drives (the
//! one the main thread runs), joins and closes, each the same way. The
//! plan ([`super::plan::SourcePlan::feeds`]) says which feeds a run has.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use crate::metrics::Metrics;
use crate::outputs::Dispatcher;
use crate::reload::Mailbox;
use crate::run::{Detections, Pipeline, RunError};
use crate::servers::AuditQueue;
use crate::sources::plugins::PluginEvent;

/// What every loop of a run shares.
pub struct Shared {
    pub dispatcher: Arc<Dispatcher>,
    pub metrics: Arc<Metrics>,
    pub hostname: String,
    /// Set by SIGTERM, SIGINT and `-M`, and once the main thread's source
    /// is done (see [`Shared::main_source_done`]).
    pub stop: Arc<AtomicBool>,
    /// Where a SIGHUP's reload leaves each loop its new rules.
    pub mailbox: Arc<Mailbox>,
}

impl Shared {
    /// The main thread's source is done: live sources stop too; those
    /// replaying a capture read it to its end, as Falco's do.
    pub fn main_source_done(&self, replayed_capture: bool) {
        if !replayed_capture {
            self.stop.store(true, Ordering::SeqCst);
            crate::wakeup::ring();
        }
    }
}

/// The async events plugins send, one lane per running source that takes
/// them (see [`crate::sources::plugins::host::Hosted::start_async`]).
pub type AsyncLanes = HashMap<String, Receiver<PluginEvent>>;

/// An event source, before its loop starts.
pub trait Feed {
    /// What it is, for tests and messages: family and reader.
    fn name(&self) -> String;

    /// The queue the webhook fills for this feed, handed once to the
    /// servers: only they may hold its sender, whose drop ends the loop.
    fn intake(&mut self) -> Option<AuditQueue> {
        None
    }

    /// Starts the loop on a thread of its own, or readies the one the
    /// main thread drives; takes its lane of async events, if any.
    fn start(
        self: Box<Self>,
        shared: &Shared,
        lanes: &mut AsyncLanes,
    ) -> Result<Box<dyn Running>, String>;
}

/// A started feed.
pub trait Running {
    /// Runs the loop on the main thread until its source ends or the run
    /// stops. `None`: the loop has a thread of its own.
    fn drive(&mut self, _pipeline: &mut Pipeline<'_>) -> Option<Result<(), RunError>> {
        None
    }

    /// Waits for the loop to end, once the main thread's has.
    fn join(&mut self, shared: &Shared) -> Ended;

    /// After the run's plugins are told the capture closed: closes what
    /// outlives the loop (the plugin capture file).
    fn close(self: Box<Self>) -> Result<(), String> {
        Ok(())
    }
}

/// What a loop hands back for the closing summary.
#[derive(Debug, Default)]
pub struct Ended {
    pub detections: Detections,
    /// Why the loop failed (already logged); the run ends with it.
    pub error: Option<String>,
    /// The exit status the source decides (`peregrine run`: the command's).
    pub exit_code: Option<u8>,
}

impl Ended {
    /// Adds a later loop's end: its counts after these, the first error
    /// and exit status kept.
    pub fn merge(&mut self, other: Ended) {
        self.detections.merge(other.detections);
        if self.error.is_none() {
            self.error = other.error;
        }
        self.exit_code = self.exit_code.or(other.exit_code);
    }
}

/// The main thread when no source of the plan reads there (`nodriver`,
/// the syscall source disabled): it waits for a stop while the webhook
/// and the plugin loops work, or, when nothing else runs, says so.
pub struct Idle {
    pub others_run: bool,
}

impl Feed for Idle {
    fn name(&self) -> String {
        if self.others_run {
            "main thread: waits for a stop".into()
        } else {
            "main thread: nothing to do".into()
        }
    }

    fn start(
        self: Box<Self>,
        _shared: &Shared,
        _lanes: &mut AsyncLanes,
    ) -> Result<Box<dyn Running>, String> {
        Ok(self)
    }
}

impl Running for Idle {
    fn drive(&mut self, pipeline: &mut Pipeline<'_>) -> Option<Result<(), RunError>> {
        Some(if self.others_run {
            crate::run::wait_until_stopped(pipeline);
            Ok(())
        } else {
            Err(RunError::Audit(
                "every event source is disabled: nothing to do".into(),
            ))
        })
    }

    fn join(&mut self, shared: &Shared) -> Ended {
        shared.main_source_done(false);
        Ended::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Priority;

    fn ended(rules: &[&str], error: Option<&str>, exit_code: Option<u8>) -> Ended {
        let mut detections = Detections::default();
        for rule in rules {
            detections.events += 1;
            detections.count(rule, Priority::Warning);
        }
        Ended {
            detections,
            error: error.map(String::from),
            exit_code,
        }
    }

    #[test]
    fn ends_merge_in_join_order_keeping_the_first_error_and_status() {
        // As main joins them: the syscall loop's counts, then each feed's.
        let mut total = ended(&["b"], None, None);
        total.merge(ended(&["a", "b"], None, Some(3)));
        total.merge(ended(&["c"], Some("first"), Some(4)));
        total.merge(ended(&[], Some("second"), None));
        let rules: Vec<(&str, u64)> = total
            .detections
            .by_rule
            .iter()
            .map(|(rule, n)| (rule.as_str(), *n))
            .collect();
        assert_eq!(rules, [("b", 2), ("a", 1), ("c", 1)]);
        assert_eq!(total.detections.events, 4);
        assert_eq!(total.error.as_deref(), Some("first"));
        assert_eq!(total.exit_code, Some(3));
    }
}
