// SPDX-License-Identifier: GPL-2.0-only
/*
 * device.c - /dev/peregrine<cpu>: one character device and one ring per
 * possible CPU, held open by one consumer at a time.
 *
 * A ring exists only while its device is open. The probes find it through
 * an RCU-protected per-CPU pointer; closing unpublishes it and waits for
 * every probe that might still be writing before freeing it.
 */
#include <linux/cdev.h>
#include <linux/cpumask.h>
#include <linux/fs.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/rcupdate.h>
#include <linux/uaccess.h>
#include "peregrine.h"
#include "compat.h"

struct pg_device {
	unsigned int cpu;
	atomic_t open;                  /* exclusive open */
	struct pg_ring *ring;           /* owned while open */
};

static DEFINE_PER_CPU(struct pg_ring __rcu *, pg_cpu_ring);
static struct pg_device *pg_devs;   /* nr_cpu_ids entries */
static dev_t pg_devt;
static struct cdev pg_cdev;
static struct class *pg_class;
static DEFINE_MUTEX(pg_settings_lock);
static unsigned int pg_open_count; /* under pg_settings_lock */

struct pg_ring *pg_this_cpu_ring(void)
{
	return rcu_dereference_sched(*this_cpu_ptr(&pg_cpu_ring));
}

static int pg_open(struct inode *inode, struct file *file)
{
	unsigned int cpu = iminor(inode);
	struct pg_device *dev;
	struct pg_ring *ring;

	if (cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return -ENODEV;
	dev = &pg_devs[cpu];
	if (atomic_cmpxchg(&dev->open, 0, 1) != 0)
		return -EBUSY;
	ring = pg_ring_alloc(pg_buffer_size);
	if (!ring) {
		atomic_set(&dev->open, 0);
		return -ENOMEM;
	}
	dev->ring = ring;
	file->private_data = dev;
	mutex_lock(&pg_settings_lock);
	pg_open_count++;
	mutex_unlock(&pg_settings_lock);
	rcu_assign_pointer(per_cpu(pg_cpu_ring, cpu), ring);
	return 0;
}

static int pg_release(struct inode *inode, struct file *file)
{
	struct pg_device *dev = file->private_data;

	RCU_INIT_POINTER(per_cpu(pg_cpu_ring, dev->cpu), NULL);
	/* Probes run with preemption off: this waits for all of them. */
	synchronize_rcu();
	pg_ring_free(dev->ring);
	dev->ring = NULL;
	mutex_lock(&pg_settings_lock);
	/* The next consumer starts from the settings of a fresh load. */
	if (--pg_open_count == 0)
		pg_settings_reset();
	mutex_unlock(&pg_settings_lock);
	atomic_set(&dev->open, 0);
	return 0;
}

static int pg_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct pg_device *dev = file->private_data;

	return pg_ring_mmap(dev->ring, vma);
}

static __poll_t pg_poll(struct file *file, poll_table *wait)
{
	struct pg_device *dev = file->private_data;

	return pg_ring_poll(dev->ring, file, wait);
}

