// SPDX-License-Identifier: GPL-2.0-only
/*
 * fillers_table.c - the syscalls whose exit event is made of the return
 * value, the arguments (some converted to scap's flag values), user
 * strings and the task's memory counters: one table row each, in the
 * parameter order of current libs' event table.
 *
 * A row is indexed by the x86-64 syscall number; a 32-bit caller's number
 * is translated before it gets here (probes.c).
 */
#include <linux/fcntl.h>
#include <linux/mman.h>
#include <linux/eventpoll.h>
#include <linux/memfd.h>
#include <linux/sched/mm.h>
#include <linux/futex.h>
#include <linux/ipc.h>
#include <linux/kdev_t.h>
#include <linux/stat.h>
#include <uapi/linux/io_uring.h>
#include <asm/unistd.h>
#include "peregrine.h"
#include "compat.h"
#include "fillers.h"

/* Where a parameter comes from. 0 ends a row. */
enum pg_src {
	PG_SRC_END = 0,
	PG_SRC_RES,      /* the return value */
	PG_SRC_ARG,      /* argument .arg */
	PG_SRC_VM,       /* vm_size, vm_rss, vm_swap (three parameters) */
};

/* How it is written. */
enum pg_enc {
	PG_ENC_S64,      /* as is, 8 bytes */
	PG_ENC_FD,       /* an int (fd, pid) widened to s64 */
	PG_ENC_U64,
	PG_ENC_U32,
	PG_ENC_U16,
	PG_ENC_U8,
	PG_ENC_STR,      /* a NUL-terminated string in user memory */
	PG_ENC_STR_OK,   /* the same, only when the call succeeded (else empty) */
};

/* Conversions to scap's values, where they differ from Linux's. */
enum pg_conv {
	PG_CONV_NONE = 0,
	PG_CONV_PROT,
	PG_CONV_MMAP,
	PG_CONV_FCNTL_CMD,
	PG_CONV_PIDFD_OPEN,
	PG_CONV_IO_URING_ENTER,
	PG_CONV_DELETE_MODULE,
	PG_CONV_EPOLL_CREATE1,
	PG_CONV_INT,     /* the low 32 bits, zero-extended */
	PG_CONV_AT_STAT,
	PG_CONV_CLOSE_RANGE,
	PG_CONV_NB_CLOEXEC, /* O_NONBLOCK and O_CLOEXEC (eventfd2, inotify_init1, timerfd) */
	PG_CONV_ZERO,    /* a flags parameter the call has no argument for */
	PG_CONV_FUTEX_OP,
	PG_CONV_SEMGET,
	PG_CONV_MKNOD_MODE,
	PG_CONV_DEV,     /* a dev_t argument, in the kernel's "new" 32-bit encoding */
	PG_CONV_SIGNALFD4,
};

struct pg_param_spec {
	u8 src;
	u8 arg;
	u8 enc;
	u8 conv;
};

#define PG_TABLE_MAX_SPECS 8

struct pg_table_row {
	u16 type;
	u16 nparams;
	struct pg_param_spec p[PG_TABLE_MAX_SPECS];
};

