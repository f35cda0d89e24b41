//! Commands that answer and exit instead of watching: the `driver`
//! subcommand, and the options that print what Peregrine knows (its
//! version, the events and fields it understands, a bug-report bundle).

pub mod driver;
pub mod list_events;
pub mod list_fields;
pub mod list_format;
pub mod support;
pub mod version;
