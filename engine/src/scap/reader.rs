//! Reads a capture block by block (gunzipping it when needed), parses its
//! tables and hands out its events as [`EventView`]s borrowed from the
//! read buffer, so memory stays bounded whatever the file's size. Every length is checked against the bytes actually there, so a
//! truncated or corrupt file gives a [`ScapError`] with the byte offset
//! (in the decompressed stream), never a panic.

use super::blocks::{self, proclist_version};
use super::tables::{
    fd_type, FdEntry, FdInfo, GroupEntry, InterfaceEntry, MachineInfo, ProcEntry, UserEntry,
};
use crate::event::view::{len_size_of, HEADER_LEN};
use crate::event::{EventView, ViewError};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ScapError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("byte {offset}: {what}")]
    Corrupt { offset: u64, what: String },
    #[error("byte {offset}: bad event: {source}")]
    Event { offset: u64, source: ViewError },
}

fn corrupt(offset: usize, what: impl Into<String>) -> ScapError {
    ScapError::Corrupt {
        offset: offset as u64,
        what: what.into(),
    }
}

/// A bounds-checked reader over a byte slice that knows its absolute offset.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], base: usize) -> Self {
        Cursor {
            bytes,
            pos: 0,
            base,
        }
    }
    fn offset(&self) -> usize {
        self.base + self.pos
    }
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ScapError> {
        if n > self.remaining() {
            return Err(corrupt(
                self.offset(),
                format!("{what}: need {n} bytes, {} left in block", self.remaining()),
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, ScapError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, ScapError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, ScapError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, ScapError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// A string stored as a 16-bit length then bytes (not NUL-terminated).
    fn str16(&mut self, what: &str) -> Result<String, ScapError> {
        let n = self.u16(what)? as usize;
        let b = self.take(n, what)?;
        Ok(text_until_nul(b))
    }
    fn list16(&mut self, what: &str) -> Result<Vec<String>, ScapError> {
        let n = self.u16(what)? as usize;
        let b = self.take(n, what)?;
        Ok(split_nul(b))
    }
}

#[inline]
fn le32(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
}

fn text_until_nul(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    crate::text::decode(&b[..end]).into_owned()
}

/// Splits a NUL-separated list, dropping the empty tail.
pub(crate) fn split_nul(b: &[u8]) -> Vec<String> {
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0)
        .map(|s| crate::text::decode(s).into_owned())
        .collect()
}

/// How much of a capture is buffered at a time: blocks are read into this
/// (it grows only for a single block larger than it). Measured over a
/// 196 MB capture in the page cache: 44 KiB to 256 KiB cost the same; a
/// read per block, as small blocks would otherwise get, costs a system
/// call each. Under half the L2 cache, so the bytes the kernel copies in
/// are still cached when the events are decoded.
const READ_CHUNK: usize = 128 * 1024;

/// The largest block read. libscap keeps event blocks under 64 KiB (its
/// "large" event blocks and the tables hold more); a block length past
/// this is corrupt, and reading it would let a small gzip'd file forge a
/// length that grows the buffer to 4 GiB.
pub const MAX_BLOCK_BYTES: usize = 64 << 20;

/// The bytes of a capture read block by block from any source. Holds at
/// most one chunk plus the block being read, whatever the file's size.
struct BlockStream {
    source: Box<dyn Read + Send>,
    /// `buf[start..end]` holds bytes not consumed yet.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Stream offset (in the decompressed stream) of `buf[0]`.
    base: u64,
    /// Length of the block last returned, consumed at the next call unless
    /// it is given back with [`BlockStream::unread`].
    pending: usize,
    eof: bool,
    path: String,
}

impl std::fmt::Debug for BlockStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStream")
            .field("path", &self.path)
            .field("offset", &self.offset())
            .finish()
    }
}

impl BlockStream {
    fn new(source: Box<dyn Read + Send>, path: String) -> BlockStream {
        BlockStream {
            source,
            buf: Vec::new(),
            start: 0,
            end: 0,
            base: 0,
            pending: 0,
            eof: false,
            path,
        }
    }

    /// Stream offset of the next unconsumed byte.
    fn offset(&self) -> usize {
        (self.base + self.start as u64) as usize
    }

