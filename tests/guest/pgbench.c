// SPDX-License-Identifier: GPL-2.0-only
/*
 * pgbench - cost of syscalls in the guest, for scripts/kernel-lab bench.
 * Prints ns per iteration of a getppid loop and of an open+read+close
 * loop. Under TCG only ratios within one boot mean anything.
 *
 *   pgbench [GETPPID_ITERATIONS [LABEL [OPEN_READ_CLOSE_ITERATIONS]]]
 *
 * The open+read+close count defaults to a quarter of the getppid count.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double ns_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000, i;
	const char *label = argc > 2 ? argv[2] : "run";
	long orc = argc > 3 ? atol(argv[3]) : n / 4;
	double start, mid, end;
	char buf[64];

	start = ns_now();
	for (i = 0; i < n; i++)
		getppid();
	mid = ns_now();
	if (n <= 0 || orc <= 0)
		return fprintf(stderr, "pgbench: iteration counts must be positive\n"), 2;
	for (i = 0; i < orc; i++) {
		int fd = open("/bench-file", O_RDONLY);

		if (fd < 0 || read(fd, buf, sizeof(buf)) < 0)
			return perror("/bench-file"), 1;
		close(fd);
	}
	end = ns_now();
	printf("PGBENCH %s getppid_ns=%.0f open_read_close_ns=%.0f\n", label,
	       (mid - start) / n, (end - mid) / orc);
	return 0;
}
