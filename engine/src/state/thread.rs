//! Threads and processes.

use std::borrow::Cow;
use std::sync::Arc;

/// A NUL-separated list (arguments, environment, cgroups) kept as the
/// bytes the event carried, each part ended by a NUL: threads cloned from
/// a process share it, and it is split only when a field reads it. Parts
/// are UTF-8 text with invalid bytes replaced, as event lists are split.
#[derive(Clone, Default)]
pub struct NulList(Arc<[u8]>);

impl NulList {
    /// The list in `raw` as a parameter carries it: parts separated by
    /// NULs, a final NUL ending the last part rather than starting an
    /// empty one, and no bytes at all (or one NUL) an empty list.
    pub fn from_raw(raw: &[u8]) -> Self {
        let parts = raw.strip_suffix(&[0]).unwrap_or(raw);
        if parts.is_empty() {
            return NulList::default();
        }
        let mut bytes = Vec::with_capacity(parts.len() + 1);
        bytes.extend_from_slice(parts);
        bytes.push(0);
        NulList(bytes.into())
    }

    pub fn from_strings<S: AsRef<str>>(parts: &[S]) -> Self {
        let mut bytes = Vec::new();
        for p in parts {
            // Text decoded from bytes goes back to those bytes.
            bytes.extend_from_slice(&crate::text::raw_bytes(p.as_ref()));
            bytes.push(0);
        }
        NulList(bytes.into())
    }

    /// Whether [`NulList::from_raw`] of `raw` would hold the same bytes.
    pub fn is_raw(&self, raw: &[u8]) -> bool {
        let parts = raw.strip_suffix(&[0]).unwrap_or(raw);
        match self.0.split_last() {
            None => parts.is_empty(),
            Some((_, held)) => !parts.is_empty() && held == parts,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Cow<'_, str>> {
        // Every part ends with a NUL; no bytes, no parts.
        let parts = self.0.split_last().map(|(_, held)| held.split(|&c| c == 0));
        parts.into_iter().flatten().map(crate::text::decode)
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(Cow::into_owned).collect()
    }

    /// The parts joined by `sep`.
    pub fn join(&self, sep: &str) -> String {
        let mut out = String::with_capacity(self.0.len());
        for (i, p) in self.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(&p);
        }
        out
    }
}

/// Equal when the parts are (bytes that differ only in invalid UTF-8
/// give the same parts).
impl PartialEq for NulList {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 || self.iter().eq(other.iter())
    }
}

impl Eq for NulList {}

impl std::fmt::Debug for NulList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl From<Vec<String>> for NulList {
    fn from(parts: Vec<String>) -> Self {
        NulList::from_strings(&parts)
    }
}

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
    /// Arguments, split when a field reads them.
    pub args: NulList,
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
    /// Cgroups (`controller=path`), split when read.
    pub cgroups: NulList,
    /// Environment, split when a field reads it.
    pub env: NulList,
    pub cap_inheritable: u64,
    pub cap_permitted: u64,
    pub cap_effective: u64,
    pub exe_upper_layer: bool,
    pub exe_from_memfd: bool,
    pub exe_ino: u64,
    pub exe_ino_ctime: u64,
    pub exe_ino_mtime: u64,
    pub exe_lower_layer: bool,
    /// Process group id in the host pid namespace; -1 when no event said.
    pub pgid: i64,
    /// RLIMIT_NOFILE, memory (kB) and page faults, as of the thread's
    /// last execve, clone or procinfo event.
    pub fdlimit: i64,
    pub vmsize_kb: u32,
    pub vmrss_kb: u32,
    pub vmswap_kb: u32,
    pub pfmajor: u64,
    pub pfminor: u64,
    /// Start time of the init process of the thread's pid namespace.
    pub pidns_init_start_ts: u64,
    /// Creation time (ns since the epoch), 0 when unknown.
    pub clone_ts: u64,
    /// CPU times (user, system) of the thread's last two procinfo events,
    /// latest last, for thread.cpu.
    pub procinfo_cpu: [Option<(u64, u64)>; 2],
    /// Time of the last event of the thread, for eviction. The latest
    /// thread's events are written here only once another thread's event
    /// comes: [`crate::state::State::last_seen`] counts them.
    pub last_seen: u64,
}

impl Thread {
    /// `proc.cmdline`: the command name followed by the arguments.
    pub fn cmdline(&self) -> String {
        let mut s = self.comm.clone();
        for a in self.args.iter() {
            s.push(' ');
            s.push_str(&a);
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
pub fn container_id_from_cgroups<S: AsRef<str>>(cgroups: impl IntoIterator<Item = S>) -> String {
    for cg in cgroups {
        let cg = cg.as_ref();
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

/// What libsinsp makes up for a thread it cannot find (no clone seen, no
/// /proc entry): pid and parent -1, name and executable `<NA>`, user,
/// group and login user unknown. Fields of an unknown thread read from it,
/// so they show what Falco's show (`proc.name = <NA>`, `user.name = <NA>`,
/// `container.id = host`) rather than nothing.
pub fn unknown_thread() -> &'static Thread {
    static UNKNOWN: std::sync::OnceLock<Thread> = std::sync::OnceLock::new();
    UNKNOWN.get_or_init(|| Thread {
        tid: -1,
        pid: -1,
        ptid: -1,
        comm: "<NA>".into(),
        exe: "<NA>".into(),
        uid: u32::MAX,
        gid: u32::MAX,
        loginuid: u32::MAX,
        container_id: "host".into(),
        ..Thread::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lists_split_as_event_lists_do() {
        for raw in [
            &b""[..],
            b"\0",
            b"A=1",
            b"A=1\0",
            b"A=1\0B=2\0",
            b"A=1\0\0B=\0",
            b"\0\0",
            b"X=\xff\xfe\0Y=2",
        ] {
            let list = NulList::from_raw(raw);
            let split = crate::scap::reader::split_nul(raw);
            assert_eq!(list.to_vec(), split, "{raw:?}");
            assert_eq!(list.is_empty(), split.is_empty(), "{raw:?}");
            assert_eq!(list.join(" "), split.join(" "), "{raw:?}");
            assert!(list.is_raw(raw));
            assert_eq!(NulList::from_strings(&split), list, "{raw:?}");
        }
        for parts in [vec![], vec![""], vec!["", ""], vec!["a", ""], vec!["", "b"]] {
            assert_eq!(NulList::from_strings(&parts).to_vec(), parts);
        }
        assert_ne!(NulList::from_strings(&[""]), NulList::default());
        assert_ne!(NulList::from_raw(b"A=1"), NulList::from_raw(b"A=2"));
        assert!(!NulList::from_raw(b"A=1").is_raw(b"A=1\0B"));
    }

    #[test]
    fn finds_docker_and_crio_ids() {
        let id = "3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e";
        assert_eq!(
            container_id_from_cgroups([format!("cpu=/docker/{id}")]),
            "3ad7b26ded6d"
        );
        assert_eq!(
            container_id_from_cgroups([format!("cpu=/kubepods.slice/crio-{id}.scope")]),
            "3ad7b26ded6d"
        );
        assert_eq!(
            container_id_from_cgroups(["cpu=/user.slice/user-1000.slice"]),
            "host"
        );
    }
}
