//! `nats_output`: alerts onto a NATS JetStream stream, none lost.
//!
//! The channel's `emit` appends the alert to an on-disk spool (see
//! [`spool`]) and returns; a publisher thread sends what the spool holds,
//! in order, each with a deduplication id (`Nats-Msg-Id`), and takes it out
//! of the spool only once the stream has acknowledged it. While the cluster
//! is unreachable the spool fills (up to its size cap) and the publisher
//! retries with backoff; what a stopped Peregrine leaves in the spool goes
//! out at the next start, under the same ids, so the stream's deduplication
//! window takes out anything sent twice.

pub mod spool;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::Publish};
use async_nats::{ConnectOptions, ServerAddr};

use self::spool::{Record, Spool};
use super::{Channel, OutputError};
use crate::alert::SharedAlert;
use crate::config::NatsOutput;

const NAME: &str = "nats";
/// Records sent before their acknowledgements are awaited.
const WINDOW: usize = 256;
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

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

/// What the channel and its publisher share.
struct Shared {
    spool: Mutex<Spool>,
    /// Signalled when records are pushed and when the channel closes.
    wake: Condvar,
    closing: AtomicBool,
    /// Acknowledged by the stream, and acknowledged as duplicates.
    acked: AtomicU64,
    duplicates: AtomicU64,
}

pub struct NatsChannel {
    shared: Arc<Shared>,
    publisher: Option<JoinHandle<()>>,
    subject: String,
    hostname: String,
    /// Ids are `hostname:instance:sequence`: unique across restarts without
    /// keeping a counter on disk.
    instance: String,
    sequence: u64,
    shutdown_timeout: Duration,
    ack_timeout: Duration,
    spool_dir: PathBuf,
}

impl NatsChannel {
    pub fn start(options: NatsOptions) -> Result<NatsChannel, OutputError> {
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
        let spool = Spool::open(&options.spool_dir, options.spool_max_bytes)
            .map_err(|e| other(e.to_string()))?;
        if !spool.is_empty() {
            crate::log::message(&format!(
                "nats_output: {} bytes of alerts left in {} by an earlier run are sent first",
                spool.pending_bytes(),
                options.spool_dir.display()
            ));
        }
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            wake: Condvar::new(),
            closing: AtomicBool::new(false),
            acked: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| other(format!("cannot start the NATS runtime: {e}")))?;
        let connect = connect_options(&options, &runtime).map_err(other)?;
        let publisher = {
            let shared = Arc::clone(&shared);
            let options = options.clone();
            std::thread::Builder::new()
                .name("nats-publisher".into())
                .spawn(move || runtime.block_on(publish_loop(shared, connect, servers, options)))
                .map_err(|e| other(format!("cannot start the NATS publisher: {e}")))?
        };
        Ok(NatsChannel {
            shared,
            publisher: Some(publisher),
            subject: options.subject,
            hostname: options.hostname,
            instance: instance_id(),
            sequence: 0,
            shutdown_timeout: options.shutdown_timeout,
            ack_timeout: options.ack_timeout,
            spool_dir: options.spool_dir,
        })
    }
}

