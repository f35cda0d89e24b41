// SPDX-License-Identifier: GPL-2.0-only
/*
 * fillers.c - the parameters of each event, in Falco's scap layout.
 *
 * Written from the scap schema (event types, parameter order and types)
 * only. Like current Falco drivers, a syscall produces its exit event with
 * every parameter; open/openat/openat2/creat/connect also produce an enter
 * event, because the path or address they were given may change under the
 * kernel's feet before the exit. Syscalls without a specific filler produce
 * the generic exit event.
 *
 * Everything here runs inside a tracepoint probe with preemption off: no
 * sleeping, user memory only through the _nofault helpers (ring.c), no
 * locks that sleep, no references taken that need a sleeping put.
 */
#include <linux/audit.h>
#include <linux/cred.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/fcntl.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/net.h>
#include <linux/binfmts.h>
#include <linux/sched/mm.h>
#include <linux/pid_namespace.h>
#include <linux/tty.h>
#include <linux/socket.h>
#include <linux/un.h>
#include <linux/uio.h>
#include <linux/kdev_t.h>
#include <linux/mount.h>
#include <linux/cgroup.h>
#include <uapi/linux/module.h>
#include <linux/capability.h>
#include <linux/ptrace.h>
#include <net/sock.h>
#include <net/inet_sock.h>
#include <net/af_unix.h>
#include <uapi/linux/openat2.h>
#include <uapi/linux/sched.h>
#include <asm/syscall.h>
#include <asm/unistd.h>
#include "peregrine.h"
#include "compat.h"
#include "fillers.h"

u32 pg_open_flags_to_scap(unsigned long flags)
{
	u32 res;

	switch (flags & O_ACCMODE) {
	case O_WRONLY: res = SCAP_O_WRONLY; break;
	case O_RDWR:   res = SCAP_O_RDWR; break;
	default:       res = SCAP_O_RDONLY; break;
	}
	if (flags & O_CREAT)
		res |= SCAP_O_CREAT;
	if (flags & O_TMPFILE)
		res |= SCAP_O_TMPFILE;
	if (flags & O_APPEND)
		res |= SCAP_O_APPEND;
	if (flags & O_DSYNC)
		res |= SCAP_O_DSYNC;
	if (flags & O_EXCL)
		res |= SCAP_O_EXCL;
	if (flags & O_NONBLOCK)
		res |= SCAP_O_NONBLOCK;
	if (flags & __O_SYNC)
		res |= SCAP_O_SYNC;
	if (flags & O_TRUNC)
		res |= SCAP_O_TRUNC;
	if (flags & O_DIRECT)
		res |= SCAP_O_DIRECT;
	if (flags & O_DIRECTORY)
		res |= SCAP_O_DIRECTORY;
	if (flags & O_LARGEFILE)
		res |= SCAP_O_LARGEFILE;
	if (flags & O_CLOEXEC)
		res |= SCAP_O_CLOEXEC;
	return res;
}

/* scap's permission bits are the classic octal ones. */
static u32 mode_to_scap(unsigned long mode)
{
	return mode & 07777;
}

/* The mode of an open only means something when it may create a file. */
static u32 open_mode_to_scap(unsigned long flags, unsigned long mode)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? mode_to_scap(mode) : 0;
}

static u32 clone_flags_to_scap(u64 flags)
{
	static const struct { u64 linux_flag; u32 scap_flag; } map[] = {
		{ CLONE_FILES, 1u << 0 },   { CLONE_FS, 1u << 1 },
		{ CLONE_IO, 1u << 2 },      { CLONE_NEWIPC, 1u << 3 },
		{ CLONE_NEWNET, 1u << 4 },  { CLONE_NEWNS, 1u << 5 },
		{ CLONE_NEWPID, 1u << 6 },  { CLONE_NEWUTS, 1u << 7 },
		{ CLONE_PARENT, 1u << 8 },  { CLONE_PARENT_SETTID, 1u << 9 },
		{ CLONE_PTRACE, 1u << 10 }, { CLONE_SIGHAND, 1u << 11 },
		{ CLONE_SYSVSEM, 1u << 12 }, { CLONE_THREAD, 1u << 13 },
		{ CLONE_UNTRACED, 1u << 14 }, { CLONE_VM, 1u << 15 },
		{ CLONE_NEWUSER, 1u << 20 }, { CLONE_CHILD_CLEARTID, 1u << 23 },
		{ CLONE_CHILD_SETTID, 1u << 24 }, { CLONE_SETTLS, 1u << 25 },
		{ CLONE_VFORK, 1u << 27 },  { CLONE_NEWCGROUP, 1u << 28 },
	};
	u32 res = 0;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(map); i++)
		if (flags & map[i].linux_flag)
			res |= map[i].scap_flag;
	return res;
}
#define SCAP_CL_CHILD_IN_PIDNS (1u << 29)

/* execve exit flags */
#define SCAP_EXE_WRITABLE    (1u << 0)
#define SCAP_EXE_FROM_MEMFD  (1u << 2)

static u32 socket_flags_to_scap(unsigned long type)
{
	u32 res = 0;

	if (type & SOCK_NONBLOCK)
		res |= SCAP_O_NONBLOCK;
	if (type & SOCK_CLOEXEC)
		res |= SCAP_O_CLOEXEC;
	return res;
}

static u32 resolve_flags_to_scap(u64 resolve)
{
	u32 res = 0;

	if (resolve & RESOLVE_BENEATH)
		res |= 1u << 0;
	if (resolve & RESOLVE_IN_ROOT)
		res |= 1u << 1;
	if (resolve & RESOLVE_NO_MAGICLINKS)
		res |= 1u << 2;
	if (resolve & RESOLVE_NO_SYMLINKS)
		res |= 1u << 3;
	if (resolve & RESOLVE_NO_XDEV)
		res |= 1u << 4;
#ifdef RESOLVE_CACHED
	if (resolve & RESOLVE_CACHED)
		res |= 1u << 5;
#endif
	return res;
}

static u32 renameat2_flags_to_scap(unsigned long flags)
{
	/* RENAME_NOREPLACE, _EXCHANGE, _WHITEOUT are bits 0..2 in both. */
	return flags & 7;
}

u8 pg_family_to_scap(unsigned int family)
{
	switch (family) {
	case AF_INET:  return SCAP_AF_INET;
	case AF_INET6: return SCAP_AF_INET6;
	case AF_UNIX:  return SCAP_AF_UNIX;
	default:       return family;
	}
}

/* scap's ptrace request codes (enum-like, not the kernel's numbers). */
enum scap_ptrace_request {
	SCAP_PTRACE_UNKNOWN = 0,
	SCAP_PTRACE_TRACEME, SCAP_PTRACE_PEEKTEXT, SCAP_PTRACE_PEEKDATA,
	SCAP_PTRACE_PEEKUSR, SCAP_PTRACE_POKETEXT, SCAP_PTRACE_POKEDATA,
	SCAP_PTRACE_POKEUSR, SCAP_PTRACE_CONT, SCAP_PTRACE_KILL,
	SCAP_PTRACE_SINGLESTEP, SCAP_PTRACE_ATTACH, SCAP_PTRACE_DETACH,
	SCAP_PTRACE_SYSCALL, SCAP_PTRACE_SETOPTIONS, SCAP_PTRACE_GETEVENTMSG,
	SCAP_PTRACE_GETSIGINFO, SCAP_PTRACE_SETSIGINFO, SCAP_PTRACE_GETREGSET,
	SCAP_PTRACE_SETREGSET, SCAP_PTRACE_SEIZE, SCAP_PTRACE_INTERRUPT,
	SCAP_PTRACE_LISTEN, SCAP_PTRACE_PEEKSIGINFO, SCAP_PTRACE_GETSIGMASK,
	SCAP_PTRACE_SETSIGMASK, SCAP_PTRACE_GETREGS, SCAP_PTRACE_SETREGS,
	SCAP_PTRACE_GETFPREGS, SCAP_PTRACE_SETFPREGS, SCAP_PTRACE_GETFPXREGS,
	SCAP_PTRACE_SETFPXREGS, SCAP_PTRACE_OLDSETOPTIONS,
	SCAP_PTRACE_GET_THREAD_AREA, SCAP_PTRACE_SET_THREAD_AREA,
	SCAP_PTRACE_ARCH_PRCTL, SCAP_PTRACE_SYSEMU,
	SCAP_PTRACE_SYSEMU_SINGLESTEP, SCAP_PTRACE_SINGLEBLOCK,
};

