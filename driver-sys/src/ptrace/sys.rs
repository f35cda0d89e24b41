//! The ptrace and wait calls the tracer makes, on raw signal numbers: nix's
//! `Signal` cannot hold real-time signals, and a tracee's signal that the
//! tracer cannot name must still be passed on, never lost.

use std::io;

pub const OPTIONS_BASE: i32 = libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_TRACEEXIT;

pub const EVENT_STOP: i32 = 128;

/// PTRACE_GET_SYSCALL_INFO's op values.
pub const OP_ENTRY: u8 = 1;
pub const OP_EXIT: u8 = 2;
pub const OP_SECCOMP: u8 = 3;

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn request(req: libc::c_uint, pid: i32, addr: usize, data: usize) -> io::Result<libc::c_long> {
    // SAFETY: every request made through here passes integers only (no
    // pointer into our memory), so the kernel writes nothing of ours.
    check(unsafe { libc::ptrace(req, pid, addr, data) })
}

pub fn seize(pid: i32, options: i32) -> io::Result<()> {
    request(libc::PTRACE_SEIZE, pid, 0, options as usize).map(drop)
}

pub fn interrupt(pid: i32) -> io::Result<()> {
    request(libc::PTRACE_INTERRUPT, pid, 0, 0).map(drop)
}

/// Resumes until the next seccomp stop, event or signal.
pub fn cont(pid: i32, sig: i32) -> io::Result<()> {
    request(libc::PTRACE_CONT, pid, 0, sig as usize).map(drop)
}

/// Resumes until the next syscall entry or exit as well.
pub fn syscall(pid: i32, sig: i32) -> io::Result<()> {
    request(libc::PTRACE_SYSCALL, pid, 0, sig as usize).map(drop)
}

pub fn detach(pid: i32, sig: i32) -> io::Result<()> {
    request(libc::PTRACE_DETACH, pid, 0, sig as usize).map(drop)
}

/// Leaves a tracee in its group-stop, still reporting (PTRACE_SEIZE only).
pub fn listen(pid: i32) -> io::Result<()> {
    request(libc::PTRACE_LISTEN, pid, 0, 0).map(drop)
}

pub fn event_msg(pid: i32) -> io::Result<u64> {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: GETEVENTMSG writes one unsigned long at data, which is `msg`.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_GETEVENTMSG,
            pid,
            0usize,
            &mut msg as *mut libc::c_ulong,
        )
    })?;
    Ok(msg)
}

/// The syscall number the thread entered last (orig_rax): a new child
/// starts inside its parent's clone.
pub fn orig_rax(pid: i32) -> io::Result<u64> {
    // errno must be cleared: PEEKUSER's result is the word itself.
    // SAFETY: __errno_location is this thread's errno; PEEKUSER with an
    // offset inside struct user reads one word and writes nothing of ours.
    let word = unsafe {
        *libc::__errno_location() = 0;
        libc::ptrace(
            libc::PTRACE_PEEKUSER,
            pid,
            15 * 8usize, // offsetof(struct user_regs_struct, orig_rax)
            0usize,
        )
    };
    // SAFETY: reading this thread's errno.
    if word == -1 && unsafe { *libc::__errno_location() } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(word as u64)
}

/// What PTRACE_GET_SYSCALL_INFO says at a syscall or seccomp stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallStop {
    /// `compat`: a 32-bit (ia32) call, `nr` already its x86-64 number.
    Entry {
        nr: u64,
        args: [u64; 6],
        compat: bool,
    },
    Exit {
        ret: i64,
    },
    Other,
}

pub fn syscall_info(pid: i32) -> io::Result<SyscallStop> {
    // SAFETY: an all-zero ptrace_syscall_info is a valid value (integers
    // and a union of integers).
    let mut info: libc::ptrace_syscall_info = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::ptrace_syscall_info>();
    // SAFETY: the kernel writes at most `size` bytes into `info`.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            pid,
            size,
            &mut info as *mut libc::ptrace_syscall_info,
        )
    })?;
    let ia32 = match info.arch {
        super::seccomp::AUDIT_ARCH_X86_64 => false,
        super::ia32::AUDIT_ARCH_I386 => true,
        _ => return Ok(SyscallStop::Other),
    };
    // SAFETY: `op` says which member of the union the kernel filled.
    let stop = unsafe {
        match info.op {
            OP_ENTRY => SyscallStop::Entry {
                nr: info.u.entry.nr,
                args: info.u.entry.args,
                compat: false,
            },
            OP_SECCOMP => SyscallStop::Entry {
                nr: info.u.seccomp.nr,
                args: info.u.seccomp.args,
                compat: false,
            },
            OP_EXIT => SyscallStop::Exit {
                ret: info.u.exit.sval,
            },
            _ => SyscallStop::Other,
        }
    };
    Ok(match stop {
        SyscallStop::Entry { nr, args, .. } if ia32 => ia32_entry(pid, nr, args),
        other => other,
    })
}

