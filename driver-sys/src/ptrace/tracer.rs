//! The tracing loop: one thread that owns every tracee, turns their stops
//! into records and resumes them.
//!
//! Spawn mode (`-- CMD`): the workload runs under a seccomp filter, so only
//! the syscalls of interest stop it (a seccomp stop, then PTRACE_SYSCALL
//! for the exit stop, then PTRACE_CONT). The filter stays with the
//! workload for life, and the kernel fails a filtered syscall with ENOSYS
//! when no tracer is attached: so this mode never detaches. When asked to
//! stop (SIGINT/SIGTERM/SIGHUP, the parent's death, or the output closing)
//! it stops reporting and lets every stop through until the last tracee
//! is gone; only a SIGKILL of the tracer process itself can hurt the
//! workload.
//!
//! Attach mode (`--attach PID`): no filter can be put into a running
//! process, so every syscall of every thread stops twice (PTRACE_SYSCALL).
//! When asked to stop, every thread is interrupted and detached, its
//! pending signal passed on.

use std::collections::HashMap;
use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use super::encode::{Call, Encoder};
use super::memory::Memory;
use super::sys::{self, SyscallStop, Wait};
use super::{seccomp, signals, syscalls};
#[cfg(test)]
use crate::abi::*;

/// What to trace.
#[derive(Debug, Clone)]
pub enum Target {
    /// Runs this command (argv, the program first) under the tracer.
    Spawn(Vec<OsString>),
    /// Attaches to every thread of this running process.
    Attach(i32),
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{program}: command not found")]
    NotFound { program: String },
    #[error("an empty command was given")]
    EmptyCommand,
    #[error("a command argument holds a NUL byte")]
    NulInArgument,
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot attach to process {pid}: {source}")]
    Attach {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up the tracer's signals: {0}")]
    Signals(#[source] std::io::Error),
    #[error("waitpid failed: {0}")]
    Wait(#[source] std::io::Error),
}

/// What a finished trace did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Syscall entries seen (seccomp or syscall-entry stops).
    pub syscalls: u64,
    /// Records written to the output.
    pub events: u64,
    /// Threads seen, the first ones included.
    pub threads: u64,
    /// Spawn mode: the command's wait status.
    pub root_status: Option<i32>,
    /// The output refused a write (the reader went away).
    pub output_lost: bool,
    /// A stop request came before the tracees were done.
    pub stopped_early: bool,
}

impl Summary {
    /// The command's exit status as a shell reports it (128 + signal).
    pub fn exit_code(&self) -> i32 {
        match self.root_status {
            Some(s) if s & 0x7f == 0 => (s >> 8) & 0xff,
            Some(s) => 128 + (s & 0x7f),
            None => 0,
        }
    }
}

#[derive(Debug, Default)]
struct Thread {
    /// The traced syscall it is inside, taken at entry.
    call: Option<Call>,
    /// Its first stop has been seen (a new child's first stop is its clone exit).
    started: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Spawn,
    Attach,
}

struct Tracer<W: Write> {
    sink: Option<W>,
    out: Vec<u8>,
    enc: Encoder,
    threads: HashMap<i32, Thread>,
    mode: Mode,
    root: Option<i32>,
    summary: Summary,
    /// Records written to the sink since its last flush.
    unflushed: bool,
    last_flush: std::time::Instant,
}

/// The longest a record waits in the buffer while tracees keep stopping.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(2);

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Traces `target`, writing records to `sink`, until no tracee is left
/// (spawn mode) or a stop request detaches them (attach mode).
/// `stop_with_parent`: the parent process's death counts as a stop request.
///
/// The tracer reaps with waitpid(-1): it is meant to be its process's only
/// user of child processes (the CLI runs it as a process of its own). For
/// the call's duration it owns SIGINT, SIGTERM, SIGHUP and SIGALRM (an
/// interval timer); the previous dispositions are put back on return.
pub fn trace<W: Write>(
    target: Target,
    sink: W,
    stop_with_parent: bool,
) -> Result<Summary, TraceError> {
    let mut tracer = Tracer {
        sink: Some(sink),
        out: Vec::with_capacity(64 * 1024),
        enc: Encoder::default(),
        threads: HashMap::new(),
        mode: match target {
            Target::Spawn(_) => Mode::Spawn,
            Target::Attach(_) => Mode::Attach,
        },
        root: None,
        summary: Summary::default(),
        unflushed: false,
        last_flush: std::time::Instant::now(),
    };
    match target {
        Target::Spawn(argv) => tracer.spawn(&argv)?,
        Target::Attach(pid) => tracer.attach(pid)?,
    }
    let _signals = signals::install(stop_with_parent).map_err(TraceError::Signals)?;
    tracer.run()?;
    Ok(tracer.summary)
}

/// The program's path: as given when it holds a slash, else from PATH.
fn resolve_program(program: &OsString) -> Option<std::path::PathBuf> {
    let p = std::path::Path::new(program);
    if program.as_bytes().contains(&b'/') {
        return Some(p.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(p))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .map(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.is_file() && m.permissions().mode() & 0o111 != 0
                })
                .unwrap_or(false)
        })
}

