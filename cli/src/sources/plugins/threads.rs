//! Peregrine's thread table, offered to plugins as libsinsp offers its
//! own: a table named `threads`, keyed by tid (int64), whose static fields
//! carry libsinsp's names and types and are read-only, with the `args`,
//! `env` and `cgroups` subtables (keyed by index, uint64), and whatever
//! fields plugins add, which they write per thread.
//!
//! The table reads the state of the event being extracted or parsed: the
//! loop that evaluates an event lends its state for the length of the
//! plugin call ([`with_state`]). Outside such a call (a plugin's own
//! source, a routine) the table is empty, as in Falco, where a plugin
//! source's inspector has no threads.
//!
//! Entries and field handles are opaque numbers, not pointers: a plugin
//! holds them without a release call, and the SDKs do not all make one.
//! Subtable handles are real (the SDKs read the key type through them),
//! kept per thread and dropped with the threads that are gone.
//!
//! `file_descriptors`, libsinsp's per-thread fd table (int64 fd key), is
//! offered with the static fields of libsinsp's fd info.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::sync::{Mutex, MutexGuard, Once};

use falco_plugin_api as api;
use std::net::IpAddr;

use peregrine_engine::state::{Fd, FdKind, NulList, State, Thread};

type StateType = api::ss_plugin_state_type;
const INT8: StateType = api::ss_plugin_state_type_SS_PLUGIN_ST_INT8;
const INT16: StateType = api::ss_plugin_state_type_SS_PLUGIN_ST_INT16;
const INT32: StateType = api::ss_plugin_state_type_SS_PLUGIN_ST_INT32;
const INT64: StateType = api::ss_plugin_state_type_SS_PLUGIN_ST_INT64;
const UINT8: StateType = api::ss_plugin_state_type_SS_PLUGIN_ST_UINT8;
const UINT16: StateType = api::ss_plugin_state_type_SS_PLUGIN_ST_UINT16;
const UINT32: StateType = api::ss_plugin_state_type_SS_PLUGIN_ST_UINT32;
const UINT64: StateType = api::ss_plugin_state_type_SS_PLUGIN_ST_UINT64;
const STRING: StateType = api::ss_plugin_state_type_SS_PLUGIN_ST_STRING;
const TABLE: StateType = api::ss_plugin_state_type_SS_PLUGIN_ST_TABLE;
const BOOL: StateType = api::ss_plugin_state_type_SS_PLUGIN_ST_BOOL;

const SUCCESS: api::ss_plugin_rc = api::ss_plugin_rc_SS_PLUGIN_SUCCESS;
const FAILURE: api::ss_plugin_rc = api::ss_plugin_rc_SS_PLUGIN_FAILURE;

pub const TABLE_NAME: &CStr = c"threads";

/// The thread fields libsinsp defines statically, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Static {
    Tid,
    Pid,
    Ptid,
    ReaperTid,
    Sid,
    Comm,
    Exe,
    ExePath,
    ExeWritable,
    ExeUpperLayer,
    ExeLowerLayer,
    ExeFromMemfd,
    Args,
    Env,
    Cgroups,
    Flags,
    FdLimit,
    Uid,
    Gid,
    Loginuid,
    ExeIno,
    ExeInoCtime,
    ExeInoMtime,
    Vtid,
    Vpid,
    Vpgid,
    Pgid,
    PidnsInitStartTs,
    Root,
    Tty,
    Cwd,
    FileDescriptors,
}

const STATIC: &[(&CStr, StateType, Static)] = &[
    (c"tid", INT64, Static::Tid),
    (c"pid", INT64, Static::Pid),
    (c"ptid", INT64, Static::Ptid),
    (c"reaper_tid", INT64, Static::ReaperTid),
    (c"sid", INT64, Static::Sid),
    (c"comm", STRING, Static::Comm),
    (c"exe", STRING, Static::Exe),
    (c"exe_path", STRING, Static::ExePath),
    (c"exe_writable", BOOL, Static::ExeWritable),
    (c"exe_upper_layer", BOOL, Static::ExeUpperLayer),
    (c"exe_lower_layer", BOOL, Static::ExeLowerLayer),
    (c"exe_from_memfd", BOOL, Static::ExeFromMemfd),
    (c"args", TABLE, Static::Args),
    (c"env", TABLE, Static::Env),
    (c"cgroups", TABLE, Static::Cgroups),
    (c"flags", UINT32, Static::Flags),
    (c"fd_limit", INT64, Static::FdLimit),
    (c"uid", UINT32, Static::Uid),
    (c"gid", UINT32, Static::Gid),
    (c"loginuid", UINT32, Static::Loginuid),
    (c"exe_ino", UINT64, Static::ExeIno),
    (c"exe_ino_ctime", UINT64, Static::ExeInoCtime),
    (c"exe_ino_mtime", UINT64, Static::ExeInoMtime),
    (c"vtid", INT64, Static::Vtid),
    (c"vpid", INT64, Static::Vpid),
    (c"vpgid", INT64, Static::Vpgid),
    (c"pgid", INT64, Static::Pgid),
    (c"pidns_init_start_ts", UINT64, Static::PidnsInitStartTs),
    (c"root", STRING, Static::Root),
    (c"tty", UINT32, Static::Tty),
    (c"cwd", STRING, Static::Cwd),
    (c"file_descriptors", TABLE, Static::FileDescriptors),
];

