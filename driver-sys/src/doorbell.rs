//! A doorbell other threads ring to end the reader's wait early.
//!
//! On a module that wakes its consumer through poll() (ABI 2.1), an idle
//! reader blocks until a record comes; what other threads hand the reading
//! loop (a stop request, container metadata, a plugin's async event, new
//! rules) would wait for the loop's next timeout. Ringing this eventfd,
//! which the reader polls beside the rings, ends the wait at once, so the
//! timeout can be long and an idle agent rarely wakes.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

#[derive(Debug)]
pub struct Doorbell {
    fd: OwnedFd,
}

impl Doorbell {
    /// A new, silent doorbell (a non-blocking eventfd).
    pub fn new() -> io::Result<Doorbell> {
        // SAFETY: eventfd takes no pointers; its result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by no one else.
        Ok(Doorbell {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Rings: the reader's current or next wait ends at once. Rings that
    /// come before the reader looks are one ring.
    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of a live u64 to our own eventfd. A
        // full counter (EAGAIN) already means "rung", so the result is
        // not needed.
        let _ = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Silences it again after the reader saw it ring.
    pub(crate) fn silence(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64 from our own
        // non-blocking eventfd; EAGAIN (not rung) leaves it as it is.
        let _ = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut count as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
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
