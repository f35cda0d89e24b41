/* Built twice by tests/tests/ptrace_ia32.rs, as a static i386 binary and
 * as a 64-bit one: the same open, exec, connect and socket options must
 * raise the same alerts, with the same values, under `peregrine run`
 * whatever the binary's word size. The calls are chosen for what the
 * tracer reads from the caller's memory: argv and envp (arrays of
 * pointers) and socket timeouts (struct timeval, whose longs are 4 bytes
 * in the old i386 layout). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* asm-generic/socket.h: the timeouts as __kernel_sock_timeval (2 x s64),
 * at every word size. */
#ifndef SO_SNDTIMEO_NEW
#define SO_SNDTIMEO_NEW 67
#endif

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	/* open: the path given. */
	int fd = open(argv[1], O_RDONLY);
	if (fd >= 0)
		close(fd);
	/* connect: a TCP connection to 127.0.0.1 on the port given. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons((unsigned short)atoi(argv[2])) };
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s >= 0) {
		connect(s, (struct sockaddr *)&to, sizeof(to));
		close(s);
	}
	/* UDP to 127.0.0.1: sendmsg (a msghdr and a two-entry iovec in the
	 * caller's layout) and sendto; the peer is only named by the call. */
	int d = socket(AF_INET, SOCK_DGRAM, 0);
	if (d >= 0) {
		char hello[] = "hello ", who[] = "ia32";
		struct iovec iov[2] = { { hello, 6 }, { who, 4 } };
		struct msghdr msg = { .msg_name = &to,
				      .msg_namelen = sizeof(to),
				      .msg_iov = iov,
				      .msg_iovlen = 2 };
		sendmsg(d, &msg, 0);
		sendto(d, "datagram", 8, 0, (struct sockaddr *)&to, sizeof(to));
		close(d);
	}
	/* Socket timeouts: SO_RCVTIMEO in the caller's struct timeval (the
	 * _OLD option), read back with getsockopt, and SO_SNDTIMEO_NEW, whose
	 * value is 2 x s64 even for a 32-bit caller. */
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	if (u >= 0) {
		struct timeval rcv = { .tv_sec = 3, .tv_usec = 250000 };
		setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
		struct timeval back = { 0, 0 };
		socklen_t len = sizeof(back);
		getsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &back, &len);
		int64_t snd[2] = { 5, 125000 };
		setsockopt(u, SOL_SOCKET, SO_SNDTIMEO_NEW, snd, sizeof(snd));
		close(u);
	}
	/* exec: /bin/true with several arguments and its own environment, in
	 * a child; then one that fails, whose argv and envp the tracer reads
	 * from the caller's memory. */
	pid_t child = fork();
	if (child == 0) {
		char *args[] = { "true", "alpha", "beta gamma", "delta", NULL };
		char *env[] = { "PGIA_MARK=ia32-probe", "PGIA_TWO=2", NULL };
		execve("/bin/true", args, env);
		_exit(127);
	}
	int status = 0;
	if (child > 0)
		waitpid(child, &status, 0);
	char *missing[] = { "pgia-missing", "one", "two words", "three", NULL };
	char *missing_env[] = { "PGIA_FAILED=yes", "PGIA_N=3", NULL };
	execve("/nonexistent/pgia-missing", missing, missing_env);
	return 0;
}
