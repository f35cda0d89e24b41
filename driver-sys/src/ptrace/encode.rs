//! Syscall stops turned into records, parameter for parameter as the
//! module's fillers write them (kmod/fillers.c), from the tracee's
//! registers, memory and /proc instead of the task struct.
//!
//! Differences a rule could see, all of values, none of layout:
//! - cwd (clone/execve parameter 7) is filled from /proc/PID/cwd, where the
//!   module leaves it empty: the tracer's processes start after Peregrine's
//!   /proc scan, so this is where their working directory is learnt.
//! - O_F_CREATED is decided from whether the path existed at the syscall's
//!   entry (the module reads FMODE_CREATED): a file made by someone else in
//!   between is counted as created by the tracee.
//! - Unix socket tuples carry 0 for the kernel socket addresses; accept's
//!   queue figures are 0.
//! - A string the tracee's memory does not hold is sent empty where the
//!   module would drop the whole record as a page fault.

use super::flags;
use super::memory::Memory;
use super::procinfo::{self, ExeInfo, ProcInfo};
use super::record::RecordBuilder;
use crate::abi::*;
use libc::c_long;

/// The longest path read from the tracee (PATH_MAX).
const PATH_MAX: usize = 4096;

/// A syscall as seen at its entry.
#[derive(Debug, Clone)]
pub struct Call {
    pub nr: u64,
    pub args: [u64; 6],
    /// execve's file name, read at entry (the old memory is gone on success).
    pub exec_filename: Option<Vec<u8>>,
    /// For an open that may create: whether the path existed at entry.
    pub existed_at_entry: Option<bool>,
    /// A 32-bit (ia32) call: the structures in its memory have i386's
    /// layout (4-byte pointers and longs, 32-bit time_t in the old calls).
    pub compat: bool,
}

impl Call {
    pub fn new(nr: u64, args: [u64; 6]) -> Call {
        Call {
            nr,
            args,
            exec_filename: None,
            existed_at_entry: None,
            compat: false,
        }
    }
}

fn is(nr: u64, sys: c_long) -> bool {
    nr == sys as u64
}

fn fd_arg(v: u64) -> i64 {
    v as i32 as i64
}

/// Writes records into an output buffer.
#[derive(Debug)]
pub struct Encoder {
    b: RecordBuilder,
    /// Bytes of init_module images kept (the module's snaplen).
    pub snaplen: u32,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            b: RecordBuilder::default(),
            snaplen: PG_DEFAULT_SNAPLEN,
        }
    }
}

impl Encoder {
    fn finish(&mut self, out: &mut Vec<u8>, ts: u64, tid: i32, event_type: u32, nparams: u32) {
        debug_assert_eq!(self.b.nparams(), nparams as usize, "type {event_type}");
        self.b.finish(out, ts, tid as u64, event_type as u16);
    }

    /// Facts to take at entry that the exit can no longer see.
    pub fn prepare(&self, call: &mut Call, mem: &Memory, tgid: i32) {
        let a = call.args;
        if is(call.nr, libc::SYS_execve) {
            call.exec_filename = mem.cstr(a[0], PATH_MAX);
        }
        let (dirfd, path, oflags) = match call.nr as c_long {
            libc::SYS_open => (libc::AT_FDCWD as i64, a[0], a[1]),
            libc::SYS_creat => (libc::AT_FDCWD as i64, a[0], libc::O_CREAT as u64),
            libc::SYS_openat => (fd_arg(a[0]), a[1], a[2]),
            libc::SYS_openat2 => (fd_arg(a[0]), a[1], mem.u64(a[2]).unwrap_or(0)),
            _ => return,
        };
        if oflags as i32 & libc::O_CREAT == 0 {
            return;
        }
        if let Some(path) = mem.cstr(path, PATH_MAX) {
            call.existed_at_entry = Some(path_exists(tgid, dirfd, &path));
        }
    }

    /// The enter event of open, openat, openat2, creat and connect.
    pub fn enter(&mut self, out: &mut Vec<u8>, ts: u64, tid: i32, call: &Call, mem: &Memory) {
        self.b.begin();
        if is(call.nr, libc::SYS_connect) {
            self.b.i64(fd_arg(call.args[0]));
            self.sockaddr(mem, call.args[1], call.args[2]);
            self.finish(out, ts, tid, PG_EVT_CONNECT_E, PG_EVT_CONNECT_E_NPARAMS);
        } else {
            self.open_family(out, ts, tid, call, mem, None);
        }
    }