/// The fields of libsinsp's fd info, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FdField {
    Type,
    OpenFlags,
    Name,
    NameRaw,
    OldName,
    Flags,
    Dev,
    MountId,
    Ino,
    Pid,
    Fd,
    Ipv4Src,
    Ipv4Dst,
    Ipv4Sport,
    Ipv4Dport,
    Ipv4Proto,
    Ipv6SrcLow,
    Ipv6SrcHigh,
    Ipv6DstLow,
    Ipv6DstHigh,
    Ipv6Sport,
    Ipv6Dport,
    Ipv6Proto,
    Ipv4ServerIp,
    Ipv4ServerPort,
    Ipv4ServerProto,
    Ipv6ServerLow,
    Ipv6ServerHigh,
    Ipv6ServerPort,
    Ipv6ServerProto,
    UnixSrc,
    UnixDst,
}

const FD_STATIC: &[(&CStr, StateType, FdField)] = &[
    (c"type", UINT8, FdField::Type),
    (c"open_flags", UINT32, FdField::OpenFlags),
    (c"name", STRING, FdField::Name),
    (c"name_raw", STRING, FdField::NameRaw),
    (c"old_name", STRING, FdField::OldName),
    (c"flags", UINT32, FdField::Flags),
    (c"dev", UINT32, FdField::Dev),
    (c"mount_id", UINT32, FdField::MountId),
    (c"ino", UINT64, FdField::Ino),
    (c"pid", INT64, FdField::Pid),
    (c"fd", INT64, FdField::Fd),
    (c"socket_ipv4_src_ip", UINT32, FdField::Ipv4Src),
    (c"socket_ipv4_dest_dip", UINT32, FdField::Ipv4Dst),
    (c"socket_ipv4_src_port", UINT16, FdField::Ipv4Sport),
    (c"socket_ipv4_dst_port", UINT16, FdField::Ipv4Dport),
    (c"socket_ipv4_l4_proto", UINT8, FdField::Ipv4Proto),
    (c"socket_ipv6_src_ip_low", UINT64, FdField::Ipv6SrcLow),
    (c"socket_ipv6_src_ip_high", UINT64, FdField::Ipv6SrcHigh),
    (c"socket_ipv6_dest_ip_low", UINT64, FdField::Ipv6DstLow),
    (c"socket_ipv6_dest_ip_high", UINT64, FdField::Ipv6DstHigh),
    (c"socket_ipv6_src_port", UINT16, FdField::Ipv6Sport),
    (c"socket_ipv6_dst_port", UINT16, FdField::Ipv6Dport),
    (c"socket_ipv6_l4_proto", UINT8, FdField::Ipv6Proto),
    (c"socket_ipv4_server_ip", UINT32, FdField::Ipv4ServerIp),
    (c"socket_ipv4_server_port", UINT16, FdField::Ipv4ServerPort),
    (
        c"socket_ipv4_server_l4_proto",
        UINT8,
        FdField::Ipv4ServerProto,
    ),
    (c"socket_ipv6_server_ip_low", UINT64, FdField::Ipv6ServerLow),
    (
        c"socket_ipv6_server_ip_high",
        UINT64,
        FdField::Ipv6ServerHigh,
    ),
    (c"socket_ipv6_server_port", UINT16, FdField::Ipv6ServerPort),
    (
        c"socket_ipv6_server_l4_proto",
        UINT8,
        FdField::Ipv6ServerProto,
    ),
    (c"socket_unix_src", UINT64, FdField::UnixSrc),
    (c"socket_unix_dest", UINT64, FdField::UnixDst),
];

/// Which table a handle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    Threads,
    Args,
    Env,
    Cgroups,
    Fds,
}

impl Kind {
    fn name(self) -> &'static CStr {
        match self {
            Kind::Threads => TABLE_NAME,
            Kind::Args => c"args",
            Kind::Env => c"env",
            Kind::Cgroups => c"cgroups",
            Kind::Fds => c"file_descriptors",
        }
    }
}

/// A table handle of this module, recognised by its address.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target {
    kind: Kind,
    /// The thread a subtable belongs to; [`NO_THREAD`] for the subtables
    /// of a detached entry.
    tid: i64,
}

const NO_THREAD: i64 = i64::MIN;

/// A subtable handle: the SDKs read the key type through it, as through
/// libsinsp's handles, so it starts with a table input.
#[repr(C)]
struct Subtable {
    input: api::ss_plugin_table_input,
}

/// Entries are numbers: a thread's is its tid plus this bias, so that no
/// tid the state holds (all >= -1) maps to NULL or to [`DETACHED`].
const ENTRY_BIAS: i64 = 16;
/// What `create_table_entry` returns: an entry of no thread, whose
/// fields read as defaults (the SDKs create one to find subtable fields).
const DETACHED: usize = 1;

fn thread_entry(tid: i64) -> *mut api::ss_plugin_table_entry_t {
    tid.wrapping_add(ENTRY_BIAS) as usize as *mut _
}

/// The tid of an entry; None for a detached entry.
fn entry_tid(e: *mut api::ss_plugin_table_entry_t) -> Option<i64> {
    match e as usize {
        0 | DETACHED => None,
        v => Some((v as i64).wrapping_sub(ENTRY_BIAS)),
    }
}

/// A subtable entry is its index plus one.
fn index_entry(index: usize) -> *mut api::ss_plugin_table_entry_t {
    (index + 1) as *mut _
}

fn entry_index(e: *mut api::ss_plugin_table_entry_t) -> Option<usize> {
    (e as usize).checked_sub(1)
}

