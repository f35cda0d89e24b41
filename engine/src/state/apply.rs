//! Applying events to the state.

use super::fd::{self, l4, Fd, FdKind};
use super::proc_params::{ProcEvent, ProcFlag, ProcParam as P};
use super::thread::{container_id_from_cgroups, NulList, Thread};
use super::{resolve_path, resolve_path_into, with_slash, Deferred, EnterInfo, State};
use crate::event::table::{all_event_types, flags as ef, Direction};
use crate::event::view::{Param, SockAddr, SockTuple, AF_INET, AF_INET6, AF_UNIX};
use crate::event::EventView;
use crate::text::decode;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an event type does to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handler {
    Nothing,
    Clone,
    Execve,
    ProcExit,
    /// The driver's periodic CPU report of a thread (an enter event).
    ProcInfo,
    Open,
    Close,
    Dup,
    Socket,
    Connect,
    Accept,
    Bind,
    Pipe,
    Chdir,
    Fchdir,
    SetUid,
    SetGid,
    SetResUid,
    SetResGid,
    Fcntl,
    /// A container event (from a capture, or made by the runner when a
    /// runtime answered): metadata for the container table.
    Container,
    NewFd(FdKindTag),
    /// A datagram sent (sendto, sendmsg) or received (recvfrom, recvmsg):
    /// its tuple names the peer of a socket that may have none yet.
    DatagramIo {
        incoming: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FdKindTag {
    Event,
    SignalFd,
    EventPoll,
    Inotify,
    TimerFd,
    UserFaultFd,
    IoUring,
    MemFd,
    PidFd,
    Bpf,
}

/// The exit events that change the state, by event name. The same list tells
/// a live source which syscalls it must capture for the state to stay right,
/// whatever the rules ask for.
const STATE_EVENTS: &[(&[&str], Handler)] = &[
    (&["clone", "fork", "vfork", "clone3"], Handler::Clone),
    (&["execve", "execveat"], Handler::Execve),
    (
        &["open", "openat", "openat2", "creat", "open_by_handle_at"],
        Handler::Open,
    ),
    (&["close"], Handler::Close),
    (&["dup", "dup2", "dup3"], Handler::Dup),
    (&["socket"], Handler::Socket),
    (&["connect"], Handler::Connect),
    (&["accept", "accept4"], Handler::Accept),
    (&["bind"], Handler::Bind),
    (&["pipe", "pipe2"], Handler::Pipe),
    (&["chdir"], Handler::Chdir),
    (&["fchdir"], Handler::Fchdir),
    (&["setuid"], Handler::SetUid),
    (&["setgid"], Handler::SetGid),
    (&["setresuid"], Handler::SetResUid),
    (&["setresgid"], Handler::SetResGid),
    (&["fcntl"], Handler::Fcntl),
    (&["eventfd", "eventfd2"], Handler::NewFd(FdKindTag::Event)),
    (
        &["signalfd", "signalfd4"],
        Handler::NewFd(FdKindTag::SignalFd),
    ),
    (
        &["epoll_create", "epoll_create1"],
        Handler::NewFd(FdKindTag::EventPoll),
    ),
    (
        &["inotify_init", "inotify_init1"],
        Handler::NewFd(FdKindTag::Inotify),
    ),
    (&["timerfd_create"], Handler::NewFd(FdKindTag::TimerFd)),
    (&["userfaultfd"], Handler::NewFd(FdKindTag::UserFaultFd)),
    (&["io_uring_setup"], Handler::NewFd(FdKindTag::IoUring)),
    (&["memfd_create"], Handler::NewFd(FdKindTag::MemFd)),
    (
        &["pidfd_open", "pidfd_getfd"],
        Handler::NewFd(FdKindTag::PidFd),
    ),
    (&["bpf"], Handler::NewFd(FdKindTag::Bpf)),
];

/// Names of the syscall events the state is built from (procexit, which
/// is not a syscall, aside).
pub fn state_event_names() -> impl Iterator<Item = &'static str> {
    STATE_EVENTS
        .iter()
        .flat_map(|(names, _)| names.iter().copied())
}

pub(super) fn handler_table() -> Vec<Handler> {
    all_event_types()
        .map(|(ty, info)| {
            if Direction::of_type(ty) == Direction::Enter {
                return match info.name {
                    "procexit" => Handler::ProcExit,
                    "container" => Handler::Container,
                    "procinfo" => Handler::ProcInfo,
                    _ => Handler::Nothing,
                };
            }
            // Applied when they come, but not asked of a live source for
            // the state's sake: they are among the busiest syscalls.
            match info.name {
                "sendto" | "sendmsg" => return Handler::DatagramIo { incoming: false },
                "recvfrom" | "recvmsg" => return Handler::DatagramIo { incoming: true },
                _ => {}
            }
            STATE_EVENTS
                .iter()
                .find(|(names, _)| names.contains(&info.name))
                .map_or(Handler::Nothing, |(_, handler)| *handler)
        })
        .collect()
}

const NO_SLOT: u8 = u8::MAX;

/// Where the parameters the state reads sit in one event type, found once
/// from the schema so the per-event path compares no parameter names.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slots {
    fd: u8,
    fd2: u8,
    dirfd: u8,
    flags: u8,
    /// The first of uid, gid, euid, egid.
    uid: u8,
    domain: u8,
    ty: u8,
    proto: u8,
    /// The best of name, filename, pathname, path (in that order).
    name: u8,
    /// The highest of the indexes an enter event is read for.
    last: u8,
    /// The path an open-family exit names: `name`, else `path`.
    open_name: u8,
    /// The file an open-family exit opened, and its overlay layer.
    dev: u8,
    ino: u8,
    creat_flags: u8,
}

/// The parameters an open-family exit is walked for at once: more than
/// any has in the current layouts (openat2 has eight); a slot past them
/// would be read on its own.
const OPEN_PARAMS: usize = 10;

