//! What libsinsp's compiler and its event code search say of `evt.type`
//! comparisons they cannot take, as Falco master says it (each message
//! below was printed by Falco on the same condition with `-V`):
//! - every value compared with `evt.type`, whatever the operator or
//!   transformer, must name an event type (a load error);
//! - a transformer around `evt.type`/`syscall.type`, or another field on
//!   the right of their `=`/`!=`/`in`, stops Falco with a runtime error
//!   when it indexes the rules (`RulesLoader::fatal`);
//! - `bcontains`/`bstartswith` take buffers, not strings.

use peregrine_engine::rules::RulesLoader;
use peregrine_engine::syscall_fields::SyscallFields;

/// The load's error messages and its fatal refusal, for one rule.
fn load(condition: &str) -> (Vec<String>, Option<String>) {
    let mut loader = RulesLoader::new();
    loader.load_str(
        "types.yaml",
        &format!("- rule: r\n  desc: d\n  condition: {condition}\n  output: o\n  priority: INFO\n"),
    );
    let _ = loader.compile(SyscallFields::new());
    let errors = loader.errors().map(|d| d.message.clone()).collect();
    (errors, loader.fatal().map(str::to_string))
}

const TRANSFORMERS: &str = "event code search does not support `evt.type` checks with transformers";
const RIGHT_FIELD: &str = "right-hand field comparisons on `evt.type`/`syscall.type` checks are not supported by event code search";

#[test]
fn values_compared_with_evt_type_must_be_event_types() {
    for (condition, unknown) in [
        ("evt.type contains ope", Some("ope")),
        ("evt.type regex 'ope.*'", Some("ope.*")),
        ("evt.type pmatch (/tmp)", Some("/tmp")),
        ("toupper(evt.type) = OPEN", Some("OPEN")),
        ("toupper(evt.type) in (OPEN, close)", Some("OPEN")),
        ("evt.type exists and toupper(evt.type) != X", Some("X")),
        ("evt.type startswith open", None),
        ("syscall.type = OPEN", None),
    ] {
        let (errors, _) = load(condition);
        let expected: Vec<String> = unknown
            .map(|v| format!("unknown event type {v}"))
            .into_iter()
            .collect();
        assert_eq!(errors, expected, "{condition}");
    }
}

#[test]
fn the_code_search_refuses_what_it_cannot_index() {
    for (condition, refusal) in [
        ("evt.type = val(proc.name)", Some(RIGHT_FIELD)),
        ("evt.type != val(proc.name)", Some(RIGHT_FIELD)),
        ("not evt.type = val(proc.name)", Some(RIGHT_FIELD)),
        ("syscall.type = val(proc.name)", Some(RIGHT_FIELD)),
        ("evt.type = val(evt.type)", Some(TRANSFORMERS)),
        ("toupper(evt.type) = open", Some(TRANSFORMERS)),
        ("toupper(syscall.type) = OPEN", Some(TRANSFORMERS)),
        ("toupper(evt.type) exists", Some(TRANSFORMERS)),
        ("toupper(evt.type) contains open", None),
        ("evt.type in (open) and proc.name = val(evt.type)", None),
        ("evt.type in (open, close)", None),
    ] {
        let (errors, fatal) = load(condition);
        assert!(errors.is_empty(), "{condition}: {errors:?}");
        assert_eq!(fatal.as_deref(), refusal, "{condition}");
    }
}

#[test]
fn byte_operators_take_buffers_not_strings() {
    for (condition, error) in [
        (
            "evt.type = open and proc.name bcontains 6f70",
            Some("filter error: 'bcontains' operator not supported for string filters"),
        ),
        (
            "evt.type = open and proc.name bstartswith 6f70",
            Some("filter error: 'bstartswith' operator not supported for string filters"),
        ),
        ("evt.type = open and evt.buffer bcontains 6f70", None),
    ] {
        let (errors, _) = load(condition);
        let expected: Vec<String> = error.map(str::to_string).into_iter().collect();
        assert_eq!(errors, expected, "{condition}");
    }
}