    /// The exit event of `call`, which returned `ret`.
    pub fn exit(
        &mut self,
        out: &mut Vec<u8>,
        ts: u64,
        tid: i32,
        call: &Call,
        ret: i64,
        mem: &Memory,
    ) {
        let a = call.args;
        self.b.begin();
        macro_rules! done {
            ($t:ident) => {{
                let (ty, n) = evt_of(stringify!($t));
                self.finish(out, ts, tid, ty, n);
            }};
        }
        let path = |addr: u64| mem.cstr(addr, PATH_MAX);
        match call.nr as c_long {
            libc::SYS_open | libc::SYS_openat | libc::SYS_openat2 | libc::SYS_creat => {
                self.open_family(out, ts, tid, call, mem, Some(ret))
            }
            libc::SYS_connect => {
                let b = &mut self.b;
                b.i64(ret);
                if ret == 0 || ret == -(libc::EINPROGRESS as i64) {
                    let tuple = socket_tuple(
                        tid,
                        fd_arg(a[0]),
                        false,
                        mem,
                        (a[1], a[2]),
                        NamedPeer::OnlyWhenUnknown,
                    );
                    b.bytes(&tuple);
                } else {
                    b.empty();
                }
                b.i64(fd_arg(a[0]));
                self.sockaddr(mem, a[1], a[2]);
                done!(CONNECT_X)
            }
            libc::SYS_sendto => {
                // A failed send still shows what it tried to send.
                let n = if ret > 0 { ret as u64 } else { a[2] };
                let n = n.min(u64::from(self.snaplen)) as usize;
                let data = if n == 0 { None } else { mem.bytes(a[1], n) };
                let b = &mut self.b;
                b.i64(ret);
                match data {
                    Some(data) => b.bytes(&data),
                    None => b.empty(),
                }
                b.i64(fd_arg(a[0]));
                b.u32(a[2] as u32);
                if ret >= 0 {
                    b.bytes(&socket_tuple(
                        tid,
                        fd_arg(a[0]),
                        false,
                        mem,
                        (a[4], a[5]),
                        NamedPeer::Wins,
                    ));
                } else {
                    b.empty();
                }
                done!(SENDTO_X)
            }
            libc::SYS_sendmsg => {
                let fd = fd_arg(a[0]);
                let Some(msg) = mem.msghdr(a[1], call.compat) else {
                    let b = &mut self.b;
                    b.i64(ret);
                    b.empty();
                    b.i64(fd);
                    b.empty();
                    b.empty();
                    done!(SENDMSG_X);
                    return;
                };
                let iov = mem.iovecs(msg.iov, msg.iovlen, call.compat);
                // As the module: an unreadable entry makes the size 0.
                let total = iov
                    .as_deref()
                    .map_or(0, |v| v.iter().fold(0u64, |t, e| t.wrapping_add(e.1)));
                let data = match &iov {
                    Some(v) if ret > 0 => {
                        mem.gather(v, total.min(u64::from(self.snaplen)) as usize)
                    }
                    _ => Vec::new(),
                };
                let tuple = if ret >= 0 {
                    Some(socket_tuple(
                        tid,
                        fd,
                        false,
                        mem,
                        (msg.name, msg.namelen),
                        NamedPeer::Wins,
                    ))
                } else {
                    None
                };
                let b = &mut self.b;
                b.i64(ret);
                b.bytes(&data);
                b.i64(fd);
                b.u32(total as u32);
                match tuple {
                    Some(t) => b.bytes(&t),
                    None => b.empty(),
                }
                done!(SENDMSG_X)
            }
            libc::SYS_accept | libc::SYS_accept4 => {
                let is4 = is(call.nr, libc::SYS_accept4);
                let b = &mut self.b;
                b.i64(ret);
                if ret >= 0 {
                    b.bytes(&socket_tuple(tid, ret, true, mem, (0, 0), NamedPeer::Wins));
                } else {
                    b.empty();
                }
                b.u8(0);
                b.u32(0);
                b.u32(0);
                if is4 {
                    b.u32(a[3] as u32);
                    done!(ACCEPT4_6_X)
                } else {
                    done!(ACCEPT_5_X)
                }
            }
            libc::SYS_ptrace => {
                let request = flags::ptrace_request(a[0]);
                let b = &mut self.b;
                b.i64(ret);
                let dyn_u64 = |b: &mut RecordBuilder, v: u64| {
                    let mut buf = [0u8; 9];
                    buf[0] = PG_PTRACE_IDX_UINT64 as u8;
                    buf[1..].copy_from_slice(&v.to_ne_bytes());
                    b.bytes(&buf);
                };
                if ret < 0 {
                    dyn_u64(b, 0);
                    dyn_u64(b, 0);
                } else {
                    dyn_u64(b, a[2]);
                    match request {
                        // PEEK*: the word the kernel stored at `data`,
                        // a compat_ulong_t for a 32-bit caller.
                        2..=4 => dyn_u64(b, mem.word(a[3], call.compat).unwrap_or(0)),
                        8 | 10 | 12 | 13 => b.bytes(&[PG_PTRACE_IDX_SIGTYPE as u8, a[3] as u8]),
                        _ => dyn_u64(b, a[3]),
                    }
                }
                b.u16(request);
                b.i64(fd_arg(a[1]));
                done!(PTRACE_X)
            }
            libc::SYS_execve | libc::SYS_execveat => {
                let execveat = is(call.nr, libc::SYS_execveat);
                let argv = if ret == 0 {
                    None
                } else {
                    Some(mem.string_array(
                        if execveat { a[2] } else { a[1] },
                        procinfo::ARGS_MAX,
                        call.compat,
                    ))
                };
                self.execve_x(out, ts, tid, call, ret, argv, mem)
            }
            libc::SYS_clone => self.clone_x(out, ts, tid, PG_EVT_CLONE_20_X, a[0], ret),
            libc::SYS_clone3 => {
                let fl = if a[1] >= 8 {
                    mem.u64(a[0]).unwrap_or(0)
                } else {
                    0
                };
                self.clone_x(out, ts, tid, PG_EVT_CLONE3_X, fl, ret)
            }
            libc::SYS_fork => self.clone_x(out, ts, tid, PG_EVT_FORK_20_X, 0, ret),
            libc::SYS_vfork => self.clone_x(out, ts, tid, PG_EVT_VFORK_20_X, 0, ret),
            libc::SYS_close => {
                self.b.i64(ret);
                self.b.i64(fd_arg(a[0]));
                done!(CLOSE_X)
            }
            libc::SYS_socket => {
                let b = &mut self.b;
                b.i64(ret);
                b.u32(flags::family(a[0] as u16) as u32);
                b.u32(a[1] as u32);
                b.u32(a[2] as u32);
                b.u32(flags::socket_flags(a[1]));
                done!(SOCKET_X)
            }
            libc::SYS_bind => {
                self.b.i64(ret);
                self.sockaddr(mem, a[1], a[2]);
                self.b.i64(fd_arg(a[0]));
                done!(BIND_X)
            }
            libc::SYS_listen => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.u32(a[1] as u32);
                done!(LISTEN_X)
            }
            libc::SYS_chmod => {
                let b = &mut self.b;
                b.i64(ret);
                b.opt_str(path(a[0]));
                b.u32((a[1] & 0o7777) as u32);
                done!(CHMOD_X)
            }
            libc::SYS_chdir => {
                // The path as given: the state resolves it against the
                // working directory it knows, as libsinsp does.
                self.b.i64(ret);
                self.b.opt_str(path(a[0]));
                self.finish(out, ts, tid, CHDIR_X.0, CHDIR_X.1);
            }
            libc::SYS_fchdir => {
                self.b.i64(ret);
                self.b.i64(fd_arg(a[0]));
                self.finish(out, ts, tid, FCHDIR_X.0, FCHDIR_X.1);
            }
            libc::SYS_fchmod => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.u32((a[1] & 0o7777) as u32);
                done!(FCHMOD_X)
            }
            libc::SYS_fchmodat => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.opt_str(path(a[1]));
                b.u32((a[2] & 0o7777) as u32);
                done!(FCHMODAT_X)
            }
            libc::SYS_symlink | libc::SYS_link | libc::SYS_rename => {
                let b = &mut self.b;
                b.i64(ret);
                b.opt_str(path(a[0]));
                b.opt_str(path(a[1]));
                match call.nr as c_long {
                    libc::SYS_symlink => done!(SYMLINK_X),
                    libc::SYS_link => done!(LINK_2_X),
                    _ => done!(RENAME_X),
                }
            }
            libc::SYS_symlinkat => {
                let b = &mut self.b;
                b.i64(ret);
                b.opt_str(path(a[0]));
                b.i64(fd_arg(a[1]));
                b.opt_str(path(a[2]));
                done!(SYMLINKAT_X)
            }
            libc::SYS_linkat => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.opt_str(path(a[1]));
                b.i64(fd_arg(a[2]));
                b.opt_str(path(a[3]));
                b.u32(a[4] as u32);
                done!(LINKAT_2_X)
            }
            libc::SYS_unlink | libc::SYS_rmdir => {
                self.b.i64(ret);
                self.b.opt_str(path(a[0]));
                if is(call.nr, libc::SYS_unlink) {
                    done!(UNLINK_2_X)
                } else {
                    done!(RMDIR_2_X)
                }
            }
            libc::SYS_unlinkat => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.opt_str(path(a[1]));
                b.u32(a[2] as u32 & libc::AT_REMOVEDIR as u32);
                done!(UNLINKAT_2_X)
            }
            libc::SYS_renameat | libc::SYS_renameat2 => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.opt_str(path(a[1]));
                b.i64(fd_arg(a[2]));
                b.opt_str(path(a[3]));
                if is(call.nr, libc::SYS_renameat2) {
                    b.u32(a[4] as u32 & 7);
                    done!(RENAMEAT2_X)
                } else {
                    done!(RENAMEAT_X)
                }
            }
            libc::SYS_mkdir => {
                let b = &mut self.b;
                b.i64(ret);
                b.opt_str(path(a[0]));
                b.u32(a[1] as u32);
                done!(MKDIR_2_X)
            }
            libc::SYS_mkdirat => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.opt_str(path(a[1]));
                b.u32(a[2] as u32);
                done!(MKDIRAT_X)
            }
            libc::SYS_mknod => {
                let b = &mut self.b;
                b.i64(ret);
                b.opt_str(path(a[0]));
                b.u32(flags::mknod_mode(a[1]));
                b.u32(flags::mknod_dev(a[2]));
                done!(MKNOD_X)
            }
            libc::SYS_mknodat => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.opt_str(path(a[1]));
                b.u32(flags::mknod_mode(a[2]));
                b.u32(flags::mknod_dev(a[3]));
                done!(MKNODAT_X)
            }
            libc::SYS_setsockopt | libc::SYS_getsockopt => {
                let get = is(call.nr, libc::SYS_getsockopt);
                // getsockopt's length is what the kernel wrote back.
                let optlen = if get {
                    mem.bytes(a[4], 4)
                        .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
                        .map_or(0, u32::from_ne_bytes)
                } else {
                    a[4] as u32
                };
                let opt = flags::sockopt(a[1], a[2]);
                let tv32 = call.compat && flags::sockopt_old_timeval(a[1], a[2]);
                let val = self.sockopt_val(opt.map(|o| o.1), a[3], optlen, tv32, mem);
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.u8(flags::sockopt_level(a[1]));
                b.u8(opt.map_or(0, |o| o.0));
                b.bytes(&val);
                b.u32(optlen);
                if get {
                    done!(GETSOCKOPT_X)
                } else {
                    done!(SETSOCKOPT_X)
                }
            }
            libc::SYS_dup => {
                self.b.i64(ret);
                self.b.i64(fd_arg(a[0]));
                done!(DUP_1_X)
            }
            libc::SYS_dup2 | libc::SYS_dup3 => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.i64(fd_arg(a[1]));
                if is(call.nr, libc::SYS_dup3) {
                    b.u32(flags::open_flags(a[2]) & flags::SCAP_O_CLOEXEC);
                    done!(DUP3_X)
                } else {
                    done!(DUP2_X)
                }
            }
            libc::SYS_chown | libc::SYS_lchown => {
                let b = &mut self.b;
                b.i64(ret);
                b.opt_str(path(a[0]));
                b.u32(a[1] as u32);
                b.u32(a[2] as u32);
                if is(call.nr, libc::SYS_chown) {
                    done!(CHOWN_X)
                } else {
                    done!(LCHOWN_X)
                }
            }
            libc::SYS_fchown => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.u32(a[1] as u32);
                b.u32(a[2] as u32);
                done!(FCHOWN_X)
            }
            libc::SYS_fchownat => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.opt_str(path(a[1]));
                b.u32(a[2] as u32);
                b.u32(a[3] as u32);
                // As Falco's driver: AT_SYMLINK_FOLLOW and AT_EMPTY_PATH
                // only (scap's values are the kernel's); the kernel's
                // AT_SYMLINK_NOFOLLOW is dropped.
                b.u32(a[4] as u32 & (libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) as u32);
                done!(FCHOWNAT_X)
            }
            libc::SYS_setuid | libc::SYS_setgid => {
                self.b.i64(ret);
                self.b.u32(a[0] as u32);
                if is(call.nr, libc::SYS_setuid) {
                    done!(SETUID_X)
                } else {
                    done!(SETGID_X)
                }
            }
            libc::SYS_setreuid | libc::SYS_setregid => {
                let b = &mut self.b;
                b.i64(ret);
                b.u32(a[0] as u32);
                b.u32(a[1] as u32);
                if is(call.nr, libc::SYS_setreuid) {
                    done!(SETREUID_X)
                } else {
                    done!(SETREGID_X)
                }
            }
            libc::SYS_setresuid | libc::SYS_setresgid => {
                let b = &mut self.b;
                b.i64(ret);
                b.u32(a[0] as u32);
                b.u32(a[1] as u32);
                b.u32(a[2] as u32);
                if is(call.nr, libc::SYS_setresuid) {
                    done!(SETRESUID_X)
                } else {
                    done!(SETRESGID_X)
                }
            }
            libc::SYS_setns => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.u32(flags::clone_flags(a[1]));
                done!(SETNS_X)
            }
            libc::SYS_unshare => {
                self.b.i64(ret);
                self.b.u32(flags::clone_flags(a[0]));
                done!(UNSHARE_X)
            }
            libc::SYS_mount => {
                let mut mflags = a[3];
                // The historical magic in the top half is not a flag.
                if mflags & 0xffff_0000 == 0xC0ED_0000 {
                    mflags &= 0xffff;
                }
                let b = &mut self.b;
                b.i64(ret);
                b.opt_str(path(a[0]));
                b.opt_str(path(a[1]));
                b.opt_str(path(a[2]));
                b.u32(mflags as u32);
                done!(MOUNT_X)
            }
            libc::SYS_umount2 => {
                let b = &mut self.b;
                b.i64(ret);
                b.opt_str(path(a[0]));
                b.u32(a[1] as u32 & 0xf);
                done!(UMOUNT2_X)
            }
            libc::SYS_init_module => {
                let n = (a[1] as usize).min(self.snaplen as usize);
                let image = if n == 0 { None } else { mem.bytes(a[0], n) };
                let b = &mut self.b;
                b.i64(ret);
                match image {
                    Some(image) => b.bytes(&image),
                    None => b.empty(),
                }
                b.u64(a[1]);
                b.opt_str(path(a[2]));
                done!(INIT_MODULE_X)
            }
            libc::SYS_finit_module => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.opt_str(path(a[1]));
                b.u32(a[2] as u32 & 7);
                done!(FINIT_MODULE_X)
            }
            libc::SYS_kill | libc::SYS_tkill => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.u8(a[1] as u8);
                if is(call.nr, libc::SYS_kill) {
                    done!(KILL_X)
                } else {
                    done!(TKILL_X)
                }
            }
            libc::SYS_tgkill => {
                let b = &mut self.b;
                b.i64(ret);
                b.i64(fd_arg(a[0]));
                b.i64(fd_arg(a[1]));
                b.u8(a[2] as u8);
                done!(TGKILL_X)
            }
            _ => {
                // Only reached by a syscall added to the traced set without
                // a filler here: the module's generic event, without the
                // ppm_sc id it takes from its own table.
                let b = &mut self.b;
                b.u16(0);
                b.u16(call.nr as u16);
                self.finish(out, ts, tid, PG_EVT_GENERIC_X, PG_EVT_GENERIC_X_NPARAMS);
            }
        }
    }

    /// A socket option's `val` (PT_DYN): its type byte, then the value as
    /// the module writes it (0 when unreadable; raw bytes up to snaplen
    /// for an option scap does not type). `tv32`: the value is a 32-bit
    /// caller's struct timeval (2 x s32), that of SO_*TIMEO_OLD.
    fn sockopt_val(
        &self,
        idx: Option<u8>,
        addr: u64,
        optlen: u32,
        tv32: bool,
        mem: &Memory,
    ) -> Vec<u8> {
        let idx = idx.unwrap_or(flags::SOCKOPT_IDX_UNKNOWN);
        let word = |n: usize| mem.bytes(addr, n).filter(|b| b.len() == n);
        let mut out = vec![idx];
        match idx {
            flags::SOCKOPT_IDX_ERRNO => {
                let v = word(4).map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                out.extend_from_slice(&(-i64::from(v)).to_ne_bytes());
            }
            flags::SOCKOPT_IDX_UINT32 => {
                out.extend_from_slice(&word(4).unwrap_or_else(|| vec![0; 4]));
            }
            flags::SOCKOPT_IDX_UINT64 => {
                out.extend_from_slice(&word(8).unwrap_or_else(|| vec![0; 8]));
            }
            flags::SOCKOPT_IDX_TIMEVAL => {
                let half = if tv32 { 4 } else { 8 };
                let ns = word(2 * half).map_or(0, |b| {
                    let signed = |w: &[u8]| match *w {
                        [a, b, c, d] => i64::from(i32::from_ne_bytes([a, b, c, d])),
                        _ => i64::from_ne_bytes(w.try_into().unwrap_or([0; 8])),
                    };
                    let (sec, usec) = b.split_at(half);
                    signed(sec)
                        .wrapping_mul(1_000_000_000)
                        .wrapping_add(signed(usec).wrapping_mul(1000))
                });
                out.extend_from_slice(&ns.to_ne_bytes());
            }
            _ => {
                let n = optlen.min(self.snaplen) as usize;
                if n > 0 {
                    if let Some(b) = word(n) {
                        out.extend_from_slice(&b);
                    }
                }
            }
        }
        out
    }

    /// open/openat/openat2/creat, enter (ret None) or exit.
    fn open_family(
        &mut self,
        out: &mut Vec<u8>,
        ts: u64,
        tid: i32,
        call: &Call,
        mem: &Memory,
        ret: Option<i64>,
    ) {
        let a = call.args;
        let enter = ret.is_none();
        let mut resolve = 0;
        let (dirfd, path, oflags, mode, (ty, n)) = match call.nr as c_long {
            libc::SYS_open => (
                None,
                a[0],
                a[1],
                a[2],
                pick(enter, evt_of("OPEN_E"), evt_of("OPEN_X")),
            ),
            libc::SYS_creat => (
                None,
                a[0],
                (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64,
                a[1],
                pick(enter, evt_of("CREAT_E"), evt_of("CREAT_X")),
            ),
            libc::SYS_openat => (
                Some(fd_arg(a[0])),
                a[1],
                a[2],
                a[3],
                pick(enter, evt_of("OPENAT_2_E"), evt_of("OPENAT_2_X")),
            ),
            libc::SYS_openat2 => {
                // struct open_how { u64 flags, mode, resolve }
                let how = if a[3] >= 24 {
                    mem.bytes(a[2], 24)
                } else {
                    None
                };
                let word = |i: usize| {
                    how.as_ref()
                        .and_then(|h| h.get(i * 8..i * 8 + 8))
                        .and_then(|w| w.try_into().ok())
                        .map(u64::from_ne_bytes)
                        .unwrap_or(0)
                };
                resolve = word(2);
                (
                    Some(fd_arg(a[0])),
                    a[1],
                    word(0),
                    word(1),
                    pick(enter, evt_of("OPENAT2_E"), evt_of("OPENAT2_X")),
                )
            }
            _ => return,
        };
        let (mut dev, mut ino, mut created) = (0, 0, false);
        if let Some(fd) = ret.filter(|&r| r >= 0) {
            (dev, ino) = procinfo::fd_dev_ino(tid, fd);
            let excl = oflags as i32 & libc::O_EXCL != 0;
            let tmpfile = oflags as i32 & (libc::O_TMPFILE & !libc::O_DIRECTORY) != 0;
            created = oflags as i32 & libc::O_CREAT != 0
                && (excl || call.existed_at_entry == Some(false))
                || tmpfile;
        }
        let is_creat = is(call.nr, libc::SYS_creat);
        let b = &mut self.b;
        b.begin();
        if let Some(r) = ret {
            b.i64(r);
        }
        if let Some(dirfd) = dirfd {
            b.i64(dirfd);
        }
        b.opt_str(mem.cstr(path, PATH_MAX));
        if !is_creat {
            b.u32(flags::open_flags(oflags) | if created { flags::SCAP_O_F_CREATED } else { 0 });
        }
        b.u32(flags::open_mode(oflags, mode));
        if is(call.nr, libc::SYS_openat2) {
            b.u32(flags::resolve_flags(resolve));
        }
        if !enter {
            b.u32(dev);
            b.u64(ino);
            if is_creat {
                b.u16(0);
            }
        }
        self.finish(out, ts, tid, ty, n);
    }

    /// A sockaddr from the tracee's memory in scap's packed form.
    fn sockaddr(&mut self, mem: &Memory, addr: u64, len: u64) {
        let len = (len as usize).min(128);
        match mem.bytes(addr, len).filter(|b| b.len() >= 2) {
            Some(raw) => self.b.bytes(&pack_sockaddr(&raw)),
            None => self.b.empty(),
        }
    }

    /// Parameters 2..15 shared by clone and execve exits.
    fn process_common(&mut self, tid: i32, info: &ProcInfo, argv: Option<Vec<u8>>) {
        let area = argv.unwrap_or_else(|| info.cmdline.clone());
        let b = &mut self.b;
        if area.is_empty() {
            b.empty();
            b.empty();
        } else {
            let first = area
                .iter()
                .position(|&c| c == 0)
                .map_or(area.len(), |p| p + 1);
            b.bytes(&area[..first]);
            b.bytes(&area[first..]);
        }
        b.i64(tid as i64);
        b.i64(info.tgid);
        b.i64(info.ppid);
        b.bytes(&info.cwd);
        b.i64(info.fdlimit);
        b.u64(info.pgft_maj);
        b.u64(info.pgft_min);
        b.u32(info.vm_size_kb);
        b.u32(info.vm_rss_kb);
        b.u32(info.vm_swap_kb);
        b.str(&info.comm);
        b.bytes(&info.cgroups);
    }

    /// A clone-family exit, in the parent (ret = the child's tid) or in
    /// the child (ret = 0).
    pub fn clone_x(
        &mut self,
        out: &mut Vec<u8>,
        ts: u64,
        tid: i32,
        event_type: u32,
        clone_flags: u64,
        ret: i64,
    ) {
        let info = ProcInfo::read(tid);
        self.b.begin();
        self.b.i64(ret);
        self.process_common(tid, &info, None);
        let mut scap_flags = flags::clone_flags(clone_flags);
        if info.in_child_pidns {
            scap_flags |= flags::SCAP_CL_CHILD_IN_PIDNS;
        }
        let b = &mut self.b;
        b.u32(scap_flags);
        b.u32(info.euid);
        b.u32(info.egid);
        b.i64(info.vtid);
        b.i64(info.vpid);
        b.u64(if ret == 0 {
            procinfo::pidns_init_start_ns()
        } else {
            0
        });
        self.finish(out, ts, tid, event_type, PG_EVT_CLONE_20_X_NPARAMS);
    }

    /// The child's side of a clone, at its first stop: the event type
    /// follows the syscall its parent made.
    pub fn clone_child(&mut self, out: &mut Vec<u8>, ts: u64, tid: i32, nr: u64, args: [u64; 6]) {
        let mem = Memory {
            pid: nix::unistd::Pid::from_raw(tid),
        };
        let (ty, fl) = match nr as c_long {
            libc::SYS_clone3 => (
                PG_EVT_CLONE3_X,
                if args[1] >= 8 {
                    mem.u64(args[0]).unwrap_or(0)
                } else {
                    0
                },
            ),
            libc::SYS_fork => (PG_EVT_FORK_20_X, 0),
            libc::SYS_vfork => (PG_EVT_VFORK_20_X, 0),
            _ => (PG_EVT_CLONE_20_X, args[0]),
        };
        self.clone_x(out, ts, tid, ty, fl, 0);
    }

    #[allow(clippy::too_many_arguments)]
    fn execve_x(
        &mut self,
        out: &mut Vec<u8>,
        ts: u64,
        tid: i32,
        call: &Call,
        ret: i64,
        argv: Option<Vec<u8>>,
        mem: &Memory,
    ) {
        let execveat = is(call.nr, libc::SYS_execveat);
        let info = ProcInfo::read(tid);
        let exe = ExeInfo::read(tid);
        self.b.begin();
        self.b.i64(ret);
        self.process_common(tid, &info, argv);
        let b = &mut self.b;
        if ret == 0 {
            b.bytes(&procinfo::environ(tid));
        } else {
            // A failed exec: the environment it was given, as Falco's driver.
            let envp = call.args[if execveat { 3 } else { 2 }];
            b.bytes(&mem.string_array(envp, procinfo::ARGS_MAX, call.compat));
        }
        b.u32(info.tty);
        b.i64(info.pgid);
        b.u32(info.loginuid);
        b.u32(0);
        b.u64(info.cap_inh);
        b.u64(info.cap_prm);
        b.u64(info.cap_eff);
        b.u64(exe.ino);
        b.u64(exe.ctime_ns);
        b.u64(exe.mtime_ns);
        b.u32(info.euid);
        if exe.path.is_empty() {
            b.empty();
        } else {
            b.str(&exe.path);
        }
        b.i64(info.pgid);
        b.u32(info.egid);
        if execveat {
            self.finish(out, ts, tid, PG_EVT_EXECVEAT_X, PG_EVT_EXECVEAT_X_NPARAMS);
        } else {
            let name = call
                .exec_filename
                .clone()
                .or_else(|| mem.cstr(call.args[0], PATH_MAX));
            b.opt_str(name);
            self.finish(out, ts, tid, PG_EVT_EXECVE_19_X, PG_EVT_EXECVE_19_X_NPARAMS);
        }
    }

    /// A thread's exit, with its wait status.
    pub fn procexit(&mut self, out: &mut Vec<u8>, ts: u64, tid: i32, status: i32) {
        let b = &mut self.b;
        b.begin();
        b.i64(status as i64);
        b.i64(((status >> 8) & 0xff) as i64);
        let sig = status & 0x7f;
        b.u8(if sig != 0 && sig != 0x7f {
            sig as u8
        } else {
            0
        });
        b.u8((status & 0x80 != 0) as u8);
        b.i64(0);
        self.finish(
            out,
            ts,
            tid,
            PG_EVT_PROCEXIT_1_E,
            PG_EVT_PROCEXIT_1_E_NPARAMS,
        );
    }
}

