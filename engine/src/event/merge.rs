//! One event per system call, as Falco evaluates them since libs 0.22.
//!
//! Falco's drivers used to write an enter and an exit event for every
//! syscall; current ones write the exit alone, its layout extended with
//! the enter's parameters, and libscap converts older captures on read.
//! [`Merger`] does the same for Peregrine, on captures and on live streams
//! alike, so rules match once per syscall whatever wrote the events:
//!
//! - a syscall enter event is held, per thread, until its exit; nothing is
//!   delivered for it;
//! - an exit in the current layout with every parameter passes unchanged
//!   (the stream of an exit-only driver costs one table look-up an event),
//!   but for an open (open, creat, openat, openat2) whose held enter read
//!   another path, flags or dirfd than the exit did: it takes the enter's,
//!   as libsinsp names the file from the enter. The enter read the path
//!   as the kernel was about to use it; the exit reads it again when the
//!   call is over, after another thread may have written a harmless name
//!   in its place (the TOCTOU race libsinsp keeps these enters against).
//!   libsinsp keeps the exit's string in `evt.arg.name`; here that is the
//!   enter's too, so no field shows the decoy as the file opened;
//! - an exit in an older layout (fewer parameters, or a type the schema
//!   keeps only for old captures) is rebuilt in the current layout of its
//!   syscall: each parameter is taken by name from the exit, else from the
//!   thread's held enter when that is the exit's own (the type just below
//!   it), else left empty;
//! - events that are not syscalls (process exit, signal delivery, context
//!   switch, container and user meta-events...) pass unchanged, even where
//!   their type number is an "enter" one.
//!
//! Where libscap would fill a parameter whose enter was not seen with a
//! zero value, the parameter is left empty here: a read with no enter
//! would otherwise claim fd 0, and a close would close it. The few
//! parameters libscap sets to zero whatever the enter said (they never
//! came from it) are zero here too.
//!
//! `evt.num` follows Falco's count, which numbers every event libscap hands
//! to libsinsp: exits, non-syscall events, and the enter events libsinsp
//! still reads before hiding them from rules (open, creat, openat,
//! openat2, connect, execve, execveat). The other enters are not counted.

use super::table::{all_event_types, category, event_info, flags, Direction, EventInfo};
use super::view::{len_size_of, EventView};
use crate::fast_hash::FastMap;
use std::sync::OnceLock;

/// Parameters libscap sets to zero when converting an older exit: they
/// were added to the exit itself, not taken from its enter.
const ZERO_WHEN_ABSENT: &[(&str, &str)] = &[
    ("fcntl", "arg"),
    ("socket", "flags"),
    ("accept", "queuelen"),
    ("accept", "queuemax"),
    ("accept4", "queuelen"),
    ("accept4", "queuemax"),
    ("sendmmsg", "res"),
    ("recvmmsg", "res"),
];

/// Exit parameters whose name an old enter event spelled otherwise.
const ENTER_ALIASES: &[(&str, &str, &str)] = &[("dup", "oldfd", "fd"), ("brk", "vm_size", "size")];

/// Exit parameters that share a name with an enter parameter but not its
/// meaning: never taken from the enter.
const NOT_FROM_ENTER: &[(&str, &str)] = &[
    // The exit's flags are the executable's (EXE_WRITABLE...), the
    // enter's are execveat's AT_* flags.
    ("execveat", "flags"),
];

/// Enter events libsinsp still parses (and numbers) before hiding them
/// from rules: their exits rely on them against TOCTOU races, or for a
/// fallback.
const NUMBERED_ENTERS: &[&str] = &[
    "open", "creat", "openat", "openat2", "connect", "execve", "execveat",
];

/// Where one parameter of a rebuilt exit comes from: parameter `exit` of
/// the exit as read when it has it, else `otherwise`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Source {
    exit: Option<u8>,
    otherwise: Fallback,
    /// The byte width of the parameter's type, 0 when variable.
    width: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fallback {
    /// Parameter `i` of the exit's enter event, if held.
    Enter(u8),
    /// A zero of the parameter's width.
    Zero,
    Empty,
}

/// What to do with events of one type.
#[derive(Debug, Clone)]
enum Plan {
    /// Delivered unchanged (not a syscall event, or an exit that needs
    /// nothing when it has `full` parameters).
    Pass,
    /// A syscall enter: held for its exit; `numbered` when Falco counts it.
    Hold { numbered: bool },
    /// Never delivered (types the schema marks unused).
    Drop,
    /// An exit: unchanged with `full` parameters and `current`, else
    /// rebuilt as `target` from `sources`.
    Exit {
        full: u32,
        current: bool,
        target: u16,
        sources: Box<[Source]>,
        /// Whether any source is the enter (else no look-up is needed).
        uses_enter: bool,
        /// `(start, count)`: target parameters `start..start + count` are
        /// the enter's first `count`, of the same types, copied as a block
        /// when the exit stops at `start`.
        enter_run: (u8, u8),
        /// For the opens: what a full exit takes from its enter.
        toctou: Option<Toctou>,
        /// A syscall whose enter drivers still write (connect, execve...):
        /// a full exit ends it, so that the thread's next enter does not
        /// count it as one whose exit never came.
        ends_enter: bool,
    },
}

/// The parameters of an open's exit that libsinsp takes from the enter
/// when the enter has a name: `(exit index, enter index)` of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Toctou {
    name: (u8, u8),
    flags: Option<(u8, u8)>,
    dirfd: Option<(u8, u8)>,
    /// The enter's parameters are the exit's from its second on (same
    /// names and types), as in every current layout of the opens: an
    /// enter that agrees with its exit is then one compare of bytes.
    enter_is_exit_tail: bool,
}

