// SPDX-License-Identifier: GPL-2.0-only
/*
 * probes.c - the tracepoints peregrine.ko listens to.
 *
 * sys_enter / sys_exit: every syscall of every task (raw tracepoints, so
 *   each costs one bit test when the syscall is not of interest). A 32-bit
 *   task's syscalls are reported as the x86-64 ones they stand for (ia32.c).
 * sched_process_exec: a successful execve, while the binprm (file name)
 *   is still at hand and the new memory map is installed; also the execs
 *   the kernel does itself (usermode helpers), which no syscall reports.
 * sched_process_fork: forks by kernel threads, which no sys_exit reports
 *   (a task's own forks are written when its clone returns).
 * sched_process_exit: a task going away (procexit).
 *
 * The tracepoints are not exported symbols: they are looked up by name.
 * A probe runs with preemption disabled and writes to its own CPU's ring;
 * a per-CPU flag catches re-entry (an NMI or a nested probe on the same
 * CPU) and counts it instead of corrupting the record being built.
 */
#include <linux/module.h>
#include <linux/tracepoint.h>
#include <linux/binfmts.h>
#include <linux/sched.h>
#include <linux/sched/task_stack.h>
#include <linux/string.h>
#include <asm/syscall.h>
#include "peregrine.h"
#include "compat.h"
#include "ia32.h"


static DEFINE_PER_CPU(int, pg_in_probe);
static DEFINE_PER_CPU(u32, pg_sample_counter);

/* Takes this CPU's ring if capture is on and the probe is not re-entered. */
static struct pg_ring *pg_probe_enter(void)
{
	struct pg_ring *ring;

	ring = pg_this_cpu_ring();
	if (!ring)
		return NULL;
	if (this_cpu_read(pg_in_probe)) {
		ring->info->n_preemptions++;
		return NULL;
	}
	this_cpu_write(pg_in_probe, 1);
	return ring;
}

static void pg_probe_leave(void)
{
	this_cpu_write(pg_in_probe, 0);
}

/* nr is an x86-64 number (a 32-bit caller's translated, see pg_reported_nr). */
static bool pg_syscall_wanted(long nr)
{
	if (!READ_ONCE(pg_settings.capturing))
		return false;
	if (nr < 0 || nr >= PG_SYSCALL_NR_MAX)
		return false;
	return test_bit(nr, pg_settings.interest);
}

/*
 * The x86-64 number a syscall is reported as: its own, or for a 32-bit
 * task the x86-64 call of the same meaning (-1: not reported). Cheap: no
 * user memory is read before the interest test.
 */
static long pg_reported_nr(struct pt_regs *regs, long nr)
{
	if (likely(!in_ia32_syscall()))
		return nr;
	return pg_ia32_nr(nr, regs);
}

/* The call's x86-64 number and arguments; false if they cannot be read. */
static bool pg_syscall_ctx_init(struct pg_syscall_ctx *ctx, struct pt_regs *regs,
				long nr, long native_nr, long ret)
{
	ctx->regs = regs;
	ctx->nr = nr;
	ctx->ret = ret;
	ctx->compat = false;
	ctx->compat_wide = false;
	pg_syscall_args(current, regs, ctx->args);
	if (in_ia32_syscall())
		return pg_ia32_fix_args(ctx, native_nr);
	return true;
}

/* Dropping mode: keep one syscall in sampling_ratio on this CPU. */
static bool pg_sampled_out(struct pg_ring *ring, long nr)
{
	u32 ratio = READ_ONCE(pg_settings.sampling_ratio);

	if (ratio <= 1 || pg_syscall_never_drop(nr))
		return false;
	if ((this_cpu_inc_return(pg_sample_counter) & (ratio - 1)) == 0)
		return false;
	ring->info->n_drops_sampling++;
	return true;
}

static void pg_sys_enter_probe(void *data, struct pt_regs *regs, long id)
{
	struct pg_syscall_ctx ctx;
	struct pg_ring *ring;
	long nr = pg_reported_nr(regs, id);

	if (!pg_syscall_has_enter_event(nr) || !pg_syscall_wanted(nr))
		return;
	preempt_disable_notrace();
	ring = pg_probe_enter();
	if (ring) {
		if (pg_syscall_ctx_init(&ctx, regs, nr, id, 0))
			pg_fill_sys_enter(ring, &ctx);
		pg_probe_leave();
	}
	preempt_enable_notrace();
}

