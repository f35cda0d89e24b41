//! `kafka_output`: alerts onto a Kafka topic, none lost, none twice.
//!
//! The spooled channel (see [`super::spooled`]) keeps each alert on disk
//! until the topic has stored it, as for NATS. Kafka brokers have no
//! deduplication by message id, so the publisher keeps its own:
//!
//! - every record carries its id in a `peregrine-id` header and the node's
//!   hostname as its key, so one node's alerts land in one partition, in
//!   order (the partition is Kafka's default partitioner's: murmur2 of the
//!   key), and other consumers see the same placement;
//! - one batch is in flight at a time, produced with `acks=all`, and the
//!   client's own retries are off (a resent produce request would append
//!   the batch again);
//! - the spool folder keeps a mark: the partition offset past the last
//!   batch known to be stored (first written before anything is sent);
//! - when a send's outcome is unknown (a timeout, a broken connection, and
//!   at every start, since a stop or a crash may come between the send and
//!   the spool's acknowledgement), the publisher reads the partition from
//!   the mark to its high watermark before sending again, and takes out of
//!   the spool the records already there. A batch is appended whole or not
//!   at all and only one is unacknowledged, so what landed is a prefix of
//!   what the spool holds.
//!
//! Limits, from Kafka itself: a batch still being replicated when the check
//! reads the partition (leader alive, followers behind) is not yet visible
//! and is sent again; a broker that throttles this client (client quotas)
//! makes the client resend a produce it had taken. A consumer that must be
//! exact drops the ids it has seen.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rskafka::record::Record as KafkaRecord;
use rskafka::{BackoffConfig, BackoffError, ConnectionError};
use tokio_rustls::rustls;

use super::spool::Record;
use super::spooled::{Outbox, SpoolSettings, SpooledChannel, BACKOFF_FIRST};
use super::OutputError;
use crate::alert::SharedAlert;
use crate::config::KafkaOutput;

const NAME: &str = "kafka";
const KEY: &str = "kafka_output";
/// Records in one produce request.
const WINDOW: usize = 256;
/// The header that carries a record's id.
pub const ID_HEADER: &str = "peregrine-id";
/// The mark's file in the spool folder.
const MARK_FILE: &str = "kafka-mark";
/// Bytes asked for by one fetch of the check.
const FETCH_BYTES: i32 = 4 << 20;
/// How long a produce or a fetch of the check may take. The client asks
/// the broker to answer a produce within 30 s; giving up sooner would
/// leave a batch the broker may still append after the check has looked,
/// and a slow broker would see every check cut short and begun again.
const BROKER_TIMEOUT: Duration = Duration::from_secs(35);

/// What the Kafka output needs, from `kafka_output` and the hostname.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// `host:port` of the bootstrap brokers.
    pub brokers: Vec<String>,
    pub topic: String,
    /// Creates the topic when it does not exist.
    pub create_topic: bool,
    pub topic_partitions: i32,
    pub topic_replicas: i16,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub ack_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub sasl: Option<SaslConfig>,
    pub tls: Option<TlsFiles>,
    pub hostname: String,
}

/// PEM files for TLS: the CA that signs the brokers, and this client's
/// certificate and key when the brokers ask for one.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub client: Option<(PathBuf, PathBuf)>,
}

impl KafkaOptions {
    /// Reads the section; the config loader has checked its values.
    pub fn from_config(config: &KafkaOutput, hostname: &str) -> KafkaOptions {
        let sasl = sasl(&config.sasl_mechanism, &config.user, &config.password)
            .ok()
            .flatten();
        let path = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
        let tls = path(&config.tls_ca).map(|ca| TlsFiles {
            ca,
            client: path(&config.tls_cert).zip(path(&config.tls_key)),
        });
        KafkaOptions {
            brokers: config.brokers.clone(),
            topic: config.topic.clone(),
            create_topic: config.create_topic,
            topic_partitions: config.topic_partitions.clamp(1, i32::MAX as u32) as i32,
            topic_replicas: config.topic_replicas.clamp(1, i16::MAX as u16) as i16,
            spool_dir: config.spool_dir.clone(),
            spool_max_bytes: config.spool_max_mb.saturating_mul(1 << 20),
            ack_timeout: Duration::from_millis(config.ack_timeout_ms.max(1)),
            shutdown_timeout: Duration::from_millis(config.shutdown_timeout_ms),
            sasl,
            tls,
            hostname: hostname.to_string(),
        }
    }
}

