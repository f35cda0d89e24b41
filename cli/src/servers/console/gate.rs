//! Who may look at a console page: loopback clients when no token is set;
//! with a token, clients that show it (bearer header, cookie, or once in
//! the address of `/`); over TLS, clients with a certificate the listener
//! verified. The node's console and the fleet view share it, so that both
//! open the same way.

use std::net::IpAddr;

use hyper::header::{HeaderValue, AUTHORIZATION, COOKIE, LOCATION, SET_COOKIE};
use hyper::{Request, Response, StatusCode};

use super::{percent_decode, plain, TOKEN_ENV};
use crate::servers::listener::{Body, ConnectionInfo};

const COOKIE_NAME: &str = "peregrine_console";

/// The check in front of a console's routes.
#[derive(Clone)]
pub struct Gate {
    token: Option<String>,
    /// What a refused remote client is told when no token is set: how to
    /// set one where this page is configured.
    loopback_only: &'static str,
}

/// What [`Gate::admit`] decided.
pub enum Admission {
    Allowed,
    /// A right token in `/?token=`: answered by [`Gate::set_cookie`].
    SetCookie(String),
    Refused(StatusCode, &'static str),
}

impl Gate {
    /// `configured`: the token from the settings (empty: none); the
    /// environment's [`TOKEN_ENV`] wins when set.
    pub fn new(configured: &str, loopback_only: &'static str) -> Gate {
        let token = std::env::var(TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty())
            .or_else(|| (!configured.is_empty()).then(|| configured.to_string()));
        Gate {
            token,
            loopback_only,
        }
    }

    pub fn admit<B>(&self, request: &Request<B>, info: Option<ConnectionInfo>) -> Admission {
        // Verified by the TLS handshake against the listener's client CAs.
        if info.is_some_and(|i| i.client_certificate) {
            return Admission::Allowed;
        }
        let Some(token) = &self.token else {
            let loopback = info
                .and_then(|i| i.peer)
                .is_some_and(|peer| is_loopback(peer.ip()));
            return if loopback {
                Admission::Allowed
            } else {
                Admission::Refused(StatusCode::FORBIDDEN, self.loopback_only)
            };
        };
        let shown = bearer(request)
            .or_else(|| cookie(request))
            .is_some_and(|t| same(t.as_bytes(), token.as_bytes()));
        if shown {
            return Admission::Allowed;
        }
        if request.uri().path() == "/" {
            if let Some(given) = query_token(request) {
                if same(given.as_bytes(), token.as_bytes()) {
                    return Admission::SetCookie(given);
                }
            }
        }
        Admission::Refused(
            StatusCode::UNAUTHORIZED,
            "the console needs its token: open /?token=TOKEN once, or send Authorization: \
             Bearer TOKEN\n",
        )
    }

    /// Puts the token in a cookie and sends the client to `/`, so that the
    /// token leaves the address bar and the history.
    pub fn set_cookie(&self, token: &str, info: Option<ConnectionInfo>) -> Response<Body> {
        let secure = if info.is_some_and(|i| i.tls) {
            "; Secure"
        } else {
            ""
        };
        let mut response = plain(StatusCode::SEE_OTHER, "");
        let cookie = format!("{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict{secure}");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(SET_COOKIE, value);
        }
        response
            .headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/"));
        response
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Compares without stopping at the first difference, so that timing
/// does not tell how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer<B>(request: &Request<B>) -> Option<String> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?;
    Some(token.trim().to_string())
}

fn cookie<B>(request: &Request<B>) -> Option<String> {
    request
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE_NAME).then(|| value.to_string())
        })
}

fn query_token<B>(request: &Request<B>) -> Option<String> {
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(percent_decode)
        // A cookie value holds no separators or controls.
        .filter(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        })
}
