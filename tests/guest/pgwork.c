// SPDX-License-Identifier: GPL-2.0-only
/*
 * pgwork - a workload with known syscalls for the guest tests.
 *
 *   pgwork DIR PORT
 *
 * Makes, in this order and with these exact arguments, the syscalls the
 * guest test script then looks for (raw syscall() where libc might pick
 * another syscall than the one named). Writes "PARENT CHILD" (the pids) to
 * DIR/pids at the end, and "TRACEE ADDRESS WORD" (the process it traced,
 * where the word it peeked lives, the word) to DIR/ptrace.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/io_uring.h>
#include <linux/futex.h>
#include <linux/keyctl.h>
#include <poll.h>
#include <sys/sem.h>
#include <sys/quota.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

static void must(long ret, const char *what)
{
	if (ret < 0) {
		perror(what);
		exit(1);
	}
}

/* The word the tracer peeks in its tracee (the same address after fork). */
static volatile uint64_t ptrace_marker = 0x5065726567726e65ULL;

/*
 * ptrace, as a debugger or an injector would: a refused attach (to our
 * own process), then attach, peek, detach with a signal, on a child.
 */
static void trace_a_child(const char *dir)
{
	uint64_t word = 0;
	char path[256];
	pid_t tracee;
	int status;
	FILE *f;

	if (syscall(SYS_ptrace, PTRACE_ATTACH, getpid(), 0x1234, 0x5678) != -1)
		exit(1);
	tracee = fork();
	must(tracee, "fork tracee");
	if (tracee == 0) {
		for (;;)
			pause();
	}
	must(syscall(SYS_ptrace, PTRACE_ATTACH, tracee, 0, 0), "ptrace attach");
	must(waitpid(tracee, &status, 0), "waitpid tracee");
	if (!WIFSTOPPED(status))
		exit(1);
	must(syscall(SYS_ptrace, PTRACE_PEEKDATA, tracee, &ptrace_marker, &word), "ptrace peek");
	if (word != ptrace_marker)
		exit(1);
	must(syscall(SYS_ptrace, PTRACE_DETACH, tracee, 0, SIGCONT), "ptrace detach");
	must(kill(tracee, SIGKILL), "kill tracee");
	must(waitpid(tracee, &status, 0), "waitpid tracee");

	snprintf(path, sizeof(path), "%s/ptrace", dir);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%d %lu %llu\n", (int)tracee, (unsigned long)&ptrace_marker,
			     (unsigned long long)word) < 0 || fclose(f))
		exit(1);
}

/*
 * The syscalls parameterised since ABI 2.0, each with known arguments, and
 * arguments the probes cannot read (they must give empty parameters, never
 * a lost event or an oops). Leaves the process in DIR (its children inherit
 * that cwd).
 */
