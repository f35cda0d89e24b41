//! The web console on the webserver (`webserver.console: true`): live
//! alerts, counts and a timeline, health and the loaded rules, in a page
//! built into the binary. Read-only: every route is a GET; nothing here
//! changes what runs.
//!
//! Who may look: without a token (`webserver.console_token`, or
//! `PEREGRINE_CONSOLE_TOKEN` in the environment, which wins) only clients
//! on the loopback address are answered, whatever address the webserver
//! listens on. With a token every client must show it: as
//! `Authorization: Bearer TOKEN`, or once as `/?token=TOKEN`, which sets a
//! cookie (HttpOnly, SameSite=Strict, Secure over TLS) and redirects to
//! `/` so that the token leaves the address bar and the history. Over
//! HTTPS, a client certificate signed by a CA of
//! `webserver.console_client_ca` is enough instead.
//!
//! Every page and answer carries a Content-Security-Policy allowing only
//! this origin's own script and style: no inline script runs, and alert
//! text is put in the page as text, never as markup.

pub mod assets;
pub mod expand;
pub mod gate;
pub mod hub;
pub mod recent;
pub mod stream;
pub mod tryout;

use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value as Json};

use super::listener::{full, Body, ConnectionInfo};
use super::webserver::MetricsSource;
use gate::{Admission, Gate};
pub use hub::Hub;
use stream::{AlertStream, ClientSlot};

/// The environment variable that sets the console's token.
pub const TOKEN_ENV: &str = "PEREGRINE_CONSOLE_TOKEN";

/// Live streams open at once; more are answered 503 (the webserver
/// allows 128 connections in all).
pub const MAX_LIVE_CLIENTS: usize = 64;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// The console as one webserver serves it.
#[derive(Clone)]
pub struct Console {
    hub: Arc<Hub>,
    gate: Gate,
    metrics: Option<Arc<dyn MetricsSource>>,
}

impl Console {
    /// `token`: the configured one; the environment's wins when set.
    pub fn new(hub: Arc<Hub>, token: &str, metrics: Option<Arc<dyn MetricsSource>>) -> Console {
        recent::Recent::global().enable();
        Console {
            hub,
            gate: Gate::new(
                token,
                "the console answers loopback clients only: set webserver.console_token \
                 (or PEREGRINE_CONSOLE_TOKEN) to open it to others\n",
            ),
            metrics,
        }
    }

    /// Whether `path` is the console's; the webserver asks before routing.
    pub fn owns(path: &str) -> bool {
        path == "/" || path.starts_with("/console/")
    }

    pub fn answer<B>(&self, request: &Request<B>) -> Response<Body> {
        let path = request.uri().path();
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "the console is read-only\n");
            response
                .headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return secured(response);
        }
        let info = request.extensions().get::<ConnectionInfo>().copied();
        match self.gate.admit(request, info) {
            Admission::Allowed => {}
            Admission::SetCookie(token) => return secured(self.gate.set_cookie(&token, info)),
            Admission::Refused(status, why) => return secured(plain(status, why)),
        }
        secured(match path {
            "/" => asset(assets::INDEX_HTML, "text/html; charset=utf-8"),
            "/console/app.js" => asset(assets::APP_JS, "text/javascript; charset=utf-8"),
            "/console/app.css" => asset(assets::APP_CSS, "text/css; charset=utf-8"),
            "/console/api/alerts" => self.live(),
            "/console/api/summary" => api(&self.hub.summary()),
            "/console/api/rules" => api(&self.hub.rules()),
            "/console/api/health" => api(&self.health()),
            "/console/api/try" => api(&try_from_query(request)),
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        })
    }

    fn live(&self) -> Response<Body> {
        let Some(slot) = ClientSlot::take(&self.hub.clients, MAX_LIVE_CLIENTS) else {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many live console clients; retry later\n",
            );
        };
        let body = AlertStream::new(Arc::clone(&self.hub), slot);
        let mut response = Response::new(http_body_util::BodyExt::boxed_unsync(body));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    /// What /metrics shows, as JSON the health view reads, with the
    /// console's own counters.
    fn health(&self) -> Json {
        let metrics: Vec<Json> = self
            .metrics
            .as_ref()
            .map(|m| parse_prometheus(&m.prometheus_text()))
            .unwrap_or_default();
        let rules = self.hub.rules();
        json!({
            "metrics": metrics,
            "console": {
                "alerts": self.hub.total(),
                "live_clients": self.hub.live_clients(),
            },
            "warnings": rules["warnings"],
            "reloads": rules["reloads"],
            "rules_loaded": rules["rules"].as_array().map_or(0, Vec::len),
        })
    }
}

/// `GET /console/api/try?condition=...`: CPU-bound for up to
/// [`tryout::TIME_BUDGET`], so it leaves the runtime's other tasks a
/// thread while it runs.
fn try_from_query<B>(request: &Request<B>) -> Json {
    let condition = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("condition="))
        .map(percent_decode)
        .unwrap_or_default();
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(|| tryout::try_condition(&condition))
    } else {
        tryout::try_condition(&condition)
    }
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |i: usize| bytes.get(i).and_then(|b| (*b as char).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
            (b'+', _, _) => out.push(b' '),
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Prometheus text as `{name, labels, value}` objects.
fn parse_prometheus(text: &str) -> Vec<Json> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)),
                None => (series, serde_json::Map::new()),
            };
            Some(json!({"name": name, "labels": labels, "value": value}))
        })
        .collect()
}

fn parse_labels(text: &str) -> serde_json::Map<String, Json> {
    let mut labels = serde_json::Map::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(
            name.trim_start_matches(',').trim().to_string(),
            Json::String(value),
        );
        rest = &after[end..];
    }
    labels
}

pub(crate) fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub(crate) fn asset(body: &'static str, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(crate) fn api(value: &Json) -> Response<Body> {
    let mut response = Response::new(full(value.to_string()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The headers every console answer carries.
pub(crate) fn secured(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

#[cfg(test)]
mod tests;
