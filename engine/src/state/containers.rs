//! Container metadata: what a container runtime says about a container,
//! keyed by the short id the cgroups give a thread.
//!
//! The engine opens no socket: the table is filled by container events,
//! either read from a capture (libsinsp writes `container` JSON events)
//! or made by the runner from its runtime clients. The JSON is the one
//! libsinsp and Falco's container plugin write, so captures from either
//! replay with their metadata.

use crate::fast_hash::{FastMap, FastSet};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Most containers held at once; past it, the oldest entry goes (a
/// container whose exit was missed must not hold memory for ever).
pub const DEFAULT_MAX_CONTAINERS: usize = 8192;

/// Longest short id (what the cgroups reveal and `container.id` shows).
pub const SHORT_ID_LEN: usize = 12;

/// The runtime kinds, numbered as libsinsp numbers them in its JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerKind {
    Docker,
    Lxc,
    LibvirtLxc,
    Mesos,
    Rkt,
    Custom,
    Cri,
    Containerd,
    Crio,
    Bpm,
    Static,
    Podman,
    Host,
    #[default]
    Unknown,
}

impl ContainerKind {
    const CODES: [(ContainerKind, u32, &'static str); 14] = [
        (ContainerKind::Docker, 0, "docker"),
        (ContainerKind::Lxc, 1, "lxc"),
        (ContainerKind::LibvirtLxc, 2, "libvirt-lxc"),
        (ContainerKind::Mesos, 3, "mesos"),
        (ContainerKind::Rkt, 4, "rkt"),
        (ContainerKind::Custom, 5, "custom"),
        (ContainerKind::Cri, 6, "cri"),
        (ContainerKind::Containerd, 7, "containerd"),
        (ContainerKind::Crio, 8, "cri-o"),
        (ContainerKind::Bpm, 9, "bpm"),
        (ContainerKind::Static, 10, "static"),
        (ContainerKind::Podman, 11, "podman"),
        (ContainerKind::Host, 0xfffe, "host"),
        (ContainerKind::Unknown, 0xffff, "unknown"),
    ];

    /// The name `container.type` shows.
    pub fn name(self) -> &'static str {
        Self::CODES
            .iter()
            .find(|(k, _, _)| *k == self)
            .map_or("unknown", |(_, _, n)| n)
    }

    pub fn code(self) -> u32 {
        Self::CODES
            .iter()
            .find(|(k, _, _)| *k == self)
            .map_or(0xffff, |(_, c, _)| *c)
    }

    pub fn from_code(code: u32) -> ContainerKind {
        Self::CODES
            .iter()
            .find(|(_, c, _)| *c == code)
            .map_or(ContainerKind::Unknown, |(k, _, _)| *k)
    }
}

impl Serialize for ContainerKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.code())
    }
}

impl<'de> Deserialize<'de> for ContainerKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ContainerKind::from_code(u32::deserialize(d)?))
    }
}

/// One mount of a container, as `container.mount*` show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    #[serde(rename = "Source", default)]
    pub source: String,
    #[serde(rename = "Destination", default)]
    pub dest: String,
    #[serde(rename = "Mode", default)]
    pub mode: String,
    #[serde(rename = "RW", default)]
    pub read_write: bool,
    #[serde(rename = "Propagation", default)]
    pub propagation: String,
}

impl Mount {
    /// `source:dest:mode:rdrw:propagation`, as `container.mount` shows it.
    pub fn describe(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}",
            self.source, self.dest, self.mode, self.read_write, self.propagation
        )
    }
}

