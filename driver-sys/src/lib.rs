//! Access to the `peregrine.ko` kernel module: the ABI (generated from
//! `kmod/include`), the per-CPU devices, and the lock-free ring reader.
//! Where no module can be loaded, [`ptrace`] writes the same records from
//! a userspace tracer.
//!
//! Every ring, kernel-made or not, is one mapping laid out as
//! `[info page][data][the same data again]`, read by one [`Ring`]; a
//! [`MergedReader`] reads many rings in timestamp order.
//!
//! The consumer loop: events are lent to a closure, in place, and their
//! space goes back to the producer once the batch is done.
//!
//! ```
//! use peregrine_driver_sys::{MergedReader, UserRing, WriteOutcome};
//! use std::time::Duration;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // With the module: let mut driver = Driver::open(DriverConfig::default())?;
//! //                  driver.start_capture()?; let events = driver.events();
//! let (mut producer, ring) = UserRing::create(0, 64 * 1024)?.split()?;
//! assert_eq!(producer.write_event(1_000, 42, 293, &[b"/bin/sh\0"])?, WriteOutcome::Written);
//! let mut events = MergedReader::new(vec![ring]);
//!
//! let mut seen = 0;
//! loop {
//!     let n = events.next_batch(1024, |_cpu, ev| {
//!         // ev: EventRef<'_>, borrowed from the ring: ts, tid, type, bytes...
//!         assert_eq!((ev.ts(), ev.tid(), ev.event_type()), (1_000, 42, 293));
//!         seen += 1;
//!     })?;
//!     if n == 0 && !events.wait(Duration::from_millis(10)) {
//!         break; // a real consumer would check its stop flag here instead
//!     }
//! }
//! assert_eq!(seen, 1);
//! println!("{:?}", events.stats().total);
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
mod device;
mod doorbell;
mod event;
mod merge;
pub mod ptrace;
mod ring;
mod stats;
mod syscalls;
mod user_ring;

pub use device::{parse_cpu_list, syscall_mask, Driver, DriverConfig, DriverError};
pub use doorbell::Doorbell;
pub use event::{EventRef, RecordError};
pub use merge::{MergedReader, WaitPolicy};
pub use ring::{BadBufferSize, Corruption, Ring, RingError};
pub use stats::{CpuStats, RingStats, Stats};
pub use syscalls::{syscall_name, syscall_number, syscall_of_event};
pub use user_ring::{Producer, UserRing, UserRingError, WriteError, WriteOutcome};
