//! The pieces of the `peregrine` command (config, sources, outputs,
//! servers), as a library so that fuzz targets and tests reach them; the
//! binary is `src/main.rs`.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod alert;
pub mod args;
pub mod capture;
pub mod commands;
pub mod config;
pub mod containers;
pub mod dns;
pub mod fleet;
pub mod host;
pub mod log;
pub mod metrics;
pub mod outputs;
pub mod reload;
pub mod ruleset;
pub mod run;
pub mod servers;
pub mod signals;
pub mod sources;
pub mod wakeup;
