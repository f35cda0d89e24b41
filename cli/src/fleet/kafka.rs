//! `peregrine fleet --kafka`: the other end of `kafka_output`. Reads every
//! partition of the topic in turn and gives each record to the same view
//! as the NATS reader. The view drops ids it has seen, so a record that
//! Kafka holds twice (see `outputs::kafka` for when) counts once, as a
//! duplicate. With `--kafka-offsets` it keeps how far it read each
//! partition, so a restarted `fleet` resumes there.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::BackoffConfig;

use super::{lock, FleetError, FleetView, Pace, RETRY};
use crate::args::FleetArgs;
use crate::outputs::kafka::{describe, sasl, tls_config, TlsFiles, ID_HEADER};

/// Bytes asked for by one fetch.
const FETCH_BYTES: i32 = 1 << 20;
/// How long one fetch waits on the broker for records to come.
const FETCH_WAIT_MS: i32 = 200;
/// How long a request may take before the broker counts as away (a
/// broker that keeps its log in SQLite takes seconds per fetch).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn consume(
    args: &FleetArgs,
    stop: &Arc<AtomicBool>,
    view: &Mutex<FleetView>,
    connected: &AtomicBool,
) -> Result<(), FleetError> {
    let failed = |message: String| FleetError::Kafka {
        brokers: args.kafka_brokers.join(", "),
        message,
    };
    let tls = match &args.tls_ca {
        Some(ca) => {
            let files = TlsFiles {
                ca: ca.clone(),
                client: args.tls_cert.clone().zip(args.tls_key.clone()),
            };
            Some(tls_config(&files).map_err(failed)?)
        }
        None => None,
    };
    let mechanism = args.sasl_mechanism.as_deref().unwrap_or("");
    let user = args.user.as_deref().unwrap_or("");
    let password = args.password.as_deref().unwrap_or("");
    let sasl = sasl(mechanism, user, password).map_err(failed)?;
    // `build` takes the builder: one per attempt.
    let builder = || {
        let mut builder = ClientBuilder::new(args.kafka_brokers.clone())
            .client_id("peregrine-fleet")
            // This reader retries itself, and says why it could not read.
            .backoff_config(BackoffConfig {
                deadline: Some(Duration::ZERO),
                ..BackoffConfig::default()
            });
        if let Some(tls) = &tls {
            builder = builder.tls_config(Arc::clone(tls));
        }
        if let Some(sasl) = &sasl {
            builder = builder.sasl_config(sasl.clone());
        }
        builder
    };
    // A served view outlives the cluster being away, at start too.
    let serving = args.listen.is_some();
    let mut waiting = false;
    let partitions = loop {
        match open(builder(), &args.topic).await {
            Ok(partitions) => {
                if waiting {
                    crate::log::message(&format!("fleet: reading topic {}", args.topic));
                }
                break Some(partitions);
            }
            Err(e) if serving => {
                if !waiting {
                    crate::log::message(&format!("fleet: {e}; trying again every {RETRY:?}"));
                    waiting = true;
                }
            }
            Err(e) => return Err(failed(e)),
        }
        let deadline = Instant::now() + RETRY;
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if stop.load(Ordering::Relaxed) {
            break None;
        }
    };
    let Some((_client, partitions)) = partitions else {
        return Ok(());
    };

    let file = args.kafka_offsets.as_deref();
    let mut offsets = file.map(load_offsets).unwrap_or_default();
    let mut pace = Pace::new(args);
    let mut saved = Instant::now();
    let mut away: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut heard = false;
        for (partition, reader) in &partitions {
            let offset = match offsets.get(partition) {
                Some(&offset) => offset,
                None => match start_of(reader).await {
                    Ok(start) => *offsets.entry(*partition).or_insert(start),
                    Err(e) => {
                        note_away(&mut away, connected, e);
                        continue;
                    }
                },
            };
            let fetch = reader.fetch_records(offset, 1..FETCH_BYTES, FETCH_WAIT_MS);
            match tokio::time::timeout(REQUEST_TIMEOUT, fetch).await {
                Ok(Ok((records, _))) => {
                    connected.store(true, Ordering::Relaxed);
                    if away.take().is_some() {
                        crate::log::message(&format!("fleet: reading topic {} again", args.topic));
                    }
                    for stored in records {
                        let record = stored.record;
                        let id = record
                            .headers
                            .get(ID_HEADER)
                            .and_then(|id| std::str::from_utf8(id).ok());
                        let payload = record.value.as_deref().unwrap_or_default();
                        lock(view).take(id, payload, SystemTime::now());
                        if args.alerts {
                            println!("{}", String::from_utf8_lossy(payload));
                        }
                        offsets.insert(*partition, stored.offset + 1);
                        heard = true;
                    }
                }
                // Retention removed what was not read yet: go on from
                // what is left.
                Ok(Err(KafkaError::ServerError {
                    protocol_error: ProtocolError::OffsetOutOfRange,
                    ..
                })) => {
                    offsets.remove(partition);
                }
                Ok(Err(e)) => note_away(&mut away, connected, describe(&e)),
                Err(_) => note_away(
                    &mut away,
                    connected,
                    format!("no answer in {REQUEST_TIMEOUT:?}"),
                ),
            }
        }
        if heard {
            pace.heard();
        }
        if let Some(file) = file.filter(|_| heard && saved.elapsed() >= Duration::from_secs(1)) {
            save_offsets(file, &offsets);
            saved = Instant::now();
        }
        if away.is_some() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if pace.tick(view) {
            break;
        }
    }
    if let Some(file) = file {
        save_offsets(file, &offsets);
    }
    pace.report(view);
    Ok(())
}

