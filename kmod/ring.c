// SPDX-License-Identifier: GPL-2.0-only
/*
 * ring.c - the per-CPU ring buffer and the in-place record writer.
 *
 * The data pages are allocated one by one (no high-order allocation to
 * fail on a fragmented machine) and vmap'ed twice back to back, so the
 * kernel writes every record as one contiguous run even when it wraps
 * around the end of the ring. Userspace sees the same trick (see
 * pg_ring_mmap and the layout in peregrine_abi.h).
 */
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include "peregrine.h"
#include "compat.h"

/* Runs in hard-irq context on the producer's CPU, outside any probe. */
static void pg_ring_wake(struct irq_work *work)
{
	struct pg_ring *ring = container_of(work, struct pg_ring, wake_work);

	wake_up_interruptible(&ring->waitq);
}

struct pg_ring *pg_ring_alloc(u64 size)
{
	struct pg_ring *ring;
	unsigned int i;

	ring = kzalloc(sizeof(*ring), GFP_KERNEL);
	if (!ring)
		return NULL;
	ring->size = size;
	ring->npages = size >> PAGE_SHIFT;
	init_waitqueue_head(&ring->waitq);
	init_irq_work(&ring->wake_work, pg_ring_wake);

	ring->info_page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!ring->info_page)
		goto fail;
	ring->info = page_address(ring->info_page);
	ring->info->buffer_size = size;

	ring->pages = kvcalloc(2 * ring->npages, sizeof(*ring->pages), GFP_KERNEL);
	if (!ring->pages)
		goto fail;
	for (i = 0; i < ring->npages; i++) {
		ring->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!ring->pages[i])
			goto fail;
		ring->pages[ring->npages + i] = ring->pages[i];
	}
	ring->data = vmap(ring->pages, 2 * ring->npages, VM_MAP, PAGE_KERNEL);
	if (!ring->data)
		goto fail;
	return ring;

fail:
	pg_ring_free(ring);
	return NULL;
}

void pg_ring_free(struct pg_ring *ring)
{
	unsigned int i;

	if (!ring)
		return;
	/* The probes are gone (the caller waited for them); so must their wake-up be. */
	irq_work_sync(&ring->wake_work);
	if (ring->data)
		vunmap(ring->data);
	if (ring->pages) {
		/* Only the first copy owns the pages. */
		for (i = 0; i < ring->npages; i++)
			if (ring->pages[i])
				__free_page(ring->pages[i]);
		kvfree(ring->pages);
	}
	if (ring->info_page)
		__free_page(ring->info_page);
	kfree(ring);
}

/*
 * Maps [info page][data][data] into a shared mapping of exactly
 * PG_MMAP_LEN(size) bytes at offset 0. vm_insert_page takes its own page
 * references, so the pages outlive the ring until the mapping goes away.
 */
int pg_ring_mmap(struct pg_ring *ring, struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	unsigned long addr = vma->vm_start;
	unsigned int i;
	int err;

	if (vma->vm_pgoff != 0 || len != PG_MMAP_LEN(ring->size))
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED) || (vma->vm_flags & VM_EXEC))
		return -EINVAL;
	pg_vma_set_flags(vma, VM_DONTEXPAND | VM_DONTDUMP, VM_MAYEXEC);

	err = vm_insert_page(vma, addr, ring->info_page);
	if (err)
		return err;
	addr += PG_INFO_PAGE_SIZE;
	for (i = 0; i < 2 * ring->npages; i++, addr += PAGE_SIZE) {
		err = vm_insert_page(vma, addr, ring->pages[i]);
		if (err)
			return err;
	}
	return 0;
}

/*
 * The consumer arms a wake-up by storing wake_bytes, then blocks in poll().
 * Each wake-up it arms costs at most one irq_work, and none at all while it
 * reads (wake_bytes = 0). The wake-up cannot be done here: a probe may run
 * with scheduler locks held (sched_switch, sched_process_exit), where
 * wake_up() would deadlock, so it is deferred to irq_work as perf and the
 * BPF ring buffer do.
 *
 * No full barrier orders the head store before the wake_bytes load: a
 * record published while the consumer arms may go unnoticed, and the next
 * one, or the consumer's poll timeout, makes up for it (peregrine_abi.h).
 */
static inline void pg_ring_wake_if_asked(struct pg_ring *ring)
{
	u64 want = READ_ONCE(ring->info->wake_bytes);

	if (likely(!want))
		return;
	if (ring->head - READ_ONCE(ring->info->tail) < want)
		return;
	if (!test_and_set_bit(0, &ring->wake_pending))
		irq_work_queue(&ring->wake_work);
}

__poll_t pg_ring_poll(struct pg_ring *ring, struct file *file, poll_table *wait)
{
	struct pg_ring_info *info = ring->info;
	u64 want, used;

	poll_wait(file, &ring->waitq, wait);
	/*
	 * Arming: from here on the next record past wake_bytes queues a
	 * wake-up. The check below comes after, so a record published before
	 * it is either seen here or wakes us. The passes poll() makes after a
	 * wake-up do not re-arm: one wake-up per sleep is enough.
	 */
	if (!poll_does_not_wait(wait)) {
		clear_bit(0, &ring->wake_pending);
		smp_mb__after_atomic();
	}
	want = max_t(u64, READ_ONCE(info->wake_bytes), 1);
	used = smp_load_acquire(&info->head) - READ_ONCE(info->tail);
	return used >= want ? EPOLLIN | EPOLLRDNORM : 0;
}

