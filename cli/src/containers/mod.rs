//! Container metadata from the container runtimes: Docker and podman
//! (the Docker Engine API), containerd (its own API) and the Kubernetes
//! CRI (containerd's and CRI-O's), configured as Falco's container plugin
//! is (`plugins: [{name: container, init_config: {engines: ...}}]`).
//!
//! Nothing here runs on the event path. The state notes each container id
//! it has not seen before; the pipeline hands those ids to [`Link::ask`],
//! and a thread of its own ("container-meta", on a tokio runtime) asks the
//! runtimes, listens to their start and exit events, and sends back what
//! it learns. The pipeline takes the answers between two events
//! ([`Link::news`]), as container events through the state and the rules,
//! so a rule on `evt.type=container` fires once per container. A runtime
//! that is down or slow costs the event path nothing: its containers show
//! empty fields, and its failures are counted and logged by socket.

mod config;
mod containerd;
mod cri;
mod docker;
mod image;
mod stats;
mod users;

pub use config::{
    plugin_entry, selects_container, ContainerConfig, ContainerConfigError, EngineConfig,
    LegacyEngines,
};
pub use stats::ContainerStats;

use peregrine_engine::state::containers::ContainerInfo;
use peregrine_engine::state::Users;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Ids waiting to be asked about, at most; more are counted and dropped
/// (they are asked again when the container shows a new process).
const ASK_QUEUE: usize = 4096;

/// Answers waiting for the pipeline, at most.
const NEWS_QUEUE: usize = 4096;

/// How long one runtime may take to answer one lookup.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the runtimes said.
#[derive(Debug)]
pub enum News {
    /// A container's metadata, with a process that runs in it (its init
    /// when the runtime said it started; -1 when none is known), and the
    /// users of the container's own /etc when they could be read.
    Arrived(Box<ContainerInfo>, i64, Option<Users>),
    /// A container exited or was removed.
    Gone(String),
}

/// The runtimes of the config, each at the socket it answers on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Docker,
    Podman,
    Containerd,
    Cri,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Docker => "docker",
            EngineKind::Podman => "podman",
            EngineKind::Containerd => "containerd",
            EngineKind::Cri => "cri",
        }
    }
}

/// One client of one runtime socket.
enum Client {
    Docker(docker::DockerClient),
    Containerd(containerd::ContainerdClient),
    Cri(cri::CriClient),
}

impl Client {
    async fn lookup(&self, id: &str) -> Result<Option<(ContainerInfo, i64)>, String> {
        match self {
            Client::Docker(c) => c.lookup(id).await,
            Client::Containerd(c) => c.lookup(id).await,
            Client::Cri(c) => c.lookup(id).await,
        }
    }
}

/// The pipeline's end: where it asks and where the answers come.
pub struct Link {
    asks: tokio::sync::mpsc::Sender<(String, i64)>,
    news: crossbeam_channel::Receiver<News>,
    /// Set by [`NewsSender`] after each answer it sends.
    waiting: Arc<AtomicBool>,
    stats: Arc<ContainerStats>,
}

/// The metadata thread's end of the answers. A flag beside the channel
/// says answers may be waiting, so that the pipeline's look before every
/// event is one load: a receive on the empty channel took 3% of the
/// agent's instructions on an open flood in the guest's profile.
#[derive(Clone)]
pub(crate) struct NewsSender {
    tx: crossbeam_channel::Sender<News>,
    waiting: Arc<AtomicBool>,
}

impl NewsSender {
    /// Sends without waiting; false when the queue is full.
    pub(crate) fn send(&self, news: News) -> bool {
        let sent = self.tx.try_send(news).is_ok();
        if sent {
            // After the send: a reader that sees the flag finds the answer.
            self.waiting.store(true, Ordering::Release);
        }
        sent
    }
}

