//! `proc.*`, `thread.*` and `user.shell` fields beyond the common ones:
//! ancestors' executables, arguments and environments, process groups,
//! resources, cgroups and the standard fds.

use super::{Arg, Field, SyscallEvent};
use crate::field::Value;
use crate::state::{State, Thread};
use std::borrow::Cow;

fn s(v: &str) -> Value<'_> {
    Value::Str(Cow::Borrowed(v))
}

fn owned<'e>(v: String) -> Value<'e> {
    Value::Str(Cow::Owned(v))
}

/// The process `level` generations up from `t`'s process (0: itself).
fn ancestor<'s>(state: &'s State, t: &'s Thread, level: usize) -> Option<&'s Thread> {
    match level {
        0 => Some(state.main_thread(t)),
        n => state.ancestors(t).nth(n - 1),
    }
}

/// The leader of a group of processes sharing `id` (a session or process
/// group): the process whose pid, as `pid_of` reads it, is that id.
fn leader<'s>(
    state: &'s State,
    t: &'s Thread,
    id: i64,
    pid_of: impl Fn(&Thread) -> i64,
) -> Option<&'s Thread> {
    if pid_of(state.main_thread(t)) == id {
        return Some(state.main_thread(t));
    }
    // Most often an ancestor; else a scan, only when a rule asks.
    state.ancestors(t).find(|a| pid_of(a) == id).or_else(|| {
        state
            .threads()
            .find(|o| o.is_main_thread() && pid_of(o) == id)
    })
}

/// The process group id as the host sees it: from the events, else the
/// one seen in the process's own namespace when that is the host's.
fn pgid(t: &Thread) -> Option<i64> {
    if t.pgid >= 0 {
        return Some(t.pgid);
    }
    (t.vpgid >= 0 && (t.vpid < 0 || t.vpid == t.pid)).then_some(t.vpgid)
}

/// The value of `var` in a process's environment.
fn env_value<'e>(t: &'e Thread, var: &str) -> Option<Value<'e>> {
    for e in t.env.iter() {
        let Some(n) = e
            .strip_prefix(var)
            .and_then(|rest| rest.strip_prefix('='))
            .map(str::len)
        else {
            continue;
        };
        return Some(match e {
            Cow::Borrowed(e) => s(&e[e.len() - n..]),
            Cow::Owned(e) => owned(e[e.len() - n..].to_string()),
        });
    }
    None
}

/// A cgroup controller as libsinsp names it: kernel names that differ
/// from the usual ones (io for blkio, perf for perf_event, mem for
/// memory, a `_cgroup` suffix) are renamed.
fn controller_name(name: &str) -> Cow<'_, str> {
    let name: Cow<'_, str> = match name.find("_cgroup") {
        Some(at) => Cow::Owned(format!("{}{}", &name[..at], &name[at + "_cgroup".len()..])),
        None => Cow::Borrowed(name),
    };
    match &*name {
        "perf" => Cow::Borrowed("perf_event"),
        "mem" => Cow::Borrowed("memory"),
        "io" => Cow::Borrowed("blkio"),
        _ => name,
    }
}

