//! Renders parameters the way `evt.arg.NAME` and `evt.args` show them
//! (sysdig's conventions): errors as `-2(ENOENT)`, flags as
//! `4097(O_RDONLY|O_CLOEXEC)`, fds with their type and name, buffers with
//! unprintable bytes as dots.

use super::table::ParamType;
use super::view::{Param, SockAddr, SockTuple};
use std::fmt::Write;

/// What rendering needs to know about the system: names of fds and
/// threads. State implements it; a context-free renderer answers None.
pub trait Resolver {
    /// Type letters and name of an fd of the event's thread.
    fn fd_label(&self, _fd: i64) -> Option<(String, String)> {
        None
    }
    /// Command name of a thread.
    fn comm_of(&self, _tid: i64) -> Option<String> {
        None
    }
}

/// A resolver that knows nothing.
pub struct NoState;
impl Resolver for NoState {}

/// Linux errno names, for negative return values.
pub fn errno_name(errno: i64) -> Option<&'static str> {
    const NAMES: &[&str] = &[
        "",
        "EPERM",
        "ENOENT",
        "ESRCH",
        "EINTR",
        "EIO",
        "ENXIO",
        "E2BIG",
        "ENOEXEC",
        "EBADF",
        "ECHILD",
        "EAGAIN",
        "ENOMEM",
        "EACCES",
        "EFAULT",
        "ENOTBLK",
        "EBUSY",
        "EEXIST",
        "EXDEV",
        "ENODEV",
        "ENOTDIR",
        "EISDIR",
        "EINVAL",
        "ENFILE",
        "EMFILE",
        "ENOTTY",
        "ETXTBSY",
        "EFBIG",
        "ENOSPC",
        "ESPIPE",
        "EROFS",
        "EMLINK",
        "EPIPE",
        "EDOM",
        "ERANGE",
        "EDEADLK",
        "ENAMETOOLONG",
        "ENOLCK",
        "ENOSYS",
        "ENOTEMPTY",
        "ELOOP",
    ];
    let n = usize::try_from(errno).ok()?;
    if let Some(name) = NAMES.get(n).filter(|s| !s.is_empty()) {
        return Some(name);
    }
    Some(match n {
        61 => "ENODATA",
        75 => "EOVERFLOW",
        88 => "ENOTSOCK",
        90 => "EMSGSIZE",
        91 => "EPROTOTYPE",
        92 => "ENOPROTOOPT",
        93 => "EPROTONOSUPPORT",
        95 => "EOPNOTSUPP",
        97 => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL",
        100 => "ENETDOWN",
        101 => "ENETUNREACH",
        103 => "ECONNABORTED",
        104 => "ECONNRESET",
        105 => "ENOBUFS",
        106 => "EISCONN",
        107 => "ENOTCONN",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        114 => "EALREADY",
        115 => "EINPROGRESS",
        512 => "ERESTARTSYS",
        513 => "ERESTARTNOINTR",
        514 => "ERESTARTNOHAND",
        516 => "ERESTART_RESTARTBLOCK",
        _ => return None,
    })
}

/// Text as parameters are shown: each byte outside printable ASCII as '.'.
pub fn push_printable(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if (0x20..0x7f).contains(&b) {
            out.push(b as char);
        } else {
            out.push('.');
        }
    }
}

fn push_flags(out: &mut String, value: u64, names: &[(&str, u64)], enum_like: bool) {
    // Room for the usual `66(O_WRONLY|O_CREAT|O_F_CREATED)` at once: grown
    // from empty a name at a time, the text was reallocated four times.
    out.reserve(64);
    let _ = write!(out, "{value}");
    let mut first = true;
    let mut any = false;
    let mut open = |out: &mut String, name: &str| {
        out.push(if first { '(' } else { '|' });
        out.push_str(name);
        first = false;
    };
    if enum_like {
        if let Some((name, _)) = names.iter().find(|(_, v)| *v == value) {
            open(out, name);
            any = true;
        }
    } else {
        let mut zero_name = None;
        for (name, v) in names {
            if *v == 0 {
                zero_name.get_or_insert(*name);
            } else if value & v == *v {
                open(out, name);
                any = true;
            }
        }
        if !any {
            if let Some(z) = zero_name {
                open(out, z);
                any = true;
            }
        }
    }
    if any {
        out.push(')');
    }
}

