//! The tables a capture starts with, taken from a running system's state,
//! so that a reader of the capture knows the processes that were already
//! running when it started.

use std::path::Path;

use super::tables::{fd_type, FdEntry, FdInfo, MachineInfo, ProcEntry};
use crate::state::fd::{Fd, FdKind};
use crate::state::State;

/// Every thread of `state` as a process-list entry.
pub fn proc_entries(state: &State) -> Vec<ProcEntry> {
    let mut entries: Vec<ProcEntry> = state
        .threads()
        .map(|t| ProcEntry {
            tid: t.tid,
            pid: t.pid,
            ptid: t.ptid,
            sid: t.sid,
            vpgid: t.vpgid,
            comm: t.comm.clone(),
            exe: t.exe.clone(),
            exepath: t.exepath.clone(),
            args: t.args.to_vec(),
            cwd: t.cwd.clone(),
            uid: t.uid,
            gid: t.gid,
            env: t.env.to_vec(),
            vtid: t.vtid,
            vpid: t.vpid,
            cgroups: t.cgroups.to_vec(),
            tty: t.tty,
            loginuid: t.loginuid,
            exe_writable: t.exe_writable,
            cap_inheritable: t.cap_inheritable,
            cap_permitted: t.cap_permitted,
            cap_effective: t.cap_effective,
            exe_upper_layer: t.exe_upper_layer,
            exe_ino: t.exe_ino,
            exe_ino_ctime: t.exe_ino_ctime,
            exe_ino_mtime: t.exe_ino_mtime,
            exe_from_memfd: t.exe_from_memfd,
            ..ProcEntry::default()
        })
        .collect();
    entries.sort_by_key(|e| e.tid);
    entries
}

/// Every open fd of `state` as an fd-list entry, by process, in fd order:
/// a reader of the capture starts with the files and sockets already open.
pub fn fd_entries(state: &State) -> Vec<FdEntry> {
    let mut entries: Vec<FdEntry> = state
        .fd_tables()
        .flat_map(|(pid, table)| table.iter().map(move |(fd, f)| fd_entry(pid, *fd, f)))
        .collect();
    entries.sort_by_key(|e| (e.tid, e.fd));
    entries
}

fn fd_entry(pid: i64, fd: i64, f: &Fd) -> FdEntry {
    let named = |ty: u8| {
        (
            ty,
            FdInfo::Named {
                name: f.name.clone(),
            },
        )
    };
    let (ty, info) = match &f.kind {
        FdKind::File => (
            fd_type::FILE_V2,
            FdInfo::File {
                open_flags: f.open_flags,
                name: f.name.clone(),
                dev: f.dev,
            },
        ),
        FdKind::Ipv4 {
            sip,
            sport,
            dip,
            dport,
            l4proto,
        } => (
            fd_type::IPV4_SOCK,
            FdInfo::Ipv4Sock {
                sip: *sip,
                dip: *dip,
                sport: *sport,
                dport: *dport,
                l4proto: *l4proto,
            },
        ),
        FdKind::Ipv6 {
            sip,
            sport,
            dip,
            dport,
            l4proto,
        } => (
            fd_type::IPV6_SOCK,
            FdInfo::Ipv6Sock {
                sip: *sip,
                dip: *dip,
                sport: *sport,
                dport: *dport,
                l4proto: *l4proto,
            },
        ),
        FdKind::Ipv4Server { ip, port, l4proto } => (
            fd_type::IPV4_SERVSOCK,
            FdInfo::Ipv4ServSock {
                ip: *ip,
                port: *port,
                l4proto: *l4proto,
            },
        ),
        FdKind::Ipv6Server { ip, port, l4proto } => (
            fd_type::IPV6_SERVSOCK,
            FdInfo::Ipv6ServSock {
                ip: *ip,
                port: *port,
                l4proto: *l4proto,
            },
        ),
        FdKind::Unix => (
            fd_type::UNIX_SOCK,
            FdInfo::UnixSock {
                source: 0,
                destination: 0,
                name: f.name.clone(),
            },
        ),
        FdKind::Directory => named(fd_type::DIRECTORY),
        FdKind::Pipe => named(fd_type::FIFO),
        FdKind::Event => named(fd_type::EVENT),
        FdKind::SignalFd => named(fd_type::SIGNALFD),
        FdKind::EventPoll => named(fd_type::EVENTPOLL),
        FdKind::Inotify => named(fd_type::INOTIFY),
        FdKind::TimerFd => named(fd_type::TIMERFD),
        FdKind::Netlink => named(fd_type::NETLINK),
        FdKind::Bpf => named(fd_type::BPF),
        FdKind::UserFaultFd => named(fd_type::USERFAULTFD),
        FdKind::IoUring => named(fd_type::IOURING),
        FdKind::MemFd => named(fd_type::MEMFD),
        FdKind::PidFd => named(fd_type::PIDFD),
        FdKind::Unknown => named(fd_type::UNSUPPORTED),
    };
    FdEntry {
        tid: pid,
        fd,
        ino: f.ino,
        fd_type: ty,
        info,
    }
}

