//! The fields of one event share what they look up alike (the event's fd,
//! its thread): found by the first field that asks and reused by the
//! others, conditions and outputs alike. These tests replay the same event
//! bytes again and again while the state changes between them (the fd
//! closed and reopened as another file or a socket, the thread exec'ing
//! another program), as a hostile capture can: every evaluation must see
//! its own state, never what an earlier event of the same bytes saw.

use peregrine_engine::event::EventView;
use peregrine_engine::rules::{CompiledRules, RulesLoader};
use peregrine_engine::state::{State, Thread};
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

mod raw_events;
use raw_events::{event, i64b, s, u32b};

const TID: u64 = 100;

/// Two rules on the same read events, told apart by the fd's type; each
/// reads the fd and the thread in its condition and again in its output.
const RULES: &str = r#"
- rule: Read of a file
  desc: d
  condition: evt.type = read and evt.dir = > and fd.typechar = f and fd.name startswith /tmp/ and proc.name != nobody
  output: file %fd.name (%fd.typechar %fd.directory %fd.filename fd=%fd.num) by %proc.name
  priority: WARNING
- rule: Read of a socket
  desc: d
  condition: evt.type = read and evt.dir = > and fd.typechar = 4 and fd.sip = 10.0.0.1 and proc.name != nobody
  output: socket %fd.name (%fd.typechar %fd.sip:%fd.sport fd=%fd.num) by %proc.name
  priority: WARNING
"#;

fn compile() -> CompiledRules<SyscallFields> {
    let mut loader = RulesLoader::new();
    loader.load_str("memo.yaml", RULES);
    let rules = loader.compile(SyscallFields::new());
    let errors: Vec<_> = loader.errors().collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(rules.rules().len(), 2);
    rules
}

/// What the run loop does with one event: apply it, then evaluate the
/// rules and render the outputs of those that match, from one input.
fn step(state: &mut State, rules: &mut CompiledRules<SyscallFields>, raw: &[u8]) -> Vec<String> {
    let view = EventView::parse(raw).unwrap();
    state.apply(&view);
    let input = SyscallEvent::new(&view, state);
    let mut alerts = Vec::new();
    rules.evaluate(&input, |rule, source| {
        alerts.push(rule.output.render(source, &input))
    });
    alerts
}

/// openat(AT_FDCWD, `path`, O_RDONLY) = `fd`, both sides.
fn open(ts: u64, fd: i64, path: &str) -> [Vec<u8>; 2] {
    [
        event(306, ts, TID, &[]),
        event(
            307,
            ts + 1,
            TID,
            &[
                ("fd", i64b(fd)),
                ("dirfd", i64b(-100)),
                ("name", s(path)),
                ("flags", u32b(1)),
                ("mode", u32b(0)),
            ],
        ),
    ]
}

/// close(`fd`) = 0, both sides.
fn close(ts: u64, fd: i64) -> [Vec<u8>; 2] {
    [
        event(4, ts, TID, &[("fd", i64b(fd))]),
        event(5, ts + 1, TID, &[("res", i64b(0))]),
    ]
}

/// socket(AF_INET, SOCK_STREAM) = `fd` connected 192.168.1.5:40000 ->
/// 10.0.0.1:443.
fn connected_socket(ts: u64, fd: i64) -> [Vec<u8>; 2] {
    let mut tuple = vec![2u8];
    tuple.extend_from_slice(&[192, 168, 1, 5]);
    tuple.extend_from_slice(&40000u16.to_le_bytes());
    tuple.extend_from_slice(&[10, 0, 0, 1]);
    tuple.extend_from_slice(&443u16.to_le_bytes());
    [
        event(
            19,
            ts,
            TID,
            &[
                ("fd", i64b(fd)),
                ("domain", u32b(2)),
                ("type", u32b(1)),
                ("proto", u32b(0)),
            ],
        ),
        event(
            23,
            ts + 1,
            TID,
            &[("res", i64b(0)), ("tuple", tuple), ("fd", i64b(fd))],
        ),
    ]
}

/// execve of `comm` by the thread, both sides.
fn exec(ts: u64, comm: &str) -> [Vec<u8>; 2] {
    [
        event(292, ts, TID, &[("filename", s(&format!("/bin/{comm}")))]),
        event(
            293,
            ts + 1,
            TID,
            &[
                ("res", i64b(0)),
                ("exe", s(comm)),
                ("args", Vec::new()),
                ("pid", i64b(TID as i64)),
                ("ptid", i64b(1)),
                ("cwd", s("/tmp")),
                ("comm", s(comm)),
                ("flags", u32b(0)),
            ],
        ),
    ]
}

