//! The HTTP endpoints: health, versions and Prometheus metrics on the
//! webserver port, and the Kubernetes audit webhook on its own port.
//!
//! The webhook only reads, parses and queues: audit events go to the
//! evaluation thread through a bounded queue. A request's events are
//! queued all together or not at all: when the queue has no room for them
//! within the queue timeout, the request is answered 503 so the API server
//! retries it, and none of its events is evaluated; an event is evaluated
//! once or refused in the open, never dropped on the floor.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value as Json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use super::console::Console;
use super::listener::{full, Body, Health, Limits, Serve};

/// Something that can describe Peregrine's state as Prometheus text.
pub trait MetricsSource: Send + Sync {
    fn prometheus_text(&self) -> String;
}

/// Counters of the audit webhook.
#[derive(Debug, Default)]
pub struct AuditIntakeStats {
    pub requests: AtomicU64,
    pub events: AtomicU64,
    pub bad_requests: AtomicU64,
    pub too_large: AtomicU64,
    pub busy: AtomicU64,
    /// Bodies that did not arrive within the body timeouts (answered 408).
    pub timed_out: AtomicU64,
}

/// The audit thread's queue, shared by every webhook listener of a run
/// (an old and a new one overlap during a reload).
#[derive(Clone)]
pub struct AuditQueue {
    queue: Sender<Json>,
    /// Held while one request's events go in, so that the room counted
    /// for them is still there.
    pushing: Arc<Mutex<()>>,
    /// Room for the bodies being read, in KiB.
    body_budget: Arc<Semaphore>,
    pub stats: Arc<AuditIntakeStats>,
}

/// Why a request's events were not queued.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    /// No room within the queue timeout, or the audit thread is gone.
    Busy,
    /// More events than the queue can ever hold at once.
    TooMany(usize),
}

impl AuditQueue {
    pub fn new(queue: Sender<Json>) -> AuditQueue {
        AuditQueue {
            queue,
            pushing: Arc::default(),
            body_budget: Arc::new(Semaphore::new(BODY_BUDGET_KIB as usize)),
            stats: Arc::default(),
        }
    }

    #[cfg(test)]
    fn with_body_budget(mut self, kib: usize) -> AuditQueue {
        self.body_budget = Arc::new(Semaphore::new(kib));
        self
    }

    /// Queues all of `events`, or none of them.
    fn try_push_all(&self, events: &mut Vec<Json>) -> Result<bool, Refused> {
        let _pushing = self.pushing.lock().unwrap_or_else(|p| p.into_inner());
        let capacity = self.queue.capacity().unwrap_or(usize::MAX);
        if events.len() > capacity {
            return Err(Refused::TooMany(capacity));
        }
        if capacity - self.queue.len() < events.len() {
            return Ok(false);
        }
        // Only the audit thread takes from the queue, and only this
        // holder of the lock adds to it: the room counted is there.
        for event in events.drain(..) {
            if let Err(TrySendError::Disconnected(_) | TrySendError::Full(_)) =
                self.queue.try_send(event)
            {
                return Err(Refused::Busy);
            }
        }
        Ok(true)
    }

    /// Queues all of `events`, waiting up to `timeout` for room.
    async fn push_all(&self, mut events: Vec<Json>, timeout: Duration) -> Result<(), Refused> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if self.try_push_all(&mut events)? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Refused::Busy);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// The audit webhook: where it listens and where events go.
#[derive(Clone)]
pub struct AuditIntake {
    pub path: String,
    pub max_body_bytes: usize,
    pub queue: AuditQueue,
    /// How long a request may wait for room in the queue before 503.
    pub queue_timeout: Duration,
}

/// What one listening socket serves.
#[derive(Clone)]
pub struct Routes {
    pub healthz: Option<String>,
    pub metrics: Option<Arc<dyn MetricsSource>>,
    pub versions: bool,
    pub audit: Option<AuditIntake>,
    /// The web console at `/` and under `/console/`.
    pub console: Option<Console>,
    /// What /healthz reports on.
    pub health: Arc<Health>,
}

impl Routes {
    pub fn new(health: Arc<Health>) -> Routes {
        Routes {
            healthz: None,
            metrics: None,
            versions: false,
            audit: None,
            console: None,
            health,
        }
    }
}

