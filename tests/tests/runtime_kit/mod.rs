//! What the container runtime tests share: a busybox rootfs image made
//! here (nothing comes from a registry), runtime daemons started in a
//! scratch folder of their own (their own socket, state and data) and
//! killed at the end, and `peregrine run --attach` on a container's
//! process with a rule that fires when it reads /etc/passwd.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A scratch folder removed at the end (with whatever the runtime left).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("pg-rt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // A runtime's shims outlive it (by design, and when the test kills
        // it): those whose command line names this folder are this test's.
        let mark = self.0.to_string_lossy().into_owned();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if pid != std::process::id() as i32
                && String::from_utf8_lossy(&cmdline).contains(mark.as_str())
            {
                // SAFETY: a signal to a process started for this test.
                unsafe {
                    libc_kill(pid, 9);
                }
            }
        }
        // Overlay mounts of a runtime killed mid-run would make removal fail.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {0}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l",
                self.0.display()
            ))
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A daemon of this test, stopped (its whole process group) at the end.
pub struct Daemon {
    pub child: Child,
    pub name: &'static str,
}

impl Daemon {
    /// Starts `program` in a process group of its own and waits up to 20 s
    /// for `socket` to appear. Err(reason) when it does not.
    pub fn start(
        name: &'static str,
        mut command: Command,
        socket: &Path,
        log: &Path,
    ) -> Result<Daemon, String> {
        use std::os::unix::process::CommandExt;
        let log_file = std::fs::File::create(log).map_err(|e| e.to_string())?;
        command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .process_group(0);
        let child = command
            .spawn()
            .map_err(|e| format!("{name} cannot start: {e}"))?;
        let mut daemon = Daemon { child, name };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let last = text.lines().last().unwrap_or("").to_string();
                return Err(format!("{name} exited ({status}): {last}"));
            }
            if Instant::now() > deadline {
                return Err(format!("{name} made no socket within 20 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(daemon)
    }

    /// Kills the daemon's process group at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let pgid = self.child.id() as i32;
        // SAFETY: signals the process group this test made for the daemon.
        unsafe {
            libc_kill(-pgid, 9);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pgid = self.child.id() as i32;
            // SAFETY: as in kill: this test's own process group.
            unsafe {
                libc_kill(-pgid, 15);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            self.kill();
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Whether `program` is installed, or the one-line reason to skip.
pub fn need(program: &str) -> Result<(), String> {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Ok(())
    } else {
        Err(format!(
            "{program} is not installed (scripts/install-deps installs it)"
        ))
    }
}

/// A rootfs with a static busybox and a user and group of its own
/// (webapp 4242, webgrp 4343), as a tar; and the busybox binary's path.
pub fn rootfs_tar(scratch: &Scratch) -> Result<PathBuf, String> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or("busybox is not installed (busybox-static)")?;
    let file = Command::new("file")
        .arg(&busybox)
        .output()
        .map_err(|e| e.to_string())?;
    if !String::from_utf8_lossy(&file.stdout).contains("statically linked") {
        return Err("busybox is not static (busybox-static)".into());
    }
    let root = scratch.path("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::copy(&busybox, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "sleep", "true"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nwebapp:x:4242:4343:web:/srv/web:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nwebgrp:x:4343:\n").unwrap();
    let tar = scratch.path("rootfs.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("."))?;
    Ok(tar)
}

/// Runs a command to its end; Err with its stderr when it fails.
pub fn run(command: &mut Command) -> Result<String, String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The rule the container's process triggers, with the fields to check.
pub const RULES: &str = r#"
- rule: Container reads passwd
  desc: a process in a container opens /etc/passwd
  condition: evt.type in (open, openat) and fd.name = /etc/passwd and container.id != host
  output: >
    passwd read by %proc.name (user=%user.name group=%group.name home=%user.homedir
    id=%container.id full_id=%container.full_id name=%container.name type=%container.type
    image=%container.image repository=%container.image.repository tag=%container.image.tag
    image_id=%container.image.id privileged=%container.privileged
    mounts=%container.mounts dest=%container.mount.dest[/etc] label=%container.label.app
    host_pid=%container.host_pid host_network=%container.host_network
    pod=%k8s.pod.name ns=%k8s.ns.name uid=%k8s.pod.uid)
  priority: WARNING
- rule: Container started
  desc: the container event
  condition: evt.type = container
  output: container started (id=%container.id name=%container.name)
  priority: INFO
- rule: Launch Privileged Container
  desc: as Falco's rule, once per container, on the container event
  condition: evt.type = container and container.privileged = true
  output: Privileged container started (%container.info image=%container.image)
  priority: INFO
"#;

/// A falco.yaml whose container plugin entry asks only `engine` at
/// `sockets`, with JSON alerts, and every rule an event matches firing.
pub fn config(scratch: &Scratch, engine: &str, sockets: &[&Path]) -> PathBuf {
    let list: Vec<String> = sockets
        .iter()
        .map(|s| format!("'{}'", s.display()))
        .collect();
    let mut engines = String::new();
    for e in ["docker", "podman", "containerd", "cri"] {
        if e == engine {
            engines.push_str(&format!(
                "        {e}: {{enabled: true, sockets: [{}]}}\n",
                list.join(", ")
            ));
        } else {
            engines.push_str(&format!("        {e}: {{enabled: false}}\n"));
        }
    }
    let text = format!(
        "json_output: true\njson_include_output_property: true\nrule_matching: all\nplugins:\n  - name: container\n    init_config:\n      engines:\n{engines}append_output:\n  - suggested_output: true\n"
    );
    let path = scratch.path("falco.yaml");
    std::fs::write(&path, text).unwrap();
    let rules = scratch.path("rules.yaml");
    std::fs::write(rules, RULES).unwrap();
    path
}

/// `peregrine run --attach PID` until it stops (the process exits) or
/// `limit` passes.
pub fn attach(peregrine: &Path, scratch: &Scratch, config: &Path, pid: &str, limit: u64) -> Child {
    Command::new(peregrine)
        .arg("run")
        .arg("-c")
        .arg(config)
        .arg("-r")
        .arg(scratch.path("rules.yaml"))
        .args(["-M", &limit.to_string(), "--attach", pid])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("peregrine runs")
}

/// The JSON alerts of a finished run.
pub fn alerts(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("rule").is_some())
        .collect()
}

/// Polls `probe` until it gives a value (20 s at most).
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The alert of `rule` whose output fields are checked.
pub fn the_alert<'a>(alerts: &'a [serde_json::Value], rule: &str) -> &'a serde_json::Value {
    alerts
        .iter()
        .find(|a| a["rule"] == rule)
        .unwrap_or_else(|| panic!("no '{rule}' alert in {alerts:#?}"))
}

/// The text of an output field ("" for a missing one).
pub fn field(alert: &serde_json::Value, name: &str) -> String {
    match &alert["output_fields"][name] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "<NA>".into(),
        other => other.to_string(),
    }
}

