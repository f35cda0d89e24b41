//! The listening sockets of a running Peregrine: the webserver (health,
//! versions, metrics) and the Kubernetes audit webhook, served by hyper on
//! a small tokio runtime of their own. Started at startup and restarted by
//! a SIGHUP reload when their settings change.
//!
//! A restart never leaves a working listener for a broken one, and never
//! unbinds a port it keeps: on the same address the new settings take
//! over the same socket (connections waiting in its accept queue are served
//! by the new settings); on a new port the new socket is bound first and
//! the old one closed only once that worked. Only a move to another
//! address on the same port (which cannot be bound while the old socket
//! is) closes first, and binds the old settings again if the new fail.
//! Audit events a webhook accepted are in the evaluation queue, which
//! outlives every listener: a restart loses none.

pub mod console;
pub mod listener;
pub mod webserver;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::config::{K8sAudit, Webserver};
use crate::metrics::Metrics;
pub use listener::{Health, ListenError, Listener};
use listener::{Limits, Setup};
pub use webserver::AuditQueue;
use webserver::{AuditIntake, MetricsSource, Routes};

/// How long a webhook request may wait for room in the evaluation queue
/// before it is answered 503.
const AUDIT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// Threads of the listeners' runtime, and of its pool that parses bodies.
const RUNTIME_THREADS: usize = 2;
const PARSER_THREADS: usize = 2;

const WEBSERVER: &str = "webserver";
const WEBHOOK: &str = "Kubernetes audit webhook";

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
    health: Arc<Health>,
    /// Made with the first listener; None after shutdown.
    runtime: Option<tokio::runtime::Runtime>,
    closed: bool,
}

fn webserver_address(web: &Webserver) -> String {
    format!("{}:{}", web.listen_address, web.listen_port)
}

fn webhook_address(k8s: &K8sAudit) -> String {
    format!("{}:{}", k8s.listen_address, k8s.listen_port)
}

fn tls(
    address: &str,
    path: Option<&str>,
) -> Result<Option<tokio_rustls::TlsAcceptor>, ListenError> {
    path.map(|path| webserver::tls_acceptor(path.as_ref()))
        .transpose()
        .map_err(|message| ListenError {
            address: address.to_string(),
            message,
        })
}

/// What every listener shares: where health is reported, the counters.
#[derive(Clone)]
struct Common {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

fn webserver_setup(web: &Webserver, common: &Common) -> Result<Setup, ListenError> {
    let mut routes = Routes::new(Arc::clone(&common.health));
    routes.healthz = Some(web.k8s_healthz_endpoint.clone());
    routes.metrics = web
        .prometheus_metrics_enabled
        .then(|| Arc::clone(&common.metrics) as Arc<dyn MetricsSource>);
    routes.versions = true;
    routes.console = web.console.then(|| {
        console::Console::new(
            Arc::clone(console::Hub::global()),
            &web.console_token,
            Some(Arc::clone(&common.metrics) as Arc<dyn MetricsSource>),
        )
    });
    Ok(Setup {
        name: WEBSERVER.into(),
        service: Arc::new(routes),
        limits: Limits {
            max_connections: 128,
            ..Limits::default()
        },
        tls: webserver_tls(web)?,
        health: Arc::clone(&common.health),
    })
}

/// The webserver's TLS settings; with the console's client CAs, clients
/// are asked for a certificate (and may go without).
fn webserver_tls(web: &Webserver) -> Result<Option<tokio_rustls::TlsAcceptor>, ListenError> {
    let client_ca = (web.console && !web.console_client_ca.is_empty())
        .then_some(web.console_client_ca.as_str());
    let fail = |message| ListenError {
        address: webserver_address(web),
        message,
    };
    match (web.ssl_enabled, client_ca) {
        (false, Some(_)) => Err(fail(
            "webserver.console_client_ca needs webserver.ssl_enabled: client certificates come \
             with TLS"
                .into(),
        )),
        (false, None) => Ok(None),
        (true, ca) => webserver::tls_acceptor_verifying(
            web.ssl_certificate.as_ref(),
            ca.map(std::path::Path::new),
        )
        .map(Some)
        .map_err(fail),
    }
}

fn webhook_setup(
    k8s: &K8sAudit,
    queue: &AuditQueue,
    common: &Common,
) -> Result<Setup, ListenError> {
    let mut routes = Routes::new(Arc::clone(&common.health));
    routes.audit = Some(AuditIntake {
        path: k8s.path.clone(),
        max_body_bytes: k8s.max_body_bytes,
        queue: queue.clone(),
        queue_timeout: AUDIT_QUEUE_TIMEOUT,
    });
    Ok(Setup {
        name: WEBHOOK.into(),
        service: Arc::new(routes),
        limits: Limits::default(),
        tls: tls(
            &webhook_address(k8s),
            (!k8s.ssl_certificate.is_empty()).then_some(k8s.ssl_certificate.as_str()),
        )?,
        health: Arc::clone(&common.health),
    })
}

/// One listener's settings, old or new, as [`switch`] needs them.
struct Plan<'a> {
    address: String,
    setup: &'a dyn Fn() -> Result<Setup, ListenError>,
    /// What the log says once it listens: a name, then what it serves.
    banner: (&'static str, String),
}

impl Inner {
    /// Shows the counters of the listeners running now on /metrics.
    fn publish_stats(&self) {
        self.metrics
            .set_listener("webserver", self.web.as_ref().map(Listener::stats));
        self.metrics
            .set_listener("k8s_audit", self.webhook.as_ref().map(Listener::stats));
    }

