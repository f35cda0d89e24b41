//! The on-disk queue of the outputs that lose nothing (NATS, Kafka). Every
//! alert is appended here before it is published, and leaves only when the
//! far side has stored it, so an alert survives a cluster that is down and
//! a Peregrine that restarts.
//!
//! Two files in the spool folder: `alerts` holds one record a line
//! (`id TAB route TAB json`; none of the three holds a tab or a newline)
//! and `acked` the byte offset in `alerts` up to which the far side has
//! acknowledged. The offset is replaced atomically (write, then rename), so
//! a crash at worst publishes a record twice, and the deduplication by id
//! (the stream's for NATS, the output's own for Kafka) takes the second
//! copy out.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Once everything is acknowledged and the file has grown past this, it is
/// emptied, so the spool does not grow with every alert ever sent.
const COMPACT_AFTER_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One alert waiting for the stream's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The deduplication id, the same on every resend.
    pub id: String,
    /// Where the record goes: the NATS subject, the Kafka record key.
    pub route: String,
    pub json: String,
}

pub struct Spool {
    dir: PathBuf,
    file: File,
    /// Bytes in `alerts`.
    len: u64,
    /// Bytes of `alerts` the stream has acknowledged.
    acked: u64,
    max_bytes: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, keeping what an earlier run
    /// left unacknowledged.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        let io = |source| SpoolError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join("alerts");
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|source| SpoolError::Io {
                path: path.clone(),
                source,
            })?;
        let len = complete_lines(&file, file.metadata().map_err(io)?.len()).map_err(io)?;
        let acked = std::fs::read_to_string(dir.join("acked"))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .filter(|&offset| offset <= len)
            .unwrap_or(0);
        Ok(Spool {
            dir: dir.to_path_buf(),
            file,
            len,
            acked,
            max_bytes,
        })
    }

    /// Bytes waiting for an acknowledgement.
    pub fn pending_bytes(&self) -> u64 {
        self.len - self.acked
    }

    pub fn is_empty(&self) -> bool {
        self.pending_bytes() == 0
    }

    /// Appends a record; `Ok(false)` when the spool is full and it was not
    /// taken.
    pub fn push(&mut self, record: &Record) -> Result<bool, SpoolError> {
        let line = format!(
            "{}\t{}\t{}\n",
            clean(&record.id),
            clean(&record.route),
            clean(&record.json)
        );
        if self.pending_bytes() + line.len() as u64 > self.max_bytes {
            return Ok(false);
        }
        self.file
            .write_all(line.as_bytes())
            .map_err(|source| self.error("alerts", source))?;
        self.len += line.len() as u64;
        Ok(true)
    }

    /// Makes what was pushed durable.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        self.file
            .sync_data()
            .map_err(|source| self.error("alerts", source))
    }

    /// Up to `max` records after the acknowledged offset, each with the
    /// offset just past it.
    pub fn peek(&mut self, max: usize) -> Result<Vec<(Record, u64)>, SpoolError> {
        let mut reader = self
            .file
            .try_clone()
            .map_err(|source| self.error("alerts", source))?;
        reader
            .seek(SeekFrom::Start(self.acked))
            .map_err(|source| self.error("alerts", source))?;
        let mut reader = BufReader::new(reader.take(self.len - self.acked));
        let mut records = Vec::new();
        let mut offset = self.acked;
        let mut line = String::new();
        while records.len() < max {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|source| self.error("alerts", source))?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            offset += n as u64;
            let mut parts = line.trim_end_matches('\n').splitn(3, '\t');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(id), Some(route), Some(json)) => records.push((
                    Record {
                        id: id.to_string(),
                        route: route.to_string(),
                        json: json.to_string(),
                    },
                    offset,
                )),
                // A torn line from a crash mid-write: nothing to resend.
                _ => continue,
            }
        }
        Ok(records)
    }

    /// Records up to `offset` are acknowledged.
    pub fn ack(&mut self, offset: u64) -> Result<(), SpoolError> {
        self.acked = offset.min(self.len);
        if self.acked == self.len && self.len >= COMPACT_AFTER_BYTES {
            self.file
                .set_len(0)
                .map_err(|source| self.error("alerts", source))?;
            self.len = 0;
            self.acked = 0;
        }
        let tmp = self.dir.join("acked.tmp");
        std::fs::write(&tmp, format!("{}\n", self.acked))
            .and_then(|()| std::fs::rename(&tmp, self.dir.join("acked")))
            .map_err(|source| self.error("acked", source))
    }

    fn error(&self, name: &str, source: std::io::Error) -> SpoolError {
        SpoolError::Io {
            path: self.dir.join(name),
            source,
        }
    }
}