    /// Makes at least `n` bytes available from `start` unless the stream
    /// ends first; returns how many are.
    fn fill(&mut self, n: usize) -> Result<usize, ScapError> {
        if self.end - self.start >= n {
            return Ok(self.end - self.start);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        while self.end < n && !self.eof {
            if self.end == self.buf.len() {
                // A chunk at first, whatever the block asks for, so reads
                // are large even when no block is; past that, grow with the
                // data actually read, so a corrupt length cannot make us
                // reserve gigabytes up front.
                let len = (self.buf.len() * 2).max(READ_CHUNK);
                self.buf.resize(len, 0);
            }
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ScapError::Io {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
        Ok(self.end - self.start)
    }

    /// The next block: its type, the stream offset of its body and the
    /// body (between header and trailer). None at a clean end of stream.
    #[inline]
    fn next_block(&mut self) -> Result<Option<Block<'_>>, ScapError> {
        self.start += std::mem::take(&mut self.pending);
        // The common case: a well-formed block already buffered whole.
        let head = &self.buf[self.start..self.end];
        if let (Some(ty), Some(total)) = (le32(head, 0), le32(head, 4)) {
            let total = total as usize;
            if total >= 12
                && total % 4 == 0
                && le32(head, total.wrapping_sub(4)).is_some_and(|t| t as usize == total)
            {
                self.pending = total;
                let at = self.offset() + 8;
                return Ok(Some((
                    ty,
                    at,
                    &self.buf[self.start + 8..self.start + total - 4],
                )));
            }
        }
        self.next_block_checked()
    }

    /// [`BlockStream::next_block`] reading more and naming what is wrong.
    #[cold]
    fn next_block_checked(&mut self) -> Result<Option<Block<'_>>, ScapError> {
        let pos = self.offset();
        let have = self.fill(8)?;
        if have == 0 {
            return Ok(None);
        }
        let head = &self.buf[self.start..self.end];
        let mut c = Cursor::new(head, pos);
        let ty = c.u32("block type")?;
        let total = c.u32("block length")? as usize;
        if total < 12 || total % 4 != 0 {
            return Err(corrupt(
                pos + 4,
                format!("block length {total} is not a multiple of 4 of at least 12"),
            ));
        }
        if total > MAX_BLOCK_BYTES {
            return Err(corrupt(
                pos + 4,
                format!(
                    "block length {total} is larger than the {} MiB a block may have",
                    MAX_BLOCK_BYTES >> 20
                ),
            ));
        }
        let have = self.fill(total)?;
        if total > have {
            return Err(corrupt(
                pos + 4,
                format!("block of {total} bytes runs past the end of the file ({have} left)"),
            ));
        }
        let block = &self.buf[self.start..self.start + total];
        let trailer_at = total - 4;
        let trailer = u32::from_le_bytes([
            block[trailer_at],
            block[trailer_at + 1],
            block[trailer_at + 2],
            block[trailer_at + 3],
        ]) as usize;
        if trailer != total {
            return Err(corrupt(
                pos + trailer_at,
                format!("block trailer {trailer} differs from its header {total}"),
            ));
        }
        self.pending = total;
        Ok(Some((ty, pos + 8, &block[8..trailer_at])))
    }

    /// The next block when it is a well-formed current-layout event of a
    /// known type, already buffered: where its parts are (consumed). None
    /// leaves the block for [`BlockStream::next_block`], which reads more,
    /// skips or names what is wrong. Same checks as the general path.
    #[inline(always)]
    fn next_plain_event(&mut self) -> Option<PlainEvent> {
        self.start += std::mem::take(&mut self.pending);
        let b = &self.buf[self.start..self.end];
        let ty = le32(b, 0)?;
        let head = match ty {
            blocks::EV_V2 | blocks::EV_V2_LARGE => 10,
            blocks::EVF_V2 | blocks::EVF_V2_LARGE => 14,
            _ => return None,
        };
        let total = le32(b, 4)? as usize;
        if total % 4 != 0 || total < head + 4 + HEADER_LEN || le32(b, total - 4)? as usize != total
        {
            return None;
        }
        let rec = b.get(head..total - 4)?;
        let h: &[u8; HEADER_LEN] = rec.get(..HEADER_LEN)?.try_into().ok()?;
        let ts = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
        let tid = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
        let len = u32::from_le_bytes([h[16], h[17], h[18], h[19]]) as usize;
        let event_type = u16::from_le_bytes([h[20], h[21]]);
        let nparams = u32::from_le_bytes([h[22], h[23], h[24], h[25]]);
        let info = crate::event::event_info(event_type)?;
        if len < HEADER_LEN || len > rec.len() {
            return None;
        }
        let len_size = len_size_of(info);
        let lens_len = (nparams as usize).checked_mul(len_size)?;
        if lens_len > len - HEADER_LEN {
            return None;
        }
        let lens = &rec[HEADER_LEN..HEADER_LEN + lens_len];
        let mut sum = 0u64;
        if len_size == 2 {
            for c in lens.chunks_exact(2) {
                sum += u64::from(u16::from_le_bytes([c[0], c[1]]));
            }
        } else {
            for c in lens.chunks_exact(4) {
                sum += u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            }
        }
        if sum > (len - HEADER_LEN - lens_len) as u64 {
            return None;
        }
        let at = self.start + head;
        self.pending = total;
        Some(PlainEvent {
            cpu: u16::from_le_bytes([b[8], b[9]]),
            dump_flags: if head == 14 { le32(b, 10)? } else { 0 },
            ts,
            tid,
            event_type,
            nparams,
            info,
            len_size,
            lens: at + HEADER_LEN..at + HEADER_LEN + lens_len,
            data: at + HEADER_LEN + lens_len..at + len,
        })
    }

    /// Gives back the block last returned: the next call returns it again.
    fn unread(&mut self) {
        self.pending = 0;
    }
}

/// A block: its type, the stream offset of its body, and the body.
type Block<'b> = (u32, usize, &'b [u8]);

