//! 32-bit (ia32) syscalls of an x86-64 kernel, translated to the x86-64
//! syscall of the same name, as Falco's driver reports them: a static
//! i386 binary's open, exec or connect raises the same event (and the same
//! alerts) as a 64-bit one.
//!
//! Only the syscalls the tracer writes events for are listed; the others
//! are let through by the filter and never translated. Numbers are the
//! kernel's (asm/unistd_32.h). Where i386 has a 16-bit-id call and a
//! `...32` one (chown/chown32, setuid/setuid32...), both map to the one
//! x86-64 call: Falco's table leaves some `...32` calls unmapped, which
//! would let a 32-bit chown pass unseen.
//!
//! i386 programs built against older kernels reach the socket calls
//! through `socketcall(call, args)`, whose arguments are an array of
//! 32-bit words in the caller's memory: [`socketcall`] names the call.

use libc::c_long;

/// `AUDIT_ARCH_I386`: the arch of a 32-bit syscall in seccomp data and
/// PTRACE_GET_SYSCALL_INFO.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// i386's `socketcall`.
pub const SOCKETCALL: u64 = 102;

/// (i386 number, x86-64 number) of every traced syscall i386 has.
pub const MAP: &[(u32, c_long)] = &[
    (11, libc::SYS_execve),
    (358, libc::SYS_execveat),
    (120, libc::SYS_clone),
    (435, libc::SYS_clone3),
    (2, libc::SYS_fork),
    (190, libc::SYS_vfork),
    (5, libc::SYS_open),
    (295, libc::SYS_openat),
    (437, libc::SYS_openat2),
    (8, libc::SYS_creat),
    (6, libc::SYS_close),
    (359, libc::SYS_socket),
    (362, libc::SYS_connect),
    (364, libc::SYS_accept4),
    (369, libc::SYS_sendto),
    (370, libc::SYS_sendmsg),
    (361, libc::SYS_bind),
    (363, libc::SYS_listen),
    (366, libc::SYS_setsockopt),
    (365, libc::SYS_getsockopt),
    (15, libc::SYS_chmod),
    (94, libc::SYS_fchmod),
    (306, libc::SYS_fchmodat),
    (182, libc::SYS_chown),
    (212, libc::SYS_chown),
    (16, libc::SYS_lchown),
    (198, libc::SYS_lchown),
    (95, libc::SYS_fchown),
    (207, libc::SYS_fchown),
    (298, libc::SYS_fchownat),
    (83, libc::SYS_symlink),
    (304, libc::SYS_symlinkat),
    (9, libc::SYS_link),
    (303, libc::SYS_linkat),
    (10, libc::SYS_unlink),
    (301, libc::SYS_unlinkat),
    (12, libc::SYS_chdir),
    (133, libc::SYS_fchdir),
    (38, libc::SYS_rename),
    (302, libc::SYS_renameat),
    (353, libc::SYS_renameat2),
    (39, libc::SYS_mkdir),
    (296, libc::SYS_mkdirat),
    (14, libc::SYS_mknod),
    (297, libc::SYS_mknodat),
    (40, libc::SYS_rmdir),
    (346, libc::SYS_setns),
    (310, libc::SYS_unshare),
    (26, libc::SYS_ptrace),
    (23, libc::SYS_setuid),
    (213, libc::SYS_setuid),
    (46, libc::SYS_setgid),
    (214, libc::SYS_setgid),
    (70, libc::SYS_setreuid),
    (203, libc::SYS_setreuid),
    (71, libc::SYS_setregid),
    (204, libc::SYS_setregid),
    (164, libc::SYS_setresuid),
    (208, libc::SYS_setresuid),
    (170, libc::SYS_setresgid),
    (210, libc::SYS_setresgid),
    (21, libc::SYS_mount),
    (52, libc::SYS_umount2),
    (128, libc::SYS_init_module),
    (350, libc::SYS_finit_module),
    (41, libc::SYS_dup),
    (63, libc::SYS_dup2),
    (330, libc::SYS_dup3),
    (37, libc::SYS_kill),
    (238, libc::SYS_tkill),
    (270, libc::SYS_tgkill),
];

/// The x86-64 number of a traced i386 syscall.
pub fn to_x64(nr: u64) -> Option<u64> {
    MAP.iter()
        .find(|(ia32, _)| u64::from(*ia32) == nr)
        .map(|(_, x64)| *x64 as u64)
}

/// The x86-64 syscall a `socketcall(call, ...)` stands for, and how many
/// 32-bit argument words it reads (linux/net.h's SYS_* numbering).
pub fn socketcall(call: u64) -> Option<(u64, usize)> {
    let (nr, words) = match call {
        1 => (libc::SYS_socket, 3),
        2 => (libc::SYS_bind, 3),
        3 => (libc::SYS_connect, 3),
        4 => (libc::SYS_listen, 2),
        5 => (libc::SYS_accept, 3),
        // send(fd, buf, len, flags): sendto without an address (the
        // words not read stay 0).
        9 => (libc::SYS_sendto, 4),
        11 => (libc::SYS_sendto, 6),
        14 => (libc::SYS_setsockopt, 5),
        15 => (libc::SYS_getsockopt, 5),
        16 => (libc::SYS_sendmsg, 3),
        18 => (libc::SYS_accept4, 4),
        _ => return None,
    };
    Some((nr as u64, words))
}

/// The i386 numbers the seccomp filter traces.
pub fn traced() -> impl Iterator<Item = u32> {
    MAP.iter()
        .map(|(ia32, _)| *ia32)
        .chain(std::iter::once(SOCKETCALL as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_traced_syscall_i386_has_is_mapped() {
        // accept has no i386 number of its own (socketcall only).
        for &nr in super::super::syscalls::TRACED {
            let mapped = MAP.iter().any(|(_, x64)| *x64 == nr);
            assert!(mapped || nr == libc::SYS_accept, "x86-64 syscall {nr}");
        }
        assert_eq!(to_x64(5), Some(libc::SYS_open as u64));
        assert_eq!(to_x64(11), Some(libc::SYS_execve as u64));
        assert_eq!(to_x64(3), None, "i386 read is not traced");
        assert_eq!(socketcall(3), Some((libc::SYS_connect as u64, 3)));
        assert_eq!(socketcall(9), Some((libc::SYS_sendto as u64, 4)));
        assert_eq!(socketcall(16), Some((libc::SYS_sendmsg as u64, 3)));
    }

    #[test]
    fn no_i386_number_is_listed_twice() {
        let mut seen: Vec<u32> = traced().collect();
        seen.sort_unstable();
        let n = seen.len();
        seen.dedup();
        assert_eq!(seen.len(), n);
    }
}
