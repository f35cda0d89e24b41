// SPDX-License-Identifier: GPL-2.0
/*
 * pgtrigger: one small action per subcommand, to make the default rules
 * fire (or stay quiet) inside the lab guest, in the spirit of an event
 * generator. The subcommand is argv[1], never argv[0]: the binary is copied
 * under other names (/tmp/pgbin/nginx, .../ping, ...) to give the action a
 * chosen proc.name. Arguments after the ones a subcommand needs are ignored,
 * so callers append a token (pgF-xxx / pgB-xxx) that lands in proc.cmdline
 * and lets the checker attribute every alert to its trigger.
 *
 * Exit status: 0 when the action did what was asked, 1 otherwise (with the
 * reason on stderr), 2 on a usage error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what, const char *arg)
{
	fprintf(stderr, "pgtrigger: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
	return 1;
}

static int open_close(const char *path, int flags)
{
	int fd = open(path, flags, 0644);

	if (fd < 0)
		return fail("open", path);
	if ((flags & O_ACCMODE) != O_RDONLY && write(fd, "x\n", 2) != 2) {
		close(fd);
		return fail("write", path);
	}
	close(fd);
	return 0;
}

/* An IPv4 address and port; an address that does not parse is 0.0.0.0. */
static struct sockaddr_in inet_at(const char *addr, const char *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };

	sa.sin_port = htons((unsigned short)atoi(port));
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		sa.sin_addr.s_addr = htonl(INADDR_ANY);
	return sa;
}

static struct sockaddr_in loopback(const char *port)
{
	return inet_at("127.0.0.1", port);
}

static int tcp_listener_at(struct sockaddr_in sa)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int tcp_listener(const char *port)
{
	return tcp_listener_at(loopback(port));
}

/* Accepts and closes connections until killed. */
static int serve(int fd, const char *what)
{
	if (fd < 0)
		return fail("listen", what);
	for (;;) {
		int c = accept(fd, NULL, NULL);

		if (c >= 0)
			close(c);
	}
}

static int connect_to(struct sockaddr_in sa, const char *what)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail("connect", what);
	close(fd);
	return 0;
}

/* Runs argv[0] (a path) with its arguments and waits for it. */
static int spawn(char **argv)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return fail("fork", argv[0]);
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return fail("waitpid", argv[0]);
	return WIFEXITED(status) && WEXITSTATUS(status) != 127 ? 0 : 1;
}

/* Attaches to a child of ours that only sleeps, then lets it go. */
static int ptrace_attach(void)
{
	int status, rc = 0;
	pid_t pid = fork();

	if (pid < 0)
		return fail("fork", NULL);
	if (pid == 0) {
		for (;;)
			pause();
	}
	if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) < 0)
		rc = fail("ptrace attach", NULL);
	else if (waitpid(pid, &status, 0) < 0 || ptrace(PTRACE_DETACH, pid, NULL, NULL) < 0)
		rc = fail("ptrace detach", NULL);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return rc;
}

/* Runs this very program again from a memfd: an exe no filesystem holds. */
static int memfd_exec(void)
{
	char buf[65536], *args[] = { "pgtrigger", "noop", NULL }, *env[] = { NULL };
	int in = open("/proc/self/exe", O_RDONLY);
	int mem = (int)syscall(SYS_memfd_create, "pgmemfd", 0);
	ssize_t n = 0;

	if (in < 0 || mem < 0)
		return fail("memfd_create", NULL);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(mem, buf, n) != n)
			return fail("memfd write", NULL);
	close(in);
	syscall(SYS_execveat, mem, "", args, env, AT_EMPTY_PATH);
	return fail("execveat of the memfd", NULL);
}

/*
 * GET PATH from a loopback HTTP server; the body goes to stdout. Busybox's
 * wget is no use in the guest: the static build Debian ships segfaults
 * before it sends anything. HTTP/1.0, so the server closes after one
 * answer; a receive timeout keeps a silent server from hanging the guest.
 */
static int http_get(const char *port, const char *path)
{
	struct sockaddr_in sa = loopback(port);
	struct timeval tv = { .tv_sec = 10 };
	static char buf[1 << 20];
	size_t len = 0;
	ssize_t n = 0;
	char *body;
	int fd, req_len;
	char req[1024];

	req_len = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (req_len < 0 || (size_t)req_len >= sizeof(req)) {
		errno = ENAMETOOLONG;
		return fail("http-get", path);
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail("connect", port);
	if (write(fd, req, (size_t)req_len) != req_len)
		return fail("write", path);
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	if (n < 0)
		return fail("read", path);
	close(fd);
	buf[len] = '\0';
	if (len == sizeof(buf) - 1) {
		fprintf(stderr, "pgtrigger: http-get %s: more than %zu bytes\n", path, len);
		return 1;
	}
	/* Only a 200 with a header end counts: anything else is the server's failure. */
	body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.", 7) || strncmp(buf + 8, " 200 ", 5) || !body) {
		fprintf(stderr, "pgtrigger: http-get %s: %.80s\n", path, buf);
		return 1;
	}
	fputs(body + 4, stdout);
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: pgtrigger noop | read|write|append|trunc|create|creat PATH | unlink PATH |\n"
		"       symlink|link TARGET NEWPATH | rename OLD NEW | chmod PATH OCTAL |\n"
		"       chown PATH (to 0:0) | setns | unshare | raw |\n"
		"       serve PORT | serve-at ADDR PORT | listen PORT | connect PORT |\n"
		"       connect-to ADDR PORT | http-get PORT PATH | ptrace | traceme |\n"
		"       spawn PROG [ARG...] | spawn-when FILE PROG [ARG...] | memfd-exec |\n"
		"       after SECONDS COMMAND... | as-uid UID COMMAND...   [TOKEN...]\n");
	return 2;
}

