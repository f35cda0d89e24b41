//! Extraction of each field from an event and the state.

use super::{Arg, EventFd, Field, SyscallEvent};
use crate::dns::DomainNames;
use crate::event::render::{errno_name, push_printable, render_param, render_param_resolved};
use crate::event::table::{flags as ef, Direction};
use crate::field::{FieldType, Value};
use crate::state::{Fd, FdKind, Thread};
use std::borrow::Cow;
use std::net::IpAddr;

/// What libsinsp shows for a name it does not know.
const NA: &str = "<NA>";

fn s<'e>(v: &'e str) -> Value<'e> {
    Value::Str(Cow::Borrowed(v))
}

fn owned<'e>(v: String) -> Value<'e> {
    Value::Str(Cow::Owned(v))
}

/// A string field of the state's fd or of one made up for the event,
/// borrowing when it can.
fn cow_str<'e>(f: EventFd<'e, '_>, get: impl Fn(&Fd) -> &str) -> Value<'e> {
    match f {
        EventFd::State(b) => Value::Str(Cow::Borrowed(get(b))),
        EventFd::Made(o) => Value::Str(Cow::Owned(get(o).to_string())),
    }
}

/// The directory and the file name of a file's path, as libsinsp splits
/// them: `/` for a file at the root, nothing for a name without a slash.
/// Searched from the end a byte at a time: the file name is short, and
/// a `/` is never part of a multi-byte character.
fn split_path(name: &str) -> (&str, &str) {
    match name.bytes().rposition(|b| b == b'/') {
        Some(0) => ("/", &name[1..]),
        Some(i) => (&name[..i], &name[i + 1..]),
        None => ("", name),
    }
}

/// `HH:MM:SS.nnnnnnnnn` of a nanosecond epoch timestamp, in UTC.
pub fn format_time(ts: u64) -> String {
    let secs = ts / 1_000_000_000;
    let nanos = ts % 1_000_000_000;
    let day = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        day / 3600,
        (day / 60) % 60,
        day % 60,
        nanos
    )
}

fn category_name(category: u32) -> &'static str {
    if category & (1 << 6) != 0 {
        return "wait";
    }
    if category & (1 << 7) != 0 {
        return "scheduler";
    }
    match category & 0x3f {
        1 => "other",
        2 => "file",
        3 => "net",
        4 => "IPC",
        5 => "memory",
        6 => "process",
        7 => "sleep",
        8 => "system",
        9 => "signal",
        10 => "user",
        11 => "time",
        12 => "processing",
        32 => "IO_read",
        33 => "IO_write",
        34 => "IO_other",
        _ => "unknown",
    }
}

/// Open flags of an open-family exit event (PPM encoding), from the
/// event or else from the fd it created. Fields ask
/// [`SyscallEvent::open_flags`], which keeps this.
pub(super) fn open_flags(ev: &SyscallEvent<'_>) -> Option<u32> {
    let v = ev.event;
    if !ev.state.is_open_exit(v) {
        return None;
    }
    if v.name() == "creat" {
        return Some(0b10 | 0b100);
    }
    if let Some(f) = ev.state.event_flags(v) {
        return Some(f as u32);
    }
    let fd = ev.state.event_fd(v)?;
    Some(ev.state.fd(v.tid as i64, fd)?.open_flags)
}

/// (client ip, client port, server ip, server port) of a socket fd.
fn endpoints(fd: &Fd) -> Option<(Option<IpAddr>, u16, IpAddr, u16)> {
    match fd.kind {
        FdKind::Ipv4 {
            sip,
            sport,
            dip,
            dport,
            ..
        }
        | FdKind::Ipv6 {
            sip,
            sport,
            dip,
            dport,
            ..
        } => Some((Some(sip), sport, dip, dport)),
        // A socket neither bound nor connected has no endpoint yet.
        FdKind::Ipv4Server { port: 0, .. } | FdKind::Ipv6Server { port: 0, .. } => None,
        FdKind::Ipv4Server { ip, port, .. } | FdKind::Ipv6Server { ip, port, .. } => {
            Some((None, 0, ip, port))
        }
        _ => None,
    }
}

/// The fields of the event alone, answered without the state (and without
/// the setup [`extract`] does for the others). False for other fields.
#[inline]
pub(super) fn event_only<'e>(
    field: Field,
    v: &'e crate::event::EventView<'e>,
    out: &mut Vec<Value<'e>>,
) -> bool {
    match field {
        Field::EvtType => out.push(s(v.async_name().unwrap_or_else(|| v.type_name()))),
        Field::EvtDir => out.push(s(v.direction().symbol())),
        Field::EvtNum => out.push(Value::Uint(v.num)),
        Field::EvtRawTime => out.push(Value::Uint(v.ts)),
        Field::EvtCpu => out.push(Value::Int(i64::from(v.cpu))),
        _ => return false,
    }
    true
}