static u16 ptrace_request_to_scap(unsigned long req)
{
	static const struct { long linux_req; u16 scap_req; } map[] = {
		{ PTRACE_TRACEME, SCAP_PTRACE_TRACEME },
		{ PTRACE_PEEKTEXT, SCAP_PTRACE_PEEKTEXT },
		{ PTRACE_PEEKDATA, SCAP_PTRACE_PEEKDATA },
		{ PTRACE_PEEKUSR, SCAP_PTRACE_PEEKUSR },
		{ PTRACE_POKETEXT, SCAP_PTRACE_POKETEXT },
		{ PTRACE_POKEDATA, SCAP_PTRACE_POKEDATA },
		{ PTRACE_POKEUSR, SCAP_PTRACE_POKEUSR },
		{ PTRACE_CONT, SCAP_PTRACE_CONT },
		{ PTRACE_KILL, SCAP_PTRACE_KILL },
		{ PTRACE_SINGLESTEP, SCAP_PTRACE_SINGLESTEP },
		{ PTRACE_ATTACH, SCAP_PTRACE_ATTACH },
		{ PTRACE_DETACH, SCAP_PTRACE_DETACH },
		{ PTRACE_SYSCALL, SCAP_PTRACE_SYSCALL },
		{ PTRACE_SETOPTIONS, SCAP_PTRACE_SETOPTIONS },
		{ PTRACE_GETEVENTMSG, SCAP_PTRACE_GETEVENTMSG },
		{ PTRACE_GETSIGINFO, SCAP_PTRACE_GETSIGINFO },
		{ PTRACE_SETSIGINFO, SCAP_PTRACE_SETSIGINFO },
		{ PTRACE_GETREGSET, SCAP_PTRACE_GETREGSET },
		{ PTRACE_SETREGSET, SCAP_PTRACE_SETREGSET },
		{ PTRACE_SEIZE, SCAP_PTRACE_SEIZE },
		{ PTRACE_INTERRUPT, SCAP_PTRACE_INTERRUPT },
		{ PTRACE_LISTEN, SCAP_PTRACE_LISTEN },
		{ PTRACE_PEEKSIGINFO, SCAP_PTRACE_PEEKSIGINFO },
		{ PTRACE_GETSIGMASK, SCAP_PTRACE_GETSIGMASK },
		{ PTRACE_SETSIGMASK, SCAP_PTRACE_SETSIGMASK },
		/* The rest are architecture requests; x86 has them all. */
#ifdef PTRACE_GETREGS
		{ PTRACE_GETREGS, SCAP_PTRACE_GETREGS },
		{ PTRACE_SETREGS, SCAP_PTRACE_SETREGS },
#endif
#ifdef PTRACE_GETFPREGS
		{ PTRACE_GETFPREGS, SCAP_PTRACE_GETFPREGS },
		{ PTRACE_SETFPREGS, SCAP_PTRACE_SETFPREGS },
#endif
#ifdef PTRACE_GETFPXREGS
		{ PTRACE_GETFPXREGS, SCAP_PTRACE_GETFPXREGS },
		{ PTRACE_SETFPXREGS, SCAP_PTRACE_SETFPXREGS },
#endif
#ifdef PTRACE_OLDSETOPTIONS
		{ PTRACE_OLDSETOPTIONS, SCAP_PTRACE_OLDSETOPTIONS },
#endif
#ifdef PTRACE_GET_THREAD_AREA
		{ PTRACE_GET_THREAD_AREA, SCAP_PTRACE_GET_THREAD_AREA },
		{ PTRACE_SET_THREAD_AREA, SCAP_PTRACE_SET_THREAD_AREA },
#endif
#ifdef PTRACE_ARCH_PRCTL
		{ PTRACE_ARCH_PRCTL, SCAP_PTRACE_ARCH_PRCTL },
#endif
#ifdef PTRACE_SYSEMU
		{ PTRACE_SYSEMU, SCAP_PTRACE_SYSEMU },
		{ PTRACE_SYSEMU_SINGLESTEP, SCAP_PTRACE_SYSEMU_SINGLESTEP },
#endif
#ifdef PTRACE_SINGLEBLOCK
		{ PTRACE_SINGLEBLOCK, SCAP_PTRACE_SINGLEBLOCK },
#endif
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(map); i++)
		if (req == (unsigned long)map[i].linux_req)
			return map[i].scap_req;
	return SCAP_PTRACE_UNKNOWN;
}

/*
 * The file behind an fd of the current task, valid only inside the caller's
 * RCU read section (no reference is taken: we never need to fput).
 */
static struct file *fd_file_rcu(long fd)
{
	struct files_struct *files = current->files;

	if (fd < 0 || !files)
		return NULL;
	return files_lookup_fd_raw(files, fd);
}

void pg_fd_dev_ino(long fd, u32 *dev, u64 *ino, bool *created)
{
	struct file *file;
	struct inode *inode;

	*dev = 0;
	*ino = 0;
	*created = false;
	rcu_read_lock();
	file = fd_file_rcu(fd);
	if (file) {
		inode = file_inode(file);
		if (inode) {
			*ino = inode->i_ino;
			if (inode->i_sb)
				*dev = new_encode_dev(inode->i_sb->s_dev);
		}
		*created = !!(file->f_mode & FMODE_CREATED);
	}
	rcu_read_unlock();
}

/*
 * The socket behind an fd, with a reference on its file so that a close by
 * another thread cannot free it under us; drop with fput() (which, from a
 * probe, only queues the final release as task work).
 */
struct sock *pg_fd_sock_get(long fd, struct file **filep)
{
	struct file *file;
	struct socket *sock;

	*filep = NULL;
	if (fd < 0)
		return NULL;
	file = fget(fd);
	if (!file)
		return NULL;
	sock = pg_sock_from_file(file);
	if (!sock || !sock->sk) {
		fput(file);
		return NULL;
	}
	*filep = file;
	return sock->sk;
}

/*
 * The path of a unix sockaddr in user memory, without its terminator:
 * an abstract name (leading NUL) is given without the NUL, as scap does.
 */
u32 pg_unix_path_from_user(struct pg_record *rec, unsigned long uaddr,
			       unsigned long ulen, char out[UNIX_PATH_MAX + 1])
{
	struct sockaddr_un un;
	size_t plen;

	if (ulen > sizeof(un))
		ulen = sizeof(un);
	memset(&un, 0, sizeof(un));
	if (pg_copy_from_user(&un, (const void __user *)uaddr, ulen)) {
		rec->faults++;
		return 0;
	}
	plen = ulen > offsetof(struct sockaddr_un, sun_path) ?
		ulen - offsetof(struct sockaddr_un, sun_path) : 0;
	if (plen > 0 && un.sun_path[0] == '\0') {
		plen = strnlen(un.sun_path + 1, min_t(size_t, plen - 1, UNIX_PATH_MAX - 1));
		memcpy(out, un.sun_path + 1, plen);
	} else {
		plen = strnlen(un.sun_path, min_t(size_t, plen, UNIX_PATH_MAX));
		memcpy(out, un.sun_path, plen);
	}
	out[plen] = '\0';
	return plen;
}

/*
 * A sockaddr from user memory in scap's packed form: family, then
 * address and port (host order) for IP, or the path for unix sockets.
 */
