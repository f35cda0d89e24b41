//! [`EventView`]: a borrowed, validated view over one raw event record.
//!
//! A record is a header (timestamp, thread id, length, type and, in the
//! current layout, the parameter count), then one length per parameter
//! (16 bits, or 32 bits for large-payload types), then the parameter bytes.
//! Construction checks every length once; accessors then slice without
//! further checks failing and without allocating.

use super::table::{self, event_info, Direction, EventInfo, ParamInfo, ParamType};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Header size of the current layout: ts u64, tid u64, len u32, type u16, nparams u32.
pub const HEADER_LEN: usize = 26;
/// Header size of the first layout, which had no parameter count.
pub const HEADER_LEN_V1: usize = 22;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("event record of {len} bytes is shorter than its {need}-byte header")]
    ShortHeader { len: usize, need: usize },
    #[error("event length field {declared} disagrees with the {available} bytes available")]
    BadLength { declared: u32, available: usize },
    #[error("event type {0} is unknown")]
    UnknownType(u16),
    #[error("{nparams} parameter lengths do not fit in the event")]
    ParamLengths { nparams: u32 },
    #[error("parameter {index} ({len} bytes) runs past the end of the event")]
    ParamOverflow { index: u32, len: u32 },
    #[error(
        "the parameter count of an old-layout event of type {0} cannot be deduced from its length"
    )]
    NoParamCount(u16),
}

/// The type of the events plugins send asynchronously (PPME_ASYNCEVENT_E):
/// a plugin id, the event's name and its data.
pub const ASYNCEVENT_E: u16 = 402;