    fn common(&self) -> Common {
        Common {
            health: Arc::clone(&self.health),
            metrics: Arc::clone(&self.metrics),
        }
    }

    fn runtime(&mut self) -> Result<tokio::runtime::Handle, ListenError> {
        if let Some(runtime) = &self.runtime {
            return Ok(runtime.handle().clone());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .max_blocking_threads(PARSER_THREADS)
            .thread_name("http")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| ListenError {
                address: "any".into(),
                message: format!("cannot start the listeners' runtime: {e}"),
            })?;
        let handle = runtime.handle().clone();
        self.runtime = Some(runtime);
        Ok(handle)
    }
}

fn start(plan: &Plan, runtime: &tokio::runtime::Handle) -> Result<Listener, ListenError> {
    let listener = Listener::start(&plan.address, (plan.setup)()?, runtime)?;
    announce(plan, &listener);
    Ok(listener)
}

fn announce(plan: &Plan, listener: &Listener) {
    let (what, detail) = &plan.banner;
    crate::log::message(&format!("{what} listening on {}{detail}", listener.address));
}

fn webserver_banner(web: &Webserver) -> (&'static str, String) {
    (
        "Webserver",
        format!(
            " ({} /metrics /versions{})",
            web.k8s_healthz_endpoint,
            if web.console { ", console at /" } else { "" }
        ),
    )
}

fn webhook_banner(k8s: &K8sAudit) -> (&'static str, String) {
    ("Kubernetes audit webhook", k8s.path.clone())
}

/// Brings the listener in `slot` from `old` to `new` settings (None: not
/// to run). Logs what it did; returns whether the new settings are the
/// ones running now.
fn switch(
    what: &str,
    slot: &mut Option<Listener>,
    old: &Plan,
    new: Option<&Plan>,
    runtime: &tokio::runtime::Handle,
    health: &Health,
    log: &mut Vec<String>,
) -> bool {
    let Some(new) = new else {
        if let Some(listener) = slot.take() {
            listener.stop();
            log.push(format!("configuration reload: {what} stopped"));
        }
        return true;
    };
    let (message, applied) = restart(what, slot, old, new, runtime);
    if slot.is_none() {
        health.down(what, &message);
    }
    log.push(message);
    applied
}

/// Replaces the listener in `slot` (see the module comment for the
/// order). Returns what to log, and whether the new settings run now.
fn restart(
    what: &str,
    slot: &mut Option<Listener>,
    old_plan: &Plan,
    new_plan: &Plan,
    runtime: &tokio::runtime::Handle,
) -> (String, bool) {
    let Some(old) = slot.take() else {
        return match start(new_plan, runtime) {
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
    let keeps = |address, e: &ListenError| {
        format!("configuration reload: {what} keeps its previous settings on {address}: {e}")
    };
    let ephemeral = new_plan.address.ends_with(":0");
    if !ephemeral && new_plan.address == old_plan.address {
        // Same socket, new settings: the port is never unbound.
        return match (new_plan.setup)() {
            Ok(setup) => {
                let listener = Listener::start_on(old, setup);
                announce(new_plan, &listener);
                *slot = Some(listener);
                (restarted, true)
            }
            Err(e) => {
                let message = keeps(old.address, &e);
                *slot = Some(old);
                (message, false)
            }
        };
    }
    let same_port =
        !ephemeral && new_plan.address.rsplit(':').next() == Some(&old.address.port().to_string());
    if same_port {
        // Another address on the port the old socket holds: free it first.
        let old_address = old.address;
        old.stop();
        return match start(new_plan, runtime) {
            Ok(listener) => {
                *slot = Some(listener);
                (restarted, true)
            }
            Err(e) => match start(old_plan, runtime) {
                Ok(listener) => {
                    *slot = Some(listener);
                    (keeps(old_address, &e), false)
                }
                Err(again) => (
                    format!(
                        "configuration reload: {what} is down: {e}; its previous settings failed too: {again}"
                    ),
                    false,
                ),
            },
        };
    }
    match start(new_plan, runtime) {
        Ok(listener) => {
            old.stop();
            *slot = Some(listener);
            (restarted, true)
        }
        Err(e) => {
            let message = keeps(old.address, &e);
            *slot = Some(old);
            (message, false)
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
        let mut inner = Inner {
            web: None,
            webhook: None,
            audit,
            metrics,
            health: Arc::default(),
            runtime: None,
            closed: false,
        };
        let started = (|| {
            let common = inner.common();
            if let Some(web) = web {
                let runtime = inner.runtime()?;
                let plan = Plan {
                    address: webserver_address(web),
                    setup: &|| webserver_setup(web, &common),
                    banner: webserver_banner(web),
                };
                inner.web = Some(start(&plan, &runtime)?);
            }
            if let (Some(k8s), Some(queue)) = (webhook, inner.audit.clone()) {
                let runtime = inner.runtime()?;
                let plan = Plan {
                    address: webhook_address(k8s),
                    setup: &|| webhook_setup(k8s, &queue, &common),
                    banner: webhook_banner(k8s),
                };
                inner.webhook = Some(start(&plan, &runtime)?);
                inner.metrics.set_audit(Some(Arc::clone(&queue.stats)));
            }
            Ok(())
        })();
        inner.publish_stats();
        let servers = Servers {
            inner: Mutex::new(inner),
        };
        match started {
            Ok(()) => Ok(servers),
            Err(e) => {
                servers.shutdown();
                Err(e)
            }
        }
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
        let runtime = match inner.runtime() {
            Ok(runtime) => runtime,
            Err(e) => {
                log.push(format!("configuration reload: listeners unchanged: {e}"));
                return (log, web_now, k8s_now);
            }
        };
        let inner = &mut *inner;
        let common = inner.common();
        if old.0 != new.0 {
            let (old_setup, new_setup) = (
                || webserver_setup(old.0, &common),
                || webserver_setup(new.0, &common),
            );
            let old_plan = Plan {
                address: webserver_address(old.0),
                setup: &old_setup,
                banner: webserver_banner(old.0),
            };
            let new_plan = Plan {
                address: webserver_address(new.0),
                setup: &new_setup,
                banner: webserver_banner(new.0),
            };
            let mut slot = inner.web.take();
            let applied = switch(
                WEBSERVER,
                &mut slot,
                &old_plan,
                new.0.enabled.then_some(&new_plan),
                &runtime,
                &inner.health,
                &mut log,
            );
            inner.web = slot;
            if applied {
                web_now = new.0.clone();
            }
        }
        if old.1 != new.1 {
            match inner.audit.clone() {
                None => log.push(
                    "configuration reload: k8s_audit is not applied: the audit webhook is not an \
                     event source of this run (a capture or audit file, `peregrine run`, or \
                     --disable-source k8s_audit)"
                        .into(),
                ),
                Some(queue) => {
                    let (old_setup, new_setup) = (
                        || webhook_setup(old.1, &queue, &common),
                        || webhook_setup(new.1, &queue, &common),
                    );
                    let old_plan = Plan {
                        address: webhook_address(old.1),
                        setup: &old_setup,
                        banner: webhook_banner(old.1),
                    };
                    let new_plan = Plan {
                        address: webhook_address(new.1),
                        setup: &new_setup,
                        banner: webhook_banner(new.1),
                    };
                    let mut slot = inner.webhook.take();
                    let applied = switch(
                        WEBHOOK,
                        &mut slot,
                        &old_plan,
                        new.1.enabled.then_some(&new_plan),
                        &runtime,
                        &inner.health,
                        &mut log,
                    );
                    inner.webhook = slot;
                    if applied {
                        k8s_now = new.1.clone();
                    }
                    inner
                        .metrics
                        .set_audit(inner.webhook.as_ref().map(|_| Arc::clone(&queue.stats)));
                }
            }
        }
        inner.publish_stats();
        (log, web_now, k8s_now)
    }

    /// Stops every listener (requests in progress get a bounded time to
    /// finish), and lets the audit thread end once its queue is empty.
    /// Reloads after this change nothing.
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
        if let Some(runtime) = inner.runtime.take() {
            // Tasks left (a retired listener's idle connections) are
            // dropped; their sockets close.
            runtime.shutdown_timeout(Duration::from_millis(500));
        }
    }
}
