//! The half of a delivering output that does not depend on its transport:
//! `emit` appends the alert to the on-disk [`Spool`] under an id of its own
//! and returns; a publisher thread (NATS, Kafka) takes batches from the
//! [`Outbox`], sends them, and acknowledges what the far side has stored,
//! which only then leaves the spool. A stop waits a while for the spool to
//! drain and leaves the rest for the next start.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::spool::{Record, Spool};
use super::{Channel, OutputError};
use crate::alert::SharedAlert;

pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What the channel and its publisher share.
pub struct Outbox {
    /// The config section, for messages (`nats_output`).
    key: &'static str,
    spool: Mutex<Spool>,
    /// Signalled when records are pushed or acknowledged, and at close.
    wake: Condvar,
    closing: AtomicBool,
    /// Stored by the far side, and of those, already there (a resend).
    acked: AtomicU64,
    duplicates: AtomicU64,
}

impl Outbox {
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    pub fn log(&self, message: &str) {
        crate::log::message(&format!("{}: {message}", self.key));
    }

    /// Up to `max` records in spool order, each with the spool offset past
    /// it; blocks until there is one. None once the channel closes.
    pub fn next_batch(&self, max: usize) -> Option<Vec<(Record, u64)>> {
        let mut spool = lock(&self.spool);
        loop {
            if self.closing() {
                return None;
            }
            match spool.peek(max) {
                Ok(batch) if !batch.is_empty() => return Some(batch),
                Ok(_) => {}
                Err(e) => self.log(&e.to_string()),
            }
            spool = match self.wake.wait_timeout(spool, BACKOFF_MAX) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// `count` records, up to spool offset `through`, are stored on the
    /// far side; `duplicates` of them were there already.
    pub fn acknowledge(&self, count: usize, through: u64, duplicates: u64) {
        if count == 0 {
            return;
        }
        self.acked.fetch_add(count as u64, Ordering::Relaxed);
        self.duplicates.fetch_add(duplicates, Ordering::Relaxed);
        if let Err(e) = lock(&self.spool).ack(through) {
            self.log(&e.to_string());
        }
        self.wake.notify_all();
    }

    /// Returns once the channel is closing: a publisher races its slow
    /// steps against it, so that a stop does not wait for a broker.
    pub async fn closed(&self) {
        while !self.closing() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sleeps `backoff` (cut short by a close), then doubles it.
    pub async fn pause(&self, backoff: &mut Duration) {
        let until = Instant::now() + *backoff;
        while Instant::now() < until && !self.closing() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        *backoff = (*backoff * 2).min(BACKOFF_MAX);
    }
}

/// What a spooled channel is told by its output's config.
pub struct SpoolSettings {
    pub name: &'static str,
    pub key: &'static str,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    /// How long a stop waits for the spool to drain.
    pub shutdown_timeout: Duration,
    /// How long the publisher may wait for one acknowledgement.
    pub ack_timeout: Duration,
    pub hostname: String,
}

/// Where an alert goes within the transport: a NATS subject, a Kafka key.
pub type Router = Box<dyn Fn(&SharedAlert) -> String + Send>;

pub struct SpooledChannel {
    settings: SpoolSettings,
    outbox: Arc<Outbox>,
    publisher: Option<JoinHandle<()>>,
    route: Router,
    /// Ids are `hostname:instance:sequence`: unique across restarts without
    /// keeping a counter on disk.
    instance: String,
    sequence: u64,
}

impl SpooledChannel {
    /// Opens the spool and starts `publish` on a thread of its own (named
    /// `{name}-publisher`) with the outbox it drains.
    pub fn start<P>(
        settings: SpoolSettings,
        route: Router,
        publish: P,
    ) -> Result<SpooledChannel, OutputError>
    where
        P: FnOnce(Arc<Outbox>) + Send + 'static,
    {
        let other = |message: String| OutputError::Other {
            channel: settings.name,
            message,
        };
        let spool = Spool::open(&settings.spool_dir, settings.spool_max_bytes)
            .map_err(|e| other(e.to_string()))?;
        let outbox = Arc::new(Outbox {
            key: settings.key,
            spool: Mutex::new(spool),
            wake: Condvar::new(),
            closing: AtomicBool::new(false),
            acked: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
        });
        {
            let spool = lock(&outbox.spool);
            if !spool.is_empty() {
                outbox.log(&format!(
                    "{} bytes of alerts left in {} by an earlier run are sent first",
                    spool.pending_bytes(),
                    settings.spool_dir.display()
                ));
            }
        }
        let publisher = {
            let outbox = Arc::clone(&outbox);
            std::thread::Builder::new()
                .name(format!("{}-publisher", settings.name))
                .spawn(move || publish(outbox))
                .map_err(|e| other(format!("cannot start the publisher: {e}")))?
        };
        Ok(SpooledChannel {
            settings,
            outbox,
            publisher: Some(publisher),
            route,
            instance: instance_id(),
            sequence: 0,
        })
    }

    fn error(&self, message: String) -> OutputError {
        OutputError::Other {
            channel: self.settings.name,
            message,
        }
    }
}

impl Channel for SpooledChannel {
    fn name(&self) -> &'static str {
        self.settings.name
    }

    fn emit(&mut self, alert: &SharedAlert) -> Result<(), OutputError> {
        self.sequence += 1;
        let record = Record {
            id: format!(
                "{}:{}:{}",
                self.settings.hostname, self.instance, self.sequence
            ),
            route: (self.route)(alert),
            json: alert.json.clone(),
        };
        let pushed = lock(&self.outbox.spool).push(&record);
        match pushed {
            Ok(true) => {
                self.outbox.wake.notify_one();
                Ok(())
            }
            Ok(false) => Err(self.error(format!(
                "spool {} is full ({}.spool_max_mb): the far side has not acknowledged for too long; alert dropped",
                self.settings.spool_dir.display(),
                self.settings.key
            ))),
            Err(e) => Err(self.error(e.to_string())),
        }
    }

    /// `close` waits `shutdown_timeout` for the spool to drain, then for
    /// the publisher to finish the batch it awaits acknowledgements for.
    fn close_grace(&self) -> Duration {
        self.settings.shutdown_timeout + self.settings.ack_timeout * 2 + Duration::from_secs(1)
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        let synced = lock(&self.outbox.spool).sync();
        synced.map_err(|e| self.error(e.to_string()))
    }

    fn close(&mut self) -> Result<(), OutputError> {
        self.flush()?;
        let deadline = Instant::now() + self.settings.shutdown_timeout;
        {
            let mut spool = lock(&self.outbox.spool);
            while !spool.is_empty() && Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                spool = match self
                    .outbox
                    .wake
                    .wait_timeout(spool, left.min(BACKOFF_FIRST))
                {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                };
            }
            if !spool.is_empty() {
                self.outbox.log(&format!(
                    "{} bytes of alerts not acknowledged in {:?}: kept in {} for the next start",
                    spool.pending_bytes(),
                    self.settings.shutdown_timeout,
                    self.settings.spool_dir.display()
                ));
            }
        }
        self.outbox.closing.store(true, Ordering::Release);
        self.outbox.wake.notify_all();
        if let Some(publisher) = self.publisher.take() {
            let _ = publisher.join();
        }
        let acked = self.outbox.acked.load(Ordering::Relaxed);
        let duplicates = self.outbox.duplicates.load(Ordering::Relaxed);
        self.outbox.log(&format!(
            "{acked} alerts acknowledged ({duplicates} of them already there)"
        ));
        Ok(())
    }
}

impl Drop for SpooledChannel {
    fn drop(&mut self) {
        self.outbox.closing.store(true, Ordering::Release);
        self.outbox.wake.notify_all();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
