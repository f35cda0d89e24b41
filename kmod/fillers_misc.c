// SPDX-License-Identifier: GPL-2.0-only
/*
 * fillers_misc.c - syscalls whose parameters come from memory the call
 * wrote or read rather than from its arguments alone: prctl, pipe/pipe2,
 * io_uring_setup, process_vm_readv/writev, the positioned and vectored
 * reads and writes, resource limits, getresuid/getresgid, capset, sendfile,
 * poll/ppoll/nanosleep, semaphores, quotactl, keyctl, fsconfig,
 * open_by_handle_at.
 */
#include <linux/fs.h>
#include <linux/fcntl.h>
#include <linux/prctl.h>
#include <linux/cred.h>
#include <linux/resource.h>
#include <uapi/linux/io_uring.h>
#include <linux/poll.h>
#include <linux/sem.h>
#include <linux/quota.h>
#include <linux/dqblk_xfs.h>
#include <linux/keyctl.h>
#include <asm/unistd.h>
#include "peregrine.h"
#include "compat.h"
#include "fillers.h"

/* prctl: res, option, arg2_str (the name options), arg2_int (the others). */
static void fill_prctl_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct pg_record rec;
	unsigned long option = ctx->args[0], arg2 = ctx->args[1];
	int reaper = 0;

	PG_BEGIN(&rec, ring, PRCTL_X);
	pg_put_s64(&rec, ctx->ret);
	pg_put_u32(&rec, (u32)option);            /* PR_* values are scap's */
	switch (option) {
	case PR_SET_NAME:
	case PR_GET_NAME:
		pg_put_ustr(&rec, arg2, TASK_COMM_LEN);
		pg_put_s64(&rec, 0);
		break;
	case PR_GET_CHILD_SUBREAPER:
		/* The kernel wrote the answer through arg2. */
		pg_put_empty(&rec);
		if (ctx->ret == 0 &&
		    pg_copy_from_user(&reaper, (const void __user *)arg2, sizeof(reaper)))
			rec.faults++;
		pg_put_s64(&rec, reaper);
		break;
	default:
		pg_put_empty(&rec);
		pg_put_s64(&rec, (s64)arg2);
		break;
	}
	pg_record_commit(&rec, current->pid);
}

static u32 pipe2_flags_to_scap(unsigned long flags)
{
	return ((flags & O_CLOEXEC) ? 1u << 12 : 0) | ((flags & O_DIRECT) ? 1u << 9 : 0) |
	       ((flags & O_NONBLOCK) ? 1u << 6 : 0);
}

/* pipe: res, fd1, fd2, ino; pipe2 adds flags. The fds are read back from user memory. */
static void fill_pipe_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx, bool is_pipe2)
{
	struct pg_record rec;
	int fds[2] = { -1, -1 };
	bool created;
	u64 ino = 0;
	u32 dev;

	if (is_pipe2)
		PG_BEGIN(&rec, ring, PIPE2_X);
	else
		PG_BEGIN(&rec, ring, PIPE_X);
	if (ctx->ret == 0) {
		if (pg_copy_from_user(fds, (const void __user *)ctx->args[0], sizeof(fds))) {
			rec.faults++;
			fds[0] = fds[1] = -1;
		} else {
			pg_fd_dev_ino(fds[0], &dev, &ino, &created);
		}
	}
	pg_put_s64(&rec, ctx->ret);
	pg_put_s64(&rec, fds[0]);
	pg_put_s64(&rec, fds[1]);
	pg_put_u64(&rec, ino);
	if (is_pipe2)
		pg_put_u32(&rec, pipe2_flags_to_scap(ctx->args[1]));
	pg_record_commit(&rec, current->pid);
}

/*
 * io_uring_setup: res, entries, then what the kernel wrote back into the
 * params: sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle,
 * features.
 */
static void fill_io_uring_setup_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct io_uring_params p;
	struct pg_record rec;
	u32 flags;

	PG_BEGIN(&rec, ring, IO_URING_SETUP_X);
	memset(&p, 0, sizeof(p));
	if (pg_copy_from_user(&p, (const void __user *)ctx->args[1], sizeof(p))) {
		rec.faults++;
		memset(&p, 0, sizeof(p));
	}
	/*
	 * scap's setup flags are Linux's shifted by one above bit 1, with bit 2
	 * (IORING_SQ_NEED_WAKEUP, whose value is 1) set whenever bit 0 is, as
	 * Falco's drivers report them.
	 */
	flags = (p.flags & 3) | ((p.flags & 1) ? 1u << 2 : 0) | ((p.flags & 0x7c) << 1);
	pg_put_s64(&rec, ctx->ret);
	pg_put_u32(&rec, (u32)ctx->args[0]);
	pg_put_u32(&rec, p.sq_entries);
	pg_put_u32(&rec, p.cq_entries);
	pg_put_u32(&rec, flags);
	pg_put_u32(&rec, p.sq_thread_cpu);
	pg_put_u32(&rec, p.sq_thread_idle);
	pg_put_u32(&rec, p.features & 0x7ff);   /* bits 0..10 are the same in both */
	pg_record_commit(&rec, current->pid);
}

