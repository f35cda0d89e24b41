//! The fields of Falco's container plugin: `container.*`, `k8s.*` and the
//! `proc.is_container_*` probes, over the container table the state holds.
//!
//! The values follow the plugin's: a thread outside containers is in
//! "host" (named host, of type host, with empty metadata); a container the
//! runtime has not answered for yet shows only its id and start time;
//! pod fields come from the labels kubelet puts on containers, and a pod's
//! labels, IP and CNI result from its sandbox when the container itself
//! lacks them. The fields the plugin keeps only for compatibility resolve
//! (rules using them load) and never have a value.

use super::{Arg, SyscallEvent};
use crate::field::{FieldError, FieldInfo, FieldType, Value};
use crate::state::containers::{short_id, ContainerInfo, Mount};
use std::borrow::Cow;

/// Ids of these fields start here, above those of the syscall table.
pub(super) const ID_BASE: u32 = 0x1000;

/// How a field takes its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    /// A label name, in brackets or after a dot (`container.label.app`).
    Key,
    /// A mount number or a pattern of its source (its destination for
    /// `container.mount.source`).
    IndexOrPattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum C {
    Id,
    FullId,
    Name,
    Image,
    ImageId,
    Type,
    Privileged,
    Mounts,
    Mount,
    MountSource,
    MountDest,
    MountMode,
    MountRdwr,
    MountPropagation,
    ImageRepository,
    ImageTag,
    ImageDigest,
    StartTs,
    Duration,
    Ip,
    CniJson,
    HostPid,
    HostNetwork,
    HostIpc,
    Label,
    Labels,
    PodName,
    NsName,
    PodUid,
    PodSandboxId,
    PodFullSandboxId,
    PodLabel,
    PodLabels,
    PodIp,
    PodCniJson,
    /// Kept by the plugin for old rules; never a value.
    Deprecated,
}

struct Def {
    name: &'static str,
    field: C,
    ty: FieldType,
    takes: Takes,
    description: &'static str,
}

const fn def(
    name: &'static str,
    field: C,
    ty: FieldType,
    takes: Takes,
    description: &'static str,
) -> Def {
    Def {
        name,
        field,
        ty,
        takes,
        description,
    }
}

use FieldType::{Bool, String as Str, Uint};
use Takes::{IndexOrPattern, Key, Nothing};

const OLD: &str = "Deprecated by Falco's container plugin: never has a value";