/// Field handles are numbers too: a static field's is its index plus
/// one, a plugin field's comes after the static ones.
fn field_handle(index: usize) -> *mut api::ss_plugin_table_field_t {
    (index + 1) as *mut _
}

fn field_index(f: *const api::ss_plugin_table_field_t) -> Option<usize> {
    (f as usize).checked_sub(1)
}

/// A value a plugin stored in a field it added.
#[derive(Debug, Clone, PartialEq)]
enum Stored {
    Signed(i64),
    Unsigned(u64),
    Bool(bool),
    Text(CString),
}

/// Subtables kept past this many are pruned of those whose thread is gone.
const PRUNE_AT: usize = 4096;

struct Tables {
    /// The address of the `threads` handle the registry gave out.
    threads_handle: usize,
    /// Subtable handles by address, and by thread and kind.
    subtables: HashMap<usize, Target>,
    #[allow(clippy::vec_box)]
    by_thread: HashMap<(i64, Kind), Box<Subtable>>,
    /// Fields plugins added: name and type, in the order added.
    added: Vec<(CString, StateType)>,
    /// Their values, per thread.
    values: HashMap<i64, Vec<Option<Stored>>>,
    /// What `list_table_fields` returns, for the threads table and for the
    /// subtables of one value and of a pair.
    infos: Vec<api::ss_plugin_table_fieldinfo>,
    value_infos: Vec<api::ss_plugin_table_fieldinfo>,
    pair_infos: Vec<api::ss_plugin_table_fieldinfo>,
    fd_infos: Vec<api::ss_plugin_table_fieldinfo>,
}

// SAFETY: the raw pointers are to this module's own boxed handles and to
// static or owned names; the Mutex serialises every use.
unsafe impl Send for Tables {}

static TABLES: Mutex<Option<Tables>> = Mutex::new(None);
static REGISTER: Once = Once::new();

fn tables() -> MutexGuard<'static, Option<Tables>> {
    TABLES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn fieldinfo(name: &CStr, ty: StateType, read_only: bool) -> api::ss_plugin_table_fieldinfo {
    api::ss_plugin_table_fieldinfo {
        name: name.as_ptr(),
        field_type: ty,
        read_only: u32::from(read_only),
    }
}

impl Tables {
    fn rebuild_infos(&mut self) {
        self.infos = STATIC
            .iter()
            .map(|(name, ty, _)| fieldinfo(name, *ty, true))
            .chain(
                self.added
                    .iter()
                    .map(|(name, ty)| fieldinfo(name, *ty, false)),
            )
            .collect();
    }
}

/// Puts the thread table in the registry plugins find tables in; once per
/// process, before the first plugin that may read tables is initialised.
pub(super) fn register() {
    REGISTER.call_once(|| {
        let handle = super::tables::add_host_table(TABLE_NAME, INT64);
        let mut tables = Tables {
            threads_handle: handle,
            subtables: HashMap::new(),
            by_thread: HashMap::new(),
            added: Vec::new(),
            values: HashMap::new(),
            infos: Vec::new(),
            value_infos: vec![fieldinfo(c"value", STRING, true)],
            pair_infos: vec![
                fieldinfo(c"first", STRING, true),
                fieldinfo(c"second", STRING, true),
            ],
            fd_infos: FD_STATIC
                .iter()
                .map(|(name, ty, _)| fieldinfo(name, *ty, true))
                .collect(),
        };
        tables.rebuild_infos();
        *self::tables() = Some(tables);
    });
}

/// The table of this module `t` is, if it is one.
pub(super) fn target(t: *mut api::ss_plugin_table_t) -> Option<Target> {
    let tables = tables();
    let tables = tables.as_ref()?;
    if t as usize == tables.threads_handle {
        return Some(Target {
            kind: Kind::Threads,
            tid: NO_THREAD,
        });
    }
    tables.subtables.get(&(t as usize)).copied()
}

thread_local! {
    /// The state lent by [`with_state`], on this thread, for now.
    static STATE: Cell<*const State> = const { Cell::new(ptr::null()) };
    /// Strings handed out by reads: each stays valid for the next reads
    /// too, as the plugin copies it.
    static HANDED_OUT: RefCell<VecDeque<CString>> = const { RefCell::new(VecDeque::new()) };
}

/// How many strings a plugin may hold from earlier reads.
const HANDED_OUT_KEPT: usize = 64;

/// Runs `f` (a plugin call) with the thread table reading `state`.
pub fn with_state<R>(state: &State, f: impl FnOnce() -> R) -> R {
    struct Restore(*const State);
    impl Drop for Restore {
        fn drop(&mut self) {
            STATE.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(STATE.with(|s| s.replace(state)));
    f()
}

/// `f` on the lent state; None when none is lent.
fn reading<R>(f: impl FnOnce(&State) -> R) -> Option<R> {
    let state = STATE.with(Cell::get);
    // SAFETY: set by `with_state` for the length of its closure, on this
    // thread, from a reference that outlives the closure; reset after.
    unsafe { state.as_ref() }.map(f)
}

fn hand_out(text: &[u8]) -> *const c_char {
    let text = CString::new(
        text.iter()
            .copied()
            .filter(|&b| b != 0)
            .collect::<Vec<u8>>(),
    )
    .unwrap_or_default();
    HANDED_OUT.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.len() >= HANDED_OUT_KEPT {
            kept.pop_front();
        }
        // The bytes live on the heap: moving the CString into the deque
        // does not move them.
        let pointer = text.as_ptr();
        kept.push_back(text);
        pointer
    })
}