/// A linked pair of ends for answers, the flag shared.
fn news_channel() -> (
    NewsSender,
    crossbeam_channel::Receiver<News>,
    Arc<AtomicBool>,
) {
    let (tx, rx) = crossbeam_channel::bounded(NEWS_QUEUE);
    let waiting = Arc::new(AtomicBool::new(false));
    let sender = NewsSender {
        tx,
        waiting: Arc::clone(&waiting),
    };
    (sender, rx, waiting)
}

/// The next answer on `rx`, if one came; cheap while `waiting` is clear.
fn take_news(rx: &crossbeam_channel::Receiver<News>, waiting: &AtomicBool) -> Option<News> {
    take_news_racing(rx, waiting, || {})
}

/// [`take_news`], with `race` run where a sender's answer is the hardest
/// to catch: after an empty look, before the flag is cleared (tests send
/// one there).
#[inline(always)]
fn take_news_racing(
    rx: &crossbeam_channel::Receiver<News>,
    waiting: &AtomicBool,
    race: impl FnOnce(),
) -> Option<News> {
    if !waiting.load(Ordering::Relaxed) {
        return None;
    }
    if let Ok(news) = rx.try_recv() {
        return Some(news);
    }
    race();
    // Empty: clear the flag, then look once more. An answer sent before
    // the clear is found by that look; one sent after it sets the flag
    // again (its sender stores after sending). Either way none is left
    // behind a clear flag.
    waiting.swap(false, Ordering::AcqRel);
    let news = rx.try_recv().ok();
    if news.is_some() {
        // More may follow the one the second look found.
        waiting.store(true, Ordering::Relaxed);
    }
    news
}

impl Link {
    /// Asks about containers first seen now; never waits.
    pub fn ask(&self, wanted: Vec<(String, i64)>) {
        for item in wanted {
            if self.asks.try_send(item).is_err() {
                self.stats.count_queue_full();
            }
        }
    }

    /// The next answer, if one came.
    pub fn news(&self) -> Option<News> {
        take_news(&self.news, &self.waiting)
    }

    /// Waits up to `timeout` for an answer (tests, and the end of a run).
    pub fn wait_news(&self, timeout: Duration) -> Option<News> {
        self.news.recv_timeout(timeout).ok()
    }

    pub fn stats(&self) -> &Arc<ContainerStats> {
        &self.stats
    }
}

/// Starts the metadata thread for the runtimes `config` enables. None when
/// it enables none (or the thread cannot start, which is logged).
pub fn start(config: &ContainerConfig) -> Option<Link> {
    let sockets = config.sockets();
    if sockets.is_empty() {
        return None;
    }
    let (ask_tx, ask_rx) = tokio::sync::mpsc::channel(ASK_QUEUE);
    let (news_tx, news_rx, waiting) = news_channel();
    let stats = Arc::new(ContainerStats::new(&sockets));
    let worker_stats = Arc::clone(&stats);
    let label_max_len = config.label_max_len;
    let spawned = std::thread::Builder::new()
        .name("container-meta".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    crate::log::message(&format!(
                        "container metadata: cannot start its runtime: {e}"
                    ));
                    return;
                }
            };
            runtime.block_on(serve(sockets, label_max_len, ask_rx, news_tx, worker_stats));
        });
    if let Err(e) = spawned {
        crate::log::message(&format!("container metadata: cannot start its thread: {e}"));
        return None;
    }
    Some(Link {
        asks: ask_tx,
        news: news_rx,
        waiting,
        stats,
    })
}

/// Connects a client per socket; a socket that does not exist yet is
/// tried again at each lookup (a runtime may start after Peregrine).
async fn connect(
    kind: EngineKind,
    socket: &std::path::Path,
    label_max_len: usize,
) -> Result<Client, String> {
    if !socket.exists() {
        return Err("no such socket".into());
    }
    Ok(match kind {
        EngineKind::Docker | EngineKind::Podman => {
            Client::Docker(docker::DockerClient::connect(kind, socket, label_max_len)?)
        }
        EngineKind::Containerd => {
            Client::Containerd(containerd::ContainerdClient::connect(socket, label_max_len).await?)
        }
        EngineKind::Cri => Client::Cri(cri::CriClient::connect(socket, label_max_len).await?),
    })
}