static DEFS: &[Def] = &[
    def("container.id", C::Id, Str, Nothing, "Short container id (12 characters) from the cgroups; host outside containers"),
    def("container.full_id", C::FullId, Str, Nothing, "Full container id, from the runtime"),
    def("container.name", C::Name, Str, Nothing, "Container name, from the runtime; host outside containers"),
    def("container.image", C::Image, Str, Nothing, "Image the container runs, as the runtime names it"),
    def("container.image.id", C::ImageId, Str, Nothing, "Image id, from the runtime"),
    def("container.type", C::Type, Str, Nothing, "Container runtime: docker, podman, containerd, cri-o, cri...; host outside containers"),
    def("container.privileged", C::Privileged, Bool, Nothing, "Whether the container runs privileged"),
    def("container.mounts", C::Mounts, Str, Nothing, "The mounts, each source:dest:mode:rdrw:propagation, joined by commas"),
    def("container.mount", C::Mount, Str, IndexOrPattern, "One mount (source:dest:mode:rdrw:propagation), by number or by a pattern of its source"),
    def("container.mount.source", C::MountSource, Str, IndexOrPattern, "Source of a mount, by number or by a pattern of its destination"),
    def("container.mount.dest", C::MountDest, Str, IndexOrPattern, "Destination of a mount, by number or by a pattern of its source"),
    def("container.mount.mode", C::MountMode, Str, IndexOrPattern, "Mode of a mount, by number or by a pattern of its source"),
    def("container.mount.rdwr", C::MountRdwr, Str, IndexOrPattern, "Whether a mount is writable (true/false), by number or by a pattern of its source"),
    def("container.mount.propagation", C::MountPropagation, Str, IndexOrPattern, "Propagation of a mount, by number or by a pattern of its source"),
    def("container.image.repository", C::ImageRepository, Str, Nothing, "Repository of the image"),
    def("container.image.tag", C::ImageTag, Str, Nothing, "Tag of the image"),
    def("container.image.digest", C::ImageDigest, Str, Nothing, "Registry digest of the image"),
    def("container.healthcheck", C::Deprecated, Str, Nothing, OLD),
    def("container.liveness_probe", C::Deprecated, Str, Nothing, OLD),
    def("container.readiness_probe", C::Deprecated, Str, Nothing, OLD),
    def("container.start_ts", C::StartTs, Uint, Nothing, "Container start (ns since the epoch): the start of the init process of the thread's pid namespace"),
    def("container.duration", C::Duration, Uint, Nothing, "Nanoseconds since container.start_ts"),
    def("container.ip", C::Ip, Str, Nothing, "Primary IPv4 address of the container or pod, from the runtime"),
    def("container.cni.json", C::CniJson, Str, Nothing, "CNI result of the pod, as the CRI reports it"),
    def("container.host_pid", C::HostPid, Bool, Nothing, "Whether the container runs in the host's pid namespace"),
    def("container.host_network", C::HostNetwork, Bool, Nothing, "Whether the container runs in the host's network namespace"),
    def("container.host_ipc", C::HostIpc, Bool, Nothing, "Whether the container runs in the host's IPC namespace"),
    def("container.label", C::Label, Str, Key, "A container label, by name (container.label[app] or container.label.app)"),
    def("container.labels", C::Labels, Str, Nothing, "Container labels, key:value joined by ', ' (without Kubernetes' own)"),
    def("proc.is_container_healthcheck", C::Deprecated, Bool, Nothing, OLD),
    def("proc.is_container_liveness_probe", C::Deprecated, Bool, Nothing, OLD),
    def("proc.is_container_readiness_probe", C::Deprecated, Bool, Nothing, OLD),
    def("k8s.pod.name", C::PodName, Str, Nothing, "Kubernetes pod name, from the io.kubernetes.pod.name label"),
    def("k8s.ns.name", C::NsName, Str, Nothing, "Kubernetes namespace, from the io.kubernetes.pod.namespace label"),
    def("k8s.pod.id", C::PodUid, Str, Nothing, "Legacy name of k8s.pod.uid"),
    def("k8s.pod.uid", C::PodUid, Str, Nothing, "Kubernetes pod uid, from the io.kubernetes.pod.uid label"),
    def("k8s.pod.sandbox_id", C::PodSandboxId, Str, Nothing, "Short id (12 characters) of the pod sandbox"),
    def("k8s.pod.full_sandbox_id", C::PodFullSandboxId, Str, Nothing, "Full id of the pod sandbox"),
    def("k8s.pod.label", C::PodLabel, Str, Key, "A pod label, by name (k8s.pod.label[app] or k8s.pod.label.app)"),
    def("k8s.pod.labels", C::PodLabels, Str, Nothing, "Pod labels, key:value joined by ', '"),
    def("k8s.pod.ip", C::PodIp, Str, Nothing, "Pod IPv4 address (that of its sandbox)"),
    def("k8s.pod.cni.json", C::PodCniJson, Str, Nothing, "CNI result of the pod"),
    def("k8s.rc.name", C::Deprecated, Str, Nothing, OLD),
    def("k8s.rc.id", C::Deprecated, Str, Nothing, OLD),
    def("k8s.rc.label", C::Deprecated, Str, Key, OLD),
    def("k8s.rc.labels", C::Deprecated, Str, Nothing, OLD),
    def("k8s.svc.name", C::Deprecated, Str, Nothing, OLD),
    def("k8s.svc.id", C::Deprecated, Str, Nothing, OLD),
    def("k8s.svc.label", C::Deprecated, Str, Key, OLD),
    def("k8s.svc.labels", C::Deprecated, Str, Nothing, OLD),
    def("k8s.ns.id", C::Deprecated, Str, Nothing, OLD),
    def("k8s.ns.label", C::Deprecated, Str, Key, OLD),
    def("k8s.ns.labels", C::Deprecated, Str, Nothing, OLD),
    def("k8s.rs.name", C::Deprecated, Str, Nothing, OLD),
    def("k8s.rs.id", C::Deprecated, Str, Nothing, OLD),
    def("k8s.rs.label", C::Deprecated, Str, Key, OLD),
    def("k8s.rs.labels", C::Deprecated, Str, Nothing, OLD),
    def("k8s.deployment.name", C::Deprecated, Str, Nothing, OLD),
    def("k8s.deployment.id", C::Deprecated, Str, Nothing, OLD),
    def("k8s.deployment.label", C::Deprecated, Str, Key, OLD),
    def("k8s.deployment.labels", C::Deprecated, Str, Nothing, OLD),
];

