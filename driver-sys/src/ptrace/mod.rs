//! Capture without the kernel module: a ptrace tracer that follows a
//! program tree and writes the module's records (same event types, same
//! parameter layouts), for hosts where no module can be loaded.
//!
//! [`trace`] runs the loop and writes each record to any `Write` (the CLI
//! gives it a pipe to the engine). It knows nothing of rules: the records
//! are read back with the same parser as the module's rings.
//!
//! Costs: spawn mode stops the workload only at the syscalls listed in
//! [`syscalls::TRACED`] (seccomp-BPF); attach mode stops at every syscall.
//! read/write are not traced (no default rule needs them).

mod encode;
mod flags;
mod ia32;
mod memory;
mod procinfo;
mod record;
mod seccomp;
mod signals;
mod sys;
pub mod syscalls;
mod tracer;

pub use tracer::{trace, Summary, Target, TraceError};
