//! State and fields over a hand-built event sequence in the layout the
//! kernel module emits: a shell forks, the child execs, opens a file by
//! a relative path, duplicates it, connects a socket, closes, exits.

use peregrine_engine::event::EventView;
use peregrine_engine::field::{FieldSource, Value};
use peregrine_engine::rules::Filter;
use peregrine_engine::state::{State, Thread};
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

mod raw_events;
use raw_events::{event, i64b, s, u32b};

struct Probe {
    fields: SyscallFields,
}

impl Probe {
    fn get(&mut self, state: &State, raw: &[u8], name: &str, arg: Option<&str>) -> Vec<String> {
        let ev = EventView::parse(raw).unwrap();
        let f = self.fields.resolve(name, arg).unwrap();
        let mut out: Vec<Value<'_>> = Vec::new();
        self.fields
            .extract(&f, &SyscallEvent::new(&ev, state), &mut out);
        out.iter().map(|v| v.to_string()).collect()
    }
}

#[test]
fn fork_exec_open_dup_connect_exit() {
    let mut state = State::new();
    let base = |tid, pid, ptid, comm: &str| Thread {
        tid,
        pid,
        ptid,
        comm: comm.into(),
        exe: comm.into(),
        cwd: "/home/u/".into(),
        uid: 1000,
        gid: 1000,
        container_id: "host".into(),
        ..Thread::default()
    };
    state.insert_thread(base(1, 1, 0, "systemd"));
    state.insert_thread(base(100, 100, 1, "bash"));
    let mut p = Probe {
        fields: SyscallFields::new(),
    };
    let apply = |state: &mut State, raw: &[u8]| state.apply(&EventView::parse(raw).unwrap());

    // bash clones 200 (parent side, then child side), in a docker container.
    let cg = s("cpu=/docker/3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e");
    let clone_common = |extra: Vec<(&'static str, Vec<u8>)>| {
        let mut v = vec![
            ("exe", s("bash")),
            ("args", Vec::new()),
            ("cwd", s("/home/u")),
            ("comm", s("bash")),
            ("cgroups", cg.clone()),
            ("flags", u32b(0)),
            ("uid", u32b(1000)),
            ("gid", u32b(1000)),
        ];
        v.extend(extra);
        v
    };
    let parent_side = event(
        223,
        10,
        100,
        &clone_common(vec![
            ("res", i64b(200)),
            ("tid", i64b(100)),
            ("pid", i64b(100)),
            ("ptid", i64b(1)),
        ]),
    );
    apply(&mut state, &parent_side);
    let child_side = event(
        223,
        11,
        200,
        &clone_common(vec![
            ("res", i64b(0)),
            ("tid", i64b(200)),
            ("pid", i64b(200)),
            ("ptid", i64b(100)),
        ]),
    );
    apply(&mut state, &child_side);
    assert_eq!(state.thread(200).unwrap().ptid, 100);
    assert_eq!(
        p.get(&state, &child_side, "container.id", None),
        ["3ad7b26ded6d"]
    );

    // The child execs cat with a trusted path.
    let exec_e = event(292, 12, 200, &[("filename", s("/bin/cat"))]);
    apply(&mut state, &exec_e);
    let exec_x = event(
        293,
        13,
        200,
        &[
            ("res", i64b(0)),
            ("exe", s("cat")),
            ("args", [b"notes.txt\0".as_slice(), b"-n\0"].concat()),
            ("pid", i64b(200)),
            ("ptid", i64b(100)),
            ("cwd", s("/home/u")),
            ("comm", s("cat")),
            ("cgroups", cg.clone()),
            ("loginuid", u32b(1000)),
            ("trusted_exepath", s("/usr/bin/cat")),
            ("env", b"HOME=/home/u\0PATH=/bin\0".to_vec()),
            ("cap_effective", ((1u64 << 21) | 1).to_le_bytes().to_vec()),
            ("flags", u32b(2)),
        ],
    );
    apply(&mut state, &exec_x);
    assert_eq!(p.get(&state, &exec_x, "proc.name", None), ["cat"]);
    assert_eq!(
        p.get(&state, &exec_x, "proc.cmdline", None),
        ["cat notes.txt -n"]
    );
    assert_eq!(
        p.get(&state, &exec_x, "proc.exepath", None),
        ["/usr/bin/cat"]
    );
    assert_eq!(p.get(&state, &exec_x, "proc.pname", None), ["bash"]);
    assert_eq!(p.get(&state, &exec_x, "proc.aname", Some("2")), ["systemd"]);
    assert_eq!(p.get(&state, &exec_x, "proc.apid", Some("1")), ["100"]);
    assert_eq!(
        p.get(&state, &exec_x, "proc.aname", None),
        ["bash", "systemd"]
    );
    // Without a level, libsinsp compares each ancestor (not the process
    // itself) with any operator, `in` included: a match of one is a match.
    let ev = EventView::parse(&exec_x).unwrap();
    for (condition, want) in [
        ("proc.aname in (systemd)", true),
        ("proc.aname in (systemd, nginx)", true),
        ("proc.aname intersects (bash)", true),
        ("proc.aname in (cat, nginx)", false),
        ("proc.aname = bash", true),
        ("proc.aname != bash", true),
        ("proc.aname startswith sys", true),
        ("proc.aname = cat", false),
        ("proc.apid in (100)", true),
    ] {
        let mut filter = Filter::new(condition, SyscallFields::new()).unwrap();
        let got = filter.matches(&SyscallEvent::new(&ev, &state));
        assert_eq!(got, want, "{condition}");
    }
    assert_eq!(p.get(&state, &exec_x, "user.loginuid", None), ["1000"]);
    assert_eq!(p.get(&state, &exec_x, "proc.env", Some("PATH")), ["/bin"]);
    assert_eq!(
        p.get(&state, &exec_x, "thread.cap_effective", None),
        ["CAP_CHOWN CAP_SYS_ADMIN"]
    );
    assert_eq!(
        p.get(&state, &exec_x, "proc.is_exe_upper_layer", None),
        ["true"]
    );
    assert_eq!(
        p.get(&state, &exec_x, "proc.is_exe_writable", None),
        ["false"]
    );
    assert_eq!(p.get(&state, &exec_x, "proc.duration", None), ["2"]);
    assert_eq!(
        p.get(&state, &exec_x, "container.image.repository", None),
        Vec::<String>::new()
    );

    // openat(AT_FDCWD, "../u/notes.txt", O_RDONLY) = 3
    let open_x = event(
        307,
        14,
        200,
        &[
            ("fd", i64b(3)),
            ("dirfd", i64b(-100)),
            ("name", s("../u/notes.txt")),
            ("flags", u32b(1)),
            ("mode", u32b(0)),
        ],
    );
    apply(&mut state, &open_x);
    assert_eq!(
        p.get(&state, &open_x, "fd.name", None),
        ["/home/u/notes.txt"]
    );
    assert_eq!(p.get(&state, &open_x, "fd.directory", None), ["/home/u"]);
    assert_eq!(p.get(&state, &open_x, "fd.filename", None), ["notes.txt"]);
    assert_eq!(p.get(&state, &open_x, "evt.is_open_read", None), ["true"]);
    assert_eq!(p.get(&state, &open_x, "evt.is_open_write", None), ["false"]);
    assert_eq!(p.get(&state, &open_x, "evt.arg.flags", None), ["O_RDONLY"]);
    assert_eq!(p.get(&state, &open_x, "evt.rawarg.flags", None), ["1"]);

    // A failed open still names its file, with fd -1.
    let fail_x = event(
        307,
        15,
        200,
        &[
            ("fd", i64b(-13)),
            ("dirfd", i64b(-100)),
            ("name", s("/etc/shadow")),
            ("flags", u32b(1)),
        ],
    );
    apply(&mut state, &fail_x);
    assert_eq!(p.get(&state, &fail_x, "fd.name", None), ["/etc/shadow"]);
    assert_eq!(p.get(&state, &fail_x, "fd.num", None), ["-1"]);
    assert_eq!(p.get(&state, &fail_x, "fd.directory", None), ["/etc"]);
    assert_eq!(p.get(&state, &fail_x, "fd.typechar", None), ["f"]);
    assert!(p.get(&state, &fail_x, "fd.filename", None).is_empty());
    assert_eq!(p.get(&state, &fail_x, "evt.res", None), ["EACCES"]);
    assert_eq!(p.get(&state, &fail_x, "evt.failed", None), ["true"]);

    // dup2(3, 7) = 7
    let dup_x = event(
        363,
        16,
        200,
        &[("res", i64b(7)), ("oldfd", i64b(3)), ("newfd", i64b(7))],
    );
    apply(&mut state, &dup_x);
    assert_eq!(state.fd(200, 7).unwrap().name, "/home/u/notes.txt");

    // socket + connect to 10.0.0.1:443
    let sock_x = event(
        19,
        17,
        200,
        &[
            ("fd", i64b(4)),
            ("domain", u32b(2)),
            ("type", u32b(1)),
            ("proto", u32b(0)),
        ],
    );
    apply(&mut state, &sock_x);
    let mut tuple = vec![2u8];
    tuple.extend_from_slice(&[192, 168, 1, 5]);
    tuple.extend_from_slice(&40000u16.to_le_bytes());
    tuple.extend_from_slice(&[10, 0, 0, 1]);
    tuple.extend_from_slice(&443u16.to_le_bytes());
    let conn_x = event(
        23,
        18,
        200,
        &[("res", i64b(0)), ("tuple", tuple), ("fd", i64b(4))],
    );
    apply(&mut state, &conn_x);
    assert_eq!(
        p.get(&state, &conn_x, "fd.name", None),
        ["192.168.1.5:40000->10.0.0.1:443"]
    );
    assert_eq!(p.get(&state, &conn_x, "fd.sip", None), ["10.0.0.1"]);
    assert_eq!(p.get(&state, &conn_x, "fd.rport", None), ["443"]);
    assert_eq!(p.get(&state, &conn_x, "fd.lport", None), ["40000"]);
    assert_eq!(p.get(&state, &conn_x, "fd.l4proto", None), ["tcp"]);
    assert_eq!(p.get(&state, &conn_x, "fd.typechar", None), ["4"]);

    // close(3): the exit still shows the fd; the next event no longer has it.
    let close_e = event(4, 19, 200, &[("fd", i64b(3))]);
    apply(&mut state, &close_e);
    let close_x = event(5, 20, 200, &[("res", i64b(0))]);
    apply(&mut state, &close_x);
    assert_eq!(
        p.get(&state, &close_x, "fd.name", None),
        ["/home/u/notes.txt"]
    );
    let read_e = event(6, 21, 200, &[("fd", i64b(3)), ("size", u32b(10))]);
    apply(&mut state, &read_e);
    assert!(state.fd(200, 3).is_none());
    assert!(state.fd(200, 7).is_some());

    // Exit: the procexit event sees the thread, the next event does not.
    let exit_e = event(186, 22, 200, &[("status", i64b(0))]);
    apply(&mut state, &exit_e);
    assert_eq!(p.get(&state, &exit_e, "proc.name", None), ["cat"]);
    let other = event(6, 23, 100, &[("fd", i64b(0))]);
    apply(&mut state, &other);
    assert!(state.thread(200).is_none());
    assert!(state.fds_of(200).is_none());
    assert_eq!(state.purged, 1);
}

