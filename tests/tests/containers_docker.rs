//! Container metadata from a real Docker Engine (Debian's docker.io, its
//! own data root and socket): the fields of an alert from a container's
//! process match `docker inspect`, the container event fires once, the
//! container's own users name its process, and killing the runtime
//! mid-run stops no event.

mod runtime_kit;

use runtime_kit::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const IMAGE: &str = "peregrine-test/busybox:1.0";

/// dockerd without iptables or a bridge (loopback only), in `scratch`.
fn start_dockerd(scratch: &Scratch) -> Result<(Daemon, PathBuf), String> {
    need("dockerd")?;
    need("docker")?;
    let socket = scratch.path("docker.sock");
    let mut command = Command::new("dockerd");
    command
        .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
        .arg("--data-root")
        .arg(scratch.path("root"))
        .arg("--exec-root")
        .arg(scratch.path("exec"))
        .arg("--pidfile")
        .arg(scratch.path("docker.pid"))
        .arg("-H")
        .arg(format!("unix://{}", socket.display()));
    let daemon = Daemon::start("dockerd", command, &socket, &scratch.path("dockerd.log"))?;
    let tar = rootfs_tar(scratch)?;
    docker(&socket, &["import", tar.to_str().unwrap(), IMAGE])?;
    Ok((daemon, socket))
}

fn docker(socket: &Path, args: &[&str]) -> Result<String, String> {
    run(Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .args(args))
}

/// A container running `script` as webapp, labelled, with /etc mounted.
fn start_container(socket: &Path, name: &str, script: &str) -> (String, String) {
    let id = docker(
        socket,
        &[
            "run",
            "-d",
            "--name",
            name,
            "--user",
            "4242:4343",
            "--label",
            "app=web",
            "-v",
            "/etc:/host/etc:ro",
            IMAGE,
            "sh",
            "-c",
            script,
        ],
    )
    .expect("docker run");
    let pid = docker(socket, &["inspect", "-f", "{{.State.Pid}}", &id]).expect("docker inspect");
    wait_for_comm(&pid, "sh");
    (id, pid)
}

#[test]
fn docker_container_fields_match_docker_inspect() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let scratch = Scratch::new("docker");
    let (_daemon, socket) = match start_dockerd(&scratch) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let (id, pid) = start_container(
        &socket,
        "pg-web",
        "sleep 4; cat /etc/passwd >/dev/null; sleep 1",
    );
    let config = config(&scratch, "docker", &[&socket]);
    let out = attach(&peregrine, &scratch, &config, &pid, 30)
        .wait_with_output()
        .unwrap();
    let alerts = alerts(&out);
    let started: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "Container started")
        .collect();
    assert_eq!(started.len(), 1, "one container event: {alerts:#?}");
    assert_eq!(field(started[0], "container.name"), "pg-web");

    let inspect: serde_json::Value =
        serde_json::from_str(&docker(&socket, &["inspect", &id]).unwrap()).unwrap();
    let c = &inspect[0];
    let image: serde_json::Value = serde_json::from_str(
        &docker(&socket, &["image", "inspect", c["Image"].as_str().unwrap()]).unwrap(),
    )
    .unwrap();
    let mount = &c["Mounts"][0];
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
            ("container.type", "docker".into()),
            (
                "container.image",
                c["Config"]["Image"].as_str().unwrap().into(),
            ),
            (
                "container.image.repository",
                "peregrine-test/busybox".into(),
            ),
            ("container.image.tag", "1.0".into()),
            (
                "container.image.id",
                image[0]["Id"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:")
                    .into(),
            ),
            (
                "container.privileged",
                c["HostConfig"]["Privileged"].to_string(),
            ),
            (
                "container.mounts",
                format!(
                    "{}:{}:{}:{}:{}",
                    mount["Source"].as_str().unwrap(),
                    mount["Destination"].as_str().unwrap(),
                    mount["Mode"].as_str().unwrap(),
                    mount["RW"],
                    mount["Propagation"].as_str().unwrap()
                ),
            ),
            ("container.mount.dest[/etc]", "/host/etc".into()),
            (
                "container.label.app",
                c["Config"]["Labels"]["app"].as_str().unwrap().into(),
            ),
            ("container.host_pid", "false".into()),
            (
                "container.host_network",
                (c["HostConfig"]["NetworkMode"] == "host").to_string(),
            ),
            ("k8s.pod.name", "<NA>".into()),
            // The container's own users, not the host's.
            ("user.name", "webapp".into()),
            ("group.name", "webgrp".into()),
            ("user.homedir", "/srv/web".into()),
        ],
    );
    // The plugin's suggested fields end the text.
    let output = alert["output"].as_str().unwrap();
    assert!(
        output.ends_with(&format!(
            "container_id={} container_name=pg-web container_image_repository=peregrine-test/busybox container_image_tag=1.0 k8s_pod_name=<NA> k8s_ns_name=<NA>",
            &id[..12]
        )),
        "{output}"
    );
}