/// Writes a message to stderr from the forked child (no allocation).
fn child_fail(msg: &[u8], code: i32) -> ! {
    // SAFETY: write and _exit are async-signal-safe; msg is a valid slice.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(code)
    }
}

impl<W: Write> Tracer<W> {
    fn options(&self) -> i32 {
        match self.mode {
            Mode::Spawn => sys::OPTIONS_BASE | libc::PTRACE_O_TRACESECCOMP,
            Mode::Attach => sys::OPTIONS_BASE,
        }
    }

    fn reporting(&self) -> bool {
        self.sink.is_some()
    }

    fn spawn(&mut self, argv: &[OsString]) -> Result<(), TraceError> {
        let program = argv.first().ok_or(TraceError::EmptyCommand)?;
        let name = program.to_string_lossy().into_owned();
        let path = resolve_program(program).ok_or(TraceError::NotFound {
            program: name.clone(),
        })?;
        // Everything the child needs is made before the fork: after it, the
        // child may only make async-signal-safe calls.
        let c_path = CString::new(path.into_os_string().into_encoded_bytes())
            .map_err(|_| TraceError::NulInArgument)?;
        let c_args = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TraceError::NulInArgument)?;
        let c_env = std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k.into_encoded_bytes();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TraceError::NulInArgument)?;
        let mut argv_ptrs: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut env_ptrs: Vec<*const libc::c_char> = c_env.iter().map(|a| a.as_ptr()).collect();
        env_ptrs.push(std::ptr::null());
        let filter = seccomp::program(syscalls::TRACED);

        // SAFETY: the child only makes async-signal-safe calls (signal,
        // raise, prctl/seccomp, execve, write, _exit) on memory prepared above.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(TraceError::Spawn {
                program: name,
                source: std::io::Error::last_os_error(),
            });
        }
        if pid == 0 {
            // SAFETY: as above: async-signal-safe calls on prepared memory.
            unsafe {
                // Rust ignores SIGPIPE; the workload must not inherit that.
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                // Wait here until the tracer has seized us.
                libc::raise(libc::SIGSTOP);
            }
            if seccomp::install_in_child(&filter) != 0 {
                child_fail(b"peregrine: cannot install the seccomp filter\n", 126);
            }
            // SAFETY: the pointer arrays are NULL-terminated and point at live CStrings.
            unsafe { libc::execve(c_path.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr()) };
            child_fail(b"peregrine: exec of the command failed\n", 127);
        }
        let fail = |source| TraceError::Spawn {
            program: name.clone(),
            source,
        };
        // Wait for the child's own SIGSTOP, then seize it and let it go on.
        loop {
            let mut status = 0;
            // SAFETY: status is a valid int to write.
            let rc = unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED) };
            if rc == pid && libc::WIFSTOPPED(status) {
                break;
            }
            if rc == pid {
                return Err(fail(std::io::Error::other(
                    "the child ended before it could be traced",
                )));
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(fail(err));
            }
        }
        sys::seize(pid, self.options()).map_err(fail)?;
        // SAFETY: pid is our child.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        self.root = Some(pid);
        self.add_thread(pid, true);
        Ok(())
    }

    fn attach(&mut self, pid: i32) -> Result<(), TraceError> {
        let fail = |source| TraceError::Attach { pid, source };
        // Twice: threads started while the first pass ran are caught by the second.
        for _ in 0..2 {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map_err(fail)?;
            for task in tasks.flatten() {
                let Some(tid) = task.file_name().to_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                if self.threads.contains_key(&tid) {
                    continue;
                }
                match sys::seize(tid, self.options()) {
                    Ok(()) => {}
                    // Gone meanwhile.
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => continue,
                    Err(e) => return Err(fail(e)),
                }
                // A stop, to switch it to PTRACE_SYSCALL from there.
                sys::interrupt(tid).map_err(fail)?;
                self.add_thread(tid, true);
            }
        }
        Ok(())
    }

    fn add_thread(&mut self, tid: i32, started: bool) {
        self.summary.threads += 1;
        self.threads.insert(
            tid,
            Thread {
                call: None,
                started,
            },
        );
    }

    /// Lets a stopped tracee go on, to its next syscall stop when we need
    /// one (attach mode, or the exit of a syscall being reported).
    fn resume(&mut self, pid: i32, sig: i32) {
        let in_call = self
            .threads
            .get(&pid)
            .is_some_and(|t| t.call.is_some() && self.sink.is_some());
        let result = if self.mode == Mode::Attach || in_call {
            sys::syscall(pid, sig)
        } else {
            sys::cont(pid, sig)
        };
        // ESRCH: killed meanwhile (SIGKILL); its exit report comes later.
        if let Err(e) = result {
            if e.raw_os_error() != Some(libc::ESRCH) {
                self.threads.remove(&pid);
            }
        }
    }

    /// Hands the records built so far to the output; a failed write means
    /// the reader is gone: report no more.
    fn ship(&mut self) {
        if self.out.is_empty() {
            return;
        }
        if let Some(sink) = self.sink.as_mut() {
            if sink.write_all(&self.out).is_err() {
                self.sink = None;
                self.summary.output_lost = true;
            } else {
                self.summary.events += 1;
                self.unflushed = true;
            }
        }
        self.out.clear();
    }

    fn flush(&mut self) {
        self.unflushed = false;
        self.last_flush = std::time::Instant::now();
        if let Some(sink) = self.sink.as_mut() {
            if sink.flush().is_err() {
                self.sink = None;
                self.summary.output_lost = true;
            }
        }
    }

    fn run(&mut self) -> Result<(), TraceError> {
        loop {
            if signals::stop_requested() && !self.summary.stopped_early {
                self.summary.stopped_early = true;
                self.flush();
                self.sink = None;
                if self.mode == Mode::Attach {
                    return self.detach_all();
                }
            }
            // Records go out in batches: a write per stop would cost the
            // workload a context switch to the reader each time. The
            // timer's tick sends what waits when the tracees are idle.
            if self.unflushed && self.last_flush.elapsed() >= FLUSH_EVERY {
                self.flush();
            }
            let report = sys::wait_any(true).map_err(TraceError::Wait)?;
            match report {
                Wait::NoChildren => {
                    self.flush();
                    return Ok(());
                }
                Wait::Interrupted => self.flush(),
                Wait::Nothing => {}
                Wait::Exited(pid, _) | Wait::Signaled(pid, _) => {
                    self.threads.remove(&pid);
                    if self.root == Some(pid) {
                        self.summary.root_status = Some(sys::raw_status(report));
                    }
                }
                Wait::SyscallStop(pid) => {
                    match sys::syscall_info(pid) {
                        Ok(SyscallStop::Entry { nr, args, compat }) => {
                            self.on_entry(pid, nr, args, compat)
                        }
                        Ok(SyscallStop::Exit { ret }) => self.on_exit(pid, ret),
                        Ok(SyscallStop::Other) | Err(_) => {}
                    }
                    self.resume(pid, 0);
                }
                Wait::Event(pid, sig, event) => self.on_event(pid, sig, event),
                Wait::Signal(pid, sig) => {
                    let started = self.threads.get(&pid).is_some_and(|t| t.started);
                    if !started && sig == libc::SIGSTOP {
                        // A new child's first stop without PTRACE_EVENT_STOP.
                        self.on_new_thread(pid);
                        self.resume(pid, 0);
                    } else {
                        self.resume(pid, sig);
                    }
                }
            }
        }
    }

    fn on_event(&mut self, pid: i32, sig: i32, event: i32) {
        match event {
            libc::PTRACE_EVENT_SECCOMP => {
                if let Ok(SyscallStop::Entry { nr, args, compat }) = sys::syscall_info(pid) {
                    self.on_entry(pid, nr, args, compat);
                }
            }
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                if let Ok(child) = sys::event_msg(pid) {
                    let child = child as i32;
                    if !self.threads.contains_key(&child) {
                        self.add_thread(child, false);
                    }
                }
            }
            libc::PTRACE_EVENT_EXEC => {
                // A non-leader thread that execs takes the leader's tid.
                if let Ok(former) = sys::event_msg(pid) {
                    let former = former as i32;
                    if former != pid {
                        if let Some(t) = self.threads.remove(&former) {
                            let call = t.call;
                            self.threads.entry(pid).or_default().call = call;
                        }
                    }
                }
            }
            libc::PTRACE_EVENT_EXIT if self.reporting() => {
                let status = sys::event_msg(pid).unwrap_or(0) as i32;
                self.enc.procexit(&mut self.out, now_ns(), pid, status);
                self.ship();
            }
            sys::EVENT_STOP => {
                let started = self.threads.get(&pid).is_some_and(|t| t.started);
                if !started {
                    self.on_new_thread(pid);
                } else if matches!(
                    sig,
                    libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
                ) {
                    // A group-stop: it stays stopped until SIGCONT, as untraced.
                    if sys::listen(pid).is_err() {
                        self.resume(pid, 0);
                    }
                    return;
                }
            }
            _ => {}
        }
        self.resume(pid, 0);
    }

    /// A new child's first stop: the child's side of its clone.
    fn on_new_thread(&mut self, pid: i32) {
        if !self.threads.contains_key(&pid) {
            self.add_thread(pid, true);
        }
        if let Some(t) = self.threads.get_mut(&pid) {
            t.started = true;
        }
        if !self.reporting() {
            return;
        }
        let ia32 = sys::is_ia32(pid);
        let nr = sys::orig_rax(pid).unwrap_or(libc::SYS_clone as u64);
        let nr = if ia32 {
            super::ia32::to_x64(nr).unwrap_or(libc::SYS_clone as u64)
        } else {
            nr
        };
        let args = child_args(pid, ia32);
        self.enc.clone_child(&mut self.out, now_ns(), pid, nr, args);
        self.ship();
    }

    fn on_entry(&mut self, pid: i32, nr: u64, args: [u64; 6], compat: bool) {
        self.summary.syscalls += 1;
        let traced = syscalls::is_traced(nr);
        let mut call = None;
        if traced && self.reporting() {
            let mem = Memory {
                pid: nix::unistd::Pid::from_raw(pid),
            };
            let mut c = Call::new(nr, args);
            c.compat = compat;
            self.enc.prepare(&mut c, &mem, pid);
            if syscalls::has_enter_event(nr) {
                self.enc.enter(&mut self.out, now_ns(), pid, &c, &mem);
                self.ship();
            }
            call = Some(c);
        }
        self.threads.entry(pid).or_default().call = call;
    }

    fn on_exit(&mut self, pid: i32, ret: i64) {
        let Some(call) = self.threads.get_mut(&pid).and_then(|t| t.call.take()) else {
            return;
        };
        if !self.reporting() {
            return;
        }
        let mem = Memory {
            pid: nix::unistd::Pid::from_raw(pid),
        };
        self.enc
            .exit(&mut self.out, now_ns(), pid, &call, ret, &mem);
        self.ship();
    }

    /// Attach mode's stop: every thread interrupted and let go, with the
    /// signal it was about to receive.
    fn detach_all(&mut self) -> Result<(), TraceError> {
        let pids: Vec<i32> = self.threads.keys().copied().collect();
        for pid in pids {
            if sys::interrupt(pid).is_err() {
                self.threads.remove(&pid);
            }
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !self.threads.is_empty() && std::time::Instant::now() < deadline {
            let (pid, sig) = match sys::wait_any(true).map_err(TraceError::Wait)? {
                Wait::NoChildren => break,
                Wait::Nothing | Wait::Interrupted => continue,
                Wait::Exited(pid, _) | Wait::Signaled(pid, _) => {
                    self.threads.remove(&pid);
                    continue;
                }
                Wait::Signal(pid, sig) => (pid, sig),
                Wait::Event(pid, sig, sys::EVENT_STOP)
                    if matches!(
                        sig,
                        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
                    ) =>
                {
                    (pid, sig)
                }
                Wait::Event(pid, _, _) | Wait::SyscallStop(pid) => (pid, 0),
            };
            // A thread not in the table (a child born meanwhile) is let go too.
            let _ = sys::detach(pid, sig);
            self.threads.remove(&pid);
        }
        Ok(())
    }
}