/// The syscalls whose exits are checked against their enters (see the
/// module notes).
const TOCTOU_OPENS: &[&str] = &["open", "creat", "openat", "openat2"];

/// Open flags from `PPM_O_F_CREATED` up are the exit's own findings (the
/// file was made, its overlay layer), kept whatever the enter said.
const EXIT_OPEN_FLAGS: u32 = !(0x4000 - 1);

fn toctou_of(exit: &EventInfo, enter: Option<&EventInfo>) -> Option<Toctou> {
    let enter = enter.filter(|_| TOCTOU_OPENS.contains(&exit.name))?;
    let pair = |name| Some((position(exit, name)?, position(enter, name)?));
    let enter_is_exit_tail = enter.params.len() < exit.params.len()
        && enter
            .params
            .iter()
            .zip(&exit.params[1..])
            .all(|(e, x)| e.name == x.name && e.ty == x.ty);
    Some(Toctou {
        name: pair("name")?,
        flags: pair("flags"),
        dirfd: pair("dirfd"),
        enter_is_exit_tail,
    })
}

fn plans() -> &'static [Plan] {
    static PLANS: OnceLock<Vec<Plan>> = OnceLock::new();
    PLANS.get_or_init(|| {
        all_event_types()
            .map(|(ty, info)| plan_for(ty, info))
            .collect()
    })
}

fn position(info: &EventInfo, name: &str) -> Option<u8> {
    info.params
        .iter()
        .position(|p| p.name == name)
        .and_then(|i| u8::try_from(i).ok())
}

/// The exit type current drivers write for the syscall `name`.
fn current_exit(name: &str) -> Option<u16> {
    all_event_types()
        .find(|(ty, info)| {
            Direction::of_type(*ty) == Direction::Exit
                && info.name == name
                && info.flags & (flags::OLD_VERSION | flags::UNUSED) == 0
        })
        .map(|(ty, _)| ty)
}

fn plan_for(ty: u16, info: &'static EventInfo) -> Plan {
    if info.flags & flags::UNUSED != 0 {
        return Plan::Drop;
    }
    if info.category & category::SYSCALL == 0 || info.name == "NA" {
        return Plan::Pass;
    }
    if Direction::of_type(ty) == Direction::Enter {
        return Plan::Hold {
            numbered: NUMBERED_ENTERS.contains(&info.name),
        };
    }
    let target = current_exit(info.name).unwrap_or(ty);
    let Some(target_info) = event_info(target) else {
        return Plan::Pass;
    };
    // The enter of an exit is the type just below it, of the same syscall.
    let enter = ty
        .checked_sub(1)
        .and_then(event_info)
        .filter(|e| e.name == info.name);
    let sources: Box<[Source]> = target_info
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let from_exit = if target == ty {
                u8::try_from(i).ok()
            } else {
                position(info, p.name)
            };
            let excluded = NOT_FROM_ENTER.contains(&(info.name, p.name));
            let from_enter = enter.filter(|_| !excluded).and_then(|e| {
                position(e, p.name).or_else(|| {
                    ENTER_ALIASES
                        .iter()
                        .find(|(sc, exit_name, _)| *sc == info.name && *exit_name == p.name)
                        .and_then(|(_, _, enter_name)| position(e, enter_name))
                })
            });
            let otherwise = match from_enter {
                Some(at) => Fallback::Enter(at),
                None if ZERO_WHEN_ABSENT.contains(&(info.name, p.name)) => Fallback::Zero,
                None => Fallback::Empty,
            };
            Source {
                exit: from_exit,
                otherwise,
                width: numeric_width(p.ty) as u8,
            }
        })
        .collect();
    let enter_run = enter_run(&sources, target_info, enter);
    let uses_enter = sources
        .iter()
        .any(|s| matches!(s.otherwise, Fallback::Enter(_)));
    let toctou = if target == ty {
        toctou_of(info, enter)
    } else {
        None
    };
    let ends_enter = target == ty && enter.is_some_and(|e| NUMBERED_ENTERS.contains(&e.name));
    Plan::Exit {
        full: target_info.params.len() as u32,
        current: target == ty,
        target,
        sources,
        uses_enter,
        enter_run,
        toctou,
        ends_enter,
    }
}

/// The first run of target parameters taken in order from the enter's
/// first parameters, with the same types (so no width to cut).
fn enter_run(sources: &[Source], target: &EventInfo, enter: Option<&EventInfo>) -> (u8, u8) {
    let Some(enter) = enter else {
        return (0, 0);
    };
    let Some(start) = sources
        .iter()
        .position(|s| s.otherwise == Fallback::Enter(0))
    else {
        return (0, 0);
    };
    let count = sources[start..]
        .iter()
        .enumerate()
        .take_while(|(j, s)| {
            s.otherwise == Fallback::Enter(*j as u8)
                && enter.params.get(*j).map(|p| p.ty) == Some(target.params[start + j].ty)
        })
        .count();
    (start as u8, count as u8)
}

/// An enter event held for its exit: its type and parameter area.
#[derive(Debug, Default)]
struct Held {
    event_type: u16,
    nparams: u32,
    len_size: usize,
    /// Parameter lengths, then values.
    bytes: Vec<u8>,
    lens_len: usize,
}

/// The parameters of a record, read in order: sources mostly ask for
/// them in ascending order, so each is found from the one before.
#[derive(Debug, Default)]
struct Params<'a> {
    lens: &'a [u8],
    data: &'a [u8],
    len_size: usize,
    count: usize,
    /// The next parameter in order and where its bytes start.
    next: usize,
    offset: usize,
}

