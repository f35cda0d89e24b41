//! Capture on alert (Falco's `capture:`): an alert opens a `.scap` file
//! that receives the following events until a deadline (the rule's
//! `capture_duration` or `capture.default_duration`, pushed later by each
//! further alert) or a size cap, whichever comes first.
//!
//! Past Falco, the file starts with the events of the last
//! `capture.pre_alert_duration` milliseconds before the alert, kept in a
//! bounded window of copies, so that the capture shows how the process got
//! to the alert and not only what it did next.
//!
//! A file that cannot be created or written is reported and given up on;
//! the events and alerts go on.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use peregrine_engine::event::EventView;
use peregrine_engine::output::Alert;
use peregrine_engine::scap::snapshot::{machine_info, proc_entries};
use peregrine_engine::scap::{GroupEntry, MachineInfo, UserEntry, Writer};
use peregrine_engine::state::State;

use crate::alert::Priority;
use crate::config::capture::{Capture as Settings, CaptureMode};
use crate::outputs::Dispatcher;

/// Falco's rule name for the message sent when a capture stops at
/// `max_file_size_mb`.
pub const SIZE_LIMIT_RULE: &str = "Falco internal: capture size limit reached";

/// Bytes of a record's header in the current layout.
const RECORD_HEADER_LEN: usize = 26;

/// Counts the bytes handed to the file, for the size cap.
struct Counted<W: Write> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type FileWriter = Writer<Counted<BufWriter<File>>>;

/// One event of the pre-alert window: its CPU and its record in the
/// current layout.
struct Kept {
    ts: u64,
    cpu: u16,
    record: Vec<u8>,
}

/// The recent events of one source, oldest first, bounded by age and by
/// bytes. Records of events that leave are reused for new ones, so a busy
/// source does not allocate per event.
struct PreAlertWindow {
    span_ns: u64,
    max_bytes: usize,
    events: VecDeque<Kept>,
    bytes: usize,
}

impl PreAlertWindow {
    fn new(span_ms: u32, max_mb: u64) -> Self {
        PreAlertWindow {
            span_ns: u64::from(span_ms) * 1_000_000,
            max_bytes: usize::try_from(max_mb << 20).unwrap_or(usize::MAX),
            events: VecDeque::new(),
            bytes: 0,
        }
    }

    fn enabled(&self) -> bool {
        self.span_ns > 0 && self.max_bytes > 0
    }

    fn push(&mut self, event: &EventView<'_>) {
        let (lens, data, _) = event.body();
        let len = RECORD_HEADER_LEN + lens.len() + data.len();
        if len > self.max_bytes {
            return;
        }
        let oldest_kept = event.ts.saturating_sub(self.span_ns);
        let mut spare = None;
        while let Some(front) = self.events.front() {
            if front.ts >= oldest_kept && self.bytes + len <= self.max_bytes {
                break;
            }
            spare = Some(self.pop_record());
        }
        let mut record = spare.unwrap_or_default();
        record.clear();
        record.extend_from_slice(&event.ts.to_le_bytes());
        record.extend_from_slice(&event.tid.to_le_bytes());
        record.extend_from_slice(&(len as u32).to_le_bytes());
        record.extend_from_slice(&event.event_type.to_le_bytes());
        record.extend_from_slice(&event.nparams.to_le_bytes());
        record.extend_from_slice(lens);
        record.extend_from_slice(data);
        self.bytes += record.len();
        self.events.push_back(Kept {
            ts: event.ts,
            cpu: event.cpu,
            record,
        });
    }

    fn pop_record(&mut self) -> Vec<u8> {
        match self.events.pop_front() {
            Some(kept) => {
                self.bytes -= kept.record.len();
                kept.record
            }
            None => Vec::new(),
        }
    }

    /// Keeps at most `budget` bytes, the newest.
    fn trim_to(&mut self, budget: usize) {
        while self.bytes > budget {
            self.pop_record();
        }
    }

    fn clear(&mut self) {
        self.events.clear();
        self.bytes = 0;
    }
}

/// The capture being written.
struct Active {
    writer: FileWriter,
    path: PathBuf,
    deadline_ts: u64,
}

/// Capture on alert for one source of syscall events.
pub struct AlertCapture {
    settings: Settings,
    hostname: String,
    window: PreAlertWindow,
    active: Option<Active>,
    /// Alerts of the current event asked for a capture.
    requested: bool,
    /// The latest deadline the alerts of the current event ask for.
    /// Every alert pushes a running capture's deadline (Falco's "the
    /// longest deadline wins"); with no capture running, only alerts that
    /// capture count. Falco also keeps the deadlines of alerts that did
    /// not capture, so that one of them can stretch a later, unrelated
    /// capture by its full default duration; Peregrine does not.
    event_deadline_ts: u64,
    /// The user and group lists and the machine written at the start of
    /// each file; a replay gives its capture's, a live source reads the
    /// host's on first use.
    tables: Option<(Vec<UserEntry>, Vec<GroupEntry>, MachineInfo)>,
    failures: u64,
    /// Whether any loaded rule can start a capture; when none can (mode
    /// `rules` and no rule with `capture: true`), the pre-alert window
    /// keeps nothing and costs nothing.
    armed: bool,
}

