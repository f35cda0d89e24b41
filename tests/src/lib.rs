//! Shared helpers for Peregrine's integration and conformance tests.
#![deny(unsafe_op_in_unsafe_fn)]
