//! Open file descriptors as the state tracks them.

use std::fmt::Write;
use std::net::IpAddr;

/// What an fd refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdKind {
    File,
    Directory,
    /// A connected (or connecting) IP socket: client side first as the
    /// kernel reported the tuple.
    Ipv4 {
        sip: IpAddr,
        sport: u16,
        dip: IpAddr,
        dport: u16,
        l4proto: u8,
    },
    Ipv6 {
        sip: IpAddr,
        sport: u16,
        dip: IpAddr,
        dport: u16,
        l4proto: u8,
    },
    /// A listening or not-yet-connected IP socket.
    Ipv4Server {
        ip: IpAddr,
        port: u16,
        l4proto: u8,
    },
    Ipv6Server {
        ip: IpAddr,
        port: u16,
        l4proto: u8,
    },
    Unix,
    Pipe,
    Event,
    SignalFd,
    EventPoll,
    Inotify,
    TimerFd,
    Netlink,
    Bpf,
    UserFaultFd,
    IoUring,
    MemFd,
    PidFd,
    Unknown,
}

pub mod l4 {
    pub const UNKNOWN: u8 = 0;
    pub const NA: u8 = 1;
    pub const TCP: u8 = 2;
    pub const UDP: u8 = 3;
    pub const ICMP: u8 = 4;
    pub const RAW: u8 = 5;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fd {
    pub kind: FdKind,
    /// Path for files, tuple text for sockets, path for unix sockets.
    pub name: String,
    /// Open flags (PPM encoding) for files.
    pub open_flags: u32,
    /// Whether this end of a connected socket is the server (accepted).
    pub server_side: bool,
    /// Socket type and protocol given to socket(2), to name the transport
    /// once the socket is used.
    pub sock_type: u8,
    pub sock_proto: u8,
    /// The path as the opening syscall gave it (relative, with `..`),
    /// when it differs from `name`.
    pub raw_name: Option<Box<str>>,
}

impl Fd {
    pub fn new(kind: FdKind, name: String) -> Fd {
        Fd {
            kind,
            name,
            open_flags: 0,
            server_side: false,
            sock_type: 0,
            sock_proto: 0,
            raw_name: None,
        }
    }

    /// The letter `fd.typechar` shows.
    pub fn typechar(&self) -> char {
        match self.kind {
            FdKind::File => 'f',
            FdKind::Directory => 'd',
            FdKind::Ipv4 { .. } | FdKind::Ipv4Server { .. } => '4',
            FdKind::Ipv6 { .. } | FdKind::Ipv6Server { .. } => '6',
            FdKind::Unix => 'u',
            FdKind::Pipe => 'p',
            FdKind::Event => 'e',
            FdKind::SignalFd => 's',
            FdKind::EventPoll => 'l',
            FdKind::Inotify => 'i',
            FdKind::TimerFd => 't',
            FdKind::Netlink => 'n',
            FdKind::Bpf => 'b',
            FdKind::UserFaultFd => 'u',
            FdKind::IoUring => 'r',
            FdKind::MemFd => 'm',
            FdKind::PidFd => 'P',
            FdKind::Unknown => 'o',
        }
    }

    /// The word `fd.type` shows.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            FdKind::File => "file",
            FdKind::Directory => "directory",
            FdKind::Ipv4 { .. } | FdKind::Ipv4Server { .. } => "ipv4",
            FdKind::Ipv6 { .. } | FdKind::Ipv6Server { .. } => "ipv6",
            FdKind::Unix => "unix",
            FdKind::Pipe => "pipe",
            FdKind::Event => "event",
            FdKind::SignalFd => "signalfd",
            FdKind::EventPoll => "eventpoll",
            FdKind::Inotify => "inotify",
            FdKind::TimerFd => "timerfd",
            FdKind::Netlink => "netlink",
            FdKind::Bpf => "bpf",
            FdKind::UserFaultFd => "userfaultfd",
            FdKind::IoUring => "io_uring",
            FdKind::MemFd => "memfd",
            FdKind::PidFd => "pidfd",
            FdKind::Unknown => "unknown",
        }
    }

    pub fn is_socket(&self) -> bool {
        matches!(
            self.kind,
            FdKind::Ipv4 { .. }
                | FdKind::Ipv6 { .. }
                | FdKind::Ipv4Server { .. }
                | FdKind::Ipv6Server { .. }
                | FdKind::Unix
        )
    }

    pub fn l4proto(&self) -> Option<u8> {
        match self.kind {
            FdKind::Ipv4 { l4proto, .. }
            | FdKind::Ipv6 { l4proto, .. }
            | FdKind::Ipv4Server { l4proto, .. }
            | FdKind::Ipv6Server { l4proto, .. } => Some(l4proto),
            _ => None,
        }
    }
}

/// The transport of a socket from its socket(2) type and protocol.
pub fn l4_from_socket(sock_type: u8, proto: u8) -> u8 {
    match (proto, sock_type & 0xf) {
        (6, _) => l4::TCP,
        (17, _) => l4::UDP,
        (1, _) | (58, _) => l4::ICMP,
        (_, 1) => l4::TCP,
        (_, 2) => l4::UDP,
        (_, 3) => l4::RAW,
        _ => l4::UNKNOWN,
    }
}

/// `a.b.c.d:port->e.f.g.h:port` as fd names of connected sockets read.
pub fn tuple_name(sip: IpAddr, sport: u16, dip: IpAddr, dport: u16) -> String {
    let mut s = String::new();
    let _ = write!(s, "{sip}:{sport}->{dip}:{dport}");
    s
}

pub fn l4proto_name(p: u8) -> &'static str {
    match p {
        l4::TCP => "tcp",
        l4::UDP => "udp",
        l4::ICMP => "icmp",
        l4::RAW => "raw",
        _ => "<NA>",
    }
}

/// The letter fd labels in rendered parameters add for the protocol
/// (`<4t>`, `<6u>`).
pub fn l4proto_letter(p: u8) -> Option<char> {
    match p {
        l4::TCP => Some('t'),
        l4::UDP => Some('u'),
        l4::ICMP => Some('i'),
        l4::RAW => Some('r'),
        _ => None,
    }
}