static void more_syscalls(const char *dir, int port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	char buf[64], name[16] = "pgname";
	struct io_uring_params params;
	struct iovec iov[2], remote;
	struct mmsghdr mm[2];
	struct msghdr mh;
	int fds[2], sv[2], dfd, us, ur, pidfd;
	char *map;

	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	must(dfd, "open dir");
	must(syscall(SYS_chdir, "/"), "chdir");
	must(syscall(SYS_fchdir, dfd), "fchdir");
	must(syscall(SYS_getcwd, buf, sizeof(buf)), "getcwd");
	must(syscall(SYS_memfd_create, "pgmemfd", MFD_CLOEXEC), "memfd_create");
	if (syscall(SYS_bpf, 0, NULL, 0) != -1)
		exit(1);
	syscall(SYS_userfaultfd, O_CLOEXEC);     /* may be refused; reported either way */
	must(syscall(SYS_prctl, PR_SET_NAME, name, 0, 0, 0), "prctl");
	must(syscall(SYS_fcntl, dfd, F_DUPFD_CLOEXEC, 20), "fcntl");
	must(syscall(SYS_pipe2, fds, O_CLOEXEC), "pipe2");
	must(syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sv), "socketpair");
	map = (char *)syscall(SYS_mmap, NULL, 8192, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		exit(1);
	must(syscall(SYS_mprotect, map, 4096, PROT_READ), "mprotect");
	must(syscall(SYS_munmap, map, 8192), "munmap");
	memset(&params, 0, sizeof(params));
	syscall(SYS_io_uring_setup, 4, &params);  /* may be disabled; reported either way */
	strcpy(buf, "pgvm-data");
	iov[0].iov_base = name;
	iov[0].iov_len = 4;
	remote.iov_base = buf;
	remote.iov_len = 4;
	must(syscall(SYS_process_vm_readv, getpid(), iov, 1, &remote, 1, 0), "process_vm_readv");
	pidfd = syscall(SYS_pidfd_open, getpid(), 0);
	must(pidfd, "pidfd_open");
	must(syscall(SYS_pidfd_getfd, pidfd, dfd, 0), "pidfd_getfd");

	{
		struct rlimit old;
		uid_t r, e, su;
		struct stat st;

		must(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &old), "prlimit64");
		must(syscall(SYS_getresuid, &r, &e, &su), "getresuid");
		must(syscall(SYS_eventfd2, 7, EFD_CLOEXEC), "eventfd2");
		must(syscall(SYS_newfstatat, AT_FDCWD, dir, &st, AT_SYMLINK_NOFOLLOW), "newfstatat");
	}

	/* UDP: the tuple of each datagram, sent and received every way. */
	addr.sin_port = htons(port + 10);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ur = syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0);
	us = syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0);
	must(ur | us, "socket udp");
	must(syscall(SYS_bind, ur, &addr, sizeof(addr)), "bind udp");
	must(syscall(SYS_sendto, us, "udp-sendto", 10, 0, &addr, sizeof(addr)), "sendto");
	{
		struct sockaddr_in from;
		socklen_t fromlen = sizeof(from);

		must(syscall(SYS_recvfrom, ur, buf, sizeof(buf), 0, &from, &fromlen), "recvfrom");
	}
	iov[0].iov_base = "udp-";
	iov[0].iov_len = 4;
	iov[1].iov_base = "sendmsg";
	iov[1].iov_len = 7;
	memset(&mh, 0, sizeof(mh));
	mh.msg_name = &addr;
	mh.msg_namelen = sizeof(addr);
	mh.msg_iov = iov;
	mh.msg_iovlen = 2;
	must(syscall(SYS_sendmsg, us, &mh, 0), "sendmsg");
	{
		struct sockaddr_in from;
		struct iovec riov = { buf, sizeof(buf) };
		struct msghdr rh = { .msg_name = &from, .msg_namelen = sizeof(from),
				     .msg_iov = &riov, .msg_iovlen = 1 };

		must(syscall(SYS_recvmsg, ur, &rh, 0), "recvmsg");
	}
	memset(mm, 0, sizeof(mm));
	iov[0].iov_base = "udp-mmsg-1";
	iov[0].iov_len = 10;
	iov[1].iov_base = "udp-mmsg-2";
	iov[1].iov_len = 10;
	mm[0].msg_hdr.msg_name = mm[1].msg_hdr.msg_name = &addr;
	mm[0].msg_hdr.msg_namelen = mm[1].msg_hdr.msg_namelen = sizeof(addr);
	mm[0].msg_hdr.msg_iov = &iov[0];
	mm[1].msg_hdr.msg_iov = &iov[1];
	mm[0].msg_hdr.msg_iovlen = mm[1].msg_hdr.msg_iovlen = 1;
	if (syscall(SYS_sendmmsg, us, mm, 2, 0) != 2)
		exit(1);
	{
		char b0[16], b1[16];
		struct iovec r0 = { b0, sizeof(b0) }, r1 = { b1, sizeof(b1) };
		struct mmsghdr rm[2];

		memset(rm, 0, sizeof(rm));
		rm[0].msg_hdr.msg_iov = &r0;
		rm[1].msg_hdr.msg_iov = &r1;
		rm[0].msg_hdr.msg_iovlen = rm[1].msg_hdr.msg_iovlen = 1;
		if (syscall(SYS_recvmmsg, ur, rm, 2, MSG_DONTWAIT, NULL) != 2)
			exit(1);
	}

	/* Arguments no probe can read: a kernel address, small bad pointers. */
	if (syscall(SYS_openat, AT_FDCWD, (char *)0xffffffff81000000UL, O_RDONLY) != -1)
		exit(1);
	if (syscall(SYS_sendto, us, (void *)8, 100000, 0, &addr, sizeof(addr)) != -1)
		exit(1);
	if (syscall(SYS_connect, us, (void *)16, sizeof(addr)) != -1)
		exit(1);
	if (syscall(SYS_chdir, (char *)1) != -1)
		exit(1);
	close(us);
	close(ur);
}

