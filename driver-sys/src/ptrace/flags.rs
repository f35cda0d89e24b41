//! Linux flag words in scap's encoding, the same mapping as the module's
//! fillers (the scap values are facts of the schema).

pub const SCAP_O_RDONLY: u32 = 1 << 0;
pub const SCAP_O_WRONLY: u32 = 1 << 1;
pub const SCAP_O_RDWR: u32 = SCAP_O_RDONLY | SCAP_O_WRONLY;
pub const SCAP_O_CREAT: u32 = 1 << 2;
pub const SCAP_O_APPEND: u32 = 1 << 3;
pub const SCAP_O_DSYNC: u32 = 1 << 4;
pub const SCAP_O_EXCL: u32 = 1 << 5;
pub const SCAP_O_NONBLOCK: u32 = 1 << 6;
pub const SCAP_O_SYNC: u32 = 1 << 7;
pub const SCAP_O_TRUNC: u32 = 1 << 8;
pub const SCAP_O_DIRECT: u32 = 1 << 9;
pub const SCAP_O_DIRECTORY: u32 = 1 << 10;
pub const SCAP_O_LARGEFILE: u32 = 1 << 11;
pub const SCAP_O_CLOEXEC: u32 = 1 << 12;
pub const SCAP_O_TMPFILE: u32 = 1 << 13;
pub const SCAP_O_F_CREATED: u32 = 1 << 14;

pub const SCAP_AF_UNIX: u8 = 1;
pub const SCAP_AF_INET: u8 = 2;
pub const SCAP_AF_INET6: u8 = 10;

pub const SCAP_CL_CHILD_IN_PIDNS: u32 = 1 << 29;

pub fn open_flags(flags: u64) -> u32 {
    let flags = flags as i32;
    let mut res = match flags & libc::O_ACCMODE {
        libc::O_WRONLY => SCAP_O_WRONLY,
        libc::O_RDWR => SCAP_O_RDWR,
        _ => SCAP_O_RDONLY,
    };
    let map = [
        (libc::O_CREAT, SCAP_O_CREAT),
        (libc::O_APPEND, SCAP_O_APPEND),
        (libc::O_DSYNC, SCAP_O_DSYNC),
        (libc::O_EXCL, SCAP_O_EXCL),
        (libc::O_NONBLOCK, SCAP_O_NONBLOCK),
        (libc::O_TRUNC, SCAP_O_TRUNC),
        (libc::O_DIRECT, SCAP_O_DIRECT),
        (libc::O_DIRECTORY, SCAP_O_DIRECTORY),
        (libc::O_LARGEFILE, SCAP_O_LARGEFILE),
        (libc::O_CLOEXEC, SCAP_O_CLOEXEC),
    ];
    for (linux, scap) in map {
        if flags & linux != 0 {
            res |= scap;
        }
    }
    // O_SYNC includes O_DSYNC's bit; __O_SYNC is the bit of its own.
    if flags & (libc::O_SYNC & !libc::O_DSYNC) != 0 {
        res |= SCAP_O_SYNC;
    }
    // O_TMPFILE includes O_DIRECTORY; the bit of its own decides.
    if flags & (libc::O_TMPFILE & !libc::O_DIRECTORY) != 0 {
        res |= SCAP_O_TMPFILE;
    }
    res
}

/// The mode of an open only means something when it may create a file.
pub fn open_mode(flags: u64, mode: u64) -> u32 {
    let creates = flags as i32 & (libc::O_CREAT | (libc::O_TMPFILE & !libc::O_DIRECTORY)) != 0;
    if creates {
        (mode & 0o7777) as u32
    } else {
        0
    }
}