pub(super) fn slots_table() -> Vec<Slots> {
    all_event_types()
        .map(|(_, info)| {
            let mut sl = Slots {
                fd: NO_SLOT,
                fd2: NO_SLOT,
                dirfd: NO_SLOT,
                flags: NO_SLOT,
                uid: NO_SLOT,
                domain: NO_SLOT,
                ty: NO_SLOT,
                proto: NO_SLOT,
                name: NO_SLOT,
                last: NO_SLOT,
                open_name: NO_SLOT,
                dev: NO_SLOT,
                ino: NO_SLOT,
                creat_flags: NO_SLOT,
            };
            let mut name_rank = usize::MAX;
            for (i, p) in info.params.iter().enumerate().take(usize::from(NO_SLOT)) {
                let i = i as u8;
                let first = |slot: &mut u8| {
                    if *slot == NO_SLOT {
                        *slot = i
                    }
                };
                match p.name {
                    "fd" => first(&mut sl.fd),
                    "fd2" => first(&mut sl.fd2),
                    "dirfd" => first(&mut sl.dirfd),
                    "flags" => first(&mut sl.flags),
                    "uid" | "gid" | "euid" | "egid" => first(&mut sl.uid),
                    "domain" => first(&mut sl.domain),
                    "type" => first(&mut sl.ty),
                    "proto" => first(&mut sl.proto),
                    "dev" => first(&mut sl.dev),
                    "ino" => first(&mut sl.ino),
                    "creat_flags" => first(&mut sl.creat_flags),
                    n => {
                        let rank = ["name", "filename", "pathname", "path"]
                            .iter()
                            .position(|k| *k == n);
                        if let Some(rank) = rank.filter(|&r| r < name_rank) {
                            name_rank = rank;
                            sl.name = i;
                        }
                    }
                }
            }
            let position = |n: &str| info.params.iter().position(|p| p.name == n);
            sl.open_name = position("name")
                .or_else(|| position("path"))
                .and_then(|i| u8::try_from(i).ok())
                .filter(|&i| i != NO_SLOT)
                .unwrap_or(NO_SLOT);
            let enter_slots = [
                sl.fd, sl.dirfd, sl.flags, sl.uid, sl.domain, sl.ty, sl.proto, sl.name,
            ];
            sl.last = enter_slots
                .into_iter()
                .filter(|&i| i != NO_SLOT)
                .max()
                .unwrap_or(NO_SLOT);
            sl
        })
        .collect()
}

/// Parameter `at` of `ev` from its first parameters' bytes, walked once
/// (see [`EventView::param_slices`]); past them, as [`slot`] finds it.
#[inline]
fn walked_param<'a>(ev: &EventView<'a>, walked: &[&'a [u8]], at: u8) -> Option<Param<'a>> {
    match walked.get(usize::from(at)) {
        Some(&bytes) => Some(Param {
            info: ev.param_info(usize::from(at))?,
            bytes,
        }),
        None => slot(ev, at),
    }
}

#[inline]
fn slot<'a>(ev: &EventView<'a>, at: u8) -> Option<Param<'a>> {
    if at == NO_SLOT {
        None
    } else {
        ev.param(usize::from(at))
    }
}

fn int(ev: &EventView<'_>, name: &str) -> Option<i64> {
    ev.param_named(name)?.as_i64()
}

fn text(ev: &EventView<'_>, name: &str) -> Option<String> {
    Some(decode(ev.param_named(name)?.as_bytes_str()).into_owned())
}

/// The list a parameter carries (empty without the parameter): one of
/// `held` when it holds the same bytes, shared rather than copied.
fn shared_list(param: Option<Param<'_>>, held: [Option<&NulList>; 2]) -> NulList {
    let Some(p) = param else {
        return NulList::default();
    };
    held.into_iter()
        .flatten()
        .find(|l| l.is_raw(p.bytes))
        .cloned()
        .unwrap_or_else(|| NulList::from_raw(p.bytes))
}

/// Sets `dst` to the text of `raw` (as [`text`] gives it), keeping its
/// allocation when the text is the same.
fn assign_text(dst: &mut String, raw: &[u8]) {
    let raw = decode(raw);
    if *dst != *raw {
        dst.clear();
        dst.push_str(&raw);
    }
}

/// Sets `dst` to the directory `raw` names, ending in a slash, keeping its
/// allocation when it names the same one. False (and `dst` untouched) when
/// `raw` is empty: the driver did not give it.
fn assign_dir(dst: &mut String, raw: &[u8]) -> bool {
    let raw = decode(raw);
    if raw.is_empty() {
        return false;
    }
    let same = match raw.strip_suffix('/') {
        Some(_) => *dst == *raw,
        None => dst.strip_suffix('/') == Some(&*raw),
    };
    if !same {
        dst.clear();
        dst.push_str(&raw);
        if !dst.ends_with('/') {
            dst.push('/');
        }
    }
    true
}

/// The limits, memory, page faults and namespace start time that clone
/// and execve exit events report; what the event lacks is left as it was.
fn read_resources(pe: &ProcEvent<'_>, t: &mut Thread) {
    if let Some(v) = pe.int(P::Fdlimit) {
        t.fdlimit = v;
    }
    if let Some(v) = pe.int(P::Pgid) {
        t.pgid = v;
    }
    if let Some(v) = pe.uint(P::VmSize) {
        t.vmsize_kb = v as u32;
    }
    if let Some(v) = pe.uint(P::VmRss) {
        t.vmrss_kb = v as u32;
    }
    if let Some(v) = pe.uint(P::VmSwap) {
        t.vmswap_kb = v as u32;
    }
    if let Some(v) = pe.uint(P::PgftMaj) {
        t.pfmajor = v;
    }
    if let Some(v) = pe.uint(P::PgftMin) {
        t.pfminor = v;
    }
    if let Some(v) = pe.uint(P::PidnsInitStartTs).filter(|&v| v != 0) {
        t.pidns_init_start_ts = v;
    }
}

/// creat(2) reports the overlay layer of the file in flags of its own
/// (`creat_flags`): they become the open flags' layer bits
/// (PPM_FD_UPPER_LAYER, bit 15; PPM_FD_LOWER_LAYER, bit 16).
fn creat_layer_flags(creat_flags: Option<Param<'_>>) -> u32 {
    let Some(v) = creat_flags.and_then(|p| p.as_u64()) else {
        return 0;
    };
    let mut flags = 0;
    if v & 1 != 0 {
        flags |= 1 << 15;
    }
    if v & 2 != 0 {
        flags |= 1 << 16;
    }
    flags
}

/// The value of the flag called `flag` in the names table of a parameter.
fn flag_value(p: &Param<'_>, flag: &str) -> Option<u64> {
    p.info
        .names?
        .iter()
        .find(|(n, _)| *n == flag)
        .map(|(_, v)| *v)
}

/// Whether `s` holds "proc" or "fd", so may go through a /proc or /dev/fd
/// link. Every open asks it of its path and directory: a scan of the bytes
/// costs less than setting up a substring search for each.
fn mentions_proc_or_fd(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(2)
        .enumerate()
        .any(|(i, w)| w == b"fd" || (w == b"pr" && b[i..].starts_with(b"proc")))
}

/// The `flags` parameter of an event, found by its type's slot.
pub(super) fn event_flags(state: &State, ev: &EventView<'_>) -> Option<u64> {
    let sl = state.slots.get(usize::from(ev.event_type))?;
    slot(ev, sl.flags)?.as_u64()
}

pub(super) fn event_fd(state: &State, ev: &EventView<'_>) -> Option<i64> {
    let info = ev.info();
    if info.flags & (ef::USES_FD | ef::CREATES_FD | ef::DESTROYS_FD) == 0 {
        return None;
    }
    if ev.direction() == Direction::Exit && info.flags & ef::CREATES_FD != 0 {
        if let Some(p) = ev.param(0) {
            if matches!(p.ty(), crate::event::ParamType::Fd) {
                return p.as_i64();
            }
        }
    }
    let sl = state.slots.get(usize::from(ev.event_type))?;
    if let Some(fd) = slot(ev, sl.fd).and_then(|p| p.as_i64()) {
        return Some(fd);
    }
    // A pipe's event refers to its second (write) end, as Falco shows it.
    if let Some(fd) = slot(ev, sl.fd2).and_then(|p| p.as_i64()) {
        return Some(fd);
    }
    let enter = state.enters.get(&(ev.tid as i64))?;
    if enter.event_type.wrapping_add(1) == ev.event_type {
        enter.fd
    } else {
        None
    }
}