#define RES            { PG_SRC_RES, 0, PG_ENC_S64, 0 }
#define RES_AS(enc)    { PG_SRC_RES, 0, PG_ENC_##enc, 0 }
#define VM             { PG_SRC_VM, 0, 0, 0 }
#define FD(i)          { PG_SRC_ARG, i, PG_ENC_FD, 0 }
#define PID(i)         FD(i)
#define U64(i)         { PG_SRC_ARG, i, PG_ENC_U64, 0 }
#define U32(i)         { PG_SRC_ARG, i, PG_ENC_U32, 0 }
#define U16(i)         { PG_SRC_ARG, i, PG_ENC_U16, 0 }
#define U8(i)          { PG_SRC_ARG, i, PG_ENC_U8, 0 }
#define INT(i)         FD(i)
#define CONV(enc, i, c) { PG_SRC_ARG, i, PG_ENC_##enc, PG_CONV_##c }
#define STR(i)         { PG_SRC_ARG, i, PG_ENC_STR, 0 }
#define STR_OK(i)      { PG_SRC_ARG, i, PG_ENC_STR_OK, 0 }
#define ROW(t, ...) \
	{ .type = PG_EVT_##t, .nparams = PG_EVT_##t##_NPARAMS, .p = { __VA_ARGS__ } }

/*
 * Flag values that are the same in Linux and scap are passed as they are:
 * memfd_create, userfaultfd, flock, mlockall, mlock2, splice flags, bpf
 * commands, prctl options, io_uring_register opcodes, lseek whence,
 * shutdown how, access modes.
 */
static const struct pg_table_row pg_table[PG_SYSCALL_NR_MAX] = {
	[__NR_chdir]            = ROW(CHDIR_X, RES, STR(0)),
	[__NR_fchdir]           = ROW(FCHDIR_X, RES, FD(0)),
	[__NR_chroot]           = ROW(CHROOT_X, RES, STR(0)),
	[__NR_getcwd]           = ROW(GETCWD_X, RES, STR_OK(0)),
	[__NR_memfd_create]     = ROW(MEMFD_CREATE_X, RES, STR(0), U32(1)),
	[__NR_bpf]              = ROW(BPF_2_X, RES, U32(0)),
	[__NR_userfaultfd]      = ROW(USERFAULTFD_X, RES, U32(0)),
	[__NR_fcntl]            = ROW(FCNTL_X, RES, FD(0), CONV(U8, 1, FCNTL_CMD), U64(2)),
	[__NR_mmap]             = ROW(MMAP_X, RES, VM, U64(0), U64(1), CONV(U32, 2, PROT),
				      CONV(U32, 3, MMAP), FD(4), U64(5)),
	[__NR_munmap]           = ROW(MUNMAP_X, RES, VM, U64(0), U64(1)),
	[__NR_mprotect]         = ROW(MPROTECT_X, RES, U64(0), U64(1), CONV(U32, 2, PROT)),
	[__NR_brk]              = ROW(BRK_4_X, RES_AS(U64), VM, U64(0)),
	[__NR_io_uring_enter]   = ROW(IO_URING_ENTER_X, RES, FD(0), U32(1), U32(2),
				      CONV(U32, 3, IO_URING_ENTER), U32(4)),
	[__NR_io_uring_register] = ROW(IO_URING_REGISTER_X, RES, FD(0), U16(1), U64(2), U32(3)),
	[__NR_pidfd_open]       = ROW(PIDFD_OPEN_X, RES, PID(0), CONV(U32, 1, PIDFD_OPEN)),
	[__NR_pidfd_getfd]      = ROW(PIDFD_GETFD_X, RES, FD(0), FD(1), U32(2)),
	[__NR_shutdown]         = ROW(SHUTDOWN_X, RES, FD(0), U8(1)),
	[__NR_setsid]           = ROW(SETSID_X, RES),
	[__NR_setpgid]          = ROW(SETPGID_X, RES, PID(0), PID(1)),
	[__NR_flock]            = ROW(FLOCK_X, RES, FD(0), U32(1)),
	[__NR_mlock]            = ROW(MLOCK_X, RES, U64(0), U64(1)),
	[__NR_munlock]          = ROW(MUNLOCK_X, RES, U64(0), U64(1)),
	[__NR_mlockall]         = ROW(MLOCKALL_X, RES, U32(0)),
	[__NR_munlockall]       = ROW(MUNLOCKALL_X, RES),
	[__NR_mlock2]           = ROW(MLOCK2_X, RES, U64(0), U64(1), U32(2)),
	[__NR_getuid]           = ROW(GETUID_X, RES_AS(U32)),
	[__NR_geteuid]          = ROW(GETEUID_X, RES_AS(U32)),
	[__NR_getgid]           = ROW(GETGID_X, RES_AS(U32)),
	[__NR_getegid]          = ROW(GETEGID_X, RES_AS(U32)),
	[__NR_access]           = ROW(ACCESS_X, RES, STR(0), U32(1)),
	[__NR_delete_module]    = ROW(DELETE_MODULE_X, RES, STR(0), CONV(U32, 1, DELETE_MODULE)),
	[__NR_seccomp]          = ROW(SECCOMP_X, RES, CONV(U64, 0, INT), U64(1)),
	[__NR_epoll_create]     = ROW(EPOLL_CREATE_X, RES, U32(0)),
	[__NR_epoll_create1]    = ROW(EPOLL_CREATE1_X, RES, CONV(U32, 0, EPOLL_CREATE1)),
	[__NR_getdents]         = ROW(GETDENTS_X, RES, FD(0)),
	[__NR_getdents64]       = ROW(GETDENTS64_X, RES, FD(0)),
	[__NR_fstat]            = ROW(FSTAT_X, RES, FD(0)),
	[__NR_stat]             = ROW(STAT_X, RES, STR(0)),
	[__NR_lstat]            = ROW(LSTAT_X, RES, STR(0)),
	[__NR_lseek]            = ROW(LSEEK_X, RES, FD(0), U64(1), U8(2)),
	[__NR_ioctl]            = ROW(IOCTL_3_X, RES, FD(0), U64(1), U64(2)),
	[__NR_splice]           = ROW(SPLICE_X, RES, FD(0), FD(2), U64(4), U32(5)),
	[__NR_newfstatat]       = ROW(NEWFSTATAT_X, RES, FD(0), STR(1), CONV(U32, 3, AT_STAT)),
	[__NR_close_range]      = ROW(CLOSE_RANGE_X, RES, U32(0), U32(1), CONV(U32, 2, CLOSE_RANGE)),
	[__NR_eventfd]          = ROW(EVENTFD_X, RES, U64(0), CONV(U32, 0, ZERO)),
	[__NR_eventfd2]         = ROW(EVENTFD2_X, RES, CONV(U16, 1, NB_CLOEXEC), U64(0)),
	[__NR_inotify_init]     = ROW(INOTIFY_INIT_X, RES, CONV(U8, 0, ZERO)),
	[__NR_inotify_init1]    = ROW(INOTIFY_INIT1_X, RES, CONV(U16, 0, NB_CLOEXEC)),
	[__NR_timerfd_create]   = ROW(TIMERFD_CREATE_X, RES, U8(0), CONV(U8, 1, NB_CLOEXEC)),
	[__NR_epoll_wait]       = ROW(EPOLLWAIT_X, RES, INT(2)),
	/* The offsets are the pointers the caller passed, as Falco reports them. */
	[__NR_copy_file_range]  = ROW(COPY_FILE_RANGE_X, RES, FD(2), U64(3), FD(0), U64(1), U64(4)),
	[__NR_select]           = ROW(SELECT_X, RES),
	[__NR_futex]            = ROW(FUTEX_X, RES, U64(0), CONV(U16, 1, FUTEX_OP), U64(2)),
	[__NR_semget]           = ROW(SEMGET_X, RES, U32(0), U32(1), CONV(U32, 2, SEMGET)),
	[__NR_mknod]            = ROW(MKNOD_X, RES, STR(0), CONV(U32, 1, MKNOD_MODE), CONV(U32, 2, DEV)),
	/* AT_FDCWD is scap's PPM_AT_FDCWD (-100) already. */
	[__NR_mknodat]          = ROW(MKNODAT_X, RES, FD(0), STR(1), CONV(U32, 2, MKNOD_MODE),
				      CONV(U32, 3, DEV)),
	/* Falco's drivers do not read the signal mask (0); signalfd has no flags (0). */
	[__NR_signalfd]         = ROW(SIGNALFD_X, RES, FD(0), CONV(U32, 1, ZERO), CONV(U8, 1, ZERO)),
	[__NR_signalfd4]        = ROW(SIGNALFD4_X, RES, CONV(U16, 3, SIGNALFD4), FD(0),
				      CONV(U32, 1, ZERO)),
};

static u32 prot_to_scap(unsigned long prot)
{
	u32 res = 0;

	if (prot & PROT_READ)
		res |= 1u << 0;
	if (prot & PROT_WRITE)
		res |= 1u << 1;
	if (prot & PROT_EXEC)
		res |= 1u << 2;
	if (prot & PROT_SEM)
		res |= 1u << 3;
	if (prot & PROT_GROWSDOWN)
		res |= 1u << 4;
	if (prot & PROT_GROWSUP)
		res |= 1u << 5;
	return res;
}

static u32 mmap_flags_to_scap(unsigned long flags)
{
	static const struct { unsigned long linux_flag; u32 scap_flag; } map[] = {
		{ MAP_SHARED, 1u << 0 },     { MAP_PRIVATE, 1u << 1 },
		{ MAP_FIXED, 1u << 2 },      { MAP_ANONYMOUS, 1u << 3 },
		{ MAP_32BIT, 1u << 4 },      { MAP_NORESERVE, 1u << 6 },
		{ MAP_POPULATE, 1u << 7 },   { MAP_NONBLOCK, 1u << 8 },
		{ MAP_GROWSDOWN, 1u << 9 },  { MAP_DENYWRITE, 1u << 10 },
		{ MAP_EXECUTABLE, 1u << 11 }, { MAP_LOCKED, 1u << 14 },
	};
	u32 res = 0;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(map); i++)
		if (flags & map[i].linux_flag)
			res |= map[i].scap_flag;
	return res;
}

