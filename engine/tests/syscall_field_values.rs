//! Values of the fields libsinsp documents, over hand-built events in the
//! layout current drivers emit (one exit event per call with every
//! parameter): a shell forks, the child execs, opens, reads, connects and
//! polls. Each expected value is what Falco's field documentation and
//! libsinsp's extraction give for that event.

use peregrine_engine::event::table::event_types_named;
use peregrine_engine::event::EventView;
use peregrine_engine::field::{FieldSource, Value};
use peregrine_engine::output::OutputFormat;
use peregrine_engine::state::{State, Thread, Users};
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

mod raw_events;
use raw_events::{event, i64b, s, u32b, u64b};

/// The newest exit event type named `name`.
fn exit_type(name: &str) -> u16 {
    event_types_named(name)
        .into_iter()
        .filter(|t| t % 2 == 1)
        .max()
        .unwrap_or_else(|| panic!("no exit event {name}"))
}

/// Reads fields of events applied to a state, in order.
struct Run {
    state: State,
    fields: SyscallFields,
}

impl Run {
    fn apply(&mut self, raw: &[u8]) {
        self.state.apply(&EventView::parse(raw).unwrap());
    }

    fn get(&mut self, raw: &[u8], name: &str, arg: Option<&str>) -> Vec<String> {
        let ev = EventView::parse(raw).unwrap();
        let f = self
            .fields
            .resolve(name, arg)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut out: Vec<Value<'_>> = Vec::new();
        self.fields
            .extract(&f, &SyscallEvent::new(&ev, &self.state), &mut out);
        out.iter().map(|v| v.to_string()).collect()
    }

    fn one(&mut self, raw: &[u8], name: &str) -> String {
        let (name, arg) = match name.split_once('[') {
            Some((n, rest)) => (n, Some(rest.trim_end_matches(']'))),
            None => (name, None),
        };
        let v = self.get(raw, name, arg);
        assert_eq!(v.len(), 1, "{name}[{arg:?}]: {v:?}");
        v[0].clone()
    }

    fn none(&mut self, raw: &[u8], name: &str) {
        let v = self.get(raw, name, None);
        assert!(v.is_empty(), "{name} should have no value: {v:?}");
    }
}

const CGROUP: &str =
    "cpu,cpuacct=/docker/3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e";
/// 2023-11-14T22:13:20.123456789Z
const T0: u64 = 1_700_000_000_123_456_789;

fn started() -> Run {
    let mut state = State::new();
    let base = |tid, ptid, comm: &str, env: &[&str]| Thread {
        tid,
        pid: tid,
        ptid,
        comm: comm.into(),
        exe: comm.into(),
        exepath: format!("/usr/bin/{comm}"),
        cwd: "/home/u/".into(),
        uid: 1000,
        gid: 1000,
        vpid: tid,
        sid: 100,
        vpgid: 100,
        container_id: "host".into(),
        env: peregrine_engine::state::NulList::from_strings(env),
        ..Thread::default()
    };
    state.insert_thread(base(1, 0, "systemd", &[]));
    state.insert_thread(base(90, 1, "sshd", &["LANG=C"]));
    state.insert_thread(base(100, 90, "bash", &["HOME=/home/u", "SHELL=/bin/bash"]));
    Run {
        state,
        fields: SyscallFields::new(),
    }
}