static u32 snaplen(void)
{
	return READ_ONCE(pg_settings.snaplen);
}

/* process_vm_readv/writev: res, pid, data (the local buffers, up to what moved). */
static void fill_process_vm_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx, bool is_write)
{
	struct pg_iov_src local = { ctx->args[1], ctx->args[2], ctx->compat };
	struct pg_record rec;

	if (is_write)
		PG_BEGIN(&rec, ring, PROCESS_VM_WRITEV_X);
	else
		PG_BEGIN(&rec, ring, PROCESS_VM_READV_X);
	pg_put_s64(&rec, ctx->ret);
	pg_put_s64(&rec, (s64)(int)ctx->args[0]);
	if (ctx->ret > 0)
		pg_put_iov_data(&rec, &local, min_t(u64, ctx->ret, snaplen()));
	else
		pg_put_empty(&rec);
	pg_record_commit(&rec, current->pid);
}

/* pread64/pwrite64: res, data, fd, size, pos (read: what came back; write: what was given). */
static void fill_prw_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx, bool is_write)
{
	struct pg_record rec;
	u64 n = ctx->ret > 0 ? ctx->ret : (is_write ? ctx->args[2] : 0);

	if (is_write)
		PG_BEGIN(&rec, ring, PWRITE_X);
	else
		PG_BEGIN(&rec, ring, PREAD_X);
	pg_put_s64(&rec, ctx->ret);
	pg_put_ubytes(&rec, ctx->args[1], min_t(u64, n, snaplen()));
	pg_put_s64(&rec, fd_arg(ctx->args[0]));
	pg_put_u32(&rec, (u32)ctx->args[2]);
	pg_put_u64(&rec, ctx->args[3]);
	pg_record_commit(&rec, current->pid);
}

/*
 * readv/preadv: res, size, data, fd[, pos]; writev/pwritev: res, data, fd,
 * size[, pos]. A read's size is what came back, a write's what was given.
 */
static void fill_rwv_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx, bool is_write, bool has_pos)
{
	struct pg_iov_src iov = { ctx->args[1], ctx->args[2], ctx->compat };
	struct pg_record rec;
	u64 total;

	if (is_write && has_pos)
		PG_BEGIN(&rec, ring, PWRITEV_X);
	else if (is_write)
		PG_BEGIN(&rec, ring, WRITEV_X);
	else if (has_pos)
		PG_BEGIN(&rec, ring, PREADV_X);
	else
		PG_BEGIN(&rec, ring, READV_X);
	pg_put_s64(&rec, ctx->ret);
	total = pg_iov_total(&rec, &iov);
	if (is_write) {
		pg_put_iov_data(&rec, &iov, ctx->ret > 0 ? min_t(u64, total, snaplen()) : 0);
		pg_put_s64(&rec, fd_arg(ctx->args[0]));
		pg_put_u32(&rec, total);
	} else {
		total = ctx->ret > 0 ? min_t(u64, total, ctx->ret) : 0;
		pg_put_u32(&rec, total);
		pg_put_iov_data(&rec, &iov, min_t(u64, total, snaplen()));
		pg_put_s64(&rec, fd_arg(ctx->args[0]));
	}
	if (has_pos)
		pg_put_u64(&rec, ctx->args[3]);
	pg_record_commit(&rec, current->pid);
}

/* scap numbers resources as x86 Linux does, and says 255 for one it does not know. */
static u8 rlimit_resource_to_scap(unsigned long resource)
{
	return resource < RLIM_NLIMITS ? resource : 255;
}

/*
 * A struct rlimit in user memory (two 32-bit words from a 32-bit caller of
 * getrlimit/setrlimit; prlimit64's is 64-bit for everyone). An unlimited
 * value reads as -1, as the s64 scap gives it.
 */
static bool read_rlimit(struct pg_record *rec, unsigned long uptr, bool words32, s64 *cur, s64 *max)
{
	if (words32) {
		u32 rl[2];

		if (pg_copy_from_user(rl, (const void __user *)uptr, sizeof(rl)))
			goto fault;
		*cur = rl[0] == (u32)-1 ? -1 : rl[0];
		*max = rl[1] == (u32)-1 ? -1 : rl[1];
	} else {
		u64 rl[2];

		if (pg_copy_from_user(rl, (const void __user *)uptr, sizeof(rl)))
			goto fault;
		*cur = rl[0];
		*max = rl[1];
	}
	return true;
fault:
	if (uptr)
		rec->faults++;
	return false;
}

