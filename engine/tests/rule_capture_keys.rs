//! A rule's `capture` and `capture_duration` keys reach the compiled rule:
//! capture on alert reads them there. Falco keeps both on its rules
//! (falco_rule::capture, capture_duration in milliseconds) and lets an
//! `override: replace` change them.

use peregrine_engine::rules::RulesLoader;
use peregrine_engine::syscall_fields::SyscallFields;

/// Each compiled rule's name, `capture` and `capture_duration`.
struct Captured {
    name: String,
    capture: bool,
    capture_duration_ms: u32,
}

fn compile(text: &str) -> (RulesLoader, Vec<Captured>) {
    let mut loader = RulesLoader::new();
    loader.load_str("capture.yaml", text);
    let compiled = loader.compile(SyscallFields::new());
    let rules = compiled
        .rules()
        .iter()
        .map(|r| Captured {
            name: r.name.clone(),
            capture: r.capture,
            capture_duration_ms: r.capture_duration_ms,
        })
        .collect();
    (loader, rules)
}

fn errors(loader: &RulesLoader) -> Vec<String> {
    loader
        .results()
        .iter()
        .flat_map(|r| r.errors.iter())
        .map(|e| format!("{:?}: {}", e.code, e.message))
        .collect()
}

const TWO_RULES: &str = r#"
- rule: captured
  desc: d
  condition: evt.type = open
  output: o
  priority: WARNING
  capture: true
  capture_duration: 10000
- rule: plain
  desc: d
  condition: evt.type = close
  output: o
  priority: WARNING
"#;

#[test]
fn capture_keys_are_kept_on_the_compiled_rule() {
    let (loader, rules) = compile(TWO_RULES);
    assert!(errors(&loader).is_empty(), "{:?}", errors(&loader));
    let captured = rules.iter().find(|r| r.name == "captured").unwrap();
    assert!(captured.capture);
    assert_eq!(captured.capture_duration_ms, 10_000);
    let plain = rules.iter().find(|r| r.name == "plain").unwrap();
    assert!(!plain.capture);
    assert_eq!(plain.capture_duration_ms, 0);
}

#[test]
fn override_replace_changes_capture_and_its_duration() {
    let text = format!(
        "{TWO_RULES}
- rule: plain
  capture: yes
  capture_duration: 250
  override:
    capture: replace
    capture_duration: replace
- rule: captured
  capture: false
  override:
    capture: replace
"
    );
    let (loader, rules) = compile(&text);
    assert!(errors(&loader).is_empty(), "{:?}", errors(&loader));
    let plain = rules.iter().find(|r| r.name == "plain").unwrap();
    assert!(plain.capture);
    assert_eq!(plain.capture_duration_ms, 250);
    let captured = rules.iter().find(|r| r.name == "captured").unwrap();
    assert!(!captured.capture);
    assert_eq!(captured.capture_duration_ms, 10_000, "not replaced, kept");
}

#[test]
fn a_duration_that_is_not_a_whole_number_of_milliseconds_is_an_error() {
    for bad in ["10s", "-5", "4294967296", "1.5"] {
        let text = TWO_RULES.replace(
            "capture_duration: 10000",
            &format!("capture_duration: {bad}"),
        );
        let (loader, rules) = compile(&text);
        let errs = errors(&loader);
        assert!(
            errs.iter()
                .any(|e| e.contains("Can't decode YAML scalar value")),
            "{bad}: {errs:?}"
        );
        assert!(rules.iter().all(|r| r.name != "captured"), "{bad}");
    }
}
