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

    /// A u32 at `addr`.
    pub fn u32(&self, addr: u64) -> Option<u32> {
        let b = self.bytes(addr, 4)?;
        Some(u32::from_ne_bytes(b.try_into().ok()?))
    }

    /// A pointer, `unsigned long` or `size_t` at `addr`, at the caller's
    /// width: 4 bytes for a 32-bit (compat) caller, 8 otherwise.
    pub fn word(&self, addr: u64, compat: bool) -> Option<u64> {
        if compat {
            self.u32(addr).map(u64::from)
        } else {
            self.u64(addr)
        }
    }

    /// A NULL-terminated array of string pointers (argv), each string with
    /// its NUL, back to back, cut at `max` bytes (the last byte a NUL).
    /// The pointers are 4 bytes wide for a 32-bit (compat) caller.
    pub fn string_array(&self, addr: u64, max: usize, compat: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let width = if compat { 4 } else { 8 };
        for i in 0..1024u64 {
            let Some(ptr) = self.word(addr.wrapping_add(i * width), compat) else {
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
        assert_eq!(
            me.string_array(argv.as_ptr() as u64, 100, false),
            b"sh\0-c\0"
        );
        assert_eq!(me.string_array(argv.as_ptr() as u64, 4, false), b"sh\0\0");
        assert!(me.cstr(0, 10).is_none());
        // Pointers are the tracee's to choose: the top of the address space
        // is refused, never an overflow.
        assert!(me.cstr(u64::MAX, 10).is_none());
        assert!(me.bytes(u64::MAX - 2, 8).is_none());
        assert!(me.string_array(u64::MAX - 4, 100, false).is_empty());
        assert!(me.string_array(u64::MAX - 4, 100, true).is_empty());
        assert_eq!(me.u64(argv.as_ptr() as u64), Some(a.as_ptr() as u64));
    }

    /// A 32-bit caller's argv: 4-byte pointers, read as such (read as
    /// 8-byte ones, two pointers would fuse into one bad address).
    #[test]
    fn reads_a_32_bit_pointer_array() {
        let me = Memory {
            pid: nix::unistd::getpid(),
        };
        // Strings in a Box below 4 GiB cannot be asked for, so the array is
        // checked against an address it fits: a mapping made at a low one.
        // SAFETY: an anonymous private mapping at a hint; the result is
        // checked before use and unmapped below.
        let base = unsafe {
            libc::mmap(
                0x4000_0000 as *mut libc::c_void,
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED || base as u64 >= 1 << 32 {
            eprintln!("skipped: no mapping below 4 GiB");
            return;
        }
        let at = base as u64;
        let mut page = vec![0u8; 4096];
        page[64..67].copy_from_slice(b"sh\0");
        page[80..83].copy_from_slice(b"-c\0");
        page[96..103].copy_from_slice(b"exit 0\0");
        for (i, off) in [64u64, 80, 96, 0].iter().enumerate() {
            let ptr = if *off == 0 { 0 } else { (at + off) as u32 };
            page[i * 4..i * 4 + 4].copy_from_slice(&ptr.to_ne_bytes());
        }
        // SAFETY: the mapping is 4096 bytes, writable, and ours.
        unsafe { std::ptr::copy_nonoverlapping(page.as_ptr(), base.cast::<u8>(), 4096) };
        assert_eq!(me.string_array(at, 100, true), b"sh\0-c\0exit 0\0");
        assert_eq!(me.word(at, true), Some(at + 64));
        assert_ne!(me.string_array(at, 100, false), b"sh\0-c\0exit 0\0");
        // SAFETY: unmapping the mapping made above, no longer referenced.
        unsafe { libc::munmap(base, 4096) };
    }
}
