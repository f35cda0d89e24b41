//! `program_output`: alerts written to the standard input of a program
//! started through the shell.
//!
//! The program cannot hold Peregrine hostage: it runs in a process group
//! of its own (so the shell's children go with it), each write has
//! `output_timeout` to complete, and a program that does not take its
//! input in time, or does not exit in time once its input is closed, is
//! killed with its group and reaped. How it exited is reported.

use std::collections::HashSet;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{Channel, Interrupter, OutputError};
use crate::alert::SharedAlert;

/// Process groups of the programs running now, killed if the stop is
/// forced (a second SIGTERM): no program outlives Peregrine's exit.
static LIVE_GROUPS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// Set when the stop is forced: no program may start any more (an output
/// thread whose program was just killed would otherwise start another
/// one that outlives the process).
static FORCED_STOP: AtomicBool = AtomicBool::new(false);

fn live_groups(change: impl FnOnce(&mut HashSet<i32>)) {
    let mut groups = LIVE_GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    change(groups.get_or_insert_with(HashSet::new));
}

fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals the process group
        // this channel created for its child; no memory is involved.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

pub struct ProgramChannel {
    command: String,
    /// `keep_alive: true` starts the program once and streams every alert
    /// to it; otherwise one run per alert, which is what `mail -s ...`
    /// style commands expect.
    keep_alive: bool,
    /// How long one write, or the program's exit after its input closes,
    /// may take (`output_timeout`).
    timeout: Duration,
    running: Option<(Child, ChildStdin)>,
    /// The running program's process group (0: none), for the
    /// interrupter that shutdown uses from another thread.
    group: Arc<AtomicI32>,
}

impl ProgramChannel {
    pub fn new(command: String, keep_alive: bool, timeout: Duration) -> Self {
        static FORCED_STOP_HOOK: Once = Once::new();
        FORCED_STOP_HOOK.call_once(|| {
            crate::signals::on_forced_stop(|| {
                FORCED_STOP.store(true, Ordering::SeqCst);
                let groups = LIVE_GROUPS
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                let groups = groups.unwrap_or_default();
                groups.iter().copied().for_each(kill_group);
                // Reap the shells (our children) before the process
                // exits; a short, bounded wait for SIGKILL to land.
                let deadline = Instant::now() + Duration::from_millis(500);
                for pgid in groups {
                    while Instant::now() < deadline {
                        // SAFETY: waitpid on our own child's pid, with
                        // no status pointer.
                        let reaped =
                            unsafe { libc::waitpid(pgid, std::ptr::null_mut(), libc::WNOHANG) };
                        if reaped != 0 {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            })
        });
        ProgramChannel {
            command,
            keep_alive,
            timeout,
            running: None,
            group: Arc::new(AtomicI32::new(0)),
        }
    }

    fn start(&self) -> Result<(Child, ChildStdin), OutputError> {
        let stopping = || OutputError::Other {
            channel: "program",
            message: format!("'{}' not started: Peregrine is stopping", self.command),
        };
        if FORCED_STOP.load(Ordering::SeqCst) {
            return Err(stopping());
        }
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| self.error(e))?;
        let pgid = child.id() as i32;
        self.group.store(pgid, Ordering::SeqCst);
        live_groups(|g| {
            g.insert(pgid);
        });
        // Started while the forced stop was killing the others: the hook
        // may have missed it.
        if FORCED_STOP.load(Ordering::SeqCst) {
            self.kill_and_reap(child);
            return Err(stopping());
        }
        match child.stdin.take() {
            Some(stdin) => {
                // Writes wait in poll(2) with a deadline, never in write(2).
                if let Err(e) = nix::fcntl::fcntl(
                    stdin.as_fd(),
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                ) {
                    self.kill_and_reap(child);
                    return Err(self.error(e.into()));
                }
                Ok((child, stdin))
            }
            None => {
                self.kill_and_reap(child);
                Err(OutputError::Other {
                    channel: "program",
                    message: format!("'{}': no standard input to write to", self.command),
                })
            }
        }
    }

    fn error(&self, source: io::Error) -> OutputError {
        OutputError::Other {
            channel: "program",
            message: format!("'{}': {source}", self.command),
        }
    }

    fn forget_group(&self, child: &Child) {
        let pgid = child.id() as i32;
        let _ = self
            .group
            .compare_exchange(pgid, 0, Ordering::SeqCst, Ordering::SeqCst);
        live_groups(|g| {
            g.remove(&pgid);
        });
    }

    /// Kills the program's whole group and reaps the program.
    fn kill_and_reap(&self, mut child: Child) -> Option<ExitStatus> {
        kill_group(child.id() as i32);
        let status = child.wait().ok();
        self.forget_group(&child);
        status
    }

    /// Closes the program's input and gives it `timeout` to finish its
    /// work; past that it is killed. Its exit is reported.
    fn finish(&self, mut child: Child, stdin: ChildStdin) -> Result<(), OutputError> {
        drop(stdin);
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.forget_group(&child);
                    break status;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => {
                    let status = self.kill_and_reap(child);
                    return Err(OutputError::Other {
                        channel: "program",
                        message: format!(
                            "'{}' did not exit within output_timeout ({} ms) after its input \
                             closed: killed{}",
                            self.command,
                            self.timeout.as_millis(),
                            status.map(describe).unwrap_or_default()
                        ),
                    });
                }
                Err(e) => {
                    self.kill_and_reap(child);
                    return Err(self.error(e));
                }
            }
        };
        if status.success() {
            Ok(())
        } else {
            Err(OutputError::Other {
                channel: "program",
                message: format!("'{}' {}", self.command, describe(status).trim_start()),
            })
        }
    }

