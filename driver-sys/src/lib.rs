//! Access to the `peregrine.ko` kernel module: the ABI (generated from
//! `kmod/include`), the per-CPU devices, and the lock-free ring reader.
//!
//! Every ring, kernel-made or not, is one mapping laid out as
//! `[info page][data][the same data again]`, read by one [`Ring`]; a
//! [`MergedReader`] reads many rings in timestamp order.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
mod device;
mod event;
mod merge;
mod ring;
mod stats;
mod user_ring;

pub use device::{parse_cpu_list, syscall_mask, Driver, DriverConfig, DriverError};
pub use event::{EventRef, RecordError};
pub use merge::{MergedReader, WaitPolicy};
pub use ring::{BadBufferSize, Corruption, Ring, RingError};
pub use stats::{CpuStats, RingStats, Stats};
pub use user_ring::{Producer, UserRing, UserRingError, WriteError, WriteOutcome};