/*
 * getrlimit: res, cur, max (what the kernel wrote back; -1 on failure), resource.
 * setrlimit: res, cur, max (what was asked), resource.
 */
static void fill_rlimit_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx, bool is_set)
{
	struct pg_record rec;
	s64 cur = -1, max = -1;

	if (is_set)
		PG_BEGIN(&rec, ring, SETRLIMIT_X);
	else
		PG_BEGIN(&rec, ring, GETRLIMIT_X);
	if ((is_set || ctx->ret == 0) &&
	    !read_rlimit(&rec, ctx->args[1], ctx->compat, &cur, &max))
		cur = max = is_set ? 0 : -1;
	pg_put_s64(&rec, ctx->ret);
	pg_put_s64(&rec, cur);
	pg_put_s64(&rec, max);
	pg_put_u8(&rec, rlimit_resource_to_scap(ctx->args[0]));
	pg_record_commit(&rec, current->pid);
}

/* prlimit64: res, newcur, newmax, oldcur, oldmax (-1 on failure), pid, resource. */
static void fill_prlimit_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct pg_record rec;
	s64 newcur = 0, newmax = 0, oldcur = -1, oldmax = -1;

	PG_BEGIN(&rec, ring, PRLIMIT_X);
	if (ctx->args[2] && !read_rlimit(&rec, ctx->args[2], false, &newcur, &newmax))
		newcur = newmax = 0;
	if (ctx->ret == 0 && ctx->args[3] &&
	    !read_rlimit(&rec, ctx->args[3], false, &oldcur, &oldmax))
		oldcur = oldmax = 0;
	pg_put_s64(&rec, ctx->ret);
	pg_put_s64(&rec, newcur);
	pg_put_s64(&rec, newmax);
	pg_put_s64(&rec, oldcur);
	pg_put_s64(&rec, oldmax);
	pg_put_s64(&rec, (s64)(int)ctx->args[0]);
	pg_put_u8(&rec, rlimit_resource_to_scap(ctx->args[1]));
	pg_record_commit(&rec, current->pid);
}

/* getresuid/getresgid: res, then the three ids the kernel wrote back (0 if unreadable). */
static void fill_getres_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx, bool is_gid)
{
	struct pg_record rec;
	unsigned int i;
	u32 id;

	if (is_gid)
		PG_BEGIN(&rec, ring, GETRESGID_X);
	else
		PG_BEGIN(&rec, ring, GETRESUID_X);
	pg_put_s64(&rec, ctx->ret);
	for (i = 0; i < 3; i++) {
		id = 0;
		if (ctx->ret == 0 &&
		    pg_copy_from_user(&id, (const void __user *)ctx->args[i], sizeof(id)))
			rec.faults++;
		pg_put_u32(&rec, id);
	}
	pg_record_commit(&rec, current->pid);
}

/* capset: res, then the task's capability sets as they are after the call. */
static void fill_capset_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	const struct cred *cred = current_cred();
	struct pg_record rec;

	PG_BEGIN(&rec, ring, CAPSET_X);
	pg_put_s64(&rec, ctx->ret);
	pg_put_u64(&rec, pg_cap_u64(cred->cap_inheritable));
	pg_put_u64(&rec, pg_cap_u64(cred->cap_permitted));
	pg_put_u64(&rec, pg_cap_u64(cred->cap_effective));
	pg_record_commit(&rec, current->pid);
}

/* sendfile: res, offset (what *offset holds after the call, or 0), out_fd, in_fd, size. */
static void fill_sendfile_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct pg_record rec;
	u64 offset = 0;

	PG_BEGIN(&rec, ring, SENDFILE_X);
	if (ctx->args[2] &&
	    pg_copy_from_user(&offset, (const void __user *)ctx->args[2],
			      ctx->compat && !ctx->compat_wide ? sizeof(u32) : sizeof(u64)))
		rec.faults++;
	pg_put_s64(&rec, ctx->ret);
	pg_put_u64(&rec, offset);
	pg_put_s64(&rec, fd_arg(ctx->args[0]));
	pg_put_s64(&rec, fd_arg(ctx->args[1]));
	pg_put_u64(&rec, ctx->args[3]);
	pg_record_commit(&rec, current->pid);
}

/* How many (fd, events) pairs a poll event carries at most, as Falco's modern probe. */
#define PG_POLL_MAX_FDS 16

