//! `http_output`: each alert POSTed to a URL (Falcosidekick, a SIEM's
//! webhook). Runs on its own thread, so retries never hold up events.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
use ureq::Agent;

use super::{Channel, OutputError};
use crate::alert::SharedAlert;

/// The `http_output` keys of falco.yaml that Peregrine honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    pub url: String,
    pub user_agent: String,
    /// Skip certificate verification (`insecure: true`): for test setups.
    pub insecure: bool,
    /// A PEM file with the CA certificate(s) to trust instead of the
    /// built-in roots.
    pub ca_cert: Option<PathBuf>,
    pub ca_bundle: Option<PathBuf>,
    /// A folder of PEM files, each a CA to trust.
    pub ca_path: Option<PathBuf>,
    /// Mutual TLS: client certificate and key, PEM.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Send the JSON object (`application/json`) instead of the text line.
    pub json: bool,
    /// Attempts per alert, the first included.
    pub max_attempts: u32,
    pub timeout: Duration,
    /// Write each answer's body to stdout (`http_output.echo`).
    pub echo: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            url: String::new(),
            user_agent: format!("peregrine/{}", env!("CARGO_PKG_VERSION")),
            insecure: false,
            ca_cert: None,
            ca_bundle: None,
            ca_path: None,
            client_cert: None,
            client_key: None,
            json: true,
            max_attempts: 6,
            timeout: Duration::from_secs(5),
            echo: false,
        }
    }
}

impl HttpOptions {
    /// The options `http_output`, `json_output` and `output_timeout` give.
    pub fn from_config(config: &crate::config::Config) -> HttpOptions {
        let http = &config.http_output;
        let path = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
        let mut options = HttpOptions {
            url: http.url.clone(),
            insecure: http.insecure,
            ca_cert: path(&http.ca_cert),
            ca_bundle: path(&http.ca_bundle),
            ca_path: path(&http.ca_path),
            json: config.json_output,
            timeout: Duration::from_millis(config.output_timeout),
            echo: http.echo,
            // Falco keeps the low 8 bits of the count.
            max_attempts: (http.max_consecutive_timeouts & 0xFF) as u32 + 1,
            ..HttpOptions::default()
        };
        if !http.user_agent.is_empty() {
            options.user_agent = http.user_agent.clone();
        }
        if http.mtls {
            options.client_cert = path(&http.client_cert);
            options.client_key = path(&http.client_key);
        }
        options
    }
}

pub struct HttpChannel {
    agent: Agent,
    options: HttpOptions,
}

fn config_error(message: String) -> OutputError {
    OutputError::Other {
        channel: "http",
        message,
    }
}

fn read_pem(path: &PathBuf) -> Result<Vec<u8>, OutputError> {
    std::fs::read(path).map_err(|e| config_error(format!("{}: {e}", path.display())))
}

fn certificates(path: &PathBuf) -> Result<Vec<Certificate<'static>>, OutputError> {
    let pem = read_pem(path)?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(config_error(format!("{}: {e}", path.display()))),
        }
    }
    if certs.is_empty() {
        return Err(config_error(format!(
            "{}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

impl HttpChannel {
    /// Builds the client; certificate files are read now, so a bad path
    /// is reported at startup.
    pub fn new(options: HttpOptions) -> Result<Self, OutputError> {
        if !(options.url.starts_with("http://") || options.url.starts_with("https://")) {
            return Err(config_error(format!(
                "http_output.url '{}' is not an http:// or https:// URL",
                options.url
            )));
        }
        let mut tls = TlsConfig::builder().disable_verification(options.insecure);
        let mut roots = Vec::new();
        for file in [&options.ca_cert, &options.ca_bundle].into_iter().flatten() {
            roots.extend(certificates(file)?);
        }
        if let Some(dir) = &options.ca_path {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| config_error(format!("{}: {e}", dir.display())))?;
            for entry in entries.flatten() {
                // A CA folder also holds hash links and non-PEM files:
                // take what parses.
                if let Ok(certs) = certificates(&entry.path()) {
                    roots.extend(certs);
                }
            }
        }
        if !roots.is_empty() {
            tls = tls.root_certs(RootCerts::new_with_certs(&roots));
        }
        match (&options.client_cert, &options.client_key) {
            (Some(cert), Some(key)) => {
                let chain = certificates(cert)?;
                let key_pem = read_pem(key)?;
                let key = PrivateKey::from_pem(&key_pem)
                    .map_err(|e| config_error(format!("{}: {e}", key.display())))?;
                tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
            }
            (None, None) => {}
            _ => {
                return Err(config_error(
                    "mutual TLS needs both http_output.client_cert and client_key".into(),
                ))
            }
        }
        let agent = Agent::config_builder()
            .tls_config(tls.build())
            .timeout_global(Some(options.timeout))
            .user_agent(options.user_agent.as_str())
            .http_status_as_error(false)
            .build()
            .new_agent();
        Ok(HttpChannel { agent, options })
    }

    fn post_once(&self, body: &str, deadline: Instant) -> Result<(), String> {
        let content_type = if self.options.json {
            "application/json"
        } else {
            "text/plain"
        };
        let response = self
            .agent
            .post(&self.options.url)
            .header("Content-Type", content_type)
            .config()
            .timeout_global(Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ))
            .build()
            .send(body)
            .map_err(|e| e.to_string())?;
        let status = response.status();
        if self.options.echo {
            echo_answer(response.into_body());
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{} answered {status}", self.options.url))
        }
    }
}

/// The largest answer echoed: a receiver cannot make Peregrine buffer
/// more than this per alert.
const MAX_ECHO_BYTES: u64 = 1 << 20;

/// Writes an answer's body to stdout as curl does (raw, no newline
/// added); a body that cannot be read is left out.
fn echo_answer(mut body: ureq::Body) {
    use std::io::Write as _;
    let bytes = match body.with_config().limit(MAX_ECHO_BYTES).read_to_vec() {
        Ok(bytes) => bytes,
        Err(_) => return,
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&bytes);
    let _ = stdout.flush();
}

impl Channel for HttpChannel {
    fn name(&self) -> &'static str {
        "http"
    }

    fn emit(&mut self, alert: &SharedAlert) -> Result<(), OutputError> {
        let body = if self.options.json {
            &alert.json
        } else {
            &alert.line
        };
        // One alert costs at most `timeout` (output_timeout), retries
        // included: a receiver that accepts and never answers uses it up
        // in one attempt, one that refuses gets the remaining tries.
        let deadline = Instant::now() + self.options.timeout;
        let mut backoff = Duration::from_millis(100);
        let mut last_error = String::new();
        let mut attempts = 0;
        while attempts < self.options.max_attempts.max(1) {
            attempts += 1;
            match self.post_once(body, deadline) {
                Ok(()) => return Ok(()),
                Err(e) => last_error = e,
            }
            if Instant::now() + backoff >= deadline {
                break;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        Err(config_error(format!(
            "gave up after {attempts} attempts in {} ms: {last_error}",
            self.options.timeout.as_millis()
        )))
    }
}
