//! System state rebuilt from events, like Falco's: a thread table, one fd
//! table per process, and the user and group names. Seeded from a
//! capture's tables (or a /proc scan on a live system), then kept current
//! by [`State::apply`] on every event.
//!
//! Memory is bounded: a thread that exits is purged (at the next event, so
//! the exit event itself still sees it) with its process's fds when it was
//! the last thread; the table holds at most `max_threads` threads, evicting
//! the least recently seen ones when full; and each process's fd table holds
//! at most `max_fds_per_process` fds. Both evictions are counted.
//!
//! libsinsp bounds the same tables (`falco_libs.thread_table_size`, and
//! 4096 fds per process) but refuses the new entry when full. Here the new
//! one is kept and an old one goes: otherwise whoever fills a table first
//! (a fork or open flood) leaves the next process or file it makes unnamed
//! to the rules.

pub mod containers;
pub mod fd;
pub mod procfs;
pub mod thread;
pub mod users;

mod apply;
mod proc_params;

use crate::event::render::Resolver;
use crate::fast_hash::FastMap;
use crate::scap::{Capture, FdEntry, FdInfo, ProcEntry};
pub use apply::state_event_names;
pub use fd::{Fd, FdKind};
pub use thread::{unknown_thread, NulList, Thread};
pub use users::Users;

/// Default limit of the thread table.
pub const DEFAULT_MAX_THREADS: usize = 131_072;

/// Default limit of one process's fd table: libsinsp's.
pub const DEFAULT_MAX_FDS_PER_PROCESS: usize = 4096;

/// A full table loses this fraction of its entries at once, so that the
/// scan for the oldest is paid once per many insertions, not per insertion.
const EVICTION_BATCH_DIVISOR: usize = 64;

/// What an enter event said that its exit event may need (old layouts
/// put the path, flags or fd of a syscall only in the enter event).
#[derive(Debug, Default, Clone)]
struct EnterInfo {
    event_type: u16,
    fd: Option<i64>,
    dirfd: Option<i64>,
    name: String,
    flags: Option<u32>,
    uid: Option<u32>,
    /// domain, type, protocol of a socket enter event.
    sock: Option<(i64, i64, i64)>,
    /// The tuple of a sendto/sendmsg enter event, or the address of a
    /// connect enter event (older layouts put them only there).
    tuple: Vec<u8>,
}

/// State changes that wait for the next event, so the event that causes
/// them still sees the old state (the exit of `close` still shows the fd).
#[derive(Debug, Clone, Copy)]
enum Deferred {
    RemoveThread(i64),
    CloseFd { pid: i64, fd: i64 },
}

/// A clone is a replica that stays equal to the original as long as both
/// apply the same events (the parallel evaluators each keep one).
#[derive(Debug, Clone)]
pub struct State {
    /// Boxed: the table's buckets hold a pointer each rather than a whole
    /// thread, so its memory follows the live threads, not its bucket
    /// count (a power of two, up to twice the threads held).
    threads: FastMap<i64, Box<Thread>>,
    /// Fd tables by process id: threads of a process share one.
    fds: FastMap<i64, FastMap<i64, Fd>>,
    /// Live threads per process id, so an exit knows when the process
    /// (and its fd table) is gone without scanning the table.
    threads_per_pid: FastMap<i64, u32>,
    enters: FastMap<i64, EnterInfo>,
    deferred: Vec<Deferred>,
    /// Names of closed fds, emptied, for the next opens to write into:
    /// an open flood then names its files without the allocator.
    spare_names: Vec<String>,
    handlers: Vec<apply::Handler>,
    slots: Vec<apply::Slots>,
    proc_slots: Vec<proc_params::ProcSlots>,
    pub users: Users,
    /// Container metadata from container events, by short id.
    pub containers: containers::Containers,
    /// Host name of the machine the events come from (`evt.hostname`).
    pub hostname: String,
    pub max_threads: usize,
    /// Threads dropped because the table was full.
    pub evicted: u64,
    pub max_fds_per_process: usize,
    /// Fds dropped because their process's table was full.
    pub fds_evicted: u64,
    /// Threads removed because they exited.
    pub purged: u64,
    /// The thread of the latest event and that event's time, not yet
    /// written to the thread's `last_seen`: events of one thread mostly
    /// follow each other, so the thread table is looked up when the
    /// thread changes rather than for every event.
    recent: Option<(i64, u64)>,
    /// Times of the first event, the latest and the one before it
    /// (`evt.reltime`, `evt.deltatime`).
    pub first_ts: u64,
    pub latest_ts: u64,
    pub previous_ts: u64,
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

impl State {
    pub fn new() -> State {
        State {
            threads: FastMap::default(),
            fds: FastMap::default(),
            threads_per_pid: FastMap::default(),
            enters: FastMap::default(),
            deferred: Vec::new(),
            spare_names: Vec::new(),
            handlers: apply::handler_table(),
            slots: apply::slots_table(),
            proc_slots: proc_params::proc_slots_table(),
            users: Users::default(),
            containers: containers::Containers::default(),
            hostname: String::new(),
            max_threads: DEFAULT_MAX_THREADS,
            evicted: 0,
            max_fds_per_process: DEFAULT_MAX_FDS_PER_PROCESS,
            fds_evicted: 0,
            purged: 0,
            recent: None,
            first_ts: 0,
            latest_ts: 0,
            previous_ts: 0,
        }
    }

