//! The container plugin's fields over the container table: values for a
//! container the runtime described, for one it has not (yet), for the
//! host, for a pod's container whose sandbox holds the pod's network, and
//! on the container event itself.

use peregrine_engine::event::table::event_info;
use peregrine_engine::event::EventView;
use peregrine_engine::field::{FieldError, FieldSource, Value};
use peregrine_engine::state::containers::{container_event, ContainerInfo, ContainerKind, Mount};
use peregrine_engine::state::{State, Thread};
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};
use std::collections::BTreeMap;

const FULL: &str = "3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e";
const SANDBOX: &str = "63060edc2d3aa803ab559f2393776b151f99fc5b05035b21db66b3b62246ad6a";

/// A generic exit event of thread `tid` at `ts`, with empty parameters.
fn event_of(tid: u64, ts: u64) -> Vec<u8> {
    let info = event_info(1).unwrap();
    let n = info.params.len();
    let mut r = Vec::new();
    r.extend_from_slice(&ts.to_le_bytes());
    r.extend_from_slice(&tid.to_le_bytes());
    r.extend_from_slice(&((26 + 2 * n) as u32).to_le_bytes());
    r.extend_from_slice(&1u16.to_le_bytes());
    r.extend_from_slice(&(n as u32).to_le_bytes());
    r.extend(std::iter::repeat(0u8).take(2 * n));
    r
}

fn get(state: &State, raw: &[u8], name: &str, arg: Option<&str>) -> Vec<String> {
    let mut fields = SyscallFields::new();
    let ev = EventView::parse(raw).unwrap();
    let f = fields.resolve(name, arg).unwrap();
    let mut out: Vec<Value<'_>> = Vec::new();
    fields.extract(&f, &SyscallEvent::new(&ev, state), &mut out);
    out.iter().map(|v| v.to_string()).collect()
}