/*
 * toctou-read FIFO DECOY WRITER: a path rewritten under the open that uses
 * it. A second thread opens FIFO for reading through a buffer; once that
 * open waits in the kernel for a writer, this thread writes DECOY over the
 * buffer and runs WRITER (this program under another name) with
 * "fifo-write FIFO", whose open for writing (and nothing else) lets the
 * first one return. The kernel opened FIFO; what the open's exit reads in
 * the buffer is DECOY.
 */
static char toctou_path[PATH_MAX];
static volatile pid_t toctou_tid;

static void *toctou_reader(void *unused)
{
	int fd;

	(void)unused;
	toctou_tid = (pid_t)syscall(SYS_gettid);
	fd = open(toctou_path, O_RDONLY);
	if (fd < 0)
		return (void *)1L;
	close(fd);
	return NULL;
}

/* The state letter of thread TID of this process ('S': asleep), or 0. */
static char thread_state(pid_t tid)
{
	char path[64], buf[512], *p;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

static int toctou_read(const char *fifo, const char *decoy, const char *writer)
{
	char *args[] = { (char *)writer, "fifo-write", (char *)fifo, NULL };
	pthread_t reader;
	void *reader_rc;
	int i, rc;

	if (strlen(fifo) >= sizeof(toctou_path) || strlen(decoy) >= sizeof(toctou_path)) {
		errno = ENAMETOOLONG;
		return fail("toctou-read", fifo);
	}
	unlink(fifo);
	if (mkfifo(fifo, 0644))
		return fail("mkfifo", fifo);
	strcpy(toctou_path, fifo);
	if (pthread_create(&reader, NULL, toctou_reader, NULL))
		return fail("pthread_create", fifo);
	/* Asleep in the open, past the kernel's copy of the path (10 s at most). */
	for (i = 0; i < 10000 && (!toctou_tid || thread_state(toctou_tid) != 'S'); i++)
		usleep(1000);
	memset(toctou_path, 0, sizeof(toctou_path));
	strcpy(toctou_path, decoy);
	rc = spawn(args);
	if (rc) {
		/* The writer did not run: let the reader go all the same. */
		int w = open(fifo, O_WRONLY | O_NONBLOCK);

		if (w >= 0)
			close(w);
	}
	pthread_join(reader, &reader_rc);
	unlink(fifo);
	if (reader_rc)
		return fail("open", fifo);
	return rc;
}

/*
 * toctou-connect PORT DECOY: a connect whose address is rewritten while the
 * call waits in the kernel. A listener on PORT with a full accept queue
 * drops the SYN of a second thread's connect, which sleeps until its
 * retransmission; meanwhile this thread writes DECOY's port into the
 * address and accepts the first connection, so the retransmitted SYN gets
 * through. The kernel connected to PORT; the address the connect's exit
 * reads names DECOY.
 */
static struct sockaddr_in toctou_sa;

static void *toctou_connector(void *unused)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc;

	(void)unused;
	toctou_tid = (pid_t)syscall(SYS_gettid);
	if (fd < 0)
		return (void *)1L;
	rc = connect(fd, (struct sockaddr *)&toctou_sa, sizeof(toctou_sa));
	close(fd);
	return rc ? (void *)1L : NULL;
}