    /// A state seeded from a capture's process, fd and user tables.
    pub fn from_capture(cap: &Capture) -> State {
        let mut s = State::new();
        for p in &cap.processes {
            s.insert_thread(thread_from_proc(p));
        }
        for f in &cap.fds {
            s.seed_fd(f);
        }
        s.users = Users::from_capture(&cap.users, &cap.groups);
        s.hostname = cap
            .machine
            .as_ref()
            .map(|m| m.hostname.clone())
            .unwrap_or_default();
        s
    }

    fn seed_fd(&mut self, f: &FdEntry) {
        let pid = self.threads.get(&f.tid).map(|t| t.pid).unwrap_or(f.tid);
        let fd = fd_from_entry(f);
        self.insert_fd(pid, f.fd, fd);
    }

    /// Sets fd `fd` of process `pid`, making room in a full table.
    pub fn insert_fd(&mut self, pid: i64, fd: i64, f: Fd) {
        let max = self.max_fds_per_process.max(1);
        let table = self.fds.entry(pid).or_default();
        if table.len() >= max && !table.contains_key(&fd) {
            // Which fds go does not matter to correctness (any may be the
            // next one used); what matters is that the one being set stays.
            let batch = (max / EVICTION_BATCH_DIVISOR).max(1);
            let victims: Vec<i64> = table
                .keys()
                .copied()
                .filter(|&k| k != fd)
                .take(batch)
                .collect();
            for victim in &victims {
                table.remove(victim);
            }
            self.fds_evicted += victims.len() as u64;
        }
        table.insert(fd, f);
    }

    pub fn thread(&self, tid: i64) -> Option<&Thread> {
        self.threads.get(&tid).map(|t| &**t)
    }

    pub fn thread_count(&self) -> usize {
        self.threads.len()
    }

    pub fn threads(&self) -> impl Iterator<Item = &Thread> {
        self.threads.values().map(|t| &**t)
    }

    /// The parent of a thread (by its ptid).
    pub fn parent(&self, t: &Thread) -> Option<&Thread> {
        if t.ptid == t.tid || t.ptid <= 0 {
            return None;
        }
        self.threads.get(&t.ptid).map(|p| &**p)
    }

    /// The main thread of a thread's process (the thread itself when the
    /// main thread is unknown).
    pub fn main_thread<'s>(&'s self, t: &'s Thread) -> &'s Thread {
        if t.tid == t.pid {
            return t;
        }
        self.threads.get(&t.pid).map_or(t, |main| &**main)
    }

