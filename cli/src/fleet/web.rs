//! The fleet view in the browser (`peregrine fleet --listen`): a page with
//! the node table (a node silent past `--quiet-after` in red) and the
//! latest alerts of every node, polled from `/console/api/fleet`. It is
//! served by the same hardened listener as the node's webserver (bounded
//! heads, timeouts, a connection cap), looks like the node's console (its
//! style sheet, the same security headers) and opens the same way (the
//! console's gate: loopback clients, or the console token).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value as Json};

use super::FleetView;
use crate::servers::console::gate::{Admission, Gate};
use crate::servers::console::{asset, assets, plain, secured};
use crate::servers::listener::{full, Body, ConnectionInfo, Health, Limits, Serve, Setup};

const PAGE_HTML: &str = include_str!("static/fleet.html");
const PAGE_JS: &str = include_str!("static/fleet.js");
const PAGE_CSS: &str = include_str!("static/fleet.css");

/// Connections the view's listener keeps open at once.
const MAX_CONNECTIONS: usize = 64;

/// How long one computed answer of the API is served again: the latency
/// quantiles of every node are sorted to make it, and however many
/// browsers poll, that happens at most this often, outside the lock the
/// consumer needs.
const SNAPSHOT_REUSE: Duration = Duration::from_millis(500);

pub const LISTENER_NAME: &str = "fleet view";

/// What the view's listener serves.
pub struct FleetSite {
    view: Arc<Mutex<FleetView>>,
    /// Whether the consumer is connected to NATS now.
    connected: Arc<AtomicBool>,
    quiet_after: Duration,
    stream: String,
    gate: Gate,
    snapshot: Mutex<Option<(Instant, Bytes)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The view stays whole even if a holder panicked.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl FleetSite {
    pub fn new(
        view: Arc<Mutex<FleetView>>,
        connected: Arc<AtomicBool>,
        quiet_after: Duration,
        stream: &str,
    ) -> FleetSite {
        FleetSite {
            view,
            connected,
            quiet_after,
            stream: stream.to_string(),
            gate: Gate::new(
                "",
                "the fleet view answers loopback clients only: set PEREGRINE_CONSOLE_TOKEN to \
                 open it to others\n",
            ),
            snapshot: Mutex::new(None),
        }
    }

    /// The listener's settings around this site.
    pub fn setup(self, tls: Option<tokio_rustls::TlsAcceptor>, health: Arc<Health>) -> Setup {
        Setup {
            name: LISTENER_NAME.into(),
            service: Arc::new(self),
            limits: Limits {
                max_connections: MAX_CONNECTIONS,
                ..Limits::default()
            },
            tls,
            health,
        }
    }

    pub fn answer<B>(&self, request: &Request<B>) -> Response<Body> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "the fleet view is read-only\n",
            );
            response
                .headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return secured(response);
        }
        let path = request.uri().path();
        // For probes, which show no token: says only that it answers.
        if path == "/healthz" {
            return secured(json_response(Bytes::from_static(b"{\"status\": \"ok\"}")));
        }
        let info = request.extensions().get::<ConnectionInfo>().copied();
        match self.gate.admit(request, info) {
            Admission::Allowed => {}
            Admission::SetCookie(token) => return secured(self.gate.set_cookie(&token, info)),
            Admission::Refused(status, why) => return secured(plain(status, why)),
        }
        secured(match path {
            "/" => asset(PAGE_HTML, "text/html; charset=utf-8"),
            "/console/app.css" => asset(assets::APP_CSS, "text/css; charset=utf-8"),
            "/console/fleet.css" => asset(PAGE_CSS, "text/css; charset=utf-8"),
            "/console/fleet.js" => asset(PAGE_JS, "text/javascript; charset=utf-8"),
            "/console/api/fleet" => json_response(self.snapshot()),
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        })
    }

    /// The API's answer, made at most every [`SNAPSHOT_REUSE`].
    fn snapshot(&self) -> Bytes {
        let mut cached = lock(&self.snapshot);
        if let Some((made, bytes)) = cached.as_ref() {
            if made.elapsed() < SNAPSHOT_REUSE {
                return bytes.clone();
            }
        }
        let bytes = Bytes::from(self.summary().to_string());
        *cached = Some((Instant::now(), bytes.clone()));
        bytes
    }

    /// Every node's counts (as `fleet --json` prints them) with the latest
    /// alerts and what the page needs to read them.
    pub fn summary(&self) -> Json {
        let now = SystemTime::now();
        let view = lock(&self.view);
        let mut summary = view.summary(now, self.quiet_after);
        summary["latest"] = view.latest_json();
        drop(view);
        summary["stream"] = json!(self.stream);
        summary["nats_connected"] = json!(self.connected.load(Ordering::Relaxed));
        summary["quiet_after_s"] = json!(self.quiet_after.as_secs());
        summary["time"] = json!(chrono::DateTime::<chrono::Utc>::from(now)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        summary
    }
}