/* scap numbers fcntl commands itself (0: unknown). */
static u32 fcntl_cmd_to_scap(unsigned long cmd)
{
	static const struct { unsigned int linux_cmd; u8 scap_cmd; } map[] = {
		{ F_DUPFD, 1 }, { F_GETFD, 2 }, { F_SETFD, 3 }, { F_GETFL, 4 },
		{ F_SETFL, 5 }, { F_GETLK, 6 }, { F_SETLK, 8 }, { F_SETLKW, 9 },
		{ F_SETOWN, 10 }, { F_GETOWN, 12 }, { F_SETSIG, 13 }, { F_GETSIG, 15 },
		{ F_SETOWN_EX, 21 }, { F_GETOWN_EX, 22 }, { F_SETLEASE, 23 },
		{ F_GETLEASE, 24 }, { F_CANCELLK, 25 }, { F_DUPFD_CLOEXEC, 26 },
		{ F_NOTIFY, 27 }, { F_SETPIPE_SZ, 28 }, { F_GETPIPE_SZ, 29 },
		{ F_OFD_GETLK, 30 }, { F_OFD_SETLK, 31 }, { F_OFD_SETLKW, 32 },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(map); i++)
		if (cmd == map[i].linux_cmd)
			return map[i].scap_cmd;
	return 0;
}