/// The handle of the `kind` subtable of `tid`, made on first use.
fn subtable(kind: Kind, tid: i64) -> *mut api::ss_plugin_table_t {
    let mut guard = tables();
    let Some(tables) = guard.as_mut() else {
        return ptr::null_mut();
    };
    if let Some(handle) = tables.by_thread.get(&(tid, kind)) {
        return (&**handle as *const Subtable).cast_mut().cast();
    }
    if tables.by_thread.len() >= PRUNE_AT {
        let live: Option<Vec<(i64, Kind)>> = reading(|state| {
            tables
                .by_thread
                .keys()
                .filter(|(tid, _)| *tid == NO_THREAD || state.thread(*tid).is_some())
                .copied()
                .collect()
        });
        if let Some(live) = live {
            let keep: std::collections::HashSet<(i64, Kind)> = live.into_iter().collect();
            tables.by_thread.retain(|key, _| keep.contains(key));
            tables
                .subtables
                .retain(|_, t| keep.contains(&(t.tid, t.kind)));
        }
    }
    // SAFETY: all-zero is a valid table input (NULL pointers, no calls).
    let mut input: api::ss_plugin_table_input = unsafe { std::mem::zeroed() };
    input.name = kind.name().as_ptr();
    // Fds are keyed by their number, the lists by their index.
    input.key_type = if kind == Kind::Fds { INT64 } else { UINT64 };
    let mut handle = Box::new(Subtable { input });
    let address = &*handle as *const Subtable as usize;
    handle.input.table = address as *mut _;
    tables.subtables.insert(address, Target { kind, tid });
    tables.by_thread.insert((tid, kind), handle);
    address as *mut _
}

fn set_signed(out: &mut api::ss_plugin_state_data, value: i64) {
    out.s64 = value;
}

fn set_unsigned(out: &mut api::ss_plugin_state_data, value: u64) {
    out.u64_ = value;
}

fn set_u32(out: &mut api::ss_plugin_state_data, value: u32) {
    out.u32_ = value;
}

fn set_bool(out: &mut api::ss_plugin_state_data, value: bool) {
    out.b = u32::from(value);
}

fn set_text(out: &mut api::ss_plugin_state_data, value: &str) {
    out.str_ = hand_out(value.as_bytes());
}

/// A static field of `thread` (None: a detached entry, all defaults).
fn read_static(
    which: Static,
    tid: i64,
    thread: Option<&Thread>,
    out: &mut api::ss_plugin_state_data,
) {
    let t = thread;
    match which {
        Static::Tid => set_signed(out, t.map_or(0, |t| t.tid)),
        Static::Pid => set_signed(out, t.map_or(0, |t| t.pid)),
        Static::Ptid => set_signed(out, t.map_or(0, |t| t.ptid)),
        // Peregrine does not follow reapers: libsinsp's "none".
        Static::ReaperTid => set_signed(out, -1),
        Static::Sid => set_signed(out, t.map_or(0, |t| t.sid)),
        Static::Comm => set_text(out, t.map_or("", |t| &t.comm)),
        Static::Exe => set_text(out, t.map_or("", |t| &t.exe)),
        Static::ExePath => set_text(out, t.map_or("", |t| &t.exepath)),
        Static::ExeWritable => set_bool(out, t.is_some_and(|t| t.exe_writable)),
        Static::ExeUpperLayer => set_bool(out, t.is_some_and(|t| t.exe_upper_layer)),
        Static::ExeLowerLayer => set_bool(out, t.is_some_and(|t| t.exe_lower_layer)),
        Static::ExeFromMemfd => set_bool(out, t.is_some_and(|t| t.exe_from_memfd)),
        Static::Args => out.table = subtable(Kind::Args, tid),
        Static::Env => out.table = subtable(Kind::Env, tid),
        Static::Cgroups => out.table = subtable(Kind::Cgroups, tid),
        Static::FileDescriptors => out.table = subtable(Kind::Fds, tid),
        // The clone flags libsinsp keeps are not kept here.
        Static::Flags => set_u32(out, 0),
        Static::FdLimit => set_signed(out, t.map_or(0, |t| t.fdlimit)),
        Static::Uid => set_u32(out, t.map_or(0, |t| t.uid)),
        Static::Gid => set_u32(out, t.map_or(0, |t| t.gid)),
        Static::Loginuid => set_u32(out, t.map_or(u32::MAX, |t| t.loginuid)),
        Static::ExeIno => set_unsigned(out, t.map_or(0, |t| t.exe_ino)),
        Static::ExeInoCtime => set_unsigned(out, t.map_or(0, |t| t.exe_ino_ctime)),
        Static::ExeInoMtime => set_unsigned(out, t.map_or(0, |t| t.exe_ino_mtime)),
        Static::Vtid => set_signed(out, t.map_or(0, |t| t.vtid)),
        Static::Vpid => set_signed(out, t.map_or(0, |t| t.vpid)),
        Static::Vpgid => set_signed(out, t.map_or(0, |t| t.vpgid)),
        Static::Pgid => set_signed(out, t.map_or(-1, |t| t.pgid)),
        Static::PidnsInitStartTs => set_unsigned(out, t.map_or(0, |t| t.pidns_init_start_ts)),
        // The root a thread chrooted to is not followed: libsinsp's value
        // before procfs or an event says.
        Static::Root => set_text(out, ""),
        Static::Tty => set_u32(out, t.map_or(0, |t| t.tty)),
        Static::Cwd => set_text(out, t.map_or("", |t| &t.cwd)),
    }
}

