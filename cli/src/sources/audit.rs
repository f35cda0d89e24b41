//! The Kubernetes audit source as a feed: the webhook's events, evaluated
//! on a thread of their own, or an audit file read on the main thread.

use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::rules::CompiledRules;

use crate::run::{self, Detections, Pipeline, RunError};
use crate::servers::AuditQueue;
use crate::sources::feed::{AsyncLanes, Ended, Feed, Running, Shared};

/// Audit events waiting for evaluation; past this the webhook answers 503.
const AUDIT_QUEUE: usize = 65_536;

type Rules = CompiledRules<K8sAuditSource>;

/// The webhook's events. The loop runs whether or not the webhook listens
/// at start: a reload that enables `k8s_audit` then only has to start the
/// listener.
pub struct Webhook {
    rules: Rules,
    queue: Option<AuditQueue>,
    events: Receiver<serde_json::Value>,
}

impl Webhook {
    pub fn new(rules: Rules) -> Webhook {
        let (queue, events) = crossbeam_channel::bounded(AUDIT_QUEUE);
        Webhook {
            rules,
            queue: Some(AuditQueue::new(queue)),
            events,
        }
    }
}

impl Feed for Webhook {
    fn name(&self) -> String {
        "k8s_audit: webhook".into()
    }

    fn intake(&mut self) -> Option<AuditQueue> {
        self.queue.take()
    }

    fn start(
        self: Box<Self>,
        shared: &Shared,
        _lanes: &mut AsyncLanes,
    ) -> Result<Box<dyn Running>, String> {
        // Audit events never wait behind kernel events.
        let Webhook {
            mut rules, events, ..
        } = *self;
        let (dispatcher, metrics, host) = (
            std::sync::Arc::clone(&shared.dispatcher),
            std::sync::Arc::clone(&shared.metrics),
            shared.hostname.clone(),
        );
        let mut inbox = shared.mailbox.audit_inbox();
        let thread = std::thread::Builder::new()
            .name("k8s-audit".into())
            .spawn(move || {
                let mut detections = Detections::default();
                // Ends when the servers' shutdown drops the last sender.
                for event in events {
                    if let Some(reloaded) = inbox.poll() {
                        rules = reloaded;
                        crate::log::message("audit rules reloaded");
                    }
                    run::evaluate_audit_event(
                        &mut rules,
                        &event,
                        &dispatcher,
                        &host,
                        &mut detections,
                        &metrics,
                    );
                }
                detections
            })
            .map_err(|e| format!("cannot start the audit thread: {e}"))?;
        Ok(Box::new(WebhookLoop {
            thread: Some(thread),
        }))
    }
}

/// The webhook's loop, on its thread.
struct WebhookLoop {
    thread: Option<JoinHandle<Detections>>,
}

impl Running for WebhookLoop {
    fn join(&mut self, _shared: &Shared) -> Ended {
        let detections = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(detections)) => detections,
            Some(Err(_)) => {
                crate::log::message("the audit thread panicked");
                Detections::default()
            }
            None => Detections::default(),
        };
        Ended {
            detections,
            ..Ended::default()
        }
    }
}

/// An audit log file (`--k8s-audit-file`, or the k8saudit plugin's file
/// `open_params`), read to its end on the main thread.
pub struct File {
    path: PathBuf,
    rules: Rules,
    detections: Detections,
}

impl File {
    pub fn new(path: PathBuf, rules: Rules) -> File {
        File {
            path,
            rules,
            detections: Detections::default(),
        }
    }
}

impl Feed for File {
    fn name(&self) -> String {
        format!("k8s_audit: file {}", self.path.display())
    }

    fn start(
        self: Box<Self>,
        _shared: &Shared,
        _lanes: &mut AsyncLanes,
    ) -> Result<Box<dyn Running>, String> {
        Ok(self)
    }
}

impl Running for File {
    fn drive(&mut self, pipeline: &mut Pipeline<'_>) -> Option<Result<(), RunError>> {
        Some(run::k8s_audit_file(
            &self.path,
            &mut self.rules,
            pipeline.dispatcher,
            pipeline.hostname,
            &mut self.detections,
            pipeline.metrics,
        ))
    }

    fn join(&mut self, shared: &Shared) -> Ended {
        shared.main_source_done(false);
        Ended {
            detections: std::mem::take(&mut self.detections),
            ..Ended::default()
        }
    }
}
