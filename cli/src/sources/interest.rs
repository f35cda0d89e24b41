//! Which syscalls the module writes: the ones the enabled rules can match
//! plus the ones the state is built from, chosen as Falco's
//! `base_syscalls` chooses them. A syscall left out costs one bit test in
//! the kernel instead of an event in the ring and a pass through the
//! engine.

use std::collections::BTreeSet;

use peregrine_driver_sys::{syscall_name, syscall_of_event};
use peregrine_engine::rules::RuleEventTypes;
use peregrine_engine::state::state_event_names;

use crate::config::BaseSyscalls;

/// The chosen set, and what to tell the user about it.
#[derive(Debug, PartialEq, Eq)]
pub struct Interest {
    /// None: every syscall.
    pub syscalls: Option<BTreeSet<u32>>,
    /// One line on what was chosen and why.
    pub summary: String,
    /// Names in `base_syscalls.custom_set` that are no x86-64 syscall.
    pub warnings: Vec<String>,
}

/// Chooses the syscalls for `rules` (what
/// `CompiledRules::event_type_names` found) under `base`.
pub fn choose(rules: &RuleEventTypes<'_>, base: &BaseSyscalls, all_flag: bool) -> Interest {
    let mut warnings = Vec::new();
    if base.all || all_flag {
        let why = if all_flag { "-A" } else { "base_syscalls.all" };
        return Interest {
            syscalls: None,
            summary: format!("capturing every syscall ({why})"),
            warnings,
        };
    }
    let rule_names = match rules {
        RuleEventTypes::Names(names) => names,
        RuleEventTypes::Any { rule } => {
            return Interest {
                syscalls: None,
                summary: format!(
                    "capturing every syscall: rule '{rule}' is not limited to some evt.type values"
                ),
                warnings,
            };
        }
    };
    let (removed, added): (Vec<&str>, Vec<&str>) = base
        .custom_set
        .iter()
        .map(String::as_str)
        .partition(|name| name.starts_with('!'));
    let mut to_numbers = |names: &mut dyn Iterator<Item = &str>, checked: bool| {
        let mut set = BTreeSet::new();
        for name in names {
            match syscall_of_event(name) {
                Some(nr) => {
                    set.insert(nr);
                }
                None if checked => warnings.push(format!(
                    "base_syscalls.custom_set: '{name}' is not an x86-64 syscall, ignored"
                )),
                // A rule's procexit, switch... are no syscalls: nothing to ask for.
                None => {}
            }
        }
        set
    };
    let for_rules = to_numbers(&mut rule_names.iter().copied(), false);
    let for_state = to_numbers(&mut state_event_names(), false);
    let custom = to_numbers(&mut added.iter().copied(), true);
    let removed = to_numbers(&mut removed.iter().map(|n| &n[1..]), true);

    let base_set = if custom.is_empty() {
        for_state.clone()
    } else if base.repair {
        custom.union(&for_state).copied().collect()
    } else {
        custom
    };
    let chosen: BTreeSet<u32> = for_rules
        .union(&base_set)
        .filter(|nr| !removed.contains(nr))
        .copied()
        .collect();
    let base_label = if base.custom_set.is_empty() {
        "the state"
    } else if base.repair {
        "base_syscalls.custom_set, repaired"
    } else {
        "base_syscalls.custom_set"
    };
    let names: Vec<&str> = chosen.iter().filter_map(|&nr| syscall_name(nr)).collect();
    Interest {
        summary: format!(
            "capturing {} syscalls ({} for the rules, {} for {base_label}): {}",
            chosen.len(),
            for_rules.len(),
            base_set.len(),
            names.join(" ")
        ),
        syscalls: Some(chosen),
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peregrine_driver_sys::syscall_number;

    fn nr(name: &str) -> u32 {
        syscall_number(name).unwrap()
    }

    fn rules<'a>(names: &[&'a str]) -> RuleEventTypes<'a> {
        RuleEventTypes::Names(names.iter().copied().collect())
    }

    fn base(custom: &[&str], repair: bool) -> BaseSyscalls {
        BaseSyscalls {
            custom_set: custom.iter().map(|s| s.to_string()).collect(),
            repair,
            all: false,
        }
    }

    #[test]
    fn rules_and_state_syscalls_by_default() {
        let got = choose(
            &rules(&["ptrace", "procexit", "pread"]),
            &base(&[], false),
            false,
        );
        let set = got.syscalls.unwrap();
        // The rules' syscalls, aliases resolved; procexit is no syscall.
        assert!(set.contains(&nr("ptrace")) && set.contains(&nr("pread64")));
        // The state's: processes, fds, cwd, users.
        for name in [
            "clone",
            "clone3",
            "execve",
            "openat",
            "close",
            "dup2",
            "connect",
            "fchdir",
            "setresuid",
        ] {
            assert!(set.contains(&nr(name)), "{name} missing");
        }
        // Nothing else: the floods rules never look at stay out.
        for name in ["getppid", "read", "write", "mmap", "futex"] {
            assert!(!set.contains(&nr(name)), "{name} should be left out");
        }
        assert!(got.summary.starts_with(&format!(
            "capturing {} syscalls (2 for the rules",
            set.len()
        )));
        assert!(got.warnings.is_empty());
    }

    #[test]
    fn every_syscall_when_asked_or_a_rule_is_open() {
        let open = RuleEventTypes::Any { rule: "Noisy" };
        let got = choose(&open, &base(&[], false), false);
        assert_eq!(got.syscalls, None);
        assert!(got.summary.contains("rule 'Noisy'"), "{}", got.summary);
        let all = BaseSyscalls {
            all: true,
            ..BaseSyscalls::default()
        };
        assert_eq!(choose(&rules(&["open"]), &all, false).syscalls, None);
        assert_eq!(
            choose(&rules(&["open"]), &base(&[], false), true).syscalls,
            None
        );
    }

    #[test]
    fn custom_set_replaces_repairs_and_removes() {
        let got = choose(
            &rules(&["ptrace"]),
            &base(&["openat", "!close", "nonsense"], false),
            false,
        );
        let set = got.syscalls.unwrap();
        assert_eq!(set, [nr("ptrace"), nr("openat")].into());
        assert_eq!(
            got.warnings,
            ["base_syscalls.custom_set: 'nonsense' is not an x86-64 syscall, ignored"]
        );
        // Repair adds the state's syscalls back; `!` still wins.
        let repaired = choose(
            &rules(&["ptrace"]),
            &base(&["openat", "!close"], true),
            false,
        );
        let set = repaired.syscalls.unwrap();
        assert!(set.contains(&nr("execve")) && !set.contains(&nr("close")));
        // A rule's syscall can be removed too.
        let minus = choose(&rules(&["ptrace"]), &base(&["!ptrace"], false), false);
        assert!(!minus.syscalls.unwrap().contains(&nr("ptrace")));
    }

    #[test]
    fn default_rules_leave_the_syscall_floods_out() {
        let ruleset = crate::ruleset::load(&crate::ruleset::built_in(), None);
        assert!(!ruleset.has_errors());
        let types = ruleset.syscall.event_type_names();
        let got = choose(&types, &BaseSyscalls::default(), false);
        let set = got
            .syscalls
            .unwrap_or_else(|| panic!("default rules must narrow: {}", got.summary));
        for name in [
            "execve",
            "openat",
            "connect",
            "ptrace",
            "finit_module",
            "setns",
            "chmod",
        ] {
            assert!(set.contains(&nr(name)), "{name}: {}", got.summary);
        }
        for name in ["getppid", "read", "write", "futex", "mmap", "nanosleep"] {
            assert!(!set.contains(&nr(name)), "{name}: {}", got.summary);
        }
    }
}
