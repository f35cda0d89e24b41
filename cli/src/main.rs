#![deny(unsafe_op_in_unsafe_fn)]

mod alert;
mod config;
mod drops;
mod outputs;

fn main() {
    println!("peregrine {}", env!("CARGO_PKG_VERSION"));
}
