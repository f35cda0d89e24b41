#![deny(unsafe_op_in_unsafe_fn)]

mod alert;
mod args;
mod config;
mod driver_cmd;
mod drops;
mod webserver;
mod outputs;

fn main() {
    println!("peregrine {}", env!("CARGO_PKG_VERSION"));
}
