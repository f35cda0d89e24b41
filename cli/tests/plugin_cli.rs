//! The `peregrine` command with a real plugin (tests/plugins/c/ctest.c,
//! built with gcc here): the config's plugins and load_plugins,
//! --list-plugins, --plugin-info, a plugin source's own event loop with
//! rules on its fields, required_plugin_versions, rules of a source nothing
//! provides, and plugins that fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value as Json;

fn scratch() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("peregrine-plugin-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
    .clone()
}

fn c_plugin() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins/c/ctest.c");
            let library = scratch().join("libctest.so");
            match Command::new("gcc")
                .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
                .arg(&library)
                .arg(&source)
                .status()
            {
                Ok(status) if status.success() => Some(library),
                Ok(status) => panic!("gcc failed: {status}"),
                Err(e) => {
                    eprintln!("skipped: no gcc to build the C test plugin ({e})");
                    None
                }
            }
        })
        .clone()
}

/// A config loading ctest with `init_config`, and a rules file.
fn setup(
    name: &str,
    init_config: &str,
    load_plugins: &str,
    rules: &str,
) -> Option<(PathBuf, PathBuf)> {
    let library = c_plugin()?;
    let dir = scratch().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("falco.yaml");
    std::fs::write(
        &config,
        format!(
            "json_output: true\nwebserver:\n  enabled: false\nstdout_output:\n  enabled: true\n\
             {load_plugins}\nplugins:\n  - name: ctest\n    library_path: {}\n    init_config: {init_config}\n    open_params: start\n",
            library.display()
        ),
    )
    .unwrap();
    let rules_path = dir.join("rules.yaml");
    std::fs::write(&rules_path, rules).unwrap();
    Some((config, rules_path))
}

fn peregrine(config: &Path, rules: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peregrine"))
        .arg("-c")
        .arg(config)
        .arg("-r")
        .arg(rules)
        .args(["--disable-source", "syscall", "-M", "20"])
        .args(extra)
        .output()
        .unwrap()
}

fn alerts(output: &Output) -> Vec<Json> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter(|v| v.get("rule").is_some())
        .collect()
}

const RULES: &str = r#"
- required_plugin_versions:
  - name: ctest
    version: 0.1.0
- rule: Even ctest event
  desc: every other event of the C plugin
  condition: ctest.even = true and ctest.words contains "msg" and ctest.times[3] > 5
  output: "even event %ctest.msg (num=%ctest.num echo=%ctest.echo[hi] plugin=%evt.pluginname info=%evt.plugininfo)"
  priority: WARNING
  source: ctest
- rule: Cloudtrail rule
  desc: a source nothing provides here
  condition: ct.name = "x"
  output: "never %ct.name"
  priority: WARNING
  source: aws_cloudtrail
"#;

