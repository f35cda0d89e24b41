//! Every value a syscall field yields has the variant its declared
//! FieldType promises (the rules side parses literals by that type), on
//! every event of every kit capture; list fields are the only ones that
//! yield several values.

use peregrine_engine::field::{FieldSource, FieldType, Value};
use peregrine_engine::scap::Capture;
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields, FIELDS};
use std::path::Path;

fn matches_type(v: &Value<'_>, ty: FieldType) -> bool {
    matches!(
        (v, ty),
        (Value::Str(_), FieldType::String)
            | (Value::Int(_), FieldType::Int)
            | (Value::Uint(_), FieldType::Uint)
            | (Value::Bool(_), FieldType::Bool)
            | (Value::Ip(_), FieldType::Ip)
            | (Value::Net(..), FieldType::IpNet)
            | (Value::Bytes(_), FieldType::Bytes)
            | (Value::Double(_), FieldType::Double)
    )
}

#[test]
fn values_have_their_declared_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance");
    let mut paths = Vec::new();
    for dir in ["falco-regression/trace_files", "captures"] {
        if let Ok(rd) = std::fs::read_dir(root.join(dir)) {
            paths.extend(
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "scap")),
            );
        }
    }
    if paths.is_empty() {
        println!("SKIP: ../shared/conformance not found; no captures to check");
        return;
    }
    let mut source = SyscallFields::new();
    let mut resolved = Vec::new();
    for f in FIELDS.iter() {
        let name = f.name.trim_end_matches("[N]");
        let args: &[Option<&str>] = match f.arg {
            None => &[None],
            Some("index") => &[Some("0"), Some("1")],
            Some("level") => &[None, Some("0"), Some("2")],
            Some("path") => &[Some("/etc")],
            Some(_) => &[Some("fd"), Some("res"), Some("HOME")],
        };
        for a in args {
            if let Ok(r) = source.resolve(name, *a) {
                resolved.push((f.name, r));
            }
        }
    }
    for raw in [
        "evt.rawarg.res",
        "evt.rawarg.fd",
        "evt.rawarg.name",
        "evt.rawarg.flags",
        "evt.rawarg.data",
    ] {
        resolved.push((raw, source.resolve(raw, None).unwrap()));
    }
    let mut checked = 0u64;
    for path in paths {
        let mut cap = Capture::open(&path).unwrap();
        let mut state = State::from_capture(&cap);
        let mut events = cap.events();
        while let Some(ev) = events.next() {
            let ev = ev.unwrap();
            state.apply(&ev);
            let e = SyscallEvent::new(&ev, &state);
            for (name, r) in &resolved {
                let mut out = Vec::new();
                source.extract(r, &e, &mut out);
                // fd.ip, fd.port, fd.net and fd.proto stand for either
                // end of a socket (filter-only in libsinsp): both ends are
                // their values, though they are no lists.
                let either_end = matches!(*name, "fd.ip" | "fd.port" | "fd.net" | "fd.proto");
                // Ancestor fields without a level: every ancestor, each
                // compared on its own (filter-only in libsinsp too).
                let ancestors = r.arg.is_none()
                    && matches!(
                        *name,
                        "proc.aname"
                            | "proc.apid"
                            | "proc.aexe"
                            | "proc.aexepath"
                            | "proc.acmdline"
                            | "proc.aargs"
                    );
                assert!(
                    r.is_list || ancestors || out.len() <= 1 || (either_end && out.len() == 2),
                    "{name} gave {} values on event {}",
                    out.len(),
                    ev.num
                );
                for v in &out {
                    assert!(
                        matches_type(v, r.ty),
                        "{name}: {v:?} is not a {:?} (event {})",
                        r.ty,
                        ev.num
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100_000, "only {checked} values checked");
}