/// The fds of the process thread `tid` belongs to.
fn fds_of(state: &State, tid: i64) -> Option<&peregrine_engine::fast_hash::FastMap<i64, Fd>> {
    let pid = state.thread(tid).map_or(tid, |t| t.pid);
    state.fds_of(pid)
}

/// libsinsp's scap_fd_type of a kind of fd.
fn scap_fd_type(kind: &FdKind) -> u8 {
    match kind {
        FdKind::Unknown => 0,
        // Files opened under a current driver are libsinsp's FILE_V2.
        FdKind::File => 16,
        FdKind::Directory => 2,
        FdKind::Ipv4 { .. } => 3,
        FdKind::Ipv6 { .. } => 4,
        FdKind::Ipv4Server { .. } => 5,
        FdKind::Ipv6Server { .. } => 6,
        FdKind::Pipe => 7,
        FdKind::Unix => 8,
        FdKind::Event => 9,
        FdKind::SignalFd => 11,
        FdKind::EventPoll => 12,
        FdKind::Inotify => 13,
        FdKind::TimerFd => 14,
        FdKind::Netlink => 15,
        FdKind::Bpf => 17,
        FdKind::UserFaultFd => 18,
        FdKind::IoUring => 19,
        FdKind::MemFd => 20,
        FdKind::PidFd => 21,
    }
}

/// An IPv4 address as libsinsp keeps it: the network-order bytes read
/// as a native integer.
fn ipv4_word(ip: &IpAddr) -> u32 {
    match ip {
        IpAddr::V4(v4) => u32::from_ne_bytes(v4.octets()),
        IpAddr::V6(_) => 0,
    }
}

/// An IPv6 address's first or last eight bytes as a native integer.
fn ipv6_half(ip: &IpAddr, high: bool) -> u64 {
    let octets = match ip {
        IpAddr::V6(v6) => v6.octets(),
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
    };
    let (low, high_half) = octets.split_at(8);
    let half = if high { high_half } else { low };
    half.try_into().map_or(0, u64::from_ne_bytes)
}

/// A field of the fd `fd` of process `pid`. The fields of another kind
/// of socket than this fd's read as zero.
fn read_fd_field(
    which: FdField,
    fd: i64,
    pid: i64,
    info: &Fd,
    out: &mut api::ss_plugin_state_data,
) {
    use FdField as F;
    let (client, server) = match &info.kind {
        FdKind::Ipv4 {
            sip,
            sport,
            dip,
            dport,
            l4proto,
        }
        | FdKind::Ipv6 {
            sip,
            sport,
            dip,
            dport,
            l4proto,
        } => (Some((sip, *sport, dip, *dport, *l4proto)), None),
        FdKind::Ipv4Server { ip, port, l4proto } | FdKind::Ipv6Server { ip, port, l4proto } => {
            (None, Some((ip, *port, *l4proto)))
        }
        _ => (None, None),
    };
    let v4 = matches!(info.kind, FdKind::Ipv4 { .. } | FdKind::Ipv4Server { .. });
    let (v4_client, v6_client) = (client.filter(|_| v4), client.filter(|_| !v4));
    let (v4_server, v6_server) = (server.filter(|_| v4), server.filter(|_| !v4));
    match which {
        F::Type => out.u8_ = scap_fd_type(&info.kind),
        F::OpenFlags => out.u32_ = info.open_flags,
        F::Name => set_text(out, &info.name),
        F::NameRaw => set_text(out, info.raw_name.as_deref().unwrap_or(&info.name)),
        // The name before the event being parsed changed it: the state
        // keeps the current one only.
        F::OldName => set_text(out, &info.name),
        F::Flags | F::MountId => out.u32_ = 0,
        F::Dev => out.u32_ = info.dev,
        F::Ino => out.u64_ = info.ino,
        F::Pid => out.s64 = if info.kind == FdKind::PidFd { pid } else { 0 },
        F::Fd => out.s64 = fd,
        F::Ipv4Src => out.u32_ = v4_client.map_or(0, |c| ipv4_word(c.0)),
        F::Ipv4Dst => out.u32_ = v4_client.map_or(0, |c| ipv4_word(c.2)),
        F::Ipv4Sport => out.u16_ = v4_client.map_or(0, |c| c.1),
        F::Ipv4Dport => out.u16_ = v4_client.map_or(0, |c| c.3),
        F::Ipv4Proto => out.u8_ = v4_client.map_or(0, |c| c.4),
        F::Ipv6SrcLow => out.u64_ = v6_client.map_or(0, |c| ipv6_half(c.0, false)),
        F::Ipv6SrcHigh => out.u64_ = v6_client.map_or(0, |c| ipv6_half(c.0, true)),
        F::Ipv6DstLow => out.u64_ = v6_client.map_or(0, |c| ipv6_half(c.2, false)),
        F::Ipv6DstHigh => out.u64_ = v6_client.map_or(0, |c| ipv6_half(c.2, true)),
        F::Ipv6Sport => out.u16_ = v6_client.map_or(0, |c| c.1),
        F::Ipv6Dport => out.u16_ = v6_client.map_or(0, |c| c.3),
        F::Ipv6Proto => out.u8_ = v6_client.map_or(0, |c| c.4),
        F::Ipv4ServerIp => out.u32_ = v4_server.map_or(0, |s| ipv4_word(s.0)),
        F::Ipv4ServerPort => out.u16_ = v4_server.map_or(0, |s| s.1),
        F::Ipv4ServerProto => out.u8_ = v4_server.map_or(0, |s| s.2),
        F::Ipv6ServerLow => out.u64_ = v6_server.map_or(0, |s| ipv6_half(s.0, false)),
        F::Ipv6ServerHigh => out.u64_ = v6_server.map_or(0, |s| ipv6_half(s.0, true)),
        F::Ipv6ServerPort => out.u16_ = v6_server.map_or(0, |s| s.1),
        F::Ipv6ServerProto => out.u8_ = v6_server.map_or(0, |s| s.2),
        // Kernel socket addresses are not kept.
        F::UnixSrc | F::UnixDst => out.u64_ = 0,
    }
}