/// The fields as `--list` shows them.
pub(super) fn infos() -> impl Iterator<Item = FieldInfo> {
    DEFS.iter().map(|d| FieldInfo {
        name: d.name,
        ty: d.ty,
        arg: match d.takes {
            Nothing => None,
            Key => Some("key"),
            IndexOrPattern => Some("index or path"),
        },
        description: d.description,
    })
}

/// A mount pattern, compared by its text.
#[derive(Debug, Clone)]
pub(super) struct Pattern(regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Pattern {}

/// A resolved field of this table: its id, type and parsed argument.
pub(super) type Resolved = (u32, FieldType, Option<Arg>);

/// What a field of this table resolves to: its index and parsed argument.
/// None when `name` is not one of them.
pub(super) fn resolve(name: &str, arg: Option<&str>) -> Option<Result<Resolved, FieldError>> {
    let bad = |problem: &str| FieldError::BadArgument {
        field: name.to_string(),
        problem: problem.to_string(),
    };
    // `container.label.app` names its key after a dot, as brackets would.
    let (index, arg) = match DEFS.iter().position(|d| d.name == name) {
        Some(i) => (i, arg),
        None => {
            let (i, key) = DEFS.iter().enumerate().find_map(|(i, d)| {
                let key = name.strip_prefix(d.name)?.strip_prefix('.')?;
                (d.takes == Key).then_some((i, key))
            })?;
            if arg.is_some() {
                return Some(Err(bad("has its key after a dot and in brackets")));
            }
            (i, Some(key))
        }
    };
    let d = &DEFS[index];
    let arg = arg.filter(|a| !a.is_empty());
    let parsed = match (d.takes, arg) {
        (Nothing, None) => None,
        (Nothing, Some(_)) => return Some(Err(bad("takes no argument"))),
        (Key, None) => {
            return Some(Err(bad(&format!(
                "needs a label name, as in {}[app]",
                d.name
            ))))
        }
        (Key, Some(key)) => Some(Arg::Name(key.to_string())),
        (IndexOrPattern, None) => {
            return Some(Err(bad(&format!(
                "needs a mount number or path, as in {}[0] or {}[/etc]",
                d.name, d.name
            ))))
        }
        (IndexOrPattern, Some(a)) => match a.parse::<usize>() {
            Ok(n) => Some(Arg::Index(n)),
            Err(_) => match regex::RegexBuilder::new(a).multi_line(true).build() {
                Ok(re) => Some(Arg::Pattern(Pattern(re))),
                Err(e) => return Some(Err(bad(&format!("bad path pattern: {e}")))),
            },
        },
    };
    Some(Ok((ID_BASE + index as u32, d.ty, parsed)))
}

fn text<'e>(v: &'e str) -> Value<'e> {
    Value::Str(Cow::Borrowed(v))
}

fn label<'e>(
    labels: &'e std::collections::BTreeMap<String, String>,
    key: &str,
) -> Option<Value<'e>> {
    labels.get(key).map(|v| text(v))
}

/// The mount a field's argument picks.
fn pick_mount<'i>(info: &'i ContainerInfo, field: C, arg: Option<&Arg>) -> Option<&'i Mount> {
    match arg? {
        Arg::Index(i) => info.mounts.get(*i),
        Arg::Pattern(Pattern(re)) => info.mounts.iter().find(|m| {
            let side = if field == C::MountSource {
                &m.dest
            } else {
                &m.source
            };
            re.is_match(side)
        }),
        _ => None,
    }
}

