/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * compat.h - every kernel-version difference peregrine.ko cares about.
 *
 * The rest of the module is written against one idealised kernel API;
 * each shim below names the release that changed things. Supported: the
 * Debian 5.10, 6.1 and 6.12 kernels (and anything in between).
 */
#ifndef PG_COMPAT_H
#define PG_COMPAT_H

#include <linux/version.h>
#include <linux/device.h>
#include <linux/mm.h>
#include <linux/uaccess.h>
#include <linux/net.h>
#include <linux/tracepoint.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/pid_namespace.h>
#include <asm/syscall.h>

/* 6.4 dropped the owner argument of class_create(). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define pg_class_create(name) class_create(name)
#else
#define pg_class_create(name) class_create(THIS_MODULE, name)
#endif

/* 6.3 made vma->vm_flags read-only behind helpers. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
static inline void pg_vma_set_flags(struct vm_area_struct *vma, unsigned long set,
				    unsigned long clear)
{
	vm_flags_mod(vma, set, clear);
}
#else
static inline void pg_vma_set_flags(struct vm_area_struct *vma, unsigned long set,
				    unsigned long clear)
{
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
}
#endif

/*
 * Copying from user memory inside a tracepoint probe must never sleep or
 * take a page fault that would: copy_from_user_nofault (5.8+) returns an
 * error instead. Older kernels are not supported.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 8, 0)
#error "peregrine.ko needs Linux 5.8 or later (copy_from_user_nofault)"
#endif

static inline long pg_copy_from_user(void *dst, const void __user *src, size_t n)
{
	return copy_from_user_nofault(dst, src, n);
}

/*
 * strncpy_from_user_nofault is not exported to modules on every kernel
 * (6.12 lacks it); strncpy_from_user with page faults disabled fails on a
 * fault instead of sleeping, which is all we need.
 */
static inline long pg_strncpy_from_user(char *dst, const void __user *src, long n)
{
	long ret;

	pagefault_disable();
	ret = strncpy_from_user(dst, src, n);
	pagefault_enable();
	return ret;
}

/* The six syscall arguments, as saved at syscall entry (x86-64 only). */
static inline void pg_syscall_args(struct task_struct *task, struct pt_regs *regs,
				   unsigned long args[6])
{
	syscall_get_arguments(task, regs, args);
}

/* Time namespaces (5.6) do not affect CLOCK_REALTIME: ktime_get_real_ns is fine. */

/* 6.3 turned kernel_cap_t from two u32 words into one u64. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
static inline u64 pg_cap_u64(kernel_cap_t c)
{
	return c.val;
}
#else
static inline u64 pg_cap_u64(kernel_cap_t c)
{
	return ((u64)c.cap[1] << 32) | c.cap[0];
}
#endif

/* 6.6 hid i_ctime behind accessors, 6.7 did the same to i_mtime. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
static inline u64 pg_inode_ctime_ns(struct inode *inode)
{
	struct timespec64 ts = inode_get_ctime(inode);

	return timespec64_to_ns(&ts);
}
static inline u64 pg_inode_mtime_ns(struct inode *inode)
{
	struct timespec64 ts = inode_get_mtime(inode);

	return timespec64_to_ns(&ts);
}
#else
static inline u64 pg_inode_ctime_ns(struct inode *inode)
{
	struct timespec64 ts = inode->i_ctime;

	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}
static inline u64 pg_inode_mtime_ns(struct inode *inode)
{
	struct timespec64 ts = inode->i_mtime;

	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}
#endif

/* 5.11 dropped the error out-parameter of sock_from_file(). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 11, 0)
#define pg_sock_from_file(file) sock_from_file(file)
#else
static inline struct socket *pg_sock_from_file(struct file *file)
{
	int err;

	return sock_from_file(file, &err);
}
#endif

/*
 * Tracepoint probe prototypes. sched_process_exit gained a group_dead
 * argument in 6.16; the kernels supported here all have the old one.
 */
#define PG_SCHED_EXIT_PROTO void *data, struct task_struct *p
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 16, 0)
#error "sched_process_exit has a new prototype (group_dead): add it here"
#endif

#endif /* PG_COMPAT_H */
