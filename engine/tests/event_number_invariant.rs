//! Conditions on `evt.num` that can never hold (or always hold), since
//! event numbers start at 1: as current Falco, a rule reduced to such a
//! condition is not warned about as matching every event type, and stays
//! loaded. Falco's own tuning placeholder, the `never_true` macro, is
//! `evt.num=0`.

mod common;

use common::{TestEvent, TestSyscallSource};
use peregrine_engine::field::{FieldSource, Value};
use peregrine_engine::rules::{Code, RulesLoader};

/// Loads and compiles `yaml`; the number of rules compiled and whether a
/// LOAD_NO_EVTTYPE warning was given.
fn load(yaml: &str) -> (usize, bool) {
    let mut loader = RulesLoader::new();
    loader.load_str("rules.yaml", yaml);
    let rules = loader.compile(TestSyscallSource::new());
    let errors: Vec<_> = loader.results().iter().flat_map(|r| &r.errors).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let warned = loader
        .results()
        .iter()
        .flat_map(|r| &r.warnings)
        .any(|w| w.code == Code::NoEvttype);
    (rules.rules().len(), warned)
}

fn rule(condition: &str) -> String {
    format!("- rule: r\n  desc: d\n  condition: {condition}\n  output: o\n  priority: INFO\n")
}

#[test]
fn unsatisfiable_event_numbers_are_not_warned_about() {
    for condition in [
        "evt.num = 0",
        "evt.num == 0",
        "evt.num < 1",
        "evt.num <= 0",
        "evt.num in (0)",
        "evt.num in (0, 0)",
        "evt.num in ()",
        "proc.name = cat and evt.num = 0",
    ] {
        assert_eq!(load(&rule(condition)), (1, false), "{condition}");
    }
}

#[test]
fn other_event_number_tests_match_every_type() {
    for condition in [
        "evt.num != 0",
        "evt.num >= 1",
        "evt.num > 0",
        "evt.num = 5",
        "evt.num in (0, 3)",
        "evt.num = -1",
        "not evt.num = 0",
        "proc.name = cat",
    ] {
        assert_eq!(load(&rule(condition)), (1, true), "{condition}");
    }
    // A narrow type test stays narrow whatever evt.num says.
    assert_eq!(load(&rule("evt.type = close")), (1, false));
    assert_eq!(load(&rule("evt.type = open and evt.num != 0")), (1, false));
    assert_eq!(
        load(&rule("evt.type = open and evt.type = close")),
        (1, false)
    );
}

#[test]
fn the_never_true_placeholder_is_quiet_in_every_use() {
    let yaml = "
- macro: never_true
  condition: (evt.num=0)
- macro: user_known_activity
  condition: (never_true)
- rule: anchored
  desc: d
  condition: evt.type = open and not user_known_activity
  output: o
  priority: INFO
- rule: placeholder_only
  desc: d
  condition: never_true
  output: o
  priority: INFO
";
    assert_eq!(load(yaml), (2, false));
    // The anchored rule still matches its events; the placeholder never.
    let mut loader = RulesLoader::new();
    loader.load_str("rules.yaml", yaml);
    let mut rules = loader.compile(TestSyscallSource::new());
    let ev = TestEvent::new("open").with("evt.num", Value::Uint(1));
    let mut hits = Vec::new();
    rules.evaluate(&ev, |r, _| hits.push(r.name.clone()));
    assert_eq!(hits, ["anchored"]);
}

/// A `not` reaches the comparisons under it, as libsinsp's event code
/// search pushes it down: `not (evt.type = openat and fd.name = x)` can
/// hold for an openat, so the rule must stay indexed for openat (it was
/// once left out, and never checked on the very events it names).
#[test]
fn a_negated_conjunction_keeps_the_types_it_names() {
    let condition = "evt.type in (open, openat) and not (evt.type = openat and fd.name = /x)";
    let mut loader = RulesLoader::new();
    loader.load_str("rules.yaml", &rule(condition));
    let rules = loader.compile(TestSyscallSource::new());
    let types = rules.rules()[0].event_types().cloned().unwrap_or_default();
    let openat = TestSyscallSource::new()
        .event_types_named("openat")
        .unwrap_or_default();
    assert!(!openat.is_empty());
    assert!(openat.iter().all(|t| types.contains(t)), "{types:?}");
    // Under two `not`s the comparisons are as written again.
    for (condition, narrow) in [
        ("not not evt.type = close", true),
        ("not (evt.type != close or proc.name = cat)", true),
        ("not (evt.type = close and proc.name = cat)", false),
        ("not evt.num != 0", true),
    ] {
        assert_eq!(load(&rule(condition)), (1, !narrow), "{condition}");
    }
}
