//! Where events come from. `plan` decides which sources a run feeds; the
//! kernel module's rings (with the drop counters and the set of syscalls it
//! is asked to write) and the ptrace tracer of `peregrine run` live here,
//! captures and audit files are read by `crate::run`, and Falco plugins
//! (event sources, extractors, parsers) are hosted in `plugins`.

pub mod drops;
pub mod interest;
pub mod plan;
pub mod plugins;
pub mod ring_health;
pub mod traced;
pub mod users;
