//! Docker, and podman through its Docker-compatible socket: the Docker
//! Engine API over a unix socket, with bollard.

use super::image::repo_and_tag;
use super::{ContainerStats, EngineKind, News};
use bollard::query_parameters::{EventsOptionsBuilder, InspectContainerOptions};
use bollard::Docker;
use peregrine_engine::state::containers::{short_id, ContainerInfo, ContainerKind, Mount};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// API 1.41 (Docker 20.10): what Debian's docker and podman 4 both serve.
const API_VERSION: &bollard::ClientVersion = &bollard::ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// Seconds bollard waits on one request.
const REQUEST_TIMEOUT_S: u64 = 5;

pub struct DockerClient {
    kind: EngineKind,
    docker: Docker,
    label_max_len: usize,
}

impl DockerClient {
    pub fn connect(
        kind: EngineKind,
        socket: &Path,
        label_max_len: usize,
    ) -> Result<DockerClient, String> {
        let path = socket.to_str().ok_or("socket path is not UTF-8")?;
        let docker = Docker::connect_with_unix(path, REQUEST_TIMEOUT_S, API_VERSION)
            .map_err(|e| e.to_string())?;
        Ok(DockerClient {
            kind,
            docker,
            label_max_len,
        })
    }

    /// The container of (a prefix of) `id`, and its init's pid on the host.
    pub async fn lookup(&self, id: &str) -> Result<Option<(ContainerInfo, i64)>, String> {
        let inspected = match self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => c,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let pid = inspected
            .state
            .as_ref()
            .and_then(|s| s.pid)
            .filter(|&p| p > 0)
            .unwrap_or(-1);
        let image = match inspected.image.as_deref() {
            Some(image_id) if !image_id.is_empty() => {
                self.docker.inspect_image(image_id).await.ok()
            }
            _ => None,
        };
        Ok(Some((self.describe(inspected, image), pid)))
    }

    /// What the runtime said, in the container plugin's terms.
    fn describe(
        &self,
        c: bollard::models::ContainerInspectResponse,
        image: Option<bollard::models::ImageInspect>,
    ) -> ContainerInfo {
        let full_id = c.id.unwrap_or_default();
        let host = c.host_config.unwrap_or_default();
        let config = c.config.unwrap_or_default();
        let name = c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        let mounts = c
            .mounts
            .unwrap_or_default()
            .into_iter()
            .map(|m| Mount {
                source: m.source.unwrap_or_default(),
                dest: m.destination.unwrap_or_default(),
                mode: m.mode.unwrap_or_default(),
                read_write: m.rw.unwrap_or(false),
                propagation: m.propagation.unwrap_or_default(),
            })
            .collect();
        let (image_repository, image_tag, image_digest, image_id) = image_names(image);
        let is_host = |mode: &Option<String>| mode.as_deref() == Some("host");
        let ip = c
            .network_settings
            .and_then(|n| n.networks)
            .map(|networks| primary_ip(&networks))
            .unwrap_or_default();
        ContainerInfo {
            id: short_id(&full_id).to_string(),
            kind: match self.kind {
                EngineKind::Podman => ContainerKind::Podman,
                _ => ContainerKind::Docker,
            },
            is_pod_sandbox: name.contains("k8s_POD"),
            name,
            image: config.image.clone().unwrap_or_default(),
            image_id,
            image_repository,
            image_tag,
            image_digest,
            privileged: host.privileged.unwrap_or(false),
            host_pid: is_host(&host.pid_mode),
            host_network: is_host(&host.network_mode),
            host_ipc: is_host(&host.ipc_mode),
            ip,
            mounts,
            labels: bounded_labels(config.labels, self.label_max_len),
            created_time: c.created.as_deref().map(rfc3339_seconds).unwrap_or(0),
            user: config.user.unwrap_or_default(),
            full_id,
            ..ContainerInfo::default()
        }
    }
}

/// The address of the container's first network with one (by name, so
/// the choice is stable).
fn primary_ip(networks: &HashMap<String, bollard::models::EndpointSettings>) -> String {
    let mut names: Vec<&String> = networks.keys().collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|n| networks[n].ip_address.clone())
        .find(|ip| !ip.is_empty())
        .unwrap_or_default()
}