#[test]
fn event_types_named_include_every_version() {
    let f = SyscallFields::new();
    let open = f.event_types_named("open").unwrap();
    assert!(open.contains(&2) && open.contains(&3));
    assert!(f.event_types_named("no_such_syscall").is_none());
    assert!(f.fields().iter().any(|i| i.name == "proc.aname"));
}

#[test]
fn fcntl_dupfd_setresuid_and_cloexec_on_exec() {
    let mut state = State::new();
    state.insert_thread(Thread {
        tid: 50,
        pid: 50,
        ptid: 1,
        comm: "sh".into(),
        cwd: "/".into(),
        uid: 1000,
        ..Thread::default()
    });
    let apply = |state: &mut State, raw: &[u8]| state.apply(&EventView::parse(raw).unwrap());
    // open("/etc/passwd", O_RDONLY|O_CLOEXEC) = 3, open("/tmp/log", O_WRONLY) = 4
    apply(
        &mut state,
        &event(
            3,
            1,
            50,
            &[
                ("fd", i64b(3)),
                ("name", s("/etc/passwd")),
                ("flags", u32b(1 | (1 << 12))),
            ],
        ),
    );
    apply(
        &mut state,
        &event(
            3,
            2,
            50,
            &[("fd", i64b(4)), ("name", s("/tmp/log")), ("flags", u32b(2))],
        ),
    );
    // fcntl(4, F_DUPFD) = 9
    let f_dupfd = 0u32; // PPM_FCNTL_F_DUPFD
    let cmd = peregrine_engine::event::table::event_info(151)
        .unwrap()
        .params[2]
        .names
        .unwrap();
    let dupfd = cmd
        .iter()
        .find(|(n, _)| *n == "F_DUPFD")
        .map(|(_, v)| *v as u8)
        .unwrap_or(f_dupfd as u8);
    apply(
        &mut state,
        &event(
            151,
            3,
            50,
            &[("res", i64b(9)), ("fd", i64b(4)), ("cmd", vec![dupfd])],
        ),
    );
    assert_eq!(state.fd(50, 9).map(|f| f.name.as_str()), Some("/tmp/log"));
    // setresuid(-1, 0, -1) = 0
    apply(
        &mut state,
        &event(
            193,
            4,
            50,
            &[
                ("res", i64b(0)),
                ("ruid", u32b(u32::MAX)),
                ("euid", u32b(0)),
                ("suid", u32b(u32::MAX)),
            ],
        ),
    );
    assert_eq!(state.thread(50).unwrap().uid, 0);
    // execve succeeds: the O_CLOEXEC fd is gone, the others stay.
    apply(
        &mut state,
        &event(
            293,
            5,
            50,
            &[
                ("res", i64b(0)),
                ("exe", s("id")),
                ("pid", i64b(50)),
                ("ptid", i64b(1)),
                ("comm", s("id")),
            ],
        ),
    );
    assert!(state.fd(50, 3).is_none());
    assert!(state.fd(50, 4).is_some() && state.fd(50, 9).is_some());
    assert_eq!(state.thread(50).unwrap().comm, "id");
}