fn json_response(body: Bytes) -> Response<Body> {
    let mut response = Response::new(full(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl Serve for FleetSite {
    fn serve(
        self: Arc<Self>,
        request: Request<Incoming>,
        _limits: Limits,
    ) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> {
        // Every route is a GET answered from memory: no body is read.
        let response = self.answer(&request);
        Box::pin(async move { response })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};

    use super::*;
    use crate::servers::listener::Listener;

    fn get(address: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        (
            head[9..12].parse().unwrap(),
            head.to_ascii_lowercase(),
            body.to_string(),
        )
    }

    #[test]
    fn the_page_its_assets_and_the_nodes_with_their_latest_alerts() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let view = Arc::new(Mutex::new(FleetView::keeping_latest(2)));
        let now = SystemTime::now();
        let alert = |host: &str, rule: &str| {
            json!({"hostname": host, "rule": rule, "priority": "Warning",
                   "output": "<b>x</b>", "source": "syscall"})
            .to_string()
        };
        {
            let mut view = view.lock().unwrap();
            view.take(Some("a:1:1"), alert("a", "r1").as_bytes(), now);
            view.take(Some("b:1:1"), alert("b", "r2").as_bytes(), now);
            view.take(
                Some("b:1:2"),
                alert("b", "r3").as_bytes(),
                now - Duration::from_secs(100),
            );
        }
        let connected = Arc::new(AtomicBool::new(true));
        let site = FleetSite::new(
            Arc::clone(&view),
            Arc::clone(&connected),
            Duration::from_secs(30),
            "ALERTS",
        );
        let listener = Listener::start(
            "127.0.0.1:0",
            site.setup(None, Arc::new(Health::default())),
            runtime.handle(),
        )
        .unwrap();
        let address = listener.address;

        let (status, head, body) = get(address, "GET", "/");
        assert_eq!(status, 200);
        assert!(
            head.contains("content-security-policy: default-src 'none'"),
            "{head}"
        );
        assert!(body.contains("/console/fleet.js"), "{body}");
        for asset in [
            "/console/app.css",
            "/console/fleet.css",
            "/console/fleet.js",
        ] {
            assert_eq!(get(address, "GET", asset).0, 200, "{asset}");
        }
        let (status, _, body) = get(address, "GET", "/console/api/fleet");
        assert_eq!(status, 200);
        let fleet: Json = serde_json::from_str(&body).unwrap();
        assert_eq!(fleet["stream"], "ALERTS");
        assert_eq!(fleet["quiet_after_s"], 30);
        assert_eq!(fleet["nats_connected"], true);
        assert_eq!(fleet["nodes"]["a"]["alerts"], 1);
        assert_eq!(fleet["nodes"]["b"]["alerts"], 2);
        // b was last heard of 100 s ago (the time it was handed over).
        assert_eq!(fleet["nodes"]["a"]["quiet"], false);
        assert_eq!(fleet["nodes"]["b"]["quiet"], true);
        let latest: Vec<&str> = fleet["latest"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["rule"].as_str().unwrap())
            .collect();
        assert_eq!(latest, ["r3", "r2"], "newest first, two kept");
        assert_eq!(fleet["latest"][0]["node"], "b");
        assert_eq!(fleet["latest"][0]["output"], "<b>x</b>");

        // Within the reuse time the same answer comes back; after it, news.
        view.lock()
            .unwrap()
            .take(Some("c:1:1"), alert("c", "r4").as_bytes(), now);
        let (_, _, again) = get(address, "GET", "/console/api/fleet");
        assert_eq!(again, body);
        std::thread::sleep(SNAPSHOT_REUSE);
        let (_, _, later) = get(address, "GET", "/console/api/fleet");
        let later: Json = serde_json::from_str(&later).unwrap();
        assert_eq!(later["nodes"]["c"]["alerts"], 1);

        let (status, head, _) = get(address, "POST", "/console/api/fleet");
        assert_eq!(status, 405);
        assert!(head.contains("allow: get, head"), "{head}");
        assert_eq!(get(address, "GET", "/console/api/alerts").0, 404);
        assert_eq!(get(address, "GET", "/healthz").0, 200);

        // The listener's bounds hold here too: a head of a megabyte is
        // refused, not buffered.
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let huge = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(1024 * 1024)
        );
        let _ = stream.write_all(huge.as_bytes());
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
            "{answer}"
        );
        listener.stop();
    }

    #[test]
    fn remote_clients_need_the_token_but_probes_do_not() {
        let site = FleetSite::new(
            Arc::default(),
            Arc::default(),
            Duration::from_secs(30),
            "ALERTS",
        );
        let status = |path: &str, peer: &str| {
            let mut request = Request::get(path).body(()).unwrap();
            request.extensions_mut().insert(ConnectionInfo {
                peer: Some(peer.parse().unwrap()),
                tls: false,
                client_certificate: false,
            });
            site.answer(&request).status().as_u16()
        };
        assert_eq!(status("/", "127.0.0.1:4000"), 200);
        assert_eq!(status("/console/api/fleet", "[::1]:4000"), 200);
        assert_eq!(status("/", "10.0.0.9:4000"), 403);
        assert_eq!(status("/console/api/fleet", "10.0.0.9:4000"), 403);
        assert_eq!(status("/healthz", "10.0.0.9:4000"), 200);
    }
}