impl<'a> Params<'a> {
    fn new(lens: &'a [u8], data: &'a [u8], len_size: usize, count: u32) -> Params<'a> {
        Params {
            lens,
            data,
            len_size,
            count: (count as usize).min(if len_size == 4 {
                lens.len() >> 2
            } else {
                lens.len() >> 1
            }),
            next: 0,
            offset: 0,
        }
    }

    fn len_of(&self, i: usize) -> usize {
        let at = i * self.len_size;
        let l = self.lens;
        if self.len_size == 4 {
            u32::from_le_bytes([l[at], l[at + 1], l[at + 2], l[at + 3]]) as usize
        } else {
            usize::from(u16::from_le_bytes([l[at], l[at + 1]]))
        }
    }

    /// The bytes the first `n` parameters take.
    fn total(&self, n: usize) -> usize {
        let lens = &self.lens[..n * self.len_size];
        if self.len_size == 4 {
            lens.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
                .sum()
        } else {
            lens.chunks_exact(2)
                .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])))
                .sum()
        }
    }

    /// Parameter `i`, if the record has it.
    #[inline]
    fn get(&mut self, i: usize) -> Option<&'a [u8]> {
        if i >= self.count {
            return None;
        }
        if i < self.next {
            self.next = 0;
            self.offset = 0;
        }
        while self.next < i {
            self.offset += self.len_of(self.next);
            self.next += 1;
        }
        let len = self.len_of(i);
        let bytes = self.data.get(self.offset..self.offset + len)?;
        self.next = i + 1;
        self.offset += len;
        Some(bytes)
    }
}

/// Counts of what the merge met, for stats and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MergeStats {
    /// Exits rebuilt with their enter's parameters.
    pub merged: u64,
    /// Exits that needed their enter and had none (it was dropped, or
    /// came before the capture started): those parameters are empty.
    pub exits_without_enter: u64,
    /// Enters whose exit never came (the thread's next enter replaced it,
    /// or the thread exited).
    pub enters_without_exit: u64,
    /// Open exits given their enter's name, flags or dirfd, which differed.
    pub enter_preferred: u64,
}

/// Turns enter+exit pairs into one exit event per syscall (see the module
/// notes). One per event stream: it holds each thread's pending enter.
#[derive(Debug)]
pub struct Merger {
    plans: &'static [Plan],
    held: FastMap<u64, Held>,
    /// The parameter area of the last rebuilt exit.
    out: Vec<u8>,
    /// `evt.num` of the last event delivered or counted.
    num: u64,
    /// Bound on the threads with a held enter; past it the table starts
    /// over (threads never seen exiting must not grow it without end).
    pub max_threads: usize,
    pub stats: MergeStats,
}

impl Default for Merger {
    fn default() -> Self {
        Merger::new()
    }
}

impl Merger {
    pub fn new() -> Merger {
        Merger {
            plans: plans(),
            held: FastMap::default(),
            out: Vec::new(),
            num: 0,
            max_threads: crate::state::DEFAULT_MAX_THREADS,
            stats: MergeStats::default(),
        }
    }

    /// The event to deliver for `ev`, numbered as Falco numbers it, or
    /// None when `ev` is an enter held for its exit (or a dropped type).
    /// The result borrows `ev`'s bytes or the merger's own buffer.
    #[inline]
    pub fn push<'s, 'e: 's>(&'s mut self, ev: &EventView<'e>) -> Option<EventView<'s>> {
        match self.plans.get(usize::from(ev.event_type)) {
            Some(Plan::Exit {
                full,
                current: true,
                toctou,
                ends_enter,
                ..
            }) if ev.nparams >= *full => match toctou {
                Some(toctou) => self.deliver_open(ev, *toctou),
                None if *ends_enter => {
                    if let Some(h) = self.held.get_mut(&ev.tid) {
                        if h.event_type.wrapping_add(1) == ev.event_type {
                            h.event_type = 0;
                        }
                    }
                    self.deliver(*ev)
                }
                None => self.deliver(*ev),
            },
            Some(Plan::Pass) | None => {
                if ev.event_type < 2 || !is_procexit(ev.info()) {
                    return self.deliver(*ev);
                }
                // A thread that exits has no exit event left to come.
                if self.held.remove(&ev.tid).is_some_and(|h| h.event_type != 0) {
                    self.stats.enters_without_exit += 1;
                }
                self.deliver(*ev)
            }
            Some(Plan::Hold { numbered }) => {
                if *numbered {
                    self.num += 1;
                }
                self.hold(ev);
                None
            }
            Some(Plan::Drop) => None,
            Some(Plan::Exit { .. }) => self.rebuild(ev),
        }
    }

