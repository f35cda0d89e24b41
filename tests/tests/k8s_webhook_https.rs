//! The audit webhook and the webserver over HTTPS, end to end: peregrine
//! reads one PEM file holding key and certificate (Falco's
//! `ssl_certificate`), a client that trusts that certificate POSTs audit
//! events, and they are evaluated. Plain HTTP on the HTTPS port is refused
//! without hurting the server.

use std::process::Command;
use std::time::Duration;

use peregrine_tests::webhook::{audit_event, start_with, stop, WEBSERVER_ON_LOOPBACK};
use ureq::tls::{PemItem, RootCerts, TlsConfig};

const RULES: &str = r#"
- rule: Pod Created
  desc: a pod was created
  condition: ka.verb = create and ka.target.resource = pods
  output: pod created (pod=%ka.target.name)
  priority: WARNING
  source: k8s_audit
"#;

/// A self-signed certificate for 127.0.0.1 and its key in one file, and
/// the certificate alone (what the client trusts).
fn certificate(dir: &std::path::Path) -> Option<(std::path::PathBuf, Vec<u8>)> {
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=peregrine-test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-keyout", "key.pem", "-out", "cert.pem"])
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success());
    if !made {
        return None;
    }
    let cert = std::fs::read(dir.join("cert.pem")).unwrap();
    let key = std::fs::read(dir.join("key.pem")).unwrap();
    let pem = dir.join("peregrine.pem");
    std::fs::write(&pem, [key, cert.clone()].concat()).unwrap();
    Some((pem, cert))
}

fn trusting(cert: &[u8]) -> ureq::Agent {
    let roots: Vec<_> = ureq::tls::parse_pem(cert)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert.to_owned()),
            _ => None,
        })
        .collect();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(&roots))
                .build(),
        )
        .build()
        .new_agent()
}

#[test]
fn audit_events_posted_over_https_are_evaluated() {
    let dir = std::env::temp_dir().join(format!("peregrine-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let Some((pem, cert)) = certificate(&dir) else {
        eprintln!("skipped: the openssl command is missing or failed");
        return;
    };
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let certificate_option = |key: &str| format!("{key}={}", pem.display());
    let running = start_with(
        &rules,
        &[
            &["-o", &certificate_option("k8s_audit.ssl_certificate")][..],
            &WEBSERVER_ON_LOOPBACK,
            &[
                "-o",
                "webserver.ssl_enabled=true",
                "-o",
                &certificate_option("webserver.ssl_certificate"),
            ],
        ]
        .concat(),
    );
    // The helper reads addresses from the log and assumes plain HTTP.
    let url = running.url.replacen("http://", "https://", 1);
    let web = running
        .web
        .clone()
        .expect("the webserver said where it listens")
        .replacen("http://", "https://", 1);
    let agent = trusting(&cert);

    // Plain HTTP to the HTTPS port: no answer, and the server lives on.
    let plain = ureq::post(&running.url)
        .config()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .send(audit_event(100, "create"));
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    let events = 10;
    for i in 0..events {
        let verb = if i % 2 == 0 { "create" } else { "get" };
        let response = agent.post(&url).send(audit_event(i, verb)).unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }
    let health = agent.get(&format!("{web}/healthz")).call().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let metrics = agent
        .get(&format!("{web}/metrics"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(metrics.contains("peregrine"), "{metrics}");
    // A client that does not trust the certificate gets nothing.
    assert!(ureq::get(&format!("{web}/healthz")).call().is_err());

    let (stdout, _stderr) = stop(running);
    let pods: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let alert: serde_json::Value = serde_json::from_str(l).unwrap();
            alert["output_fields"]["ka.target.name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(pods, ["pod-0", "pod-2", "pod-4", "pod-6", "pod-8"]);
}