struct Engine {
    kind: EngineKind,
    socket: PathBuf,
    client: Option<Client>,
    /// The last failure was logged; a success logs the recovery.
    failing: bool,
}

impl Engine {
    fn label(&self) -> String {
        format!("{} at {}", self.kind.name(), self.socket.display())
    }

    /// A failure, logged once until the engine answers again.
    fn failed(&mut self, index: usize, stats: &ContainerStats, message: &str) {
        stats.count(index, stats::Outcome::Failed);
        // A broken connection is made again at the next lookup.
        self.client = None;
        if !self.failing {
            self.failing = true;
            crate::log::message(&format!(
                "container metadata: {}: {message} (its containers show no metadata until it answers)",
                self.label()
            ));
        }
    }

    fn answered(&mut self) {
        if self.failing {
            self.failing = false;
            crate::log::message(&format!(
                "container metadata: {} answers again",
                self.label()
            ));
        }
    }
}

/// The metadata thread: answers asks, and follows the runtimes' events.
async fn serve(
    sockets: Vec<(EngineKind, PathBuf)>,
    label_max_len: usize,
    mut asks: tokio::sync::mpsc::Receiver<(String, i64)>,
    news: NewsSender,
    stats: Arc<ContainerStats>,
) {
    let mut engines: Vec<Engine> = sockets
        .iter()
        .map(|(kind, socket)| Engine {
            kind: *kind,
            socket: socket.clone(),
            client: None,
            failing: false,
        })
        .collect();
    // Start and exit events of the runtimes that publish them.
    for (index, (kind, socket)) in sockets.iter().enumerate() {
        if matches!(kind, EngineKind::Docker | EngineKind::Podman) {
            tokio::spawn(docker::follow_events(
                *kind,
                socket.clone(),
                label_max_len,
                news.clone(),
                Arc::clone(&stats),
                index,
            ));
        }
    }
    let mut retries: Vec<(String, i64, u32)> = Vec::new();
    let mut retry_tick = tokio::time::interval(Duration::from_secs(2));
    // Ticks only while there is something to retry: an idle agent's
    // threads should sleep.
    retry_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ask = asks.recv() => {
                let Some((id, tid)) = ask else { return };
                if let Some(unanswered) = lookup_all(&mut engines, &id, tid, label_max_len, &news, &stats).await {
                    if unanswered {
                        retries.push((id, tid, 0));
                    }
                }
            }
            _ = retry_tick.tick(), if !retries.is_empty() => {
                // Ids a failing runtime could not answer: a few more tries.
                for (id, tid, tries) in std::mem::take(&mut retries) {
                    match lookup_all(&mut engines, &id, tid, label_max_len, &news, &stats).await {
                        Some(true) if tries < 5 => retries.push((id, tid, tries + 1)),
                        _ => {}
                    }
                }
            }
        }
    }
}

/// The news of a container's metadata, with its users read now.
fn arrived(info: ContainerInfo, tid: i64) -> News {
    let users = users::of_process(tid);
    News::Arrived(Box::new(info), tid, users)
}