/// Whether the thread's last syscall was a 32-bit one (a new child is
/// stopped inside its parent's clone, in the parent's mode).
pub fn is_ia32(pid: i32) -> bool {
    // SAFETY: as in `syscall_info`: a zeroed struct the kernel fills.
    let mut info: libc::ptrace_syscall_info = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::ptrace_syscall_info>();
    // SAFETY: the kernel writes at most `size` bytes into `info`.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            pid,
            size,
            &mut info as *mut libc::ptrace_syscall_info,
        )
    };
    rc > 0 && info.arch == super::ia32::AUDIT_ARCH_I386
}

/// A 32-bit syscall's entry as the x86-64 syscall of the same name, as
/// Falco's driver reports it. One the tracer does not write keeps a number
/// no x86-64 syscall has, so its exit pairs with nothing written.
fn ia32_entry(pid: i32, nr: u64, args: [u64; 6]) -> SyscallStop {
    const UNTRACED: u64 = u64::MAX;
    // A 32-bit call's arguments are its registers' low halves (the kernel
    // takes no more): a pointer read from them must not carry stale bits.
    let args = args.map(|a| a & 0xffff_ffff);
    if nr != super::ia32::SOCKETCALL {
        let nr = super::ia32::to_x64(nr).unwrap_or(UNTRACED);
        return SyscallStop::Entry {
            nr,
            args,
            compat: true,
        };
    }
    // socketcall(call, words): the words are the call's arguments.
    let Some((nr, count)) = super::ia32::socketcall(args[0]) else {
        return SyscallStop::Entry {
            nr: UNTRACED,
            args,
            compat: true,
        };
    };
    let memory = super::memory::Memory {
        pid: nix::unistd::Pid::from_raw(pid),
    };
    let mut call_args = [0u64; 6];
    let words = memory.bytes(args[1], count * 4);
    for (i, slot) in call_args.iter_mut().enumerate().take(count) {
        *slot = words
            .as_deref()
            .and_then(|w| w.get(i * 4..i * 4 + 4))
            .map_or(0, |b| {
                u64::from(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            });
    }
    SyscallStop::Entry {
        nr,
        args: call_args,
        compat: true,
    }
}

/// One waitpid report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Exited(i32, i32),
    Signaled(i32, i32),
    /// Stopped at a syscall entry or exit (TRACESYSGOOD).
    SyscallStop(i32),
    /// A PTRACE_EVENT_* stop, with the stop signal.
    Event(i32, i32, i32),
    /// A signal-delivery stop.
    Signal(i32, i32),
    /// Nothing to report yet (WNOHANG).
    Nothing,
    NoChildren,
    Interrupted,
}

/// The full wait status of an exit, as procexit wants it.
pub fn raw_status(w: Wait) -> i32 {
    match w {
        Wait::Exited(_, code) => (code & 0xff) << 8,
        Wait::Signaled(_, sig) => sig,
        _ => 0,
    }
}

pub fn wait_any(block: bool) -> io::Result<Wait> {
    let mut status = 0;
    let flags = libc::__WALL | if block { 0 } else { libc::WNOHANG };
    // SAFETY: status is a valid int for the kernel to write.
    let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
    if pid < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ECHILD) => Ok(Wait::NoChildren),
            Some(libc::EINTR) => Ok(Wait::Interrupted),
            _ => Err(err),
        };
    }
    if pid == 0 {
        return Ok(Wait::Nothing);
    }
    Ok(decode(pid, status))
}

pub fn decode(pid: i32, status: i32) -> Wait {
    if libc::WIFEXITED(status) {
        Wait::Exited(pid, libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        // Keep the core-dump bit with the signal, as the kernel's status does.
        Wait::Signaled(pid, status & 0xff)
    } else if libc::WIFSTOPPED(status) {
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        if sig == (libc::SIGTRAP | 0x80) {
            Wait::SyscallStop(pid)
        } else if event != 0 {
            Wait::Event(pid, sig, event)
        } else {
            Wait::Signal(pid, sig)
        }
    } else {
        Wait::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decode() {
        assert_eq!(decode(5, 3 << 8), Wait::Exited(5, 3));
        assert_eq!(decode(5, 9), Wait::Signaled(5, 9));
        assert_eq!(decode(5, 0x85 << 8 | 0x7f), Wait::SyscallStop(5));
        assert_eq!(
            decode(5, (libc::PTRACE_EVENT_EXEC << 16) | (5 << 8) | 0x7f),
            Wait::Event(5, 5, libc::PTRACE_EVENT_EXEC)
        );
        assert_eq!(decode(5, (34 << 8) | 0x7f), Wait::Signal(5, 34));
        assert_eq!(raw_status(Wait::Exited(1, 2)), 512);
    }
}
