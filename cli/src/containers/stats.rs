//! Counters of the runtime lookups, by engine and socket, for /metrics.

use super::EngineKind;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Found,
    NotFound,
    Failed,
}

#[derive(Debug)]
struct PerSocket {
    engine: &'static str,
    socket: String,
    found: AtomicU64,
    not_found: AtomicU64,
    failed: AtomicU64,
}

#[derive(Debug)]
pub struct ContainerStats {
    sockets: Vec<PerSocket>,
    /// Asks or answers dropped because a queue was full.
    queue_full: AtomicU64,
}

impl ContainerStats {
    pub fn new(sockets: &[(EngineKind, PathBuf)]) -> ContainerStats {
        ContainerStats {
            sockets: sockets
                .iter()
                .map(|(kind, socket)| PerSocket {
                    engine: kind.name(),
                    socket: socket.display().to_string(),
                    found: AtomicU64::new(0),
                    not_found: AtomicU64::new(0),
                    failed: AtomicU64::new(0),
                })
                .collect(),
            queue_full: AtomicU64::new(0),
        }
    }

    pub fn count(&self, index: usize, outcome: Outcome) {
        if let Some(s) = self.sockets.get(index) {
            let counter = match outcome {
                Outcome::Found => &s.found,
                Outcome::NotFound => &s.not_found,
                Outcome::Failed => &s.failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn count_queue_full(&self) {
        self.queue_full.fetch_add(1, Ordering::Relaxed);
    }

    /// Failures of all sockets.
    pub fn failures(&self) -> u64 {
        self.sockets
            .iter()
            .map(|s| s.failed.load(Ordering::Relaxed))
            .sum()
    }

    /// The counters as Prometheus text.
    pub fn prometheus_text(&self) -> String {
        let mut text = String::new();
        for s in &self.sockets {
            for (outcome, value) in [
                ("found", &s.found),
                ("not_found", &s.not_found),
                ("failed", &s.failed),
            ] {
                let _ = writeln!(
                    text,
                    "falcosecurity_peregrine_container_lookups_total{{engine=\"{}\",socket=\"{}\",outcome=\"{outcome}\"}} {}",
                    s.engine,
                    s.socket.replace('\\', "\\\\").replace('"', "\\\""),
                    value.load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            text,
            "falcosecurity_peregrine_container_queue_full_total {}",
            self.queue_full.load(Ordering::Relaxed)
        );
        text
    }
}