impl AlertCapture {
    /// None when capture is disabled.
    pub fn new(settings: &Settings, hostname: &str) -> Option<AlertCapture> {
        if !settings.enabled {
            return None;
        }
        crate::log::message(&format!(
            "Capture is enabled in mode '{}'. Capturing events to {}",
            settings.mode.as_str(),
            settings.path_prefix
        ));
        Some(AlertCapture {
            window: PreAlertWindow::new(settings.pre_alert_duration, settings.pre_alert_max_mb),
            settings: settings.clone(),
            hostname: hostname.to_string(),
            active: None,
            requested: false,
            event_deadline_ts: 0,
            tables: None,
            failures: 0,
            armed: true,
        })
    }

    /// Says whether any enabled rule has `capture: true` (asked again at
    /// each reload).
    pub fn set_rules_capture(&mut self, any_rule_captures: bool) {
        self.armed = any_rule_captures || self.settings.mode == CaptureMode::AllRules;
        if !self.armed {
            self.window.clear();
        }
    }

    /// The settings this capture runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The user list, group list and machine of the events' system (a
    /// replayed capture's).
    pub fn set_tables(
        &mut self,
        users: Vec<UserEntry>,
        groups: Vec<GroupEntry>,
        machine: MachineInfo,
    ) {
        self.tables = Some((users, groups, machine));
    }

    /// The tables set by [`AlertCapture::set_tables`] or read on first use.
    pub fn take_tables(&mut self) -> Option<(Vec<UserEntry>, Vec<GroupEntry>, MachineInfo)> {
        self.tables.take()
    }

    /// An alert of the current event: whether it asks for a capture, and
    /// how long after `ts` it wants the capture to last.
    pub fn on_alert(&mut self, ts: u64, rule_capture: bool, rule_duration_ms: u32) {
        if self.settings.mode == CaptureMode::AllRules || rule_capture {
            self.requested = true;
        }
        let duration_ms = if rule_duration_ms > 0 {
            rule_duration_ms
        } else {
            self.settings.default_duration
        };
        let deadline = ts.saturating_add(u64::from(duration_ms) * 1_000_000);
        self.event_deadline_ts = self.event_deadline_ts.max(deadline);
    }

    /// After the rules saw `event` (number `number` in the stream): starts
    /// a capture when an alert asked for one, writes the event to the
    /// running capture or keeps it in the pre-alert window, and stops the
    /// capture at its deadline or size cap.
    pub fn after_event(
        &mut self,
        event: &EventView<'_>,
        number: u64,
        state: &State,
        dispatcher: &Dispatcher,
    ) {
        let deadline = std::mem::take(&mut self.event_deadline_ts);
        if std::mem::take(&mut self.requested) && self.active.is_none() {
            self.start(event, number, state, deadline);
        }
        let Some(active) = self.active.as_mut() else {
            if self.armed && self.window.enabled() {
                self.window.push(event);
            }
            return;
        };
        active.deadline_ts = active.deadline_ts.max(deadline);
        if let Err(e) = active.writer.write_event(event) {
            let message = format!("writing {}: {e}; this capture stops", active.path.display());
            self.active = None;
            self.fail(&message);
            return;
        }
        let written = active.writer.get_ref().bytes;
        let cap = self.settings.max_file_size_mb.saturating_mul(1 << 20);
        if event.ts >= active.deadline_ts {
            self.stop();
        } else if cap > 0 && written >= cap {
            self.stop();
            dispatcher.send(Alert {
                time_ns: now_ns(),
                rule: SIZE_LIMIT_RULE.to_string(),
                priority: Priority::Informational,
                source: "internal".into(),
                tags: Vec::new(),
                hostname: self.hostname.clone(),
                output: format!(
                    "{SIZE_LIMIT_RULE}. Configured limit: {} MB.",
                    self.settings.max_file_size_mb
                ),
                output_fields: vec![
                    (
                        "max_file_size_mb".into(),
                        Some(self.settings.max_file_size_mb.to_string()),
                    ),
                    ("written_bytes".into(), Some(written.to_string())),
                ],
            });
        }
    }

