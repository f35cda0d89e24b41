//! Seeds the state from a live system's /proc: every thread with its
//! command, arguments, working directory, ids, cgroups and fds.

use super::fd::{Fd, FdKind};
use super::thread::{container_id_from_cgroups, Thread};
use super::{with_slash, State};
use crate::text::decode_owned;
use std::fs;
use std::path::Path;

/// Reads every readable thread under `proc_root` (normally `/proc`) into
/// `state`. Threads that vanish while being read are skipped. Returns the
/// number of threads added.
pub fn scan(state: &mut State, proc_root: &Path) -> std::io::Result<usize> {
    let mut added = 0;
    for entry in fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i64>().ok())
        else {
            continue;
        };
        let pdir = entry.path();
        let Ok(tasks) = fs::read_dir(pdir.join("task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i64>().ok())
            else {
                continue;
            };
            if let Some(t) = read_thread(&task.path(), &pdir, pid, tid) {
                state.insert_thread(t);
                added += 1;
            }
        }
        read_fds(state, &pdir, pid);
    }
    Ok(added)
}

fn read_thread(tdir: &Path, pdir: &Path, pid: i64, tid: i64) -> Option<Thread> {
    // Names, paths and the command line are bytes: decoded whole, so a
    // process whose name is not UTF-8 is still loaded (and matched raw).
    let comm = decode_owned(fs::read(tdir.join("comm")).ok()?);
    let comm = comm.trim_end().to_string();
    let cmdline = fs::read(pdir.join("cmdline")).unwrap_or_default();
    let mut argv = crate::scap::reader::split_nul(&cmdline).into_iter();
    let exe = argv.next().unwrap_or_else(|| comm.clone());
    let status = fs::read_to_string(tdir.join("status")).unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
    };
    let ptid = field("PPid:")
        .and_then(|v| v.first()?.parse().ok())
        .unwrap_or(0);
    let uid = field("Uid:")
        .and_then(|v| v.get(1)?.parse().ok())
        .unwrap_or(0);
    let gid = field("Gid:")
        .and_then(|v| v.get(1)?.parse().ok())
        .unwrap_or(0);
    let stat = decode_owned(fs::read(tdir.join("stat")).unwrap_or_default());
    // Fields after the ")" that closes the command: state ppid pgrp session tty.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let nums: Vec<i64> = after
        .split_whitespace()
        .skip(1)
        .take(4)
        .filter_map(|s| s.parse().ok())
        .collect();
    let cgroups: Vec<String> = fs::read_to_string(pdir.join("cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrl, path) = (it.next()?, it.next()?, it.next()?);
            Some(format!(
                "{}={path}",
                if ctrl.is_empty() { "unified" } else { ctrl }
            ))
        })
        .collect();
    let loginuid = fs::read_to_string(pdir.join("loginuid"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    Some(Thread {
        tid,
        pid,
        ptid,
        sid: nums.get(2).copied().unwrap_or(-1),
        vpgid: nums.get(1).copied().unwrap_or(-1),
        // Read from the host's /proc: the group as the host sees it.
        pgid: nums.get(1).copied().unwrap_or(-1),
        tty: nums.get(3).copied().unwrap_or(0) as u32,
        comm,
        exepath: link_text(&pdir.join("exe")).unwrap_or_else(|| exe.clone()),
        exe,
        args: super::NulList::from_strings(&argv.collect::<Vec<_>>()),
        cwd: with_slash(link_text(&pdir.join("cwd")).unwrap_or_default()),
        uid,
        gid,
        loginuid: loginuid.unwrap_or(u32::MAX),
        vtid: tid,
        vpid: pid,
        container_id: container_id_from_cgroups(&cgroups),
        cgroups: super::NulList::from_strings(&cgroups),
        ..Thread::default()
    })
}

/// A symlink's target, its bytes kept.
fn link_text(link: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStringExt;
    fs::read_link(link)
        .ok()
        .map(|target| decode_owned(target.into_os_string().into_vec()))
}

fn read_fds(state: &mut State, pdir: &Path, pid: i64) {
    let Ok(dir) = fs::read_dir(pdir.join("fd")) else {
        return;
    };
    for e in dir.flatten() {
        let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<i64>().ok()) else {
            continue;
        };
        let Some(t) = link_text(&e.path()) else {
            continue;
        };
        let f = if t.starts_with("pipe:") {
            Fd::new(FdKind::Pipe, String::new())
        } else if t.starts_with("socket:") {
            Fd::new(FdKind::Unknown, t)
        } else if t.starts_with("anon_inode:") {
            let kind = match t.as_str() {
                "anon_inode:[eventfd]" => FdKind::Event,
                "anon_inode:[eventpoll]" => FdKind::EventPoll,
                "anon_inode:[signalfd]" => FdKind::SignalFd,
                "anon_inode:[timerfd]" => FdKind::TimerFd,
                "anon_inode:inotify" => FdKind::Inotify,
                _ => FdKind::Unknown,
            };
            Fd::new(kind, String::new())
        } else {
            let is_dir = fs::metadata(e.path()).map(|m| m.is_dir()).unwrap_or(false);
            Fd::new(
                if is_dir {
                    FdKind::Directory
                } else {
                    FdKind::File
                },
                t,
            )
        };
        state.insert_fd(pid, fd, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_own_process() {
        let mut s = State::new();
        let n = scan(&mut s, Path::new("/proc")).unwrap();
        assert!(n > 0);
        let me = std::process::id() as i64;
        let t = s.thread(me).expect("own thread");
        assert_eq!(t.pid, me);
        assert!(t.exepath.starts_with('/'), "{}", t.exepath);
        assert!(s.fds_of(me).map(|f| !f.is_empty()).unwrap_or(false));
    }
}