fn pick(enter: bool, e: (u32, u32), x: (u32, u32)) -> (u32, u32) {
    if enter {
        e
    } else {
        x
    }
}

/// chdir and fchdir exits (Falco's PPME_SYSCALL_CHDIR_X: res, path;
/// PPME_SYSCALL_FCHDIR_X: res, fd). Only the tracer writes them so far, so
/// they are not in the module's ABI header.
const CHDIR_X: (u32, u32) = (95, 2);
const FCHDIR_X: (u32, u32) = (97, 2);

/// Event type and parameter count by the ABI's name (without PG_EVT_).
fn evt_of(name: &str) -> (u32, u32) {
    match name {
        "OPEN_E" => (PG_EVT_OPEN_E, PG_EVT_OPEN_E_NPARAMS),
        "OPEN_X" => (PG_EVT_OPEN_X, PG_EVT_OPEN_X_NPARAMS),
        "CREAT_E" => (PG_EVT_CREAT_E, PG_EVT_CREAT_E_NPARAMS),
        "CREAT_X" => (PG_EVT_CREAT_X, PG_EVT_CREAT_X_NPARAMS),
        "OPENAT_2_E" => (PG_EVT_OPENAT_2_E, PG_EVT_OPENAT_2_E_NPARAMS),
        "OPENAT_2_X" => (PG_EVT_OPENAT_2_X, PG_EVT_OPENAT_2_X_NPARAMS),
        "OPENAT2_E" => (PG_EVT_OPENAT2_E, PG_EVT_OPENAT2_E_NPARAMS),
        "OPENAT2_X" => (PG_EVT_OPENAT2_X, PG_EVT_OPENAT2_X_NPARAMS),
        "CLOSE_X" => (PG_EVT_CLOSE_X, PG_EVT_CLOSE_X_NPARAMS),
        "CONNECT_X" => (PG_EVT_CONNECT_X, PG_EVT_CONNECT_X_NPARAMS),
        "ACCEPT_5_X" => (PG_EVT_ACCEPT_5_X, PG_EVT_ACCEPT_5_X_NPARAMS),
        "SENDTO_X" => (PG_EVT_SENDTO_X, PG_EVT_SENDTO_X_NPARAMS),
        "SENDMSG_X" => (PG_EVT_SENDMSG_X, PG_EVT_SENDMSG_X_NPARAMS),
        "ACCEPT4_6_X" => (PG_EVT_ACCEPT4_6_X, PG_EVT_ACCEPT4_6_X_NPARAMS),
        "PTRACE_X" => (PG_EVT_PTRACE_X, PG_EVT_PTRACE_X_NPARAMS),
        "SOCKET_X" => (PG_EVT_SOCKET_X, PG_EVT_SOCKET_X_NPARAMS),
        "BIND_X" => (PG_EVT_BIND_X, PG_EVT_BIND_X_NPARAMS),
        "LISTEN_X" => (PG_EVT_LISTEN_X, PG_EVT_LISTEN_X_NPARAMS),
        "CHMOD_X" => (PG_EVT_CHMOD_X, PG_EVT_CHMOD_X_NPARAMS),
        "FCHMOD_X" => (PG_EVT_FCHMOD_X, PG_EVT_FCHMOD_X_NPARAMS),
        "FCHMODAT_X" => (PG_EVT_FCHMODAT_X, PG_EVT_FCHMODAT_X_NPARAMS),
        "SYMLINK_X" => (PG_EVT_SYMLINK_X, PG_EVT_SYMLINK_X_NPARAMS),
        "SYMLINKAT_X" => (PG_EVT_SYMLINKAT_X, PG_EVT_SYMLINKAT_X_NPARAMS),
        "LINK_2_X" => (PG_EVT_LINK_2_X, PG_EVT_LINK_2_X_NPARAMS),
        "LINKAT_2_X" => (PG_EVT_LINKAT_2_X, PG_EVT_LINKAT_2_X_NPARAMS),
        "RENAME_X" => (PG_EVT_RENAME_X, PG_EVT_RENAME_X_NPARAMS),
        "RENAMEAT_X" => (PG_EVT_RENAMEAT_X, PG_EVT_RENAMEAT_X_NPARAMS),
        "RENAMEAT2_X" => (PG_EVT_RENAMEAT2_X, PG_EVT_RENAMEAT2_X_NPARAMS),
        "UNLINK_2_X" => (PG_EVT_UNLINK_2_X, PG_EVT_UNLINK_2_X_NPARAMS),
        "UNLINKAT_2_X" => (PG_EVT_UNLINKAT_2_X, PG_EVT_UNLINKAT_2_X_NPARAMS),
        "RMDIR_2_X" => (PG_EVT_RMDIR_2_X, PG_EVT_RMDIR_2_X_NPARAMS),
        "MKDIR_2_X" => (PG_EVT_MKDIR_2_X, PG_EVT_MKDIR_2_X_NPARAMS),
        "MKDIRAT_X" => (PG_EVT_MKDIRAT_X, PG_EVT_MKDIRAT_X_NPARAMS),
        "MKNOD_X" => (PG_EVT_MKNOD_X, PG_EVT_MKNOD_X_NPARAMS),
        "MKNODAT_X" => (PG_EVT_MKNODAT_X, PG_EVT_MKNODAT_X_NPARAMS),
        "SETSOCKOPT_X" => (PG_EVT_SETSOCKOPT_X, PG_EVT_SETSOCKOPT_X_NPARAMS),
        "GETSOCKOPT_X" => (PG_EVT_GETSOCKOPT_X, PG_EVT_GETSOCKOPT_X_NPARAMS),
        "DUP_1_X" => (PG_EVT_DUP_1_X, PG_EVT_DUP_1_X_NPARAMS),
        "DUP2_X" => (PG_EVT_DUP2_X, PG_EVT_DUP2_X_NPARAMS),
        "DUP3_X" => (PG_EVT_DUP3_X, PG_EVT_DUP3_X_NPARAMS),
        "CHOWN_X" => (PG_EVT_CHOWN_X, PG_EVT_CHOWN_X_NPARAMS),
        "LCHOWN_X" => (PG_EVT_LCHOWN_X, PG_EVT_LCHOWN_X_NPARAMS),
        "FCHOWN_X" => (PG_EVT_FCHOWN_X, PG_EVT_FCHOWN_X_NPARAMS),
        "FCHOWNAT_X" => (PG_EVT_FCHOWNAT_X, PG_EVT_FCHOWNAT_X_NPARAMS),
        "SETUID_X" => (PG_EVT_SETUID_X, PG_EVT_SETUID_X_NPARAMS),
        "SETGID_X" => (PG_EVT_SETGID_X, PG_EVT_SETGID_X_NPARAMS),
        "SETREUID_X" => (PG_EVT_SETREUID_X, PG_EVT_SETREUID_X_NPARAMS),
        "SETREGID_X" => (PG_EVT_SETREGID_X, PG_EVT_SETREGID_X_NPARAMS),
        "SETRESUID_X" => (PG_EVT_SETRESUID_X, PG_EVT_SETRESUID_X_NPARAMS),
        "SETRESGID_X" => (PG_EVT_SETRESGID_X, PG_EVT_SETRESGID_X_NPARAMS),
        "SETNS_X" => (PG_EVT_SETNS_X, PG_EVT_SETNS_X_NPARAMS),
        "UNSHARE_X" => (PG_EVT_UNSHARE_X, PG_EVT_UNSHARE_X_NPARAMS),
        "MOUNT_X" => (PG_EVT_MOUNT_X, PG_EVT_MOUNT_X_NPARAMS),
        "UMOUNT2_X" => (PG_EVT_UMOUNT2_X, PG_EVT_UMOUNT2_X_NPARAMS),
        "INIT_MODULE_X" => (PG_EVT_INIT_MODULE_X, PG_EVT_INIT_MODULE_X_NPARAMS),
        "FINIT_MODULE_X" => (PG_EVT_FINIT_MODULE_X, PG_EVT_FINIT_MODULE_X_NPARAMS),
        "KILL_X" => (PG_EVT_KILL_X, PG_EVT_KILL_X_NPARAMS),
        "TKILL_X" => (PG_EVT_TKILL_X, PG_EVT_TKILL_X_NPARAMS),
        "TGKILL_X" => (PG_EVT_TGKILL_X, PG_EVT_TGKILL_X_NPARAMS),
        _ => (PG_EVT_GENERIC_X, PG_EVT_GENERIC_X_NPARAMS),
    }
}

