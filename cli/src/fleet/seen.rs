//! The message ids `fleet` has seen, to count what the stream delivers
//! twice, in bounded memory: `fleet --listen` runs for as long as the
//! fleet does, and a set of every id would grow with every alert.
//!
//! `nats_output` ids are `hostname:instance:sequence`, the sequence rising
//! by one per alert within a run (an alert the spool refused leaves a
//! gap), and a run's alerts reach the stream in about that order. So per
//! run a window of the last [`WINDOW`] sequences below the highest seen is
//! enough: a redelivery or a resend falls inside it. A sequence older than
//! the window is counted as new: it cannot be told apart, and counting an
//! alert twice is the better mistake than hiding one. Ids of any other
//! form are remembered, the newest [`OTHER_IDS`] of them.

use std::collections::{HashMap, HashSet, VecDeque};

/// Sequences remembered below a run's highest: 8 KiB a run.
pub const WINDOW: u64 = 65_536;

/// Runs remembered at once (a run is a node's process lifetime); past
/// this the one heard from least recently is forgotten.
pub const MAX_RUNS: usize = 4096;

/// Ids not in `nats_output`'s form remembered at once.
pub const OTHER_IDS: usize = 100_000;

#[derive(Debug, Default)]
pub struct Seen {
    runs: HashMap<String, RunWindow>,
    /// Bumped at each id, to find the run heard from least recently.
    clock: u64,
    other: HashSet<String>,
    other_order: VecDeque<String>,
}

#[derive(Debug)]
struct RunWindow {
    highest: u64,
    /// Bit `s % WINDOW` is set when sequence `s` (within the window) came.
    bits: Vec<u64>,
    last_used: u64,
}

impl RunWindow {
    fn new() -> RunWindow {
        RunWindow {
            highest: 0,
            bits: vec![0; (WINDOW / 64) as usize],
            last_used: 0,
        }
    }

    fn bit(sequence: u64) -> (usize, u64) {
        let slot = sequence % WINDOW;
        ((slot / 64) as usize, 1 << (slot % 64))
    }

    /// True when `sequence` had not come yet (or is too old to tell).
    fn insert(&mut self, sequence: u64) -> bool {
        if sequence > self.highest {
            if sequence - self.highest >= WINDOW {
                self.bits.iter_mut().for_each(|w| *w = 0);
            } else {
                for cleared in self.highest + 1..sequence {
                    let (word, mask) = Self::bit(cleared);
                    self.bits[word] &= !mask;
                }
            }
            let (word, mask) = Self::bit(sequence);
            self.bits[word] |= mask;
            self.highest = sequence;
            return true;
        }
        if self.highest - sequence >= WINDOW {
            return true;
        }
        let (word, mask) = Self::bit(sequence);
        let new = self.bits[word] & mask == 0;
        self.bits[word] |= mask;
        new
    }
}

impl Seen {
    /// Records `id`; true when it is the first time.
    pub fn insert(&mut self, id: &str) -> bool {
        self.clock += 1;
        let parsed = id
            .rsplit_once(':')
            .and_then(|(run, sequence)| Some((run, sequence.parse::<u64>().ok()?)))
            .filter(|(run, sequence)| run.contains(':') && *sequence > 0);
        let Some((run, sequence)) = parsed else {
            return self.insert_other(id);
        };
        if !self.runs.contains_key(run) && self.runs.len() >= MAX_RUNS {
            let oldest = self
                .runs
                .iter()
                .min_by_key(|(_, window)| window.last_used)
                .map(|(run, _)| run.clone());
            if let Some(oldest) = oldest {
                self.runs.remove(&oldest);
            }
        }
        let window = self
            .runs
            .entry(run.to_string())
            .or_insert_with(RunWindow::new);
        window.last_used = self.clock;
        window.insert(sequence)
    }

    fn insert_other(&mut self, id: &str) -> bool {
        if self.other.contains(id) {
            return false;
        }
        if self.other_order.len() >= OTHER_IDS {
            if let Some(oldest) = self.other_order.pop_front() {
                self.other.remove(&oldest);
            }
        }
        self.other.insert(id.to_string());
        self.other_order.push_back(id.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_a_run_are_caught_in_any_order() {
        let mut seen = Seen::default();
        assert!(seen.insert("node-a:r1:1"));
        assert!(seen.insert("node-a:r1:3"));
        assert!(!seen.insert("node-a:r1:1"));
        assert!(seen.insert("node-a:r1:2"), "late, but new");
        assert!(!seen.insert("node-a:r1:2"));
        assert!(!seen.insert("node-a:r1:3"));
        // Another run, another node: sequences of their own.
        assert!(seen.insert("node-a:r2:1"));
        assert!(seen.insert("node-b:r1:1"));
        // A hostname with colons in it: the run is all but the sequence.
        assert!(seen.insert("fe80::1:r1:1"));
        assert!(!seen.insert("fe80::1:r1:1"));
        // Ids of another form are remembered whole.
        assert!(seen.insert("something-else"));
        assert!(!seen.insert("something-else"));
        assert!(seen.insert("a:b:0"), "not a sequence of nats_output");
        assert!(!seen.insert("a:b:0"));
    }

    #[test]
    fn memory_is_bounded_and_the_window_slides() {
        let mut seen = Seen::default();
        for sequence in 1..=3 * WINDOW {
            assert!(seen.insert(&format!("n:r:{sequence}")));
        }
        // Inside the window: caught; beyond it: counted as new.
        assert!(!seen.insert(&format!("n:r:{}", 3 * WINDOW - 5)));
        assert!(!seen.insert(&format!("n:r:{}", 2 * WINDOW + 1)));
        assert!(seen.insert(&format!("n:r:{}", 2 * WINDOW)));
        // A jump past the window forgets all of it.
        assert!(seen.insert(&format!("n:r:{}", 10 * WINDOW)));
        assert!(seen.insert(&format!("n:r:{}", 10 * WINDOW - 1)));
        assert!(!seen.insert(&format!("n:r:{}", 10 * WINDOW - 1)));
        // Runs: the least recently heard is forgotten past MAX_RUNS.
        for run in 0..MAX_RUNS + 10 {
            seen.insert(&format!("n:run{run}:1"));
            seen.insert("n:r:1");
        }
        assert_eq!(seen.runs.len(), MAX_RUNS);
        assert!(!seen.insert(&format!("n:run{}:1", MAX_RUNS + 9)));
        assert!(seen.insert("n:run0:1"), "forgotten");
        for i in 0..OTHER_IDS + 5 {
            seen.insert(&format!("other-{i}"));
        }
        assert_eq!(seen.other.len(), OTHER_IDS);
        assert_eq!(seen.other_order.len(), OTHER_IDS);
    }
}