/// The fields nearly every rule on a file event reads (`open_read`,
/// `open_write` and what follows them), answered without the set-up of
/// [`extract`] (its closures, the thread). False for other fields.
#[inline]
pub(super) fn hot<'e>(field: Field, ev: &SyscallEvent<'e>, out: &mut Vec<Value<'e>>) -> bool {
    match field {
        Field::FdName | Field::FdTypechar | Field::FdDirectory | Field::FdFilename => {
            let Some((n, f)) = ev.fd_info() else {
                return true;
            };
            match field {
                Field::FdName => out.push(cow_str(f, |f| &f.name)),
                Field::FdTypechar => out.push(s(f.typechar())),
                // A failed open (fd -1) names the file it tried and its
                // directory, but no file name (as Falco shows it).
                Field::FdFilename if n < 0 => {}
                _ => match f.kind {
                    FdKind::Directory if field == Field::FdDirectory => {
                        out.push(cow_str(f, |f| &f.name))
                    }
                    FdKind::File => out.push(cow_str(f, |f| {
                        let (dir, file) = split_path(&f.name);
                        if field == Field::FdDirectory {
                            dir
                        } else {
                            file
                        }
                    })),
                    _ => {}
                },
            }
        }
        Field::FdNum => out.extend(ev.fd_num().map(Value::Int)),
        Field::EvtIsOpenRead | Field::EvtIsOpenWrite => {
            let bit = if field == Field::EvtIsOpenRead { 1 } else { 2 };
            out.push(Value::Bool(ev.open_flags().is_some_and(|f| f & bit != 0)));
        }
        Field::EvtRawRes => out.extend(ev.event.res().map(Value::Int)),
        _ => return false,
    }
    true
}

/// What the source's settings bring to extraction.
pub(super) struct Rendering<'a> {
    pub names: &'a DomainNames,
    /// `buffer_format_base64`, for `evt.args`.
    pub buffer_base64: bool,
}