    #[inline]
    fn deliver<'s>(&mut self, mut ev: EventView<'s>) -> Option<EventView<'s>> {
        self.num += 1;
        ev.num = self.num;
        Some(ev)
    }

    fn hold(&mut self, ev: &EventView<'_>) {
        if self.held.len() >= self.max_threads && !self.held.contains_key(&ev.tid) {
            let pending = self.held.values().filter(|h| h.event_type != 0).count();
            self.stats.enters_without_exit += pending as u64;
            self.held.clear();
        }
        let slot = self.held.entry(ev.tid).or_default();
        if slot.event_type != 0 {
            // The previous enter of this thread never saw its exit.
            self.stats.enters_without_exit += 1;
        }
        let (lens, data, len_size) = ev.body();
        slot.event_type = ev.event_type;
        slot.nparams = ev.nparams;
        slot.len_size = len_size;
        slot.lens_len = lens.len();
        slot.bytes.clear();
        slot.bytes.extend_from_slice(lens);
        slot.bytes.extend_from_slice(data);
    }

    /// A full open exit, with the name, flags and dirfd of its held enter
    /// where they differ from its own (see the module notes).
    fn deliver_open<'s, 'e: 's>(
        &'s mut self,
        ev: &EventView<'e>,
        toctou: Toctou,
    ) -> Option<EventView<'s>> {
        let Some(h) = self.held.get_mut(&ev.tid) else {
            return self.deliver(*ev);
        };
        if h.event_type.wrapping_add(1) != ev.event_type {
            if h.event_type != 0 {
                self.stats.enters_without_exit += 1;
            }
            h.event_type = 0;
            return self.deliver(*ev);
        }
        // Used up, as a rebuilt exit uses its enter.
        h.event_type = 0;
        let (lens, data) = h.bytes.split_at(h.lens_len);
        if toctou.enter_is_exit_tail && agrees_with_tail(ev, lens, data, h.len_size) {
            return self.deliver(*ev);
        }
        let mut enter = Params::new(lens, data, h.len_size, h.nparams);
        let (exit_lens, exit_data, exit_len_size) = ev.body();
        let mut exit = Params::new(exit_lens, exit_data, exit_len_size, ev.nparams);
        // Read in the order both layouts give them (dirfd, name, flags), so
        // each parameter is found from the one before.
        let mut pair = |at: (u8, u8)| {
            let x = exit.get(usize::from(at.0));
            let e = enter.get(usize::from(at.1));
            (x, e)
        };
        let dirfd = toctou.dirfd.map(&mut pair);
        let (exit_name, enter_name) = pair(toctou.name);
        let flags = toctou.flags.map(&mut pair);
        let enter_name = enter_name.unwrap_or(&[]);
        if matches!(enter_name, [] | [0] | b"<NA>" | b"<NA>\0") {
            return self.deliver(*ev);
        }
        let dirfd = match (toctou.dirfd, dirfd) {
            (Some((x, _)), Some((Some(exit_dirfd), Some(enter_dirfd))))
                if exit_dirfd != enter_dirfd =>
            {
                Some((x, enter_dirfd))
            }
            _ => None,
        };
        let as_u32 = |b: Option<&[u8]>| b.and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
        let flags = match (toctou.flags, flags) {
            (Some((x, _)), Some((exit_flags, enter_flags))) => {
                match (as_u32(exit_flags), as_u32(enter_flags)) {
                    (Some(exit_flags), Some(enter_flags)) => {
                        let merged = enter_flags & !EXIT_OPEN_FLAGS | exit_flags & EXIT_OPEN_FLAGS;
                        (merged != exit_flags).then_some((x, merged.to_le_bytes()))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if exit_name == Some(enter_name) && flags.is_none() && dirfd.is_none() {
            return self.deliver(*ev);
        }
        self.stats.enter_preferred += 1;
        let len_size = exit_len_size;
        let count = exit.count;
        let lens_len = count * len_size;
        let (name_at, flags_at, dirfd_at) = (
            usize::from(toctou.name.0),
            flags.map(|(x, _)| usize::from(x)),
            dirfd.map(|(x, _)| usize::from(x)),
        );
        let flag_bytes = flags.map_or([0; 4], |(_, b)| b);
        let out = &mut self.out;
        out.clear();
        out.resize(lens_len, 0);
        for i in 0..count {
            let bytes: &[u8] = match dirfd {
                _ if i == name_at => enter_name,
                _ if Some(i) == flags_at => &flag_bytes,
                Some((_, enter_dirfd)) if Some(i) == dirfd_at => enter_dirfd,
                _ => exit.get(i).unwrap_or(&[]),
            };
            put_param(out, i, len_size, bytes);
        }
        Some(finish(
            ev,
            ev.event_type,
            ev.info(),
            len_size,
            &self.out,
            count,
            &mut self.num,
        ))
    }

    #[inline(never)]
    fn rebuild<'s>(&'s mut self, ev: &EventView<'_>) -> Option<EventView<'s>> {
        let Merger {
            plans,
            held,
            out,
            stats,
            num,
            ..
        } = self;
        let Some(Plan::Exit {
            target,
            sources,
            uses_enter,
            enter_run,
            ..
        }) = plans.get(usize::from(ev.event_type))
        else {
            return None;
        };
        let info = event_info(*target)?;
        // The thread's held enter, if it is this exit's own; used up
        // either way when the exit needs it, as libscap does.
        let mut enter = Params::default();
        if *uses_enter {
            match held.get_mut(&ev.tid) {
                Some(h) if h.event_type.wrapping_add(1) == ev.event_type => {
                    stats.merged += 1;
                    h.event_type = 0;
                    let (lens, data) = h.bytes.split_at(h.lens_len);
                    enter = Params::new(lens, data, h.len_size, h.nparams);
                }
                Some(h) => {
                    stats.exits_without_enter += 1;
                    if h.event_type != 0 {
                        stats.enters_without_exit += 1;
                    }
                    h.event_type = 0;
                }
                None => stats.exits_without_enter += 1,
            }
        }
        let (lens, data, exit_len_size) = ev.body();
        let mut exit = Params::new(lens, data, exit_len_size, ev.nparams);
        let len_size = len_size_of(info);
        let lens_len = sources.len() * len_size;
        out.clear();
        // An exit of the current type holds the first parameters of its
        // layout as they are: their lengths and bytes are copied whole,
        // and only the missing ones are looked for.
        let same_layout = *target == ev.event_type && exit_len_size == len_size;
        let (run_start, run_count) = (usize::from(enter_run.0), usize::from(enter_run.1));
        let first = if same_layout
            && run_count > 0
            && exit.count == run_start
            && enter.count >= run_count
            && enter.len_size == len_size
        {
            // The usual old pair: the exit's own parameters, then its
            // enter's, each part copied whole.
            let exit_data = exit.total(run_start);
            let enter_data = enter.total(run_count);
            out.extend_from_slice(&lens[..run_start * len_size]);
            out.extend_from_slice(&enter.lens[..run_count * len_size]);
            out.resize(lens_len, 0);
            out.extend_from_slice(&data[..exit_data]);
            out.extend_from_slice(&enter.data[..enter_data]);
            run_start + run_count
        } else if same_layout {
            let kept = exit.count.min(sources.len());
            let kept_data = exit.total(kept);
            out.extend_from_slice(&lens[..kept * len_size]);
            out.resize(lens_len, 0);
            out.extend_from_slice(&data[..kept_data]);
            kept
        } else {
            out.resize(lens_len, 0);
            0
        };
        let zero = [0u8; 8];
        for (i, source) in sources.iter().enumerate().skip(first) {
            let width = usize::from(source.width);
            let from_exit = source.exit.and_then(|at| exit.get(usize::from(at)));
            let bytes: &[u8] = match (from_exit, source.otherwise) {
                (Some(bytes), _) => bytes,
                (None, Fallback::Enter(at)) => enter.get(usize::from(at)).unwrap_or(&[]),
                (None, Fallback::Zero) => &zero[..width],
                (None, Fallback::Empty) => &[],
            };
            // A number is cut to the width this layout gives it (an old
            // enter may have held it wider, as bpf's cmd).
            let len = if width > 0 && bytes.len() > width {
                width
            } else {
                bytes.len()
            };
            put_param(out, i, len_size, &bytes[..len]);
        }
        Some(finish(ev, *target, info, len_size, out, sources.len(), num))
    }
}

/// Appends a parameter's bytes to `out`, an area whose lengths come first
/// (zeroed, `len_size` bytes for each), and writes its length in slot `i`.
/// Bytes past what a length of that size can say are left out.
fn put_param(out: &mut Vec<u8>, i: usize, len_size: usize, bytes: &[u8]) {
    let max = if len_size == 2 {
        usize::from(u16::MAX)
    } else {
        u32::MAX as usize
    };
    let bytes = &bytes[..bytes.len().min(max)];
    out.extend_from_slice(bytes);
    let at = i * len_size;
    if len_size == 2 {
        out[at..at + 2].copy_from_slice(&(bytes.len() as u16).to_le_bytes());
    } else {
        out[at..at + 4].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
    }
}

/// The event made of `ev`'s header and the `count` parameters in `area`
/// (lengths, then values), numbered next.
fn finish<'s>(
    ev: &EventView<'_>,
    event_type: u16,
    info: &'static EventInfo,
    len_size: usize,
    area: &'s [u8],
    count: usize,
    num: &mut u64,
) -> EventView<'s> {
    let (lens, data) = area.split_at(count * len_size);
    let mut made = EventView::from_checked(
        ev.ts,
        ev.tid,
        event_type,
        count as u32,
        info,
        len_size,
        lens,
        data,
    );
    made.cpu = ev.cpu;
    made.dump_flags = ev.dump_flags;
    *num += 1;
    made.num = *num;
    made
}

