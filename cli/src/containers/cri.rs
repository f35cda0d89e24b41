//! The Kubernetes CRI (containerd's CRI plugin, CRI-O), with k8s-cri over
//! the runtime's socket: a container's status and its pod sandbox's.

use super::image::repo_and_tag;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerFilter, ContainerStatusRequest, ListContainersRequest, MountPropagation,
    NamespaceMode, PodSandboxStatusRequest, VersionRequest,
};
use peregrine_engine::state::containers::{short_id, ContainerInfo, ContainerKind, Mount};
use serde::Deserialize;
use std::path::Path;
use tonic::transport::Channel;

/// The longest CNI result kept.
const MAX_CNI_LEN: usize = 4096;

pub struct CriClient {
    client: RuntimeServiceClient<Channel>,
    kind: ContainerKind,
    label_max_len: usize,
}

/// The parts of a container's verbose status `info` the fields show.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VerboseInfo {
    privileged: Option<bool>,
    config: Option<ContainerConfig>,
    #[serde(rename = "runtimeSpec")]
    runtime_spec: Option<ContainerConfig>,
}

impl VerboseInfo {
    /// Whether the container is privileged, from the first of the places
    /// a runtime may say it, in the container plugin's order: the runtime
    /// spec's security context, the CRI config's, then CRI-O's flag.
    fn privileged(&self) -> bool {
        let said = |c: &Option<ContainerConfig>| {
            c.as_ref()?
                .linux
                .as_ref()?
                .security_context
                .as_ref()?
                .privileged
        };
        said(&self.runtime_spec)
            .or_else(|| said(&self.config))
            .or(self.privileged)
            .unwrap_or(false)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RuntimeSpec {
    annotations: std::collections::HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ContainerConfig {
    linux: Option<LinuxConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LinuxConfig {
    security_context: Option<SecurityContext>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SecurityContext {
    privileged: Option<bool>,
}

/// The CNI result in a sandbox's verbose info (containerd's).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SandboxInfo {
    #[serde(rename = "cniResult")]
    cni_result: Option<CniResult>,
    #[serde(rename = "runtimeSpec")]
    runtime_spec: Option<RuntimeSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CniResult {
    #[serde(rename = "Interfaces")]
    interfaces: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

impl CriClient {
    pub async fn connect(socket: &Path, label_max_len: usize) -> Result<CriClient, String> {
        let channel = containerd_client::connect(socket)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let mut client = RuntimeServiceClient::new(channel);
        // The runtime's name says which runtime this CRI is.
        let version = client
            .version(VersionRequest::default())
            .await
            .map_err(|e| format!("CRI version: {}", e.message()))?
            .into_inner();
        let kind = match version.runtime_name.as_str() {
            "containerd" => ContainerKind::Containerd,
            "cri-o" => ContainerKind::Crio,
            _ => ContainerKind::Cri,
        };
        Ok(CriClient {
            client,
            kind,
            label_max_len,
        })
    }

    pub async fn lookup(&self, id: &str) -> Result<Option<(ContainerInfo, i64)>, String> {
        let mut client = self.client.clone();
        let listed = client
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    id: id.to_string(),
                    ..ContainerFilter::default()
                }),
            })
            .await
            .map_err(|e| e.message().to_string())?
            .into_inner()
            .containers;
        let Some(found) = listed.into_iter().next() else {
            return Ok(None);
        };
        let status = match client
            .container_status(ContainerStatusRequest {
                container_id: found.id.clone(),
                verbose: true,
            })
            .await
        {
            Ok(r) => r.into_inner(),
            Err(e) if e.code() == tonic::Code::NotFound => return Ok(None),
            Err(e) => return Err(e.message().to_string()),
        };
        // A pod without status still names the container.
        let sandbox = client
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: found.pod_sandbox_id.clone(),
                verbose: true,
            })
            .await
            .ok()
            .map(|r| r.into_inner());
        Ok(Some((self.describe(status, sandbox), -1)))
    }

