//! Generates a gRPC client from the protocol the `peregrine` binary serves
//! (cli/proto/), so the tests talk to it as any outside client would.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new("../cli/proto");
    let files = [dir.join("outputs.proto"), dir.join("schema.proto")];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [dir])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
