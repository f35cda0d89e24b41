//! The kernel rings as the reading thread last saw them, per CPU: events
//! written, drops by cause, how full each ring is; and the CPU time of
//! the reading thread itself. For `/metrics` and the console's health
//! view, where a ring that fills or a CPU that drops must show.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use peregrine_driver_sys::CpuStats;

/// Per-CPU counters and the reading thread; empty until a live source
/// reads.
#[derive(Default)]
pub struct RingHealth {
    cpus: Mutex<Vec<CpuStats>>,
    /// The reading thread's id; 0 until one reads.
    reader_tid: AtomicI32,
}

impl RingHealth {
    /// Every ring's counters, as read after a batch.
    pub fn set_cpus(&self, per_cpu: Vec<CpuStats>) {
        if let Ok(mut cpus) = self.cpus.lock() {
            *cpus = per_cpu;
        }
    }

    /// Every ring's counters, as last read.
    pub fn cpus(&self) -> Vec<CpuStats> {
        self.cpus
            .lock()
            .map(|cpus| cpus.clone())
            .unwrap_or_default()
    }

    /// Called by the thread that reads the rings, when it starts.
    pub fn set_reader_thread(&self) {
        self.reader_tid
            .store(nix::unistd::gettid().as_raw(), Ordering::Relaxed);
    }

    /// The reading thread's user plus system CPU time, in seconds.
    pub fn reader_cpu_seconds(&self) -> Option<f64> {
        match self.reader_tid.load(Ordering::Relaxed) {
            0 => None,
            tid => thread_cpu_seconds(&format!("/proc/self/task/{tid}/stat")),
        }
    }

    /// Labelled series under `falcosecurity_peregrine_`.
    pub fn write_prometheus(&self, text: &mut String) {
        if let Some(seconds) = self.reader_cpu_seconds() {
            let _ = writeln!(
                text,
                "falcosecurity_peregrine_reader_cpu_seconds_total {seconds:.2}"
            );
        }
        let cpus = match self.cpus.lock() {
            Ok(cpus) => cpus.clone(),
            Err(_) => return,
        };
        for c in &cpus {
            let (cpu, s) = (c.cpu, &c.stats);
            let _ = writeln!(
                text,
                "falcosecurity_peregrine_kernel_cpu_events_total{{cpu=\"{cpu}\"}} {}",
                s.n_evts
            );
            for (cause, value) in [
                ("buffer", s.n_drops_buffer),
                ("page_fault", s.n_drops_pf),
                ("too_large", s.n_drops_too_large),
                ("reentry", s.n_preemptions),
            ] {
                let _ = writeln!(
                    text,
                    "falcosecurity_peregrine_kernel_cpu_drops_total{{cpu=\"{cpu}\",cause=\"{cause}\"}} {value}"
                );
            }
            let _ = writeln!(
                text,
                "falcosecurity_peregrine_ring_used_bytes{{cpu=\"{cpu}\"}} {}",
                c.used_bytes
            );
            let _ = writeln!(
                text,
                "falcosecurity_peregrine_ring_size_bytes{{cpu=\"{cpu}\"}} {}",
                c.buffer_size
            );
        }
    }
}

/// utime + stime of a `/proc/.../stat` file, in seconds.
fn thread_cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which may hold spaces, in parentheses.
    let after = stat.rsplit_once(')')?.1;
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()?;
    Some((utime + stime) as f64 / ticks.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use peregrine_driver_sys::{MergedReader, UserRing, WriteOutcome};

    #[test]
    fn drops_and_fill_per_cpu_and_the_readers_cpu_reach_the_text() {
        let (mut p0, r0) = UserRing::create(0, 8192).unwrap().split().unwrap();
        let (mut p3, r3) = UserRing::create(3, 8192).unwrap().split().unwrap();
        assert_eq!(
            p0.write_event(1, 1, 1, &[b"ok"]).unwrap(),
            WriteOutcome::Written
        );
        let filler = vec![0u8; 1000];
        let mut dropped = 0;
        for ts in 0..20 {
            if p3.write_event(ts, 1, 1, &[&filler]).unwrap() != WriteOutcome::Written {
                dropped += 1;
            }
        }
        assert!(dropped > 0);
        let reader = MergedReader::new(vec![r0, r3]);
        let health = RingHealth::default();
        health.set_cpus(reader.stats().per_cpu);
        health.set_reader_thread();
        let mut text = String::new();
        health.write_prometheus(&mut text);
        assert!(
            text.contains("kernel_cpu_events_total{cpu=\"0\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "kernel_cpu_drops_total{{cpu=\"3\",cause=\"buffer\"}} {dropped}\n"
            )),
            "{text}"
        );
        assert!(text.contains("kernel_cpu_drops_total{cpu=\"0\",cause=\"buffer\"} 0\n"));
        assert!(text.contains("ring_used_bytes{cpu=\"0\"} 30\n"), "{text}");
        assert!(text.contains("ring_size_bytes{cpu=\"3\"} 8192\n"), "{text}");
        // This thread is the reader: its CPU time grows as it works (a
        // clock tick is 10 ms; the machine may be busy).
        let started = std::time::Instant::now();
        while health.reader_cpu_seconds().unwrap() == 0.0 {
            assert!(started.elapsed() < std::time::Duration::from_secs(20));
            for _ in 0..100_000 {
                std::hint::black_box(0u64);
            }
        }
        assert!(text.contains("falcosecurity_peregrine_reader_cpu_seconds_total "));
    }
}
