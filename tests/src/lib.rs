//! Shared helpers for Peregrine's integration and conformance tests.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod conformance;
pub mod current_falco;
pub mod grpc;
pub mod nats;
pub mod oracle;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared/conformance` beside the repository, if this checkout has it.
/// A user's fresh clone does not: callers skip with a one-line reason.
pub fn conformance_kit() -> Option<PathBuf> {
    let dir = repo_root().join("../shared/conformance");
    dir.is_dir().then(|| dir.canonicalize().unwrap_or(dir))
}

/// The `peregrine` binary of this build, built on demand: the tests crate
/// runs it as a user would, so it must be the one the workspace just built.
pub fn peregrine_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    // Tests run from target/<profile>/deps/, binaries from target/<profile>/.
    let mut profile_dir = exe
        .parent()
        .ok_or_else(|| format!("unexpected test binary location {}", exe.display()))?;
    if profile_dir.file_name().is_some_and(|n| n == "deps") {
        profile_dir = profile_dir.parent().unwrap_or(profile_dir);
    }
    let binary = profile_dir.join("peregrine");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    // `cargo test` gives the test the variables of the package under test
    // (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, OUT_DIR...). Build scripts such
    // as ring's rerun when these change, so passing them on would rebuild
    // ring and all above it on every switch between this build and the
    // outer one. This build is asked for as from a shell: without them.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name == "OUT_DIR"
            || name == "CARGO_PRIMARY_PACKAGE"
            || [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_TARGET_TMPDIR",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
        {
            build.env_remove(name.as_ref());
        }
    }
    build.current_dir(repo_root()).args([
        "build",
        "--quiet",
        "-p",
        "peregrine",
        "--bin",
        "peregrine",
    ]);
    if profile == "release" {
        build.arg("--release");
    }
    let status = build
        .status()
        .map_err(|e| format!("cannot run cargo to build peregrine: {e}"))?;
    if !status.success() || !binary.exists() {
        return Err(format!(
            "building peregrine failed ({status}); expected {}",
            binary.display()
        ));
    }
    Ok(binary)
}

/// The peregrine binary, or None (with the reason printed) where ptrace
/// cannot be used (a sandbox or seccomp profile that forbids it): the
/// tracer is asked to run `true` first.
pub fn peregrine_with_ptrace() -> Option<PathBuf> {
    let binary = match peregrine_binary() {
        Ok(binary) => binary,
        Err(e) => panic!("{e}"),
    };
    let probe = match Command::new(&binary)
        .args(["ptrace-tracer", "--records-file", "/dev/null", "--", "true"])
        .output()
    {
        Ok(probe) => probe,
        Err(e) => panic!("cannot run {}: {e}", binary.display()),
    };
    if !probe.status.success() {
        eprintln!(
            "skipped: ptrace is not usable here: {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        );
        return None;
    }
    Some(binary)
}