/// A raw sockaddr (family first, native order) in scap's packed form.
pub fn pack_sockaddr(raw: &[u8]) -> Vec<u8> {
    let fam = u16::from_ne_bytes([raw[0], raw.get(1).copied().unwrap_or(0)]);
    let mut out = vec![flags::family(fam)];
    let port = |r: &[u8]| r.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]]));
    match fam as i32 {
        libc::AF_INET => {
            if let (Some(addr), Some(port)) = (raw.get(4..8), port(raw)) {
                out.extend_from_slice(addr);
                out.extend_from_slice(&port.to_ne_bytes());
            }
        }
        libc::AF_INET6 => {
            if let (Some(addr), Some(port)) = (raw.get(8..24), port(raw)) {
                out.extend_from_slice(addr);
                out.extend_from_slice(&port.to_ne_bytes());
            }
        }
        libc::AF_UNIX => {
            out.extend_from_slice(&unix_path(raw));
            out.push(0);
        }
        _ => {}
    }
    out
}

/// The path of a raw sockaddr_un: an abstract name without its leading NUL.
fn unix_path(raw: &[u8]) -> Vec<u8> {
    let path = raw.get(2..).unwrap_or_default();
    let path = path.strip_prefix(b"\0").unwrap_or(path);
    let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
    path[..end].to_vec()
}

