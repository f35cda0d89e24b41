//! The syscalls the tracer stops on: the ones the module writes a specific
//! event for, minus read and write (the module's I/O events would cost a
//! stop per buffer, and no default rule reads them). sendto and sendmsg
//! are kept: a UDP socket's peer is only named there, and Falco's
//! outbound-connection macros match them.

use libc::c_long;

/// x86-64 syscall numbers the seccomp filter sends to the tracer.
pub const TRACED: &[c_long] = &[
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_clone,
    libc::SYS_clone3,
    libc::SYS_fork,
    libc::SYS_vfork,
    libc::SYS_open,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_creat,
    libc::SYS_close,
    libc::SYS_socket,
    libc::SYS_connect,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_setsockopt,
    libc::SYS_getsockopt,
    libc::SYS_chmod,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_chown,
    libc::SYS_lchown,
    libc::SYS_fchown,
    libc::SYS_fchownat,
    libc::SYS_symlink,
    libc::SYS_symlinkat,
    libc::SYS_link,
    libc::SYS_linkat,
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    libc::SYS_rename,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_chdir,
    libc::SYS_fchdir,
    libc::SYS_mkdir,
    libc::SYS_mkdirat,
    libc::SYS_mknod,
    libc::SYS_mknodat,
    libc::SYS_rmdir,
    libc::SYS_setns,
    libc::SYS_unshare,
    libc::SYS_ptrace,
    libc::SYS_setuid,
    libc::SYS_setgid,
    libc::SYS_setreuid,
    libc::SYS_setregid,
    libc::SYS_setresuid,
    libc::SYS_setresgid,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_dup,
    libc::SYS_dup2,
    libc::SYS_dup3,
    libc::SYS_kill,
    libc::SYS_tkill,
    libc::SYS_tgkill,
];

/// Whether the tracer writes events for this syscall.
pub fn is_traced(nr: u64) -> bool {
    TRACED.iter().any(|&t| t as u64 == nr)
}

/// The syscalls that also get an enter event (their path or address is
/// read before the kernel acts on it), as in the module.
pub fn has_enter_event(nr: u64) -> bool {
    [
        libc::SYS_open,
        libc::SYS_openat,
        libc::SYS_openat2,
        libc::SYS_creat,
        libc::SYS_connect,
    ]
    .iter()
    .any(|&t| t as u64 == nr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_holds_the_lifecycle_and_file_syscalls_but_not_io() {
        for nr in [59, 322, 56, 435, 57, 58, 2, 257, 437, 85, 42, 101] {
            assert!(is_traced(nr), "{nr}");
        }
        for nr in [0, 1, 39, 110] {
            assert!(!is_traced(nr), "{nr}");
        }
        assert!(has_enter_event(257) && has_enter_event(42) && !has_enter_event(59));
        assert!(TRACED.len() < 200, "the BPF jumps are u8 offsets");
    }
}
