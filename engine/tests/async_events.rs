//! Async events plugins send into the syscall source (Falco's
//! PPME_ASYNCEVENT_E: a plugin id, a name, data): `evt.type` and
//! `evt.asynctype` show the name, `evt.is_async` is true, and rules on
//! `evt.type = NAME` are indexed per declared name, so an async event of
//! one name never reaches the rules of another.

use peregrine_engine::event::EventView;
use peregrine_engine::rules::{CompiledRules, Matching, RulesLoader};
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

/// An async event as a plugin's handler receives it: three parameters
/// with 4-byte lengths (the type's large payload).
fn async_event(tid: i64, name: &str, data: &[u8]) -> Vec<u8> {
    let name = [name.as_bytes(), b"\0"].concat();
    let params: [&[u8]; 3] = [&7u32.to_le_bytes(), &name, data];
    let mut body = Vec::new();
    for p in params {
        body.extend_from_slice(&(p.len() as u32).to_le_bytes());
    }
    for p in params {
        body.extend_from_slice(p);
    }
    let mut raw = Vec::new();
    raw.extend_from_slice(&1_700_000_000_000_000_000u64.to_le_bytes());
    raw.extend_from_slice(&tid.to_le_bytes());
    raw.extend_from_slice(&((26 + body.len()) as u32).to_le_bytes());
    raw.extend_from_slice(&402u16.to_le_bytes());
    raw.extend_from_slice(&3u32.to_le_bytes());
    raw.extend_from_slice(&body);
    raw
}

const RULES: &str = r#"
- rule: Sample
  desc: a declared async event by its name
  condition: evt.type = sample and evt.asynctype = sample and evt.is_async = true
  output: "%evt.type %evt.asynctype"
  priority: WARNING
- rule: Other
  desc: another declared async event
  condition: evt.type in (other, open)
  output: "%evt.type"
  priority: WARNING
- rule: Any async
  desc: every async event, declared or not
  condition: evt.is_async = true
  output: "%evt.asynctype"
  priority: WARNING
- rule: Never async
  desc: syscalls only
  condition: evt.is_async = false and evt.type != sample
  output: "%evt.type"
  priority: WARNING
"#;

fn fired(rules: &mut CompiledRules<SyscallFields>, raw: &[u8]) -> Vec<String> {
    let state = State::default();
    let view = EventView::parse(raw).unwrap();
    let event = SyscallEvent::new(&view, &state);
    let mut out = Vec::new();
    rules.evaluate(&event, |rule, _| out.push(rule.name.clone()));
    out
}

fn compiled() -> CompiledRules<SyscallFields> {
    let mut loader = RulesLoader::new();
    let loaded = loader.load_str("async.yaml", RULES).clone();
    assert!(loaded.errors.is_empty(), "{:#?}", loaded.errors);
    let names = vec!["sample".to_string(), "other".to_string()];
    let mut rules = loader.compile(SyscallFields::new().with_async_events(&names));
    rules.matching = Matching::All;
    let errors: Vec<_> = loader.results().iter().flat_map(|r| &r.errors).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    rules
}

#[test]
fn each_async_name_reaches_its_own_rules() {
    let mut rules = compiled();
    assert_eq!(
        fired(&mut rules, &async_event(-1, "sample", b"{}")),
        ["Sample", "Any async"]
    );
    assert_eq!(
        fired(&mut rules, &async_event(42, "other", b"")),
        ["Other", "Any async"]
    );
    // A name no plugin declared still is an async event, of no rule's type.
    assert_eq!(
        fired(&mut rules, &async_event(42, "undeclared", b"")),
        ["Any async"]
    );
}

#[test]
fn async_names_are_unknown_types_without_a_plugin_declaring_them() {
    let mut loader = RulesLoader::new();
    loader.load_str("async.yaml", RULES);
    let _ = loader.compile(SyscallFields::new());
    let text = format!("{:?}", loader.results());
    assert!(text.contains("unknown event type sample"), "{text}");
}

/// libsinsp's async events are its meta-events: the container events it
/// makes itself are async too, of their own name.
#[test]
fn container_events_are_async_of_their_own_name() {
    use peregrine_engine::state::containers::{container_event, ContainerInfo};
    let info = ContainerInfo {
        id: "3ad7b26ded6d".into(),
        ..ContainerInfo::default()
    };
    let raw = container_event(1, 42, &info);
    let mut loader = RulesLoader::new();
    loader.load_str(
        "container.yaml",
        "- rule: Container async\n  desc: d\n  condition: evt.type = container and evt.is_async = true and evt.asynctype = container\n  output: o\n  priority: WARNING\n\
         - rule: Syscall async\n  desc: d\n  condition: evt.type = open and evt.is_async = true\n  output: o\n  priority: WARNING\n",
    );
    let mut rules = loader.compile(SyscallFields::new());
    let errors: Vec<_> = loader.results().iter().flat_map(|r| &r.errors).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(fired(&mut rules, &raw), ["Container async"]);
}