/// The SASL settings for a mechanism's name (any case; empty for none).
pub fn sasl(mechanism: &str, user: &str, password: &str) -> Result<Option<SaslConfig>, String> {
    let credentials = || Credentials::new(user.to_string(), password.to_string());
    match mechanism.to_ascii_uppercase().as_str() {
        "" => Ok(None),
        "PLAIN" => Ok(Some(SaslConfig::Plain(credentials()))),
        "SCRAM-SHA-256" => Ok(Some(SaslConfig::ScramSha256(credentials()))),
        "SCRAM-SHA-512" => Ok(Some(SaslConfig::ScramSha512(credentials()))),
        other => Err(format!(
            "SASL mechanism '{other}': PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
        )),
    }
}

/// Starts the channel: its spool, and the publisher on a thread of its own.
pub fn channel(options: KafkaOptions) -> Result<SpooledChannel, OutputError> {
    let other = |message: String| OutputError::Other {
        channel: NAME,
        message,
    };
    if options.brokers.is_empty() {
        return Err(other("kafka_output.brokers names no broker".into()));
    }
    let tls = match &options.tls {
        Some(files) => Some(tls_config(files).map_err(other)?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| other(format!("cannot start the Kafka runtime: {e}")))?;
    let settings = SpoolSettings {
        name: NAME,
        key: KEY,
        spool_dir: options.spool_dir.clone(),
        spool_max_bytes: options.spool_max_bytes,
        shutdown_timeout: options.shutdown_timeout,
        ack_timeout: options.ack_timeout,
        hostname: options.hostname.clone(),
    };
    let hostname = options.hostname.clone();
    let route = Box::new(move |_: &SharedAlert| hostname.clone());
    SpooledChannel::start(settings, route, move |outbox| {
        runtime.block_on(Publisher::new(outbox, options, tls).run())
    })
}

/// A rustls client config from PEM files, with ring as the provider (the
/// one the rest of the binary uses).
pub fn tls_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |path: &Path| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    let bad = |path: &Path, what: String| format!("{}: {what}", path.display());
    let certificates = |path: &Path| {
        let pem = read(path)?;
        let list = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(path, format!("unreadable PEM block: {e}")))?;
        if list.is_empty() {
            return Err(bad(path, "no CERTIFICATE block".into()));
        }
        Ok(list)
    };
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates(&files.ca)? {
        roots
            .add(certificate)
            .map_err(|e| bad(&files.ca, format!("unusable CA certificate: {e}")))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_root_certificates(roots);
    let config = match &files.client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certificates(cert)?;
            let key = PrivateKeyDer::from_pem_slice(&read(key)?)
                .map_err(|e| bad(key, format!("no usable private key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad(cert, format!("the key and certificate are not usable: {e}")))?
        }
    };
    Ok(Arc::new(config))
}

/// Where this node's records go, and the offset past the last batch known
/// to be stored there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mark {
    topic: String,
    partition: i32,
    offset: i64,
}

impl Mark {
    fn load(dir: &Path) -> Option<Mark> {
        let text = std::fs::read_to_string(dir.join(MARK_FILE)).ok()?;
        let mut words = text.split_whitespace();
        let (topic, partition, offset) = (words.next()?, words.next()?, words.next()?);
        Some(Mark {
            topic: topic.to_string(),
            partition: partition.parse().ok()?,
            offset: offset.parse().ok()?,
        })
    }

    /// Replaced atomically, like the spool's acknowledged offset.
    fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{MARK_FILE}.tmp"));
        std::fs::write(
            &tmp,
            format!("{} {} {}\n", self.topic, self.partition, self.offset),
        )?;
        std::fs::rename(&tmp, dir.join(MARK_FILE))
    }
}

/// A connection to the cluster and to this node's partition.
struct Session {
    _client: Client,
    partition: PartitionClient,
}

struct Publisher {
    outbox: Arc<Outbox>,
    options: KafkaOptions,
    tls: Option<Arc<rustls::ClientConfig>>,
    mark: Option<Mark>,
    /// Whether the partition must be read before the next send.
    uncertain: bool,
    /// Ids of this node's records that the last check found stored, while
    /// the spool's next records are among them.
    stored: HashSet<String>,
    /// How far a check that failed midway had read: the next one goes on
    /// from there with what it found.
    scanned_to: Option<i64>,
    backoff: Duration,
    /// The last failure logged, until a batch goes through.
    failing: Option<String>,
}

