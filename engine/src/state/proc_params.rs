//! The parameters of the process events (the clone and execve families),
//! placed once per event type.
//!
//! A clone or execve exit carries some thirty parameters and the state
//! reads most of them. Looked up by name, each read scanned the schema's
//! names and summed the lengths before it: on a fork+exec flood that was a
//! quarter of the agent's time. Here the names are matched once per event
//! type, when the state is made, and an event's parameters are cut out in
//! one walk over its lengths.

use crate::event::table::all_event_types;
use crate::event::view::Param;
use crate::event::EventView;

/// Declares [`ProcParam`] and the schema's name of each, side by side so
/// the two cannot drift apart.
macro_rules! proc_params {
    ($($variant:ident = $name:literal,)*) => {
        /// A parameter the state reads from process events.
        #[derive(Debug, Clone, Copy)]
        pub(super) enum ProcParam {
            $($variant,)*
        }

        /// The schema's name of each [`ProcParam`], in its order.
        const NAMES: &[&str] = &[$($name,)*];

        /// Every [`ProcParam`], in the same order.
        #[cfg(test)]
        const ALL: &[ProcParam] = &[$(ProcParam::$variant,)*];
    };
}

proc_params! {
    Flags = "flags",
    Ptid = "ptid",
    Pid = "pid",
    Comm = "comm",
    Exe = "exe",
    Cwd = "cwd",
    Args = "args",
    Env = "env",
    Cgroups = "cgroups",
    Uid = "uid",
    Gid = "gid",
    Vtid = "vtid",
    Vpid = "vpid",
    Tty = "tty",
    Vpgid = "vpgid",
    Loginuid = "loginuid",
    TrustedExepath = "trusted_exepath",
    CapInheritable = "cap_inheritable",
    CapPermitted = "cap_permitted",
    CapEffective = "cap_effective",
    ExeIno = "exe_ino",
    ExeInoCtime = "exe_ino_ctime",
    ExeInoMtime = "exe_ino_mtime",
    Fdlimit = "fdlimit",
    Pgid = "pgid",
    VmSize = "vm_size",
    VmRss = "vm_rss",
    VmSwap = "vm_swap",
    PgftMaj = "pgft_maj",
    PgftMin = "pgft_min",
    PidnsInitStartTs = "pidns_init_start_ts",
}

const ABSENT: u8 = u8::MAX;

/// A bit of the `flags` parameter the state tests.
#[derive(Debug, Clone, Copy)]
pub(super) enum ProcFlag {
    CloneThread,
    ExeWritable,
    ExeUpperLayer,
    ExeLowerLayer,
    ExeFromMemfd,
}

/// The names table's name of each [`ProcFlag`], in its order.
const FLAG_NAMES: [&str; 5] = [
    "CLONE_THREAD",
    "EXE_WRITABLE",
    "EXE_UPPER_LAYER",
    "EXE_LOWER_LAYER",
    "EXE_FROM_MEMFD",
];

/// Where each [`ProcParam`] sits in one event type (`ABSENT` if nowhere),
/// and the value of each [`ProcFlag`] in its `flags` (0 if it has none).
#[derive(Debug, Clone, Copy)]
pub(super) struct ProcSlots {
    at: [u8; NAMES.len()],
    flag_bits: [u64; FLAG_NAMES.len()],
}

/// The places of the process parameters in every event type, indexed by
/// type. Types that are not process events get a row too: it costs a few
/// kilobytes and keeps the lookup a plain index.
pub(super) fn proc_slots_table() -> Vec<ProcSlots> {
    all_event_types()
        .map(|(_, info)| {
            let at = std::array::from_fn(|which| {
                info.params
                    .iter()
                    .position(|p| p.name == NAMES[which])
                    .and_then(|i| u8::try_from(i).ok())
                    .unwrap_or(ABSENT)
            });
            let flag_names = info
                .params
                .iter()
                .find(|p| p.name == "flags")
                .and_then(|p| p.names)
                .unwrap_or_default();
            let flag_bits = FLAG_NAMES.map(|flag| {
                flag_names
                    .iter()
                    .find(|(name, _)| *name == flag)
                    .map_or(0, |(_, bit)| *bit)
            });
            ProcSlots { at, flag_bits }
        })
        .collect()
}