/// Reads a PEM file holding a private key and a certificate chain
/// (Falco's `ssl_certificate`) into a TLS acceptor; the error says what
/// the file lacks.
pub fn tls_acceptor(path: &Path) -> Result<TlsAcceptor, String> {
    tls_acceptor_verifying(path, None)
}

/// [`tls_acceptor`] that also asks clients for a certificate signed by a
/// CA in the PEM file `client_ca`. A client without one still connects
/// (probes of /healthz have none); one with a certificate that does not
/// verify is refused in the handshake.
pub fn tls_acceptor_verifying(
    path: &Path,
    client_ca: Option<&Path>,
) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str| format!("certificate file {}: {what}", path.display());
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the certificate file {}: {e}", path.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&format!("unreadable PEM block: {e}")))?;
    if certificates.is_empty() {
        return Err(bad("no CERTIFICATE block"));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => bad(
            "no private key: expected a PRIVATE KEY (PKCS#8), RSA PRIVATE KEY or EC PRIVATE \
             KEY block",
        ),
        other => bad(&format!("unreadable private key: {other}")),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => builder.with_client_cert_verifier(client_verifier(ca, provider)?),
    };
    let config = builder
        .with_single_cert(certificates, key)
        .map_err(|e| bad(&format!("the key and certificate are not usable: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Verifies client certificates against the CAs in the PEM file `path`.
fn client_verifier(
    path: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let bad = |what: &str| format!("client CA file {}: {what}", path.display());
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the client CA file {}: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        let certificate = certificate.map_err(|e| bad(&format!("unreadable PEM block: {e}")))?;
        roots
            .add(certificate)
            .map_err(|e| bad(&format!("unusable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("no CERTIFICATE block"));
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| bad(&e.to_string()))
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut response = Response::new(full(body.into()));
    *response.status_mut() = status;
    response
}

fn with_type(mut response: Response<Body>, content_type: &'static str) -> Response<Body> {
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

impl Serve for Routes {
    fn serve(
        self: Arc<Self>,
        request: Request<Incoming>,
        limits: Limits,
    ) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> {
        Box::pin(async move { self.answer(request, limits).await })
    }
}

impl Routes {
    async fn answer(&self, request: Request<Incoming>, limits: Limits) -> Response<Body> {
        let path = request.uri().path();
        let get = request.method() == Method::GET;
        if get && self.healthz.as_deref() == Some(path) {
            return self.healthz();
        }
        if get && self.versions && path == "/versions" {
            // What `--version` says with json_output, Falco's engine and
            // plugin keys among it: falcoctl's `--falco-versions` reads
            // this endpoint to pick the rules and plugins it may install.
            let body = crate::commands::version::as_json();
            return with_type(text(StatusCode::OK, body.to_string()), "application/json");
        }
        if let (Some(metrics), "/metrics", true) = (&self.metrics, path, get) {
            // Off the runtime's threads: a scrape reads /proc and may wait
            // a moment for a plugin's event loop to report its metrics.
            let metrics = Arc::clone(metrics);
            let body = tokio::task::spawn_blocking(move || metrics.prometheus_text()).await;
            return match body {
                Ok(body) => with_type(text(StatusCode::OK, body), "text/plain; version=0.0.4"),
                Err(_) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the metrics could not be read\n",
                ),
            };
        }
        if let Some(console) = self.console.as_ref().filter(|_| Console::owns(path)) {
            return console.answer(&request);
        }
        if let Some(audit) = self.audit.as_ref().filter(|a| a.path == path) {
            if request.method() == Method::POST {
                return receive_audit(request, audit, limits).await;
            }
            return text(StatusCode::METHOD_NOT_ALLOWED, "audit events are POSTed\n");
        }
        text(StatusCode::NOT_FOUND, "not found\n")
    }

    /// 200 while every listener can accept connections; 503 naming what
    /// is wrong otherwise.
    fn healthz(&self) -> Response<Body> {
        let problems = self.health.problems();
        let (status, body) = if problems.is_empty() {
            (StatusCode::OK, "{\"status\": \"ok\"}".to_string())
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"status": "degraded", "problems": problems}).to_string(),
            )
        };
        with_type(text(status, body), "application/json")
    }
}

/// Why a body was not read.
enum BodyError {
    TooLarge,
    TimedOut,
    Broken(String),
    /// The bodies in progress hold the whole budget.
    Busy,
}

/// Body bytes the webhooks hold at once, in KiB: with up to hundreds of
/// connections each allowed `max_body_bytes`, memory is bounded by this,
/// not by their product. A body waits (up to the idle timeout) for room.
const BODY_BUDGET_KIB: u32 = 256 * 1024;

fn budget_kib(bytes: usize) -> u32 {
    bytes.div_ceil(1024).min(BODY_BUDGET_KIB as usize) as u32
}

/// Takes room in the body budget so that `held` covers `bytes`.
async fn hold(
    budget: &Arc<Semaphore>,
    held: &mut Option<OwnedSemaphorePermit>,
    bytes: usize,
    wait: Duration,
) -> Result<(), BodyError> {
    let have = held.as_ref().map_or(0, |p| p.num_permits()) as u32;
    let want = budget_kib(bytes);
    if want <= have {
        return Ok(());
    }
    let more = tokio::time::timeout(wait, Arc::clone(budget).acquire_many_owned(want - have))
        .await
        .map_err(|_| BodyError::Busy)?
        .map_err(|_| BodyError::Busy)?;
    match held {
        Some(permit) => permit.merge(more),
        None => *held = Some(more),
    }
    Ok(())
}

/// Reads a body of at most `max` bytes. The declared length is checked
/// before anything is allocated; a body without one grows only as its
/// bytes arrive. Each piece must come within the idle timeout, the whole
/// within the body timeout.
async fn read_body(
    body: Incoming,
    max: usize,
    limits: Limits,
    budget: &Arc<Semaphore>,
) -> Result<(Vec<u8>, Option<OwnedSemaphorePermit>), BodyError> {
    let declared = body.size_hint().exact();
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut held = None;
    // A declared length takes its room at once: no half-read bodies
    // waiting on each other for the rest.
    if let Some(n) = declared {
        hold(budget, &mut held, n as usize, limits.body_idle_timeout).await?;
    }
    let mut bytes = Vec::with_capacity(declared.map_or(0, |n| n as usize).min(1 << 20));
    let deadline = tokio::time::Instant::now() + limits.body_timeout;
    let mut body = body;
    loop {
        let next = tokio::time::timeout(limits.body_idle_timeout, body.frame());
        let frame = match tokio::time::timeout_at(deadline, next).await {
            Err(_) | Ok(Err(_)) => return Err(BodyError::TimedOut),
            Ok(Ok(None)) => return Ok((bytes, held)),
            Ok(Ok(Some(Err(e)))) => return Err(BodyError::Broken(e.to_string())),
            Ok(Ok(Some(Ok(frame)))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if data.len() > max - bytes.len() {
                return Err(BodyError::TooLarge);
            }
            hold(
                budget,
                &mut held,
                bytes.len() + data.len(),
                limits.body_idle_timeout,
            )
            .await?;
            bytes.extend_from_slice(&data);
        }
    }
}

async fn receive_audit(
    request: Request<Incoming>,
    audit: &AuditIntake,
    limits: Limits,
) -> Response<Body> {
    let stats = &audit.queue.stats;
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let too_large = || {
        stats.too_large.fetch_add(1, Ordering::Relaxed);
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {} bytes\n", audit.max_body_bytes),
        )
    };
    let read = read_body(
        request.into_body(),
        audit.max_body_bytes,
        limits,
        &audit.queue.body_budget,
    )
    .await;
    // The room the body takes is held until its events are queued.
    let (body, _room) = match read {
        Ok(read) => read,
        Err(BodyError::Busy) => {
            stats.busy.fetch_add(1, Ordering::Relaxed);
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy: too many bodies in progress; retry later\n",
            );
        }
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::TimedOut) => {
            stats.timed_out.fetch_add(1, Ordering::Relaxed);
            return text(
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time\n",
            );
        }
        Err(BodyError::Broken(e)) => {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            return text(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}\n"),
            );
        }
    };
    // Parsing a large body takes a while: off the threads that accept
    // and read, on the runtime's bounded blocking pool.
    let events = match tokio::task::spawn_blocking(move || audit_events(&body)).await {
        Ok(Ok(events)) => events,
        Ok(Err(message)) => {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            return text(StatusCode::BAD_REQUEST, format!("{message}\n"));
        }
        Err(e) => {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the body could not be parsed: {e}\n"),
            );
        }
    };
    let count = events.len() as u64;
    match audit.queue.push_all(events, audit.queue_timeout).await {
        Ok(()) => {
            stats.events.fetch_add(count, Ordering::Relaxed);
            text(StatusCode::OK, "<html><body>Ok</body></html>\n")
        }
        Err(Refused::Busy) => {
            stats.busy.fetch_add(1, Ordering::Relaxed);
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy: no event of this request was taken; retry later\n",
            )
        }
        Err(Refused::TooMany(capacity)) => {
            stats.too_large.fetch_add(1, Ordering::Relaxed);
            text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("more than {capacity} events in one request\n"),
            )
        }
    }
}