/// What a runtime says about one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerInfo {
    /// The short id (12 characters), the key of the table.
    pub id: String,
    pub full_id: String,
    #[serde(rename = "type")]
    pub kind: ContainerKind,
    pub name: String,
    pub image: String,
    #[serde(rename = "imageid")]
    pub image_id: String,
    #[serde(rename = "imagerepo")]
    pub image_repository: String,
    #[serde(rename = "imagetag")]
    pub image_tag: String,
    #[serde(rename = "imagedigest")]
    pub image_digest: String,
    pub privileged: bool,
    pub host_pid: bool,
    pub host_network: bool,
    pub host_ipc: bool,
    /// The primary IPv4 address, dotted.
    pub ip: String,
    pub cni_json: String,
    #[serde(rename = "Mounts")]
    pub mounts: Vec<Mount>,
    pub labels: BTreeMap<String, String>,
    pub pod_sandbox_id: String,
    pub pod_sandbox_labels: BTreeMap<String, String>,
    pub is_pod_sandbox: bool,
    /// Creation time, seconds since the epoch.
    pub created_time: i64,
    /// The user the container's process runs as (`User` of the runtime).
    #[serde(rename = "User")]
    pub user: String,
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    container: T,
}

impl ContainerInfo {
    /// Metadata from the JSON of a `container` event (`{"container": {...}}`).
    pub fn from_event_json(bytes: &[u8]) -> Result<ContainerInfo, serde_json::Error> {
        let Envelope { container } = serde_json::from_slice::<Envelope<ContainerInfo>>(bytes)?;
        Ok(container.normalized())
    }

    /// The JSON of a `container` event that carries this metadata.
    pub fn to_event_json(&self) -> String {
        serde_json::to_string(&Envelope { container: self }).unwrap_or_default()
    }

    /// Fills the short id from the full one (and the reverse) where one
    /// was left out.
    pub fn normalized(mut self) -> ContainerInfo {
        if self.id.is_empty() {
            self.id = short_id(&self.full_id).to_string();
        } else if self.id.len() > SHORT_ID_LEN {
            if self.full_id.is_empty() {
                self.full_id.clone_from(&self.id);
            }
            self.id = short_id(&self.id).to_string();
        }
        self
    }

    /// The metadata of "host", the container of processes in no container.
    pub fn host() -> ContainerInfo {
        ContainerInfo {
            id: "host".into(),
            full_id: "host".into(),
            name: "host".into(),
            kind: ContainerKind::Host,
            ..ContainerInfo::default()
        }
    }

    /// The pod's namespace, name and uid, from the labels kubelet sets.
    pub fn k8s_label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    /// Labels as `key:value` joined by `, `, leaving out the ones
    /// Kubernetes sets for itself (as Falco's container plugin does).
    pub fn joined_labels(labels: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        for (key, value) in labels {
            if key.starts_with("annotation.") || key.starts_with("io.kubernetes.") {
                continue;
            }
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(key);
            if !value.is_empty() {
                out.push(':');
                out.push_str(value);
            }
        }
        out
    }
}

/// The first 12 characters of a container id.
pub fn short_id(id: &str) -> &str {
    id.get(..SHORT_ID_LEN).unwrap_or(id)
}

/// The container table and the ids seen but not yet known.
#[derive(Debug, Clone)]
pub struct Containers {
    known: FastMap<String, Arc<ContainerInfo>>,
    /// Insertion order, for evicting the oldest when full.
    order: std::collections::VecDeque<String>,
    /// Ids seen on threads and not known: asked for once each.
    asked: FastSet<String>,
    /// Ids for the runner to look up, with a thread in the container.
    wanted: Vec<(String, i64)>,
    host: Arc<ContainerInfo>,
    pub max: usize,
    /// Entries dropped because the table was full.
    pub evicted: u64,
    /// The id of the latest container event, which that event's fields show.
    pub(crate) latest_event: Option<Arc<ContainerInfo>>,
    /// Users and groups of containers, from their own /etc.
    users: FastMap<String, Arc<super::Users>>,
}

impl Default for Containers {
    fn default() -> Self {
        Containers {
            known: FastMap::default(),
            order: std::collections::VecDeque::new(),
            asked: FastSet::default(),
            wanted: Vec::new(),
            host: Arc::new(ContainerInfo::host()),
            max: DEFAULT_MAX_CONTAINERS,
            evicted: 0,
            latest_event: None,
            users: FastMap::default(),
        }
    }
}