pub(super) fn extract<'e>(
    field: Field,
    arg: Option<&Arg>,
    want: FieldType,
    rendering: &Rendering<'_>,
    ev: &SyscallEvent<'e>,
    out: &mut Vec<Value<'e>>,
) {
    let names = rendering.names;
    let v: &'e crate::event::EventView<'e> = ev.event;
    let state = ev.state;
    let tid = v.tid as i64;
    // A failed open (fd -1) names the file it tried and its directory
    // (see `hot`), but no fd type (as Falco shows it).
    let fd_info = || {
        ev.fd_info().filter(|(n, _)| {
            *n >= 0 || matches!(field, Field::FdContainername | Field::FdContainerdirectory)
        })
    };
    // An unknown thread reads as libsinsp's made-up one.
    let thread: Option<&'e Thread> = Some(ev.thread());
    let parent = || thread.and_then(|t| state.parent(t));
    match field {
        Field::EvtNum => out.push(Value::Uint(v.num)),
        Field::EvtTime => out.push(owned(format_time(v.ts))),
        Field::EvtRawTime => out.push(Value::Uint(v.ts)),
        Field::EvtType => out.push(s(v.async_name().unwrap_or_else(|| v.type_name()))),
        Field::EvtDir => out.push(s(v.direction().symbol())),
        Field::EvtCpu => out.push(Value::Int(i64::from(v.cpu))),
        Field::EvtCategory => out.push(s(category_name(v.info().category))),
        Field::EvtRes => {
            if let Some(r) = v.res() {
                if r >= 0 {
                    out.push(s("SUCCESS"));
                } else {
                    out.push(match errno_name(-r) {
                        Some(n) => s(n),
                        None => owned(r.to_string()),
                    });
                }
            }
        }
        Field::EvtFailed => {
            out.push(Value::Bool(v.res().is_some_and(|r| r < 0)));
        }
        Field::EvtIsOpenExec | Field::EvtIsOpenCreate => {
            let flags = ev.open_flags();
            let b = match (field, flags) {
                (_, None) => false,
                // PPM_O_F_CREATED (the call made the file), or a
                // successful O_TMPFILE.
                (Field::EvtIsOpenCreate, Some(f)) => {
                    f & (1 << 14) != 0 || (f & (1 << 13) != 0 && v.res().is_some_and(|r| r >= 0))
                }
                (_, Some(f)) => {
                    // O_CREAT or O_TMPFILE with an execute bit in the mode.
                    let mode = v.param_named("mode").and_then(|p| p.as_u64()).unwrap_or(0);
                    f & ((1 << 2) | (1 << 13)) != 0 && mode & 0o111 != 0
                }
            };
            out.push(Value::Bool(b));
        }
        Field::EvtArg | Field::EvtArgIndex | Field::EvtRawArg => {
            let index = match arg {
                Some(Arg::Name(n)) => v.param_index(n),
                Some(Arg::Index(i)) => Some(*i),
                Some(Arg::Types(_) | Arg::Pattern(_)) | None => None,
            };
            let Some((index, p)) = index.and_then(|i| Some((i, v.param(i)?))) else {
                return;
            };
            if field == Field::EvtRawArg {
                // The value takes the type the name resolved to, whatever
                // width or signedness this event's parameter has.
                let ty = p.ty();
                match want {
                    FieldType::Int if ty.is_numeric() => {
                        out.push(Value::Int(p.as_i64().unwrap_or(0)))
                    }
                    FieldType::Uint if ty.is_numeric() => {
                        out.push(Value::Uint(p.as_u64().unwrap_or(0)))
                    }
                    FieldType::Bytes => out.push(Value::Bytes(Cow::Borrowed(p.bytes))),
                    FieldType::Ip => {
                        if let Ok(b) = <[u8; 4]>::try_from(p.bytes) {
                            out.push(Value::Ip(IpAddr::from(b)));
                        } else if let Ok(b) = <[u8; 16]>::try_from(p.bytes) {
                            out.push(Value::Ip(IpAddr::from(b)));
                        }
                    }
                    FieldType::String if ty.is_numeric() => {
                        let text = if ty.is_signed() {
                            p.as_i64().unwrap_or(0).to_string()
                        } else {
                            p.as_u64().unwrap_or(0).to_string()
                        };
                        out.push(owned(text));
                    }
                    FieldType::String => {
                        out.push(Value::Str(crate::text::decode(p.as_bytes_str())))
                    }
                    _ => {}
                }
            } else if want == FieldType::Bytes
                && p.ty() == crate::event::ParamType::ByteBuf
                && !p.bytes.is_empty()
            {
                // An output's buffer: the output renders it (dots, or
                // base64 with buffer_format_base64).
                out.push(Value::Bytes(Cow::Borrowed(p.bytes)));
            } else {
                let mut text = String::new();
                // A relative path reads as libsinsp resolves it, so that a
                // rule on `evt.arg.oldpath` sees `ln shadow x` after `cd /etc`.
                match super::paths::resolved_arg(v, index, state) {
                    Some(path) => push_printable(&mut text, path.as_bytes()),
                    None => render_param_resolved(&p, &state.resolver(tid), &mut text),
                }
                out.push(owned(text));
            }
        }
        Field::EvtArgs => {
            let mut text = String::new();
            // Generic events stand for a syscall by name; their two ids
            // are not arguments of that syscall.
            if v.info().name == "syscall" {
                out.push(owned(text));
                return;
            }
            let r = state.resolver(tid);
            for (i, p) in v.params().enumerate() {
                if i > 0 {
                    text.push(' ');
                }
                text.push_str(p.name());
                text.push('=');
                if rendering.buffer_base64
                    && p.ty() == crate::event::ParamType::ByteBuf
                    && !p.bytes.is_empty()
                {
                    crate::output::base64_encode(p.bytes, &mut text);
                } else {
                    render_param(&p, &r, &mut text);
                }
                // libsinsp's `name=raw(resolved)` for a relative path.
                if let Some(path) = super::paths::resolved_arg(v, i, state) {
                    text.push('(');
                    push_printable(&mut text, path.as_bytes());
                    text.push(')');
                }
            }
            out.push(owned(text));
        }
        Field::EvtBuffer => {
            if v.has_flag(ef::READS_FROM_FD | ef::WRITES_TO_FD) {
                if let Some(p) = v.param_named("data") {
                    // An output (string-typed, see resolve_output) shows an
                    // empty buffer as libsinsp's text for it.
                    if p.bytes.is_empty() && want == FieldType::String {
                        out.push(s("NULL"));
                    } else {
                        out.push(Value::Bytes(Cow::Borrowed(p.bytes)));
                    }
                }
            }
        }
        Field::ProcName => thread.into_iter().for_each(|t| out.push(s(&t.comm))),
        Field::ProcExe => thread.into_iter().for_each(|t| out.push(s(&t.exe))),
        Field::ProcExepath => thread.into_iter().for_each(|t| out.push(s(&t.exepath))),
        Field::ProcCmdline => thread
            .into_iter()
            .for_each(|t| out.push(owned(t.cmdline()))),
        Field::ProcArgs => {
            let Some(t) = thread else { return };
            match arg {
                Some(Arg::Index(n)) => {
                    if let Some(a) = t.args.iter().nth(*n) {
                        out.push(owned(a.into_owned()))
                    }
                }
                _ => out.push(owned(t.args_joined())),
            }
        }
        Field::ProcPid => {
            // A thread the state never saw created is taken as its own process.
            out.push(Value::Int(thread.map(|t| t.pid).unwrap_or(tid)))
        }
        Field::ProcPpid => {
            if let Some(t) = thread {
                let main = state.main_thread(t);
                match state.parent(main) {
                    Some(p) => out.push(Value::Int(p.pid)),
                    None => out.push(Value::Int(main.ptid)),
                }
            }
        }
        Field::ProcPname => parent().into_iter().for_each(|p| out.push(s(&p.comm))),
        Field::ProcPcmdline => parent()
            .into_iter()
            .for_each(|p| out.push(owned(p.cmdline()))),
        Field::ProcPexe => parent().into_iter().for_each(|p| out.push(s(&p.exe))),
        Field::ProcPexepath => parent().into_iter().for_each(|p| out.push(s(&p.exepath))),
        Field::ProcAname | Field::ProcApid | Field::ProcAexepath => {
            let Some(t) = thread else { return };
            let push = |a: &'e Thread, out: &mut Vec<Value<'e>>| {
                out.push(match field {
                    Field::ProcAname => s(&a.comm),
                    Field::ProcAexepath => s(&a.exepath),
                    _ => Value::Int(a.pid),
                })
            };
            match arg {
                Some(Arg::Index(0)) => push(t, out),
                Some(Arg::Index(n)) => {
                    if let Some(a) = state.ancestors(t).nth(n - 1) {
                        push(a, out)
                    }
                }
                _ => state.ancestors(t).for_each(|a| push(a, out)),
            }
        }
        Field::ProcCwd => thread.into_iter().for_each(|t| out.push(s(&t.cwd))),
        Field::ProcTty => thread
            .into_iter()
            .for_each(|t| out.push(Value::Uint(u64::from(t.tty)))),
        Field::ProcSid => thread.into_iter().for_each(|t| out.push(Value::Int(t.sid))),
        Field::ProcVpgid => thread
            .into_iter()
            .for_each(|t| out.push(Value::Int(t.vpgid))),
        Field::ProcIsExeWritable => thread
            .into_iter()
            .for_each(|t| out.push(Value::Bool(t.exe_writable))),
        Field::ProcVpid => thread
            .filter(|t| t.vpid >= 0)
            .into_iter()
            .for_each(|t| out.push(Value::Int(t.vpid))),
        Field::ThreadTid => out.push(Value::Int(tid)),
        Field::ThreadVtid => thread
            .filter(|t| t.vtid >= 0)
            .into_iter()
            .for_each(|t| out.push(Value::Int(t.vtid))),
        // A user or group the tables do not know is libsinsp's `<NA>`.
        Field::UserName => {
            if let Some(t) = thread {
                out.push(s(state.users_of(t).user_name(t.uid).unwrap_or(NA)))
            }
        }
        Field::UserUid => thread
            .into_iter()
            .for_each(|t| out.push(Value::Uint(u64::from(t.uid)))),
        // libsinsp makes up a thread for an event whose thread it does not
        // know, with no login uid: Falco prints -1 there, not <NA>.
        Field::UserLoginUid => out.push(Value::Int(
            thread.map_or(-1, |t| i64::from(t.loginuid as i32)),
        )),
        Field::UserLoginName => {
            if let Some(t) = thread {
                let name = Some(t.loginuid)
                    .filter(|&uid| uid != u32::MAX)
                    .and_then(|uid| state.users.user_name(uid));
                out.push(s(name.unwrap_or(NA)))
            }
        }
        Field::UserHomedir => {
            if let Some(t) = thread {
                out.push(s(state.users_of(t).home(t.uid).unwrap_or(NA)))
            }
        }
        Field::GroupName => {
            if let Some(t) = thread {
                let name = state.users_of(t).group_name(t.gid);
                out.push(s(name.unwrap_or(if t.gid == 0 { "root" } else { NA })))
            }
        }
        Field::GroupGid => thread
            .into_iter()
            .for_each(|t| out.push(Value::Uint(u64::from(t.gid)))),
        // Answered by `hot`.
        Field::FdName
        | Field::FdNum
        | Field::FdTypechar
        | Field::FdDirectory
        | Field::FdFilename
        | Field::EvtIsOpenRead
        | Field::EvtIsOpenWrite
        | Field::EvtRawRes => {}
        Field::EvtAbspath
        | Field::EvtAbspathSrc
        | Field::EvtAbspathDst
        | Field::FsPathName
        | Field::FsPathNameraw
        | Field::FsPathSource
        | Field::FsPathSourceraw
        | Field::FsPathTarget
        | Field::FsPathTargetraw => {
            if let Some(path) = super::paths::extract(field, v, state) {
                out.push(owned(path));
            }
        }
        Field::FdType => fd_info()
            .into_iter()
            .for_each(|(_, f)| out.push(s(f.type_name()))),
        Field::FdSip
        | Field::FdCip
        | Field::FdSport
        | Field::FdCport
        | Field::FdLip
        | Field::FdRip
        | Field::FdLport
        | Field::FdRport
        | Field::FdNet
        | Field::FdCnet
        | Field::FdSnet
        | Field::FdIp
        | Field::FdPort
        | Field::FdLnet
        | Field::FdRnet
        | Field::FdProto
        | Field::FdCproto
        | Field::FdSproto
        | Field::FdLproto
        | Field::FdRproto
        | Field::FdSipName
        | Field::FdCipName
        | Field::FdLipName
        | Field::FdRipName => {
            let Some((_, f)) = fd_info() else { return };
            let Some((cip, cport, sip, sport)) = endpoints(&f) else {
                return;
            };
            let server = f.server_side || cip.is_none();
            let ((lip, lport), (rip, rport)) = if server {
                ((Some(sip), sport), (cip, cport))
            } else {
                ((cip, cport), (Some(sip), sport))
            };
            match field {
                Field::FdSip | Field::FdSnet => out.push(Value::Ip(sip)),
                Field::FdCip | Field::FdCnet => {
                    cip.into_iter().for_each(|ip| out.push(Value::Ip(ip)))
                }
                Field::FdSport => out.push(Value::Uint(u64::from(sport))),
                Field::FdCport => {
                    if cip.is_some() {
                        out.push(Value::Uint(u64::from(cport)))
                    }
                }
                Field::FdLip | Field::FdLnet => {
                    lip.into_iter().for_each(|ip| out.push(Value::Ip(ip)))
                }
                Field::FdRip | Field::FdRnet => {
                    rip.into_iter().for_each(|ip| out.push(Value::Ip(ip)))
                }
                Field::FdPort => {
                    if cip.is_some() {
                        out.push(Value::Uint(u64::from(cport)));
                    }
                    out.push(Value::Uint(u64::from(sport)));
                }
                // Falco turns off port name resolution: a port's
                // "protocol" is its number as text.
                Field::FdProto => {
                    if cip.is_some() {
                        out.push(Value::Uint(u64::from(cport)));
                    }
                    out.push(Value::Uint(u64::from(sport)));
                }
                Field::FdSproto => out.push(owned(sport.to_string())),
                Field::FdCproto => {
                    if cip.is_some() {
                        out.push(owned(cport.to_string()))
                    }
                }
                Field::FdLproto => {
                    if lip.is_some() && rip.is_some() {
                        out.push(owned(lport.to_string()))
                    }
                }
                Field::FdRproto => {
                    if rip.is_some() {
                        out.push(owned(rport.to_string()))
                    }
                }
                Field::FdSipName | Field::FdCipName | Field::FdLipName | Field::FdRipName => {
                    // Local and remote ends exist only once connected.
                    let connected = cip.is_some();
                    let ip = match field {
                        Field::FdSipName => Some(sip),
                        Field::FdCipName => cip,
                        Field::FdLipName if connected => lip,
                        Field::FdRipName if connected => rip,
                        _ => None,
                    };
                    if let Some(name) = ip.and_then(|ip| names.name_of(ip)) {
                        out.push(owned(name))
                    }
                }
                Field::FdLport => {
                    if lip.is_some() {
                        out.push(Value::Uint(u64::from(lport)))
                    }
                }
                Field::FdRport => {
                    if rip.is_some() {
                        out.push(Value::Uint(u64::from(rport)))
                    }
                }
                _ => {
                    cip.into_iter().for_each(|ip| out.push(Value::Ip(ip)));
                    out.push(Value::Ip(sip));
                }
            }
        }
        Field::FdL4proto => {
            if let Some(p) = fd_info()
                .and_then(|(_, f)| f.l4proto())
                .filter(|&p| p != crate::state::fd::l4::UNKNOWN)
            {
                out.push(s(crate::state::fd::l4proto_name(p)))
            }
        }
        Field::FdSockfamily => {
            let Some((_, f)) = fd_info() else { return };
            match f.kind {
                FdKind::Unix => out.push(s("unix")),
                _ if f.is_socket() => out.push(s("ip")),
                _ => {}
            }
        }
        Field::FdIsServer => {
            // Any fd answers; only an accepted or bound socket is a server.
            if let Some((_, f)) = fd_info() {
                let bound = matches!(
                    f.kind,
                    FdKind::Ipv4Server { port, .. } | FdKind::Ipv6Server { port, .. } if port != 0
                );
                out.push(Value::Bool(f.server_side || bound))
            }
        }
        Field::FdNameraw => {
            if let Some((_, f)) = fd_info() {
                out.push(match &f.raw_name {
                    Some(raw) => owned(raw.to_string()),
                    None => cow_str(f, |f| &f.name),
                });
            }
        }
        Field::EvtHostname => {
            if !state.hostname.is_empty() {
                out.push(s(&state.hostname))
            }
        }
        Field::ProcSname | Field::ProcIsSidLeader => {
            let Some(t) = thread else { return };
            if field == Field::ProcIsSidLeader {
                out.push(Value::Bool(t.sid == t.pid));
            } else if let Some(leader) = state.thread(t.sid) {
                out.push(s(&leader.comm));
            }
        }
        Field::ProcVpgidName | Field::ProcVpgidExe | Field::ProcIsVpgidLeader => {
            let Some(t) = thread.filter(|t| t.vpgid >= 0) else {
                return;
            };
            let leads = |o: &Thread| o.vpid == t.vpgid || (o.vpid < 0 && o.pid == t.vpgid);
            if field == Field::ProcIsVpgidLeader {
                out.push(Value::Bool(leads(t)));
                return;
            }
            // The leader is looked up only when a rule asks (a table scan).
            if let Some(l) = state.threads().find(|o| o.vpgid == t.vpgid && leads(o)) {
                out.push(if field == Field::ProcVpgidName {
                    s(&l.comm)
                } else {
                    s(&l.exe)
                });
            }
        }
        Field::ProcEnv => {
            let Some(t) = thread else { return };
            let main = state.main_thread(t);
            match arg {
                Some(Arg::Name(var)) => {
                    let value_of = |e: &str| {
                        e.strip_prefix(var.as_str())?
                            .strip_prefix('=')
                            .map(str::len)
                    };
                    for e in main.env.iter() {
                        let Some(n) = value_of(&e) else { continue };
                        out.push(match e {
                            std::borrow::Cow::Borrowed(e) => s(&e[e.len() - n..]),
                            std::borrow::Cow::Owned(e) => owned(e[e.len() - n..].to_string()),
                        });
                        break;
                    }
                }
                _ => out.push(owned(main.env.join(" "))),
            }
        }
        Field::ProcDuration | Field::ProcPpidDuration => {
            let t = if field == Field::ProcDuration {
                thread
            } else {
                parent()
            };
            if let Some(t) = t.filter(|t| t.clone_ts > 0 && t.clone_ts <= v.ts) {
                out.push(Value::Uint(v.ts - t.clone_ts));
            }
        }
        Field::ProcIsExeUpperLayer => thread
            .into_iter()
            .for_each(|t| out.push(Value::Bool(t.exe_upper_layer))),
        Field::ProcIsExeFromMemfd => thread
            .into_iter()
            .for_each(|t| out.push(Value::Bool(t.exe_from_memfd))),
        Field::ProcExeIno => thread
            .filter(|t| t.exe_ino != 0)
            .into_iter()
            .for_each(|t| out.push(Value::Int(t.exe_ino as i64))),
        Field::ProcExeInoCtime => thread
            .filter(|t| t.exe_ino_ctime != 0)
            .into_iter()
            .for_each(|t| out.push(Value::Uint(t.exe_ino_ctime))),
        Field::ProcExeInoMtime => thread
            .filter(|t| t.exe_ino_mtime != 0)
            .into_iter()
            .for_each(|t| out.push(Value::Uint(t.exe_ino_mtime))),
        Field::ProcExeInoCtimeDurationProcStart => {
            let known = |t: &&Thread| t.exe_ino_ctime != 0 && t.clone_ts > t.exe_ino_ctime;
            if let Some(t) = thread.filter(known) {
                out.push(Value::Uint(t.clone_ts - t.exe_ino_ctime));
            }
        }
        Field::ThreadCapPermitted | Field::ThreadCapEffective | Field::ThreadCapInheritable => {
            let Some(t) = thread else { return };
            let mask = match field {
                Field::ThreadCapPermitted => t.cap_permitted,
                Field::ThreadCapEffective => t.cap_effective,
                _ => t.cap_inheritable,
            };
            out.push(owned(capability_names(mask)));
        }
        Field::FdUid => {
            if let Some(n) = ev.fd_num() {
                out.push(owned(format!("{tid}{n}")))
            }
        }
        Field::FdContainername | Field::FdContainerdirectory => {
            let Some((_, f)) = fd_info() else { return };
            let whole = field == Field::FdContainername || f.kind == FdKind::Directory;
            let name = if whole {
                Some(f.name.clone())
            } else if f.kind == FdKind::File {
                Some(split_path(&f.name).0.to_string())
            } else {
                None
            };
            // Host processes have no container id here (container.id
            // shows "host" for them).
            let id = match thread.map(|t| t.container_id.as_str()) {
                Some("host") | None => "",
                Some(id) => id,
            };
            if let Some(name) = name {
                out.push(owned(format!("{id}:{name}")))
            }
        }
        Field::FdDev | Field::FdDevMajor | Field::FdDevMinor => {
            let Some((_, f)) = fd_info() else { return };
            // The driver sends new_encode_dev(): minor's low byte, then
            // 12 bits of major, then the rest of minor.
            let dev = f.dev;
            out.push(Value::Int(i64::from(match field {
                Field::FdDev => dev,
                Field::FdDevMajor => (dev & 0xfff00) >> 8,
                _ => (dev & 0xff) | ((dev >> 12) & 0xfff00),
            })))
        }
        Field::FdIno => {
            if let Some((_, f)) = fd_info() {
                out.push(Value::Int(f.ino as i64))
            }
        }
        Field::FdIsUpperLayer | Field::FdIsLowerLayer => {
            if let Some((_, f)) = fd_info() {
                let bit = if field == Field::FdIsUpperLayer {
                    1 << 15
                } else {
                    1 << 16
                };
                out.push(Value::Bool(
                    f.kind == FdKind::File && f.open_flags & bit != 0,
                ))
            }
        }
        Field::FdTypes => {
            let Some(t) = thread else { return };
            match arg {
                Some(Arg::Index(n)) => {
                    if let Some(f) = state.fd(tid, *n as i64) {
                        out.push(s(f.type_name()))
                    }
                }
                _ => {
                    let Some(fds) = state.fds_of(t.pid) else {
                        return;
                    };
                    let mut seen: Vec<&'static str> = Vec::new();
                    for f in fds.values() {
                        let ty = f.type_name();
                        if !seen.contains(&ty) {
                            seen.push(ty);
                            out.push(s(ty));
                        }
                    }
                }
            }
        }
        Field::FdlistNums
        | Field::FdlistNames
        | Field::FdlistCips
        | Field::FdlistSips
        | Field::FdlistCports
        | Field::FdlistSports => fdlist(field, ev, out),
        Field::EvtLatency
        | Field::EvtLatencyS
        | Field::EvtLatencyNs
        | Field::EvtLatencyQuantized
        | Field::EvtLatencyHuman
        | Field::EvtDeltatime
        | Field::EvtDeltatimeS
        | Field::EvtDeltatimeNs
        | Field::EvtOutputtime
        | Field::EvtTypeIs
        | Field::SyscallType
        | Field::EvtBuflen
        | Field::EvtIsIo
        | Field::EvtIsIoRead
        | Field::EvtIsIoWrite
        | Field::EvtIoDir
        | Field::EvtIsWait
        | Field::EvtWaitLatency
        | Field::EvtIsSyslog
        | Field::EvtCount
        | Field::EvtCountError
        | Field::EvtCountErrorFile
        | Field::EvtCountErrorNet
        | Field::EvtCountErrorMemory
        | Field::EvtCountErrorOther
        | Field::EvtCountExit
        | Field::EvtCountProcinfo
        | Field::EvtCountThreadinfo
        | Field::EvtBuflenIn
        | Field::EvtBuflenOut
        | Field::EvtBuflenFile
        | Field::EvtBuflenFileIn
        | Field::EvtBuflenFileOut
        | Field::EvtBuflenNet
        | Field::EvtBuflenNetIn
        | Field::EvtBuflenNetOut
        | Field::EvtInfraDockerName
        | Field::EvtInfraDockerContainerId
        | Field::EvtInfraDockerContainerName
        | Field::EvtInfraDockerContainerImage
        | Field::EvtTimeS
        | Field::EvtTimeIso8601
        | Field::EvtDatetime
        | Field::EvtDatetimeS
        | Field::EvtRawtimeS
        | Field::EvtRawtimeNs
        | Field::EvtReltime
        | Field::EvtReltimeS
        | Field::EvtReltimeNs
        | Field::EvtPluginname
        | Field::EvtPlugininfo
        | Field::EvtSource
        | Field::EvtIsAsync
        | Field::EvtAsynctype => super::event_info::extract(field, arg, ev, out),
        Field::EvtInfo => {
            // Falco's evt.info is evt.args (it decodes nothing further).
            extract(Field::EvtArgs, arg, want, rendering, ev, out)
        }
        Field::ProcAexe
        | Field::ProcAargs
        | Field::ProcAcmdline
        | Field::ProcAenv
        | Field::ProcCmdnargs
        | Field::ProcCmdlenargs
        | Field::ProcExeline
        | Field::ProcLoginshellid
        | Field::ProcPvpid
        | Field::ProcSidExe
        | Field::ProcSidExepath
        | Field::ProcVpgidExepath
        | Field::ProcPgid
        | Field::ProcPgidName
        | Field::ProcPgidExe
        | Field::ProcPgidExepath
        | Field::ProcPidTs
        | Field::ProcPpidTs
        | Field::ProcIsExeLowerLayer
        | Field::ProcIsPgidLeader
        | Field::ProcExeInoCtimeDurationPidnsStart
        | Field::ProcPidnsInitStartTs
        | Field::ProcFdopencount
        | Field::ProcFdlimit
        | Field::ProcVmsize
        | Field::ProcVmrss
        | Field::ProcVmswap
        | Field::ThreadPfmajor
        | Field::ThreadPfminor
        | Field::ThreadIsmain
        | Field::ThreadNametid
        | Field::ThreadExectime
        | Field::ThreadTotexectime
        | Field::ThreadCgroups
        | Field::ThreadCgroup
        | Field::ProcNthreads
        | Field::ProcNchilds
        | Field::ThreadVmsize
        | Field::ThreadVmrss
        | Field::ThreadVmsizeB
        | Field::ThreadVmrssB
        | Field::ProcStdinType
        | Field::ProcStdoutType
        | Field::ProcStderrType
        | Field::ProcStdinName
        | Field::ProcStdoutName
        | Field::ProcStderrName
        | Field::UserShell
        | Field::ProcFdusage
        | Field::ThreadCpu
        | Field::ThreadCpuUser
        | Field::ThreadCpuSystem => super::process_info::extract(field, arg, ev, thread, out),
        // Compiled into a test of the event time (see rules::compile): it
        // has no value of its own.
        Field::EvtAround => {}
        Field::FdNameChanged => {
            // The events that name a socket fd: the tuple is set when the
            // call succeeds (or, for connect, is under way).
            let named = match v.info().name {
                "connect" => v.res().is_some_and(|r| r >= 0 || r == -115),
                "accept" | "accept4" | "bind" => v.res().is_some_and(|r| r >= 0),
                "sendto" | "sendmsg" => v
                    .param_named("tuple")
                    .is_some_and(|p| !p.as_bytes_str().is_empty()),
                _ => false,
            };
            if v.direction() == crate::event::Direction::Exit && fd_info().is_some() {
                out.push(Value::Bool(named));
            }
        }
        Field::FdConnected => {
            // The tuple a failed connect shows was never connected.
            let failed_connect =
                v.info().name == "connect" && v.res().is_some_and(|r| r < 0 && r != -115);
            if let Some((_, f)) = fd_info() {
                let connected = !failed_connect
                    && (matches!(f.kind, FdKind::Ipv4 { .. } | FdKind::Ipv6 { .. })
                        || (f.kind == FdKind::Unix && !f.name.is_empty()));
                out.push(Value::Bool(connected));
            }
        }
    }
}

