//! Reads a whole capture into memory (gunzipping it when needed), parses
//! its tables and iterates its events as [`EventView`]s borrowed from the
//! buffer. Every length is checked against the bytes actually there, so a
//! truncated or corrupt file gives a [`ScapError`] with the byte offset
//! (in the decompressed stream), never a panic.

use super::blocks::{self, proclist_version};
use super::tables::{
    fd_type, FdEntry, FdInfo, GroupEntry, InterfaceEntry, MachineInfo, ProcEntry, UserEntry,
};
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
        Ok(lossy_until_nul(b))
    }
    fn list16(&mut self, what: &str) -> Result<Vec<String>, ScapError> {
        let n = self.u16(what)? as usize;
        let b = self.take(n, what)?;
        Ok(split_nul(b))
    }
}

fn lossy_until_nul(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Splits a NUL-separated list, dropping the empty tail.
pub(crate) fn split_nul(b: &[u8]) -> Vec<String> {
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// A capture loaded in memory with its tables parsed.
#[derive(Debug)]
pub struct Capture {
    data: Vec<u8>,
    events_start: usize,
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

impl Capture {
    /// Reads a capture file, gzipped or not.
    pub fn open(path: impl AsRef<Path>) -> Result<Capture, ScapError> {
        let path = path.as_ref();
        let io = |source| ScapError::Io {
            path: path.display().to_string(),
            source,
        };
        let raw = std::fs::read(path).map_err(io)?;
        let data = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::with_capacity(raw.len() * 8);
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .map_err(io)?;
            out
        } else {
            raw
        };
        Capture::from_bytes(data)
    }

    /// Parses an uncompressed capture held in memory.
    pub fn from_bytes(data: Vec<u8>) -> Result<Capture, ScapError> {
        let mut cap = Capture {
            data: Vec::new(),
            events_start: 0,
            major_version: 0,
            minor_version: 0,
            machine: None,
            processes: Vec::new(),
            fds: Vec::new(),
            users: Vec::new(),
            groups: Vec::new(),
            interface_blocks: Vec::new(),
            interfaces: Vec::new(),
        };
        let mut pos = 0usize;
        let (ty, body) = block_at(&data, pos)?.ok_or_else(|| corrupt(0, "empty file"))?;
        if ty != blocks::SHB {
            return Err(corrupt(
                0,
                format!("not a capture: first block type {ty:#x}"),
            ));
        }
        let mut c = Cursor::new(body, pos + 8);
        let magic = c.u32("section header magic")?;
        if magic != blocks::SHB_MAGIC {
            return Err(corrupt(pos + 8, format!("bad byte-order magic {magic:#x}")));
        }
        cap.major_version = c.u16("major version")?;
        cap.minor_version = c.u16("minor version")?;
        if cap.major_version > 1 {
            return Err(corrupt(
                pos + 12,
                format!("unsupported format major version {}", cap.major_version),
            ));
        }
        pos += body.len() + 12;
        while let Some((ty, body)) = block_at(&data, pos)? {
            let base = pos + 8;
            match ty {
                blocks::MI | blocks::MI_INT => cap.machine = Some(parse_machine(body, base)?),
                t if proclist_version(t).is_some() => parse_proclist(
                    body,
                    base,
                    proclist_version(t).unwrap_or(9),
                    &mut cap.processes,
                )?,
                blocks::FDL | blocks::FDL_INT | blocks::FDL_V2 => {
                    parse_fdlist(body, base, ty == blocks::FDL_V2, &mut cap.fds)?
                }
                blocks::UL | blocks::UL_INT | blocks::UL_V2 => parse_userlist(
                    body,
                    base,
                    ty == blocks::UL_V2,
                    &mut cap.users,
                    &mut cap.groups,
                )?,
                blocks::IL | blocks::IL_INT | blocks::IL_V2 => {
                    parse_iflist(body, base, ty == blocks::IL_V2, &mut cap.interfaces)?;
                    cap.interface_blocks.push((ty, body.to_vec()));
                }
                t if blocks::is_event_block(t) => break,
                _ => {}
            }
            pos += body.len() + 12;
        }
        cap.events_start = pos;
        cap.data = data;
        Ok(cap)
    }

    /// The events in file order.
    pub fn events(&self) -> Events<'_> {
        Events {
            data: &self.data,
            pos: self.events_start,
            num: 0,
            failed: false,
        }
    }

    /// The decompressed bytes of the whole capture.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }
}

/// The block at `pos`: its type and body (between header and trailer).
/// None at a clean end of file.
fn block_at(data: &[u8], pos: usize) -> Result<Option<(u32, &[u8])>, ScapError> {
    if pos == data.len() {
        return Ok(None);
    }
    let mut c = Cursor::new(data.get(pos..).unwrap_or(&[]), pos);
    let ty = c.u32("block type")?;
    let total = c.u32("block length")? as usize;
    if total < 12 || total % 4 != 0 {
        return Err(corrupt(
            pos + 4,
            format!("block length {total} is not a multiple of 4 of at least 12"),
        ));
    }
    if total > data.len() - pos {
        return Err(corrupt(
            pos + 4,
            format!(
                "block of {total} bytes runs past the end of the file ({} left)",
                data.len() - pos
            ),
        ));
    }
    let trailer_at = pos + total - 4;
    let trailer = u32::from_le_bytes([
        data[trailer_at],
        data[trailer_at + 1],
        data[trailer_at + 2],
        data[trailer_at + 3],
    ]) as usize;
    if trailer != total {
        return Err(corrupt(
            trailer_at,
            format!("block trailer {trailer} differs from its header {total}"),
        ));
    }
    Ok(Some((ty, &data[pos + 8..trailer_at])))
}

fn parse_machine(body: &[u8], base: usize) -> Result<MachineInfo, ScapError> {
    let mut c = Cursor::new(body, base);
    let mut mi = MachineInfo {
        num_cpus: c.u32("machine num_cpus")?,
        memory_size_bytes: c.u64("machine memory")?,
        max_pid: c.u64("machine max_pid")?,
        hostname: lossy_until_nul(c.take(128, "machine hostname")?),
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
        let name = lossy_until_nul(c.take(name_len, "interface name")?);
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

/// Iterator over the events of a [`Capture`]. Stops after the first error.
pub struct Events<'a> {
    data: &'a [u8],
    pos: usize,
    num: u64,
    failed: bool,
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<EventView<'a>, ScapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let pos = self.pos;
            let (ty, body) = match block_at(self.data, pos) {
                Ok(Some(b)) => b,
                Ok(None) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            self.pos = pos + body.len() + 12;
            if !blocks::is_event_block(ty) {
                // Tables written after events (a new section) are not used.
                continue;
            }
            match decode_event_block(ty, body, pos + 8) {
                Ok(Some(mut ev)) => {
                    self.num += 1;
                    ev.num = self.num;
                    return Some(Ok(ev));
                }
                Ok(None) => continue,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Decodes an event block body. Ok(None) for event types newer than the
/// schema, which are skipped like libscap does.
fn decode_event_block(
    ty: u32,
    body: &[u8],
    base: usize,
) -> Result<Option<EventView<'_>>, ScapError> {
    let mut c = Cursor::new(body, base);
    let cpu = c.u16("event cpu")?;
    let dump_flags = if matches!(ty, blocks::EVF | blocks::EVF_V2 | blocks::EVF_V2_LARGE) {
        c.u32("event flags")?
    } else {
        0
    };
    let at = c.offset();
    let rest = &body[c.pos..];
    if rest.len() >= 22 {
        let ety = u16::from_le_bytes([rest[20], rest[21]]);
        if crate::event::event_info(ety).is_none() {
            return Ok(None);
        }
    }
    let parsed = if matches!(ty, blocks::EV | blocks::EV_INT | blocks::EVF) {
        EventView::parse_v1(rest)
    } else {
        EventView::parse(rest)
    };
    let mut ev = parsed.map_err(|source| ScapError::Event {
        offset: at as u64,
        source,
    })?;
    ev.cpu = cpu;
    ev.dump_flags = dump_flags;
    Ok(Some(ev))
}
