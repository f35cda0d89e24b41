//! `.scap` capture files: a pcapng-like sequence of blocks (section
//! header, machine info, process list, fd lists, user list, interface
//! list, then events). [`reader`] loads one into memory and iterates its
//! events as borrowed views; [`writer`] produces files sysdig reads.

pub mod blocks;
pub mod reader;
pub mod snapshot;
pub mod tables;
pub mod writer;

pub use reader::{read_decompressed, Capture, Events, ScapError};
pub use tables::{FdEntry, FdInfo, GroupEntry, InterfaceEntry, MachineInfo, ProcEntry, UserEntry};
pub use writer::{copy_capture, Writer};
