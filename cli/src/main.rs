#![deny(unsafe_op_in_unsafe_fn)]

mod alert;
mod config;
mod outputs;

fn main() {
    println!("peregrine {}", env!("CARGO_PKG_VERSION"));
}
