//! `stdout_output`: one line per alert on standard output.

use std::io::{self, BufWriter, Stdout, Write};

use super::{Channel, OutputError};
use crate::alert::SharedAlert;

pub struct StdoutChannel {
    out: BufWriter<Stdout>,
    /// `buffered_outputs: false` (or `-U`) flushes after every alert, so a
    /// reader on a pipe sees each alert as it happens.
    flush_each: bool,
}

impl StdoutChannel {
    pub fn new(buffered: bool) -> Self {
        StdoutChannel {
            out: BufWriter::new(io::stdout()),
            flush_each: !buffered,
        }
    }
}

fn io_error(source: io::Error) -> OutputError {
    OutputError::Io {
        channel: "stdout",
        source,
    }
}

impl Channel for StdoutChannel {
    fn name(&self) -> &'static str {
        "stdout"
    }

    fn emit(&mut self, alert: &SharedAlert) -> Result<(), OutputError> {
        self.out
            .write_all(alert.line.as_bytes())
            .map_err(io_error)?;
        self.out.write_all(b"\n").map_err(io_error)?;
        if self.flush_each {
            self.out.flush().map_err(io_error)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        self.out.flush().map_err(io_error)
    }
}