/// Appends the rendered value of `p` to `out`.
pub fn render_param(p: &Param<'_>, resolver: &dyn Resolver, out: &mut String) {
    use ParamType::*;
    let ty = p.ty();
    if p.bytes.is_empty() && ty.is_numeric() {
        // No value at all (an older exit rebuilt without its enter, or a
        // value the driver could not read): Falco shows <NA>, not a zero.
        out.push_str("<NA>");
        return;
    }
    if p.bytes.is_empty()
        && matches!(
            ty,
            ByteBuf | SockTuple | FdList | CharBufArray | CharBufPairArray | Dyn
        )
    {
        // libsinsp's word for these empty, kept from before every type
        // could be: `data=NULL`.
        out.push_str("NULL");
        return;
    }
    match ty {
        Errno => {
            let v = p.as_i64().unwrap_or(0);
            if v >= 0 && p.info.fmt == 2 {
                let _ = write!(out, "{v:X}");
            } else {
                let _ = write!(out, "{v}");
            }
            if v < 0 {
                if let Some(name) = errno_name(-v) {
                    let _ = write!(out, "({name})");
                }
            }
        }
        Fd => {
            let v = p.as_i64().unwrap_or(0);
            let _ = write!(out, "{v}");
            // The dirfd of every *at call; libsinsp's render_fd names it
            // before it would read -100 as an errno (ENETDOWN).
            if v == -100 {
                out.push_str("(AT_FDCWD)");
            } else if v < 0 {
                if let Some(name) = errno_name(-v) {
                    let _ = write!(out, "({name})");
                }
            } else if let Some((c, name)) = resolver.fd_label(v) {
                let _ = write!(out, "(<{c}>{name})");
            }
        }
        Pid => {
            let v = p.as_i64().unwrap_or(0);
            let _ = write!(out, "{v}");
            if let Some(comm) = resolver.comm_of(v) {
                let _ = write!(out, "({comm})");
            }
        }
        Flags8 | Flags16 | Flags32 | Mode => {
            let v = p.as_u64().unwrap_or(0);
            match p.info.names {
                Some(names) => push_flags(out, v, names, false),
                Option::None => {
                    let _ = write!(out, "{v}");
                }
            }
        }
        Enumflags8 | Enumflags16 | Enumflags32 | SockFamily | L4Proto => {
            let v = p.as_u64().unwrap_or(0);
            match p.info.names {
                Some(names) => push_flags(out, v, names, true),
                Option::None => {
                    let _ = write!(out, "{v}");
                }
            }
        }
        SyscallId => {
            let v = p.as_u64().unwrap_or(0);
            match super::table::syscall_name(v).filter(|_| v != 0) {
                Some(name) => out.push_str(name),
                Option::None if v == 0 => out.push_str("<unknown>"),
                Option::None => {
                    let _ = write!(out, "{v}");
                }
            }
        }
        Int8 | Int16 | Int32 | Int64 | Uint8 | Uint16 | Uint32 | Uint64 | RelTime | AbsTime
        | Port | Bool | Uid | Gid | SigSet | SigType => {
            match p.info.fmt {
                2 => {
                    let _ = write!(out, "{:X}", p.as_u64().unwrap_or(0));
                }
                6 => {
                    let v = p.as_u64().unwrap_or(0);
                    if v == 0 {
                        out.push('0');
                    } else {
                        let _ = write!(out, "0{v:o}");
                    }
                }
                _ if ty.is_signed() => {
                    let _ = write!(out, "{}", p.as_i64().unwrap_or(0));
                }
                _ => {
                    let _ = write!(out, "{}", p.as_u64().unwrap_or(0));
                }
            }
            if let (Some(names), true) = (p.info.names, matches!(ty, SigType)) {
                let v = p.as_u64().unwrap_or(0);
                if let Some((n, _)) = names.iter().find(|(_, x)| *x == v) {
                    let _ = write!(out, "({n})");
                }
            }
        }
        CharBuf | FsPath | FsRelPath => push_printable(out, p.as_bytes_str()),
        ByteBuf => push_printable(out, p.bytes),
        SockAddr | SockTuple if p.bytes.is_empty() => out.push_str("NULL"),
        SockAddr => match p.as_sockaddr() {
            Some(self::SockAddr::Inet(ip, port)) => push_endpoint(out, ip, port),
            Some(self::SockAddr::Unix(path)) => push_printable(out, path),
            _ => {}
        },
        SockTuple => match p.as_socktuple() {
            Some(self::SockTuple::Inet {
                src,
                sport,
                dst,
                dport,
            }) => {
                push_endpoint(out, src, sport);
                out.push_str("->");
                push_endpoint(out, dst, dport);
            }
            Some(self::SockTuple::Unix { src, dst, path }) => {
                let _ = write!(out, "{src:x}->{dst:x} ");
                push_printable(out, path);
            }
            _ => {}
        },
        FdList => {
            let mut first = true;
            for (fd, flags) in p.fdlist() {
                if !first {
                    out.push(' ');
                }
                first = false;
                // fd, then its type letter when known, then the poll flags in hex.
                let _ = write!(out, "{fd}:");
                if let Some(c) = resolver
                    .fd_label(fd)
                    .and_then(|(label, _)| label.chars().next())
                {
                    out.push(c);
                }
                let _ = write!(out, "{flags:x}");
            }
        }
        Ipv4Addr => {
            if let Ok(b) = <[u8; 4]>::try_from(p.bytes) {
                let _ = write!(out, "{}", std::net::Ipv4Addr::from(b));
            }
        }
        Ipv6Addr => {
            if let Ok(b) = <[u8; 16]>::try_from(p.bytes) {
                let _ = write!(out, "{}", std::net::Ipv6Addr::from(b));
            }
        }
        Dyn => {
            let variant = p.bytes.split_first().and_then(|(&index, value)| {
                Some((super::table::dyn_variant(p.info, index)?, value))
            });
            match variant {
                Some((info, bytes)) => render_param(&Param { info, bytes }, resolver, out),
                Option::None => push_printable(out, p.bytes),
            }
        }
        _ => push_printable(out, p.bytes),
    }
}

