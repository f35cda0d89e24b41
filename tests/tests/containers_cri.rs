//! Container and pod metadata from a real CRI: containerd's built-in CRI
//! plugin (its own root, state and socket), driven through the CRI as
//! kubelet drives it. A pod sandbox and a privileged container are made
//! with the labels kubelet sets, in the host's network namespace (no CNI
//! needed), from images made here from the busybox rootfs and imported
//! into containerd's `k8s.io` namespace (nothing is pulled).
//!
//! Peregrine is configured the way a Falco 0.40 user's falco.yaml does it
//! (`container_engines.cri.sockets`), and the alert of the container's
//! process is checked against `ctr -n k8s.io containers info` and the CRI's
//! own status: `k8s.pod.*`, `k8s.ns.name`, `container.*`, with
//! `container.privileged` true and `%container.info` rendered as Falco's
//! container plugin has it (nothing: the suggested fields say it).

mod runtime_kit;

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerStatusRequest, CreateContainerRequest, ImageSpec,
    LinuxContainerConfig, LinuxContainerSecurityContext, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, PodSandboxStatusRequest, RemovePodSandboxRequest, RunPodSandboxRequest,
    StartContainerRequest, StopPodSandboxRequest, VersionRequest,
};
use runtime_kit::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tonic::transport::Channel;

const IMAGE: &str = "docker.io/peregrine-test/busybox:1.0";
const PAUSE: &str = "docker.io/peregrine-test/pause:1.0";
const POD: &str = "web-0";
const NAMESPACE: &str = "shop";
const CONTAINER: &str = "app";

fn ctr(socket: &Path, args: &[&str]) -> Result<String, String> {
    run(Command::new("ctr")
        .arg("-a")
        .arg(socket)
        .args(["-n", "k8s.io"])
        .args(args))
}

/// containerd with its CRI plugin on, and the two images imported.
fn start_containerd(scratch: &Scratch) -> Result<(Daemon, PathBuf), String> {
    need("containerd")?;
    need("ctr")?;
    let tar = rootfs_tar(scratch)?;
    let cni = scratch.path("cni");
    std::fs::create_dir_all(cni.join("bin")).unwrap();
    std::fs::create_dir_all(cni.join("conf")).unwrap();
    let config = scratch.path("containerd.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\n\
             [plugins.\"io.containerd.grpc.v1.cri\"]\n\
             \x20 sandbox_image = \"{PAUSE}\"\n\
             \x20 disable_apparmor = true\n\
             \x20 restrict_oom_score_adj = true\n\
             \x20 [plugins.\"io.containerd.grpc.v1.cri\".cni]\n\
             \x20   bin_dir = \"{}\"\n\
             \x20   conf_dir = \"{}\"\n",
            cni.join("bin").display(),
            cni.join("conf").display()
        ),
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
    for (name, config) in [
        (IMAGE, r#"{"Env":["PATH=/bin"],"Cmd":["sh"]}"#),
        // The pod's sandbox only has to stay up.
        (
            PAUSE,
            r#"{"Env":["PATH=/bin"],"Entrypoint":["/bin/sleep","100000"]}"#,
        ),
    ] {
        let archive = oci_archive(scratch, &tar, name, config);
        ctr(&socket, &["images", "import", archive.to_str().unwrap()])?;
    }
    Ok((daemon, socket))
}

/// The labels kubelet sets on a pod's sandbox and containers.
fn kubelet_labels(uid: &str, container: Option<&str>) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = [
        ("io.kubernetes.pod.name", POD),
        ("io.kubernetes.pod.namespace", NAMESPACE),
        ("io.kubernetes.pod.uid", uid),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    match container {
        Some(name) => {
            labels.insert("io.kubernetes.container.name".into(), name.into());
        }
        None => {
            labels.insert("app".into(), "web".into());
        }
    }
    labels
}

/// The host's network namespace, the pod's IPC, the container's own pids.
fn namespaces() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Node as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..NamespaceOption::default()
    }
}

fn sandbox_config(scratch: &Scratch, uid: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: POD.into(),
            uid: uid.into(),
            namespace: NAMESPACE.into(),
            attempt: 0,
        }),
        // Kubelet names no hostname for a pod in the host's network (its
        // UTS namespace is the host's too).
        hostname: String::new(),
        log_directory: scratch.path("pod-logs").display().to_string(),
        labels: kubelet_labels(uid, None),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("/kubepods/besteffort/pod{uid}"),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces()),
                // A privileged container needs a privileged sandbox.
                privileged: true,
                ..LinuxSandboxSecurityContext::default()
            }),
            ..LinuxPodSandboxConfig::default()
        }),
        ..PodSandboxConfig::default()
    }
}

