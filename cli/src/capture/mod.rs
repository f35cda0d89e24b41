//! `peregrine capture -w FILE [FILTER]`: records kernel events, or the
//! events of another capture, into a `.scap` file that sysdig and Falco
//! read. Records go from the ring to the file as they are (the ring holds
//! scap records), so capturing costs no re-encoding.

pub mod on_alert;
pub mod record;

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use peregrine_driver_sys::{Driver, DriverConfig};
use peregrine_engine::event::table::flags;
use peregrine_engine::event::{Direction, EventView};
use peregrine_engine::rules::Filter;
use peregrine_engine::scap::snapshot::{machine_info, proc_entries};
use peregrine_engine::scap::{Capture, Writer};
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

use crate::args::CaptureArgs;

/// What a capture run did, printed at its end.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CaptureReport {
    pub seen: u64,
    pub written: u64,
}

type ScapWriter = Writer<BufWriter<File>>;

fn create(path: &Path) -> Result<BufWriter<File>, String> {
    File::create(path)
        .map(BufWriter::new)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// Creates a capture file for the agent's own recordings: mode 0600 (it
/// holds command lines and environments), and never through a symlink,
/// so that under a shared folder such as /tmp a planted link cannot
/// redirect it.
pub(crate) fn create_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
}

fn write_error(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("writing {}: {e}", path.display())
}

/// Where events go: the writer, behind the filter. Events that build
/// state (process lifecycle, fds opened and closed) are kept whatever the
/// filter says, and so is the enter event of every exit kept (sysdig takes
/// a connect's address from its enter): without them a reader of the
/// smaller capture would name processes and fds wrongly.
struct Sink {
    writer: ScapWriter,
    filter: Option<Filter<SyscallFields>>,
    state: State,
    /// Per thread, its last enter event not yet written, in the current
    /// layout, with its CPU.
    held_enters: HashMap<u64, (u16, Vec<u8>)>,
    written: u64,
}

impl Sink {
    fn offer(&mut self, event: &EventView<'_>) -> std::io::Result<()> {
        self.state.apply(event);
        let Some(filter) = self.filter.as_mut() else {
            self.written += 1;
            return self.writer.write_event(event);
        };
        let keep = builds_state(event) || filter.matches(&SyscallEvent::new(event, &self.state));
        let held = self.held_enters.remove(&event.tid);
        match event.direction() {
            Direction::Enter if !keep => {
                self.held_enters
                    .insert(event.tid, (event.cpu, current_layout(event)));
            }
            Direction::Exit if keep => {
                // An exit's enter has the type just below it.
                if let Some((cpu, bytes)) = held {
                    if let Ok(mut enter) = EventView::parse(&bytes) {
                        if enter.event_type + 1 == event.event_type {
                            enter.cpu = cpu;
                            self.writer.write_event(&enter)?;
                            self.written += 1;
                        }
                    }
                }
            }
            _ => {}
        }
        if keep {
            self.writer.write_event(event)?;
            self.written += 1;
        }
        Ok(())
    }
}

/// An event as a record of the current layout (header, lengths, values).
fn current_layout(event: &EventView<'_>) -> Vec<u8> {
    let (lens, data, _) = event.body();
    let len = (PG_EVENT_HDR_LEN + lens.len() + data.len()) as u32;
    let mut record = Vec::with_capacity(len as usize);
    record.extend_from_slice(&event.ts.to_le_bytes());
    record.extend_from_slice(&event.tid.to_le_bytes());
    record.extend_from_slice(&len.to_le_bytes());
    record.extend_from_slice(&event.event_type.to_le_bytes());
    record.extend_from_slice(&event.nparams.to_le_bytes());
    record.extend_from_slice(lens);
    record.extend_from_slice(data);
    record
}

fn builds_state(event: &EventView<'_>) -> bool {
    event.has_flag(flags::CREATES_FD | flags::DESTROYS_FD)
        || matches!(
            event.name(),
            "clone" | "clone3" | "fork" | "vfork" | "execve" | "execveat" | "procexit"
        )
}

/// Bytes in a record's header.
const PG_EVENT_HDR_LEN: usize = 26;