/// The list a subtable of `thread` reads.
fn list(kind: Kind, thread: &Thread) -> Option<&NulList> {
    match kind {
        Kind::Args => Some(&thread.args),
        Kind::Env => Some(&thread.env),
        Kind::Cgroups => Some(&thread.cgroups),
        Kind::Threads | Kind::Fds => None,
    }
}

fn subtable_len(target: Target) -> usize {
    if target.tid == NO_THREAD {
        return 0;
    }
    if target.kind == Kind::Fds {
        return reading(|state| fds_of(state, target.tid).map_or(0, |fds| fds.len())).unwrap_or(0);
    }
    reading(|state| {
        state
            .thread(target.tid)
            .and_then(|t| list(target.kind, t))
            .map_or(0, |items| items.iter().count())
    })
    .unwrap_or(0)
}

pub(super) fn list_fields(
    target: Target,
    nfields: *mut u32,
) -> *const api::ss_plugin_table_fieldinfo {
    let guard = tables();
    let Some(tables) = guard.as_ref() else {
        return ptr::null();
    };
    let infos = match target.kind {
        Kind::Threads => &tables.infos,
        Kind::Cgroups => &tables.pair_infos,
        Kind::Args | Kind::Env => &tables.value_infos,
        Kind::Fds => &tables.fd_infos,
    };
    if !nfields.is_null() {
        // SAFETY: the plugin passes where to write the count.
        unsafe { *nfields = infos.len() as u32 };
    }
    // Valid until a field is added, which happens while plugins initialise.
    infos.as_ptr()
}

/// The handle of field `name` of type `ty`, static or added.
fn find_field(tables: &Tables, target: Target, name: &CStr, ty: StateType) -> Option<usize> {
    match target.kind {
        Kind::Threads => STATIC
            .iter()
            .map(|(n, t, _)| (*n, *t))
            .chain(tables.added.iter().map(|(n, t)| (n.as_c_str(), *t)))
            .position(|(n, t)| n == name && t == ty),
        Kind::Args | Kind::Env => (name == c"value" && ty == STRING).then_some(0),
        Kind::Fds => FD_STATIC
            .iter()
            .position(|(n, t, _)| *n == name && *t == ty),
        Kind::Cgroups => match name.to_bytes() {
            b"first" if ty == STRING => Some(0),
            b"second" if ty == STRING => Some(1),
            _ => None,
        },
    }
}

pub(super) fn get_field(
    target: Target,
    name: *const c_char,
    ty: StateType,
) -> *mut api::ss_plugin_table_field_t {
    if name.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: a NUL-terminated name the plugin passes for this call.
    let name = unsafe { CStr::from_ptr(name) };
    let guard = tables();
    let Some(tables) = guard.as_ref() else {
        return ptr::null_mut();
    };
    find_field(tables, target, name, ty).map_or(ptr::null_mut(), field_handle)
}

/// The types a plugin may add a field of: libsinsp's scalar types.
fn addable(ty: StateType) -> bool {
    matches!(
        ty,
        INT8 | INT16 | INT32 | INT64 | UINT8 | UINT16 | UINT32 | UINT64 | STRING | BOOL
    )
}

pub(super) fn add_field(
    target: Target,
    name: *const c_char,
    ty: StateType,
) -> *mut api::ss_plugin_table_field_t {
    if name.is_null() || target.kind != Kind::Threads || !addable(ty) {
        return ptr::null_mut();
    }
    // SAFETY: a NUL-terminated name the plugin passes for this call.
    let name = unsafe { CStr::from_ptr(name) };
    let mut guard = tables();
    let Some(tables) = guard.as_mut() else {
        return ptr::null_mut();
    };
    // Adding a field that exists with the same type shares it (libsinsp);
    // a static field or another type is refused.
    if let Some(index) = find_field(tables, target, name, ty) {
        return if index >= STATIC.len() {
            field_handle(index)
        } else {
            ptr::null_mut()
        };
    }
    if STATIC.iter().any(|(n, _, _)| *n == name)
        || tables.added.iter().any(|(n, _)| n.as_c_str() == name)
    {
        return ptr::null_mut();
    }
    tables.added.push((name.to_owned(), ty));
    tables.rebuild_infos();
    field_handle(STATIC.len() + tables.added.len() - 1)
}

pub(super) fn name(target: Target) -> *const c_char {
    target.kind.name().as_ptr()
}

pub(super) fn size(target: Target) -> u64 {
    match target.kind {
        Kind::Threads => reading(|state| state.thread_count() as u64).unwrap_or(0),
        _ => subtable_len(target) as u64,
    }
}