#[test]
fn generic_events_are_indexed_under_their_syscall_name() {
    use peregrine_engine::event::table::syscall_codes;
    use peregrine_engine::rules::Filter;
    let f = SyscallFields::new();
    let types = f.event_types_named("mprotect").unwrap();
    let state = State::new();
    let generic = |name: &str| {
        let code = syscall_codes(name).next().unwrap();
        event(
            1,
            1,
            7,
            &[
                ("ID", code.to_le_bytes().to_vec()),
                ("nativeID", vec![0; 2]),
            ],
        )
    };
    let (mprotect, clock) = (generic("mprotect"), generic("clock_gettime"));
    let (mprotect, clock) = (
        EventView::parse(&mprotect).unwrap(),
        EventView::parse(&clock).unwrap(),
    );
    let key = |ev: &EventView<'_>| f.event_type(&SyscallEvent::new(ev, &state)).unwrap();
    // Each generic event has its own key: only mprotect's is under the name.
    assert!(types.contains(&key(&mprotect)), "{types:?}");
    assert!(!types.contains(&key(&clock)), "{types:?}");
    assert_ne!(key(&mprotect), key(&clock));
    // A filter indexed on the name keeps exactly the events evt.type shows
    // by that name.
    for (text, want) in [
        ("evt.type=mprotect", [true, false]),
        ("evt.type in (clock_gettime, open)", [false, true]),
        ("not evt.type=mprotect", [false, true]),
        ("evt.type!=clock_gettime and evt.dir=<", [true, false]),
    ] {
        let mut filter = Filter::new(text, SyscallFields::new()).unwrap();
        for (ev, want) in [&mprotect, &clock].into_iter().zip(want) {
            let got = filter.matches(&SyscallEvent::new(ev, &state));
            assert_eq!(got, want, "{text} on {}", ev.type_name());
        }
    }
}

