//! The HTTP endpoints: health, versions and Prometheus metrics on the
//! webserver port, and the Kubernetes audit webhook on its own port.
//!
//! The webhook only parses and queues: audit events go to the evaluation
//! thread through a bounded queue. When that queue stays full, the request
//! is answered 503 so the API server retries it: an event is either
//! evaluated or refused in the open, never dropped on the floor.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{SendTimeoutError, Sender};
use serde_json::Value as Json;
use tiny_http::{Header, Method, Request, Response, Server, SslConfig};

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
}

/// The audit webhook: where it listens and where events go.
#[derive(Clone)]
pub struct AuditIntake {
    pub path: String,
    pub max_body_bytes: usize,
    pub queue: Sender<Json>,
    /// How long a request may wait for room in the queue before 503.
    pub queue_timeout: Duration,
    pub stats: Arc<AuditIntakeStats>,
}

/// What one listening socket serves.
#[derive(Clone, Default)]
pub struct Routes {
    pub healthz: Option<String>,
    pub metrics: Option<Arc<dyn MetricsSource>>,
    pub versions: bool,
    pub audit: Option<AuditIntake>,
}

pub struct Listener {
    server: Arc<Server>,
    workers: Vec<JoinHandle<()>>,
    pub address: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {message}")]
pub struct ListenError {
    address: String,
    message: String,
}

impl Listener {
    /// Binds `address` and serves `routes` from `threads` threads; over
    /// HTTPS when `certificate` names a PEM file (Falco's
    /// `ssl_certificate`: the private key and the certificate chain in one
    /// file).
    pub fn start(
        address: &str,
        routes: Routes,
        threads: usize,
        certificate: Option<&Path>,
    ) -> Result<Listener, ListenError> {
        let fail = |message: String| ListenError {
            address: address.to_string(),
            message,
        };
        let server = match certificate {
            Some(path) => Server::https(address, ssl_config(path).map_err(fail)?),
            None => Server::http(address),
        }
        .map_err(|e| fail(e.to_string()))?;
        let bound = server.server_addr().to_ip().ok_or_else(|| ListenError {
            address: address.to_string(),
            message: "not an IP socket".into(),
        })?;
        let server = Arc::new(server);
        let routes = Arc::new(routes);
        let workers = (0..threads.max(1))
            .map(|i| {
                let server = Arc::clone(&server);
                let routes = Arc::clone(&routes);
                std::thread::Builder::new()
                    .name(format!("http-{}-{i}", bound.port()))
                    .spawn(move || {
                        for request in server.incoming_requests() {
                            handle(request, &routes);
                        }
                    })
                    .map_err(|e| ListenError {
                        address: address.to_string(),
                        message: e.to_string(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Listener {
            server,
            workers,
            address: bound,
        })
    }

    /// Stops accepting and waits for the requests in progress.
    pub fn stop(self) {
        self.server.unblock();
        for _ in 1..self.workers.len() {
            self.server.unblock();
        }
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

/// Reads a PEM file holding a private key and a certificate chain, and
/// checks it the way tiny_http will read it: tiny_http panics on a file
/// without a key it can use, so what it would choke on is refused here
/// with the reason.
fn ssl_config(path: &Path) -> Result<SslConfig, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the certificate file {}: {e}", path.display()))?;
    let bad = |what: &str| format!("{}: {what}", path.display());
    let certificates = rustls_pemfile::certs(&mut pem.as_slice())
        .map_err(|e| bad(&format!("unreadable CERTIFICATE block: {e}")))?;
    if certificates.is_empty() {
        return Err(bad("no CERTIFICATE block"));
    }
    let pkcs8 = rustls_pemfile::pkcs8_private_keys(&mut pem.as_slice())
        .map_err(|e| bad(&format!("unreadable PRIVATE KEY block: {e}")))?;
    let rsa = rustls_pemfile::rsa_private_keys(&mut pem.as_slice())
        .map_err(|e| bad(&format!("unreadable RSA PRIVATE KEY block: {e}")))?;
    if pkcs8.is_empty() && rsa.is_empty() {
        return Err(bad(
            "no private key: expected a PRIVATE KEY (PKCS#8) or RSA PRIVATE KEY block \
             (convert other keys with `openssl pkcs8 -topk8 -nocrypt`)",
        ));
    }
    Ok(SslConfig {
        certificate: pem.clone(),
        private_key: pem,
    })
}

fn text(status: u16, body: impl Into<String>) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(body.into()).with_status_code(status)
}

fn with_type(
    response: Response<std::io::Cursor<Vec<u8>>>,
    content_type: &str,
) -> Response<std::io::Cursor<Vec<u8>>> {
    match Header::from_bytes("Content-Type", content_type) {
        Ok(header) => response.with_header(header),
        Err(()) => response,
    }
}

fn handle(mut request: Request, routes: &Routes) {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let method = request.method().clone();
    let response = if routes.healthz.as_deref() == Some(path.as_str()) && method == Method::Get {
        with_type(text(200, "{\"status\": \"ok\"}"), "application/json")
    } else if routes.versions && path == "/versions" && method == Method::Get {
        let body = serde_json::json!({
            "peregrine_version": env!("CARGO_PKG_VERSION"),
            "driver_api_version": format!(
                "{}.{}.{}",
                peregrine_driver_sys::abi::PG_API_VERSION_MAJOR,
                peregrine_driver_sys::abi::PG_API_VERSION_MINOR,
                peregrine_driver_sys::abi::PG_API_VERSION_PATCH
            ),
        });
        with_type(text(200, body.to_string()), "application/json")
    } else if let (Some(metrics), "/metrics", &Method::Get) =
        (&routes.metrics, path.as_str(), &method)
    {
        with_type(
            text(200, metrics.prometheus_text()),
            "text/plain; version=0.0.4",
        )
    } else if let Some(audit) = routes.audit.as_ref().filter(|a| a.path == path) {
        if method == Method::Post {
            receive_audit(&mut request, audit)
        } else {
            text(405, "audit events are POSTed\n")
        }
    } else {
        text(404, "not found\n")
    };
    // The client may have gone away; nothing to do about it.
    let _ = request.respond(response);
}

fn receive_audit(request: &mut Request, audit: &AuditIntake) -> Response<std::io::Cursor<Vec<u8>>> {
    let stats = &audit.stats;
    stats.requests.fetch_add(1, Ordering::Relaxed);
    if request
        .body_length()
        .is_some_and(|n| n > audit.max_body_bytes)
    {
        stats.too_large.fetch_add(1, Ordering::Relaxed);
        return text(
            413,
            format!("body larger than {} bytes\n", audit.max_body_bytes),
        );
    }
    let mut body = Vec::new();
    let limit = audit.max_body_bytes as u64 + 1;
    if let Err(e) = request.as_reader().take(limit).read_to_end(&mut body) {
        stats.bad_requests.fetch_add(1, Ordering::Relaxed);
        return text(400, format!("cannot read the body: {e}\n"));
    }
    if body.len() > audit.max_body_bytes {
        stats.too_large.fetch_add(1, Ordering::Relaxed);
        return text(
            413,
            format!("body larger than {} bytes\n", audit.max_body_bytes),
        );
    }
    let events = match audit_events(&body) {
        Ok(events) => events,
        Err(message) => {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            return text(400, format!("{message}\n"));
        }
    };
    for event in events {
        match audit.queue.send_timeout(event, audit.queue_timeout) {
            Ok(()) => {
                stats.events.fetch_add(1, Ordering::Relaxed);
            }
            Err(SendTimeoutError::Timeout(_)) | Err(SendTimeoutError::Disconnected(_)) => {
                stats.busy.fetch_add(1, Ordering::Relaxed);
                return text(
                    503,
                    "busy: events of this request from here on were not taken\n",
                );
            }
        }
    }
    text(200, "<html><body>Ok</body></html>\n")
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
            queue,
            queue_timeout: Duration::from_millis(200),
            stats: Arc::default(),
        };
        (intake, events)
    }

    /// A listener serving only the webhook, with a queue of `capacity`.
    fn audit_listener(
        capacity: usize,
    ) -> (
        Listener,
        crossbeam_channel::Receiver<Json>,
        Arc<AuditIntakeStats>,
    ) {
        let (intake, events) = intake(capacity, 4096);
        let stats = Arc::clone(&intake.stats);
        let routes = Routes {
            audit: Some(intake),
            ..Routes::default()
        };
        (
            Listener::start("127.0.0.1:0", routes, 1, None).unwrap(),
            events,
            stats,
        )
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
        let routes = Routes {
            healthz: Some("/healthz".into()),
            audit: Some(intake),
            ..Routes::default()
        };
        let listener = Listener::start("127.0.0.1:0", routes, 2, Some(&pem)).unwrap();
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
        let start = |path: &Path| {
            Listener::start("127.0.0.1:0", Routes::default(), 1, Some(path))
                .err()
                .expect("refused")
                .to_string()
        };
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
        let routes = Routes {
            healthz: Some("/healthz".into()),
            metrics: Some(Arc::new(FixedMetrics)),
            versions: true,
            audit: None,
        };
        let listener = Listener::start("127.0.0.1:0", routes, 2, None).unwrap();
        let address = listener.address;
        assert_eq!(
            get(address, "/healthz"),
            (200, "{\"status\": \"ok\"}".into())
        );
        let (status, body) = get(address, "/versions");
        assert_eq!(status, 200);
        let v: Json = serde_json::from_str(&body).unwrap();
        assert_eq!(v["peregrine_version"], env!("CARGO_PKG_VERSION"));
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
}
