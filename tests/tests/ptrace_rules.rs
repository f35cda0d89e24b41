//! The default rules under `peregrine run` on this host: the guest suite's
//! trigger actions (tests/guest/rules/pgtrigger.c, the table of
//! run-rules.sh) run traced, and every rule must fire on its trigger and
//! stay quiet on its benign neighbour, with no unattributed alert, as in
//! the guest with the kernel module.
//!
//! The triggers write below /etc, /root, /usr/local/bin, /dev, /var/log:
//! they run in a private mount namespace where those directories are
//! overlays on a tmpfs, so the host's files are never touched.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (id, rule, fire, benign), as in run-rules.sh. In the commands, $T is
/// pgtrigger, $B the folder of its renamed copies, $PORT the loopback
/// server's port.
const TRIGGERS: &[(&str, &str, &str, &str)] = &[
    (
        "wbbd",
        "Write Below Binary Directory",
        "$T write /usr/local/bin/pgF-wbbd",
        "$T write /usr/local/share/pgB-wbbd",
    ),
    (
        "wbe",
        "Write Below Etc",
        "$T write /etc/pgF-wbe",
        "$B/sed write /etc/pgB-wbe",
    ),
    (
        "wbrh",
        "Write Below Root Home",
        "$T write /root/pgF-wbrh",
        "$T write /root/.ash_history pgB-wbrh",
    ),
    (
        "rsf",
        "Read Sensitive File",
        "$T read /etc/shadow pgF-rsf",
        "$B/unix_chkpwd read /etc/shadow pgB-rsf",
    ),
    (
        "bdrr",
        "Binary Directory Entry Renamed Or Removed",
        "$T unlink /usr/local/bin/pgF-bdrr",
        "$T unlink /usr/local/share/pgB-bdrr",
    ),
    (
        "gsbm",
        "Guarded System Binary Modified",
        "$T write /usr/local/bin/passwd pgF-gsbm",
        "$B/dpkg write /usr/local/bin/passwd pgB-gsbm",
    ),
    (
        "scosf",
        "Symlink Created Over Sensitive File",
        "$T symlink /etc/shadow /tmp/pgF-scosf",
        "$T symlink /etc/hostname /tmp/pgB-scosf",
    ),
    (
        "hlcosf",
        "Hard Link Created Over Sensitive File",
        "$T link /etc/shadow /etc/pgF-hlcosf",
        "$T link /etc/hostname /etc/pgB-hlcosf",
    ),
    (
        "sosbs",
        "Setuid Or Setgid Bit Set",
        "$T chmod /tmp/pgF-sosbs 4755",
        "$T chmod /tmp/pgB-sosbs 0755",
    ),
    (
        "sfmoc",
        "Sensitive File Mode Or Owner Changed",
        "$T chmod /etc/shadow 0640 pgF-sfmoc",
        "$T chmod /etc/hostname 0644 pgB-sfmoc",
    ),
    (
        "nsews",
        "Namespace Entered With Setns",
        "$T setns pgF-nsews",
        "$B/nsenter setns pgB-nsews",
    ),
    (
        "ncwu",
        "New Namespaces Created With Unshare",
        "$T unshare pgF-ncwu",
        "$B/unshare unshare pgB-ncwu",
    ),
    (
        "ssbup",
        "Shell Spawned By Unexpected Program",
        "$B/pgtmp spawn /bin/sh -c ': pgF-ssbup'",
        "$B/make spawn /bin/sh -c ': pgB-ssbup'",
    ),
    (
        "ssbns",
        "Shell Spawned By Network Service",
        "$B/nginx spawn /bin/sh -c ': pgF-ssbns'",
        "$B/nginx spawn /bin/true pgB-ssbns",
    ),
    (
        "sric",
        "Shell Run In Container",
        "sh -c \"echo \\$\\$ > $CG/cgroup.procs && exec $B/make spawn /bin/sh -c ': pgF-sric'\"",
        "sh -c \"echo \\$\\$ > $CG/cgroup.procs && exec $B/make spawn /bin/true pgB-sric\"",
    ),
    (
        "sbrup",
        "SSH Binary Run From Unexpected Place",
        "$B/nginx spawn $B/ssh noop pgF-sbrup",
        "$B/ssh noop pgB-sbrup",
    ),
    (
        "ocfs",
        "Outbound Connection From Shell Or Temporary Binary",
        "$B/pgtmp connect $PORT pgF-ocfs",
        "$T connect $PORT pgB-ocfs",
    ),
    (
        "lsobup",
        "Listening Socket Opened By Unexpected Program",
        "$B/pgtmp listen $PORT2 pgF-lsobup",
        "$T listen $PORT3 pgB-lsobup",
    ),
    (
        "rso",
        "Raw Socket Opened",
        "$T raw pgF-rso",
        "$B/ping raw pgB-rso",
    ),
    (
        "kml",
        "Kernel Module Loaded",
        "insmod /tmp/pgF-kml.ko",
        "! insmod /tmp/pgB-kml.ko",
    ),
    (
        "pawp",
        "Process Attached With Ptrace",
        "$T ptrace pgF-pawp",
        "$B/gdb ptrace pgB-pawp",
    ),
    (
        "lfc",
        "Log File Cleared",
        "$T trunc /var/log/pgF-lfc.log",
        "$T append /var/log/pgB-lfc.log",
    ),
    (
        "fcbd",
        "File Created Below Dev",
        "$T create /dev/pgF-fcbd",
        "$T create /dev/shm/pgB-fcbd",
    ),
    (
        "bdrr-mv",
        "Binary Directory Entry Renamed Or Removed",
        "$T rename /usr/local/share/pgF-bdrr-mv /usr/local/bin/pgF-bdrr-mv",
        "$T rename /usr/local/share/pgB-bdrr-mv /usr/local/share/pgB-bdrr-mv2",
    ),
    (
        "lfc-rm",
        "Log File Cleared",
        "rm /var/log/pgF-lfc-rm.log",
        "rm /var/tmp/pgB-lfc-rm.log",
    ),
    (
        "sfmoc-own",
        "Sensitive File Mode Or Owner Changed",
        "$T chown /etc/shadow pgF-sfmoc-own",
        "$T chown /etc/hostname pgB-sfmoc-own",
    ),
    (
        "fcbd-creat",
        "File Created Below Dev",
        "$T creat /dev/pgF-fcbd-creat",
        "$T creat /dev/shm/pgB-fcbd-creat",
    ),
    (
        "rsf-toctou",
        "Read Sensitive File",
        "$T toctou-read /etc/sudoers.d/pgF-rsf-toctou /tmp/pgF-rsf-toctou-decoy $B/sed",
        "$B/unix_chkpwd toctou-read /etc/sudoers.d/pgB-rsf-toctou /tmp/pgB-rsf-toctou-decoy $B/sed",
    ),
];