pub fn clone_flags(flags: u64) -> u32 {
    let map: [(i32, u32); 22] = [
        (libc::CLONE_FILES, 1 << 0),
        (libc::CLONE_FS, 1 << 1),
        (libc::CLONE_IO, 1 << 2),
        (libc::CLONE_NEWIPC, 1 << 3),
        (libc::CLONE_NEWNET, 1 << 4),
        (libc::CLONE_NEWNS, 1 << 5),
        (libc::CLONE_NEWPID, 1 << 6),
        (libc::CLONE_NEWUTS, 1 << 7),
        (libc::CLONE_PARENT, 1 << 8),
        (libc::CLONE_PARENT_SETTID, 1 << 9),
        (libc::CLONE_PTRACE, 1 << 10),
        (libc::CLONE_SIGHAND, 1 << 11),
        (libc::CLONE_SYSVSEM, 1 << 12),
        (libc::CLONE_THREAD, 1 << 13),
        (libc::CLONE_UNTRACED, 1 << 14),
        (libc::CLONE_VM, 1 << 15),
        (libc::CLONE_NEWUSER, 1 << 20),
        (libc::CLONE_CHILD_CLEARTID, 1 << 23),
        (libc::CLONE_CHILD_SETTID, 1 << 24),
        (libc::CLONE_SETTLS, 1 << 25),
        (libc::CLONE_VFORK, 1 << 27),
        (libc::CLONE_NEWCGROUP, 1 << 28),
    ];
    map.iter()
        .filter(|(linux, _)| flags & (*linux as u32 as u64) != 0)
        .fold(0, |acc, (_, scap)| acc | scap)
}

pub fn socket_flags(ty: u64) -> u32 {
    let ty = ty as i32;
    let mut res = 0;
    if ty & libc::SOCK_NONBLOCK != 0 {
        res |= SCAP_O_NONBLOCK;
    }
    if ty & libc::SOCK_CLOEXEC != 0 {
        res |= SCAP_O_CLOEXEC;
    }
    res
}

pub fn resolve_flags(resolve: u64) -> u32 {
    // RESOLVE_NO_XDEV 0x01, NO_MAGICLINKS 0x02, NO_SYMLINKS 0x04,
    // BENEATH 0x08, IN_ROOT 0x10, CACHED 0x20 (linux/openat2.h).
    let map = [
        (0x08, 1 << 0),
        (0x10, 1 << 1),
        (0x02, 1 << 2),
        (0x04, 1 << 3),
        (0x01, 1 << 4),
        (0x20, 1 << 5),
    ];
    map.iter()
        .filter(|(linux, _)| resolve & linux != 0)
        .fold(0, |acc, (_, scap)| acc | scap)
}

pub fn family(family: u16) -> u8 {
    match family as i32 {
        libc::AF_INET => SCAP_AF_INET,
        libc::AF_INET6 => SCAP_AF_INET6,
        libc::AF_UNIX => SCAP_AF_UNIX,
        other => other as u8,
    }
}

/// scap's ptrace request codes (its own enumeration, not the kernel's).
/// A mknod mode: the permission bits, and the file type (a regular file
/// when none is given; types mknod cannot make are dropped).
pub fn mknod_mode(mode: u64) -> u32 {
    let mode = mode as u32;
    let perm = mode & 0o7777;
    match mode & libc::S_IFMT {
        0 | libc::S_IFREG => perm | libc::S_IFREG,
        t @ (libc::S_IFSOCK | libc::S_IFBLK | libc::S_IFCHR | libc::S_IFIFO) => perm | t,
        _ => perm,
    }
}