    /// Writes all of `bytes`, waiting at most until `deadline`.
    fn write_until(stdin: &mut ChildStdin, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
        while !bytes.is_empty() {
            match stdin.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    let millis = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
                    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLOUT)];
                    match poll(&mut fds, PollTimeout::from(millis)) {
                        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// ", exited with status 3" / ", killed by signal 9".
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!(", exited with status {code}"),
        (None, Some(signal)) => format!(", killed by signal {signal}"),
        _ => String::new(),
    }
}

impl Channel for ProgramChannel {
    fn name(&self) -> &'static str {
        "program"
    }

    fn emit(&mut self, alert: &SharedAlert) -> Result<(), OutputError> {
        let (mut child, mut stdin) = match self.running.take() {
            Some(running) => running,
            None => self.start()?,
        };
        // A program that already exited is reported (once) and started
        // again: an alert written into its pipe would be lost unsaid.
        if let Ok(Some(status)) = child.try_wait() {
            self.forget_group(&child);
            drop(stdin);
            crate::log::message(&format!(
                "output error: program: '{}' ended{}; starting it again",
                self.command,
                describe(status)
            ));
            (child, stdin) = self.start()?;
        }
        let deadline = Instant::now() + self.timeout;
        let mut line = Vec::with_capacity(alert.line.len() + 1);
        line.extend_from_slice(alert.line.as_bytes());
        line.push(b'\n');
        if let Err(e) = Self::write_until(&mut stdin, &line, deadline) {
            // The program went away or does not read: end it (and what it
            // started) and start afresh next time.
            drop(stdin);
            let status = self.kill_and_reap(child);
            let why = if e.kind() == io::ErrorKind::TimedOut {
                format!(
                    "did not take the alert within output_timeout ({} ms): killed",
                    self.timeout.as_millis()
                )
            } else {
                e.to_string()
            };
            return Err(OutputError::Other {
                channel: "program",
                message: format!(
                    "'{}' {why}{}",
                    self.command,
                    status.map(describe).unwrap_or_default()
                ),
            });
        }
        if self.keep_alive {
            self.running = Some((child, stdin));
            Ok(())
        } else {
            self.finish(child, stdin)
        }
    }

    fn reopen(&mut self) -> Result<(), OutputError> {
        match self.running.take() {
            Some((child, stdin)) => self.finish(child, stdin),
            None => Ok(()),
        }
    }

    fn close(&mut self) -> Result<(), OutputError> {
        match self.running.take() {
            Some((child, stdin)) => self.finish(child, stdin),
            None => Ok(()),
        }
    }

    fn interrupter(&self) -> Option<Interrupter> {
        let group = Arc::clone(&self.group);
        Some(Box::new(move || kill_group(group.load(Ordering::SeqCst))))
    }
}

impl Drop for ProgramChannel {
    fn drop(&mut self) {
        if let Some((child, stdin)) = self.running.take() {
            let _ = self.finish(child, stdin);
        }
    }
}
