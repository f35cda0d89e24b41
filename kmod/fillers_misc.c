// SPDX-License-Identifier: GPL-2.0-only
/*
 * fillers_misc.c - syscalls whose parameters come from memory the call
 * wrote or read rather than from its arguments alone: prctl, pipe/pipe2,
 * io_uring_setup, process_vm_readv/writev, the positioned and vectored
 * reads and writes, resource limits, getresuid/getresgid, capset, sendfile.
 */
#include <linux/fs.h>
#include <linux/fcntl.h>
#include <linux/prctl.h>
#include <linux/cred.h>
#include <linux/resource.h>
#include <uapi/linux/io_uring.h>
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
			      ctx->compat ? sizeof(u32) : sizeof(u64)))
		rec.faults++;
	pg_put_s64(&rec, ctx->ret);
	pg_put_u64(&rec, offset);
	pg_put_s64(&rec, fd_arg(ctx->args[0]));
	pg_put_s64(&rec, fd_arg(ctx->args[1]));
	pg_put_u64(&rec, ctx->args[3]);
	pg_record_commit(&rec, current->pid);
}

bool pg_fill_misc_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	switch (ctx->nr) {
	case __NR_prctl:
		fill_prctl_x(ring, ctx);
		return true;
	case __NR_pipe:
		fill_pipe_x(ring, ctx, false);
		return true;
	case __NR_pipe2:
		fill_pipe_x(ring, ctx, true);
		return true;
	case __NR_io_uring_setup:
		fill_io_uring_setup_x(ring, ctx);
		return true;
	case __NR_process_vm_readv:
		fill_process_vm_x(ring, ctx, false);
		return true;
	case __NR_process_vm_writev:
		fill_process_vm_x(ring, ctx, true);
		return true;
	case __NR_pread64:
		fill_prw_x(ring, ctx, false);
		return true;
	case __NR_pwrite64:
		fill_prw_x(ring, ctx, true);
		return true;
	case __NR_readv:
		fill_rwv_x(ring, ctx, false, false);
		return true;
	case __NR_writev:
		fill_rwv_x(ring, ctx, true, false);
		return true;
	case __NR_preadv:
		fill_rwv_x(ring, ctx, false, true);
		return true;
	case __NR_pwritev:
		fill_rwv_x(ring, ctx, true, true);
		return true;
	case __NR_getrlimit:
		fill_rlimit_x(ring, ctx, false);
		return true;
	case __NR_setrlimit:
		fill_rlimit_x(ring, ctx, true);
		return true;
	case __NR_prlimit64:
		fill_prlimit_x(ring, ctx);
		return true;
	case __NR_getresuid:
		fill_getres_x(ring, ctx, false);
		return true;
	case __NR_getresgid:
		fill_getres_x(ring, ctx, true);
		return true;
	case __NR_capset:
		fill_capset_x(ring, ctx);
		return true;
	case __NR_sendfile:
		fill_sendfile_x(ring, ctx);
		return true;
	default:
		return false;
	}
}