static u32 io_uring_enter_flags_to_scap(unsigned long flags)
{
	/* GETEVENTS, SQ_WAKEUP, SQ_WAIT, EXT_ARG: bits 0..3 in both. */
	return flags & 0xf;
}

/* scap numbers futex operations (low 7 bits) as Linux does; the two option bits move. */
static u32 futex_op_to_scap(unsigned long op)
{
	u32 res = op & 127;

	if (res > FUTEX_CMP_REQUEUE_PI)
		res = 0;
	if (op & FUTEX_PRIVATE_FLAG)
		res |= 128;
	if (op & FUTEX_CLOCK_REALTIME)
		res |= 256;
	return res;
}

/* Permission bits as they are, the file type as scap's S_IF* (a regular file when 0). */
static u32 mknod_mode_to_scap(unsigned long mode)
{
	u32 res = mode & 07777;

	switch (mode & S_IFMT) {
	case 0:
	case S_IFREG:
		return res | S_IFREG;
	case S_IFSOCK:
	case S_IFBLK:
	case S_IFCHR:
	case S_IFIFO:
		return res | (mode & S_IFMT);
	default:
		return res;
	}
}

static u32 convert(u8 conv, unsigned long v)
{
	switch (conv) {
	case PG_CONV_PROT:           return prot_to_scap(v);
	case PG_CONV_MMAP:           return mmap_flags_to_scap(v);
	case PG_CONV_FCNTL_CMD:      return fcntl_cmd_to_scap(v);
	case PG_CONV_PIDFD_OPEN:     return (v & O_NONBLOCK) ? 1 : 0;
	case PG_CONV_IO_URING_ENTER: return io_uring_enter_flags_to_scap(v);
	case PG_CONV_DELETE_MODULE:
		return ((v & O_TRUNC) ? 1u << 0 : 0) | ((v & O_NONBLOCK) ? 1u << 1 : 0);
	case PG_CONV_EPOLL_CREATE1:  return (v & EPOLL_CLOEXEC) ? 1 : 0;
	case PG_CONV_INT:            return (u32)v;
	/* AT_SYMLINK_NOFOLLOW, AT_NO_AUTOMOUNT, AT_EMPTY_PATH have scap's values. */
	case PG_CONV_AT_STAT:        return v & (AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH);
	/* CLOSE_RANGE_UNSHARE and _CLOEXEC: bits 1 and 2 in both. */
	case PG_CONV_CLOSE_RANGE:    return v & 6;
	case PG_CONV_NB_CLOEXEC:
		return ((v & O_NONBLOCK) ? SCAP_O_NONBLOCK : 0) | ((v & O_CLOEXEC) ? SCAP_O_CLOEXEC : 0);
	case PG_CONV_ZERO:           return 0;
	case PG_CONV_FUTEX_OP:       return futex_op_to_scap(v);
	/* scap's IPC_CREAT and IPC_EXCL are bits 13 and 14. */
	case PG_CONV_SEMGET:
		return ((v & IPC_CREAT) ? 1u << 13 : 0) | ((v & IPC_EXCL) ? 1u << 14 : 0);
	case PG_CONV_MKNOD_MODE:     return mknod_mode_to_scap(v);
	case PG_CONV_DEV:            return new_encode_dev((dev_t)v);
	/* A negative flags argument matches nothing (Falco's drivers say so too). */
	case PG_CONV_SIGNALFD4:
		if ((int)v < 0)
			return 0;
		return ((v & O_NONBLOCK) ? SCAP_O_NONBLOCK : 0) | ((v & O_CLOEXEC) ? SCAP_O_CLOEXEC : 0);
	default:                     return v;
	}
}

