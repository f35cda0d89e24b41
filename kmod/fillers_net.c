// SPDX-License-Identifier: GPL-2.0-only
/*
 * fillers_net.c - sending and receiving on sockets (sendto, sendmsg,
 * sendmmsg, recvfrom, recvmsg, recvmmsg), socketpair and socket options
 * (setsockopt, getsockopt), in scap's layout.
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
#include <linux/tcp.h>
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

/* What a SOL_SOCKET option's value is, for the val parameter's index byte. */
struct pg_sockopt {
	u16 linux_name;
	u8 scap_name;
	u8 idx;         /* PG_SOCKOPT_IDX_* */
};

#define U32V PG_SOCKOPT_IDX_UINT32
#define RAWV PG_SOCKOPT_IDX_UNKNOWN
static const struct pg_sockopt pg_sockopts[] = {
	{ SO_DEBUG, 1, U32V },            { SO_REUSEADDR, 2, U32V },
	{ SO_TYPE, 3, U32V },             { SO_ERROR, 4, PG_SOCKOPT_IDX_ERRNO },
	{ SO_DONTROUTE, 5, U32V },        { SO_BROADCAST, 6, U32V },
	{ SO_SNDBUF, 7, U32V },           { SO_RCVBUF, 8, U32V },
	{ SO_SNDBUFFORCE, 32, U32V },     { SO_RCVBUFFORCE, 33, U32V },
	{ SO_KEEPALIVE, 9, U32V },        { SO_OOBINLINE, 10, U32V },
	{ SO_NO_CHECK, 11, U32V },        { SO_PRIORITY, 12, U32V },
	{ SO_LINGER, 13, RAWV },          { SO_BSDCOMPAT, 14, U32V },
	{ SO_REUSEPORT, 15, U32V },       { SO_PASSCRED, 16, U32V },
	{ SO_PEERCRED, 17, RAWV },        { SO_RCVLOWAT, 18, U32V },
	{ SO_SNDLOWAT, 19, U32V },
	{ SO_RCVTIMEO_OLD, 20, PG_SOCKOPT_IDX_TIMEVAL },
	{ SO_RCVTIMEO_NEW, 20, PG_SOCKOPT_IDX_TIMEVAL },
	{ SO_SNDTIMEO_OLD, 21, PG_SOCKOPT_IDX_TIMEVAL },
	{ SO_SNDTIMEO_NEW, 21, PG_SOCKOPT_IDX_TIMEVAL },
	{ SO_SECURITY_AUTHENTICATION, 22, U32V },
	{ SO_SECURITY_ENCRYPTION_TRANSPORT, 23, U32V },
	{ SO_SECURITY_ENCRYPTION_NETWORK, 24, U32V },
	{ SO_BINDTODEVICE, 25, U32V },    { SO_ATTACH_FILTER, 26, RAWV },
	{ SO_DETACH_FILTER, 27, U32V },   { SO_PEERNAME, 28, RAWV },
	{ SO_TIMESTAMP_OLD, 29, U32V },   { SO_ACCEPTCONN, 30, U32V },
	{ SO_PEERSEC, 31, U32V },         { SO_PASSSEC, 34, U32V },
	{ SO_TIMESTAMPNS_OLD, 35, U32V }, { SO_MARK, 36, U32V },
	{ SO_TIMESTAMPING_OLD, 37, U32V }, { SO_PROTOCOL, 38, U32V },
	{ SO_DOMAIN, 39, U32V },          { SO_RXQ_OVFL, 40, U32V },
	{ SO_WIFI_STATUS, 41, U32V },     { SO_PEEK_OFF, 42, U32V },
	{ SO_NOFCS, 43, U32V },           { SO_LOCK_FILTER, 44, U32V },
	{ SO_SELECT_ERR_QUEUE, 45, U32V }, { SO_BUSY_POLL, 46, U32V },
	{ SO_MAX_PACING_RATE, 47, U32V }, { SO_BPF_EXTENSIONS, 48, U32V },
	{ SO_INCOMING_CPU, 49, U32V },    { SO_ATTACH_BPF, 50, RAWV },
	{ SO_PEERGROUPS, 51, RAWV },      { SO_MEMINFO, 52, RAWV },
	{ SO_COOKIE, 53, PG_SOCKOPT_IDX_UINT64 },
};
#undef U32V
#undef RAWV

/* The SOL_SOCKET option (or NULL: another level, or one scap does not name). */
static const struct pg_sockopt *sockopt_of(int level, int optname)
{
	unsigned int i;

	if (level != SOL_SOCKET)
		return NULL;
	for (i = 0; i < ARRAY_SIZE(pg_sockopts); i++)
		if (pg_sockopts[i].linux_name == optname)
			return &pg_sockopts[i];
	return NULL;
}

static u8 sockopt_level_to_scap(int level)
{
	return level == SOL_SOCKET ? 1 : level == SOL_TCP ? 2 : 0;
}

/*
 * val (PT_DYN): the index byte, then the option's value typed by it; an
 * option scap does not type is sent as the bytes given (up to snaplen).
 * A value that cannot be read is sent as 0, as Falco's drivers do.
 */
