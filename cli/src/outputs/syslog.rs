//! `syslog_output`: alerts sent to the local syslog daemon, with the
//! alert's priority as the message severity.
//!
//! The daemon may be absent at start (a container without /dev/log, as
//! Falco's default falco.yaml enables syslog) or restart while Peregrine
//! runs: the channel then warns, counts the alerts it cannot send as
//! failed, and connects again at the next alert (at most once a second).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

use super::{Channel, OutputError};
use crate::alert::{Priority, SharedAlert};

/// Names another syslog socket than `/dev/log` (a test's own daemon, or a
/// system whose daemon listens elsewhere).
pub const SOCKET_ENV: &str = "PEREGRINE_SYSLOG_SOCKET";

/// How often a missing daemon is looked for again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

pub struct SyslogChannel {
    /// None: the standard places (`/dev/log`, then `/var/run/syslog`).
    socket: Option<PathBuf>,
    logger: Option<Logger<LoggerBackend, Formatter3164>>,
    last_attempt: Option<Instant>,
}

impl SyslogChannel {
    /// Connects to the local daemon, or says why not and carries on: the
    /// channel connects at a later alert.
    pub fn connect() -> Self {
        let socket = std::env::var_os(SOCKET_ENV).map(PathBuf::from);
        Self::with_socket(socket)
    }

    /// Connects to a syslog socket at another path (a test's own daemon).
    pub fn connect_to(socket: &Path) -> Self {
        Self::with_socket(Some(socket.to_owned()))
    }

    fn with_socket(socket: Option<PathBuf>) -> Self {
        let mut channel = SyslogChannel {
            socket,
            logger: None,
            last_attempt: None,
        };
        if let Err(e) = channel.reconnect() {
            crate::log::message(&format!(
                "Warning: {e}; syslog output will connect when the daemon is there"
            ));
        }
        channel
    }

    fn where_(&self) -> String {
        match &self.socket {
            Some(path) => path.display().to_string(),
            None => "the local syslog daemon".into(),
        }
    }

    fn reconnect(&mut self) -> Result<(), OutputError> {
        self.last_attempt = Some(Instant::now());
        let connected = match &self.socket {
            Some(path) => syslog::unix_custom(formatter(), path),
            None => syslog::unix(formatter()),
        };
        match connected {
            Ok(logger) => {
                self.logger = Some(logger);
                Ok(())
            }
            Err(e) => Err(OutputError::Other {
                channel: "syslog",
                message: format!("cannot reach {}: {e}", self.where_()),
            }),
        }
    }

    fn send(&mut self, priority: Priority, message: &str) -> Result<(), String> {
        let Some(logger) = self.logger.as_mut() else {
            return Err(format!("not connected to {}", self.where_()));
        };
        let sent = match priority {
            Priority::Emergency => logger.emerg(message),
            Priority::Alert => logger.alert(message),
            Priority::Critical => logger.crit(message),
            Priority::Error => logger.err(message),
            Priority::Warning => logger.warning(message),
            Priority::Notice => logger.notice(message),
            Priority::Informational => logger.info(message),
            Priority::Debug => logger.debug(message),
        };
        sent.map_err(|e| e.to_string())
    }
}

fn formatter() -> Formatter3164 {
    Formatter3164 {
        facility: Facility::LOG_USER,
        hostname: None,
        process: "peregrine".into(),
        pid: std::process::id(),
    }
}

impl Channel for SyslogChannel {
    fn name(&self) -> &'static str {
        "syslog"
    }

    fn emit(&mut self, alert: &SharedAlert) -> Result<(), OutputError> {
        let message = alert.line.as_str();
        let priority = alert.alert.priority;
        if self.logger.is_none()
            && self
                .last_attempt
                .map_or(true, |at| at.elapsed() >= RETRY_EVERY)
        {
            self.reconnect()?;
        }
        let first = match self.send(priority, message) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // A restarted daemon has a new socket: connect to it and try once
        // more before counting the alert failed.
        self.logger = None;
        if self
            .last_attempt
            .map_or(true, |at| at.elapsed() >= RETRY_EVERY)
        {
            self.reconnect()?;
            if self.send(priority, message).is_ok() {
                return Ok(());
            }
        }
        self.logger = None;
        Err(OutputError::Other {
            channel: "syslog",
            message: first,
        })
    }

    fn reopen(&mut self) -> Result<(), OutputError> {
        self.reconnect()
    }
}
