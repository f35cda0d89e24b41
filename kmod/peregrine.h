/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * peregrine.h - what the files of peregrine.ko share with each other.
 * The userspace contract is include/peregrine_abi.h; nothing here is ABI.
 */
#ifndef PEREGRINE_H
#define PEREGRINE_H

#include <linux/types.h>
#include <linux/percpu.h>
#include <linux/mutex.h>
#include <linux/irq_work.h>
#include <linux/wait.h>
#include "include/peregrine_abi.h"

/* Module parameters (main.c). */
extern unsigned int pg_buffer_size;
extern unsigned int pg_snaplen;

/* Capture settings, changed by ioctls, read by the probes without locks. */
struct pg_settings {
	bool capturing;
	u32 snaplen;
	u32 sampling_ratio;            /* 0 or 1: off */
	unsigned long interest[BITS_TO_LONGS(PG_SYSCALL_NR_MAX)];
};
extern struct pg_settings pg_settings;
/* Back to the settings of a fresh load (main.c); called when the last device closes. */
void pg_settings_reset(void);

/* ---- ring.c: one per-CPU ring ---- */
struct pg_ring {
	struct pg_ring_info *info;     /* the shared page, kernel address */
	struct page *info_page;
	struct page **pages;           /* 2 * npages entries: the data pages twice */
	unsigned int npages;
	u8 *data;                      /* vmap of pages[]: 2 * size bytes */
	u64 size;
	u64 head;                      /* the kernel's own copy: never read back from userspace */
	/* Waking a consumer blocked in poll() (see pg_ring_wake_if_asked). */
	wait_queue_head_t waitq;
	struct irq_work wake_work;
	unsigned long wake_pending;    /* bit 0: a wake-up is queued since the consumer last armed */
};

struct pg_ring *pg_ring_alloc(u64 size);
void pg_ring_free(struct pg_ring *ring);
int pg_ring_mmap(struct pg_ring *ring, struct vm_area_struct *vma);
struct file;
struct poll_table_struct;
/* The device's poll(): readable once the consumer's wake_bytes are waiting. */
__poll_t pg_ring_poll(struct pg_ring *ring, struct file *file, struct poll_table_struct *wait);

/*
 * A record being built in place, at the ring's head. Parameters are
 * appended in order; when one does not fit the writer remembers it and
 * pg_record_commit() drops the whole record. User memory that cannot be
 * read (a bad pointer, an unmapped or never-touched page) leaves only that
 * parameter empty: the event is still written, and the fault is counted.
 */
struct pg_record {
	struct pg_ring *ring;
	u8 *base;        /* where the record starts, contiguous thanks to the double map */
	u32 limit;       /* bytes free in the ring from base */
	u32 off;         /* bytes of the record so far */
	u16 type;
	u16 nparams;
	u16 cur;         /* parameters written */
	u16 faults;      /* parameters left empty: user memory unreadable */
	bool overflow;
};

/* Starts a record on the ring of this CPU; false if no ring/capture. */
bool pg_record_begin(struct pg_record *rec, struct pg_ring *ring, u16 type, u16 nparams);
void pg_record_commit(struct pg_record *rec, u64 tid);

void pg_put_bytes(struct pg_record *rec, const void *src, u32 len);
void pg_put_empty(struct pg_record *rec);
static inline void pg_put_u8(struct pg_record *rec, u8 v) { pg_put_bytes(rec, &v, 1); }
static inline void pg_put_u16(struct pg_record *rec, u16 v) { pg_put_bytes(rec, &v, 2); }
static inline void pg_put_u32(struct pg_record *rec, u32 v) { pg_put_bytes(rec, &v, 4); }
static inline void pg_put_u64(struct pg_record *rec, u64 v) { pg_put_bytes(rec, &v, 8); }
static inline void pg_put_s64(struct pg_record *rec, s64 v) { pg_put_bytes(rec, &v, 8); }
void pg_put_kstr(struct pg_record *rec, const char *s);
/* A NUL-terminated string from user memory, at most max bytes with the NUL. */
void pg_put_ustr(struct pg_record *rec, unsigned long uptr, u32 max);
/* Up to len bytes of user memory, as is. */
void pg_put_ubytes(struct pg_record *rec, unsigned long uptr, u32 len);
/* Reserves len bytes of a parameter and returns where to write them. */
u8 *pg_put_reserve(struct pg_record *rec, u32 len);
/* The next parameter is empty because user memory could not be read. */
void pg_put_fault(struct pg_record *rec);
/* Takes back the last parameter (len bytes) and leaves it empty as a fault. */
void pg_unput_fault(struct pg_record *rec, u32 len);

/* ---- device.c ---- */
int pg_devices_init(void);
void pg_devices_exit(void);
/* The ring of the current CPU if its device is open; call with preemption off. */
struct pg_ring *pg_this_cpu_ring(void);

/* ---- probes.c ---- */
int pg_probes_init(void);
void pg_probes_exit(void);

/* ---- fillers.c ---- */
struct pg_syscall_ctx {
	struct pt_regs *regs;
	long nr;                 /* x86-64 number, a 32-bit caller's translated */
	long ret;
	unsigned long args[6];   /* in the x86-64 order of the call */
	bool compat;             /* a 32-bit caller: its structures use i386 layouts */
	bool compat_wide;        /* ...but this call's time or offset is 64-bit:
				  * the *_time64 calls (2 x s64 timespec) and
				  * sendfile64 (loff_t) */
};
/* Writes the event(s) of one syscall exit (or enter, for the few with both). */
void pg_fill_sys_enter(struct pg_ring *ring, struct pg_syscall_ctx *ctx);
void pg_fill_sys_exit(struct pg_ring *ring, struct pg_syscall_ctx *ctx);
void pg_fill_procexit(struct pg_ring *ring, struct task_struct *task);
void pg_fill_kernel_fork(struct pg_ring *ring, struct task_struct *child);
/* Whether a syscall is process lifecycle (never sampled away). */
bool pg_syscall_never_drop(long nr);
bool pg_syscall_has_enter_event(long nr);
struct linux_binprm;
void pg_fill_sched_exec(struct pg_ring *ring, struct linux_binprm *bprm);
/* Whether the syscall in progress on this task is execveat (probes.c). */
/* Falco's syscall code (ppm_sc) of an x86-64 syscall number (ppm_sc.c). */
u16 pg_ppm_sc_of(long nr);

#endif /* PEREGRINE_H */