impl State {
    /// Updates the state with one event. Call it on every event, in order,
    /// before extracting fields of the event.
    #[inline]
    pub fn apply(&mut self, ev: &EventView<'_>) {
        if !self.deferred.is_empty() {
            self.apply_deferred();
        }
        self.apply_now(ev);
    }

    /// The changes earlier events left for this one to make.
    #[cold]
    fn apply_deferred(&mut self) {
        let mut deferred = std::mem::take(&mut self.deferred);
        for d in deferred.drain(..) {
            match d {
                Deferred::RemoveThread(tid) => {
                    self.enters.remove(&tid);
                    if self.threads.contains_key(&tid) {
                        self.remove_thread(tid);
                        self.purged += 1;
                    }
                }
                Deferred::CloseFd { pid, fd } => {
                    if let Some(closed) = self.fds.get_mut(&pid).and_then(|t| t.remove(&fd)) {
                        self.keep_name(closed.name);
                    }
                }
            }
        }
        // Keep the allocation for the next time.
        if self.deferred.is_empty() {
            self.deferred = deferred;
        }
    }

    /// Keeps a closed fd's name for an open to come (see
    /// `State::spare_names`); a few, and none that a long path made large.
    fn keep_name(&mut self, mut name: String) {
        const KEPT: usize = 16;
        const LARGEST: usize = 512;
        if self.spare_names.len() < KEPT && name.capacity() <= LARGEST {
            name.clear();
            self.spare_names.push(name);
        }
    }

    /// What every event does (small, so it inlines into the reading loop);
    /// the changes particular event types make are out of line.
    #[inline]
    fn apply_now(&mut self, ev: &EventView<'_>) {
        let tid = ev.tid as i64;
        self.seen(tid, ev.ts);
        self.previous_ts = self.latest_ts;
        self.latest_ts = ev.ts;
        if self.first_ts == 0 {
            self.first_ts = ev.ts;
        }
        let handler = self
            .handlers
            .get(usize::from(ev.event_type))
            .copied()
            .unwrap_or(Handler::Nothing);
        if ev.direction() == Direction::Enter {
            // Only enters whose exit needs them (state changes or fd fields).
            let exit_handler = self.handlers.get(usize::from(ev.event_type) + 1).copied();
            let uses_fd = ev.info().flags & (ef::USES_FD | ef::CREATES_FD | ef::DESTROYS_FD) != 0;
            if uses_fd || exit_handler.is_some_and(|h| h != Handler::Nothing) {
                self.remember_enter(ev);
            } else if let Some(e) = self.enters.get_mut(&tid) {
                e.event_type = ev.event_type;
            }
            match handler {
                Handler::ProcExit => self.deferred.push(Deferred::RemoveThread(tid)),
                Handler::Container => self.on_container(ev),
                Handler::ProcInfo => self.on_procinfo(ev),
                _ => {}
            }
            return;
        }
        if matches!(
            handler,
            Handler::Nothing | Handler::ProcExit | Handler::Container | Handler::ProcInfo
        ) {
            return;
        }
        self.apply_exit(ev, handler);
    }

    /// Keeps the CPU times of the thread's last two procinfo events.
    #[inline(never)]
    fn on_procinfo(&mut self, ev: &EventView<'_>) {
        let time = |name| ev.param_named(name).and_then(|p| p.as_u64());
        let (Some(user), Some(system)) = (time("cpu_usr"), time("cpu_sys")) else {
            return;
        };
        if let Some(t) = self.threads.get_mut(&(ev.tid as i64)) {
            t.procinfo_cpu = [t.procinfo_cpu[1], Some((user, system))];
        }
    }

    #[inline(never)]
    fn apply_exit(&mut self, ev: &EventView<'_>, handler: Handler) {
        let tid = ev.tid as i64;
        let res = ev.res();
        match handler {
            Handler::Nothing | Handler::ProcExit | Handler::Container | Handler::ProcInfo => {}
            Handler::Clone => self.on_clone(ev, res.unwrap_or(-1)),
            Handler::Execve => {
                if res == Some(0) {
                    self.on_execve(ev)
                }
            }
            Handler::Open => self.on_open(ev, res),
            Handler::Close => {
                if res.unwrap_or(-1) >= 0 {
                    if let Some(fd) = event_fd(self, ev) {
                        let pid = self.pid_of(tid);
                        self.deferred.push(Deferred::CloseFd { pid, fd });
                    }
                }
            }
            Handler::Dup => self.on_dup(ev, res),
            Handler::Socket => self.on_socket(ev, res),
            Handler::Connect => self.on_connect(ev),
            Handler::Accept => self.on_accept(ev, res),
            Handler::Bind => self.on_bind(ev, res),
            Handler::Pipe => {
                if res.unwrap_or(-1) >= 0 {
                    for name in ["fd1", "fd2"] {
                        if let Some(fd) = int(ev, name) {
                            self.set_fd(tid, fd, Fd::new(FdKind::Pipe, String::new()));
                        }
                    }
                }
            }
            Handler::Chdir => {
                if res == Some(0) {
                    if let Some(path) = text(ev, "path") {
                        if let Some(t) = self.threads.get_mut(&tid) {
                            t.cwd = with_slash(resolve_path(&t.cwd, &path));
                        }
                    }
                }
            }
            Handler::Fchdir => {
                if res == Some(0) {
                    let dir = event_fd(self, ev)
                        .and_then(|fd| self.fd(tid, fd))
                        .map(|f| f.name.clone());
                    if let (Some(dir), Some(t)) = (dir, self.threads.get_mut(&tid)) {
                        t.cwd = with_slash(dir);
                    }
                }
            }
            Handler::SetUid | Handler::SetGid => {
                if res == Some(0) {
                    let key = if handler == Handler::SetUid {
                        "uid"
                    } else {
                        "gid"
                    };
                    let from_enter = self.enters.get(&tid).and_then(|e| e.uid);
                    let id = int(ev, key).map(|v| v as u32).or(from_enter);
                    if let (Some(id), Some(t)) = (id, self.threads.get_mut(&tid)) {
                        if handler == Handler::SetUid {
                            t.uid = id;
                        } else {
                            t.gid = id;
                        }
                    }
                }
            }
            Handler::SetResUid | Handler::SetResGid => {
                // The effective id is the one permission checks (and rules) see.
                if res == Some(0) {
                    let key = if handler == Handler::SetResUid {
                        "euid"
                    } else {
                        "egid"
                    };
                    let id = int(ev, key)
                        .map(|v| v as u32)
                        .or_else(|| self.matching_enter(ev).and_then(|e| e.uid));
                    // u32::MAX (-1) leaves the id unchanged.
                    if let (Some(id), Some(t)) =
                        (id.filter(|&i| i != u32::MAX), self.threads.get_mut(&tid))
                    {
                        if handler == Handler::SetResUid {
                            t.uid = id;
                        } else {
                            t.gid = id;
                        }
                    }
                }
            }
            Handler::Fcntl => {
                // F_DUPFD and F_DUPFD_CLOEXEC duplicate an fd like dup does.
                let Some(newfd) = res.filter(|&r| r >= 0) else {
                    return;
                };
                let cmd = ev.param_named("cmd");
                let is_dup = cmd.is_some_and(|c| {
                    let v = c.as_u64();
                    ["F_DUPFD", "F_DUPFD_CLOEXEC"]
                        .iter()
                        .any(|n| flag_value(&c, n).is_some() && flag_value(&c, n) == v)
                });
                if is_dup {
                    if let Some(f) = event_fd(self, ev)
                        .and_then(|old| self.fd(tid, old))
                        .cloned()
                    {
                        self.set_fd(tid, newfd, f);
                    }
                }
            }
            Handler::DatagramIo { incoming } => {
                if res.unwrap_or(-1) >= 0 {
                    self.on_datagram(ev, incoming);
                }
            }
            Handler::NewFd(tag) => {
                if let Some(fd) = res.filter(|&r| r >= 0) {
                    let kind = match tag {
                        FdKindTag::Event => FdKind::Event,
                        FdKindTag::SignalFd => FdKind::SignalFd,
                        FdKindTag::EventPoll => FdKind::EventPoll,
                        FdKindTag::Inotify => FdKind::Inotify,
                        FdKindTag::TimerFd => FdKind::TimerFd,
                        FdKindTag::UserFaultFd => FdKind::UserFaultFd,
                        FdKindTag::IoUring => FdKind::IoUring,
                        FdKindTag::MemFd => FdKind::MemFd,
                        FdKindTag::PidFd => FdKind::PidFd,
                        FdKindTag::Bpf => FdKind::Bpf,
                    };
                    let name = text(ev, "name").unwrap_or_default();
                    self.set_fd(tid, fd, Fd::new(kind, name));
                }
            }
        }
    }