/* A futex word at a fixed address of the (static, non-PIE) binary. */
static int futex_word;

/*
 * The calls Falco parameterises beyond files and sockets: waiting,
 * semaphores, futexes, socket options, device nodes, file handles, keys,
 * mount configuration, signal fds; each on a success and a failure path,
 * with results that are the same on every run (a semaphore set under a
 * fixed key, found again by later runs; no key serial numbers).
 */
static void wait_ipc_and_handles(const char *dir)
{
	struct timespec ts = { 0, 1000 }, zero = { 0, 0 };
	struct timeval tv = { 1, 500000 }, tz = { 0, 0 };
	struct pollfd pfd[2];
	struct sembuf sops[2] = { { 0, 1, 0 }, { 0, -1, IPC_NOWAIT } };
	char path[256], hbuf[sizeof(struct file_handle) + 128];
	struct file_handle *fh = (struct file_handle *)hbuf;
	int fds[2], s, one = 1, val = 0, semid, dfd, fd, mount_id;
	socklen_t len = sizeof(val);
	unsigned long long sigs = 1ULL << (SIGUSR1 - 1);
	uint32_t fmt = 0;

	/* poll, ppoll, select, nanosleep: a pipe with data, never waiting long. */
	must(syscall(SYS_pipe2, fds, 0), "pipe2");
	must(syscall(SYS_write, fds[1], "x", 1), "write pipe");
	pfd[0].fd = fds[0];
	pfd[0].events = POLLIN;
	pfd[1].fd = fds[1];
	pfd[1].events = POLLOUT;
	if (syscall(SYS_poll, pfd, 2, 0) != 2)
		exit(1);
	if (syscall(SYS_ppoll, pfd, 1, &zero, &sigs, 8) != 1)
		exit(1);
	if (syscall(SYS_poll, (void *)8, 1, 0) != -1)
		exit(1);
	must(syscall(SYS_select, 0, NULL, NULL, NULL, &tz), "select");
	must(syscall(SYS_nanosleep, &ts, NULL), "nanosleep");
	if (syscall(SYS_nanosleep, (void *)8, NULL) != -1)
		exit(1);
	close(fds[0]);
	close(fds[1]);

	/* Futexes: a wake with no waiter, an unknown operation. */
	if (syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) != 0)
		exit(1);
	if (syscall(SYS_futex, &futex_word, 99, 1, NULL, NULL, 0) != -1)
		exit(1);

	/* SysV semaphores. */
	semid = syscall(SYS_semget, 0x50470001, 1, IPC_CREAT | 0600);
	must(semid, "semget");
	if (syscall(SYS_semget, 0x50470002, 1, 0) != -1)
		exit(1);
	must(syscall(SYS_semop, semid, sops, 2), "semop");
	if (syscall(SYS_semop, semid, &sops[1], 1) != -1)
		exit(1);
	must(syscall(SYS_semctl, semid, 0, SETVAL, 5), "semctl setval");
	if (syscall(SYS_semctl, semid, 0, GETVAL, 0) != 5)
		exit(1);
	/* Back to 0: the set outlives this run, and the next run's refused semop needs 0. */
	must(syscall(SYS_semctl, semid, 0, SETVAL, 0), "semctl reset");

	/* Socket options, set and read back, on SOL_SOCKET and another level. */
	s = syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	must(s, "socket");
	must(syscall(SYS_setsockopt, s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)), "setsockopt");
	must(syscall(SYS_setsockopt, s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), "setsockopt");
	must(syscall(SYS_setsockopt, s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), "setsockopt");
	if (syscall(SYS_setsockopt, -1, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) != -1)
		exit(1);
	must(syscall(SYS_getsockopt, s, SOL_SOCKET, SO_TYPE, &val, &len), "getsockopt");
	len = sizeof(val);
	must(syscall(SYS_getsockopt, s, SOL_SOCKET, SO_ERROR, &val, &len), "getsockopt");
	len = sizeof(tv);
	must(syscall(SYS_getsockopt, s, SOL_SOCKET, SO_RCVTIMEO, &tv, &len), "getsockopt");
	close(s);

	/* Device nodes: a fifo, a character device, one relative to a directory fd, one refused. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	must(dfd, "open dir");
	snprintf(path, sizeof(path), "%s/fifo", dir);
	must(syscall(SYS_mknod, path, S_IFIFO | 0600, 0), "mknod fifo");
	if (syscall(SYS_mknod, path, S_IFIFO | 0600, 0) != -1)
		exit(1);
	snprintf(path, sizeof(path), "%s/null", dir);
	must(syscall(SYS_mknod, path, S_IFCHR | 0666, makedev(1, 3)), "mknod chr");
	must(syscall(SYS_mknodat, dfd, "fifo2", S_IFIFO | 0640, 0), "mknodat");
	must(syscall(SYS_mknodat, AT_FDCWD, "pg-relative-file", 0600, 0), "mknodat cwd");
	must(syscall(SYS_unlink, "pg-relative-file"), "unlink");

	/* A file reopened by handle; a handle that is no good. */
	snprintf(path, sizeof(path), "%s/file", dir);
	fh->handle_bytes = 128;
	if (syscall(SYS_name_to_handle_at, AT_FDCWD, path, fh, &mount_id, 0) == 0) {
		fd = syscall(SYS_open_by_handle_at, dfd, fh, O_RDONLY | O_CLOEXEC);
		must(fd, "open_by_handle_at");
		close(fd);
	}
	fh->handle_bytes = 0;
	if (syscall(SYS_open_by_handle_at, dfd, fh, O_RDONLY) != -1)
		exit(1);

	/* Keys: lookups that find nothing, with integer and string arguments. */
	if (syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 0) != -1)
		exit(1);
	if (syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_THREAD_KEYRING, "user", "pg:key", 0) != -1)
		exit(1);

	/* Mount configuration of a new tmpfs: string, flag, a refused key, create. */
	fd = syscall(SYS_fsopen, "tmpfs", 0);
	if (fd >= 0) {
		must(syscall(SYS_fsconfig, fd, 1 /* SET_STRING */, "size", "1m", 0), "fsconfig");
		must(syscall(SYS_fsconfig, fd, 0 /* SET_FLAG */, "ro", NULL, 0), "fsconfig");
		if (syscall(SYS_fsconfig, fd, 1, "pg-no-such-option", "x", 0) != -1)
			exit(1);
		must(syscall(SYS_fsconfig, fd, 6 /* CMD_CREATE */, NULL, NULL, 0), "fsconfig");
		close(fd);
	}

	/* Quotas: refused on a file that is no block device. */
	if (syscall(SYS_quotactl, QCMD(Q_GETFMT, USRQUOTA), "/dev/null", 0, &fmt) != -1)
		exit(1);

	/* Signal fds, with and without flags, and refused flags. */
	fd = syscall(SYS_signalfd, -1, &sigs, 8);
	must(fd, "signalfd");
	close(fd);
	fd = syscall(SYS_signalfd4, -1, &sigs, 8, O_CLOEXEC | O_NONBLOCK);
	must(fd, "signalfd4");
	close(fd);
	if (syscall(SYS_signalfd4, -1, &sigs, 8, 0x1) != -1)
		exit(1);
	close(dfd);
}

