//! `nats_output`: alerts onto a NATS JetStream stream, none lost.
//!
//! The spooled channel (see [`super::spooled`]) keeps each alert on disk
//! until the stream has acknowledged it; the publisher here sends what the
//! spool holds, in order, each with its deduplication id (`Nats-Msg-Id`),
//! and retries with backoff while the cluster is unreachable. What a
//! stopped Peregrine leaves in the spool goes out at the next start, under
//! the same ids, so the stream's deduplication window takes out anything
//! sent twice.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, context::Publish};
use async_nats::{ConnectOptions, ServerAddr};

use super::spool::Record;
use super::spooled::{Outbox, SpoolSettings, SpooledChannel, BACKOFF_FIRST};
use super::OutputError;
use crate::alert::SharedAlert;
use crate::config::NatsOutput;

const NAME: &str = "nats";
/// Records sent before their acknowledgements are awaited.
const WINDOW: usize = 256;

/// What the NATS output needs, from `nats_output` and the hostname.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    pub servers: Vec<String>,
    /// Template with `{hostname}`, `{priority}`, `{rule}` and `{source}`.
    pub subject: String,
    pub stream: String,
    /// Creates the stream (subjects: the template's fixed prefix and `>`)
    /// when it does not exist.
    pub create_stream: bool,
    pub stream_replicas: usize,
    pub duplicate_window: Duration,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub ack_timeout: Duration,
    /// How long a stop waits for the spool to drain before leaving the
    /// rest for the next start.
    pub shutdown_timeout: Duration,
    pub auth: NatsAuth,
    pub hostname: String,
}

/// How a client proves itself to the cluster and checks the cluster back;
/// the same for the output and for `peregrine fleet`.
#[derive(Debug, Clone, Default)]
pub struct NatsAuth {
    /// A `.creds` file (JWT and NKey seed).
    pub credentials: Option<PathBuf>,
    pub token: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl NatsAuth {
    /// `connect` with these credentials and TLS settings.
    pub async fn apply(&self, mut connect: ConnectOptions) -> Result<ConnectOptions, String> {
        if let Some(path) = &self.credentials {
            connect = connect
                .credentials_file(path)
                .await
                .map_err(|e| format!("NATS credentials {}: {e}", path.display()))?;
        }
        if let Some(token) = &self.token {
            connect = connect.token(token.clone());
        }
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            connect = connect.user_and_password(user.clone(), password.clone());
        }
        if let Some(ca) = &self.tls_ca {
            connect = connect.add_root_certificates(ca.clone()).require_tls(true);
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(connect
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true)),
            (None, None) => Ok(connect),
            _ => Err("a NATS client certificate and its key go together".into()),
        }
    }
}

impl NatsOptions {
    pub fn from_config(config: &NatsOutput, hostname: &str) -> NatsOptions {
        let path = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
        let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
        NatsOptions {
            servers: config.servers.clone(),
            subject: config.subject.clone(),
            stream: config.stream.clone(),
            create_stream: config.create_stream,
            stream_replicas: config.stream_replicas.max(1),
            duplicate_window: Duration::from_secs(config.duplicate_window_s),
            spool_dir: config.spool_dir.clone(),
            spool_max_bytes: config.spool_max_mb.saturating_mul(1 << 20),
            ack_timeout: Duration::from_millis(config.ack_timeout_ms.max(1)),
            shutdown_timeout: Duration::from_millis(config.shutdown_timeout_ms),
            auth: NatsAuth {
                credentials: path(&config.credentials),
                token: text(&config.token),
                user: text(&config.user),
                password: text(&config.password),
                tls_ca: path(&config.tls_ca),
                tls_cert: path(&config.tls_cert),
                tls_key: path(&config.tls_key),
            },
            hostname: hostname.to_string(),
        }
    }
}