pub(super) fn entry(
    target: Target,
    key: *const api::ss_plugin_state_data,
) -> *mut api::ss_plugin_table_entry_t {
    // SAFETY: the plugin passes a key of the table's key type.
    let Some(key) = (unsafe { key.as_ref() }) else {
        return ptr::null_mut();
    };
    match target.kind {
        Kind::Threads => {
            // SAFETY: the threads table's keys are int64.
            let tid = unsafe { key.s64 };
            let known = reading(|state| state.thread(tid).is_some()).unwrap_or(false);
            if known {
                thread_entry(tid)
            } else {
                ptr::null_mut()
            }
        }
        Kind::Fds => {
            // SAFETY: the fd table's keys are int64.
            let fd = unsafe { key.s64 };
            let known = reading(|state| state.fd(target.tid, fd).is_some()).unwrap_or(false);
            if known && target.tid != NO_THREAD {
                thread_entry(fd)
            } else {
                ptr::null_mut()
            }
        }
        _ => {
            // SAFETY: the list subtables are keyed by uint64 indexes.
            let index = unsafe { key.u64_ };
            if index < subtable_len(target) as u64 {
                index_entry(index as usize)
            } else {
                ptr::null_mut()
            }
        }
    }
}

pub(super) fn read(
    target: Target,
    e: *mut api::ss_plugin_table_entry_t,
    f: *const api::ss_plugin_table_field_t,
    out: *mut api::ss_plugin_state_data,
) -> api::ss_plugin_rc {
    // SAFETY: the plugin passes where to write the value.
    let Some(out) = (unsafe { out.as_mut() }) else {
        return FAILURE;
    };
    let Some(field) = field_index(f) else {
        return FAILURE;
    };
    match target.kind {
        Kind::Threads => read_thread_field(e, field, out),
        Kind::Fds => {
            let (Some(fd), Some((_, _, which))) = (entry_tid(e), FD_STATIC.get(field)) else {
                return FAILURE;
            };
            let found = reading(|state| {
                let pid = state.thread(target.tid).map_or(target.tid, |t| t.pid);
                state
                    .fd(target.tid, fd)
                    .map(|info| read_fd_field(*which, fd, pid, info, out))
                    .is_some()
            });
            if found == Some(true) {
                SUCCESS
            } else {
                FAILURE
            }
        }
        _ => {
            let Some(index) = entry_index(e) else {
                return FAILURE;
            };
            let item = reading(|state| {
                state
                    .thread(target.tid)
                    .and_then(|t| list(target.kind, t))
                    .and_then(|items| items.iter().nth(index).map(|item| item.into_owned()))
            })
            .flatten();
            let Some(item) = item else {
                return FAILURE;
            };
            let text = match (target.kind, field) {
                // libsinsp's cgroups are (subsystem, path) pairs.
                (Kind::Cgroups, 0) => item.split_once('=').map_or(item.as_str(), |(s, _)| s),
                (Kind::Cgroups, 1) => item.split_once('=').map_or("", |(_, p)| p),
                (Kind::Cgroups, _) => return FAILURE,
                (_, 0) => item.as_str(),
                _ => return FAILURE,
            };
            set_text(out, text);
            SUCCESS
        }
    }
}

fn read_thread_field(
    e: *mut api::ss_plugin_table_entry_t,
    field: usize,
    out: &mut api::ss_plugin_state_data,
) -> api::ss_plugin_rc {
    let tid = entry_tid(e);
    if let Some((_, _, which)) = STATIC.get(field) {
        let Some(tid) = tid else {
            read_static(*which, NO_THREAD, None, out);
            return SUCCESS;
        };
        // The subtable handles take the module's lock: read the thread's
        // values first, then make them.
        let found = reading(|state| match state.thread(tid) {
            Some(thread) => {
                read_static(*which, tid, Some(thread), out);
                true
            }
            None => false,
        });
        return if found == Some(true) {
            SUCCESS
        } else {
            FAILURE
        };
    }
    let added = field - STATIC.len();
    let guard = tables();
    let Some(tables) = guard.as_ref() else {
        return FAILURE;
    };
    let Some((_, ty)) = tables.added.get(added) else {
        return FAILURE;
    };
    let stored = tid
        .and_then(|tid| tables.values.get(&tid))
        .and_then(|values| values.get(added))
        .and_then(Option::as_ref);
    // An unwritten field reads as its type's zero, as in libsinsp.
    match (*ty, stored) {
        (STRING, Some(Stored::Text(text))) => out.str_ = hand_out(text.as_bytes()),
        (STRING, _) => out.str_ = hand_out(b""),
        (BOOL, stored) => set_bool(out, matches!(stored, Some(Stored::Bool(true)))),
        (ty, stored) => {
            let (signed, unsigned) = match stored {
                Some(Stored::Signed(v)) => (*v, *v as u64),
                Some(Stored::Unsigned(v)) => (*v as i64, *v),
                _ => (0, 0),
            };
            match ty {
                INT8 => out.s8 = signed as i8,
                INT16 => out.s16 = signed as i16,
                INT32 => out.s32 = signed as i32,
                INT64 => out.s64 = signed,
                UINT8 => out.u8_ = unsigned as u8,
                UINT16 => out.u16_ = unsigned as u16,
                UINT32 => out.u32_ = unsigned as u32,
                _ => out.u64_ = unsigned,
            }
        }
    }
    SUCCESS
}

