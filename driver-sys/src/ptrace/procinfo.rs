//! What the module reads from the task struct, read from /proc/PID here:
//! the process fields of clone and execve exits. A field that cannot be
//! read (the process is gone) is left at zero or empty.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// argv and environ areas are cut here, as the module does (one page).
pub const ARGS_MAX: usize = 4096;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    /// The argv area: strings with their NULs, cut at ARGS_MAX.
    pub cmdline: Vec<u8>,
    pub tgid: i64,
    pub ppid: i64,
    pub cwd: Vec<u8>,
    pub fdlimit: i64,
    pub pgft_maj: u64,
    pub pgft_min: u64,
    pub vm_size_kb: u32,
    pub vm_rss_kb: u32,
    pub vm_swap_kb: u32,
    pub comm: Vec<u8>,
    /// "subsys=/path\0..." then "unified=/path\0".
    pub cgroups: Vec<u8>,
    pub euid: u32,
    pub egid: u32,
    /// Ids in the innermost pid namespace.
    pub vtid: i64,
    pub vpid: i64,
    /// More than one level in NSpid: the task lives in a child pid namespace.
    pub in_child_pidns: bool,
    pub tty: u32,
    pub pgid: i64,
    pub loginuid: u32,
    pub cap_inh: u64,
    pub cap_prm: u64,
    pub cap_eff: u64,
}

fn dir(tid: i32) -> PathBuf {
    PathBuf::from(format!("/proc/{tid}"))
}

/// Cuts an argv/environ area at ARGS_MAX and ends it with a NUL, as the
/// module does (a process that rewrote its argv may have left none).
pub fn cut_area(mut area: Vec<u8>) -> Vec<u8> {
    area.truncate(ARGS_MAX);
    if let Some(last) = area.last_mut() {
        *last = 0;
    }
    area
}

impl ProcInfo {
    /// The fields of thread `tid` (its process's argv, its own ids).
    pub fn read(tid: i32) -> ProcInfo {
        let d = dir(tid);
        let mut info = ProcInfo {
            cmdline: cut_area(std::fs::read(d.join("cmdline")).unwrap_or_default()),
            cwd: std::fs::read_link(d.join("cwd"))
                .map(|p| p.into_os_string().into_encoded_bytes())
                .unwrap_or_default(),
            comm: std::fs::read(d.join("comm")).unwrap_or_default(),
            loginuid: std::fs::read_to_string(d.join("loginuid"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(u32::MAX),
            fdlimit: std::fs::read_to_string(d.join("limits"))
                .ok()
                .and_then(|s| parse_nofile_limit(&s))
                .unwrap_or(0),
            cgroups: std::fs::read_to_string(d.join("cgroup"))
                .map(|s| cgroups_param(&s))
                .unwrap_or_default(),
            ..ProcInfo::default()
        };
        if info.comm.last() == Some(&b'\n') {
            info.comm.pop();
        }
        if let Ok(status) = std::fs::read_to_string(d.join("status")) {
            info.apply_status(&status);
        }
        if let Ok(stat) = std::fs::read_to_string(d.join("stat")) {
            info.apply_stat(&stat);
        }
        info
    }

    fn apply_status(&mut self, status: &str) {
        for line in status.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let fields: Vec<&str> = value.split_whitespace().collect();
            let num = |i: usize| fields.get(i).and_then(|v| v.parse::<i64>().ok());
            match key {
                "Tgid" => self.tgid = num(0).unwrap_or(0),
                "PPid" => self.ppid = num(0).unwrap_or(0),
                "Uid" => self.euid = num(1).unwrap_or(0) as u32,
                "Gid" => self.egid = num(1).unwrap_or(0) as u32,
                "VmSize" => self.vm_size_kb = num(0).unwrap_or(0) as u32,
                "VmRSS" => self.vm_rss_kb = num(0).unwrap_or(0) as u32,
                "VmSwap" => self.vm_swap_kb = num(0).unwrap_or(0) as u32,
                "NSpid" => {
                    self.vtid = fields.last().and_then(|v| v.parse().ok()).unwrap_or(0);
                    self.in_child_pidns = fields.len() > 1;
                }
                "NStgid" => self.vpid = fields.last().and_then(|v| v.parse().ok()).unwrap_or(0),
                "CapInh" => self.cap_inh = u64::from_str_radix(value.trim(), 16).unwrap_or(0),
                "CapPrm" => self.cap_prm = u64::from_str_radix(value.trim(), 16).unwrap_or(0),
                "CapEff" => self.cap_eff = u64::from_str_radix(value.trim(), 16).unwrap_or(0),
                _ => {}
            }
        }
    }

    /// /proc/PID/stat: the fields after the parenthesised comm.
    fn apply_stat(&mut self, stat: &str) {
        let Some(close) = stat.rfind(')') else {
            return;
        };
        // From field 3 (state) on, 0-based here.
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        self.pgid = num(2);
        self.tty = num(4) as u32;
        self.pgft_min = num(7) as u64;
        self.pgft_maj = num(9) as u64;
    }
}

fn parse_nofile_limit(limits: &str) -> Option<i64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    Some(if soft == "unlimited" {
        -1
    } else {
        soft.parse().ok()?
    })
}

