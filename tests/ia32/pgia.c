/* Built twice by tests/tests/ptrace_ia32.rs, as a static i386 binary and
 * as a 64-bit one: the same open, exec and connect must raise the same
 * alerts under `peregrine run` whatever the binary's word size. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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
	/* exec: /bin/true, in a child. */
	pid_t child = fork();
	if (child == 0) {
		char *args[] = { "true", NULL };
		execv("/bin/true", args);
		_exit(127);
	}
	int status = 0;
	if (child > 0)
		waitpid(child, &status, 0);
	return 0;
}
