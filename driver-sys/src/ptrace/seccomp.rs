//! The seccomp-BPF filter installed in the workload before its exec: the
//! syscalls of interest stop at the tracer (SECCOMP_RET_TRACE), the others
//! run untouched, so the workload pays for a stop only where an event is
//! written.
//!
//! The kernel's rule to keep in mind: a SECCOMP_RET_TRACE with no tracer
//! attached fails the syscall with ENOSYS. The filter cannot be removed
//! once installed, so whoever installed it must stay attached until the
//! last tracee is gone (see `tracer.rs`: the tracer never detaches a
//! filtered tracee, it stops reporting and lets the syscalls through).

/// BPF_LD | BPF_W | BPF_ABS (BPF_LD and BPF_W are 0).
const BPF_LD_W_ABS: u16 = 0x20;
/// BPF_JMP | BPF_JEQ | BPF_K (BPF_K is 0).
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_RET_K: u16 = 0x06;
/// `offsetof(struct seccomp_data, nr)` and `.arch`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter program: listed numbers are traced, for 64-bit calls and
/// for 32-bit ones (their own numbers, see `ia32.rs`); other calls and
/// architectures are let through.
pub fn program(traced: &[libc::c_long]) -> Vec<libc::sock_filter> {
    let ia32: Vec<u32> = super::ia32::traced().collect();
    let (n64, n32) = (traced.len(), ia32.len());
    assert!(n64 + n32 + 3 < 256, "BPF jump offsets are u8");
    let trace_at = n64 + n32 + 7;
    let mut prog = Vec::with_capacity(trace_at + 1);
    prog.push(insn(BPF_LD_W_ABS, 0, 0, DATA_ARCH));
    // Not x86-64: to the i386 check after the 64-bit block.
    prog.push(insn(BPF_JMP_JEQ_K, 0, (n64 + 2) as u8, AUDIT_ARCH_X86_64));
    prog.push(insn(BPF_LD_W_ABS, 0, 0, DATA_NR));
    for &nr in traced {
        let at = prog.len();
        prog.push(insn(BPF_JMP_JEQ_K, (trace_at - at - 1) as u8, 0, nr as u32));
    }
    prog.push(insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    // Not i386 either: allowed.
    prog.push(insn(
        BPF_JMP_JEQ_K,
        0,
        (n32 + 1) as u8,
        super::ia32::AUDIT_ARCH_I386,
    ));
    prog.push(insn(BPF_LD_W_ABS, 0, 0, DATA_NR));
    for &nr in &ia32 {
        let at = prog.len();
        prog.push(insn(BPF_JMP_JEQ_K, (trace_at - at - 1) as u8, 0, nr));
    }
    prog.push(insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    debug_assert_eq!(prog.len(), trace_at);
    prog.push(insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_TRACE));
    prog
}

pub fn install_in_child(prog: &[libc::sock_filter]) -> i32 {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at `prog`, alive for the call; the kernel copies it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        return 0;
    }
    // SAFETY: reading errno right after the failing call.
    let err = unsafe { *libc::__errno_location() };
    if err != libc::EACCES {
        return err;
    }
    // SAFETY: plain prctl and seccomp calls with valid arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return *libc::__errno_location();
        }
        if libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        ) != 0
        {
            return *libc::__errno_location();
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the filter the way the kernel would, for the few opcodes it uses.
    fn run(prog: &[libc::sock_filter], arch: u32, nr: u32) -> u32 {
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                BPF_LD_W_ABS => acc = if i.k == DATA_ARCH { arch } else { nr },
                BPF_JMP_JEQ_K => pc += if acc == i.k { i.jt } else { i.jf } as usize,
                BPF_RET_K => return i.k,
                other => panic!("opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn listed_syscalls_trace_and_others_pass() {
        let traced = super::super::syscalls::TRACED;
        let prog = program(traced);
        for &nr in traced {
            assert_eq!(
                run(&prog, AUDIT_ARCH_X86_64, nr as u32),
                libc::SECCOMP_RET_TRACE
            );
        }
        for nr in [0u32, 1, 39, 60, 231, 0x4000_0002] {
            assert_eq!(run(&prog, AUDIT_ARCH_X86_64, nr), libc::SECCOMP_RET_ALLOW);
        }
        // 32-bit calls by their own numbers: execve is 11, socketcall 102;
        // 59 (x86-64's execve) is i386's mpx, and 3 its read.
        let i386 = super::super::ia32::AUDIT_ARCH_I386;
        for nr in [11u32, 5, 102, 120, 362] {
            assert_eq!(run(&prog, i386, nr), libc::SECCOMP_RET_TRACE, "{nr}");
        }
        for nr in [59u32, 3, 4, 0x4000_0002] {
            assert_eq!(run(&prog, i386, nr), libc::SECCOMP_RET_ALLOW, "{nr}");
        }
        // Any other architecture is let through.
        assert_eq!(run(&prog, 0xC000_00B7, 59), libc::SECCOMP_RET_ALLOW);
    }
}
