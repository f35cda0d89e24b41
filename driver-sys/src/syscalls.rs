//! x86-64 syscall numbers, the unit of the module's interest set, and the
//! syscalls behind each event name of the scap schema.

#[path = "syscall_names.rs"]
mod names;

use names::SYSCALL_NAMES;

/// The x86-64 number of a syscall, by its kernel name.
pub fn syscall_number(name: &str) -> Option<u32> {
    if name.is_empty() {
        return None;
    }
    let nr = SYSCALL_NAMES.iter().position(|n| *n == name)?;
    u32::try_from(nr).ok()
}

/// The kernel name of an x86-64 syscall number.
pub fn syscall_name(nr: u32) -> Option<&'static str> {
    let name = *SYSCALL_NAMES.get(usize::try_from(nr).ok()?)?;
    (!name.is_empty()).then_some(name)
}

/// Event names of the scap schema that differ from the name of the x86-64
/// syscall they stand for (the rest are named after their syscall).
const EVENT_ALIASES: &[(&str, &str)] = &[
    ("pread", "pread64"),
    ("pwrite", "pwrite64"),
    ("prlimit", "prlimit64"),
    ("umount", "umount2"),
];

/// The syscall whose events an `evt.type` name selects, or None when the
/// name is not a syscall on x86-64 (procexit and the other tracepoint or
/// userspace events, and 32-bit-only syscalls).
pub fn syscall_of_event(event_name: &str) -> Option<u32> {
    let name = EVENT_ALIASES
        .iter()
        .find(|(event, _)| *event == event_name)
        .map_or(event_name, |(_, syscall)| syscall);
    syscall_number(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_the_kernel_abi() {
        assert_eq!(syscall_number("read"), Some(0));
        assert_eq!(syscall_number("execve"), Some(libc::SYS_execve as u32));
        assert_eq!(syscall_number("openat2"), Some(libc::SYS_openat2 as u32));
        assert_eq!(syscall_number("clone3"), Some(libc::SYS_clone3 as u32));
        assert_eq!(
            syscall_number("finit_module"),
            Some(libc::SYS_finit_module as u32)
        );
        assert_eq!(syscall_name(libc::SYS_getppid as u32), Some("getppid"));
        // Holes and unknown names.
        assert_eq!(syscall_name(400), None);
        assert_eq!(syscall_number(""), None);
        assert_eq!(syscall_number("no_such_syscall"), None);
    }

    #[test]
    fn event_names_map_to_their_syscalls() {
        assert_eq!(syscall_of_event("openat"), Some(libc::SYS_openat as u32));
        assert_eq!(syscall_of_event("pread"), Some(libc::SYS_pread64 as u32));
        assert_eq!(syscall_of_event("umount"), Some(libc::SYS_umount2 as u32));
        assert_eq!(syscall_of_event("umount2"), Some(libc::SYS_umount2 as u32));
        // Not syscalls: written whatever the interest set says, or never.
        assert_eq!(syscall_of_event("procexit"), None);
        assert_eq!(syscall_of_event("switch"), None);
        assert_eq!(syscall_of_event("socketcall"), None);
    }

    #[test]
    fn every_number_fits_the_interest_set() {
        let max = crate::abi::PG_SYSCALL_NR_MAX as usize;
        assert!(
            SYSCALL_NAMES.len() <= max,
            "{} syscalls",
            SYSCALL_NAMES.len()
        );
    }
}