    fn describe(
        &self,
        status: k8s_cri::v1::ContainerStatusResponse,
        sandbox: Option<k8s_cri::v1::PodSandboxStatusResponse>,
    ) -> ContainerInfo {
        let info: VerboseInfo = status
            .info
            .get("info")
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        let c = status.status.unwrap_or_default();
        let mounts = c
            .mounts
            .iter()
            .map(|m| Mount {
                source: m.host_path.clone(),
                dest: m.container_path.clone(),
                mode: String::new(),
                read_write: !m.readonly,
                propagation: match MountPropagation::try_from(m.propagation) {
                    Ok(MountPropagation::PropagationPrivate) => "private",
                    Ok(MountPropagation::PropagationHostToContainer) => "rslave",
                    Ok(MountPropagation::PropagationBidirectional) => "rshared",
                    Err(_) => "unknown",
                }
                .to_string(),
            })
            .collect();
        let (sandbox_status, sandbox_info) = match sandbox {
            Some(s) => (s.status, s.info),
            None => (None, Default::default()),
        };
        let mut labels = super::docker::bounded_labels(
            Some(c.labels.clone().into_iter().collect()),
            self.label_max_len,
        );
        let pod_sandbox_id = sandbox_status
            .as_ref()
            .map_or_else(|| c.id.clone(), |s| s.id.clone());
        labels.insert("io.kubernetes.sandbox.id".into(), pod_sandbox_id.clone());
        if let Some(meta) = sandbox_status.as_ref().and_then(|s| s.metadata.as_ref()) {
            labels.insert("io.kubernetes.pod.uid".into(), meta.uid.clone());
            labels.insert("io.kubernetes.pod.name".into(), meta.name.clone());
            labels.insert("io.kubernetes.pod.namespace".into(), meta.namespace.clone());
        }
        let pod_sandbox_labels = super::docker::bounded_labels(
            sandbox_status
                .as_ref()
                .map(|s| s.labels.clone().into_iter().collect()),
            self.label_max_len,
        );
        let cni_json = sandbox_info
            .get("info")
            .and_then(|text| serde_json::from_str::<SandboxInfo>(text).ok())
            .and_then(cni_of)
            .unwrap_or_default();
        let namespaces = sandbox_status
            .as_ref()
            .and_then(|s| s.linux.as_ref())
            .and_then(|l| l.namespaces.as_ref())
            .and_then(|n| n.options.as_ref());
        let on_node = |mode: Option<i32>| mode == Some(NamespaceMode::Node as i32);
        let image_name = c
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        let (image, image_digest, image_repository, image_tag) =
            image_of(&image_name, &c.image_ref);
        let privileged = info.privileged();
        ContainerInfo {
            id: short_id(&c.id).to_string(),
            kind: self.kind,
            name: c
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default(),
            image,
            image_id: c.image_id.clone(),
            image_repository,
            image_tag,
            image_digest,
            privileged,
            host_pid: on_node(namespaces.map(|n| n.pid)),
            host_network: on_node(namespaces.map(|n| n.network)),
            host_ipc: on_node(namespaces.map(|n| n.ipc)),
            ip: sandbox_status
                .as_ref()
                .and_then(|s| s.network.as_ref())
                .map(|n| n.ip.clone())
                .unwrap_or_default(),
            cni_json,
            mounts,
            labels,
            pod_sandbox_id,
            pod_sandbox_labels,
            created_time: c.created_at / 1_000_000_000,
            user: c
                .user
                .as_ref()
                .and_then(|u| u.linux.as_ref())
                .map(|l| l.uid.to_string())
                .unwrap_or_default(),
            full_id: c.id,
            ..ContainerInfo::default()
        }
    }
}

/// The pod's CNI result: containerd's interfaces (without loopback), or
/// CRI-O's annotation; cut at [`MAX_CNI_LEN`].
fn cni_of(info: SandboxInfo) -> Option<String> {
    let mut json = match (info.cni_result, info.runtime_spec) {
        (
            Some(CniResult {
                interfaces: Some(interfaces),
            }),
            _,
        ) => {
            let kept: std::collections::BTreeMap<_, _> = interfaces
                .into_iter()
                .filter(|(name, _)| name != "lo" && name != "veth")
                .collect();
            serde_json::to_string(&kept).ok()?
        }
        (_, Some(spec)) => spec
            .annotations
            .get("io.kubernetes.cri-o.CNIResult")?
            .clone(),
        _ => return None,
    };
    if json.len() > MAX_CNI_LEN {
        let mut cut = MAX_CNI_LEN;
        while !json.is_char_boundary(cut) {
            cut -= 1;
        }
        json.truncate(cut);
    }
    Some(json)
}

/// Image name, digest, repository and tag from the CRI's image and image
/// reference (`host/image@sha256:...` or `sha256:...`).
fn image_of(image: &str, image_ref: &str) -> (String, String, String, String) {
    let mut name = image.to_string();
    let mut digest = String::new();
    let mut tag_from_image = false;
    match image_ref.find("sha256:") {
        Some(0) => digest = image_ref.to_string(),
        Some(at) if image_ref.as_bytes()[at - 1] == b'@' => {
            name = image_ref[..at - 1].to_string();
            digest = image_ref[at..].to_string();
            tag_from_image = true;
        }
        _ => {}
    }
    let (repo, mut tag) = repo_and_tag(&name);
    if tag_from_image {
        let (_, image_tag) = repo_and_tag(image);
        if !image_tag.is_empty() {
            name = format!("{name}:{image_tag}");
            tag = image_tag;
        }
    }
    (name, digest, repo, tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileged_is_read_where_the_plugin_reads_it_first() {
        let read = |json: &str| {
            serde_json::from_str::<VerboseInfo>(json)
                .unwrap()
                .privileged()
        };
        // containerd: the CRI config of the container.
        assert!(read(
            r#"{"config":{"linux":{"security_context":{"privileged":true}}},"runtimeSpec":{"linux":{}}}"#
        ));
        // CRI-O: its own flag.
        assert!(read(r#"{"privileged":true}"#));
        // The first place that says it wins.
        assert!(!read(
            r#"{"privileged":true,"config":{"linux":{"security_context":{"privileged":false}}}}"#
        ));
        assert!(!read("{}"));
    }

    #[test]
    fn image_references_split_as_the_plugin_splits_them() {
        assert_eq!(
            image_of(
                "docker.io/library/nginx:1.27",
                "docker.io/library/nginx@sha256:ab"
            ),
            (
                "docker.io/library/nginx:1.27".into(),
                "sha256:ab".into(),
                "docker.io/library/nginx".into(),
                "1.27".into()
            )
        );
        assert_eq!(
            image_of("busybox:1.0", "sha256:ff"),
            (
                "busybox:1.0".into(),
                "sha256:ff".into(),
                "busybox".into(),
                "1.0".into()
            )
        );
    }
}
