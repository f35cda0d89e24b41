//! A test-only syscall FieldSource: it knows the field names and types
//! listed here and a table of event types, and reads values from a map.
//! The real syscall source (another module) replaces it at integration.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use peregrine_engine::field::{
    FieldError, FieldInfo, FieldSource, FieldType, ResolvedField, Value,
};

const FIELDS: &[(&str, FieldType, bool)] = &[
    ("evt.type", FieldType::String, false),
    ("evt.dir", FieldType::String, false),
    ("evt.num", FieldType::Uint, false),
    ("evt.res", FieldType::String, false),
    ("evt.rawres", FieldType::Int, false),
    ("evt.time", FieldType::Uint, false),
    ("evt.hostname", FieldType::String, false),
    ("evt.args", FieldType::String, false),
    ("evt.buffer", FieldType::Bytes, false),
    ("evt.is_open_read", FieldType::Bool, false),
    ("evt.is_open_write", FieldType::Bool, false),
    ("evt.is_open_exec", FieldType::Bool, false),
    ("proc.name", FieldType::String, false),
    ("proc.pname", FieldType::String, false),
    ("proc.exe", FieldType::String, false),
    ("proc.exepath", FieldType::String, false),
    ("proc.pexe", FieldType::String, false),
    ("proc.pexepath", FieldType::String, false),
    ("proc.cmdline", FieldType::String, false),
    ("proc.pcmdline", FieldType::String, false),
    ("proc.args", FieldType::String, false),
    ("proc.cwd", FieldType::String, false),
    ("proc.env", FieldType::String, false),
    ("proc.tty", FieldType::Uint, false),
    ("proc.pid", FieldType::Uint, false),
    ("proc.ppid", FieldType::Uint, false),
    ("proc.vpid", FieldType::Uint, false),
    ("proc.sid", FieldType::Uint, false),
    ("proc.vpgid", FieldType::Uint, false),
    ("proc.vpgid.name", FieldType::String, false),
    ("proc.vpgid.exe", FieldType::String, false),
    ("proc.is_vpgid_leader", FieldType::Bool, false),
    ("proc.sname", FieldType::String, false),
    ("proc.duration", FieldType::Uint, false),
    ("proc.ppid.duration", FieldType::Uint, false),
    ("proc.exe_ino", FieldType::Uint, false),
    ("proc.exe_ino.ctime", FieldType::Uint, false),
    ("proc.exe_ino.mtime", FieldType::Uint, false),
    (
        "proc.exe_ino.ctime_duration_proc_start",
        FieldType::Uint,
        false,
    ),
    ("proc.is_exe_from_memfd", FieldType::Bool, false),
    ("proc.is_exe_upper_layer", FieldType::Bool, false),
    ("proc.aname", FieldType::String, false),
    ("proc.apid", FieldType::Uint, true),
    ("proc.aexepath", FieldType::String, true),
    ("thread.cap_effective", FieldType::String, false),
    ("thread.cap_permitted", FieldType::String, false),
    ("user.name", FieldType::String, false),
    ("user.uid", FieldType::Uint, false),
    ("user.loginuid", FieldType::Int, false),
    ("user.loginname", FieldType::String, false),
    ("group.gid", FieldType::Uint, false),
    ("group.name", FieldType::String, false),
    ("fd.name", FieldType::String, false),
    ("fd.nameraw", FieldType::String, false),
    ("fd.name_changed", FieldType::Bool, false),
    ("fd.directory", FieldType::String, false),
    ("fd.filename", FieldType::String, false),
    ("fd.num", FieldType::Int, false),
    ("fd.type", FieldType::String, false),
    ("fd.typechar", FieldType::String, false),
    ("fd.types", FieldType::String, true),
    ("fd.sockfamily", FieldType::String, false),
    ("fd.l4proto", FieldType::String, false),
    ("fd.connected", FieldType::Bool, false),
    ("fd.ip", FieldType::Ip, false),
    ("fd.cip", FieldType::Ip, false),
    ("fd.sip", FieldType::Ip, false),
    ("fd.rip", FieldType::Ip, false),
    ("fd.lip", FieldType::Ip, false),
    ("fd.net", FieldType::IpNet, false),
    ("fd.cnet", FieldType::IpNet, false),
    ("fd.snet", FieldType::IpNet, false),
    ("fd.rnet", FieldType::IpNet, false),
    ("fd.cip.name", FieldType::String, false),
    ("fd.sip.name", FieldType::String, false),
    ("fd.rip.name", FieldType::String, false),
    ("fd.lip.name", FieldType::String, false),
    ("fd.port", FieldType::Uint, false),
    ("fd.cport", FieldType::Uint, false),
    ("fd.sport", FieldType::Uint, false),
    ("fd.lport", FieldType::Uint, false),
    ("fd.rport", FieldType::Uint, false),
    ("container.id", FieldType::String, false),
    ("container.name", FieldType::String, false),
    ("container.image.repository", FieldType::String, false),
    ("container.image.tag", FieldType::String, false),
    ("container.info", FieldType::String, false),
    ("container.privileged", FieldType::Bool, false),
    ("container.start_ts", FieldType::Uint, false),
    ("container.mounts", FieldType::String, false),
    ("container.mount.dest", FieldType::String, false),
    ("k8s.ns.name", FieldType::String, false),
    ("k8s.pod.name", FieldType::String, false),
];