bool pg_record_begin(struct pg_record *rec, struct pg_ring *ring, u16 type, u16 nparams)
{
	u64 tail = smp_load_acquire(&ring->info->tail);
	u64 used = ring->head - tail;

	rec->ring = ring;
	rec->type = type;
	rec->nparams = nparams;
	rec->cur = 0;
	rec->faults = 0;
	rec->overflow = false;
	/* A consumer that wrote nonsense into tail gets a full ring, nothing worse. */
	rec->limit = used > ring->size ? 0 : (u32)(ring->size - used);
	rec->base = ring->data + (ring->head & (ring->size - 1));
	rec->off = PG_EVENT_HDR_LEN + 2 * nparams;
	if (rec->off > rec->limit)
		rec->overflow = true;
	return true;
}

static inline void pg_set_len(struct pg_record *rec, u32 len)
{
	u16 l = len;

	if (rec->cur < rec->nparams && !rec->overflow)
		memcpy(rec->base + PG_EVENT_HDR_LEN + 2 * rec->cur, &l, 2);
	rec->cur++;
}

u8 *pg_put_reserve(struct pg_record *rec, u32 len)
{
	u8 *p = NULL;

	if (len > 0xffff)
		len = 0xffff;
	if (rec->off + len > rec->limit)
		rec->overflow = true;
	if (!rec->overflow)
		p = rec->base + rec->off;
	pg_set_len(rec, len);
	rec->off += len;
	return p;
}

void pg_put_bytes(struct pg_record *rec, const void *src, u32 len)
{
	u8 *p;

	len = min_t(u32, len, 0xffff);  /* a parameter length is a u16 */
	p = pg_put_reserve(rec, len);

	if (p)
		memcpy(p, src, len);
}

void pg_put_empty(struct pg_record *rec)
{
	pg_set_len(rec, 0);
}

void pg_put_kstr(struct pg_record *rec, const char *s)
{
	pg_put_bytes(rec, s, strnlen(s, 0xfffe) + 1);
}

void pg_put_ustr(struct pg_record *rec, unsigned long uptr, u32 max)
{
	long room, n, bound;

	if (!uptr) {
		pg_put_empty(rec);
		return;
	}
	room = rec->overflow ? 0 : (long)rec->limit - rec->off;
	if (room <= 0) {
		rec->overflow = true;
		pg_set_len(rec, 0);
		return;
	}
	/* Copy what there is room for; whether it all fitted shows below. */
	bound = min_t(long, room, max);
	n = pg_strncpy_from_user(rec->base + rec->off, (const void __user *)uptr, bound);
	if (n < 0) {
		pg_put_fault(rec);
		return;
	}
	if (n >= bound) {
		if (bound < max) {
			/* The ring ran out before the string did. */
			rec->overflow = true;
			pg_set_len(rec, 0);
			return;
		}
		/* Longer than the parameter may be: keep a terminated prefix. */
		n = bound - 1;
		rec->base[rec->off + n] = '\0';
	}
	pg_set_len(rec, n + 1);
	rec->off += n + 1;
}

void pg_put_ubytes(struct pg_record *rec, unsigned long uptr, u32 len)
{
	u8 *p;

	if (!uptr || !len) {
		pg_put_empty(rec);
		return;
	}
	len = min_t(u32, len, 0xffff);  /* a parameter length is a u16 */
	p = pg_put_reserve(rec, len);
	if (p && pg_copy_from_user(p, (const void __user *)uptr, len))
		pg_unput_fault(rec, len);
}

void pg_put_fault(struct pg_record *rec)
{
	rec->faults++;
	pg_set_len(rec, 0);
}

void pg_unput_fault(struct pg_record *rec, u32 len)
{
	rec->cur--;
	rec->off -= len;
	pg_put_fault(rec);
}

/*
 * Publishes the record, or drops it whole and counts why. The header goes
 * in last, then head moves with release ordering: a consumer that sees the
 * new head sees every byte of the record.
 */
void pg_record_commit(struct pg_record *rec, u64 tid)
{
	struct pg_ring *ring = rec->ring;
	struct pg_ring_info *info = ring->info;
	struct pg_event_hdr hdr;

	WARN_ON_ONCE(rec->cur != rec->nparams);
	/* Counted whether or not the record fits: each is a read that failed. */
	info->n_faults += rec->faults;
	if (rec->overflow) {
		if (rec->off > ring->size)
			info->n_drops_too_large++;
		else
			info->n_drops_buffer++;
		return;
	}
	hdr.ts = ktime_get_real_ns();
	hdr.tid = tid;
	hdr.len = rec->off;
	hdr.type = rec->type;
	hdr.nparams = rec->nparams;
	memcpy(rec->base, &hdr, PG_EVENT_HDR_LEN);
	ring->head += rec->off;
	info->n_evts++;
	smp_store_release(&info->head, ring->head);
	pg_ring_wake_if_asked(ring);
}
