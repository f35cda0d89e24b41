// SPDX-License-Identifier: GPL-2.0-only
/*
 * fillers_net.c - sending and receiving on sockets (sendto, sendmsg,
 * sendmmsg, recvfrom, recvmsg, recvmmsg) and socketpair, in scap's layout.
 *
 * Every send/receive exit carries the socket tuple, so an unconnected UDP
 * socket is reported with the peer of each datagram. The batched calls
 * give one event per message, as Falco's kernel module does; a failed
 * batch gives one event with the error.
 */
#include <linux/net.h>
#include <linux/socket.h>
#include <net/sock.h>
#include <net/af_unix.h>
#include "peregrine.h"
#include "compat.h"
#include "fillers.h"

/* The i386 layouts of msghdr and mmsghdr (pointers and sizes are 32-bit). */
struct pg_msghdr32 {
	u32 msg_name;
	s32 msg_namelen;
	u32 msg_iov;
	u32 msg_iovlen;
	u32 msg_control;
	u32 msg_controllen;
	u32 msg_flags;
};

struct pg_mmsghdr32 {
	struct pg_msghdr32 msg_hdr;
	u32 msg_len;
};

/* A message header read from user memory, whatever the caller's width. */
struct pg_msg {
	unsigned long name;
	unsigned long namelen;
	struct pg_iov_src iov;
	unsigned long control;
	unsigned long controllen;
	u32 len;                /* bytes of this message (the mmsg forms) */
};

/*
 * Message index of a msghdr (mmsg: of an mmsghdr array) at uptr. False,
 * with a fault counted, when it cannot be read.
 */
static bool read_msg(struct pg_record *rec, unsigned long uptr, bool compat, bool mmsg,
		     unsigned long index, struct pg_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->iov.compat = compat;
	if (compat) {
		struct pg_mmsghdr32 h = {};
		size_t size = mmsg ? sizeof(h) : sizeof(h.msg_hdr);

		if (pg_copy_from_user(&h, (const void __user *)(uptr + index * size), size))
			goto fault;
		m->name = h.msg_hdr.msg_name;
		m->namelen = h.msg_hdr.msg_namelen < 0 ? 0 : h.msg_hdr.msg_namelen;
		m->iov.uiov = h.msg_hdr.msg_iov;
		m->iov.count = h.msg_hdr.msg_iovlen;
		m->control = h.msg_hdr.msg_control;
		m->controllen = h.msg_hdr.msg_controllen;
		m->len = h.msg_len;
	} else {
		struct mmsghdr h = {};
		size_t size = mmsg ? sizeof(h) : sizeof(h.msg_hdr);

		if (pg_copy_from_user(&h, (const void __user *)(uptr + index * size), size))
			goto fault;
		m->name = (unsigned long)h.msg_hdr.msg_name;
		m->namelen = h.msg_hdr.msg_namelen < 0 ? 0 : h.msg_hdr.msg_namelen;
		m->iov.uiov = (unsigned long)h.msg_hdr.msg_iov;
		m->iov.count = h.msg_hdr.msg_iovlen;
		m->control = (unsigned long)h.msg_hdr.msg_control;
		m->controllen = h.msg_hdr.msg_controllen;
		m->len = h.msg_len;
	}
	return true;
fault:
	rec->faults++;
	return false;
}

static u32 snaplen(void)
{
	return READ_ONCE(pg_settings.snaplen);
}

/* sendto: res, data, fd, size, tuple. */
static void fill_sendto_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct pg_record rec;
	s64 fd = fd_arg(ctx->args[0]);
	u32 size = ctx->args[2];
	/* A failed send still shows what it tried to send. */
	u64 n = ctx->ret > 0 ? ctx->ret : size;

	PG_BEGIN(&rec, ring, SENDTO_X);
	pg_put_s64(&rec, ctx->ret);
	pg_put_ubytes(&rec, ctx->args[1], min_t(u64, n, snaplen()));
	pg_put_s64(&rec, fd);
	pg_put_u32(&rec, size);
	if (ctx->ret >= 0)
		pg_put_fd_socktuple(&rec, fd, false, ctx->args[4], ctx->args[5]);
	else
		pg_put_empty(&rec);
	pg_record_commit(&rec, current->pid);
}

