//! The reader streams: captures read through sources that hand out a few
//! bytes at a time give the same tables, events and errors (with the same
//! byte offsets) as the same bytes read from memory or from the gzipped
//! file.

mod common;

use common::kit_captures;
use std::io::Read;

use peregrine_engine::scap::{read_decompressed, Capture};

/// A source that returns at most a few bytes per read, varying the count,
/// so blocks straddle every possible read boundary.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step = self.step % 13 + 1;
        let n = self.step.min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn trickle(data: &[u8]) -> Result<Capture, peregrine_engine::scap::ScapError> {
    Capture::from_reader(Trickle {
        data: data.to_vec(),
        pos: 0,
        step: 0,
    })
}

/// Everything a capture yields, as text: each event's header and
/// parameter bytes, and the error that ended it if any.
fn transcript(cap: Result<Capture, peregrine_engine::scap::ScapError>) -> Vec<String> {
    let mut cap = match cap {
        Ok(c) => c,
        Err(e) => return vec![format!("open error: {e}")],
    };
    let mut out = vec![format!(
        "{:?} {:?} {:?} {:?}",
        cap.machine, cap.processes, cap.fds, cap.interfaces
    )];
    let mut events = cap.events();
    while let Some(ev) = events.next() {
        match ev {
            Ok(ev) => {
                let params: Vec<_> = (0..ev.nparams as usize)
                    .map(|i| ev.param_bytes(i).map(|b| b.to_vec()))
                    .collect();
                out.push(format!(
                    "{} {} {} {} {} {:?}",
                    ev.num, ev.ts, ev.tid, ev.cpu, ev.event_type, params
                ));
            }
            Err(e) => out.push(format!("error: {e}")),
        }
    }
    out
}

#[test]
fn trickled_gzipped_and_in_memory_reads_agree() {
    let Some(paths) = kit_captures() else {
        println!("SKIP: ../shared/conformance not found; no captures to stream");
        return;
    };
    let mut events = 0;
    for path in paths {
        let data = read_decompressed(&path).unwrap();
        let whole = transcript(Capture::from_bytes(data.clone()));
        assert_eq!(whole, transcript(trickle(&data)), "{}", path.display());
        assert_eq!(
            whole,
            transcript(Capture::open(&path)),
            "{}",
            path.display()
        );
        assert!(
            whole.iter().all(|l| !l.starts_with("error: ")),
            "{}",
            path.display()
        );
        events += whole.len() - 1;
    }
    assert!(events > 1000, "only {events} events compared");
}

#[test]
fn truncated_streams_fail_at_the_same_offsets() {
    let Some(paths) = kit_captures() else {
        println!("SKIP: ../shared/conformance not found; no captures to cut");
        return;
    };
    let mut errors = 0;
    for path in paths.iter().take(3) {
        let data = read_decompressed(path).unwrap();
        for cut in (1..data.len()).step_by(data.len() / 40 + 1) {
            let whole = transcript(Capture::from_bytes(data[..cut].to_vec()));
            let streamed = transcript(trickle(&data[..cut]));
            assert_eq!(whole, streamed, "{} cut at {cut}", path.display());
            let last = whole.last().unwrap();
            if last.starts_with("error: ") || last.starts_with("open error: ") {
                assert!(last.contains("byte "), "{last}");
                errors += 1;
            }
        }
    }
    assert!(errors > 50, "only {errors} truncations reported");
}

#[test]
fn a_missing_file_names_its_path() {
    let err = Capture::open("/nonexistent/dir/x.scap").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/dir/x.scap"), "{err}");
}