void pg_put_user_sockaddr(struct pg_record *rec, unsigned long uaddr, unsigned long ulen)
{
	struct sockaddr_storage ss;
	u8 buf[1 + UNIX_PATH_MAX + 1];
	u32 len = 0;

	if (!uaddr || ulen < sizeof(sa_family_t)) {
		pg_put_empty(rec);
		return;
	}
	if (ulen > sizeof(ss))
		ulen = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (pg_copy_from_user(&ss, (const void __user *)uaddr, ulen)) {
		pg_put_fault(rec);
		return;
	}
	buf[0] = pg_family_to_scap(ss.ss_family);
	switch (ss.ss_family) {
	case AF_INET: {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		u16 port = ntohs(in->sin_port);

		memcpy(buf + 1, &in->sin_addr.s_addr, 4);
		memcpy(buf + 5, &port, 2);
		len = 7;
		break;
	}
	case AF_INET6: {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		u16 port = ntohs(in6->sin6_port);

		memcpy(buf + 1, &in6->sin6_addr, 16);
		memcpy(buf + 17, &port, 2);
		len = 19;
		break;
	}
	case AF_UNIX:
		len = 1 + pg_unix_path_from_user(rec, uaddr, ulen, (char *)buf + 1) + 1;
		break;
	default:
		len = 1;
		break;
	}
	pg_put_bytes(rec, buf, len);
}

/*
 * The peer address a caller gave (connect, sendto, sendmsg) or got back
 * (recvfrom, recvmsg) in user memory, if it is of the socket's family:
 * the address into addr (4 or 16 bytes), the port in host order.
 */
static bool user_inet_peer(struct pg_record *rec, unsigned long uaddr, unsigned long ulen,
			   unsigned int family, void *addr, u16 *port)
{
	struct sockaddr_in6 in6;
	struct sockaddr_in *in = (struct sockaddr_in *)&in6;
	unsigned long want = family == AF_INET6 ? sizeof(in6) : sizeof(*in);

	if (!uaddr || ulen < sizeof(sa_family_t))
		return false;
	memset(&in6, 0, sizeof(in6));
	if (pg_copy_from_user(&in6, (const void __user *)uaddr, min(ulen, want))) {
		rec->faults++;
		return false;
	}
	if (in6.sin6_family != family)
		return false;
	if (family == AF_INET6) {
		memcpy(addr, &in6.sin6_addr, 16);
		*port = ntohs(in6.sin6_port);
	} else {
		memcpy(addr, &in->sin_addr.s_addr, 4);
		*port = ntohs(in->sin_port);
	}
	return true;
}

/*
 * The connection 4-tuple of a socket fd in scap's packed form: family,
 * source address and port, destination address and port (ports in host
 * order). Read from the socket's own fields, without the socket lock
 * (which would sleep): a torn read only gives a wrong tuple.
 *
 * inbound: the source is the peer (accept, recv*); otherwise the local end.
 * uaddr/ulen: the address the call named (connect, sendto, sendmsg) or
 * filled in (recvfrom, recvmsg), or 0. An outbound call's address is its
 * peer; an inbound one is believed only when the socket has no peer of its
 * own (an unconnected UDP socket), as Falco's drivers do. For unix sockets
 * it gives the path.
 */
void pg_put_fd_socktuple(struct pg_record *rec, long fd, bool inbound,
			     unsigned long uaddr, unsigned long ulen)
{
	u8 buf[1 + 16 + 2 + 16 + 2];
	struct file *file;
	struct sock *sk;
	u32 len = 0;

	sk = pg_fd_sock_get(fd, &file);
	if (!sk)
		goto out;
	buf[0] = pg_family_to_scap(sk->sk_family);
	if (sk->sk_family == AF_INET) {
		__be32 laddr = sk->sk_rcv_saddr, raddr = sk->sk_daddr;
		u16 lport = sk->sk_num, rport = ntohs(sk->sk_dport);

		if (!inbound || !rport)
			user_inet_peer(rec, uaddr, ulen, AF_INET, &raddr, &rport);
		memcpy(buf + 1, inbound ? &raddr : &laddr, 4);
		memcpy(buf + 5, inbound ? &rport : &lport, 2);
		memcpy(buf + 7, inbound ? &laddr : &raddr, 4);
		memcpy(buf + 11, inbound ? &lport : &rport, 2);
		len = 13;
#if IS_ENABLED(CONFIG_IPV6)
	} else if (sk->sk_family == AF_INET6) {
		struct in6_addr laddr = sk->sk_v6_rcv_saddr, raddr = sk->sk_v6_daddr;
		u16 lport = sk->sk_num, rport = ntohs(sk->sk_dport);

		if (!inbound || !rport)
			user_inet_peer(rec, uaddr, ulen, AF_INET6, &raddr, &rport);
		memcpy(buf + 1, inbound ? &raddr : &laddr, 16);
		memcpy(buf + 17, inbound ? &rport : &lport, 2);
		memcpy(buf + 19, inbound ? &laddr : &raddr, 16);
		memcpy(buf + 35, inbound ? &lport : &rport, 2);
		len = 37;
#endif
	} else if (sk->sk_family == AF_UNIX) {
		/* Unix tuples name the two socket objects, then the path (from the caller). */
		u64 src = (u64)(unsigned long)sk;
		u64 dst = (u64)(unsigned long)unix_sk(sk)->peer;
		char path[UNIX_PATH_MAX + 1];
		u32 plen = 0;
		u8 *p;

		fput(file);
		memcpy(buf + 1, &src, 8);
		memcpy(buf + 9, &dst, 8);
		if (uaddr && ulen > sizeof(sa_family_t))
			plen = pg_unix_path_from_user(rec, uaddr, ulen, path);
		/* One parameter made of the 17 bytes above and the path. */
		p = pg_put_reserve(rec, 17 + plen + 1);
		if (p) {
			memcpy(p, buf, 17);
			memcpy(p + 17, path, plen);
			p[17 + plen] = '\0';
		}
		return;
	} else {
		len = 1;
	}
	fput(file);
out:
	if (len)
		pg_put_bytes(rec, buf, len);
	else
		pg_put_empty(rec);
}

/*
 * argv (or environ) of the current process, from its own memory, as two
 * parameters when split: the first string, then the rest. The area is
 * copied once into the ring; the split is only two lengths.
 */
static void put_mm_strings(struct pg_record *rec, unsigned long start, unsigned long end,
			   bool split_first)
{
	u32 len = end > start ? min_t(unsigned long, end - start, PG_ARGS_MAX) : 0;
	u32 first;
	u8 *p;

	if (!len) {
		pg_put_empty(rec);
		if (split_first)
			pg_put_empty(rec);
		return;
	}
	/* Reserve as one parameter, then fix the lengths up when splitting. */
	p = pg_put_reserve(rec, len);
	if (!p) {
		if (split_first)
			pg_put_empty(rec);
		return;
	}
	if (pg_copy_from_user(p, (const void __user *)start, len)) {
		pg_unput_fault(rec, len);
		if (split_first)
			pg_put_empty(rec);
		return;
	}
	p[len - 1] = '\0';
	if (!split_first)
		return;
	first = strnlen(p, len) + 1;
	if (first > len)
		first = len;
	/* Rewrite: parameter cur-1 is the first string, the next one the rest. */
	rec->cur--;
	rec->off -= len;
	pg_put_reserve(rec, first);
	pg_put_reserve(rec, len - first);
}

/*
 * The argv (or envp) a failing execve was given (the process keeps its old
 * memory map, so its own would be the caller's): for argv, exe then the
 * other arguments, the same two parameters as put_mm_strings; for envp,
 * one parameter.
 */