static void put_sockopt_val(struct pg_record *rec, const struct pg_sockopt *opt,
			    unsigned long uval, u32 optlen, bool compat)
{
	u8 buf[1 + sizeof(u64)];
	u8 idx = opt ? opt->idx : PG_SOCKOPT_IDX_UNKNOWN;
	u64 v64 = 0;
	s32 v32 = 0;
	u32 n;
	u8 *p;

	buf[0] = idx;
	switch (idx) {
	case PG_SOCKOPT_IDX_ERRNO:
		if (pg_copy_from_user(&v32, (const void __user *)uval, sizeof(v32))) {
			rec->faults++;
			v32 = 0;
		}
		v64 = (u64)-(s64)v32;
		break;
	case PG_SOCKOPT_IDX_UINT32:
		if (pg_copy_from_user(&v32, (const void __user *)uval, sizeof(v32))) {
			rec->faults++;
			v32 = 0;
		}
		memcpy(buf + 1, &v32, sizeof(v32));
		pg_put_bytes(rec, buf, 1 + sizeof(v32));
		return;
	case PG_SOCKOPT_IDX_UINT64:
		if (pg_copy_from_user(&v64, (const void __user *)uval, sizeof(v64))) {
			rec->faults++;
			v64 = 0;
		}
		break;
	case PG_SOCKOPT_IDX_TIMEVAL:
		/*
		 * Only the _OLD options take a 32-bit caller's struct timeval
		 * (2 x s32); the _NEW ones take __kernel_sock_timeval, 2 x s64
		 * at every word size (what a 64-bit-time_t i386 libc passes).
		 */
		if (compat && (opt->linux_name == SO_RCVTIMEO_OLD ||
			       opt->linux_name == SO_SNDTIMEO_OLD)) {
			s32 tv[2] = { 0, 0 };

			if (pg_copy_from_user(tv, (const void __user *)uval, sizeof(tv)))
				rec->faults++;
			v64 = (s64)tv[0] * NSEC_PER_SEC + (s64)tv[1] * NSEC_PER_USEC;
		} else {
			s64 tv[2] = { 0, 0 };

			if (pg_copy_from_user(tv, (const void __user *)uval, sizeof(tv)))
				rec->faults++;
			v64 = tv[0] * NSEC_PER_SEC + tv[1] * NSEC_PER_USEC;
		}
		break;
	default:
		n = min_t(u32, optlen, READ_ONCE(pg_settings.snaplen));
		p = pg_put_reserve(rec, 1 + n);
		if (!p)
			return;
		p[0] = idx;
		if (n && pg_copy_from_user(p + 1, (const void __user *)uval, n)) {
			/* The index byte alone. */
			rec->faults++;
			rec->cur--;
			rec->off -= 1 + n;
			pg_put_bytes(rec, buf, 1);
		}
		return;
	}
	memcpy(buf + 1, &v64, sizeof(v64));
	pg_put_bytes(rec, buf, sizeof(buf));
}

/*
 * setsockopt/getsockopt: res, fd, level, optname, val, optlen. getsockopt's
 * val and optlen are what the kernel wrote back (what was passed, on failure).
 */
static void fill_sockopt_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx, bool is_get)
{
	int level = (int)ctx->args[1], optname = (int)ctx->args[2];
	const struct pg_sockopt *opt = sockopt_of(level, optname);
	struct pg_record rec;
	u32 optlen = 0;

	if (is_get) {
		PG_BEGIN(&rec, ring, GETSOCKOPT_X);
		if (pg_copy_from_user(&optlen, (const void __user *)ctx->args[4], sizeof(optlen))) {
			rec.faults++;
			optlen = 0;
		}
	} else {
		PG_BEGIN(&rec, ring, SETSOCKOPT_X);
		optlen = (u32)ctx->args[4];
	}
	pg_put_s64(&rec, ctx->ret);
	pg_put_s64(&rec, fd_arg(ctx->args[0]));
	pg_put_u8(&rec, sockopt_level_to_scap(level));
	pg_put_u8(&rec, opt ? opt->scap_name : 0);
	put_sockopt_val(&rec, opt, ctx->args[3], optlen, ctx->compat);
	pg_put_u32(&rec, optlen);
	pg_record_commit(&rec, current->pid);
}

/* The fillers that take a flag of the call's variant, bound to it. */
static void fill_setsockopt_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_sockopt_x(r, c, false); }
static void fill_getsockopt_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_sockopt_x(r, c, true); }
static void fill_sendmmsg_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_mmsg_x(r, c, true); }
static void fill_recvmmsg_x(struct pg_ring *r, struct pg_syscall_ctx *c) { fill_mmsg_x(r, c, false); }

/* The filler of each syscall of this family, by x86-64 number. */
static const pg_filler_fn pg_net_fillers[PG_SYSCALL_NR_MAX] = {
	[__NR_sendto]     = fill_sendto_x,
	[__NR_recvfrom]   = fill_recvfrom_x,
	[__NR_sendmsg]    = fill_sendmsg_x,
	[__NR_recvmsg]    = fill_recvmsg_x,
	[__NR_sendmmsg]   = fill_sendmmsg_x,
	[__NR_recvmmsg]   = fill_recvmmsg_x,
	[__NR_socketpair] = fill_socketpair_x,
	[__NR_setsockopt] = fill_setsockopt_x,
	[__NR_getsockopt] = fill_getsockopt_x,
};

bool pg_fill_net_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	pg_filler_fn fill;

	if (ctx->nr < 0 || ctx->nr >= PG_SYSCALL_NR_MAX)
		return false;
	fill = pg_net_fillers[ctx->nr];
	if (!fill)
		return false;
	fill(ring, ctx);
	return true;
}
