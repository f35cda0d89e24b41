//! The `peregrine` binary hosting plugins written against Falco's Rust SDK
//! (`falco_plugin` from crates.io; tests/plugins/rust, built here as the
//! cdylibs Falco loads): a source with its own fields, an extractor on
//! syscall events, a parser keeping state in a table that another plugin
//! reads through the host, a plugin reading and extending the host's
//! thread table, a capture listener with routines, and an async plugin
//! pushing events into a plugin source's stream.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use peregrine_tests::{conformance_kit, peregrine_binary, peregrine_with_ptrace, rust_sdk_plugins};
use serde_json::Value as Json;

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("peregrine-rust-sdk-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs peregrine with a config loading `plugins` (name, library, init
/// config as YAML flow text) and `rules`, plus `extra` arguments.
fn run(name: &str, plugins: &[(&str, &Path, &str)], rules: &str, extra: &[&str]) -> Output {
    let dir = scratch(name);
    let mut config = String::from(
        "json_output: true\nwebserver:\n  enabled: false\nstdout_output:\n  enabled: true\nplugins:\n",
    );
    for (name, library, init_config) in plugins {
        config.push_str(&format!(
            "  - name: {name}\n    library_path: {}\n    init_config: {init_config}\n",
            library.display()
        ));
    }
    std::fs::write(dir.join("falco.yaml"), config).unwrap();
    std::fs::write(dir.join("rules.yaml"), rules).unwrap();
    Command::new(peregrine_binary().unwrap())
        .arg("-c")
        .arg(dir.join("falco.yaml"))
        .arg("-r")
        .arg(dir.join("rules.yaml"))
        .args(extra)
        .output()
        .unwrap()
}

fn alerts(output: &Output, rule: &str) -> Vec<Json> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter(|v| v["rule"] == rule)
        .collect()
}

fn field<'a>(alert: &'a Json, name: &str) -> &'a Json {
    &alert["output_fields"][name]
}