static void put_user_strings(struct pg_record *rec, unsigned long uargv, bool compat,
			     bool split_first)
{
	size_t ptr_size = compat ? sizeof(u32) : sizeof(unsigned long);
	long room = rec->overflow ? 0 : min_t(long, (long)rec->limit - rec->off, PG_ARGS_MAX);
	u8 *p = rec->base + rec->off;
	long total = 0, n;
	unsigned int i;
	u32 first;

	if (room <= 0 || !uargv) {
		if (room <= 0 && uargv)
			rec->overflow = true;
		pg_put_empty(rec);
		if (split_first)
			pg_put_empty(rec);
		return;
	}
	for (i = 0; i < 1024 && total < room; i++) {
		unsigned long uptr = 0;

		/* x86 is little-endian: a 32-bit pointer fills the low half. */
		if (pg_copy_from_user(&uptr, (const void __user *)(uargv + i * ptr_size),
				      ptr_size)) {
			rec->faults++;   /* the arguments read so far are kept */
			break;
		}
		if (!uptr)
			break;
		n = pg_strncpy_from_user(p + total, (const void __user *)uptr, room - total);
		if (n < 0) {
			rec->faults++;
			break;
		}
		if (n >= room - total) {
			/* Cut at the parameter limit, still terminated. */
			total = room;
			p[total - 1] = '\0';
			break;
		}
		total += n + 1;
	}
	if (!split_first) {
		pg_put_reserve(rec, total);
		return;
	}
	first = total ? strnlen(p, total) + 1 : 0;
	if (first > total)
		first = total;
	pg_put_reserve(rec, first);
	pg_put_reserve(rec, total - first);
}

#ifdef CONFIG_CGROUPS
/*
 * "subsys=/path" for every cgroup controller built into the kernel, each
 * NUL-terminated, paths from the root of the cgroup hierarchy: what
 * userspace derives container ids from. Built in place in the ring.
 *
 * On cgroup v2 a controller not enabled down to the task's cgroup reports
 * the root, so the task's own cgroup of the unified hierarchy is added as
 * "unified=/path": without it a container whose cgroup has no controllers
 * enabled would look like the host.
 */
static void put_cgroups(struct pg_record *rec)
{
	long room = rec->overflow ? 0 : min_t(long, (long)rec->limit - rec->off, PG_ARGS_MAX);
	u8 *p = rec->base + rec->off;
	long used = 0;

	if (room <= 0) {
		rec->overflow = true;
		pg_put_empty(rec);
		return;
	}
	rcu_read_lock();
#define SUBSYS(_x)								\
	do {									\
		static const char name[] = #_x "=";				\
		struct cgroup_subsys_state *css = task_css(current, _x ## _cgrp_id); \
		int n;								\
									\
		if (!css || !css->cgroup || used + sizeof(name) >= room)	\
			break;							\
		memcpy(p + used, name, sizeof(name) - 1);			\
		n = cgroup_path(css->cgroup, p + used + sizeof(name) - 1,	\
				room - used - (sizeof(name) - 1));		\
		/* Too long for what is left: leave this controller out. */	\
		if (n < 0 || used + sizeof(name) - 1 + n + 1 > room)		\
			break;							\
		used += sizeof(name) - 1 + n + 1;				\
	} while (0);
#include <linux/cgroup_subsys.h>
#undef SUBSYS
	do {
		static const char name[] = "unified=";
		struct cgroup *dfl = task_dfl_cgroup(current);
		int n;

		if (!dfl || used + sizeof(name) >= room)
			break;
		memcpy(p + used, name, sizeof(name) - 1);
		n = cgroup_path(dfl, p + used + sizeof(name) - 1, room - used - (sizeof(name) - 1));
		if (n < 0 || used + sizeof(name) - 1 + n + 1 > room)
			break;
		used += sizeof(name) - 1 + n + 1;
	} while (0);
	rcu_read_unlock();
	pg_put_reserve(rec, used);
}
#else
static void put_cgroups(struct pg_record *rec)
{
	pg_put_empty(rec);
}
#endif

static u32 tty_of_current(void)
{
	struct signal_struct *sig = current->signal;
	struct tty_struct *tty = NULL;
	struct tty_driver *driver = NULL;
	int major = 0, minor_start = 0, index = 0;

	/* The tty can go away under us; read it like Falco does, faults allowed. */
	if (!sig || copy_from_kernel_nofault(&tty, &sig->tty, sizeof(tty)) || !tty)
		return 0;
	if (copy_from_kernel_nofault(&index, &tty->index, sizeof(index)) ||
	    copy_from_kernel_nofault(&driver, &tty->driver, sizeof(driver)) || !driver ||
	    copy_from_kernel_nofault(&major, &driver->major, sizeof(major)) ||
	    copy_from_kernel_nofault(&minor_start, &driver->minor_start, sizeof(minor_start)))
		return 0;
	return new_encode_dev(MKDEV(major, minor_start) + index);
}

static s64 real_parent_pid(void)
{
	struct task_struct *parent;
	s64 ppid = 0;

	rcu_read_lock();
	parent = rcu_dereference(current->real_parent);
	if (parent)
		ppid = parent->pid;
	rcu_read_unlock();
	return ppid;
}

/*
 * The working directory, built in place in the ring by d_path. fs->lock
 * (a spinlock) keeps pwd from changing under d_path, so no reference is
 * taken (its put could sleep). Falco's drivers leave this parameter empty
 * and let userspace carry cwd over from the parent; filling it means a
 * process that started before capture, or whose parent was missed, still
 * resolves relative paths right.
 */
void pg_put_cwd(struct pg_record *rec)
{
	struct fs_struct *fs = current->fs;
	char *path = ERR_PTR(-ENOENT);
	size_t n;

	if (fs && !rec->overflow && rec->limit - rec->off > PG_PATH_MAX) {
		spin_lock(&fs->lock);
		path = d_path(&fs->pwd, (char *)rec->base + rec->off, PG_PATH_MAX);
		spin_unlock(&fs->lock);
	}
	if (IS_ERR(path)) {
		pg_put_empty(rec);
		return;
	}
	/* d_path builds at the end of the buffer: move it to the front. */
	n = strlen(path) + 1;
	memmove(rec->base + rec->off, path, n);
	pg_put_reserve(rec, n);
}

/* The path of the file behind an fd, built in place by d_path; empty if none. */
void pg_put_fd_path(struct pg_record *rec, long fd)
{
	char *path = ERR_PTR(-ENOENT);
	struct file *file;
	size_t n;

	if (!rec->overflow && rec->limit - rec->off > PG_PATH_MAX) {
		rcu_read_lock();
		file = fd_file_rcu(fd);
		if (file)
			path = d_path(&file->f_path, (char *)rec->base + rec->off, PG_PATH_MAX);
		rcu_read_unlock();
	}
	if (IS_ERR(path)) {
		pg_put_empty(rec);
		return;
	}
	n = strlen(path) + 1;
	memmove(rec->base + rec->off, path, n);
	pg_put_reserve(rec, n);
}

/* Parameters 2..15 shared by clone and execve exits. */
static void put_process_common(struct pg_record *rec, unsigned long uargv)
{
	struct mm_struct *mm = current->mm;

	if (uargv)
		put_user_strings(rec, uargv, in_ia32_syscall(), true);   /* 2 exe, 3 args */
	else if (mm)
		put_mm_strings(rec, mm->arg_start, mm->arg_end, true);   /* 2 exe, 3 args */
	else {
		pg_put_empty(rec);
		pg_put_empty(rec);
	}
	pg_put_s64(rec, current->pid);                                  /* 4 tid */
	pg_put_s64(rec, current->tgid);                                 /* 5 pid */
	pg_put_s64(rec, real_parent_pid());                             /* 6 ptid */
	pg_put_cwd(rec);                                                /* 7 cwd */
	pg_put_s64(rec, rlimit(RLIMIT_NOFILE));                         /* 8 fdlimit */
	pg_put_u64(rec, current->maj_flt);                              /* 9 pgft_maj */
	pg_put_u64(rec, current->min_flt);                              /* 10 pgft_min */
	pg_put_vm_counters(rec);                                        /* 11..13 vm KiB */
	pg_put_kstr(rec, current->comm);                                /* 14 comm */
	put_cgroups(rec);                                               /* 15 cgroups */
}

static void fill_clone_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx, u16 type)
{
	struct pg_record rec;
	struct pid_namespace *pidns = task_active_pid_ns(current);
	u64 flags = 0, pidns_start = 0;
	u32 scap_flags;

	if (ctx->nr == __NR_clone) {
		flags = ctx->args[0];
	} else if (ctx->nr == __NR_clone3) {
		struct clone_args cl;

		if (ctx->args[1] >= sizeof(u64) &&
		    !pg_copy_from_user(&cl, (const void __user *)ctx->args[0], sizeof(u64)))
			flags = cl.flags;
	}
	scap_flags = clone_flags_to_scap(flags);
	if (pidns != &init_pid_ns ||
	    (current->nsproxy && current->nsproxy->pid_ns_for_children != pidns))
		scap_flags |= SCAP_CL_CHILD_IN_PIDNS;
	if (ctx->ret == 0 && pidns && pidns->child_reaper)
		pidns_start = pidns->child_reaper->start_time;

	pg_record_begin(&rec, ring, type, PG_EVT_CLONE_20_X_NPARAMS);
	pg_put_s64(&rec, ctx->ret);                                      /* 1 res */
	put_process_common(&rec, 0);                                     /* 2..15 */
	pg_put_u32(&rec, scap_flags);                                    /* 16 flags */
	pg_put_u32(&rec, from_kuid_munged(&init_user_ns, current_euid())); /* 17 uid */
	pg_put_u32(&rec, from_kgid_munged(&init_user_ns, current_egid())); /* 18 gid */
	pg_put_s64(&rec, task_pid_vnr(current));                         /* 19 vtid */
	pg_put_s64(&rec, task_tgid_vnr(current));                        /* 20 vpid */
	pg_put_u64(&rec, pidns_start);                                   /* 21 pidns_init_start_ts */
	pg_record_commit(&rec, current->pid);
}

