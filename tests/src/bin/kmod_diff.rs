//! `kmod_diff OURS OURS_PID FALCO FALCO_PID [SYSCALLS.md]`
//!
//! The differential oracle of the kernel lab: the same workload (the
//! guest's pgwork) recorded once from peregrine.ko (`pgcheck capture`) and
//! once from Falco's own kernel module (`pgscap`), both files holding the
//! records as the rings held them. Each side is brought to one event per
//! syscall by the engine's merger (as libscap converts an enter+exit
//! driver's stream), the workload's threads are followed from its pid
//! through its clone exits, and the events of each thread are paired in
//! order by event type. Every parameter of every pair is compared after the
//! normalisations below; anything else that differs is a finding.
//!
//! Prints one line per syscall (pairs, equal, differing, only on one side)
//! then each difference with both values, and exits 1 on any unexplained
//! difference. A syscall kmod/SYSCALLS.md lists as generic in peregrine.ko
//! is reported as such (a known gap, not a difference) when its table is
//! given.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;

use peregrine_engine::event::merge::Merger;
use peregrine_engine::event::render::{render_param, NoState};
use peregrine_engine::event::{EventView, ParamType};

/// Parameters whose values differ between two runs of the same program on
/// the same kernel, and why. (event name or "*", parameter name, reason).
const MASKED: &[(&str, &str, &str)] = &[
    (
        "*",
        "ino",
        "inode numbers are allocated anew by tmpfs each run",
    ),
    (
        "*",
        "exe_ino",
        "inode numbers are allocated anew by tmpfs each run",
    ),
    ("*", "exe_ino_ctime", "a time stamp"),
    ("*", "exe_ino_mtime", "a time stamp"),
    ("*", "pidns_init_start_ts", "a time stamp"),
    (
        "*",
        "pgft_maj",
        "page-fault counts depend on what the page cache held",
    ),
    (
        "*",
        "pgft_min",
        "page-fault counts depend on what the page cache held",
    ),
    ("*", "vm_size", "the memory of the process at that instant"),
    ("*", "vm_rss", "the memory of the process at that instant"),
    ("*", "vm_swap", "the memory of the process at that instant"),
    ("mmap", "res", "an address chosen by ASLR"),
    ("mmap2", "res", "an address chosen by ASLR"),
    (
        "munmap",
        "addr",
        "an address chosen by ASLR (the one mmap returned)",
    ),
    (
        "mprotect",
        "addr",
        "an address chosen by ASLR (the one mmap returned)",
    ),
    ("brk", "res", "an address chosen by ASLR"),
    ("brk", "addr", "an address chosen by ASLR"),
];

/// One event of the workload, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rendered {
    name: &'static str,
    /// (parameter name, value), in the layout's order.
    params: Vec<(&'static str, String)>,
    /// Parameters the driver did not write (absent from its layout for
    /// this event, and from its enter event).
    absent: HashSet<&'static str>,
    /// Parameters taken from the enter event (not written by the exit).
    from_enter: HashSet<&'static str>,
    /// A buffer parameter held a pid of the workload (as text).
    pid_in_data: bool,
}

/// Reads the records of a ring dump: header (ts, tid, len, type, nparams)
/// then lengths and parameters, one after the other.
fn records(bytes: &[u8]) -> Result<Vec<EventView<'_>>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let ev = EventView::parse(&bytes[at..]).map_err(|e| format!("record at byte {at}: {e}"))?;
        let len = u32::from_le_bytes([
            bytes[at + 16],
            bytes[at + 17],
            bytes[at + 18],
            bytes[at + 19],
        ]) as usize;
        out.push(ev);
        at += len;
    }
    // The rings are per CPU: time orders them (a stable sort keeps one
    // CPU's order for equal stamps).
    out.sort_by_key(|e| e.ts);
    Ok(out)
}

fn is_clone(name: &str) -> bool {
    matches!(name, "clone" | "fork" | "vfork" | "clone3")
}

