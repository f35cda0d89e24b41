//! Where events come from. `plan` decides which sources a run feeds, and
//! each family is a `feed::Feed` that `main` starts, drives and joins the
//! same way: `syscall` (the kernel module, a capture, `peregrine run`),
//! `audit` (the webhook, an audit file) and `plugins` (each plugin's own
//! source; the folder also hosts Falco plugins' extractors and parsers).
//! The kernel module's rings (with the drop counters and the set of
//! syscalls it is asked to write) and the ptrace tracer live here too;
//! captures and audit files are read by `crate::run`.

pub mod audit;
pub mod drops;
pub mod feed;
pub mod interest;
pub mod plan;
pub mod plugins;
pub mod ring_health;
pub mod syscall;
pub mod traced;
pub mod users;