    /// Ancestor processes of a thread's process, nearest first, stopping
    /// at loops.
    pub fn ancestors<'s>(&'s self, t: &'s Thread) -> impl Iterator<Item = &'s Thread> + 's {
        let start = self.main_thread(t);
        let mut cur = Some(start);
        let mut steps = 0usize;
        std::iter::from_fn(move || {
            let next = self.main_thread(self.parent(cur?)?);
            steps += 1;
            if steps > 64 || next.tid == start.tid {
                return None;
            }
            cur = Some(next);
            Some(next)
        })
    }

    /// The fd `fd` of the process thread `tid` belongs to.
    pub fn fd(&self, tid: i64, fd: i64) -> Option<&Fd> {
        let pid = self.threads.get(&tid).map(|t| t.pid).unwrap_or(tid);
        self.fds.get(&pid)?.get(&fd)
    }

    /// Live threads of process `pid`.
    pub fn threads_of(&self, pid: i64) -> u64 {
        self.threads_per_pid.get(&pid).map_or(0, |&n| u64::from(n))
    }

    pub fn fds_of(&self, pid: i64) -> Option<&FastMap<i64, Fd>> {
        self.fds.get(&pid)
    }

    /// Every process's fd table, by pid.
    pub fn fd_tables(&self) -> impl Iterator<Item = (i64, &FastMap<i64, Fd>)> {
        self.fds.iter().map(|(pid, table)| (*pid, table))
    }

    pub fn insert_thread(&mut self, t: Thread) {
        self.insert_boxed_thread(Box::new(t));
    }

    /// [`State::insert_thread`] for a thread already in its box (one
    /// taken out of the table and changed keeps its allocation).
    pub(crate) fn insert_boxed_thread(&mut self, t: Box<Thread>) {
        if !self.threads.contains_key(&t.tid) && self.threads.len() >= self.max_threads.max(1) {
            self.evict_oldest();
        }
        let pid = t.pid;
        self.containers.saw(&t.container_id, t.tid);
        if let Some(old) = self.threads.insert(t.tid, t) {
            self.release_pid(old.pid);
        }
        *self.threads_per_pid.entry(pid).or_insert(0) += 1;
    }