/// The workload's threads, numbered in the order they were created (its
/// root is 0), and the process that started it (the capture tool).
fn threads(events: &[EventView<'_>], root: u64) -> (HashMap<u64, usize>, Option<u64>) {
    let mut ids = HashMap::from([(root, 0usize)]);
    let mut starter = None;
    let mut order = vec![root];
    let mut grew = true;
    while grew {
        grew = false;
        for ev in events {
            if !ev.is_syscall() || !is_clone(ev.name()) || ev.event_type % 2 == 0 {
                continue;
            }
            let Some(child) = ev.res().filter(|&r| r > 0).map(|r| r as u64) else {
                continue;
            };
            if child == root && !ids.contains_key(&ev.tid) {
                starter = Some(ev.tid);
            }
            if ids.contains_key(&ev.tid) && !ids.contains_key(&child) {
                ids.insert(child, order.len());
                order.push(child);
                grew = true;
            }
        }
    }
    (ids, starter)
}

/// Normalises what differs by construction between the two runs: the pids
/// of the workload's threads and of its starter, and ephemeral ports.
struct Normaliser {
    pids: HashMap<i64, String>,
}

impl Normaliser {
    fn value(&self, name: &str, ty: ParamType, raw: &str, as_int: Option<i64>) -> String {
        let pid_like = matches!(ty, ParamType::Pid)
            || matches!(
                name,
                "res" | "pid" | "tid" | "ptid" | "vpid" | "vtid" | "reaper_tid"
            );
        if pid_like {
            if let Some(label) = as_int.and_then(|v| self.pids.get(&v)) {
                return label.clone();
            }
        }
        if matches!(ty, ParamType::SockTuple | ParamType::SockAddr) {
            return mask_kernel_addresses(&mask_ephemeral_ports(raw));
        }
        raw.to_string()
    }

    /// Whole decimal words of `text` that are workload pids, as labels.
    fn pids_in_text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut String| {
            match word.parse::<i64>().ok().and_then(|v| self.pids.get(&v)) {
                Some(label) => out.push_str(label),
                None => out.push_str(word),
            }
            word.clear();
        };
        for c in text.chars() {
            if c.is_ascii_digit() {
                word.push(c);
            } else {
                flush(&mut word, &mut out);
                out.push(c);
            }
        }
        flush(&mut word, &mut out);
        out
    }
}

