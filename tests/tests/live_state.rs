//! State a live source keeps as Falco's does, checked under `peregrine run`
//! on this host: events numbered from 1 (Falco's `never_true` macro is
//! `evt.num=0`), the working directory followed through `cd`, and the
//! host's user names.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch folder of this test process; canonical, since the rules
/// compare absolute paths.
fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("peregrine-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

/// One alert of the JSON output.
struct Alert {
    rule: String,
    output: String,
    fields: serde_json::Value,
}

/// Runs `script` with `sh -c` under `peregrine run` with these rules files
/// and returns its alerts.
fn run_traced(peregrine: &Path, rules: &[&Path], dir: &Path, script: &str) -> Vec<Alert> {
    let alerts = dir.join("alerts.json");
    let _ = std::fs::remove_file(&alerts);
    let mut cmd = Command::new(peregrine);
    cmd.arg("run").current_dir(dir);
    for r in rules {
        cmd.arg("-r").arg(r);
    }
    let out = cmd
        .args([
            "-U",
            "-o",
            "json_output=true",
            "-o",
            "stdout_output.enabled=false",
            "-o",
            "file_output.enabled=true",
        ])
        .arg("-o")
        .arg(format!("file_output.filename={}", alerts.display()))
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "peregrine run failed: {stderr}");
    std::fs::read_to_string(&alerts)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            Alert {
                rule: v["rule"].as_str().unwrap_or_default().to_string(),
                output: v["output"].as_str().unwrap_or_default().to_string(),
                fields: v["output_fields"].clone(),
            }
        })
        .collect()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Falco's own falco_rules.yaml, unchanged: "Read sensitive file
/// untrusted" and "Clear Log Activities" are guarded by macros defined as
/// `(never_true)`, i.e. `evt.num=0`, and fire only when live events are
/// numbered from 1 as Falco numbers them.
#[test]
fn upstream_rules_guarded_by_never_true_fire_under_peregrine_run() {
    let Some(kit) = peregrine_tests::conformance_kit() else {
        eprintln!("skipped: no ../shared/conformance with Falco's upstream rules");
        return;
    };
    if !is_root() {
        eprintln!("skipped: not root, /etc/shadow cannot be read");
        return;
    }
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let rules = kit.join("upstream-rules/falco_rules.yaml");
    let dir = work_dir("never-true");
    // A reader named like no trusted program, and a log file (by its name,
    // one of Falco's log_files) truncated.
    std::fs::copy("/bin/cat", dir.join("pgreader")).unwrap();
    std::fs::write(dir.join("syslog"), "old\n").unwrap();
    let script = "./pgreader /etc/shadow > /dev/null && : > syslog";
    let alerts = run_traced(&peregrine, &[&rules], &dir, script);
    let fired = |rule: &str, needle: &str| {
        alerts
            .iter()
            .any(|a| a.rule == rule && a.output.contains(needle))
    };
    let seen: Vec<&str> = alerts.iter().map(|a| a.output.as_str()).collect();
    assert!(
        fired("Read sensitive file untrusted", "file=/etc/shadow"),
        "{seen:#?}"
    );
    let log = format!("file={}/syslog", dir.display());
    assert!(fired("Clear Log Activities", &log), "{seen:#?}");
    // Live user names come from the host, as libsinsp's getpwuid gives them.
    let read = alerts
        .iter()
        .find(|a| a.rule == "Read sensitive file untrusted")
        .unwrap();
    assert_eq!(read.fields["user.name"], "root", "{}", read.output);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The issue's case: a write through a relative path after `cd` is seen at
/// its absolute path, in a child shell too, and after `cd ..`.
#[test]
fn relative_write_after_cd_is_seen_at_its_absolute_path() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let dir = work_dir("cd-write");
    let app = dir.join("srv/app");
    std::fs::create_dir_all(&app).unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: Write below app\n  desc: d\n  condition: evt.type in (open, openat, openat2, creat) \
             and evt.is_open_write=true and fd.name startswith {app}/\n  \
             output: w %fd.name cwd=%proc.cwd\n  priority: WARNING\n",
            app = app.display()
        ),
    )
    .unwrap();
    let script = format!(
        "cd {app} && echo hi > passwd; cd .. && echo x > app/two; (cd app; echo y > three); \
         sh -c 'echo z > ../srv/app/four'",
        app = app.display()
    );
    let alerts = run_traced(&peregrine, &[&rules], &dir, &script);
    let names: Vec<String> = alerts
        .iter()
        .map(|a| a.fields["fd.name"].as_str().unwrap_or_default().to_string())
        .collect();
    let want: Vec<String> = ["passwd", "two", "three", "four"]
        .iter()
        .map(|f| format!("{}/{f}", app.display()))
        .collect();
    assert_eq!(
        names,
        want,
        "{:#?}",
        alerts.iter().map(|a| &a.output).collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