/// Whether an enter's parameters (`lens`, `data`) are byte for byte the
/// exit's from its second parameter on.
#[inline]
fn agrees_with_tail(exit: &EventView<'_>, lens: &[u8], data: &[u8], len_size: usize) -> bool {
    let (exit_lens, exit_data, exit_len_size) = exit.body();
    if exit_len_size != len_size {
        return false;
    }
    let first_len = match exit_lens.get(..len_size) {
        Some([a, b]) => usize::from(u16::from_le_bytes([*a, *b])),
        Some([a, b, c, d]) => u32::from_le_bytes([*a, *b, *c, *d]) as usize,
        _ => return false,
    };
    exit_lens.get(len_size..len_size + lens.len()) == Some(lens)
        && exit_data.get(first_len..first_len + data.len()) == Some(data)
}

fn is_procexit(info: &EventInfo) -> bool {
    info.name == "procexit"
}

/// The byte width of a fixed-size parameter type (`PT_*` code), 0 for
/// the variable-size ones.
fn numeric_width(ty: u8) -> usize {
    match ty {
        // int8, uint8, sigtype, l4proto, sockfamily, flags8, enumflags8
        1 | 5 | 19 | 23 | 24 | 28 | 44 => 1,
        // int16, uint16, syscallid, port, flags16, enumflags16
        2 | 6 | 18 | 22 | 29 | 45 => 2,
        // int32, uint32, bool, ipv4addr, flags32, uid, gid, sigset, mode,
        // enumflags32
        3 | 7 | 25 | 26 | 30 | 31 | 32 | 34 | 42 | 46 => 4,
        // int64, uint64, errno, fd, pid, reltime, abstime, double
        4 | 8 | 11 | 14 | 15 | 20 | 21 | 33 => 8,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::table::event_types_named;
    use crate::event::view::HEADER_LEN;

    /// A record of type `ty` by thread `tid` with these parameters.
    fn record(ty: u16, tid: u64, params: &[&[u8]]) -> Vec<u8> {
        let len_size = len_size_of(event_info(ty).unwrap());
        let mut body = Vec::new();
        for p in params {
            if len_size == 2 {
                body.extend_from_slice(&(p.len() as u16).to_le_bytes());
            } else {
                body.extend_from_slice(&(p.len() as u32).to_le_bytes());
            }
        }
        for p in params {
            body.extend_from_slice(p);
        }
        let mut r = Vec::new();
        r.extend_from_slice(&1000u64.to_le_bytes());
        r.extend_from_slice(&tid.to_le_bytes());
        r.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_le_bytes());
        r.extend_from_slice(&ty.to_le_bytes());
        r.extend_from_slice(&(params.len() as u32).to_le_bytes());
        r.extend_from_slice(&body);
        r
    }

    /// Pushes a record; the delivered event as (type, params), if any.
    fn push(m: &mut Merger, raw: &[u8]) -> Option<(u16, u64, Vec<Vec<u8>>)> {
        let ev = EventView::parse(raw).unwrap();
        let out = m.push(&ev)?;
        let params = (0..out.nparams as usize)
            .map(|i| out.param_bytes(i).unwrap().to_vec())
            .collect();
        Some((out.event_type, out.num, params))
    }

    /// A full record of type `ty`: fixed-size parameters zero, the
    /// others empty.
    fn full_record(ty: u16, tid: u64) -> Vec<u8> {
        let params: Vec<Vec<u8>> = event_info(ty)
            .unwrap()
            .params
            .iter()
            .map(|p| vec![0u8; numeric_width(p.ty)])
            .collect();
        let refs: Vec<&[u8]> = params.iter().map(Vec::as_slice).collect();
        record(ty, tid, &refs)
    }

    const OPEN_E: u16 = 2;
    const OPEN_X: u16 = 3;
    const CLOSE_E: u16 = 4;
    const CLOSE_X: u16 = 5;
    const READ_E: u16 = 6;
    const READ_X: u16 = 7;

    fn fd(v: i64) -> Vec<u8> {
        v.to_le_bytes().to_vec()
    }

    #[test]
    fn an_old_open_pair_becomes_one_exit_in_the_current_layout() {
        // As in the kit's cat_write.scap: an enter with no parameter, an
        // exit with four.
        let mut m = Merger::new();
        assert_eq!(push(&mut m, &record(OPEN_E, 7, &[])), None);
        let exit = record(
            OPEN_X,
            7,
            &[
                &fd(3),
                b"/etc/passwd\0",
                &1u32.to_le_bytes(),
                &0u32.to_le_bytes(),
            ],
        );
        let (ty, num, params) = push(&mut m, &exit).unwrap();
        assert_eq!(ty, OPEN_X);
        assert_eq!(params.len(), 6, "dev and ino appended");
        assert_eq!(params[1], b"/etc/passwd\0");
        assert!(params[4].is_empty() && params[5].is_empty());
        // Falco numbers the open enter it still reads: the exit is second.
        assert_eq!(num, 2);
    }

    #[test]
    fn an_exit_takes_the_parameters_of_its_enter() {
        let mut m = Merger::new();
        assert_eq!(
            push(&mut m, &record(READ_E, 7, &[&fd(5), &64u32.to_le_bytes()])),
            None
        );
        let (ty, num, params) =
            push(&mut m, &record(READ_X, 7, &[&fd(12), b"hello world\0"])).unwrap();
        assert_eq!(ty, READ_X);
        assert_eq!(
            params,
            [
                fd(12),
                b"hello world\0".to_vec(),
                fd(5),
                64u32.to_le_bytes().to_vec()
            ]
        );
        // A read enter is not one libsinsp numbers.
        assert_eq!(num, 1);
        assert_eq!(m.stats.merged, 1);
    }

    #[test]
    fn an_exit_whose_enter_was_not_seen_gets_empty_parameters() {
        let mut m = Merger::new();
        let (_, _, params) = push(&mut m, &record(READ_X, 7, &[&fd(3), b"x\0"])).unwrap();
        assert_eq!(params.len(), 4);
        assert!(params[2].is_empty(), "no fd rather than fd 0");
        assert!(params[3].is_empty());
        assert_eq!(m.stats.exits_without_enter, 1);
        // Nor does another thread's enter stand in for it.
        push(&mut m, &record(READ_E, 8, &[&fd(9), &1u32.to_le_bytes()]));
        let (_, _, params) = push(&mut m, &record(READ_X, 7, &[&fd(3), b"x\0"])).unwrap();
        assert!(params[2].is_empty());
        // Nor an enter of another syscall of the same thread.
        push(&mut m, &record(CLOSE_E, 7, &[&fd(4)]));
        let (_, _, params) = push(&mut m, &record(READ_X, 7, &[&fd(3), b"x\0"])).unwrap();
        assert!(params[2].is_empty());
        assert_eq!(m.stats.exits_without_enter, 3);
    }

    #[test]
    fn an_enter_without_exit_is_replaced_by_the_next_one() {
        let mut m = Merger::new();
        push(&mut m, &record(READ_E, 7, &[&fd(5), &64u32.to_le_bytes()]));
        push(&mut m, &record(CLOSE_E, 7, &[&fd(6)]));
        assert_eq!(m.stats.enters_without_exit, 1);
        let (ty, _, params) = push(&mut m, &record(CLOSE_X, 7, &[&fd(0)])).unwrap();
        assert_eq!((ty, params[1].clone()), (CLOSE_X, fd(6)));
        // A thread that exits leaves nothing held.
        push(&mut m, &record(READ_E, 7, &[&fd(5), &64u32.to_le_bytes()]));
        let procexit = event_types_named("procexit")
            .into_iter()
            .find(|&t| event_info(t).unwrap().flags & flags::OLD_VERSION == 0)
            .unwrap();
        let (ty, _, _) = push(&mut m, &full_record(procexit, 7)).unwrap();
        assert_eq!(
            ty, procexit,
            "procexit is delivered, though its number is even"
        );
        assert_eq!(m.stats.enters_without_exit, 2);
        assert!(m.held.is_empty());
    }

    #[test]
    fn interleaved_threads_keep_their_own_enters() {
        let mut m = Merger::new();
        push(&mut m, &record(READ_E, 1, &[&fd(10), &1u32.to_le_bytes()]));
        push(&mut m, &record(READ_E, 2, &[&fd(20), &2u32.to_le_bytes()]));
        push(&mut m, &record(CLOSE_E, 3, &[&fd(30)]));
        let (_, _, two) = push(&mut m, &record(READ_X, 2, &[&fd(0), b"\0"])).unwrap();
        let (_, _, three) = push(&mut m, &record(CLOSE_X, 3, &[&fd(0)])).unwrap();
        let (_, _, one) = push(&mut m, &record(READ_X, 1, &[&fd(0), b"\0"])).unwrap();
        assert_eq!(
            (one[2].clone(), two[2].clone(), three[1].clone()),
            (fd(10), fd(20), fd(30))
        );
        assert_eq!(m.stats.merged, 3);
        assert_eq!(m.stats.exits_without_enter, 0);
    }

    #[test]
    fn a_current_exit_passes_unchanged() {
        let mut m = Merger::new();
        let raw = record(READ_X, 7, &[&fd(3), b"abc\0", &fd(4), &9u32.to_le_bytes()]);
        let ev = EventView::parse(&raw).unwrap();
        let out = m.push(&ev).unwrap();
        assert_eq!(out.body().1.as_ptr(), ev.body().1.as_ptr(), "not copied");
        assert_eq!(out.num, 1);
    }

    const OPENAT_E: u16 = 306;
    const OPENAT_X: u16 = 307;

    fn openat_e(name: &[u8], flags: u32) -> Vec<u8> {
        record(
            OPENAT_E,
            7,
            &[&fd(-100), name, &flags.to_le_bytes(), &0u32.to_le_bytes()],
        )
    }

    fn openat_x(name: &[u8], flags: u32) -> Vec<u8> {
        record(
            OPENAT_X,
            7,
            &[
                &fd(3),
                &fd(-100),
                name,
                &flags.to_le_bytes(),
                &0u32.to_le_bytes(),
                &8u32.to_le_bytes(),
                &99u64.to_le_bytes(),
            ],
        )
    }

    #[test]
    fn an_open_whose_path_was_rewritten_before_its_exit_names_the_enters() {
        let mut m = Merger::new();
        assert_eq!(push(&mut m, &openat_e(b"/etc/shadow\0", 1)), None);
        // O_WRONLY read at the exit, and O_F_CREATED, the exit's own.
        let (ty, num, params) = push(&mut m, &openat_x(b"/tmp/harmless\0", 2 | 0x4000)).unwrap();
        assert_eq!(ty, OPENAT_X);
        assert_eq!(params[2], b"/etc/shadow\0");
        assert_eq!(params[3], (1u32 | 0x4000).to_le_bytes());
        assert_eq!(
            (params[0].clone(), params[5].clone()),
            (fd(3), 8u32.to_le_bytes().to_vec())
        );
        assert_eq!(params[6], 99u64.to_le_bytes());
        assert_eq!(num, 2, "the enter is numbered, as libsinsp numbers it");
        assert_eq!(m.stats.enter_preferred, 1);
        // Used up: the next exit of the thread has no enter to take from.
        let (_, _, params) = push(&mut m, &openat_x(b"/tmp/harmless\0", 2)).unwrap();
        assert_eq!(params[2], b"/tmp/harmless\0");
    }

    #[test]
    fn an_open_whose_enter_agrees_passes_unchanged() {
        let mut m = Merger::new();
        // Byte for byte (the enter is the exit's tail), and with the exit's
        // own O_F_CREATED.
        for exit_flags in [1, 1 | 0x4000, 1] {
            assert_eq!(push(&mut m, &openat_e(b"/etc/hosts\0", 1)), None);
            let raw = openat_x(b"/etc/hosts\0", exit_flags);
            let ev = EventView::parse(&raw).unwrap();
            let out = m.push(&ev).unwrap();
            assert_eq!(out.body().1.as_ptr(), ev.body().1.as_ptr(), "not copied");
        }
        assert_eq!(m.stats, MergeStats::default(), "every enter met its exit");
        // An enter that could not read the path leaves the exit's.
        for unread in [&b""[..], b"\0", b"<NA>\0"] {
            push(&mut m, &openat_e(unread, 1));
            let (_, _, params) = push(&mut m, &openat_x(b"/etc/hosts\0", 1)).unwrap();
            assert_eq!(params[2], b"/etc/hosts\0");
        }
        assert_eq!(m.stats.enter_preferred, 0);
    }

    #[test]
    fn a_full_exit_ends_the_enter_drivers_still_write() {
        for name in ["connect", "execve", "openat"] {
            let exit = current_exit(name).unwrap();
            let mut m = Merger::new();
            for _ in 0..3 {
                assert_eq!(push(&mut m, &full_record(exit - 1, 7)), None, "{name}");
                assert!(push(&mut m, &full_record(exit, 7)).is_some(), "{name}");
            }
            assert_eq!(m.stats.enters_without_exit, 0, "{name}");
            // A thread's exit after a full exit leaves no enter behind.
            assert!(m.held.get(&7).is_none_or(|h| h.event_type == 0), "{name}");
        }
    }

    #[test]
    fn every_open_is_checked_and_its_enter_is_its_exits_tail() {
        for name in TOCTOU_OPENS {
            let exit = current_exit(name).unwrap();
            let Plan::Exit { toctou, .. } = &plans()[usize::from(exit)] else {
                panic!("{name}: no exit plan");
            };
            let toctou = toctou.unwrap_or_else(|| panic!("{name}: not checked"));
            assert!(toctou.enter_is_exit_tail, "{name}: {toctou:?}");
        }
    }

    #[test]
    fn an_old_event_type_becomes_the_current_one() {
        // link's first pair put both paths in the enter and only the
        // result in the exit; the current exit carries all three.
        let mut m = Merger::new();
        push(&mut m, &record(104, 7, &[b"/a\0", b"/b\0"]));
        let (ty, _, params) = push(&mut m, &record(105, 7, &[&fd(0)])).unwrap();
        assert_eq!(event_info(ty).unwrap().name, "link");
        assert_eq!(ty, current_exit("link").unwrap());
        assert_eq!(params, [fd(0), b"/a\0".to_vec(), b"/b\0".to_vec()]);
        // dup's first enter called the duplicated fd `fd`.
        push(&mut m, &record(124, 7, &[&fd(4)]));
        let (ty, _, params) = push(&mut m, &record(125, 7, &[&fd(5)])).unwrap();
        assert_eq!(event_info(ty).unwrap().params[1].name, "oldfd");
        assert_eq!(params[1], fd(4));
    }

    #[test]
    fn execveat_keeps_its_enter_flags_out_of_the_executable_flags() {
        let plan = &plans()[331];
        let Plan::Exit { sources, .. } = plan else {
            panic!("{plan:?}");
        };
        let info = event_info(331).unwrap();
        let flags_at = info.params.iter().position(|p| p.name == "flags").unwrap();
        assert!(!matches!(sources[flags_at].otherwise, Fallback::Enter(_)));
    }

    #[test]
    fn parameters_absent_from_old_exits_are_zero_where_libscap_zeroes_them() {
        let ty = current_exit("fcntl").unwrap();
        let info = event_info(ty).unwrap();
        let mut m = Merger::new();
        push(&mut m, &record(ty - 1, 7, &[&fd(3), &[1u8]]));
        let (_, _, params) = push(&mut m, &record(ty, 7, &[&fd(0)])).unwrap();
        let arg = info.params.iter().position(|p| p.name == "arg").unwrap();
        assert_eq!(params[arg], 0u64.to_le_bytes());
        assert_eq!(params[1], fd(3));
    }

    #[test]
    fn non_syscall_events_pass_and_only_falcos_enters_are_numbered() {
        let mut m = Merger::new();
        let signal = event_types_named("signaldeliver")[0];
        assert_eq!(push(&mut m, &full_record(signal, 7)).unwrap().1, 1);
        push(&mut m, &record(READ_E, 7, &[&fd(1), &1u32.to_le_bytes()]));
        let connect_e = event_types_named("connect")[0];
        push(&mut m, &record(connect_e, 8, &[&fd(1)]));
        let (_, num, _) = push(&mut m, &record(READ_X, 7, &[&fd(1), b"\0"])).unwrap();
        assert_eq!(num, 3, "signal 1, read enter not counted, connect enter 2");
    }

    /// Distinct bytes of the width a parameter type takes (some bytes for
    /// variable-size ones).
    fn sample(ty: u8, seed: u8) -> Vec<u8> {
        match numeric_width(ty) {
            0 => vec![b'a' + seed % 26, 0],
            w => (0..w as u8)
                .map(|i| seed.wrapping_mul(7).wrapping_add(i))
                .collect(),
        }
    }

    #[test]
    fn every_exit_carries_its_enter_parameters_by_name() {
        let mut checked = 0;
        for (ty, info) in all_event_types() {
            let Some(Plan::Exit { target, .. }) = plans().get(usize::from(ty)) else {
                continue;
            };
            let Some(enter) = event_info(ty - 1).filter(|e| e.name == info.name) else {
                continue;
            };
            if enter.params.is_empty() || info.params.is_empty() {
                continue;
            }
            let enter_params: Vec<Vec<u8>> = enter
                .params
                .iter()
                .enumerate()
                .map(|(i, p)| sample(p.ty, i as u8 + 1))
                .collect();
            let refs: Vec<&[u8]> = enter_params.iter().map(Vec::as_slice).collect();
            let mut m = Merger::new();
            assert_eq!(
                push(&mut m, &record(ty - 1, 7, &refs)),
                None,
                "{}",
                info.name
            );
            // The exit as the oldest drivers wrote it: the result alone.
            let res = sample(info.params[0].ty, 0);
            let (out_ty, _, params) = push(&mut m, &record(ty, 7, &[&res])).unwrap();
            assert_eq!(out_ty, *target);
            let target_info = event_info(*target).unwrap();
            assert_eq!(params.len(), target_info.params.len());
            if target_info.params[0].name == info.params[0].name {
                assert_eq!(params[0], res, "{} res", info.name);
            } else {
                // bpf's first exit held a PT_DYN result where the current
                // one holds an fd: not carried over.
                assert!(params[0].is_empty(), "{}", info.name);
            }
            for (i, p) in target_info.params.iter().enumerate().skip(1) {
                let from = enter.params.iter().position(|e| e.name == p.name);
                let excluded = NOT_FROM_ENTER.contains(&(info.name, p.name));
                match from {
                    Some(at) if !excluded => {
                        let mut want = enter_params[at].clone();
                        let width = numeric_width(p.ty);
                        if width > 0 {
                            want.truncate(width);
                        }
                        assert_eq!(params[i], want, "{} {}", info.name, p.name);
                        checked += 1;
                    }
                    _ => {
                        let aliased = ENTER_ALIASES
                            .iter()
                            .any(|(sc, exit, _)| *sc == info.name && *exit == p.name);
                        let zero = ZERO_WHEN_ABSENT.contains(&(info.name, p.name));
                        if !aliased && !zero {
                            assert!(
                                params[i].is_empty(),
                                "{} {}: {:?}",
                                info.name,
                                p.name,
                                params[i]
                            );
                        }
                    }
                }
            }
        }
        assert!(checked > 150, "{checked} parameters checked");
    }
}
