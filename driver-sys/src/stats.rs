//! The kernel's per-ring counters, per CPU and summed.

use std::iter::Sum;
use std::ops::{Add, AddAssign};

/// The counters of one ring's info page (see `struct pg_ring_info`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RingStats {
    /// Records written.
    pub n_evts: u64,
    /// Records dropped because the ring was full.
    pub n_drops_buffer: u64,
    /// Records dropped on a fault reading user memory (none from a 2.x
    /// module, which leaves the parameter empty and counts `n_faults`).
    pub n_drops_pf: u64,
    /// Events skipped because a probe re-entered on the same CPU.
    pub n_preemptions: u64,
    /// Events skipped on purpose in dropping (sampling) mode.
    pub n_drops_sampling: u64,
    /// Records dropped because they were larger than the whole ring.
    pub n_drops_too_large: u64,
    /// Parameters delivered empty because the user memory they come from
    /// could not be read (the events themselves were delivered).
    pub n_faults: u64,
}

impl RingStats {
    /// Events that happened but were not delivered, whatever the reason.
    pub fn lost(&self) -> u64 {
        self.n_drops_buffer
            + self.n_drops_pf
            + self.n_preemptions
            + self.n_drops_sampling
            + self.n_drops_too_large
    }
}

impl Add for RingStats {
    type Output = RingStats;
    fn add(mut self, other: RingStats) -> RingStats {
        self += other;
        self
    }
}

impl AddAssign for RingStats {
    fn add_assign(&mut self, o: RingStats) {
        self.n_evts += o.n_evts;
        self.n_drops_buffer += o.n_drops_buffer;
        self.n_drops_pf += o.n_drops_pf;
        self.n_preemptions += o.n_preemptions;
        self.n_drops_sampling += o.n_drops_sampling;
        self.n_drops_too_large += o.n_drops_too_large;
        self.n_faults += o.n_faults;
    }
}

impl Sum for RingStats {
    fn sum<I: Iterator<Item = RingStats>>(iter: I) -> RingStats {
        iter.fold(RingStats::default(), Add::add)
    }
}

/// Counters of one ring, tagged with the ring's id (the CPU for a device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuStats {
    pub cpu: usize,
    pub stats: RingStats,
    /// Bytes the producer has written that the reader has not given back
    /// yet: how full the ring is as the producer sees it.
    pub used_bytes: u64,
    pub buffer_size: u64,
}

/// Counters of every ring of a reader, and their sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub per_cpu: Vec<CpuStats>,
    pub total: RingStats,
}

impl Stats {
    pub fn new(per_cpu: Vec<CpuStats>) -> Stats {
        let total = per_cpu.iter().map(|c| c.stats).sum();
        Stats { per_cpu, total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_every_counter() {
        let a = RingStats {
            n_evts: 1,
            n_drops_buffer: 2,
            n_drops_pf: 3,
            n_preemptions: 4,
            n_drops_sampling: 5,
            n_drops_too_large: 6,
            n_faults: 7,
        };
        let s = Stats::new(vec![
            CpuStats {
                cpu: 0,
                stats: a,
                used_bytes: 0,
                buffer_size: 8192,
            },
            CpuStats {
                cpu: 3,
                stats: a,
                used_bytes: 0,
                buffer_size: 8192,
            },
        ]);
        assert_eq!(s.total.n_evts, 2);
        assert_eq!(s.total.n_drops_too_large, 12);
        assert_eq!(s.total.n_faults, 14);
        // A fault empties a parameter; the event still arrives, so it is not lost.
        assert_eq!(s.total.lost(), 2 * (2 + 3 + 4 + 5 + 6));
    }
}