/// bash (100) forks 200, which execs `cat notes.txt -n`.
fn fork_and_exec(run: &mut Run) -> Vec<u8> {
    let clone = exit_type("clone");
    let common = |res: i64, tid: i64| {
        vec![
            ("res", i64b(res)),
            ("exe", s("bash")),
            ("args", Vec::new()),
            ("tid", i64b(tid)),
            ("pid", i64b(tid)),
            ("ptid", i64b(100)),
            ("cwd", s("/home/u")),
            ("fdlimit", i64b(1024)),
            ("pgft_maj", u64b(3)),
            ("pgft_min", u64b(70)),
            ("vm_size", u32b(8000)),
            ("vm_rss", u32b(3000)),
            ("vm_swap", u32b(10)),
            ("comm", s("bash")),
            ("cgroups", s(CGROUP)),
            ("flags", u32b(0)),
            ("uid", u32b(1000)),
            ("gid", u32b(1000)),
            ("vtid", i64b(tid)),
            ("vpid", i64b(tid)),
            ("pidns_init_start_ts", u64b(5_000)),
        ]
    };
    run.apply(&event(clone, T0, 100, &common(200, 100)));
    run.apply(&event(clone, T0 + 1, 200, &common(0, 200)));
    let exec = exit_type("execve");
    let exec_x = event(
        exec,
        T0 + 1_000,
        200,
        &[
            ("res", i64b(0)),
            ("exe", s("cat")),
            ("args", [b"notes.txt\0".as_slice(), b"-n\0"].concat()),
            ("tid", i64b(200)),
            ("pid", i64b(200)),
            ("ptid", i64b(100)),
            ("cwd", s("/home/u")),
            ("fdlimit", i64b(4096)),
            ("vm_size", u32b(2000)),
            ("vm_rss", u32b(900)),
            ("vm_swap", u32b(0)),
            ("comm", s("cat")),
            ("cgroups", s(CGROUP)),
            ("env", b"TERM=xterm\0".to_vec()),
            ("pgid", i64b(100)),
            ("trusted_exepath", s("/usr/bin/cat")),
        ],
    );
    run.apply(&exec_x);
    exec_x
}

#[test]
fn process_fields() {
    let mut run = started();
    let exec_x = fork_and_exec(&mut run);
    let mut one = |name: &str| run.one(&exec_x, name);
    // Ancestors: level 0 is the process itself.
    assert_eq!(one("proc.aexe[0]"), "cat");
    assert_eq!(one("proc.aexe[1]"), "bash");
    assert_eq!(one("proc.aexe[2]"), "sshd");
    assert_eq!(one("proc.aargs[0]"), "notes.txt -n");
    assert_eq!(one("proc.acmdline[1]"), "bash");
    assert_eq!(one("proc.acmdline[0]"), "cat notes.txt -n");
    // proc.aenv[NAME]: the nearest ancestor that has the variable.
    assert_eq!(one("proc.aenv[HOME]"), "/home/u");
    assert_eq!(one("proc.aenv[LANG]"), "C");
    assert_eq!(one("proc.aenv[2]"), "LANG=C");
    assert_eq!(one("proc.aenv"), "TERM=xterm");
    assert_eq!(one("proc.args[1]"), "-n");
    assert_eq!(one("proc.cmdnargs"), "2");
    // "notes.txt" and "-n": separators not counted.
    assert_eq!(one("proc.cmdlenargs"), "11");
    assert_eq!(one("proc.exeline"), "cat notes.txt -n");
    // The outermost shell among the process and its ancestors: bash.
    assert_eq!(one("proc.loginshellid"), "100");
    assert_eq!(one("proc.pvpid"), "100");
    assert_eq!(one("proc.pgid"), "100");
    assert_eq!(one("proc.pgid.name"), "bash");
    assert_eq!(one("proc.pgid.exepath"), "/usr/bin/bash");
    assert_eq!(one("proc.is_pgid_leader"), "false");
    assert_eq!(one("proc.sid.exe"), "bash");
    assert_eq!(one("proc.sid.exepath"), "/usr/bin/bash");
    assert_eq!(one("proc.vpgid.exepath"), "/usr/bin/bash");
    assert_eq!(one("proc.pid.ts"), (T0 + 1).to_string());
    assert_eq!(one("proc.fdlimit"), "4096");
    assert_eq!(one("proc.vmsize"), "2000");
    assert_eq!(one("proc.vmrss"), "900");
    assert_eq!(one("proc.vmswap"), "0");
    assert_eq!(one("thread.vmsize.b"), "2048000");
    assert_eq!(one("thread.vmrss"), "900");
    assert_eq!(one("thread.pfmajor"), "3");
    assert_eq!(one("thread.pfminor"), "70");
    assert_eq!(one("proc.pidns_init_start_ts"), "5000");
    assert_eq!(one("thread.ismain"), "true");
    assert_eq!(one("thread.nametid"), "cat200");
    assert_eq!(one("thread.cgroups"), CGROUP);
    assert_eq!(
        one("thread.cgroup[cpuacct]"),
        "/docker/3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e"
    );
    assert_eq!(one("proc.nthreads"), "1");
    assert_eq!(one("proc.nchilds"), "0");
    assert_eq!(one("proc.fdopencount"), "0");
    assert_eq!(one("thread.exectime"), "0");
    assert!(run.get(&exec_x, "thread.cgroup", Some("memory")).is_empty());
}

