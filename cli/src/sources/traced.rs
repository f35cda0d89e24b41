//! `peregrine run`: the ptrace source. The tracer is a process of its own
//! (`peregrine ptrace-tracer`, started here) writing the module's records
//! into a pipe; this side reads them through the same state and rules as
//! the module's rings.
//!
//! Why a separate process: the tracer must outlive a Peregrine that
//! crashes or is killed, because a seccomp-filtered workload whose tracer
//! is gone has its filtered syscalls fail with ENOSYS. The tracer is small,
//! ignores the signals that stop Peregrine, and when its output closes it
//! lets the workload run to its end unreported.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};
use std::time::Duration;

use peregrine_driver_sys::abi::EVENT_HDR_LEN;
use peregrine_driver_sys::ptrace::{self, Target};
use peregrine_engine::event::merge::Merger;
use peregrine_engine::event::EventView;
use peregrine_engine::state::State;

use crate::args::TracerArgs;
use crate::run::{Pipeline, RunError};
use crate::sources::drops::DropCounters;

/// The fd the tracer writes records to.
const RECORDS_FD: i32 = 3;

/// `peregrine run`'s source: a command to start, or a process to attach to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub attach: Option<i32>,
    pub command: Vec<OsString>,
}

/// How the traced run ended.
pub enum Ending {
    /// The command's exit code, once it and its descendants were done.
    Finished(u8),
    /// Peregrine was stopped first; the workload goes on.
    Stopped,
}

fn target_args(attach: Option<i32>, command: &[OsString]) -> Vec<OsString> {
    match attach {
        Some(pid) => vec!["--attach".into(), pid.to_string().into()],
        None => {
            let mut v: Vec<OsString> = vec!["--".into()];
            v.extend(command.iter().cloned());
            v
        }
    }
}

/// Starts the tracer and feeds its records through the pipeline until it
/// exits (the workload is done) or the pipeline is stopped.
pub fn run(
    attach: Option<i32>,
    command: &[OsString],
    pipeline: &mut Pipeline<'_>,
) -> Result<Ending, RunError> {
    let spawn_error = |e: std::io::Error| RunError::Traced(format!("cannot start the tracer: {e}"));
    let exe = std::env::current_exe().map_err(spawn_error)?;
    // Close-on-exec, so the tracer holds only its fd 3: a tracer that held
    // the read end too would block for ever on a full pipe once peregrine
    // is gone, instead of seeing EPIPE and detaching.
    let (reader, writer) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| spawn_error(e.into()))?;
    let reader = std::fs::File::from(reader);
    let mut tracer = Command::new(exe);
    tracer
        .arg("ptrace-tracer")
        .arg("--records-fd")
        .arg(RECORDS_FD.to_string())
        .args(target_args(attach, command));
    let write_fd = std::os::fd::AsRawFd::as_raw_fd(&writer);
    // SAFETY: dup2 is async-signal-safe and touches only the child's fd
    // table: the pipe's write end becomes fd 3 (without CLOEXEC) for the tracer.
    unsafe {
        tracer.pre_exec(move || {
            // dup2 onto itself keeps close-on-exec: clear it then.
            let kept = if write_fd == RECORDS_FD {
                libc::fcntl(RECORDS_FD, libc::F_SETFD, 0)
            } else {
                libc::dup2(write_fd, RECORDS_FD)
            };
            if kept < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = tracer.spawn().map_err(spawn_error)?;
    drop(writer);

    // The processes that exist now (the tracer among them) are known from
    // /proc; the workload's are learnt from their clone and execve events.
    let mut state = State::new();
    let (users, groups) = crate::sources::users::host_users();
    state.users = peregrine_engine::state::Users::from_capture(&users, &groups);
    if let Err(e) = peregrine_engine::state::procfs::scan(&mut state, std::path::Path::new("/proc"))
    {
        crate::log::message(&format!("reading /proc failed: {e}"));
    }
    pipeline.idle(&mut state, now_ns());

    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(64);
    let read_thread = std::thread::Builder::new()
        .name("ptrace-records".into())
        .spawn(move || read_records(reader, tx))
        .map_err(spawn_error)?;

    let mut undecodable = 0u64;
    let mut received = 0u64;
    // The tracer writes enter events where Falco's driver does: held here
    // for their exits, as every source's events are.
    let mut merger = Merger::new();
    let mut stopped = false;
    loop {
        if pipeline.should_stop() {
            stopped = true;
            break;
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(batch) => {
                let mut at = 0;
                while let Some(hdr) = batch.get(at..at + EVENT_HDR_LEN) {
                    let len = u32::from_ne_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]) as usize;
                    let Some(record) = batch.get(at..at + len.max(EVENT_HDR_LEN)) else {
                        break;
                    };
                    at += record.len();
                    received += 1;
                    match EventView::parse(record) {
                        Ok(event) => {
                            if let Some(event) = merger.push(&event) {
                                pipeline.process(&mut state, &event, DropCounters::default)
                            }
                        }
                        Err(e) => {
                            undecodable += 1;
                            if undecodable.is_power_of_two() {
                                crate::log::message(&format!(
                                    "{undecodable} traced events could not be decoded so far, the last: {e}"
                                ));
                            }
                        }
                    }
                }
                pipeline.metrics.set_merge(merger.stats);
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                pipeline.idle(&mut state, now_ns());
                pipeline.maybe_send_stats(now_ns());
                pipeline.maybe_reload();
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
    }
    let summary = format!("Traced events: {received} received, {undecodable} undecodable");
    if stopped {
        crate::log::write_whole(&summary);
        // The tracer stops reporting (and, attached, detaches) on SIGTERM;
        // it is not waited for: a spawned workload keeps it until its end.
        // SAFETY: kill with our child's pid and a signal number.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        drop(rx);
        return Ok(Ending::Stopped);
    }
    let _ = read_thread.join();
    let status = child.wait().map_err(spawn_error)?;
    // After the tracer's own summary, so the two come in one order.
    crate::log::write_whole(&summary);
    let code = status.code().unwrap_or(1).clamp(0, 255) as u8;
    Ok(Ending::Finished(code))
}

/// Reads the pipe and passes on batches of whole records.
fn read_records(mut pipe: std::fs::File, tx: crossbeam_channel::Sender<Vec<u8>>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        pending.extend_from_slice(&buf[..n]);
        // Cut after the last whole record.
        let mut at = 0;
        while let Some(hdr) = pending.get(at..at + EVENT_HDR_LEN) {
            let len = u32::from_ne_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]) as usize;
            if len < EVENT_HDR_LEN {
                // Not a record boundary: nothing after this can be trusted.
                return;
            }
            if at + len > pending.len() {
                break;
            }
            at += len;
        }
        if at > 0 {
            let rest = pending.split_off(at);
            if tx.send(std::mem::replace(&mut pending, rest)).is_err() {
                return;
            }
        }
    }
}

