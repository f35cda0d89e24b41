//! The gRPC output: Falco's `falco.outputs.service` (proto/outputs.proto),
//! served on a unix socket or, with mutual TLS, on a TCP port.
//!
//! Alerts reach this channel through its queue like every other channel;
//! `emit` only hands them over and never waits for a client. Each alert
//! goes to every open `sub` stream at once, and into a bounded backlog
//! that the next `get` empties. tokio lives here and nowhere else: the
//! server runs on a runtime this channel owns.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, oneshot};
use tokio_stream::wrappers::{BroadcastStream, TcpListenerStream, UnixListenerStream};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use super::{Channel, OutputError};
use crate::alert::{render, Priority, RenderOptions, SharedAlert};

/// The code generated from proto/ (see build.rs).
pub mod proto {
    pub mod falco {
        pub mod schema {
            tonic::include_proto!("falco.schema");
        }
        pub mod outputs {
            // The client is generated for the tests; the method names are
            // Falco's, in lower case.
            #![allow(dead_code, non_camel_case_types)]
            tonic::include_proto!("falco.outputs");
        }
    }
}

use proto::falco::outputs::service_server::{Service, ServiceServer};
use proto::falco::outputs::{Request as OutputsRequest, Response as OutputsResponse};
use proto::falco::schema;

/// How long, at shutdown, the server stays up for a `get` client to
/// collect alerts no client has seen yet. An offline run (a capture file)
/// ends within milliseconds of its last alert; without this grace a client
/// polling `get` would lose the last ones.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What the `grpc` section of the config says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcOptions {
    /// `unix:///path/to.sock` or `host:port`.
    pub bind_address: String,
    /// tokio worker threads (0: one; never more than the cores).
    pub threadiness: usize,
    /// PEM files for TCP: the server's key and certificate chain, and the
    /// CA that client certificates must chain to (mutual TLS, as Falco).
    pub private_key: Option<PathBuf>,
    pub cert_chain: Option<PathBuf>,
    pub root_certs: Option<PathBuf>,
    /// Alerts `get` may find waiting; older ones make room for newer.
    pub backlog: usize,
    /// How the dispatcher renders lines (`json_output` included): the
    /// `output` field is the text line whatever `json_output` says.
    pub render: RenderOptions,
}

/// Why the gRPC server could not start.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("grpc: cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("grpc: cannot listen on {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("grpc: cannot read {what} {path}: {source}")]
    ReadPem {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("grpc: {0}")]
    Setup(String),
}

/// What the channel and the server share.
struct Hub {
    backlog: Mutex<VecDeque<Queued>>,
    /// A reload may change it.
    capacity: AtomicUsize,
    /// Taken away at shutdown, which ends every `sub` stream.
    live: Mutex<Option<broadcast::Sender<Arc<OutputsResponse>>>>,
    /// Alerts a slow `sub` client fell too far behind to receive.
    lagged: AtomicU64,
}

struct Queued {
    response: Arc<OutputsResponse>,
    /// Whether some `sub` client was sent it: dropping it from the backlog
    /// then loses nothing.
    seen_live: bool,
}

impl Hub {
    fn backlog(&self) -> MutexGuard<'_, VecDeque<Queued>> {
        // A panic while holding the lock leaves plain data behind: still
        // usable.
        self.backlog.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live(&self) -> MutexGuard<'_, Option<broadcast::Sender<Arc<OutputsResponse>>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn unseen(&self) -> usize {
        self.backlog().iter().filter(|q| !q.seen_live).count()
    }
}

/// The gRPC output channel. Dropping it without [`Channel::close`] stops
/// the server at once.
pub struct GrpcChannel {
    hub: Arc<Hub>,
    server: Option<Serving>,
    text: RenderOptions,
    /// Whether the dispatcher's line is JSON (`json_output`): the `output`
    /// field is then rendered again as text.
    lines_are_json: bool,
    /// What it was started (or last reconfigured) with.
    options: GrpcOptions,
    /// Where it listens: the socket path or the bound TCP address.
    pub address: String,
}

