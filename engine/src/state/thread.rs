//! Threads and processes.

/// One thread. The fields Falco's `proc.*`, `thread.*` and `user.*`
/// fields read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Thread {
    pub tid: i64,
    pub pid: i64,
    pub ptid: i64,
    pub sid: i64,
    pub vpgid: i64,
    /// Command name (`proc.name`).
    pub comm: String,
    /// argv[0] (`proc.exe`).
    pub exe: String,
    /// Full executable path (`proc.exepath`).
    pub exepath: String,
    pub args: Vec<String>,
    /// Working directory, ending with '/'.
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub loginuid: u32,
    pub tty: u32,
    pub vtid: i64,
    pub vpid: i64,
    pub exe_writable: bool,
    /// "host" outside containers.
    pub container_id: String,
    pub cgroups: Vec<String>,
    pub env: Vec<String>,
    pub cap_inheritable: u64,
    pub cap_permitted: u64,
    pub cap_effective: u64,
    pub exe_upper_layer: bool,
    pub exe_from_memfd: bool,
    pub exe_ino: u64,
    pub exe_ino_ctime: u64,
    pub exe_ino_mtime: u64,
    /// Creation time (ns since the epoch), 0 when unknown.
    pub clone_ts: u64,
    /// Time of the last event of the thread, for eviction.
    pub last_seen: u64,
}

impl Thread {
    /// `proc.cmdline`: the command name followed by the arguments.
    pub fn cmdline(&self) -> String {
        let mut s = self.comm.clone();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// `proc.args`: the arguments joined by spaces.
    pub fn args_joined(&self) -> String {
        self.args.join(" ")
    }

    pub fn is_main_thread(&self) -> bool {
        self.tid == self.pid
    }
}

/// The container id a cgroup list reveals (first 12 hex digits of a
/// 64-digit id of docker, containerd, cri-o or podman), or "host".
pub fn container_id_from_cgroups(cgroups: &[String]) -> String {
    for cg in cgroups {
        // No room for a 64-digit id: most host cgroups ("cpu=/user.slice").
        if cg.len() < 64 {
            continue;
        }
        let path = cg.split_once('=').map(|(_, p)| p).unwrap_or(cg);
        for seg in path.rsplit('/') {
            let seg = seg.strip_suffix(".scope").unwrap_or(seg);
            let id = seg.rsplit(['-', ':']).next().unwrap_or(seg);
            if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return id[..12].to_string();
            }
        }
    }
    "host".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_docker_and_crio_ids() {
        let id = "3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e";
        assert_eq!(
            container_id_from_cgroups(&[format!("cpu=/docker/{id}")]),
            "3ad7b26ded6d"
        );
        assert_eq!(
            container_id_from_cgroups(&[format!("cpu=/kubepods.slice/crio-{id}.scope")]),
            "3ad7b26ded6d"
        );
        assert_eq!(
            container_id_from_cgroups(&["cpu=/user.slice/user-1000.slice".into()]),
            "host"
        );
    }
}