/// Checks the alert of the container's passwd read against what the
/// runtime's own inspection said, field by field.
pub fn check_fields(alert: &serde_json::Value, want: &[(&str, String)]) {
    let mut wrong = Vec::new();
    for (name, value) in want {
        let got = field(alert, name);
        if got != *value {
            wrong.push(format!("{name}: got '{got}', the runtime says '{value}'"));
        }
    }
    assert!(wrong.is_empty(), "{}\nalert: {alert:#}", wrong.join("\n"));
}

/// A random 64-digit hexadecimal id, as runtimes give containers.
pub fn hex_id() -> String {
    let bytes = std::fs::read("/proc/sys/kernel/random/uuid").unwrap();
    let more = std::fs::read("/proc/sys/kernel/random/uuid").unwrap();
    let hex: String = [bytes, more]
        .concat()
        .into_iter()
        .filter(|b| b.is_ascii_hexdigit())
        .map(|b| b.to_ascii_lowercase() as char)
        .collect();
    hex[..64].to_string()
}

/// Waits until process `pid` runs `comm` (the container's command has
/// replaced the runtime's init), so that attaching sees what it runs.
pub fn wait_for_comm(pid: &str, comm: &str) {
    wait_for(&format!("process {pid} running {comm}"), || {
        let now = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (now.trim() == comm).then_some(())
    });
}

fn sha256(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path)).expect("sha256sum");
    out.split_whitespace().next().unwrap().to_string()
}

/// An OCI image layout archive of the rootfs tar, as one layer, named
/// `name`, with `config` as its image config (`{"Cmd": [...]}`), for
/// `ctr images import`.
pub fn oci_archive(scratch: &Scratch, rootfs: &Path, name: &str, config: &str) -> PathBuf {
    let stem = name.replace(['/', ':'], "_");
    let layout = scratch.path(&format!("oci-{stem}"));
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let add = |path: &Path| -> (String, u64) {
        let digest = sha256(path);
        let size = std::fs::metadata(path).unwrap().len();
        std::fs::copy(path, blobs.join(&digest)).unwrap();
        (digest, size)
    };
    let (layer, layer_size) = add(rootfs);
    let config_file = scratch.path(&format!("{stem}-config.json"));
    std::fs::write(
        &config_file,
        format!(
            r#"{{"architecture":"amd64","os":"linux","config":{config},"rootfs":{{"type":"layers","diff_ids":["sha256:{layer}"]}}}}"#
        ),
    )
    .unwrap();
    let (config_digest, config_size) = add(&config_file);
    let manifest = scratch.path(&format!("{stem}-manifest.json"));
    std::fs::write(
        &manifest,
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{config_digest}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{layer}","size":{layer_size}}}]}}"#
        ),
    )
    .unwrap();
    let (manifest_digest, manifest_size) = add(&manifest);
    std::fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{manifest_digest}","size":{manifest_size},"annotations":{{"io.containerd.image.name":"{name}"}}}}]}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = scratch.path(&format!("{stem}.tar"));
    run(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg("."))
    .unwrap();
    archive
}