    fn start(&mut self, event: &EventView<'_>, number: u64, state: &State, deadline_ts: u64) {
        let path = file_path(&self.settings.path_prefix, event.ts, number);
        let tables = self.tables.get_or_insert_with(|| {
            let (users, groups) = crate::sources::users::host_users();
            let machine = machine_info(&crate::host::path("/proc"), &self.hostname);
            (users, groups, machine)
        });
        let cap = self.settings.max_file_size_mb.saturating_mul(1 << 20);
        if cap > 0 {
            // The window may take half the file: the alert's event and what
            // follows it must fit.
            self.window
                .trim_to(usize::try_from(cap / 2).unwrap_or(usize::MAX));
        }
        let opened = open(&path, tables, state).and_then(|mut writer| {
            for kept in &self.window.events {
                let mut past = EventView::parse(&kept.record)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                past.cpu = kept.cpu;
                writer.write_event(&past)?;
            }
            Ok(writer)
        });
        self.window.clear();
        match opened {
            Ok(writer) => {
                crate::log::message(&format!(
                    "capture on alert: writing events to {}",
                    path.display()
                ));
                self.active = Some(Active {
                    writer,
                    path,
                    deadline_ts,
                });
            }
            Err(e) => {
                self.fail(&format!(
                    "cannot write {}: {e}; no capture for this alert",
                    path.display()
                ));
            }
        }
    }

    /// Closes the running capture, if any.
    pub fn stop(&mut self) {
        let Some(active) = self.active.take() else {
            return;
        };
        let events = active.writer.events_written();
        match active.writer.finish().and_then(|mut counted| {
            counted.inner.flush()?;
            Ok(counted.bytes)
        }) {
            Ok(bytes) => crate::log::message(&format!(
                "capture on alert: {} closed, {events} events, {bytes} bytes",
                active.path.display()
            )),
            Err(e) => self.fail(&format!("writing {}: {e}", active.path.display())),
        }
    }

    /// Says why a capture failed: the first time, then at each power of two,
    /// so that a full disk does not flood the log at every alert.
    fn fail(&mut self, message: &str) {
        self.failures += 1;
        if self.failures.is_power_of_two() {
            crate::log::message(&format!(
                "capture on alert: {message} ({} failures so far)",
                self.failures
            ));
        }
    }
}

impl Drop for AlertCapture {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Falco's file name: the prefix, then the event's time and number, each
/// zero-padded to 20 digits so that names sort in time.
pub fn file_path(prefix: &str, ts: u64, number: u64) -> PathBuf {
    PathBuf::from(format!("{prefix}_{ts:020}_{number:020}.scap"))
}

fn open(
    path: &Path,
    (users, groups, machine): &(Vec<UserEntry>, Vec<GroupEntry>, MachineInfo),
    state: &State,
) -> io::Result<FileWriter> {
    let file = super::create_private(path)?;
    let counted = Counted {
        inner: BufWriter::with_capacity(64 << 10, file),
        bytes: 0,
    };
    let mut writer = Writer::new(counted, machine)?;
    writer.write_users(users, groups)?;
    writer.write_processes(&proc_entries(state))?;
    Ok(writer)
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of the current layout with no parameters.
    fn record(ts: u64) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&ts.to_le_bytes());
        r.extend_from_slice(&7u64.to_le_bytes());
        r.extend_from_slice(&(RECORD_HEADER_LEN as u32).to_le_bytes());
        r.extend_from_slice(&1u16.to_le_bytes());
        r.extend_from_slice(&0u32.to_le_bytes());
        r
    }

    fn push(window: &mut PreAlertWindow, ts: u64) {
        let bytes = record(ts);
        window.push(&EventView::parse(&bytes).unwrap());
    }

    #[test]
    fn the_window_keeps_the_recent_events_within_its_age_and_bytes() {
        // 1 ms of age.
        let mut window = PreAlertWindow::new(1, 1);
        for ts in [1_000_000, 1_500_000, 2_000_000, 2_600_000] {
            push(&mut window, ts);
        }
        let kept: Vec<u64> = window.events.iter().map(|k| k.ts).collect();
        assert_eq!(kept, vec![2_000_000u64, 2_600_000]);
        assert_eq!(window.bytes, 2 * RECORD_HEADER_LEN);

        // Bytes: at most 1 MiB, the newest kept.
        let mut window = PreAlertWindow::new(60_000, 1);
        let fit = (1 << 20) / RECORD_HEADER_LEN;
        for ts in 0..(fit as u64 + 10) {
            push(&mut window, ts);
        }
        assert_eq!(window.events.len(), fit);
        assert!(window.bytes <= 1 << 20);
        assert_eq!(window.events.front().unwrap().ts, 10);
        window.trim_to(10 * RECORD_HEADER_LEN);
        assert_eq!(window.events.len(), 10);
        assert_eq!(window.events.back().unwrap().ts, fit as u64 + 9);
    }

    #[test]
    fn file_names_sort_by_time_as_falcos() {
        assert_eq!(
            file_path("/tmp/falco", 1234567890, 42),
            PathBuf::from("/tmp/falco_00000000001234567890_00000000000000000042.scap")
        );
    }
}