#[test]
fn memory_stays_bounded_with_many_short_threads() {
    let mut state = State::new();
    state.max_threads = 64;
    let apply = |state: &mut State, raw: &[u8]| state.apply(&EventView::parse(raw).unwrap());
    let common = |res: i64, tid: i64| {
        vec![
            ("res", i64b(res)),
            ("exe", s("w")),
            ("args", Vec::new()),
            ("tid", i64b(tid)),
            ("pid", i64b(tid)),
            ("ptid", i64b(1)),
            ("comm", s("w")),
            ("flags", u32b(0)),
        ]
    };
    // 1000 children that never exit, then 1000 that exit: the table stays
    // within its limit, counting what it evicted and purged.
    for tid in 1000..2000 {
        apply(
            &mut state,
            &event(223, tid as u64, tid as u64, &common(0, tid)),
        );
        apply(
            &mut state,
            &event(6, tid as u64, tid as u64, &[("fd", i64b(0))]),
        );
    }
    assert!(state.thread_count() <= 64);
    assert!(state.evicted >= 1000 - 64);
    for tid in 5000..6000 {
        apply(
            &mut state,
            &event(223, tid as u64, tid as u64, &common(0, tid)),
        );
        apply(
            &mut state,
            &event(186, tid as u64, tid as u64, &[("status", i64b(0))]),
        );
    }
    apply(&mut state, &event(6, 9999, 7, &[("fd", i64b(0))]));
    assert!(state.thread_count() <= 64);
    assert_eq!(state.purged, 1000);
}

