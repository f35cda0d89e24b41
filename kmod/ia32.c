// SPDX-License-Identifier: GPL-2.0-only
/*
 * ia32.c - a 32-bit task's syscalls as x86-64 ones.
 *
 * syscall_get_arguments() already hands back an i386 call's six arguments
 * (ebx, ecx, edx, esi, edi, ebp) in call order, so most calls only need
 * their number translated (ia32_table.c). A few need more:
 *
 * socketcall(call, args): one i386 syscall for every socket call. Its
 *   arguments are an array of 32-bit words in user memory; send and recv
 *   are sendto and recvfrom without an address.
 * _llseek(fd, offset_high, offset_low, result, whence): the offset comes
 *   in two halves.
 * mmap (the old one): its six arguments are a structure in user memory.
 * umount(name): umount2(name, 0).
 * The *_time64 calls and sendfile64 are reported as the call they extend,
 *   but their timespec (or offset) is the 64-bit one: compat_wide says so.
 */
#include <linux/net.h>
#include <asm/unistd.h>
#include "peregrine.h"
#include "compat.h"
#include "ia32.h"

/* The x86-64 syscall of each SYS_* socketcall code, and its argument count. */
static const struct {
	u16 nr;
	u8 nargs;
} pg_socketcalls[] = {
	[SYS_SOCKET]      = { __NR_socket, 3 },
	[SYS_BIND]        = { __NR_bind, 3 },
	[SYS_CONNECT]     = { __NR_connect, 3 },
	[SYS_LISTEN]      = { __NR_listen, 2 },
	[SYS_ACCEPT]      = { __NR_accept, 3 },
	[SYS_GETSOCKNAME] = { __NR_getsockname, 3 },
	[SYS_GETPEERNAME] = { __NR_getpeername, 3 },
	[SYS_SOCKETPAIR]  = { __NR_socketpair, 4 },
	[SYS_SEND]        = { __NR_sendto, 4 },
	[SYS_RECV]        = { __NR_recvfrom, 4 },
	[SYS_SENDTO]      = { __NR_sendto, 6 },
	[SYS_RECVFROM]    = { __NR_recvfrom, 6 },
	[SYS_SHUTDOWN]    = { __NR_shutdown, 2 },
	[SYS_SETSOCKOPT]  = { __NR_setsockopt, 5 },
	[SYS_GETSOCKOPT]  = { __NR_getsockopt, 5 },
	[SYS_SENDMSG]     = { __NR_sendmsg, 3 },
	[SYS_RECVMSG]     = { __NR_recvmsg, 3 },
	[SYS_ACCEPT4]     = { __NR_accept4, 4 },
	[SYS_RECVMMSG]    = { __NR_recvmmsg, 5 },
	[SYS_SENDMMSG]    = { __NR_sendmmsg, 4 },
};

#define PG_IA32_SOCKETCALL 102
#define PG_IA32_MMAP_OLD   90
#define PG_IA32_UMOUNT     22
#define PG_IA32_LLSEEK     140
#define PG_IA32_SENDFILE64 239

/* Whether an i386 call passes a 64-bit timespec or offset where the call it
 * is reported as (the x86-64 one of the same name) has a compat one. */
static bool pg_ia32_wide(long nr32)
{
	switch (nr32) {
	case PG_IA32_SENDFILE64:
	case 403 ... 423:	/* clock_gettime64 .. sched_rr_get_interval_time64 */
		return true;
	default:
		return false;
	}
}

static long socketcall_nr(unsigned long call)
{
	if (call >= ARRAY_SIZE(pg_socketcalls) || !pg_socketcalls[call].nr)
		return -1;
	return pg_socketcalls[call].nr;
}

long pg_ia32_nr(long nr32, struct pt_regs *regs)
{
	if (nr32 == PG_IA32_SOCKETCALL)
		return socketcall_nr(regs->bx);    /* the call code is its first argument */
	if (nr32 < 0 || nr32 >= PG_IA32_NR_MAX)
		return -1;
	return (long)pg_ia32_to_x64_table[nr32] - 1;
}

static bool socketcall_args(struct pg_syscall_ctx *ctx)
{
	unsigned long call = ctx->args[0];
	u32 words[6] = {};
	unsigned int i;

	if (socketcall_nr(call) < 0 ||
	    pg_copy_from_user(words, (const void __user *)ctx->args[1],
			      pg_socketcalls[call].nargs * sizeof(u32)))
		return false;
	for (i = 0; i < 6; i++)
		ctx->args[i] = words[i];
	/* send/recv have no address: sendto/recvfrom with a null one. */
	if (call == SYS_SEND || call == SYS_RECV)
		ctx->args[4] = ctx->args[5] = 0;
	return true;
}

bool pg_ia32_fix_args(struct pg_syscall_ctx *ctx, long nr32)
{
	ctx->compat = true;
	ctx->compat_wide = pg_ia32_wide(nr32);
	switch (nr32) {
	case PG_IA32_SOCKETCALL:
		return socketcall_args(ctx);
	case PG_IA32_MMAP_OLD: {
		u32 words[6];
		unsigned int i;

		if (pg_copy_from_user(words, (const void __user *)ctx->args[0], sizeof(words)))
			return false;
		for (i = 0; i < 6; i++)
			ctx->args[i] = words[i];
		return true;
	}
	case PG_IA32_UMOUNT:
		ctx->args[1] = 0;
		return true;
	case PG_IA32_LLSEEK:
		ctx->args[1] = ((u64)ctx->args[1] << 32) | (u32)ctx->args[2];
		ctx->args[2] = ctx->args[4];
		return true;
	default:
		return true;
	}
}
