//! Prints fields of every event of a capture, one line per event, fields
//! separated by " | ", like `sysdig -r FILE -p '%evt.num | %f1 | ...'`.
//!
//! Usage: scap_fields FILE field1 [field2...]

use peregrine_engine::field::FieldSource;
use peregrine_engine::scap::Capture;
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: scap_fields FILE FIELD...")?;
    let mut source = SyscallFields::new();
    let mut fields = Vec::new();
    for name in args {
        let (base, arg) = match name.split_once('[') {
            Some((b, rest)) => (b.to_string(), Some(rest.trim_end_matches(']').to_string())),
            None => (name.clone(), None),
        };
        fields.push(source.resolve(&base, arg.as_deref())?);
    }
    let mut cap = Capture::open(&path)?;
    let mut state = State::from_capture(&cap);
    let mut events = cap.events();
    while let Some(ev) = events.next() {
        let ev = ev?;
        state.apply(&ev);
        let e = SyscallEvent::new(&ev, &state);
        let mut values = Vec::new();
        let mut line = ev.num.to_string();
        for f in &fields {
            values.clear();
            source.extract(f, &e, &mut values);
            line.push_str(" | ");
            if values.is_empty() {
                line.push_str("<NA>");
            }
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                line.push_str(&v.to_string());
            }
        }
        println!("{line}");
    }
    Ok(())
}