fn push_endpoint(out: &mut String, ip: std::net::IpAddr, port: u16) {
    let _ = write!(out, "{ip}:{port}");
}

/// Appends the value of `p` the way `evt.arg.NAME` shows it: the resolved
/// form alone when there is one (`ENOENT`, `O_RDONLY|O_CLOEXEC`,
/// `<f>/etc/passwd`, a command name), else the raw value.
pub fn render_param_resolved(p: &Param<'_>, resolver: &dyn Resolver, out: &mut String) {
    use ParamType::*;
    let mut full = String::new();
    render_param(p, resolver, &mut full);
    let numeric_with_name = matches!(
        p.ty(),
        Errno
            | Fd
            | Pid
            | Flags8
            | Flags16
            | Flags32
            | Mode
            | Enumflags8
            | Enumflags16
            | Enumflags32
            | SockFamily
            | L4Proto
            | SigType
    );
    if numeric_with_name && full.ends_with(')') {
        if let Some(open) = full.find('(') {
            let raw = &full[..open];
            if !raw.is_empty()
                && raw
                    .trim_start_matches('-')
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit())
            {
                out.push_str(&full[open + 1..full.len() - 1]);
                return;
            }
        }
    }
    out.push_str(&full);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::table::event_info;

    #[test]
    fn flags_show_value_and_names() {
        let info = &event_info(3).unwrap().params[2];
        let bytes = 4097u32.to_le_bytes();
        let p = Param {
            info,
            bytes: &bytes,
        };
        let mut s = String::new();
        render_param(&p, &NoState, &mut s);
        assert_eq!(s, "4097(O_RDONLY|O_CLOEXEC)");
    }

    #[test]
    fn a_number_with_no_bytes_is_not_a_zero() {
        // open's exit, rebuilt from an old capture: dev, ino and the fd
        // itself may be empty.
        for i in [0, 2, 4, 5] {
            let p = Param {
                info: &event_info(3).unwrap().params[i],
                bytes: &[],
            };
            let mut s = String::new();
            render_param(&p, &NoState, &mut s);
            assert_eq!(s, "<NA>", "param {i}");
        }
    }

    /// ptrace exit (PPME_SYSCALL_PTRACE_X): res, addr, data, request, pid.
    fn ptrace_x_param(i: usize) -> &'static crate::event::table::ParamInfo {
        let info = event_info(169).unwrap();
        assert_eq!(info.name, "ptrace");
        &info.params[i]
    }

    fn dyn_bytes(index: u8, value: &[u8]) -> Vec<u8> {
        [&[index][..], value].concat()
    }

    #[test]
    fn ptrace_request_renders_falco_names() {
        for (code, name) in [
            (0xbu16, "PTRACE_ATTACH"),
            (0x14, "PTRACE_SEIZE"),
            (0x6, "PTRACE_POKEDATA"),
        ] {
            let bytes = code.to_le_bytes();
            let p = Param {
                info: ptrace_x_param(3),
                bytes: &bytes,
            };
            let mut full = String::new();
            render_param(&p, &NoState, &mut full);
            assert_eq!(full, format!("{code}({name})"));
            let mut resolved = String::new();
            render_param_resolved(&p, &NoState, &mut resolved);
            assert_eq!(resolved, name);
        }
    }

    #[test]
    fn ptrace_dyn_params_render_by_their_index() {
        // Index 0: a u64, shown in hex.
        let addr = dyn_bytes(0, &0x7ffd_1234_u64.to_le_bytes());
        let mut s = String::new();
        render_param(
            &Param {
                info: ptrace_x_param(1),
                bytes: &addr,
            },
            &NoState,
            &mut s,
        );
        assert_eq!(s, "7FFD1234");
        // Index 1: a signal number.
        let data = dyn_bytes(1, &[9]);
        let mut s = String::new();
        render_param(
            &Param {
                info: ptrace_x_param(2),
                bytes: &data,
            },
            &NoState,
            &mut s,
        );
        assert_eq!(s, "9");
        // An index beyond the list is shown raw, never a panic.
        let junk = dyn_bytes(7, &[0x41]);
        let mut s = String::new();
        render_param(
            &Param {
                info: ptrace_x_param(2),
                bytes: &junk,
            },
            &NoState,
            &mut s,
        );
        assert_eq!(s, ".A");
        // A u64 variant cut short is read at the width it has, never past its end.
        let short = dyn_bytes(0, &[1, 2]);
        let mut s = String::new();
        render_param(
            &Param {
                info: ptrace_x_param(1),
                bytes: &short,
            },
            &NoState,
            &mut s,
        );
        assert_eq!(s, "201");
    }

    fn render_dyn(event: u16, param: &str, bytes: &[u8]) -> String {
        let info = event_info(event).unwrap();
        let info = info.params.iter().find(|p| p.name == param).unwrap();
        let mut s = String::new();
        render_param(&Param { info, bytes }, &NoState, &mut s);
        s
    }

    #[test]
    fn sockopt_and_keyctl_dyn_params_render_by_their_index() {
        // setsockopt (45) val: a u32 option (SO_REUSEADDR = 1), a timeval in ns.
        assert_eq!(
            render_dyn(45, "val", &dyn_bytes(2, &1u32.to_le_bytes())),
            "1"
        );
        assert_eq!(
            render_dyn(47, "val", &dyn_bytes(4, &1_500_000_000u64.to_le_bytes())),
            "1500000000"
        );
        // keyctl (453): an integer argument, a string argument.
        assert_eq!(
            render_dyn(453, "arg2", &dyn_bytes(0, &(-3i64).to_le_bytes())),
            "-3"
        );
        assert_eq!(render_dyn(453, "arg3", &dyn_bytes(1, b"user\0")), "user");
    }

    #[test]
    fn negative_fd_is_an_errno() {
        let info = &event_info(3).unwrap().params[0];
        let bytes = (-2i64).to_le_bytes();
        let p = Param {
            info,
            bytes: &bytes,
        };
        let mut s = String::new();
        render_param(&p, &NoState, &mut s);
        assert_eq!(s, "-2(ENOENT)");
    }
}
