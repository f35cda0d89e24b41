//! Compiles the gRPC protocol (proto/) into Rust. The .proto files are
//! parsed by protox, in Rust, so building needs no `protoc` on the machine.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new("proto");
    let files = [dir.join("outputs.proto"), dir.join("schema.proto")];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [dir])?;
    tonic_prost_build::configure()
        .build_server(true)
        // The client serves the unit tests; the binary only serves.
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