/// One running server: its runtime, its task and its socket.
struct Serving {
    runtime: tokio::runtime::Runtime,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), tonic::transport::Error>>>,
    socket: Option<PathBuf>,
    address: String,
}

impl Serving {
    /// Binds `options.bind_address` and serves `hub` there.
    fn start(options: &GrpcOptions, hub: &Arc<Hub>) -> Result<Serving, GrpcError> {
        // Serving alerts is light work: more threads than cores buy nothing.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threadiness.clamp(1, cores))
            .thread_name("grpc")
            .enable_io()
            .enable_time()
            .build()
            .map_err(GrpcError::Runtime)?;
        let service = ServiceServer::new(OutputsService {
            hub: Arc::clone(hub),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let bind_error = |source| GrpcError::Bind {
            address: options.bind_address.clone(),
            source,
        };
        let (task, socket, address) =
            if let Some(path) = options.bind_address.strip_prefix("unix://") {
                let path = PathBuf::from(path);
                let listener = {
                    let _context = runtime.enter();
                    bind_unix(&path).map_err(bind_error)?
                };
                let incoming = UnixListenerStream::new(listener);
                let task = runtime.spawn(
                    Server::builder()
                        .add_service(service)
                        .serve_with_incoming_shutdown(incoming, shutdown),
                );
                let address = path.display().to_string();
                (task, Some(path), address)
            } else {
                let tls = tls_config(options)?;
                let listener = runtime
                    .block_on(tokio::net::TcpListener::bind(&options.bind_address))
                    .map_err(bind_error)?;
                let address = listener
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| options.bind_address.clone());
                let incoming = TcpListenerStream::new(listener);
                let mut builder = Server::builder()
                    .tls_config(tls)
                    .map_err(|e| GrpcError::Setup(format!("TLS: {e}")))?;
                let task = runtime.spawn(
                    builder
                        .add_service(service)
                        .serve_with_incoming_shutdown(incoming, shutdown),
                );
                (task, None, address)
            };
        Ok(Serving {
            runtime,
            stop: Some(stop),
            task: Some(task),
            socket,
            address,
        })
    }

    /// Stops serving: lets calls in progress finish (bounded), removes the
    /// socket file. `sub` streams must have been ended before (the hub's
    /// live sender taken), or this waits for them until the bound.
    fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let finished = self
                .runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(2), task).await });
            match finished {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => crate::log::message(&format!("grpc server: {e}")),
                Ok(Err(e)) => crate::log::message(&format!("grpc server task: {e}")),
                Err(_) => crate::log::message("grpc server: calls still open at shutdown were cut"),
            }
        }
        self.runtime.shutdown_timeout(Duration::from_millis(500));
        if let Some(path) = self.socket.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The TCP port an address asks for (None for a unix socket).
fn tcp_port(bind_address: &str) -> Option<u16> {
    if bind_address.starts_with("unix://") {
        return None;
    }
    bind_address.rsplit(':').next()?.parse().ok()
}

impl GrpcOptions {
    /// What the config's `grpc` section (and the render settings) say.
    pub fn from_config(config: &crate::config::Config) -> GrpcOptions {
        let grpc = &config.grpc;
        let path = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
        GrpcOptions {
            bind_address: grpc.bind_address.clone(),
            threadiness: grpc.threadiness as usize,
            private_key: path(&grpc.private_key),
            cert_chain: path(&grpc.cert_chain),
            root_certs: path(&grpc.root_certs),
            backlog: match config.outputs_queue.capacity {
                0 => crate::config::DEFAULT_QUEUE_CAPACITY,
                n => n,
            },
            render: super::reload::render_options(config),
        }
    }