static u16 poll_events_to_scap(short ev)
{
	static const struct { short linux_bit; u16 scap_bit; } map[] = {
		{ POLLIN, 1u << 0 },     { POLLPRI, 1u << 1 },    { POLLOUT, 1u << 2 },
		{ POLLRDHUP, 1u << 3 },  { POLLERR, 1u << 4 },    { POLLHUP, 1u << 5 },
		{ POLLNVAL, 1u << 6 },   { POLLRDNORM, 1u << 7 }, { POLLRDBAND, 1u << 8 },
		{ POLLWRNORM, 1u << 9 }, { POLLWRBAND, 1u << 10 },
	};
	unsigned int i;
	u16 res = 0;

	for (i = 0; i < ARRAY_SIZE(map); i++)
		if (ev & map[i].linux_bit)
			res |= map[i].scap_bit;
	return res;
}

/*
 * A PT_FDLIST: a u16 count, then per entry the fd (s64) and what the
 * kernel returned for it (revents, as scap flags, s16). An array that
 * cannot be read gives a count of 0.
 */
static void put_pollfds(struct pg_record *rec, unsigned long ufds, unsigned long nfds)
{
	struct pollfd pfd;
	u32 n = min_t(unsigned long, nfds, PG_POLL_MAX_FDS), i;
	u8 *p = pg_put_reserve(rec, 2 + 10 * n);
	u16 count = 0;
	s64 fd;
	s16 ev;

	if (!p)
		return;
	for (i = 0; i < n; i++) {
		if (pg_copy_from_user(&pfd, (const void __user *)(ufds + i * sizeof(pfd)), sizeof(pfd))) {
			rec->faults++;
			break;
		}
		fd = pfd.fd;
		ev = poll_events_to_scap(pfd.revents);
		memcpy(p + 2 + 10 * i, &fd, sizeof(fd));
		memcpy(p + 2 + 10 * i + 8, &ev, sizeof(ev));
		count++;
	}
	if (count != n) {
		/* Falco sends no pair at all when the array is unreadable. */
		rec->cur--;
		rec->off -= 2 + 10 * n;
		count = 0;
		p = pg_put_reserve(rec, 2);
		if (!p)
			return;
	}
	memcpy(p, &count, sizeof(count));
}

/* A struct timespec in user memory, as nanoseconds (0 when unreadable or NULL). */
static u64 user_timespec_ns(struct pg_record *rec, unsigned long uptr, bool compat)
{
	if (!uptr)
		return 0;
	if (compat) {
		s32 ts[2];

		if (pg_copy_from_user(ts, (const void __user *)uptr, sizeof(ts)))
			goto fault;
		return (u64)(u32)ts[0] * NSEC_PER_SEC + ts[1];
	} else {
		s64 ts[2];

		if (pg_copy_from_user(ts, (const void __user *)uptr, sizeof(ts)))
			goto fault;
		return (u64)ts[0] * NSEC_PER_SEC + ts[1];
	}
fault:
	rec->faults++;
	return 0;
}

/* poll: res, fds (with revents), timeout (the int, as s64). */
static void fill_poll_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct pg_record rec;

	PG_BEGIN(&rec, ring, POLL_X);
	pg_put_s64(&rec, ctx->ret);
	put_pollfds(&rec, ctx->args[0], ctx->args[1]);
	pg_put_s64(&rec, (s64)(int)ctx->args[2]);
	pg_record_commit(&rec, current->pid);
}

/* ppoll: res, fds, timeout (ns), sigmask (its first 32 signals; 0 if none). */
static void fill_ppoll_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	unsigned long mask = 0;
	struct pg_record rec;

	PG_BEGIN(&rec, ring, PPOLL_X);
	pg_put_s64(&rec, ctx->ret);
	put_pollfds(&rec, ctx->args[0], ctx->args[1]);
	pg_put_u64(&rec, user_timespec_ns(&rec, ctx->args[2], ctx->compat && !ctx->compat_wide));
	if (ctx->args[3] &&
	    pg_copy_from_user(&mask, (const void __user *)ctx->args[3],
			      ctx->compat ? sizeof(u32) : sizeof(mask))) {
		rec.faults++;
		mask = 0;
	}
	pg_put_u32(&rec, (u32)mask);
	pg_record_commit(&rec, current->pid);
}

/* nanosleep: res, interval (ns). */
static void fill_nanosleep_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct pg_record rec;

	PG_BEGIN(&rec, ring, NANOSLEEP_X);
	pg_put_s64(&rec, ctx->ret);
	pg_put_u64(&rec, user_timespec_ns(&rec, ctx->args[0], ctx->compat));
	pg_record_commit(&rec, current->pid);
}

static u16 semop_flags_to_scap(short flg)
{
	return ((flg & IPC_NOWAIT) ? 1u << 0 : 0) | ((flg & SEM_UNDO) ? 1u << 1 : 0);
}

/*
 * semop: res, nsops, the first two operations (zeros when the call failed
 * or there are fewer), semid.
 */
