//! A Kafka broker on loopback for the `kafka_output` tests: tansu, a
//! broker speaking Kafka's protocol, installed from crates.io
//! (`cargo install tansu --features libsql`), keeping its log in an SQLite
//! file so that a killed broker restarts with what it had stored. The
//! topic is read back with a Kafka client of its own, not with Peregrine's
//! output, so a wrong count is the topic's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};
use rskafka::client::{ClientBuilder, Credentials, SaslConfig};
use rskafka::BackoffConfig;

use crate::nats::free_port;

/// Whether socat (Debian's package) can terminate TLS for a test.
pub fn socat_available() -> bool {
    Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The tansu binary: `PEREGRINE_TANSU`, else `tansu` on the PATH or in
/// cargo's bin folder; None (the caller skips) when there is none.
pub fn broker_binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("PEREGRINE_TANSU")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::var_os("PATH").into_iter().flat_map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("tansu"))
                .collect::<Vec<_>>()
        }))
        .chain(std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo/bin/tansu")));
    candidates.into_iter().find(|path| path.is_file())
}

/// One broker, its SQLite log and its output under `dir`; the port stays
/// the same across restarts, as a broker's address does.
pub struct Broker {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Server certificate and key (PEM files): clients reach the broker
    /// through TLS. tansu 0.6's command line cannot take both files (its
    /// `--cert` and `--key` exclude each other), so socat terminates TLS
    /// in front of it, on the port the broker advertises.
    pub tls: Option<(PathBuf, PathBuf)>,
    tls_port: u16,
    terminator: Option<Child>,
    /// Clients must authenticate (SASL SCRAM).
    pub authentication: bool,
}

/// How a test's own client reaches a broker that asks for TLS or SASL.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// PEM of the CA that signs the broker.
    pub ca: Option<String>,
    /// SCRAM-SHA-512 user and password.
    pub scram512: Option<(String, String)>,
}

impl Broker {
    pub fn new(binary: &Path, dir: &Path) -> Broker {
        Broker {
            binary: binary.to_path_buf(),
            dir: dir.to_path_buf(),
            port: free_port(),
            child: None,
            tls: None,
            tls_port: free_port(),
            terminator: None,
            authentication: false,
        }
    }

    /// Where clients connect: the TLS port when there is TLS.
    pub fn address(&self) -> String {
        match self.tls {
            Some(_) => format!("127.0.0.1:{}", self.tls_port),
            None => format!("127.0.0.1:{}", self.port),
        }
    }

