//! `peregrine fleet`: the other end of `nats_output` (and, with `--kafka`,
//! of `kafka_output`: see [`kafka`]). Reads the alerts of every node from
//! the JetStream stream as a durable consumer (so a restarted `fleet` goes
//! on where it stopped) and shows, per node, how
//! many alerts and drop reports came, and when it was last heard of, so an
//! operator sees which node went quiet. With `--listen` the same view is
//! served in the browser ([`web`]).

mod kafka;
mod seen;
mod view;
pub mod web;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::{self, consumer};
use async_nats::{connection, ConnectOptions, ServerAddr};
use tokio_stream::StreamExt;

use crate::args::FleetArgs;
use crate::outputs::nats::NatsAuth;
use crate::servers::listener::{Health, ListenError, Listener};
use crate::servers::webserver::tls_acceptor;
pub use view::{FleetView, LatencyWindow, LatestAlert, NodeView, LATEST_MAX};
use web::FleetSite;

/// Why `peregrine fleet` stopped short.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("fleet: cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("--server '{server}': {message}")]
    Server { server: String, message: String },
    #[error("fleet: {0}")]
    Credentials(String),
    #[error("cannot connect to NATS ({servers}): {message}")]
    Connect { servers: String, message: String },
    #[error("stream {stream}: {message}")]
    Stream { stream: String, message: String },
    #[error("durable consumer {durable} on stream {stream}: {message}")]
    Consumer {
        durable: String,
        stream: String,
        message: String,
    },
    #[error("cannot acknowledge a message of stream {stream}: {message}")]
    Ack { stream: String, message: String },
    #[error("--listen-cert: {0}")]
    Certificate(String),
    #[error("Kafka ({brokers}): {message}")]
    Kafka { brokers: String, message: String },
    #[error("fleet view: {0}")]
    Listen(#[from] ListenError),
}

/// Threads of the runtime when the view is served too: the consumer and
/// the page's clients each get one.
const SERVING_THREADS: usize = 2;

/// How often a served view tries again to reach the stream.
const RETRY: Duration = Duration::from_secs(2);

