//! The tables a capture starts with, taken from a running system's state,
//! so that a reader of the capture knows the processes that were already
//! running when it started.

use std::path::Path;

use super::tables::{MachineInfo, ProcEntry};
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
}
