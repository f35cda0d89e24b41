//! The k8s audit source: fields over audit Event JSON.

use peregrine_engine::field::{FieldSource, Value};
use peregrine_engine::k8s_audit::{
    event_time_ns, events_from_json, parse_rfc3339_ns, K8sAuditSource,
};

const POD: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete",
 "requestURI":"/api/v1/namespaces/default/pods/p/exec?command=sh&command=-c&container=c1",
 "verb":"create","user":{"username":"alice","groups":["dev","system:authenticated"]},
 "objectRef":{"resource":"pods","namespace":"default","name":"p","subresource":"exec"},
 "responseStatus":{"code":201},
 "annotations":{"authorization.k8s.io/decision":"allow"},
 "requestObject":{"spec":{"hostNetwork":true,
   "containers":[{"image":"docker.io/library/nginx:1.25"},{"image":"busybox","securityContext":{"privileged":true}}],
   "volumes":[{"name":"v","hostPath":{"path":"/proc/1"}},{"name":"w","emptyDir":{}}]}},
 "stageTimestamp":"2018-10-25T14:09:12.500Z","a/~b":"odd"}"#;

fn values(name: &str, arg: Option<&str>) -> Vec<String> {
    let ev = events_from_json(POD).unwrap().remove(0);
    let mut src = K8sAuditSource::new();
    let f = src
        .resolve(name, arg)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut out = Vec::new();
    src.extract(&f, &&ev, &mut out);
    out.iter().map(Value::to_string).collect()
}

#[test]
fn request_fields() {
    assert_eq!(values("ka.verb", None), ["create"]);
    assert_eq!(values("ka.user.name", None), ["alice"]);
    assert_eq!(
        values("ka.user.groups", None),
        ["dev", "system:authenticated"]
    );
    assert_eq!(values("ka.target.resource", None), ["pods"]);
    assert_eq!(values("ka.target.subresource", None), ["exec"]);
    assert_eq!(values("ka.response.code", None), ["201"]);
    assert_eq!(values("ka.auth.decision", None), ["allow"]);
    assert_eq!(values("ka.uri.param", Some("command")), ["sh"]);
    assert_eq!(values("ka.uri.param", Some("container")), ["c1"]);
    assert!(values("ka.target.namespace", None) == ["default"]);
    assert!(values("ka.resp.name", None).is_empty());
}

#[test]
fn pod_fields() {
    assert_eq!(
        values("ka.req.pod.containers.image", None),
        ["docker.io/library/nginx:1.25", "busybox"]
    );
    assert_eq!(
        values("ka.req.pod.containers.image", Some("1")),
        ["busybox"]
    );
    assert_eq!(
        values("ka.req.pod.containers.image.repository", None),
        ["docker.io/library/nginx", "busybox"]
    );
    assert_eq!(
        values("ka.req.container.image", None),
        ["docker.io/library/nginx:1.25"]
    );
    assert_eq!(
        values("ka.req.container.image.repository", None),
        ["docker.io/library/nginx"]
    );
    assert_eq!(
        values("ka.req.pod.containers.privileged", None),
        ["false", "true"]
    );
    assert_eq!(values("ka.req.container.privileged", None), ["true"]);
    assert_eq!(values("ka.req.pod.host_network", None), ["true"]);
    assert!(values("ka.req.pod.host_pid", None).is_empty());
    assert_eq!(values("ka.req.pod.volumes.hostpath", None), ["/proc/1"]);
    assert_eq!(values("ka.req.volume.hostpath", Some("/proc*")), ["true"]);
    assert_eq!(values("ka.req.volume.hostpath", Some("/etc")), ["false"]);
    assert_eq!(
        values("ka.req.pod.volumes.volume_type", None),
        ["hostPath", "emptyDir"]
    );
}

#[test]
fn jevt_fields() {
    assert_eq!(values("jevt.value", Some("/objectRef/name")), ["p"]);
    assert_eq!(values("jevt.value", Some("/a~1~0b")), ["odd"]);
    assert_eq!(
        values("jevt.value", Some("/responseStatus")),
        [r#"{"code":201}"#]
    );
    assert_eq!(values("jevt.time", None), ["2018-10-25T14:09:12.500Z"]);
    assert_eq!(values("jevt.rawtime", None), ["1540476552500000000"]);
    assert!(values("jevt.obj", None)[0].starts_with('{'));
}

#[test]
fn bad_names_and_arguments_are_rejected() {
    let mut src = K8sAuditSource::new();
    assert!(src.resolve("ka.nope", None).is_err());
    assert!(
        src.resolve("jevt.value", None).is_err(),
        "jevt.value needs a pointer"
    );
    assert!(src.resolve("jevt.value", Some("no-slash")).is_err());
    assert!(src.resolve("ka.verb", Some("1")).is_err());
    assert!(src
        .resolve("ka.req.pod.containers.image", Some("x"))
        .is_err());
    assert!(!src.fields().is_empty());
}

#[test]
fn event_lists_and_streams_split_into_events() {
    let list = r#"{"kind":"EventList","items":[{"kind":"Event","verb":"get"},{"kind":"Event","verb":"list"}]}"#;
    assert_eq!(events_from_json(list).unwrap().len(), 2);
    let stream = format!("{POD}\n{POD}\n");
    assert_eq!(events_from_json(&stream).unwrap().len(), 2);
    assert!(events_from_json(r#"{"kind": 0}"#).is_err());
    assert!(events_from_json("{not json").is_err());
}

#[test]
fn a_value_that_is_no_event_is_named_by_its_line() {
    let event = r#"{"kind":"Event","verb":"get"}"#;
    let text = format!("{event}\n\n{event} {event}\n{{\"kind\":\"Pod\"}}\n{event}\n");
    let error = events_from_json(&text).unwrap_err().to_string();
    assert!(error.contains("line 4"), "{error}");
    let text = format!("{{\"kind\":\"Pod\"}}\n{event}\n");
    let error = events_from_json(&text).unwrap_err().to_string();
    assert!(error.contains("line 1"), "{error}");
}

#[test]
fn timestamps() {
    assert_eq!(
        parse_rfc3339_ns("1970-01-01T00:00:01Z"),
        Some(1_000_000_000)
    );
    assert_eq!(
        parse_rfc3339_ns("2018-10-25T16:09:12+02:00"),
        parse_rfc3339_ns("2018-10-25T14:09:12Z")
    );
    assert_eq!(parse_rfc3339_ns("garbage"), None);
    let ev = events_from_json(POD).unwrap().remove(0);
    assert_eq!(event_time_ns(&ev), 1_540_476_552_500_000_000);
}