/// `fdlist.*`: the fds a poll call waited on, comma separated.
fn fdlist<'e>(field: Field, ev: &SyscallEvent<'e>, out: &mut Vec<Value<'e>>) {
    let v = ev.event;
    if v.direction() != Direction::Exit || !matches!(v.name(), "poll" | "ppoll") {
        return;
    }
    let Some(p) = v.param_named("fds") else {
        return;
    };
    // A count (u16), then per fd its number (i64) and flags (i16).
    let b = p.bytes;
    let Some(count) = b.get(..2).map(|c| u16::from_le_bytes([c[0], c[1]])) else {
        return;
    };
    let tid = v.tid as i64;
    let mut items: Vec<String> = Vec::new();
    for i in 0..usize::from(count) {
        let at = 2 + i * 10;
        let Some(raw) = b.get(at..at + 8) else { break };
        let mut n = [0u8; 8];
        n.copy_from_slice(raw);
        let fd = i64::from_le_bytes(n);
        let f = ev.state.fd(tid, fd);
        let ends = f.and_then(endpoints);
        let item = match field {
            Field::FdlistNums => Some(fd.to_string()),
            Field::FdlistNames => Some(
                f.map(|f| f.name.as_str())
                    .filter(|n| !n.is_empty())
                    .unwrap_or("<NA>")
                    .to_string(),
            ),
            Field::FdlistCips => ends.and_then(|(cip, ..)| cip).map(|ip| ip.to_string()),
            Field::FdlistSips => ends.map(|(_, _, sip, _)| sip.to_string()),
            Field::FdlistCports => ends
                .filter(|(cip, ..)| cip.is_some())
                .map(|(_, cport, ..)| cport.to_string()),
            _ => ends
                .filter(|(cip, ..)| cip.is_some())
                .map(|(.., sport)| sport.to_string()),
        };
        items.extend(item);
    }
    out.push(owned(items.join(",")));
}

/// Linux capability names by bit number (the driver reports capability
/// sets with the kernel's bit positions).
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The names of the capabilities set in `mask`, space separated.
pub fn capability_names(mask: u64) -> String {
    let mut out = String::new();
    for (bit, name) in CAPABILITIES.iter().enumerate() {
        if mask & (1u64 << bit) != 0 {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split_path;

    #[test]
    fn paths_split_as_libsinsp_shows_directory_and_file_name() {
        assert_eq!(split_path("/etc/passwd"), ("/etc", "passwd"));
        assert_eq!(split_path("/bench-file"), ("/", "bench-file"));
        assert_eq!(split_path("/"), ("/", ""));
        assert_eq!(split_path("relative"), ("", "relative"));
        assert_eq!(split_path(""), ("", ""));
        assert_eq!(split_path("/a/b/"), ("/a/b", ""));
        assert_eq!(split_path("/données/é/ß.txt"), ("/données/é", "ß.txt"));
    }
}