    /// One thread of `pid` is gone; its fd table goes with the last one.
    fn release_pid(&mut self, pid: i64) {
        if let Some(n) = self.threads_per_pid.get_mut(&pid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.threads_per_pid.remove(&pid);
            }
        }
    }

    /// Notes that thread `tid` had an event at `ts`.
    #[inline]
    pub(crate) fn seen(&mut self, tid: i64, ts: u64) {
        match &mut self.recent {
            Some((recent, at)) if *recent == tid => *at = ts,
            _ => self.switch_recent(tid, ts),
        }
    }

    /// Another thread's event: the time kept aside goes to its thread.
    #[cold]
    fn switch_recent(&mut self, tid: i64, ts: u64) {
        self.write_recent();
        self.recent = Some((tid, ts));
    }

    /// Writes the time kept aside to its thread. Never backwards: the
    /// thread may have been (re)created after the events kept aside.
    fn write_recent(&mut self) {
        if let Some((tid, ts)) = self.recent {
            if let Some(t) = self.threads.get_mut(&tid) {
                t.last_seen = t.last_seen.max(ts);
            }
        }
    }

    /// Time of the last event of thread `tid` (its `last_seen`, counting
    /// the events of the latest thread, which are written to it later).
    pub fn last_seen(&self, tid: i64) -> Option<u64> {
        let t = self.threads.get(&tid)?;
        Some(match self.recent {
            Some((recent, ts)) if recent == tid => t.last_seen.max(ts),
            _ => t.last_seen,
        })
    }

    /// Threads with no event since `before` (event time): what a live
    /// purge checks against the system.
    pub fn idle_threads(&self, before: u64) -> Vec<i64> {
        self.threads
            .values()
            .filter(|t| self.last_seen(t.tid).unwrap_or(t.last_seen) < before)
            .map(|t| t.tid)
            .collect()
    }

    /// Drops a thread the system no longer has (its exit never came, as
    /// when events were lost), with its process's fds if it was the last
    /// thread. Counted with the exited ones; false if it was not known.
    pub fn purge_thread(&mut self, tid: i64) -> bool {
        if !self.threads.contains_key(&tid) {
            return false;
        }
        self.remove_thread(tid);
        self.purged += 1;
        true
    }

    /// Makes room in a full thread table: the least recently seen
    /// threads go, a batch at a time.
    fn evict_oldest(&mut self) {
        self.write_recent();
        let batch = (self.max_threads / EVICTION_BATCH_DIVISOR).max(1);
        let mut ages: Vec<(u64, i64)> = self
            .threads
            .values()
            .map(|t| (t.last_seen, t.tid))
            .collect();
        if ages.len() > batch {
            ages.select_nth_unstable(batch - 1);
            ages.truncate(batch);
        }
        for (_, tid) in ages {
            self.remove_thread(tid);
            self.evicted += 1;
        }
    }

    fn remove_thread(&mut self, tid: i64) {
        if self.recent.is_some_and(|(recent, _)| recent == tid) {
            // Its events are not a later thread's of the same id.
            self.recent = None;
        }
        if let Some(t) = self.threads.remove(&tid) {
            self.enters.remove(&tid);
            self.release_pid(t.pid);
            if !self.threads_per_pid.contains_key(&t.pid) {
                self.fds.remove(&t.pid);
            }
        }
    }

    /// The fd an event refers to: the new fd of a successful fd-creating
    /// exit, else its `fd` parameter, else the `fd` of its enter event.
    pub fn event_fd(&self, ev: &crate::event::EventView<'_>) -> Option<i64> {
        apply::event_fd(self, ev)
    }

    /// Whether the event is the exit of an open-family syscall (open,
    /// openat, openat2, creat, open_by_handle_at): the handler table marks
    /// them, so no name is compared.
    pub fn is_open_exit(&self, ev: &crate::event::EventView<'_>) -> bool {
        self.handlers.get(usize::from(ev.event_type)) == Some(&apply::Handler::Open)
    }

    /// The event's `flags` parameter, found without comparing names.
    pub fn event_flags(&self, ev: &crate::event::EventView<'_>) -> Option<u64> {
        apply::event_flags(self, ev)
    }

    /// The fd an event refers to with what the state knows of it. A failed
    /// open has fd -1 and the file it tried to open, so rules can match the
    /// path of failed opens as Falco's do. The fields of an event ask it
    /// once, through their [`crate::syscall_fields::SyscallEvent`].
    pub fn event_fd_info(
        &self,
        ev: &crate::event::EventView<'_>,
    ) -> Option<(i64, std::borrow::Cow<'_, Fd>)> {
        if self.is_open_exit(ev) {
            // The open family's exits start with the fd they made: their
            // result is the fd, or the error of a failed open.
            match ev.res() {
                Some(r) if r < 0 => {
                    return self
                        .open_target(ev, String::new())
                        .map(|f| (-1, std::borrow::Cow::Owned(f)));
                }
                Some(n) => {
                    return Some((n, std::borrow::Cow::Borrowed(self.fd(ev.tid as i64, n)?)));
                }
                None => {}
            }
        }
        let n = self.event_fd(ev)?;
        // A failed connect shows the tuple it tried, without keeping it.
        let connect_exit =
            self.handlers.get(usize::from(ev.event_type)) == Some(&apply::Handler::Connect);
        if connect_exit && ev.res().is_some_and(|r| r < 0 && r != -115) {
            if let Some(t) = ev.param_named("tuple").and_then(|p| p.as_socktuple()) {
                if let Some(f) = self.fd_from_tuple(ev.tid as i64, n, t) {
                    return Some((n, std::borrow::Cow::Owned(f)));
                }
            }
        }
        Some((n, std::borrow::Cow::Borrowed(self.fd(ev.tid as i64, n)?)))
    }

    /// The path the enter event of this exit named (first-version exits
    /// of mkdir, unlink and the like carry none of their own).
    pub fn enter_name(&self, ev: &crate::event::EventView<'_>) -> Option<&str> {
        let e = self.enters.get(&(ev.tid as i64))?;
        (e.event_type.wrapping_add(1) == ev.event_type && !e.name.is_empty())
            .then_some(e.name.as_str())
    }

    /// A resolver for rendering parameters of an event of thread `tid`.
    pub fn resolver(&self, tid: i64) -> StateResolver<'_> {
        StateResolver { state: self, tid }
    }
}

