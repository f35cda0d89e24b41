//! Event type numbers and system call codes (`PPM_SC_*`) as sets, with
//! libsinsp's conversions between them and names: what turns the
//! `evt.type` names of a condition into the events `-L` lists.
//!
//! An event type is linked to the system calls it reports through the
//! table in [`super::syscall_map_data`]; the two generic event types
//! report every system call without an event of its own.

use super::syscall_map_data::EVENT_SYSCALLS;
use super::table::EVENT_TYPE_COUNT;
use super::table_data::{EVENTS, SYSCALL_NAMES};

/// The generic enter and exit events (`syscall`), which stand for every
/// system call that has no event type of its own.
const GENERIC_ENTER: u16 = 0;
const GENERIC_EXIT: u16 = 1;

/// libsinsp's asynchronous event (`asyncevent`), which plugins send.
pub const ASYNC_EVENT: u16 = 402;
/// libsinsp's plugin event (`pluginevent`), what plugin sources produce.
pub const PLUGIN_EVENT: u16 = 322;

const WORDS: usize = 8;

/// A set of codes below 512 (event type numbers or system call codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CodeSet {
    bits: [u64; WORDS],
}

impl CodeSet {
    pub fn empty() -> CodeSet {
        CodeSet::default()
    }

    /// Codes `0..count`.
    fn below(count: usize) -> CodeSet {
        let mut set = CodeSet::empty();
        for code in 0..count {
            set.insert_index(code);
        }
        set
    }

    fn insert_index(&mut self, code: usize) {
        if let Some(word) = self.bits.get_mut(code / 64) {
            *word |= 1 << (code % 64);
        }
    }

    pub fn insert(&mut self, code: u16) {
        self.insert_index(usize::from(code));
    }

    pub fn contains(&self, code: u16) -> bool {
        let code = usize::from(code);
        self.bits
            .get(code / 64)
            .is_some_and(|word| word & (1 << (code % 64)) != 0)
    }

    pub fn union(&self, other: &CodeSet) -> CodeSet {
        let mut out = *self;
        for (a, b) in out.bits.iter_mut().zip(other.bits) {
            *a |= b;
        }
        out
    }

    pub fn intersection(&self, other: &CodeSet) -> CodeSet {
        let mut out = *self;
        for (a, b) in out.bits.iter_mut().zip(other.bits) {
            *a &= b;
        }
        out
    }

    /// The codes of `self` not in `other`.
    pub fn difference(&self, other: &CodeSet) -> CodeSet {
        let mut out = *self;
        for (a, b) in out.bits.iter_mut().zip(other.bits) {
            *a &= !b;
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..WORDS * 64)
            .filter(|&code| self.bits[code / 64] & (1 << (code % 64)) != 0)
            .filter_map(|code| u16::try_from(code).ok())
    }
}

impl FromIterator<u16> for CodeSet {
    fn from_iter<I: IntoIterator<Item = u16>>(codes: I) -> CodeSet {
        let mut set = CodeSet::empty();
        for code in codes {
            set.insert(code);
        }
        set
    }
}

/// Every event type number the schema has, the generic ones included.
pub fn all_events() -> CodeSet {
    CodeSet::below(EVENT_TYPE_COUNT)
}

/// Every system call code that has a name (code 0 is `unknown`).
pub fn all_syscalls() -> CodeSet {
    (1..SYSCALL_NAMES.len())
        .filter(|&code| !SYSCALL_NAMES[code].is_empty())
        .filter_map(|code| u16::try_from(code).ok())
        .collect()
}

/// The name of a system call code; empty for a code without one.
fn syscall_name(code: u16) -> &'static str {
    SYSCALL_NAMES.get(usize::from(code)).copied().unwrap_or("")
}

/// The system calls the events of `events` report (libsinsp's
/// `event_set_to_sc_set`).
pub fn syscalls_of_events(events: &CodeSet) -> CodeSet {
    events
        .iter()
        .filter_map(|ev| EVENT_SYSCALLS.get(usize::from(ev)))
        .flat_map(|codes| codes.iter().copied())
        .collect()
}