/* recvfrom: res, data, tuple, fd, size. */
static void fill_recvfrom_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct pg_record rec;
	s64 fd = fd_arg(ctx->args[0]);
	unsigned long uaddr = ctx->args[4], ulen = 0;
	int addrlen;

	PG_BEGIN(&rec, ring, RECVFROM_X);
	pg_put_s64(&rec, ctx->ret);
	if (ctx->ret > 0)
		pg_put_ubytes(&rec, ctx->args[1], min_t(u64, ctx->ret, snaplen()));
	else
		pg_put_empty(&rec);
	if (ctx->ret >= 0) {
		/* The kernel wrote the sender's address and its length back. */
		if (uaddr && ctx->args[5]) {
			if (pg_copy_from_user(&addrlen, (const void __user *)ctx->args[5],
					      sizeof(addrlen)))
				rec.faults++;
			else if (addrlen > 0)
				ulen = addrlen;
		}
		pg_put_fd_socktuple(&rec, fd, true, ulen ? uaddr : 0, ulen);
	} else {
		pg_put_empty(&rec);
	}
	pg_put_s64(&rec, fd);
	pg_put_u32(&rec, (u32)ctx->args[2]);
	pg_record_commit(&rec, current->pid);
}

/* sendmsg: res, data, fd, size, tuple. */
static void fill_sendmsg_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct pg_record rec;
	s64 fd = fd_arg(ctx->args[0]);
	struct pg_msg m;
	u64 total;

	PG_BEGIN(&rec, ring, SENDMSG_X);
	pg_put_s64(&rec, ctx->ret);
	if (!read_msg(&rec, ctx->args[1], ctx->compat, false, 0, &m)) {
		pg_put_empty(&rec);                                      /* data */
		pg_put_s64(&rec, fd);
		pg_put_empty(&rec);                                      /* size */
		pg_put_empty(&rec);                                      /* tuple */
		goto out;
	}
	total = pg_iov_total(&rec, &m.iov);
	if (ctx->ret > 0)
		pg_put_iov_data(&rec, &m.iov, min_t(u64, total, snaplen()));
	else
		pg_put_empty(&rec);
	pg_put_s64(&rec, fd);
	pg_put_u32(&rec, total);
	if (ctx->ret >= 0)
		pg_put_fd_socktuple(&rec, fd, false, m.name, m.namelen);
	else
		pg_put_empty(&rec);
out:
	pg_record_commit(&rec, current->pid);
}

/* recvmsg: res, size, data, tuple, msgcontrol, fd. */
static void fill_recvmsg_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct pg_record rec;
	s64 fd = fd_arg(ctx->args[0]);
	struct pg_msg m;
	u64 total;

	PG_BEGIN(&rec, ring, RECVMSG_X);
	pg_put_s64(&rec, ctx->ret);
	if (ctx->ret < 0 || !read_msg(&rec, ctx->args[1], ctx->compat, false, 0, &m)) {
		pg_put_empty(&rec);                                      /* size */
		pg_put_empty(&rec);                                      /* data */
		pg_put_empty(&rec);                                      /* tuple */
		pg_put_empty(&rec);                                      /* msgcontrol */
		goto out;
	}
	total = min_t(u64, pg_iov_total(&rec, &m.iov), ctx->ret);
	pg_put_u32(&rec, total);
	pg_put_iov_data(&rec, &m.iov, min_t(u64, total, snaplen()));
	pg_put_fd_socktuple(&rec, fd, true, m.name, m.namelen);
	pg_put_ubytes(&rec, m.control, min_t(u64, m.controllen, snaplen()));
out:
	pg_put_s64(&rec, fd);
	pg_record_commit(&rec, current->pid);
}

/*
 * sendmmsg: res, fd, size, data, tuple; recvmmsg adds msgcontrol. One
 * event per message the call handled (res is that message's length).
 */