    /// Whether the server (not only the rendering) differs.
    fn same_server(&self, other: &GrpcOptions) -> bool {
        GrpcOptions {
            render: other.render.clone(),
            ..self.clone()
        } == *other
    }

    /// Whether serving `new` needs the socket this one holds (the same
    /// unix path, or the same fixed TCP port).
    fn holds_the_socket_of(&self, bound: &str, new: &GrpcOptions) -> bool {
        match (tcp_port(&new.bind_address), tcp_port(bound)) {
            (Some(0), _) => false,
            (Some(new_port), Some(old_port)) => new_port == old_port,
            (None, _) => self.bind_address == new.bind_address,
            (Some(_), None) => false,
        }
    }
}

impl GrpcChannel {
    /// The channel the config's `grpc` section describes, started.
    pub fn from_config(config: &crate::config::Config) -> Result<GrpcChannel, String> {
        let channel =
            GrpcChannel::start(GrpcOptions::from_config(config)).map_err(|e| e.to_string())?;
        crate::log::message(&format!("gRPC server listening on {}", channel.address));
        Ok(channel)
    }

    /// Binds the address and starts serving; errors name what failed.
    pub fn start(options: GrpcOptions) -> Result<GrpcChannel, GrpcError> {
        let hub = Arc::new(Hub {
            backlog: Mutex::new(VecDeque::new()),
            capacity: AtomicUsize::new(options.backlog.max(1)),
            live: Mutex::new(Some(live_sender(&options))),
            lagged: AtomicU64::new(0),
        });
        let server = Serving::start(&options, &hub)?;
        Ok(GrpcChannel {
            hub,
            address: server.address.clone(),
            server: Some(server),
            lines_are_json: options.render.json_output,
            text: RenderOptions {
                json_output: false,
                ..options.render.clone()
            },
            options,
        })
    }

    /// Takes new settings (a config reload), on the channel's own thread:
    /// alerts sent meanwhile wait in its queue. Rendering changes apply
    /// at once. A changed server is started again: `sub` streams end (the
    /// clients subscribe again, as after a restart of the process) but the
    /// backlog that `get` collects carries over. On a new address the new
    /// server is bound before the old one stops; on the same one the old
    /// stops first and, if the new cannot start, comes back. Returns what
    /// to log, or why the old server keeps running.
    pub fn reconfigure(&mut self, new: GrpcOptions) -> Result<Option<String>, String> {
        if new == self.options {
            return Ok(None);
        }
        self.lines_are_json = new.render.json_output;
        self.text = RenderOptions {
            json_output: false,
            ..new.render.clone()
        };
        if self.options.same_server(&new) {
            self.options = new;
            return Ok(None);
        }
        self.hub
            .capacity
            .store(new.backlog.max(1), Ordering::Relaxed);
        let old = self.server.take();
        let in_the_way = self.options.holds_the_socket_of(&self.address, &new);
        let started = if in_the_way {
            self.end_subscriptions(&new);
            if let Some(old) = old {
                old.stop();
            }
            Serving::start(&new, &self.hub).map_err(|e| {
                match Serving::start(&self.options, &self.hub) {
                    Ok(again) => {
                        self.server = Some(again);
                        format!("{e}; the gRPC server keeps its previous settings on {}", self.address)
                    }
                    Err(again) => format!(
                        "{e}; and its previous settings failed too ({again}): the gRPC server is down"
                    ),
                }
            })
        } else {
            match Serving::start(&new, &self.hub) {
                Ok(server) => {
                    self.end_subscriptions(&new);
                    if let Some(old) = old {
                        old.stop();
                    }
                    Ok(server)
                }
                Err(e) => {
                    self.server = old;
                    Err(format!(
                        "{e}; the gRPC server keeps its previous settings on {}",
                        self.address
                    ))
                }
            }
        };
        let server = started?;
        self.address = server.address.clone();
        self.server = Some(server);
        self.options = new;
        Ok(Some(format!("gRPC server listening on {}", self.address)))
    }