/// What the machine-info block says about the machine under `proc_root`
/// (normally `/proc`). Values that cannot be read are left at zero.
pub fn machine_info(proc_root: &Path, hostname: &str) -> MachineInfo {
    let read = |name: &str| std::fs::read_to_string(proc_root.join(name)).unwrap_or_default();
    let cpuinfo = read("cpuinfo");
    let num_cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count() as u32;
    let memory_kb: u64 = read("meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let max_pid = read("sys/kernel/pid_max").trim().parse().unwrap_or(0);
    let boot_secs: u64 = read("stat")
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    MachineInfo {
        num_cpus,
        memory_size_bytes: memory_kb * 1024,
        max_pid,
        hostname: hostname.to_string(),
        boot_ts_epoch: boot_secs * 1_000_000_000,
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_and_its_processes() {
        let machine = machine_info(Path::new("/proc"), "here");
        assert!(machine.num_cpus >= 1);
        assert!(machine.memory_size_bytes > 0);
        assert!(machine.boot_ts_epoch > 0);
        let mut state = State::new();
        crate::state::procfs::scan(&mut state, Path::new("/proc")).unwrap();
        let entries = proc_entries(&state);
        let me = std::process::id() as i64;
        let mine = entries
            .iter()
            .find(|e| e.tid == me)
            .expect("this test's own process");
        assert_eq!(mine.pid, me);
        assert!(!mine.comm.is_empty());
    }

    #[test]
    fn open_fds_survive_a_capture_round_trip() {
        use crate::scap::{Capture, Writer};
        use std::net::{IpAddr, Ipv4Addr};
        let mut state = State::new();
        let mut file = Fd::new(FdKind::File, "/etc/shadow".into());
        file.open_flags = 1;
        file.dev = 0x803;
        file.ino = 42;
        state.insert_fd(7, 3, file);
        let local = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        state.insert_fd(
            7,
            4,
            Fd::new(
                FdKind::Ipv4 {
                    sip: local,
                    sport: 40000,
                    dip: peer,
                    dport: 443,
                    l4proto: 2,
                },
                "10.0.0.1:40000->10.0.0.2:443".into(),
            ),
        );
        state.insert_fd(9, 0, Fd::new(FdKind::Pipe, "pipe:[77]".into()));
        let entries = fd_entries(&state);
        assert_eq!(
            entries.iter().map(|e| (e.tid, e.fd)).collect::<Vec<_>>(),
            [(7, 3), (7, 4), (9, 0)]
        );

        let mut writer = Writer::new(Vec::new(), &MachineInfo::default()).unwrap();
        writer.write_fd_table(&entries).unwrap();
        let capture = Capture::from_bytes(writer.finish().unwrap()).unwrap();
        assert_eq!(capture.fds, entries);
        let replayed = State::from_capture(&capture);
        for pid in [7, 9] {
            assert_eq!(
                replayed.fds_of(pid),
                state.fds_of(pid),
                "the fds of pid {pid}"
            );
        }
    }
}
