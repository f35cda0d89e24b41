//! Every field of libsinsp's syscall filterchecks (falcosecurity/libs,
//! userspace/libsinsp/sinsp_filtercheck_*.cpp) resolves here with
//! Falco's name and value type, in the argument forms Falco accepts.
//!
//! None is left out: `evt.around[T]` (a time window compiled into
//! comparisons of the event time), the floating-point `proc.fdusage` and
//! `thread.cpu*`, `evt.abspath*` and `fs.path.*` all resolve.

use peregrine_engine::field::{FieldSource, FieldType};
use peregrine_engine::syscall_fields::SyscallFields;

/// (name, libsinsp's type) of every syscall field, as libsinsp lists them.
const LIBSINSP_FIELDS: &[(&str, &str)] = &[
    ("evt.latency", "Uint"),
    ("evt.latency.s", "Uint"),
    ("evt.latency.ns", "Uint"),
    ("evt.latency.quantized", "Uint"),
    ("evt.latency.human", "String"),
    ("evt.deltatime", "Uint"),
    ("evt.deltatime.s", "Uint"),
    ("evt.deltatime.ns", "Uint"),
    ("evt.outputtime", "String"),
    ("evt.dir", "String"),
    ("evt.type", "String"),
    ("evt.type.is", "Uint"),
    ("syscall.type", "String"),
    ("evt.category", "String"),
    ("evt.cpu", "Int"),
    ("evt.args", "String"),
    ("evt.arg", "String"),
    ("evt.rawarg", "Dyn"),
    ("evt.info", "String"),
    ("evt.buffer", "Bytes"),
    ("evt.buflen", "Uint"),
    ("evt.res", "String"),
    ("evt.rawres", "Int"),
    ("evt.failed", "Bool"),
    ("evt.is_io", "Bool"),
    ("evt.is_io_read", "Bool"),
    ("evt.is_io_write", "Bool"),
    ("evt.io_dir", "String"),
    ("evt.is_wait", "Bool"),
    ("evt.wait_latency", "Uint"),
    ("evt.is_syslog", "Bool"),
    ("evt.count", "Uint"),
    ("evt.count.error", "Uint"),
    ("evt.count.error.file", "Uint"),
    ("evt.count.error.net", "Uint"),
    ("evt.count.error.memory", "Uint"),
    ("evt.count.error.other", "Uint"),
    ("evt.count.exit", "Uint"),
    ("evt.count.procinfo", "Uint"),
    ("evt.count.threadinfo", "Uint"),
    ("evt.around", "Uint"),
    ("evt.abspath", "String"),
    ("evt.buflen.in", "Uint"),
    ("evt.buflen.out", "Uint"),
    ("evt.buflen.file", "Uint"),
    ("evt.buflen.file.in", "Uint"),
    ("evt.buflen.file.out", "Uint"),
    ("evt.buflen.net", "Uint"),
    ("evt.buflen.net.in", "Uint"),
    ("evt.buflen.net.out", "Uint"),
    ("evt.is_open_read", "Bool"),
    ("evt.is_open_write", "Bool"),
    ("evt.infra.docker.name", "String"),
    ("evt.infra.docker.container.id", "String"),
    ("evt.infra.docker.container.name", "String"),
    ("evt.infra.docker.container.image", "String"),
    ("evt.is_open_exec", "Bool"),
    ("evt.is_open_create", "Bool"),
    ("fd.num", "Int"),
    ("fd.type", "String"),
    ("fd.typechar", "String"),
    ("fd.name", "String"),
    ("fd.directory", "String"),
    ("fd.filename", "String"),
    ("fd.ip", "Ip"),
    ("fd.cip", "Ip"),
    ("fd.sip", "Ip"),
    ("fd.lip", "Ip"),
    ("fd.rip", "Ip"),
    ("fd.port", "Uint"),
    ("fd.cport", "Uint"),
    ("fd.sport", "Uint"),
    ("fd.lport", "Uint"),
    ("fd.rport", "Uint"),
    ("fd.l4proto", "String"),
    ("fd.sockfamily", "String"),
    ("fd.is_server", "Bool"),
    ("fd.uid", "String"),
    ("fd.containername", "String"),
    ("fd.containerdirectory", "String"),
    ("fd.proto", "Uint"),
    ("fd.cproto", "String"),
    ("fd.sproto", "String"),
    ("fd.lproto", "String"),
    ("fd.rproto", "String"),
    ("fd.net", "IpNet"),
    ("fd.cnet", "IpNet"),
    ("fd.snet", "IpNet"),
    ("fd.lnet", "IpNet"),
    ("fd.rnet", "IpNet"),
    ("fd.connected", "Bool"),
    ("fd.name_changed", "Bool"),
    ("fd.cip.name", "String"),
    ("fd.sip.name", "String"),
    ("fd.lip.name", "String"),
    ("fd.rip.name", "String"),
    ("fd.dev", "Int"),
    ("fd.dev.major", "Int"),
    ("fd.dev.minor", "Int"),
    ("fd.ino", "Int"),
    ("fd.nameraw", "String"),
    ("fd.types", "String"),
    ("fd.is_upper_layer", "Bool"),
    ("fd.is_lower_layer", "Bool"),
    ("fdlist.nums", "String"),
    ("fdlist.names", "String"),
    ("fdlist.cips", "String"),
    ("fdlist.sips", "String"),
    ("fdlist.cports", "String"),
    ("fdlist.sports", "String"),
    ("fs.path.name", "String"),
    ("fs.path.nameraw", "String"),
    ("fs.path.source", "String"),
    ("fs.path.sourceraw", "String"),
    ("fs.path.target", "String"),
    ("fs.path.targetraw", "String"),
    ("evt.num", "Uint"),
    ("evt.time", "String"),
    ("evt.time.s", "String"),
    ("evt.time.iso8601", "String"),
    ("evt.datetime", "String"),
    ("evt.datetime.s", "String"),
    ("evt.rawtime", "Uint"),
    ("evt.rawtime.s", "Uint"),
    ("evt.rawtime.ns", "Uint"),
    ("evt.reltime", "Uint"),
    ("evt.reltime.s", "Uint"),
    ("evt.reltime.ns", "Uint"),
    ("evt.pluginname", "String"),
    ("evt.plugininfo", "String"),
    ("evt.source", "String"),
    ("evt.is_async", "Bool"),
    ("evt.asynctype", "String"),
    ("evt.hostname", "String"),
    ("group.gid", "Uint"),
    ("group.name", "String"),
    ("proc.exe", "String"),
    ("proc.pexe", "String"),
    ("proc.aexe", "String"),
    ("proc.exepath", "String"),
    ("proc.pexepath", "String"),
    ("proc.aexepath", "String"),
    ("proc.name", "String"),
    ("proc.pname", "String"),
    ("proc.aname", "String"),
    ("proc.args", "String"),
    ("proc.aargs", "String"),
    ("proc.cmdline", "String"),
    ("proc.pcmdline", "String"),
    ("proc.acmdline", "String"),
    ("proc.cmdnargs", "Uint"),
    ("proc.cmdlenargs", "Uint"),
    ("proc.exeline", "String"),
    ("proc.env", "String"),
    ("proc.aenv", "String"),
    ("proc.cwd", "String"),
    ("proc.loginshellid", "Int"),
    ("proc.tty", "Uint"),
    ("proc.pid", "Int"),
    ("proc.ppid", "Int"),
    ("proc.apid", "Int"),
    ("proc.vpid", "Int"),
    ("proc.pvpid", "Int"),
    ("proc.sid", "Int"),
    ("proc.sname", "String"),
    ("proc.sid.exe", "String"),
    ("proc.sid.exepath", "String"),
    ("proc.vpgid", "Int"),
    ("proc.vpgid.name", "String"),
    ("proc.vpgid.exe", "String"),
    ("proc.vpgid.exepath", "String"),
    ("proc.pgid", "Int"),
    ("proc.pgid.name", "String"),
    ("proc.pgid.exe", "String"),
    ("proc.pgid.exepath", "String"),
    ("proc.duration", "Uint"),
    ("proc.ppid.duration", "Uint"),
    ("proc.pid.ts", "Uint"),
    ("proc.ppid.ts", "Uint"),
    ("proc.is_exe_writable", "Bool"),
    ("proc.is_exe_upper_layer", "Bool"),
    ("proc.is_exe_lower_layer", "Bool"),
    ("proc.is_exe_from_memfd", "Bool"),
    ("proc.is_sid_leader", "Bool"),
    ("proc.is_vpgid_leader", "Bool"),
    ("proc.is_pgid_leader", "Bool"),
    ("proc.exe_ino", "Int"),
    ("proc.exe_ino.ctime", "Uint"),
    ("proc.exe_ino.mtime", "Uint"),
    ("proc.exe_ino.ctime_duration_proc_start", "Uint"),
    ("proc.exe_ino.ctime_duration_pidns_start", "Uint"),
    ("proc.pidns_init_start_ts", "Uint"),
    ("thread.cap_permitted", "String"),
    ("thread.cap_inheritable", "String"),
    ("thread.cap_effective", "String"),
    ("proc.fdopencount", "Uint"),
    ("proc.fdlimit", "Int"),
    ("proc.fdusage", "Double"),
    ("proc.vmsize", "Uint"),
    ("proc.vmrss", "Uint"),
    ("proc.vmswap", "Uint"),
    ("thread.pfmajor", "Uint"),
    ("thread.pfminor", "Uint"),
    ("thread.tid", "Int"),
    ("thread.ismain", "Bool"),
    ("thread.vtid", "Int"),
    ("thread.nametid", "String"),
    ("thread.exectime", "Uint"),
    ("thread.totexectime", "Uint"),
    ("thread.cgroups", "String"),
    ("thread.cgroup", "String"),
    ("proc.nthreads", "Uint"),
    ("proc.nchilds", "Uint"),
    ("thread.cpu", "Double"),
    ("thread.cpu.user", "Double"),
    ("thread.cpu.system", "Double"),
    ("thread.vmsize", "Uint"),
    ("thread.vmrss", "Uint"),
    ("thread.vmsize.b", "Uint"),
    ("thread.vmrss.b", "Uint"),
    ("proc.stdin.type", "String"),
    ("proc.stdout.type", "String"),
    ("proc.stderr.type", "String"),
    ("proc.stdin.name", "String"),
    ("proc.stdout.name", "String"),
    ("proc.stderr.name", "String"),
    ("user.uid", "Uint"),
    ("user.name", "String"),
    ("user.homedir", "String"),
    ("user.shell", "String"),
    ("user.loginuid", "Int"),
    ("user.loginname", "String"),
];