fn lock(view: &Mutex<FleetView>) -> MutexGuard<'_, FleetView> {
    // The view stays whole even if a holder panicked.
    view.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn run(args: &FleetArgs, stop: &Arc<AtomicBool>) -> Result<(), FleetError> {
    let view = Arc::new(Mutex::new(match args.listen {
        Some(_) => FleetView::keeping_latest(args.latest),
        None => FleetView::default(),
    }));
    let runtime = match args.listen {
        Some(_) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(SERVING_THREADS)
            .thread_name("peregrine-fleet")
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
    .map_err(FleetError::Runtime)?;
    let connected = Arc::new(AtomicBool::new(false));
    let listener = match &args.listen {
        Some(address) => Some(serve(args, address, &view, &connected, runtime.handle())?),
        None => None,
    };
    let result = if args.kafka_brokers.is_empty() {
        runtime.block_on(consume(args, stop, &view, &connected))
    } else {
        runtime.block_on(kafka::consume(args, stop, &view, &connected))
    };
    if let Some(listener) = listener {
        listener.stop();
    }
    result
}

fn serve(
    args: &FleetArgs,
    address: &str,
    view: &Arc<Mutex<FleetView>>,
    connected: &Arc<AtomicBool>,
    runtime: &tokio::runtime::Handle,
) -> Result<Listener, FleetError> {
    let tls = args
        .listen_cert
        .as_deref()
        .map(tls_acceptor)
        .transpose()
        .map_err(FleetError::Certificate)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let site = FleetSite::new(
        Arc::clone(view),
        Arc::clone(connected),
        Duration::from_secs(args.quiet_after),
        if args.kafka_brokers.is_empty() {
            &args.stream
        } else {
            &args.topic
        },
    );
    let listener = Listener::start(
        address,
        site.setup(tls, Arc::new(Health::default())),
        runtime,
    )?;
    crate::log::message(&format!(
        "fleet: the fleet view is served on {scheme}://{}/",
        listener.address
    ));
    Ok(listener)
}

async fn consume(
    args: &FleetArgs,
    stop: &Arc<AtomicBool>,
    view: &Mutex<FleetView>,
    connected: &AtomicBool,
) -> Result<(), FleetError> {
    let servers = args
        .servers
        .iter()
        .map(|s| {
            s.parse::<ServerAddr>().map_err(|e| FleetError::Server {
                server: s.clone(),
                message: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let auth = NatsAuth {
        credentials: args.creds.clone(),
        token: args.token.clone(),
        user: args.user.clone(),
        password: args.password.clone(),
        tls_ca: args.tls_ca.clone(),
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
    };
    let connect = auth
        .apply(ConnectOptions::new().name("peregrine-fleet"))
        .await
        .map_err(FleetError::Credentials)?;
    // A served view outlives NATS being away, at start too: it shows
    // that it is not connected, and waits for NATS and the stream.
    let serving = args.listen.is_some();
    let connect = if serving {
        connect.retry_on_initial_connect()
    } else {
        connect
    };
    let client = connect
        .connect(servers)
        .await
        .map_err(|e| FleetError::Connect {
            servers: args.servers.join(", "),
            message: e.to_string(),
        })?;
    let context = jetstream::new(client.clone());
    let is_connected =
        |client: &async_nats::Client| client.connection_state() == connection::State::Connected;
    let mut waiting_since: Option<Instant> = None;
    let mut messages = loop {
        connected.store(is_connected(&client), Ordering::Relaxed);
        match subscribe(&context, args).await {
            Ok(messages) => {
                if waiting_since.is_some() {
                    crate::log::message(&format!("fleet: reading stream {}", args.stream));
                }
                break Some(messages);
            }
            Err(e) if serving => {
                if waiting_since.is_none() {
                    crate::log::message(&format!("{e}; trying again every {RETRY:?}"));
                    waiting_since = Some(Instant::now());
                }
            }
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + RETRY;
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if stop.load(Ordering::Relaxed) {
            break None;
        }
    };

    let mut pace = Pace::new(args);
    while let Some(messages) = messages.as_mut().filter(|_| !stop.load(Ordering::Relaxed)) {
        // For the served view: without NATS, every node falls silent.
        connected.store(is_connected(&client), Ordering::Relaxed);
        match tokio::time::timeout(Duration::from_millis(500), messages.next()).await {
            Ok(Some(Ok(message))) => {
                pace.heard();
                let id = message
                    .headers
                    .as_ref()
                    // The client files the headers it knows under their
                    // standard names: looked up by string, this one is
                    // never found.
                    .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                    .map(|v| v.as_str().to_string());
                lock(view).take(id.as_deref(), &message.payload, SystemTime::now());
                if args.alerts {
                    println!("{}", String::from_utf8_lossy(&message.payload));
                }
                message.ack().await.map_err(|e| FleetError::Ack {
                    stream: args.stream.clone(),
                    message: e.to_string(),
                })?;
            }
            Ok(Some(Err(e))) => crate::log::message(&format!("fleet: {e}")),
            Ok(None) => break,
            Err(_) => {}
        }
        if pace.tick(view) {
            break;
        }
    }
    pace.report(view);
    Ok(())
}

/// When the readers print the node table and when they stop for want of
/// alerts; and the last word.
struct Pace {
    json: bool,
    quiet_after: Duration,
    every: Duration,
    idle_exit: Option<Duration>,
    last_message: Instant,
    last_table: Instant,
}

impl Pace {
    fn new(args: &FleetArgs) -> Pace {
        Pace {
            json: args.json,
            quiet_after: Duration::from_secs(args.quiet_after),
            every: Duration::from_secs(args.every.max(1)),
            idle_exit: args.idle_exit.map(Duration::from_secs),
            last_message: Instant::now(),
            last_table: Instant::now(),
        }
    }

    fn heard(&mut self) {
        self.last_message = Instant::now();
    }

    /// Prints the table when it is due; true once it is time to stop.
    fn tick(&mut self, view: &Mutex<FleetView>) -> bool {
        if !self.json && self.last_table.elapsed() >= self.every {
            let table = lock(view).table(SystemTime::now(), self.quiet_after);
            print!("{table}");
            self.last_table = Instant::now();
        }
        self.idle_exit
            .is_some_and(|idle| self.last_message.elapsed() >= idle)
    }

    /// The summary (JSON) or the last table with the totals.
    fn report(&self, view: &Mutex<FleetView>) {
        let now = SystemTime::now();
        let view = lock(view);
        if self.json {
            println!("{}", view.summary(now, self.quiet_after));
        } else {
            print!("{}", view.table(now, self.quiet_after));
            println!(
                "{} messages, {} distinct alerts, {} duplicates",
                view.messages,
                view.unique(),
                view.duplicates
            );
        }
    }
}

/// The durable consumer's messages, from the stream the nodes publish to.
async fn subscribe(
    context: &jetstream::Context,
    args: &FleetArgs,
) -> Result<consumer::pull::Stream, FleetError> {
    let stream = context
        .get_stream(&args.stream)
        .await
        .map_err(|e| FleetError::Stream {
            stream: args.stream.clone(),
            message: e.to_string(),
        })?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &args.durable,
            consumer::pull::Config {
                durable_name: Some(args.durable.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                filter_subject: args.subject.clone().unwrap_or_default(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| consumer_error(args, e))?;
    consumer
        .messages()
        .await
        .map_err(|e| consumer_error(args, e))
}

fn consumer_error(args: &FleetArgs, error: impl std::fmt::Display) -> FleetError {
    FleetError::Consumer {
        durable: args.durable.clone(),
        stream: args.stream.clone(),
        message: error.to_string(),
    }
}