/// `peregrine ptrace-tracer`: the tracer process itself.
pub fn tracer_main(args: TracerArgs) -> Result<ExitCode, String> {
    let target = match args.attach {
        Some(pid) => Target::Attach(pid),
        None => Target::Spawn(args.command),
    };
    let (sink, with_parent): (std::fs::File, bool) = match (args.records_fd, &args.records_file) {
        (Some(fd), _) => (records_fd(fd)?, true),
        (None, Some(path)) => (
            std::fs::File::create(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?,
            false,
        ),
        (None, None) => return Err("--records-fd or --records-file is needed".into()),
    };
    let sink = std::io::BufWriter::with_capacity(64 * 1024, sink);
    let summary = match ptrace::trace(target, sink, with_parent) {
        Ok(summary) => summary,
        // A shell's status for a command it cannot find.
        Err(e @ ptrace::TraceError::NotFound { .. }) => {
            crate::log::write_whole(&format!("peregrine: {e}"));
            return Ok(ExitCode::from(127));
        }
        Err(e) => return Err(e.to_string()),
    };
    crate::log::write_whole(&format!(
        "ptrace: {} syscalls stopped, {} events written, {} threads followed{}",
        summary.syscalls,
        summary.events,
        summary.threads,
        if summary.stopped_early || summary.output_lost {
            " (reporting stopped before the end)"
        } else {
            ""
        }
    ));
    Ok(ExitCode::from(summary.exit_code().clamp(0, 255) as u8))
}

/// The inherited pipe, made close-on-exec so the workload does not hold it.
fn records_fd(fd: i32) -> Result<std::fs::File, String> {
    // SAFETY: fcntl on an integer fd; F_GETFD only reads its flags.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(format!("file descriptor {fd} is not open"));
    }
    // SAFETY: F_SETFD on the same open fd.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: fd was checked open and was handed to this process for this
    // use only; nothing else here owns or closes it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