    /// Starts it and waits (up to 20 s) until it takes connections.
    pub fn start(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://{}", self.address());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .expect("the broker's log opens");
        let mut command = Command::new(&self.binary);
        command
            .arg("broker")
            .args([
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            // tansu reads the SQLite path as relative to its folder.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir);
        if self.authentication {
            command.arg("--authentication");
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        if let Some((cert, key)) = &self.tls {
            let listen = format!(
                "OPENSSL-LISTEN:{},bind=127.0.0.1,reuseaddr,fork,verify=0,cert={},key={}",
                self.tls_port,
                cert.display(),
                key.display()
            );
            let terminator = Command::new("socat")
                .arg(listen)
                .arg(format!("TCP:127.0.0.1:{}", self.port))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("socat starts");
            self.terminator = Some(terminator);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = if self.tls.is_some() {
            self.tls_port
        } else {
            self.port
        };
        for port in [self.port, port] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "tansu did not listen within 20 s (see {})",
                    self.dir.join("tansu.log").display()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Adds a SCRAM-SHA-512 user, through the running broker (before it
    /// requires authentication).
    pub fn create_user(&self, name: &str, password: &str) {
        let status = Command::new(&self.binary)
            .args(["user", "create", "--mechanism", "scram512", "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args([name, password])
            .stdout(Stdio::null())
            .status()
            .expect("tansu user create runs");
        assert!(status.success(), "tansu user create {name}: {status}");
    }

    /// SIGKILL: whatever it was doing is cut off.
    pub fn kill(&mut self) {
        for mut child in [self.child.take(), self.terminator.take()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Peregrine config file for `node`: JSON alerts on the Kafka output
/// only, into `topic`, spooled in `dir/spool-<node>`; `extra` is more of
/// the `kafka_output` section (indented lines).
pub fn node_config(
    dir: &Path,
    broker: &Broker,
    node: &str,
    topic: &str,
    shutdown_ms: u64,
    extra: &str,
) -> PathBuf {
    let path = dir.join(format!("{node}-{topic}.yaml"));
    std::fs::write(
        &path,
        format!(
            "json_output: true\nstdout_output:\n  enabled: false\nkafka_output:\n  enabled: true\n  \
             brokers: [\"{}\"]\n  topic: {topic}\n  spool_dir: {}\n  ack_timeout_ms: 2000\n  \
             shutdown_timeout_ms: {shutdown_ms}\n{extra}",
            broker.address(),
            crate::nats::spool_dir(dir, node).display()
        ),
    )
    .expect("the node's config is written");
    path
}

/// What a topic holds: for every record, its `peregrine-id` header (empty
/// when it had none), its key and the `hostname` of the alert it carries.
#[derive(Debug, Default)]
pub struct TopicContents {
    pub records: Vec<(String, String, String)>,
    /// Per hostname, each record's delay from the alert's event time to
    /// its Kafka timestamp (when Peregrine produced it), in ms.
    pub delays_ms: std::collections::BTreeMap<String, Vec<f64>>,
}

impl TopicContents {
    pub fn per_node(&self) -> std::collections::BTreeMap<String, u64> {
        crate::nodes::per_node(self.records.iter().map(|(_, _, host)| host.as_str()))
    }

    /// Ids that appear more than once, and records without an id.
    pub fn repeated_or_missing_ids(&self) -> (usize, usize) {
        crate::nodes::repeated_or_missing(self.records.iter().map(|(id, _, _)| id.as_str()))
    }
}

/// Reads every partition of `topic` from its start to its end.
pub fn read_topic(broker: &Broker, topic: &str) -> Result<TopicContents, String> {
    read_topic_with(broker, topic, &Access::default())
}

/// [`read_topic`] through TLS and SASL.
pub fn read_topic_with(
    broker: &Broker,
    topic: &str,
    access: &Access,
) -> Result<TopicContents, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        // tansu reads its SQLite log at a few hundred records a second.
        let read = read_topic_async(broker.address(), topic, access);
        tokio::time::timeout(Duration::from_secs(900), read)
            .await
            .map_err(|_| format!("reading topic {topic} took over 900 s"))?
    })
}

async fn read_topic_async(
    address: String,
    topic: &str,
    access: &Access,
) -> Result<TopicContents, String> {
    // A broker that cannot be reached answers an error within seconds
    // instead of the client's endless retries.
    let mut builder = ClientBuilder::new(vec![address]).backoff_config(BackoffConfig {
        deadline: Some(Duration::from_secs(5)),
        ..BackoffConfig::default()
    });
    if let Some(ca) = &access.ca {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(ca.as_bytes()) {
            roots
                .add(cert.map_err(|e| format!("CA: {e}"))?)
                .map_err(|e| format!("CA: {e}"))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        builder = builder.tls_config(std::sync::Arc::new(config));
    }
    if let Some((user, password)) = &access.scram512 {
        builder = builder.sasl_config(SaslConfig::ScramSha512(Credentials::new(
            user.clone(),
            password.clone(),
        )));
    }
    let client = builder.build().await.map_err(|e| format!("connect: {e}"))?;
    let partitions = client
        .list_topics()
        .await
        .map_err(|e| format!("topics: {e}"))?
        .into_iter()
        .find(|t| t.name == topic)
        .ok_or_else(|| format!("no topic {topic}"))?
        .partitions;
    let mut contents = TopicContents::default();
    for partition in partitions {
        let reader = client
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await
            .map_err(|e| format!("partition {partition}: {e}"))?;
        let mut offset = reader
            .get_offset(OffsetAt::Earliest)
            .await
            .map_err(|e| format!("partition {partition} start: {e}"))?;
        let end = reader
            .get_offset(OffsetAt::Latest)
            .await
            .map_err(|e| format!("partition {partition} end: {e}"))?;
        while offset < end {
            let (records, _) = reader
                .fetch_records(offset, 1..4_000_000, 1_000)
                .await
                .map_err(|e| format!("partition {partition} at {offset}: {e}"))?;
            let Some(last) = records.last() else { break };
            offset = last.offset + 1;
            for stored in records {
                let record = stored.record;
                let text = |bytes: Option<&Vec<u8>>| {
                    bytes.map_or_else(String::new, |b| String::from_utf8_lossy(b).into_owned())
                };
                let alert = record
                    .value
                    .as_deref()
                    .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok());
                let field = |name: &str| {
                    alert
                        .as_ref()
                        .and_then(|a| a.get(name))
                        .and_then(|v| v.as_str())
                        .map(String::from)
                };
                let host = field("hostname").unwrap_or_default();
                let event_time =
                    field("time").and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok());
                if let Some(time) = event_time {
                    let delay = record.timestamp.signed_duration_since(time);
                    contents
                        .delays_ms
                        .entry(host.clone())
                        .or_default()
                        .push(delay.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
                }
                contents.records.push((
                    text(record.headers.get("peregrine-id")),
                    text(record.key.as_ref()),
                    host,
                ));
            }
        }
    }
    Ok(contents)
}