static void fill_semop_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct sembuf sops[2];
	unsigned long nsops = ctx->args[2];
	struct pg_record rec;
	unsigned int i;

	memset(sops, 0, sizeof(sops));
	PG_BEGIN(&rec, ring, SEMOP_X);
	if (ctx->ret == 0 && ctx->args[1] && nsops &&
	    pg_copy_from_user(sops, (const void __user *)ctx->args[1],
			      min_t(unsigned long, nsops, 2) * sizeof(sops[0]))) {
		rec.faults++;
		memset(sops, 0, sizeof(sops));
	}
	pg_put_s64(&rec, ctx->ret);
	pg_put_u32(&rec, (u32)nsops);
	for (i = 0; i < 2; i++) {
		pg_put_u16(&rec, sops[i].sem_num);
		pg_put_u16(&rec, (u16)sops[i].sem_op);
		pg_put_u16(&rec, semop_flags_to_scap(sops[i].sem_flg));
	}
	pg_put_u32(&rec, (u32)ctx->args[0]);
	pg_record_commit(&rec, current->pid);
}

static u16 semctl_cmd_to_scap(unsigned long cmd)
{
	static const struct { unsigned int linux_cmd; u16 scap_cmd; } map[] = {
		{ IPC_STAT, 1u << 0 }, { IPC_SET, 1u << 1 },   { IPC_RMID, 1u << 2 },
		{ IPC_INFO, 1u << 3 }, { SEM_INFO, 1u << 4 },  { SEM_STAT, 1u << 5 },
		{ GETALL, 1u << 6 },   { GETNCNT, 1u << 7 },   { GETPID, 1u << 8 },
		{ GETVAL, 1u << 9 },   { GETZCNT, 1u << 10 },  { SETALL, 1u << 11 },
		{ SETVAL, 1u << 12 },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(map); i++)
		if (cmd == map[i].linux_cmd)
			return map[i].scap_cmd;
	return 0;
}

/* semctl: res, semid, semnum, cmd, val (the value SETVAL sets; 0 for other commands). */
static void fill_semctl_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct pg_record rec;

	PG_BEGIN(&rec, ring, SEMCTL_X);
	pg_put_s64(&rec, ctx->ret);
	pg_put_u32(&rec, (u32)ctx->args[0]);
	pg_put_u32(&rec, (u32)ctx->args[1]);
	pg_put_u16(&rec, semctl_cmd_to_scap(ctx->args[2]));
	pg_put_u32(&rec, ctx->args[2] == SETVAL ? (u32)ctx->args[3] : 0);
	pg_record_commit(&rec, current->pid);
}

/* scap's quotactl command bits, by Linux command (cmd >> SUBCMDSHIFT). */
static u16 quotactl_cmd_to_scap(unsigned long cmd)
{
	static const struct { unsigned int linux_cmd; u16 scap_cmd; } map[] = {
		{ Q_QUOTAON, 1u << 0 },   { Q_QUOTAOFF, 1u << 1 },  { Q_GETFMT, 1u << 2 },
		{ Q_GETINFO, 1u << 3 },   { Q_SETINFO, 1u << 4 },   { Q_GETQUOTA, 1u << 5 },
		{ Q_SETQUOTA, 1u << 6 },  { Q_SYNC, 1u << 7 },      { Q_XQUOTAON, 1u << 8 },
		{ Q_XQUOTAOFF, 1u << 9 }, { Q_XGETQUOTA, 1u << 10 }, { Q_XSETQLIM, 1u << 11 },
		{ Q_XGETQSTAT, 1u << 12 }, { Q_XQUOTARM, 1u << 13 }, { Q_XQUOTASYNC, 1u << 14 },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(map); i++)
		if ((cmd >> SUBCMDSHIFT) == map[i].linux_cmd)
			return map[i].scap_cmd;
	return 0;
}

#define PG_Q_QUOTAON  (1u << 0)
#define PG_Q_GETFMT   (1u << 2)
#define PG_Q_GETINFO  (1u << 3)
#define PG_Q_SETINFO  (1u << 4)
#define PG_Q_GETQUOTA (1u << 5)
#define PG_Q_SETQUOTA (1u << 6)
#define PG_Q_XGETQUOTA (1u << 10)
#define PG_Q_XSETQLIM (1u << 11)
#define PG_QFMT_NOT_USED (1u << 0)

static u8 quotactl_fmt_to_scap(unsigned long fmt)
{
	switch (fmt) {
	case QFMT_VFS_OLD: return 1u << 1;
	case QFMT_VFS_V0:  return 1u << 2;
	case QFMT_VFS_V1:  return 1u << 3;
	default:           return PG_QFMT_NOT_USED;
	}
}

static u8 quotactl_type_to_scap(unsigned long cmd)
{
	switch (cmd & SUBCMDMASK) {
	case USRQUOTA: return 1u << 0;
	case GRPQUOTA: return 1u << 1;
	default:       return 0;
	}
}