/// Whether `path` exists for the tracee, resolved from its root, cwd or
/// directory fd through /proc.
fn path_exists(tgid: i32, dirfd: i64, path: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let rel = std::ffi::OsStr::from_bytes(path);
    let full = if path.first() == Some(&b'/') {
        std::path::Path::new(&format!("/proc/{tgid}/root")).join(
            std::path::Path::new(rel)
                .strip_prefix("/")
                .unwrap_or(std::path::Path::new(rel)),
        )
    } else if dirfd == libc::AT_FDCWD as i64 {
        std::path::Path::new(&format!("/proc/{tgid}/cwd")).join(rel)
    } else {
        std::path::Path::new(&format!("/proc/{tgid}/fd/{dirfd}")).join(rel)
    };
    std::fs::symlink_metadata(full).is_ok()
}

/// The 4-tuple of a tracee's socket fd in scap's packed form. The socket
/// is borrowed into the tracer with pidfd_getfd (we are its tracer, so the
/// kernel allows it) to ask getsockname/getpeername.
/// inbound: the source is the peer (accept); otherwise the local end.
/// uaddr/ulen: the address the call named (connect, sendto, sendmsg), or
/// 0: an outbound call's address of the socket's family is its peer (an
/// unconnected UDP socket has no other), as the module does.
/// named: whether that address wins over a peer the kernel knows. A
/// datagram goes where sendto names; a connect's peer is what the kernel
/// connected to, while the address is read again from the tracee's memory
/// after the call, where another thread may have written a decoy since.
fn socket_tuple(
    tid: i32,
    fd: i64,
    inbound: bool,
    mem: &Memory,
    (uaddr, ulen): (u64, u64),
    named: NamedPeer,
) -> Vec<u8> {
    let Some((local, mut peer, peer_known)) = socket_names(tid, fd) else {
        return Vec::new();
    };
    let fam = u16::from_ne_bytes([local[0], local[1]]);
    let inet = matches!(fam as i32, libc::AF_INET | libc::AF_INET6);
    let use_named = named == NamedPeer::Wins || !peer_known;
    if !inbound && inet && use_named && uaddr != 0 && ulen >= 2 {
        let want = if fam as i32 == libc::AF_INET6 { 28 } else { 16 };
        if let Some(named) = mem.bytes(uaddr, (ulen as usize).min(want)) {
            if named[..2] == local[..2] {
                peer = [0u8; 128];
                peer[..named.len()].copy_from_slice(&named);
            }
        }
    }
    let (src, dst) = if inbound {
        (&peer, &local)
    } else {
        (&local, &peer)
    };
    let mut out = vec![flags::family(fam)];
    match fam as i32 {
        libc::AF_INET | libc::AF_INET6 => {
            let (at, n) = if fam as i32 == libc::AF_INET {
                (4, 4)
            } else {
                (8, 16)
            };
            for side in [src, dst] {
                out.extend_from_slice(&side[at..at + n]);
                out.extend_from_slice(&u16::from_be_bytes([side[2], side[3]]).to_ne_bytes());
            }
        }
        libc::AF_UNIX => {
            out.extend_from_slice(&[0u8; 16]);
            let path = if uaddr != 0 && ulen > 2 {
                mem.bytes(uaddr, (ulen as usize).min(110))
                    .map(|raw| unix_path(&raw))
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            out.extend_from_slice(&path);
            out.push(0);
        }
        _ => {}
    }
    out
}

/// getsockname and getpeername of a tracee's fd, as raw sockaddr_storage.
/// Whether the address an outbound call names is its tuple's peer when the
/// kernel knows another (see [`socket_tuple`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NamedPeer {
    Wins,
    OnlyWhenUnknown,
}