/// Renders fds and pids with the names the state knows.
pub struct StateResolver<'s> {
    state: &'s State,
    tid: i64,
}

impl Resolver for StateResolver<'_> {
    fn fd_label(&self, fd: i64) -> Option<(String, String)> {
        let f = self.state.fd(self.tid, fd)?;
        let mut label = f.typechar().to_string();
        if let Some(letter) = f.l4proto().and_then(fd::l4proto_letter) {
            label.push(letter);
        }
        Some((label, f.name.clone()))
    }
    fn comm_of(&self, tid: i64) -> Option<String> {
        Some(self.state.thread(tid)?.comm.clone())
    }
}

/// Adds the trailing '/' Falco keeps on working directories.
pub(crate) fn with_slash(mut dir: String) -> String {
    if !dir.ends_with('/') {
        dir.push('/');
    }
    dir
}

fn thread_from_proc(p: &ProcEntry) -> Thread {
    Thread {
        tid: p.tid,
        pid: p.pid,
        ptid: p.ptid,
        sid: p.sid,
        vpgid: p.vpgid,
        comm: p.comm.clone(),
        exe: p.exe.clone(),
        exepath: p.exepath.clone(),
        args: NulList::from_strings(&p.args),
        cwd: with_slash(p.cwd.clone()),
        uid: p.uid,
        gid: p.gid,
        loginuid: p.loginuid,
        tty: p.tty,
        vtid: p.vtid,
        vpid: p.vpid,
        exe_writable: p.exe_writable,
        container_id: thread::container_id_from_cgroups(&p.cgroups),
        cgroups: NulList::from_strings(&p.cgroups),
        env: NulList::from_strings(&p.env),
        cap_inheritable: p.cap_inheritable,
        cap_permitted: p.cap_permitted,
        cap_effective: p.cap_effective,
        exe_upper_layer: p.exe_upper_layer,
        exe_from_memfd: p.exe_from_memfd,
        exe_ino: p.exe_ino,
        exe_ino_ctime: p.exe_ino_ctime,
        exe_ino_mtime: p.exe_ino_mtime,
        exe_lower_layer: false,
        pgid: -1,
        fdlimit: p.fdlimit as i64,
        vmsize_kb: p.vmsize_kb,
        vmrss_kb: p.vmrss_kb,
        vmswap_kb: p.vmswap_kb,
        pfmajor: p.pfmajor,
        pfminor: p.pfminor,
        pidns_init_start_ts: p.pidns_init_start_ts,
        clone_ts: 0,
        procinfo_cpu: [None, None],
        last_seen: 0,
    }
}