/// Our module does not collect cgroups yet: an execve with an empty cgroups
/// list must leave a process in the container /proc placed it in (the
/// guest's "Shell Run In Container" trigger depends on it).
#[test]
fn exec_without_cgroups_keeps_the_container() {
    let mut state = State::new();
    state.insert_thread(Thread {
        tid: 300,
        pid: 300,
        ptid: 1,
        comm: "make".into(),
        exe: "/tmp/make".into(),
        cgroups: vec![
            "0::/docker/c0ffee0000000000000000000000000000000000000000000000000000000000"
                .to_string(),
        ]
        .into(),
        container_id: "c0ffee000000".into(),
        ..Thread::default()
    });
    let mut p = Probe {
        fields: SyscallFields::new(),
    };
    let exec_x = event(
        293,
        20,
        300,
        &[
            ("res", i64b(0)),
            ("exe", s("/bin/sh")),
            ("pid", i64b(300)),
            ("ptid", i64b(1)),
            ("comm", s("sh")),
        ],
    );
    state.apply(&EventView::parse(&exec_x).unwrap());
    assert_eq!(p.get(&state, &exec_x, "proc.name", None), ["sh"]);
    assert_eq!(
        p.get(&state, &exec_x, "container.id", None),
        ["c0ffee000000"]
    );
}