const EVENT_TYPES: &[&str] = &[
    "open",
    "openat",
    "openat2",
    "creat",
    "execve",
    "execveat",
    "connect",
    "accept",
    "accept4",
    "listen",
    "socket",
    "bind",
    "sendto",
    "sendmsg",
    "recvfrom",
    "recvmsg",
    "read",
    "write",
    "close",
    "chmod",
    "fchmod",
    "fchmodat",
    "mkdir",
    "mkdirat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "dup",
    "dup2",
    "dup3",
    "fork",
    "vfork",
    "clone",
    "clone3",
    "ptrace",
    "setns",
    "setuid",
    "setgid",
    "setresuid",
    "setresgid",
    "mount",
    "umount",
    "umount2",
    "init_module",
    "finit_module",
    "madvise",
    "userfaultfd",
    "procexit",
    "chdir",
    "fchdir",
    "pipe",
    "pipe2",
    "kill",
    "memfd_create",
    "bpf",
    "capset",
    "unshare",
    "prctl",
    "mmap",
    "mprotect",
    "sendfile",
    "pwrite",
    "pread",
    "ioctl",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "truncate",
    "ftruncate",
    "access",
    "faccessat",
    "stat",
    "lstat",
    "fstat",
    "container",
    "switch",
    "signaldeliver",
    "copy_file_range",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "delete_module",
    "execve_exit",
    "pidfd_getfd",
    "pidfd_open",
    "mknod",
    "mknodat",
    "quotactl",
    "shutdown",
];

/// What a test event carries: its type name and field values by name.
#[derive(Debug, Default, Clone)]
pub struct TestEvent {
    pub evt_type: String,
    pub values: HashMap<String, Vec<Value<'static>>>,
}

impl TestEvent {
    pub fn new(evt_type: &str) -> Self {
        let mut e = TestEvent {
            evt_type: evt_type.to_string(),
            values: HashMap::new(),
        };
        e.values.insert(
            "evt.type".into(),
            vec![Value::Str(evt_type.to_string().into())],
        );
        e
    }
    pub fn with(mut self, field: &str, value: Value<'static>) -> Self {
        self.values
            .entry(field.to_string())
            .or_default()
            .push(value);
        self
    }
    pub fn s(self, field: &str, value: &str) -> Self {
        self.with(field, Value::Str(value.to_string().into()))
    }
}

#[derive(Debug, Default)]
pub struct TestSyscallSource {
    /// Resolved handles: field name with argument, as the event map key.
    keys: Vec<String>,
    /// How many times a field was extracted, for tests of what is read.
    extracts: std::cell::Cell<usize>,
}

impl TestSyscallSource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fields extracted so far, one per call.
    pub fn extracts(&self) -> usize {
        self.extracts.get()
    }
}

impl FieldSource for TestSyscallSource {
    type Event<'e> = TestEvent;

    fn name(&self) -> &'static str {
        "syscall"
    }

    fn resolve(&mut self, name: &str, arg: Option<&str>) -> Result<ResolvedField, FieldError> {
        let (ty, is_list) = if let Some((_, ty, list)) = FIELDS.iter().find(|(n, _, _)| *n == name)
        {
            (*ty, *list && arg.is_none())
        } else if name == "evt.arg" && arg.is_some() || name.starts_with("evt.arg.") {
            (FieldType::String, false)
        } else {
            return Err(FieldError::Unknown(name.to_string()));
        };
        let key = match arg {
            Some(a) => format!("{name}[{a}]"),
            None => name.to_string(),
        };
        self.keys.push(key);
        Ok(ResolvedField {
            id: (self.keys.len() - 1) as u32,
            arg: None,
            ty,
            is_list,
        })
    }

    fn extract<'e>(&self, field: &ResolvedField, event: &TestEvent, out: &mut Vec<Value<'e>>) {
        self.extracts.set(self.extracts.get() + 1);
        if let Some(vals) = self
            .keys
            .get(field.id as usize)
            .and_then(|k| event.values.get(k))
        {
            out.extend(vals.iter().cloned());
        }
    }

    fn event_types_named(&self, name: &str) -> Option<Vec<u16>> {
        EVENT_TYPES
            .iter()
            .position(|t| *t == name)
            .map(|i| vec![i as u16])
    }

    fn event_type(&self, event: &TestEvent) -> Option<u16> {
        EVENT_TYPES
            .iter()
            .position(|t| *t == event.evt_type)
            .map(|i| i as u16)
    }

    fn fields(&self) -> &[FieldInfo] {
        &[]
    }
}

/// The shared conformance kit, or None (the caller prints a SKIP line).
pub fn conformance_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance");
    dir.is_dir().then_some(dir)
}

/// The kit's `.scap` captures, or None when `../shared` is absent.
pub fn kit_captures() -> Option<Vec<PathBuf>> {
    let root = conformance_dir()?;
    let mut out = Vec::new();
    for dir in ["falco-regression/trace_files", "captures"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        out.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "scap")),
        );
    }
    out.sort();
    (!out.is_empty()).then_some(out)
}

/// Whether Debian's sysdig (the oracle) is installed.
pub fn sysdig_available() -> bool {
    std::process::Command::new("sysdig")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
