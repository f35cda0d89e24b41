//! The tables a capture carries before its events.

use std::net::IpAddr;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineInfo {
    pub num_cpus: u32,
    pub memory_size_bytes: u64,
    pub max_pid: u64,
    pub hostname: String,
    pub boot_ts_epoch: u64,
    pub flags: u64,
}

/// A thread as the process list block describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcEntry {
    pub tid: i64,
    pub pid: i64,
    pub ptid: i64,
    pub sid: i64,
    pub vpgid: i64,
    pub comm: String,
    pub exe: String,
    pub exepath: String,
    pub args: Vec<String>,
    pub cwd: String,
    pub fdlimit: u64,
    pub flags: u32,
    pub uid: u32,
    pub gid: u32,
    pub vmsize_kb: u32,
    pub vmrss_kb: u32,
    pub vmswap_kb: u32,
    pub pfmajor: u64,
    pub pfminor: u64,
    pub env: Vec<String>,
    pub vtid: i64,
    pub vpid: i64,
    pub cgroups: Vec<String>,
    pub root: String,
    pub pidns_init_start_ts: u64,
    pub tty: u32,
    pub loginuid: u32,
    pub exe_writable: bool,
    pub cap_inheritable: u64,
    pub cap_permitted: u64,
    pub cap_effective: u64,
    pub exe_upper_layer: bool,
    pub exe_ino: u64,
    pub exe_ino_ctime: u64,
    pub exe_ino_mtime: u64,
    pub exe_from_memfd: bool,
}

/// What an fd list entry says about one fd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdInfo {
    Ipv4Sock {
        sip: IpAddr,
        dip: IpAddr,
        sport: u16,
        dport: u16,
        l4proto: u8,
    },
    Ipv4ServSock {
        ip: IpAddr,
        port: u16,
        l4proto: u8,
    },
    Ipv6Sock {
        sip: IpAddr,
        dip: IpAddr,
        sport: u16,
        dport: u16,
        l4proto: u8,
    },
    Ipv6ServSock {
        ip: IpAddr,
        port: u16,
        l4proto: u8,
    },
    UnixSock {
        source: u64,
        destination: u64,
        name: String,
    },
    /// A regular file with its open flags (the FILE_V2 layout).
    File {
        open_flags: u32,
        name: String,
        dev: u32,
    },
    /// Every other kind: the type code and name.
    Named {
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdEntry {
    pub tid: i64,
    pub fd: i64,
    pub ino: u64,
    /// `SCAP_FD_*` type code.
    pub fd_type: u8,
    pub info: FdInfo,
}

pub mod fd_type {
    pub const FILE: u8 = 1;
    pub const DIRECTORY: u8 = 2;
    pub const IPV4_SOCK: u8 = 3;
    pub const IPV6_SOCK: u8 = 4;
    pub const IPV4_SERVSOCK: u8 = 5;
    pub const IPV6_SERVSOCK: u8 = 6;
    pub const FIFO: u8 = 7;
    pub const UNIX_SOCK: u8 = 8;
    pub const EVENT: u8 = 9;
    pub const UNSUPPORTED: u8 = 10;
    pub const SIGNALFD: u8 = 11;
    pub const EVENTPOLL: u8 = 12;
    pub const INOTIFY: u8 = 13;
    pub const TIMERFD: u8 = 14;
    pub const NETLINK: u8 = 15;
    pub const FILE_V2: u8 = 16;
    pub const BPF: u8 = 17;
    pub const USERFAULTFD: u8 = 18;
    pub const IOURING: u8 = 19;
    pub const MEMFD: u8 = 20;
    pub const PIDFD: u8 = 21;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    pub homedir: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub gid: u32,
    pub name: String,
}

/// A network interface address of the capturing machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceEntry {
    pub name: String,
    pub addr: IpAddr,
    pub netmask: IpAddr,
    pub bcast: IpAddr,
    /// Link speed in Mbit/s, 0 when the capture does not say.
    pub linkspeed: u64,
}