pub(super) fn extract<'e>(
    field: Field,
    arg: Option<&Arg>,
    ev: &SyscallEvent<'e>,
    thread: Option<&'e Thread>,
    out: &mut Vec<Value<'e>>,
) {
    let state: &'e State = ev.state;
    if field == Field::UserShell {
        if let Some(t) = thread {
            out.push(s(state.users_of(t).shell(t.uid).unwrap_or("<NA>")));
        }
        return;
    }
    let Some(t) = thread else { return };
    let main = state.main_thread(t);
    match field {
        Field::ProcAexe | Field::ProcAargs | Field::ProcAcmdline => {
            let value = |a: &'e Thread| match field {
                Field::ProcAexe => s(&a.exe),
                Field::ProcAargs => owned(a.args_joined()),
                _ => owned(a.cmdline()),
            };
            match arg {
                Some(Arg::Index(n)) => {
                    if let Some(a) = ancestor(state, t, *n) {
                        out.push(value(a))
                    }
                }
                _ => state.ancestors(t).for_each(|a| out.push(value(a))),
            }
        }
        Field::ProcAenv => match arg {
            // The nearest ancestor that has the variable.
            Some(Arg::Name(var)) => {
                if let Some(v) = state.ancestors(t).find_map(|a| env_value(a, var)) {
                    out.push(v)
                }
            }
            Some(Arg::Index(n)) if *n > 0 => {
                if let Some(a) = ancestor(state, t, *n) {
                    out.push(owned(a.env.join(" ")))
                }
            }
            _ => out.push(owned(main.env.join(" "))),
        },
        Field::ProcCmdnargs => out.push(Value::Uint(t.args.iter().count() as u64)),
        Field::ProcCmdlenargs => out.push(Value::Uint(t.args.iter().map(|a| a.len() as u64).sum())),
        Field::ProcExeline => {
            let mut line = t.exe.clone();
            line.push(' ');
            line.push_str(&t.args_joined());
            out.push(owned(line))
        }
        Field::ProcLoginshellid => {
            // The outermost: the last shell met going up.
            let is_shell = |p: &Thread| p.comm.ends_with("sh");
            let outer = std::iter::once(main)
                .chain(state.ancestors(t))
                .filter(|p| is_shell(p))
                .last();
            if let Some(p) = outer {
                out.push(Value::Int(p.pid))
            }
        }
        Field::ProcPvpid => {
            if let Some(p) = state.parent(t) {
                out.push(Value::Int(p.vpid))
            }
        }
        Field::ProcSidExe | Field::ProcSidExepath => {
            if let Some(l) = leader(state, t, t.sid, |o| o.pid) {
                out.push(if field == Field::ProcSidExe {
                    s(&l.exe)
                } else {
                    s(&l.exepath)
                })
            }
        }
        Field::ProcVpgidExepath => {
            let same_ns = |o: &Thread| if o.vpid >= 0 { o.vpid } else { o.pid };
            if let Some(l) = leader(state, t, t.vpgid, same_ns) {
                out.push(s(&l.exepath))
            }
        }
        Field::ProcPgid => {
            if let Some(g) = pgid(t) {
                out.push(Value::Int(g))
            }
        }
        Field::ProcPgidName | Field::ProcPgidExe | Field::ProcPgidExepath => {
            let Some(g) = pgid(t) else { return };
            if let Some(l) = leader(state, t, g, |o| o.pid) {
                out.push(match field {
                    Field::ProcPgidName => s(&l.comm),
                    Field::ProcPgidExe => s(&l.exe),
                    _ => s(&l.exepath),
                })
            }
        }
        Field::ProcIsPgidLeader => {
            if let Some(g) = pgid(t) {
                out.push(Value::Bool(g == t.pid))
            }
        }
        Field::ProcPidTs if main.clone_ts != 0 => out.push(Value::Uint(main.clone_ts)),
        Field::ProcPpidTs => {
            if let Some(p) = state.parent(t) {
                out.push(Value::Uint(p.clone_ts))
            }
        }
        Field::ProcIsExeLowerLayer => out.push(Value::Bool(t.exe_lower_layer)),
        Field::ProcPidnsInitStartTs if t.pidns_init_start_ts != 0 => {
            out.push(Value::Uint(t.pidns_init_start_ts))
        }
        Field::ProcExeInoCtimeDurationPidnsStart
            if t.pidns_init_start_ts != 0 && t.exe_ino_ctime > t.pidns_init_start_ts =>
        {
            out.push(Value::Uint(t.exe_ino_ctime - t.pidns_init_start_ts))
        }
        Field::ProcFdopencount => out.push(Value::Uint(
            state.fds_of(t.pid).map_or(0, |fds| fds.len() as u64),
        )),
        Field::ProcFdlimit => out.push(Value::Int(main.fdlimit)),
        Field::ProcFdusage => {
            // libsinsp: open fds * 100 / limit, at most 100, 0 with no limit.
            let open = state.fds_of(t.pid).map_or(0, |fds| fds.len() as u64);
            let usage = match u64::try_from(main.fdlimit) {
                Ok(limit) if limit > 0 => (open as f64 * 100.0 / limit as f64).min(100.0),
                _ => 0.0,
            };
            out.push(Value::Double(usage));
        }
        Field::ThreadCpu | Field::ThreadCpuUser | Field::ThreadCpuSystem => {
            // Only procinfo events carry CPU times: the change since the
            // thread's previous one, capped at 100, 0 on its first.
            if ev.event.info().name != "procinfo" {
                return;
            }
            let part = |(user, system): (u64, u64)| match field {
                Field::ThreadCpuUser => user,
                Field::ThreadCpuSystem => system,
                _ => user.saturating_add(system),
            };
            let usage = match t.procinfo_cpu {
                [Some(before), Some(now)] if part(before) != 0 => {
                    (part(now).wrapping_sub(part(before)) as f64).min(100.0)
                }
                _ => 0.0,
            };
            out.push(Value::Double(usage));
        }
        Field::ProcVmsize => out.push(Value::Uint(u64::from(t.vmsize_kb))),
        Field::ProcVmrss => out.push(Value::Uint(u64::from(t.vmrss_kb))),
        Field::ProcVmswap => out.push(Value::Uint(u64::from(t.vmswap_kb))),
        Field::ThreadPfmajor => out.push(Value::Uint(t.pfmajor)),
        Field::ThreadPfminor => out.push(Value::Uint(t.pfminor)),
        Field::ThreadVmsize | Field::ThreadVmrss | Field::ThreadVmsizeB | Field::ThreadVmrssB => {
            let kb = match (t.is_main_thread(), field) {
                (false, _) => 0,
                (true, Field::ThreadVmsize | Field::ThreadVmsizeB) => u64::from(t.vmsize_kb),
                (true, _) => u64::from(t.vmrss_kb),
            };
            let bytes = matches!(field, Field::ThreadVmsizeB | Field::ThreadVmrssB);
            out.push(Value::Uint(if bytes { kb * 1024 } else { kb }))
        }
        Field::ThreadIsmain => out.push(Value::Bool(t.is_main_thread())),
        Field::ThreadNametid => out.push(owned(format!("{}{}", t.comm, ev.event.tid))),
        // CPU time is reported by scheduler switch events, which this
        // engine's drivers do not send: 0, as Falco gives for other events.
        Field::ThreadExectime | Field::ThreadTotexectime => out.push(Value::Uint(0)),
        Field::ThreadCgroups => {
            let mut all = String::new();
            for cg in t.cgroups.iter() {
                let Some((names, path)) = cg.split_once('=') else {
                    break;
                };
                if !all.is_empty() {
                    all.push(' ');
                }
                all.push_str(&controller_name(names));
                all.push('=');
                all.push_str(path);
            }
            if !all.is_empty() {
                out.push(owned(all))
            }
        }
        Field::ThreadCgroup => {
            let Some(Arg::Name(controller)) = arg else {
                return;
            };
            for cg in t.cgroups.iter() {
                let Some((names, path)) = cg.split_once('=') else {
                    continue;
                };
                // A line may name several controllers ("cpu,cpuacct").
                if controller_name(names).split(',').any(|n| n == controller) {
                    out.push(owned(path.to_string()));
                    return;
                }
            }
        }
        Field::ProcNthreads | Field::ProcNchilds => {
            let live = state.threads_of(t.pid);
            let n = if field == Field::ProcNthreads {
                live
            } else {
                let main_alive = state.thread(t.pid).is_some();
                live.saturating_sub(u64::from(main_alive))
            };
            out.push(Value::Uint(n))
        }
        Field::ProcStdinType
        | Field::ProcStdoutType
        | Field::ProcStderrType
        | Field::ProcStdinName
        | Field::ProcStdoutName
        | Field::ProcStderrName => {
            let fd = match field {
                Field::ProcStdinType | Field::ProcStdinName => 0,
                Field::ProcStdoutType | Field::ProcStdoutName => 1,
                _ => 2,
            };
            let Some(f) = state.fd(t.tid, fd) else { return };
            out.push(match field {
                Field::ProcStdinType | Field::ProcStdoutType | Field::ProcStderrType => {
                    s(f.type_name())
                }
                _ => s(&f.name),
            })
        }
        _ => {}
    }
}