/// Asks each engine about `id` until one knows it. Some(true) when none
/// knew it and one failed (worth trying again); Some(false) when none
/// knew it; None when found.
async fn lookup_all(
    engines: &mut [Engine],
    id: &str,
    tid: i64,
    label_max_len: usize,
    news: &NewsSender,
    stats: &ContainerStats,
) -> Option<bool> {
    let mut any_failed = false;
    for (index, engine) in engines.iter_mut().enumerate() {
        if engine.client.is_none() {
            match tokio::time::timeout(
                LOOKUP_TIMEOUT,
                connect(engine.kind, &engine.socket, label_max_len),
            )
            .await
            {
                Ok(Ok(client)) => engine.client = Some(client),
                Ok(Err(e)) => {
                    // A socket that is not there is a runtime not installed:
                    // nothing to count or log at each lookup.
                    if e != "no such socket" {
                        engine.failed(index, stats, &e);
                        any_failed = true;
                    }
                    continue;
                }
                Err(_) => {
                    engine.failed(index, stats, "no answer to connect within 5 s");
                    any_failed = true;
                    continue;
                }
            }
        }
        let Some(client) = engine.client.as_ref() else {
            continue;
        };
        match tokio::time::timeout(LOOKUP_TIMEOUT, client.lookup(id)).await {
            Ok(Ok(Some((info, init_pid)))) => {
                engine.answered();
                stats.count(index, stats::Outcome::Found);
                let tid = if tid > 0 { tid } else { init_pid };
                if !news.send(arrived(info, tid)) {
                    stats.count_queue_full();
                }
                crate::wakeup::ring();
                return None;
            }
            Ok(Ok(None)) => {
                engine.answered();
                stats.count(index, stats::Outcome::NotFound);
            }
            Ok(Err(e)) => {
                engine.failed(index, stats, &e);
                any_failed = true;
            }
            Err(_) => {
                engine.failed(index, stats, "no answer within 5 s");
                any_failed = true;
            }
        }
    }
    Some(any_failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gone(news: Option<News>) -> Option<String> {
        match news? {
            News::Gone(id) => Some(id),
            News::Arrived(..) => panic!("only Gone is sent here"),
        }
    }

    #[test]
    fn an_answer_sent_after_an_empty_look_is_found() {
        let (tx, rx, waiting) = news_channel();
        assert!(take_news(&rx, &waiting).is_none());
        assert!(tx.send(News::Gone("a".into())));
        assert!(tx.send(News::Gone("b".into())));
        assert_eq!(gone(take_news(&rx, &waiting)).as_deref(), Some("a"));
        assert_eq!(gone(take_news(&rx, &waiting)).as_deref(), Some("b"));
        assert!(take_news(&rx, &waiting).is_none());
        assert!(!waiting.load(Ordering::Relaxed), "the flag stays set");
        assert!(tx.send(News::Gone("c".into())));
        assert_eq!(gone(take_news(&rx, &waiting)).as_deref(), Some("c"));
    }

    /// An answer sent between the reader's empty look and its clearing
    /// of the flag is taken by that call or the next, not stranded
    /// behind a clear flag until some later answer comes.
    #[test]
    fn an_answer_sent_while_the_flag_is_cleared_is_not_stranded() {
        let (tx, rx, waiting) = news_channel();
        assert!(tx.send(News::Gone("a".into())));
        assert_eq!(gone(take_news(&rx, &waiting)).as_deref(), Some("a"));
        let raced = take_news_racing(&rx, &waiting, || {
            assert!(tx.send(News::Gone("b".into())));
        });
        let found = gone(raced).or_else(|| gone(take_news(&rx, &waiting)));
        assert_eq!(found.as_deref(), Some("b"));
        assert!(take_news(&rx, &waiting).is_none());
    }

    /// A sender on another thread: every answer taken, in order.
    #[test]
    fn answers_from_another_thread_all_arrive_in_order() {
        const N: usize = 20_000;
        let (tx, rx, waiting) = news_channel();
        let sender = std::thread::spawn(move || {
            for i in 0..N {
                while !tx.send(News::Gone(i.to_string())) {
                    std::thread::yield_now();
                }
            }
        });
        let mut next = 0;
        loop {
            // Asked before the look: once the sender is done, everything
            // it sent (the flag included) is visible to the look, and a
            // look that finds nothing means nothing is left.
            let done = sender.is_finished();
            match gone(take_news(&rx, &waiting)) {
                Some(id) => {
                    assert_eq!(id, next.to_string());
                    next += 1;
                }
                None if done => break,
                None => std::hint::spin_loop(),
            }
        }
        sender.join().unwrap();
        assert_eq!(next, N, "answers left in the channel: {}", rx.len());
    }
}