/// The length of `file` without a torn last line (a crash mid-write), which
/// is cut off: the next record appended after it would otherwise be read
/// as part of it.
fn complete_lines(file: &File, len: u64) -> std::io::Result<u64> {
    const STEP: u64 = 4096;
    let mut end = len;
    let mut buf = vec![0u8; STEP as usize];
    while end > 0 {
        let start = end.saturating_sub(STEP);
        let chunk = &mut buf[..(end - start) as usize];
        std::os::unix::fs::FileExt::read_exact_at(file, chunk, start)?;
        if let Some(at) = chunk.iter().rposition(|&b| b == b'\n') {
            let complete = start + at as u64 + 1;
            if complete != len {
                file.set_len(complete)?;
            }
            return Ok(complete);
        }
        end = start;
    }
    if len != 0 {
        file.set_len(0)?;
    }
    Ok(0)
}

/// The record separators cannot appear inside a field; JSON escapes both
/// anyway, so this only guards ids and routes.
fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(['\t', '\n']) {
        text.replace(['\t', '\n'], " ").into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u32) -> Record {
        Record {
            id: format!("node:1:{n}"),
            route: "peregrine.alerts.node.warning".into(),
            json: format!("{{\"n\":{n}}}"),
        }
    }

    /// The records waiting, without their offsets.
    fn pending(spool: &mut Spool) -> Vec<Record> {
        let waiting = spool.peek(100).unwrap();
        waiting.into_iter().map(|(record, _)| record).collect()
    }

    #[test]
    fn unacknowledged_records_survive_a_reopen_and_acknowledged_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for n in 0..5 {
            assert!(spool.push(&record(n)).unwrap());
        }
        spool.sync().unwrap();
        let first = spool.peek(2).unwrap();
        assert_eq!(first.len(), 2);
        spool.ack(first[1].1).unwrap();
        drop(spool);

        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let left = pending(&mut spool);
        assert_eq!(left, vec![record(2), record(3), record(4)]);
    }

    #[test]
    fn a_full_spool_refuses_and_takes_again_once_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let one = "node:1:0\tperegrine.alerts.node.warning\t{\"n\":0}\n".len() as u64;
        let mut spool = Spool::open(dir.path(), one * 2).unwrap();
        assert!(spool.push(&record(0)).unwrap());
        assert!(spool.push(&record(1)).unwrap());
        assert!(!spool.push(&record(2)).unwrap());
        let all = spool.peek(10).unwrap();
        spool.ack(all[0].1).unwrap();
        assert!(spool.push(&record(3)).unwrap());
    }

    #[test]
    fn a_torn_last_line_is_not_sent_and_a_bad_offset_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.push(&record(0)).unwrap();
        drop(spool);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join("alerts"))
            .unwrap();
        file.write_all(b"node:1:1\tpartial").unwrap();
        std::fs::write(dir.path().join("acked"), "999999\n").unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let left = pending(&mut spool);
        assert_eq!(left, vec![record(0)]);
        // What comes after the torn line is read whole.
        assert!(spool.push(&record(2)).unwrap());
        let left = pending(&mut spool);
        assert_eq!(left, vec![record(0), record(2)]);
    }

    #[test]
    fn everything_acknowledged_empties_a_large_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let big = Record {
            json: "x".repeat(4096),
            ..record(0)
        };
        while spool.len < COMPACT_AFTER_BYTES {
            spool.push(&big).unwrap();
        }
        let end = spool.len;
        spool.ack(end).unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join("alerts")).unwrap().len(),
            0
        );
        assert!(spool.is_empty());
    }
}