int main(int argc, char **argv)
{
	char file[256], link[256], link2[256], sub[256], buf[64];
	char *exec_argv[] = { "echo", "pg-exec-marker", NULL };
	char *exec_env[] = { "PG_MARK=1", NULL };
	char *untouched;
	struct sockaddr_in addr;
	int fd, ls, cs, as, status, one = 1;
	pid_t child;
	FILE *f;

	if (argc != 3)
		return fprintf(stderr, "usage: pgwork DIR PORT\n"), 2;
	snprintf(file, sizeof(file), "%s/file", argv[1]);
	snprintf(link, sizeof(link), "%s/link", argv[1]);
	snprintf(link2, sizeof(link2), "%s/link2", argv[1]);
	snprintf(sub, sizeof(sub), "%s/sub", argv[1]);

	must(syscall(SYS_mkdir, sub, 0750), "mkdir");
	must(syscall(SYS_rmdir, sub), "rmdir");

	fd = syscall(SYS_openat, AT_FDCWD, file, O_WRONLY | O_CREAT | O_EXCL, 0640);
	must(fd, "openat");
	must(syscall(SYS_write, fd, "hello", 5), "write");
	must(syscall(SYS_close, fd), "close");
	fd = syscall(SYS_open, file, O_RDONLY);
	must(fd, "open");
	must(syscall(SYS_read, fd, buf, sizeof(buf)), "read");
	must(syscall(SYS_close, fd), "close");

	must(syscall(SYS_chmod, file, 0600), "chmod");
	must(syscall(SYS_symlink, file, link), "symlink");
	must(syscall(SYS_rename, link, link2), "rename");
	must(syscall(SYS_unlink, link2), "unlink");

	/*
	 * A path in a page never touched: the probe at syscall entry cannot
	 * fault it in, so the enter event has an empty name and the fault is
	 * counted; by the exit the kernel has read it (an empty name, so ENOENT).
	 */
	untouched = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (untouched == MAP_FAILED)
		return perror("mmap"), 1;
	if (syscall(SYS_openat, AT_FDCWD, untouched, O_RDONLY) != -1)
		return 1;

	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons(atoi(argv[2]));
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	must(ls, "socket");
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	must(syscall(SYS_bind, ls, &addr, sizeof(addr)), "bind");
	must(syscall(SYS_listen, ls, 4), "listen");
	cs = syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	must(cs, "socket");
	must(syscall(SYS_connect, cs, &addr, sizeof(addr)), "connect");
	as = syscall(SYS_accept4, ls, NULL, NULL, 0);
	must(as, "accept4");
	close(as);
	close(cs);
	close(ls);

	/* Ownership, identity, namespaces, mounts, modules, signals (as root). */
	must(syscall(SYS_chown, file, 0, 0), "chown");
	must(syscall(SYS_fchownat, AT_FDCWD, file, 0, 0, AT_SYMLINK_NOFOLLOW), "fchownat");
	must(syscall(SYS_setuid, 0), "setuid");
	must(syscall(SYS_setgid, 0), "setgid");
	must(syscall(SYS_setresuid, 0, 0, 0), "setresuid");
	must(syscall(SYS_unshare, CLONE_NEWUTS), "unshare");
	fd = syscall(SYS_open, "/proc/self/ns/uts", O_RDONLY);
	must(fd, "open ns");
	must(syscall(SYS_setns, fd, CLONE_NEWUTS), "setns");
	close(fd);
	must(syscall(SYS_mkdir, sub, 0700), "mkdir");
	must(syscall(SYS_mount, "pgtmp", sub, "tmpfs", MS_NOSUID | MS_NODEV, NULL), "mount");
	must(syscall(SYS_umount2, sub, MNT_DETACH), "umount2");
	must(syscall(SYS_rmdir, sub), "rmdir");
	if (syscall(SYS_finit_module, -1, "pg.arg=1", 0) != -1)
		return 1;
	must(syscall(SYS_kill, getpid(), 0), "kill");

	/* A unix stream socket, connected by path. */
	{
		struct sockaddr_un un = { .sun_family = AF_UNIX };

		snprintf(un.sun_path, sizeof(un.sun_path), "%s/sock", argv[1]);
		ls = syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
		must(ls, "socket unix");
		must(syscall(SYS_bind, ls, &un, sizeof(un)), "bind unix");
		must(syscall(SYS_listen, ls, 1), "listen unix");
		cs = syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
		must(cs, "socket unix");
		must(syscall(SYS_connect, cs, &un, sizeof(un)), "connect unix");
		close(cs);
		close(ls);
	}

	/* A failing execve: reported from sys_exit with the caller's arguments. */
	if (syscall(SYS_execve, "/nonexistent/pg-missing", exec_argv, exec_env) != -1)
		return 1;

	more_syscalls(argv[1], atoi(argv[2]));
	wait_ipc_and_handles(argv[1]);

	child = fork();
	must(child, "fork");
	if (child == 0) {
		int null = open("/dev/null", O_WRONLY);

		syscall(SYS_dup2, null, 1);
		syscall(SYS_execve, "/bin/echo", exec_argv, exec_env);
		_exit(127);
	}
	must(waitpid(child, &status, 0), "waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fprintf(stderr, "child failed\n"), 1;

	trace_a_child(argv[1]);

	snprintf(buf, sizeof(buf), "%s/pids", argv[1]);
	f = fopen(buf, "w");
	if (!f)
		return perror(buf), 1;
	fprintf(f, "%d %d\n", (int)getpid(), (int)child);
	return fclose(f) ? 1 : 0;
}