/// /proc/PID/cgroup in the module's parameter form: one "subsys=/path"
/// per v1 controller, then "unified=/path" for the v2 hierarchy.
pub fn cgroups_param(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut unified = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            unified = Some(path);
            continue;
        }
        for c in controllers.split(',') {
            let c = c.strip_prefix("name=").unwrap_or(c);
            out.extend_from_slice(format!("{c}={path}\0").as_bytes());
        }
    }
    if let Some(path) = unified {
        out.extend_from_slice(format!("unified={path}\0").as_bytes());
    }
    out
}

/// The executable of a process: its path and inode facts.
#[derive(Debug, Default)]
pub struct ExeInfo {
    pub path: Vec<u8>,
    pub ino: u64,
    pub ctime_ns: u64,
    pub mtime_ns: u64,
}

impl ExeInfo {
    pub fn read(tid: i32) -> ExeInfo {
        let link = dir(tid).join("exe");
        let mut info = ExeInfo {
            path: std::fs::read_link(&link)
                .map(|p| p.into_os_string().into_encoded_bytes())
                .unwrap_or_default(),
            ..ExeInfo::default()
        };
        if let Ok(m) = std::fs::metadata(&link) {
            info.ino = m.ino();
            info.ctime_ns = (m.ctime() as u64) * 1_000_000_000 + m.ctime_nsec() as u64;
            info.mtime_ns = (m.mtime() as u64) * 1_000_000_000 + m.mtime_nsec() as u64;
        }
        info
    }
}

/// The environment area of a process, cut like argv.
pub fn environ(tid: i32) -> Vec<u8> {
    cut_area(std::fs::read(dir(tid).join("environ")).unwrap_or_default())
}

/// Device (the kernel's new_encode_dev form) and inode of a tracee's fd.
pub fn fd_dev_ino(tid: i32, fd: i64) -> (u32, u64) {
    match std::fs::metadata(dir(tid).join("fd").join(fd.to_string())) {
        Ok(m) => (encode_dev(m.dev()), m.ino()),
        Err(_) => (0, 0),
    }
}

/// The kernel's new_encode_dev: 12-bit major, 20-bit minor, interleaved.
pub fn encode_dev(dev: u64) -> u32 {
    let major = libc::major(dev);
    let minor = libc::minor(dev);
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// Start time (ns since boot) of the init process of our pid namespace.
pub fn pidns_init_start_ns() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/1/stat") else {
        return 0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    // Field 22, starttime, in clock ticks: index 19 after the comm.
    let ticks: u64 = stat[close + 1..]
        .split_whitespace()
        .nth(19)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz <= 0 {
        return 0;
    }
    ticks.saturating_mul(1_000_000_000 / hz as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_lines_become_subsys_pairs_and_unified() {
        let text = "12:cpu,cpuacct:/docker/abc\n1:name=systemd:/init.scope\n0::/user.slice\n";
        assert_eq!(
            cgroups_param(text),
            b"cpu=/docker/abc\0cpuacct=/docker/abc\0systemd=/init.scope\0unified=/user.slice\0"
        );
    }

    fn effective_uid() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    }

    #[test]
    fn our_own_process_reads_back() {
        let me = std::process::id() as i32;
        let info = ProcInfo::read(me);
        assert_eq!(info.tgid, me as i64);
        assert_eq!(info.ppid, nix::unistd::getppid().as_raw() as i64);
        assert_eq!(info.euid, effective_uid());
        assert!(!info.comm.is_empty() && !info.comm.ends_with(b"\n"));
        assert!(info.cmdline.ends_with(b"\0"));
        assert!(info.vm_size_kb > 0);
        assert!(info.fdlimit != 0);
        let cwd = std::env::current_dir().unwrap().into_os_string();
        assert_eq!(info.cwd, cwd.into_encoded_bytes());
        let exe = ExeInfo::read(me);
        assert_eq!(
            exe.path,
            std::env::current_exe()
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        );
        assert!(exe.ino > 0 && exe.mtime_ns > 0);
    }

    #[test]
    fn limits_and_dev_encoding() {
        let limits = "Limit  Soft Limit Hard Limit Units\nMax open files            1024                 524288               files\n";
        assert_eq!(parse_nofile_limit(limits), Some(1024));
        assert_eq!(encode_dev(libc::makedev(8, 1)), 0x801);
        assert_eq!(encode_dev(libc::makedev(259, 0x12345)), 0x1231_0345);
        assert_eq!(cut_area(vec![b'a'; 5000]).len(), ARGS_MAX);
        assert_eq!(cut_area(vec![b'a'; 5000])[ARGS_MAX - 1], 0);
        assert_eq!(cut_area(b"sh\0-c\0".to_vec()), b"sh\0-c\0");
        assert_eq!(cut_area(b"rewritten title".to_vec()), b"rewritten titl\0");
        assert!(cut_area(Vec::new()).is_empty());
    }
}