/// The socket's local and peer addresses, and whether the kernel knows
/// the peer (getpeername answered).
fn socket_names(tid: i32, fd: i64) -> Option<([u8; 128], [u8; 128], bool)> {
    let tgid = ProcInfo::read(tid).tgid as i32;
    // SAFETY: plain syscalls on integers; the fds they return are closed below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, tgid, 0) } as i32;
    if pidfd < 0 {
        return None;
    }
    // SAFETY: as above.
    let sock = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd as i32, 0) } as i32;
    // SAFETY: pidfd is ours and open.
    unsafe { libc::close(pidfd) };
    if sock < 0 {
        return None;
    }
    let mut local = [0u8; 128];
    let mut peer = [0u8; 128];
    let mut len = 128 as libc::socklen_t;
    // SAFETY: the buffers are 128 bytes (sizeof sockaddr_storage) and len says so.
    let ok_local = unsafe { libc::getsockname(sock, local.as_mut_ptr().cast(), &mut len) } == 0;
    len = 128;
    // SAFETY: as above.
    let ok_peer = unsafe { libc::getpeername(sock, peer.as_mut_ptr().cast(), &mut len) } == 0;
    // SAFETY: sock is our duplicate; closing it leaves the tracee's fd alone.
    unsafe { libc::close(sock) };
    if !ok_local {
        return None;
    }
    if !ok_peer {
        // Unconnected: the peer side stays zero, with the same family.
        peer[..2].copy_from_slice(&local[..2]);
    }
    Some((local, peer, ok_peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddrs_pack_like_the_module() {
        let mut sin = [0u8; 16];
        sin[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        sin[2..4].copy_from_slice(&8080u16.to_be_bytes());
        sin[4..8].copy_from_slice(&[127, 0, 0, 1]);
        let mut want = vec![2u8, 127, 0, 0, 1];
        want.extend_from_slice(&8080u16.to_ne_bytes());
        assert_eq!(pack_sockaddr(&sin), want);

        let mut sun = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        sun.extend_from_slice(b"\0abstract\0");
        assert_eq!(pack_sockaddr(&sun), b"\x01abstract\0");
    }

    #[test]
    fn every_event_name_used_is_in_the_table() {
        let src = include_str!("encode.rs");
        let mut names = Vec::new();
        for (open, close) in [("done!(", ")"), ("evt_of(\"", "\")")] {
            for piece in src.split(open).skip(1) {
                let name = &piece[..piece.find(close).unwrap()];
                if name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    && !name.is_empty()
                {
                    names.push(name.to_string());
                }
            }
        }
        assert!(names.len() > 50, "{names:?}");
        for name in names {
            assert_ne!(evt_of(&name).0, PG_EVT_GENERIC_X, "{name} is not in evt_of");
        }
    }

    /// The parameters of one record, split by their u16 lengths.
    fn params_of(out: &[u8]) -> Vec<Vec<u8>> {
        let ev = crate::EventRef::parse(out).unwrap();
        let n = ev.nparams() as usize;
        let p = ev.payload();
        let (lens, mut data) = p.split_at(2 * n);
        lens.chunks(2)
            .map(|l| {
                let (v, rest) = data.split_at(u16::from_ne_bytes([l[0], l[1]]) as usize);
                data = rest;
                v.to_vec()
            })
            .collect()
    }

    #[test]
    fn socket_options_and_device_nodes_encode_like_the_module() {
        let me = Memory {
            pid: nix::unistd::getpid(),
        };
        let mut e = Encoder::default();
        // setsockopt(3, SOL_SOCKET, SO_KEEPALIVE, &1, 4) = 0
        let one = 1i32;
        let call = Call::new(
            libc::SYS_setsockopt as u64,
            [
                3,
                1,
                libc::SO_KEEPALIVE as u64,
                &one as *const i32 as u64,
                4,
                0,
            ],
        );
        let mut out = Vec::new();
        e.exit(&mut out, 1, 9, &call, 0, &me);
        let p = params_of(&out);
        assert_eq!(p.len() as u32, PG_EVT_SETSOCKOPT_X_NPARAMS);
        assert_eq!(p[2], [1]); // SOL_SOCKET
        assert_eq!(p[3], [9]); // SO_KEEPALIVE
        assert_eq!(p[4], [&[2u8][..], &1u32.to_ne_bytes()].concat());
        assert_eq!(p[5], 4u32.to_ne_bytes());
        // getsockopt(3, SOL_SOCKET, SO_ERROR, &111, &4) = 0: the errno, negated.
        let (err, len) = (111i32, 4u32);
        let call = Call::new(
            libc::SYS_getsockopt as u64,
            [
                3,
                1,
                libc::SO_ERROR as u64,
                &err as *const i32 as u64,
                &len as *const u32 as u64,
                0,
            ],
        );
        let mut out = Vec::new();
        e.exit(&mut out, 1, 9, &call, 0, &me);
        let p = params_of(&out);
        assert_eq!(p[4], [&[1u8][..], &(-111i64).to_ne_bytes()].concat());
        // An option of another level: the bytes as given.
        let call = Call::new(
            libc::SYS_setsockopt as u64,
            [3, 6, 1, &one as *const i32 as u64, 4, 0],
        );
        let mut out = Vec::new();
        e.exit(&mut out, 1, 9, &call, 0, &me);
        let p = params_of(&out);
        assert_eq!((p[2][0], p[3][0]), (2, 0));
        assert_eq!(p[4], [&[0u8][..], &1i32.to_ne_bytes()].concat());
        // mknodat(AT_FDCWD, "fifo", S_IFIFO|0640, 0) = 0
        let path = b"fifo\0";
        let call = Call::new(
            libc::SYS_mknodat as u64,
            [
                libc::AT_FDCWD as u64,
                path.as_ptr() as u64,
                u64::from(libc::S_IFIFO) | 0o640,
                0,
                0,
                0,
            ],
        );
        let mut out = Vec::new();
        e.exit(&mut out, 1, 9, &call, 0, &me);
        let p = params_of(&out);
        assert_eq!(p.len() as u32, PG_EVT_MKNODAT_X_NPARAMS);
        assert_eq!(p[1], (-100i64).to_ne_bytes());
        assert_eq!(p[2], b"fifo\0");
        assert_eq!(p[3], 0o010640u32.to_ne_bytes());
    }

    /// A 32-bit caller's structures, read at its layout: the old timeval
    /// of SO_RCVTIMEO (2 x s32), the _NEW options' (2 x s64 at every
    /// width), and PTRACE_PEEKDATA's word (a compat_ulong_t). The bytes
    /// after each are junk a 64-bit read would take in.
    #[test]
    fn a_32_bit_callers_values_are_read_at_its_layout() {
        let me = Memory {
            pid: nix::unistd::getpid(),
        };
        let mut e = Encoder::default();
        let sockopt = |e: &mut Encoder, optname: i32, val: &[u8], compat: bool| {
            let mut call = Call::new(
                libc::SYS_setsockopt as u64,
                [3, 1, optname as u64, val.as_ptr() as u64, 8, 0],
            );
            call.compat = compat;
            let mut out = Vec::new();
            e.exit(&mut out, 1, 9, &call, 0, &me);
            params_of(&out)[4].clone()
        };
        let ns = |v: i64| [&[flags::SOCKOPT_IDX_TIMEVAL][..], &v.to_ne_bytes()].concat();
        // struct timeval { 3, 250000 } of i386, then junk.
        let old32: Vec<u8> = [3i32, 250_000, -1, -1]
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        assert_eq!(sockopt(&mut e, 20, &old32, true), ns(3_250_000_000));
        assert_eq!(sockopt(&mut e, 21, &old32, true), ns(3_250_000_000));
        assert_ne!(sockopt(&mut e, 20, &old32, false), ns(3_250_000_000));
        // __kernel_sock_timeval { 5, 125000 }: the same from either width.
        let new: Vec<u8> = [5i64, 125_000]
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        assert_eq!(sockopt(&mut e, 67, &new, true), ns(5_125_000_000));
        assert_eq!(sockopt(&mut e, 66, &new, false), ns(5_125_000_000));
        // A negative tv_usec keeps its sign from 32 bits.
        let neg: Vec<u8> = [1i32, -500_000]
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        assert_eq!(sockopt(&mut e, 20, &neg, true), ns(500_000_000));

        // ptrace(PTRACE_PEEKDATA, 42, addr, &word) = 0
        let word: [u32; 2] = [0x1122_3344, 0xdead_beef];
        let mut call = Call::new(
            libc::SYS_ptrace as u64,
            [2, 42, 0x1000, word.as_ptr() as u64, 0, 0],
        );
        call.compat = true;
        let mut out = Vec::new();
        e.exit(&mut out, 1, 9, &call, 0, &me);
        let p = params_of(&out);
        let dyn_u64 = |v: u64| [&[PG_PTRACE_IDX_UINT64 as u8][..], &v.to_ne_bytes()].concat();
        assert_eq!(p[2], dyn_u64(0x1122_3344));
        call.compat = false;
        let mut out = Vec::new();
        e.exit(&mut out, 1, 9, &call, 0, &me);
        assert_eq!(params_of(&out)[2], dyn_u64(0xdead_beef_1122_3344));
    }

    #[test]
    fn procexit_decodes_the_wait_status() {
        let mut e = Encoder::default();
        let mut out = Vec::new();
        e.procexit(&mut out, 1, 9, 3 << 8);
        let ev = crate::EventRef::parse(&out).unwrap();
        assert_eq!(ev.event_type() as u32, PG_EVT_PROCEXIT_1_E);
        assert_eq!(ev.nparams(), PG_EVT_PROCEXIT_1_E_NPARAMS);
        let p = ev.payload();
        let data = &p[10..];
        assert_eq!(&data[..8], &(768i64).to_ne_bytes());
        assert_eq!(&data[8..16], &3i64.to_ne_bytes());
        assert_eq!(data[16], 0);
    }
}