/// One event, borrowed from the bytes it was read from.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    /// Position in the stream, from 1, as `evt.num` shows it.
    pub num: u64,
    /// CPU that produced the event.
    pub cpu: u16,
    /// Dump flags of EVF blocks (0 elsewhere).
    pub dump_flags: u32,
    pub ts: u64,
    pub tid: u64,
    pub event_type: u16,
    pub nparams: u32,
    info: &'static EventInfo,
    len_size: usize,
    lens: &'a [u8],
    data: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl<'a> EventView<'a> {
    /// Views a record in the current layout (with a parameter count), as
    /// the driver writes it and V2 capture blocks store it. `bytes` may be
    /// longer than the record; the header's length decides.
    #[inline]
    pub fn parse(bytes: &'a [u8]) -> Result<EventView<'a>, ViewError> {
        if bytes.len() < HEADER_LEN {
            return Err(ViewError::ShortHeader {
                len: bytes.len(),
                need: HEADER_LEN,
            });
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let ts = u64::from(word(0)) | u64::from(word(4)) << 32;
        let tid = u64::from(word(8)) | u64::from(word(12)) << 32;
        let len = word(16);
        let event_type = u16::from_le_bytes([bytes[20], bytes[21]]);
        let nparams = word(22);
        let record = record_slice(bytes, len, HEADER_LEN)?;
        let info = event_info(event_type).ok_or(ViewError::UnknownType(event_type))?;
        let len_size = len_size_of(info);
        Self::build(
            ts,
            tid,
            event_type,
            nparams,
            info,
            len_size,
            &record[HEADER_LEN..],
        )
    }

    /// Views a record of the first layout (EV blocks 0x204), whose header
    /// has no parameter count: the count is the largest one, at most the
    /// schema's, whose lengths add up exactly to the record length.
    pub fn parse_v1(bytes: &'a [u8]) -> Result<EventView<'a>, ViewError> {
        let short = ViewError::ShortHeader {
            len: bytes.len(),
            need: HEADER_LEN_V1,
        };
        let ts = u64_at(bytes, 0).ok_or(short.clone())?;
        let tid = u64_at(bytes, 8).ok_or(short.clone())?;
        let len = u32_at(bytes, 16).ok_or(short.clone())?;
        let event_type = u16_at(bytes, 20).ok_or(short)?;
        let record = record_slice(bytes, len, HEADER_LEN_V1)?;
        let info = event_info(event_type).ok_or(ViewError::UnknownType(event_type))?;
        let len_size = len_size_of(info);
        let body = &record[HEADER_LEN_V1..];
        let max = info.params.len();
        for n in (0..=max).rev() {
            let Some(lens) = body.get(..n * len_size) else {
                continue;
            };
            let total: u64 = (0..n).map(|i| read_len(lens, len_size, i) as u64).sum();
            if total + (n * len_size) as u64 == body.len() as u64 {
                return Self::build(ts, tid, event_type, n as u32, info, len_size, body);
            }
        }
        Err(ViewError::NoParamCount(event_type))
    }

    #[inline]
    fn build(
        ts: u64,
        tid: u64,
        event_type: u16,
        nparams: u32,
        info: &'static EventInfo,
        len_size: usize,
        body: &'a [u8],
    ) -> Result<EventView<'a>, ViewError> {
        let lens_len = (nparams as usize)
            .checked_mul(len_size)
            .filter(|&l| l <= body.len())
            .ok_or(ViewError::ParamLengths { nparams })?;
        let (lens, data) = body.split_at(lens_len);
        let total: u64 = if len_size == 2 {
            lens.chunks_exact(2)
                .map(|c| u64::from(u16::from_le_bytes([c[0], c[1]])))
                .sum()
        } else {
            lens.chunks_exact(4)
                .map(|c| u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .sum()
        };
        if total > data.len() as u64 {
            return Err(overflowing_param(lens, len_size, nparams, data.len()));
        }
        Ok(EventView {
            num: 0,
            cpu: 0,
            dump_flags: 0,
            ts,
            tid,
            event_type,
            nparams,
            info,
            len_size,
            lens,
            data,
        })
    }

    /// A view over a record already checked by the caller the way
    /// [`EventView::parse`] checks it: `lens` holds `nparams` lengths of
    /// `len_size` bytes whose sum fits in `data`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn from_checked(
        ts: u64,
        tid: u64,
        event_type: u16,
        nparams: u32,
        info: &'static EventInfo,
        len_size: usize,
        lens: &'a [u8],
        data: &'a [u8],
    ) -> EventView<'a> {
        EventView {
            num: 0,
            cpu: 0,
            dump_flags: 0,
            ts,
            tid,
            event_type,
            nparams,
            info,
            len_size,
            lens,
            data,
        }
    }

    pub fn info(&self) -> &'static EventInfo {
        self.info
    }

    pub fn name(&self) -> &'static str {
        self.info.name
    }

    /// The name `evt.type` shows: the system call's own name for generic
    /// events (which stand for every syscall without a dedicated type).
    #[inline]
    pub fn type_name(&self) -> &'static str {
        // Generic events are types 0 and 1 (enter, exit).
        if self.event_type < 2 {
            let code = self.param(0).and_then(|p| p.as_u64()).unwrap_or(0);
            return table::syscall_name(code)
                .filter(|_| code != 0)
                .unwrap_or("<unknown>");
        }
        self.info.name
    }

    /// An async event's name (Falco's PPME_ASYNCEVENT_E, which a plugin
    /// sends): what `evt.type` and `evt.asynctype` show on it.
    #[inline]
    pub fn async_name(&self) -> Option<&'a str> {
        if self.event_type != ASYNCEVENT_E {
            return None;
        }
        self.param(1).and_then(|p| p.as_str())
    }

    pub fn direction(&self) -> Direction {
        Direction::of_type(self.event_type)
    }

    /// The schema entry of parameter `index`, if this event has it.
    pub fn param_info(&self, index: usize) -> Option<&'static ParamInfo> {
        if index < self.nparams as usize {
            self.info.params.get(index)
        } else {
            None
        }
    }

    /// The raw bytes of parameter `index`.
    #[inline]
    pub fn param_bytes(&self, index: usize) -> Option<&'a [u8]> {
        if index >= self.nparams as usize {
            return None;
        }
        let mut start = 0usize;
        if self.len_size == 2 {
            for c in self.lens.get(..index * 2)?.chunks_exact(2) {
                start += usize::from(u16::from_le_bytes([c[0], c[1]]));
            }
        } else {
            for c in self.lens.get(..index * 4)?.chunks_exact(4) {
                start += u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize;
            }
        }
        let len = read_len(self.lens, self.len_size, index) as usize;
        self.data.get(start..start.checked_add(len)?)
    }

    /// Parameter `index`, typed by the schema.
    #[inline]
    pub fn param(&self, index: usize) -> Option<Param<'a>> {
        let info = self.param_info(index)?;
        let bytes = self.param_bytes(index)?;
        Some(Param { info, bytes })
    }

    /// The index of the parameter called `name`, if this event has it.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        // Length and first byte tell most names apart without a call to
        // compare the bytes.
        let first = name.as_bytes().first();
        self.info
            .params
            .iter()
            .take(self.nparams as usize)
            .position(|p| {
                p.name.len() == name.len() && p.name.as_bytes().first() == first && p.name == name
            })
    }

    pub fn param_named(&self, name: &str) -> Option<Param<'a>> {
        self.param(self.param_index(name)?)
    }

    /// Fills `out` with the bytes of the first parameters, in order, in one
    /// walk over the lengths; returns how many it filled. For readers that
    /// take most of an event's parameters: `param(i)` sums the `i` lengths
    /// before it on every call.
    pub fn param_slices(&self, out: &mut [&'a [u8]]) -> usize {
        let n = (self.nparams as usize)
            .min(self.info.params.len())
            .min(out.len());
        let mut start = 0usize;
        for (i, slot) in out[..n].iter_mut().enumerate() {
            // Parsing checked that the lengths fit in the data; a view
            // built otherwise stops at the first that does not.
            let len = read_len(self.lens, self.len_size, i) as usize;
            let Some(bytes) = start
                .checked_add(len)
                .and_then(|end| self.data.get(start..end))
            else {
                return i;
            };
            *slot = bytes;
            start += len;
        }
        n
    }

    /// The parameters in order.
    /// Walks the lengths once (where `param(i)` sums the `i` before it).
    pub fn params(&self) -> impl Iterator<Item = Param<'a>> + 'a {
        let (lens, data, len_size) = (self.lens, self.data, self.len_size);
        let infos = self.info.params;
        let mut offset = 0usize;
        (0..(self.nparams as usize).min(infos.len())).map_while(move |i| {
            let len = read_len(lens, len_size, i) as usize;
            let bytes = data.get(offset..offset.checked_add(len)?)?;
            offset += len;
            Some(Param {
                info: &infos[i],
                bytes,
            })
        })
    }

    /// The return value of an exit event: its first parameter when that is
    /// a result (named `res`, or an errno, fd or pid), as `evt.rawres`.
    pub fn res(&self) -> Option<i64> {
        if self.direction() != Direction::Exit {
            return None;
        }
        let p = self.param(0)?;
        // Type codes first: comparing the name costs more, and most
        // results are errnos, fds or pids.
        let is_result = p.info.is_result_type() || p.name() == "res";
        if is_result && p.info.is_numeric() {
            p.as_i64()
        } else {
            None
        }
    }

    pub fn has_flag(&self, flag: u32) -> bool {
        self.info.flags & flag != 0
    }

    pub fn is_syscall(&self) -> bool {
        self.info.category & table::category::SYSCALL != 0
    }

    /// The parameter area (lengths then values), for writers that re-emit
    /// the event in the current layout.
    pub fn body(&self) -> (&'a [u8], &'a [u8], usize) {
        (self.lens, self.data, self.len_size)
    }
}