/*
 * quotactl: res, special, quotafilepath (Q_QUOTAON's file), the dqblk
 * limits and times (Q_GETQUOTA/Q_SETQUOTA, those the kernel marked valid),
 * the dqinfo graces and flags (Q_GETINFO/Q_SETINFO), the format Q_GETFMT
 * returned, then cmd, type, id (a user or group id only for the quota
 * commands) and the format Q_QUOTAON was given.
 */
static void fill_quotactl_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	u16 cmd = quotactl_cmd_to_scap(ctx->args[0]);
	unsigned long addr = ctx->args[3];
	struct if_dqblk dqblk;
	struct if_dqinfo dqinfo;
	struct pg_record rec;
	u32 fmt_out = 0, id = (u32)ctx->args[2];

	memset(&dqblk, 0, sizeof(dqblk));
	memset(&dqinfo, 0, sizeof(dqinfo));
	PG_BEGIN(&rec, ring, QUOTACTL_X);
	pg_put_s64(&rec, ctx->ret);
	pg_put_ustr(&rec, ctx->args[1], PG_PATH_MAX);
	if (cmd == PG_Q_QUOTAON)
		pg_put_ustr(&rec, addr, PG_PATH_MAX);
	else
		pg_put_empty(&rec);
	if ((cmd == PG_Q_GETQUOTA || cmd == PG_Q_SETQUOTA) &&
	    pg_copy_from_user(&dqblk, (const void __user *)addr, sizeof(dqblk))) {
		rec.faults++;
		memset(&dqblk, 0, sizeof(dqblk));
	}
	pg_put_u64(&rec, (dqblk.dqb_valid & QIF_BLIMITS) ? dqblk.dqb_bhardlimit : 0);
	pg_put_u64(&rec, (dqblk.dqb_valid & QIF_BLIMITS) ? dqblk.dqb_bsoftlimit : 0);
	pg_put_u64(&rec, (dqblk.dqb_valid & QIF_SPACE) ? dqblk.dqb_curspace : 0);
	pg_put_u64(&rec, (dqblk.dqb_valid & QIF_ILIMITS) ? dqblk.dqb_ihardlimit : 0);
	pg_put_u64(&rec, (dqblk.dqb_valid & QIF_ILIMITS) ? dqblk.dqb_isoftlimit : 0);
	pg_put_u64(&rec, (dqblk.dqb_valid & QIF_BTIME) ? dqblk.dqb_btime : 0);
	pg_put_u64(&rec, (dqblk.dqb_valid & QIF_ITIME) ? dqblk.dqb_itime : 0);
	if ((cmd == PG_Q_GETINFO || cmd == PG_Q_SETINFO) &&
	    pg_copy_from_user(&dqinfo, (const void __user *)addr, sizeof(dqinfo))) {
		rec.faults++;
		memset(&dqinfo, 0, sizeof(dqinfo));
	}
	pg_put_u64(&rec, (dqinfo.dqi_valid & IIF_BGRACE) ? dqinfo.dqi_bgrace : 0);
	pg_put_u64(&rec, (dqinfo.dqi_valid & IIF_IGRACE) ? dqinfo.dqi_igrace : 0);
	pg_put_u8(&rec, (dqinfo.dqi_valid & IIF_FLAGS) ? dqinfo.dqi_flags : 0);
	if (cmd == PG_Q_GETFMT) {
		if (pg_copy_from_user(&fmt_out, (const void __user *)addr, sizeof(fmt_out)))
			rec.faults++;
		pg_put_u8(&rec, quotactl_fmt_to_scap(fmt_out));
	} else {
		pg_put_u8(&rec, PG_QFMT_NOT_USED);
	}
	pg_put_u16(&rec, cmd);
	pg_put_u8(&rec, quotactl_type_to_scap(ctx->args[0]));
	pg_put_u32(&rec, (cmd == PG_Q_GETQUOTA || cmd == PG_Q_SETQUOTA ||
			  cmd == PG_Q_XGETQUOTA || cmd == PG_Q_XSETQLIM) ? id : 0);
	pg_put_u8(&rec, cmd == PG_Q_QUOTAON ? quotactl_fmt_to_scap(id) : PG_QFMT_NOT_USED);
	pg_record_commit(&rec, current->pid);
}

/* A keyctl argument (PT_DYN): an index byte, then an s64 or a string. */
static void put_keyctl_int(struct pg_record *rec, s64 v)
{
	u8 buf[1 + sizeof(s64)];

	buf[0] = PG_KEYCTL_IDX_INT64;
	memcpy(buf + 1, &v, sizeof(v));
	pg_put_bytes(rec, buf, sizeof(buf));
}

