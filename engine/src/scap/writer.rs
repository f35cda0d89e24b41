//! Writes captures that sysdig and [`Capture`](super::Capture) read: a
//! section header, machine info, process list (V9), fd lists (V2), user
//! list (V2), pass-through interface lists, then events in the current
//! layout (EV V2 blocks). Every block is padded to 4 bytes and closed by
//! its length, as the format requires.

use super::blocks;
use super::tables::{FdEntry, FdInfo, GroupEntry, MachineInfo, ProcEntry, UserEntry};
use crate::event::view::HEADER_LEN;
use crate::event::EventView;
use std::io::{self, Write};
use std::net::IpAddr;

/// A capture being written.
pub struct Writer<W: Write> {
    out: W,
    block: Vec<u8>,
    events: u64,
}

fn put_u16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}
/// A string as a 16-bit length and bytes, cut to what the length holds.
fn put_str16(b: &mut Vec<u8>, s: &[u8]) {
    let s = &s[..s.len().min(u16::MAX as usize)];
    put_u16(b, s.len() as u16);
    b.extend_from_slice(s);
}
/// A list as NUL-terminated items behind a 16-bit length.
fn put_list16(b: &mut Vec<u8>, items: &[String]) {
    let mut joined = Vec::new();
    for i in items {
        joined.extend_from_slice(i.as_bytes());
        joined.push(0);
    }
    put_str16(b, &joined);
}
fn put_ip(b: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(v4) => b.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b.extend_from_slice(&v6.octets()),
    }
}

impl<W: Write> Writer<W> {
    /// Starts a capture: section header and machine info.
    pub fn new(mut out: W, machine: &MachineInfo) -> io::Result<Writer<W>> {
        let mut shb = Vec::new();
        put_u32(&mut shb, blocks::SHB_MAGIC);
        put_u16(&mut shb, 1);
        put_u16(&mut shb, 2);
        put_u64(&mut shb, u64::MAX);
        write_block(&mut out, blocks::SHB, &shb)?;
        let mut mi = Vec::new();
        put_u32(&mut mi, machine.num_cpus);
        put_u64(&mut mi, machine.memory_size_bytes);
        put_u64(&mut mi, machine.max_pid);
        let mut host = [0u8; 128];
        let h = machine.hostname.as_bytes();
        let n = h.len().min(127);
        host[..n].copy_from_slice(&h[..n]);
        mi.extend_from_slice(&host);
        put_u64(&mut mi, machine.boot_ts_epoch);
        put_u64(&mut mi, machine.flags);
        put_u64(&mut mi, 0);
        put_u64(&mut mi, 0);
        write_block(&mut out, blocks::MI, &mi)?;
        Ok(Writer {
            out,
            block: Vec::new(),
            events: 0,
        })
    }