/// The error naming the first parameter that runs past the event's end.
#[cold]
fn overflowing_param(lens: &[u8], len_size: usize, nparams: u32, available: usize) -> ViewError {
    let mut remaining = available as u64;
    for i in 0..nparams as usize {
        let l = read_len(lens, len_size, i);
        match remaining.checked_sub(u64::from(l)) {
            Some(r) => remaining = r,
            None => {
                return ViewError::ParamOverflow {
                    index: i as u32,
                    len: l,
                }
            }
        }
    }
    ViewError::ParamLengths { nparams }
}

#[inline]
fn record_slice(bytes: &[u8], len: u32, header: usize) -> Result<&[u8], ViewError> {
    let n = len as usize;
    if n < header || n > bytes.len() {
        return Err(ViewError::BadLength {
            declared: len,
            available: bytes.len(),
        });
    }
    Ok(&bytes[..n])
}

#[inline]
pub(crate) fn len_size_of(info: &EventInfo) -> usize {
    if info.flags & table::flags::LARGE_PAYLOAD != 0 {
        4
    } else {
        2
    }
}

fn read_len(lens: &[u8], len_size: usize, i: usize) -> u32 {
    if len_size == 4 {
        u32_at(lens, i * 4).unwrap_or(0)
    } else {
        u32::from(u16_at(lens, i * 2).unwrap_or(0))
    }
}

