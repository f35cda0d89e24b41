//! The tracer's own signals. SIGINT, SIGTERM and SIGHUP (and the parent's
//! death, through PR_SET_PDEATHSIG) ask it to stop reporting; they must
//! never kill it, because a killed tracer fails its filtered tracees'
//! syscalls with ENOSYS. A 50 ms interval timer interrupts waitpid so a
//! stop request is seen even when every tracee is idle.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

extern "C" fn on_alarm(_: libc::c_int) {}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// The dispositions and timer in force before [`install`], put back on drop:
/// the tracer is a library call, its process may have its own uses for them.
pub struct Installed {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let off = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            it_value: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
        };
        // SAFETY: valid itimerval and sigaction values, saved by install.
        unsafe {
            libc::setitimer(libc::ITIMER_REAL, &off, std::ptr::null_mut());
            for (sig, old) in &self.previous {
                libc::sigaction(*sig, old, std::ptr::null_mut());
            }
        }
    }
}

fn handle(
    sig: libc::c_int,
    handler: extern "C" fn(libc::c_int),
    installed: &mut Installed,
) -> std::io::Result<()> {
    // SAFETY: an all-zero sigaction is valid; the handlers only store to an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        let mut old: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        // No SA_RESTART: waitpid must come back with EINTR.
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, &mut old) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        installed.previous.push((sig, old));
    }
    Ok(())
}

/// Installs the handlers, the timer and, if asked, the parent-death signal.
pub fn install(stop_with_parent: bool) -> std::io::Result<Installed> {
    STOP.store(false, Ordering::Relaxed);
    let mut installed = Installed {
        previous: Vec::new(),
    };
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        handle(sig, on_stop, &mut installed)?;
    }
    handle(libc::SIGALRM, on_alarm, &mut installed)?;
    let tick = libc::timeval {
        tv_sec: 0,
        tv_usec: 50_000,
    };
    let timer = libc::itimerval {
        it_interval: tick,
        it_value: tick,
    };
    // SAFETY: timer is a valid itimerval; the old value is not asked for.
    if unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if stop_with_parent {
        let parent = nix::unistd::getppid();
        // SAFETY: plain prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The parent may have died before the prctl: then nobody will send it.
        if nix::unistd::getppid() != parent {
            STOP.store(true, Ordering::Relaxed);
        }
    }
    Ok(installed)
}
