//! Generates the Rust view of `kmod/include/peregrine_abi.h` so the ABI is
//! written down exactly once, in C, and the two sides cannot drift apart.

use std::env;
use std::path::PathBuf;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let header = manifest_dir.join("../kmod/include/peregrine_abi.h");
    println!("cargo:rerun-if-changed={}", header.display());
    println!("cargo:rerun-if-changed=build.rs");

    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        // Only our own names: the libc typedefs the header pulls in come from the libc crate.
        .allowlist_type("pg_.*")
        .allowlist_var("PG_.*")
        // The ioctl numbers and PG_API_VERSION are macros built from _IOR/_IOW and
        // casts, which only a real compiler can evaluate; with them generated too,
        // a test checks that the numbers nix computes are the header's.
        .clang_macro_fallback()
        .derive_debug(true)
        .layout_tests(true)
        .generate_comments(true)
        .generate()
        .unwrap_or_else(|err| panic!("bindgen failed on {}: {err}", header.display()));

    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("peregrine_abi.rs");
    bindings
        .write_to_file(&out)
        .unwrap_or_else(|err| panic!("cannot write {}: {err}", out.display()));
}