/*
 * The scap exe flags Peregrine computes. Writable: the mode bits grant the
 * caller's fsuid/fsgid write (owner, else group, else others), on a writable
 * mount, as Falco's "writable by the user who runs it"; ACLs and LSMs are
 * not asked, as their hooks may sleep and this runs with preemption off.
 * From memfd: the file is a memfd (its name is "memfd:..."), i.e. a program
 * run without ever touching a filesystem. Overlay upper/lower layers are
 * not told apart.
 */
static u32 exe_file_flags(struct file *exe, struct inode *inode)
{
	const struct cred *cred = current_cred();
	umode_t mode = inode->i_mode;
	bool writable;
	u32 flags = 0;

	if (uid_eq(cred->fsuid, inode->i_uid))
		writable = mode & S_IWUSR;
	else if (in_group_p(inode->i_gid))
		writable = mode & S_IWGRP;
	else
		writable = mode & S_IWOTH;
	if (writable && !IS_IMMUTABLE(inode) && !sb_rdonly(inode->i_sb) &&
	    !(exe->f_path.mnt->mnt_flags & MNT_READONLY))
		flags |= SCAP_EXE_WRITABLE;
	if (!strncmp(exe->f_path.dentry->d_name.name, "memfd:", 6))
		flags |= SCAP_EXE_FROM_MEMFD;
	return flags;
}

/*
 * execve/execveat exit. On success it is written from sched_process_exec
 * (bprm gives the file name; the old user pointers are gone with the old
 * mm); on failure from sys_exit with the caller's arguments.
 */
static void fill_execve_x(struct pg_ring *ring, s64 res, bool is_execveat,
			  const char *kfilename, unsigned long ufilename, unsigned long uargv,
			  unsigned long uenvp)
{
	struct pg_record rec;
	struct mm_struct *mm = current->mm;
	const struct cred *cred = current_cred();
	struct file *exe = NULL;
	u64 ino = 0, ctime = 0, mtime = 0;
	u32 exe_flags = 0;
	char *exepath = NULL;
	u16 type = is_execveat ? PG_EVT_EXECVEAT_X : PG_EVT_EXECVE_19_X;
	u16 nparams = is_execveat ? PG_EVT_EXECVEAT_X_NPARAMS : PG_EVT_EXECVE_19_X_NPARAMS;
	u8 *p;

	pg_record_begin(&rec, ring, type, nparams);
	pg_put_s64(&rec, res);                                           /* 1 res */
	put_process_common(&rec, uargv);                                 /* 2..15 */
	if (res == 0 && mm)
		put_mm_strings(&rec, mm->env_start, mm->env_end, false); /* 16 env */
	else if (res != 0)
		put_user_strings(&rec, uenvp, in_ia32_syscall(), false); /* as given */
	else
		pg_put_empty(&rec);
	pg_put_u32(&rec, tty_of_current());                              /* 17 tty */
	pg_put_s64(&rec, task_pgrp_nr_ns(current, task_active_pid_ns(current))); /* 18 vpgid */
	pg_put_u32(&rec, from_kuid(&init_user_ns, audit_get_loginuid(current))); /* 19 loginuid */
	if (mm) {
		rcu_read_lock();
		exe = rcu_dereference(mm->exe_file);
		if (exe && file_inode(exe)) {
			struct inode *inode = file_inode(exe);

			ino = inode->i_ino;
			ctime = pg_inode_ctime_ns(inode);
			mtime = pg_inode_mtime_ns(inode);
			exe_flags = exe_file_flags(exe, inode);
		}
		rcu_read_unlock();
	}
	pg_put_u32(&rec, exe_flags);                                     /* 20 flags */
	pg_put_u64(&rec, pg_cap_u64(cred->cap_inheritable));           /* 21 */
	pg_put_u64(&rec, pg_cap_u64(cred->cap_permitted));             /* 22 */
	pg_put_u64(&rec, pg_cap_u64(cred->cap_effective));             /* 23 */
	pg_put_u64(&rec, ino);                                           /* 24 exe_ino */
	pg_put_u64(&rec, ctime);                                         /* 25 exe_ino_ctime */
	pg_put_u64(&rec, mtime);                                         /* 26 exe_ino_mtime */
	pg_put_u32(&rec, from_kuid_munged(&init_user_ns, current_euid())); /* 27 uid */
	/* 28 trusted_exepath: d_path of the exe file, built in place. */
	p = NULL;
	if (mm && !rec.overflow && rec.limit - rec.off > PG_PATH_MAX) {
		rcu_read_lock();
		exe = rcu_dereference(mm->exe_file);
		if (exe) {
			exepath = d_path(&exe->f_path, (char *)rec.base + rec.off, PG_PATH_MAX);
			if (IS_ERR(exepath))
				exepath = NULL;
		}
		rcu_read_unlock();
	}
	if (exepath) {
		/* d_path builds at the end of the buffer: move it to the front. */
		size_t n = strlen(exepath) + 1;

		memmove(rec.base + rec.off, exepath, n);
		p = pg_put_reserve(&rec, n);
	}
	if (!p && !exepath)
		pg_put_empty(&rec);
	pg_put_s64(&rec, task_pgrp_nr_ns(current, &init_pid_ns));      /* 29 pgid */
	pg_put_u32(&rec, from_kgid_munged(&init_user_ns, current_egid())); /* 30 gid */
	if (!is_execveat) {                                              /* 31 filename */
		if (kfilename)
			pg_put_kstr(&rec, kfilename);
		else
			pg_put_ustr(&rec, ufilename, PG_PATH_MAX);
	}
	pg_record_commit(&rec, current->pid);
}

/*
 * A successful exec is always written as execve: by now x86's
 * set_personality_64bit() has rewritten the syscall number to execve's, so a
 * successful execveat cannot be told apart (Falco's drivers report it the
 * same way). Its file name shows it: "/dev/fd/N[/path]" for an fd.
 */
void pg_fill_sched_exec(struct pg_ring *ring, struct linux_binprm *bprm)
{
	fill_execve_x(ring, 0, false, bprm ? bprm->filename : NULL, 0, 0, 0);
}

/*
 * A fork by a kernel thread: kthreadd starting a usermode helper (modprobe,
 * a core_pattern pipe, hotplug) or another kernel thread. No syscall returns
 * in that parent, so its side of the clone (res = the child's pid) is
 * written from sched_process_fork; userspace learns the child from it.
 */
void pg_fill_kernel_fork(struct pg_ring *ring, struct task_struct *child)
{
	struct pg_syscall_ctx ctx = { .nr = -1, .ret = task_pid_nr(child) };

	fill_clone_x(ring, &ctx, PG_EVT_CLONE_20_X);
}