/// The pod's cgroups (cgroupfs, v1 or v2), removed once the pod is gone.
fn remove_pod_cgroups(uid: &str) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for c in /sys/fs/cgroup /sys/fs/cgroup/*; do \
             rmdir $c/kubepods/besteffort/pod{uid} $c/kubepods/besteffort $c/kubepods; \
             done 2>/dev/null"
        ))
        .status();
}

struct Pod {
    sandbox_id: String,
    container_id: String,
    pid: String,
    status: k8s_cri::v1::ContainerStatusResponse,
    sandbox: k8s_cri::v1::PodSandboxStatusResponse,
}

/// Runs the pod and its container as kubelet would; Err(reason) where the
/// CRI cannot run a sandbox here.
async fn run_pod(
    client: &mut RuntimeServiceClient<Channel>,
    scratch: &Scratch,
    uid: &str,
    script: &str,
) -> Result<Pod, String> {
    let config = sandbox_config(scratch, uid);
    let sandbox_id = client
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .map_err(|e| {
            format!(
                "containerd's CRI cannot run a pod sandbox here: {}",
                e.message()
            )
        })?
        .into_inner()
        .pod_sandbox_id;
    let container = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: CONTAINER.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: IMAGE.into(),
            ..ImageSpec::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        labels: kubelet_labels(uid, Some(CONTAINER)),
        log_path: format!("{CONTAINER}.log"),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                privileged: true,
                namespace_options: Some(namespaces()),
                ..LinuxContainerSecurityContext::default()
            }),
            ..LinuxContainerConfig::default()
        }),
        ..ContainerConfig::default()
    };
    let container_id = client
        .create_container(CreateContainerRequest {
            pod_sandbox_id: sandbox_id.clone(),
            config: Some(container),
            sandbox_config: Some(config),
        })
        .await
        .map_err(|e| format!("CreateContainer: {}", e.message()))?
        .into_inner()
        .container_id;
    client
        .start_container(StartContainerRequest {
            container_id: container_id.clone(),
        })
        .await
        .map_err(|e| format!("StartContainer: {}", e.message()))?;
    let status = client
        .container_status(ContainerStatusRequest {
            container_id: container_id.clone(),
            verbose: true,
        })
        .await
        .map_err(|e| format!("ContainerStatus: {}", e.message()))?
        .into_inner();
    let info: serde_json::Value =
        serde_json::from_str(status.info.get("info").ok_or("no verbose info")?)
            .map_err(|e| e.to_string())?;
    let pid = info["pid"].as_u64().ok_or("no pid in the verbose info")?;
    let sandbox = client
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: sandbox_id.clone(),
            verbose: true,
        })
        .await
        .map_err(|e| format!("PodSandboxStatus: {}", e.message()))?
        .into_inner();
    Ok(Pod {
        sandbox_id,
        container_id,
        pid: pid.to_string(),
        status,
        sandbox,
    })
}

const RULES: &str = r#"
- rule: Pod container reads passwd
  desc: a process of a pod opens /etc/passwd
  condition: evt.type in (open, openat) and fd.name = /etc/passwd and container.id != host
  output: >
    passwd read in %container.info pod (id=%container.id full_id=%container.full_id
    name=%container.name type=%container.type image=%container.image
    repository=%container.image.repository tag=%container.image.tag
    privileged=%container.privileged host_network=%container.host_network
    host_pid=%container.host_pid pod=%k8s.pod.name ns=%k8s.ns.name uid=%k8s.pod.uid
    sandbox=%k8s.pod.sandbox_id full_sandbox=%k8s.pod.full_sandbox_id
    pod_app=%k8s.pod.label.app cname=%container.label[io.kubernetes.container.name])
  priority: WARNING
- rule: Launch Privileged Container
  desc: as Falco's rule, on the container event
  condition: evt.type = container and container.privileged = true
  output: Privileged container started (%container.info image=%container.image)
  priority: INFO
"#;

/// A Falco 0.40 falco.yaml: the engines under `container_engines`, the
/// CRI at this test's socket, no container plugin entry.
fn falco_040_config(scratch: &Scratch, socket: &Path) -> PathBuf {
    let path = scratch.path("falco.yaml");
    std::fs::write(
        &path,
        format!(
            "json_output: true\njson_include_output_property: true\n\
             container_engines:\n  docker:\n    enabled: false\n  podman:\n    enabled: false\n\
             \x20 cri:\n    enabled: true\n    sockets: ['{}']\n    disable_async: false\n\
             append_output:\n  - suggested_output: true\n",
            socket.display()
        ),
    )
    .unwrap();
    std::fs::write(scratch.path("rules.yaml"), RULES).unwrap();
    path
}

#[test]
fn cri_pod_fields_match_the_cri_and_ctr_info() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let scratch = Scratch::new("cri");
    let (_daemon, socket) = match start_containerd(&scratch) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut client = runtime.block_on(async {
        let channel = containerd_client::connect(&socket).await.expect("connect");
        RuntimeServiceClient::new(channel)
    });
    if let Err(e) = runtime.block_on(client.version(VersionRequest::default())) {
        eprintln!(
            "skipped: containerd's CRI plugin does not answer: {}",
            e.message()
        );
        return;
    }
    let uid = "3e41dc6b-08a8-44db-bc2a-3724b18ab19a";
    let pod = match runtime.block_on(run_pod(
        &mut client,
        &scratch,
        uid,
        "sleep 4; cat /etc/passwd >/dev/null; sleep 1",
    )) {
        Ok(pod) => pod,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    wait_for_comm(&pod.pid, "sh");
    let config = falco_040_config(&scratch, &socket);
    let out = attach(&peregrine, &scratch, &config, &pod.pid, 30)
        .wait_with_output()
        .unwrap();
    let alerts = alerts(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);

    // What containerd and the CRI say.
    let info: serde_json::Value =
        serde_json::from_str(&ctr(&socket, &["containers", "info", &pod.container_id]).unwrap())
            .unwrap();
    let labels = &info["Labels"];
    let label = |name: &str| labels[name].as_str().unwrap_or("").to_string();
    let status = pod.status.status.clone().unwrap();
    let verbose: serde_json::Value = serde_json::from_str(&pod.status.info["info"]).unwrap();
    let sandbox = pod.sandbox.status.clone().unwrap();
    let sandbox_meta = sandbox.metadata.clone().unwrap();

    let privileged: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "Launch Privileged Container")
        .collect();
    assert_eq!(
        privileged.len(),
        1,
        "one privileged container event: {alerts:#?}\n{stderr}"
    );
    let alert = the_alert(&alerts, "Pod container reads passwd");
    check_fields(
        alert,
        &[
            ("container.id", pod.container_id[..12].to_string()),
            ("container.full_id", status.id.clone()),
            ("container.name", status.metadata.clone().unwrap().name),
            ("container.type", "containerd".into()),
            ("container.image", status.image.clone().unwrap().image),
            (
                "container.image.repository",
                "docker.io/peregrine-test/busybox".into(),
            ),
            ("container.image.tag", "1.0".into()),
            (
                "container.privileged",
                verbose["config"]["linux"]["security_context"]["privileged"].to_string(),
            ),
            ("container.host_network", "true".into()),
            ("container.host_pid", "false".into()),
            ("k8s.pod.name", label("io.kubernetes.pod.name")),
            ("k8s.ns.name", label("io.kubernetes.pod.namespace")),
            ("k8s.pod.uid", label("io.kubernetes.pod.uid")),
            ("k8s.pod.sandbox_id", sandbox.id[..12].to_string()),
            ("k8s.pod.full_sandbox_id", sandbox.id.clone()),
            ("k8s.pod.label.app", sandbox.labels["app"].clone()),
            (
                "container.label[io.kubernetes.container.name]",
                label("io.kubernetes.container.name"),
            ),
        ],
    );
    assert_eq!(label("io.kubernetes.pod.name"), sandbox_meta.name);
    assert_eq!(label("io.kubernetes.pod.uid"), sandbox_meta.uid);
    assert_eq!(
        verbose["config"]["linux"]["security_context"]["privileged"],
        true
    );
    // Falco's container plugin: %container.info says nothing, the
    // suggested fields name the container and the pod.
    let output = alert["output"].as_str().unwrap();
    assert!(
        output.contains("passwd read in  pod (")
            && output.ends_with(&format!(
                "container_id={} container_name={CONTAINER} container_image_repository=docker.io/peregrine-test/busybox container_image_tag=1.0 k8s_pod_name={POD} k8s_ns_name={NAMESPACE}",
                &pod.container_id[..12]
            )),
        "{output}"
    );
    assert!(
        field(privileged[0], "container.image") == IMAGE,
        "{:#}",
        privileged[0]
    );

    runtime.block_on(async {
        let _ = client
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod.sandbox_id.clone(),
            })
            .await;
        let _ = client
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod.sandbox_id.clone(),
            })
            .await;
    });
    remove_pod_cgroups(uid);
}
