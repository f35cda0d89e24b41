//! The plugin host against a real plugin: tests/plugins/c/ctest.c, a
//! plugin written in C against the plugin C API, compiled with gcc here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use peregrine::sources::plugins::fields::PluginFields;
use peregrine::sources::plugins::{Batch, Plugin, PluginError, PluginEvent};
use peregrine_engine::field::{FieldSource, Value};

/// Builds the C plugin once per test run; None (with the reason printed)
/// when there is no C compiler.
fn c_plugin() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins/c/ctest.c");
            let dir =
                std::env::temp_dir().join(format!("peregrine-plugin-host-{}", std::process::id()));
            std::fs::create_dir_all(&dir).ok()?;
            let library = dir.join("libctest.so");
            let built = Command::new("gcc")
                .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
                .arg(&library)
                .arg(&source)
                .status();
            match built {
                Ok(status) if status.success() => Some(library),
                Ok(status) => panic!("gcc failed on {}: {status}", source.display()),
                Err(e) => {
                    eprintln!("skipped: no gcc to build the C test plugin ({e})");
                    None
                }
            }
        })
        .clone()
}

fn drain(plugin: &mut Plugin) -> Result<Vec<PluginEvent>, PluginError> {
    let mut events = Vec::new();
    for _ in 0..1000 {
        match plugin.next_batch(&mut events)? {
            Batch::Eof => return Ok(events),
            Batch::Events | Batch::Timeout => {}
        }
    }
    panic!("no EOF after 1000 batches");
}

#[test]
fn loads_the_c_plugin_and_reads_its_info() {
    let Some(library) = c_plugin() else { return };
    let plugin = Plugin::load(&library, "").unwrap();
    let info = plugin.info();
    assert_eq!(info.name, "ctest");
    assert_eq!(info.version, "0.2.0");
    assert_eq!(info.required_api_version, "3.0.0");
    assert_eq!((info.id, info.event_source.as_str()), (999, "ctest"));
    assert!(info.capabilities.sourcing && info.capabilities.extraction);
    assert!(!info.capabilities.parsing && !info.capabilities.async_events);
    assert_eq!(info.fields.len(), 6);
    assert!(info
        .fields
        .iter()
        .any(|f| f.name == "ctest.words" && f.is_list));
    assert!(info.init_schema.is_some());
    let params = plugin.list_open_params().unwrap();
    assert_eq!(params[0].value, "start");
}