/// Starts the channel: its spool, and the publisher on a thread of its own.
pub fn channel(options: NatsOptions) -> Result<SpooledChannel, OutputError> {
    let other = |message: String| OutputError::Other {
        channel: NAME,
        message,
    };
    if options.servers.is_empty() {
        return Err(other("nats_output.servers names no server".into()));
    }
    let servers = options
        .servers
        .iter()
        .map(|s| {
            s.parse::<ServerAddr>()
                .map_err(|e| other(format!("nats_output.servers: '{s}': {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| other(format!("cannot start the NATS runtime: {e}")))?;
    let connect = connect_options(&options, &runtime).map_err(other)?;
    let settings = SpoolSettings {
        name: NAME,
        key: "nats_output",
        spool_dir: options.spool_dir.clone(),
        spool_max_bytes: options.spool_max_bytes,
        shutdown_timeout: options.shutdown_timeout,
        ack_timeout: options.ack_timeout,
        hostname: options.hostname.clone(),
    };
    let (template, hostname) = (options.subject.clone(), options.hostname.clone());
    let route = Box::new(move |alert: &SharedAlert| subject_for(&template, alert, &hostname));
    SpooledChannel::start(settings, route, move |outbox| {
        runtime.block_on(publish_loop(outbox, connect, servers, options))
    })
}

fn connect_options(
    options: &NatsOptions,
    runtime: &tokio::runtime::Runtime,
) -> Result<ConnectOptions, String> {
    let connect = ConnectOptions::new()
        .name(format!("peregrine@{}", options.hostname))
        // Start whether or not the cluster is up: the spool holds alerts
        // until it is, and the client keeps reconnecting.
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(options.ack_timeout)
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => crate::log::message("nats_output: connected"),
                async_nats::Event::Disconnected => crate::log::message(
                    "nats_output: disconnected; alerts are spooled until the cluster answers",
                ),
                _ => {}
            }
        });
    runtime
        .block_on(options.auth.apply(connect))
        .map_err(|e| format!("nats_output: {e}"))
}

/// Sends the spool's records in order until the channel closes.
async fn publish_loop(
    outbox: Arc<Outbox>,
    connect: ConnectOptions,
    servers: Vec<ServerAddr>,
    options: NatsOptions,
) {
    let client = match connect.connect(servers).await {
        Ok(client) => client,
        Err(e) => {
            outbox.log(&format!("cannot connect: {e}; alerts stay in the spool"));
            return;
        }
    };
    let mut context = jetstream::new(client);
    context.set_timeout(options.ack_timeout);
    let mut stream_ready = !options.create_stream;
    let mut backoff = BACKOFF_FIRST;
    while let Some(batch) = outbox.next_batch(WINDOW) {
        if !stream_ready {
            match ensure_stream(&context, &options).await {
                Ok(()) => stream_ready = true,
                Err(e) => {
                    outbox.log(&format!("stream {}: {e}", options.stream));
                    outbox.pause(&mut backoff).await;
                    continue;
                }
            }
        }
        match send_batch(&context, &batch).await {
            Ok(((count, through), duplicates)) => {
                backoff = BACKOFF_FIRST;
                outbox.acknowledge(count, through, duplicates);
            }
            Err(((count, through), duplicates, error)) => {
                outbox.acknowledge(count, through, duplicates);
                outbox.log(&format!(
                    "not acknowledged ({error}); retrying in {backoff:?}"
                ));
                outbox.pause(&mut backoff).await;
            }
        }
    }
}

/// (records acknowledged, spool offset past the last of them)
type Progress = (usize, u64);

/// Publishes a batch and awaits its acknowledgements in order; on a
/// failure, says how far it got.
async fn send_batch(
    context: &jetstream::Context,
    batch: &[(Record, u64)],
) -> Result<(Progress, u64), (Progress, u64, String)> {
    let mut pending = Vec::with_capacity(batch.len());
    let mut failure = None;
    for (record, offset) in batch {
        let publish = Publish::build()
            .message_id(&record.id)
            .payload(record.json.clone().into_bytes().into());
        match context.send_publish(record.route.clone(), publish).await {
            Ok(ack) => pending.push((ack, *offset)),
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let mut progress: Progress = (0, 0);
    let mut duplicates = 0;
    for (ack, offset) in pending {
        match ack.await {
            Ok(ack) => {
                duplicates += u64::from(ack.duplicate);
                progress = (progress.0 + 1, offset);
            }
            Err(e) => return Err((progress, duplicates, e.to_string())),
        }
    }
    match failure {
        None => Ok((progress, duplicates)),
        Some(e) => Err((progress, duplicates, e)),
    }
}

async fn ensure_stream(context: &jetstream::Context, options: &NatsOptions) -> Result<(), String> {
    let config = jetstream::stream::Config {
        name: options.stream.clone(),
        subjects: vec![stream_subjects(&options.subject)],
        num_replicas: options.stream_replicas,
        duplicate_window: options.duplicate_window,
        ..Default::default()
    };
    context
        .get_or_create_stream(config)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The stream's subject filter: the template's tokens up to the first
/// placeholder, then `>`.
fn stream_subjects(template: &str) -> String {
    let fixed: Vec<&str> = template
        .split('.')
        .take_while(|token| !token.contains('{'))
        .collect();
    if fixed.is_empty() {
        ">".into()
    } else {
        format!("{}.>", fixed.join("."))
    }
}

/// The subject of one alert: each placeholder becomes one subject token
/// (dots, spaces and wildcards in it turned into `_`).
fn subject_for(template: &str, alert: &SharedAlert, hostname: &str) -> String {
    let a = &alert.alert;
    template
        .replace("{hostname}", &token(hostname))
        .replace(
            "{priority}",
            &token(&a.priority.as_str().to_ascii_lowercase()),
        )
        .replace("{rule}", &token(&a.rule))
        .replace("{source}", &token(&a.source))
}

fn token(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| match c {
            '.' | '*' | '>' | '\t' | '\r' | '\n' => '_',
            c if c.is_whitespace() => '_',
            c => c,
        })
        .collect();
    if cleaned.is_empty() {
        "_".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_fill_the_template_one_token_per_placeholder() {
        assert_eq!(
            stream_subjects("peregrine.alerts.{hostname}.{priority}"),
            "peregrine.alerts.>"
        );
        assert_eq!(stream_subjects("{hostname}"), ">");
        assert_eq!(token("Write below etc"), "Write_below_etc");
        assert_eq!(token("node-1.example.com"), "node-1_example_com");
        assert_eq!(token("a>b*"), "a_b_");
        assert_eq!(token(""), "_");
    }
}
