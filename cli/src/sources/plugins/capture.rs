//! Plugin events in `.scap` captures: written as Falco's PLUGINEVENT_E
//! records (the plugin id and the payload), and read back for the plugin
//! source whose id they carry, so a plugin source replays with `-e` as it
//! ran live.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use peregrine_engine::event::view::EventView;
use peregrine_engine::scap::tables::MachineInfo;
use peregrine_engine::scap::writer::Writer;
use peregrine_engine::scap::Capture;

use super::event::PLUGINEVENT_E;
use super::PluginEvent;

/// A capture the run's plugin sources write their events to; shared by
/// the source loops.
pub struct EventWriter {
    path: PathBuf,
    writer: Mutex<Option<Writer<BufWriter<File>>>>,
}

impl EventWriter {
    pub fn create(path: &Path, hostname: &str) -> Result<EventWriter, String> {
        let file = File::create(path)
            .map_err(|e| format!("cannot create the capture {}: {e}", path.display()))?;
        let machine = MachineInfo {
            num_cpus: 1,
            hostname: hostname.to_string(),
            ..MachineInfo::default()
        };
        let writer = Writer::new(BufWriter::new(file), &machine)
            .map_err(|e| format!("cannot write the capture {}: {e}", path.display()))?;
        Ok(EventWriter {
            path: path.to_path_buf(),
            writer: Mutex::new(Some(writer)),
        })
    }

    pub fn write(&self, event: &PluginEvent) -> Result<(), String> {
        let view = EventView::parse(event.bytes())
            .map_err(|e| format!("a plugin event does not fit a capture: {e}"))?;
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_mut() {
            Some(writer) => writer
                .write_event(&view)
                .map_err(|e| format!("cannot write the capture {}: {e}", self.path.display())),
            None => Ok(()),
        }
    }

    /// Flushes and closes the capture; says how many events it holds.
    pub fn finish(&self) -> Result<u64, String> {
        let taken = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(writer) = taken else { return Ok(0) };
        let written = writer.events_written();
        writer
            .finish()
            .map_err(|e| format!("cannot write the capture {}: {e}", self.path.display()))?;
        Ok(written)
    }
}

/// Reads the plugin events of `plugin_id` from the capture at `path`, in
/// order, numbering them from 1; `each` returns false to stop.
pub fn read_events(
    path: &Path,
    plugin_id: u32,
    mut each: impl FnMut(PluginEvent) -> bool,
) -> Result<u64, String> {
    let mut capture = Capture::open(path)
        .map_err(|e| format!("cannot read the capture {}: {e}", path.display()))?;
    let mut events = capture.events();
    let mut number = 0u64;
    while let Some(event) = events.next() {
        let event =
            event.map_err(|e| format!("cannot read the capture {}: {e}", path.display()))?;
        if event.event_type != PLUGINEVENT_E {
            continue;
        }
        let (Some(id), Some(payload)) = (event.param_bytes(0), event.param_bytes(1)) else {
            continue;
        };
        let Ok(id) = <[u8; 4]>::try_from(id).map(u32::from_le_bytes) else {
            continue;
        };
        if id != plugin_id {
            continue;
        }
        number += 1;
        let mut plugin_event = PluginEvent::new(event.ts, event.tid, id, payload);
        plugin_event.number = number;
        if !each(plugin_event) {
            break;
        }
    }
    Ok(number)
}
