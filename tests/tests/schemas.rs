//! `--config-schema` and `--rule-schema` print, as Falco's options do,
//! the JSON Schemas Peregrine generates from its config and rules
//! loaders (their content is checked against Falco's files and the
//! loaders in cli/src/config/schema.rs and engine/src/rules/schema.rs).

use std::process::Command;

fn printed(args: &[&str]) -> serde_json::Value {
    let binary = peregrine_tests::peregrine_binary().unwrap();
    let output = Command::new(binary).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}"))
}

#[test]
fn the_schemas_are_printed_whatever_the_config() {
    let config = printed(&["--config-schema"]);
    assert_eq!(config, peregrine::config::schema::config_schema());
    assert_eq!(config["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(
        config["properties"]["metrics"]["properties"]["kernel_event_counters_per_cpu_enabled"]
            ["type"],
        "boolean"
    );
    let rules = printed(&["--rule-schema"]);
    assert_eq!(rules, peregrine_engine::rules::schema::rule_schema());
    assert_eq!(rules["type"], serde_json::json!(["array", "null"]));

    // As Falco, before the config is read: a broken one does not stop it.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "priority: [\n").unwrap();
    let broken = broken.display().to_string();
    assert_eq!(printed(&["-c", &broken, "--config-schema"]), config);
    assert_eq!(printed(&["-c", &broken, "--rule-schema"]), rules);
}
