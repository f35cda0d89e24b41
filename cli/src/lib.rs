//! The pieces of the `peregrine` command (config, sources, outputs,
//! webserver), as a library so that fuzz targets and tests reach them; the
//! binary is `src/main.rs`.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod alert;
pub mod args;
pub mod capture;
pub mod config;
pub mod driver_cmd;
pub mod drops;
pub mod interest;
pub mod log;
pub mod metrics;
pub mod outputs;
pub mod reload;
pub mod ruleset;
pub mod run;
pub mod servers;
pub mod traced;
pub mod webserver;
