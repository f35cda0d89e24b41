// SPDX-License-Identifier: GPL-2.0-only
/*
 * pgscap - records what Falco's own kernel module (scap.ko) writes while
 * one program runs, for the differential test against peregrine.ko.
 *
 *   pgscap OUT -- PROG ARGS
 *
 * The module is the one loaded under the name Debian's package gives it
 * (scap) or the one Falco's own build gives it (falco); its devices are
 * /dev/NAME0..N-1. Opens every /dev/NAMEN, maps its ring, enables the syscall enter/exit
 * and process-exit tracepoints and every syscall, then runs PROG and keeps
 * draining until it has exited. OUT gets the records as they lay in the
 * rings (header, parameter lengths, parameters), ring after ring: the same
 * layout `pgcheck capture` saves for peregrine.ko, so one comparer reads
 * both. Prints "pgscap: events=N drops_buffer=N drops_pf=N".
 *
 * The ring, as the module's ppm_ringbuffer.h and its mmap handler define
 * it: a page of counters (head and tail are u32 offsets into the data,
 * then n_evts, n_drops_buffer, the per-category drop counters, n_drops_pf:
 * 14 categories up to driver API 8 (scap 0.20.0 is 8.0.3), 10 from API 9
 * on, where the enter-event categories went with the enter events),
 * and the data mapped twice in a row so that a record crossing the end
 * reads as one piece. Written from those facts; nothing of Falco is built
 * into this program.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CPUS 256
#define SCAP_IOCTL_ENABLE_SYSCALL _IO('s', 29)
#define SCAP_IOCTL_ENABLE_TP _IO('s', 31)
#define SCAP_IOCTL_DISABLE_TP _IO('s', 32)
#define SCAP_IOCTL_GET_API_VERSION _IO('s', 24)
#define SCAP_SYSCALL_TABLE_SIZE 512
#define SCAP_HDR_LEN 26u
/* Tracepoints by the module's numbering: sys_enter, sys_exit,
 * sched_process_exit and sched_process_exec. Current modules (driver API 9
 * on) write the exit of a successful execve from sched_process_exec only,
 * their sys_exit skips it; scap 0.20.0 uses that tracepoint on arm64 only
 * (on x86-64 enabling it does nothing). */
#define TP_SCHED_PROC_EXEC 8
static const int tracepoints[] = { 0, 1, 2, TP_SCHED_PROC_EXEC };

struct scap_info {
	volatile uint32_t head;
	volatile uint32_t tail;
	volatile uint64_t n_evts;
	volatile uint64_t n_drops_buffer;
	/* Then the categories and n_drops_pf: see drop_categories. */
	volatile uint64_t n_drops_rest[15];
};

struct ring {
	int fd;
	struct scap_info *info;
	const uint8_t *data;
};

static struct ring rings[MAX_CPUS];
static int nrings;
static uint32_t ring_size;
static const char *module_name;
static int drop_categories = 14;
static uint8_t *store;
static size_t store_len, store_cap;

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void keep(const uint8_t *p, size_t n)
{
	if (store_len + n > store_cap) {
		store_cap = (store_len + n) * 2 + (1 << 20);
		store = realloc(store, store_cap);
		if (!store)
			die("realloc");
	}
	memcpy(store + store_len, p, n);
	store_len += n;
}

static uint32_t read_ring_size(void)
{
	static const char *const names[] = { "scap", "falco" };
	char path[96];
	unsigned long v = 0;
	FILE *f = NULL;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]) && !f; i++) {
		snprintf(path, sizeof(path), "/sys/module/%s/parameters/g_buffer_bytes_dim", names[i]);
		f = fopen(path, "r");
		module_name = names[i];
	}
	if (!f) {
		fprintf(stderr, "pgscap: no scap or falco module loaded\n");
		exit(2);
	}
	if (fscanf(f, "%lu", &v) != 1 || v == 0 || v > (1ul << 31))
		die(path);
	fclose(f);
	return (uint32_t)v;
}

