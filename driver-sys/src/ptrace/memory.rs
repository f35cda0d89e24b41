//! Reading a stopped tracee's memory with process_vm_readv: one call per
//! page touched, so a string that ends before an unmapped page reads fine.

use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::unistd::Pid;
use std::io::IoSliceMut;

const PAGE: u64 = 4096;

/// One tracee's address space.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub pid: Pid,
}

impl Memory {
    /// `len` bytes at `addr`, or None if any of them cannot be read.
    pub fn bytes(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        if addr == 0 {
            return None;
        }
        let mut out = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let n = self.read_some(addr.wrapping_add(done as u64), &mut out[done..])?;
            done += n;
        }
        Some(out)
    }

    /// A NUL-terminated string at `addr`, without its NUL, cut at `max`
    /// bytes; None if its first byte cannot be read.
    pub fn cstr(&self, addr: u64, max: usize) -> Option<Vec<u8>> {
        if addr == 0 {
            return None;
        }
        let mut out = Vec::new();
        let mut chunk = [0u8; PAGE as usize];
        while out.len() < max {
            let at = addr.wrapping_add(out.len() as u64);
            let room = ((PAGE - at % PAGE) as usize).min(max - out.len());
            let n = match self.read_some(at, &mut chunk[..room]) {
                Some(n) => n,
                None if out.is_empty() => return None,
                None => break,
            };
            if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..end]);
                return Some(out);
            }
            out.extend_from_slice(&chunk[..n]);
        }
        Some(out)
    }

    /// A u64 at `addr`.
    pub fn u64(&self, addr: u64) -> Option<u64> {
        let b = self.bytes(addr, 8)?;
        Some(u64::from_ne_bytes(b.try_into().ok()?))
    }

    /// A NULL-terminated array of string pointers (argv), each string with
    /// its NUL, back to back, cut at `max` bytes (the last byte a NUL).
    pub fn string_array(&self, addr: u64, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..1024u64 {
            let Some(ptr) = self.u64(addr.wrapping_add(i * 8)) else {
                break;
            };
            if ptr == 0 || out.len() >= max {
                break;
            }
            let Some(s) = self.cstr(ptr, max - out.len()) else {
                break;
            };
            out.extend_from_slice(&s);
            out.push(0);
        }
        if out.len() > max {
            out.truncate(max);
            if let Some(last) = out.last_mut() {
                *last = 0;
            }
        }
        out
    }

    fn read_some(&self, addr: u64, buf: &mut [u8]) -> Option<usize> {
        if buf.is_empty() {
            return Some(0);
        }
        let remote = [RemoteIoVec {
            base: addr as usize,
            len: buf.len(),
        }];
        match process_vm_readv(self.pid, &mut [IoSliceMut::new(buf)], &remote) {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_strings_and_arrays() {
        let me = Memory {
            pid: nix::unistd::getpid(),
        };
        let s = b"hello\0world\0";
        assert_eq!(me.cstr(s.as_ptr() as u64, 100).unwrap(), b"hello");
        assert_eq!(me.cstr(s.as_ptr() as u64, 3).unwrap(), b"hel");
        let (a, b) = (b"sh\0", b"-c\0");
        let argv = [a.as_ptr() as u64, b.as_ptr() as u64, 0u64];
        assert_eq!(me.string_array(argv.as_ptr() as u64, 100), b"sh\0-c\0");
        assert_eq!(me.string_array(argv.as_ptr() as u64, 4), b"sh\0\0");
        assert!(me.cstr(0, 10).is_none());
        // Pointers are the tracee's to choose: the top of the address space
        // is refused, never an overflow.
        assert!(me.cstr(u64::MAX, 10).is_none());
        assert!(me.bytes(u64::MAX - 2, 8).is_none());
        assert!(me.string_array(u64::MAX - 4, 100).is_empty());
        assert_eq!(me.u64(argv.as_ptr() as u64), Some(a.as_ptr() as u64));
    }
}