/// The working directory as the module's events give it (clone and execve
/// exits with an empty cwd), moved by chdir and fchdir, and the relative
/// opens that follow resolved against it.
#[test]
fn cwd_follows_chdir_fchdir_and_is_inherited_when_the_driver_leaves_it_out() {
    let mut state = State::new();
    state.insert_thread(Thread {
        tid: 400,
        pid: 400,
        ptid: 1,
        comm: "sh".into(),
        exe: "/bin/sh".into(),
        cwd: "/srv/".into(),
        container_id: "host".into(),
        ..Thread::default()
    });
    let mut p = Probe {
        fields: SyscallFields::new(),
    };
    let apply = |state: &mut State, raw: &[u8]| state.apply(&EventView::parse(raw).unwrap());
    let cwd_of = |state: &State, tid| state.thread(tid).unwrap().cwd.clone();

    // chdir to a relative path, then "..", then an absolute one.
    apply(
        &mut state,
        &event(95, 1, 400, &[("res", i64b(0)), ("path", s("app/./x"))]),
    );
    assert_eq!(cwd_of(&state, 400), "/srv/app/x/");
    apply(
        &mut state,
        &event(95, 2, 400, &[("res", i64b(0)), ("path", s(".."))]),
    );
    assert_eq!(cwd_of(&state, 400), "/srv/app/");
    // A failed chdir leaves it.
    apply(
        &mut state,
        &event(95, 3, 400, &[("res", i64b(-2)), ("path", s("/nope"))]),
    );
    assert_eq!(cwd_of(&state, 400), "/srv/app/");

    // The shell forks (the module leaves cwd empty): the child starts where
    // its parent is, on both sides of the clone.
    for (tid, res) in [(400, 401), (401, 0)] {
        let clone = event(
            223,
            4,
            tid,
            &[
                ("res", i64b(res)),
                ("exe", s("/bin/sh")),
                ("cwd", Vec::new()),
                ("comm", s("sh")),
                ("tid", i64b(tid as i64)),
                ("pid", i64b(tid as i64)),
                ("ptid", i64b(if res == 0 { 400 } else { 1 })),
                ("flags", u32b(0)),
            ],
        );
        apply(&mut state, &clone);
    }
    assert_eq!(cwd_of(&state, 401), "/srv/app/");
    // Its exec with an empty cwd keeps it.
    let exec_x = event(
        293,
        5,
        401,
        &[
            ("res", i64b(0)),
            ("exe", s("tee")),
            ("pid", i64b(401)),
            ("ptid", i64b(400)),
            ("cwd", Vec::new()),
            ("comm", s("tee")),
        ],
    );
    apply(&mut state, &exec_x);
    assert_eq!(cwd_of(&state, 401), "/srv/app/");
    let open = event(
        307,
        6,
        401,
        &[
            ("fd", i64b(3)),
            ("dirfd", i64b(-100)),
            ("name", s("passwd")),
            ("flags", u32b(2)),
        ],
    );
    apply(&mut state, &open);
    assert_eq!(p.get(&state, &open, "fd.name", None), ["/srv/app/passwd"]);

    // An opened directory, then fchdir to it, then a relative open.
    let open_dir = event(
        307,
        7,
        401,
        &[
            ("fd", i64b(4)),
            ("dirfd", i64b(-100)),
            ("name", s("/var/lib/../log")),
            ("flags", u32b(1 | (1 << 10))),
        ],
    );
    apply(&mut state, &open_dir);
    apply(
        &mut state,
        &event(97, 8, 401, &[("res", i64b(0)), ("fd", i64b(4))]),
    );
    assert_eq!(cwd_of(&state, 401), "/var/log/");
    let open = event(
        307,
        9,
        401,
        &[
            ("fd", i64b(5)),
            ("dirfd", i64b(-100)),
            ("name", s("syslog")),
            ("flags", u32b(2)),
        ],
    );
    apply(&mut state, &open);
    assert_eq!(p.get(&state, &open, "fd.name", None), ["/var/log/syslog"]);
    // The parent did not move.
    assert_eq!(cwd_of(&state, 400), "/srv/app/");

    // Paths through /proc's links name the file they reach; the path as
    // given stays in fd.nameraw. A link to a non-file fd is left alone.
    for (fd, path, want) in [
        (6, "/proc/self/cwd/syslog", "/var/log/syslog"),
        (7, "/proc/401/fd/4/../auth.log", "/var/auth.log"),
        (8, "/dev/fd/4/kern.log", "/var/log/kern.log"),
        (9, "/proc/thread-self/root/etc/shadow", "/etc/shadow"),
        (10, "/proc/self/fd/0/x", "/proc/self/fd/0/x"),
    ] {
        let open = event(
            307,
            10 + fd as u64,
            401,
            &[
                ("fd", i64b(fd)),
                ("dirfd", i64b(-100)),
                ("name", s(path)),
                ("flags", u32b(1)),
            ],
        );
        apply(&mut state, &open);
        assert_eq!(p.get(&state, &open, "fd.name", None), [want], "{path}");
        if want != path {
            assert_eq!(p.get(&state, &open, "fd.nameraw", None), [path]);
        }
    }
}

