//! A running peregrine reports on itself: /healthz, /versions and
//! Prometheus /metrics on the webserver, and the periodic stats alert.

use std::time::{Duration, Instant};

use peregrine_tests::webhook::{audit_event, get, post, start_with, stop, WEBSERVER_ON_LOOPBACK};

const RULES: &str = "- rule: Pod Created\n  desc: d\n  condition: ka.verb = create\n  output: pod created (pod=%ka.target.name)\n  priority: NOTICE\n  source: k8s_audit\n";

#[test]
fn metrics_health_versions_and_the_stats_alert() {
    let dir = std::env::temp_dir().join(format!("peregrine-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let metrics_file = dir.join("metrics.jsonl");
    let _ = std::fs::remove_file(&metrics_file);
    let config = dir.join("peregrine.yaml");
    std::fs::write(&config, "json_include_tags_property: true\n").unwrap();
    let config_arg = config.display().to_string();
    let running = start_with(
        &rules,
        &[
            &["-c", &config_arg][..],
            &WEBSERVER_ON_LOOPBACK,
            &[
                "-o",
                "metrics.enabled=true",
                "-o",
                "metrics.interval=1",
                "-o",
                &format!("metrics.output_file={}", metrics_file.display()),
            ],
        ]
        .concat(),
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
        if body.contains("\nfalcosecurity_peregrine_events_total 4\n") || Instant::now() > deadline
        {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Peregrine's own counters, under Falco's prefix scheme.
    assert!(
        metrics.contains("\nfalcosecurity_peregrine_events_total 4\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nfalcosecurity_peregrine_alerts_total 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "\nfalcosecurity_peregrine_rule_alerts_total{rule=\"Pod Created\",priority=\"Notice\"} 3\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nfalcosecurity_peregrine_k8s_audit_events_total 4\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "\nfalcosecurity_peregrine_output_alerts_total{output=\"stdout\",outcome=\"sent\"}"
        ),
        "{metrics}"
    );
    // Falco's families, with Falco's labels: the audit rule's counter
    // carries its priority number, source and tags.
    assert!(
        metrics.contains("# TYPE falcosecurity_falco_rules_matches_total counter\n"),
        "{metrics}"
    );
    let rule_line = metrics
        .lines()
        .find(|l| l.starts_with("falcosecurity_falco_rules_matches_total{"))
        .unwrap_or_default();
    assert!(
        rule_line.contains("priority=\"5\"")
            && rule_line.contains("rule_name=\"Pod Created\"")
            && rule_line.contains("source=\"k8s_audit\"")
            && rule_line.ends_with("} 3"),
        "{metrics}"
    );
    for family in [
        "\nfalcosecurity_falco_version_info{version=\"",
        "\nfalcosecurity_scap_engine_name_info{engine_name=\"source_plugin\",evt_source=\"k8s_audit\"} 1\n",
        "\nfalcosecurity_falco_memory_rss_bytes ",
        "\nfalcosecurity_falco_cpu_usage_ratio ",
        "\nfalcosecurity_falco_host_open_fds_total ",
        "\nfalcosecurity_evt_hostname_info{hostname=\"",
        "\nfalcosecurity_falco_duration_seconds_total ",
        "\nfalcosecurity_falco_outputs_queue_num_drops_total 0\n",
    ] {
        assert!(metrics.contains(family), "{family} not in {metrics}");
    }

    // The checksums of the files loaded, as coreutils' sha256sum gives
    // them, under Falco's names and labels.
    let sha256sum = |path: &std::path::Path| -> Option<String> {
        let out = std::process::Command::new("sha256sum")
            .arg(path)
            .output()
            .ok()?;
        String::from_utf8(out.stdout)
            .ok()?
            .split_whitespace()
            .next()
            .map(str::to_string)
    };
    let (rules_sha, config_sha) = match (sha256sum(&rules), sha256sum(&config)) {
        (Some(r), Some(c)) => (r, c),
        _ => {
            eprintln!("skipped (partly): no sha256sum to check the checksum metrics against");
            (String::new(), String::new())
        }
    };
    if !rules_sha.is_empty() {
        for expected in [
            format!("\nfalcosecurity_falco_sha256_rules_files_info{{file_name=\"rules.yaml\",sha256=\"{rules_sha}\"}} 1\n"),
            format!("\nfalcosecurity_falco_sha256_config_files_info{{file_name=\"peregrine.yaml\",sha256=\"{config_sha}\"}} 1\n"),
        ] {
            assert!(metrics.contains(&expected), "{expected} not in {metrics}");
        }
    }
    // Off by default (as Falco), and no module rings here anyway.
    assert!(!metrics.contains("_cpu_total"), "{metrics}");

    // At least one stats alert comes within a couple of intervals.
    std::thread::sleep(Duration::from_millis(2500));
    let (stdout, _) = stop(running);
    let stats: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("\"rule\":\"Falco internal: metrics snapshot\""))
        .collect();
    assert!(!stats.is_empty(), "no stats alert in:\n{stdout}");
    // Falco's snapshot: its message and its fields, numbers as numbers.
    let snapshot: serde_json::Value = serde_json::from_str(stats[0]).unwrap();
    assert_eq!(snapshot["output"], "Falco metrics snapshot", "{}", stats[0]);
    assert_eq!(snapshot["priority"], "Informational");
    let fields = &snapshot["output_fields"];
    assert_eq!(fields["falco.rules.Pod_Created"], 3, "{}", stats[0]);
    assert_eq!(fields["falco.rules.matches_total"], 3, "{}", stats[0]);
    assert_eq!(fields["falco.num_evts"], 4, "{}", stats[0]);
    assert_eq!(fields["evt.source"], "k8s_audit", "{}", stats[0]);
    // The same snapshots, one JSON line each, in metrics.output_file.
    let lines = std::fs::read_to_string(&metrics_file).unwrap();
    let first: serde_json::Value =
        serde_json::from_str(lines.lines().next().expect("a snapshot line")).unwrap();
    assert_eq!(first["sample"], 1, "{lines}");
    assert_eq!(
        first["output_fields"]["falco.rules.Pod_Created"], 3,
        "{lines}"
    );
    assert!(fields["falco.memory_rss_mb"].is_f64(), "{}", stats[0]);
    assert!(fields["falco.start_ts"].is_u64(), "{}", stats[0]);
    assert!(fields["falco.version"].is_string(), "{}", stats[0]);
    if !rules_sha.is_empty() {
        assert_eq!(
            fields["falco.sha256_rules_file.rules_yaml"], rules_sha,
            "{}",
            stats[0]
        );
        assert_eq!(
            fields["falco.sha256_config_file.peregrine_yaml"], config_sha,
            "{}",
            stats[0]
        );
        assert_eq!(
            first["output_fields"]["falco.sha256_rules_file.rules_yaml"], rules_sha,
            "{lines}"
        );
    }
}