pub(super) fn extract<'e>(
    id: u32,
    arg: Option<&Arg>,
    ev: &SyscallEvent<'e>,
    out: &mut Vec<Value<'e>>,
) {
    let Some(d) = id.checked_sub(ID_BASE).and_then(|i| DEFS.get(i as usize)) else {
        return;
    };
    let state = ev.state;
    // An unknown thread reads as libsinsp's made-up one: on the host.
    let thread = Some(ev.thread());
    let info = state.container_of(ev.event, thread);
    // Fields known without the runtime's answer.
    match d.field {
        C::Id => {
            match (info, thread) {
                (Some(i), _) => out.push(text(&i.id)),
                (None, Some(t)) if !t.container_id.is_empty() => out.push(text(&t.container_id)),
                _ => {}
            }
            return;
        }
        C::StartTs | C::Duration => {
            if let Some(start) = thread.map(|t| t.pidns_init_start_ts).filter(|&s| s != 0) {
                out.push(Value::Uint(if d.field == C::StartTs {
                    start
                } else {
                    ev.event.ts.saturating_sub(start)
                }));
            }
            return;
        }
        C::Deprecated => return,
        _ => {}
    }
    let Some(info) = info else { return };
    let info: &'e ContainerInfo = info;
    // The pod's sandbox, where the pod's own network and labels are kept
    // when the container's metadata lacks them.
    let sandbox = || -> Option<&'e ContainerInfo> {
        if !info.cni_json.is_empty() {
            return None;
        }
        state
            .containers
            .get(short_id(&info.pod_sandbox_id))
            .map(|s| &**s)
    };
    let value = match d.field {
        C::FullId => text(&info.full_id),
        C::Name => text(&info.name),
        C::Image => text(&info.image),
        C::ImageId => text(&info.image_id),
        C::Type => text(info.kind.name()),
        C::Privileged => Value::Bool(info.privileged),
        C::Mounts => Value::Str(Cow::Owned(
            info.mounts
                .iter()
                .map(Mount::describe)
                .collect::<Vec<_>>()
                .join(","),
        )),
        C::Mount
        | C::MountSource
        | C::MountDest
        | C::MountMode
        | C::MountRdwr
        | C::MountPropagation => {
            let Some(m) = pick_mount(info, d.field, arg) else {
                return;
            };
            match d.field {
                C::Mount => Value::Str(Cow::Owned(m.describe())),
                C::MountSource => text(&m.source),
                C::MountDest => text(&m.dest),
                C::MountMode => text(&m.mode),
                C::MountRdwr => text(if m.read_write { "true" } else { "false" }),
                _ => text(&m.propagation),
            }
        }
        C::ImageRepository => text(&info.image_repository),
        C::ImageTag => text(&info.image_tag),
        C::ImageDigest => text(&info.image_digest),
        C::Ip => text(&info.ip),
        C::CniJson => text(&info.cni_json),
        C::HostPid => Value::Bool(info.host_pid),
        C::HostNetwork => Value::Bool(info.host_network),
        C::HostIpc => Value::Bool(info.host_ipc),
        C::Label => {
            let Some(Arg::Name(key)) = arg else { return };
            let Some(v) = label(&info.labels, key) else {
                return;
            };
            v
        }
        C::Labels => Value::Str(Cow::Owned(ContainerInfo::joined_labels(&info.labels))),
        C::PodName | C::NsName | C::PodUid => {
            let key = match d.field {
                C::PodName => "io.kubernetes.pod.name",
                C::NsName => "io.kubernetes.pod.namespace",
                _ => "io.kubernetes.pod.uid",
            };
            let Some(v) = label(&info.labels, key) else {
                return;
            };
            v
        }
        C::PodSandboxId => text(short_id(&info.pod_sandbox_id)),
        C::PodFullSandboxId => text(&info.pod_sandbox_id),
        C::PodLabel => {
            let Some(Arg::Name(key)) = arg else { return };
            let found = sandbox()
                .and_then(|s| label(&s.pod_sandbox_labels, key))
                .or_else(|| label(&info.pod_sandbox_labels, key));
            let Some(v) = found else { return };
            v
        }
        C::PodLabels => {
            let labels = sandbox().map_or(&info.pod_sandbox_labels, |s| &s.pod_sandbox_labels);
            Value::Str(Cow::Owned(ContainerInfo::joined_labels(labels)))
        }
        C::PodIp | C::PodCniJson => {
            let from = if info.cni_json.is_empty() {
                let Some(s) = sandbox() else { return };
                s
            } else {
                info
            };
            if d.field == C::PodIp {
                text(&from.ip)
            } else {
                text(&from.cni_json)
            }
        }
        C::Id | C::StartTs | C::Duration | C::Deprecated => return,
    };
    out.push(value);
}