/// The events of an audit body: one `Event`, the items of an
/// `EventList`, or several objects in a row.
fn audit_events(body: &[u8]) -> Result<Vec<Json>, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?;
    peregrine_engine::k8s_audit::events_from_json(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servers::listener::{Listener, Setup};
    use std::net::SocketAddr;

    struct FixedMetrics;
    impl MetricsSource for FixedMetrics {
        fn prometheus_text(&self) -> String {
            "peregrine_events_total 42\n".into()
        }
    }

    fn get(address: SocketAddr, path: &str) -> (u16, String) {
        let response = ureq::get(&format!("http://{address}{path}"))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.into_body().read_to_string().unwrap())
    }

    fn post(address: SocketAddr, path: &str, body: &str) -> u16 {
        ureq::post(&format!("http://{address}{path}"))
            .config()
            .http_status_as_error(false)
            .build()
            .send(body)
            .unwrap()
            .status()
            .as_u16()
    }

    fn intake(
        capacity: usize,
        max_body_bytes: usize,
    ) -> (AuditIntake, crossbeam_channel::Receiver<Json>) {
        let (queue, events) = crossbeam_channel::bounded(capacity);
        let intake = AuditIntake {
            path: "/k8s-audit".into(),
            max_body_bytes,
            queue: AuditQueue::new(queue),
            queue_timeout: Duration::from_millis(200),
        };
        (intake, events)
    }

    /// A listener and the runtime it runs on.
    struct Served {
        listener: Option<Listener>,
        address: SocketAddr,
        _runtime: tokio::runtime::Runtime,
    }

    impl Served {
        fn stop(mut self) {
            if let Some(listener) = self.listener.take() {
                listener.stop();
            }
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    fn start(routes: Routes, certificate: Option<&Path>) -> Result<Served, String> {
        let runtime = runtime();
        let tls = certificate.map(tls_acceptor).transpose()?;
        let health = Arc::clone(&routes.health);
        let setup = Setup {
            name: "test".into(),
            service: Arc::new(routes),
            limits: Limits::default(),
            tls,
            health,
        };
        let listener =
            Listener::start("127.0.0.1:0", setup, runtime.handle()).map_err(|e| e.to_string())?;
        Ok(Served {
            address: listener.address,
            listener: Some(listener),
            _runtime: runtime,
        })
    }

    fn routes() -> Routes {
        Routes::new(Arc::default())
    }

    /// A listener serving only the webhook, with a queue of `capacity`.
    fn audit_listener(
        capacity: usize,
    ) -> (
        Served,
        crossbeam_channel::Receiver<Json>,
        Arc<AuditIntakeStats>,
    ) {
        let (intake, events) = intake(capacity, 4096);
        let stats = Arc::clone(&intake.queue.stats);
        let mut routes = routes();
        routes.audit = Some(intake);
        (start(routes, None).unwrap(), events, stats)
    }

    /// A self-signed certificate for localhost and its key, in one PEM
    /// file as Falco's `ssl_certificate` holds them; None without openssl.
    fn self_signed(dir: &Path) -> Option<(std::path::PathBuf, Vec<u8>)> {
        let made = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
            ])
            // webpki refuses a CA certificate as the server's own.
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-keyout", "key.pem", "-out", "cert.pem"])
            .current_dir(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !made {
            return None;
        }
        let key = std::fs::read(dir.join("key.pem")).unwrap();
        let cert = std::fs::read(dir.join("cert.pem")).unwrap();
        let both = dir.join("server.pem");
        std::fs::write(&both, [key, cert.clone()].concat()).unwrap();
        Some((both, cert))
    }

    fn https_agent(cert_pem: &[u8]) -> ureq::Agent {
        use ureq::tls::{PemItem, RootCerts, TlsConfig};
        let roots: Vec<_> = ureq::tls::parse_pem(cert_pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(cert)) => Some(cert.to_owned()),
                _ => None,
            })
            .collect();
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::new_with_certs(&roots))
                    .build(),
            )
            .build()
            .new_agent()
    }

    #[test]
    fn serves_https_with_a_pem_holding_key_and_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let Some((pem, cert)) = self_signed(dir.path()) else {
            eprintln!("skipped: the openssl command is missing or failed");
            return;
        };
        let (intake, events) = intake(10, 4096);
        let mut routes = routes();
        routes.healthz = Some("/healthz".into());
        routes.audit = Some(intake);
        let listener = start(routes, Some(&pem)).unwrap();
        let port = listener.address.port();
        let agent = https_agent(&cert);
        let base = format!("https://localhost:{port}");

        // Plain HTTP on the HTTPS port gets no answer, and harms nothing.
        let plain = ureq::get(&format!("http://127.0.0.1:{port}/healthz"))
            .config()
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .call();
        assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
        // Garbage bytes neither.
        {
            use std::io::Write;
            let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let _ = raw.write_all(&[0u8; 64]);
        }

        let response = agent.get(&format!("{base}/healthz")).call().unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let event = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"tls"}"#;
        let status = agent
            .post(&format!("{base}/k8s-audit"))
            .send(event)
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 200);
        assert_eq!(events.recv().unwrap()["auditID"], "tls");

        // A client that does not trust the certificate is refused.
        assert!(ureq::get(&format!("{base}/healthz")).call().is_err());
        listener.stop();
    }

    #[test]
    fn unusable_certificate_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let start = |path: &Path| tls_acceptor(path).err().expect("refused");
        let missing = start(&dir.path().join("absent.pem"));
        assert!(
            missing.contains("cannot read the certificate file"),
            "{missing}"
        );
        let Some((_, cert)) = self_signed(dir.path()) else {
            eprintln!("skipped (partly): the openssl command is missing or failed");
            return;
        };
        let only_cert = dir.path().join("only-cert.pem");
        std::fs::write(&only_cert, &cert).unwrap();
        let error = start(&only_cert);
        assert!(error.contains("no private key"), "{error}");
        let only_key = dir.path().join("key.pem");
        let error = start(&only_key);
        assert!(error.contains("no CERTIFICATE block"), "{error}");
        let damaged = dir.path().join("damaged.pem");
        let mut text = std::fs::read_to_string(dir.path().join("server.pem")).unwrap();
        text.insert_str(text.find("-----END PRIVATE KEY").unwrap(), "@@@@\n");
        std::fs::write(&damaged, text).unwrap();
        let error = start(&damaged);
        assert!(error.contains("damaged.pem"), "{error}");
    }

    #[test]
    fn health_versions_and_metrics() {
        let mut routes = routes();
        routes.healthz = Some("/healthz".into());
        routes.metrics = Some(Arc::new(FixedMetrics));
        routes.versions = true;
        let listener = start(routes, None).unwrap();
        let address = listener.address;
        assert_eq!(
            get(address, "/healthz"),
            (200, "{\"status\": \"ok\"}".into())
        );
        let (status, body) = get(address, "/versions");
        assert_eq!(status, 200);
        let v: Json = serde_json::from_str(&body).unwrap();
        assert_eq!(v["peregrine_version"], env!("CARGO_PKG_VERSION"));
        // The keys falcoctl checks an artifact's requirements against.
        let (major, minor, patch) = peregrine_engine::rules::ENGINE_VERSION;
        assert_eq!(
            v["engine_version_semver"],
            format!("{major}.{minor}.{patch}")
        );
        assert_eq!(v["engine_version"], minor.to_string());
        assert!(
            v["plugin_api_version"]
                .as_str()
                .is_some_and(|s| s.starts_with("3.")),
            "{v}"
        );
        assert_eq!(
            get(address, "/metrics"),
            (200, "peregrine_events_total 42\n".into())
        );
        assert_eq!(get(address, "/nothing").0, 404);
        assert_eq!(
            get(address, "/k8s-audit").0,
            404,
            "no webhook on this listener"
        );
        listener.stop();
    }

    #[test]
    fn audit_webhook_takes_events_and_event_lists_and_refuses_bad_bodies() {
        let (listener, events, stats) = audit_listener(100);
        let address = listener.address;
        let one =
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"create","auditID":"a"}"#;
        let list = r#"{"kind":"EventList","items":[{"kind":"Event","auditID":"b"},{"kind":"Event","auditID":"c"}]}"#;
        assert_eq!(post(address, "/k8s-audit", one), 200);
        assert_eq!(post(address, "/k8s-audit", list), 200);
        assert_eq!(post(address, "/k8s-audit", "{not json"), 400);
        assert_eq!(post(address, "/k8s-audit", r#"{"kind":"Pod"}"#), 400);
        assert_eq!(post(address, "/k8s-audit", &"x".repeat(5000)), 413);
        assert_eq!(get(address, "/k8s-audit").0, 405);
        let ids: Vec<String> = events
            .try_iter()
            .map(|e| e["auditID"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(stats.events.load(Ordering::Relaxed), 3);
        assert_eq!(stats.bad_requests.load(Ordering::Relaxed), 2);
        assert_eq!(stats.too_large.load(Ordering::Relaxed), 1);
        listener.stop();
    }

    #[test]
    fn a_full_queue_answers_503_instead_of_dropping() {
        let (listener, events, stats) = audit_listener(1);
        let address = listener.address;
        let event = r#"{"kind":"Event","auditID":"x"}"#;
        assert_eq!(post(address, "/k8s-audit", event), 200);
        // Nobody drains the queue: the second event cannot be taken.
        assert_eq!(post(address, "/k8s-audit", event), 503);
        assert_eq!(stats.busy.load(Ordering::Relaxed), 1);
        assert_eq!(events.len(), 1);
        events.recv().unwrap();
        assert_eq!(post(address, "/k8s-audit", event), 200);
        listener.stop();
    }

    fn setup(routes: Routes, limits: Limits) -> Setup {
        let health = Arc::clone(&routes.health);
        Setup {
            name: "test".into(),
            service: Arc::new(routes),
            limits,
            tls: None,
            health,
        }
    }

    fn health_routes(endpoint: &str) -> Routes {
        let mut routes = routes();
        routes.healthz = Some(endpoint.into());
        routes
    }

    /// Reads one response from a raw connection: its head and body.
    fn read_response(stream: &mut std::net::TcpStream) -> (String, String) {
        use std::io::Read;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).unwrap(), 1, "connection closed");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |n| n.trim().parse().unwrap());
        let mut body = vec![0; length];
        stream.read_exact(&mut body).unwrap();
        (head, String::from_utf8(body).unwrap())
    }

    #[test]
    fn idle_connections_make_room_for_requests_at_the_cap() {
        let runtime = runtime();
        let limits = Limits {
            max_connections: 2,
            ..Limits::default()
        };
        let listener = Listener::start(
            "127.0.0.1:0",
            setup(health_routes("/healthz"), limits),
            runtime.handle(),
        )
        .unwrap();
        let address = listener.address;
        let idle: Vec<_> = (0..4)
            .map(|_| std::net::TcpStream::connect(address).unwrap())
            .collect();
        let started = Instant::now();
        for _ in 0..3 {
            assert_eq!(get(address, "/healthz").0, 200);
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(listener.stats().evicted.load(Ordering::Relaxed) >= 2);
        drop(idle);
        listener.stop();
    }

    #[test]
    fn a_handover_keeps_the_socket_and_tells_old_connections_to_close() {
        use std::io::{Read, Write};
        let runtime = runtime();
        let first = Listener::start(
            "127.0.0.1:0",
            setup(health_routes("/one"), Limits::default()),
            runtime.handle(),
        )
        .unwrap();
        let address = first.address;
        let mut kept = std::net::TcpStream::connect(address).unwrap();
        kept.write_all(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (head, _) = read_response(&mut kept);
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
        // Made during the handover: accepted by the one or the other.
        let mut waiting = std::net::TcpStream::connect(address).unwrap();

        let second = Listener::start_on(first, setup(health_routes("/two"), Limits::default()));
        assert_eq!(second.address, address, "the same socket");
        // The old connection is served as before, once more, and closed.
        kept.write_all(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (head, _) = read_response(&mut kept);
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
        assert_eq!(kept.read(&mut [0u8; 1]).unwrap(), 0, "closed after");
        // What came during the handover is answered, by the new settings
        // or by the old ones (then told to close); what comes after, by
        // the new ones.
        waiting
            .write_all(b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (head, _) = read_response(&mut waiting);
        assert!(
            head.starts_with("http/1.1 200")
                || (head.starts_with("http/1.1 404") && head.contains("connection: close")),
            "{head}"
        );
        assert_eq!(get(address, "/two").0, 200);
        assert_eq!(get(address, "/one").0, 404);
        second.stop();
        assert!(std::net::TcpStream::connect(address).is_err(), "closed");
    }

    #[test]
    fn health_names_a_listener_that_cannot_accept() {
        let routes = health_routes("/healthz");
        let health = Arc::clone(&routes.health);
        let listener = start(routes, None).unwrap();
        assert_eq!(get(listener.address, "/healthz").0, 200);
        health.down("Kubernetes audit webhook", "address in use");
        let (status, body) = get(listener.address, "/healthz");
        assert_eq!(status, 503);
        assert!(
            body.contains("Kubernetes audit webhook: down: address in use"),
            "{body}"
        );
        health.forget("Kubernetes audit webhook");
        assert_eq!(get(listener.address, "/healthz").0, 200);
        listener.stop();
    }

    #[test]
    fn bodies_in_progress_are_bounded_in_bytes() {
        use std::io::Write;
        let runtime = runtime();
        let (mut intake, events) = intake(100, 8192);
        intake.queue = intake.queue.with_body_budget(4);
        let stats = Arc::clone(&intake.queue.stats);
        let mut routes = routes();
        routes.audit = Some(intake);
        let limits = Limits {
            body_idle_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let listener =
            Listener::start("127.0.0.1:0", setup(routes, limits), runtime.handle()).unwrap();
        let address = listener.address;
        // Declares 4000 bytes and trickles a few: holds the whole budget.
        let mut holder = std::net::TcpStream::connect(address).unwrap();
        holder
            .write_all(b"POST /k8s-audit HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n")
            .unwrap();
        let mut trickle = holder.try_clone().unwrap();
        let trickling = std::thread::spawn(move || {
            for _ in 0..10 {
                let _ = trickle.write_all(b"          ");
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        let event = r#"{"kind":"Event","auditID":"late"}"#;
        assert_eq!(post(address, "/k8s-audit", event), 503);
        assert_eq!(stats.busy.load(Ordering::Relaxed), 1);
        trickling.join().unwrap();
        // Once the holder times out, its room is back.
        let (head, _) = read_response(&mut holder);
        assert!(head.starts_with("http/1.1 408"), "{head}");
        assert_eq!(post(address, "/k8s-audit", event), 200);
        assert_eq!(events.try_iter().count(), 1);
        listener.stop();
    }

    #[test]
    fn a_client_that_gives_up_waiting_for_room_is_never_evaluated() {
        use std::io::Write;
        let runtime = runtime();
        let (mut intake, events) = intake(1, 4096);
        intake.queue_timeout = Duration::from_secs(3);
        let mut routes = routes();
        routes.audit = Some(intake);
        let listener = Listener::start(
            "127.0.0.1:0",
            setup(routes, Limits::default()),
            runtime.handle(),
        )
        .unwrap();
        let address = listener.address;
        assert_eq!(
            post(address, "/k8s-audit", r#"{"kind":"Event","auditID":"a"}"#),
            200
        );
        // The queue is full: this one waits for room, and its client
        // leaves before any answer.
        let late = r#"{"kind":"Event","auditID":"gave-up"}"#;
        let mut client = std::net::TcpStream::connect(address).unwrap();
        let request = format!(
            "POST /k8s-audit HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{late}",
            late.len()
        );
        client.write_all(request.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(client);
        std::thread::sleep(Duration::from_millis(300));
        // Room now, long before the request's queue timeout.
        assert_eq!(events.recv().unwrap()["auditID"], "a");
        std::thread::sleep(Duration::from_millis(3500));
        assert!(
            events.try_recv().is_err(),
            "the abandoned request was queued"
        );
        listener.stop();
    }
}