pub(super) fn write(
    target: Target,
    e: *mut api::ss_plugin_table_entry_t,
    f: *const api::ss_plugin_table_field_t,
    value: *const api::ss_plugin_state_data,
) -> api::ss_plugin_rc {
    // SAFETY: the plugin passes the value to write.
    let Some(value) = (unsafe { value.as_ref() }) else {
        return FAILURE;
    };
    // Only the fields plugins added are written, and only on threads.
    let (Kind::Threads, Some(tid), Some(field)) = (target.kind, entry_tid(e), field_index(f))
    else {
        return FAILURE;
    };
    let Some(added) = field.checked_sub(STATIC.len()) else {
        return FAILURE;
    };
    let mut guard = tables();
    let Some(tables) = guard.as_mut() else {
        return FAILURE;
    };
    let Some((_, ty)) = tables.added.get(added) else {
        return FAILURE;
    };
    // SAFETY (every arm): the value is written through the member of the
    // field's type, as the API asks.
    let stored = unsafe {
        match *ty {
            INT8 => Stored::Signed(value.s8.into()),
            INT16 => Stored::Signed(value.s16.into()),
            INT32 => Stored::Signed(value.s32.into()),
            INT64 => Stored::Signed(value.s64),
            UINT8 => Stored::Unsigned(value.u8_.into()),
            UINT16 => Stored::Unsigned(value.u16_.into()),
            UINT32 => Stored::Unsigned(value.u32_.into()),
            UINT64 => Stored::Unsigned(value.u64_),
            BOOL => Stored::Bool(value.b != 0),
            STRING if value.str_.is_null() => Stored::Text(CString::default()),
            STRING => Stored::Text(CStr::from_ptr(value.str_).to_owned()),
            _ => return FAILURE,
        }
    };
    let count = tables.added.len();
    // Values of threads that are gone go when they pile up.
    if tables.values.len() >= PRUNE_AT {
        let live: Option<Vec<i64>> = reading(|state| {
            tables
                .values
                .keys()
                .filter(|tid| state.thread(**tid).is_some())
                .copied()
                .collect()
        });
        if let Some(live) = live {
            let live: std::collections::HashSet<i64> = live.into_iter().collect();
            tables.values.retain(|tid, _| live.contains(tid));
        }
    }
    let values = tables.values.entry(tid).or_default();
    values.resize(count, None);
    values[added] = Some(stored);
    SUCCESS
}

pub(super) fn iterate(
    target: Target,
    it: api::ss_plugin_table_iterator_func_t,
    s: *mut api::ss_plugin_table_iterator_state_t,
) -> api::ss_plugin_bool {
    let Some(it) = it else {
        return 0;
    };
    // The entries first: the plugin reads fields from its callback, which
    // must not find the state or the module's lock held.
    let entries: Vec<*mut api::ss_plugin_table_entry_t> = match target.kind {
        Kind::Threads => reading(|state| state.threads().map(|t| thread_entry(t.tid)).collect())
            .unwrap_or_default(),
        Kind::Fds => reading(|state| {
            let mut fds: Vec<i64> = fds_of(state, target.tid)
                .map(|fds| fds.keys().copied().collect())
                .unwrap_or_default();
            fds.sort_unstable();
            fds.into_iter().map(thread_entry).collect()
        })
        .unwrap_or_default(),
        _ => (0..subtable_len(target)).map(index_entry).collect(),
    };
    for entry in entries {
        // SAFETY: the plugin's own callback with its own state.
        if unsafe { it(s, entry) } == 0 {
            return 0;
        }
    }
    1
}

pub(super) fn create_entry(_target: Target) -> *mut api::ss_plugin_table_entry_t {
    DETACHED as *mut _
}

/// Entries are numbers: there is nothing to release or destroy.
pub(super) fn release(_target: Target, _e: *mut api::ss_plugin_table_entry_t) {}

pub(super) fn destroy(_target: Target, _e: *mut api::ss_plugin_table_entry_t) {}

/// The threads are the state's: plugins neither add nor remove them.
pub(super) fn add_entry(
    _target: Target,
    _key: *const api::ss_plugin_state_data,
    _entry: *mut api::ss_plugin_table_entry_t,
) -> *mut api::ss_plugin_table_entry_t {
    ptr::null_mut()
}

pub(super) fn erase(_target: Target, _key: *const api::ss_plugin_state_data) -> api::ss_plugin_rc {
    FAILURE
}

pub(super) fn clear(_target: Target) -> api::ss_plugin_rc {
    FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_their_numbers() {
        for tid in [-1, 0, 1, 4242, i64::from(i32::MAX)] {
            assert_eq!(entry_tid(thread_entry(tid)), Some(tid));
        }
        assert_eq!(entry_tid(DETACHED as *mut _), None);
        assert_eq!(entry_tid(ptr::null_mut()), None);
        assert_eq!(entry_index(index_entry(0)), Some(0));
        assert_eq!(field_index(field_handle(30)), Some(30));
    }

    #[test]
    fn static_fields_carry_libsinsp_names_once() {
        let mut names: Vec<&CStr> = STATIC.iter().map(|(n, _, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), STATIC.len());
        assert!(STATIC
            .iter()
            .any(|(n, t, _)| *n == c"pidns_init_start_ts" && *t == UINT64));
        assert!(STATIC
            .iter()
            .any(|(n, t, _)| *n == c"cgroups" && *t == TABLE));
    }
}
