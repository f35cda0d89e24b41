//! Shared helpers for Peregrine's integration and conformance tests.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod conformance;
pub mod current_falco;
pub mod grpc;
pub mod kafka;
pub mod nats;
pub mod nodes;
pub mod oracle;
pub mod pki;
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

/// The target directory of this test build (target/<profile>/) and its
/// profile's name, from where the test binary runs.
fn profile_dir() -> Result<(PathBuf, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    // Tests run from target/<profile>/deps/, binaries from target/<profile>/.
    let mut profile_dir = exe
        .parent()
        .ok_or_else(|| format!("unexpected test binary location {}", exe.display()))?;
    if profile_dir.file_name().is_some_and(|n| n == "deps") {
        profile_dir = profile_dir.parent().unwrap_or(profile_dir);
    }
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_string();
    Ok((profile_dir.to_path_buf(), profile))
}

/// Runs `cargo build --quiet ARGS` in the workspace, for `profile`.
fn cargo_build(args: &[&str], profile: &str) -> Result<(), String> {
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
    build
        .current_dir(repo_root())
        .args(["build", "--quiet"])
        .args(args);
    if profile == "release" {
        build.arg("--release");
    }
    let status = build
        .status()
        .map_err(|e| format!("cannot run cargo build {}: {e}", args.join(" ")))?;
    if !status.success() {
        return Err(format!("cargo build {} failed ({status})", args.join(" ")));
    }
    Ok(())
}

/// The `peregrine` binary of this build, built on demand: the tests crate
/// runs it as a user would, so it must be the one the workspace just built.
pub fn peregrine_binary() -> Result<PathBuf, String> {
    let (profile_dir, profile) = profile_dir()?;
    let binary = profile_dir.join("peregrine");
    cargo_build(&["-p", "peregrine", "--bin", "peregrine"], &profile)?;
    if !binary.exists() {
        return Err(format!(
            "building peregrine left no binary at {}",
            binary.display()
        ));
    }
    Ok(binary)
}

/// The Falco plugins of tests/plugins/rust (written with Falco's Rust SDK),
/// built on demand as the cdylibs Falco would load: the path of the
/// shared library of each name asked for (`rsource`, `rsyscall`, `rparse`,
/// `rasync`), in the order asked.
pub fn rust_sdk_plugins(names: &[&str]) -> Result<Vec<PathBuf>, String> {
    let (profile_dir, profile) = profile_dir()?;
    cargo_build(&["-p", "peregrine-test-plugins", "--examples"], &profile)?;
    names
        .iter()
        .map(|name| {
            let library = profile_dir.join("examples").join(format!("lib{name}.so"));
            if library.exists() {
                Ok(library)
            } else {
                Err(format!("no plugin library at {}", library.display()))
            }
        })
        .collect()
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
