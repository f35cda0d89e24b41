//! Truncated or corrupted captures must give errors, never panics: every
//! kit capture is cut at many offsets and has bytes overwritten at many
//! offsets, then read, applied to state and queried for every field.

mod common;

use common::kit_captures;

use peregrine_engine::field::FieldSource;
use peregrine_engine::scap::{read_decompressed, Capture};
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields, FIELDS};

/// Offsets where blocks start, from the block lengths of a valid capture.
fn block_starts(data: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        out.push(pos);
        let len = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap()) as usize;
        pos += len;
    }
    out.push(data.len());
    out
}

/// Reads everything there is to read; returns whether an error was seen.
fn read_all(data: Vec<u8>, fields: &mut SyscallFields, all: bool) -> bool {
    let mut cap = match Capture::from_bytes(data) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return true;
        }
    };
    let resolved: Vec<_> = if all {
        FIELDS
            .iter()
            .filter_map(|f| {
                let arg = match f.arg {
                    Some("index") => Some("0"),
                    Some("level") => Some("1"),
                    Some(_) => Some("fd"),
                    None => None,
                };
                let name = f.name.trim_end_matches("[N]");
                fields.resolve(name, arg).ok()
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut state = State::from_capture(&cap);
    let mut failed = false;
    let mut events = cap.events();
    while let Some(ev) = events.next() {
        match ev {
            Ok(ev) => {
                state.apply(&ev);
                let e = SyscallEvent::new(&ev, &state);
                for r in &resolved {
                    let mut out = Vec::new();
                    fields.extract(r, &e, &mut out);
                }
            }
            Err(e) => {
                assert!(e.to_string().contains("byte"), "error without offset: {e}");
                failed = true;
            }
        }
    }
    failed
}

#[test]
fn truncated_and_corrupted_kit_captures_never_panic() {
    let Some(paths) = kit_captures() else {
        println!("SKIP: ../shared/conformance not found; no captures to corrupt");
        return;
    };
    let mut fields = SyscallFields::new();
    let mut cuts = 0;
    let mut flips = 0;
    for path in paths {
        let data = read_decompressed(&path).unwrap();
        let starts = block_starts(&data);
        let step = (data.len() / 100).max(1);
        for cut in (1..data.len())
            .step_by(step)
            .chain(starts.iter().step_by(20).map(|s| s + 3))
        {
            let cut = cut.min(data.len() - 1);
            let errored = read_all(data[..cut].to_vec(), &mut fields, false);
            // A cut inside a block must be reported; a cut between blocks
            // is a shorter but valid file.
            if !starts.contains(&cut) {
                assert!(
                    errored,
                    "{}: truncation at {cut} went unnoticed",
                    path.display()
                );
            }
            cuts += 1;
        }
        let step = (data.len() / 200).max(1);
        for (i, at) in (0..data.len()).step_by(step).enumerate() {
            let mut bad = data.clone();
            bad[at] = match i % 3 {
                0 => bad[at] ^ 0xff,
                1 => 0xff,
                _ => 0,
            };
            read_all(bad, &mut fields, i % 10 == 0);
            flips += 1;
        }
    }
    println!("{cuts} truncations and {flips} corruptions read without panic");
    assert!(cuts > 500 && flips > 1000, "{cuts} cuts, {flips} flips");
}

#[test]
fn garbage_is_an_error() {
    assert!(Capture::from_bytes(Vec::new()).is_err());
    assert!(Capture::from_bytes(b"not a capture at all".to_vec()).is_err());
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
    shb.extend_from_slice(&u32::MAX.to_le_bytes());
    shb.extend_from_slice(&[0; 20]);
    let err = Capture::from_bytes(shb).unwrap_err().to_string();
    assert!(err.contains("byte 4"), "{err}");
}