    /// Ends every `sub` stream and opens a new live feed for the next.
    fn end_subscriptions(&self, options: &GrpcOptions) {
        *self.hub.live() = Some(live_sender(options));
    }

    fn response(&self, alert: &SharedAlert) -> OutputsResponse {
        let output = if self.lines_are_json {
            render(alert.alert.clone(), &self.text).line
        } else {
            alert.line.clone()
        };
        let mut response = to_response(&alert.alert, output);
        // Falco's line starts with the event time, written by a field
        // (`%evt.time` or `%evt.time.iso8601`) that its clients find among
        // the output fields; the value is the line's own time text.
        let time_field = if self.text.time_format_iso_8601 {
            "evt.time.iso8601"
        } else {
            "evt.time"
        };
        if let Some((time, _)) = response.output.split_once(": ") {
            let time = time.to_string();
            response
                .output_fields
                .entry(time_field.to_string())
                .or_insert(time);
        }
        response
    }

    /// Stops the server: ends `sub` streams, lets calls in progress
    /// finish (bounded), removes the socket file.
    fn stop_server(&mut self) {
        self.hub.live().take();
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }
}

/// The feed `sub` streams read.
fn live_sender(options: &GrpcOptions) -> broadcast::Sender<Arc<OutputsResponse>> {
    broadcast::channel(options.backlog.clamp(16, 65_536)).0
}

impl Drop for GrpcChannel {
    fn drop(&mut self) {
        self.stop_server();
    }
}

impl Channel for GrpcChannel {
    fn name(&self) -> &'static str {
        "grpc"
    }

    fn reconfigure(&mut self, config: &crate::config::Config) -> Result<Option<String>, String> {
        GrpcChannel::reconfigure(self, GrpcOptions::from_config(config))
    }

    fn emit(&mut self, alert: &SharedAlert) -> Result<(), OutputError> {
        let response = Arc::new(self.response(alert));
        let lost = {
            // Queued before `get` can look again: a client that saw the
            // alert on `sub` and then calls `get` finds it there.
            let mut backlog = self.hub.backlog();
            let seen_live = match self.hub.live().as_ref() {
                Some(live) => live.send(Arc::clone(&response)).is_ok_and(|n| n > 0),
                None => false,
            };
            let mut lost = 0u64;
            let capacity = self.hub.capacity.load(Ordering::Relaxed);
            while backlog.len() >= capacity {
                if backlog.pop_front().is_some_and(|q| !q.seen_live) {
                    lost += 1;
                }
            }
            backlog.push_back(Queued {
                response,
                seen_live,
            });
            lost
        };
        if lost > 0 {
            return Err(OutputError::Other {
                channel: "grpc",
                message: format!(
                    "{lost} alert(s) nobody subscribed to were dropped: the `get` backlog holds {}",
                    self.hub.capacity.load(Ordering::Relaxed)
                ),
            });
        }
        Ok(())
    }

    /// Gives a `get` client [`SHUTDOWN_GRACE`] to collect what no client
    /// has seen, then stops serving.
    fn close(&mut self) -> Result<(), OutputError> {
        let until = Instant::now() + SHUTDOWN_GRACE;
        while self.hub.unseen() > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let unseen = self.hub.unseen();
        let lagged = self.hub.lagged.load(Ordering::Relaxed);
        self.stop_server();
        match (unseen, lagged) {
            (0, 0) => Ok(()),
            _ => Err(OutputError::Other {
                channel: "grpc",
                message: format!(
                    "at shutdown {unseen} alert(s) were never collected; slow `sub` clients missed {lagged}"
                ),
            }),
        }
    }
}

fn bind_unix(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket left by a previous run that did not stop cleanly; anything
    // else at that path is not ours to remove.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    tokio::net::UnixListener::bind(path)
}