    /// Writes the process list (one block for all threads).
    pub fn write_processes(&mut self, procs: &[ProcEntry]) -> io::Result<()> {
        let mut b = std::mem::take(&mut self.block);
        b.clear();
        for p in procs {
            let start = b.len();
            put_u32(&mut b, 0);
            put_u64(&mut b, p.tid as u64);
            put_u64(&mut b, p.pid as u64);
            put_u64(&mut b, p.ptid as u64);
            put_u64(&mut b, p.sid as u64);
            put_u64(&mut b, p.vpgid as u64);
            put_str16(&mut b, p.comm.as_bytes());
            put_str16(&mut b, p.exe.as_bytes());
            put_str16(&mut b, p.exepath.as_bytes());
            put_list16(&mut b, &p.args);
            put_str16(&mut b, p.cwd.as_bytes());
            put_u64(&mut b, p.fdlimit);
            put_u32(&mut b, p.flags);
            put_u32(&mut b, p.uid);
            put_u32(&mut b, p.gid);
            put_u32(&mut b, p.vmsize_kb);
            put_u32(&mut b, p.vmrss_kb);
            put_u32(&mut b, p.vmswap_kb);
            put_u64(&mut b, p.pfmajor);
            put_u64(&mut b, p.pfminor);
            put_list16(&mut b, &p.env);
            put_u64(&mut b, p.vtid as u64);
            put_u64(&mut b, p.vpid as u64);
            put_list16(&mut b, &p.cgroups);
            put_str16(&mut b, p.root.as_bytes());
            // The libs >= 0.10 tail: more than 29 bytes tells readers the
            // namespace start time and tty come before the login uid.
            put_u64(&mut b, p.pidns_init_start_ts);
            put_u32(&mut b, p.tty);
            put_u32(&mut b, p.loginuid);
            b.push(u8::from(p.exe_writable));
            put_u64(&mut b, p.cap_inheritable);
            put_u64(&mut b, p.cap_permitted);
            put_u64(&mut b, p.cap_effective);
            b.push(u8::from(p.exe_upper_layer));
            put_u64(&mut b, p.exe_ino);
            put_u64(&mut b, p.exe_ino_ctime);
            put_u64(&mut b, p.exe_ino_mtime);
            b.push(u8::from(p.exe_from_memfd));
            let len = (b.len() - start) as u32;
            b[start..start + 4].copy_from_slice(&len.to_le_bytes());
        }
        let r = write_block(&mut self.out, blocks::PL_V9, &b);
        self.block = b;
        r
    }

    /// Writes the fds of one thread.
    pub fn write_fds(&mut self, tid: i64, fds: &[&FdEntry]) -> io::Result<()> {
        let mut b = std::mem::take(&mut self.block);
        b.clear();
        put_u64(&mut b, tid as u64);
        for f in fds {
            let start = b.len();
            put_u32(&mut b, 0);
            put_u64(&mut b, f.fd as u64);
            put_u64(&mut b, f.ino);
            b.push(f.fd_type);
            match &f.info {
                FdInfo::Ipv4Sock {
                    sip,
                    dip,
                    sport,
                    dport,
                    l4proto,
                }
                | FdInfo::Ipv6Sock {
                    sip,
                    dip,
                    sport,
                    dport,
                    l4proto,
                } => {
                    put_ip(&mut b, sip);
                    put_ip(&mut b, dip);
                    put_u16(&mut b, *sport);
                    put_u16(&mut b, *dport);
                    b.push(*l4proto);
                }
                FdInfo::Ipv4ServSock { ip, port, l4proto }
                | FdInfo::Ipv6ServSock { ip, port, l4proto } => {
                    put_ip(&mut b, ip);
                    put_u16(&mut b, *port);
                    b.push(*l4proto);
                }
                FdInfo::UnixSock {
                    source,
                    destination,
                    name,
                } => {
                    put_u64(&mut b, *source);
                    put_u64(&mut b, *destination);
                    put_str16(&mut b, name.as_bytes());
                }
                FdInfo::File {
                    open_flags,
                    name,
                    dev,
                } => {
                    put_u32(&mut b, *open_flags);
                    put_str16(&mut b, name.as_bytes());
                    put_u32(&mut b, *dev);
                }
                FdInfo::Named { name } => {
                    if f.fd_type != 0 {
                        put_str16(&mut b, name.as_bytes());
                    }
                }
            }
            let len = (b.len() - start) as u32;
            b[start..start + 4].copy_from_slice(&len.to_le_bytes());
        }
        let r = write_block(&mut self.out, blocks::FDL_V2, &b);
        self.block = b;
        r
    }

    /// Writes the fds of every thread of a capture's fd table, grouped by thread.
    pub fn write_fd_table(&mut self, fds: &[FdEntry]) -> io::Result<()> {
        let mut tids: Vec<i64> = fds.iter().map(|f| f.tid).collect();
        tids.dedup();
        let mut seen = std::collections::HashSet::new();
        for tid in tids {
            if seen.insert(tid) {
                let of: Vec<&FdEntry> = fds.iter().filter(|f| f.tid == tid).collect();
                self.write_fds(tid, &of)?;
            }
        }
        Ok(())
    }

