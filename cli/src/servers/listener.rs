//! One listening socket served by hyper's HTTP/1 server on the listeners'
//! tokio runtime, built for clients that mean harm:
//!
//! - a request head must arrive within [`Limits::header_timeout`] (also
//!   the limit on an idle keep-alive connection and on a TLS handshake);
//! - at most [`Limits::max_connections`] connections are open; when full,
//!   or when the process is out of file descriptors, the connection idle
//!   for longest (no request in progress) is closed to make room, so
//!   idle sockets cannot starve clients that send a request;
//! - an accept error never ends the accept loop: it is counted, backed off
//!   and retried, and shows in [`Health`] while it lasts;
//! - [`Listener::stop`] returns within [`STOP_GRACE`] whatever clients
//!   hold: requests in progress get that long to finish.
//!
//! A listener can hand its socket to a successor ([`Listener::start_on`]):
//! a reload that keeps the address never unbinds the port, and connections
//! waiting in the kernel's accept queue are served by the successor.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONNECTION};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{watch, Notify};
use tokio_rustls::TlsAcceptor;

/// How long requests in progress may run on after a stop.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// The first and the longest pause after an accept error.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Pending connections the kernel keeps for us (capped by somaxconn).
const BACKLOG: i32 = 1024;

/// What one listener allows a client.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// For a request head, an idle keep-alive connection, a TLS handshake.
    pub header_timeout: Duration,
    /// For each piece of a request body.
    pub body_idle_timeout: Duration,
    /// For a whole request body.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// A response body: most answers are small and whole ([`full`]); the
/// console's live stream is one that goes on.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A whole response body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// Who a request came from, put in its extensions for the routes that
/// answer only some clients (the console).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionInfo {
    pub peer: Option<SocketAddr>,
    pub tls: bool,
    /// The client showed a certificate the listener's TLS settings
    /// verified (only asked for when they name client CAs).
    pub client_certificate: bool,
}

/// What a listener serves. The future must end in bounded time: bodies are
/// read with the limits the listener passes along.
pub trait Serve: Send + Sync + 'static {
    fn serve(
        self: Arc<Self>,
        request: Request<Incoming>,
        limits: Limits,
    ) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
}

/// Counters of one listening socket, kept across reload handovers.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub accepted: AtomicU64,
    pub accept_errors: AtomicU64,
    /// Idle connections closed to make room for new ones.
    pub evicted: AtomicU64,
}

/// Whether each listener is able to accept connections; /healthz reports
/// it. Shared by every listener of a run.
#[derive(Debug, Default)]
pub struct Health {
    listeners: Mutex<BTreeMap<String, Condition>>,
}

#[derive(Debug, Clone)]
enum Condition {
    Serving,
    /// accept() failed at this time; it retries at least every
    /// BACKOFF_MAX, so a failure older than twice that is over.
    AcceptFailing {
        at: Instant,
        error: String,
    },
    /// Could not be started (a reload's new and old settings both failed).
    Down(String),
}

impl Health {
    fn set(&self, name: &str, condition: Condition) {
        lock(&self.listeners).insert(name.to_string(), condition);
    }

    fn serving(&self, name: &str) {
        let mut listeners = lock(&self.listeners);
        if let Some(condition) = listeners.get_mut(name) {
            if !matches!(condition, Condition::Serving) {
                *condition = Condition::Serving;
            }
        }
    }

    /// Records that the listener `name` is down, and why.
    pub fn down(&self, name: &str, why: &str) {
        self.set(name, Condition::Down(why.to_string()));
    }

    /// Forgets `name`: it was stopped on purpose.
    pub fn forget(&self, name: &str) {
        lock(&self.listeners).remove(name);
    }