const LEFT_OUT: &[&str] = &[];

/// The name and bracket argument a field that needs one is tried with.
fn with_argument(name: &str) -> (String, Option<&'static str>) {
    match name {
        "evt.arg" => ("evt.arg.fd".into(), None),
        "evt.rawarg" => ("evt.rawarg.fd".into(), None),
        "evt.type.is" => ("evt.type.is.open".into(), None),
        "thread.cgroup" => (name.into(), Some("cpu")),
        "evt.around" => (name.into(), Some("1404996934793590564")),
        _ => (name.into(), None),
    }
}

fn expected_type(libsinsp: &str) -> Option<&'static [FieldType]> {
    Some(match libsinsp {
        "String" => &[FieldType::String],
        "Uint" => &[FieldType::Uint],
        "Int" => &[FieldType::Int],
        "Bool" => &[FieldType::Bool],
        "Ip" => &[FieldType::Ip],
        // Network fields take an address or a network on the right.
        "IpNet" => &[FieldType::Ip, FieldType::IpNet],
        "Bytes" => &[FieldType::Bytes],
        "Double" => &[FieldType::Double],
        // evt.rawarg takes the type of the parameter it names.
        "Dyn" => return None,
        _ => panic!("type {libsinsp} not expected"),
    })
}

#[test]
fn every_libsinsp_syscall_field_resolves_with_falcos_type() {
    let mut source = SyscallFields::new();
    let mut failed = Vec::new();
    let mut resolved = 0;
    for &(name, ty) in LIBSINSP_FIELDS {
        if LEFT_OUT.contains(&name) {
            continue;
        }
        let (full, arg) = with_argument(name);
        match source.resolve(&full, arg) {
            Ok(r) => {
                if let Some(types) = expected_type(ty) {
                    if !types.contains(&r.ty) {
                        failed.push(format!("{full}: type {:?}, Falco's is {ty}", r.ty));
                        continue;
                    }
                }
                resolved += 1;
            }
            Err(e) => failed.push(format!("{full}: {e}")),
        }
    }
    println!(
        "{resolved} of {} libsinsp syscall fields resolve ({} left out)",
        LIBSINSP_FIELDS.len(),
        LEFT_OUT.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert_eq!(resolved + LEFT_OUT.len(), LIBSINSP_FIELDS.len());
}

#[test]
fn argument_forms_are_falcos() {
    let mut source = SyscallFields::new();
    // Ancestor fields: a numeric level, or none for every ancestor (each
    // compared alone: no list field, as in libsinsp).
    for name in ["proc.aexe", "proc.aargs", "proc.acmdline", "proc.aname"] {
        assert!(source.resolve(name, Some("2")).is_ok(), "{name}[2]");
        assert!(!source.resolve(name, None).unwrap().is_list, "{name}");
        assert!(source.resolve(name, Some("x")).is_err(), "{name}[x]");
    }
    // proc.aenv: a level or a variable name.
    assert!(source.resolve("proc.aenv", Some("1")).is_ok());
    assert!(source.resolve("proc.aenv", Some("HOME")).is_ok());
    assert!(source.resolve("proc.aenv", None).is_ok());
    // proc.args[N]: one argument.
    assert!(source.resolve("proc.args", Some("0")).is_ok());
    assert!(source.resolve("proc.args", Some("x")).is_err());
    // fd.types: every fd's type, or fd N's.
    assert!(source.resolve("fd.types", None).unwrap().is_list);
    assert!(!source.resolve("fd.types", Some("1")).unwrap().is_list);
    // thread.cgroup needs its controller.
    assert!(source.resolve("thread.cgroup", None).is_err());
    // evt.type.is names an event type after a dot, or its number.
    assert!(source.resolve("evt.type.is.execve", None).is_ok());
    assert!(source.resolve("evt.type.is.3", None).is_ok());
    assert!(source.resolve("evt.type.is.no_such_event", None).is_err());
    assert!(source.resolve("evt.type.is", None).is_err());
    // Fields without arguments refuse one.
    assert!(source.resolve("proc.nthreads", Some("1")).is_err());
    assert!(source.resolve("proc.nosuchfield", None).is_err());
}

/// `peregrine --list` prints each field's description: every one says
/// what the field holds, and each name is listed once.
#[test]
fn every_listed_field_says_what_it_holds() {
    let source = SyscallFields::new();
    let mut seen = std::collections::BTreeSet::new();
    for f in source.fields() {
        assert!(seen.insert(f.name), "{} listed twice", f.name);
        assert!(
            !f.description.trim().is_empty(),
            "{}: {:?}",
            f.name,
            f.description
        );
        assert!(
            !f.description.to_lowercase().contains("not available"),
            "{}: {}",
            f.name,
            f.description
        );
    }
    for &(name, _) in LIBSINSP_FIELDS {
        if !LEFT_OUT.contains(&name) {
            assert!(seen.contains(name), "{name} is not listed");
        }
    }
}
