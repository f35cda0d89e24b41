//! A capture listening plugin: on `capture_open` it subscribes two
//! routines, one that counts to five and ends itself, one that runs until
//! `capture_close` unsubscribes it. A field on syscall events says how many
//! times the capture was opened, so a rule shows the notice came before
//! the first event. At close, and again when the plugin is destroyed, it
//! writes what it saw to the file its init config names, so a test can
//! check that a routine that ended is not called again and that none runs
//! after it was unsubscribed.

use std::ffi::CStr;
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use falco_event::events::{AnyEventPayload, RawEvent};
use falco_plugin::anyhow::Error;
use falco_plugin::base::{Json, Plugin};
use falco_plugin::extract::{field, ExtractFieldInfo, ExtractPlugin, ExtractRequest};
use falco_plugin::listen::{CaptureListenInput, CaptureListenPlugin, Routine};
use falco_plugin::tables::TablesInput;
use falco_plugin::{capture_listen_plugin, extract_plugin, plugin};

/// Any syscall event; the field does not read it.
struct SyscallEvent;

impl AnyEventPayload for SyscallEvent {
    const SOURCES: &'static [Option<&'static str>] = &[Some("syscall")];
    const EVENT_TYPES: &'static [u16] = &[];
}

impl From<&RawEvent<'_>> for SyscallEvent {
    fn from(_raw: &RawEvent<'_>) -> Self {
        SyscallEvent
    }
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Config {
    /// Where to write what the plugin saw.
    report: String,
}

struct RListen {
    report: String,
    opened: u64,
    closed: u64,
    counted: Arc<AtomicU64>,
    forever: Arc<AtomicU64>,
    routines: Vec<Routine>,
    text: String,
}

impl Plugin for RListen {
    const NAME: &'static CStr = c"rlisten";
    const PLUGIN_VERSION: &'static CStr = c"0.1.0";
    const DESCRIPTION: &'static CStr =
        c"Rust SDK capture listener with routines, for Peregrine's tests";
    const CONTACT: &'static CStr = c"peregrine tests";
    type ConfigType = Json<Config>;

    fn new(_input: Option<&TablesInput>, Json(config): Self::ConfigType) -> Result<Self, Error> {
        Ok(RListen {
            report: config.report,
            opened: 0,
            closed: 0,
            counted: Arc::default(),
            forever: Arc::default(),
            routines: Vec::new(),
            text: String::new(),
        })
    }
}

/// Waits up to ten seconds for `done`.
fn wait_for(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl CaptureListenPlugin for RListen {
    fn capture_open(&mut self, input: &CaptureListenInput) -> Result<(), Error> {
        self.opened += 1;
        let counted = Arc::clone(&self.counted);
        self.routines.push(input.thread_pool.subscribe(move || {
            if counted.fetch_add(1, Ordering::SeqCst) + 1 < 5 {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        })?);
        let forever = Arc::clone(&self.forever);
        self.routines.push(input.thread_pool.subscribe(move || {
            forever.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
            ControlFlow::Continue(())
        })?);
        Ok(())
    }

    fn capture_close(&mut self, input: &CaptureListenInput) -> Result<(), Error> {
        self.closed += 1;
        // A replay can end before the routines had a turn.
        wait_for(|| self.counted.load(Ordering::SeqCst) >= 5);
        wait_for(|| self.forever.load(Ordering::SeqCst) > 0);
        std::thread::sleep(Duration::from_millis(50));
        for routine in self.routines.drain(..) {
            input.thread_pool.unsubscribe(&routine)?;
        }
        let _ = writeln!(
            self.text,
            "opened={} closed={} counted={} forever_at_close={}",
            self.opened,
            self.closed,
            self.counted.load(Ordering::SeqCst),
            self.forever.load(Ordering::SeqCst)
        );
        std::fs::write(&self.report, &self.text)?;
        Ok(())
    }
}

impl Drop for RListen {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_millis(50));
        let _ = writeln!(
            self.text,
            "forever_at_destroy={}",
            self.forever.load(Ordering::SeqCst)
        );
        let _ = std::fs::write(&self.report, &self.text);
    }
}

impl RListen {
    fn extract_opened(&mut self, _req: ExtractRequest<Self>) -> Result<u64, Error> {
        Ok(self.opened)
    }
}

impl ExtractPlugin for RListen {
    type Event<'a> = SyscallEvent;
    type ExtractContext = ();
    const EXTRACT_FIELDS: &'static [ExtractFieldInfo<Self>] =
        &[field("rlisten.opened", &Self::extract_opened)
            .with_description("how many times the capture was opened")];
}

plugin!(RListen);
capture_listen_plugin!(RListen);
extract_plugin!(RListen);
