// SPDX-License-Identifier: GPL-2.0-only
/*
 * pgbench - the workloads of the benchmark suite (scripts/bench, and
 * scripts/kernel-lab bench in the guest). Runs one workload and prints
 *
 *   PGBENCH LABEL WORKLOAD ns=NS_PER_OP ops=N syscalls=PER_OP cpu_us=US wall_us=US
 *
 * cpu_us is the workload's own CPU time (user + system, children
 * included), for comparing a consumer's CPU with it.
 *
 *   pgbench LABEL WORKLOAD OPS [FILE]
 *
 * WORKLOAD is one of
 *   getppid          one cheap syscall
 *   open_read_close  open, read and close FILE (default /bench-file)
 *   fork_exec        fork, exec this program doing nothing, wait
 *   net              a TCP connection over loopback: socket, connect,
 *                    accept, write, read, close both ends
 *   mixed            a busy service: per op an open/read/close of FILE,
 *                    a stat, a write to a log, a getppid; every 20th op a
 *                    loopback connection, every 200th a fork+exec
 * Under TCG only ratios within one boot mean anything.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *bench_file = "/bench-file";
static const char *self_exe;
static int listener = -1;
static struct sockaddr_in listen_addr;
static int log_fd = -1;

static double ns_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static long cpu_us(void)
{
	struct rusage self, children;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &children);
	return (self.ru_utime.tv_sec + self.ru_stime.tv_sec +
		children.ru_utime.tv_sec + children.ru_stime.tv_sec) * 1000000L +
	       self.ru_utime.tv_usec + self.ru_stime.tv_usec +
	       children.ru_utime.tv_usec + children.ru_stime.tv_usec;
}

static int die(const char *what)
{
	perror(what);
	exit(1);
}

static void op_getppid(void)
{
	getppid();
}

static void op_open_read_close(void)
{
	char buf[64];
	int fd = open(bench_file, O_RDONLY);

	if (fd < 0 || read(fd, buf, sizeof(buf)) < 0)
		die(bench_file);
	close(fd);
}

static void op_fork_exec(void)
{
	int status;
	pid_t child = fork();

	if (child < 0)
		die("fork");
	if (child == 0) {
		execl(self_exe, "pgbench", "noop", (char *)NULL);
		_exit(127);
	}
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		die("the exec'd child");
}

static void setup_listener(void)
{
	socklen_t len = sizeof(listen_addr);

	listener = socket(AF_INET, SOCK_STREAM, 0);
	memset(&listen_addr, 0, sizeof(listen_addr));
	listen_addr.sin_family = AF_INET;
	listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (listener < 0 || bind(listener, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) ||
	    listen(listener, 16) || getsockname(listener, (struct sockaddr *)&listen_addr, &len))
		die("loopback listener (is lo up?)");
}

static void op_net(void)
{
	char buf[64] = "ping";
	int client = socket(AF_INET, SOCK_STREAM, 0), server;

	if (client < 0 || connect(client, (struct sockaddr *)&listen_addr, sizeof(listen_addr)))
		die("connect");
	server = accept(listener, NULL, NULL);
	if (server < 0 || write(client, buf, sizeof(buf)) != sizeof(buf) ||
	    read(server, buf, sizeof(buf)) <= 0)
		die("loopback exchange");
	close(server);
	close(client);
}

static void op_mixed(void)
{
	static long n;
	struct stat st;

	op_open_read_close();
	stat(bench_file, &st);
	if (write(log_fd, "request served\n", 15) != 15)
		die("log write");
	getppid();
	if (n % 20 == 0)
		op_net();
	if (n % 200 == 0)
		op_fork_exec();
	n++;
}

static const struct workload {
	const char *name;
	void (*op)(void);
	const char *syscalls; /* per op, as a number or "-" when it varies */
} workloads[] = {
	{ "getppid", op_getppid, "1" },
	{ "open_read_close", op_open_read_close, "3" },
	{ "fork_exec", op_fork_exec, "-" },
	{ "net", op_net, "7" },
	{ "mixed", op_mixed, "-" },
};

int main(int argc, char **argv)
{
	const struct workload *w = NULL;
	double start, end;
	long ops, i, cpu0;
	size_t k;

	if (argc > 1 && !strcmp(argv[1], "noop"))
		return 0;
	if (argc < 4)
		return fprintf(stderr, "usage: pgbench LABEL WORKLOAD OPS [FILE]\n"), 2;
	for (k = 0; k < sizeof(workloads) / sizeof(workloads[0]); k++)
		if (!strcmp(argv[2], workloads[k].name))
			w = &workloads[k];
	ops = atol(argv[3]);
	if (!w || ops <= 0)
		return fprintf(stderr, "pgbench: unknown workload '%s' or bad count '%s'\n",
			       argv[2], argv[3]), 2;
	if (argc > 4)
		bench_file = argv[4];
	self_exe = "/proc/self/exe";
	if (w->op == op_net || w->op == op_mixed)
		setup_listener();
	if (w->op == op_mixed) {
		log_fd = open("/tmp/pgbench-mixed.log", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (log_fd < 0)
			die("/tmp/pgbench-mixed.log");
	}
	cpu0 = cpu_us();
	start = ns_now();
	for (i = 0; i < ops; i++)
		w->op();
	end = ns_now();
	printf("PGBENCH %s %s ns=%.0f ops=%ld syscalls=%s cpu_us=%ld wall_us=%.0f\n", argv[1],
	       w->name, (end - start) / ops, ops, w->syscalls, cpu_us() - cpu0,
	       (end - start) / 1000);
	return 0;
}
