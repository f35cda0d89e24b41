//! Falco's `static_fields` in conditions: libsinsp's static filtercheck,
//! which Falco adds to every source's fields, makes each configured
//! `static.NAME` a string field whose value is the configured one. Each
//! expectation here was checked against Falco master on a kit capture
//! (alert counts with and without the configuration, and `-V`'s message).

use peregrine_engine::event::EventView;
use peregrine_engine::rules::{CompiledRules, RulesLoader};
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

mod raw_events;
use raw_events::{event, i64b, s, u32b};

fn compile(rules: &str, statics: &[(&str, &str)]) -> (CompiledRules<SyscallFields>, Vec<String>) {
    let mut loader = RulesLoader::new();
    loader.set_static_fields(
        statics
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    );
    loader.load_str("static.yaml", rules);
    let compiled = loader.compile(SyscallFields::new());
    let errors = loader.errors().map(|d| d.message.clone()).collect();
    (compiled, errors)
}

fn rule(condition: &str) -> String {
    format!("- rule: r\n  desc: d\n  condition: evt.type = openat and {condition}\n  output: o\n  priority: INFO\n")
}

/// How many rules fire on an openat of /etc/passwd.
fn fired(rules: &mut CompiledRules<SyscallFields>) -> usize {
    let raw = event(
        307,
        1,
        100,
        &[
            ("fd", i64b(3)),
            ("dirfd", i64b(-100)),
            ("name", s("/etc/passwd")),
            ("flags", u32b(1)),
            ("mode", u32b(0)),
        ],
    );
    let mut state = State::new();
    let view = EventView::parse(&raw).unwrap();
    state.apply(&view);
    let input = SyscallEvent::new(&view, &state);
    rules.evaluate(&input, |_, _| {})
}

#[test]
fn static_fields_compare_as_configured_strings() {
    let zone = [("zone", "eu")];
    for (condition, fires) in [
        ("static.zone = eu", true),
        ("static.zone != eu", false),
        ("static.zone in (us, eu)", true),
        ("toupper(static.zone) = EU", true),
        ("static.zone startswith e", true),
        ("static.zone = val(proc.name)", false),
    ] {
        let (mut rules, errors) = compile(&rule(condition), &zone);
        assert!(errors.is_empty(), "{condition}: {errors:?}");
        assert_eq!(fired(&mut rules) == 1, fires, "{condition}");
    }
}

#[test]
fn exceptions_may_name_static_fields() {
    let rules = "- rule: r\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: INFO\n  exceptions:\n    - name: eu\n      fields: static.zone\n      comps: in\n      values: [us, eu]\n";
    let (mut compiled, errors) = compile(rules, &[("zone", "eu")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(fired(&mut compiled), 0);
    let (mut compiled, errors) = compile(rules, &[("zone", "ap")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(fired(&mut compiled), 1);
}

#[test]
fn unknown_or_indexed_static_fields_are_unknown_fields() {
    for (condition, statics, message) in [
        (
            "static.nope = eu",
            &[("zone", "eu")][..],
            "filter_check called with nonexistent field static.nope",
        ),
        (
            "static.zone = eu",
            &[][..],
            "filter_check called with nonexistent field static.zone",
        ),
        (
            "static.zone[1] = eu",
            &[("zone", "eu")][..],
            "filter_check called with nonexistent field static.zone[1]",
        ),
        // Any unknown field is named with its argument, as libsinsp does.
        (
            "nosuch.field[1] = x",
            &[][..],
            "filter_check called with nonexistent field nosuch.field[1]",
        ),
    ] {
        let (_, errors) = compile(&rule(condition), statics);
        assert_eq!(errors, [message.to_string()], "{condition}");
    }
}