/// Triggers that cannot work under `peregrine run` on this host, and why.
fn known_gap(id: &str, container_cgroup: bool) -> Option<&'static str> {
    match id {
        "kml" => Some("no kernel module can be loaded on this host, so init_module never succeeds"),
        "pawp" => Some(
            "a traced process's child is already traced by Peregrine, so its PTRACE_ATTACH fails (EPERM)",
        ),
        "sric" if !container_cgroup => {
            Some("no cgroup v1 pids hierarchy to make a docker-looking cgroup in")
        }
        _ => None,
    }
}

/// Everyday work that must raise no default rule.
const NOISE: &str = r#"
ls -l /bin /etc > /dev/null
cat /etc/passwd /etc/hostname > /dev/null
grep -q root /etc/passwd
id > /dev/null; uname -a > /dev/null; df > /dev/null 2>&1
find /etc -name passwd > /dev/null 2>&1
mkdir -p /var/log/app /tmp/work && echo started >> /var/log/app/app.log
cp /etc/hostname /tmp/work/hn && mv /tmp/work/hn /tmp/work/hn2 && chmod 600 /tmp/work/hn2
ln -s /etc/hostname /tmp/work/hn-link && rm /tmp/work/hn2 /tmp/work/hn-link
tar cf /tmp/work/etc.tar /etc/hostname 2>/dev/null && gzip -f /tmp/work/etc.tar
sh -c 'echo hi > /tmp/work/out; cat /tmp/work/out > /dev/null'
xargs echo < /etc/hostname > /dev/null
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sh_ok(script: &str) -> bool {
    Command::new("sh")
        .args(["-c", script])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn skip_reason() -> Option<String> {
    if !sh_ok("command -v gcc") {
        return Some("gcc is not installed (needed to build pgtrigger)".into());
    }
    if !sh_ok("[ \"$(id -u)\" = 0 ]") {
        return Some(
            "not root: the triggers need a private mount namespace and root's rights".into(),
        );
    }
    if !sh_ok("unshare -m --propagation private true") {
        return Some("unshare -m does not work here (no private mount namespace)".into());
    }
    None
}

#[test]
fn default_rules_fire_under_peregrine_run_as_in_the_guest() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let peregrine = peregrine_tests::peregrine_binary().unwrap();
    let root = peregrine_tests::repo_root();
    // Not below /tmp: the benign triggers' binaries must not look temporary.
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ptrace-rules-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("ovl")).unwrap();
    let work = work.canonicalize().unwrap();
    if [
        "/tmp",
        "/etc",
        "/root",
        "/usr/local",
        "/var/log",
        "/var/tmp",
        "/dev",
    ]
    .iter()
    .any(|d| work.starts_with(d))
    {
        eprintln!(
            "skipped: the target dir {} lies below a directory the triggers overlay",
            work.display()
        );
        return;
    }
    let t = work.join("pgtrigger");
    let gcc = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&t)
        .arg(root.join("tests/guest/rules/pgtrigger.c"))
        .output()
        .unwrap();
    assert!(
        gcc.status.success(),
        "{}",
        String::from_utf8_lossy(&gcc.stderr)
    );

    // A docker-looking cgroup, when the host has a v1 pids hierarchy.
    let container_id = format!("c0ffee{:058}", std::process::id());
    let docker = Path::new("/sys/fs/cgroup/pids/docker");
    let docker_existed = docker.exists();
    let cgroup = docker.join(&container_id);
    let container_cgroup =
        std::fs::create_dir_all(&cgroup).is_ok() && cgroup.join("cgroup.procs").exists();

    let rt = work.join("rt");
    let mut run_all = String::new();
    for (id, _, fire, benign) in TRIGGERS {
        if let Some(reason) = known_gap(id, container_cgroup) {
            println!("known gap: {id}: {reason}");
            continue;
        }
        let dir = rt.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("fire.sh"), format!("{fire}\n")).unwrap();
        std::fs::write(dir.join("benign.sh"), format!("{benign}\n")).unwrap();
        for kind in ["fire", "benign"] {
            run_all.push_str(&format!(
                "sh {d}/{kind}.sh > {d}/{kind}.out 2>&1; echo $? > {d}/{kind}.rc\n",
                d = dir.display()
            ));
        }
    }
    let (port, port2, port3) = (free_port(), free_port(), free_port());
    let vars = format!(
        "export T={t} B=/tmp/pgbin PORT={port} PORT2={port2} PORT3={port3} CG={cg}\n",
        t = t.display(),
        cg = cgroup.display()
    );
    let triggers = format!(
        "{vars}$T serve $PORT & SERVER=$!\nsleep 0.5\n{run_all}{NOISE}kill $SERVER\nwait\n"
    );
    std::fs::write(work.join("triggers.sh"), triggers).unwrap();

    let alerts = work.join("alerts.json");
    let rules = root.join("rules/peregrine_rules.yaml");
    let mut setup = String::from("set -e\n");
    setup.push_str(&vars);
    setup.push_str(&format!(
        "W={}\nmount -t tmpfs none $W/ovl\n",
        work.display()
    ));
    for d in [
        "/etc",
        "/root",
        "/usr/local",
        "/var/log",
        "/var/tmp",
        "/dev",
        "/tmp",
    ] {
        let n = d.replace('/', "_");
        setup.push_str(&format!(
            "mkdir -p {d} $W/ovl/{n}.u $W/ovl/{n}.w\n\
             mount -t overlay overlay -o lowerdir={d},upperdir=$W/ovl/{n}.u,workdir=$W/ovl/{n}.w {d}\n"
        ));
    }
    setup.push_str(
        "mkdir -p $B /etc/sudoers.d\n\
         for n in sed unix_chkpwd dpkg nsenter unshare pgtmp make nginx ssh ping gdb; do cp $T $B/$n; done\n\
         rm -f /usr/local/bin/passwd /etc/pgF-hlcosf /etc/pgB-hlcosf\n\
         : > /usr/local/bin/pgF-bdrr; : > /usr/local/share/pgB-bdrr\n\
         : > /tmp/pgF-sosbs; : > /tmp/pgB-sosbs\n\
         echo old > /var/log/pgF-lfc.log; echo old > /var/log/pgB-lfc.log\n\
         echo old > /var/log/pgF-lfc-rm.log; echo old > /var/tmp/pgB-lfc-rm.log\n\
         : > /usr/local/share/pgF-bdrr-mv; : > /usr/local/share/pgB-bdrr-mv\n",
    );
    setup.push_str(&format!(
        "exec {p} run -r {r} -U -o json_output=true -o stdout_output.enabled=false \
         -o file_output.enabled=true -o file_output.filename={a} -- sh $W/triggers.sh\n",
        p = peregrine.display(),
        r = rules.display(),
        a = alerts.display()
    ));
    std::fs::write(work.join("setup.sh"), setup).unwrap();
    let run = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh"])
        .arg(work.join("setup.sh"))
        .output()
        .unwrap();
    if container_cgroup {
        let _ = std::fs::remove_dir(&cgroup);
        if !docker_existed {
            let _ = std::fs::remove_dir(docker);
        }
    }
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "peregrine run failed: {stderr}");
    assert!(stderr.contains(" 0 undecodable"), "{stderr}");

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
    let token = |text: &str, kind: char, id: &str| {
        regex::Regex::new(&format!("pg{kind}-{}([^a-z-]|$)", regex::escape(id)))
            .unwrap()
            .is_match(text)
    };

    let mut failures = Vec::new();
    for (id, rule, fire, benign) in TRIGGERS {
        if known_gap(id, container_cgroup).is_some() {
            continue;
        }
        let dir = rt.join(id);
        let rc = |kind: &str| {
            std::fs::read_to_string(dir.join(format!("{kind}.rc"))).unwrap_or_default()
        };
        let out = |kind: &str| {
            std::fs::read_to_string(dir.join(format!("{kind}.out"))).unwrap_or_default()
        };
        if rc("fire").trim() != "0" {
            failures.push(format!(
                "{id}: the trigger failed: {fire}: {}",
                out("fire").trim()
            ));
        } else if !alert_lines
            .iter()
            .any(|(r, o)| r == rule && token(o, 'F', id))
        {
            failures.push(format!("{id}: {rule} did not fire for: {fire}"));
        }
        if rc("benign").trim() != "0" {
            failures.push(format!(
                "{id}: the benign action failed: {benign}: {}",
                out("benign").trim()
            ));
        } else if alert_lines
            .iter()
            .any(|(r, o)| r == rule && token(o, 'B', id))
        {
            failures.push(format!("{id}: {rule} fired on the benign: {benign}"));
        }
    }
    // Every alert belongs to a firing trigger of that very rule.
    for (rule, output) in &alert_lines {
        let owned = TRIGGERS
            .iter()
            .any(|(id, r, _, _)| r == rule && token(output, 'F', id));
        if !owned {
            failures.push(format!("unattributed alert: {rule}: {output}"));
        }
    }
    // A default rule without a trigger here must not pass unseen.
    let text = std::fs::read_to_string(&rules).unwrap();
    for name in text.lines().filter_map(|l| l.strip_prefix("- rule: ")) {
        if !TRIGGERS.iter().any(|(_, r, _, _)| *r == name.trim()) {
            failures.push(format!("default rule without a trigger: {name}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}\n(peregrine's stderr: {stderr})",
        failures.len(),
        failures.join("\n")
    );
    let _ = std::fs::remove_dir_all(Path::new(&work));
}