fn text(alert: &Json, name: &str) -> String {
    match field(alert, name) {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn plugins(names: &[&str]) -> Vec<PathBuf> {
    rust_sdk_plugins(names).unwrap_or_else(|e| panic!("{e}"))
}

const SOURCE_RULES: &str = r#"
- rule: Odd rsource event
  desc: odd events whose word is not beta
  condition: rsource.odd = true and rsource.word != beta and rsource.char[1] in (l, a)
  output: "n=%rsource.n word=%rsource.word second=%rsource.char[1] by=%evt.pluginname info=%evt.plugininfo at=%evt.time.s %evt.datetime.s raw=%evt.rawtime.s/%evt.rawtime.ns rel=%evt.reltime host=%evt.hostname"
  priority: WARNING
  source: rsource
"#;

/// Rules on an SDK source plugin's events load, fire, and print the
/// plugin's fields (one with an index argument), its name and its own
/// rendering of the event.
#[test]
fn a_source_plugin_fires_rules_on_its_own_fields() {
    let [rsource] = &plugins(&["rsource"])[..] else {
        unreachable!()
    };
    let output = run(
        "source",
        &[("rsource", rsource, "{count: 7}")],
        SOURCE_RULES,
        &["--disable-source", "syscall"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Loaded plugin 'rsource' version 0.2.0"),
        "{stderr}"
    );
    let fired = alerts(&output, "Odd rsource event");
    // 1 alpha, 3 gamma, 5 beta (left out), 7 alpha.
    let seen: Vec<(String, String, String)> = fired
        .iter()
        .map(|a| {
            (
                text(a, "rsource.n"),
                text(a, "rsource.word"),
                text(a, "rsource.char[1]"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("1".into(), "alpha".into(), "l".into()),
            ("3".into(), "gamma".into(), "a".into()),
            ("7".into(), "alpha".into(), "l".into()),
        ],
        "{stderr}"
    );
    for alert in &fired {
        let n = text(alert, "rsource.n");
        let word = text(alert, "rsource.word");
        assert_eq!(alert["source"], "rsource");
        // Typed as Falco types a plugin's fields in JSON.
        assert!(field(alert, "rsource.n").is_u64(), "{alert}");
        assert!(field(alert, "rsource.word").is_string(), "{alert}");
        assert_eq!(text(alert, "evt.pluginname"), "rsource");
        // libsinsp's generic event fields, which every source has.
        let output = alert["output"].as_str().unwrap();
        let at = output.split(" at=").nth(1).unwrap();
        let (clock, rest) = at.split_once(' ').unwrap();
        assert_eq!(clock.len(), 8, "{output}");
        let (date, rest) = rest.split_once(' ').unwrap();
        assert_eq!(date.len(), 10, "{output}");
        assert!(rest.starts_with(clock), "{output}");
        let raw = rest
            .split(" raw=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        let (secs, nanos) = raw.split_once('/').unwrap();
        let ts = secs.parse::<u64>().unwrap() * 1_000_000_000 + nanos.parse::<u64>().unwrap();
        assert_eq!(field(alert, "evt.rawtime.s"), ts / 1_000_000_000, "{alert}");
        let reltime = field(alert, "evt.reltime").as_u64().unwrap();
        // The stream's first event (n=1) is where relative time starts.
        assert_eq!(reltime == 0, n == "1", "{alert}");
        assert!(!text(alert, "evt.hostname").is_empty(), "{alert}");
        assert_eq!(
            text(alert, "evt.plugininfo"),
            format!("rsource #{n} says {word}")
        );
    }
}

const PARSER_RULES: &str = r#"
- rule: Alpha again
  desc: an alpha event after the first
  condition: rsource.word = alpha and rparse.count >= 2
  output: "n=%rsource.n count=%rparse.count words=%rparse.words"
  priority: WARNING
  source: rsource
"#;

/// The parser sees each event before the rules do and keeps a count per
/// word in its SDK table; its field reads the count back, and another
/// plugin reads the same table through the host once it is registered.
#[test]
fn a_parser_keeps_a_count_per_word_in_a_table() {
    let [rsource, rparse] = &plugins(&["rsource", "rparse"])[..] else {
        unreachable!()
    };
    let output = run(
        "parser",
        &[
            ("rsource", rsource, "{count: 10}"),
            ("rparse", rparse, "{}"),
        ],
        PARSER_RULES,
        &["--disable-source", "syscall"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let fired = alerts(&output, "Alpha again");
    let seen: Vec<(String, String, String)> = fired
        .iter()
        .map(|a| {
            (
                text(a, "rsource.n"),
                text(a, "rparse.count"),
                text(a, "rparse.words"),
            )
        })
        .collect();
    // alpha is events 1, 4, 7, 10; by event 4 all three words were seen.
    assert_eq!(
        seen,
        [
            ("4".into(), "2".into(), "3".into()),
            ("7".into(), "3".into(), "3".into()),
            ("10".into(), "4".into(), "3".into()),
        ],
        "{stderr}"
    );

    // Registered with the host (add_table), the table is another
    // plugin's to read: rcount imports it by name at init and reads the
    // word's entry and its count field through the host's table API.
    let [rcount] = &plugins(&["rcount"])[..] else {
        unreachable!()
    };
    let output = run(
        "parser-export",
        &[
            ("rsource", rsource, "{count: 10}"),
            ("rparse", rparse, "{export: true}"),
            ("rcount", rcount, "''"),
        ],
        SHARED_RULES,
        &["--disable-source", "syscall"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("failed"), "{stderr}");
    let fired = alerts(&output, "Read through the host");
    assert_eq!(fired.len(), 10, "{stderr}");
    for alert in &fired {
        assert_eq!(
            text(alert, "rcount.count"),
            text(alert, "rparse.count"),
            "{alert}"
        );
    }
    assert_eq!(text(&fired[9], "rcount.count"), "4");

    // A table nobody added: the reader's init fails with the host's word.
    let output = run(
        "parser-no-table",
        &[
            ("rsource", rsource, "{count: 10}"),
            ("rparse", rparse, "{}"),
            ("rcount", rcount, "''"),
        ],
        PARSER_RULES,
        &["--disable-source", "syscall"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("plugin 'rcount': init failed")
            && stderr.contains("no state table named 'rparse_word_counts'"),
        "{stderr}"
    );
}

const SHARED_RULES: &str = r#"
- rule: Read through the host
  desc: rparse's table read by rcount
  condition: rcount.count >= 1
  output: "n=%rsource.n own=%rparse.count shared=%rcount.count"
  priority: WARNING
  source: rsource
"#;

const SYSCALL_RULES: &str = r#"
- rule: Connect seen by the SDK plugin
  desc: a Rust SDK plugin's fields on connect events
  condition: evt.type = connect and rsys.source = syscall and rsys.nparams > 0
  output: "type=%rsys.type tid=%rsys.tid dir=%evt.dir thread=%thread.tid"
  priority: WARNING
- rule: Connect
  desc: the same events without the plugin
  condition: evt.type = connect
  output: "connect"
  priority: WARNING
"#;

/// An SDK extractor naming the syscall source gets each syscall event the
/// rules evaluate, in the scap layout: its header fields agree with
/// Peregrine's own on every event.
#[test]
fn an_extractor_on_syscall_events_reads_the_events_rules_see() {
    let Some(kit) = conformance_kit() else {
        eprintln!("skipped: ../shared/conformance is absent");
        return;
    };
    let capture = kit.join("captures/curl_google.scap");
    let [rsyscall] = &plugins(&["rsyscall"])[..] else {
        unreachable!()
    };
    let output = run(
        "syscall",
        &[("rsyscall", rsyscall, "''")],
        SYSCALL_RULES,
        // Both rules see every event.
        &["-e", capture.to_str().unwrap(), "-o", "rule_matching=all"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let with_plugin = alerts(&output, "Connect seen by the SDK plugin");
    let plain = alerts(&output, "Connect");
    assert!(!with_plugin.is_empty(), "{stderr}");
    assert_eq!(with_plugin.len(), plain.len(), "{stderr}");
    for alert in &with_plugin {
        // PPME_SOCKET_CONNECT_E / _X.
        let expected = if alert["output_fields"]["evt.dir"] == ">" {
            "22"
        } else {
            "23"
        };
        assert_eq!(text(alert, "rsys.type"), expected, "{alert}");
        assert_eq!(
            text(alert, "rsys.tid"),
            text(alert, "thread.tid"),
            "{alert}"
        );
    }
}

const THREAD_RULES: &str = r#"
- rule: Thread table read by the SDK plugin
  desc: the host's thread table, read by a plugin, against Peregrine's own fields
  condition: evt.type in (connect, socket, close) and proc.name = curl
  output: "comm=%rthreads.comm pid=%rthreads.pid cwd=%rthreads.cwd arg0=%rthreads.arg0 seen=%rthreads.seen name=%proc.name ppid=%proc.pid pcwd=%proc.cwd args=%proc.args tid=%thread.tid num=%evt.num"
  priority: WARNING
- rule: Fds read by the SDK plugin
  desc: the thread's file_descriptors subtable against Peregrine's fd fields
  condition: evt.type = connect and evt.dir = < and proc.name = curl and fd.num >= 0 and (evt.rawres >= 0 or evt.rawres = -115)
  output: "fd=%fd.num name=%fd.name names=%rthreads.fd_names open=%proc.fdopencount"
  priority: WARNING
- rule: Thread counted by the SDK plugin
  desc: a field the plugin added to the thread table and writes as it parses
  condition: rthreads.seen > 3
  output: "seen=%rthreads.seen"
  priority: WARNING
"#;

/// A plugin that imports the host's `threads` table (as Falco's container
/// plugin does) reads the static fields and the `args` subtable of the
/// event's thread, and what its parser wrote into a field it added: the
/// values agree with Peregrine's own `proc.*` on every event, and the
/// count it keeps per thread grows event by event.
#[test]
fn a_plugin_reads_and_extends_the_thread_table() {
    let Some(kit) = conformance_kit() else {
        eprintln!("skipped: ../shared/conformance is absent");
        return;
    };
    let capture = kit.join("captures/curl_google.scap");
    let [rthreads] = &plugins(&["rthreads"])[..] else {
        unreachable!()
    };
    let output = run(
        "threads",
        &[("rthreads", rthreads, "''")],
        THREAD_RULES,
        &["-e", capture.to_str().unwrap(), "-o", "rule_matching=all"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let read = alerts(&output, "Thread table read by the SDK plugin");
    assert!(read.len() >= 3, "{} alerts\n{stderr}", read.len());
    let mut last_seen: std::collections::HashMap<String, u64> = Default::default();
    for alert in &read {
        assert_eq!(text(alert, "rthreads.comm"), "curl", "{alert}");
        assert_eq!(
            text(alert, "rthreads.pid"),
            text(alert, "proc.pid"),
            "{alert}"
        );
        assert_eq!(
            text(alert, "rthreads.cwd"),
            text(alert, "proc.cwd"),
            "{alert}"
        );
        let args = text(alert, "proc.args");
        let first = args.split(' ').next().unwrap_or_default();
        assert!(!first.is_empty(), "{alert}");
        assert_eq!(text(alert, "rthreads.arg0"), first, "{alert}");
        let seen: u64 = text(alert, "rthreads.seen").parse().unwrap();
        assert!(seen >= 1, "{alert}");
        let tid = text(alert, "thread.tid");
        if let Some(before) = last_seen.insert(tid, seen) {
            assert!(seen > before, "{alert}");
        }
    }
    // The fd subtable, iterated and looked up by key, holds what
    // Peregrine's own fd fields show (a failed connect keeps no name, as
    // in libsinsp: only those that succeed or are in progress).
    let fds = alerts(&output, "Fds read by the SDK plugin");
    assert!(!fds.is_empty(), "{stderr}");
    for alert in &fds {
        let names = field(alert, "rthreads.fd_names").as_array().unwrap();
        let name = text(alert, "fd.name");
        assert!(
            names.iter().any(|n| n.as_str() == Some(name.as_str())),
            "{alert}"
        );
        assert_eq!(
            names.len().to_string(),
            text(alert, "proc.fdopencount"),
            "{alert}"
        );
    }
    // The added field is a filter field like any other.
    assert!(
        !alerts(&output, "Thread counted by the SDK plugin").is_empty(),
        "{stderr}"
    );
}

const LISTEN_RULES: &str = r#"
- rule: Connect after capture open
  desc: the capture was opened once before the first event
  condition: evt.type = connect and rlisten.opened = 1
  output: "opened=%rlisten.opened"
  priority: WARNING
"#;

/// A capture listening plugin is told the capture opens before the first
/// event and closes after the last; the routines it subscribes run in the
/// background: one that ends itself is called exactly until it says so,
/// and one that `capture_close` unsubscribes is never called after (nor
/// once the plugin is destroyed).
#[test]
fn a_capture_listener_runs_routines_between_open_and_close() {
    let Some(kit) = conformance_kit() else {
        eprintln!("skipped: ../shared/conformance is absent");
        return;
    };
    let capture = kit.join("captures/curl_google.scap");
    let [rlisten] = &plugins(&["rlisten"])[..] else {
        unreachable!()
    };
    let report = scratch("listen-report").join("report.txt");
    let _ = std::fs::remove_file(&report);
    let init = format!("'{{\"report\": \"{}\"}}'", report.display());
    let output = run(
        "listen",
        &[("rlisten", rlisten, &init)],
        LISTEN_RULES,
        &["-e", capture.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !alerts(&output, "Connect after capture open").is_empty(),
        "{stderr}"
    );
    let report = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{e}\n{stderr}"));
    let value = |key: &str| -> u64 {
        report
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key} in {report}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("opened"), 1, "{report}");
    assert_eq!(value("closed"), 1, "{report}");
    assert_eq!(value("counted"), 5, "{report}");
    assert!(value("forever_at_close") > 0, "{report}");
    assert_eq!(
        value("forever_at_destroy"),
        value("forever_at_close"),
        "{report}"
    );
}

const SYSCALL_ASYNC_RULES: &str = r#"
- rule: Syscall async tick
  desc: an async plugin's events in the live syscall stream
  condition: evt.type = rsysasync_tick and evt.is_async = true
  output: "n=%rsysasync.n name=%evt.asynctype"
  priority: WARNING
- rule: Not async
  desc: the syscall events around them are not async and show their own type
  condition: evt.type = execve and evt.is_async = false and evt.asynctype exists
  output: "never"
  priority: WARNING
"#;

/// An async plugin naming the syscall source (as Falco's container plugin
/// does) has its events join the live syscall stream: rules on
/// `evt.type = NAME` fire once per event, with the plugin's own field and
/// `evt.asynctype`, and no other event is taken for async.
#[test]
fn async_events_join_the_live_syscall_stream() {
    let Some(peregrine) = peregrine_with_ptrace() else {
        return;
    };
    let [rsysasync] = &plugins(&["rsysasync"])[..] else {
        unreachable!()
    };
    let dir = scratch("sysasync");
    std::fs::write(dir.join("rules.yaml"), SYSCALL_ASYNC_RULES).unwrap();
    std::fs::write(
        dir.join("falco.yaml"),
        format!(
            "json_output: true\nwebserver:\n  enabled: false\nrules_files:\n  - {}\n\
             plugins:\n  - name: rsysasync\n    library_path: {}\n    \
             init_config: '{{\"count\": 3, \"interval_ms\": 50}}'\n",
            dir.join("rules.yaml").display(),
            rsysasync.display()
        ),
    )
    .unwrap();
    let output = Command::new(peregrine)
        .args(["run", "-o", "rule_matching=all", "-c"])
        .arg(dir.join("falco.yaml"))
        .args(["--", "sh", "-c", "sleep 1; cat /dev/null"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let ticks = alerts(&output, "Syscall async tick");
    let numbers: Vec<String> = ticks.iter().map(|a| text(a, "rsysasync.n")).collect();
    assert_eq!(numbers, ["1", "2", "3"], "{stderr}");
    for alert in &ticks {
        assert_eq!(text(alert, "evt.asynctype"), "rsysasync_tick", "{alert}");
        assert!(field(alert, "rsysasync.n").is_u64(), "{alert}");
        assert_eq!(alert["source"], "syscall", "{alert}");
    }
    assert!(alerts(&output, "Not async").is_empty(), "{stderr}");
}

const ASYNC_RULES: &str = r#"
- rule: Async tick
  desc: the async plugin's events in the rsource stream
  condition: evt.is_async = true and evt.asynctype = rasync_tick
  output: "tick n=%rasync.n name=%rasync.name num=%evt.num word=%rsource.word count=%rparse.count by=%evt.pluginname"
  priority: WARNING
  source: rsource
- rule: Source event
  desc: the source's own events
  condition: evt.is_async = false and rsource.n > 0
  output: "event n=%rsource.n num=%evt.num async=%rasync.n"
  priority: WARNING
  source: rsource
"#;

/// An async plugin's events, pushed from its own thread through the
/// handler the host gives it, join the live stream of the source it names:
/// rules of that source fire on them with the async plugin's fields, the
/// source's extractors and parsers (which do not list async events) are
/// not asked about them, and the stream's events keep their order.
#[test]
fn async_events_join_the_plugin_source_stream() {
    let [rsource, rparse, rasync] = &plugins(&["rsource", "rparse", "rasync"])[..] else {
        unreachable!()
    };
    let output = run(
        "async",
        &[
            ("rsource", rsource, "{count: 30, pause_ms: 50}"),
            ("rparse", rparse, "{}"),
            ("rasync", rasync, "{count: 3, interval_ms: 20}"),
        ],
        ASYNC_RULES,
        &["--disable-source", "syscall"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Plugin 'rasync' sends async events to: rsource"),
        "{stderr}"
    );
    assert!(!stderr.contains("failed"), "{stderr}");
    let ticks = alerts(&output, "Async tick");
    let numbers: Vec<String> = ticks.iter().map(|a| text(a, "rasync.n")).collect();
    assert_eq!(numbers, ["1", "2", "3"], "{stderr}");
    for tick in &ticks {
        assert_eq!(text(tick, "rasync.name"), "rasync_tick");
        assert_eq!(field(tick, "rsource.word"), &Json::Null, "{tick}");
        assert_eq!(field(tick, "rparse.count"), &Json::Null, "{tick}");
        // libsinsp names the plugin of plugin events only.
        assert_eq!(field(tick, "evt.pluginname"), &Json::Null, "{tick}");
    }
    let events = alerts(&output, "Source event");
    let ns: Vec<u64> = events
        .iter()
        .map(|a| text(a, "rsource.n").parse().unwrap())
        .collect();
    assert_eq!(ns, (1..=30).collect::<Vec<u64>>(), "{stderr}");
    for event in &events {
        assert_eq!(field(event, "rasync.n"), &Json::Null, "{event}");
    }
    // One count for both kinds: 33 distinct event numbers.
    let mut nums: Vec<u64> = ticks
        .iter()
        .chain(&events)
        .map(|a| text(a, "evt.num").parse().unwrap())
        .collect();
    nums.sort_unstable();
    assert_eq!(nums, (1..=33).collect::<Vec<u64>>());
}

/// `--list` lists the loaded plugins' fields after the built-in ones, one
/// class per plugin named `NAME (plugin)` with the sources it applies to;
/// a plugin's source is one `--list` takes, in every format.
#[test]
fn list_shows_each_plugins_fields_under_its_sources() {
    let [rsource, rparse, rsyscall] = &plugins(&["rsource", "rparse", "rsyscall"])[..] else {
        unreachable!()
    };
    let loaded = [
        ("rsource", rsource.as_path(), "{count: 1}"),
        ("rparse", rparse.as_path(), "{}"),
        ("rsyscall", rsyscall.as_path(), "''"),
    ];
    let list = |name: &str, args: &[&str]| -> String {
        let output = run(name, &loaded, "[]", args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    let all = list("list-all", &["--list"]);
    let class = |name: &str, sources: &str| {
        format!("Field Class:                  {name} (plugin)\nEvent Sources:                {sources} \n")
    };
    let at = |needle: &str| {
        all.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from:\n{all}"))
    };
    // After the built-in classes, in load order.
    assert!(at(&class("rsource", "rsource")) > at("ka.verb"));
    assert!(at(&class("rparse", "rsource")) > at(&class("rsource", "rsource")));
    assert!(at(&class("rsyscall", "syscall")) > at(&class("rparse", "rsource")));
    // libsinsp's layout: the name, then from column 30 the argument's
    // tags and the description.
    assert!(all.contains(
        "\nrsource.char                  (ARG_INDEX,ARG_REQUIRED) the word's i-th letter \n"
    ));
    assert!(all.contains("\nrsys.tid                      the thread id in the header \n"));

    // One source: the plugins whose fields apply to it, nothing built in.
    let only = list("list-rsource", &["--list", "rsource"]);
    assert!(
        only.starts_with(&format!(
            "-------------------------------\n{}",
            class("rsource", "rsource")
        )),
        "{only}"
    );
    assert!(only.contains(&class("rparse", "rsource")), "{only}");
    assert!(
        !only.contains("rsys.") && !only.contains("proc.name"),
        "{only}"
    );
    let syscall = list("list-syscall", &["--list", "syscall"]);
    assert!(syscall.contains(&class("rsyscall", "syscall")));
    assert!(syscall.contains("proc.name") && !syscall.contains("rsource.n"));

    let json: Json = serde_json::from_str(&list(
        "list-json",
        &["--list", "rsource", "--format", "json"],
    ))
    .unwrap();
    let classes = json["fieldclasses"].as_array().unwrap();
    let names: Vec<&str> = classes
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rsource (plugin)", "rparse (plugin)"]);
    let char_field = &classes[0]["fields"][3];
    assert_eq!(char_field["name"], "rsource.char");
    assert_eq!(char_field["type"], "CHARBUF");
    assert_eq!(char_field["argument"]["required"], true);
    assert_eq!(char_field["argument"]["type"][0], "INDEX");
    assert_eq!(classes[1]["event_sources"][0], "rsource");

    let output = run("list-unknown", &loaded, "[]", &["--list", "nosuch"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("(syscall, k8s_audit, rsource)"), "{stderr}");
}

/// A plugin's own metrics (`get_metrics`) reach `/metrics` and the metrics
/// snapshot under the names Falco gives them, counters and gauges apart,
/// signed and double values as they are; `metrics.plugins_metrics_enabled:
/// false` leaves them out.
#[test]
fn a_plugins_metrics_reach_prometheus_and_the_snapshot() {
    use peregrine_tests::webhook::{get, start_args, stop};
    use std::time::{Duration, Instant};

    let [rsource] = &plugins(&["rsource"])[..] else {
        unreachable!()
    };
    let dir = scratch("metrics");
    let snapshots = dir.join("metrics.jsonl");
    let _ = std::fs::remove_file(&snapshots);
    // A stream that outlasts the test: the run is stopped by it.
    std::fs::write(
        dir.join("falco.yaml"),
        format!(
            "plugins:\n  - name: rsource\n    library_path: {}\n    init_config: {{count: 1000000, pause_ms: 20}}\n\
             load_plugins: [rsource]\n\
             webserver: {{enabled: true, listen_address: 127.0.0.1, listen_port: 0}}\n\
             metrics: {{enabled: true, interval: 1s, output_rule: false, output_file: {}}}\n",
            rsource.display(),
            snapshots.display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("rules.yaml"), "[]\n").unwrap();
    let config = dir.join("falco.yaml").display().to_string();
    let rules = dir.join("rules.yaml").display().to_string();

    let running = start_args(&["-c", &config, "-r", &rules]);
    let web = running
        .web
        .clone()
        .expect("the webserver said where it listens");
    let sent = |text: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix("falcosecurity_plugins_rsource_events_sent_total "))
            .and_then(|v| v.parse().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        let (status, body) = get(&format!("{web}/metrics"));
        assert_eq!(status, 200);
        if sent(&body).is_some_and(|n| n > 0) || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        first.contains("# TYPE falcosecurity_plugins_rsource_events_sent_total counter\n"),
        "{first}"
    );
    assert!(
        first.contains("# TYPE falcosecurity_plugins_rsource_lag_total gauge\n"),
        "{first}"
    );
    let lag = first
        .lines()
        .find_map(|l| l.strip_prefix("falcosecurity_plugins_rsource_lag_total "))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or_else(|| panic!("no lag in {first}"));
    assert!(lag < 0, "{first}");
    let share = first
        .lines()
        .find_map(|l| l.strip_prefix("falcosecurity_plugins_rsource_share_sent_total "))
        .unwrap_or_else(|| panic!("no share in {first}"));
    // A double, printed as C++'s std::to_string prints it.
    assert!(share.len() == 8 && share.starts_with("0."), "{share}");
    assert!(
        first.contains(
            "falcosecurity_scap_engine_name_info{engine_name=\"source_plugin\",evt_source=\"rsource\"} 1\n"
        ),
        "{first}"
    );
    // /versions names the loaded plugin with its version, and the plugin
    // API offered, as Falco's does for falcoctl's requirement checks.
    let (status, body) = get(&format!("{web}/versions"));
    assert_eq!(status, 200);
    let versions: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(versions["plugin_versions"]["rsource"], "0.2.0", "{body}");
    assert!(versions["plugin_api_version"].is_string(), "{body}");
    // The plugin is read at each scrape: its counter moves with its stream.
    std::thread::sleep(Duration::from_millis(300));
    let (_, later) = get(&format!("{web}/metrics"));
    assert!(sent(&later) > sent(&first), "{later}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let snapshot = loop {
        let lines = std::fs::read_to_string(&snapshots).unwrap_or_default();
        if let Some(line) = lines.lines().next() {
            break serde_json::from_str::<Json>(line).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot in {}",
            snapshots.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    stop(running);
    let fields = &snapshot["output_fields"];
    assert!(
        fields["plugins.rsource.events_sent"].as_u64() > Some(0),
        "{snapshot}"
    );
    assert!(
        fields["plugins.rsource.lag"].as_i64() < Some(0),
        "{snapshot}"
    );
    assert!(fields["plugins.rsource.share_sent"].is_f64(), "{snapshot}");

    let off = start_args(&[
        "-c",
        &config,
        "-r",
        &rules,
        "-o",
        "metrics.plugins_metrics_enabled=false",
    ]);
    let web = off
        .web
        .clone()
        .expect("the webserver said where it listens");
    std::thread::sleep(Duration::from_millis(300));
    let (_, body) = get(&format!("{web}/metrics"));
    stop(off);
    assert!(body.contains("falcosecurity_falco_version_info"), "{body}");
    assert!(!body.contains("falcosecurity_plugins_"), "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}
