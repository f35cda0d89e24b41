// SPDX-License-Identifier: GPL-2.0-only
/*
 * main.c - peregrine.ko: syscall events for the Peregrine runtime security
 * engine, written in Falco's scap layout into per-CPU rings that userspace
 * maps without copies. This file holds the module parameters, load and
 * unload; see peregrine_abi.h for the userspace contract.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/log2.h>
#include "peregrine.h"

unsigned int pg_buffer_size = PG_DEFAULT_BUFFER_SIZE;
module_param_named(buffer_size, pg_buffer_size, uint, 0444);
MODULE_PARM_DESC(buffer_size, "Ring size per CPU in bytes: a power of two, at least "
		 "8192 and a whole number of pages, at most 1 GiB (default 8 MiB)");

unsigned int pg_snaplen = PG_DEFAULT_SNAPLEN;
module_param_named(snaplen, pg_snaplen, uint, 0444);
MODULE_PARM_DESC(snaplen, "Bytes of read/write buffers copied into events at load "
		 "(default 80, at most 65000; PG_IOCTL_SET_SNAPLEN changes it)");

struct pg_settings pg_settings;

/* Capture stopped, every syscall of interest, no sampling, snaplen from the parameter. */
void pg_settings_reset(void)
{
	WRITE_ONCE(pg_settings.capturing, false);
	WRITE_ONCE(pg_settings.snaplen, pg_snaplen);
	WRITE_ONCE(pg_settings.sampling_ratio, 0);
	bitmap_fill(pg_settings.interest, PG_SYSCALL_NR_MAX);
}

static int __init pg_init(void)
{
	int err;

	if (!is_power_of_2(pg_buffer_size) || pg_buffer_size < PG_MIN_BUFFER_SIZE ||
	    pg_buffer_size > PG_MAX_BUFFER_SIZE || pg_buffer_size < PAGE_SIZE) {
		pr_err("peregrine: buffer_size=%u is not a power of two in [%u, %u]\n",
		       pg_buffer_size, PG_MIN_BUFFER_SIZE, PG_MAX_BUFFER_SIZE);
		return -EINVAL;
	}
	if (pg_snaplen > PG_MAX_SNAPLEN) {
		pr_err("peregrine: snaplen=%u is above %u\n", pg_snaplen, PG_MAX_SNAPLEN);
		return -EINVAL;
	}
	pg_settings_reset();

	err = pg_devices_init();
	if (err)
		return err;
	err = pg_probes_init();
	if (err) {
		pg_devices_exit();
		return err;
	}
	pr_info("peregrine: loaded, API %u.%u.%u, %u bytes per CPU\n", PG_API_VERSION_MAJOR,
		PG_API_VERSION_MINOR, PG_API_VERSION_PATCH, pg_buffer_size);
	return 0;
}

static void __exit pg_exit(void)
{
	/* Probes first: after this no one writes to a ring. */
	pg_probes_exit();
	pg_devices_exit();
	pr_info("peregrine: unloaded\n");
}

module_init(pg_init);
module_exit(pg_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("The Peregrine authors");
MODULE_DESCRIPTION("Syscall events in Falco's scap layout over per-CPU mmap'ed rings");
MODULE_VERSION("1.0.0");
