//! Reading a stopped tracee's memory with process_vm_readv: one call per
//! page touched, so a string that ends before an unmapped page reads fine.

use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::unistd::Pid;
use std::io::IoSliceMut;

const PAGE: u64 = 4096;

/// The parts of a `struct msghdr` the tracer reads, widened to u64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgHdr {
    pub name: u64,
    /// msg_namelen, 0 if negative.
    pub namelen: u64,
    pub iov: u64,
    pub iovlen: u64,
}

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

    /// A `struct msghdr` at `addr`, at the caller's layout (i386's is
    /// seven 32-bit words; x86-64's has 8-byte pointers and sizes).
    pub fn msghdr(&self, addr: u64, compat: bool) -> Option<MsgHdr> {
        let w = if compat { 4 } else { 8 };
        // name, namelen (an int, padded to w), iov, iovlen, control, controllen.
        let raw = self.bytes(addr, 6 * w)?;
        let field = |i: usize| -> u64 {
            let b = &raw[i * w..(i + 1) * w];
            match *b {
                [a, b, c, d] => u64::from(u32::from_ne_bytes([a, b, c, d])),
                _ => b.try_into().map(u64::from_ne_bytes).unwrap_or(0),
            }
        };
        // An int: its slot's padding (x86-64) is not part of it.
        let namelen = (field(1) as u32 as i32).max(0) as u64;
        Some(MsgHdr {
            name: field(0),
            namelen,
            iov: field(2),
            iovlen: field(3),
        })
    }

    /// The (base, len) pairs of an iovec array, at the caller's layout
    /// (`struct compat_iovec`, two 32-bit words, for a 32-bit caller);
    /// None if any entry cannot be read. At most UIO_MAXIOV entries, as
    /// the kernel takes.
    pub fn iovecs(&self, addr: u64, count: u64, compat: bool) -> Option<Vec<(u64, u64)>> {
        const UIO_MAXIOV: u64 = 1024;
        let w: u64 = if compat { 4 } else { 8 };
        let count = count.min(UIO_MAXIOV);
        if count == 0 {
            return Some(Vec::new());
        }
        let raw = self.bytes(addr, (count * 2 * w) as usize)?;
        Some(
            raw.chunks_exact(2 * w as usize)
                .map(|e| {
                    let (base, len) = e.split_at(w as usize);
                    let word = |b: &[u8]| match *b {
                        [a, b, c, d] => u64::from(u32::from_ne_bytes([a, b, c, d])),
                        _ => b.try_into().map(u64::from_ne_bytes).unwrap_or(0),
                    };
                    (word(base), word(len))
                })
                .collect(),
        )
    }

    /// The first `max` bytes of the buffers of an iovec array, gathered;
    /// what could be read of them if one is unreadable.
    pub fn gather(&self, iov: &[(u64, u64)], max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for &(base, len) in iov {
            if out.len() >= max {
                break;
            }
            let n = (len.min((max - out.len()) as u64)) as usize;
            if n == 0 {
                continue;
            }
            match self.bytes(base, n) {
                Some(b) => out.extend_from_slice(&b),
                None => break,
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

    /// msghdr and iovec at either layout: i386's 32-bit words, x86-64's
    /// 8-byte ones with msg_namelen padded (the padding is not read).
    #[test]
    fn reads_msghdr_and_iovec_at_either_width() {
        let me = Memory {
            pid: nix::unistd::getpid(),
        };
        let hdr32: [u32; 7] = [0x1000, 16, 0x2000, 2, 0, 0, 0];
        let got = me.msghdr(hdr32.as_ptr() as u64, true).unwrap();
        let want = MsgHdr {
            name: 0x1000,
            namelen: 16,
            iov: 0x2000,
            iovlen: 2,
        };
        assert_eq!(got, want);
        // namelen 16 with junk in its padding; then iov, iovlen, control...
        let hdr64: [u64; 7] = [0x1000, 0xdead_beef_0000_0010, 0x2000, 2, 0, 0, 0];
        assert_eq!(me.msghdr(hdr64.as_ptr() as u64, false).unwrap(), want);
        let negative: [u32; 7] = [0x1000, u32::MAX, 0x2000, 2, 0, 0, 0];
        assert_eq!(
            me.msghdr(negative.as_ptr() as u64, true).unwrap().namelen,
            0
        );

        let iov32: [u32; 4] = [0x10, 6, 0x20, 4];
        assert_eq!(
            me.iovecs(iov32.as_ptr() as u64, 2, true).unwrap(),
            [(0x10, 6), (0x20, 4)]
        );
        let (a, b) = (b"hello ", b"ia32");
        let iov64: [u64; 4] = [a.as_ptr() as u64, 6, b.as_ptr() as u64, 4];
        let iov = me.iovecs(iov64.as_ptr() as u64, 2, false).unwrap();
        assert_eq!(me.gather(&iov, 80), b"hello ia32");
        assert_eq!(me.gather(&iov, 8), b"hello ia");
        assert!(me.iovecs(u64::MAX - 4, 2, true).is_none());
        assert!(me.msghdr(0, false).is_none());
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