    /// What is wrong now, one line per listener; empty when all is well.
    pub fn problems(&self) -> Vec<String> {
        let now = Instant::now();
        lock(&self.listeners)
            .iter()
            .filter_map(|(name, condition)| match condition {
                Condition::Serving => None,
                Condition::AcceptFailing { at, error } => (now.duration_since(*at)
                    < 2 * BACKOFF_MAX)
                    .then(|| format!("{name}: cannot accept connections: {error}")),
                Condition::Down(why) => Some(format!("{name}: down: {why}")),
            })
            .collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The tables stay whole even if a holder panicked.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A bound socket and what it knows about its connections; shared by a
/// listener and its successors across reloads.
struct Socket {
    listener: TcpListener,
    address: SocketAddr,
    /// Shared with the connections' tasks, which must not keep the
    /// socket open once its listeners are gone.
    connections: Arc<Connections>,
    stats: Arc<ListenerStats>,
}

#[derive(Default)]
struct Connections {
    table: Mutex<ConnectionTable>,
    /// Signalled when a connection ends.
    freed: Notify,
}

#[derive(Default)]
struct ConnectionTable {
    next_id: u64,
    /// By age: the oldest first.
    open: BTreeMap<u64, Connection>,
}

struct Connection {
    busy: Arc<AtomicBool>,
    close: Arc<Notify>,
    task: Option<tokio::task::AbortHandle>,
}

impl Connections {
    fn count(&self) -> usize {
        lock(&self.table).open.len()
    }

    /// Closes the connection idle for longest; false when all are busy.
    fn evict_one(&self) -> bool {
        let table = lock(&self.table);
        match table
            .open
            .values()
            .find(|c| !c.busy.load(Ordering::Acquire))
        {
            Some(idle) => {
                // notify_one keeps the signal if the task is not waiting yet.
                idle.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn abort_all(&self) {
        for connection in lock(&self.table).open.values() {
            if let Some(task) = &connection.task {
                task.abort();
            }
        }
    }
}

/// Removes a connection from the table when its task ends, however it ends.
struct Registration {
    connections: Arc<Connections>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.connections.table).open.remove(&self.id);
        self.connections.freed.notify_waiters();
    }
}

/// A running listener.
pub struct Listener {
    socket: Arc<Socket>,
    pub address: SocketAddr,
    name: String,
    runtime: Handle,
    health: Arc<Health>,
    /// true: stop accepting and finish what is in progress.
    stop: watch::Sender<bool>,
    /// Responses of a retired listener close their connection.
    retired: Arc<AtomicBool>,
    accept_task: tokio::task::JoinHandle<()>,
}

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {message}")]
pub struct ListenError {
    pub address: String,
    pub message: String,
}

/// Everything a new listener needs but its socket.
pub struct Setup {
    pub name: String,
    pub service: Arc<dyn Serve>,
    pub limits: Limits,
    pub tls: Option<TlsAcceptor>,
    pub health: Arc<Health>,
}

impl Listener {
    /// Binds `address` and serves on it.
    pub fn start(address: &str, setup: Setup, runtime: &Handle) -> Result<Listener, ListenError> {
        let socket = bind(address, runtime).map_err(|e| ListenError {
            address: address.to_string(),
            message: e.to_string(),
        })?;
        Ok(Self::serve(socket, setup, runtime))
    }

    /// Serves on the socket of `previous`, which stops accepting: the port
    /// is never unbound, and nothing waiting on it is lost. `previous`
    /// finishes its connections' requests in progress under its own
    /// settings, telling their clients to reconnect.
    pub fn start_on(previous: Listener, setup: Setup) -> Listener {
        let socket = Arc::clone(&previous.socket);
        let runtime = previous.runtime.clone();
        let successor_name = setup.name.clone();
        previous.retire(&successor_name);
        Self::serve(socket, setup, &runtime)
    }

    fn serve(socket: Arc<Socket>, setup: Setup, runtime: &Handle) -> Listener {
        let (stop, stopped) = watch::channel(false);
        let retired = Arc::new(AtomicBool::new(false));
        setup.health.set(&setup.name, Condition::Serving);
        let accept_task = runtime.spawn(accept_loop(
            Arc::clone(&socket),
            Arc::new(setup.clone_shared()),
            stopped,
            Arc::clone(&retired),
        ));
        Listener {
            address: socket.address,
            socket,
            name: setup.name,
            runtime: runtime.clone(),
            health: setup.health,
            stop,
            retired,
            accept_task,
        }
    }

    pub fn stats(&self) -> Arc<ListenerStats> {
        Arc::clone(&self.socket.stats)
    }

    /// Stops accepting; its connections answer their next request with
    /// `Connection: close` and end. Returns at once.
    fn retire(self, successor_name: &str) {
        self.retired.store(true, Ordering::Release);
        // Only the accept loop ends: closing idle keep-alive connections
        // now would race clients sending on them. They end at the idle
        // timeout, or after their next answer.
        self.accept_task.abort();
        if successor_name != self.name {
            self.health.forget(&self.name);
        }
    }

    /// Stops accepting, closes the socket, and gives requests in progress
    /// [`STOP_GRACE`] to finish before their connections are closed (those
    /// of the listeners this one took the socket from too).
    pub fn stop(self) {
        self.retired.store(true, Ordering::Release);
        let _ = self.stop.send(true);
        self.accept_task.abort();
        self.health.forget(&self.name);
        let connections = &self.socket.connections;
        let deadline = Instant::now() + STOP_GRACE;
        while connections.count() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        connections.abort_all();
        // The socket closes with the last holder: this listener and its
        // accept task, which ends at its next poll, as do aborted ones.
        let deadline = Instant::now() + Duration::from_millis(500);
        while (connections.count() > 0 || !self.accept_task.is_finished())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Setup {
    fn clone_shared(&self) -> Shared {
        Shared {
            name: self.name.clone(),
            service: Arc::clone(&self.service),
            limits: self.limits,
            tls: self.tls.clone(),
            health: Arc::clone(&self.health),
        }
    }
}

struct Shared {
    name: String,
    service: Arc<dyn Serve>,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    health: Arc<Health>,
}

/// Binds with SO_REUSEADDR (a port whose last connections are in
/// TIME_WAIT is free to bind again) and a deep backlog.
fn bind(address: &str, runtime: &Handle) -> io::Result<Arc<Socket>> {
    let mut last_error = None;
    for candidate in address.to_socket_addrs()? {
        let attempt = (|| {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(candidate),
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )?;
            socket.set_reuse_address(true)?;
            socket.set_nonblocking(true)?;
            socket.bind(&candidate.into())?;
            socket.listen(BACKLOG)?;
            let std_listener: std::net::TcpListener = socket.into();
            let _entered = runtime.enter();
            TcpListener::from_std(std_listener)
        })();
        match attempt {
            Ok(listener) => {
                let address = listener.local_addr()?;
                return Ok(Arc::new(Socket {
                    listener,
                    address,
                    connections: Arc::default(),
                    stats: Arc::default(),
                }));
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

/// Errors that concern one connection, not the listening socket.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || matches!(error.raw_os_error(), Some(libc::EPROTO) | Some(libc::EPERM))
}

fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

async fn accept_loop(
    socket: Arc<Socket>,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
    retired: Arc<AtomicBool>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        if *stopped.borrow() {
            return;
        }
        // Room first: a full table closes its longest-idle connection, or
        // (all busy) waits for one to end; their requests are bounded.
        while socket.connections.count() >= shared.limits.max_connections.max(1) {
            if socket.connections.evict_one() {
                socket.stats.evicted.fetch_add(1, Ordering::Relaxed);
            }
            tokio::select! {
                _ = stopped.changed() => return,
                _ = socket.connections.freed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let accepted = tokio::select! {
            _ = stopped.changed() => return,
            accepted = socket.listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                backoff = BACKOFF_MIN;
                socket.stats.accepted.fetch_add(1, Ordering::Relaxed);
                shared.health.serving(&shared.name);
                spawn_connection(&socket, stream, &shared, stopped.clone(), &retired);
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                socket.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                shared.health.set(
                    &shared.name,
                    Condition::AcceptFailing {
                        at: Instant::now(),
                        error: e.to_string(),
                    },
                );
                // Out of descriptors: an idle connection gives one back.
                if out_of_descriptors(&e) && socket.connections.evict_one() {
                    socket.stats.evicted.fetch_add(1, Ordering::Relaxed);
                }
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

fn spawn_connection(
    socket: &Arc<Socket>,
    stream: TcpStream,
    shared: &Arc<Shared>,
    stopped: watch::Receiver<bool>,
    retired: &Arc<AtomicBool>,
) {
    let busy = Arc::new(AtomicBool::new(false));
    let close = Arc::new(Notify::new());
    let id = {
        let mut table = lock(&socket.connections.table);
        let id = table.next_id;
        table.next_id += 1;
        table.open.insert(
            id,
            Connection {
                busy: Arc::clone(&busy),
                close: Arc::clone(&close),
                task: None,
            },
        );
        id
    };
    let registration = Registration {
        connections: Arc::clone(&socket.connections),
        id,
    };
    let info = ConnectionInfo {
        peer: stream.peer_addr().ok(),
        tls: shared.tls.is_some(),
        client_certificate: false,
    };
    let connection = ConnectionTask {
        shared: Arc::clone(shared),
        info,
        busy,
        close,
        stopped,
        retired: Arc::clone(retired),
    };
    let task = tokio::spawn(async move {
        let _registration = registration;
        let _ = stream.set_nodelay(true);
        match connection.shared.tls.clone() {
            None => connection.run(stream).await,
            Some(acceptor) => {
                let handshake = tokio::time::timeout(
                    connection.shared.limits.header_timeout,
                    acceptor.accept(stream),
                );
                let tls = tokio::select! {
                    _ = connection.close.notified() => return,
                    done = handshake => done,
                };
                if let Ok(Ok(tls)) = tls {
                    let mut connection = connection;
                    connection.info.client_certificate = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .is_some_and(|chain| !chain.is_empty());
                    connection.run(tls).await;
                }
            }
        }
    });
    if let Some(entry) = lock(&socket.connections.table).open.get_mut(&id) {
        entry.task = Some(task.abort_handle());
    }
}

struct ConnectionTask {
    shared: Arc<Shared>,
    info: ConnectionInfo,
    busy: Arc<AtomicBool>,
    close: Arc<Notify>,
    stopped: watch::Receiver<bool>,
    retired: Arc<AtomicBool>,
}

impl ConnectionTask {
    async fn run<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limits = self.shared.limits;
        let info = self.info;
        let service = {
            let (shared, busy, retired) = (
                Arc::clone(&self.shared),
                Arc::clone(&self.busy),
                Arc::clone(&self.retired),
            );
            hyper::service::service_fn(move |mut request: Request<Incoming>| {
                busy.store(true, Ordering::Release);
                request.extensions_mut().insert(info);
                let answer = Arc::clone(&shared.service).serve(request, limits);
                let (busy, retired) = (Arc::clone(&busy), Arc::clone(&retired));
                async move {
                    let mut response = answer.await;
                    if retired.load(Ordering::Acquire) {
                        response
                            .headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    busy.store(false, Ordering::Release);
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(64 * 1024);
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        // A stop asks for a graceful end; a listener gone without one (a
        // retired one) leaves its connections to their timeouts.
        let mut watching = true;
        while !*self.stopped.borrow() {
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = self.close.notified() => return,
                changed = self.stopped.changed(), if watching => {
                    watching = changed.is_ok();
                }
            }
        }
        // Stopping: finish the request in progress, if any, then close.
        connection.as_mut().graceful_shutdown();
        tokio::select! {
            _ = connection.as_mut() => {}
            _ = self.close.notified() => {}
        }
    }
}
