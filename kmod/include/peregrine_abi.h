/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * peregrine_abi.h - the contract between peregrine.ko and userspace.
 *
 * This is the only header shared by the kernel module and the Rust side
 * (driver-sys runs bindgen over it), so the ABI is stated exactly once.
 * Anything that changes the meaning or layout of what is defined here must
 * bump PG_API_VERSION_MAJOR; userspace refuses a module whose major differs.
 * A feature an older consumer can ignore bumps the minor, and userspace
 * uses it only on a module whose minor is at least that.
 *
 * Devices
 *   One character device per possible CPU: /dev/peregrine<cpu>. Each device
 *   owns one ring. A device may be held open by one process at a time
 *   (a second open gets -EBUSY).
 *
 * Memory layout of one device, as seen through a single mmap() at offset 0
 * of length PG_MMAP_LEN(buffer_size):
 *
 *     [ struct pg_ring_info, padded to one page ]
 *     [ data pages 0 .. n-1 ]                      \  the same physical
 *     [ data pages 0 .. n-1 again ]                /  pages, twice
 *
 *   Because the data is mapped twice back to back, a record that starts
 *   near the end of the ring can be read as one contiguous slice: no
 *   record is ever copied to be reassembled. The kernel keeps the same
 *   double mapping for its writes.
 *
 * Ring protocol (single producer: the CPU's probes; single consumer)
 *   head and tail are free-running byte counters; a byte offset into the
 *   ring is counter & (buffer_size - 1). buffer_size is a power of two.
 *   - The kernel writes a whole record at head, then publishes
 *     head += record length with release ordering.
 *   - Userspace reads head with acquire ordering, reads the records in
 *     [tail, head) in place, then stores tail with release ordering to give
 *     the space back (it may do so in batches).
 *   - A record that does not fit in buffer_size - (head - tail) is not
 *     written at all and n_drops_buffer is incremented: the ring never
 *     holds a torn record.
 *   - Waiting (2.1): poll()/select()/epoll on a device reports it readable
 *     once the bytes waiting reach the info page's wake_bytes (see there).
 *     A record published at the very moment wake_bytes is stored may not
 *     wake the consumer; the next one will, so a consumer that blocks
 *     uses a timeout.
 *
 * Records
 *   Each record is one event in Falco's scap layout, unpadded, exactly as
 *   it appears in an event block of a .scap file:
 *     struct pg_event_hdr, then nparams parameter lengths (u16 each, or
 *     u32 each for the event types the scap schema marks as large-payload),
 *     then the parameter bytes back to back.
 *   hdr.len counts the header, the length array and the parameters.
 *   Event type numbers are Falco's (PPME_*), listed below for the events
 *   this module emits.
 */
#ifndef PEREGRINE_ABI_H
#define PEREGRINE_ABI_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/ioctl.h>
#else
/*
 * The kernel's own uapi typedefs: defining __u64 & co. here would clash
 * with any program that also includes a Linux uapi header (glibc's
 * <sys/stat.h> does, through statx).
 */
#include <linux/types.h>
#include <sys/ioctl.h>
#endif

#define PG_API_VERSION_MAJOR 2
#define PG_API_VERSION_MINOR 1
#define PG_API_VERSION_PATCH 0
/* The value PG_IOCTL_GET_API_VERSION returns. */
#define PG_API_VERSION \
	(((__u64)PG_API_VERSION_MAJOR << 32) | \
	 ((__u64)PG_API_VERSION_MINOR << 16) | \
	 (__u64)PG_API_VERSION_PATCH)

#define PG_DEVICE_PREFIX "peregrine"   /* /dev/peregrine<cpu> */
#define PG_INFO_PAGE_SIZE 4096u
#define PG_DEFAULT_BUFFER_SIZE (8u * 1024u * 1024u)
#define PG_MIN_BUFFER_SIZE (2u * PG_INFO_PAGE_SIZE)
#define PG_MAX_BUFFER_SIZE (1024u * 1024u * 1024u)
#define PG_DEFAULT_SNAPLEN 80u
#define PG_MAX_SNAPLEN 65000u
/* Length of the one mmap() userspace makes of a device. */
#define PG_MMAP_LEN(buffer_size) \
	((__u64)PG_INFO_PAGE_SIZE + 2 * (__u64)(buffer_size))

/*
 * The shared info page, at offset 0 of the mapping. The producer's and the
 * consumer's words live on separate cache lines so that neither side
 * bounces the other's line on every record.
 */
struct pg_ring_info {
	/* Written by the kernel only. */
	__u64 head;                 /* bytes ever written (release) */
	__u64 buffer_size;          /* bytes in the ring, a power of two */
	__u64 n_evts;               /* records written */
	__u64 n_drops_buffer;       /* records dropped: ring full */
	/*
	 * Records dropped on a fault reading user memory: none since 2.0,
	 * where such a parameter is left empty instead (n_faults).
	 */
	__u64 n_drops_pf;
	__u64 n_preemptions;        /* events skipped: probe re-entered on this CPU */
	__u64 n_drops_sampling;     /* events skipped on purpose in dropping mode */
	__u64 n_drops_too_large;    /* records dropped: larger than the whole ring */
	/*
	 * Parameters written empty because the user memory they come from
	 * could not be read without sleeping (a bad pointer, an unmapped or
	 * never-touched page); the event itself is written.
	 */
	__u64 n_faults;
	__u8 pad_producer[56];      /* keeps tail off the producer's cache lines */
	/* Written by userspace only. */
	__u64 tail;                 /* bytes consumed (release) */
	/*
	 * Since 2.1: a consumer about to block in poll() on the device sets
	 * how many bytes must wait in the ring before the kernel wakes it;
	 * 0 (the default) asks for no wake-ups at all, so the kernel spends
	 * nothing on them while the consumer is busy reading. poll() reports
	 * the device readable once head - tail >= max(wake_bytes, 1).
	 */
	__u64 wake_bytes;
	__u8 pad_consumer[48];
};

/* Event header: Falco's ppm_evt_hdr, packed. */
struct pg_event_hdr {
	__u64 ts;       /* nanoseconds since the epoch */
	__u64 tid;      /* thread id (the kernel's pid) */
	__u32 len;      /* whole record length, header included */
	__u16 type;     /* PPME_* event type */
	__u32 nparams;  /* number of parameters */
} __attribute__((packed));

#define PG_EVENT_HDR_LEN 26u

/* Syscall interest set: one bit per x86-64 syscall number. */
#define PG_SYSCALL_NR_MAX 512u
struct pg_syscall_mask {
	__u64 bits[PG_SYSCALL_NR_MAX / 64];
};

/*
 * Dropping mode: when sampling_ratio > 1, only one syscall in
 * sampling_ratio (per CPU, enter and exit kept together) is written; the
 * others are counted in n_drops_sampling. Process lifecycle events (clone,
 * execve, procexit) are always written so userspace state stays correct.
 * A ratio of 0 or 1 turns dropping mode off. Must be a power of two.
 * Syscalls that have an enter event (open, openat, openat2, creat,
 * connect) are never sampled away either, so no pair is ever split.
 *
 * Snaplen, the interest set and the sampling ratio are shared by all
 * devices; when the last device is closed they return to their values
 * after load (module parameter snaplen, every syscall, no sampling) and
 * capture is stopped.
 */
struct pg_sampling {
	__u32 sampling_ratio;
	__u32 reserved;
};

#define PG_IOCTL_MAGIC 'p'
/* Read PG_API_VERSION of the loaded module. */
#define PG_IOCTL_GET_API_VERSION _IOR(PG_IOCTL_MAGIC, 0, __u64)
/* Start and stop writing events (all CPUs). */
#define PG_IOCTL_START_CAPTURE _IO(PG_IOCTL_MAGIC, 1)
#define PG_IOCTL_STOP_CAPTURE _IO(PG_IOCTL_MAGIC, 2)
/* Bytes of I/O buffers copied into read/write events (all CPUs). */
#define PG_IOCTL_SET_SNAPLEN _IOW(PG_IOCTL_MAGIC, 3, __u32)
/* Syscalls whose events are written; others cost one bit test (all CPUs). */
#define PG_IOCTL_SET_INTEREST _IOW(PG_IOCTL_MAGIC, 4, struct pg_syscall_mask)
#define PG_IOCTL_SET_SAMPLING _IOW(PG_IOCTL_MAGIC, 5, struct pg_sampling)
/* Ring size of this device, in bytes. */
#define PG_IOCTL_GET_BUFFER_SIZE _IOR(PG_IOCTL_MAGIC, 6, __u64)

/*
 * Event types this module writes: Falco's PPME_* numbers, each followed by
 * the number of parameters of the version written (userspace decodes by
 * type and nparams). Like current Falco drivers, the module writes only
 * the exit event of a syscall, carrying every parameter, except for the
 * few syscalls that also get an enter event (paths and addresses read
 * before the kernel acts on them): open, openat, openat2, creat, connect.
 * Parameter lengths are u16 for every type listed here.
 */
#define PG_EVT_GENERIC_X            1   /* 2: ID (u16 ppm_sc), nativeID (u16) */
#define PG_EVT_GENERIC_X_NPARAMS    2
#define PG_EVT_OPEN_E               2
#define PG_EVT_OPEN_E_NPARAMS       3
#define PG_EVT_OPEN_X               3
#define PG_EVT_OPEN_X_NPARAMS       6
#define PG_EVT_CLOSE_X              5
#define PG_EVT_CLOSE_X_NPARAMS      2
#define PG_EVT_READ_X               7
#define PG_EVT_READ_X_NPARAMS       4
#define PG_EVT_WRITE_X              9
#define PG_EVT_WRITE_X_NPARAMS      4
#define PG_EVT_SOCKET_X             19
#define PG_EVT_SOCKET_X_NPARAMS     5
#define PG_EVT_BIND_X               21
#define PG_EVT_BIND_X_NPARAMS       3
#define PG_EVT_CONNECT_E            22
#define PG_EVT_CONNECT_E_NPARAMS    2
#define PG_EVT_CONNECT_X            23
#define PG_EVT_CONNECT_X_NPARAMS    4
#define PG_EVT_LISTEN_X             25
#define PG_EVT_LISTEN_X_NPARAMS     3
#define PG_EVT_CREAT_E              58
#define PG_EVT_CREAT_E_NPARAMS      2
#define PG_EVT_CREAT_X              59
#define PG_EVT_CREAT_X_NPARAMS      6
#define PG_EVT_RENAME_X             175
#define PG_EVT_RENAME_X_NPARAMS     3
#define PG_EVT_RENAMEAT_X           177
#define PG_EVT_RENAMEAT_X_NPARAMS   5
#define PG_EVT_SYMLINK_X            179
#define PG_EVT_SYMLINK_X_NPARAMS    3
#define PG_EVT_SYMLINKAT_X          181
#define PG_EVT_SYMLINKAT_X_NPARAMS  4
#define PG_EVT_PROCEXIT_1_E         186
#define PG_EVT_PROCEXIT_1_E_NPARAMS 5
#define PG_EVT_CLONE_20_X           223
#define PG_EVT_CLONE_20_X_NPARAMS   21
#define PG_EVT_FORK_20_X            225
#define PG_EVT_FORK_20_X_NPARAMS    21
#define PG_EVT_VFORK_20_X           227
#define PG_EVT_VFORK_20_X_NPARAMS   21
#define PG_EVT_ACCEPT_5_X           247
#define PG_EVT_ACCEPT_5_X_NPARAMS   5
#define PG_EVT_MKDIR_2_X            277
#define PG_EVT_MKDIR_2_X_NPARAMS    3
#define PG_EVT_RMDIR_2_X            279
#define PG_EVT_RMDIR_2_X_NPARAMS    2
#define PG_EVT_EXECVE_19_X          293
#define PG_EVT_EXECVE_19_X_NPARAMS  31
#define PG_EVT_UNLINK_2_X           301
#define PG_EVT_UNLINK_2_X_NPARAMS   2
#define PG_EVT_UNLINKAT_2_X         303
#define PG_EVT_UNLINKAT_2_X_NPARAMS 4
#define PG_EVT_MKDIRAT_X            305
#define PG_EVT_MKDIRAT_X_NPARAMS    4
#define PG_EVT_OPENAT_2_E           306
#define PG_EVT_OPENAT_2_E_NPARAMS   4
#define PG_EVT_OPENAT_2_X           307
#define PG_EVT_OPENAT_2_X_NPARAMS   7
#define PG_EVT_LINK_2_X             309
#define PG_EVT_LINK_2_X_NPARAMS     3
#define PG_EVT_LINKAT_2_X           311
#define PG_EVT_LINKAT_2_X_NPARAMS   6
#define PG_EVT_FCHMODAT_X           313
#define PG_EVT_FCHMODAT_X_NPARAMS   4
#define PG_EVT_CHMOD_X              315
#define PG_EVT_CHMOD_X_NPARAMS      3
#define PG_EVT_FCHMOD_X             317
#define PG_EVT_FCHMOD_X_NPARAMS     3
#define PG_EVT_RENAMEAT2_X          319
#define PG_EVT_RENAMEAT2_X_NPARAMS  6
#define PG_EVT_OPENAT2_E            326
#define PG_EVT_OPENAT2_E_NPARAMS    5
#define PG_EVT_OPENAT2_X            327
#define PG_EVT_OPENAT2_X_NPARAMS    8
#define PG_EVT_EXECVEAT_X           331
#define PG_EVT_EXECVEAT_X_NPARAMS   30
#define PG_EVT_CLONE3_X             335
#define PG_EVT_CLONE3_X_NPARAMS     21
#define PG_EVT_DUP2_X               363
#define PG_EVT_DUP2_X_NPARAMS       3
#define PG_EVT_DUP3_X               365
#define PG_EVT_DUP3_X_NPARAMS       4
#define PG_EVT_DUP_1_X              367
#define PG_EVT_DUP_1_X_NPARAMS      2
#define PG_EVT_ACCEPT4_6_X          389
#define PG_EVT_ACCEPT4_6_X_NPARAMS  6

#define PG_EVT_KILL_X               129
#define PG_EVT_KILL_X_NPARAMS       3
#define PG_EVT_TKILL_X              131
#define PG_EVT_TKILL_X_NPARAMS      3
#define PG_EVT_TGKILL_X             133
#define PG_EVT_TGKILL_X_NPARAMS     4
#define PG_EVT_SETRESUID_X          193
#define PG_EVT_SETRESUID_X_NPARAMS  4
#define PG_EVT_SETRESGID_X          195
#define PG_EVT_SETRESGID_X_NPARAMS  4
#define PG_EVT_SETUID_X             199
#define PG_EVT_SETUID_X_NPARAMS     2
#define PG_EVT_SETGID_X             201
#define PG_EVT_SETGID_X_NPARAMS     2
#define PG_EVT_SETNS_X              241
#define PG_EVT_SETNS_X_NPARAMS      3
#define PG_EVT_MOUNT_X              257
#define PG_EVT_MOUNT_X_NPARAMS      5
#define PG_EVT_UNSHARE_X            285
#define PG_EVT_UNSHARE_X_NPARAMS    2
#define PG_EVT_CHOWN_X              379
#define PG_EVT_CHOWN_X_NPARAMS      4
#define PG_EVT_LCHOWN_X             381
#define PG_EVT_LCHOWN_X_NPARAMS     4
#define PG_EVT_FCHOWN_X             383
#define PG_EVT_FCHOWN_X_NPARAMS     4
#define PG_EVT_FCHOWNAT_X           385
#define PG_EVT_FCHOWNAT_X_NPARAMS   6
#define PG_EVT_UMOUNT2_X            391
#define PG_EVT_UMOUNT2_X_NPARAMS    3
#define PG_EVT_INIT_MODULE_X        411
#define PG_EVT_INIT_MODULE_X_NPARAMS 4
#define PG_EVT_FINIT_MODULE_X       413
#define PG_EVT_FINIT_MODULE_X_NPARAMS 4
#define PG_EVT_SETREUID_X           427
#define PG_EVT_SETREUID_X_NPARAMS   3
#define PG_EVT_SETREGID_X           429
#define PG_EVT_SETREGID_X_NPARAMS   3
/*
 * ptrace: res, addr, data, request, pid. addr and data are scap PT_DYN:
 * one byte naming the value's type (PG_PTRACE_IDX_*), then the value.
 */
#define PG_EVT_PTRACE_X             169
#define PG_EVT_PTRACE_X_NPARAMS     5
#define PG_PTRACE_IDX_UINT64        0   /* then a u64 */
#define PG_PTRACE_IDX_SIGTYPE       1   /* then a u8 signal number */

/*
 * Since 2.0: sockets' send and receive calls (with the tuple of each
 * datagram), working directories, descriptors, memory maps, io_uring,
 * process memory access, pidfds and the rest of the syscalls below, each
 * in the layout of current libs (parameter names and types in comments).
 * The batched sendmmsg/recvmmsg give one event per message.
 */
#define PG_EVT_SENDTO_X             31  /* res(res) data(bytes) fd(fd) size(u32) tuple(tuple) */
#define PG_EVT_SENDTO_X_NPARAMS     5
#define PG_EVT_SENDMSG_X            49  /* res(res) data(bytes) fd(fd) size(u32) tuple(tuple) */
#define PG_EVT_SENDMSG_X_NPARAMS    5
#define PG_EVT_SENDMMSG_X           51  /* res(res) fd(fd) size(u32) data(bytes) tuple(tuple) */
#define PG_EVT_SENDMMSG_X_NPARAMS   5
#define PG_EVT_RECVFROM_X           35  /* res(res) data(bytes) tuple(tuple) fd(fd) size(u32) */
#define PG_EVT_RECVFROM_X_NPARAMS   5
/* res(res) size(u32) data(bytes) tuple(tuple) msgcontrol(bytes) fd(fd) */
#define PG_EVT_RECVMSG_X            53
#define PG_EVT_RECVMSG_X_NPARAMS    6
/* res(res) fd(fd) size(u32) data(bytes) tuple(tuple) msgcontrol(bytes) */
#define PG_EVT_RECVMMSG_X           55
#define PG_EVT_RECVMMSG_X_NPARAMS   6
/* res(res) fd1(fd) fd2(fd) source(u64) peer(u64) domain(enum32) type(u32) proto(u32) */
#define PG_EVT_SOCKETPAIR_X         43
#define PG_EVT_SOCKETPAIR_X_NPARAMS 8
#define PG_EVT_SHUTDOWN_X           37  /* res(res) fd(fd) how(enum8) */
#define PG_EVT_SHUTDOWN_X_NPARAMS   3
#define PG_EVT_CHDIR_X              95  /* res(res) path(str) */
#define PG_EVT_CHDIR_X_NPARAMS      2
#define PG_EVT_FCHDIR_X             97  /* res(res) fd(fd) */
#define PG_EVT_FCHDIR_X_NPARAMS     2
#define PG_EVT_CHROOT_X             267  /* res(res) path(path) */
#define PG_EVT_CHROOT_X_NPARAMS     2
#define PG_EVT_GETCWD_X             93  /* res(res) path(str) */
#define PG_EVT_GETCWD_X_NPARAMS     2
#define PG_EVT_MEMFD_CREATE_X       405  /* fd(fd) name(str) flags(flags32) */
#define PG_EVT_MEMFD_CREATE_X_NPARAMS 3
#define PG_EVT_BPF_2_X              369  /* fd(fd) cmd(enum32) */
#define PG_EVT_BPF_2_X_NPARAMS      2
#define PG_EVT_USERFAULTFD_X        321  /* res(res) flags(flags32) */
#define PG_EVT_USERFAULTFD_X_NPARAMS 2
#define PG_EVT_PRCTL_X              401  /* res(res) option(enum32) arg2_str(str) arg2_int(s64) */
#define PG_EVT_PRCTL_X_NPARAMS      4
#define PG_EVT_FCNTL_X              151  /* res(fd) fd(fd) cmd(enum8) arg(u64) */
#define PG_EVT_FCNTL_X_NPARAMS      4
#define PG_EVT_PIPE_X               61  /* res(res) fd1(fd) fd2(fd) ino(u64) */
#define PG_EVT_PIPE_X_NPARAMS       4
#define PG_EVT_PIPE2_X              393  /* res(res) fd1(fd) fd2(fd) ino(u64) flags(flags32) */
#define PG_EVT_PIPE2_X_NPARAMS      5
/* res(res) vm_size(u32) vm_rss(u32) vm_swap(u32) addr(u64) length(u64) prot(flags32) flags(flags32) fd(fd) offset(u64) */
#define PG_EVT_MMAP_X               161
#define PG_EVT_MMAP_X_NPARAMS       10
/* res(res) vm_size(u32) vm_rss(u32) vm_swap(u32) addr(u64) length(u64) */
#define PG_EVT_MUNMAP_X             165
#define PG_EVT_MUNMAP_X_NPARAMS     6
#define PG_EVT_MPROTECT_X           329  /* res(res) addr(u64) length(u64) prot(flags32) */
#define PG_EVT_MPROTECT_X_NPARAMS   4
/* res(u64) vm_size(u32) vm_rss(u32) vm_swap(u32) addr(u64) */
#define PG_EVT_BRK_4_X              159
#define PG_EVT_BRK_4_X_NPARAMS      5
/* res(res) entries(u32) sq_entries(u32) cq_entries(u32) flags(flags32) sq_thread_cpu(u32) sq_thread_idle(u32) features(flags32) */
#define PG_EVT_IO_URING_SETUP_X     339
#define PG_EVT_IO_URING_SETUP_X_NPARAMS 8
/* res(res) fd(fd) to_submit(u32) min_complete(u32) flags(flags32) sig(sigset) */
#define PG_EVT_IO_URING_ENTER_X     341
#define PG_EVT_IO_URING_ENTER_X_NPARAMS 6
#define PG_EVT_IO_URING_REGISTER_X  343  /* res(res) fd(fd) opcode(enum16) arg(u64) nr_args(u32) */
#define PG_EVT_IO_URING_REGISTER_X_NPARAMS 5
#define PG_EVT_PROCESS_VM_READV_X   421  /* res(s64) pid(pid) data(bytes) */
#define PG_EVT_PROCESS_VM_READV_X_NPARAMS 3
#define PG_EVT_PROCESS_VM_WRITEV_X  423  /* res(s64) pid(pid) data(bytes) */
#define PG_EVT_PROCESS_VM_WRITEV_X_NPARAMS 3
#define PG_EVT_PIDFD_OPEN_X         409  /* fd(fd) pid(pid) flags(flags32) */
#define PG_EVT_PIDFD_OPEN_X_NPARAMS 3
#define PG_EVT_PIDFD_GETFD_X        407  /* fd(fd) pid_fd(fd) target_fd(fd) flags(u32) */
#define PG_EVT_PIDFD_GETFD_X_NPARAMS 4
#define PG_EVT_SETSID_X             275  /* res(pid) */
#define PG_EVT_SETSID_X_NPARAMS     1
#define PG_EVT_SETPGID_X            295  /* res(res) pid(pid) pgid(pid) */
#define PG_EVT_SETPGID_X_NPARAMS    3
#define PG_EVT_FLOCK_X              243  /* res(res) fd(fd) operation(flags32) */
#define PG_EVT_FLOCK_X_NPARAMS      3
#define PG_EVT_MLOCK_X              345  /* res(res) addr(u64) len(u64) */
#define PG_EVT_MLOCK_X_NPARAMS      3
#define PG_EVT_MUNLOCK_X            347  /* res(res) addr(u64) len(u64) */
#define PG_EVT_MUNLOCK_X_NPARAMS    3
#define PG_EVT_MLOCKALL_X           349  /* res(res) flags(flags32) */
#define PG_EVT_MLOCKALL_X_NPARAMS   2
#define PG_EVT_MUNLOCKALL_X         351  /* res(res) */
#define PG_EVT_MUNLOCKALL_X_NPARAMS 1
#define PG_EVT_MLOCK2_X             371  /* res(res) addr(u64) len(u64) flags(flags32) */
#define PG_EVT_MLOCK2_X_NPARAMS     4
#define PG_EVT_GETUID_X             203  /* uid(uid) */
#define PG_EVT_GETUID_X_NPARAMS     1
#define PG_EVT_GETEUID_X            205  /* euid(uid) */
#define PG_EVT_GETEUID_X_NPARAMS    1
#define PG_EVT_GETGID_X             207  /* gid(gid) */
#define PG_EVT_GETGID_X_NPARAMS     1
#define PG_EVT_GETEGID_X            209  /* egid(gid) */
#define PG_EVT_GETEGID_X_NPARAMS    1
#define PG_EVT_ACCESS_X             265  /* res(res) name(path) mode(flags32) */
#define PG_EVT_ACCESS_X_NPARAMS     3
#define PG_EVT_DELETE_MODULE_X      425  /* res(res) name(str) flags(flags32) */
#define PG_EVT_DELETE_MODULE_X_NPARAMS 3
#define PG_EVT_SECCOMP_X            299  /* res(res) op(u64) flags(u64) */
#define PG_EVT_SECCOMP_X_NPARAMS    3
#define PG_EVT_EPOLL_CREATE_X       375  /* res(res) size(s32) */
#define PG_EVT_EPOLL_CREATE_X_NPARAMS 2
#define PG_EVT_EPOLL_CREATE1_X      377  /* res(res) flags(flags32) */
#define PG_EVT_EPOLL_CREATE1_X_NPARAMS 2
#define PG_EVT_GETDENTS_X           237  /* res(res) fd(fd) */
#define PG_EVT_GETDENTS_X_NPARAMS   2
#define PG_EVT_GETDENTS64_X         239  /* res(res) fd(fd) */
#define PG_EVT_GETDENTS64_X_NPARAMS 2
#define PG_EVT_FSTAT_X              71  /* res(res) fd(fd) */
#define PG_EVT_FSTAT_X_NPARAMS      2
#define PG_EVT_STAT_X               67  /* res(res) path(path) */
#define PG_EVT_STAT_X_NPARAMS       2
#define PG_EVT_LSTAT_X              69  /* res(res) path(path) */
#define PG_EVT_LSTAT_X_NPARAMS      2
#define PG_EVT_LSEEK_X              87  /* res(res) fd(fd) offset(u64) whence(enum8) */
#define PG_EVT_LSEEK_X_NPARAMS      4
#define PG_EVT_IOCTL_3_X            171  /* res(res) fd(fd) request(u64) argument(u64) */
#define PG_EVT_IOCTL_3_X_NPARAMS    4
#define PG_EVT_SPLICE_X             167  /* res(res) fd_in(fd) fd_out(fd) size(u64) flags(flags32) */
#define PG_EVT_SPLICE_X_NPARAMS     5
#define PG_EVT_PREAD_X              113  /* res(res) data(bytes) fd(fd) size(u32) pos(u64) */
#define PG_EVT_PREAD_X_NPARAMS      5
#define PG_EVT_PWRITE_X             115  /* res(res) data(bytes) fd(fd) size(u32) pos(u64) */
#define PG_EVT_PWRITE_X_NPARAMS     5
#define PG_EVT_READV_X              117  /* res(res) size(u32) data(bytes) fd(fd) */
#define PG_EVT_READV_X_NPARAMS      4
#define PG_EVT_WRITEV_X             119  /* res(res) data(bytes) fd(fd) size(u32) */
#define PG_EVT_WRITEV_X_NPARAMS     4
#define PG_EVT_PREADV_X             121  /* res(res) size(u32) data(bytes) fd(fd) pos(u64) */
#define PG_EVT_PREADV_X_NPARAMS     5
#define PG_EVT_PWRITEV_X            123  /* res(res) data(bytes) fd(fd) size(u32) pos(u64) */
#define PG_EVT_PWRITEV_X_NPARAMS    5
#define PG_EVT_NEWFSTATAT_X         419  /* res(res) dirfd(fd) path(relpath) flags(flags32) */
#define PG_EVT_NEWFSTATAT_X_NPARAMS 4
#define PG_EVT_CLOSE_RANGE_X        451  /* res(res) first(u32) last(u32) flags(flags32) */
#define PG_EVT_CLOSE_RANGE_X_NPARAMS 4
#define PG_EVT_EVENTFD_X            63  /* res(fd) initval(u64) flags(u32) */
#define PG_EVT_EVENTFD_X_NPARAMS    3
#define PG_EVT_EVENTFD2_X           397  /* res(fd) flags(flags16) initval(u64) */
#define PG_EVT_EVENTFD2_X_NPARAMS   3
#define PG_EVT_INOTIFY_INIT_X       139  /* res(fd) flags(u8) */
#define PG_EVT_INOTIFY_INIT_X_NPARAMS 2
#define PG_EVT_INOTIFY_INIT1_X      395  /* res(fd) flags(flags16) */
#define PG_EVT_INOTIFY_INIT1_X_NPARAMS 2
#define PG_EVT_TIMERFD_CREATE_X     137  /* res(fd) clockid(u8) flags(u8) */
#define PG_EVT_TIMERFD_CREATE_X_NPARAMS 3
#define PG_EVT_EPOLLWAIT_X          79  /* res(res) maxevents(res) */
#define PG_EVT_EPOLLWAIT_X_NPARAMS  2
#define PG_EVT_GETRLIMIT_X          141  /* res(res) cur(s64) max(s64) resource(enum8) */
#define PG_EVT_GETRLIMIT_X_NPARAMS 4
#define PG_EVT_SETRLIMIT_X          143  /* res(res) cur(s64) max(s64) resource(enum8) */
#define PG_EVT_SETRLIMIT_X_NPARAMS 4
#define PG_EVT_PRLIMIT_X            145  /* res(res) newcur(s64) newmax(s64) oldcur(s64) oldmax(s64) pid(s64) resource(enum8) */
#define PG_EVT_PRLIMIT_X_NPARAMS 7
#define PG_EVT_GETRESUID_X          211  /* res(res) ruid(uid) euid(uid) suid(uid) */
#define PG_EVT_GETRESUID_X_NPARAMS 4
#define PG_EVT_GETRESGID_X          213  /* res(res) rgid(gid) egid(gid) sgid(gid) */
#define PG_EVT_GETRESGID_X_NPARAMS 4
#define PG_EVT_CAPSET_X             353  /* res(res) cap_inheritable(u64) cap_permitted(u64) cap_effective(u64) */
#define PG_EVT_CAPSET_X_NPARAMS 4
#define PG_EVT_SENDFILE_X           189  /* res(res) offset(u64) out_fd(fd) in_fd(fd) size(u64) */
#define PG_EVT_SENDFILE_X_NPARAMS 5
#define PG_EVT_COPY_FILE_RANGE_X    333  /* res(res) fdout(fd) offout(u64) fdin(fd) offin(u64) len(u64) */
#define PG_EVT_COPY_FILE_RANGE_X_NPARAMS 6

/*
 * Waiting, semaphores, futexes, socket options, device nodes, handles,
 * keys, mount configuration, signal fds.
 */
#define PG_EVT_POLL_X               81   /* res(res) fds(fdlist) timeout(s64) */
#define PG_EVT_POLL_X_NPARAMS       3
#define PG_EVT_PPOLL_X              255  /* res(res) fds(fdlist) timeout(reltime) sigmask(sigset) */
#define PG_EVT_PPOLL_X_NPARAMS      4
#define PG_EVT_SELECT_X             83   /* res(res) */
#define PG_EVT_SELECT_X_NPARAMS     1
#define PG_EVT_NANOSLEEP_X          135  /* res(res) interval(reltime) */
#define PG_EVT_NANOSLEEP_X_NPARAMS  2
#define PG_EVT_FUTEX_X              65   /* res(res) addr(u64) op(enumflags16) val(u64) */
#define PG_EVT_FUTEX_X_NPARAMS      4
#define PG_EVT_SEMGET_X             263  /* res(res) key(s32) nsems(s32) semflg(flags32) */
#define PG_EVT_SEMGET_X_NPARAMS     4
#define PG_EVT_SEMOP_X              251  /* res nsops(u32) {sem_num(u16) sem_op(s16) sem_flg(flags16)}x2 semid(s32) */
#define PG_EVT_SEMOP_X_NPARAMS      9
#define PG_EVT_SEMCTL_X             253  /* res(res) semid(s32) semnum(s32) cmd(flags16) val(s32) */
#define PG_EVT_SEMCTL_X_NPARAMS     5
#define PG_EVT_SETSOCKOPT_X         45   /* res fd level(enum8) optname(enum8) val(dyn) optlen(u32) */
#define PG_EVT_SETSOCKOPT_X_NPARAMS 6
#define PG_EVT_GETSOCKOPT_X         47   /* res fd level(enum8) optname(enum8) val(dyn) optlen(u32) */
#define PG_EVT_GETSOCKOPT_X_NPARAMS 6
#define PG_EVT_MKNOD_X              415  /* res(res) path(fspath) mode(mode) dev(u32) */
#define PG_EVT_MKNOD_X_NPARAMS      4
#define PG_EVT_MKNODAT_X            417  /* res(res) dirfd(fd) path(fsrelpath) mode(mode) dev(u32) */
#define PG_EVT_MKNODAT_X_NPARAMS    5
#define PG_EVT_QUOTACTL_X           191  /* res special quotafilepath dqb_* dqi_* fmt_out cmd type id quota_fmt */
#define PG_EVT_QUOTACTL_X_NPARAMS   18
#define PG_EVT_KEYCTL_X             453  /* res(res) operation(enumflags32) arg2..arg5(dyn) */
#define PG_EVT_KEYCTL_X_NPARAMS     6
#define PG_EVT_SIGNALFD_X           127  /* res(fd) fd(fd) mask(u32) flags(u8) */
#define PG_EVT_SIGNALFD_X_NPARAMS   4
#define PG_EVT_SIGNALFD4_X          399  /* res(fd) flags(flags16) fd(fd) mask(u32) */
#define PG_EVT_SIGNALFD4_X_NPARAMS  4
#define PG_EVT_OPEN_BY_HANDLE_AT_X  337  /* fd(fd) mountfd(fd) flags(flags32) path(fspath) dev(u32) ino(u64) */
#define PG_EVT_OPEN_BY_HANDLE_AT_X_NPARAMS 6
#define PG_EVT_FSCONFIG_X           373  /* res fd cmd(enumflags32) key value_bytebuf value_charbuf aux(s32) */
#define PG_EVT_FSCONFIG_X_NPARAMS   7
/* The first byte of a setsockopt/getsockopt val (PT_DYN): the value's type. */
#define PG_SOCKOPT_IDX_UNKNOWN      0   /* then the bytes as given */
#define PG_SOCKOPT_IDX_ERRNO        1   /* then an s64 (-errno) */
#define PG_SOCKOPT_IDX_UINT32       2
#define PG_SOCKOPT_IDX_UINT64       3
#define PG_SOCKOPT_IDX_TIMEVAL      4   /* then a u64 of nanoseconds */
/* The first byte of a keyctl argN (PT_DYN). */
#define PG_KEYCTL_IDX_INT64         0
#define PG_KEYCTL_IDX_CHARBUF       1

#endif /* PEREGRINE_ABI_H */