#[test]
fn a_plugin_source_runs_its_rules_on_its_own_fields() {
    let Some((config, rules)) = setup("source", "{count: 4}", "", RULES) else {
        return;
    };
    let output = peregrine(&config, &rules, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let fired = alerts(&output);
    let outputs: Vec<&str> = fired.iter().filter_map(|a| a["output"].as_str()).collect();
    assert_eq!(fired.len(), 2, "{outputs:?}\n{stderr}");
    assert!(
        outputs[0].contains("even event msg 2 (num=2 echo=hi plugin=ctest info=ctest: msg 2)"),
        "{outputs:?}"
    );
    assert!(outputs[1].contains("even event msg 4"), "{outputs:?}");
    assert_eq!(fired[0]["source"], "ctest");
    // A plugin's integer field is a JSON number, as Falco writes it.
    assert_eq!(fired[0]["output_fields"]["ctest.num"], 2);
    // The rule of a source nothing provides is skipped with a warning.
    assert!(
        stderr.contains("rule 'Cloudtrail rule': Unknown source aws_cloudtrail, skipping"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Loaded plugin 'ctest' version 0.2.0"),
        "{stderr}"
    );
}

#[test]
fn list_plugins_and_plugin_info_describe_the_plugin() {
    let Some((config, rules)) = setup("list", "''", "", RULES) else {
        return;
    };
    let listed = peregrine(&config, &rules, &["--list-plugins"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(text.starts_with("1 Plugins:\nName: ctest\n"), "{text}");
    assert!(
        text.contains("Event Sourcing (ID=999, source='ctest')")
            && text.contains("Field Extraction"),
        "{text}"
    );

    let info = peregrine(&config, &rules, &["--plugin-info", "ctest"]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    assert!(text.contains("Init config schema type: JSON"), "{text}");
    assert!(text.contains("start: count from the start"), "{text}");
    assert!(text.contains("ctest.times (uint64)"), "{text}");
}

#[test]
fn load_plugins_selects_and_names_what_it_cannot_find() {
    let Some((config, rules)) = setup("select", "''", "load_plugins: []", RULES) else {
        return;
    };
    let output = peregrine(&config, &rules, &["--dry-run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // With ctest not loaded its rules' source is unknown, and the rules
    // file's requirement names the missing plugin.
    assert!(!output.status.success());
    assert!(
        stderr.contains("plugin 'ctest' version 0.1.0 is required, but it is not loaded"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Unknown source ctest, skipping"),
        "{stderr}"
    );

    let Some((config, rules)) = setup("unknown", "''", "load_plugins: [nope]", RULES) else {
        return;
    };
    let output = peregrine(&config, &rules, &["--dry-run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("Cannot load plugin 'nope': plugin config not found for given name"),
        "{stderr}"
    );
}

#[test]
fn required_plugin_versions_refuse_an_older_plugin_and_accept_an_alternative() {
    let too_new = "- required_plugin_versions:\n  - name: ctest\n    version: 0.3.0\n";
    let Some((config, rules)) = setup("old", "''", "", too_new) else {
        return;
    };
    let output = peregrine(&config, &rules, &["--dry-run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr
            .contains("'ctest' is loaded at version 0.2.0, not compatible with the required 0.3.0"),
        "{stderr}"
    );

    let alternative = "- required_plugin_versions:\n  - name: other\n    version: 1.0.0\n    alternatives:\n      - name: ctest\n        version: 0.2.0\n";
    let Some((config, rules)) = setup("alternative", "''", "", alternative) else {
        return;
    };
    let output = peregrine(&config, &rules, &["--dry-run"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn failing_plugins_are_reported_by_name_and_do_not_crash() {
    let Some((config, rules)) = setup("init", "'{\"fail_init\":true}'", "", RULES) else {
        return;
    };
    let output = peregrine(&config, &rules, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("plugin 'ctest': init failed: ctest refuses to start"),
        "{stderr}"
    );

    let Some((config, rules)) = setup("next", "{fail_next: true}", "", RULES) else {
        return;
    };
    let output = peregrine(&config, &rules, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("plugin 'ctest': next_batch failed: the ctest stream broke"),
        "{stderr}"
    );

    let Some((config, rules)) = setup("bad", "{bad_batch: true}", "", RULES) else {
        return;
    };
    let output = peregrine(&config, &rules, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("plugin 'ctest' returned malformed data"),
        "{stderr}"
    );

    let Some((config, rules)) = setup("schema", "{count: -1}", "", RULES) else {
        return;
    };
    let output = peregrine(&config, &rules, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/count: -1 is below the minimum 0"),
        "{stderr}"
    );
}

#[test]
fn plugin_events_written_to_a_capture_replay_with_e() {
    let Some((config, rules)) = setup("capture", "{count: 6}", "", RULES) else {
        return;
    };
    let scap = config.with_file_name("ctest.scap");
    let scap_arg = scap.to_string_lossy().into_owned();
    let live = peregrine(&config, &rules, &["--plugin-capture", &scap_arg]);
    let stderr = String::from_utf8_lossy(&live.stderr);
    assert!(live.status.success(), "{stderr}");
    assert!(
        stderr.contains("6 plugin events written to the capture"),
        "{stderr}"
    );
    let live_outputs: Vec<String> = alerts(&live)
        .iter()
        .map(|a| a["output"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(live_outputs.len(), 3);

    // The capture alone, with the plugin loaded but not opened: the same
    // alerts from the PLUGINEVENT_E records.
    let replayed = peregrine(&config, &rules, &["-e", &scap_arg]);
    let stderr = String::from_utf8_lossy(&replayed.stderr);
    assert!(replayed.status.success(), "{stderr}");
    assert!(!stderr.contains("Opened event source"), "{stderr}");
    let replay_outputs: Vec<String> = alerts(&replayed)
        .iter()
        .map(|a| a["output"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(replay_outputs, live_outputs);
}

/// Falco's own k8s audit test config loads the k8saudit and json plugins,
/// and Falco's k8s audit rules require them: with their libraries absent
/// the built-in k8s_audit source stands in and the requirements hold.
#[test]
fn built_in_stand_ins_for_k8saudit_and_json_meet_the_rules_requirements() {
    let dir = scratch().join("stand-in");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("falco.yaml");
    std::fs::write(
        &config,
        "json_output: true\nwebserver:\n  enabled: false\nplugins:\n  - name: k8saudit\n    library_path: libk8saudit-absent.so\n    init_config: \"\"\n    open_params: \"\"\n  - name: json\n    library_path: libjson-absent.so\n    init_config: \"\"\nload_plugins: [k8saudit, json]\n",
    )
    .unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        "- required_plugin_versions:\n  - name: k8saudit\n    version: 0.1.0\n  - name: json\n    version: 0.1.0\n\
         - rule: Any audit event\n  desc: d\n  condition: ka.verb = create\n  output: \"%ka.verb\"\n  priority: INFO\n  source: k8s_audit\n",
    )
    .unwrap();
    let output = peregrine(&config, &rules, &["--dry-run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("plugin 'k8saudit': library"), "{stderr}");
    assert!(stderr.contains("plugin 'json': library"), "{stderr}");
    assert!(!stderr.contains("Unknown source"), "{stderr}");
}

/// tests/plugins/c/csyscall.c, a C extractor on syscall events, built here.
fn c_syscall_plugin() -> Option<PathBuf> {
    c_syscall_variant("libcsyscall.so", &[])
}

/// csyscall.c built with `defines` (its name, an extra field) as `file`.
fn c_syscall_variant(file: &str, defines: &[&str]) -> Option<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins/c/csyscall.c");
    let library = scratch().join(file);
    // Tests build the same library at once: each writes its own file and
    // renames it into place, so none loads a half-written one.
    let building = scratch().join(format!("{file}.{:?}", std::thread::current().id()));
    match Command::new("gcc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror"])
        .args(defines)
        .arg("-o")
        .arg(&building)
        .arg(&source)
        .status()
    {
        Ok(status) if status.success() => {
            std::fs::rename(&building, &library).unwrap();
            Some(library)
        }
        Ok(status) => panic!("gcc failed on {}: {status}", source.display()),
        Err(e) => {
            eprintln!("skipped: no gcc to build the C syscall extractor ({e})");
            None
        }
    }
}

const SYSCALL_RULES: &str = r#"
- rule: Open seen by the plugin
  desc: a plugin field on open events
  condition: evt.type = open and csys.src = syscall and csys.len > 0 and csys.str[1] startswith /tmp/
  output: "open %csys.str[1] type=%csys.type num=%csys.num evtnum=%evt.num"
  priority: WARNING
- rule: Close seen by the plugin
  desc: a plugin field on close events
  condition: evt.type = close and csys.type exists
  output: "close type=%csys.type"
  priority: WARNING
"#;

/// A plugin that names the syscall source extracts on kernel events: it
/// gets each event in the scap layout with its number and the source
/// "syscall", and with event types listed only those events.
#[test]
fn a_plugin_extracts_fields_from_syscall_events() {
    let Some(library) = c_syscall_plugin() else {
        return;
    };
    let capture =
        Path::new("/work/shared/conformance/falco-regression/trace_files/open-multiple-files.scap");
    if !capture.exists() {
        eprintln!("skipped: {} is absent", capture.display());
        return;
    }
    let run = |name: &str, init_config: &str| -> Vec<Json> {
        let dir = scratch().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("falco.yaml");
        std::fs::write(
            &config,
            format!(
                "json_output: true\nwebserver:\n  enabled: false\nstdout_output:\n  enabled: true\n\
                 plugins:\n  - name: csyscall\n    library_path: {}\n    init_config: '{init_config}'\n",
                library.display()
            ),
        )
        .unwrap();
        let rules = dir.join("rules.yaml");
        std::fs::write(&rules, SYSCALL_RULES).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_peregrine"))
            .arg("-c")
            .arg(&config)
            .arg("-r")
            .arg(&rules)
            .arg("-e")
            .arg(capture)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(stderr.contains("Loaded plugin 'csyscall'"), "{stderr}");
        alerts(&output)
    };
    let of_rule = |alerts: &[Json], rule: &str| -> Vec<Json> {
        alerts
            .iter()
            .filter(|a| a["rule"] == rule)
            .cloned()
            .collect()
    };

    let every_type = run("syscall-all", "");
    let opens = of_rule(&every_type, "Open seen by the plugin");
    let closes = of_rule(&every_type, "Close seen by the plugin");
    assert!(opens.len() >= 3, "{every_type:?}");
    assert!(!closes.is_empty(), "{every_type:?}");
    for open in &opens {
        let fields = &open["output_fields"];
        let name = fields["csys.str[1]"].as_str().unwrap();
        assert!(name.starts_with("/tmp/file-"), "{open}");
        // PPME_SYSCALL_OPEN_X; the event number the host passed is the
        // event's own, as evt.num shows it.
        assert_eq!(fields["csys.type"], 3, "{open}");
        assert_eq!(fields["evt.num"], fields["csys.num"], "{open}");
        let num = fields["csys.num"].to_string();
        let output = open["output"].as_str().unwrap();
        assert!(
            output.ends_with(&format!("open {name} type=3 num={num} evtnum={num}")),
            "{output}"
        );
    }
    for close in &closes {
        assert_eq!(close["output_fields"]["csys.type"], 5, "{close}");
    }

    // Limited to PPME_SYSCALL_OPEN_X, the plugin's fields have no value on
    // close events: the open rule fires as before, the close rule never.
    let only_open = run("syscall-only-open", r#"{"only": 3}"#);
    assert_eq!(
        of_rule(&only_open, "Open seen by the plugin").len(),
        opens.len()
    );
    assert!(of_rule(&only_open, "Close seen by the plugin").is_empty());
}

/// Falco's overlap check: a plugin may not define a field its source
/// already has, built in or from an earlier plugin; the plugins whose job
/// Peregrine does itself are let through, their built-in fields winning.
#[test]
fn a_plugin_field_that_overlaps_another_providers_stops_the_start() {
    let capture =
        Path::new("/work/shared/conformance/falco-regression/trace_files/open-multiple-files.scap");
    if !capture.exists() {
        eprintln!("skipped: {} is absent", capture.display());
        return;
    }
    let (Some(csyscall), Some(shadow), Some(copy), Some(container)) = (
        c_syscall_plugin(),
        c_syscall_variant(
            "libshadow.so",
            &[
                "-DCSYSCALL_NAME=\"shadow\"",
                "-DCSYSCALL_EXTRA=\"proc.name\"",
            ],
        ),
        c_syscall_variant("libcopy.so", &["-DCSYSCALL_NAME=\"copy\""]),
        c_syscall_variant(
            "libcontainer.so",
            &[
                "-DCSYSCALL_NAME=\"container\"",
                "-DCSYSCALL_EXTRA=\"container.id\"",
            ],
        ),
    ) else {
        return;
    };
    let run = |name: &str, plugins: &[(&str, &Path)]| -> Output {
        let dir = scratch().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = String::from(
            "json_output: true\nwebserver:\n  enabled: false\nstdout_output:\n  enabled: true\nplugins:\n",
        );
        for (name, library) in plugins {
            config.push_str(&format!(
                "  - name: {name}\n    library_path: {}\n",
                library.display()
            ));
        }
        std::fs::write(dir.join("falco.yaml"), config).unwrap();
        std::fs::write(
            dir.join("rules.yaml"),
            "- rule: Open with container\n  desc: x\n  condition: evt.type = open and evt.dir = <\n  \
             output: \"open cid=%container.id\"\n  priority: WARNING\n",
        )
        .unwrap();
        Command::new(env!("CARGO_BIN_EXE_peregrine"))
            .arg("-c")
            .arg(dir.join("falco.yaml"))
            .arg("-r")
            .arg(dir.join("rules.yaml"))
            .arg("-e")
            .arg(capture)
            .output()
            .unwrap()
    };

    // A built-in syscall field.
    let output = run("overlap-builtin", &[("shadow", &shadow)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "Plugin 'shadow' supports extraction of field 'proc.name' that is overlapping for source 'syscall'"
        ),
        "{stderr}"
    );
    assert!(alerts(&output).is_empty());

    // An earlier plugin's field: the later plugin is the one named.
    let output = run(
        "overlap-plugin",
        &[("csyscall", &csyscall), ("copy", &copy)],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "Plugin 'copy' supports extraction of field 'csys.type' that is overlapping for source 'syscall'"
        ),
        "{stderr}"
    );

    // The container plugin's library, loaded for real: one warning, and
    // container.id is still Peregrine's (the plugin would say from-plugin).
    let output = run("overlap-container", &[("container", &container)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("built-in fields take precedence"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("plugin 'container'"), "{stderr}");
    assert!(warnings[0].contains("'container.id'"), "{stderr}");
    let fired = alerts(&output);
    assert!(!fired.is_empty(), "{stderr}");
    for alert in &fired {
        assert_eq!(alert["output_fields"]["container.id"], "host", "{alert}");
    }
}
