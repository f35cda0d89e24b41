//! The engine: decodes scap events, rebuilds system state, loads and
//! evaluates Falco-syntax rules. It knows nothing of devices or sockets:
//! events come in as bytes, alerts go out as values.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod bounded_read;
pub mod condition;
pub mod dns;
pub mod event;
pub mod fast_hash;
pub mod field;
pub mod k8s_audit;
pub mod output;
pub mod rules;
pub mod scap;
pub mod state;
pub mod syscall_fields;
pub mod text;