#[test]
fn the_same_event_bytes_after_the_fd_and_thread_changed_show_the_new_ones() {
    let mut state = State::new();
    state.insert_thread(Thread {
        tid: TID as i64,
        pid: TID as i64,
        ptid: 1,
        comm: "cat".into(),
        exe: "cat".into(),
        cwd: "/tmp/".into(),
        ..Thread::default()
    });
    let mut rules = compile();
    // read(3, ..., 10), enter side: the very same bytes every time, time
    // included, as a capture that repeats a record would give them.
    let read = event(6, 1_000, TID, &[("fd", i64b(3)), ("size", u32b(10))]);
    let mut alerts = |state: &mut State, before: &[[Vec<u8>; 2]]| {
        for raw in before.iter().flatten() {
            step(state, &mut rules, raw);
        }
        step(state, &mut rules, &read)
    };

    assert_eq!(
        alerts(&mut state, &[open(10, 3, "/tmp/first")]),
        ["file /tmp/first (f /tmp first fd=3) by cat"]
    );
    // The same read again, nothing changed: the same alert.
    assert_eq!(
        alerts(&mut state, &[]),
        ["file /tmp/first (f /tmp first fd=3) by cat"]
    );
    // fd 3 closed and made a socket: the same bytes read from the socket.
    assert_eq!(
        alerts(&mut state, &[close(20, 3), connected_socket(30, 3)]),
        ["socket 192.168.1.5:40000->10.0.0.1:443 (4 10.0.0.1:443 fd=3) by cat"]
    );
    // Closed and reopened as another file, by another program.
    assert_eq!(
        alerts(
            &mut state,
            &[close(40, 3), exec(50, "head"), open(60, 3, "/tmp/second")]
        ),
        ["file /tmp/second (f /tmp second fd=3) by head"]
    );
    // Closed and not reopened: the fd is unknown, neither rule matches.
    assert_eq!(alerts(&mut state, &[close(70, 3)]), Vec::<String>::new());
    // And reopened once more.
    assert_eq!(
        alerts(&mut state, &[open(80, 3, "/tmp/third")]),
        ["file /tmp/third (f /tmp third fd=3) by head"]
    );
}

#[test]
fn a_failed_open_names_its_own_file_in_conditions_and_outputs() {
    // A failed open's fd is made up for the event (no state entry): it
    // is kept with the event's other lookups and must not leak to the
    // next failed open of other bytes, nor be replaced by the state's fd.
    let mut state = State::new();
    state.insert_thread(Thread {
        tid: TID as i64,
        pid: TID as i64,
        comm: "cat".into(),
        cwd: "/tmp/".into(),
        ..Thread::default()
    });
    let mut loader = RulesLoader::new();
    loader.load_str(
        "memo.yaml",
        r#"
- rule: Failed open
  desc: d
  condition: evt.type = openat and evt.dir = < and evt.failed = true and fd.typechar = f and fd.name startswith /tmp/
  output: failed %fd.name (%fd.typechar %fd.directory fd=%fd.num)
  priority: WARNING
"#,
    );
    let mut rules = loader.compile(SyscallFields::new());
    let failed = |ts: u64, path: &str| {
        event(
            307,
            ts,
            TID,
            &[
                ("fd", i64b(-2)),
                ("dirfd", i64b(-100)),
                ("name", s(path)),
                ("flags", u32b(1)),
            ],
        )
    };
    for (ts, path) in [(10, "/tmp/a"), (20, "b/c"), (30, "/tmp/a")] {
        let alerts = step(&mut state, &mut rules, &failed(ts, path));
        let want = match path {
            "b/c" => "failed /tmp/b/c (f /tmp/b fd=-1)".to_string(),
            p => format!("failed {p} (f /tmp fd=-1)"),
        };
        assert_eq!(alerts, [want]);
    }
    // A successful open of fd 3 now: fd.num is the new fd.
    let ok = open(40, 3, "/tmp/d");
    step(&mut state, &mut rules, &ok[0]);
    assert!(step(&mut state, &mut rules, &ok[1]).is_empty());
}