static int toctou_connect(const char *port, const char *decoy)
{
	struct sockaddr_in sa = loopback(port);
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0), first, c, i;
	pthread_t connector;
	void *rc;

	if (l < 0)
		return fail("socket", port);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Backlog 0: one established connection fills the accept queue. */
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 0))
		return fail("listen", port);
	first = socket(AF_INET, SOCK_STREAM, 0);
	if (first < 0 || connect(first, (struct sockaddr *)&sa, sizeof(sa)))
		return fail("connect", port);
	toctou_sa = sa;
	if (pthread_create(&connector, NULL, toctou_connector, NULL))
		return fail("pthread_create", port);
	for (i = 0; i < 10000 && (!toctou_tid || thread_state(toctou_tid) != 'S'); i++)
		usleep(1000);
	toctou_sa.sin_port = htons((unsigned short)atoi(decoy));
	c = accept(l, NULL, NULL);
	pthread_join(connector, &rc);
	if (c >= 0)
		close(c);
	close(first);
	close(l);
	if (rc) {
		errno = ECONNREFUSED;
		return fail("connect", port);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	const char *a = argc > 2 ? argv[2] : NULL;
	const char *b = argc > 3 ? argv[3] : NULL;
	int fd;

	if (!strcmp(cmd, "noop"))
		return 0;
	if (!strcmp(cmd, "memfd-exec"))
		return memfd_exec();
	if (!strcmp(cmd, "read") && a)
		return open_close(a, O_RDONLY);
	if (!strcmp(cmd, "toctou-read") && argc > 4)
		return toctou_read(a, b, argv[4]);
	if (!strcmp(cmd, "toctou-connect") && b)
		return toctou_connect(a, b);
	if (!strcmp(cmd, "fifo-write") && a) {
		/* Open only: the reader may have closed its end already (a write
		 * would then end this process with SIGPIPE). */
		fd = open(a, O_WRONLY);
		if (fd < 0)
			return fail("open", a);
		close(fd);
		return 0;
	}
	if (!strcmp(cmd, "write") && a)
		return open_close(a, O_WRONLY | O_CREAT | O_TRUNC);
	if (!strcmp(cmd, "append") && a)
		return open_close(a, O_WRONLY | O_APPEND);
	if (!strcmp(cmd, "trunc") && a)
		return open_close(a, O_WRONLY | O_TRUNC);
	if (!strcmp(cmd, "create") && a)
		return open_close(a, O_WRONLY | O_CREAT);
	if (!strcmp(cmd, "creat") && a) {
		/* The creat syscall itself: glibc's creat() is an openat. */
		fd = (int)syscall(SYS_creat, a, 0644);
		if (fd < 0)
			return fail("creat", a);
		close(fd);
		return 0;
	}
	if (!strcmp(cmd, "unlink") && a)
		return unlink(a) ? fail("unlink", a) : 0;
	if (!strcmp(cmd, "symlink") && b)
		return symlink(a, b) ? fail("symlink", b) : 0;
	if (!strcmp(cmd, "link") && b)
		return link(a, b) ? fail("link", b) : 0;
	if (!strcmp(cmd, "rename") && b)
		return rename(a, b) ? fail("rename", a) : 0;
	if (!strcmp(cmd, "chown") && a)
		return chown(a, 0, 0) ? fail("chown", a) : 0;
	if (!strcmp(cmd, "chmod") && b)
		return chmod(a, (mode_t)strtol(b, NULL, 8)) ? fail("chmod", a) : 0;
	if (!strcmp(cmd, "setns")) {
		/* Joining our own UTS namespace succeeds and changes nothing. */
		fd = open("/proc/self/ns/uts", O_RDONLY);
		if (fd < 0 || setns(fd, CLONE_NEWUTS) < 0)
			return fail("setns", "/proc/self/ns/uts");
		close(fd);
		return 0;
	}
	if (!strcmp(cmd, "unshare"))
		return unshare(CLONE_NEWUTS) ? fail("unshare", "CLONE_NEWUTS") : 0;
	if (!strcmp(cmd, "raw")) {
		fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
		if (fd < 0)
			return fail("socket", "SOCK_RAW");
		close(fd);
		return 0;
	}
	if (!strcmp(cmd, "serve") && a)	/* a loopback peer for the connect triggers */
		return serve(tcp_listener(a), a);
	if (!strcmp(cmd, "serve-at") && b)
		return serve(tcp_listener_at(inet_at(a, b)), a);
	if (!strcmp(cmd, "listen") && a) {
		fd = tcp_listener(a);
		if (fd < 0)
			return fail("listen", a);
		close(fd);
		return 0;
	}
	if (!strcmp(cmd, "connect") && a)
		return connect_to(loopback(a), a);
	if (!strcmp(cmd, "connect-to") && b)
		return connect_to(inet_at(a, b), a);
	if (!strcmp(cmd, "http-get") && b)
		return http_get(a, b);
	if (!strcmp(cmd, "ptrace"))
		return ptrace_attach();
	if (!strcmp(cmd, "traceme"))
		return ptrace(PTRACE_TRACEME, 0, NULL, NULL) ? fail("ptrace", "PTRACE_TRACEME") : 0;
	/* Prefixes: the rest of the command line runs after a pause, or as a user. */
	if (!strcmp(cmd, "after") && b) {
		sleep((unsigned int)atoi(a));
		return main(argc - 2, argv + 2);
	}
	if (!strcmp(cmd, "as-uid") && b) {
		uid_t id = (uid_t)atoi(a);

		if (setgid(id) || setuid(id))
			return fail("setuid", a);
		return main(argc - 2, argv + 2);
	}
	if (!strcmp(cmd, "spawn") && a)
		return spawn(argv + 2);
	if (!strcmp(cmd, "spawn-when") && b) {
		/* Waits (polling: no inotify in every guest) for the go file. */
		char done[4096];
		int rc;

		while (access(a, F_OK) != 0)
			usleep(20000);
		rc = spawn(argv + 3);
		/* FILE.done tells the trigger, which is not our parent, we are through. */
		snprintf(done, sizeof(done), "%s.done", a);
		fd = open(done, O_WRONLY | O_CREAT, 0644);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return usage();
}
