//! `file_output`: alerts appended to a file, one per line.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use super::{Channel, OutputError};
use crate::alert::SharedAlert;

pub struct FileChannel {
    path: PathBuf,
    /// `keep_alive: true` keeps the file open between alerts; otherwise it
    /// is opened and closed for each one, as Falco does, which also lets
    /// logrotate move it away at any time.
    keep_alive: bool,
    buffered: bool,
    file: Option<BufWriter<File>>,
}

impl FileChannel {
    /// Opens (creating) the file at once, so a bad path is reported at
    /// startup instead of at the first alert.
    pub fn open(path: PathBuf, keep_alive: bool, buffered: bool) -> Result<Self, OutputError> {
        let mut channel = FileChannel {
            path,
            keep_alive,
            buffered,
            file: None,
        };
        let file = channel.open_file()?;
        if keep_alive {
            channel.file = Some(file);
        }
        Ok(channel)
    }

    fn open_file(&self) -> Result<BufWriter<File>, OutputError> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map(BufWriter::new)
            .map_err(|e| self.error(e))
    }

    fn error(&self, source: io::Error) -> OutputError {
        OutputError::Other {
            channel: "file",
            message: format!("{}: {source}", self.path.display()),
        }
    }
}

/// Closes the file without writing what is still buffered.
fn discard(file: BufWriter<File>) {
    let (_file, _unwritten) = file.into_parts();
}

impl Channel for FileChannel {
    fn name(&self) -> &'static str {
        "file"
    }

    fn emit(&mut self, alert: &SharedAlert) -> Result<(), OutputError> {
        let mut file = match self.file.take() {
            Some(file) => file,
            None => self.open_file()?,
        };
        let written = file
            .write_all(alert.line.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| {
                if self.buffered && self.keep_alive {
                    Ok(())
                } else {
                    file.flush()
                }
            });
        match written {
            Ok(()) => {
                if self.keep_alive {
                    self.file = Some(file);
                }
                Ok(())
            }
            Err(e) => {
                // The alert is counted failed once, here: its bytes left
                // in the buffer must not be written by a later flush, nor
                // fail again there. The next alert opens the file afresh.
                discard(file);
                Err(self.error(e))
            }
        }
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if let Err(e) = file.flush() {
            if let Some(file) = self.file.take() {
                discard(file);
            }
            return Err(self.error(e));
        }
        Ok(())
    }

    fn reopen(&mut self) -> Result<(), OutputError> {
        self.flush()?;
        if self.keep_alive {
            self.file = Some(self.open_file()?);
        }
        Ok(())
    }
}
