//! Differential test of conditions against Debian's sysdig 0.29.3: for
//! every kit capture and every filter below, the events Peregrine's filter
//! keeps must be the ones `sysdig -r FILE -p %evt.num FILTER` prints.
//! Where sysdig is known to differ, the case says why, and the difference
//! itself is still checked (it must be the known one, not a new one).
//!
//! Like is compared with like. sysdig 0.29.3 predates one event per
//! syscall: it evaluates enter and exit events as the capture holds them.
//! `filters_match_the_same_events_as_sysdig` therefore runs Peregrine's
//! filter on the same raw stream, enters included, as sysdig does.
//! `merged_exits_match_sysdigs_exits` runs it the way `peregrine -e`
//! does, on the merged stream (one exit per syscall, carrying its enter's
//! parameters), and compares each exit with sysdig's verdict on the same
//! exit (`evt.dir='<'`), which sysdig resolves through the enter it saw.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use common::{kit_captures, sysdig_available};
use peregrine_engine::event::merge::Merger;
use peregrine_engine::event::table::flags;
use peregrine_engine::event::Direction;
use peregrine_engine::rules::Filter;
use peregrine_engine::scap::Capture;
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

const FILTERS: &[&str] = &[
    // Event type and direction.
    "evt.type=open",
    "evt.type=openat",
    "evt.type in (open, openat)",
    "evt.type=close",
    "evt.type=read",
    "evt.type=write",
    "evt.type=execve",
    "evt.type=clone",
    "evt.type=connect",
    "evt.type=socket",
    "evt.type=sendto",
    "evt.type=recvfrom",
    "evt.type=mmap",
    "evt.type=brk",
    "evt.type=fstat",
    "evt.type=access",
    "evt.type=procexit",
    "evt.dir='>'",
    "evt.dir='<'",
    "evt.type=open and evt.dir='<'",
    "not evt.type=read",
    "evt.type=read or evt.type=write",
    "evt.type!=close and evt.dir='<'",
    // Results.
    "evt.res=SUCCESS",
    "evt.res!=SUCCESS",
    "evt.rawres<0",
    "evt.rawres>=0",
    "evt.rawres=0",
    "evt.failed=true",
    "evt.failed=false",
    "evt.is_open_read=true",
    "evt.is_open_write=true",
    // Processes.
    "proc.name=curl",
    "proc.name=cat",
    "proc.name contains ca",
    "proc.name startswith c",
    "proc.name endswith t",
    "proc.name in (curl, cat, ping)",
    "proc.name glob 'c*'",
    "proc.name icontains CAT",
    "proc.name!=curl",
    "proc.pid>0",
    "proc.cmdline contains google",
    "proc.exe contains curl",
    "proc.pname=bash",
    "proc.pname exists",
    "thread.tid>1000",
    "user.name=root",
    "user.uid=0",
    "user.uid!=0",
    "group.gid=0",
    // Files and sockets.
    "fd.name contains /etc",
    "fd.name startswith /lib",
    "fd.name endswith .so.6",
    "fd.name=/etc/ld.so.cache",
    "fd.directory=/etc",
    "fd.filename=hosts",
    "fd.typechar=f",
    "fd.typechar=4",
    "fd.typechar=6",
    "fd.typechar=u",
    "fd.type=file",
    "fd.type=ipv4",
    "fd.type=ipv6",
    "fd.num=3",
    "fd.num>2",
    "fd.sip=127.0.0.1",
    "fd.l4proto=udp",
    "fd.l4proto=tcp",
    "fd.net=127.0.0.0/8",
    "fd.sport=53",
    // Either end of a socket: `in` and `=` hold when one end matches,
    // `!=` when neither does. (`!=` on a socket not yet connected differs:
    // sysdig 0.29.3 compares its zeroed ends; not checked here.)
    "fd.port in (53)",
    "fd.port in (53, 80)",
    "fd.port=53",
    "fd.port>1024",
    "fd.ip=127.0.0.1",
    "evt.type=connect and fd.l4proto=udp and not fd.port in (53, 123)",
    // Arguments.
    "evt.arg.fd=3",
    "evt.arg.name contains etc",
    "evt.arg.flags contains O_RDONLY",
    "evt.args contains ENOENT",
    // Combinations.
    "(evt.type=open or evt.type=openat) and fd.name contains lib",
    "not (proc.name=curl)",
    "evt.num<100",
    "proc.name=curl and evt.type=connect and evt.dir='<'",
];