fn tls_config(options: &GrpcOptions) -> Result<ServerTlsConfig, GrpcError> {
    let read = |what: &'static str, path: &Option<PathBuf>| {
        match path {
        Some(path) => std::fs::read(path).map_err(|source| GrpcError::ReadPem {
            what,
            path: path.clone(),
            source,
        }),
        None => Err(GrpcError::Setup(format!(
            "serving on TCP ({}) needs grpc.{what}: the TCP server only speaks mutual TLS; use a unix:// address for plain gRPC",
            options.bind_address
        ))),
    }
    };
    let key = read("private_key", &options.private_key)?;
    let chain = read("cert_chain", &options.cert_chain)?;
    let roots = read("root_certs", &options.root_certs)?;
    Ok(ServerTlsConfig::new()
        .identity(Identity::from_pem(chain, key))
        .client_ca_root(Certificate::from_pem(roots)))
}

/// An alert in the shape of Falco's `response` message.
fn to_response(alert: &crate::alert::Alert, output: String) -> OutputsResponse {
    let seconds = (alert.time_ns / 1_000_000_000) as i64;
    let nanos = (alert.time_ns % 1_000_000_000) as i32;
    let source = match alert.source.as_str() {
        "syscall" => schema::Source::Syscall,
        "k8s_audit" => schema::Source::K8sAudit,
        "internal" => schema::Source::Internal,
        _ => schema::Source::Plugin,
    };
    let output_fields: HashMap<String, String> = alert
        .output_fields
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                value.clone().unwrap_or_else(|| "<NA>".to_string()),
            )
        })
        .collect();
    OutputsResponse {
        time: Some(prost_types::Timestamp { seconds, nanos }),
        priority: priority_number(alert.priority) as i32,
        source: source as i32,
        rule: alert.rule.clone(),
        output,
        output_fields,
        hostname: alert.hostname.clone(),
        tags: alert.tags.clone(),
        source_name: alert.source.clone(),
    }
}

fn priority_number(priority: Priority) -> schema::Priority {
    match priority {
        Priority::Emergency => schema::Priority::Emergency,
        Priority::Alert => schema::Priority::Alert,
        Priority::Critical => schema::Priority::Critical,
        Priority::Error => schema::Priority::Error,
        Priority::Warning => schema::Priority::Warning,
        Priority::Notice => schema::Priority::Notice,
        Priority::Informational => schema::Priority::Informational,
        Priority::Debug => schema::Priority::Debug,
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<OutputsResponse, tonic::Status>> + Send>>;

struct OutputsService {
    hub: Arc<Hub>,
}

#[tonic::async_trait]
#[allow(non_camel_case_types)]
impl Service for OutputsService {
    type subStream = ResponseStream;
    type getStream = ResponseStream;

    async fn sub(
        &self,
        _request: tonic::Request<tonic::Streaming<OutputsRequest>>,
    ) -> Result<tonic::Response<ResponseStream>, tonic::Status> {
        let Some(receiver) = self.hub.live().as_ref().map(|live| live.subscribe()) else {
            return Err(tonic::Status::unavailable("peregrine is shutting down"));
        };
        let hub = Arc::clone(&self.hub);
        let stream = BroadcastStream::new(receiver).filter_map(move |item| match item {
            Ok(response) => Some(Ok(Arc::unwrap_or_clone(response))),
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                hub.lagged.fetch_add(n, Ordering::Relaxed);
                None
            }
        });
        Ok(tonic::Response::new(Box::pin(stream)))
    }

    async fn get(
        &self,
        _request: tonic::Request<OutputsRequest>,
    ) -> Result<tonic::Response<ResponseStream>, tonic::Status> {
        let queued = std::mem::take(&mut *self.hub.backlog());
        let stream = tokio_stream::iter(
            queued
                .into_iter()
                .map(|q| Ok(Arc::unwrap_or_clone(q.response))),
        );
        Ok(tonic::Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests;
