/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ia32.h - 32-bit (i386) syscalls, reported as the x86-64 syscalls they
 * stand for.
 */
#ifndef PG_IA32_H
#define PG_IA32_H

#include "peregrine.h"

#define PG_IA32_NR_MAX 512u
/* x86-64 number + 1 of each i386 number; 0: none (ia32_table.c, generated). */
extern const u16 pg_ia32_to_x64_table[PG_IA32_NR_MAX];

/* The x86-64 number an i386 syscall is reported as, or -1 (ia32.c). */
long pg_ia32_nr(long nr32, struct pt_regs *regs);

/*
 * Rewrites a 32-bit call's arguments (as syscall_get_arguments() read
 * them) into those of the x86-64 call it is reported as: socketcall's are
 * read from user memory; the calls whose i386 arguments are laid out
 * differently are reordered. False when they cannot be read (the call is
 * then not reported).
 */
bool pg_ia32_fix_args(struct pg_syscall_ctx *ctx, long nr32);

#endif /* PG_IA32_H */