impl Containers {
    /// The metadata of a container by short id ("host" included).
    pub fn get(&self, id: &str) -> Option<&Arc<ContainerInfo>> {
        if id == "host" {
            return Some(&self.host);
        }
        self.known.get(id)
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Adds or replaces the metadata of a container.
    pub fn insert(&mut self, info: ContainerInfo) -> Arc<ContainerInfo> {
        let info = Arc::new(info.normalized());
        let id = info.id.clone();
        self.asked.remove(&id);
        if self.known.insert(id.clone(), info.clone()).is_none() {
            self.order.push_back(id);
            while self.known.len() > self.max.max(1) {
                let Some(oldest) = self.order.pop_front() else {
                    break;
                };
                if self.known.remove(&oldest).is_some() {
                    self.users.remove(&oldest);
                    self.evicted += 1;
                }
            }
        }
        info
    }

    /// Forgets a container that exited (by short or full id).
    pub fn remove(&mut self, id: &str) {
        let id = short_id(id);
        if self.known.remove(id).is_some() {
            self.order.retain(|x| x != id);
        }
        self.users.remove(id);
        self.asked.remove(id);
    }

    /// The users and groups of container `id` (from its own /etc), which
    /// `user.name`, `user.homedir`, `user.shell` and `group.name` of its
    /// processes show instead of the host's.
    pub fn set_users(&mut self, id: &str, users: super::Users) {
        let id = short_id(id);
        if self.known.contains_key(id) || self.asked.contains(id) {
            self.users.insert(id.to_string(), Arc::new(users));
        }
    }

    /// A thread of container `id` was seen: a container not known and not
    /// asked for yet is queued for lookup (once).
    pub(crate) fn saw(&mut self, id: &str, tid: i64) {
        if id == "host" || id.is_empty() || self.known.contains_key(id) {
            return;
        }
        // Bounded like the table: ids that no runtime knows stay asked.
        if self.asked.len() >= self.max.max(1) {
            return;
        }
        if self.asked.insert(id.to_string()) {
            self.wanted.push((id.to_string(), tid));
        }
    }

    /// The containers seen since the last call and not known: each is
    /// given once, with a thread that runs in it.
    pub fn take_wanted(&mut self) -> Vec<(String, i64)> {
        std::mem::take(&mut self.wanted)
    }

    /// Whether any container waits to be looked up (cheap, per event).
    pub fn has_wanted(&self) -> bool {
        !self.wanted.is_empty()
    }
}

/// Type codes of the container events.
const CONTAINER_E: u16 = 228;
const CONTAINER_JSON_E: u16 = 272;
const CONTAINER_JSON_2_E: u16 = 324;

impl super::State {
    /// A container event: its metadata goes into the table, and the
    /// event's own `container.*` fields show that container.
    pub(super) fn on_container(&mut self, ev: &crate::event::EventView<'_>) {
        let info = if ev.event_type == CONTAINER_E {
            let text = |i: usize| {
                ev.param(i)
                    .map(|p| String::from_utf8_lossy(p.as_bytes_str()).into_owned())
                    .unwrap_or_default()
            };
            let kind = ev.param(1).and_then(|p| p.as_u64()).unwrap_or(0xffff);
            Some(ContainerInfo {
                id: text(0),
                kind: ContainerKind::from_code(kind as u32),
                name: text(2),
                image: text(3),
                ..ContainerInfo::default()
            })
        } else {
            ev.param(0)
                .and_then(|p| ContainerInfo::from_event_json(p.as_bytes_str()).ok())
        };
        match info {
            Some(info) if !info.id.is_empty() => {
                let info = self.containers.insert(info);
                self.containers.latest_event = Some(info);
            }
            // Unreadable metadata: the event shows no container.
            _ => self.containers.latest_event = None,
        }
    }

    /// The users a thread's names come from: its container's own when they
    /// were read, else the host's.
    pub fn users_of(&self, thread: &super::Thread) -> &super::Users {
        if thread.container_id == "host" || self.containers.users.is_empty() {
            return &self.users;
        }
        self.containers
            .users
            .get(&thread.container_id)
            .map_or(&self.users, |u| &**u)
    }

