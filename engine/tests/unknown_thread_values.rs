//! Values Falco gives for an event whose thread it does not know: libsinsp
//! makes up a thread (pid and parent -1, name and executable `<NA>`, no
//! user, group or login uid), so `user.loginuid` reads -1, names read
//! `<NA>` and the container is the host.

mod common;

use common::conformance_dir;
use peregrine_engine::rules::Filter;
use peregrine_engine::scap::Capture;
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

#[test]
fn login_uid_of_an_unknown_thread_is_minus_one() {
    let Some(kit) = conformance_dir() else {
        println!("SKIP: ../shared/conformance is absent");
        return;
    };
    // The capture has no process table: the connecting thread is unknown.
    let path = kit.join("falco-regression/trace_files/connect_localhost.scap");
    let mut capture = Capture::open(&path).unwrap();
    let mut state = State::from_capture(&capture);
    let mut connect = Filter::new("evt.type=connect and evt.dir=<", SyscallFields::new()).unwrap();
    let mut minus_one = Filter::new("user.loginuid = -1", SyscallFields::new()).unwrap();
    let mut made_up = Filter::new(
        "user.name = <NA> and proc.name = <NA> and proc.exe = <NA> and proc.cmdline = <NA> \
         and proc.pid = -1 and user.uid = 4294967295 and group.name = <NA> \
         and container.id = host and container.name = host",
        SyscallFields::new(),
    )
    .unwrap();
    let (mut connects, mut matched) = (0, 0);
    let mut events = capture.events();
    while let Some(event) = events.next() {
        let event = event.unwrap();
        state.apply(&event);
        let ev = SyscallEvent::new(&event, &state);
        if connect.matches(&ev) {
            connects += 1;
            assert!(made_up.matches(&ev), "not libsinsp's made-up thread");
            matched += usize::from(minus_one.matches(&ev));
        }
    }
    assert!(connects > 0, "no connect exit in the capture");
    assert_eq!(matched, connects);
}
