//! Container metadata from podman through its Docker-compatible API
//! socket (`podman system service`, its own storage in a scratch folder):
//! the fields of an alert from a container's process match
//! `podman inspect`, and the container event fires once.

mod runtime_kit;

use runtime_kit::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const IMAGE: &str = "localhost/peregrine-test/busybox:1.0";

/// podman's global options for this test's own storage. runc and cgroupfs
/// work where crun and systemd do not (a hybrid cgroup tree, no systemd).
fn podman_command(scratch: &Scratch) -> Command {
    let mut command = Command::new("podman");
    command
        .arg("--root")
        .arg(scratch.path("root"))
        .arg("--runroot")
        .arg(scratch.path("run"))
        .args([
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            "--runtime",
            "runc",
        ]);
    command
}

fn podman(scratch: &Scratch, args: &[&str]) -> Result<String, String> {
    run(podman_command(scratch).args(args))
}

fn start_service(scratch: &Scratch) -> Result<(Daemon, PathBuf), String> {
    need("podman")?;
    need("runc")?;
    let tar = rootfs_tar(scratch)?;
    podman(scratch, &["import", tar.to_str().unwrap(), IMAGE])?;
    let socket = scratch.path("podman.sock");
    let mut command = podman_command(scratch);
    command
        .args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", socket.display()));
    let daemon = Daemon::start(
        "podman system service",
        command,
        &socket,
        &scratch.path("podman.log"),
    )?;
    Ok((daemon, socket))
}

fn check(peregrine: &Path, scratch: &Scratch, socket: &Path) {
    // Limits below the sandbox's own (podman raises them by default).
    let id = podman(
        scratch,
        &[
            "run",
            "-d",
            "--name",
            "pg-pod",
            "--network",
            "none",
            "--user",
            "4242:4343",
            "--label",
            "app=web",
            "-v",
            "/etc:/host/etc:ro",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            IMAGE,
            "sh",
            "-c",
            "sleep 4; cat /etc/passwd >/dev/null; sleep 1",
        ],
    )
    .expect("podman run");
    let pid = podman(scratch, &["inspect", "-f", "{{.State.Pid}}", &id]).unwrap();
    wait_for_comm(&pid, "sh");
    let config = config(scratch, "podman", &[socket]);
    let out = attach(peregrine, scratch, &config, &pid, 30)
        .wait_with_output()
        .unwrap();
    let alerts = alerts(&out);
    let started = alerts
        .iter()
        .filter(|a| a["rule"] == "Container started")
        .count();
    assert_eq!(started, 1, "one container event: {alerts:#?}");
    let inspect: serde_json::Value =
        serde_json::from_str(&podman(scratch, &["inspect", &id]).unwrap()).unwrap();
    let c = &inspect[0];
    let alert = the_alert(&alerts, "Container reads passwd");
    check_fields(
        alert,
        &[
            ("container.id", id[..12].to_string()),
            ("container.full_id", c["Id"].as_str().unwrap().to_string()),
            (
                "container.name",
                c["Name"].as_str().unwrap().trim_start_matches('/').into(),
            ),
            ("container.type", "podman".into()),
            ("container.image", c["ImageName"].as_str().unwrap().into()),
            (
                "container.image.repository",
                "localhost/peregrine-test/busybox".into(),
            ),
            ("container.image.tag", "1.0".into()),
            ("container.image.id", c["Image"].as_str().unwrap().into()),
            (
                "container.privileged",
                c["HostConfig"]["Privileged"].to_string(),
            ),
            ("container.mount.dest[/etc]", "/host/etc".into()),
            (
                "container.label.app",
                c["Config"]["Labels"]["app"].as_str().unwrap().into(),
            ),
            ("user.name", "webapp".into()),
            ("group.name", "webgrp".into()),
        ],
    );
}

#[test]
fn podman_container_fields_match_podman_inspect() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let scratch = Scratch::new("podman");
    let (_service, socket) = match start_service(&scratch) {
        Ok(s) => s,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    check(&peregrine, &scratch, &socket);
    let _ = podman(&scratch, &["rm", "-f", "-t", "0", "pg-pod"]);
}