/// A unix socket's tuple names the kernel's socket objects by address
/// (16 hex digits): they differ from run to run.
fn mask_kernel_addresses(s: &str) -> String {
    s.split(' ')
        .map(|part| {
            part.split("->")
                .map(|a| {
                    if a.len() == 16 && a.bytes().all(|b| b.is_ascii_hexdigit()) {
                        "<kernel address>"
                    } else {
                        a
                    }
                })
                .collect::<Vec<_>>()
                .join("->")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Ports the kernel picks for an unbound socket (Linux's default range is
/// 32768-60999) differ from run to run.
fn mask_ephemeral_ports(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(':') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let port: Option<u32> = rest[..digits].parse().ok();
        match port {
            Some(p) if (32768..61000).contains(&p) => out.push_str("<ephemeral>"),
            _ => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// The workload's events of one capture, one per syscall, per thread.
fn workload(bytes: &[u8], root: u64) -> Result<BTreeMap<usize, Vec<Rendered>>, String> {
    let events = records(bytes)?;
    let (ids, starter) = threads(&events, root);
    // The capture tool forks the workload and execs it: what the root does
    // before its first execve is the tool's own code, and that execve
    // names the tool as parent.
    let first_exec = events.iter().position(|e| {
        e.tid == root && e.is_syscall() && e.event_type % 2 == 1 && e.name() == "execve"
    });
    let starter = starter.or_else(|| {
        let e = &events[first_exec?];
        e.param_named("ptid")?.as_i64().map(|p| p as u64)
    });
    let first_exec = first_exec.ok_or_else(|| format!("no execve exit of pid {root}"))?;
    let mut pids: HashMap<i64, String> = ids
        .iter()
        .map(|(&tid, &n)| (tid as i64, format!("<thread {n}>")))
        .collect();
    if let Some(s) = starter {
        pids.insert(s as i64, "<capture tool>".to_string());
    }
    let norm = Normaliser { pids };
    let mut merger = Merger::new();
    // The parameter names of each thread's last enter, to know which
    // parameters the driver wrote at all.
    let mut last_enter: HashMap<u64, HashSet<&'static str>> = HashMap::new();
    let mut out: BTreeMap<usize, Vec<Rendered>> = BTreeMap::new();
    for (at, ev) in events.iter().enumerate() {
        let Some(&thread) = ids.get(&ev.tid) else {
            continue;
        };
        // The enter of the first execve is kept: its exit needs it.
        if thread == 0 && at < first_exec && !(ev.name() == "execve" && ev.event_type % 2 == 0) {
            continue;
        }
        let written: HashSet<&'static str> = ev.params().map(|p| p.name()).collect();
        let is_enter = ev.is_syscall() && ev.event_type % 2 == 0;
        if is_enter {
            last_enter.insert(ev.tid, written.clone());
        }
        let Some(merged) = merger.push(ev) else {
            continue;
        };
        let from_enter = if is_enter {
            HashSet::new()
        } else {
            last_enter.remove(&ev.tid).unwrap_or_default()
        };
        let mut params = Vec::new();
        let mut absent = HashSet::new();
        let mut entered = HashSet::new();
        let mut pid_in_data = false;
        for p in merged.params() {
            let mut raw = String::new();
            render_param(&p, &NoState, &mut raw);
            let mut value = norm.value(p.name(), p.ty(), &raw, p.as_i64());
            if matches!(p.ty(), ParamType::ByteBuf | ParamType::CharBuf) {
                let replaced = norm.pids_in_text(&value);
                pid_in_data |= replaced != value;
                value = replaced;
            }
            if !written.contains(p.name()) {
                if from_enter.contains(p.name()) {
                    entered.insert(p.name());
                } else {
                    absent.insert(p.name());
                }
            }
            params.push((p.name(), value));
        }
        out.entry(thread).or_default().push(Rendered {
            name: merged.name(),
            params,
            absent,
            from_enter: entered,
            pid_in_data,
        });
    }
    Ok(out)
}

/// Pairs two sequences by event name, keeping order (a longest common
/// subsequence); unpaired events come back with the other side None.
fn align<'a>(
    a: &'a [Rendered],
    b: &'a [Rendered],
) -> Vec<(Option<&'a Rendered>, Option<&'a Rendered>)> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i].name == b[j].name {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i].name == b[j].name {
            out.push((Some(&a[i]), Some(&b[j])));
            i += 1;
            j += 1;
        } else if j == m || (i < n && lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push((Some(&a[i]), None));
            i += 1;
        } else {
            out.push((None, Some(&b[j])));
            j += 1;
        }
    }
    out
}

/// Why two values of one parameter may differ, when they may: the fixed
/// masks above, then deviations that hold only for the values seen.
fn explain(
    ours: &Rendered,
    falco: &Rendered,
    param: &str,
    a: &str,
    b: &str,
) -> Option<&'static str> {
    let event = ours.name;
    if let Some((_, _, why)) = MASKED
        .iter()
        .find(|(e, p, _)| (*e == "*" || *e == event) && *p == param)
    {
        return Some(why);
    }
    if param == "cwd" && b.is_empty() {
        return Some("Falco's kmod pushes cwd empty (its fillers: kept for the layout only); peregrine.ko writes it, as the state needs it for relative paths");
    }
    if param == "cgroups" && strip_unified(a) == b {
        return Some("peregrine.ko adds the task's cgroup v2 path as unified=: without it a container whose cgroup has no controllers looks like the host");
    }
    if matches!(event, "socketpair") && matches!(param, "source" | "peer") {
        return Some("addresses of the kernel's socket objects");
    }
    if event == "io_uring_setup"
        && param == "features"
        && feature_bits(a).map(|v| v & !0x100) == feature_bits(b)
    {
        return Some("Falco's driver tests IORING_FEAT_ENTER_EXT_ARG, a name the kernel never defined (its flag is IORING_FEAT_EXT_ARG), so it never reports bit 8; peregrine.ko does");
    }
    if matches!(event, "sendto" | "sendmsg") && param == "tuple" && falco.from_enter.contains(param)
    {
        return Some("scap 0.20 takes the tuple at the enter (before the kernel binds the socket, even when the call then fails); current Falco and peregrine.ko take it at the exit and leave it empty on failure");
    }
    if ours.pid_in_data && falco.pid_in_data && matches!(param, "res" | "size") {
        return Some("the data written holds pids, whose number of digits differs between runs");
    }
    None
}

fn strip_unified(cgroups: &str) -> String {
    cgroups
        .split_inclusive('.')
        .filter(|entry| !entry.starts_with("unified="))
        .collect()
}

fn feature_bits(rendered: &str) -> Option<u64> {
    rendered.split('(').next()?.parse().ok()
}

#[derive(Default)]
struct Tally {
    /// Pairs where peregrine.ko wrote the generic event (a known gap).
    generic: u64,
    pairs: u64,
    equal: u64,
    differing: u64,
    only_ours: u64,
    only_falco: u64,
    /// Pairs where Falco's kmod wrote the generic event: its version
    /// predates the syscall's event (a gap of the oracle, not compared).
    falco_generic: u64,
}

/// What the comparison found: a table per syscall and the differences.
#[derive(Default)]
struct Report {
    per_syscall: BTreeMap<&'static str, Tally>,
    differences: Vec<String>,
    masked: BTreeMap<String, u64>,
    absent: BTreeMap<String, u64>,
}

/// Falco's kmod writes the last message of a sendmmsg/recvmmsg twice (its
/// sys_exit loops over the messages, then records the exit once more):
/// the repeat is dropped and counted.
fn drop_mmsg_repeats(events: &[Rendered], report: &mut Report) -> Vec<Rendered> {
    let mut out: Vec<Rendered> = Vec::with_capacity(events.len());
    for e in events {
        if matches!(e.name, "sendmmsg" | "recvmmsg") && out.last() == Some(e) {
            *report
                .masked
                .entry(format!("{}: the last message written twice by Falco's kmod (its sys_exit loops over the messages, then records the exit once more)", e.name))
                .or_default() += 1;
            continue;
        }
        out.push(e.clone());
    }
    out
}

/// A generic event of peregrine.ko for a syscall it leaves generic on
/// purpose (kmod/SYSCALLS.md) takes that syscall's name, so that it pairs
/// with Falco's event and is counted as a known gap.
fn name_known_generics(events: &[Rendered], generic: &HashSet<String>) -> Vec<Rendered> {
    events
        .iter()
        .map(|e| {
            let id = e
                .params
                .iter()
                .find(|(n, _)| *n == "ID")
                .map(|(_, v)| v.as_str());
            match id.and_then(|id| generic.get(id)) {
                // One Falco leaves generic too stays as it is, compared.
                Some(known) if e.name == "syscall" && table_name(known) != "syscall" => {
                    let mut named = e.clone();
                    named.name = table_name(known);
                    named.absent.insert("generic");
                    named
                }
                _ => e.clone(),
            }
        })
        .collect()
}

/// A generic event of Falco's kmod for a syscall the schema has a
/// parameterised event for (one added after scap 0.20.0, as keyctl) takes
/// that syscall's name, so that it pairs with peregrine.ko's event and is
/// counted as a gap of that driver version, not a difference.
fn name_falco_generics(events: &[Rendered]) -> Vec<Rendered> {
    events
        .iter()
        .map(|e| {
            let id = e
                .params
                .iter()
                .find(|(n, _)| *n == "ID")
                .map(|(_, v)| v.as_str());
            match id.map(table_name) {
                Some(named) if e.name == "syscall" && named != "syscall" => {
                    let mut renamed = e.clone();
                    renamed.name = named;
                    renamed.absent.insert("falco-generic");
                    renamed
                }
                _ => e.clone(),
            }
        })
        .collect()
}

/// The static name of a syscall event, from the engine's schema.
fn table_name(name: &str) -> &'static str {
    peregrine_engine::event::table::all_event_types()
        .map(|(_, info)| info.name)
        .find(|n| *n == name)
        .unwrap_or("syscall")
}