static void put_keyctl_str(struct pg_record *rec, unsigned long uptr)
{
	long n = 0;
	u8 *p;

	/* Reserve the index byte and the longest string, then give back what is unused. */
	p = pg_put_reserve(rec, 1 + PG_PATH_MAX);
	if (!p)
		return;
	p[0] = PG_KEYCTL_IDX_CHARBUF;
	if (uptr) {
		n = pg_strncpy_from_user(p + 1, (const void __user *)uptr, PG_PATH_MAX);
		if (n < 0) {
			/* Unreadable: the index byte alone, as for a NULL string. */
			rec->faults++;
			n = 0;
		} else {
			if (n >= PG_PATH_MAX)
				n = PG_PATH_MAX - 1;
			p[1 + n] = '\0';
			n++;
		}
	}
	rec->cur--;
	rec->off -= 1 + PG_PATH_MAX;
	pg_put_reserve(rec, 1 + n);
}

/* What each argument 2..5 of a keyctl operation is: 0 none, 'i' an integer, 's' a string. */
static const char keyctl_args[][4] = {
	[KEYCTL_GET_KEYRING_ID]     = "ii",   [KEYCTL_JOIN_SESSION_KEYRING] = "s",
	[KEYCTL_UPDATE]             = "iii",  [KEYCTL_REVOKE]               = "i",
	[KEYCTL_CHOWN]              = "iii",  [KEYCTL_SETPERM]              = "ii",
	[KEYCTL_DESCRIBE]           = "iii",  [KEYCTL_CLEAR]                = "i",
	[KEYCTL_LINK]               = "ii",   [KEYCTL_UNLINK]               = "ii",
	[KEYCTL_SEARCH]             = "issi", [KEYCTL_READ]                 = "iii",
	[KEYCTL_INSTANTIATE]        = "iiii", [KEYCTL_NEGATE]               = "iii",
	[KEYCTL_SET_REQKEY_KEYRING] = "i",    [KEYCTL_SET_TIMEOUT]          = "ii",
	[KEYCTL_ASSUME_AUTHORITY]   = "i",    [KEYCTL_GET_SECURITY]         = "iii",
	[KEYCTL_SESSION_TO_PARENT]  = "",     [KEYCTL_REJECT]               = "iiii",
	[KEYCTL_INSTANTIATE_IOV]    = "iiii", [KEYCTL_INVALIDATE]           = "i",
	[KEYCTL_GET_PERSISTENT]     = "ii",   [KEYCTL_DH_COMPUTE]           = "iiii",
	[24 /* PKEY_QUERY */]       = "iis",  [25 /* PKEY_ENCRYPT */]       = "isii",
	[26 /* PKEY_DECRYPT */]     = "isii", [27 /* PKEY_SIGN */]          = "isii",
	[28 /* PKEY_VERIFY */]      = "isii", [29 /* RESTRICT_KEYRING */]   = "iss",
	[30 /* MOVE */]             = "iiii", [31 /* CAPABILITIES */]       = "ii",
	[32 /* WATCH_KEY */]        = "iii",
};

/*
 * keyctl: res, operation (Linux's numbers are scap's), arg2..arg5 typed by
 * the operation: the strings it reads are sent as strings, what it does
 * not take as 0.
 */
static void fill_keyctl_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	unsigned long op = (u32)ctx->args[0];
	const char *kinds = op < ARRAY_SIZE(keyctl_args) ? keyctl_args[op] : "";
	struct pg_record rec;
	unsigned int i;

	PG_BEGIN(&rec, ring, KEYCTL_X);
	pg_put_s64(&rec, ctx->ret);
	pg_put_u32(&rec, (u32)op);
	for (i = 0; i < 4; i++) {
		char kind = i < strnlen(kinds, 4) ? kinds[i] : 0;

		if (kind == 's')
			put_keyctl_str(&rec, ctx->args[1 + i]);
		else
			put_keyctl_int(&rec, kind == 'i' ? (s64)ctx->args[1 + i] : 0);
	}
	pg_record_commit(&rec, current->pid);
}

/*
 * fsconfig: res, fd, cmd (Linux's numbers are scap's), key, then the value
 * as bytes (FSCONFIG_SET_BINARY, aux long) or as a string (the string and
 * path commands), only when the call succeeded; aux.
 */
static void fill_fsconfig_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	u32 cmd = (u32)ctx->args[1];
	unsigned long value = ctx->args[3];
	int aux = (int)ctx->args[4];
	struct pg_record rec;

	PG_BEGIN(&rec, ring, FSCONFIG_X);
	pg_put_s64(&rec, ctx->ret);
	pg_put_s64(&rec, fd_arg(ctx->args[0]));
	pg_put_u32(&rec, cmd);
	pg_put_ustr(&rec, ctx->args[2], PG_PATH_MAX);
	if (ctx->ret >= 0 && cmd == 2 /* FSCONFIG_SET_BINARY */ && aux > 0)
		pg_put_ubytes(&rec, value, min_t(u32, aux, snaplen()));
	else
		pg_put_empty(&rec);
	/* FSCONFIG_SET_STRING, _SET_PATH, _SET_PATH_EMPTY */
	if (ctx->ret >= 0 && (cmd == 1 || cmd == 3 || cmd == 4))
		pg_put_ustr(&rec, value, PG_PATH_MAX);
	else
		pg_put_empty(&rec);
	pg_put_u32(&rec, (u32)aux);
	pg_record_commit(&rec, current->pid);
}

