//! The gRPC output of the `peregrine` binary, read by a tonic client
//! generated from cli/proto/: `sub` and `get` while audit events arrive
//! on the webhook, and `get` during a capture replay, every field checked
//! against the JSON alerts peregrine prints on stdout.

use std::process::Command;
use std::time::Duration;

use peregrine_tests::grpc::{self, Collector, Method, Request, Response};
use peregrine_tests::webhook::{audit_event, post, start_with, stop};
use serde_json::Value as Json;

const RULES: &str = r#"
- rule: Pod Created
  desc: a pod was created
  condition: ka.verb = create and ka.target.resource = pods
  output: pod created (user=%ka.user.name pod=%ka.target.name)
  priority: WARNING
  source: k8s_audit
  tags: [k8s, test]
"#;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("peregrine-grpc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The JSON alerts on stdout, in order.
fn json_alerts(stdout: &str) -> Vec<Json> {
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A gRPC response says what the JSON alert says.
fn assert_same_alert(response: &Response, json: &Json) {
    assert_eq!(response.rule, json["rule"].as_str().unwrap());
    assert_eq!(response.hostname, json["hostname"].as_str().unwrap());
    assert_eq!(response.source_name, json["source"].as_str().unwrap());
    let priority = json["priority"].as_str().unwrap().to_uppercase();
    let text = grpc::text_format(response);
    assert!(
        text.lines().any(|l| l == format!("priority: {priority}")),
        "{text}"
    );
    let tags: Vec<&str> = json["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(response.tags, tags);
    // JSON's time is RFC 3339 in UTC with nanoseconds.
    let time = response.time.unwrap();
    let expected = json["time"].as_str().unwrap();
    let nanos = format!(".{:09}Z", time.nanos);
    assert!(expected.ends_with(&nanos), "{expected} vs {time:?}");
    for (name, value) in json["output_fields"].as_object().unwrap() {
        let got = &response.output_fields[name];
        if name == "evt.time" {
            // JSON types it (nanoseconds); gRPC's map holds the line's time text.
            assert_eq!(
                value.as_u64(),
                Some(time.seconds as u64 * 1_000_000_000 + time.nanos as u64)
            );
            assert!(response.output.starts_with(&format!("{got}: ")), "{got}");
            continue;
        }
        match value.as_str() {
            Some(value) => assert_eq!(got, value, "field {name}"),
            None => assert_eq!(got, "<NA>", "field {name}"),
        }
    }
    // Both carry Falco's whole line: time, priority, output.
    assert_eq!(response.output, json["output"].as_str().unwrap());
    assert!(response
        .output
        .contains(&format!(": {} ", json["priority"].as_str().unwrap())));
}

#[test]
fn sub_and_get_receive_the_webhook_alerts() {
    let dir = scratch("webhook");
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let socket = dir.join("run/peregrine.sock");
    let bind = format!("grpc.bind_address=unix://{}", socket.display());
    let running = start_with(
        &rules,
        &[
            "-o",
            "grpc.enabled=true",
            "-o",
            &bind,
            "-o",
            "grpc_output.enabled=true",
        ],
    );
    // The server is up before the webhook says it listens.
    assert!(socket.exists(), "no socket at {}", socket.display());
    let runtime = grpc::runtime();
    let mut client = runtime.block_on(grpc::connect_unix(&socket)).unwrap();
    let mut subscription = runtime.block_on(async {
        client
            .sub(tokio_stream::iter(vec![Request {}]))
            .await
            .unwrap()
            .into_inner()
    });

    let events = 6;
    for i in 0..events {
        // Odd events are `get`s, which the rule ignores.
        let verb = if i % 2 == 0 { "create" } else { "get" };
        assert_eq!(post(&running.url, &audit_event(i, verb)), 200);
    }
    let expected_alerts = events.div_ceil(2);
    let live: Vec<Response> = runtime.block_on(async {
        let mut live = Vec::new();
        while live.len() < expected_alerts {
            let message = tokio::time::timeout(Duration::from_secs(20), subscription.message())
                .await
                .expect("sub delivers the alerts as they happen")
                .unwrap()
                .expect("the stream stays open");
            live.push(message);
        }
        live
    });
    let got = runtime.block_on(grpc::get(&mut client)).unwrap();
    assert_eq!(got, live, "get returns what sub saw, queued since startup");
    assert!(runtime.block_on(grpc::get(&mut client)).unwrap().is_empty());

    let (stdout, _stderr) = stop(running);
    // Stopping ends the subscription.
    let end = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), subscription.message()).await
    });
    assert!(matches!(end, Ok(Ok(None)) | Ok(Err(_))), "{end:?}");
    assert!(!socket.exists(), "the socket is removed at exit");

    let printed = json_alerts(&stdout);
    assert_eq!(printed.len(), expected_alerts);
    for (response, json) in live.iter().zip(&printed) {
        assert_same_alert(response, json);
        assert_eq!(response.source, 1, "k8s_audit on the wire");
    }
    let pods: Vec<&str> = live
        .iter()
        .map(|r| r.output_fields["ka.target.name"].as_str())
        .collect();
    assert_eq!(pods, ["pod-0", "pod-2", "pod-4"]);
}

#[test]
fn get_receives_the_alerts_of_a_replay() {
    let Some(kit) = peregrine_tests::conformance_kit() else {
        eprintln!("skipped: ../shared/conformance is absent (no capture to replay)");
        return;
    };
    let regression = kit.join("falco-regression");
    let dir = scratch("replay");
    let socket = dir.join("peregrine.sock");
    let binary = peregrine_tests::peregrine_binary().unwrap();
    let collector = Collector::start(socket.clone(), Method::Get);
    let output = Command::new(binary)
        .args(["-r"])
        .arg(regression.join("rules/single_rule_with_tags.yaml"))
        .args(["-e"])
        .arg(regression.join("trace_files/cat_write.scap"))
        .args(["-o", "json_output=true", "-o", "grpc.enabled=true"])
        .args([
            "-o",
            &format!("grpc.bind_address=unix://{}", socket.display()),
        ])
        .args(["-o", "grpc_output.enabled=true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let collected = collector.finish().unwrap();
    let printed = json_alerts(&String::from_utf8_lossy(&output.stdout));
    assert!(!printed.is_empty());
    assert_eq!(collected.len(), printed.len(), "every alert, once");
    for (response, json) in collected.iter().zip(&printed) {
        assert_same_alert(response, json);
        assert_eq!(response.source, 0, "syscall on the wire");
        assert_eq!(response.output_fields["proc.cmdline"], "cat /dev/null");
        assert!(response.output_fields.contains_key("evt.time"));
    }
    let first = collected[0].time.unwrap();
    assert_eq!((first.seconds, first.nanos), (1_470_327_477, 881_781_397));
}