/// Why sysdig 0.29.3 may see an event differently from current libsinsp
/// and Peregrine. Every event on which the two disagree must have one of
/// these reasons; any other difference fails the test.
fn known_reason(event: &EventFacts) -> Option<&'static str> {
    if !event.sysdig_knows_thread {
        return Some(
            "sysdig made up the thread (no process name, uid -1) and counts `!=` on a missing field \
             as true; current libsinsp (and Peregrine) make every comparison on a missing field false",
        );
    }
    if matches!(event.name, "mmap" | "mmap2" | "getsockopt") {
        return Some("sysdig 0.29's event table does not mark mmap and getsockopt as using an fd; current libs do");
    }
    if event.is_enter && event.creates_fd {
        return Some("sysdig 0.29 gives the enter of an fd-creating call the fd fields of a stale table entry");
    }
    None
}

/// What the reasons look at, per event.
struct EventFacts {
    name: &'static str,
    is_enter: bool,
    creates_fd: bool,
    sysdig_knows_thread: bool,
}

fn event_facts(path: &Path) -> BTreeMap<u64, EventFacts> {
    let output = Command::new("sysdig")
        .args([
            "-r",
            &path.display().to_string(),
            "-p",
            "%evt.num %proc.name",
        ])
        .output()
        .unwrap();
    let unknown_thread: BTreeSet<u64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.ends_with("<NA>"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let mut capture = Capture::open(path).unwrap();
    let mut events = capture.events();
    let mut facts = BTreeMap::new();
    while let Some(e) = events.next() {
        let e = e.unwrap();
        let f = EventFacts {
            name: e.name(),
            is_enter: e.direction() == Direction::Enter,
            creates_fd: e.has_flag(flags::CREATES_FD),
            sysdig_knows_thread: !unknown_thread.contains(&e.num),
        };
        facts.insert(e.num, f);
    }
    facts
}

fn peregrine_matches(path: &Path, filter: &str) -> BTreeSet<u64> {
    let mut capture = Capture::open(path).unwrap();
    let mut state = State::from_capture(&capture);
    let mut filter =
        Filter::new(filter, SyscallFields::new()).unwrap_or_else(|e| panic!("{filter}: {e}"));
    let mut out = BTreeSet::new();
    let mut events = capture.events();
    while let Some(event) = events.next() {
        let event = event.unwrap();
        state.apply(&event);
        if filter.matches(&SyscallEvent::new(&event, &state)) {
            out.insert(event.num);
        }
    }
    out
}

fn sysdig_matches(path: &Path, filter: &str) -> BTreeSet<u64> {
    let output = Command::new("sysdig")
        .args(["-r", &path.display().to_string(), "-p", "%evt.num", filter])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "sysdig {filter}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn filters_match_the_same_events_as_sysdig() {
    let Some(files) = kit_captures() else {
        println!("SKIP: ../shared/conformance not found");
        return;
    };
    if !sysdig_available() {
        println!("SKIP: sysdig is not installed (scripts/install-deps installs it)");
        return;
    }
    assert!(FILTERS.len() >= 60);
    let mut unexpected = Vec::new();
    let mut compared = 0;
    let mut known: BTreeMap<&str, u64> = BTreeMap::new();
    for file in &files {
        let facts = event_facts(file);
        // sysdig 0.29 leaves some events of a capture out of everything it
        // prints (with or without a filter); the comparison is over the
        // events it shows at all.
        let shown = sysdig_matches(file, "evt.num>=0");
        for filter in FILTERS {
            let ours: BTreeSet<u64> = peregrine_matches(file, filter)
                .intersection(&shown)
                .copied()
                .collect();
            let theirs = sysdig_matches(file, filter);
            compared += 1;
            if ours == theirs {
                continue;
            }
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            for num in ours.symmetric_difference(&theirs) {
                let side = if ours.contains(num) {
                    "only peregrine"
                } else {
                    "only sysdig"
                };
                let event = &facts[num];
                match known_reason(event) {
                    Some(why) => *known.entry(why).or_default() += 1,
                    None => unexpected.push(format!(
                        "{name} '{filter}': event {num} ({}) {side}",
                        event.name
                    )),
                }
            }
        }
    }
    println!("{compared} capture x filter pairs compared with sysdig");
    for (why, n) in &known {
        println!("known difference on {n} event matches: {why}");
    }
    assert!(
        unexpected.is_empty(),
        "{} differences:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}

/// The raw `evt.num` (the capture's numbering, which sysdig prints) of
/// every merged exit the filter keeps.
fn peregrine_merged_exit_matches(path: &Path, filter: &str) -> BTreeSet<u64> {
    let mut capture = Capture::open(path).unwrap();
    let mut state = State::from_capture(&capture);
    let mut filter =
        Filter::new(filter, SyscallFields::new()).unwrap_or_else(|e| panic!("{filter}: {e}"));
    let mut merger = Merger::new();
    let mut out = BTreeSet::new();
    let mut events = capture.events();
    while let Some(event) = events.next() {
        let event = event.unwrap();
        let raw_num = event.num;
        let Some(merged) = merger.push(&event) else {
            continue;
        };
        state.apply(&merged);
        let keep = filter.matches(&SyscallEvent::new(&merged, &state));
        if keep && merged.direction() == Direction::Exit {
            out.insert(raw_num);
        }
    }
    out
}

/// Conditions whose value on an exit sysdig computes from the enter it
/// saw (fds, paths) or from the exit alone: the merged exit must agree.
const EXIT_FILTERS: &[&str] = &[
    "evt.type=open",
    "evt.type in (open, openat)",
    "evt.type=close",
    "evt.type=read",
    "evt.type=write",
    "evt.type=connect",
    "evt.type=execve",
    "evt.res=SUCCESS",
    "evt.failed=true",
    "proc.name=cat",
    "proc.name=curl",
    "fd.name contains /etc",
    "fd.name startswith /lib",
    "fd.name=/dev/null",
    "fd.typechar=f",
    "fd.typechar=4",
    "fd.num=3",
    "fd.type=ipv4",
    "fd.sport=53",
    // Either end of a socket: `in` and `=` hold when one end matches,
    // `!=` when neither does. (`!=` on a socket not yet connected differs:
    // sysdig 0.29.3 compares its zeroed ends; not checked here.)
    "fd.port in (53)",
    "fd.port in (53, 80)",
    "fd.port=53",
    "fd.port>1024",
    "fd.ip=127.0.0.1",
    "evt.type=connect and fd.l4proto=udp and not fd.port in (53, 123)",
    "fd.l4proto=udp",
    "evt.type=read and fd.name contains /etc",
    "evt.type=close and fd.num>=0",
];

#[test]
fn merged_exits_match_sysdigs_exits() {
    let Some(files) = kit_captures() else {
        println!("SKIP: ../shared/conformance not found");
        return;
    };
    if !sysdig_available() {
        println!("SKIP: sysdig is not installed (scripts/install-deps installs it)");
        return;
    }
    let mut unexpected = Vec::new();
    let mut known: BTreeMap<&str, u64> = BTreeMap::new();
    let mut compared = 0;
    for file in &files {
        let facts = event_facts(file);
        let shown = sysdig_matches(file, "evt.num>=0");
        for filter in EXIT_FILTERS {
            let ours: BTreeSet<u64> = peregrine_merged_exit_matches(file, filter)
                .intersection(&shown)
                .copied()
                .collect();
            let theirs = sysdig_matches(file, &format!("({filter}) and evt.dir='<'"));
            compared += 1;
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            for num in ours.symmetric_difference(&theirs) {
                let side = if ours.contains(num) {
                    "only peregrine"
                } else {
                    "only sysdig"
                };
                let event = &facts[num];
                match known_reason(event) {
                    Some(why) => *known.entry(why).or_default() += 1,
                    None => unexpected.push(format!(
                        "{name} '{filter}': exit {num} ({}) {side}",
                        event.name
                    )),
                }
            }
        }
    }
    println!("{compared} capture x filter pairs compared with sysdig on exits");
    for (why, n) in &known {
        println!("known difference on {n} exit matches: {why}");
    }
    assert!(
        unexpected.is_empty(),
        "{} differences:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}
