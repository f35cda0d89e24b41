//! An extractor on syscall events: it names `syscall` as its one source
//! and reads each event's header back, so a test can check that the host
//! hands it the event it is evaluating.

use std::ffi::{CStr, CString};

use falco_plugin::anyhow::Error;
use falco_plugin::base::Plugin;
use falco_plugin::extract::{field, ExtractFieldInfo, ExtractPlugin, ExtractRequest};
use falco_plugin::tables::TablesInput;
use falco_plugin::{extract_plugin, plugin};
use peregrine_test_plugins::SyscallEvent;

struct RSyscall;

impl Plugin for RSyscall {
    const NAME: &'static CStr = c"rsyscall";
    const PLUGIN_VERSION: &'static CStr = c"0.2.0";
    const DESCRIPTION: &'static CStr =
        c"Rust SDK extractor on syscall events for Peregrine's tests";
    const CONTACT: &'static CStr = c"peregrine tests";
    type ConfigType = ();

    fn new(_input: Option<&TablesInput>, _config: ()) -> Result<Self, Error> {
        Ok(RSyscall)
    }
}

impl RSyscall {
    fn extract_type(&mut self, req: ExtractRequest<Self>) -> Result<u64, Error> {
        Ok(u64::from(req.event.event()?.0.event_type))
    }

    fn extract_tid(&mut self, req: ExtractRequest<Self>) -> Result<u64, Error> {
        Ok(req.event.event()?.0.metadata.tid as u64)
    }

    fn extract_nparams(&mut self, req: ExtractRequest<Self>) -> Result<u64, Error> {
        Ok(u64::from(req.event.event()?.0.nparams))
    }

    fn extract_source(&mut self, req: ExtractRequest<Self>) -> Result<CString, Error> {
        let source = req.event.source().unwrap_or(c"");
        Ok(source.to_owned())
    }
}

impl ExtractPlugin for RSyscall {
    type Event<'a> = SyscallEvent<'a>;
    type ExtractContext = ();
    const EXTRACT_FIELDS: &'static [ExtractFieldInfo<Self>] = &[
        field("rsys.type", &Self::extract_type).with_description("the event type in the header"),
        field("rsys.tid", &Self::extract_tid).with_description("the thread id in the header"),
        field("rsys.nparams", &Self::extract_nparams).with_description("the parameter count"),
        field("rsys.source", &Self::extract_source).with_description("the source name passed"),
    ];
}

plugin!(RSyscall);
extract_plugin!(RSyscall);