/// A new child's registers hold its parent's clone arguments.
fn child_args(pid: i32, ia32: bool) -> [u64; 6] {
    let mut args = [0u64; 6];
    // Where the arguments are in struct user_regs_struct: rdi, rsi, rdx,
    // r10, r8, r9; for a 32-bit call ebx, ecx, edx, esi, edi, ebp.
    let offsets = if ia32 {
        [5usize, 11, 12, 13, 14, 4]
    } else {
        [14usize, 13, 12, 7, 9, 8]
    };
    for (slot, offset) in args.iter_mut().zip(offsets) {
        // SAFETY: PEEKUSER reads one word of the tracee's user area; errno
        // is cleared first because -1 is a valid word.
        let word = unsafe {
            *libc::__errno_location() = 0;
            libc::ptrace(libc::PTRACE_PEEKUSER, pid, offset * 8, 0usize)
        };
        // A 32-bit call takes its registers' low halves only.
        *slot = if ia32 {
            word as u64 & 0xffff_ffff
        } else {
            word as u64
        };
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventRef;

    #[test]
    fn a_spawned_command_is_followed_to_its_exit_status() {
        let argv = ["sh", "-c", "cat /proc/self/comm > /dev/null; exit 3"]
            .iter()
            .map(OsString::from)
            .collect();
        let mut sink = Vec::new();
        let summary = match trace(Target::Spawn(argv), &mut sink, false) {
            Ok(s) => s,
            Err(TraceError::Spawn { source, .. }) if source.raw_os_error() == Some(libc::EPERM) => {
                eprintln!("skipped: ptrace is not permitted here");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        assert_eq!(summary.exit_code(), 3);
        assert!(!summary.stopped_early && !summary.output_lost);
        assert_eq!(summary.threads, 2, "sh and the cat it forked");
        let mut types = Vec::new();
        let mut at = 0;
        while at < sink.len() {
            let len = u32::from_ne_bytes(sink[at + 16..at + 20].try_into().unwrap()) as usize;
            let ev = EventRef::parse(&sink[at..at + len]).unwrap();
            types.push(ev.event_type() as u32);
            at += len;
        }
        assert_eq!(types.len() as u64, summary.events);
        // Two execs (sh, then cat), the fork seen from both sides, two exits.
        let count = |t: u32| types.iter().filter(|&&x| x == t).count();
        assert_eq!(count(PG_EVT_EXECVE_19_X), 2, "{types:?}");
        assert_eq!(count(PG_EVT_PROCEXIT_1_E), 2, "{types:?}");
        let forks = [
            PG_EVT_CLONE_20_X,
            PG_EVT_CLONE3_X,
            PG_EVT_FORK_20_X,
            PG_EVT_VFORK_20_X,
        ];
        assert_eq!(
            forks.iter().map(|&t| count(t)).sum::<usize>(),
            2,
            "{types:?}"
        );
        assert!(count(PG_EVT_OPENAT_2_E) >= 1 && count(PG_EVT_OPENAT_2_X) >= 1);
    }

    #[test]
    fn a_missing_command_is_reported_before_anything_runs() {
        let argv = vec![OsString::from("peregrine-no-such-command")];
        assert!(matches!(
            trace(Target::Spawn(argv), Vec::new(), false),
            Err(TraceError::NotFound { .. })
        ));
    }
}
