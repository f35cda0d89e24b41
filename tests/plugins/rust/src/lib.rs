//! Falco plugins written against Falco's Rust SDK (`falco_plugin`), one
//! cdylib per file in `examples/`, built by Peregrine's tests and loaded by
//! the `peregrine` binary through the plugin C API:
//!
//! - `rsource`: a source of `rsource` events with its own fields;
//! - `rsyscall`: an extractor on syscall events;
//! - `rparse`: a parser of `rsource` events that keeps a count per word in
//!   a table and exposes it as a field (with `{"export": true}` it also
//!   registers the table with the host);
//! - `rcount`: reads `rparse`'s table through the host's table API;
//! - `rasync`: pushes async events into the `rsource` stream;
//! - `rsysasync`: pushes async events into the syscall stream;
//! - `rthreads`: reads and extends the host's thread table;
//! - `rlisten`: a capture listener with routines.
//!
//! This library holds what they share: the `rsource` event payload, the
//! undecoded syscall event, and the thread that pushes async events.

use std::io::Write;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use falco_event::events::{AnyEventPayload, RawEvent};
use falco_event::fields::{FromBytes, FromBytesError, ToBytes};
use falco_plugin::anyhow::{self, Error};
use falco_plugin::async_event::{AsyncHandler, BackgroundTask};
use falco_plugin::event::EventSource;

/// Any syscall event, undecoded: the SDK takes the sources a plugin
/// extracts from or parses from its event type.
pub struct SyscallEvent<'a>(pub RawEvent<'a>);

impl AnyEventPayload for SyscallEvent<'_> {
    const SOURCES: &'static [Option<&'static str>] = &[Some("syscall")];
    const EVENT_TYPES: &'static [u16] = &[];
}

impl<'a> From<&RawEvent<'a>> for SyscallEvent<'a> {
    fn from(raw: &RawEvent<'a>) -> Self {
        SyscallEvent(RawEvent {
            metadata: raw.metadata.clone(),
            len: raw.len,
            event_type: raw.event_type,
            nparams: raw.nparams,
            payload: raw.payload,
        })
    }
}

/// The thread of an async plugin: it emits events 1 to `count`, one every
/// `interval`, until the host stops the plugin's async events.
#[derive(Default)]
pub struct Ticker {
    task: Arc<BackgroundTask>,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

impl Ticker {
    /// Starts the thread; `emit` sends event `n` through the handler.
    pub fn start(
        &mut self,
        handler: AsyncHandler,
        count: u64,
        interval: Duration,
        emit: impl Fn(&AsyncHandler, u64) -> Result<(), Error> + Send + 'static,
    ) -> Result<(), Error> {
        if self.thread.is_some() {
            self.stop()?;
        }
        self.task.request_start()?;
        let task = Arc::clone(&self.task);
        self.thread = Some(std::thread::spawn(move || {
            for n in 1..=count {
                if !task.should_keep_running(interval)? {
                    return Ok(());
                }
                emit(&handler, n)?;
            }
            Ok(())
        }));
        Ok(())
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) -> Result<(), Error> {
        self.task.request_stop_and_notify()?;
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        match thread.join() {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("the async thread panicked")),
        }
    }
}

/// The event source `rsource` opens, and its plugin id.
pub const RSOURCE: &str = "rsource";
pub const RSOURCE_ID: u32 = 999_101;

/// The words `rsource` events carry, in turn.
pub const WORDS: [&str; 3] = ["alpha", "beta", "gamma"];

/// The payload of an `rsource` event: `"<n> <word>"` in ASCII.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a>(pub &'a [u8]);

impl Line<'_> {
    /// The event's number and word.
    pub fn parts(&self) -> Option<(u64, &str)> {
        let text = std::str::from_utf8(self.0).ok()?;
        let (n, word) = text.split_once(' ')?;
        Some((n.parse().ok()?, word))
    }
}

impl EventSource for Line<'_> {
    const SOURCE: Option<&'static str> = Some(RSOURCE);
}

impl<'a> FromBytes<'a> for Line<'a> {
    fn from_bytes(buf: &mut &'a [u8]) -> Result<Self, FromBytesError> {
        let all = *buf;
        *buf = &[];
        Ok(Line(all))
    }
}

impl ToBytes for Line<'_> {
    fn binary_size(&self) -> usize {
        self.0.len()
    }

    fn write<W: Write>(&self, mut writer: W) -> std::io::Result<()> {
        writer.write_all(self.0)
    }

    fn default_repr() -> impl ToBytes {
        Line(&[])
    }
}