fn one(state: &State, raw: &[u8], name: &str) -> String {
    let v = get(state, raw, name, None);
    assert_eq!(v.len(), 1, "{name}: {v:?}");
    v[0].clone()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn thread(tid: i64, container: &str) -> Thread {
    Thread {
        tid,
        pid: tid,
        comm: "sh".into(),
        exe: "/bin/sh".into(),
        container_id: container.into(),
        pidns_init_start_ts: 1_000,
        ..Thread::default()
    }
}

fn described() -> ContainerInfo {
    ContainerInfo {
        full_id: FULL.into(),
        kind: ContainerKind::Containerd,
        name: "web".into(),
        image: "registry.local/team/web:1.2".into(),
        image_id: "sha256:6f7e2741b66b".into(),
        image_repository: "registry.local/team/web".into(),
        image_tag: "1.2".into(),
        image_digest: "sha256:d977".into(),
        privileged: true,
        host_network: true,
        mounts: vec![
            Mount {
                source: "/var/run/docker.sock".into(),
                dest: "/run/docker.sock".into(),
                mode: "".into(),
                read_write: true,
                propagation: "rprivate".into(),
            },
            Mount {
                source: "/etc".into(),
                dest: "/host/etc".into(),
                mode: "ro".into(),
                read_write: false,
                propagation: "rslave".into(),
            },
        ],
        labels: labels(&[
            ("app", "web"),
            ("io.kubernetes.pod.name", "web-0"),
            ("io.kubernetes.pod.namespace", "shop"),
            (
                "io.kubernetes.pod.uid",
                "3e41dc6b-08a8-44db-bc2a-3724b18ab19a",
            ),
        ]),
        pod_sandbox_id: SANDBOX.into(),
        ..ContainerInfo::default()
    }
}

#[test]
fn a_described_container_shows_the_runtime_metadata() {
    let mut state = State::new();
    state.insert_thread(thread(7, "3ad7b26ded6d"));
    assert_eq!(
        state.containers.take_wanted(),
        vec![("3ad7b26ded6d".to_string(), 7)],
        "a new container is asked for once"
    );
    let raw = event_of(7, 5_000);
    // Before the runtime answers: the id and start only.
    assert_eq!(one(&state, &raw, "container.id"), "3ad7b26ded6d");
    assert_eq!(one(&state, &raw, "container.start_ts"), "1000");
    assert!(get(&state, &raw, "container.name", None).is_empty());
    assert!(get(&state, &raw, "container.privileged", None).is_empty());

    let cev = container_event(4_000, 7, &described());
    state.apply(&EventView::parse(&cev).unwrap());
    for (name, want) in [
        ("container.id", "3ad7b26ded6d"),
        ("container.full_id", FULL),
        ("container.name", "web"),
        ("container.type", "containerd"),
        ("container.image", "registry.local/team/web:1.2"),
        ("container.image.id", "sha256:6f7e2741b66b"),
        ("container.image.repository", "registry.local/team/web"),
        ("container.image.tag", "1.2"),
        ("container.image.digest", "sha256:d977"),
        ("container.privileged", "true"),
        ("container.host_network", "true"),
        ("container.host_pid", "false"),
        (
            "container.mounts",
            "/var/run/docker.sock:/run/docker.sock::true:rprivate,/etc:/host/etc:ro:false:rslave",
        ),
        ("container.labels", "app:web"),
        ("container.start_ts", "1000"),
        ("container.duration", "4000"),
        ("k8s.pod.name", "web-0"),
        ("k8s.ns.name", "shop"),
        ("k8s.pod.uid", "3e41dc6b-08a8-44db-bc2a-3724b18ab19a"),
        ("k8s.pod.id", "3e41dc6b-08a8-44db-bc2a-3724b18ab19a"),
        ("k8s.pod.sandbox_id", "63060edc2d3a"),
        ("k8s.pod.full_sandbox_id", SANDBOX),
    ] {
        assert_eq!(one(&state, &raw, name), want, "{name}");
    }
    for (name, arg, want) in [
        (
            "container.mount.dest",
            "/var/run/docker.sock",
            "/run/docker.sock",
        ),
        ("container.mount.dest", "^/etc", "/host/etc"),
        ("container.mount.source", "/host/.*", "/etc"),
        ("container.mount.mode", "1", "ro"),
        ("container.mount.rdwr", "0", "true"),
        ("container.mount.propagation", "/etc", "rslave"),
        ("container.mount", "1", "/etc:/host/etc:ro:false:rslave"),
        ("container.label", "app", "web"),
    ] {
        assert_eq!(get(&state, &raw, name, Some(arg)), [want], "{name}[{arg}]");
    }
    assert!(get(&state, &raw, "container.mount.dest", Some("/proc")).is_empty());
    assert!(get(&state, &raw, "container.mount", Some("2")).is_empty());
    assert!(get(&state, &raw, "container.label", Some("nope")).is_empty());
    // The key after a dot, as Falco reads it.
    assert_eq!(get(&state, &raw, "container.label.app", None), ["web"]);
    // The plugin keeps these for old rules, with no value.
    for name in [
        "container.healthcheck",
        "proc.is_container_healthcheck",
        "proc.is_container_liveness_probe",
        "k8s.deployment.name",
    ] {
        assert!(get(&state, &raw, name, None).is_empty(), "{name}");
    }
}

#[test]
fn the_sandbox_gives_a_pods_network_and_labels() {
    let mut state = State::new();
    state.insert_thread(thread(7, "3ad7b26ded6d"));
    let sandbox = ContainerInfo {
        full_id: SANDBOX.into(),
        kind: ContainerKind::Containerd,
        is_pod_sandbox: true,
        ip: "10.1.2.3".into(),
        cni_json: r#"{"eth0":{"IPConfigs":[{"IP":"10.1.2.3"}]}}"#.into(),
        pod_sandbox_id: SANDBOX.into(),
        pod_sandbox_labels: labels(&[("app", "web"), ("tier", "front")]),
        ..ContainerInfo::default()
    };
    for info in [sandbox, described()] {
        state.apply(&EventView::parse(&container_event(1, 7, &info)).unwrap());
    }
    let raw = event_of(7, 5_000);
    assert_eq!(one(&state, &raw, "k8s.pod.ip"), "10.1.2.3");
    assert_eq!(
        one(&state, &raw, "k8s.pod.cni.json"),
        r#"{"eth0":{"IPConfigs":[{"IP":"10.1.2.3"}]}}"#
    );
    assert_eq!(one(&state, &raw, "k8s.pod.labels"), "app:web, tier:front");
    assert_eq!(get(&state, &raw, "k8s.pod.label", Some("tier")), ["front"]);
    assert_eq!(get(&state, &raw, "k8s.pod.label.app", None), ["web"]);
    // The container's own IP is the runtime's (none here).
    assert_eq!(one(&state, &raw, "container.ip"), "");
}

#[test]
fn the_host_is_a_container_named_host() {
    let mut state = State::new();
    state.insert_thread(thread(1, "host"));
    assert!(state.containers.take_wanted().is_empty());
    let raw = event_of(1, 5_000);
    assert_eq!(one(&state, &raw, "container.id"), "host");
    assert_eq!(one(&state, &raw, "container.name"), "host");
    assert_eq!(one(&state, &raw, "container.type"), "host");
    assert_eq!(one(&state, &raw, "container.image.repository"), "");
    assert_eq!(one(&state, &raw, "container.privileged"), "false");
    assert!(get(&state, &raw, "k8s.pod.name", None).is_empty());
}

#[test]
fn the_container_event_shows_its_container() {
    let mut state = State::new();
    let raw = container_event(9, -1, &described());
    let ev = EventView::parse(&raw).unwrap();
    assert_eq!(ev.name(), "container");
    state.apply(&ev);
    assert_eq!(one(&state, &raw, "evt.type"), "container");
    assert_eq!(one(&state, &raw, "container.id"), "3ad7b26ded6d");
    assert_eq!(one(&state, &raw, "container.privileged"), "true");
    assert_eq!(state.containers.len(), 1);
    state.containers.remove(FULL);
    assert_eq!(state.containers.len(), 0);
}

#[test]
fn arguments_are_checked() {
    let mut f = SyscallFields::new();
    for (name, arg) in [
        ("container.mount.dest", None),
        ("container.label", None),
        ("k8s.pod.label", None),
        ("container.name", Some("x")),
        ("container.mount", Some("(")),
        ("container.label.app", Some("x")),
    ] {
        assert!(
            matches!(f.resolve(name, arg), Err(FieldError::BadArgument { .. })),
            "{name} {arg:?}"
        );
    }
    assert!(matches!(
        f.resolve("container.nope", None),
        Err(FieldError::Unknown(_))
    ));
}

#[test]
fn a_containers_processes_are_named_from_its_own_users() {
    use peregrine_engine::state::users::{parse_etc, Users};
    let mut state = State::new();
    let (host_users, host_groups) = parse_etc("alice:x:4242:100::/home/alice:/bin/bash\n", "");
    state.users = Users::from_capture(&host_users, &host_groups);
    let mut t = thread(7, "3ad7b26ded6d");
    t.uid = 4242;
    t.gid = 4343;
    state.insert_thread(t);
    let mut host = thread(8, "host");
    host.uid = 4242;
    state.insert_thread(host);
    let (users, groups) = parse_etc(
        "root:x:0:0:root:/root:/bin/sh\nwebapp:x:4242:4343:web:/srv/web:/bin/ash\n",
        "webgrp:x:4343:\n",
    );
    state
        .containers
        .set_users("3ad7b26ded6d", Users::from_capture(&users, &groups));
    let raw = event_of(7, 1);
    assert_eq!(one(&state, &raw, "user.name"), "webapp");
    assert_eq!(one(&state, &raw, "user.homedir"), "/srv/web");
    assert_eq!(one(&state, &raw, "user.shell"), "/bin/ash");
    assert_eq!(one(&state, &raw, "group.name"), "webgrp");
    // The host's processes keep the host's names.
    assert_eq!(one(&state, &event_of(8, 1), "user.name"), "alice");
    // A container forgotten takes its users with it.
    state.containers.remove("3ad7b26ded6d");
    assert_eq!(one(&state, &raw, "user.name"), "alice");
}