static void pg_sys_exit_probe(void *data, struct pt_regs *regs, long ret)
{
	struct pg_syscall_ctx ctx;
	struct pg_ring *ring;
	long native = syscall_get_nr(current, regs);
	long nr = pg_reported_nr(regs, native);

	if (!pg_syscall_wanted(nr))
		return;
	preempt_disable_notrace();
	ring = pg_probe_enter();
	if (ring) {
		if (!pg_sampled_out(ring, nr) &&
		    pg_syscall_ctx_init(&ctx, regs, nr, native, ret))
			pg_fill_sys_exit(ring, &ctx);
		pg_probe_leave();
	}
	preempt_enable_notrace();
}

static void pg_sched_exec_probe(void *data, struct task_struct *p, pid_t old_pid,
				struct linux_binprm *bprm)
{
	struct pg_ring *ring;

	/*
	 * The syscall number cannot tell execve from execveat here (x86's
	 * set_personality_64bit rewrote it to execve's), nor from the kernel
	 * exec'ing a usermode helper outside any syscall: either bit will do.
	 */
	if (!pg_syscall_wanted(__NR_execve) && !pg_syscall_wanted(__NR_execveat))
		return;
	preempt_disable_notrace();
	ring = pg_probe_enter();
	if (ring) {
		pg_fill_sched_exec(ring, bprm);
		pg_probe_leave();
	}
	preempt_enable_notrace();
}

static void pg_sched_fork_probe(void *data, struct task_struct *parent,
				struct task_struct *child)
{
	struct pg_ring *ring;

	if (!(current->flags & PF_KTHREAD) || !pg_syscall_wanted(__NR_clone))
		return;
	preempt_disable_notrace();
	ring = pg_probe_enter();
	if (ring) {
		pg_fill_kernel_fork(ring, child);
		pg_probe_leave();
	}
	preempt_enable_notrace();
}

static void pg_sched_exit_probe(PG_SCHED_EXIT_PROTO)
{
	struct pg_ring *ring;

	if (!READ_ONCE(pg_settings.capturing))
		return;
	preempt_disable_notrace();
	ring = pg_probe_enter();
	if (ring) {
		pg_fill_procexit(ring, p);
		pg_probe_leave();
	}
	preempt_enable_notrace();
}

struct pg_probe {
	const char *name;
	void *fn;
	struct tracepoint *tp;
	bool registered;
};

static struct pg_probe pg_probes[] = {
	{ .name = "sys_enter", .fn = pg_sys_enter_probe },
	{ .name = "sys_exit", .fn = pg_sys_exit_probe },
	{ .name = "sched_process_exec", .fn = pg_sched_exec_probe },
	{ .name = "sched_process_fork", .fn = pg_sched_fork_probe },
	{ .name = "sched_process_exit", .fn = pg_sched_exit_probe },
};

static void pg_find_tracepoint(struct tracepoint *tp, void *priv)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(pg_probes); i++)
		if (!strcmp(tp->name, pg_probes[i].name))
			pg_probes[i].tp = tp;
}

void pg_probes_exit(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(pg_probes); i++) {
		if (pg_probes[i].registered)
			tracepoint_probe_unregister(pg_probes[i].tp, pg_probes[i].fn, NULL);
		pg_probes[i].registered = false;
	}
	/* No probe may still be running our code when the module text goes. */
	tracepoint_synchronize_unregister();
}

int pg_probes_init(void)
{
	unsigned int i;
	int err;

	for_each_kernel_tracepoint(pg_find_tracepoint, NULL);
	for (i = 0; i < ARRAY_SIZE(pg_probes); i++) {
		if (!pg_probes[i].tp) {
			pr_err("peregrine: tracepoint %s not found\n", pg_probes[i].name);
			err = -ENOENT;
			goto fail;
		}
		err = tracepoint_probe_register(pg_probes[i].tp, pg_probes[i].fn, NULL);
		if (err) {
			pr_err("peregrine: cannot register on %s: %d\n", pg_probes[i].name, err);
			goto fail;
		}
		pg_probes[i].registered = true;
	}
	return 0;
fail:
	pg_probes_exit();
	return err;
}