static long pg_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct pg_device *dev = file->private_data;
	void __user *uarg = (void __user *)arg;
	long ret = 0;

	switch (cmd) {
	case PG_IOCTL_GET_API_VERSION: {
		u64 v = PG_API_VERSION;

		return copy_to_user(uarg, &v, sizeof(v)) ? -EFAULT : 0;
	}
	case PG_IOCTL_GET_BUFFER_SIZE: {
		u64 v = dev->ring->size;

		return copy_to_user(uarg, &v, sizeof(v)) ? -EFAULT : 0;
	}
	case PG_IOCTL_START_CAPTURE:
	case PG_IOCTL_STOP_CAPTURE:
		WRITE_ONCE(pg_settings.capturing, cmd == PG_IOCTL_START_CAPTURE);
		return 0;
	case PG_IOCTL_SET_SNAPLEN: {
		u32 v;

		if (copy_from_user(&v, uarg, sizeof(v)))
			return -EFAULT;
		if (v > PG_MAX_SNAPLEN)
			return -EINVAL;
		WRITE_ONCE(pg_settings.snaplen, v);
		return 0;
	}
	case PG_IOCTL_SET_INTEREST: {
		struct pg_syscall_mask *mask;
		unsigned int i;

		mask = kmalloc(sizeof(*mask), GFP_KERNEL);
		if (!mask)
			return -ENOMEM;
		if (copy_from_user(mask, uarg, sizeof(*mask))) {
			ret = -EFAULT;
		} else {
			mutex_lock(&pg_settings_lock);
			/* Each bit is read independently by the probes: word stores are enough. */
			for (i = 0; i < PG_SYSCALL_NR_MAX; i++)
				if (mask->bits[i / 64] & (1ull << (i % 64)))
					set_bit(i, pg_settings.interest);
				else
					clear_bit(i, pg_settings.interest);
			mutex_unlock(&pg_settings_lock);
		}
		kfree(mask);
		return ret;
	}
	case PG_IOCTL_SET_SAMPLING: {
		struct pg_sampling s;

		if (copy_from_user(&s, uarg, sizeof(s)))
			return -EFAULT;
		if (s.reserved || (s.sampling_ratio > 1 && !is_power_of_2(s.sampling_ratio)))
			return -EINVAL;
		WRITE_ONCE(pg_settings.sampling_ratio, s.sampling_ratio);
		return 0;
	}
	default:
		return -ENOTTY;
	}
}

static const struct file_operations pg_fops = {
	.owner = THIS_MODULE,
	.open = pg_open,
	.release = pg_release,
	.mmap = pg_mmap,
	.poll = pg_poll,
	.unlocked_ioctl = pg_ioctl,
	.compat_ioctl = pg_ioctl,
	.llseek = noop_llseek,
};

int pg_devices_init(void)
{
	unsigned int cpu;
	int err;

	pg_devs = kcalloc(nr_cpu_ids, sizeof(*pg_devs), GFP_KERNEL);
	if (!pg_devs)
		return -ENOMEM;
	err = alloc_chrdev_region(&pg_devt, 0, nr_cpu_ids, PG_DEVICE_PREFIX);
	if (err)
		goto free_devs;
	cdev_init(&pg_cdev, &pg_fops);
	pg_cdev.owner = THIS_MODULE;
	err = cdev_add(&pg_cdev, pg_devt, nr_cpu_ids);
	if (err)
		goto unregister;
	pg_class = pg_class_create(PG_DEVICE_PREFIX);
	if (IS_ERR(pg_class)) {
		err = PTR_ERR(pg_class);
		goto del_cdev;
	}
	for_each_possible_cpu(cpu) {
		struct device *d;

		pg_devs[cpu].cpu = cpu;
		d = device_create(pg_class, NULL, MKDEV(MAJOR(pg_devt), cpu), NULL,
				  PG_DEVICE_PREFIX "%u", cpu);
		if (IS_ERR(d)) {
			err = PTR_ERR(d);
			goto destroy_devices;
		}
	}
	return 0;

destroy_devices:
	for_each_possible_cpu(cpu)
		device_destroy(pg_class, MKDEV(MAJOR(pg_devt), cpu));
	class_destroy(pg_class);
del_cdev:
	cdev_del(&pg_cdev);
unregister:
	unregister_chrdev_region(pg_devt, nr_cpu_ids);
free_devs:
	kfree(pg_devs);
	return err;
}

void pg_devices_exit(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu)
		device_destroy(pg_class, MKDEV(MAJOR(pg_devt), cpu));
	class_destroy(pg_class);
	cdev_del(&pg_cdev);
	unregister_chrdev_region(pg_devt, nr_cpu_ids);
	kfree(pg_devs);
}
