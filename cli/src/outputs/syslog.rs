//! `syslog_output`: alerts sent to the local syslog daemon, with the
//! alert's priority as the message severity.

#[cfg(test)]
use std::path::Path;

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

use super::{Channel, OutputError};
use crate::alert::{Priority, SharedAlert};

pub struct SyslogChannel {
    logger: Logger<LoggerBackend, Formatter3164>,
}

impl SyslogChannel {
    /// Connects to the local daemon (`/dev/log`, then `/var/run/syslog`).
    pub fn connect() -> Result<Self, OutputError> {
        let logger = syslog::unix(formatter()).map_err(|e| OutputError::Other {
            channel: "syslog",
            message: format!("cannot reach the local syslog daemon: {e}"),
        })?;
        Ok(SyslogChannel { logger })
    }

    /// Connects to a syslog socket at another path (a test's own daemon).
    #[cfg(test)]
    pub fn connect_to(socket: &Path) -> Result<Self, OutputError> {
        let logger = syslog::unix_custom(formatter(), socket).map_err(|e| OutputError::Other {
            channel: "syslog",
            message: format!("cannot reach syslog at {}: {e}", socket.display()),
        })?;
        Ok(SyslogChannel { logger })
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
        let sent = match alert.alert.priority {
            Priority::Emergency => self.logger.emerg(message),
            Priority::Alert => self.logger.alert(message),
            Priority::Critical => self.logger.crit(message),
            Priority::Error => self.logger.err(message),
            Priority::Warning => self.logger.warning(message),
            Priority::Notice => self.logger.notice(message),
            Priority::Informational => self.logger.info(message),
            Priority::Debug => self.logger.debug(message),
        };
        sent.map_err(|e| OutputError::Other {
            channel: "syslog",
            message: e.to_string(),
        })
    }
}