/// Repository, tag, digest and id of an image: the repository from its
/// first digest reference (else its first tag), the tag from a tag of
/// that repository, the id without its `sha256:`.
fn image_names(image: Option<bollard::models::ImageInspect>) -> (String, String, String, String) {
    let Some(image) = image else {
        return Default::default();
    };
    let mut repo = String::new();
    let mut digest = String::new();
    let digests = image.repo_digests.unwrap_or_default();
    for reference in &digests {
        let Some((r, d)) = reference.split_once('@') else {
            continue;
        };
        if repo.is_empty() {
            repo = r.to_string();
        }
        if reference.contains(repo.as_str()) {
            digest = d.to_string();
            break;
        }
    }
    let mut tag = String::new();
    for reference in image.repo_tags.unwrap_or_default() {
        let (r, t) = repo_and_tag(&reference);
        if r.is_empty() || t.is_empty() {
            continue;
        }
        if repo.is_empty() {
            repo = r;
        }
        if reference.contains(repo.as_str()) {
            tag = t;
            break;
        }
    }
    let id = image
        .id
        .unwrap_or_default()
        .trim_start_matches("sha256:")
        .to_string();
    (repo, tag, digest, id)
}

pub(super) fn bounded_labels(
    labels: Option<HashMap<String, String>>,
    max_len: usize,
) -> BTreeMap<String, String> {
    labels
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, v)| v.len() <= max_len)
        .collect()
}

/// Seconds since the epoch of an RFC 3339 time (0 when unreadable).
fn rfc3339_seconds(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

/// Follows the runtime's container events: a start is looked up at once
/// (its metadata is there before the container's first process is seen,
/// most of the time), a death or removal forgets the container. Connects
/// again after a failure, without end; while the socket does not exist it
/// looks for it less and less often (lookups still try it at each ask).
pub async fn follow_events(
    kind: EngineKind,
    socket: PathBuf,
    label_max_len: usize,
    news: super::NewsSender,
    stats: Arc<ContainerStats>,
    index: usize,
) {
    use tokio_stream::StreamExt;
    let mut absent_wait = RECONNECT_WAIT;
    loop {
        if !socket.exists() {
            tokio::time::sleep(absent_wait).await;
            absent_wait = (absent_wait * 2).min(ABSENT_WAIT_MAX);
            continue;
        }
        absent_wait = RECONNECT_WAIT;
        if let Ok(client) = DockerClient::connect(kind, &socket, label_max_len) {
            let filters = HashMap::from([
                ("type", vec!["container"]),
                ("event", vec!["start", "die", "destroy"]),
            ]);
            let options = EventsOptionsBuilder::new().filters(&filters).build();
            let mut events = client.docker.events(Some(options));
            while let Some(Ok(event)) = events.next().await {
                let Some(id) = event.actor.and_then(|a| a.id) else {
                    continue;
                };
                match event.action.as_deref() {
                    Some("start") => match client.lookup(&id).await {
                        Ok(Some((info, pid))) => {
                            stats.count(index, super::stats::Outcome::Found);
                            if !news.send(super::arrived(info, pid)) {
                                stats.count_queue_full();
                            }
                            crate::wakeup::ring();
                        }
                        Ok(None) => stats.count(index, super::stats::Outcome::NotFound),
                        Err(_) => stats.count(index, super::stats::Outcome::Failed),
                    },
                    Some(_) => {
                        if !news.send(News::Gone(id)) {
                            stats.count_queue_full();
                        }
                        crate::wakeup::ring();
                    }
                    None => {}
                }
            }
        }
        tokio::time::sleep(RECONNECT_WAIT).await;
    }
}

/// The wait before following a runtime's events again after a failure.
const RECONNECT_WAIT: Duration = Duration::from_secs(2);
/// The longest wait between two looks for a socket that does not exist.
const ABSENT_WAIT_MAX: Duration = Duration::from_secs(32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_follow_the_plugin() {
        let image = bollard::models::ImageInspect {
            id: Some("sha256:533d0a9d38d0".into()),
            repo_tags: Some(vec!["peregrine-test/busybox:1.0".into()]),
            repo_digests: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(
            image_names(Some(image)),
            (
                "peregrine-test/busybox".into(),
                "1.0".into(),
                String::new(),
                "533d0a9d38d0".into()
            )
        );
        let pulled = bollard::models::ImageInspect {
            repo_tags: Some(vec!["nginx:1.27".into()]),
            repo_digests: Some(vec!["nginx@sha256:feed".into()]),
            ..Default::default()
        };
        let (repo, tag, digest, _) = image_names(Some(pulled));
        assert_eq!(
            (repo.as_str(), tag.as_str(), digest.as_str()),
            ("nginx", "1.27", "sha256:feed")
        );
    }
}
