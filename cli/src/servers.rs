//! The listening sockets of a running Peregrine: the webserver (health,
//! versions, metrics) and the Kubernetes audit webhook. Started at startup
//! and restarted by a SIGHUP reload when their settings change.
//!
//! A restart never leaves a working listener for a broken one: on a new
//! address the new socket is bound first and the old one closed only once
//! that worked; on the same port (where both cannot be bound at once) the
//! old one is closed, the new one bound, and if that fails the old
//! settings are bound again. Audit events a webhook accepted are in the
//! evaluation queue, which outlives every listener: a restart loses none.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_channel::Sender;
use serde_json::Value as Json;

use crate::config::{K8sAudit, Webserver};
use crate::metrics::Metrics;
use crate::webserver::{
    AuditIntake, AuditIntakeStats, ListenError, Listener, MetricsSource, Routes,
};

/// How long a webhook request may wait for room in the evaluation queue
/// before it is answered 503.
const AUDIT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the webhook puts what it accepts: the audit thread's queue.
#[derive(Clone)]
pub struct AuditQueue {
    pub queue: Sender<Json>,
    pub stats: Arc<AuditIntakeStats>,
}

/// The listeners, shared by main (startup, shutdown) and the reload thread.
pub struct Servers {
    inner: Mutex<Inner>,
}

struct Inner {
    web: Option<Listener>,
    webhook: Option<Listener>,
    /// None when this run has no audit thread (a capture, an audit file,
    /// `peregrine run`, `--disable-source k8s_audit`), and after shutdown:
    /// dropping the last sender is what ends the audit thread.
    audit: Option<AuditQueue>,
    metrics: Arc<Metrics>,
    closed: bool,
}

fn webserver_address(web: &Webserver) -> String {
    format!("{}:{}", web.listen_address, web.listen_port)
}

fn webhook_address(k8s: &K8sAudit) -> String {
    format!("{}:{}", k8s.listen_address, k8s.listen_port)
}

fn start_webserver(web: &Webserver, metrics: &Arc<Metrics>) -> Result<Listener, ListenError> {
    let routes = Routes {
        healthz: Some(web.k8s_healthz_endpoint.clone()),
        metrics: web
            .prometheus_metrics_enabled
            .then(|| Arc::clone(metrics) as Arc<dyn MetricsSource>),
        versions: true,
        audit: None,
    };
    let listener = Listener::start(
        &webserver_address(web),
        routes,
        2,
        web.ssl_enabled.then(|| web.ssl_certificate.as_ref()),
    )?;
    crate::log::message(&format!(
        "Webserver listening on {} ({} /metrics /versions)",
        listener.address, web.k8s_healthz_endpoint
    ));
    Ok(listener)
}

fn start_webhook(k8s: &K8sAudit, audit: &AuditQueue) -> Result<Listener, ListenError> {
    let routes = Routes {
        audit: Some(AuditIntake {
            path: k8s.path.clone(),
            max_body_bytes: k8s.max_body_bytes,
            queue: audit.queue.clone(),
            queue_timeout: AUDIT_QUEUE_TIMEOUT,
            stats: Arc::clone(&audit.stats),
        }),
        ..Routes::default()
    };
    let listener = Listener::start(
        &webhook_address(k8s),
        routes,
        4,
        (!k8s.ssl_certificate.is_empty()).then(|| k8s.ssl_certificate.as_ref()),
    )?;
    crate::log::message(&format!(
        "Kubernetes audit webhook listening on {}{}",
        listener.address, k8s.path
    ));
    Ok(listener)
}

/// Brings the listener in `slot` to its new settings: restarted on
/// `new_port` when it is to run, stopped when not. Logs what it did;
/// returns whether the new settings are the ones running now.
fn switch(
    what: &str,
    slot: &mut Option<Listener>,
    new_port: Option<u16>,
    start_new: impl Fn() -> Result<Listener, ListenError>,
    start_old: impl Fn() -> Result<Listener, ListenError>,
    log: &mut Vec<String>,
) -> bool {
    match new_port {
        Some(port) => {
            let (message, applied) = restart(what, slot, port, start_new, start_old);
            log.push(message);
            applied
        }
        None => {
            if let Some(listener) = slot.take() {
                listener.stop();
                log.push(format!("configuration reload: {what} stopped"));
            }
            true
        }
    }
}

