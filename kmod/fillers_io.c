// SPDX-License-Identifier: GPL-2.0-only
/*
 * fillers_io.c - data handed to the kernel as an iovec array (sendmsg,
 * recvmsg and their batched forms, process_vm_readv/writev).
 *
 * The array and the buffers it points to are read with the _nofault
 * helpers, one entry at a time: nothing is allocated, a bad pointer or a
 * page not yet touched only empties the parameter (and is counted). A
 * 32-bit caller's array is made of compat_iovec.
 */
#include <linux/compat.h>
#include <linux/uio.h>
#include "peregrine.h"
#include "compat.h"
#include "fillers.h"

/* Entry i of the array; false (and a fault counted) when it cannot be read. */
static bool iov_entry(struct pg_record *rec, const struct pg_iov_src *src, unsigned long i,
		      unsigned long *base, u64 *len)
{
#ifdef CONFIG_COMPAT
	if (src->compat) {
		struct compat_iovec c;

		if (pg_copy_from_user(&c, (const void __user *)(src->uiov + i * sizeof(c)), sizeof(c)))
			goto fault;
		*base = c.iov_base;
		*len = c.iov_len;
		return true;
	}
#endif
	{
		struct iovec v;

		if (pg_copy_from_user(&v, (const void __user *)(src->uiov + i * sizeof(v)), sizeof(v)))
			goto fault;
		*base = (unsigned long)v.iov_base;
		*len = v.iov_len;
		return true;
	}
fault:
	rec->faults++;
	return false;
}

/* The kernel refuses more entries than this; so do we, which bounds the loops. */
static unsigned long iov_count(const struct pg_iov_src *src)
{
	return min_t(unsigned long, src->count, UIO_MAXIOV);
}

u64 pg_iov_total(struct pg_record *rec, const struct pg_iov_src *src)
{
	unsigned long i, base;
	u64 len, total = 0;

	for (i = 0; i < iov_count(src); i++) {
		if (!iov_entry(rec, src, i, &base, &len))
			return 0;
		total += len;
	}
	return total;
}

void pg_put_iov_data(struct pg_record *rec, const struct pg_iov_src *src, u64 max)
{
	unsigned long i, base;
	u64 len;
	u32 want = min_t(u64, max, 0xffff), got = 0, n;
	u8 *p;

	if (!want || !src->uiov) {
		pg_put_empty(rec);
		return;
	}
	p = pg_put_reserve(rec, want);
	if (!p)
		return;
	for (i = 0; i < iov_count(src) && got < want; i++) {
		if (!iov_entry(rec, src, i, &base, &len))
			break;
		n = min_t(u64, len, want - got);
		if (n && pg_copy_from_user(p + got, (const void __user *)base, n)) {
			rec->faults++;
			break;
		}
		got += n;
	}
	if (got == want)
		return;
	/* Fewer bytes than reserved (short buffers or a fault): keep those. */
	rec->cur--;
	rec->off -= want;
	if (got)
		pg_put_reserve(rec, got);
	else
		pg_put_empty(rec);
}
