//! `evt.*` fields about the event itself: its time in several forms,
//! whether it does I/O or waits, the counters Falco's tables sum, and the
//! fields kept for compatibility that current Falco pins to a value.

use super::{Arg, Field, SyscallEvent};
use crate::event::table::{category, flags as ef, Direction};
use crate::field::Value;
use crate::state::FdKind;
use std::borrow::Cow;

const NS_PER_SEC: u64 = 1_000_000_000;

/// `EF_WAITS` in the event table's flags.
const WAITS: u32 = 1 << 7;
/// `EC_MEMORY`, `EC_IO_READ`, `EC_IO_WRITE` and the mask of I/O categories.
const CAT_MEMORY: u32 = 5;
const CAT_IO_READ: u32 = 32;
const CAT_IO_WRITE: u32 = 33;
const CAT_IO_BASE: u32 = 32;

fn s<'e>(v: &'static str) -> Value<'e> {
    Value::Str(Cow::Borrowed(v))
}

fn owned<'e>(v: String) -> Value<'e> {
    Value::Str(Cow::Owned(v))
}

/// `YYYY-MM-DD HH:MM:SS[.nnnnnnnnn]` in UTC.
fn datetime(ts: u64, with_ns: bool) -> String {
    // The ISO form is `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
    let iso = crate::output::iso8601(ts);
    let end = if with_ns { iso.len() - 1 } else { 19 };
    let mut text = iso[..end].to_string();
    text.replace_range(10..11, " ");
    text
}

/// What an I/O call's fd is, for the per-kind byte counts.
#[derive(PartialEq)]
enum IoTarget {
    File,
    Net,
    Other,
}

fn io_target(ev: &SyscallEvent<'_>) -> Option<IoTarget> {
    let (_, fd) = ev.fd_info()?;
    Some(match fd.kind {
        FdKind::File => IoTarget::File,
        FdKind::Ipv4 { .. }
        | FdKind::Ipv6 { .. }
        | FdKind::Ipv4Server { .. }
        | FdKind::Ipv6Server { .. } => IoTarget::Net,
        _ => IoTarget::Other,
    })
}

/// The non-negative return value of an exit event.
fn returned_len(ev: &SyscallEvent<'_>) -> Option<u64> {
    ev.event.res().filter(|&r| r >= 0).map(|r| r as u64)
}

/// `evt.count.error*`: 1 or 0 on events with a return value.
fn error_count(ev: &SyscallEvent<'_>) -> Option<u64> {
    ev.event.res().map(|r| u64::from(r < 0))
}