impl Channel for NatsChannel {
    fn name(&self) -> &'static str {
        NAME
    }

    fn emit(&mut self, alert: &SharedAlert) -> Result<(), OutputError> {
        self.sequence += 1;
        let record = Record {
            id: format!("{}:{}:{}", self.hostname, self.instance, self.sequence),
            subject: subject_for(&self.subject, alert, &self.hostname),
            json: alert.json.clone(),
        };
        let mut spool = lock(&self.shared.spool);
        match spool.push(&record) {
            Ok(true) => {
                drop(spool);
                self.shared.wake.notify_one();
                Ok(())
            }
            Ok(false) => Err(OutputError::Other {
                channel: NAME,
                message: format!(
                    "spool {} is full (nats_output.spool_max_mb): the cluster has not acknowledged for too long; alert dropped",
                    self.spool_dir.display()
                ),
            }),
            Err(e) => Err(OutputError::Other {
                channel: NAME,
                message: e.to_string(),
            }),
        }
    }

    /// `close` waits `shutdown_timeout` for the spool to drain, then for
    /// the publisher to finish the batch it awaits acknowledgements for.
    fn close_grace(&self) -> Duration {
        self.shutdown_timeout + self.ack_timeout * 2 + Duration::from_secs(1)
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        lock(&self.shared.spool)
            .sync()
            .map_err(|e| OutputError::Other {
                channel: NAME,
                message: e.to_string(),
            })
    }

    fn close(&mut self) -> Result<(), OutputError> {
        self.flush()?;
        let deadline = Instant::now() + self.shutdown_timeout;
        {
            let mut spool = lock(&self.shared.spool);
            while !spool.is_empty() && Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                spool = match self
                    .shared
                    .wake
                    .wait_timeout(spool, left.min(BACKOFF_FIRST))
                {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                };
            }
            if !spool.is_empty() {
                crate::log::message(&format!(
                    "nats_output: {} bytes of alerts not acknowledged by the stream in {:?}: kept in {} for the next start",
                    spool.pending_bytes(),
                    self.shutdown_timeout,
                    self.spool_dir.display()
                ));
            }
        }
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake.notify_all();
        if let Some(publisher) = self.publisher.take() {
            let _ = publisher.join();
        }
        let acked = self.shared.acked.load(Ordering::Relaxed);
        let duplicates = self.shared.duplicates.load(Ordering::Relaxed);
        crate::log::message(&format!(
            "nats_output: {acked} alerts acknowledged by the stream ({duplicates} of them already there)"
        ));
        Ok(())
    }
}

impl Drop for NatsChannel {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake.notify_all();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
    shared: Arc<Shared>,
    connect: ConnectOptions,
    servers: Vec<ServerAddr>,
    options: NatsOptions,
) {
    let client = match connect.connect(servers).await {
        Ok(client) => client,
        Err(e) => {
            crate::log::message(&format!(
                "nats_output: cannot connect: {e}; alerts stay in the spool"
            ));
            return;
        }
    };
    let mut context = jetstream::new(client);
    context.set_timeout(options.ack_timeout);
    let mut stream_ready = !options.create_stream;
    let mut backoff = BACKOFF_FIRST;
    loop {
        let batch = {
            let mut spool = lock(&shared.spool);
            loop {
                if shared.closing.load(Ordering::Acquire) {
                    return;
                }
                match spool.peek(WINDOW) {
                    Ok(batch) if !batch.is_empty() => break batch,
                    Ok(_) => {}
                    Err(e) => crate::log::message(&format!("nats_output: {e}")),
                }
                spool = match shared.wake.wait_timeout(spool, BACKOFF_MAX) {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                };
            }
        };
        if !stream_ready {
            match ensure_stream(&context, &options).await {
                Ok(()) => stream_ready = true,
                Err(e) => {
                    crate::log::message(&format!("nats_output: stream {}: {e}", options.stream));
                    pause(&shared, &mut backoff).await;
                    continue;
                }
            }
        }
        match send_batch(&context, &batch).await {
            Ok((sent_to, duplicates)) => {
                backoff = BACKOFF_FIRST;
                shared.acked.fetch_add(sent_to.0 as u64, Ordering::Relaxed);
                shared.duplicates.fetch_add(duplicates, Ordering::Relaxed);
                let mut spool = lock(&shared.spool);
                if let Err(e) = spool.ack(sent_to.1) {
                    crate::log::message(&format!("nats_output: {e}"));
                }
                drop(spool);
                shared.wake.notify_all();
            }
            Err((partial, duplicates, error)) => {
                if partial.0 > 0 {
                    shared.acked.fetch_add(partial.0 as u64, Ordering::Relaxed);
                    shared.duplicates.fetch_add(duplicates, Ordering::Relaxed);
                    let _ = lock(&shared.spool).ack(partial.1);
                }
                crate::log::message(&format!(
                    "nats_output: not acknowledged ({error}); retrying in {backoff:?}"
                ));
                pause(&shared, &mut backoff).await;
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
        match context.send_publish(record.subject.clone(), publish).await {
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

async fn pause(shared: &Shared, backoff: &mut Duration) {
    let until = Instant::now() + *backoff;
    while Instant::now() < until && !shared.closing.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
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

/// 64 random bits, from the kernel, for ids that never repeat a run's.
fn instance_id() -> String {
    let mut bytes = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if random.is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes = ((now.as_nanos() as u64) ^ u64::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