fn fd_from_entry(f: &FdEntry) -> Fd {
    use crate::scap::tables::fd_type as t;
    match &f.info {
        FdInfo::Ipv4Sock {
            sip,
            dip,
            sport,
            dport,
            l4proto,
        } => Fd::new(
            FdKind::Ipv4 {
                sip: *sip,
                sport: *sport,
                dip: *dip,
                dport: *dport,
                l4proto: *l4proto,
            },
            fd::tuple_name(*sip, *sport, *dip, *dport),
        ),
        FdInfo::Ipv6Sock {
            sip,
            dip,
            sport,
            dport,
            l4proto,
        } => Fd::new(
            FdKind::Ipv6 {
                sip: *sip,
                sport: *sport,
                dip: *dip,
                dport: *dport,
                l4proto: *l4proto,
            },
            fd::tuple_name(*sip, *sport, *dip, *dport),
        ),
        FdInfo::Ipv4ServSock { ip, port, l4proto } => Fd::new(
            FdKind::Ipv4Server {
                ip: *ip,
                port: *port,
                l4proto: *l4proto,
            },
            format!("{ip}:{port}"),
        ),
        FdInfo::Ipv6ServSock { ip, port, l4proto } => Fd::new(
            FdKind::Ipv6Server {
                ip: *ip,
                port: *port,
                l4proto: *l4proto,
            },
            format!("{ip}:{port}"),
        ),
        FdInfo::UnixSock { name, .. } => Fd::new(FdKind::Unix, name.clone()),
        FdInfo::File {
            open_flags,
            name,
            dev,
        } => Fd {
            kind: FdKind::File,
            name: name.clone(),
            open_flags: *open_flags,
            server_side: false,
            sock_type: 0,
            sock_proto: 0,
            raw_name: None,
            dev: *dev,
            ino: f.ino,
        },
        FdInfo::Named { name } => {
            let kind = match f.fd_type {
                t::FILE => FdKind::File,
                t::DIRECTORY => FdKind::Directory,
                t::FIFO => FdKind::Pipe,
                t::EVENT => FdKind::Event,
                t::SIGNALFD => FdKind::SignalFd,
                t::EVENTPOLL => FdKind::EventPoll,
                t::INOTIFY => FdKind::Inotify,
                t::TIMERFD => FdKind::TimerFd,
                t::NETLINK => FdKind::Netlink,
                t::BPF => FdKind::Bpf,
                t::USERFAULTFD => FdKind::UserFaultFd,
                t::IOURING => FdKind::IoUring,
                t::MEMFD => FdKind::MemFd,
                t::PIDFD => FdKind::PidFd,
                _ => FdKind::Unknown,
            };
            Fd::new(kind, name.clone())
        }
    }
}

/// Whether a path is absolute with no empty, `.` or `..` segment and no
/// trailing slash: what [`resolve_path`] would give back unchanged.
fn is_clean_absolute(p: &[u8]) -> bool {
    if p.len() < 2 || p[0] != b'/' || p[p.len() - 1] == b'/' {
        return false;
    }
    // Only a slash followed by a slash or a dot can make a path unclean.
    // This test of every pair, without an early exit, vectorises; most
    // paths pass it and skip the exact walk below.
    let mut suspect = false;
    for w in p.windows(2) {
        suspect |= (w[0] == b'/') & ((w[1] == b'/') | (w[1] == b'.'));
    }
    if !suspect {
        return true;
    }
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'/' {
            let next = p.get(i + 1).copied();
            if next == Some(b'/') {
                return false;
            }
            if next == Some(b'.') {
                let after = p.get(i + 2).copied();
                let dotdot = after == Some(b'.') && matches!(p.get(i + 3), None | Some(b'/'));
                if matches!(after, None | Some(b'/')) || dotdot {
                    return false;
                }
            }
        }
        i += 1;
    }
    true
}

/// Joins a possibly relative path to a directory and removes `.`, `..`
/// and repeated slashes, as Falco shows file names.
pub fn resolve_path(dir: &str, path: &str) -> String {
    let mut out = String::new();
    resolve_path_into(&mut out, dir, path);
    out
}

/// [`resolve_path`] written over `out`, whose allocation it keeps.
pub fn resolve_path_into(out: &mut String, dir: &str, path: &str) {
    out.clear();
    // Most paths are already absolute and clean: copied as they are.
    if is_clean_absolute(path.as_bytes()) {
        out.push_str(path);
        return;
    }
    out.reserve(dir.len() + path.len() + 1);
    if !path.starts_with('/') {
        push_segments(out, dir);
    }
    push_segments(out, path);
    if out.is_empty() {
        out.push('/');
    }
}