pub(super) fn extract<'e>(
    field: Field,
    arg: Option<&Arg>,
    ev: &SyscallEvent<'e>,
    out: &mut Vec<Value<'e>>,
) {
    let v = ev.event;
    let state = ev.state;
    let info = v.info();
    let cat = info.category & 0x3f;
    let mut push_uint = |n: Option<u64>| {
        if let Some(n) = n {
            out.push(Value::Uint(n))
        }
    };
    match field {
        Field::EvtLatency
        | Field::EvtLatencyS
        | Field::EvtLatencyNs
        | Field::EvtLatencyQuantized
        | Field::EvtWaitLatency => push_uint(Some(0)),
        Field::EvtLatencyHuman => out.push(s("0ns")),
        Field::EvtDeltatime | Field::EvtDeltatimeS | Field::EvtDeltatimeNs => {
            let delta = match state.previous_ts {
                0 => 0,
                prev => v.ts.saturating_sub(prev),
            };
            push_uint(Some(match field {
                Field::EvtDeltatime => delta,
                Field::EvtDeltatimeS => delta / NS_PER_SEC,
                _ => delta % NS_PER_SEC,
            }))
        }
        Field::EvtReltime | Field::EvtReltimeS | Field::EvtReltimeNs => {
            let rel = v.ts.saturating_sub(state.first_ts);
            push_uint(Some(match field {
                Field::EvtReltime => rel,
                Field::EvtReltimeS => rel / NS_PER_SEC,
                _ => rel % NS_PER_SEC,
            }))
        }
        Field::EvtRawtimeS => push_uint(Some(v.ts / NS_PER_SEC)),
        Field::EvtRawtimeNs => push_uint(Some(v.ts % NS_PER_SEC)),
        Field::EvtOutputtime => out.push(owned(super::extract::format_time(v.ts))),
        Field::EvtTimeS => out.push(owned(super::extract::format_time(v.ts)[..8].to_string())),
        // libsinsp writes the zone as an offset: `...T22:13:20.123456789+0000`.
        Field::EvtTimeIso8601 => {
            let mut text = crate::output::iso8601(v.ts);
            text.pop();
            text.push_str("+0000");
            out.push(owned(text))
        }
        Field::EvtDatetime => out.push(owned(datetime(v.ts, true))),
        Field::EvtDatetimeS => out.push(owned(datetime(v.ts, false))),
        Field::EvtTypeIs => {
            let is = matches!(arg, Some(Arg::Types(codes)) if codes.contains(&v.event_type));
            push_uint(Some(u64::from(is)))
        }
        Field::SyscallType if info.category & category::SYSCALL != 0 => out.push(s(v.type_name())),
        Field::EvtSource => out.push(s("syscall")),
        // libsinsp's "async" events are its meta-events: those plugins
        // send, and the container, user and group events it makes itself.
        Field::EvtIsAsync => out.push(Value::Bool(info.category & category::METAEVENT != 0)),
        Field::EvtAsynctype if info.category & category::METAEVENT != 0 => match v.async_name() {
            Some(name) => out.push(Value::Str(Cow::Borrowed(name))),
            None => out.push(s(v.name())),
        },
        Field::EvtAsynctype => {}
        // Plugin events and Docker infrastructure events never come
        // through this source: these have no value on its events.
        Field::EvtPluginname
        | Field::EvtPlugininfo
        | Field::EvtInfraDockerName
        | Field::EvtInfraDockerContainerId
        | Field::EvtInfraDockerContainerName
        | Field::EvtInfraDockerContainerImage => {}
        Field::EvtIsIo => out.push(Value::Bool(
            v.has_flag(ef::READS_FROM_FD | ef::WRITES_TO_FD),
        )),
        Field::EvtIsIoRead => out.push(Value::Bool(v.has_flag(ef::READS_FROM_FD))),
        Field::EvtIsIoWrite => out.push(Value::Bool(v.has_flag(ef::WRITES_TO_FD))),
        Field::EvtIoDir => {
            if v.has_flag(ef::WRITES_TO_FD) {
                out.push(s("write"))
            } else if v.has_flag(ef::READS_FROM_FD) {
                out.push(s("read"))
            }
        }
        Field::EvtIsWait => out.push(Value::Bool(v.has_flag(WAITS))),
        Field::EvtIsSyslog => {
            let syslog = v.has_flag(ef::WRITES_TO_FD)
                && ev
                    .fd_info()
                    .is_some_and(|(_, f)| f.kind == FdKind::Unix && f.name.starts_with("/dev/log"));
            out.push(Value::Bool(syslog))
        }
        Field::EvtCount => push_uint(Some(1)),
        Field::EvtCountError => push_uint(error_count(ev)),
        Field::EvtCountErrorFile | Field::EvtCountErrorNet | Field::EvtCountErrorOther => {
            // By the fd's kind, or for calls that make an fd and failed,
            // by the call.
            let kind = match ev.fd_info() {
                Some((n, f)) if n >= 0 => match f.kind {
                    FdKind::File | FdKind::Directory => Field::EvtCountErrorFile,
                    _ if f.is_socket() => Field::EvtCountErrorNet,
                    _ => Field::EvtCountErrorOther,
                },
                _ => match v.name() {
                    "open" | "openat" | "openat2" | "creat" | "open_by_handle_at" => {
                        Field::EvtCountErrorFile
                    }
                    "accept" | "accept4" | "connect" => Field::EvtCountErrorNet,
                    _ if cat == CAT_MEMORY => Field::EvtCountErrorMemory,
                    _ => Field::EvtCountErrorOther,
                },
            };
            if kind == field {
                push_uint(error_count(ev))
            }
        }
        Field::EvtCountErrorMemory if cat == CAT_MEMORY => push_uint(error_count(ev)),
        Field::EvtCountExit if v.direction() == Direction::Exit => push_uint(Some(1)),
        Field::EvtCountProcinfo | Field::EvtCountThreadinfo => {
            let procinfo = v.name() == "procinfo";
            let counted = procinfo
                && (field == Field::EvtCountThreadinfo
                    || state
                        .thread(v.tid as i64)
                        .is_some_and(|t| t.is_main_thread()));
            push_uint(Some(u64::from(counted)))
        }
        Field::EvtBuflen
        | Field::EvtBuflenIn
        | Field::EvtBuflenOut
        | Field::EvtBuflenFile
        | Field::EvtBuflenFileIn
        | Field::EvtBuflenFileOut
        | Field::EvtBuflenNet
        | Field::EvtBuflenNetIn
        | Field::EvtBuflenNetOut => {
            if cat & CAT_IO_BASE == 0 || v.direction() != Direction::Exit {
                return;
            }
            let Some(target) = io_target(ev) else { return };
            let wanted_cat = match field {
                Field::EvtBuflenIn | Field::EvtBuflenFileIn | Field::EvtBuflenNetIn => {
                    Some(CAT_IO_READ)
                }
                Field::EvtBuflenOut | Field::EvtBuflenFileOut | Field::EvtBuflenNetOut => {
                    Some(CAT_IO_WRITE)
                }
                _ => None,
            };
            let wanted_target = match field {
                Field::EvtBuflenFile | Field::EvtBuflenFileIn | Field::EvtBuflenFileOut => {
                    Some(IoTarget::File)
                }
                Field::EvtBuflenNet | Field::EvtBuflenNetIn | Field::EvtBuflenNetOut => {
                    Some(IoTarget::Net)
                }
                _ => None,
            };
            if wanted_cat.is_some_and(|c| c != cat) || wanted_target.is_some_and(|t| t != target) {
                return;
            }
            push_uint(returned_len(ev))
        }
        _ => {}
    }
}