/// Where the parts of an event checked by the fast path are in the buffer.
struct PlainEvent {
    cpu: u16,
    dump_flags: u32,
    ts: u64,
    tid: u64,
    event_type: u16,
    nparams: u32,
    info: &'static crate::event::EventInfo,
    len_size: usize,
    lens: std::ops::Range<usize>,
    data: std::ops::Range<usize>,
}

/// A capture being read: its tables, parsed when it is opened, and its
/// events, read incrementally by [`Capture::events`] with bounded memory.
#[derive(Debug)]
pub struct Capture {
    stream: BlockStream,
    /// Events delivered so far (`evt.num` of the last one).
    num: u64,
    failed: bool,
    pub major_version: u16,
    pub minor_version: u16,
    pub machine: Option<MachineInfo>,
    pub processes: Vec<ProcEntry>,
    pub fds: Vec<FdEntry>,
    pub users: Vec<UserEntry>,
    pub groups: Vec<GroupEntry>,
    /// Interface-list blocks, as block type and body: kept whole so a
    /// writer can pass them on (their content is not used otherwise).
    pub interface_blocks: Vec<(u32, Vec<u8>)>,
    /// The interface addresses those blocks list.
    pub interfaces: Vec<InterfaceEntry>,
}

/// Whether a file starts like a gzip stream.
fn is_gzip(path: &Path) -> std::io::Result<bool> {
    let mut magic = [0u8; 2];
    let mut f = std::fs::File::open(path)?;
    let mut got = 0;
    while got < 2 {
        match f.read(&mut magic[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got == 2 && magic == [0x1f, 0x8b])
}

/// The uncompressed bytes of a capture file (gunzipped when needed), for
/// tools and tests that want the raw stream; [`Capture::open`] does not
/// load files whole.
pub fn read_decompressed(path: impl AsRef<Path>) -> Result<Vec<u8>, ScapError> {
    let path = path.as_ref();
    let io = |source| ScapError::Io {
        path: path.display().to_string(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 8);
    flate2::read::MultiGzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .map_err(io)?;
    Ok(out)
}

impl Capture {
    /// Opens a capture file, gzipped or not, and reads its tables; events
    /// are read as they are asked for.
    pub fn open(path: impl AsRef<Path>) -> Result<Capture, ScapError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let io = |source| ScapError::Io {
            path: name.clone(),
            source,
        };
        let gzip = is_gzip(path).map_err(io)?;
        let file = std::fs::File::open(path).map_err(io)?;
        let source: Box<dyn Read + Send> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
                file,
            )))
        } else {
            Box::new(file)
        };
        Capture::from_stream(BlockStream::new(source, name))
    }

    /// Reads an uncompressed capture from any source (a pipe, a socket,
    /// a decoder), block by block.
    pub fn from_reader(source: impl Read + Send + 'static) -> Result<Capture, ScapError> {
        Capture::from_stream(BlockStream::new(Box::new(source), "<stream>".into()))
    }

    /// Parses an uncompressed capture held in memory.
    pub fn from_bytes(data: Vec<u8>) -> Result<Capture, ScapError> {
        Capture::from_stream(BlockStream::new(
            Box::new(std::io::Cursor::new(data)),
            "<memory>".into(),
        ))
    }

    fn from_stream(mut stream: BlockStream) -> Result<Capture, ScapError> {
        let (ty, body_at, body) = stream
            .next_block()?
            .ok_or_else(|| corrupt(0, "empty file"))?;
        if ty != blocks::SHB {
            return Err(corrupt(
                0,
                format!("not a capture: first block type {ty:#x}"),
            ));
        }
        let mut c = Cursor::new(body, body_at);
        let magic = c.u32("section header magic")?;
        if magic != blocks::SHB_MAGIC {
            return Err(corrupt(body_at, format!("bad byte-order magic {magic:#x}")));
        }
        let major_version = c.u16("major version")?;
        let minor_version = c.u16("minor version")?;
        if major_version > 1 {
            return Err(corrupt(
                body_at + 4,
                format!("unsupported format major version {major_version}"),
            ));
        }
        let mut machine = None;
        let (mut processes, mut fds, mut users, mut groups) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut interface_blocks, mut interfaces) = (Vec::new(), Vec::new());
        while let Some((ty, base, body)) = stream.next_block()? {
            match ty {
                blocks::MI | blocks::MI_INT => machine = Some(parse_machine(body, base)?),
                t if proclist_version(t).is_some() => {
                    parse_proclist(body, base, proclist_version(t).unwrap_or(9), &mut processes)?
                }
                blocks::FDL | blocks::FDL_INT | blocks::FDL_V2 => {
                    parse_fdlist(body, base, ty == blocks::FDL_V2, &mut fds)?
                }
                blocks::UL | blocks::UL_INT | blocks::UL_V2 => {
                    parse_userlist(body, base, ty == blocks::UL_V2, &mut users, &mut groups)?
                }
                blocks::IL | blocks::IL_INT | blocks::IL_V2 => {
                    parse_iflist(body, base, ty == blocks::IL_V2, &mut interfaces)?;
                    interface_blocks.push((ty, body.to_vec()));
                }
                t if blocks::is_event_block(t) => {
                    // The first event is the iterator's to deliver.
                    stream.unread();
                    break;
                }
                _ => {}
            }
        }
        Ok(Capture {
            stream,
            num: 0,
            failed: false,
            major_version,
            minor_version,
            machine,
            processes,
            fds,
            users,
            groups,
            interface_blocks,
            interfaces,
        })
    }

    /// The events in file order, from where the last call stopped. Each
    /// event borrows the read buffer until the next one is asked for.
    pub fn events(&mut self) -> Events<'_> {
        Events { capture: self }
    }

    /// Stream offset (in the decompressed stream) of the next block.
    pub fn offset(&self) -> u64 {
        (self.stream.offset() + self.stream.pending) as u64
    }
}

