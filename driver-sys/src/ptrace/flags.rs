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
}