/// Falco's drivers pass mknod's dev argument through the kernel's
/// new_encode_dev (major above bit 20, minor below, packed to 32 bits).
pub fn mknod_dev(dev: u64) -> u32 {
    let dev = dev as u32;
    let (major, minor) = (dev >> 20, dev & 0xfffff);
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// The value type of a socket option's `val` (its PT_DYN index byte).
pub const SOCKOPT_IDX_UNKNOWN: u8 = 0;
pub const SOCKOPT_IDX_ERRNO: u8 = 1;
pub const SOCKOPT_IDX_UINT32: u8 = 2;
pub const SOCKOPT_IDX_UINT64: u8 = 3;
pub const SOCKOPT_IDX_TIMEVAL: u8 = 4;

/// scap's level of a socket option (SOL_SOCKET 1, SOL_TCP 2, else 0).
pub fn sockopt_level(level: u64) -> u8 {
    match level as i32 {
        libc::SOL_SOCKET => 1,
        libc::SOL_TCP => 2,
        _ => 0,
    }
}

/// Whether a SOL_SOCKET option's value is the old `struct timeval` (its
/// longs 4 bytes for a 32-bit caller): SO_RCVTIMEO_OLD and SO_SNDTIMEO_OLD.
/// The _NEW options take `__kernel_sock_timeval`, 2 x s64 at every width.
pub fn sockopt_old_timeval(level: u64, optname: u64) -> bool {
    level as i32 == libc::SOL_SOCKET && matches!(optname as i32, 20 | 21)
}

/// scap's name and value type of a SOL_SOCKET option; None for another
/// level or an option scap does not name (its value is then raw bytes).
pub fn sockopt(level: u64, optname: u64) -> Option<(u8, u8)> {
    const U32: u8 = SOCKOPT_IDX_UINT32;
    const RAW: u8 = SOCKOPT_IDX_UNKNOWN;
    const TV: u8 = SOCKOPT_IDX_TIMEVAL;
    if level as i32 != libc::SOL_SOCKET {
        return None;
    }
    // (Linux x86-64 value, scap name, value type), as the module's table.
    const TABLE: &[(i32, u8, u8)] = &[
        (1, 1, U32),                  // SO_DEBUG
        (2, 2, U32),                  // SO_REUSEADDR
        (3, 3, U32),                  // SO_TYPE
        (4, 4, SOCKOPT_IDX_ERRNO),    // SO_ERROR
        (5, 5, U32),                  // SO_DONTROUTE
        (6, 6, U32),                  // SO_BROADCAST
        (7, 7, U32),                  // SO_SNDBUF
        (8, 8, U32),                  // SO_RCVBUF
        (32, 32, U32),                // SO_SNDBUFFORCE
        (33, 33, U32),                // SO_RCVBUFFORCE
        (9, 9, U32),                  // SO_KEEPALIVE
        (10, 10, U32),                // SO_OOBINLINE
        (11, 11, U32),                // SO_NO_CHECK
        (12, 12, U32),                // SO_PRIORITY
        (13, 13, RAW),                // SO_LINGER
        (14, 14, U32),                // SO_BSDCOMPAT
        (15, 15, U32),                // SO_REUSEPORT
        (16, 16, U32),                // SO_PASSCRED
        (17, 17, RAW),                // SO_PEERCRED
        (18, 18, U32),                // SO_RCVLOWAT
        (19, 19, U32),                // SO_SNDLOWAT
        (20, 20, TV),                 // SO_RCVTIMEO_OLD
        (66, 20, TV),                 // SO_RCVTIMEO_NEW
        (21, 21, TV),                 // SO_SNDTIMEO_OLD
        (67, 21, TV),                 // SO_SNDTIMEO_NEW
        (22, 22, U32),                // SO_SECURITY_AUTHENTICATION
        (23, 23, U32),                // SO_SECURITY_ENCRYPTION_TRANSPORT
        (24, 24, U32),                // SO_SECURITY_ENCRYPTION_NETWORK
        (25, 25, U32),                // SO_BINDTODEVICE
        (26, 26, RAW),                // SO_ATTACH_FILTER
        (27, 27, U32),                // SO_DETACH_FILTER
        (28, 28, RAW),                // SO_PEERNAME
        (29, 29, U32),                // SO_TIMESTAMP_OLD
        (30, 30, U32),                // SO_ACCEPTCONN
        (31, 31, U32),                // SO_PEERSEC
        (34, 34, U32),                // SO_PASSSEC
        (35, 35, U32),                // SO_TIMESTAMPNS_OLD
        (36, 36, U32),                // SO_MARK
        (37, 37, U32),                // SO_TIMESTAMPING_OLD
        (38, 38, U32),                // SO_PROTOCOL
        (39, 39, U32),                // SO_DOMAIN
        (40, 40, U32),                // SO_RXQ_OVFL
        (41, 41, U32),                // SO_WIFI_STATUS
        (42, 42, U32),                // SO_PEEK_OFF
        (43, 43, U32),                // SO_NOFCS
        (44, 44, U32),                // SO_LOCK_FILTER
        (45, 45, U32),                // SO_SELECT_ERR_QUEUE
        (46, 46, U32),                // SO_BUSY_POLL
        (47, 47, U32),                // SO_MAX_PACING_RATE
        (48, 48, U32),                // SO_BPF_EXTENSIONS
        (49, 49, U32),                // SO_INCOMING_CPU
        (50, 50, RAW),                // SO_ATTACH_BPF
        (59, 51, RAW),                // SO_PEERGROUPS
        (55, 52, RAW),                // SO_MEMINFO
        (57, 53, SOCKOPT_IDX_UINT64), // SO_COOKIE
    ];
    TABLE
        .iter()
        .find(|(linux, _, _)| *linux == optname as i32)
        .map(|&(_, name, idx)| (name, idx))
}

pub fn ptrace_request(req: u64) -> u16 {
    let req = req as u32;
    let table: [(u32, u16); 37] = [
        (0, 1),       // TRACEME
        (1, 2),       // PEEKTEXT
        (2, 3),       // PEEKDATA
        (3, 4),       // PEEKUSR
        (4, 5),       // POKETEXT
        (5, 6),       // POKEDATA
        (6, 7),       // POKEUSR
        (7, 8),       // CONT
        (8, 9),       // KILL
        (9, 10),      // SINGLESTEP
        (16, 11),     // ATTACH
        (17, 12),     // DETACH
        (24, 13),     // SYSCALL
        (0x4200, 14), // SETOPTIONS
        (0x4201, 15), // GETEVENTMSG
        (0x4202, 16), // GETSIGINFO
        (0x4203, 17), // SETSIGINFO
        (0x4204, 18), // GETREGSET
        (0x4205, 19), // SETREGSET
        (0x4206, 20), // SEIZE
        (0x4207, 21), // INTERRUPT
        (0x4208, 22), // LISTEN
        (0x4209, 23), // PEEKSIGINFO
        (0x420a, 24), // GETSIGMASK
        (0x420b, 25), // SETSIGMASK
        (12, 26),     // GETREGS
        (13, 27),     // SETREGS
        (14, 28),     // GETFPREGS
        (15, 29),     // SETFPREGS
        (18, 30),     // GETFPXREGS
        (19, 31),     // SETFPXREGS
        (21, 32),     // OLDSETOPTIONS
        (25, 33),     // GET_THREAD_AREA
        (26, 34),     // SET_THREAD_AREA
        (30, 35),     // ARCH_PRCTL
        (31, 36),     // SYSEMU
        (32, 37),     // SYSEMU_SINGLESTEP
    ];
    if req == 33 {
        return 38; // SINGLEBLOCK
    }
    table
        .iter()
        .find(|(linux, _)| *linux == req)
        .map(|(_, scap)| *scap)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_map_like_the_module() {
        assert_eq!(open_flags(libc::O_RDONLY as u64), SCAP_O_RDONLY);
        assert_eq!(
            open_flags((libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u64),
            SCAP_O_WRONLY | SCAP_O_CREAT | SCAP_O_TRUNC
        );
        assert_eq!(
            open_flags((libc::O_RDWR | libc::O_CLOEXEC | libc::O_DIRECTORY) as u64),
            SCAP_O_RDWR | SCAP_O_CLOEXEC | SCAP_O_DIRECTORY
        );
        assert_eq!(
            open_flags(libc::O_SYNC as u64),
            SCAP_O_RDONLY | SCAP_O_SYNC | SCAP_O_DSYNC
        );
        assert_eq!(open_mode(libc::O_CREAT as u64, 0o100644), 0o644);
        assert_eq!(open_mode(0, 0o644), 0);
    }

    #[test]
    fn clone_and_socket_flags() {
        let f = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(clone_flags(f), (1 << 15) | (1 << 13) | (1 << 11));
        assert_eq!(clone_flags(libc::SIGCHLD as u64), 0);
        assert_eq!(
            socket_flags((libc::SOCK_STREAM | libc::SOCK_CLOEXEC) as u64),
            SCAP_O_CLOEXEC
        );
        assert_eq!(family(libc::AF_INET6 as u16), SCAP_AF_INET6);
        assert_eq!(ptrace_request(16), 11);
        assert_eq!(ptrace_request(0x4206), 20);
        assert_eq!(ptrace_request(999), 0);
    }

    #[test]
    fn mknod_and_sockopt_encodings() {
        assert_eq!(super::mknod_mode(0o600), 0o100600);
        assert_eq!(
            super::mknod_mode(u64::from(libc::S_IFIFO) | 0o640),
            0o010640
        );
        // makedev(1, 3) as glibc packs it, through the kernel's new_encode_dev.
        assert_eq!(super::mknod_dev(0x103), 0x0010_0003);
        assert_eq!(super::sockopt_level(libc::SOL_TCP as u64), 2);
        assert_eq!(super::sockopt(1, libc::SO_KEEPALIVE as u64), Some((9, 2)));
        assert_eq!(super::sockopt(1, libc::SO_COOKIE as u64), Some((53, 3)));
        assert_eq!(super::sockopt(6, 1), None);
    }
}
