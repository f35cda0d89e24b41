//! Container metadata from containerd's own API (containerd with `ctr`,
//! its own root, state and socket): the image is an OCI archive made here
//! from the busybox rootfs and imported with `ctr images import`; the
//! container carries the labels kubelet sets, and stands in for a pod.
//! The fields of an alert from its process match `ctr containers info`.

mod runtime_kit;

use runtime_kit::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const IMAGE: &str = "docker.io/peregrine-test/busybox:1.0";

fn ctr(socket: &Path, args: &[&str]) -> Result<String, String> {
    run(Command::new("ctr").arg("-a").arg(socket).args(args))
}

fn start_containerd(scratch: &Scratch) -> Result<(Daemon, PathBuf), String> {
    need("containerd")?;
    need("ctr")?;
    let tar = rootfs_tar(scratch)?;
    // The CRI plugin is not needed for containerd's own API.
    let config = scratch.path("containerd.toml");
    std::fs::write(
        &config,
        "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
    )
    .unwrap();
    let socket = scratch.path("containerd.sock");
    let mut command = Command::new("containerd");
    command
        .arg("--config")
        .arg(&config)
        .arg("--root")
        .arg(scratch.path("root"))
        .arg("--state")
        .arg(scratch.path("state"))
        .arg("--address")
        .arg(&socket);
    let daemon = Daemon::start(
        "containerd",
        command,
        &socket,
        &scratch.path("containerd.log"),
    )?;
    let archive = oci_archive(
        scratch,
        &tar,
        IMAGE,
        r#"{"Env":["PATH=/bin"],"Cmd":["sh"]}"#,
    );
    ctr(&socket, &["images", "import", archive.to_str().unwrap()])?;
    Ok((daemon, socket))
}

#[test]
fn containerd_container_fields_match_ctr_info() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let scratch = Scratch::new("containerd");
    let (_daemon, socket) = match start_containerd(&scratch) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let id = hex_id();
    ctr(
        &socket,
        &[
            "run",
            "-d",
            "--label",
            "io.kubernetes.pod.name=web-0",
            "--label",
            "io.kubernetes.pod.namespace=shop",
            "--label",
            "io.kubernetes.pod.uid=3e41dc6b-08a8-44db-bc2a-3724b18ab19a",
            "--label",
            "app=web",
            "--mount",
            "type=bind,src=/etc,dst=/host/etc,options=rbind:ro",
            IMAGE,
            &id,
            "sh",
            "-c",
            "sleep 4; cat /etc/passwd >/dev/null; sleep 1",
        ],
    )
    .expect("ctr run");
    let pid = wait_for("the task's pid", || {
        let tasks = ctr(&socket, &["tasks", "ls"]).ok()?;
        tasks
            .lines()
            .find(|l| l.starts_with(&id))
            .and_then(|l| l.split_whitespace().nth(1).map(String::from))
    });
    wait_for_comm(&pid, "sh");
    let config = config(&scratch, "containerd", &[&socket]);
    let out = attach(&peregrine, &scratch, &config, &pid, 30)
        .wait_with_output()
        .unwrap();
    let alerts = alerts(&out);
    let started = alerts
        .iter()
        .filter(|a| a["rule"] == "Container started")
        .count();
    assert_eq!(started, 1, "one container event: {alerts:#?}");
    assert!(
        !alerts
            .iter()
            .any(|a| a["rule"] == "Launch Privileged Container"),
        "{alerts:#?}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&ctr(&socket, &["containers", "info", &id]).unwrap()).unwrap();
    let labels = &info["Labels"];
    let alert = the_alert(&alerts, "Container reads passwd");
    check_fields(
        alert,
        &[
            ("container.id", id[..12].to_string()),
            ("container.full_id", info["ID"].as_str().unwrap().into()),
            ("container.name", id[..12].to_string()),
            ("container.type", "containerd".into()),
            ("container.image", info["Image"].as_str().unwrap().into()),
            (
                "container.image.repository",
                "docker.io/peregrine-test/busybox".into(),
            ),
            ("container.image.tag", "1.0".into()),
            ("container.privileged", "false".into()),
            ("container.mount.dest[/etc]", "/host/etc".into()),
            (
                "container.label.app",
                labels["app"].as_str().unwrap().into(),
            ),
            ("container.host_pid", "false".into()),
            (
                "k8s.pod.name",
                labels["io.kubernetes.pod.name"].as_str().unwrap().into(),
            ),
            (
                "k8s.ns.name",
                labels["io.kubernetes.pod.namespace"]
                    .as_str()
                    .unwrap()
                    .into(),
            ),
            (
                "k8s.pod.uid",
                labels["io.kubernetes.pod.uid"].as_str().unwrap().into(),
            ),
        ],
    );
    let _ = ctr(&socket, &["tasks", "kill", "-s", "KILL", &id]);
}

/// `ctr run --privileged`: containerd's record has no privileged flag, so
/// Peregrine reads it from the spec as the container plugin does (no masked
/// or read-only paths, no seccomp, sysfs writable), and Falco's "Launch
/// Privileged Container" fires once.
#[test]
fn privileged_ctr_container_is_seen_privileged() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let scratch = Scratch::new("containerd-privileged");
    let (_daemon, socket) = match start_containerd(&scratch) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let id = hex_id();
    ctr(
        &socket,
        &[
            "run",
            "-d",
            "--privileged",
            IMAGE,
            &id,
            "sh",
            "-c",
            "sleep 4; cat /etc/passwd >/dev/null; sleep 1",
        ],
    )
    .expect("ctr run --privileged");
    let pid = wait_for("the task's pid", || {
        let tasks = ctr(&socket, &["tasks", "ls"]).ok()?;
        tasks
            .lines()
            .find(|l| l.starts_with(&id))
            .and_then(|l| l.split_whitespace().nth(1).map(String::from))
    });
    wait_for_comm(&pid, "sh");
    let config = config(&scratch, "containerd", &[&socket]);
    let out = attach(&peregrine, &scratch, &config, &pid, 30)
        .wait_with_output()
        .unwrap();
    let alerts = alerts(&out);
    // What the spec ctr made says.
    let info: serde_json::Value =
        serde_json::from_str(&ctr(&socket, &["containers", "info", &id]).unwrap()).unwrap();
    let spec = &info["Spec"];
    assert!(spec["linux"]["maskedPaths"].is_null(), "{spec:#}");
    assert!(spec["linux"]["seccomp"].is_null(), "{spec:#}");
    let launched: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "Launch Privileged Container")
        .collect();
    assert_eq!(
        launched.len(),
        1,
        "one privileged container event: {alerts:#?}"
    );
    assert_eq!(field(launched[0], "container.id"), id[..12]);
    let alert = the_alert(&alerts, "Container reads passwd");
    check_fields(
        alert,
        &[
            ("container.id", id[..12].to_string()),
            ("container.type", "containerd".into()),
            ("container.privileged", "true".into()),
        ],
    );
    let _ = ctr(&socket, &["tasks", "kill", "-s", "KILL", &id]);
}