    pub fn write_users(&mut self, users: &[UserEntry], groups: &[GroupEntry]) -> io::Result<()> {
        let mut b = std::mem::take(&mut self.block);
        b.clear();
        for u in users {
            let start = b.len();
            put_u32(&mut b, 0);
            b.push(0);
            put_u32(&mut b, u.uid);
            put_u32(&mut b, u.gid);
            put_str16(&mut b, u.name.as_bytes());
            put_str16(&mut b, u.homedir.as_bytes());
            put_str16(&mut b, u.shell.as_bytes());
            let len = (b.len() - start) as u32;
            b[start..start + 4].copy_from_slice(&len.to_le_bytes());
        }
        for g in groups {
            let start = b.len();
            put_u32(&mut b, 0);
            b.push(1);
            put_u32(&mut b, g.gid);
            put_str16(&mut b, g.name.as_bytes());
            let len = (b.len() - start) as u32;
            b[start..start + 4].copy_from_slice(&len.to_le_bytes());
        }
        let r = write_block(&mut self.out, blocks::UL_V2, &b);
        self.block = b;
        r
    }

    /// Passes a block through unchanged (interface lists).
    pub fn write_raw_block(&mut self, block_type: u32, body: &[u8]) -> io::Result<()> {
        write_block(&mut self.out, block_type, body)
    }

    /// Writes one event in the current layout, whatever layout it was read in.
    pub fn write_event(&mut self, ev: &EventView<'_>) -> io::Result<()> {
        self.write_event_at(ev, ev.ts)
    }

    /// Writes one event with another timestamp (to build long captures
    /// out of short ones).
    pub fn write_event_at(&mut self, ev: &EventView<'_>, ts: u64) -> io::Result<()> {
        let (lens, data, _) = ev.body();
        let mut b = std::mem::take(&mut self.block);
        b.clear();
        put_u16(&mut b, ev.cpu);
        put_u64(&mut b, ts);
        put_u64(&mut b, ev.tid);
        put_u32(&mut b, (HEADER_LEN + lens.len() + data.len()) as u32);
        put_u16(&mut b, ev.event_type);
        put_u32(&mut b, ev.nparams);
        b.extend_from_slice(lens);
        b.extend_from_slice(data);
        let r = write_block(&mut self.out, blocks::EV_V2, &b);
        self.block = b;
        self.events += 1;
        r
    }

    /// The output, to read a counter it keeps.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn events_written(&self) -> u64 {
        self.events
    }

    /// Flushes and gives the output back.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn write_block<W: Write>(out: &mut W, block_type: u32, body: &[u8]) -> io::Result<()> {
    let pad = (4 - body.len() % 4) % 4;
    let total = 8 + body.len() + pad + 4;
    let total = u32::try_from(total)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "block over 4 GiB"))?;
    out.write_all(&block_type.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&[0u8; 3][..pad])?;
    out.write_all(&total.to_le_bytes())
}

/// Copies a whole capture: its tables, then its events.
pub fn copy_capture<W: Write>(cap: &mut super::Capture, out: W) -> Result<W, super::ScapError> {
    let io = |source| super::ScapError::Io {
        path: "<output>".into(),
        source,
    };
    let mut w = Writer::new(out, &cap.machine.clone().unwrap_or_default()).map_err(io)?;
    for (ty, body) in &cap.interface_blocks {
        w.write_raw_block(*ty, body).map_err(io)?;
    }
    w.write_users(&cap.users, &cap.groups).map_err(io)?;
    w.write_processes(&cap.processes).map_err(io)?;
    w.write_fd_table(&cap.fds).map_err(io)?;
    let mut events = cap.events();
    while let Some(ev) = events.next() {
        w.write_event(&ev?).map_err(io)?;
    }
    w.finish().map_err(io)
}