/// Replaces the listener in `slot` by one `start_new` makes (see the
/// module comment for the order). Returns what to log, and whether the new
/// settings are the ones running now.
fn restart(
    what: &str,
    slot: &mut Option<Listener>,
    new_port: u16,
    start_new: impl Fn() -> Result<Listener, ListenError>,
    start_old: impl Fn() -> Result<Listener, ListenError>,
) -> (String, bool) {
    let Some(old) = slot.take() else {
        return match start_new() {
            Ok(listener) => {
                *slot = Some(listener);
                (format!("configuration reload: {what} started"), true)
            }
            Err(e) => (
                format!("configuration reload: {what} not started: {e}"),
                false,
            ),
        };
    };
    let restarted = format!("configuration reload: {what} restarted with its new settings");
    if new_port != 0 && new_port == old.address.port() {
        // The port is held by the old listener: free it first.
        let old_address = old.address;
        old.stop();
        match start_new() {
            Ok(listener) => {
                *slot = Some(listener);
                (restarted, true)
            }
            Err(e) => match start_old() {
                Ok(listener) => {
                    *slot = Some(listener);
                    (
                        format!(
                            "configuration reload: {what} keeps its previous settings on {old_address}: {e}"
                        ),
                        false,
                    )
                }
                Err(again) => (
                    format!(
                        "configuration reload: {what} is down: {e}; its previous settings failed too: {again}"
                    ),
                    false,
                ),
            },
        }
    } else {
        match start_new() {
            Ok(listener) => {
                old.stop();
                *slot = Some(listener);
                (restarted, true)
            }
            Err(e) => {
                let address = old.address;
                *slot = Some(old);
                (
                    format!(
                        "configuration reload: {what} keeps its previous settings on {address}: {e}"
                    ),
                    false,
                )
            }
        }
    }
}

impl Servers {
    /// Starts the listeners `web` and `webhook` ask for (None: off). An
    /// error stops what was started and names the failing address.
    pub fn start(
        web: Option<&Webserver>,
        webhook: Option<&K8sAudit>,
        audit: Option<AuditQueue>,
        metrics: Arc<Metrics>,
    ) -> Result<Servers, ListenError> {
        let web = web.map(|web| start_webserver(web, &metrics)).transpose()?;
        let webhook = match (webhook, &audit) {
            (Some(k8s), Some(queue)) => match start_webhook(k8s, queue) {
                Ok(listener) => Some(listener),
                Err(e) => {
                    if let Some(web) = web {
                        web.stop();
                    }
                    return Err(e);
                }
            },
            _ => None,
        };
        if webhook.is_some() {
            metrics.set_audit(audit.as_ref().map(|a| Arc::clone(&a.stats)));
        }
        Ok(Servers {
            inner: Mutex::new(Inner {
                web,
                webhook,
                audit,
                metrics,
                closed: false,
            }),
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Listeners are whole even if a holder panicked.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies changed `webserver` and `k8s_audit` settings. Returns what
    /// to log, and the settings now in effect for each (the old ones where
    /// the new could not be applied), so that the next reload retries.
    pub fn reconfigure(
        &self,
        old: (&Webserver, &K8sAudit),
        new: (&Webserver, &K8sAudit),
    ) -> (Vec<String>, Webserver, K8sAudit) {
        let mut inner = self.inner();
        let mut log = Vec::new();
        let (mut web_now, mut k8s_now) = (old.0.clone(), old.1.clone());
        if inner.closed {
            return (log, web_now, k8s_now);
        }
        let Inner {
            web,
            webhook,
            audit,
            metrics,
            ..
        } = &mut *inner;
        if old.0 != new.0 {
            let applied = switch(
                "webserver",
                web,
                new.0.enabled.then_some(new.0.listen_port),
                || start_webserver(new.0, metrics),
                || start_webserver(old.0, metrics),
                &mut log,
            );
            if applied {
                web_now = new.0.clone();
            }
        }
        if old.1 != new.1 {
            match audit {
                None => log.push(
                    "configuration reload: k8s_audit is not applied: the audit webhook is not an \
                     event source of this run (a capture or audit file, `peregrine run`, or \
                     --disable-source k8s_audit)"
                        .into(),
                ),
                Some(queue) => {
                    let applied = switch(
                        "Kubernetes audit webhook",
                        webhook,
                        new.1.enabled.then_some(new.1.listen_port),
                        || start_webhook(new.1, queue),
                        || start_webhook(old.1, queue),
                        &mut log,
                    );
                    if applied {
                        k8s_now = new.1.clone();
                    }
                    metrics.set_audit(webhook.as_ref().map(|_| Arc::clone(&queue.stats)));
                }
            }
        }
        (log, web_now, k8s_now)
    }

    /// Stops every listener, waiting for the requests in progress, and
    /// lets the audit thread end once its queue is empty. Reloads after
    /// this change nothing.
    pub fn shutdown(&self) {
        let mut inner = self.inner();
        inner.closed = true;
        inner.audit = None;
        if let Some(listener) = inner.web.take() {
            listener.stop();
        }
        if let Some(listener) = inner.webhook.take() {
            listener.stop();
        }
    }
}