/// evt.abspath resolves an *at syscall's path against its directory fd;
/// fs.path.* resolves against the working directory only, as libsinsp's
/// fs.path fields do, and only for successful calls.
#[test]
fn abspath_and_fs_path_fields() {
    let mut state = State::new();
    state.insert_thread(Thread {
        tid: 500,
        pid: 500,
        ptid: 1,
        comm: "mv".into(),
        exe: "/bin/mv".into(),
        cwd: "/home/u/".into(),
        container_id: "host".into(),
        ..Thread::default()
    });
    let mut p = Probe {
        fields: SyscallFields::new(),
    };
    let apply = |state: &mut State, raw: &[u8]| state.apply(&EventView::parse(raw).unwrap());
    // fd 5: the directory /etc.
    let open_dir = event(
        307,
        1,
        500,
        &[
            ("fd", i64b(5)),
            ("dirfd", i64b(-100)),
            ("name", s("/etc/")),
            ("flags", u32b(1 | (1 << 10))),
        ],
    );
    apply(&mut state, &open_dir);
    let mut fields = |raw: &[u8], names: &[&str]| -> Vec<String> {
        names
            .iter()
            .map(|n| p.get(&state, raw, n, None).join(","))
            .collect()
    };

    let renameat = event(
        177,
        2,
        500,
        &[
            ("res", i64b(0)),
            ("olddirfd", i64b(5)),
            ("oldpath", s("a")),
            ("newdirfd", i64b(-100)),
            ("newpath", s("../b")),
        ],
    );
    assert_eq!(
        fields(
            &renameat,
            &[
                "evt.abspath",
                "evt.abspath.src",
                "evt.abspath.dst",
                "fs.path.source",
                "fs.path.sourceraw",
                "fs.path.target",
                "fs.path.targetraw",
                "fs.path.name",
            ]
        ),
        [
            "/etc/a",
            "/etc/a",
            "/home/b",
            "/home/u/a",
            "a",
            "/home/b",
            "../b",
            ""
        ]
    );

    // linkat: fs.path's source is the new name, its target the old file.
    let linkat = event(
        311,
        3,
        500,
        &[
            ("res", i64b(0)),
            ("olddir", i64b(-100)),
            ("oldpath", s("x")),
            ("newdir", i64b(5)),
            ("newpath", s("y")),
            ("flags", u32b(0)),
        ],
    );
    assert_eq!(
        fields(
            &linkat,
            &[
                "evt.abspath.src",
                "evt.abspath.dst",
                "fs.path.source",
                "fs.path.target"
            ]
        ),
        ["/home/u/x", "/etc/y", "/home/u/y", "/home/u/x"]
    );

    // A failed unlinkat has an abspath but no fs.path; an unknown
    // directory fd shows as libsinsp shows it.
    let unlinkat = event(
        303,
        4,
        500,
        &[
            ("res", i64b(-2)),
            ("dirfd", i64b(9)),
            ("name", s("gone")),
            ("flags", u32b(0)),
        ],
    );
    assert_eq!(
        fields(&unlinkat, &["evt.abspath", "fs.path.name"]),
        ["<UNKNOWN>/gone", ""]
    );

    // mkdir by a relative path, fchmod of the directory fd.
    let mkdir = event(277, 5, 500, &[("res", i64b(0)), ("path", s("./d/../e"))]);
    assert_eq!(
        fields(&mkdir, &["fs.path.name", "fs.path.nameraw", "evt.abspath"]),
        ["/home/u/e", "./d/../e", ""]
    );
    let fchmod = event(
        317,
        6,
        500,
        &[("res", i64b(0)), ("fd", i64b(5)), ("mode", u32b(0o755))],
    );
    assert_eq!(fields(&fchmod, &["fs.path.name"]), ["/etc"]);
}

/// A connect on a UDP socket whose exit carries no tuple (some drivers
/// give none for datagram sockets): the address names the peer, as
/// libsinsp falls back to it, and a second connect replaces the peer.
#[test]
fn udp_connect_without_tuple_names_the_peer_from_the_address() {
    let mut state = State::new();
    state.insert_thread(Thread {
        tid: 600,
        pid: 600,
        ptid: 1,
        comm: "dig".into(),
        container_id: "host".into(),
        ..Thread::default()
    });
    let mut p = Probe {
        fields: SyscallFields::new(),
    };
    let apply = |state: &mut State, raw: &[u8]| state.apply(&EventView::parse(raw).unwrap());
    let addr =
        |ip: [u8; 4], port: u16| [vec![2u8], ip.to_vec(), port.to_le_bytes().to_vec()].concat();
    apply(
        &mut state,
        &event(
            19,
            1,
            600,
            &[
                ("fd", i64b(3)),
                ("domain", u32b(2)),
                ("type", u32b(2)),
                ("proto", u32b(0)),
            ],
        ),
    );
    for (ts, ip, port) in [(2, [10, 0, 0, 1], 53), (4, [10, 0, 0, 9], 5353)] {
        // The address only in the enter event (older layout), then only in
        // the exit.
        let (enter_addr, exit_addr) = if ts == 2 {
            (addr(ip, port), Vec::new())
        } else {
            (Vec::new(), addr(ip, port))
        };
        apply(
            &mut state,
            &event(22, ts, 600, &[("fd", i64b(3)), ("addr", enter_addr)]),
        );
        let exit = event(
            23,
            ts + 1,
            600,
            &[("res", i64b(0)), ("fd", i64b(3)), ("addr", exit_addr)],
        );
        apply(&mut state, &exit);
        let want = format!("0.0.0.0:0->{}.{}.{}.{}:{port}", ip[0], ip[1], ip[2], ip[3]);
        assert_eq!(p.get(&state, &exit, "fd.name", None), [want]);
        assert_eq!(p.get(&state, &exit, "fd.l4proto", None), ["udp"]);
        assert_eq!(p.get(&state, &exit, "fd.sport", None), [port.to_string()]);
    }
}