/// Appends the segments of `path` to `out` (`/` and the segments so far),
/// leaving out empty and `.` segments and taking `..` back, in one pass:
/// the relative paths of a build, each joined to its directory, go
/// through here.
fn push_segments(out: &mut String, path: &str) {
    let mut rest = path;
    while !rest.is_empty() {
        let (segment, next) = match rest.bytes().position(|b| b == b'/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        rest = next;
        match segment {
            "" | "." => {}
            ".." => {
                let parent = out.rfind('/').unwrap_or(0);
                out.truncate(parent);
            }
            _ => {
                out.push('/');
                out.push_str(segment);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths_are_the_ones_normalizing_keeps() {
        // Every path of up to 7 characters from '/', '.' and 'a'.
        let mut paths = vec![String::new()];
        for _ in 0..7 {
            let longer: Vec<String> = paths
                .iter()
                .flat_map(|p| ['/', '.', 'a'].map(|c| format!("{p}{c}")))
                .collect();
            for p in &longer {
                // The fast path takes every path normalizing keeps but
                // "/" (which it leaves to the general path), and no other.
                let kept = resolve_path("/", p) == *p && p.len() > 1;
                assert_eq!(is_clean_absolute(p.as_bytes()), kept, "{p:?}");
            }
            paths = longer;
        }
    }

    /// The path a directory and a path name, as Falco shows it: the two
    /// joined, then empty and `.` segments dropped and `..` taken back.
    fn joined_then_normalized(dir: &str, path: &str) -> String {
        let full = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{dir}/{path}")
        };
        let mut parts: Vec<&str> = Vec::new();
        for segment in full.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                s => parts.push(s),
            }
        }
        if parts.is_empty() {
            return "/".into();
        }
        parts.iter().map(|p| format!("/{p}")).collect()
    }

    #[test]
    fn resolving_in_one_pass_is_joining_then_normalizing() {
        // Every directory and path of up to 5 characters from '/', '.', 'a'.
        let mut words = vec![String::new()];
        let mut all = vec![String::new()];
        for _ in 0..5 {
            words = words
                .iter()
                .flat_map(|w| ['/', '.', 'a'].map(|c| format!("{w}{c}")))
                .collect();
            all.extend(words.iter().cloned());
        }
        for dir in &all {
            for path in &all {
                assert_eq!(
                    resolve_path(dir, path),
                    joined_then_normalized(dir, path),
                    "{dir:?} + {path:?}"
                );
            }
        }
    }

    #[test]
    fn resolves_relative_paths() {
        assert_eq!(resolve_path("/home/u/", "a/../b/./c"), "/home/u/b/c");
        assert_eq!(resolve_path("/x", "/etc//passwd"), "/etc/passwd");
        assert_eq!(resolve_path("/", ".."), "/");
        assert_eq!(resolve_path("/x", "/etc/passwd"), "/etc/passwd");
        assert_eq!(resolve_path("/x", "/etc/"), "/etc");
        assert_eq!(resolve_path("/x", "/etc/./a/.."), "/etc");
        assert_eq!(resolve_path("/x", "/"), "/");
        assert_eq!(resolve_path("/x", "/a/..b/.c/..."), "/a/..b/.c/...");
        assert_eq!(resolve_path("/x", "/a/."), "/a");
        assert_eq!(resolve_path("/x", "/a/b/.."), "/a");
        assert_eq!(resolve_path("/x", "/a//b"), "/a/b");
        assert_eq!(resolve_path("/x", "/."), "/");
    }

    #[test]
    fn evicts_oldest_thread_when_full() {
        let mut s = State::new();
        s.max_threads = 2;
        for tid in 1..=3 {
            s.insert_thread(Thread {
                tid,
                pid: tid,
                last_seen: tid as u64,
                ..Thread::default()
            });
        }
        assert_eq!(s.thread_count(), 2);
        assert_eq!(s.evicted, 1);
        assert!(s.thread(1).is_none());
        assert!(s.thread(3).is_some());
    }

    #[test]
    fn a_full_thread_table_evicts_its_oldest_in_one_batch_and_counts_them() {
        let mut s = State::new();
        s.max_threads = 640; // batches of 10
        for tid in 1..=641 {
            s.insert_thread(Thread {
                tid,
                pid: tid,
                // Seen in reverse order: the low tids are the newest.
                last_seen: 10_000 - tid as u64,
                ..Thread::default()
            });
        }
        assert_eq!(s.evicted, 10);
        assert_eq!(s.thread_count(), 631);
        assert!((631..=640).all(|tid| s.thread(tid).is_none()));
        assert!(s.thread(641).is_some(), "the new thread stays");
        assert!(s.thread(1).is_some() && s.thread(630).is_some());
        // Room was made for a batch: the next nine cost no eviction.
        for tid in 642..=650 {
            s.insert_thread(Thread {
                tid,
                pid: tid,
                ..Thread::default()
            });
        }
        assert_eq!((s.evicted, s.thread_count()), (10, 640));
    }

    #[test]
    fn a_full_fd_table_keeps_the_new_fd_and_counts_what_it_drops() {
        let mut s = State::new();
        s.max_fds_per_process = 128; // batches of 2
        for fd in 0..1000 {
            s.insert_fd(7, fd, Fd::new(FdKind::File, format!("/tmp/f{fd}")));
            assert!(s.fds_of(7).is_some_and(|t| t.contains_key(&fd)));
        }
        let kept = s.fds_of(7).map_or(0, |t| t.len());
        assert!(kept <= 128, "{kept} fds kept");
        assert_eq!(s.fds_evicted, 1000 - kept as u64);
        // Setting an fd already in a full table evicts nothing.
        let before = s.fds_evicted;
        s.insert_fd(7, 999, Fd::new(FdKind::File, "/tmp/again".into()));
        assert_eq!(s.fds_evicted, before);
        // Another process's table has its own bound.
        s.insert_fd(8, 3, Fd::new(FdKind::File, "/tmp/other".into()));
        assert_eq!(s.fds_of(8).map(|t| t.len()), Some(1));
    }

    #[test]
    fn idle_threads_are_found_and_purged_with_their_fds() {
        let mut s = State::new();
        for (tid, pid, seen) in [(1, 1, 100), (2, 1, 900), (3, 3, 50)] {
            s.insert_thread(Thread {
                tid,
                pid,
                last_seen: seen,
                ..Thread::default()
            });
        }
        s.insert_fd(3, 4, Fd::new(FdKind::File, "/tmp/x".into()));
        let mut idle = s.idle_threads(500);
        idle.sort_unstable();
        assert_eq!(idle, [1, 3]);
        assert!(s.purge_thread(3));
        assert!(!s.purge_thread(3));
        assert!(s.fds_of(3).is_none(), "the last thread took its fds");
        assert!(s.purge_thread(1));
        assert_eq!(s.threads_of(1), 1, "thread 2 of process 1 stays");
        assert_eq!((s.purged, s.thread_count()), (2, 1));
    }

    /// A generic exit (no state change) of thread `tid` at `ts`.
    fn generic_exit(tid: u64, ts: u64) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&ts.to_le_bytes());
        r.extend_from_slice(&tid.to_le_bytes());
        r.extend_from_slice(&(crate::event::view::HEADER_LEN as u32).to_le_bytes());
        r.extend_from_slice(&1u16.to_le_bytes());
        r.extend_from_slice(&0u32.to_le_bytes());
        r
    }

    #[test]
    fn eviction_counts_the_latest_events_of_the_current_thread() {
        let mut s = State::new();
        s.max_threads = 2;
        for tid in 1..=2 {
            s.insert_thread(Thread {
                tid,
                pid: tid,
                last_seen: tid as u64,
                ..Thread::default()
            });
        }
        // Thread 1 is now the most recently seen, though its time is kept
        // aside while its events follow each other.
        for ts in [100, 101] {
            let raw = generic_exit(1, ts);
            s.apply(&crate::event::EventView::parse(&raw).unwrap());
        }
        assert_eq!(s.last_seen(1), Some(101));
        assert_eq!(s.last_seen(2), Some(2));
        s.insert_thread(Thread {
            tid: 3,
            pid: 3,
            last_seen: 102,
            ..Thread::default()
        });
        assert!(s.thread(2).is_none(), "the least recently seen goes");
        assert!(s.thread(1).is_some());
        assert_eq!(s.thread(1).map(|t| t.last_seen), Some(101));
        // A thread removed and created again does not go back in time.
        s.remove_thread(1);
        s.insert_thread(Thread {
            tid: 1,
            pid: 1,
            last_seen: 200,
            ..Thread::default()
        });
        let raw = generic_exit(3, 150);
        s.apply(&crate::event::EventView::parse(&raw).unwrap());
        assert_eq!(s.last_seen(1), Some(200));
    }
}