fn compare(
    ours: &BTreeMap<usize, Vec<Rendered>>,
    falco: &BTreeMap<usize, Vec<Rendered>>,
    generic: &HashSet<String>,
) -> Report {
    let mut report = Report::default();
    let threads: std::collections::BTreeSet<usize> =
        ours.keys().chain(falco.keys()).copied().collect();
    // A thread the workload kills (its ptrace tracee): how far it ran
    // before the signal is up to the scheduler.
    let killed: HashSet<String> = ours
        .values()
        .flatten()
        .filter(|e| e.name == "kill")
        .filter(|e| {
            e.params
                .iter()
                .any(|(n, v)| *n == "sig" && v.starts_with("9"))
        })
        .filter_map(|e| {
            e.params
                .iter()
                .find(|(n, _)| *n == "pid")
                .map(|(_, v)| v.clone())
        })
        .collect();
    for t in threads {
        let racy = killed.contains(&format!("<thread {t}>"));
        let a = name_known_generics(ours.get(&t).map(Vec::as_slice).unwrap_or_default(), generic);
        let b = name_falco_generics(&drop_mmsg_repeats(
            falco.get(&t).map(Vec::as_slice).unwrap_or_default(),
            &mut report,
        ));
        for pair in align(&a, &b) {
            match pair {
                (Some(x), None) | (None, Some(x)) if racy => {
                    *report
                        .masked
                        .entry(format!("{}: an event of a thread the workload kills (how far it ran first is up to the scheduler)", x.name))
                        .or_default() += 1;
                }
                (Some(x), None) => {
                    report.per_syscall.entry(x.name).or_default().only_ours += 1;
                    report.differences.push(format!(
                        "thread {t} {}: only from peregrine.ko: {}",
                        x.name,
                        summary(x)
                    ));
                }
                (None, Some(y)) => {
                    report.per_syscall.entry(y.name).or_default().only_falco += 1;
                    report.differences.push(format!(
                        "thread {t} {}: only from Falco's kmod: {}",
                        y.name,
                        summary(y)
                    ));
                }
                (Some(x), Some(_)) if x.absent.contains("generic") => {
                    report.per_syscall.entry(x.name).or_default().generic += 1;
                }
                (Some(x), Some(y)) if y.absent.contains("falco-generic") => {
                    report.per_syscall.entry(x.name).or_default().falco_generic += 1;
                }
                (Some(x), Some(y)) => {
                    let tally = report.per_syscall.entry(x.name).or_default();
                    tally.pairs += 1;
                    let mut same = true;
                    for ((name, ours), (_, theirs)) in x.params.iter().zip(&y.params) {
                        if ours == theirs {
                            continue;
                        }
                        if let Some(why) = explain(x, y, name, ours, theirs) {
                            *report
                                .masked
                                .entry(format!("{}.{name}: {why}", x.name))
                                .or_default() += 1;
                            continue;
                        }
                        if y.absent.contains(name) {
                            *report
                                .absent
                                .entry(format!("{}.{name}", x.name))
                                .or_default() += 1;
                            continue;
                        }
                        same = false;
                        report.differences.push(format!(
                            "thread {t} {} {name}: peregrine.ko {ours:?}, Falco's kmod {theirs:?}",
                            x.name
                        ));
                    }
                    if same {
                        tally.equal += 1;
                    } else {
                        tally.differing += 1;
                    }
                }
                (None, None) => {}
            }
        }
    }
    report
}

