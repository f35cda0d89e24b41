// SPDX-License-Identifier: GPL-2.0-only
/*
 * pg32 - a 32-bit (i386) workload for the guest tests, built with
 * gcc -m32 -static.
 *
 *   pg32 DIR PORT
 *
 * Opens (open and openat), connects (through socketcall, as i386 libcs
 * do, and through the direct connect syscall), sends, fails an execve and
 * runs a child that execs /bin/echo: each must be reported as the x86-64
 * event of the same call. Writes "PARENT CHILD" to DIR/pids.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/net.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void must(long ret, const char *what)
{
	if (ret < 0) {
		perror(what);
		exit(1);
	}
}

static long socketcall(int call, unsigned long a0, unsigned long a1, unsigned long a2,
		       unsigned long a3)
{
	unsigned long args[6] = { a0, a1, a2, a3, 0, 0 };

	return syscall(SYS_socketcall, call, args);
}

int main(int argc, char **argv)
{
	char file[256], path[256];
	char *exec_argv[] = { "echo", "pg32-exec", NULL };
	char *bad_argv[] = { "pg32-arg0", "pg32-arg1", NULL };
	char *env[] = { "PG_MARK=32", NULL };
	struct sockaddr_in addr;
	int fd, ls, cs, cs2, status;
	pid_t child;
	FILE *f;

	if (argc != 3 || sizeof(void *) != 4)
		return fprintf(stderr, "usage: pg32 DIR PORT (a 32-bit build)\n"), 2;
	snprintf(file, sizeof(file), "%s/file32", argv[1]);

	fd = syscall(SYS_open, file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	must(fd, "open");
	must(syscall(SYS_write, fd, "pg32", 4), "write");
	must(syscall(SYS_close, fd), "close");
	fd = syscall(SYS_openat, AT_FDCWD, file, O_RDONLY);
	must(fd, "openat");
	must(syscall(SYS_close, fd), "close");

	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons(atoi(argv[2]));
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socketcall(SYS_SOCKET, AF_INET, SOCK_STREAM, 0, 0);
	must(ls, "socketcall socket");
	must(socketcall(SYS_BIND, ls, (unsigned long)&addr, sizeof(addr), 0), "socketcall bind");
	must(socketcall(SYS_LISTEN, ls, 4, 0, 0), "socketcall listen");
	cs = socketcall(SYS_SOCKET, AF_INET, SOCK_STREAM, 0, 0);
	must(cs, "socketcall socket");
	must(socketcall(SYS_CONNECT, cs, (unsigned long)&addr, sizeof(addr), 0), "socketcall connect");
	must(socketcall(SYS_SEND, cs, (unsigned long)"pg32-send", 9, 0), "socketcall send");
	cs2 = syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	must(cs2, "socket");
	must(syscall(SYS_connect, cs2, &addr, sizeof(addr)), "connect");
	close(cs2);
	close(cs);
	close(ls);

	/* A failing execve: its argv is an array of 32-bit pointers. */
	if (syscall(SYS_execve, "/nonexistent/pg32-missing", bad_argv, env) != -1)
		return 1;

	child = fork();
	must(child, "fork");
	if (child == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		execve("/bin/echo", exec_argv, env);
		_exit(127);
	}
	must(waitpid(child, &status, 0), "waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fprintf(stderr, "child failed\n"), 1;

	snprintf(path, sizeof(path), "%s/pids", argv[1]);
	f = fopen(path, "w");
	if (!f)
		return perror(path), 1;
	fprintf(f, "%d %d\n", (int)getpid(), (int)child);
	return fclose(f) ? 1 : 0;
}
