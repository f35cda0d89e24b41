//! Evasion variants under `peregrine run` with Peregrine's default rules:
//! each indirect way to reach a file (a relative path after cd or fchdir,
//! openat with a directory fd, /proc/self/{cwd,fd,root} and /dev/fd
//! paths, a thread, a vfork or clone3 child, a rename or unlink by a relative path,
//! a rename into /etc) must raise the same rule as the direct form. Symlinks and hard links are the
//! exception: the read goes through a name the rule cannot know, and the
//! link's creation raises its own rule instead (checked here).
//!
//! The variants that write go to /usr/local, a tmpfs, and /etc, an
//! overlay on a tmpfs, in a private mount namespace: the host's files are
//! never touched.

use std::path::PathBuf;
use std::process::Command;

/// (id, rule that must fire, command). `$E` is pgevade, `$W` a scratch
/// folder, `$S` a folder beside /usr/local/bin on the same tmpfs; every command carries the token pgV-<id> in its command line
/// so that the alert is attributed to it.
const VARIANTS: &[(&str, &str, &str)] = &[
    ("read", "Read Sensitive File", "$E read /etc/shadow"),
    ("cd", "Read Sensitive File", "$E cd-read /etc shadow"),
    (
        "cd-up",
        "Read Sensitive File",
        "$E cd-read /usr ../etc/shadow",
    ),
    (
        "sh-cd",
        "Read Sensitive File",
        "sh -c 'cd /etc && exec $E read shadow pgV-sh-cd'",
    ),
    (
        "fchdir",
        "Read Sensitive File",
        "$E fchdir-read /etc shadow",
    ),
    (
        "openat",
        "Read Sensitive File",
        "$E openat-read /etc shadow",
    ),
    (
        "proc-cwd",
        "Read Sensitive File",
        "$E proc-cwd-read /etc shadow",
    ),
    (
        "proc-fd",
        "Read Sensitive File",
        "$E proc-fd-read /etc shadow",
    ),
    (
        "proc-fd-up",
        "Read Sensitive File",
        "$E proc-fd-read /usr ../etc/shadow",
    ),
    ("dev-fd", "Read Sensitive File", "$E devfd-read /etc shadow"),
    (
        "proc-root",
        "Read Sensitive File",
        "$E read /proc/self/root/etc/shadow",
    ),
    (
        "thread",
        "Read Sensitive File",
        "$E thread-read /etc/shadow",
    ),
    ("vfork", "Read Sensitive File", "$E vfork-read /etc/shadow"),
    (
        "clone3",
        "Read Sensitive File",
        "$E clone3-read /etc/shadow",
    ),
    (
        "symlink",
        "Symlink Created Over Sensitive File",
        "$E symlink-read /etc/shadow $W/pgV-symlink",
    ),
    (
        "hardlink",
        "Hard Link Created Over Sensitive File",
        "$E link-read /etc/shadow /etc/pgV-hardlink",
    ),
    (
        "cd-hardlink",
        "Hard Link Created Over Sensitive File",
        "$E cd-link /etc shadow pgV-cd-hardlink",
    ),
    (
        "write-etc",
        "Write Below Etc",
        "$E write /etc/pgV-write-etc",
    ),
    (
        "rename-etc",
        "Write Below Etc",
        "$E rename /etc/pgstage1 /etc/pgV-rename-etc",
    ),
    (
        "cd-rename-etc",
        "Write Below Etc",
        "$E cd-rename /etc pgstage2 cron-job",
    ),
    (
        "renameat-etc",
        "Write Below Etc",
        "$E renameat-into /etc /etc/pgstage3 cron-job2",
    ),
    (
        "rename",
        "Binary Directory Entry Renamed Or Removed",
        "$E rename $S/new1 /usr/local/bin/pgV-rename",
    ),
    (
        "cd-rename",
        "Binary Directory Entry Renamed Or Removed",
        "$E cd-rename /usr/local/bin ../stage/new2 tool",
    ),
    (
        "renameat",
        "Binary Directory Entry Renamed Or Removed",
        "$E renameat-into /usr/local/bin $S/new3 tool2",
    ),
    (
        "cd-unlink",
        "Binary Directory Entry Renamed Or Removed",
        "$E cd-unlink /usr/local/bin tool",
    ),
];

