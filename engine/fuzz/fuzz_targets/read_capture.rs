//! Any bytes given to the capture reader, the event views, the state and
//! every field must give values or errors, never a panic.
//! Run: `cargo +nightly fuzz run read_capture` (seeds: decompressed kit
//! captures), from engine/.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine_engine::field::FieldSource;
use peregrine_engine::scap::Capture;
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields, FIELDS};

fuzz_target!(|data: &[u8]| {
    let Ok(mut cap) = Capture::from_bytes(data.to_vec()) else { return };
    let mut fields = SyscallFields::new();
    let resolved: Vec<_> = FIELDS
        .iter()
        .filter_map(|f| {
            let arg = match f.arg {
                Some("index") => Some("1"),
                Some("level") => Some("2"),
                Some(_) => Some("name"),
                None => None,
            };
            fields.resolve(f.name.trim_end_matches("[N]"), arg).ok()
        })
        .collect();
    let mut state = State::from_capture(&cap);
    let mut events = cap.events();
    while let Some(ev) = events.next() {
        let Ok(ev) = ev else { break };
        state.apply(&ev);
        let e = SyscallEvent::new(&ev, &state);
        for r in &resolved {
            let mut out = Vec::new();
            fields.extract(r, &e, &mut out);
        }
    }
});