    fn pid_of(&self, tid: i64) -> i64 {
        self.threads.get(&tid).map(|t| t.pid).unwrap_or(tid)
    }

    fn set_fd(&mut self, tid: i64, fd: i64, f: Fd) {
        let pid = self.pid_of(tid);
        self.insert_fd(pid, fd, f);
    }

    #[inline(never)]
    fn remember_enter(&mut self, ev: &EventView<'_>) {
        // Threads never seen exiting (or never known) must not grow this
        // without bound: past the thread limit it starts over.
        if self.enters.len() >= self.max_threads && !self.enters.contains_key(&(ev.tid as i64)) {
            self.enters.clear();
        }
        let e = self.enters.entry(ev.tid as i64).or_default();
        e.event_type = ev.event_type;
        e.fd = None;
        e.dirfd = None;
        e.flags = None;
        e.uid = None;
        e.name.clear();
        let Some(&sl) = self.slots.get(usize::from(ev.event_type)) else {
            e.sock = None;
            return;
        };
        if sl.last == NO_SLOT {
            e.sock = None;
            return;
        }
        e.fd = slot(ev, sl.fd).and_then(|p| p.as_i64());
        e.dirfd = slot(ev, sl.dirfd).and_then(|p| p.as_i64());
        e.flags = slot(ev, sl.flags)
            .and_then(|p| p.as_u64())
            .map(|v| v as u32);
        e.uid = slot(ev, sl.uid).and_then(|p| p.as_u64()).map(|v| v as u32);
        if let Some(p) = slot(ev, sl.name) {
            e.name.push_str(&decode(p.as_bytes_str()));
        }
        e.tuple.clear();
        if let Some(p) = ev.param_named("tuple").or_else(|| ev.param_named("addr")) {
            e.tuple.extend_from_slice(p.bytes);
        }
        let int_at = |at| slot(ev, at).and_then(|p| p.as_i64());
        e.sock = match (int_at(sl.domain), int_at(sl.ty), int_at(sl.proto)) {
            (Some(d), Some(t), Some(p)) => Some((d, t, p)),
            _ => None,
        };
    }

    /// The enter event of this exit, if the thread's last enter matches.
    fn matching_enter(&self, ev: &EventView<'_>) -> Option<&EnterInfo> {
        let e = self.enters.get(&(ev.tid as i64))?;
        (e.event_type.wrapping_add(1) == ev.event_type).then_some(e)
    }

