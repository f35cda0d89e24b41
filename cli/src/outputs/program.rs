//! `program_output`: alerts written to the standard input of a program
//! started through the shell.

use std::io::{self, Write};
use std::process::{Child, ChildStdin, Command, Stdio};

use super::{Channel, OutputError};
use crate::alert::SharedAlert;

pub struct ProgramChannel {
    command: String,
    /// `keep_alive: true` starts the program once and streams every alert
    /// to it; otherwise one run per alert, which is what `mail -s ...`
    /// style commands expect.
    keep_alive: bool,
    running: Option<(Child, ChildStdin)>,
}

impl ProgramChannel {
    pub fn new(command: String, keep_alive: bool) -> Self {
        ProgramChannel {
            command,
            keep_alive,
            running: None,
        }
    }

    fn start(&self) -> Result<(Child, ChildStdin), OutputError> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| self.error(e))?;
        match child.stdin.take() {
            Some(stdin) => Ok((child, stdin)),
            None => Err(OutputError::Other {
                channel: "program",
                message: format!("'{}': no standard input to write to", self.command),
            }),
        }
    }

    fn error(&self, source: io::Error) -> OutputError {
        OutputError::Other {
            channel: "program",
            message: format!("'{}': {source}", self.command),
        }
    }

    /// Closes the program's input and waits for it to finish its work.
    fn finish(&mut self, child: Child, stdin: ChildStdin) -> Result<(), OutputError> {
        drop(stdin);
        let mut child = child;
        let status = child.wait().map_err(|e| self.error(e))?;
        if status.success() {
            Ok(())
        } else {
            Err(OutputError::Other {
                channel: "program",
                message: format!("'{}' exited with {status}", self.command),
            })
        }
    }
}

impl Channel for ProgramChannel {
    fn name(&self) -> &'static str {
        "program"
    }

    fn emit(&mut self, alert: &SharedAlert) -> Result<(), OutputError> {
        let (child, mut stdin) = match self.running.take() {
            Some(running) => running,
            None => self.start()?,
        };
        let written = stdin
            .write_all(alert.line.as_bytes())
            .and_then(|()| stdin.write_all(b"\n"))
            .and_then(|()| stdin.flush());
        if let Err(e) = written {
            // The program went away: reap it and start afresh next time.
            let _ = self.finish(child, stdin);
            return Err(self.error(e));
        }
        if self.keep_alive {
            self.running = Some((child, stdin));
            Ok(())
        } else {
            self.finish(child, stdin)
        }
    }

    fn reopen(&mut self) -> Result<(), OutputError> {
        match self.running.take() {
            Some((child, stdin)) => self.finish(child, stdin),
            None => Ok(()),
        }
    }
}

impl Drop for ProgramChannel {
    fn drop(&mut self) {
        if let Some((child, stdin)) = self.running.take() {
            let _ = self.finish(child, stdin);
        }
    }
}