/// Connects and opens a reader on each partition of `topic`.
async fn open(
    builder: ClientBuilder,
    topic: &str,
) -> Result<(Client, Vec<(i32, PartitionClient)>), String> {
    let within = |step| tokio::time::timeout(REQUEST_TIMEOUT, step);
    let client = within(builder.build())
        .await
        .map_err(|_| format!("no answer in {REQUEST_TIMEOUT:?}"))?
        .map_err(|e| describe(&e))?;
    let topics = client.list_topics().await.map_err(|e| describe(&e))?;
    let partitions = topics
        .into_iter()
        .find(|t| t.name == topic)
        .map(|t| t.partitions)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| format!("topic {topic} does not exist"))?;
    let mut readers = Vec::new();
    for partition in partitions {
        let reader = client
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await
            .map_err(|e| format!("partition {partition} of {topic}: {}", describe(&e)))?;
        readers.push((partition, reader));
    }
    Ok((client, readers))
}

async fn start_of(reader: &PartitionClient) -> Result<i64, String> {
    match tokio::time::timeout(REQUEST_TIMEOUT, reader.get_offset(OffsetAt::Earliest)).await {
        Ok(Ok(offset)) => Ok(offset),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err(format!("no answer in {REQUEST_TIMEOUT:?}")),
    }
}

/// Says once that the cluster is away, and shows it in the served view.
fn note_away(away: &mut Option<String>, connected: &AtomicBool, message: String) {
    connected.store(false, Ordering::Relaxed);
    if away.is_none() {
        crate::log::message(&format!("fleet: {message}; trying again"));
        *away = Some(message);
    }
}

/// `partition offset` lines; a missing or unreadable file reads as none.
fn load_offsets(path: &Path) -> BTreeMap<i32, i64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (partition, offset) = line.split_once(' ')?;
            Some((partition.parse().ok()?, offset.trim().parse().ok()?))
        })
        .collect()
}

/// Replaced atomically; a failure is said, not fatal (the next run reads
/// some alerts again, and the view counts them once).
fn save_offsets(path: &Path, offsets: &BTreeMap<i32, i64>) {
    let text: String = offsets
        .iter()
        .map(|(partition, offset)| format!("{partition} {offset}\n"))
        .collect();
    let tmp = path.with_extension("tmp");
    if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)) {
        crate::log::message(&format!(
            "fleet: cannot keep the offsets in {}: {e}",
            path.display()
        ));
    }
}
