//! Falco's listing flags on the real binary: what a script that runs
//! `falco --list -N` or `falco --list-events --format json` gets when it
//! runs `peregrine` instead.

use std::process::{Command, Output};

use serde_json::Value as Json;

fn peregrine(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peregrine"))
        .args(args)
        .output()
        .expect("peregrine runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn names_only_lists_each_field_once_and_nothing_else() {
    let names = stdout(&peregrine(&["--list", "syscall", "-N"]));
    let names: Vec<&str> = names.lines().collect();
    for wanted in [
        "evt.type",
        "proc.name",
        "fd.name",
        "container.id",
        "evt.arg",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing: {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.starts_with("ka.")),
        "k8s_audit fields listed"
    );
    assert!(names
        .iter()
        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic() && b != b'[')));
}

#[test]
fn markdown_is_taken_with_a_warning_and_refused_beside_format() {
    let output = peregrine(&["--list", "syscall", "--markdown"]);
    assert!(stdout(&output).starts_with("## Field Class: evt\n\nEvent Sources: syscall \n\n"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--markdown is deprecated"), "{stderr}");

    let both = peregrine(&["--list", "--markdown", "--format", "json"]);
    assert!(!both.status.success());
    assert!(both.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&both.stderr);
    assert!(
        stderr.contains("Cannot specify both --markdown and --format options together"),
        "{stderr}"
    );
    let bad = peregrine(&["--list-events", "--format", "yaml"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'yaml'"));
}

#[test]
fn list_events_prints_in_each_format() {
    let json: Json =
        serde_json::from_str(&stdout(&peregrine(&["--list-events", "--format", "json"]))).unwrap();
    assert!(json["schema_version"]
        .as_str()
        .is_some_and(|v| v.contains('.')));
    let syscalls = json["Syscall events"].as_array().unwrap();
    let openat = syscalls
        .iter()
        .find(|e| e["name"] == "openat" && e["dir"] == "<")
        .expect("openat exit listed");
    assert_eq!(openat["available"], true);
    let flags = openat["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "flags")
        .unwrap();
    assert_eq!(flags["type"], "FLAGS32");
    assert!(flags["flags"]
        .as_array()
        .unwrap()
        .contains(&"O_CREAT".into()));
    for category in ["Tracepoint events", "Plugin events", "Metaevents"] {
        assert!(!json[category].as_array().unwrap().is_empty(), "{category}");
    }

    let md = stdout(&peregrine(&["--list-events", "--format", "markdown"]));
    assert!(md.contains(
        "## Syscall events\n\nDefault | Dir | Name | Params \n:-------|:----|:-----|:-----\n"
    ));
    assert!(
        md.contains("\nYes | `<` | `close` | ERRNO **res**, FD **fd**\n"),
        "{md}"
    );
    assert!(md.contains("*O_CREAT*"));
    let text = stdout(&peregrine(&["--list-events"]));
    assert!(text.contains("\n< close(ERRNO **res**, FD **fd**)\n"));
}

#[test]
fn page_size_is_the_systems() {
    let output = peregrine(&["--page-size"]);
    assert!(output.status.success());
    // SAFETY: sysconf reads a constant of the system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("Your system page size is: {size} bytes")),
        "{stderr}"
    );
}

#[test]
fn ignored_events_are_none_in_falcos_layout() {
    let output = peregrine(&["-i"]);
    assert_eq!(stdout(&output), "Ignored syscall(s):\n\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ignores no syscall"), "{stderr}");
}
