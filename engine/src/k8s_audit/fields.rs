//! The `ka.*` and `jevt.*` fields over an audit Event's JSON.

use std::borrow::Cow;

use serde_json::Value as Json;

use crate::field::{
    FieldError, FieldInfo, FieldSource, FieldType, ResolvedField, StaticFields, Value,
};
use crate::rules::eval::glob_match;

/// How a field's values are found in the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The value at a JSON pointer.
    At(&'static str),
    /// For each element of the array at `.0`, the value at pointer `.1`
    /// inside it (an empty pointer means the element itself).
    Each(&'static str, &'static str),
    /// Like `Each`, but a missing value counts as `.2`.
    EachOr(&'static str, &'static str, &'static str),
    /// Each string of each array found at `.1` inside elements of `.0`.
    EachFlat(&'static str, &'static str),
    /// Image repositories (image without tag or digest) of containers at `.0`.
    Repositories(&'static str),
    /// The first container (or the one at the index argument) at `.0`, value at `.1`.
    Indexed(&'static str, &'static str),
    FirstRepository,
    /// "true" when any container is privileged.
    AnyPrivileged,
    UriParam,
    SubjectNames,
    SubjectHasName,
    /// "true" when any hostPath volume matches the glob argument.
    VolumeHostPathMatches,
    VolumeTypes,
    JsonText(&'static str),
    JevtValue,
    JevtObj,
    JevtTime,
    JevtTimeIso,
    JevtRawtime,
}

struct Def {
    name: &'static str,
    kind: Kind,
    ty: FieldType,
    list: bool,
    arg: Option<&'static str>,
    /// Whether the argument is required.
    arg_required: bool,
    description: &'static str,
}

const fn def(name: &'static str, kind: Kind, list: bool, description: &'static str) -> Def {
    Def {
        name,
        kind,
        ty: FieldType::String,
        list,
        arg: None,
        arg_required: false,
        description,
    }
}

const fn def_arg(
    name: &'static str,
    kind: Kind,
    list: bool,
    arg: &'static str,
    required: bool,
    description: &'static str,
) -> Def {
    Def {
        name,
        kind,
        ty: FieldType::String,
        list,
        arg: Some(arg),
        arg_required: required,
        description,
    }
}

const CONTAINERS: &str = "/requestObject/spec/containers";
const INIT_CONTAINERS: &str = "/requestObject/spec/initContainers";
const EPHEMERAL_CONTAINERS: &str = "/requestObject/spec/ephemeralContainers";

static DEFS: &[Def] = &[
    def(
        "ka.auditid",
        Kind::At("/auditID"),
        false,
        "The unique id of the audit event",
    ),
    def(
        "ka.stage",
        Kind::At("/stage"),
        false,
        "Stage of the request (e.g. RequestReceived, ResponseComplete)",
    ),
    def(
        "ka.auth.decision",
        Kind::At("/annotations/authorization.k8s.io~1decision"),
        false,
        "The authorization decision",
    ),
    def(
        "ka.auth.reason",
        Kind::At("/annotations/authorization.k8s.io~1reason"),
        false,
        "The authorization reason",
    ),
    def(
        "ka.user.name",
        Kind::At("/user/username"),
        false,
        "The user name performing the request",
    ),
    def(
        "ka.user.groups",
        Kind::Each("/user/groups", ""),
        true,
        "The groups to which the user belongs",
    ),
    def(
        "ka.impuser.name",
        Kind::At("/impersonatedUser/username"),
        false,
        "The impersonated user name",
    ),
    def(
        "ka.verb",
        Kind::At("/verb"),
        false,
        "The action being performed",
    ),
    def(
        "ka.uri",
        Kind::At("/requestURI"),
        false,
        "The request URI as sent from client to server",
    ),
    def_arg(
        "ka.uri.param",
        Kind::UriParam,
        false,
        "name",
        true,
        "The value of a given query parameter in the uri",
    ),
    def(
        "ka.target.name",
        Kind::At("/objectRef/name"),
        false,
        "The target object name",
    ),
    def(
        "ka.target.namespace",
        Kind::At("/objectRef/namespace"),
        false,
        "The target object namespace",
    ),
    def(
        "ka.target.resource",
        Kind::At("/objectRef/resource"),
        false,
        "The target object resource",
    ),
    def(
        "ka.target.subresource",
        Kind::At("/objectRef/subresource"),
        false,
        "The target object subresource",
    ),
    def(
        "ka.req.binding.subjects",
        Kind::SubjectNames,
        true,
        "The subjects linked by a role binding",
    ),
    def_arg(
        "ka.req.binding.subject.has_name",
        Kind::SubjectHasName,
        false,
        "name",
        true,
        "Whether a binding's subjects include the name",
    ),
    def(
        "ka.req.binding.role",
        Kind::At("/requestObject/roleRef/name"),
        false,
        "The role linked by a role binding",
    ),
    def(
        "ka.req.configmap.name",
        Kind::At("/objectRef/name"),
        false,
        "The configmap name",
    ),
    def(
        "ka.req.configmap.obj",
        Kind::JsonText("/requestObject/data"),
        false,
        "The configmap data, as JSON",
    ),
    def_arg(
        "ka.req.pod.containers.image",
        Kind::Each(CONTAINERS, "/image"),
        true,
        "index",
        false,
        "The container images of a pod",
    ),
    def_arg(
        "ka.req.container.image",
        Kind::Indexed(CONTAINERS, "/image"),
        false,
        "index",
        false,
        "The image of the first (or indexed) container",
    ),
    def_arg(
        "ka.req.pod.containers.image.repository",
        Kind::Repositories(CONTAINERS),
        true,
        "index",
        false,
        "The container image repositories of a pod",
    ),
    def_arg(
        "ka.req.container.image.repository",
        Kind::FirstRepository,
        false,
        "index",
        false,
        "The image repository of the first container",
    ),
    def(
        "ka.req.pod.initContainers.image",
        Kind::Each(INIT_CONTAINERS, "/image"),
        true,
        "The init container images of a pod",
    ),
    def(
        "ka.req.pod.initContainers.image.repository",
        Kind::Repositories(INIT_CONTAINERS),
        true,
        "The init container image repositories",
    ),
    def(
        "ka.req.pod.ephemeralContainers.image",
        Kind::Each(EPHEMERAL_CONTAINERS, "/image"),
        true,
        "The ephemeral container images",
    ),
    def(
        "ka.req.pod.ephemeralContainers.image.repository",
        Kind::Repositories(EPHEMERAL_CONTAINERS),
        true,
        "The ephemeral container image repositories",
    ),
    def(
        "ka.req.pod.host_ipc",
        Kind::At("/requestObject/spec/hostIPC"),
        false,
        "The pod's hostIPC flag",
    ),
    def(
        "ka.req.pod.host_network",
        Kind::At("/requestObject/spec/hostNetwork"),
        false,
        "The pod's hostNetwork flag",
    ),
    def(
        "ka.req.container.host_network",
        Kind::At("/requestObject/spec/hostNetwork"),
        false,
        "The pod's hostNetwork flag (deprecated name)",
    ),
    def(
        "ka.req.pod.host_pid",
        Kind::At("/requestObject/spec/hostPID"),
        false,
        "The pod's hostPID flag",
    ),
    def(
        "ka.req.pod.containers.host_port",
        Kind::EachFlat(CONTAINERS, "/ports/*/hostPort"),
        true,
        "The host ports of a pod's containers",
    ),
    def(
        "ka.req.pod.containers.privileged",
        Kind::EachOr(CONTAINERS, "/securityContext/privileged", "false"),
        true,
        "Whether each container is privileged",
    ),
    def(
        "ka.req.pod.initContainers.privileged",
        Kind::EachOr(INIT_CONTAINERS, "/securityContext/privileged", "false"),
        true,
        "Whether each init container is privileged",
    ),
    def(
        "ka.req.pod.ephemeralContainers.privileged",
        Kind::EachOr(EPHEMERAL_CONTAINERS, "/securityContext/privileged", "false"),
        true,
        "Whether each ephemeral container is privileged",
    ),
    def(
        "ka.req.container.privileged",
        Kind::AnyPrivileged,
        false,
        "Whether any container is privileged",
    ),
    def(
        "ka.req.pod.containers.allow_privilege_escalation",
        Kind::EachOr(
            CONTAINERS,
            "/securityContext/allowPrivilegeEscalation",
            "false",
        ),
        true,
        "allowPrivilegeEscalation of each container",
    ),
    def(
        "ka.req.pod.containers.read_only_fs",
        Kind::EachOr(
            CONTAINERS,
            "/securityContext/readOnlyRootFilesystem",
            "false",
        ),
        true,
        "readOnlyRootFilesystem of each container",
    ),
    def(
        "ka.req.pod.containers.run_as_user",
        Kind::Each(CONTAINERS, "/securityContext/runAsUser"),
        true,
        "runAsUser of each container",
    ),
    def(
        "ka.req.pod.containers.run_as_group",
        Kind::Each(CONTAINERS, "/securityContext/runAsGroup"),
        true,
        "runAsGroup of each container",
    ),
    def(
        "ka.req.pod.containers.proc_mount",
        Kind::Each(CONTAINERS, "/securityContext/procMount"),
        true,
        "procMount of each container",
    ),
    def(
        "ka.req.pod.containers.add_capabilities",
        Kind::EachFlat(CONTAINERS, "/securityContext/capabilities/add/*"),
        true,
        "Capabilities added to containers",
    ),
    def(
        "ka.req.pod.run_as_user",
        Kind::At("/requestObject/spec/securityContext/runAsUser"),
        false,
        "The pod's runAsUser",
    ),
    def(
        "ka.req.pod.run_as_group",
        Kind::At("/requestObject/spec/securityContext/runAsGroup"),
        false,
        "The pod's runAsGroup",
    ),
    def(
        "ka.req.pod.fs_group",
        Kind::At("/requestObject/spec/securityContext/fsGroup"),
        false,
        "The pod's fsGroup",
    ),
    def(
        "ka.req.pod.supplemental_groups",
        Kind::Each("/requestObject/spec/securityContext/supplementalGroups", ""),
        true,
        "The pod's supplemental groups",
    ),
    def(
        "ka.req.pod.volumes.hostpath",
        Kind::Each("/requestObject/spec/volumes", "/hostPath/path"),
        true,
        "The hostPath paths of a pod's volumes",
    ),
    def(
        "ka.req.pod.volumes.flexvolume_driver",
        Kind::Each("/requestObject/spec/volumes", "/flexVolume/driver"),
        true,
        "The flexVolume drivers of a pod's volumes",
    ),
    def(
        "ka.req.pod.volumes.volume_type",
        Kind::VolumeTypes,
        true,
        "The types of a pod's volumes",
    ),
    def_arg(
        "ka.req.volume.hostpath",
        Kind::VolumeHostPathMatches,
        false,
        "path glob",
        true,
        "Whether a hostPath volume matches the glob",
    ),
    def(
        "ka.req.role.rules",
        Kind::Each("/requestObject/rules", ""),
        true,
        "The rules of a role, as JSON",
    ),
    def(
        "ka.req.role.rules.verbs",
        Kind::EachFlat("/requestObject/rules", "/verbs/*"),
        true,
        "The verbs of a role's rules",
    ),
    def(
        "ka.req.role.rules.resources",
        Kind::EachFlat("/requestObject/rules", "/resources/*"),
        true,
        "The resources of a role's rules",
    ),
    def(
        "ka.req.role.rules.apiGroups",
        Kind::EachFlat("/requestObject/rules", "/apiGroups/*"),
        true,
        "The API groups of a role's rules",
    ),
    def(
        "ka.req.service.type",
        Kind::At("/requestObject/spec/type"),
        false,
        "The service type",
    ),
    def(
        "ka.req.service.ports",
        Kind::Each("/requestObject/spec/ports", ""),
        true,
        "The service ports, as JSON",
    ),
    def(
        "ka.resp.name",
        Kind::At("/responseObject/metadata/name"),
        false,
        "The response object name",
    ),
    def(
        "ka.response.code",
        Kind::At("/responseStatus/code"),
        false,
        "The response code",
    ),
    def(
        "ka.response.reason",
        Kind::At("/responseStatus/reason"),
        false,
        "The response reason",
    ),
    def(
        "ka.useragent",
        Kind::At("/userAgent"),
        false,
        "The user agent of the client",
    ),
    def(
        "ka.sourceips",
        Kind::Each("/sourceIPs", ""),
        true,
        "The source IPs of the request",
    ),
    def_arg(
        "jevt.value",
        Kind::JevtValue,
        false,
        "json pointer",
        true,
        "The value at a JSON pointer in the event",
    ),
    def("jevt.obj", Kind::JevtObj, false, "The whole event, as JSON"),
    def(
        "jevt.time",
        Kind::JevtTime,
        false,
        "The event timestamp, as written in the event",
    ),
    def(
        "jevt.time.iso8601",
        Kind::JevtTimeIso,
        false,
        "The event time in ISO 8601",
    ),
    Def {
        name: "jevt.rawtime",
        kind: Kind::JevtRawtime,
        ty: FieldType::Uint,
        list: false,
        arg: None,
        arg_required: false,
        description: "The event time in ns since the epoch",
    },
];

/// The k8s audit [`FieldSource`].
#[derive(Debug, Default)]
pub struct K8sAuditSource {
    args: Vec<String>,
    infos: Vec<FieldInfo>,
    /// Falco's `static_fields`.
    static_fields: StaticFields,
}

impl K8sAuditSource {
    pub fn new() -> Self {
        let infos = DEFS
            .iter()
            .map(|d| FieldInfo {
                name: d.name,
                ty: d.ty,
                arg: d.arg,
                description: d.description,
            })
            .collect();
        K8sAuditSource {
            args: Vec::new(),
            infos,
            static_fields: StaticFields::default(),
        }
    }
}

fn push_json<'e>(v: &'e Json, out: &mut Vec<Value<'e>>) {
    match v {
        Json::Null => {}
        Json::String(s) => out.push(Value::Str(Cow::Borrowed(s))),
        Json::Bool(b) => out.push(Value::Str(Cow::Borrowed(if *b { "true" } else { "false" }))),
        Json::Number(n) => out.push(Value::Str(Cow::Owned(n.to_string()))),
        other => out.push(Value::Str(Cow::Owned(other.to_string()))),
    }
}

/// Follows `path` where a `*` segment means every element of an array.
fn each_at<'e>(v: &'e Json, path: &str, out: &mut Vec<Value<'e>>) {
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        push_json(v, out);
        return;
    }
    let (head, rest) = path.split_once('/').unwrap_or((path, ""));
    if head == "*" {
        if let Json::Array(items) = v {
            for item in items {
                each_at(item, rest, out);
            }
        }
    } else if let Some(next) = v.get(head) {
        each_at(next, rest, out);
    }
}

fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(colon) => &image[..name_start + colon],
        None => image,
    }
}

fn containers<'e>(event: &'e Json, at: &str) -> impl Iterator<Item = &'e Json> {
    event
        .pointer(at)
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
}

impl FieldSource for K8sAuditSource {
    type Event<'e> = &'e Json;

    fn name(&self) -> &'static str {
        "k8s_audit"
    }

    fn static_fields(&mut self) -> Option<&mut StaticFields> {
        Some(&mut self.static_fields)
    }

    fn resolve(&mut self, name: &str, arg: Option<&str>) -> Result<ResolvedField, FieldError> {
        let (id, d) = DEFS
            .iter()
            .enumerate()
            .find(|(_, d)| d.name == name)
            .ok_or_else(|| FieldError::Unknown(name.to_string()))?;
        let bad = |problem: &str| FieldError::BadArgument {
            field: name.to_string(),
            problem: problem.to_string(),
        };
        let arg = match (arg, d.arg) {
            (Some(_), None) => return Err(bad("takes no argument")),
            (None, Some(_)) if d.arg_required => return Err(bad("requires an argument")),
            (Some(a), Some(_)) => {
                if d.kind == Kind::JevtValue && !a.starts_with('/') {
                    return Err(bad("needs a JSON pointer starting with '/'"));
                }
                if matches!(
                    d.kind,
                    Kind::Each(..)
                        | Kind::Indexed(..)
                        | Kind::Repositories(..)
                        | Kind::FirstRepository
                ) && a.parse::<usize>().is_err()
                {
                    return Err(bad("needs a numeric index"));
                }
                self.args.push(a.to_string());
                Some((self.args.len() - 1) as u32)
            }
            (None, _) => None,
        };
        // An index picks one container, so the field is no longer a list.
        let is_list = d.list && arg.is_none();
        Ok(ResolvedField {
            id: id as u32,
            arg,
            ty: d.ty,
            is_list,
        })
    }

    fn extract<'e>(
        &self,
        field: &ResolvedField,
        event: &Self::Event<'e>,
        out: &mut Vec<Value<'e>>,
    ) {
        let event: &'e Json = event;
        let Some(d) = DEFS.get(field.id as usize) else {
            return;
        };
        let arg = field
            .arg
            .and_then(|i| self.args.get(i as usize))
            .map(String::as_str);
        let index = arg.and_then(|a| a.parse::<usize>().ok());
        match d.kind {
            Kind::At(p) => {
                if let Some(v) = event.pointer(p) {
                    push_json(v, out);
                }
            }
            Kind::Each(at, inner) => {
                for (_, item) in containers(event, at)
                    .enumerate()
                    .filter(|(i, _)| index.map_or(true, |x| x == *i))
                {
                    if inner.is_empty() {
                        push_json(item, out);
                    } else if let Some(v) = item.pointer(inner) {
                        push_json(v, out);
                    }
                }
            }
            Kind::EachOr(at, inner, default) => {
                for item in containers(event, at) {
                    match item.pointer(inner) {
                        Some(v) if !v.is_null() => push_json(v, out),
                        _ => out.push(Value::Str(Cow::Borrowed(default))),
                    }
                }
            }
            Kind::EachFlat(at, inner) => {
                for item in containers(event, at) {
                    each_at(item, inner, out);
                }
            }
            Kind::Repositories(at) => {
                for (_, item) in containers(event, at)
                    .enumerate()
                    .filter(|(i, _)| index.map_or(true, |x| x == *i))
                {
                    if let Some(image) = item.get("image").and_then(Json::as_str) {
                        out.push(Value::Str(Cow::Borrowed(repository(image))));
                    }
                }
            }
            Kind::Indexed(at, inner) => {
                if let Some(v) = containers(event, at)
                    .nth(index.unwrap_or(0))
                    .and_then(|c| c.pointer(inner))
                {
                    push_json(v, out);
                }
            }
            Kind::FirstRepository => {
                if let Some(image) = containers(event, CONTAINERS)
                    .nth(index.unwrap_or(0))
                    .and_then(|c| c.get("image"))
                    .and_then(Json::as_str)
                {
                    out.push(Value::Str(Cow::Borrowed(repository(image))));
                }
            }
            Kind::AnyPrivileged => {
                if event.pointer(CONTAINERS).is_some() {
                    let any = containers(event, CONTAINERS).any(|c| {
                        c.pointer("/securityContext/privileged")
                            .and_then(Json::as_bool)
                            == Some(true)
                    });
                    out.push(Value::Str(Cow::Borrowed(if any {
                        "true"
                    } else {
                        "false"
                    })));
                }
            }
            Kind::UriParam => {
                let (Some(uri), Some(name)) = (event.get("requestURI").and_then(Json::as_str), arg)
                else {
                    return;
                };
                let Some((_, query)) = uri.split_once('?') else {
                    return;
                };
                for pair in query.split('&') {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if k == name {
                        out.push(Value::Str(Cow::Owned(percent_decode(v))));
                        return;
                    }
                }
            }
            Kind::SubjectNames => {
                for s in containers(event, "/requestObject/subjects") {
                    if let Some(n) = s.get("name") {
                        push_json(n, out);
                    }
                }
            }
            Kind::SubjectHasName => {
                if event.pointer("/requestObject/subjects").is_some() {
                    let has = containers(event, "/requestObject/subjects")
                        .any(|s| s.get("name").and_then(Json::as_str) == arg);
                    out.push(Value::Str(Cow::Borrowed(if has {
                        "true"
                    } else {
                        "false"
                    })));
                }
            }
            Kind::VolumeHostPathMatches => {
                if let (Some(vols), Some(pattern)) = (
                    event
                        .pointer("/requestObject/spec/volumes")
                        .and_then(Json::as_array),
                    arg,
                ) {
                    let any = vols
                        .iter()
                        .filter_map(|v| v.pointer("/hostPath/path").and_then(Json::as_str))
                        .any(|p| glob_match(pattern, p, false));
                    out.push(Value::Str(Cow::Borrowed(if any {
                        "true"
                    } else {
                        "false"
                    })));
                }
            }
            Kind::VolumeTypes => {
                for vol in containers(event, "/requestObject/spec/volumes") {
                    if let Json::Object(m) = vol {
                        for k in m.keys().filter(|k| k.as_str() != "name") {
                            out.push(Value::Str(Cow::Borrowed(k)));
                        }
                    }
                }
            }
            Kind::JsonText(p) => {
                if let Some(v) = event.pointer(p) {
                    out.push(Value::Str(Cow::Owned(v.to_string())));
                }
            }
            Kind::JevtValue => {
                if let Some(v) = arg.and_then(|p| event.pointer(p)) {
                    push_json(v, out);
                }
            }
            Kind::JevtObj => out.push(Value::Str(Cow::Owned(event.to_string()))),
            Kind::JevtTime => {
                if let Some(v) = event
                    .get("stageTimestamp")
                    .or_else(|| event.get("timestamp"))
                {
                    push_json(v, out);
                }
            }
            Kind::JevtTimeIso => {
                let ns = super::event_time_ns(event);
                if ns != 0 {
                    out.push(Value::Str(Cow::Owned(crate::output::iso8601(ns))));
                }
            }
            Kind::JevtRawtime => out.push(Value::Uint(super::event_time_ns(event))),
        }
    }

    fn fields(&self) -> &[FieldInfo] {
        &self.infos
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                }
                Err(_) => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