/*
 * open_by_handle_at: fd, mountfd, flags (the open flags, and O_F_CREATED),
 * the path of the opened file, its dev and inode.
 */
static void fill_open_by_handle_at_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	u32 flags = pg_open_flags_to_scap(ctx->args[2]), dev = 0;
	struct pg_record rec;
	bool created = false;
	u64 ino = 0;

	PG_BEGIN(&rec, ring, OPEN_BY_HANDLE_AT_X);
	if (ctx->ret > 0) {
		pg_fd_dev_ino(ctx->ret, &dev, &ino, &created);
		if (created)
			flags |= SCAP_O_F_CREATED;
	}
	pg_put_s64(&rec, ctx->ret);
	pg_put_s64(&rec, fd_arg(ctx->args[0]));
	pg_put_u32(&rec, flags);
	if (ctx->ret > 0)
		pg_put_fd_path(&rec, ctx->ret);
	else
		pg_put_empty(&rec);
	pg_put_u32(&rec, dev);
	pg_put_u64(&rec, ino);
	pg_record_commit(&rec, current->pid);
}

/* The fillers that take a flag of the call's variant, bound to it. */
static void fill_pipe1_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_pipe_x(r, c, false); }
static void fill_pipe2_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_pipe_x(r, c, true); }
static void fill_pvm_read_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_process_vm_x(r, c, false); }
static void fill_pvm_write_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_process_vm_x(r, c, true); }
static void fill_pread_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_prw_x(r, c, false); }
static void fill_pwrite_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_prw_x(r, c, true); }
static void fill_readv_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_rwv_x(r, c, false, false); }
static void fill_writev_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_rwv_x(r, c, true, false); }
static void fill_preadv_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_rwv_x(r, c, false, true); }
static void fill_pwritev_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_rwv_x(r, c, true, true); }
static void fill_getrlimit_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_rlimit_x(r, c, false); }
static void fill_setrlimit_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_rlimit_x(r, c, true); }
static void fill_getresuid_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_getres_x(r, c, false); }
static void fill_getresgid_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_getres_x(r, c, true); }

/* The filler of each syscall of this family, by x86-64 number. */
static const pg_filler_fn pg_misc_fillers[PG_SYSCALL_NR_MAX] = {
	[__NR_prctl]              = fill_prctl_x,
	[__NR_pipe]               = fill_pipe1_x,
	[__NR_pipe2]              = fill_pipe2_x,
	[__NR_io_uring_setup]     = fill_io_uring_setup_x,
	[__NR_process_vm_readv]   = fill_pvm_read_x,
	[__NR_process_vm_writev]  = fill_pvm_write_x,
	[__NR_pread64]            = fill_pread_x,
	[__NR_pwrite64]           = fill_pwrite_x,
	[__NR_readv]              = fill_readv_x,
	[__NR_writev]             = fill_writev_x,
	[__NR_preadv]             = fill_preadv_x,
	[__NR_pwritev]            = fill_pwritev_x,
	[__NR_getrlimit]          = fill_getrlimit_x,
	[__NR_setrlimit]          = fill_setrlimit_x,
	[__NR_prlimit64]          = fill_prlimit_x,
	[__NR_getresuid]          = fill_getresuid_x,
	[__NR_getresgid]          = fill_getresgid_x,
	[__NR_capset]             = fill_capset_x,
	[__NR_sendfile]           = fill_sendfile_x,
	[__NR_poll]               = fill_poll_x,
	[__NR_ppoll]              = fill_ppoll_x,
	[__NR_nanosleep]          = fill_nanosleep_x,
	[__NR_semop]              = fill_semop_x,
	[__NR_semctl]             = fill_semctl_x,
	[__NR_quotactl]           = fill_quotactl_x,
	[__NR_keyctl]             = fill_keyctl_x,
	[__NR_fsconfig]           = fill_fsconfig_x,
	[__NR_open_by_handle_at]  = fill_open_by_handle_at_x,
};

bool pg_fill_misc_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	pg_filler_fn fill;

	if (ctx->nr < 0 || ctx->nr >= PG_SYSCALL_NR_MAX)
		return false;
	fill = pg_misc_fillers[ctx->nr];
	if (!fill)
		return false;
	fill(ring, ctx);
	return true;
}
