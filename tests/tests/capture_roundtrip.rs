//! `peregrine capture` writes real `.scap` files: Debian's sysdig reads
//! what Peregrine writes with the same events and the same field values
//! as from the original capture.

use std::path::Path;
use std::process::Command;

const FIELDS: &str =
    "%evt.type %evt.dir %proc.name %proc.pid %thread.tid %fd.name %evt.res %user.name";

fn sysdig(file: &Path, filter: Option<&str>) -> Option<Vec<String>> {
    let mut command = Command::new("sysdig");
    command.args(["-r", &file.display().to_string(), "-p", FIELDS]);
    if let Some(filter) = filter {
        command.arg(filter);
    }
    let output = command.output().ok()?;
    // sysdig refuses a capture with no event at all; for the comparison
    // that is an empty list.
    if String::from_utf8_lossy(&output.stderr).contains("no events in file") {
        return Some(Vec::new());
    }
    assert!(
        output.status.success(),
        "sysdig failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

fn captures() -> Option<Vec<std::path::PathBuf>> {
    let kit = peregrine_tests::conformance_kit()?;
    let mut files: Vec<_> = ["captures", "falco-regression/trace_files"]
        .iter()
        .flat_map(|dir| {
            std::fs::read_dir(kit.join(dir))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "scap"))
        .collect();
    files.sort();
    Some(files)
}

/// The kit's captures when the kit and sysdig are both here; otherwise
/// None, having said why.
fn captures_and_sysdig() -> Option<Vec<std::path::PathBuf>> {
    let Some(files) = captures() else {
        eprintln!("skipped: ../shared/conformance is absent (a fresh clone has no kit)");
        return None;
    };
    if Command::new("sysdig").arg("--version").output().is_err() {
        eprintln!("skipped: sysdig is not installed (scripts/install-deps installs it)");
        return None;
    }
    Some(files)
}

fn capture(args: &[&str]) {
    let binary = peregrine_tests::peregrine_binary().unwrap();
    let output = Command::new(binary)
        .arg("capture")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "peregrine capture {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn sysdig_reads_what_peregrine_writes() {
    let Some(files) = captures_and_sysdig() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("peregrine-roundtrip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in &files {
        let out = dir.join(file.file_name().unwrap());
        capture(&[
            "-r",
            &file.display().to_string(),
            "-w",
            &out.display().to_string(),
        ]);
        let original = sysdig(file, None).unwrap();
        let copied = sysdig(&out, None).unwrap();
        assert_eq!(
            original.len(),
            copied.len(),
            "{}: event count",
            file.display()
        );
        for (i, (a, b)) in original.iter().zip(&copied).enumerate() {
            assert_eq!(
                a,
                b,
                "{} event {}: sysdig sees a different event in the copy",
                file.display(),
                i + 1
            );
        }
        println!(
            "{}: {} events, identical for sysdig",
            file.display(),
            original.len()
        );
    }
}

#[test]
fn a_filtered_capture_keeps_what_the_filter_matches() {
    let Some(files) = captures_and_sysdig() else {
        return;
    };
    let filter = "evt.type in (open, openat, connect) and evt.dir = <";
    let dir = std::env::temp_dir().join(format!("peregrine-filtered-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in &files {
        let out = dir.join(file.file_name().unwrap());
        capture(&[
            "-r",
            &file.display().to_string(),
            "-w",
            &out.display().to_string(),
            filter,
        ]);
        let expected = sysdig(file, Some(filter)).unwrap();
        let got = sysdig(&out, Some(filter)).unwrap();
        assert_eq!(
            expected,
            got,
            "{}: the filtered copy differs for the filter",
            file.display()
        );
        let all = sysdig(&out, None).unwrap();
        assert!(
            all.len() < sysdig(file, None).unwrap().len() || expected.is_empty(),
            "{}: nothing was filtered out",
            file.display()
        );
    }
}
