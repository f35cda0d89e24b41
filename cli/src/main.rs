#![deny(unsafe_op_in_unsafe_fn)]

fn main() {
    println!("peregrine {}", env!("CARGO_PKG_VERSION"));
}