void pg_fill_procexit(struct pg_ring *ring, struct task_struct *task)
{
	struct pg_record rec;
	int code = task->exit_code;

	pg_record_begin(&rec, ring, PG_EVT_PROCEXIT_1_E, PG_EVT_PROCEXIT_1_E_NPARAMS);
	pg_put_s64(&rec, code);                                          /* 1 status */
	pg_put_s64(&rec, (code >> 8) & 0xff);                            /* 2 ret */
	pg_put_u8(&rec, ((code & 0x7f) != 0 && (code & 0x7f) != 0x7f) ? (code & 0x7f) : 0); /* 3 sig */
	pg_put_u8(&rec, (code & 0x80) != 0);                             /* 4 core */
	pg_put_s64(&rec, 0);           /* 5 reaper_tid: 0 lets userspace pick the reaper */
	pg_record_commit(&rec, task->pid);
}

/* open-family exits share: fd, [dirfd], name, flags, mode, [resolve], dev, ino. */
static void fill_open_family(struct pg_ring *ring, struct pg_syscall_ctx *ctx, bool enter)
{
	struct pg_record rec;
	unsigned long path, flags, mode;
	u64 resolve = 0;
	long dirfd = AT_FDCWD;
	u32 dev = 0;
	u64 ino = 0;
	bool created = false;
	u16 type, nparams;

	switch (ctx->nr) {
	case __NR_open:
		path = ctx->args[0]; flags = ctx->args[1]; mode = ctx->args[2];
		type = enter ? PG_EVT_OPEN_E : PG_EVT_OPEN_X;
		nparams = enter ? PG_EVT_OPEN_E_NPARAMS : PG_EVT_OPEN_X_NPARAMS;
		break;
	case __NR_creat:
		path = ctx->args[0]; mode = ctx->args[1];
		flags = O_CREAT | O_WRONLY | O_TRUNC;
		type = enter ? PG_EVT_CREAT_E : PG_EVT_CREAT_X;
		nparams = enter ? PG_EVT_CREAT_E_NPARAMS : PG_EVT_CREAT_X_NPARAMS;
		break;
	case __NR_openat:
		dirfd = fd_arg(ctx->args[0]);
		path = ctx->args[1]; flags = ctx->args[2]; mode = ctx->args[3];
		type = enter ? PG_EVT_OPENAT_2_E : PG_EVT_OPENAT_2_X;
		nparams = enter ? PG_EVT_OPENAT_2_E_NPARAMS : PG_EVT_OPENAT_2_X_NPARAMS;
		break;
	case __NR_openat2: {
		struct open_how how = {};

		dirfd = fd_arg(ctx->args[0]);
		path = ctx->args[1];
		if (ctx->args[3] >= sizeof(how) &&
		    pg_copy_from_user(&how, (const void __user *)ctx->args[2], sizeof(how)))
			memset(&how, 0, sizeof(how));
		flags = how.flags; mode = how.mode; resolve = how.resolve;
		type = enter ? PG_EVT_OPENAT2_E : PG_EVT_OPENAT2_X;
		nparams = enter ? PG_EVT_OPENAT2_E_NPARAMS : PG_EVT_OPENAT2_X_NPARAMS;
		break;
	}
	default:
		return;
	}
	if (!enter && ctx->ret >= 0)
		pg_fd_dev_ino(ctx->ret, &dev, &ino, &created);

	pg_record_begin(&rec, ring, type, nparams);
	if (!enter)
		pg_put_s64(&rec, ctx->ret);                              /* fd */
	if (ctx->nr == __NR_openat || ctx->nr == __NR_openat2)
		pg_put_s64(&rec, dirfd);                                 /* dirfd */
	pg_put_ustr(&rec, path, PG_PATH_MAX);                            /* name */
	if (ctx->nr != __NR_creat)
		pg_put_u32(&rec, pg_open_flags_to_scap(flags) |
			   (created ? SCAP_O_F_CREATED : 0));             /* flags */
	pg_put_u32(&rec, open_mode_to_scap(flags, mode));                /* mode */
	if (ctx->nr == __NR_openat2)
		pg_put_u32(&rec, resolve_flags_to_scap(resolve));        /* resolve */
	if (!enter) {
		pg_put_u32(&rec, dev);                                   /* dev */
		pg_put_u64(&rec, ino);                                   /* ino */
		if (ctx->nr == __NR_creat)
			pg_put_u16(&rec, 0);     /* creat_flags: overlay layers not computed */
	}
	pg_record_commit(&rec, current->pid);
}

static void fill_connect(struct pg_ring *ring, struct pg_syscall_ctx *ctx, bool enter)
{
	struct pg_record rec;
	s64 fd = fd_arg(ctx->args[0]);

	if (enter) {
		pg_record_begin(&rec, ring, PG_EVT_CONNECT_E, PG_EVT_CONNECT_E_NPARAMS);
		pg_put_s64(&rec, fd);
		pg_put_user_sockaddr(&rec, ctx->args[1], ctx->args[2]);
	} else {
		pg_record_begin(&rec, ring, PG_EVT_CONNECT_X, PG_EVT_CONNECT_X_NPARAMS);
		pg_put_s64(&rec, ctx->ret);
		/* In progress (EINPROGRESS) still has a meaningful tuple. */
		if (ctx->ret == 0 || ctx->ret == -EINPROGRESS)
			pg_put_fd_socktuple(&rec, fd, false, ctx->args[1], ctx->args[2]);
		else
			pg_put_empty(&rec);
		pg_put_s64(&rec, fd);
		pg_put_user_sockaddr(&rec, ctx->args[1], ctx->args[2]);
	}
	pg_record_commit(&rec, current->pid);
}

static void fill_accept_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct pg_record rec;
	bool is4 = ctx->nr == __NR_accept4;
	u32 qlen = 0, qmax = 0;
	u8 qpct = 0;
	struct file *lfile;
	struct sock *lsk;

	lsk = pg_fd_sock_get(fd_arg(ctx->args[0]), &lfile);
	if (lsk) {
		qlen = READ_ONCE(lsk->sk_ack_backlog);
		qmax = READ_ONCE(lsk->sk_max_ack_backlog);
		if (qmax)
			qpct = (u8)(qlen * 100 / qmax);
		fput(lfile);
	}

	pg_record_begin(&rec, ring, is4 ? PG_EVT_ACCEPT4_6_X : PG_EVT_ACCEPT_5_X,
			is4 ? PG_EVT_ACCEPT4_6_X_NPARAMS : PG_EVT_ACCEPT_5_X_NPARAMS);
	pg_put_s64(&rec, ctx->ret);                                      /* fd */
	if (ctx->ret >= 0)
		pg_put_fd_socktuple(&rec, ctx->ret, true, 0, 0);            /* tuple */
	else
		pg_put_empty(&rec);
	pg_put_u8(&rec, qpct);
	pg_put_u32(&rec, qlen);
	pg_put_u32(&rec, qmax);
	if (is4)
		pg_put_u32(&rec, (u32)ctx->args[3]);                     /* flags (raw, as Falco) */
	pg_record_commit(&rec, current->pid);
}

static void fill_rw_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx, bool is_read)
{
	struct pg_record rec;
	u32 snaplen = READ_ONCE(pg_settings.snaplen);
	u32 n = 0;

	if (ctx->ret > 0)
		n = min_t(u64, ctx->ret, snaplen);
	pg_record_begin(&rec, ring, is_read ? PG_EVT_READ_X : PG_EVT_WRITE_X,
			PG_EVT_READ_X_NPARAMS);
	pg_put_s64(&rec, ctx->ret);                                      /* res */
	pg_put_ubytes(&rec, ctx->args[1], n);                            /* data */
	pg_put_s64(&rec, fd_arg(ctx->args[0]));                          /* fd */
	pg_put_u32(&rec, (u32)ctx->args[2]);                             /* size */
	pg_record_commit(&rec, current->pid);
}

/* A PT_DYN parameter holding a u64. */
static void put_dyn_u64(struct pg_record *rec, u64 v)
{
	u8 buf[1 + sizeof(u64)];

	buf[0] = PG_PTRACE_IDX_UINT64;
	memcpy(buf + 1, &v, sizeof(v));
	pg_put_bytes(rec, buf, sizeof(buf));
}