/// A socket address as the driver encodes it: a family byte then data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockAddr<'a> {
    Inet(IpAddr, u16),
    Unix(&'a [u8]),
    Other(u8),
}

/// The two ends of a socket as the driver encodes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockTuple<'a> {
    /// Source address/port, destination address/port.
    Inet {
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
    },
    /// Source and destination kernel pointers, then the path.
    Unix {
        src: u64,
        dst: u64,
        path: &'a [u8],
    },
    Other(u8),
}

pub const AF_UNIX: u8 = 1;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

/// One parameter: its schema entry and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Param<'a> {
    pub info: &'static ParamInfo,
    pub bytes: &'a [u8],
}

impl<'a> Param<'a> {
    pub fn ty(&self) -> ParamType {
        self.info.param_type()
    }

    pub fn name(&self) -> &'static str {
        self.info.name
    }

    /// The value as an unsigned integer, zero-extended from its width.
    #[inline]
    pub fn as_u64(&self) -> Option<u64> {
        if !self.info.is_numeric() {
            return None;
        }
        Some(match *self.bytes {
            [a] => u64::from(a),
            [a, b] => u64::from(u16::from_le_bytes([a, b])),
            [a, b, c, d] => u64::from(u32::from_le_bytes([a, b, c, d])),
            [a, b, c, d, e, f, g, h] => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
            _ => return None,
        })
    }

    /// The value as a signed integer, sign-extended for signed types.
    #[inline]
    pub fn as_i64(&self) -> Option<i64> {
        let raw = self.as_u64()?;
        if !self.info.is_signed() {
            return Some(raw as i64);
        }
        Some(match self.bytes.len() {
            1 => i64::from(raw as u8 as i8),
            2 => i64::from(raw as u16 as i16),
            4 => i64::from(raw as u32 as i32),
            _ => raw as i64,
        })
    }

    /// A string parameter without its trailing NUL.
    pub fn as_bytes_str(&self) -> &'a [u8] {
        let b = self.bytes;
        match b.iter().position(|&c| c == 0) {
            Some(end) => &b[..end],
            None => b,
        }
    }

    /// A string parameter as UTF-8, if it is.
    pub fn as_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.as_bytes_str()).ok()
    }

    pub fn as_sockaddr(&self) -> Option<SockAddr<'a>> {
        Param::sockaddr_of(self.bytes)
    }

    /// A socket address from the bytes of an address parameter kept aside.
    pub fn sockaddr_of(b: &[u8]) -> Option<SockAddr<'_>> {
        let family = *b.first()?;
        Some(match family {
            AF_INET => {
                let ip: [u8; 4] = b.get(1..5)?.try_into().ok()?;
                SockAddr::Inet(IpAddr::V4(Ipv4Addr::from(ip)), u16_at(b, 5)?)
            }
            AF_INET6 => {
                let ip: [u8; 16] = b.get(1..17)?.try_into().ok()?;
                SockAddr::Inet(IpAddr::V6(Ipv6Addr::from(ip)), u16_at(b, 17)?)
            }
            AF_UNIX => {
                let p = &b[1..];
                SockAddr::Unix(&p[..p.iter().position(|&c| c == 0).unwrap_or(p.len())])
            }
            other => SockAddr::Other(other),
        })
    }

    pub fn as_socktuple(&self) -> Option<SockTuple<'a>> {
        Param::socktuple_of(self.bytes)
    }

    /// A socket tuple from the bytes of a tuple parameter kept aside.
    pub fn socktuple_of(b: &[u8]) -> Option<SockTuple<'_>> {
        let family = *b.first()?;
        Some(match family {
            AF_INET => {
                let s: [u8; 4] = b.get(1..5)?.try_into().ok()?;
                let d: [u8; 4] = b.get(7..11)?.try_into().ok()?;
                SockTuple::Inet {
                    src: IpAddr::V4(Ipv4Addr::from(s)),
                    sport: u16_at(b, 5)?,
                    dst: IpAddr::V4(Ipv4Addr::from(d)),
                    dport: u16_at(b, 11)?,
                }
            }
            AF_INET6 => {
                let s: [u8; 16] = b.get(1..17)?.try_into().ok()?;
                let d: [u8; 16] = b.get(19..35)?.try_into().ok()?;
                SockTuple::Inet {
                    src: IpAddr::V6(Ipv6Addr::from(s)),
                    sport: u16_at(b, 17)?,
                    dst: IpAddr::V6(Ipv6Addr::from(d)),
                    dport: u16_at(b, 35)?,
                }
            }
            AF_UNIX => {
                let p = b.get(17..)?;
                SockTuple::Unix {
                    src: u64_at(b, 1)?,
                    dst: u64_at(b, 9)?,
                    path: &p[..p.iter().position(|&c| c == 0).unwrap_or(p.len())],
                }
            }
            other => SockTuple::Other(other),
        })
    }

    /// An fd list: (fd, flags) pairs.
    pub fn fdlist(&self) -> impl Iterator<Item = (i64, u16)> + 'a {
        let b = self.bytes;
        let count = u16_at(b, 0).unwrap_or(0) as usize;
        (0..count).map_while(move |i| {
            let at = 2 + i * 10;
            Some((u64_at(b, at)? as i64, u16_at(b, at + 8)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ty: u16, params: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        for p in params {
            body.extend_from_slice(&(p.len() as u16).to_le_bytes());
        }
        for p in params {
            body.extend_from_slice(p);
        }
        let mut r = Vec::new();
        r.extend_from_slice(&7u64.to_le_bytes());
        r.extend_from_slice(&42u64.to_le_bytes());
        r.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_le_bytes());
        r.extend_from_slice(&ty.to_le_bytes());
        r.extend_from_slice(&(params.len() as u32).to_le_bytes());
        r.extend_from_slice(&body);
        r
    }

    #[test]
    fn decodes_open_exit_params() {
        let r = record(
            3,
            &[&3i64.to_le_bytes(), b"/etc/passwd\0", &1u32.to_le_bytes()],
        );
        let v = EventView::parse(&r).unwrap();
        assert_eq!(v.name(), "open");
        assert_eq!(v.res(), Some(3));
        assert_eq!(v.param_named("name").unwrap().as_str(), Some("/etc/passwd"));
        assert_eq!(v.param_named("flags").unwrap().as_u64(), Some(1));
        assert!(v.param_named("mode").is_none());
    }

    #[test]
    fn rejects_param_past_end() {
        let mut r = record(3, &[&3i64.to_le_bytes()]);
        r[HEADER_LEN] = 200;
        assert!(matches!(
            EventView::parse(&r),
            Err(ViewError::ParamOverflow { .. })
        ));
    }

    #[test]
    fn deduces_param_count_of_old_layout() {
        let r = record(3, &[&3i64.to_le_bytes(), b"/x\0"]);
        let mut old = r[..20].to_vec();
        old.extend_from_slice(&r[20..22]);
        old.extend_from_slice(&r[26..]);
        let len = (old.len() as u32).to_le_bytes();
        old[16..20].copy_from_slice(&len);
        let v = EventView::parse_v1(&old).unwrap();
        assert_eq!(v.nparams, 2);
        assert_eq!(v.param(1).unwrap().as_str(), Some("/x"));
    }
}