    /// The container an event runs in: the one a container event names,
    /// else that of the event's thread (None where it is not known).
    pub fn container_of(
        &self,
        ev: &crate::event::EventView<'_>,
        thread: Option<&super::Thread>,
    ) -> Option<&Arc<ContainerInfo>> {
        if matches!(
            ev.event_type,
            CONTAINER_E | CONTAINER_JSON_E | CONTAINER_JSON_2_E
        ) {
            return self.containers.latest_event.as_ref();
        }
        self.containers.get(&thread?.container_id)
    }
}

/// A `container` event (libsinsp's JSON form, as captures hold it) that
/// carries `info`, for thread `tid` at `ts`: what the runner feeds the
/// pipeline when a runtime answers, so that rules on `evt.type=container`
/// see it as Falco's do.
pub fn container_event(ts: u64, tid: i64, info: &ContainerInfo) -> Vec<u8> {
    let mut json = info.to_event_json().into_bytes();
    json.push(0);
    // One parameter with a 4-byte length (the event type's large payload).
    let len = 26 + 4 + json.len();
    let mut raw = Vec::with_capacity(len);
    raw.extend_from_slice(&ts.to_le_bytes());
    raw.extend_from_slice(&tid.to_le_bytes());
    raw.extend_from_slice(&(len as u32).to_le_bytes());
    raw.extend_from_slice(&CONTAINER_JSON_2_E.to_le_bytes());
    raw.extend_from_slice(&1u32.to_le_bytes());
    raw.extend_from_slice(&(json.len() as u32).to_le_bytes());
    raw.extend_from_slice(&json);
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_json_round_trips_in_libsinsp_keys() {
        let info = ContainerInfo {
            id: "3ad7b26ded6d".into(),
            full_id: "3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e".into(),
            kind: ContainerKind::Podman,
            name: "web".into(),
            image_repository: "busybox".into(),
            mounts: vec![Mount {
                source: "/etc".into(),
                dest: "/host/etc".into(),
                mode: "ro".into(),
                read_write: false,
                propagation: "rprivate".into(),
            }],
            ..ContainerInfo::default()
        };
        let json = info.to_event_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["container"]["type"], 11);
        assert_eq!(v["container"]["imagerepo"], "busybox");
        assert_eq!(v["container"]["Mounts"][0]["Destination"], "/host/etc");
        assert_eq!(
            ContainerInfo::from_event_json(json.as_bytes()).unwrap(),
            info
        );
    }

    #[test]
    fn a_full_id_alone_gives_the_short_one() {
        let json = br#"{"container":{"id":"3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e","type":0,"name":"x"}}"#;
        let info = ContainerInfo::from_event_json(json).unwrap();
        assert_eq!(info.id, "3ad7b26ded6d");
        assert_eq!(info.full_id.len(), 64);
        assert_eq!(info.kind.name(), "docker");
    }

    #[test]
    fn labels_join_without_kubernetes_own() {
        let labels: BTreeMap<String, String> = [
            ("io.kubernetes.pod.name", "p"),
            ("app", "web"),
            ("empty", ""),
            ("annotation.x", "y"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(ContainerInfo::joined_labels(&labels), "app:web, empty");
    }

    #[test]
    fn the_table_is_bounded_and_asks_once() {
        let mut t = Containers {
            max: 2,
            ..Containers::default()
        };
        t.saw("aaaaaaaaaaaa", 1);
        t.saw("aaaaaaaaaaaa", 2);
        t.saw("host", 3);
        assert_eq!(t.take_wanted(), vec![("aaaaaaaaaaaa".to_string(), 1)]);
        for id in ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"] {
            t.insert(ContainerInfo {
                id: id.into(),
                ..ContainerInfo::default()
            });
        }
        assert_eq!(t.len(), 2);
        assert_eq!(t.evicted, 1);
        assert!(t.get("aaaaaaaaaaaa").is_none());
        t.remove("cccccccccccc");
        assert!(t.get("cccccccccccc").is_none());
        assert_eq!(t.get("host").unwrap().name, "host");
    }
}
