//! Access to the `peregrine.ko` kernel module: the ABI (generated from
//! `kmod/include`), the per-CPU devices, and the lock-free ring reader.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