/// Why a step failed, and whether the partition must be checked after it.
struct Failure {
    message: String,
    outcome_unknown: bool,
}

impl Publisher {
    fn new(
        outbox: Arc<Outbox>,
        options: KafkaOptions,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Publisher {
        let mark = Mark::load(&options.spool_dir);
        Publisher {
            outbox,
            options,
            tls,
            mark,
            // The last run may have stopped between a send and its
            // acknowledgement.
            uncertain: true,
            stored: HashSet::new(),
            scanned_to: None,
            backoff: BACKOFF_FIRST,
            failing: None,
        }
    }

    async fn run(mut self) {
        let mut session: Option<Session> = None;
        while let Some(batch) = self.outbox.next_batch(WINDOW) {
            if session.is_none() {
                match self.connect().await {
                    Ok(s) => session = Some(s),
                    Err(message) => {
                        self.failed(format!("{message}; alerts stay in the spool"));
                        self.outbox.pause(&mut self.backoff).await;
                        continue;
                    }
                }
            }
            let Some(current) = session.as_ref() else {
                continue;
            };
            match self.deliver(current, &batch).await {
                Ok(()) => {
                    self.backoff = BACKOFF_FIRST;
                    if self.failing.take().is_some() {
                        self.outbox.log("delivering again");
                    }
                }
                Err(failure) => {
                    self.uncertain |= failure.outcome_unknown;
                    self.failed(format!("{}; retrying", failure.message));
                    // A fresh connection finds the partition's leader anew.
                    session = None;
                    self.outbox.pause(&mut self.backoff).await;
                }
            }
        }
    }

    /// Logs a failure unless it is the one logged last: a broker that is
    /// down for an hour is said once, not at every retry.
    fn failed(&mut self, message: String) {
        if self.failing.as_ref() != Some(&message) {
            self.outbox.log(&message);
            self.failing = Some(message);
        }
    }

    /// The step's own result, or a message when it took longer than the
    /// acknowledgement timeout.
    async fn within<T>(
        &self,
        what: &str,
        step: impl std::future::Future<Output = Result<T, KafkaError>>,
    ) -> Result<Result<T, KafkaError>, String> {
        tokio::time::timeout(self.options.ack_timeout, step)
            .await
            .map_err(|_| {
                format!(
                    "{what}: no answer in {:?} (kafka_output.ack_timeout_ms)",
                    self.options.ack_timeout
                )
            })
    }

    /// [`Self::within`] for a produce or a fetch: the broker's time, cut
    /// short by a stop (the next start checks what landed).
    async fn broker_step<T>(
        outbox: &Outbox,
        what: &str,
        step: impl std::future::Future<Output = Result<T, KafkaError>>,
    ) -> Result<Result<T, KafkaError>, String> {
        tokio::select! {
            answer = tokio::time::timeout(BROKER_TIMEOUT, step) => {
                answer.map_err(|_| format!("{what}: no answer in {BROKER_TIMEOUT:?}"))
            }
            () = outbox.closed() => Err(format!("{what}: stopped before the broker answered")),
        }
    }

    /// [`Self::within`], with the step's error as a message too.
    async fn timed<T>(
        &self,
        what: &str,
        step: impl std::future::Future<Output = Result<T, KafkaError>>,
    ) -> Result<T, String> {
        self.within(what, step)
            .await?
            .map_err(|e| format!("{what}: {}", describe(&e)))
    }

    /// Connects, creates the topic if asked to, and opens this node's
    /// partition; the mark is set before anything is sent there.
    async fn connect(&mut self) -> Result<Session, String> {
        let mut builder = ClientBuilder::new(self.options.brokers.clone())
            .client_id(format!("peregrine@{}", self.options.hostname))
            // The publisher retries itself, after checking what landed.
            .backoff_config(BackoffConfig {
                deadline: Some(Duration::ZERO),
                ..BackoffConfig::default()
            });
        if let Some(tls) = &self.tls {
            builder = builder.tls_config(Arc::clone(tls));
        }
        if let Some(sasl) = &self.options.sasl {
            builder = builder.sasl_config(sasl.clone());
        }
        let client = self.timed("cannot connect", builder.build()).await?;
        let topic = self.options.topic.clone();
        let mut partitions = self.partition_count(&client).await?;
        if partitions.is_none() && self.options.create_topic {
            let controller = client
                .controller_client()
                .map_err(|e| format!("topic {topic}: {e}"))?;
            let timeout_ms = self.options.ack_timeout.as_millis().min(i32::MAX as u128) as i32;
            let created = controller.create_topic(
                topic.clone(),
                self.options.topic_partitions,
                self.options.topic_replicas,
                timeout_ms,
            );
            let what = format!("creating topic {topic}");
            match self.within(&what, created).await? {
                Ok(()) => {}
                // Another node created it first.
                Err(KafkaError::ServerError {
                    protocol_error: ProtocolError::TopicAlreadyExists,
                    ..
                }) => {}
                Err(e) => return Err(format!("{what}: {}", describe(&e))),
            }
            partitions = self.partition_count(&client).await?;
        }
        let Some(count) = partitions else {
            return Err(format!(
                "topic {topic} does not exist (kafka_output.create_topic is off)"
            ));
        };
        let partition = partition_for(self.options.hostname.as_bytes(), count);
        let partition_client = self
            .timed(
                &format!("partition {partition} of {topic}"),
                client.partition_client(topic.clone(), partition, UnknownTopicHandling::Error),
            )
            .await?;
        let session = Session {
            _client: client,
            partition: partition_client,
        };
        let placed = self
            .mark
            .as_ref()
            .is_some_and(|m| m.topic == topic && m.partition == partition);
        if !placed {
            // Nothing of this spool can be in this partition yet.
            let end = self
                .timed(
                    "reading the partition's end",
                    session.partition.get_offset(OffsetAt::Latest),
                )
                .await?;
            self.set_mark(Mark {
                topic,
                partition,
                offset: end,
            })?;
        }
        Ok(session)
    }

    async fn partition_count(&self, client: &Client) -> Result<Option<i32>, String> {
        let topics = self.timed("listing topics", client.list_topics()).await?;
        Ok(topics
            .into_iter()
            .find(|t| t.name == self.options.topic)
            .map(|t| t.partitions.len() as i32)
            .filter(|&n| n > 0))
    }

    fn set_mark(&mut self, mark: Mark) -> Result<(), String> {
        mark.save(&self.options.spool_dir).map_err(|e| {
            format!(
                "cannot keep the mark in {}: {e}",
                self.options.spool_dir.display()
            )
        })?;
        self.mark = Some(mark);
        Ok(())
    }

    /// Sends one batch (after the check when the last outcome is unknown)
    /// and acknowledges what the partition holds.
    async fn deliver(&mut self, session: &Session, batch: &[(Record, u64)]) -> Result<(), Failure> {
        let mut batch = batch;
        if self.uncertain {
            self.check(session).await.map_err(|message| Failure {
                message,
                outcome_unknown: true,
            })?;
            self.uncertain = false;
        }
        if !self.stored.is_empty() {
            let landed = batch
                .iter()
                .take_while(|(r, _)| self.stored.remove(&r.id))
                .count();
            if landed > 0 {
                self.outbox.log(&format!(
                    "{landed} alerts sent before their acknowledgement were already stored; not sent again"
                ));
                self.outbox
                    .acknowledge(landed, batch[landed - 1].1, landed as u64);
                batch = &batch[landed..];
            }
            if batch.is_empty() {
                return Ok(());
            }
            // The spool's next record was not stored: neither was any after it.
            self.stored.clear();
        }
        let records = batch
            .iter()
            .map(|(record, _)| KafkaRecord {
                key: Some(record.route.clone().into_bytes()),
                value: Some(record.json.clone().into_bytes()),
                headers: BTreeMap::from([(ID_HEADER.to_string(), record.id.clone().into_bytes())]),
                timestamp: chrono::Utc::now(),
            })
            .collect();
        let produced = session
            .partition
            .produce(records, Compression::NoCompression);
        let offsets = match Self::broker_step(&self.outbox, "not stored", produced).await {
            Ok(Ok(offsets)) => Ok(offsets),
            Ok(Err(e)) => Err(format!("not stored: {}", describe(&e))),
            Err(message) => Err(message),
        }
        .map_err(|message| Failure {
            message,
            outcome_unknown: true,
        })?;
        // The spool first: a crash before the mark moves leaves a mark
        // behind, which costs a longer check, never a resend.
        let (last, through) = (offsets.last().copied(), batch[batch.len() - 1].1);
        self.outbox.acknowledge(batch.len(), through, 0);
        if let (Some(last), Some(mark)) = (last, self.mark.clone()) {
            self.set_mark(Mark {
                offset: last + 1,
                ..mark
            })
            .map_err(|message| Failure {
                message,
                outcome_unknown: false,
            })?;
        }
        Ok(())
    }

    /// Reads this node's partition from the mark to its high watermark
    /// and keeps the ids of this node's records there in `stored`; the
    /// mark moves to the high watermark.
    async fn check(&mut self, session: &Session) -> Result<(), String> {
        let Some(mark) = self.mark.clone() else {
            return Ok(());
        };
        let mut offset = match self.scanned_to {
            Some(offset) => offset,
            None => {
                self.stored.clear();
                mark.offset
            }
        };
        let key = self.options.hostname.as_bytes();
        loop {
            let what = "checking what the partition holds";
            let fetch = session.partition.fetch_records(offset, 1..FETCH_BYTES, 0);
            let fetched = Self::broker_step(&self.outbox, what, fetch).await?;
            let (records, high_watermark) = match fetched {
                Ok(answer) => answer,
                // Retention took records from the mark on (none of this
                // spool's can be older than what is left), or the log is
                // shorter than the mark (a topic made anew).
                Err(KafkaError::ServerError {
                    protocol_error: ProtocolError::OffsetOutOfRange,
                    ..
                }) => {
                    let start = self
                        .timed(what, session.partition.get_offset(OffsetAt::Earliest))
                        .await?;
                    let end = self
                        .timed(what, session.partition.get_offset(OffsetAt::Latest))
                        .await?;
                    let clamped = offset.clamp(start, end.max(start));
                    if clamped == offset {
                        return Err(format!("{what}: offset {offset} out of range"));
                    }
                    offset = clamped;
                    continue;
                }
                Err(e) => return Err(format!("{what}: {}", describe(&e))),
            };
            for stored in &records {
                let record = &stored.record;
                if record.key.as_deref() != Some(key) {
                    continue;
                }
                let id = record
                    .headers
                    .get(ID_HEADER)
                    .and_then(|id| std::str::from_utf8(id).ok());
                if let Some(id) = id {
                    self.stored.insert(id.to_string());
                }
            }
            let next = records.last().map_or(offset, |r| r.offset + 1);
            if next >= high_watermark || records.is_empty() {
                self.scanned_to = None;
                let end = high_watermark.max(offset);
                self.set_mark(Mark {
                    offset: end,
                    ..mark
                })?;
                break;
            }
            offset = next;
            self.scanned_to = Some(offset);
        }
        Ok(())
    }
}

/// The error itself: the client wraps what failed in "all retries
/// failed", though its retries are off here.
pub fn describe(error: &KafkaError) -> String {
    match error {
        KafkaError::RetryFailed(BackoffError::DeadlineExceded { source, .. })
        | KafkaError::Connection(ConnectionError::RetryFailed(BackoffError::DeadlineExceded {
            source,
            ..
        })) => source.to_string(),
        other => other.to_string(),
    }
}

/// Kafka's default partitioner: the positive murmur2 hash of the key,
/// modulo the partition count.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) % partitions.max(1) as u32) as i32
}

/// MurmurHash2 (32 bits) with the seed Kafka's partitioner uses.
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        if tail.len() == 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_is_the_java_clients_hash() {
        // The Java client's murmur2 on these keys, as signed 32-bit ints.
        for (key, hash) in [
            ("21", -973932308i32),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            ("abc", 479470107),
        ] {
            assert_eq!(murmur2(key.as_bytes()) as i32, hash, "{key}");
        }
        assert_eq!(partition_for(b"abc", 1), 0);
        assert_eq!(partition_for(b"abc", 7), 479470107 % 7);
    }

    #[test]
    fn the_mark_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Mark::load(dir.path()), None);
        let mark = Mark {
            topic: "alerts".into(),
            partition: 3,
            offset: 1234,
        };
        mark.save(dir.path()).unwrap();
        assert_eq!(Mark::load(dir.path()), Some(mark));
        std::fs::write(dir.path().join(MARK_FILE), "alerts x\n").unwrap();
        assert_eq!(Mark::load(dir.path()), None);
    }
}
