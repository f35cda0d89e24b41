//! A running peregrine reports on itself: /healthz, /versions and
//! Prometheus /metrics on the webserver, and the periodic stats alert.

use std::time::{Duration, Instant};

use peregrine_tests::webhook::{audit_event, get, post, start_with, stop};

const RULES: &str = "- rule: Pod Created\n  desc: d\n  condition: ka.verb = create\n  output: pod created (pod=%ka.target.name)\n  priority: NOTICE\n  source: k8s_audit\n";

#[test]
fn metrics_health_versions_and_the_stats_alert() {
    let dir = std::env::temp_dir().join(format!("peregrine-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let running = start_with(
        &rules,
        &[
            "-o",
            "webserver.enabled=true",
            "-o",
            "webserver.listen_address=127.0.0.1",
            "-o",
            "webserver.listen_port=0",
            "-o",
            "metrics.enabled=true",
            "-o",
            "metrics.interval=1",
        ],
    );
    let web = running
        .web
        .clone()
        .expect("the webserver said where it listens");
    for i in 0..3 {
        assert_eq!(post(&running.url, &audit_event(i, "create")), 200);
    }
    assert_eq!(post(&running.url, &audit_event(9, "get")), 200);

    assert_eq!(
        get(&format!("{web}/healthz")),
        (200, "{\"status\": \"ok\"}".to_string())
    );
    let (status, versions) = get(&format!("{web}/versions"));
    assert_eq!(status, 200);
    assert!(versions.contains("\"peregrine_version\""), "{versions}");

    // The audit thread may still be evaluating: poll until it is done.
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let (status, body) = get(&format!("{web}/metrics"));
        assert_eq!(status, 200);
        if body.contains("peregrine_events_total 4\n") || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(metrics.contains("peregrine_events_total 4\n"), "{metrics}");
    assert!(metrics.contains("peregrine_alerts_total 3\n"), "{metrics}");
    assert!(
        metrics
            .contains("peregrine_rule_alerts_total{rule=\"Pod Created\",priority=\"Notice\"} 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("peregrine_k8s_audit_events_total 4\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("peregrine_output_alerts_total{output=\"stdout\",outcome=\"sent\"}"),
        "{metrics}"
    );

    // At least one stats alert comes within a couple of intervals.
    std::thread::sleep(Duration::from_millis(2500));
    let (stdout, _) = stop(running);
    let stats: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("\"rule\":\"Falco internal: metrics snapshot\""))
        .collect();
    assert!(!stats.is_empty(), "no stats alert in:\n{stdout}");
    assert!(
        stats[0].contains("\"peregrine_events_total\""),
        "{}",
        stats[0]
    );
}
