//! `metrics.output_file`: each metrics snapshot appended to a file as one
//! JSON line, `{"sample": N, "output_fields": {...}}`, as Falco writes it.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Metrics as MetricsSettings;
use crate::metrics::falco::Value;

/// How often snapshots are taken: when metrics are enabled and go to the
/// snapshot alert or to a file.
pub fn stats_period(settings: &MetricsSettings) -> Option<Duration> {
    (settings.enabled && (settings.output_rule || !settings.output_file.is_empty()))
        .then(|| Duration::from_secs(settings.interval.max(1)))
}

pub struct MetricsFile {
    path: PathBuf,
    file: File,
    samples: u64,
    failed: bool,
}

impl MetricsFile {
    /// None when no file is set, or when it cannot be opened (said on
    /// stderr: the snapshots still go to the alert).
    pub fn open(path: &str) -> Option<MetricsFile> {
        if path.is_empty() {
            return None;
        }
        match File::options().create(true).append(true).open(path) {
            Ok(file) => Some(MetricsFile {
                path: PathBuf::from(path),
                file,
                samples: 0,
                failed: false,
            }),
            Err(e) => {
                crate::log::message(&format!(
                    "metrics.output_file: cannot open {path}: {e}; snapshots are not written there"
                ));
                None
            }
        }
    }

    pub fn append(&mut self, fields: &[(String, Value)]) {
        self.samples += 1;
        let output_fields: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(name, value)| (name.clone(), value.to_json()))
            .collect();
        let line = serde_json::json!({
            "sample": self.samples,
            "output_fields": output_fields,
        });
        let written = writeln!(self.file, "{line}").and_then(|()| self.file.flush());
        match written {
            Ok(()) => self.failed = false,
            Err(e) if !self.failed => {
                self.failed = true;
                crate::log::message(&format!(
                    "metrics.output_file: writing {}: {e}",
                    self.path.display()
                ));
            }
            Err(_) => {}
        }
    }
}