fn parse_machine(body: &[u8], base: usize) -> Result<MachineInfo, ScapError> {
    let mut c = Cursor::new(body, base);
    let mut mi = MachineInfo {
        num_cpus: c.u32("machine num_cpus")?,
        memory_size_bytes: c.u64("machine memory")?,
        max_pid: c.u64("machine max_pid")?,
        hostname: text_until_nul(c.take(128, "machine hostname")?),
        ..MachineInfo::default()
    };
    if c.remaining() >= 16 {
        mi.boot_ts_epoch = c.u64("machine boot ts")?;
        mi.flags = c.u64("machine flags")?;
    }
    Ok(mi)
}

fn parse_proclist(
    body: &[u8],
    base: usize,
    v: u8,
    out: &mut Vec<ProcEntry>,
) -> Result<(), ScapError> {
    let mut c = Cursor::new(body, base);
    while c.remaining() >= 4 {
        let entry_start = c.pos;
        let sub_len = if v >= 9 {
            c.u32("proc entry length")? as usize
        } else {
            0
        };
        let mut p = ProcEntry {
            sid: -1,
            vpgid: -1,
            vtid: -1,
            vpid: -1,
            loginuid: u32::MAX,
            ..ProcEntry::default()
        };
        p.tid = c.u64("proc tid")? as i64;
        p.pid = c.u64("proc pid")? as i64;
        p.ptid = c.u64("proc ptid")? as i64;
        if v >= 6 {
            p.sid = c.u64("proc sid")? as i64;
        }
        if v >= 8 {
            p.vpgid = c.u64("proc vpgid")? as i64;
        }
        p.comm = c.str16("proc comm")?;
        p.exe = c.str16("proc exe")?;
        if v >= 7 {
            p.exepath = c.str16("proc exepath")?;
        }
        p.args = c.list16("proc args")?;
        p.cwd = c.str16("proc cwd")?;
        p.fdlimit = c.u64("proc fdlimit")?;
        p.flags = c.u32("proc flags")?;
        p.uid = c.u32("proc uid")?;
        p.gid = c.u32("proc gid")?;
        if v >= 2 {
            p.vmsize_kb = c.u32("proc vmsize")?;
            p.vmrss_kb = c.u32("proc vmrss")?;
            p.vmswap_kb = c.u32("proc vmswap")?;
            p.pfmajor = c.u64("proc pfmajor")?;
            p.pfminor = c.u64("proc pfminor")?;
            if v >= 3 {
                p.env = c.list16("proc env")?;
            }
            if v >= 4 {
                p.vtid = c.u64("proc vtid")? as i64;
                p.vpid = c.u64("proc vpid")? as i64;
                p.cgroups = c.list16("proc cgroups")?;
                if v >= 5 {
                    p.root = c.str16("proc root")?;
                }
            }
        }
        if sub_len > 0 {
            let read = |c: &Cursor| c.pos - entry_start;
            let fits = |c: &Cursor, n: usize| read(c) + n <= sub_len;
            // Entries written before libs 0.10 end with at most 29 bytes
            // (loginuid, exe_writable, three capability sets); later ones
            // put pidns_init_start_ts and tty first.
            let newer = sub_len.saturating_sub(read(&c)) > 29;
            if newer {
                if fits(&c, 8) {
                    p.pidns_init_start_ts = c.u64("proc pidns start")?;
                }
                if fits(&c, 4) {
                    p.tty = c.u32("proc tty")?;
                }
            }
            if fits(&c, 4) {
                p.loginuid = c.u32("proc loginuid")?;
            }
            if fits(&c, 1) {
                p.exe_writable = c.u8("proc exe_writable")? != 0;
            }
            if fits(&c, 8) {
                p.cap_inheritable = c.u64("proc cap_inheritable")?;
            }
            if fits(&c, 8) {
                p.cap_permitted = c.u64("proc cap_permitted")?;
            }
            if fits(&c, 8) {
                p.cap_effective = c.u64("proc cap_effective")?;
            }
            if fits(&c, 1) {
                p.exe_upper_layer = c.u8("proc exe_upper_layer")? != 0;
            }
            if fits(&c, 8) {
                p.exe_ino = c.u64("proc exe_ino")?;
            }
            if fits(&c, 8) {
                p.exe_ino_ctime = c.u64("proc exe_ino_ctime")?;
            }
            if fits(&c, 8) {
                p.exe_ino_mtime = c.u64("proc exe_ino_mtime")?;
            }
            if fits(&c, 1) {
                p.exe_from_memfd = c.u8("proc exe_from_memfd")? != 0;
            }
            let done = read(&c);
            if done > sub_len {
                return Err(corrupt(
                    c.offset(),
                    format!("proc entry longer ({done}) than declared ({sub_len})"),
                ));
            }
            c.take(sub_len - done, "proc entry tail")?;
        }
        out.push(p);
    }
    Ok(())
}