/// The events reporting any system call of `syscalls` (libsinsp's
/// `sc_set_to_event_set`), the generic ones included.
pub fn events_of_syscalls(syscalls: &CodeSet) -> CodeSet {
    EVENT_SYSCALLS
        .iter()
        .enumerate()
        .filter(|(_, codes)| codes.iter().any(|&sc| syscalls.contains(sc)))
        .filter_map(|(ev, _)| u16::try_from(ev).ok())
        .collect()
}

/// The event types called by one of `names` (libsinsp's
/// `names_to_event_set`): the events of those names and, when a name is
/// left that is a system call's, the generic events that stand for it.
/// A name only a plugin's async events have matches none here; callers
/// add `asyncevent` themselves, as Falco's `-L` does.
pub fn events_named<'a>(names: impl IntoIterator<Item = &'a str>) -> CodeSet {
    let mut set = CodeSet::empty();
    let mut left: Vec<&str> = Vec::new();
    for name in names {
        let mut found = false;
        for (ev, info) in EVENTS.iter().enumerate().skip(2) {
            if info.name == name {
                set.insert_index(ev);
                found = true;
            }
        }
        if !found {
            left.push(name);
        }
    }
    if left
        .iter()
        .any(|name| SYSCALL_NAMES.iter().any(|sc| !sc.is_empty() && sc == name))
    {
        set.insert(GENERIC_ENTER);
        set.insert(GENERIC_EXIT);
    }
    set
}

/// The system calls called by one of `names` (libsinsp's
/// `event_names_to_sc_set`): those of the events of these names, and for
/// a system call reported only through the generic events, its own name.
pub fn syscalls_named<'a>(names: impl IntoIterator<Item = &'a str> + Clone) -> CodeSet {
    let generic: CodeSet = [GENERIC_ENTER, GENERIC_EXIT].into_iter().collect();
    let events = events_named(names.clone());
    let has_generic = !events.intersection(&generic).is_empty();
    let mut syscalls = syscalls_of_events(&events.difference(&generic));
    if has_generic {
        for sc in syscalls_of_events(&generic).iter() {
            if names
                .clone()
                .into_iter()
                .any(|name| name == syscall_name(sc))
            {
                syscalls.insert(sc);
            }
        }
    }
    syscalls
}

/// The names of the events of `events`, the generic ones left out
/// (libsinsp's `event_set_to_names` without resolving generics).
pub fn event_names(events: &CodeSet) -> Vec<&'static str> {
    events
        .iter()
        .filter(|&ev| ev != GENERIC_ENTER && ev != GENERIC_EXIT)
        .filter_map(|ev| EVENTS.get(usize::from(ev)).map(|info| info.name))
        .collect()
}

/// The event names standing for `syscalls` (libsinsp's
/// `sc_set_to_event_names`): the events reporting them, and the names of
/// the system calls no such event reports (those of the generic events).
pub fn syscall_event_names(syscalls: &CodeSet) -> Vec<&'static str> {
    let generic: CodeSet = [GENERIC_ENTER, GENERIC_EXIT].into_iter().collect();
    let events = events_of_syscalls(syscalls).difference(&generic);
    let mut names = event_names(&events);
    let rest = syscalls.difference(&syscalls_of_events(&events));
    names.extend(rest.iter().map(syscall_name).filter(|n| !n.is_empty()));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_codes_have_their_names() {
        assert_eq!(EVENTS[usize::from(ASYNC_EVENT)].name, "asyncevent");
        assert_eq!(EVENTS[usize::from(PLUGIN_EVENT)].name, "pluginevent");
        assert_eq!(EVENTS[usize::from(GENERIC_ENTER)].name, "syscall");
    }

    #[test]
    fn names_become_events_and_syscalls() {
        let open = events_named(["open"]);
        assert!(open.iter().all(|ev| EVENTS[usize::from(ev)].name == "open"));
        assert!(!open.is_empty());
        // `getppid` has no event of its own: the generic ones stand for it.
        let getppid = events_named(["getppid"]);
        assert!(getppid.contains(GENERIC_ENTER) && getppid.contains(GENERIC_EXIT));
        let sc = syscalls_named(["getppid"]);
        assert_eq!(sc.iter().map(syscall_name).collect::<Vec<_>>(), ["getppid"]);
        assert_eq!(syscall_event_names(&sc), ["getppid"]);
        assert!(syscall_event_names(&syscalls_named(["open"])).contains(&"open"));
        assert!(events_named(["no_such_event"]).is_empty());
    }
}