    fn on_clone(&mut self, ev: &EventView<'_>, res: i64) {
        let Some(&slots) = self.proc_slots.get(usize::from(ev.event_type)) else {
            return;
        };
        let pe = ProcEvent::new(ev, slots);
        let caller = ev.tid as i64;
        let is_thread = pe
            .uint(P::Flags)
            .is_some_and(|v| v & pe.flag_bit(ProcFlag::CloneThread) != 0);
        let (child_tid, parent_tid) = match res {
            0 => (caller, pe.int(P::Ptid).unwrap_or(-1)),
            r if r > 0 => (r, caller),
            _ => return,
        };
        if res > 0 && self.threads.contains_key(&child_tid) {
            return;
        }
        // The child's own clone exit mostly follows its parent's, which
        // made this thread already: its strings and lists are reused where
        // the event repeats them instead of being split and copied again.
        // The thread is still built whole from this event, as before.
        let mut old = match self.threads.remove(&child_tid) {
            Some(old) if child_tid != parent_tid => {
                self.release_pid(old.pid);
                old
            }
            Some(same) => {
                self.threads.insert(child_tid, same);
                Box::default()
            }
            None => Box::default(),
        };
        let text_into = |dst: &mut String, p: Option<Param<'_>>| match p {
            Some(p) => assign_text(dst, p.as_bytes_str()),
            None => dst.clear(),
        };
        let mut comm = std::mem::take(&mut old.comm);
        text_into(&mut comm, pe.get(P::Comm).or_else(|| pe.get(P::Exe)));
        let mut exe = std::mem::take(&mut old.exe);
        text_into(&mut exe, pe.get(P::Exe));
        let mut cwd = std::mem::take(&mut old.cwd);
        let parent = self.threads.get(&parent_tid);
        // A driver that leaves cwd out (or empty): a child starts in its
        // parent's working directory.
        if !pe
            .get(P::Cwd)
            .is_some_and(|p| assign_dir(&mut cwd, p.as_bytes_str()))
        {
            cwd.clear();
            cwd.push_str(parent.map_or("/", |p| p.cwd.as_str()));
        }
        let mut exepath = std::mem::take(&mut old.exepath);
        let mut container_id = std::mem::take(&mut old.container_id);
        // The lists the event repeats are shared with the thread's older
        // image or its parent (the usual case), not copied.
        let args = shared_list(pe.get(P::Args), [Some(&old.args), parent.map(|p| &p.args)]);
        let cgroups = shared_list(
            pe.get(P::Cgroups),
            [Some(&old.cgroups), parent.map(|p| &p.cgroups)],
        );
        let parent_ids = parent.as_ref().map(|p| (p.uid, p.gid));
        // The environment is shared with the parent, not copied.
        let env = parent.map(|p| p.env.clone()).unwrap_or_default();
        match &parent {
            Some(p) => exepath.clone_from(&p.exepath),
            None => exepath.clear(),
        }
        match parent {
            // The same cgroups name the same container: the parent's id
            // was found from them already (a scan of every cgroup path).
            Some(p) if cgroups.is_empty() || p.cgroups == cgroups => {
                container_id.clone_from(&p.container_id)
            }
            None if cgroups.is_empty() => {
                container_id.clear();
                container_id.push_str("host");
            }
            _ => container_id = container_id_from_cgroups(cgroups.iter()),
        }
        let mut t = Thread {
            tid: child_tid,
            comm,
            exe,
            args,
            cwd,
            uid: pe
                .int(P::Uid)
                .map(|v| v as u32)
                .or(parent_ids.map(|p| p.0))
                .unwrap_or(u32::MAX),
            gid: pe
                .int(P::Gid)
                .map(|v| v as u32)
                .or(parent_ids.map(|p| p.1))
                .unwrap_or(u32::MAX),
            vtid: pe.int(P::Vtid).unwrap_or(-1),
            vpid: pe.int(P::Vpid).unwrap_or(-1),
            cgroups,
            env,
            exepath,
            container_id,
            last_seen: ev.ts,
            loginuid: u32::MAX,
            sid: -1,
            vpgid: -1,
            pgid: -1,
            ..Thread::default()
        };
        if res == 0 {
            t.pid = pe.int(P::Pid).unwrap_or(child_tid);
            // A thread's parent is the thread that created it: in its own
            // process (whose main thread stands for it here).
            t.ptid = if is_thread {
                t.pid
            } else {
                pe.int(P::Ptid).unwrap_or(-1)
            };
        } else {
            let caller_pid = pe.int(P::Pid).unwrap_or(caller);
            if is_thread {
                t.pid = caller_pid;
                t.ptid = caller;
            } else {
                t.pid = child_tid;
                t.ptid = caller_pid;
            }
        }
        t.clone_ts = ev.ts;
        read_resources(&pe, &mut t);
        if let Some(p) = &parent {
            t.cap_inheritable = p.cap_inheritable;
            t.cap_permitted = p.cap_permitted;
            t.cap_effective = p.cap_effective;
            t.exe_upper_layer = p.exe_upper_layer;
            t.exe_lower_layer = p.exe_lower_layer;
            if t.pgid < 0 {
                t.pgid = p.pgid;
            }
            if t.pidns_init_start_ts == 0 {
                t.pidns_init_start_ts = p.pidns_init_start_ts;
            }
            t.exe_from_memfd = p.exe_from_memfd;
            t.exe_ino = p.exe_ino;
            t.exe_ino_ctime = p.exe_ino_ctime;
            t.exe_ino_mtime = p.exe_ino_mtime;
            t.loginuid = p.loginuid;
            t.sid = p.sid;
            t.vpgid = p.vpgid;
            t.tty = p.tty;
            t.exe_writable = p.exe_writable;
        }
        // A new process starts with a copy of its parent's fds; threads
        // share the table by pid.
        if t.pid == t.tid && !self.fds.contains_key(&t.pid) {
            let parent_pid = parent.as_ref().map(|p| p.pid).unwrap_or(t.ptid);
            if let Some(table) = self.fds.get(&parent_pid).cloned() {
                self.fds.insert(t.pid, table);
            }
        }
        // The new image goes into the old one's box: a clone allocates no
        // thread of its own when the id was known (or made here already).
        *old = t;
        self.insert_boxed_thread(old);
    }

    fn on_execve(&mut self, ev: &EventView<'_>) {
        let Some(&slots) = self.proc_slots.get(usize::from(ev.event_type)) else {
            return;
        };
        let pe = ProcEvent::new(ev, slots);
        let tid = ev.tid as i64;
        let enter_name = self
            .matching_enter(ev)
            .map(|e| e.name.clone())
            .filter(|n| !n.is_empty());
        // The thread is taken out and put back (insert_thread), not cloned
        // with its argument and environment lists.
        let known = self.threads.remove(&tid);
        if let Some(old) = &known {
            self.release_pid(old.pid);
        }
        let mut t = match known {
            Some(t) => t,
            None => {
                // First seen at its execve: take what the parent knows.
                let parent = pe.int(P::Ptid).and_then(|p| self.threads.get(&p));
                Box::new(Thread {
                    tid,
                    pid: tid,
                    uid: parent.map(|p| p.uid).unwrap_or(u32::MAX),
                    gid: parent.map(|p| p.gid).unwrap_or(u32::MAX),
                    loginuid: parent.map(|p| p.loginuid).unwrap_or(u32::MAX),
                    sid: parent.map(|p| p.sid).unwrap_or(-1),
                    vpgid: -1,
                    pgid: parent.map(|p| p.pgid).unwrap_or(-1),
                    vtid: -1,
                    vpid: -1,
                    container_id: parent
                        .map(|p| p.container_id.clone())
                        .unwrap_or_else(|| "host".into()),
                    cwd: parent.map_or_else(|| "/".into(), |p| p.cwd.clone()),
                    ..Thread::default()
                })
            }
        };
        if let Some(p) = pe.get(P::Exe) {
            assign_text(&mut t.exe, p.as_bytes_str());
        }
        if let Some(p) = pe.get(P::Args) {
            if !t.args.is_raw(p.bytes) {
                t.args = NulList::from_raw(p.bytes);
            }
        }
        if let Some(v) = pe.int(P::Pid) {
            t.pid = v;
        }
        if let Some(v) = pe.int(P::Ptid) {
            t.ptid = v;
        }
        // An empty cwd is one the driver did not give: exec keeps the
        // working directory, so the known one stays.
        if let Some(p) = pe.get(P::Cwd) {
            assign_dir(&mut t.cwd, p.as_bytes_str());
        }
        match pe.get(P::Comm) {
            Some(p) => assign_text(&mut t.comm, p.as_bytes_str()),
            None => t.comm = t.exe.rsplit('/').next().unwrap_or(&t.exe).to_string(),
        }
        // An empty list means the driver did not collect cgroups (ours does
        // not yet): keep the container the process was already known in.
        if let Some(p) = pe
            .get(P::Cgroups)
            .filter(|p| !p.bytes.strip_suffix(&[0]).unwrap_or(p.bytes).is_empty())
        {
            if !t.cgroups.is_raw(p.bytes) {
                let cgroups = NulList::from_raw(p.bytes);
                if cgroups != t.cgroups {
                    t.container_id = container_id_from_cgroups(cgroups.iter());
                }
                t.cgroups = cgroups;
            }
        }
        if let Some(v) = pe.int(P::Tty) {
            t.tty = v as u32;
        }
        if let Some(v) = pe.int(P::Vpgid) {
            t.vpgid = v;
        }
        if let Some(v) = pe.int(P::Loginuid) {
            t.loginuid = v as u32;
        }
        if let Some(v) = pe.int(P::Uid) {
            t.uid = v as u32;
        }
        if let Some(v) = pe.int(P::Gid) {
            t.gid = v as u32;
        }
        // Old drivers report neither the trusted path nor the enter
        // filename: the path is then unknown (argv[0] is not a path).
        match pe.get(P::TrustedExepath).map(|p| p.as_bytes_str()) {
            Some(raw) if !raw.is_empty() => assign_text(&mut t.exepath, raw),
            _ => {
                t.exepath = enter_name
                    .map(|n| resolve_path(&t.cwd, &n))
                    .unwrap_or_default()
            }
        }
        if let Some(v) = pe.uint(P::Flags) {
            let has = |flag| v & pe.flag_bit(flag) != 0;
            t.exe_writable = has(ProcFlag::ExeWritable);
            t.exe_upper_layer = has(ProcFlag::ExeUpperLayer);
            t.exe_lower_layer = has(ProcFlag::ExeLowerLayer);
            t.exe_from_memfd = has(ProcFlag::ExeFromMemfd);
        }
        if let Some(p) = pe.get(P::Env) {
            // Kept as the event's bytes, split when a field reads it.
            if !t.env.is_raw(p.bytes) {
                t.env = NulList::from_raw(p.bytes);
            }
        }
        if let Some(v) = pe.uint(P::CapInheritable) {
            t.cap_inheritable = v;
        }
        if let Some(v) = pe.uint(P::CapPermitted) {
            t.cap_permitted = v;
        }
        if let Some(v) = pe.uint(P::CapEffective) {
            t.cap_effective = v;
        }
        if let Some(v) = pe.uint(P::ExeIno) {
            t.exe_ino = v;
        }
        if let Some(v) = pe.uint(P::ExeInoCtime) {
            t.exe_ino_ctime = v;
        }
        if let Some(v) = pe.uint(P::ExeInoMtime) {
            t.exe_ino_mtime = v;
        }
        read_resources(&pe, &mut t);
        t.last_seen = ev.ts;
        let pid = t.pid;
        self.insert_boxed_thread(t);
        // A successful exec closes the fds opened with O_CLOEXEC
        // (PPM_O_CLOEXEC, bit 12).
        if let Some(table) = self.fds.get_mut(&pid) {
            table.retain(|_, f| f.open_flags & (1 << 12) == 0);
        }
    }

    fn on_open(&mut self, ev: &EventView<'_>, res: Option<i64>) {
        let Some(fd) = res.filter(|&r| r >= 0) else {
            return;
        };
        let name = self.spare_names.pop().unwrap_or_default();
        if let Some(f) = self.open_target(ev, name) {
            self.set_fd(ev.tid as i64, fd, f);
        }
    }

    /// The file an open-family exit event opened (or tried to open): the
    /// path resolved against its directory fd or the working directory,
    /// written into `name_buf` (emptied first).
    pub(super) fn open_target(&self, ev: &EventView<'_>, mut name_buf: String) -> Option<Fd> {
        let tid = ev.tid as i64;
        // Current drivers put every parameter in the exit: the enter, and
        // for an absolute path the directory, are looked up only when
        // needed (each is a hash lookup on every open).
        let enter = std::cell::OnceCell::new();
        let enter = || *enter.get_or_init(|| self.matching_enter(ev));
        let sl = self.slots.get(usize::from(ev.event_type))?;
        // An open's exit is read for up to six parameters: walk the
        // lengths once rather than once for each.
        let mut walked: [&[u8]; OPEN_PARAMS] = [&[]; OPEN_PARAMS];
        let walked_len = ev.param_slices(&mut walked);
        let param = |at: u8| walked_param(ev, &walked[..walked_len], at);
        let name: std::borrow::Cow<'_, str> = match param(sl.open_name) {
            Some(p) => decode(p.as_bytes_str()),
            None => std::borrow::Cow::Borrowed(enter()?.name.as_str()),
        };
        let flags = param(sl.flags)
            .and_then(|p| p.as_u64())
            .map(|v| v as u32)
            .or_else(|| enter().and_then(|e| e.flags))
            .unwrap_or(0);
        let full = if name.is_empty() {
            name_buf.clear();
            name_buf
        } else {
            let dir = if name.starts_with('/') {
                // Neither resolve_path nor through_proc_links reads it.
                ""
            } else {
                let dirfd = param(sl.dirfd)
                    .and_then(|p| p.as_i64())
                    .or_else(|| enter().and_then(|e| e.dirfd));
                let base = match dirfd {
                    Some(d) if d != -100 => self.fd(tid, d).map(|f| f.name.as_str()),
                    _ => None,
                };
                base.or_else(|| self.threads.get(&tid).map(|t| t.cwd.as_str()))
                    .unwrap_or("/")
            };
            match self.through_proc_links(tid, dir, &name) {
                Some(followed) => followed,
                None => {
                    resolve_path_into(&mut name_buf, dir, &name);
                    name_buf
                }
            }
        };
        let raw_name = (*name != *full).then(|| Box::from(name.as_ref()));
        // PPM_O_DIRECTORY (bit 10) in the PPM flag encoding.
        let is_dir = flags & (1 << 10) != 0;
        let kind = if is_dir {
            FdKind::Directory
        } else {
            FdKind::File
        };
        Some(Fd {
            kind,
            name: full,
            open_flags: flags | creat_layer_flags(param(sl.creat_flags)),
            server_side: false,
            sock_type: 0,
            sock_proto: 0,
            raw_name,
            dev: param(sl.dev).and_then(|p| p.as_u64()).unwrap_or(0) as u32,
            ino: param(sl.ino).and_then(|p| p.as_u64()).unwrap_or(0),
        })
    }

    /// The file a path through /proc/{self,thread-self,PID}/{cwd,root,fd/N}
    /// (or /dev/fd/N) reaches, from what the state knows of that directory
    /// or fd, with the rest of the path (`..` included) taken from there:
    /// such a path is a symlink the kernel follows, and an attacker's easy
    /// way around a rule on the file's name. Libsinsp keeps the path as
    /// given; here the file's own name is shown (fd.nameraw keeps the path
    /// given). None when the path goes through no such link.
    pub(super) fn through_proc_links(&self, tid: i64, dir: &str, path: &str) -> Option<String> {
        if !mentions_proc_or_fd(path) && !mentions_proc_or_fd(dir) {
            return None;
        }
        let mut parts: Vec<String> = Vec::new();
        if !path.starts_with('/') {
            parts.extend(dir.split('/').filter(|c| !c.is_empty()).map(str::to_string));
        }
        let mut followed = false;
        for comp in path.split('/') {
            match comp {
                "" | "." => continue,
                ".." => {
                    parts.pop();
                    continue;
                }
                c => parts.push(c.to_string()),
            }
            if let Some(target) = self.proc_link_target(tid, &parts) {
                parts = target
                    .split('/')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect();
                followed = true;
            }
        }
        followed.then(|| format!("/{}", parts.join("/")))
    }

    /// Where a /proc link named by these components points, if the state
    /// knows: cwd and root of a thread, a file or directory fd.
    fn proc_link_target(&self, tid: i64, parts: &[String]) -> Option<String> {
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let (who, link, fd) = match parts.as_slice() {
            ["dev", "fd", n] => ("self", "fd", Some(*n)),
            ["proc", who, link @ ("cwd" | "root")] => (*who, *link, None),
            ["proc", who, "fd", n] => (*who, "fd", Some(*n)),
            _ => return None,
        };
        let id = match who {
            "self" => self.pid_of(tid),
            "thread-self" => tid,
            n => n.parse::<i64>().ok()?,
        };
        match (link, fd) {
            ("cwd", _) => Some(self.threads.get(&id)?.cwd.clone()),
            ("root", _) => Some("/".to_string()),
            (_, Some(n)) => {
                let f = self.fd(id, n.parse::<i64>().ok()?)?;
                // Only files and directories have a path to stand for.
                let named = matches!(f.kind, FdKind::File | FdKind::Directory);
                (named && f.name.starts_with('/')).then(|| f.name.clone())
            }
            _ => None,
        }
    }

    fn on_dup(&mut self, ev: &EventView<'_>, res: Option<i64>) {
        let Some(newfd) = res.filter(|&r| r >= 0) else {
            return;
        };
        let tid = ev.tid as i64;
        let old = int(ev, "oldfd").or_else(|| self.matching_enter(ev).and_then(|e| e.fd));
        if let Some(f) = old.and_then(|o| self.fd(tid, o)).cloned() {
            self.set_fd(tid, newfd, f);
        }
    }

    fn on_socket(&mut self, ev: &EventView<'_>, res: Option<i64>) {
        let Some(fd) = res.filter(|&r| r >= 0) else {
            return;
        };
        let tid = ev.tid as i64;
        let enter_sock = self.matching_enter(ev).and_then(|e| e.sock);
        let domain = int(ev, "domain").or(enter_sock.map(|s| s.0));
        let ty = int(ev, "type").or(enter_sock.map(|s| s.1));
        let proto = int(ev, "proto").or(enter_sock.map(|s| s.2));
        // The transport shows only once the socket is used, as in Falco.
        let l4proto = l4::UNKNOWN;
        let unspecified4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let unspecified6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let kind = match domain.map(|d| d as u8) {
            Some(AF_INET) => FdKind::Ipv4Server {
                ip: unspecified4,
                port: 0,
                l4proto,
            },
            Some(AF_INET6) => FdKind::Ipv6Server {
                ip: unspecified6,
                port: 0,
                l4proto,
            },
            Some(AF_UNIX) => FdKind::Unix,
            Some(16) => FdKind::Netlink,
            _ => FdKind::Unknown,
        };
        let mut f = Fd::new(kind, String::new());
        f.sock_type = ty.unwrap_or(0) as u8;
        f.sock_proto = proto.unwrap_or(0) as u8;
        self.set_fd(tid, fd, f);
    }

    /// The transport of a socket being used: known, else from socket(2).
    fn used_l4(&self, tid: i64, fd: i64) -> (u8, u8, u8) {
        match self.fd(tid, fd) {
            Some(f) => {
                let known = f.l4proto().filter(|&p| p != l4::UNKNOWN);
                (
                    known.unwrap_or_else(|| fd::l4_from_socket(f.sock_type, f.sock_proto)),
                    f.sock_type,
                    f.sock_proto,
                )
            }
            None => (l4::TCP, 1, 0),
        }
    }

    /// The socket fd a tuple describes, keeping what is known of `fd`.
    pub(super) fn fd_from_tuple(&self, tid: i64, fd: i64, tuple: SockTuple<'_>) -> Option<Fd> {
        let (l4proto, sock_type, sock_proto) = self.used_l4(tid, fd);
        let mut f = match tuple {
            SockTuple::Inet {
                src,
                sport,
                dst,
                dport,
            } => {
                let name = fd::tuple_name(src, sport, dst, dport);
                let kind = if src.is_ipv4() {
                    FdKind::Ipv4 {
                        sip: src,
                        sport,
                        dip: dst,
                        dport,
                        l4proto,
                    }
                } else {
                    FdKind::Ipv6 {
                        sip: src,
                        sport,
                        dip: dst,
                        dport,
                        l4proto,
                    }
                };
                Fd::new(kind, name)
            }
            SockTuple::Unix { src, dst, path } => {
                Fd::new(FdKind::Unix, format!("{src:x}->{dst:x} {}", decode(path)))
            }
            SockTuple::Other(_) => return None,
        };
        f.sock_type = sock_type;
        f.sock_proto = sock_proto;
        Some(f)
    }

    fn update_socket_from_tuple(&mut self, tid: i64, fd: i64, tuple: SockTuple<'_>) {
        if let Some(f) = self.fd_from_tuple(tid, fd, tuple) {
            self.set_fd(tid, fd, f);
        }
    }

    fn on_connect(&mut self, ev: &EventView<'_>) {
        let tid = ev.tid as i64;
        // A failed connect leaves the socket as it was (in progress counts
        // as connecting).
        if ev.res().is_some_and(|r| r < 0 && r != -115) {
            return;
        }
        let Some(fd) = event_fd(self, ev) else { return };
        match ev.param_named("tuple").filter(|p| !p.bytes.is_empty()) {
            Some(p) => {
                if let Some(tuple) = p.as_socktuple() {
                    self.update_socket_from_tuple(tid, fd, tuple);
                }
            }
            // No tuple (a connected UDP socket, on some drivers): the
            // address the call was given names the peer, as libsinsp
            // falls back to it.
            None => self.connect_to_address(ev, tid, fd),
        }
    }

    /// A connect with no tuple: the peer from the exit's address, else
    /// the enter event's; the local end stays what it was.
    fn connect_to_address(&mut self, ev: &EventView<'_>, tid: i64, fd: i64) {
        let from_exit = ev.param_named("addr").and_then(|p| p.as_sockaddr());
        let addr = match from_exit {
            Some(a) => Some(a),
            None => self
                .matching_enter(ev)
                .and_then(|e| Param::sockaddr_of(&e.tuple)),
        };
        let Some(SockAddr::Inet(dip, dport)) = addr else {
            return;
        };
        let (local_ip, local_port) = match self.fd(tid, fd).map(|f| &f.kind) {
            Some(FdKind::Ipv4 { sip, sport, .. } | FdKind::Ipv6 { sip, sport, .. })
                if sip.is_ipv4() == dip.is_ipv4() =>
            {
                (*sip, *sport)
            }
            _ if dip.is_ipv4() => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            _ => (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        };
        let tuple = SockTuple::Inet {
            src: local_ip,
            sport: local_port,
            dst: dip,
            dport,
        };
        self.update_socket_from_tuple(tid, fd, tuple);
    }

    /// A datagram's tuple updates a socket with no tuple yet or a
    /// connectionless one, as libsinsp's read/write parsing does: the
    /// exit's tuple, else (older layouts) the enter event's. A tuple equal
    /// to the known one, either way round, changes nothing; a socket with
    /// no role yet takes one from whether the process is bound to the
    /// destination port; the tuple is then turned so the client end comes
    /// first.
    fn on_datagram(&mut self, ev: &EventView<'_>, incoming: bool) {
        let tid = ev.tid as i64;
        let Some(fd) = event_fd(self, ev) else { return };
        let Some(current) = self.fd(tid, fd) else {
            return;
        };
        let is_tcp = current.l4proto() == Some(l4::TCP);
        if !current.name.is_empty() && is_tcp {
            return;
        }
        let from_exit = ev.param_named("tuple").filter(|p| !p.bytes.is_empty());
        let tuple = match from_exit {
            Some(p) => p.as_socktuple(),
            None => self
                .matching_enter(ev)
                .filter(|e| !e.tuple.is_empty())
                .and_then(|e| Param::socktuple_of(&e.tuple)),
        };
        let Some(tuple) = tuple else { return };
        let owned;
        let tuple = match tuple {
            SockTuple::Inet {
                src,
                sport,
                dst,
                dport,
            } => {
                owned = (src, sport, dst, dport);
                owned
            }
            SockTuple::Unix { path, .. } => {
                let name = decode(path).into_owned();
                let mut f = Fd::new(FdKind::Unix, name);
                f.sock_type = current.sock_type;
                f.sock_proto = current.sock_proto;
                self.set_fd(tid, fd, f);
                return;
            }
            SockTuple::Other(_) => return,
        };
        let (src, sport, dst, dport) = tuple;
        let known = match current.kind {
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
            } => Some((sip, sport, dip, dport)),
            _ => None,
        };
        if known == Some((src, sport, dst, dport)) || known == Some((dst, dport, src, sport)) {
            return;
        }
        // The role: a socket already connected or accepted has one.
        let server = match known {
            Some(_) => current.server_side,
            None => self.bound_to_port(tid, dport) && !self.uses_client_port(tid, sport),
        };
        let turn = if incoming { !server } else { server };
        let (sip, sp, dip, dp) = if turn {
            (dst, dport, src, sport)
        } else {
            (src, sport, dst, dport)
        };
        let (mut l4proto, sock_type, sock_proto) = self.used_l4(tid, fd);
        if l4proto == l4::UNKNOWN {
            // A tuple that changes mid-way is not TCP's.
            l4proto = l4::UDP;
        }
        let kind = if sip.is_ipv4() {
            FdKind::Ipv4 {
                sip,
                sport: sp,
                dip,
                dport: dp,
                l4proto,
            }
        } else {
            FdKind::Ipv6 {
                sip,
                sport: sp,
                dip,
                dport: dp,
                l4proto,
            }
        };
        let mut f = Fd::new(kind, fd::tuple_name(sip, sp, dip, dp));
        f.sock_type = sock_type;
        f.sock_proto = sock_proto;
        f.server_side = server;
        self.set_fd(tid, fd, f);
    }

    /// Whether the process has a server socket bound to `port`.
    fn bound_to_port(&self, tid: i64, port: u16) -> bool {
        let Some(table) = self.fds.get(&self.pid_of(tid)) else {
            return false;
        };
        table.values().any(|f| {
            matches!(f.kind, FdKind::Ipv4Server { port: p, .. } | FdKind::Ipv6Server { port: p, .. } if p == port)
        })
    }

    /// Whether a connected socket of the process uses `port` as its client port.
    fn uses_client_port(&self, tid: i64, port: u16) -> bool {
        let Some(table) = self.fds.get(&self.pid_of(tid)) else {
            return false;
        };
        table.values().any(|f| {
            matches!(f.kind, FdKind::Ipv4 { sport, .. } | FdKind::Ipv6 { sport, .. } if sport == port)
        })
    }

    fn on_accept(&mut self, ev: &EventView<'_>, res: Option<i64>) {
        let Some(fd) = res.filter(|&r| r >= 0) else {
            return;
        };
        let tid = ev.tid as i64;
        if let Some(tuple) = ev.param_named("tuple").and_then(|p| p.as_socktuple()) {
            self.update_socket_from_tuple(tid, fd, tuple);
            let pid = self.pid_of(tid);
            if let Some(f) = self.fds.get_mut(&pid).and_then(|t| t.get_mut(&fd)) {
                f.server_side = true;
            }
        }
    }

    fn on_bind(&mut self, ev: &EventView<'_>, res: Option<i64>) {
        if res != Some(0) {
            return;
        }
        let tid = ev.tid as i64;
        let Some(fd) = event_fd(self, ev) else { return };
        // Binding to a port makes a server whose transport then shows;
        // binding to port 0 (a client choosing its address) does not.
        let addr = ev.param_named("addr").and_then(|p| p.as_sockaddr());
        let (mut l4proto, sock_type, sock_proto) = self.used_l4(tid, fd);
        if matches!(addr, Some(SockAddr::Inet(_, 0))) {
            l4proto = self
                .fd(tid, fd)
                .and_then(|f| f.l4proto())
                .unwrap_or(l4::UNKNOWN);
        }
        let mut f = match addr {
            Some(SockAddr::Inet(ip, port)) => {
                let kind = if ip.is_ipv4() {
                    FdKind::Ipv4Server { ip, port, l4proto }
                } else {
                    FdKind::Ipv6Server { ip, port, l4proto }
                };
                Fd::new(kind, format!("{ip}:{port}"))
            }
            Some(SockAddr::Unix(path)) => Fd::new(FdKind::Unix, decode(path).into_owned()),
            _ => return,
        };
        f.sock_type = sock_type;
        f.sock_proto = sock_proto;
        self.set_fd(tid, fd, f);
    }
}

#[cfg(test)]
mod tests {
    use super::mentions_proc_or_fd;

    #[test]
    fn mentions_proc_or_fd_as_a_substring_search_would() {
        let paths = [
            "",
            "/",
            "p",
            "f",
            "fd",
            "proc",
            "pro",
            "/proc/self/fd/3",
            "/dev/fd/0",
            "/home/u",
            "/prod/x",
            "/x/pr",
            "/x/pro",
            "/x/proc",
            "afdb",
            "/pprocc",
            "/ff",
            "/dd",
            "é/proc",
        ];
        for path in paths {
            let want = path.contains("proc") || path.contains("fd");
            assert_eq!(mentions_proc_or_fd(path), want, "{path:?}");
        }
    }
}
