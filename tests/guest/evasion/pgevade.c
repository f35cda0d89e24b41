/*
 * pgevade: the indirect forms an attacker uses to reach a file without
 * naming it the way a rule expects. Each subcommand does one thing and
 * exits 0 when the kernel let it; extra arguments are ignored, so a test
 * can append a token that names the variant in the alert's command line.
 *
 *   read PATH                 open(PATH) for reading
 *   write PATH                open(PATH) for writing, creating it
 *   cd-read DIR NAME          chdir(DIR), then open(NAME)
 *   fchdir-read DIR NAME      fchdir to an fd of DIR, then open(NAME)
 *   openat-read DIR NAME      openat(fd of DIR, NAME)
 *   proc-cwd-read DIR NAME    chdir(DIR), then open(/proc/self/cwd/NAME)
 *   proc-fd-read DIR NAME     open(/proc/self/fd/<fd of DIR>/NAME)
 *   devfd-read DIR NAME       open(/dev/fd/<fd of DIR>/NAME)
 *   thread-read PATH          open(PATH) from a second thread
 *   vfork-read PATH           open(PATH) from a vfork child
 *   clone3-read PATH          open(PATH) from a child made by clone3
 *   symlink-read TARGET LINK  symlink(TARGET, LINK), then open(LINK)
 *   link-read TARGET LINK     link(TARGET, LINK), then open(LINK)
 *   cd-link DIR OLD NEW       chdir(DIR), then link(OLD, NEW)
 *   rename OLD NEW            rename(OLD, NEW)
 *   cd-rename DIR OLD NEW     chdir(DIR), then rename(OLD, NEW)
 *   renameat-into DIR OLD NEW renameat(AT_FDCWD, OLD, fd of DIR, NEW)
 *   cd-unlink DIR NAME        chdir(DIR), then unlink(NAME)
 *   udp-connect PORT          a UDP socket connected to 127.0.0.1:PORT, one send
 *   udp-sendto PORT           an unconnected UDP socket, one sendto to it
 *   udp-sendmsg PORT          an unconnected UDP socket, one sendmsg to it
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sched.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what, const char *arg)
{
	fprintf(stderr, "pgevade: %s %s: %s\n", what, arg, strerror(errno));
	return 1;
}

static int read_one(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return fail("open", path);
	close(fd);
	return 0;
}

static int dir_fd(const char *dir)
{
	return open(dir, O_RDONLY | O_DIRECTORY);
}

static void *thread_main(void *path)
{
	return (void *)(long)read_one(path);
}

/* One datagram to 127.0.0.1:port, the way `how` names. */
static int udp_send(const char *how, const char *port)
{
	struct sockaddr_in to = { .sin_family = AF_INET };
	static char payload[] = "pgevade";
	struct iovec iov = { payload, sizeof(payload) - 1 };
	struct msghdr mh = { .msg_name = &to, .msg_namelen = sizeof(to),
			     .msg_iov = &iov, .msg_iovlen = 1 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	to.sin_port = htons(atoi(port));
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return fail("socket", port);
	if (!strcmp(how, "connect")) {
		if (connect(fd, (struct sockaddr *)&to, sizeof(to)) || send(fd, payload, iov.iov_len, 0) < 0)
			return fail("connect/send", port);
	} else if (!strcmp(how, "sendto")) {
		if (sendto(fd, payload, iov.iov_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
			return fail("sendto", port);
	} else if (sendmsg(fd, &mh, 0) < 0) {
		return fail("sendmsg", port);
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	const char *a = argc > 2 ? argv[2] : NULL;
	const char *b = argc > 3 ? argv[3] : NULL;
	const char *c = argc > 4 ? argv[4] : NULL;
	char path[4096];
	int dfd;

	if (!strcmp(cmd, "read") && a)
		return read_one(a);
	if (!strcmp(cmd, "write") && a) {
		int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0)
			return fail("open", a);
		close(fd);
		return 0;
	}
	if (!strcmp(cmd, "cd-read") && b) {
		if (chdir(a))
			return fail("chdir", a);
		return read_one(b);
	}
	if (!strcmp(cmd, "fchdir-read") && b) {
		dfd = dir_fd(a);
		if (dfd < 0 || fchdir(dfd))
			return fail("fchdir", a);
		return read_one(b);
	}
	if (!strcmp(cmd, "openat-read") && b) {
		int fd;

		dfd = dir_fd(a);
		if (dfd < 0)
			return fail("open", a);
		fd = openat(dfd, b, O_RDONLY);
		if (fd < 0)
			return fail("openat", b);
		close(fd);
		return 0;
	}
	if (!strcmp(cmd, "proc-cwd-read") && b) {
		if (chdir(a))
			return fail("chdir", a);
		snprintf(path, sizeof(path), "/proc/self/cwd/%s", b);
		return read_one(path);
	}
	if (!strcmp(cmd, "proc-fd-read") && b) {
		dfd = dir_fd(a);
		if (dfd < 0)
			return fail("open", a);
		snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dfd, b);
		return read_one(path);
	}
	if (!strcmp(cmd, "devfd-read") && b) {
		dfd = dir_fd(a);
		if (dfd < 0)
			return fail("open", a);
		snprintf(path, sizeof(path), "/dev/fd/%d/%s", dfd, b);
		return read_one(path);
	}
	if (!strcmp(cmd, "thread-read") && a) {
		pthread_t t;
		void *rc;

		if (pthread_create(&t, NULL, thread_main, (void *)a))
			return fail("pthread_create", a);
		pthread_join(t, &rc);
		return (int)(long)rc;
	}
	if (!strcmp(cmd, "vfork-read") && a) {
		int status;
		pid_t pid = vfork();

		if (pid < 0)
			return fail("vfork", a);
		if (pid == 0) {
			int fd = open(a, O_RDONLY);

			_exit(fd < 0 ? 1 : 0);
		}
		if (waitpid(pid, &status, 0) < 0)
			return fail("waitpid", a);
		return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	}
	if (!strcmp(cmd, "clone3-read") && a) {
		struct clone_args args;
		int status;
		long pid;

		memset(&args, 0, sizeof(args));
		args.exit_signal = SIGCHLD;
		pid = syscall(SYS_clone3, &args, sizeof(args));
		if (pid < 0)
			return fail("clone3", a);
		if (pid == 0)
			_exit(open(a, O_RDONLY) < 0 ? 1 : 0);
		if (waitpid(pid, &status, 0) < 0)
			return fail("waitpid", a);
		return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	}
	if (!strcmp(cmd, "symlink-read") && b) {
		if (symlink(a, b))
			return fail("symlink", b);
		return read_one(b);
	}
	if (!strcmp(cmd, "link-read") && b) {
		if (link(a, b))
			return fail("link", b);
		return read_one(b);
	}
	if (!strcmp(cmd, "cd-link") && c) {
		if (chdir(a))
			return fail("chdir", a);
		if (link(b, c))
			return fail("link", c);
		return 0;
	}
	if (!strcmp(cmd, "rename") && b) {
		if (rename(a, b))
			return fail("rename", b);
		return 0;
	}
	if (!strcmp(cmd, "cd-rename") && c) {
		if (chdir(a))
			return fail("chdir", a);
		if (rename(b, c))
			return fail("rename", c);
		return 0;
	}
	if (!strcmp(cmd, "renameat-into") && c) {
		dfd = dir_fd(a);
		if (dfd < 0)
			return fail("open", a);
		if (renameat(AT_FDCWD, b, dfd, c))
			return fail("renameat", c);
		return 0;
	}
	if (!strcmp(cmd, "cd-unlink") && b) {
		if (chdir(a))
			return fail("chdir", a);
		if (unlink(b))
			return fail("unlink", b);
		return 0;
	}
	if (!strncmp(cmd, "udp-", 4) && a)
		return udp_send(cmd + 4, a);
	fprintf(stderr, "pgevade: bad arguments\n");
	return 2;
}