static void open_rings(void)
{
	long page = sysconf(_SC_PAGESIZE);
	char path[64];
	int cpu;

	ring_size = read_ring_size();
	for (cpu = 0; cpu < MAX_CPUS; cpu++) {
		struct ring *r = &rings[cpu];
		void *m;

		snprintf(path, sizeof(path), "/dev/%s%d", module_name, cpu);
		r->fd = open(path, O_RDWR | O_CLOEXEC);
		if (r->fd < 0) {
			if (errno == ENOENT)
				break;
			die(path);
		}
		m = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
		if (m == MAP_FAILED)
			die("mmap info");
		r->info = m;
		m = mmap(NULL, 2ul * ring_size, PROT_READ, MAP_SHARED, r->fd, 0);
		if (m == MAP_FAILED)
			die("mmap data");
		r->data = m;
	}
	nrings = cpu;
	if (nrings == 0) {
		fprintf(stderr, "pgscap: no /dev/%s0\n", module_name);
		exit(2);
	}
	{
		uint64_t api = 0;

		if (ioctl(rings[0].fd, SCAP_IOCTL_GET_API_VERSION, &api) == 0 && (api >> 44) >= 9)
			drop_categories = 10;
	}
}

/* Saves every record in [tail, head) and hands the space back. */
static void drain(struct ring *r)
{
	uint32_t head = __atomic_load_n(&r->info->head, __ATOMIC_ACQUIRE);
	uint32_t tail = r->info->tail;
	uint32_t avail = head >= tail ? head - tail : ring_size - tail + head;
	uint32_t off = 0;

	while (off + SCAP_HDR_LEN <= avail) {
		const uint8_t *rec = r->data + tail + off;
		uint32_t len;

		memcpy(&len, rec + 16, sizeof(len));
		if (len < SCAP_HDR_LEN || len > avail - off) {
			fprintf(stderr, "pgscap: corrupt record at %u: len %u\n", tail + off, len);
			exit(2);
		}
		keep(rec, len);
		off += len;
	}
	__atomic_store_n(&r->info->tail, (tail + off) % ring_size, __ATOMIC_RELEASE);
}

static void drain_all(void)
{
	int i;

	for (i = 0; i < nrings; i++)
		drain(&rings[i]);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	uint64_t evts = 0, drops = 0, drops_pf = 0;
	int go[2], status, i;
	unsigned long sc;
	pid_t child;
	FILE *f;

	if (argc < 4 || strcmp(argv[2], "--"))
		return fprintf(stderr, "usage: pgscap OUT -- PROG ARGS\n"), 2;
	open_rings();
	if (pipe2(go, O_CLOEXEC))
		die("pipe2");
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		char x;

		if (read(go[0], &x, 1) != 1)
			_exit(126);
		execvp(argv[3], argv + 3);
		_exit(127);
	}
	close(go[0]);
	/* Out-of-range numbers are refused (EINVAL): every one the table knows is on. */
	for (sc = 0; sc < SCAP_SYSCALL_TABLE_SIZE; sc++)
		ioctl(rings[0].fd, SCAP_IOCTL_ENABLE_SYSCALL, sc);
	for (i = 0; i < (int)(sizeof(tracepoints) / sizeof(tracepoints[0])); i++)
		if (ioctl(rings[0].fd, SCAP_IOCTL_ENABLE_TP, tracepoints[i]) &&
		    tracepoints[i] != TP_SCHED_PROC_EXEC)
			die("enable tracepoint");
	if (write(go[1], "x", 1) != 1)
		die("write go");
	close(go[1]);
	for (;;) {
		pid_t w = waitpid(child, &status, WNOHANG);

		drain_all();
		if (w == child)
			break;
		if (w < 0)
			die("waitpid");
		sleep_ms(2);
	}
	/* The last records of the child's exit may still be on their way. */
	sleep_ms(50);
	for (i = 0; i < (int)(sizeof(tracepoints) / sizeof(tracepoints[0])); i++)
		ioctl(rings[0].fd, SCAP_IOCTL_DISABLE_TP, tracepoints[i]);
	drain_all();
	for (i = 0; i < nrings; i++) {
		evts += rings[i].info->n_evts;
		drops += rings[i].info->n_drops_buffer;
		drops_pf += rings[i].info->n_drops_rest[drop_categories];
	}
	f = fopen(argv[1], "w");
	if (!f || fwrite(store, 1, store_len, f) != store_len || fclose(f))
		die(argv[1]);
	printf("pgscap: events=%llu drops_buffer=%llu drops_pf=%llu bytes=%zu\n",
	       (unsigned long long)evts, (unsigned long long)drops,
	       (unsigned long long)drops_pf, store_len);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
