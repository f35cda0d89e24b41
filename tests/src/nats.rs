//! A three-node nats-server cluster with JetStream on loopback, and the
//! `nats_output` settings of a Peregrine node publishing to it: shared by
//! the fleet tests and the fleet bench. One server alone serves the tests
//! about the fleet view, where outages are not the point.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Whether Debian's nats-server can be run here.
pub fn server_available() -> bool {
    Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Three servers routed to each other; each keeps its JetStream data under
/// `dir`, so a killed server restarts with what it had.
pub struct Cluster {
    dir: PathBuf,
    client_ports: Vec<u16>,
    cluster_ports: Vec<u16>,
    nodes: Vec<Option<Child>>,
}

impl Cluster {
    pub const SIZE: usize = 3;

    pub fn new(dir: &Path) -> Cluster {
        Cluster {
            dir: dir.to_path_buf(),
            client_ports: (0..Self::SIZE).map(|_| free_port()).collect(),
            cluster_ports: (0..Self::SIZE).map(|_| free_port()).collect(),
            nodes: (0..Self::SIZE).map(|_| None).collect(),
        }
    }

    pub fn urls(&self) -> Vec<String> {
        self.client_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect()
    }

    pub fn start(&mut self, i: usize) {
        let routes: Vec<String> = self
            .cluster_ports
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, p)| format!("nats://127.0.0.1:{p}"))
            .collect();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p"])
            .arg(self.client_ports[i].to_string())
            .args(["-js", "-sd"])
            .arg(self.dir.join(format!("n{i}")))
            // Its log stays in the test's folder, for a failure to read.
            .arg("-l")
            .arg(self.dir.join(format!("nats-n{i}.log")))
            .args(["-n", &format!("n{i}"), "--cluster_name", "peregrine-test"])
            .arg("--cluster")
            .arg(format!("nats://127.0.0.1:{}", self.cluster_ports[i]))
            .arg("--routes")
            .arg(routes.join(","))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.nodes[i] = Some(child);
    }

    pub fn start_all(&mut self) {
        (0..Self::SIZE).for_each(|i| self.start(i));
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn kill_all(&mut self) {
        (0..Self::SIZE).for_each(|i| self.kill(i));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// One nats-server with JetStream on loopback, its data and log under
/// `dir`; stopped when dropped.
pub struct Server {
    port: u16,
    child: Child,
}

impl Server {
    /// Starts it and waits (up to 10 s) until it takes connections.
    pub fn start(dir: &Path) -> Server {
        let port = free_port();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args(["-js", "-sd"])
            .arg(dir.join("nats-data"))
            .arg("-l")
            .arg(dir.join("nats.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        let server = Server { port, child };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not listen within 10 s (see {})",
                dir.join("nats.log").display()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Peregrine config file for `node` publishing to `cluster`: JSON alerts
/// on the NATS output only, into `stream` (replicated on the three
/// servers) under `<prefix>.<hostname>.<priority>`, spooled in
/// `dir/spool-<node>`.
pub fn node_config(
    dir: &Path,
    cluster: &Cluster,
    node: &str,
    stream: &str,
    prefix: &str,
    shutdown_ms: u64,
) -> PathBuf {
    node_config_on(
        dir,
        &cluster.urls(),
        Cluster::SIZE,
        node,
        stream,
        prefix,
        shutdown_ms,
    )
}

/// [`node_config`] for any servers, with `replicas` copies of the stream.
pub fn node_config_on(
    dir: &Path,
    urls: &[String],
    replicas: usize,
    node: &str,
    stream: &str,
    prefix: &str,
    shutdown_ms: u64,
) -> PathBuf {
    let servers: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    let path = dir.join(format!("{node}-{stream}.yaml"));
    std::fs::write(
        &path,
        format!(
            "json_output: true\nstdout_output:\n  enabled: false\nnats_output:\n  enabled: true\n  servers: [{}]\n  \
             stream: {stream}\n  stream_replicas: {replicas}\n  subject: \"{prefix}.{{hostname}}.{{priority}}\"\n  \
             spool_dir: {}\n  ack_timeout_ms: 2000\n  shutdown_timeout_ms: {shutdown_ms}\n",
            servers.join(", "),
            spool_dir(dir, node).display()
        ),
    )
    .expect("the node's config is written");
    path
}

pub fn spool_dir(dir: &Path, node: &str) -> PathBuf {
    dir.join(format!("spool-{node}"))
}

/// Bytes of alerts in a node's spool not yet acknowledged by the stream.
pub fn spool_pending(dir: &Path, node: &str) -> u64 {
    let len = std::fs::metadata(spool_dir(dir, node).join("alerts"))
        .map(|m| m.len())
        .unwrap_or(0);
    let acked = std::fs::read_to_string(spool_dir(dir, node).join("acked"))
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0);
    len.saturating_sub(acked)
}

/// Whether `stream` exists on the cluster (false while it cannot answer).
pub fn stream_exists(cluster: &Cluster, stream: &str) -> bool {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return false;
    };
    runtime.block_on(async {
        let servers: Vec<async_nats::ServerAddr> = cluster
            .urls()
            .iter()
            .filter_map(|u| u.parse().ok())
            .collect();
        let connect = async_nats::ConnectOptions::new()
            .connection_timeout(std::time::Duration::from_secs(2))
            .connect(servers);
        let Ok(Ok(client)) = tokio::time::timeout(std::time::Duration::from_secs(3), connect).await
        else {
            return false;
        };
        let mut context = async_nats::jetstream::new(client);
        context.set_timeout(std::time::Duration::from_secs(2));
        context.get_stream(stream).await.is_ok()
    })
}

/// What a stream holds, read with the NATS client itself rather than
/// through `peregrine fleet`, so that a wrong count is the stream's and not
/// the reader's.
#[derive(Debug, Default)]
pub struct StreamContents {
    /// The stream's own message count.
    pub stored: u64,
    /// Every message read: its `Nats-Msg-Id` (empty when it had none)
    /// and the `hostname` of the alert it carries.
    pub messages: Vec<(String, String)>,
}

impl StreamContents {
    /// Messages per hostname.
    pub fn per_node(&self) -> std::collections::BTreeMap<String, u64> {
        crate::nodes::per_node(self.messages.iter().map(|(_, host)| host.as_str()))
    }

    /// Ids that appear more than once, and messages without an id.
    pub fn repeated_or_missing_ids(&self) -> (usize, usize) {
        crate::nodes::repeated_or_missing(self.messages.iter().map(|(id, _)| id.as_str()))
    }
}

/// Reads every message of `stream` through an ephemeral consumer.
pub fn read_stream(cluster: &Cluster, stream: &str) -> Result<StreamContents, String> {
    read_stream_at(cluster.urls(), stream)
}

/// [`read_stream`] from any servers.
pub fn read_stream_at(urls: Vec<String>, stream: &str) -> Result<StreamContents, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(read_stream_async(urls, stream))
}

async fn read_stream_async(urls: Vec<String>, name: &str) -> Result<StreamContents, String> {
    use async_nats::jetstream::{self, consumer};
    use tokio_stream::StreamExt;
    let servers = urls
        .iter()
        .map(|u| u.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let client = async_nats::connect(servers)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let context = jetstream::new(client);
    let mut stream = context
        .get_stream(name)
        .await
        .map_err(|e| format!("stream {name}: {e}"))?;
    let stored = stream
        .info()
        .await
        .map_err(|e| format!("stream {name} info: {e}"))?
        .state
        .messages;
    let reader: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("consumer on {name}: {e}"))?;
    let mut contents = StreamContents {
        stored,
        messages: Vec::new(),
    };
    let mut messages = reader
        .messages()
        .await
        .map_err(|e| format!("consumer on {name}: {e}"))?;
    while (contents.messages.len() as u64) < stored {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), messages.next())
            .await
            .map_err(|_| {
                format!(
                    "stream {name}: {} of {stored} messages read, then nothing for 10 s",
                    contents.messages.len()
                )
            })?;
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(e)) => return Err(format!("stream {name}: {e}")),
            None => break,
        };
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let alert: serde_json::Value =
            serde_json::from_slice(&message.payload).unwrap_or(serde_json::Value::Null);
        let host = alert["hostname"].as_str().unwrap_or("").to_string();
        contents.messages.push((id, host));
    }
    Ok(contents)
}