#[test]
fn sources_events_and_extracts_their_fields() {
    let Some(library) = c_plugin() else { return };
    let mut plugin = Plugin::load(&library, r#"{"count":4}"#).unwrap();
    plugin.open("start").unwrap();
    let events = drain(&mut plugin).unwrap();
    assert_eq!(events.len(), 4);
    // The plugin leaves the id at 0; the host stamps its own.
    assert!(events.iter().all(|e| e.plugin_id() == 999));
    assert_eq!(events[1].payload(), b"msg 2");
    assert_eq!(events[1].number, 2);
    assert_eq!(events[1].ts(), 1_700_000_000_000_000_002);
    assert_eq!(
        plugin.event_to_string(&events[1]).as_deref(),
        Some("ctest: msg 2")
    );
    assert_eq!(plugin.progress().map(|(pct, _)| pct), Some(100.0));

    let shared = Arc::new(Mutex::new(plugin));
    let mut fields = PluginFields::new("ctest", Some(shared.clone()), &[shared]);
    assert_eq!(fields.name(), "ctest");
    let mut value_of = |name: &str, arg: Option<&str>, event: &PluginEvent| {
        let resolved = fields.resolve(name, arg).unwrap();
        let mut out = Vec::new();
        fields.extract(&resolved, event, &mut out);
        out.into_iter().map(|v| v.to_string()).collect::<Vec<_>>()
    };
    let second = &events[1];
    assert_eq!(value_of("ctest.num", None, second), ["2"]);
    assert_eq!(value_of("ctest.msg", None, second), ["msg 2"]);
    assert_eq!(value_of("ctest.even", None, second), ["true"]);
    assert_eq!(value_of("ctest.words", None, second), ["msg", "2"]);
    assert_eq!(value_of("ctest.times", Some("7"), second), ["14"]);
    assert_eq!(value_of("ctest.echo", Some("hello"), second), ["hello"]);
    assert_eq!(value_of("evt.num", None, second), ["2"]);
    assert_eq!(value_of("evt.pluginname", None, second), ["ctest"]);
    assert_eq!(value_of("evt.plugininfo", None, second), ["ctest: msg 2"]);
    assert_eq!(value_of("evt.source", None, second), ["ctest"]);

    // Arguments as the fields declare them.
    assert!(
        fields.resolve("ctest.times", None).is_err(),
        "the index is required"
    );
    assert!(
        fields.resolve("ctest.times", Some("x")).is_err(),
        "the index is numeric"
    );
    assert!(
        fields.resolve("ctest.msg", Some("1")).is_err(),
        "no argument taken"
    );
    assert!(fields.resolve("ctest.nope", None).is_err());
    let listed: Vec<&str> = fields.fields().iter().map(|f| f.name).collect();
    assert!(listed.contains(&"ctest.echo") && listed.contains(&"evt.plugininfo"));
    let _ = Value::Bool(true);
}

#[test]
fn init_config_is_checked_against_the_schema_and_init_failures_name_the_plugin() {
    let Some(library) = c_plugin() else { return };
    let error = Plugin::load(&library, r#"{"count":"three"}"#)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("'ctest'") && error.contains("/count"),
        "{error}"
    );
    let error = Plugin::load(&library, r#"{"colour":1}"#)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("'colour' is not allowed"), "{error}");
    let error = Plugin::load(&library, "not json")
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("not valid JSON"), "{error}");
    let error = Plugin::load(&library, r#"{"fail_init":true}"#)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        error,
        "plugin 'ctest': init failed: ctest refuses to start: fail_init is set"
    );
}

#[test]
fn plugin_errors_and_malformed_batches_are_reported_not_fatal() {
    let Some(library) = c_plugin() else { return };
    let mut plugin = Plugin::load(&library, "").unwrap();
    let refused = plugin.open("refuse").unwrap_err().to_string();
    assert_eq!(refused, "plugin 'ctest': open failed: cannot open 'refuse'");

    let mut bad = Plugin::load(&library, r#"{"bad_batch":true}"#).unwrap();
    bad.open("").unwrap();
    let error = drain(&mut bad).unwrap_err().to_string();
    assert!(
        error.starts_with("plugin 'ctest' returned malformed data:"),
        "{error}"
    );

    let mut broken = Plugin::load(&library, r#"{"fail_next":true}"#).unwrap();
    broken.open("").unwrap();
    let error = drain(&mut broken).unwrap_err().to_string();
    assert_eq!(
        error,
        "plugin 'ctest': next_batch failed: the ctest stream broke"
    );

    // An extraction error leaves the field without a value and is counted.
    let mut failing = Plugin::load(&library, r#"{"fail_extract":true}"#).unwrap();
    failing.open("").unwrap();
    let events = drain(&mut failing).unwrap();
    let shared = Arc::new(Mutex::new(failing));
    let mut fields = PluginFields::new("ctest", Some(shared.clone()), &[shared]);
    let resolved = fields.resolve("ctest.msg", None).unwrap();
    let mut out = Vec::new();
    fields.extract(&resolved, &events[0], &mut out);
    assert!(out.is_empty());
    assert_eq!(fields.extraction_errors(), 1);
}

#[test]
fn libraries_that_are_no_plugin_or_need_another_api_are_refused() {
    let Some(library) = c_plugin() else { return };
    let missing = Plugin::load(Path::new("/nonexistent/libnope.so"), "")
        .err()
        .unwrap();
    assert!(
        missing.to_string().contains("/nonexistent/libnope.so"),
        "{missing}"
    );

    let dir = library.parent().unwrap();
    let source = dir.join("future.c");
    std::fs::write(
        &source,
        "const char *plugin_get_required_api_version(void) { return \"4.0.0\"; }\n",
    )
    .unwrap();
    let future = dir.join("libfuture.so");
    let status = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&future)
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success());
    let error = Plugin::load(&future, "").err().unwrap().to_string();
    assert!(error.contains("requires API version 4.0.0"), "{error}");
    assert!(error.contains("libfuture.so"), "{error}");

    // The right API but nothing else.
    std::fs::write(
        &source,
        "const char *plugin_get_required_api_version(void) { return \"3.0.0\"; }\n",
    )
    .unwrap();
    let bare = dir.join("libbare.so");
    let status = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&bare)
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success());
    let error = Plugin::load(&bare, "").err().unwrap().to_string();
    assert!(
        error.contains("symbol 'plugin_get_version' is missing"),
        "{error}"
    );
}