/// The most parameters cut out in the one walk; a process event has about
/// thirty, and any later one is read the slow way.
const CUT: usize = 40;

/// One process event with its parameters cut out, read by [`ProcParam`].
pub(super) struct ProcEvent<'a> {
    ev: EventView<'a>,
    slots: ProcSlots,
    /// The bytes of the first `cut` parameters.
    bytes: [&'a [u8]; CUT],
    cut: usize,
}

impl<'a> ProcEvent<'a> {
    pub(super) fn new(ev: &EventView<'a>, slots: ProcSlots) -> ProcEvent<'a> {
        let mut bytes: [&[u8]; CUT] = [&[]; CUT];
        let cut = ev.param_slices(&mut bytes);
        ProcEvent {
            ev: *ev,
            slots,
            bytes,
            cut,
        }
    }

    pub(super) fn get(&self, which: ProcParam) -> Option<Param<'a>> {
        let at = usize::from(self.slots.at[which as usize]);
        if at < self.cut {
            Some(Param {
                info: self.ev.info().params.get(at)?,
                bytes: self.bytes[at],
            })
        } else if at == usize::from(ABSENT) {
            None
        } else {
            self.ev.param(at)
        }
    }

    /// The value of `which` in this event type's `flags` (0 if it has none,
    /// so no flags value has it set).
    pub(super) fn flag_bit(&self, which: ProcFlag) -> u64 {
        self.slots.flag_bits[which as usize]
    }

    pub(super) fn int(&self, which: ProcParam) -> Option<i64> {
        self.get(which)?.as_i64()
    }

    pub(super) fn uint(&self, which: ProcParam) -> Option<u64> {
        self.get(which)?.as_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::view::{len_size_of, HEADER_LEN};

    /// A record of `ty` with its first `nparams` parameters, parameter `i`
    /// holding `i + 1` bytes of value `i`: every one tells itself apart.
    fn record(ty: u16, nparams: usize) -> Vec<u8> {
        let info = all_event_types().nth(usize::from(ty)).map(|(_, i)| i);
        let len_size = info.map_or(2, len_size_of);
        let data: Vec<u8> = (0..nparams).flat_map(|i| vec![i as u8; i + 1]).collect();
        let len = HEADER_LEN + nparams * len_size + data.len();
        let mut r = Vec::with_capacity(len);
        r.extend_from_slice(&7u64.to_le_bytes());
        r.extend_from_slice(&42u64.to_le_bytes());
        r.extend_from_slice(&(len as u32).to_le_bytes());
        r.extend_from_slice(&ty.to_le_bytes());
        r.extend_from_slice(&(nparams as u32).to_le_bytes());
        for i in 0..nparams {
            r.extend_from_slice(&((i + 1) as u32).to_le_bytes()[..len_size]);
        }
        r.extend_from_slice(&data);
        r
    }

    /// Every process parameter reads as a lookup by name reads it, on
    /// every clone and execve version, whole and cut short (as an older
    /// driver writes them).
    #[test]
    fn each_parameter_is_the_one_of_its_name() {
        let slots = proc_slots_table();
        let mut checked = 0;
        for (ty, info) in all_event_types() {
            if !["clone", "clone3", "fork", "vfork", "execve", "execveat"].contains(&info.name) {
                continue;
            }
            for nparams in [info.params.len(), info.params.len() / 2, 0] {
                let bytes = record(ty, nparams);
                let ev = EventView::parse(&bytes).expect("a well-formed record");
                let pe = ProcEvent::new(&ev, slots[usize::from(ty)]);
                for (which, name) in NAMES.iter().enumerate() {
                    let at = slots[usize::from(ty)].at[which];
                    let got = if at == ABSENT {
                        None
                    } else {
                        pe.get(ALL[which]).map(|p| p.bytes)
                    };
                    let want = ev.param_named(name).map(|p| p.bytes);
                    assert_eq!(got, want, "{} ({ty}) with {nparams}: {name}", info.name);
                    checked += usize::from(want.is_some());
                }
            }
        }
        assert!(checked > 100, "only {checked} parameters were compared");
    }
}