fn ipv4(b: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}
fn ipv6(b: &[u8]) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    IpAddr::V6(Ipv6Addr::from(a))
}

fn parse_fdlist(
    body: &[u8],
    base: usize,
    v2: bool,
    out: &mut Vec<FdEntry>,
) -> Result<(), ScapError> {
    let mut c = Cursor::new(body, base);
    let tid = c.u64("fd list tid")? as i64;
    while c.remaining() >= 4 {
        let start = c.pos;
        let sub_len = if v2 {
            c.u32("fd entry length")? as usize
        } else {
            0
        };
        let fd = c.u64("fd number")? as i64;
        let ino = c.u64("fd inode")?;
        let ty = c.u8("fd type")?;
        let info = match ty {
            fd_type::IPV4_SOCK => FdInfo::Ipv4Sock {
                sip: ipv4(c.take(4, "fd sip")?),
                dip: ipv4(c.take(4, "fd dip")?),
                sport: c.u16("fd sport")?,
                dport: c.u16("fd dport")?,
                l4proto: c.u8("fd l4proto")?,
            },
            fd_type::IPV4_SERVSOCK => FdInfo::Ipv4ServSock {
                ip: ipv4(c.take(4, "fd ip")?),
                port: c.u16("fd port")?,
                l4proto: c.u8("fd l4proto")?,
            },
            fd_type::IPV6_SOCK => FdInfo::Ipv6Sock {
                sip: ipv6(c.take(16, "fd sip")?),
                dip: ipv6(c.take(16, "fd dip")?),
                sport: c.u16("fd sport")?,
                dport: c.u16("fd dport")?,
                l4proto: c.u8("fd l4proto")?,
            },
            fd_type::IPV6_SERVSOCK => FdInfo::Ipv6ServSock {
                ip: ipv6(c.take(16, "fd ip")?),
                port: c.u16("fd port")?,
                l4proto: c.u8("fd l4proto")?,
            },
            fd_type::UNIX_SOCK => FdInfo::UnixSock {
                source: c.u64("fd unix source")?,
                destination: c.u64("fd unix dest")?,
                name: c.str16("fd unix name")?,
            },
            fd_type::FILE_V2 => {
                let open_flags = c.u32("fd open flags")?;
                let name = c.str16("fd name")?;
                let dev = if sub_len > 0 && c.pos - start + 4 <= sub_len {
                    c.u32("fd dev")?
                } else {
                    0
                };
                FdInfo::File {
                    open_flags,
                    name,
                    dev,
                }
            }
            0 => FdInfo::Named {
                name: String::new(),
            },
            t if t <= fd_type::PIDFD => FdInfo::Named {
                name: c.str16("fd name")?,
            },
            other => FdInfo::Named {
                name: format!("unknown-type:[{other}]"),
            },
        };
        if sub_len > 0 {
            let done = c.pos - start;
            if done > sub_len {
                return Err(corrupt(
                    c.offset(),
                    format!("fd entry longer ({done}) than declared ({sub_len})"),
                ));
            }
            c.take(sub_len - done, "fd entry tail")?;
        }
        out.push(FdEntry {
            tid,
            fd,
            ino,
            fd_type: ty,
            info,
        });
    }
    Ok(())
}

