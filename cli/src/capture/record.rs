//! `--syscall-capture FILE`: the agent writes every kernel record it reads
//! to a `.scap` file while it evaluates them, so the alerts of a live run
//! can be replayed from exactly the events that raised them (`-e FILE`
//! with the same rules). The capture starts with the tables the live state
//! started from: users, groups, the processes and their open fds.
//!
//! Recording never stops detection: a write that fails is logged once,
//! and the file is closed where it stood.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use peregrine_engine::event::EventView;
use peregrine_engine::scap::snapshot::{fd_entries, machine_info, proc_entries};
use peregrine_engine::scap::tables::{GroupEntry, UserEntry};
use peregrine_engine::scap::Writer;
use peregrine_engine::state::State;

pub struct Recorder {
    path: PathBuf,
    writer: Option<Writer<BufWriter<File>>>,
    written: u64,
}

impl Recorder {
    /// Creates `path` (mode 0600, never through a symlink: it holds
    /// command lines and environments) and writes the starting tables.
    pub fn create(
        path: &Path,
        state: &State,
        (users, groups): (&[UserEntry], &[GroupEntry]),
        hostname: &str,
    ) -> Result<Recorder, String> {
        let fail = |e: std::io::Error| format!("cannot write the capture {}: {e}", path.display());
        let file = super::create_private(path).map_err(fail)?;
        let machine = machine_info(&crate::host::path("/proc"), hostname);
        let mut writer =
            Writer::new(BufWriter::with_capacity(1 << 20, file), &machine).map_err(fail)?;
        writer.write_users(users, groups).map_err(fail)?;
        writer.write_processes(&proc_entries(state)).map_err(fail)?;
        writer.write_fd_table(&fd_entries(state)).map_err(fail)?;
        Ok(Recorder {
            path: path.to_path_buf(),
            writer: Some(writer),
            written: 0,
        })
    }

    /// Appends one record as the ring gave it (the event's CPU set).
    pub fn record(&mut self, event: &EventView<'_>) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        match writer.write_event(event) {
            Ok(()) => self.written += 1,
            Err(e) => self.give_up(&e),
        }
    }

    /// [`Recorder::record`] for a record's bytes and its ring (its CPU).
    pub fn record_bytes(&mut self, ring: usize, bytes: &[u8]) {
        if self.writer.is_none() {
            return;
        }
        if let Ok(mut event) = EventView::parse(bytes) {
            event.cpu = u16::try_from(ring).unwrap_or(u16::MAX);
            self.record(&event);
        }
    }

    fn give_up(&mut self, e: &std::io::Error) {
        crate::log::message(&format!(
            "writing the capture {} failed after {} events: {e}; recording stops, detection goes on",
            self.path.display(),
            self.written
        ));
        if let Some(writer) = self.writer.take() {
            let _ = writer.finish();
        }
    }

    /// Flushes the file; says how many events it holds.
    pub fn finish(mut self) -> Result<u64, String> {
        if let Some(writer) = self.writer.take() {
            writer
                .finish()
                .map_err(|e| format!("cannot finish the capture {}: {e}", self.path.display()))?;
        }
        Ok(self.written)
    }
}