/*
 * ptrace's addr and data say different things per request, so scap sends
 * them typed (PT_DYN). A failed call carries zeros: its arguments were not
 * acted upon. A peek returns the word through *data: that word is sent,
 * or 0 when it cannot be read without faulting (the event is kept: an
 * attach or a poke must never be lost to a bad pointer).
 */
static void fill_ptrace_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	u16 request = ptrace_request_to_scap(ctx->args[0]);
	struct pg_record rec;
	u64 word = 0;

	pg_record_begin(&rec, ring, PG_EVT_PTRACE_X, PG_EVT_PTRACE_X_NPARAMS);
	pg_put_s64(&rec, ctx->ret);                                      /* res */
	if (ctx->ret < 0) {
		put_dyn_u64(&rec, 0);                                    /* addr */
		put_dyn_u64(&rec, 0);                                    /* data */
	} else {
		put_dyn_u64(&rec, ctx->args[2]);                         /* addr */
		switch (request) {                                       /* data */
		case SCAP_PTRACE_PEEKTEXT:
		case SCAP_PTRACE_PEEKDATA:
		case SCAP_PTRACE_PEEKUSR:
			/* A 32-bit caller's word is a compat_ulong_t (the
			 * low half of `word`, x86 being little-endian). */
			if (pg_copy_from_user(&word, (const void __user *)ctx->args[3],
					      ctx->compat ? sizeof(u32) : sizeof(word)))
				word = 0;
			put_dyn_u64(&rec, word);
			break;
		case SCAP_PTRACE_CONT:
		case SCAP_PTRACE_SINGLESTEP:
		case SCAP_PTRACE_DETACH:
		case SCAP_PTRACE_SYSCALL: {
			u8 sig[2] = { PG_PTRACE_IDX_SIGTYPE, (u8)ctx->args[3] };

			pg_put_bytes(&rec, sig, sizeof(sig));
			break;
		}
		default:
			put_dyn_u64(&rec, ctx->args[3]);
			break;
		}
	}
	pg_put_u16(&rec, request);                                       /* request */
	pg_put_s64(&rec, (s64)(int)ctx->args[1]);                        /* pid */
	pg_record_commit(&rec, current->pid);
}

static void fill_generic_x(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct pg_record rec;

	pg_record_begin(&rec, ring, PG_EVT_GENERIC_X, PG_EVT_GENERIC_X_NPARAMS);
	pg_put_u16(&rec, pg_ppm_sc_of(ctx->nr));                          /* ID */
	pg_put_u16(&rec, ctx->nr);                                       /* nativeID */
	pg_record_commit(&rec, current->pid);
}

bool pg_syscall_has_enter_event(long nr)
{
	switch (nr) {
	case __NR_open: case __NR_openat: case __NR_openat2: case __NR_creat: case __NR_connect:
		return true;
	default:
		return false;
	}
}

bool pg_syscall_never_drop(long nr)
{
	switch (nr) {
	case __NR_clone: case __NR_clone3: case __NR_fork: case __NR_vfork:
	case __NR_execve: case __NR_execveat:
		return true;
	default:
		/* Pairs with an enter event are kept whole by never sampling them. */
		return pg_syscall_has_enter_event(nr);
	}
}

void pg_fill_sys_enter(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	if (ctx->nr == __NR_connect)
		fill_connect(ring, ctx, true);
	else
		fill_open_family(ring, ctx, true);
}

#define A(i) (ctx->args[i])
#define BEGIN(t) pg_record_begin(&rec, ring, PG_EVT_##t, PG_EVT_##t##_NPARAMS)