fn parse_iflist(
    body: &[u8],
    base: usize,
    v2: bool,
    out: &mut Vec<InterfaceEntry>,
) -> Result<(), ScapError> {
    let mut c = Cursor::new(body, base);
    while c.remaining() >= 4 {
        let start = c.pos;
        // V2 entries start with their length (not counting itself).
        let entry_len = if v2 {
            Some(c.u32("interface entry length")? as usize)
        } else {
            None
        };
        let after_len = c.pos;
        let kind = c.u16("interface type")?;
        let name_len = c.u16("interface name length")? as usize;
        let (v6, has_speed) = match kind {
            1 => (false, true),
            2 => (true, true),
            3 => (false, false),
            4 => (true, false),
            other => {
                return Err(corrupt(
                    c.offset() - 4,
                    format!("unknown interface type {other}"),
                ))
            }
        };
        let ip = |c: &mut Cursor<'_>, what: &str| -> Result<IpAddr, ScapError> {
            Ok(if v6 {
                ipv6(c.take(16, what)?)
            } else {
                ipv4(c.take(4, what)?)
            })
        };
        let addr = ip(&mut c, "interface address")?;
        let netmask = ip(&mut c, "interface netmask")?;
        let bcast = ip(&mut c, "interface broadcast")?;
        let linkspeed = if has_speed {
            c.u64("interface link speed")?
        } else {
            0
        };
        let name = text_until_nul(c.take(name_len, "interface name")?);
        if let Some(len) = entry_len {
            let done = c.pos - after_len;
            if done > len {
                return Err(corrupt(
                    base + start,
                    format!("interface entry longer ({done}) than declared ({len})"),
                ));
            }
            c.take(len - done, "interface entry tail")?;
        }
        out.push(InterfaceEntry {
            name,
            addr,
            netmask,
            bcast,
            linkspeed,
        });
    }
    Ok(())
}

fn parse_userlist(
    body: &[u8],
    base: usize,
    v2: bool,
    users: &mut Vec<UserEntry>,
    groups: &mut Vec<GroupEntry>,
) -> Result<(), ScapError> {
    let mut c = Cursor::new(body, base);
    while c.remaining() >= 4 {
        let start = c.pos;
        let sub_len = if v2 {
            c.u32("user entry length")? as usize
        } else {
            0
        };
        let kind = c.u8("user entry type")?;
        if kind == 0 {
            users.push(UserEntry {
                uid: c.u32("user uid")?,
                gid: c.u32("user gid")?,
                name: c.str16("user name")?,
                homedir: c.str16("user homedir")?,
                shell: c.str16("user shell")?,
            });
        } else {
            groups.push(GroupEntry {
                gid: c.u32("group gid")?,
                name: c.str16("group name")?,
            });
        }
        if sub_len > 0 {
            let done = c.pos - start;
            if done > sub_len {
                return Err(corrupt(
                    c.offset(),
                    format!("user entry longer ({done}) than declared ({sub_len})"),
                ));
            }
            c.take(sub_len - done, "user entry tail")?;
        }
    }
    Ok(())
}

/// The events of a [`Capture`], one at a time. Not an `Iterator`: each
/// event borrows the read buffer, which the next call reuses. Stops after
/// the first error.
pub struct Events<'c> {
    capture: &'c mut Capture,
}