#[test]
fn killing_docker_mid_run_stops_no_event() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let scratch = Scratch::new("docker-kill");
    let (mut daemon, socket) = match start_dockerd(&scratch) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    // Ten reads, one every 0.4 s, from 1.5 s on.
    let (_, pid) = start_container(
        &socket,
        "pg-loop",
        "sleep 1.5; for i in 0 1 2 3 4 5 6 7 8 9; do cat /etc/passwd >/dev/null; sleep 0.4; done",
    );
    // A runtime answering garbage comes first: it is counted and logged,
    // and the real one still answers.
    let garbage = scratch.path("garbage.sock");
    let listener = std::os::unix::net::UnixListener::bind(&garbage).unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(b"\x00\xffnot http at all\r\n\r\n");
        }
    });
    let config = config(&scratch, "docker", &[&garbage, &socket]);
    let child = attach(&peregrine, &scratch, &config, &pid, 30);
    std::thread::sleep(Duration::from_millis(2500));
    daemon.kill();
    let out = child.wait_with_output().unwrap();
    let alerts = alerts(&out);
    let reads: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "Container reads passwd")
        .collect();
    assert_eq!(
        reads.len(),
        10,
        "every read alerts, before and after the kill"
    );
    // Metadata learnt before the kill stays with the container.
    assert!(
        reads
            .iter()
            .all(|a| field(a, "container.name") == "pg-loop"),
        "{reads:#?}"
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(&format!("docker at {}", garbage.display())),
        "the failing socket is named: {log}"
    );
}

/// A privileged container (where docker can run one), seen by a Peregrine
/// that runs as in a container
/// (the host under `HOST_ROOT`) with a Falco 0.40 falco.yaml: the docker
/// engine of `container_engines` is asked at the host's
/// /var/run/docker.sock, here this test's dockerd.
#[test]
fn privileged_docker_container_seen_through_falco_040_engines() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let scratch = Scratch::new("docker-privileged");
    let (_daemon, socket) = match start_dockerd(&scratch) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    // Docker gives a privileged container every capability the kernel
    // knows, which a machine whose own bounding set lacks some cannot give:
    // there, an unprivileged one is checked (the engine's settings still are).
    let run = |privileged: bool| {
        let mut args = vec!["run", "-d"];
        if privileged {
            args.push("--privileged");
        }
        args.extend([
            "--name",
            "pg-priv",
            IMAGE,
            "sh",
            "-c",
            "sleep 4; cat /etc/passwd >/dev/null; sleep 1",
        ]);
        docker(&socket, &args)
    };
    let id = match run(true) {
        Ok(id) => id,
        Err(why) => {
            let last = why
                .rsplit("docker: ")
                .next()
                .and_then(|l| l.lines().next())
                .unwrap_or("")
                .trim();
            eprintln!("docker cannot run a privileged container here ({last}): an unprivileged one is checked");
            let _ = docker(&socket, &["rm", "-f", "pg-priv"]);
            run(false).expect("docker run")
        }
    };
    let pid = docker(&socket, &["inspect", "-f", "{{.State.Pid}}", &id]).expect("docker inspect");
    wait_for_comm(&pid, "sh");
    let host = scratch.path("host");
    std::fs::create_dir_all(host.join("var/run")).unwrap();
    std::os::unix::fs::symlink("/proc", host.join("proc")).unwrap();
    std::os::unix::fs::symlink("/etc", host.join("etc")).unwrap();
    std::os::unix::fs::symlink(&socket, host.join("var/run/docker.sock")).unwrap();
    let config = scratch.path("falco.yaml");
    std::fs::write(
        &config,
        "json_output: true\njson_include_output_property: true\nrule_matching: all\n\
         container_engines:\n  docker:\n    enabled: true\n  cri:\n    enabled: false\n  podman:\n    enabled: false\n\
         append_output:\n  - suggested_output: true\n",
    )
    .unwrap();
    std::fs::write(scratch.path("rules.yaml"), RULES).unwrap();
    let out = Command::new(&peregrine)
        .env("HOST_ROOT", &host)
        .arg("run")
        .arg("-c")
        .arg(&config)
        .arg("-r")
        .arg(scratch.path("rules.yaml"))
        .args(["-M", "30", "--attach", &pid])
        .output()
        .expect("peregrine runs");
    let alerts = alerts(&out);
    let inspect: serde_json::Value =
        serde_json::from_str(&docker(&socket, &["inspect", &id]).unwrap()).unwrap();
    let c = &inspect[0];
    let privileged = c["HostConfig"]["Privileged"] == true;
    let launched: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "Launch Privileged Container")
        .collect();
    assert_eq!(
        launched.len(),
        usize::from(privileged),
        "one privileged container event for a privileged container: {alerts:#?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = the_alert(&alerts, "Container started");
    assert_eq!(field(started, "container.name"), "pg-priv");
    if privileged {
        assert_eq!(
        launched[0]["output"].as_str().unwrap().split_once(": ").unwrap().1,
        format!(
            "Informational Privileged container started ( image={IMAGE}) container_id={} container_name=pg-priv container_image_repository=peregrine-test/busybox container_image_tag=1.0 k8s_pod_name=<NA> k8s_ns_name=<NA>",
            &id[..12]
        )
    );
    }
    let alert = the_alert(&alerts, "Container reads passwd");
    check_fields(
        alert,
        &[
            ("container.id", id[..12].to_string()),
            (
                "container.name",
                c["Name"].as_str().unwrap().trim_start_matches('/').into(),
            ),
            ("container.type", "docker".into()),
            (
                "container.privileged",
                c["HostConfig"]["Privileged"].to_string(),
            ),
        ],
    );
}
