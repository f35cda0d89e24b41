//! A three-node nats-server cluster with JetStream on loopback, and the
//! `nats_output` settings of a Peregrine node publishing to it: shared by
//! the fleet test and the fleet bench.

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
    let servers: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let path = dir.join(format!("{node}-{stream}.yaml"));
    std::fs::write(
        &path,
        format!(
            "json_output: true\nstdout_output:\n  enabled: false\nnats_output:\n  enabled: true\n  servers: [{}]\n  \
             stream: {stream}\n  stream_replicas: 3\n  subject: \"{prefix}.{{hostname}}.{{priority}}\"\n  \
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
    let spool = spool_dir(dir, node);
    let len = std::fs::metadata(spool.join("alerts"))
        .map(|m| m.len())
        .unwrap_or(0);
    let acked = std::fs::read_to_string(spool.join("acked"))
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0);
    len.saturating_sub(acked)
}