static void fill_mmsg_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx, bool is_send)
{
	struct pg_record rec;
	s64 fd = fd_arg(ctx->args[0]);
	unsigned long i, count = ctx->ret > 0 ? min_t(long, ctx->ret, UIO_MAXIOV) : 1;
	struct pg_msg m;
	bool have;
	u64 total;

	for (i = 0; i < count; i++) {
		if (is_send)
			PG_BEGIN(&rec, ring, SENDMMSG_X);
		else
			PG_BEGIN(&rec, ring, RECVMMSG_X);
		have = ctx->ret > 0 && read_msg(&rec, ctx->args[1], ctx->compat, true, i, &m);
		pg_put_s64(&rec, have ? (s64)m.len : ctx->ret);
		pg_put_s64(&rec, fd);
		if (!have) {
			pg_put_u32(&rec, 0);                             /* size */
			pg_put_empty(&rec);                              /* data */
			pg_put_empty(&rec);                              /* tuple */
			if (!is_send)
				pg_put_empty(&rec);                      /* msgcontrol */
		} else {
			total = pg_iov_total(&rec, &m.iov);
			if (!is_send)
				total = min_t(u64, total, m.len);
			pg_put_u32(&rec, total);
			pg_put_iov_data(&rec, &m.iov, min_t(u64, total, snaplen()));
			/* A receive tells its peer only through msg_name (as Falco's). */
			if (is_send || (m.name && m.namelen))
				pg_put_fd_socktuple(&rec, fd, !is_send, m.name, m.namelen);
			else
				pg_put_empty(&rec);
			if (!is_send)
				pg_put_ubytes(&rec, m.control, min_t(u64, m.controllen, snaplen()));
		}
		pg_record_commit(&rec, current->pid);
	}
}

/* socketpair: res, fd1, fd2, source, peer (the two unix socket objects), domain, type, proto. */
static void fill_socketpair_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct pg_record rec;
	int fds[2] = { -1, -1 };
	u64 source = 0, peer = 0;
	struct file *file;
	struct sock *sk;

	PG_BEGIN(&rec, ring, SOCKETPAIR_X);
	if (ctx->ret == 0 &&
	    pg_copy_from_user(fds, (const void __user *)ctx->args[3], sizeof(fds))) {
		rec.faults++;
		fds[0] = fds[1] = -1;
	}
	if (ctx->ret == 0 && fds[0] >= 0) {
		sk = pg_fd_sock_get(fds[0], &file);
		if (sk) {
			if (sk->sk_family == AF_UNIX) {
				source = (u64)(unsigned long)sk;
				peer = (u64)(unsigned long)unix_sk(sk)->peer;
			}
			fput(file);
		}
	}
	pg_put_s64(&rec, ctx->ret);
	pg_put_s64(&rec, fds[0]);
	pg_put_s64(&rec, fds[1]);
	pg_put_u64(&rec, source);
	pg_put_u64(&rec, peer);
	pg_put_u32(&rec, pg_family_to_scap(ctx->args[0]));
	pg_put_u32(&rec, (u32)ctx->args[1]);
	pg_put_u32(&rec, (u32)ctx->args[2]);
	pg_record_commit(&rec, current->pid);
}

bool pg_fill_net_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	switch (ctx->nr) {
	case __NR_sendto:
		fill_sendto_x(ring, ctx);
		return true;
	case __NR_recvfrom:
		fill_recvfrom_x(ring, ctx);
		return true;
	case __NR_sendmsg:
		fill_sendmsg_x(ring, ctx);
		return true;
	case __NR_recvmsg:
		fill_recvmsg_x(ring, ctx);
		return true;
	case __NR_sendmmsg:
		fill_mmsg_x(ring, ctx, true);
		return true;
	case __NR_recvmmsg:
		fill_mmsg_x(ring, ctx, false);
		return true;
	case __NR_socketpair:
		fill_socketpair_x(ring, ctx);
		return true;
	default:
		return false;
	}
}