#[test]
fn ancestor_fields_without_index_print_the_lineage() {
    let mut run = started();
    let exec_x = fork_and_exec(&mut run);
    let ev = EventView::parse(&exec_x).unwrap();
    let event = SyscallEvent::new(&ev, &run.state);
    // libsinsp prints the ancestors' values separated by spaces (parent
    // first), and proc.apid as proc.apid[0]; with an index, one value.
    let fmt = OutputFormat::compile(
        "%proc.aname|%proc.aexepath|%proc.apid|%proc.aname[1]|%proc.pid",
        &mut run.fields,
    )
    .unwrap();
    assert_eq!(
        fmt.render(&run.fields, &event),
        "bash sshd systemd|/usr/bin/bash /usr/bin/sshd /usr/bin/systemd|200|bash|200"
    );
    // In conditions the field still matches each ancestor.
    let mut filter = peregrine_engine::rules::filter::Filter::new(
        "proc.aname = sshd and proc.apid = 90",
        SyscallFields::new(),
    )
    .unwrap();
    assert!(filter.matches(&event));
}

#[test]
fn fd_usage_cpu_and_around() {
    let mut run = started();
    let exec_x = fork_and_exec(&mut run);
    assert_eq!(run.one(&exec_x, "proc.fdusage"), "0.0");
    // Four fds out of the 4096 of proc.fdlimit: 4 * 100 / 4096.
    let mut last = exec_x.clone();
    for (i, fd) in (3..7).enumerate() {
        last = event(
            exit_type("openat"),
            T0 + 2_000 + i as u64,
            200,
            &[
                ("fd", i64b(fd)),
                ("dirfd", i64b(-100)),
                ("name", s(&format!("f{fd}"))),
                ("flags", u32b(1)),
            ],
        );
        run.apply(&last);
    }
    assert_eq!(run.one(&last, "proc.fdusage"), "0.1");
    let f = run.fields.resolve("proc.fdusage", None).unwrap();
    assert_eq!(f.ty, peregrine_engine::field::FieldType::Double);
    let usage = match run_values(&mut run, &last, "proc.fdusage").as_slice() {
        [Value::Double(d)] => *d,
        other => panic!("{other:?}"),
    };
    assert!((usage - 400.0 / 4096.0).abs() < 1e-9, "{usage}");

    // thread.cpu: on procinfo events only, the change since the thread's
    // previous one (0 on its first), capped at 100.
    assert!(run.get(&last, "thread.cpu", None).is_empty());
    let procinfo = |ts, user: u64, system: u64| {
        event(
            event_types_named("procinfo")[0],
            ts,
            200,
            &[("cpu_usr", u64b(user)), ("cpu_sys", u64b(system))],
        )
    };
    let first = procinfo(T0 + 10_000, 30, 10);
    run.apply(&first);
    assert_eq!(run.one(&first, "thread.cpu"), "0.0");
    let second = procinfo(T0 + 20_000, 42, 15);
    run.apply(&second);
    assert_eq!(run.one(&second, "thread.cpu"), "17.0");
    assert_eq!(run.one(&second, "thread.cpu.user"), "12.0");
    assert_eq!(run.one(&second, "thread.cpu.system"), "5.0");
    let third = procinfo(T0 + 30_000, 500, 15);
    run.apply(&third);
    assert_eq!(run.one(&third, "thread.cpu"), "100.0");

    // evt.around[T]=D: within D milliseconds of T, either side.
    let ev = EventView::parse(&last).unwrap();
    let event = SyscallEvent::new(&ev, &run.state);
    let ts = ev.ts;
    let holds = |cond: &str| {
        peregrine_engine::rules::Filter::new(cond, SyscallFields::new())
            .unwrap_or_else(|e| panic!("{cond}: {e}"))
            .matches(&event)
    };
    assert!(holds(&format!("evt.around[{ts}] = 0")));
    assert!(holds(&format!("evt.around[{}] = 1", ts + 1_000_000)));
    assert!(holds(&format!("evt.around[{}] = 1", ts - 1_000_000)));
    assert!(!holds(&format!("evt.around[{}] = 1", ts + 1_000_001)));
    assert!(!holds(&format!("evt.around[{}] = 1", ts - 1_000_001)));
    let err = peregrine_engine::rules::Filter::new(
        &format!("evt.around[{ts}] > 1"),
        SyscallFields::new(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("evt.around supports only '=' comparison operator"),
        "{err}"
    );
    assert!(peregrine_engine::rules::Filter::new("evt.around = 1", SyscallFields::new()).is_err());
}

fn run_values<'a>(run: &'a mut Run, raw: &'a [u8], name: &str) -> Vec<Value<'static>> {
    let ev = EventView::parse(raw).unwrap();
    let f = run.fields.resolve(name, None).unwrap();
    let mut out: Vec<Value<'_>> = Vec::new();
    run.fields
        .extract(&f, &SyscallEvent::new(&ev, &run.state), &mut out);
    out.into_iter()
        .map(|v| match v {
            Value::Double(d) => Value::Double(d),
            other => Value::Str(other.to_string().into()),
        })
        .collect()
}

#[test]
fn threads_are_counted_per_process() {
    let mut run = started();
    let exec_x = fork_and_exec(&mut run);
    // 200 starts a thread 201.
    let clone = exit_type("clone");
    let thread_flags = 1u32 << 13; // PPM_CL_CLONE_THREAD
    let child = event(
        clone,
        T0 + 2_000,
        201,
        &[
            ("res", i64b(0)),
            ("exe", s("cat")),
            ("tid", i64b(201)),
            ("pid", i64b(200)),
            ("ptid", i64b(200)),
            ("comm", s("cat")),
            ("flags", u32b(thread_flags)),
        ],
    );
    run.apply(&child);
    assert_eq!(run.one(&exec_x, "proc.nthreads"), "2");
    assert_eq!(run.one(&exec_x, "proc.nchilds"), "1");
    assert_eq!(run.one(&child, "thread.ismain"), "false");
    // Memory is the main thread's; other threads show 0.
    assert_eq!(run.one(&child, "thread.vmsize"), "0");
}

/// The bits of a clone's and an execve's `flags` decide what the state
/// makes of them: a thread made by its creator's clone exit belongs to the
/// creator's process; an exec of a writable file from memfd says so.
#[test]
fn flags_of_clone_and_execve() {
    let mut run = started();
    fork_and_exec(&mut run);
    // 200 starts a thread; its own clone exit has not come yet.
    let thread_flags = 1u32 << 13; // PPM_CL_CLONE_THREAD
    run.apply(&event(
        exit_type("clone"),
        T0 + 2_000,
        200,
        &[
            ("res", i64b(202)),
            ("exe", s("cat")),
            ("tid", i64b(200)),
            ("pid", i64b(200)),
            ("ptid", i64b(100)),
            ("comm", s("cat")),
            ("flags", u32b(thread_flags)),
        ],
    ));
    let in_thread = event(
        exit_type("close"),
        T0 + 3_000,
        202,
        &[("res", i64b(0)), ("fd", i64b(9))],
    );
    run.apply(&in_thread);
    assert_eq!(run.one(&in_thread, "proc.pid"), "200");
    assert_eq!(run.one(&in_thread, "thread.ismain"), "false");

    // 200 execs a file it can write, read from a memfd.
    let exec_x = event(
        exit_type("execve"),
        T0 + 4_000,
        200,
        &[
            ("res", i64b(0)),
            ("exe", s("memfd:x")),
            ("tid", i64b(200)),
            ("pid", i64b(200)),
            ("ptid", i64b(100)),
            ("comm", s("x")),
            ("flags", u32b(0x1 | 0x4)), // EXE_WRITABLE | EXE_FROM_MEMFD
        ],
    );
    run.apply(&exec_x);
    let mut one = |name: &str| run.one(&exec_x, name);
    assert_eq!(one("proc.is_exe_writable"), "true");
    assert_eq!(one("proc.is_exe_from_memfd"), "true");
    assert_eq!(one("proc.is_exe_upper_layer"), "false");
}

#[test]
fn event_fields() {
    let mut run = started();
    fork_and_exec(&mut run);
    // openat(AT_FDCWD, "notes.txt", O_RDWR|O_CREAT) = 3, created by the
    // call, on the upper layer of an overlayfs.
    let open_x = event(
        exit_type("openat"),
        T0 + 2_000,
        200,
        &[
            ("fd", i64b(3)),
            ("dirfd", i64b(-100)),
            ("name", s("notes.txt")),
            ("flags", u32b(1 | 2 | (1 << 2) | (1 << 14) | (1 << 15))),
            ("mode", u32b(0o644)),
            ("dev", u32b((8 << 8) | 1)),
            ("ino", u64b(777)),
        ],
    );
    run.apply(&open_x);
    let mut one = |name: &str| run.one(&open_x, name);
    assert_eq!(one("evt.is_open_create"), "true");
    assert_eq!(one("evt.is_open_exec"), "false");
    assert_eq!(one("fd.is_upper_layer"), "true");
    assert_eq!(one("fd.is_lower_layer"), "false");
    assert_eq!(one("fd.dev"), ((8 << 8) | 1).to_string());
    assert_eq!(one("fd.dev.major"), "8");
    assert_eq!(one("fd.dev.minor"), "1");
    assert_eq!(one("fd.ino"), "777");
    assert_eq!(one("fd.uid"), "2003");
    assert_eq!(one("fd.containername"), "3ad7b26ded6d:/home/u/notes.txt");
    assert_eq!(one("fd.containerdirectory"), "3ad7b26ded6d:/home/u");
    assert_eq!(one("fd.types[3]"), "file");
    assert_eq!(one("proc.fdopencount"), "1");
    assert_eq!(one("syscall.type"), "openat");
    assert_eq!(one("evt.type.is.openat"), "1");
    assert_eq!(one("evt.type.is.read"), "0");
    assert_eq!(one("evt.source"), "syscall");
    assert_eq!(one("evt.is_async"), "false");
    assert_eq!(one("evt.count"), "1");
    assert_eq!(one("evt.count.exit"), "1");
    assert_eq!(one("evt.count.error"), "0");
    assert_eq!(one("evt.count.error.file"), "0");
    assert_eq!(one("evt.latency"), "0");
    assert_eq!(one("evt.latency.human"), "0ns");
    // Time in every form; the previous event was 1000 ns earlier.
    assert_eq!(one("evt.deltatime"), "1000");
    assert_eq!(one("evt.deltatime.s"), "0");
    assert_eq!(one("evt.reltime"), "2000");
    assert_eq!(one("evt.time.s"), "22:13:20");
    assert_eq!(
        one("evt.time.iso8601"),
        "2023-11-14T22:13:20.123458789+0000"
    );
    assert_eq!(one("evt.datetime"), "2023-11-14 22:13:20.123458789");
    assert_eq!(one("evt.datetime.s"), "2023-11-14 22:13:20");
    assert_eq!(one("evt.rawtime.s"), "1700000000");
    assert_eq!(one("evt.rawtime.ns"), "123458789");
    assert_eq!(one("evt.outputtime"), "22:13:20.123458789");
    let args = run.one(&open_x, "evt.args");
    assert_eq!(run.one(&open_x, "evt.info"), args);

    // read(3) = 5: I/O on a file.
    let read_x = event(
        exit_type("read"),
        T0 + 3_000,
        200,
        &[
            ("res", i64b(5)),
            ("data", b"hello".to_vec()),
            ("fd", i64b(3)),
            ("size", u32b(64)),
        ],
    );
    run.apply(&read_x);
    let mut one = |name: &str| run.one(&read_x, name);
    assert_eq!(one("evt.is_io"), "true");
    assert_eq!(one("evt.is_io_read"), "true");
    assert_eq!(one("evt.is_io_write"), "false");
    assert_eq!(one("evt.io_dir"), "read");
    assert_eq!(one("evt.buflen"), "5");
    assert_eq!(one("evt.buflen.in"), "5");
    assert_eq!(one("evt.buflen.file"), "5");
    assert_eq!(one("evt.buflen.file.in"), "5");
    assert_eq!(one("evt.is_wait"), "false");
    assert_eq!(one("evt.is_syslog"), "false");
    run.none(&read_x, "evt.buflen.out");
    run.none(&read_x, "evt.buflen.net");
    run.none(&read_x, "evt.pluginname");
}

#[test]
fn socket_fields_and_domain_names() {
    let mut run = started();
    fork_and_exec(&mut run);
    let sock_x = event(
        exit_type("socket"),
        T0 + 2_000,
        200,
        &[
            ("fd", i64b(4)),
            ("domain", u32b(2)),
            ("type", u32b(1)),
            ("proto", u32b(0)),
        ],
    );
    run.apply(&sock_x);
    let mut tuple = vec![2u8];
    tuple.extend_from_slice(&[192, 168, 1, 5]);
    tuple.extend_from_slice(&40000u16.to_le_bytes());
    tuple.extend_from_slice(&[10, 0, 0, 1]);
    tuple.extend_from_slice(&443u16.to_le_bytes());
    let conn_x = event(
        exit_type("connect"),
        T0 + 3_000,
        200,
        &[("res", i64b(0)), ("tuple", tuple), ("fd", i64b(4))],
    );
    run.apply(&conn_x);
    // Falco turns port name resolution off: the port number as text.
    assert_eq!(run.one(&conn_x, "fd.sproto"), "443");
    assert_eq!(run.one(&conn_x, "fd.cproto"), "40000");
    assert_eq!(run.get(&conn_x, "fd.proto", None), ["40000", "443"]);
    assert_eq!(run.one(&conn_x, "evt.count.error.net"), "0");
    run.none(&conn_x, "evt.count.error.file");

    // Names: only those rules compare with, once resolved.
    run.none(&conn_x, "fd.sip.name");
    let mut filter = peregrine_engine::rules::filter::Filter::new(
        "fd.sip.name = api.example.com or fd.rip.name in (db.example.com)",
        SyscallFields::new(),
    )
    .unwrap();
    let names = filter.source().domain_names().clone();
    assert_eq!(names.wanted(), ["api.example.com", "db.example.com"]);
    let ev = EventView::parse(&conn_x).unwrap();
    let conn = SyscallEvent::new(&ev, &run.state);
    assert!(!filter.matches(&conn), "no name resolved yet");
    names.set_addresses("api.example.com", &["10.0.0.1".parse().unwrap()]);
    assert!(filter.matches(&conn));
    // The same table, read through the field.
    let mut fields = SyscallFields::new();
    let resolved = fields.resolve("fd.rip.name", None).unwrap();
    fields.literals_compared(&resolved, &["api.example.com"]);
    fields
        .domain_names()
        .set_addresses("api.example.com", &["10.0.0.1".parse().unwrap()]);
    let mut out = Vec::new();
    fields.extract(&resolved, &conn, &mut out);
    assert_eq!(out, [Value::Str("api.example.com".into())]);
    // The local end is not the server's address.
    let lip = fields.resolve("fd.lip.name", None).unwrap();
    let mut out = Vec::new();
    fields.extract(&lip, &conn, &mut out);
    assert!(out.is_empty());

    // poll on the socket and an unknown fd.
    let mut fds = 2u16.to_le_bytes().to_vec();
    fds.extend_from_slice(&4i64.to_le_bytes());
    fds.extend_from_slice(&1i16.to_le_bytes());
    fds.extend_from_slice(&9i64.to_le_bytes());
    fds.extend_from_slice(&1i16.to_le_bytes());
    let poll_x = event(
        exit_type("poll"),
        T0 + 4_000,
        200,
        &[("res", i64b(1)), ("fds", fds)],
    );
    run.apply(&poll_x);
    assert_eq!(run.one(&poll_x, "fdlist.nums"), "4,9");
    assert_eq!(
        run.one(&poll_x, "fdlist.names"),
        "192.168.1.5:40000->10.0.0.1:443,<NA>"
    );
    assert_eq!(run.one(&poll_x, "fdlist.sips"), "10.0.0.1");
    assert_eq!(run.one(&poll_x, "fdlist.cports"), "40000");
    assert_eq!(run.one(&poll_x, "evt.is_wait"), "true");
}

#[test]
fn user_shell_comes_from_passwd() {
    let dir = std::env::temp_dir().join(format!("peregrine-shell-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("passwd"),
        "root:x:0:0:root:/root:/bin/bash\nu:x:1000:1000::/home/u:/usr/bin/zsh\n",
    )
    .unwrap();
    std::fs::write(dir.join("group"), "root:x:0:\n").unwrap();
    let mut run = started();
    run.state.users = Users::from_etc(&dir).unwrap();
    let exec_x = fork_and_exec(&mut run);
    assert_eq!(run.one(&exec_x, "user.shell"), "/usr/bin/zsh");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A relative path argument reads as libsinsp resolves it: `evt.arg.*`
/// gives the resolved path, `evt.args` the raw one with the resolved one in
/// parentheses, `evt.rawarg.*` the raw one. A PT_FSPATH joins the working
/// directory, a PT_FSRELPATH the directory of its dirfd; an unknown dirfd
/// leaves it only normalized. (Each value here is what Falco 0.45 printed
/// replaying the same events.) Rules rely on it: Falco's "Create Hardlink
/// Over Sensitive Files" catches `cd /etc; ln shadow x` by evt.arg.oldpath.
#[test]
fn relative_path_arguments_read_resolved() {
    let mut run = started();
    let exec_x = fork_and_exec(&mut run);
    assert_eq!(run.one(&exec_x, "proc.cwd"), "/home/u/");
    let openat_x = event(
        exit_type("openat"),
        T0 + 2_000,
        200,
        &[
            ("fd", i64b(4)),
            ("dirfd", i64b(-100)),
            ("name", s("/etc")),
            ("flags", u32b(1 | (1 << 11))),
        ],
    );
    run.apply(&openat_x);
    let link = exit_type("link");
    let linkat = exit_type("linkat");
    let link_x = event(
        link,
        T0 + 3_000,
        200,
        &[
            ("res", i64b(0)),
            ("oldpath", s("notes.txt")),
            ("newpath", s("/tmp/x")),
        ],
    );
    run.apply(&link_x);
    assert_eq!(run.one(&link_x, "evt.arg.oldpath"), "/home/u/notes.txt");
    assert_eq!(run.one(&link_x, "evt.arg[1]"), "/home/u/notes.txt");
    assert_eq!(run.one(&link_x, "evt.rawarg.oldpath"), "notes.txt");
    assert_eq!(run.one(&link_x, "evt.arg.newpath"), "/tmp/x");
    assert_eq!(
        run.one(&link_x, "evt.args"),
        "res=0 oldpath=notes.txt(/home/u/notes.txt) newpath=/tmp/x"
    );
    // After cd /etc: the working directory moved.
    let chdir_x = event(
        exit_type("chdir"),
        T0 + 4_000,
        200,
        &[("res", i64b(0)), ("path", s("/etc"))],
    );
    run.apply(&chdir_x);
    let link_x = event(
        link,
        T0 + 5_000,
        200,
        &[
            ("res", i64b(0)),
            ("oldpath", s("shadow")),
            ("newpath", s("./sub/../x")),
        ],
    );
    run.apply(&link_x);
    assert_eq!(run.one(&link_x, "evt.arg.oldpath"), "/etc/shadow");
    assert_eq!(
        run.one(&link_x, "evt.args"),
        "res=0 oldpath=shadow(/etc/shadow) newpath=./sub/../x(/etc/x)"
    );
    // linkat: each path against its own dirfd (fd 4 is /etc, -100 the cwd).
    let linkat_x = event(
        linkat,
        T0 + 6_000,
        200,
        &[
            ("res", i64b(0)),
            ("olddir", i64b(4)),
            ("oldpath", s("passwd")),
            ("newdir", i64b(-100)),
            ("newpath", s("../tmp/y")),
            ("flags", u32b(0)),
        ],
    );
    run.apply(&linkat_x);
    assert_eq!(run.one(&linkat_x, "evt.arg.oldpath"), "/etc/passwd");
    assert_eq!(run.one(&linkat_x, "evt.arg.newpath"), "/tmp/y");
    assert_eq!(run.one(&linkat_x, "evt.arg[2]"), "/etc/passwd");
    assert_eq!(run.one(&linkat_x, "evt.arg.newdir"), "AT_FDCWD");
    assert_eq!(
        run.one(&linkat_x, "evt.args"),
        "res=0 olddir=4(<f>/etc) oldpath=passwd(/etc/passwd) newdir=-100(AT_FDCWD) \
         newpath=../tmp/y(/tmp/y) flags=0"
    );
    // An unknown dirfd: normalized only; nothing left, the raw path.
    for (raw, resolved, args) in [
        ("../../q/r", "q/r", "../../q/r(q/r)"),
        ("./b/", "b", "./b/(b)"),
        ("a/..", "a/..", "a/.."),
    ] {
        let linkat_x = event(
            linkat,
            T0 + 7_000,
            200,
            &[
                ("res", i64b(0)),
                ("olddir", i64b(9)),
                ("oldpath", s(raw)),
                ("newdir", i64b(4)),
                ("newpath", s("/abs/w")),
                ("flags", u32b(0)),
            ],
        );
        run.apply(&linkat_x);
        assert_eq!(run.one(&linkat_x, "evt.arg.oldpath"), resolved);
        assert_eq!(
            run.one(&linkat_x, "evt.args"),
            format!("res=0 olddir=9 oldpath={args} newdir=4(<f>/etc) newpath=/abs/w flags=0")
        );
    }
}

/// Opens write their file names over the names of closed fds (kept to
/// spare the allocator): nothing of an earlier, longer name may show.
#[test]
fn an_open_after_closes_names_only_its_own_file() {
    let mut run = started();
    fork_and_exec(&mut run);
    let open = |fd: i64, name: &str, ts: u64| {
        event(
            exit_type("openat"),
            T0 + ts,
            200,
            &[
                ("fd", i64b(fd)),
                ("dirfd", i64b(-100)),
                ("name", s(name)),
                ("flags", u32b(1)),
            ],
        )
    };
    let close = |fd: i64, ts: u64| {
        event(
            exit_type("close"),
            T0 + ts,
            200,
            &[("res", i64b(0)), ("fd", i64b(fd))],
        )
    };
    let long = "/var/lib/a-rather-long-directory-name/with/a/deep/file.txt";
    for (i, fd) in (3..8).enumerate() {
        let ts = 10_000 + 10 * i as u64;
        run.apply(&open(fd, long, ts));
        let closing = close(fd, ts + 1);
        run.apply(&closing);
        assert_eq!(run.one(&closing, "fd.name"), long);
        // The name goes when the next event comes.
        run.apply(&close(99, ts + 2));
    }
    for (fd, name, shown) in [
        (3, "/x", "/x"),
        (4, "b", "/home/u/b"),
        (5, "../../etc/./passwd", "/etc/passwd"),
    ] {
        let ev = open(fd, name, 20_000 + fd as u64);
        run.apply(&ev);
        assert_eq!(run.one(&ev, "fd.name"), shown);
        let later = close(fd, 20_100 + fd as u64);
        assert_eq!(run.one(&later, "fd.name"), shown);
    }
}
