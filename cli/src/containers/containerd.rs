//! containerd's own API (containers of `ctr`, nerdctl, or Kubernetes'
//! in the `k8s.io` namespace), with containerd-client over its socket.

use super::image::repo_and_tag;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::namespaces_client::NamespacesClient;
use containerd_client::services::v1::{ListContainersRequest, ListNamespacesRequest};
use containerd_client::with_namespace;
use peregrine_engine::state::containers::{short_id, ContainerInfo, ContainerKind, Mount};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use tonic::transport::Channel;
use tonic::Request;

pub struct ContainerdClient {
    channel: Channel,
    label_max_len: usize,
}

/// The parts of a container's OCI runtime spec the fields show.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Spec {
    process: Option<Process>,
    mounts: Vec<SpecMount>,
    linux: Option<Linux>,
    annotations: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Process {
    user: User,
    #[serde(rename = "selinuxLabel")]
    selinux_label: String,
    #[serde(rename = "apparmorProfile")]
    apparmor_profile: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct User {
    uid: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SpecMount {
    destination: String,
    #[serde(rename = "type")]
    kind: String,
    source: String,
    options: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Linux {
    namespaces: Vec<Namespace>,
    #[serde(rename = "rootfsPropagation")]
    rootfs_propagation: String,
    #[serde(rename = "maskedPaths")]
    masked_paths: Option<Vec<String>>,
    #[serde(rename = "readonlyPaths")]
    readonly_paths: Option<Vec<String>>,
    seccomp: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Namespace {
    #[serde(rename = "type")]
    kind: String,
}

impl ContainerdClient {
    pub async fn connect(socket: &Path, label_max_len: usize) -> Result<ContainerdClient, String> {
        let channel = containerd_client::connect(socket)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        Ok(ContainerdClient {
            channel,
            label_max_len,
        })
    }

    /// The container whose id starts with `id`, in any namespace. Its
    /// init's pid is not in containerd's container record (-1).
    pub async fn lookup(&self, id: &str) -> Result<Option<(ContainerInfo, i64)>, String> {
        // An id is hexadecimal: anything else cannot be one of the ids the
        // cgroups give, and must not reach a filter expression.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let namespaces = NamespacesClient::new(self.channel.clone())
            .list(ListNamespacesRequest::default())
            .await
            .map_err(|e| e.message().to_string())?
            .into_inner()
            .namespaces;
        let mut containers = ContainersClient::new(self.channel.clone());
        for ns in namespaces {
            let request = ListContainersRequest {
                filters: vec![format!("id~=^{id}")],
            };
            let listed = containers
                .list(with_namespace!(request, ns.name.as_str()))
                .await
                .map_err(|e| e.message().to_string())?
                .into_inner()
                .containers;
            if let Some(c) = listed.into_iter().next() {
                return Ok(Some((self.describe(c), -1)));
            }
        }
        Ok(None)
    }

    fn describe(&self, c: containerd_client::services::v1::Container) -> ContainerInfo {
        let spec: Spec = c
            .spec
            .as_ref()
            .and_then(|any| serde_json::from_slice(&any.value).ok())
            .unwrap_or_default();
        let linux = spec.linux.unwrap_or_default();
        let mounts = spec
            .mounts
            .iter()
            .map(|m| Mount {
                source: m.source.clone(),
                dest: m.destination.clone(),
                mode: m
                    .options
                    .iter()
                    .find_map(|o| o.strip_prefix("mode="))
                    .unwrap_or_default()
                    .to_string(),
                read_write: !m.options.iter().any(|o| o == "ro"),
                propagation: linux.rootfs_propagation.clone(),
            })
            .collect();
        // Without its own namespace of a kind, a container shares the host's.
        let has_ns = |kind: &str| linux.namespaces.iter().any(|n| n.kind == kind);
        let process = spec.process.unwrap_or_default();
        let privileged = is_privileged(&linux, &process, &spec.mounts);
        let (image_repository, image_tag) = repo_and_tag(&c.image);
        let mut sandbox = c.sandbox.clone();
        if sandbox.is_empty() {
            if let Some(id) = spec.annotations.get("io.kubernetes.cri.sandbox-id") {
                sandbox.clone_from(id);
            }
        }
        ContainerInfo {
            id: short_id(&c.id).to_string(),
            kind: ContainerKind::Containerd,
            // containerd has no names: the plugin shows the short id.
            name: short_id(&c.id).to_string(),
            image: c.image.clone(),
            image_repository,
            image_tag,
            privileged,
            host_pid: !has_ns("pid"),
            host_network: !has_ns("network"),
            host_ipc: !has_ns("ipc"),
            mounts,
            is_pod_sandbox: c.labels.get("io.cri-containerd.kind").map(String::as_str)
                == Some("sandbox"),
            labels: super::docker::bounded_labels(Some(c.labels), self.label_max_len),
            pod_sandbox_id: sandbox,
            created_time: c.created_at.map(|t| t.seconds).unwrap_or(0),
            user: process.user.uid.to_string(),
            full_id: c.id,
            ..ContainerInfo::default()
        }
    }
}

/// What containerd's privileged option leaves in a spec: no masked or
/// read-only paths, no SELinux label, AppArmor and seccomp off, and sysfs
/// and cgroup mounted writable.
fn is_privileged(linux: &Linux, process: &Process, mounts: &[SpecMount]) -> bool {
    linux.masked_paths.is_none()
        && linux.readonly_paths.is_none()
        && process.selinux_label.is_empty()
        && (process.apparmor_profile.is_empty() || process.apparmor_profile == "unconfined")
        && linux.seccomp.is_none()
        && !mounts
            .iter()
            .filter(|m| m.kind == "sysfs" || m.kind == "cgroup")
            .any(|m| m.options.iter().any(|o| o == "ro"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_spec_is_not_privileged_and_one_without_masks_is() {
        let default: Spec = serde_json::from_str(
            r#"{"process":{"user":{"uid":0}},"linux":{"maskedPaths":["/proc/kcore"],"readonlyPaths":["/proc/sys"],"namespaces":[{"type":"pid"},{"type":"mount"}]},
                "mounts":[{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","ro"]}]}"#,
        )
        .unwrap();
        let linux = default.linux.unwrap_or_default();
        assert!(!is_privileged(&linux, &Process::default(), &default.mounts));
        let open: Spec = serde_json::from_str(
            r#"{"linux":{"namespaces":[]},"mounts":[{"destination":"/sys","type":"sysfs","source":"sysfs","options":["rw"]}]}"#,
        )
        .unwrap();
        assert!(is_privileged(
            &open.linux.unwrap_or_default(),
            &Process::default(),
            &open.mounts
        ));
    }
}
