//! The gRPC output of the `peregrine` binary, read by a tonic client
//! generated from cli/proto/: `sub` and `get` while audit events arrive
//! on the webhook, and `get` during a capture replay, every field checked
//! against the JSON alerts peregrine prints on stdout; and `sub` over TCP
//! with mutual TLS, where only a client certificate of the configured CA
//! gets in.

use std::process::Command;
use std::time::Duration;

use peregrine_tests::grpc::{self, Collector, Method, Request, Response};
use peregrine_tests::pki::make_pki;
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
        // JSON types numbers and booleans; gRPC's map holds their text.
        match value {
            serde_json::Value::String(value) => assert_eq!(got, value, "field {name}"),
            serde_json::Value::Null => assert_eq!(got, "<NA>", "field {name}"),
            other => assert_eq!(got, &other.to_string(), "field {name}"),
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
    // The open's exit: one event per syscall, as current Falco evaluates.
    assert_eq!((first.seconds, first.nanos), (1_470_327_477, 881_785_348));
}

/// A client of the TCP server: trusts the test CA, and shows `identity`
/// (certificate and key PEM) when given one.
async fn connect_tls(
    address: &str,
    ca: &str,
    identity: Option<(&str, &str)>,
) -> Result<grpc::ServiceClient<tonic::transport::Channel>, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Endpoint::from_shared(format!("https://{address}"))
        .map_err(|e| e.to_string())?
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    Ok(grpc::ServiceClient::new(channel))
}

/// Whether a client is turned away: at the handshake, or at its first call
/// (TLS 1.3 servers check the client's certificate after the client
/// already counts the connection as made).
async fn refused(address: &str, ca: &str, identity: Option<(&str, &str)>) -> bool {
    match connect_tls(address, ca, identity).await {
        Err(_) => true,
        Ok(mut client) => grpc::get(&mut client).await.is_err(),
    }
}

#[test]
fn sub_over_mutual_tls_receives_alerts_and_strangers_are_refused() {
    let dir = scratch("mtls");
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let pki = make_pki();
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    let (key, chain, roots) = (
        write("server.key", &pki.server_key),
        write("server.crt", &pki.server_cert),
        write("ca.crt", &pki.ca),
    );
    let option = |key: &str, value: &str| format!("{key}={value}");
    let running = start_with(
        &rules,
        &[
            "-o",
            "grpc.enabled=true",
            "-o",
            "grpc.bind_address=127.0.0.1:0",
            "-o",
            &option("grpc.private_key", &key),
            "-o",
            &option("grpc.cert_chain", &chain),
            "-o",
            &option("grpc.root_certs", &roots),
            "-o",
            "grpc_output.enabled=true",
        ],
    );
    let address = running
        .startup
        .iter()
        .find_map(|l| l.split("gRPC server listening on ").nth(1))
        .map(|a| a.trim().to_string())
        .unwrap_or_else(|| panic!("no gRPC address in {:#?}", running.startup));
    let runtime = grpc::runtime();

    // Let in: a certificate of the CA (the check below can say no).
    let identity = Some((pki.client_cert.as_str(), pki.client_key.as_str()));
    assert!(!runtime.block_on(refused(&address, &pki.ca, identity)));
    // Turned away: no certificate, and a certificate of another CA.
    assert!(
        runtime.block_on(refused(&address, &pki.ca, None)),
        "a client without a certificate is refused"
    );
    assert!(
        runtime.block_on(refused(
            &address,
            &pki.ca,
            Some((&pki.stranger_cert, &pki.stranger_key))
        )),
        "a client whose certificate the CA did not sign is refused"
    );

    let mut client = runtime
        .block_on(connect_tls(&address, &pki.ca, identity))
        .unwrap();
    let mut subscription = runtime.block_on(async {
        client
            .sub(tokio_stream::iter(vec![Request {}]))
            .await
            .expect("a client with a certificate of the CA subscribes")
            .into_inner()
    });
    assert_eq!(post(&running.url, &audit_event(7, "create")), 200);
    let received = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), subscription.message())
            .await
            .expect("sub delivers the alert over TLS")
            .unwrap()
            .expect("the stream stays open")
    });
    let (stdout, _stderr) = stop(running);
    let printed = json_alerts(&stdout);
    assert_eq!(printed.len(), 1, "{stdout}");
    assert_same_alert(&received, &printed[0]);
    assert_eq!(received.output_fields["ka.target.name"], "pod-7");
}