fn summary(r: &Rendered) -> String {
    let mut s: Vec<String> = r
        .params
        .iter()
        .take(6)
        .map(|(n, v)| format!("{n}={}", v.chars().take(60).collect::<String>()))
        .collect();
    if r.params.len() > 6 {
        s.push("...".into());
    }
    s.join(" ")
}

/// The syscalls kmod/SYSCALLS.md lists as generic in peregrine.ko.
fn generic_syscalls(path: &str) -> Result<HashSet<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells.len() > 3 && cells[3] == "generic").then(|| cells[2].to_string())
        })
        .collect())
}

fn load(path: &str, pid: &str) -> Result<BTreeMap<usize, Vec<Rendered>>, String> {
    let pid: u64 = pid
        .parse()
        .map_err(|_| format!("{pid:?} is not a pid (for {path})"))?;
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let w = workload(&bytes, pid).map_err(|e| format!("{path}: {e}"))?;
    if w.get(&0).map_or(0, Vec::len) == 0 {
        return Err(format!("{path}: no event of pid {pid}"));
    }
    Ok(w)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (ours, ours_pid, falco, falco_pid, table) = match args.as_slice() {
        [a, b, c, d] => (a, b, c, d, None),
        [a, b, c, d, e] => (a, b, c, d, Some(e)),
        _ => {
            eprintln!("usage: kmod_diff OURS.bin OURS_PID FALCO.bin FALCO_PID [SYSCALLS.md]");
            return ExitCode::from(2);
        }
    };
    let generic = match table.map(|t| generic_syscalls(t)).transpose() {
        Ok(g) => g.unwrap_or_default(),
        Err(e) => {
            eprintln!("kmod_diff: {e}");
            return ExitCode::from(2);
        }
    };
    let (ours, falco) = match (load(ours, ours_pid), load(falco, falco_pid)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("kmod_diff: {e}");
            return ExitCode::from(2);
        }
    };
    if std::env::var_os("KMOD_DIFF_DUMP").is_some() {
        for (side, events) in [("peregrine.ko", &ours), ("falco", &falco)] {
            for (t, list) in events {
                for e in list {
                    println!("dump {side} thread {t} {} {}", e.name, summary(e));
                }
            }
        }
    }
    let report = compare(&ours, &falco, &generic);
    println!(
        "{:<18} {:>5} {:>5} {:>6} {:>9} {:>10} {:>7}",
        "syscall", "pairs", "equal", "differ", "only-ours", "only-falco", "generic"
    );
    let (mut equal_syscalls, mut generic_syscalls) = (0, 0);
    for (name, t) in &report.per_syscall {
        let verdict = if t.differing + t.only_ours + t.only_falco > 0 {
            "DIFFERS"
        } else if t.generic > 0 {
            generic_syscalls += 1;
            "generic in peregrine.ko (kmod/SYSCALLS.md)"
        } else if t.falco_generic > 0 && t.pairs == 0 {
            generic_syscalls += 1;
            "generic in this Falco kmod (its event came later): not compared"
        } else {
            equal_syscalls += 1;
            "equal"
        };
        println!(
            "{name:<18} {:>5} {:>5} {:>6} {:>9} {:>10} {:>7}  {verdict}",
            t.pairs,
            t.equal,
            t.differing,
            t.only_ours,
            t.only_falco,
            t.generic + t.falco_generic
        );
    }
    for (what, n) in &report.masked {
        println!("masked ({n}x) {what}");
    }
    for (what, n) in &report.absent {
        println!("not in Falco's layout ({n}x) {what}: scap 0.20.0 does not write it");
    }
    for d in &report.differences {
        println!("difference: {d}");
    }
    println!(
        "kmod_diff: {} syscalls compared, {equal_syscalls} equal, {generic_syscalls} generic on one side, {} differ; {} differences",
        report.per_syscall.len(),
        report.per_syscall.len() - equal_syscalls - generic_syscalls,
        report.differences.len()
    );
    if report.differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &'static str, params: &[(&'static str, &str)]) -> Rendered {
        Rendered {
            name,
            params: params.iter().map(|(n, v)| (*n, v.to_string())).collect(),
            absent: HashSet::new(),
            from_enter: HashSet::new(),
            pid_in_data: false,
        }
    }

    #[test]
    fn falco_repeat_of_the_last_mmsg_is_dropped_and_counted() {
        let m1 = ev("sendmmsg", &[("data", "a")]);
        let m2 = ev("sendmmsg", &[("data", "b")]);
        let mut report = Report::default();
        let kept = drop_mmsg_repeats(&[m1.clone(), m2.clone(), m2.clone()], &mut report);
        assert_eq!(kept, vec![m1, m2]);
        assert_eq!(report.masked.values().sum::<u64>(), 1);
    }

    #[test]
    fn a_known_generic_syscall_pairs_as_a_gap_not_a_difference() {
        let generic = HashSet::from(["setsockopt".to_string()]);
        let ours = BTreeMap::from([(0, vec![ev("syscall", &[("ID", "setsockopt")])])]);
        let falco = BTreeMap::from([(0, vec![ev("setsockopt", &[("res", "0")])])]);
        let r = compare(&ours, &falco, &generic);
        assert!(r.differences.is_empty());
        assert_eq!(r.per_syscall["setsockopt"].generic, 1);
        // Without the table, the same is two unpaired events.
        assert_eq!(compare(&ours, &falco, &HashSet::new()).differences.len(), 2);
    }

    #[test]
    fn pids_in_text_are_labelled_as_whole_words_only() {
        let n = Normaliser {
            pids: HashMap::from([(102, "<thread 1>".to_string())]),
        };
        assert_eq!(n.pids_in_text("102 4102 1020"), "<thread 1> 4102 1020");
    }

    #[test]
    fn ephemeral_ports_are_masked_fixed_ones_kept() {
        assert_eq!(
            mask_ephemeral_ports("127.0.0.1:45678->127.0.0.1:7777"),
            "127.0.0.1:<ephemeral>->127.0.0.1:7777"
        );
        assert_eq!(mask_ephemeral_ports("/tmp/w/sock"), "/tmp/w/sock");
    }

    #[test]
    fn alignment_reports_an_event_missing_on_one_side() {
        let a = [ev("open", &[]), ev("read", &[]), ev("close", &[])];
        let b = [ev("open", &[]), ev("close", &[])];
        let pairs = align(&a, &b);
        assert_eq!(pairs.len(), 3);
        assert!(pairs[1].1.is_none() && pairs[1].0.unwrap().name == "read");
    }

    #[test]
    fn a_differing_parameter_is_reported_a_masked_one_not() {
        let ours = BTreeMap::from([(
            0,
            vec![
                ev("open", &[("fd", "3"), ("ino", "10")]),
                ev("write", &[("res", "5")]),
            ],
        )]);
        let falco = BTreeMap::from([(
            0,
            vec![
                ev("open", &[("fd", "3"), ("ino", "11")]),
                ev("write", &[("res", "4")]),
            ],
        )]);
        let r = compare(&ours, &falco, &HashSet::new());
        assert_eq!(r.per_syscall["open"].equal, 1);
        assert_eq!(r.per_syscall["write"].differing, 1);
        assert_eq!(r.differences.len(), 1);
        assert!(r.differences[0].contains("write res"));
    }
}
