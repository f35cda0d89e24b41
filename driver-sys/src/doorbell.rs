//! A doorbell other threads ring to end the reader's wait early.
//!
//! On a module that wakes its consumer through poll() (ABI 2.1), an idle
//! reader blocks until a record comes; what other threads hand the reading
//! loop (a stop request, container metadata, a plugin's async event, new
//! rules) would wait for the loop's next timeout. Ringing this eventfd,
//! which the reader polls beside the rings, ends the wait at once, so the
//! timeout can be long and an idle agent rarely wakes.

use nix::sys::eventfd::{EfdFlags, EventFd};
use std::io;
use std::os::fd::{AsRawFd, RawFd};

#[derive(Debug)]
pub struct Doorbell {
    fd: EventFd,
}

impl Doorbell {
    /// A new, silent doorbell (a non-blocking eventfd).
    pub fn new() -> io::Result<Doorbell> {
        let flags = EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK;
        Ok(Doorbell {
            fd: EventFd::from_value_and_flags(0, flags)?,
        })
    }

    /// Rings: the reader's current or next wait ends at once. Rings that
    /// come before the reader looks are one ring.
    pub fn ring(&self) {
        // A full counter (EAGAIN) already means "rung".
        let _ = self.fd.write(1);
    }

    /// Silences it again after the reader saw it ring.
    pub(crate) fn silence(&self) {
        // EAGAIN: it was not rung, which is as silent as it gets.
        let _ = self.fd.read();
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(bell: &Doorbell) -> bool {
        let mut fds = [libc::pollfd {
            fd: bell.fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one live pollfd, no wait.
        unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
        fds[0].revents & libc::POLLIN != 0
    }

    #[test]
    fn rings_until_silenced() {
        let bell = Doorbell::new().unwrap();
        assert!(!rung(&bell));
        bell.ring();
        bell.ring();
        assert!(rung(&bell));
        bell.silence();
        assert!(!rung(&bell));
        // Silencing a silent bell does not block.
        bell.silence();
    }
}