void pg_fill_sys_exit(struct pg_ring *ring, struct pg_syscall_ctx *ctx)
{
	struct pg_record rec;
	s64 res = ctx->ret;

	switch (ctx->nr) {
	case __NR_open: case __NR_openat: case __NR_openat2: case __NR_creat:
		fill_open_family(ring, ctx, false);
		return;
	case __NR_connect:
		fill_connect(ring, ctx, false);
		return;
	case __NR_accept: case __NR_accept4:
		fill_accept_x(ring, ctx);
		return;
	case __NR_read:
		fill_rw_x(ring, ctx, true);
		return;
	case __NR_write:
		fill_rw_x(ring, ctx, false);
		return;
	case __NR_ptrace:
		fill_ptrace_x(ring, ctx);
		return;
	case __NR_execve: case __NR_execveat:
		/* Success is reported from sched_process_exec. */
		if (res != 0)
			fill_execve_x(ring, res, ctx->nr == __NR_execveat, NULL,
				      ctx->nr == __NR_execve ? A(0) : 0,
				      ctx->nr == __NR_execve ? A(1) : A(2),
				      ctx->nr == __NR_execve ? A(2) : A(3));
		return;
	case __NR_clone:
		fill_clone_x(ring, ctx, PG_EVT_CLONE_20_X);
		return;
	case __NR_clone3:
		fill_clone_x(ring, ctx, PG_EVT_CLONE3_X);
		return;
	case __NR_fork:
		fill_clone_x(ring, ctx, PG_EVT_FORK_20_X);
		return;
	case __NR_vfork:
		fill_clone_x(ring, ctx, PG_EVT_VFORK_20_X);
		return;
	case __NR_close:
		BEGIN(CLOSE_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		break;
	case __NR_socket:
		BEGIN(SOCKET_X);
		pg_put_s64(&rec, res);
		pg_put_u32(&rec, pg_family_to_scap(A(0)));
		pg_put_u32(&rec, (u32)A(1));
		pg_put_u32(&rec, (u32)A(2));
		pg_put_u32(&rec, socket_flags_to_scap(A(1)));
		break;
	case __NR_bind:
		BEGIN(BIND_X);
		pg_put_s64(&rec, res);
		pg_put_user_sockaddr(&rec, A(1), A(2));
		pg_put_s64(&rec, fd_arg(A(0)));
		break;
	case __NR_listen:
		BEGIN(LISTEN_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		pg_put_u32(&rec, (u32)A(1));
		break;
	case __NR_chmod:
		BEGIN(CHMOD_X);
		pg_put_s64(&rec, res);
		pg_put_ustr(&rec, A(0), PG_PATH_MAX);
		pg_put_u32(&rec, mode_to_scap(A(1)));
		break;
	case __NR_fchmod:
		BEGIN(FCHMOD_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		pg_put_u32(&rec, mode_to_scap(A(1)));
		break;
	case __NR_fchmodat:
		BEGIN(FCHMODAT_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		pg_put_ustr(&rec, A(1), PG_PATH_MAX);
		pg_put_u32(&rec, mode_to_scap(A(2)));
		break;
	case __NR_symlink:
		BEGIN(SYMLINK_X);
		pg_put_s64(&rec, res);
		pg_put_ustr(&rec, A(0), PG_PATH_MAX);
		pg_put_ustr(&rec, A(1), PG_PATH_MAX);
		break;
	case __NR_symlinkat:
		BEGIN(SYMLINKAT_X);
		pg_put_s64(&rec, res);
		pg_put_ustr(&rec, A(0), PG_PATH_MAX);
		pg_put_s64(&rec, fd_arg(A(1)));
		pg_put_ustr(&rec, A(2), PG_PATH_MAX);
		break;
	case __NR_link:
		BEGIN(LINK_2_X);
		pg_put_s64(&rec, res);
		pg_put_ustr(&rec, A(0), PG_PATH_MAX);
		pg_put_ustr(&rec, A(1), PG_PATH_MAX);
		break;
	case __NR_linkat:
		BEGIN(LINKAT_2_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		pg_put_ustr(&rec, A(1), PG_PATH_MAX);
		pg_put_s64(&rec, fd_arg(A(2)));
		pg_put_ustr(&rec, A(3), PG_PATH_MAX);
		pg_put_u32(&rec, (u32)A(4));    /* AT_* values are scap's */
		break;
	case __NR_unlink:
		BEGIN(UNLINK_2_X);
		pg_put_s64(&rec, res);
		pg_put_ustr(&rec, A(0), PG_PATH_MAX);
		break;
	case __NR_unlinkat:
		BEGIN(UNLINKAT_2_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		pg_put_ustr(&rec, A(1), PG_PATH_MAX);
		pg_put_u32(&rec, (u32)A(2) & AT_REMOVEDIR);
		break;
	case __NR_rename:
		BEGIN(RENAME_X);
		pg_put_s64(&rec, res);
		pg_put_ustr(&rec, A(0), PG_PATH_MAX);
		pg_put_ustr(&rec, A(1), PG_PATH_MAX);
		break;
	case __NR_renameat:
	case __NR_renameat2:
		if (ctx->nr == __NR_renameat)
			BEGIN(RENAMEAT_X);
		else
			BEGIN(RENAMEAT2_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		pg_put_ustr(&rec, A(1), PG_PATH_MAX);
		pg_put_s64(&rec, fd_arg(A(2)));
		pg_put_ustr(&rec, A(3), PG_PATH_MAX);
		if (ctx->nr == __NR_renameat2)
			pg_put_u32(&rec, renameat2_flags_to_scap(A(4)));
		break;
	case __NR_mkdir:
		BEGIN(MKDIR_2_X);
		pg_put_s64(&rec, res);
		pg_put_ustr(&rec, A(0), PG_PATH_MAX);
		pg_put_u32(&rec, (u32)A(1));
		break;
	case __NR_mkdirat:
		BEGIN(MKDIRAT_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		pg_put_ustr(&rec, A(1), PG_PATH_MAX);
		pg_put_u32(&rec, (u32)A(2));
		break;
	case __NR_rmdir:
		BEGIN(RMDIR_2_X);
		pg_put_s64(&rec, res);
		pg_put_ustr(&rec, A(0), PG_PATH_MAX);
		break;
	case __NR_dup:
		BEGIN(DUP_1_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		break;
	case __NR_dup2:
		BEGIN(DUP2_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		pg_put_s64(&rec, fd_arg(A(1)));
		break;
	case __NR_dup3:
		BEGIN(DUP3_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		pg_put_s64(&rec, fd_arg(A(1)));
		pg_put_u32(&rec, pg_open_flags_to_scap(A(2)) & SCAP_O_CLOEXEC);
		break;
	case __NR_chown:
	case __NR_lchown:
		if (ctx->nr == __NR_chown)
			BEGIN(CHOWN_X);
		else
			BEGIN(LCHOWN_X);
		pg_put_s64(&rec, res);
		pg_put_ustr(&rec, A(0), PG_PATH_MAX);
		pg_put_u32(&rec, (u32)A(1));
		pg_put_u32(&rec, (u32)A(2));
		break;
	case __NR_fchown:
		BEGIN(FCHOWN_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		pg_put_u32(&rec, (u32)A(1));
		pg_put_u32(&rec, (u32)A(2));
		break;
	case __NR_fchownat:
		BEGIN(FCHOWNAT_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		pg_put_ustr(&rec, A(1), PG_PATH_MAX);
		pg_put_u32(&rec, (u32)A(2));
		pg_put_u32(&rec, (u32)A(3));
		/*
		 * As Falco's driver reports it: AT_SYMLINK_FOLLOW and
		 * AT_EMPTY_PATH only (same values in scap). Its schema names
		 * 0x400 AT_SYMLINK_NOFOLLOW and it drops the kernel's
		 * AT_SYMLINK_NOFOLLOW (0x100): rules see what they see in Falco.
		 */
		pg_put_u32(&rec, (u32)A(4) & (AT_SYMLINK_FOLLOW | AT_EMPTY_PATH));
		break;
	case __NR_setuid:
		BEGIN(SETUID_X);
		pg_put_s64(&rec, res);
		pg_put_u32(&rec, (u32)A(0));
		break;
	case __NR_setgid:
		BEGIN(SETGID_X);
		pg_put_s64(&rec, res);
		pg_put_u32(&rec, (u32)A(0));
		break;
	case __NR_setreuid:
		BEGIN(SETREUID_X);
		pg_put_s64(&rec, res);
		pg_put_u32(&rec, (u32)A(0));
		pg_put_u32(&rec, (u32)A(1));
		break;
	case __NR_setregid:
		BEGIN(SETREGID_X);
		pg_put_s64(&rec, res);
		pg_put_u32(&rec, (u32)A(0));
		pg_put_u32(&rec, (u32)A(1));
		break;
	case __NR_setresuid:
		BEGIN(SETRESUID_X);
		pg_put_s64(&rec, res);
		pg_put_u32(&rec, (u32)A(0));
		pg_put_u32(&rec, (u32)A(1));
		pg_put_u32(&rec, (u32)A(2));
		break;
	case __NR_setresgid:
		BEGIN(SETRESGID_X);
		pg_put_s64(&rec, res);
		pg_put_u32(&rec, (u32)A(0));
		pg_put_u32(&rec, (u32)A(1));
		pg_put_u32(&rec, (u32)A(2));
		break;
	case __NR_setns:
		BEGIN(SETNS_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		pg_put_u32(&rec, clone_flags_to_scap(A(1)));
		break;
	case __NR_unshare:
		BEGIN(UNSHARE_X);
		pg_put_s64(&rec, res);
		pg_put_u32(&rec, clone_flags_to_scap(A(0)));
		break;
	case __NR_mount: {
		unsigned long flags = A(3);

		/* The historical magic in the top half is not a flag. */
		if ((flags & 0xffff0000UL) == 0xC0ED0000UL)
			flags &= 0xffff;
		BEGIN(MOUNT_X);
		pg_put_s64(&rec, res);
		pg_put_ustr(&rec, A(0), PG_PATH_MAX);
		pg_put_ustr(&rec, A(1), PG_PATH_MAX);
		pg_put_ustr(&rec, A(2), PG_PATH_MAX);
		pg_put_u32(&rec, (u32)flags);         /* MS_* bits are scap's */
		break;
	}
	case __NR_umount2:
		BEGIN(UMOUNT2_X);
		pg_put_s64(&rec, res);
		pg_put_ustr(&rec, A(0), PG_PATH_MAX);
		/* MNT_FORCE, MNT_DETACH, MNT_EXPIRE, UMOUNT_NOFOLLOW: bits 0..3 in both. */
		pg_put_u32(&rec, (u32)A(1) & 0xf);
		break;
	case __NR_init_module: {
		u32 n = min_t(unsigned long, A(1), READ_ONCE(pg_settings.snaplen));

		BEGIN(INIT_MODULE_X);
		pg_put_s64(&rec, res);
		pg_put_ubytes(&rec, A(0), n);
		pg_put_u64(&rec, A(1));
		pg_put_ustr(&rec, A(2), PG_PATH_MAX);
		break;
	}
	case __NR_finit_module:
		BEGIN(FINIT_MODULE_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, fd_arg(A(0)));
		pg_put_ustr(&rec, A(1), PG_PATH_MAX);
		/* MODULE_INIT_* bits are scap's. */
		pg_put_u32(&rec, (u32)A(2) & 7);
		break;
	case __NR_kill:
		BEGIN(KILL_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, (s64)(int)A(0));
		pg_put_u8(&rec, (u8)A(1));
		break;
	case __NR_tkill:
		BEGIN(TKILL_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, (s64)(int)A(0));
		pg_put_u8(&rec, (u8)A(1));
		break;
	case __NR_tgkill:
		BEGIN(TGKILL_X);
		pg_put_s64(&rec, res);
		pg_put_s64(&rec, (s64)(int)A(0));
		pg_put_s64(&rec, (s64)(int)A(1));
		pg_put_u8(&rec, (u8)A(2));
		break;
	default:
		if (!pg_fill_table_x(ring, ctx) && !pg_fill_net_x(ring, ctx) &&
		    !pg_fill_misc_x(ring, ctx))
			fill_generic_x(ring, ctx);
		return;
	}
	pg_record_commit(&rec, current->pid);
}