pub fn run(args: &CaptureArgs, stop: &AtomicBool, hostname: &str) -> Result<CaptureReport, String> {
    let filter = match &args.filter {
        Some(text) => Some(Filter::new(text, SyscallFields::new()).map_err(|e| e.to_string())?),
        None => None,
    };
    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs(s));
    let done = |report: &CaptureReport| {
        stop.load(Ordering::Relaxed)
            || deadline.is_some_and(|d| Instant::now() >= d)
            || args.count.is_some_and(|n| report.written >= n)
    };
    let mut report = CaptureReport::default();
    let path = args.write.as_path();

    if let Some(input) = &args.read {
        let mut capture =
            Capture::open(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
        let machine = capture.machine.clone().unwrap_or_default();
        let mut writer = Writer::new(create(path)?, &machine).map_err(write_error(path))?;
        for (block_type, body) in &capture.interface_blocks {
            writer
                .write_raw_block(*block_type, body)
                .map_err(write_error(path))?;
        }
        writer
            .write_users(&capture.users, &capture.groups)
            .map_err(write_error(path))?;
        writer
            .write_processes(&capture.processes)
            .map_err(write_error(path))?;
        writer
            .write_fd_table(&capture.fds)
            .map_err(write_error(path))?;
        let mut sink = Sink {
            writer,
            filter,
            state: State::from_capture(&capture),
            held_enters: HashMap::new(),
            written: 0,
        };
        let mut events = capture.events();
        while let Some(event) = events.next() {
            let event = event.map_err(|e| format!("{}: {e}", input.display()))?;
            report.seen += 1;
            sink.offer(&event).map_err(write_error(path))?;
            report.written = sink.written;
            if done(&report) {
                break;
            }
        }
        finish(sink.writer, path)?;
        return Ok(report);
    }

    let config = DriverConfig {
        snaplen: Some(args.snaplen),
        ..DriverConfig::default()
    };
    let mut driver = Driver::open(config).map_err(|e| e.to_string())?;
    let mut state = State::new();
    let (users, groups) = crate::sources::users::host_users();
    state.users = peregrine_engine::state::Users::from_capture(&users, &groups);
    let proc = crate::host::path("/proc");
    if let Err(e) = peregrine_engine::state::procfs::scan(&mut state, &proc) {
        crate::log::message(&format!(
            "reading /proc for the running processes failed: {e}"
        ));
    }
    let mut writer: ScapWriter =
        Writer::new(create(path)?, &machine_info(&proc, hostname)).map_err(write_error(path))?;
    writer
        .write_users(&users, &groups)
        .map_err(write_error(path))?;
    writer
        .write_processes(&proc_entries(&state))
        .map_err(write_error(path))?;
    let mut sink = Sink {
        writer,
        filter,
        state,
        held_enters: HashMap::new(),
        written: 0,
    };
    driver.start_capture().map_err(|e| e.to_string())?;
    let mut failure = None;
    let mut undecodable = 0u64;
    while !done(&report) && failure.is_none() {
        let read = driver.events().next_batch(4096, |_ring, record| {
            if failure.is_some() {
                return;
            }
            match EventView::parse(record.bytes()) {
                Ok(event) => {
                    report.seen += 1;
                    if let Err(e) = sink.offer(&event) {
                        failure = Some(write_error(path)(e));
                    }
                    report.written = sink.written;
                }
                Err(_) => undecodable += 1,
            }
        });
        match read {
            Ok(0) => {
                driver.events().wait(Duration::from_millis(50));
            }
            Ok(_) => {}
            Err(e) => {
                crate::log::message(&format!("{e}; skipping the rest of that ring"));
                driver.events().discard_all(e.ring_id);
            }
        }
    }
    driver.stop_capture().map_err(|e| e.to_string())?;
    let t = driver.stats().total;
    crate::log::message(&format!(
        "capture: {} events written of {} read; kernel: {} written, {} dropped (buffer full {}, page faults {}, too large {}); {} undecodable",
        report.written,
        report.seen,
        t.n_evts,
        t.n_drops_buffer + t.n_drops_pf + t.n_drops_too_large,
        t.n_drops_buffer,
        t.n_drops_pf,
        t.n_drops_too_large,
        undecodable
    ));
    if let Some(message) = failure {
        return Err(message);
    }
    finish(sink.writer, path)?;
    Ok(report)
}

fn finish(writer: ScapWriter, path: &Path) -> Result<(), String> {
    writer.finish().map(drop).map_err(write_error(path))
}