fn sh_ok(script: &str) -> bool {
    Command::new("sh")
        .args(["-c", script])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn skip_reason() -> Option<String> {
    if !sh_ok("command -v gcc") {
        return Some("gcc is not installed (needed to build pgevade)".into());
    }
    if !sh_ok("[ \"$(id -u)\" = 0 ] && [ -r /etc/shadow ]") {
        return Some("not root: /etc/shadow cannot be read and no mount namespace made".into());
    }
    if !sh_ok("unshare -m --propagation private true") {
        return Some("unshare -m does not work here (no private mount namespace)".into());
    }
    None
}

#[test]
fn evasion_variants_raise_the_rule_of_the_direct_form() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let root = peregrine_tests::repo_root();
    // Not below /tmp: a binary there looks temporary to other rules.
    let work =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("evasion-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let work = work.canonicalize().unwrap();
    let evade = work.join("pgevade");
    let gcc = Command::new("gcc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&evade)
        .arg(root.join("tests/guest/evasion/pgevade.c"))
        .output()
        .unwrap();
    assert!(
        gcc.status.success(),
        "{}",
        String::from_utf8_lossy(&gcc.stderr)
    );

    let mut script = format!(
        "set -eu\nexport E={} W={} S=/usr/local/stage\nmount -t tmpfs none /usr/local\n\
         mkdir /usr/local/bin $S\n: > $S/new1; : > $S/new2; : > $S/new3\n\
         mkdir $W/ovl && mount -t tmpfs none $W/ovl && mkdir $W/ovl/u $W/ovl/w\n\
         mount -t overlay overlay -o lowerdir=/etc,upperdir=$W/ovl/u,workdir=$W/ovl/w /etc\n\
         : > /etc/pgstage1; : > /etc/pgstage2; : > /etc/pgstage3\n",
        evade.display(),
        work.display()
    );
    let mut run_all = String::new();
    for (id, _, command) in VARIANTS {
        // The token goes last, where pgevade ignores it (sh-cd has its own).
        let command = if command.contains("pgV-") {
            command.to_string()
        } else {
            format!("{command} pgV-{id}")
        };
        run_all.push_str(&format!(
            "{command} > $W/{id}.out 2>&1; echo $? > $W/{id}.rc\n"
        ));
    }
    std::fs::write(work.join("variants.sh"), &run_all).unwrap();
    let alerts = work.join("alerts.json");
    script.push_str(&format!(
        "exec {p} run -r {r} -U -o json_output=true -o stdout_output.enabled=false \
         -o file_output.enabled=true -o file_output.filename={a} -- sh $W/variants.sh\n",
        p = peregrine.display(),
        r = root.join("rules/peregrine_rules.yaml").display(),
        a = alerts.display()
    ));
    std::fs::write(work.join("setup.sh"), script).unwrap();
    let run = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh"])
        .arg(work.join("setup.sh"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "peregrine run failed: {stderr}");

    let alert_lines: Vec<(String, String)> = std::fs::read_to_string(&alerts)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["rule"].as_str().unwrap_or_default().to_string(),
                v["output"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let token = |text: &str, id: &str| {
        regex::Regex::new(&format!("pgV-{}([^a-z-]|$)", regex::escape(id)))
            .unwrap()
            .is_match(text)
    };
    let mut failures = Vec::new();
    for (id, rule, command) in VARIANTS {
        let rc = std::fs::read_to_string(work.join(format!("{id}.rc"))).unwrap_or_default();
        let out = std::fs::read_to_string(work.join(format!("{id}.out"))).unwrap_or_default();
        if rc.trim() != "0" {
            failures.push(format!(
                "{id}: the action failed: {command}: {}",
                out.trim()
            ));
        } else if !alert_lines.iter().any(|(r, o)| r == rule && token(o, id)) {
            let others: Vec<&String> = alert_lines
                .iter()
                .filter(|(_, o)| token(o, id))
                .map(|(r, _)| r)
                .collect();
            failures.push(format!(
                "{id}: {rule} did not fire for: {command} (rules that did: {others:?})"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} variants missed:\n{}\n(peregrine's stderr: {stderr})",
        failures.len(),
        failures.join("\n")
    );
    let _ = std::fs::remove_dir_all(&work);
}