void pg_put_vm_counters(struct pg_record *rec)
{
	struct mm_struct *mm = current->mm;
	u32 vm_size = 0, vm_rss = 0, vm_swap = 0;

	if (mm) {
		vm_size = mm->total_vm << (PAGE_SHIFT - 10);
		vm_rss = get_mm_rss(mm) << (PAGE_SHIFT - 10);
		vm_swap = get_mm_counter(mm, MM_SWAPENTS) << (PAGE_SHIFT - 10);
	}
	pg_put_u32(rec, vm_size);
	pg_put_u32(rec, vm_rss);
	pg_put_u32(rec, vm_swap);
}

static void put_spec(struct pg_record *rec, const struct pg_param_spec *s,
		     struct pg_syscall_ctx *ctx)
{
	unsigned long v = s->src == PG_SRC_RES ? ctx->ret : ctx->args[s->arg];

	if (s->conv)
		v = convert(s->conv, v);
	switch (s->enc) {
	case PG_ENC_S64: pg_put_s64(rec, (s64)v); break;
	case PG_ENC_FD:  pg_put_s64(rec, fd_arg(v)); break;
	case PG_ENC_U64: pg_put_u64(rec, v); break;
	case PG_ENC_U32: pg_put_u32(rec, (u32)v); break;
	case PG_ENC_U16: pg_put_u16(rec, (u16)v); break;
	case PG_ENC_U8:  pg_put_u8(rec, (u8)v); break;
	case PG_ENC_STR: pg_put_ustr(rec, v, PG_PATH_MAX); break;
	case PG_ENC_STR_OK:
		if (ctx->ret >= 0)
			pg_put_ustr(rec, v, PG_PATH_MAX);
		else
			pg_put_empty(rec);
		break;
	}
}

bool pg_fill_table_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	const struct pg_table_row *row;
	struct pg_record rec;
	unsigned int i;

	if (ctx->nr < 0 || ctx->nr >= PG_SYSCALL_NR_MAX)
		return false;
	row = &pg_table[ctx->nr];
	if (!row->type)
		return false;
	pg_record_begin(&rec, ring, row->type, row->nparams);
	for (i = 0; i < PG_TABLE_MAX_SPECS && row->p[i].src != PG_SRC_END; i++) {
		if (row->p[i].src == PG_SRC_VM)
			pg_put_vm_counters(&rec);
		else
			put_spec(&rec, &row->p[i], ctx);
	}
	pg_record_commit(&rec, current->pid);
	return true;
}
