//! Open file descriptors as the state tracks them.

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
    /// Device and inode of an opened file, as the opening call reported
    /// them (0 when unknown).
    pub dev: u32,
    pub ino: u64,
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
            dev: 0,
            ino: 0,
        }
    }

    /// The letter `fd.typechar` shows, as a string a field can borrow.
    pub fn typechar(&self) -> &'static str {
        match self.kind {
            FdKind::File => "f",
            FdKind::Directory => "d",
            FdKind::Ipv4 { .. } | FdKind::Ipv4Server { .. } => "4",
            FdKind::Ipv6 { .. } | FdKind::Ipv6Server { .. } => "6",
            FdKind::Unix => "u",
            FdKind::Pipe => "p",
            FdKind::Event => "e",
            FdKind::SignalFd => "s",
            FdKind::EventPoll => "l",
            FdKind::Inotify => "i",
            FdKind::TimerFd => "t",
            FdKind::Netlink => "n",
            FdKind::Bpf => "b",
            FdKind::UserFaultFd => "u",
            FdKind::IoUring => "r",
            FdKind::MemFd => "m",
            FdKind::PidFd => "P",
            FdKind::Unknown => "o",
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
/// Written by hand: every connect and accept names one, and the
/// formatting machinery cost thousands of instructions for two IPv6
/// addresses.
pub fn tuple_name(sip: IpAddr, sport: u16, dip: IpAddr, dport: u16) -> String {
    // Two IPv6 addresses (39 bytes at most each), two ports and "->".
    let mut s = String::with_capacity(96);
    push_ip(&mut s, sip);
    s.push(':');
    push_decimal(&mut s, u64::from(sport));
    s.push_str("->");
    push_ip(&mut s, dip);
    s.push(':');
    push_decimal(&mut s, u64::from(dport));
    s
}

/// Appends `n` in decimal.
fn push_decimal(s: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        s.push(char::from(d));
    }
}

/// Appends `n` in lowercase hexadecimal without leading zeros.
fn push_hex16(s: &mut String, n: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut started = false;
    for shift in [12u32, 8, 4, 0] {
        let digit = usize::from((n >> shift) & 0xf);
        if digit != 0 || started || shift == 0 {
            s.push(char::from(HEX[digit]));
            started = true;
        }
    }
}

fn push_ipv4(s: &mut String, octets: [u8; 4]) {
    for (i, o) in octets.into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        push_decimal(s, u64::from(o));
    }
}

/// Appends an address as its `Display` writes it (RFC 5952 for IPv6: the
/// longest run of two or more zero groups, the first of equals, becomes
/// `::`; an IPv4-mapped address ends in dotted decimal).
pub fn push_ip(s: &mut String, ip: IpAddr) {
    let v6 = match ip {
        IpAddr::V4(v4) => return push_ipv4(s, v4.octets()),
        IpAddr::V6(v6) => v6,
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        s.push_str("::ffff:");
        return push_ipv4(s, v4.octets());
    }
    let groups = v6.segments();
    // The longest run of zero groups.
    let (mut best_at, mut best_len) = (0usize, 0usize);
    let (mut run_at, mut run_len) = (0usize, 0usize);
    for (i, &g) in groups.iter().enumerate() {
        if g == 0 {
            if run_len == 0 {
                run_at = i;
            }
            run_len += 1;
            if run_len > best_len {
                (best_at, best_len) = (run_at, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    if best_len < 2 {
        for (i, &g) in groups.iter().enumerate() {
            if i > 0 {
                s.push(':');
            }
            push_hex16(s, g);
        }
        return;
    }
    for (i, &g) in groups[..best_at].iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        push_hex16(s, g);
    }
    s.push_str("::");
    for (i, &g) in groups[best_at + best_len..].iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        push_hex16(s, g);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn shown(ip: IpAddr) -> String {
        let mut s = String::new();
        push_ip(&mut s, ip);
        s
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        // Every pattern of zero and non-zero groups, with values that
        // need 1 to 4 hex digits, plus mapped and v4 addresses.
        let values = [1u16, 0xa, 0x1f, 0x2b3, 0xffff, 0x8000];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for mask in 0u32..256 {
            for _ in 0..4 {
                let mut g = [0u16; 8];
                for (i, v) in g.iter_mut().enumerate() {
                    if mask & (1 << i) != 0 {
                        *v = values[(next() % values.len() as u64) as usize];
                    }
                }
                let ip = IpAddr::V6(Ipv6Addr::from(g));
                assert_eq!(shown(ip), ip.to_string(), "{g:x?}");
            }
        }
        for ip in [
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()),
            IpAddr::V6(Ipv4Addr::new(0, 0, 0, 0).to_ipv6_mapped()),
            IpAddr::V6(Ipv4Addr::new(1, 2, 3, 4).to_ipv6_compatible()),
            IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)),
            IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255)),
            IpAddr::V4(Ipv4Addr::new(192, 168, 10, 7)),
        ] {
            assert_eq!(shown(ip), ip.to_string());
        }
        for _ in 0..10_000 {
            let ip = IpAddr::V4(Ipv4Addr::from((next() >> 16) as u32));
            assert_eq!(shown(ip), ip.to_string());
        }
    }

    #[test]
    fn tuple_names_join_both_ends() {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b: IpAddr = "2a00:1450:4007:80c::2004".parse().unwrap();
        assert_eq!(
            tuple_name(a, 0, b, 65535),
            "10.0.0.1:0->2a00:1450:4007:80c::2004:65535"
        );
        assert_eq!(tuple_name(b, 443, a, 8), format!("{b}:443->{a}:8"));
    }
}
