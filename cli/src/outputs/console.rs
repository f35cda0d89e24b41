//! The web console as an output: each alert goes into the console's
//! bounded memory and out to the browsers watching. Publishing never
//! waits for a browser (see `servers::console::hub`), so this channel
//! keeps up with any alert rate the others do.

use std::sync::Arc;

use super::{Channel, OutputError};
use crate::alert::SharedAlert;
use crate::servers::console::Hub;

pub struct ConsoleChannel {
    hub: Arc<Hub>,
}

impl ConsoleChannel {
    pub fn new(hub: Arc<Hub>) -> Self {
        ConsoleChannel { hub }
    }
}

impl Channel for ConsoleChannel {
    fn name(&self) -> &'static str {
        "console"
    }

    fn emit(&mut self, alert: &SharedAlert) -> Result<(), OutputError> {
        self.hub.publish(alert);
        Ok(())
    }
}