impl Events<'_> {
    /// The next event, None at the end of the capture (or after an error).
    #[allow(clippy::should_implement_trait)]
    #[inline(always)]
    pub fn next(&mut self) -> Option<Result<EventView<'_>, ScapError>> {
        if self.capture.failed {
            return None;
        }
        if let Some(p) = self.capture.stream.next_plain_event() {
            let cap = &mut *self.capture;
            let buf = &cap.stream.buf;
            let mut ev = EventView::from_checked(
                p.ts,
                p.tid,
                p.event_type,
                p.nparams,
                p.info,
                p.len_size,
                &buf[p.lens],
                &buf[p.data],
            );
            cap.num += 1;
            ev.num = cap.num;
            ev.cpu = p.cpu;
            ev.dump_flags = p.dump_flags;
            return Some(Ok(ev));
        }
        self.next_general()
    }

    /// Every case the fast path leaves: reading more, other block types
    /// and layouts, unknown event types (skipped), errors.
    #[inline(never)]
    fn next_general(&mut self) -> Option<Result<EventView<'_>, ScapError>> {
        let cap = &mut *self.capture;
        let (ty, base) = loop {
            match cap.stream.next_block() {
                Ok(Some((ty, base, body))) => {
                    // Tables written after events (a new section) are not
                    // used; event types newer than the schema are skipped
                    // like libscap does.
                    if blocks::is_event_block(ty) && !newer_than_schema(ty, body) {
                        break (ty, base);
                    }
                }
                Ok(None) => return None,
                Err(e) => {
                    cap.failed = true;
                    return Some(Err(e));
                }
            }
        };
        let s = &cap.stream;
        let body = &s.buf[s.start + 8..s.start + s.pending - 4];
        match decode_event_block(ty, body, base) {
            Ok(mut ev) => {
                cap.num += 1;
                ev.num = cap.num;
                Some(Ok(ev))
            }
            Err(e) => {
                cap.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn has_flags(ty: u32) -> bool {
    matches!(ty, blocks::EVF | blocks::EVF_V2 | blocks::EVF_V2_LARGE)
}

/// Whether an event block holds an event type this schema does not know.
fn newer_than_schema(ty: u32, body: &[u8]) -> bool {
    let at = if has_flags(ty) { 6 } else { 2 };
    match body.get(at + 20..at + 22) {
        Some(b) => crate::event::event_info(u16::from_le_bytes([b[0], b[1]])).is_none(),
        None => false,
    }
}

/// Decodes an event block body.
#[inline]
fn decode_event_block(ty: u32, body: &[u8], base: usize) -> Result<EventView<'_>, ScapError> {
    let flagged = has_flags(ty);
    let head = if flagged { 6 } else { 2 };
    if body.len() < head {
        return Err(short_event_block(ty, body, base));
    }
    let cpu = u16::from_le_bytes([body[0], body[1]]);
    let dump_flags = if flagged {
        u32::from_le_bytes([body[2], body[3], body[4], body[5]])
    } else {
        0
    };
    let rest = &body[head..];
    let parsed = if matches!(ty, blocks::EV | blocks::EV_INT | blocks::EVF) {
        EventView::parse_v1(rest)
    } else {
        EventView::parse(rest)
    };
    let mut ev = parsed.map_err(|source| ScapError::Event {
        offset: (base + head) as u64,
        source,
    })?;
    ev.cpu = cpu;
    ev.dump_flags = dump_flags;
    Ok(ev)
}

/// The error for an event block too short for its cpu (and flags) fields.
#[cold]
fn short_event_block(ty: u32, body: &[u8], base: usize) -> ScapError {
    let mut c = Cursor::new(body, base);
    match c.u16("event cpu") {
        Err(e) => e,
        Ok(_) if has_flags(ty) => match c.u32("event flags") {
            Err(e) => e,
            Ok(_) => corrupt(base, "short event block"),
        },
        Ok(_) => corrupt(base, "short event block"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scap::Writer;

    /// A capture of `events` identical open exits, generated as it is
    /// read, so the test itself holds only one block.
    struct Generated {
        head: Vec<u8>,
        block: Vec<u8>,
        pos: usize,
        left: u64,
    }

    impl Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.pos == self.head.len() {
                if self.left == 0 {
                    return Ok(0);
                }
                self.left -= 1;
                self.head.clear();
                self.head.extend_from_slice(&self.block);
                self.pos = 0;
            }
            let n = buf.len().min(self.head.len() - self.pos);
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn open_exit(name: &str) -> Vec<u8> {
        let params: [&[u8]; 4] = [
            &3i64.to_le_bytes(),
            &[name.as_bytes(), b"\0"].concat(),
            &1u32.to_le_bytes(),
            &0u32.to_le_bytes(),
        ];
        let mut body = Vec::new();
        for p in &params {
            body.extend_from_slice(&(p.len() as u16).to_le_bytes());
        }
        for p in &params {
            body.extend_from_slice(p);
        }
        let mut ev = Vec::new();
        ev.extend_from_slice(&1u64.to_le_bytes());
        ev.extend_from_slice(&7u64.to_le_bytes());
        ev.extend_from_slice(&((26 + body.len()) as u32).to_le_bytes());
        ev.extend_from_slice(&3u16.to_le_bytes());
        ev.extend_from_slice(&(params.len() as u32).to_le_bytes());
        ev.extend_from_slice(&body);
        ev
    }

    #[test]
    fn a_large_stream_is_read_in_bounded_memory() {
        let head = Writer::new(Vec::new(), &MachineInfo::default())
            .unwrap()
            .finish()
            .unwrap();
        let raw = open_exit(&"/x".repeat(100));
        let mut one = Writer::new(Vec::new(), &MachineInfo::default()).unwrap();
        one.write_event(&EventView::parse(&raw).unwrap()).unwrap();
        let block = one.finish().unwrap()[head.len()..].to_vec();
        let count = 2_000_000u64;
        let mut cap = Capture::from_reader(Generated {
            head,
            block: block.clone(),
            pos: 0,
            left: count,
        })
        .unwrap();
        let mut seen = 0u64;
        let mut events = cap.events();
        while let Some(ev) = events.next() {
            assert_eq!(ev.unwrap().nparams, 4);
            seen += 1;
        }
        assert_eq!(seen, count);
        let total = count * block.len() as u64;
        assert!(total > 400_000_000, "{total} bytes streamed");
        assert!(
            cap.stream.buf.capacity() <= READ_CHUNK,
            "buffer grew to {}",
            cap.stream.buf.capacity()
        );
    }

    /// Counts the reads asked of the source it wraps for fewer than half
    /// a chunk of bytes.
    struct SmallReads<R> {
        inner: R,
        small: std::sync::Arc<std::sync::atomic::AtomicU64>,
    }

    impl<R: Read> Read for SmallReads<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if buf.len() < READ_CHUNK / 2 {
                self.small
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            self.inner.read(buf)
        }
    }

    #[test]
    fn small_blocks_are_read_a_chunk_at_a_time() {
        // No block is larger than an event: the buffer must still be a
        // chunk, not the size of the largest block, or every read asks for
        // one block's bytes (a system call per block on a file).
        let head = Writer::new(Vec::new(), &MachineInfo::default())
            .unwrap()
            .finish()
            .unwrap();
        let raw = open_exit("/etc/hosts");
        let mut one = Writer::new(Vec::new(), &MachineInfo::default()).unwrap();
        one.write_event(&EventView::parse(&raw).unwrap()).unwrap();
        let block = one.finish().unwrap()[head.len()..].to_vec();
        let count = 10_000u64;
        let small = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut cap = Capture::from_reader(SmallReads {
            inner: Generated {
                head,
                block,
                pos: 0,
                left: count,
            },
            small: small.clone(),
        })
        .unwrap();
        let mut seen = 0u64;
        let mut events = cap.events();
        while let Some(ev) = events.next() {
            ev.unwrap();
            seen += 1;
        }
        assert_eq!(seen, count);
        let small = small.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(small, 0, "{small} reads asked for less than half a chunk");
        assert_eq!(cap.stream.buf.len(), READ_CHUNK);
    }

    #[test]
    fn a_block_larger_than_the_buffer_is_read_whole() {
        let head = Writer::new(Vec::new(), &MachineInfo::default())
            .unwrap()
            .finish()
            .unwrap();
        let long = "/y".repeat(30_000);
        let mut w = Writer::new(Vec::new(), &MachineInfo::default()).unwrap();
        for _ in 0..20 {
            // A large-payload type is not needed: 20 blocks of 60 kB span
            // several chunks, and one write of them all is read in pieces.
            w.write_event(&EventView::parse(&open_exit(&long)).unwrap())
                .unwrap();
        }
        let bytes = w.finish().unwrap();
        assert!(bytes.len() > READ_CHUNK * 4);
        let mut cap = Capture::from_bytes(bytes).unwrap();
        let mut events = cap.events();
        let mut n = 0;
        while let Some(ev) = events.next() {
            let ev = ev.unwrap();
            assert_eq!(
                ev.param(1).unwrap().as_str().map(str::len),
                Some(long.len())
            );
            n += 1;
        }
        assert_eq!(n, 20);
        assert!(!head.is_empty());
    }

    #[test]
    fn the_fast_path_reads_flagged_blocks_like_the_general_one() {
        let bytes = Writer::new(Vec::new(), &MachineInfo::default())
            .unwrap()
            .finish()
            .unwrap();
        let raw = open_exit("/etc/hosts");
        let mut body = Vec::new();
        body.extend_from_slice(&3u16.to_le_bytes());
        body.extend_from_slice(&0x55u32.to_le_bytes());
        body.extend_from_slice(&raw);
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let total = (body.len() + 12) as u32;
        for ty in [blocks::EVF_V2, blocks::EV_V2] {
            let mut b = body.clone();
            if ty == blocks::EV_V2 {
                // No flags field: cpu then the record.
                b.drain(2..6);
                while b.len() % 4 != 0 {
                    b.push(0);
                }
            }
            let total = if ty == blocks::EV_V2 {
                (b.len() + 12) as u32
            } else {
                total
            };
            let mut file = bytes.clone();
            file.extend_from_slice(&ty.to_le_bytes());
            file.extend_from_slice(&total.to_le_bytes());
            file.extend_from_slice(&b);
            file.extend_from_slice(&total.to_le_bytes());
            let general = decode_event_block(ty, &b, 0).unwrap();
            let mut cap = Capture::from_bytes(file).unwrap();
            let mut events = cap.events();
            let fast = events.next().unwrap().unwrap();
            assert_eq!(
                (
                    fast.cpu,
                    fast.dump_flags,
                    fast.ts,
                    fast.tid,
                    fast.event_type,
                    fast.nparams
                ),
                (
                    general.cpu,
                    general.dump_flags,
                    general.ts,
                    general.tid,
                    general.event_type,
                    general.nparams
                )
            );
            assert_eq!(fast.cpu, 3);
            assert_eq!(fast.dump_flags, if ty == blocks::EVF_V2 { 0x55 } else { 0 });
            for i in 0..4 {
                assert_eq!(fast.param_bytes(i), general.param_bytes(i));
            }
            assert_eq!(fast.param(1).unwrap().as_str(), Some("/etc/hosts"));
            assert!(events.next().is_none());
        }
    }

    #[test]
    fn a_corrupt_length_does_not_reserve_it() {
        let mut bytes = Writer::new(Vec::new(), &MachineInfo::default())
            .unwrap()
            .finish()
            .unwrap();
        let at = bytes.len();
        bytes.extend_from_slice(&blocks::EV_V2.to_le_bytes());
        bytes.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 64]);
        let err = Capture::from_bytes(bytes.clone()).unwrap_err().to_string();
        assert!(err.contains(&format!("byte {}", at + 4)), "{err}");
        assert!(
            err.contains("runs past the end") || err.contains("larger than the 64 MiB"),
            "{err}"
        );
        let mut stream = BlockStream::new(Box::new(std::io::Cursor::new(bytes)), "t".into());
        while stream.next_block().is_ok_and(|b| b.is_some()) {}
        assert!(
            stream.buf.capacity() <= READ_CHUNK,
            "{}",
            stream.buf.capacity()
        );
    }
}
