/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * fillers.h - what the filler files (fillers*.c) share: scap's encodings
 * and the helpers that read files, sockets and user memory for them.
 * Nothing here is ABI; the event layouts are in include/peregrine_abi.h.
 */
#ifndef PG_FILLERS_H
#define PG_FILLERS_H

#include <linux/types.h>
#include <linux/un.h>
#include "peregrine.h"

/* scap flag encodings (the values are facts of the scap schema). */
#define SCAP_O_RDONLY    (1u << 0)
#define SCAP_O_WRONLY    (1u << 1)
#define SCAP_O_RDWR      (SCAP_O_RDONLY | SCAP_O_WRONLY)
#define SCAP_O_CREAT     (1u << 2)
#define SCAP_O_APPEND    (1u << 3)
#define SCAP_O_DSYNC     (1u << 4)
#define SCAP_O_EXCL      (1u << 5)
#define SCAP_O_NONBLOCK  (1u << 6)
#define SCAP_O_SYNC      (1u << 7)
#define SCAP_O_TRUNC     (1u << 8)
#define SCAP_O_DIRECT    (1u << 9)
#define SCAP_O_DIRECTORY (1u << 10)
#define SCAP_O_LARGEFILE (1u << 11)
#define SCAP_O_CLOEXEC   (1u << 12)
#define SCAP_O_TMPFILE   (1u << 13)
#define SCAP_O_F_CREATED (1u << 14)

#define SCAP_AF_UNSPEC 0
#define SCAP_AF_UNIX   1
#define SCAP_AF_INET   2
#define SCAP_AF_INET6  10

/* The largest path or string parameter copied from user memory. */
#define PG_PATH_MAX PATH_MAX
/* argv/env areas are cut here (as Falco does with one page). */
#define PG_ARGS_MAX PAGE_SIZE

/* An fd argument, as the int the kernel reads, widened to scap's s64. */
static inline s64 fd_arg(unsigned long v)
{
	return (s64)(int)v;
}

#define PG_BEGIN(rec, ring, t) \
	pg_record_begin(rec, ring, PG_EVT_##t, PG_EVT_##t##_NPARAMS)

/* fillers.c */
u32 pg_open_flags_to_scap(unsigned long flags);
u8 pg_family_to_scap(unsigned int family);
void pg_fd_dev_ino(long fd, u32 *dev, u64 *ino, bool *created);
struct file;
struct sock *pg_fd_sock_get(long fd, struct file **filep);
u32 pg_unix_path_from_user(struct pg_record *rec, unsigned long uaddr,
			   unsigned long ulen, char out[UNIX_PATH_MAX + 1]);
void pg_put_user_sockaddr(struct pg_record *rec, unsigned long uaddr, unsigned long ulen);
void pg_put_fd_socktuple(struct pg_record *rec, long fd, bool inbound,
			 unsigned long uaddr, unsigned long ulen);
/* The memory counters (KiB) of clone/execve/mmap events: vm_size, vm_rss, vm_swap. */
void pg_put_vm_counters(struct pg_record *rec);
/* The current task's working directory, or an empty parameter. */
void pg_put_cwd(struct pg_record *rec);
/* The path of the file behind one of the current task's fds, or an empty parameter. */
void pg_put_fd_path(struct pg_record *rec, long fd);

/* fillers_io.c: data carried by an iovec array in user memory. */
struct pg_iov_src {
	unsigned long uiov;     /* struct iovec (or compat_iovec) array */
	unsigned long count;
	bool compat;            /* a 32-bit caller's compat_iovec */
};
/* The sum of the iov_len, or 0 if the array cannot be read. */
u64 pg_iov_total(struct pg_record *rec, const struct pg_iov_src *src);
/* Up to max bytes of the buffers, in order, as one parameter. */
void pg_put_iov_data(struct pg_record *rec, const struct pg_iov_src *src, u64 max);

/* The exit filler of one syscall (an entry of a family's table). */
typedef void (*pg_filler_fn)(struct pg_ring *ring, struct pg_syscall_ctx *ctx);

/* fillers_net.c: send and receive, socketpair. */
bool pg_fill_net_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx);
/* fillers_table.c: syscalls whose parameters are their arguments, converted. */
bool pg_fill_table_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx);
/* fillers_misc.c: syscalls whose parameters come from user structures. */
bool pg_fill_misc_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx);

#endif /* PG_FILLERS_H */
