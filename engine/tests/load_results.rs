//! Load results as current Falco gives them: codes, items and messages of
//! the errors and warnings its rule reader and compiler report.

use peregrine_engine::rules::{Code, Diagnostic, RulesLoader, ENGINE_VERSION};

fn load(yaml: &str) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    let mut loader = RulesLoader::new();
    let r = loader.load_str("rules.yaml", yaml).clone();
    (r.errors, r.warnings)
}

fn has(list: &[Diagnostic], code: Code, item_type: &str, item_name: &str, message: &str) -> bool {
    list.iter().any(|d| {
        d.code == code
            && d.item_type == item_type
            && d.item_name == item_name
            && d.message == message
    })
}

const RULE: &str =
    "- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: INFO\n";

#[test]
fn a_macro_loop_is_reported_once() {
    let (errors, _) = load(
        "- macro: macro_a\n  condition: macro_b\n- macro: macro_b\n  condition: macro_a\n\
- rule: r\n  desc: d\n  condition: evt.type=open and macro_a\n  output: o\n  priority: INFO\n",
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].code, Code::ErrValidate);
    assert!(errors[0].message.contains("reference loop in macro"));
}

#[test]
fn macro_name_with_spaces_is_warned_about() {
    let (errors, warnings) = load(&format!(
        "- macro: my macro\n  condition: proc.name=cat\n{RULE}"
    ));
    assert!(errors.is_empty());
    assert!(has(
        &warnings,
        Code::InvalidMacroName,
        "macro",
        "my macro",
        "Macro has an invalid name. Macro names should match a regular expression: ([a-zA-Z]+[a-zA-Z0-9_]*)"
    ));
}

#[test]
fn list_name_with_spaces_is_warned_about() {
    let (_, warnings) = load("- list: my list\n  items: [a]\n");
    assert!(warnings
        .iter()
        .any(|w| w.code == Code::InvalidListName && w.item_name == "my list"));
}

#[test]
fn a_failing_append_still_warns_that_append_is_deprecated() {
    let (errors, warnings) =
        load("- rule: nowhere\n  condition: and proc.name=cat\n  append: true\n");
    assert!(has(
        &errors,
        Code::ErrValidate,
        "rule",
        "nowhere",
        "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists"
    ));
    assert!(has(
        &warnings,
        Code::DeprecatedItem,
        "rule",
        "nowhere",
        "'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under 'override' instead."
    ));
}

#[test]
fn dangling_appends_of_lists_and_macros() {
    let (errors, _) = load("- list: l\n  items: [a]\n  append: true\n");
    assert!(has(
        &errors,
        Code::ErrValidate,
        "list",
        "l",
        "List uses 'append' or 'override.items: append' but no list by that name already exists"
    ));
    let (errors, _) = load("- macro: m\n  condition: and x\n  override:\n    condition: append\n");
    assert!(has(
        &errors,
        Code::ErrValidate,
        "macro",
        "m",
        "Macro uses 'append' or 'override.condition: append' but no macro by that name already exists"
    ));
}

#[test]
fn engine_versions_in_both_notations() {
    let (x, y, z) = ENGINE_VERSION;
    for ok in [
        format!("{y}"),
        format!("{x}.{y}.{z}"),
        "0.10.0".into(),
        "'15'".into(),
    ] {
        let (errors, _) = load(&format!("- required_engine_version: {ok}\n"));
        assert!(errors.is_empty(), "{ok}: {errors:#?}");
    }
    let (errors, _) = load(&format!("- required_engine_version: {x}.{}.0\n", y + 1));
    assert!(has(
        &errors,
        Code::ErrValidate,
        "required_engine_version",
        "",
        &format!(
            "Rules require engine version {x}.{}.0, but engine version is {x}.{y}.{z}",
            y + 1
        )
    ));
    let (errors, _) = load("- required_engine_version: 1.0.0\n");
    assert_eq!(
        errors[0].code,
        Code::ErrValidate,
        "another major is refused"
    );
    let (errors, _) = load("- required_engine_version: not-a-number\n");
    assert!(has(
        &errors,
        Code::ErrYamlValidate,
        "required_engine_version",
        "",
        "Unable to parse engine version 'not-a-number' as a semver string. Expected \"x.y.z\" semver format."
    ));
}

#[test]
fn unknown_keys_and_items() {
    let (errors, warnings) = load(&format!("{RULE}  colour: blue\n- thing: x\n"));
    assert!(errors.is_empty());
    assert!(has(
        &warnings,
        Code::UnknownKey,
        "rule",
        "r",
        "Unknown key 'colour'. The key will be ignored."
    ));
    assert!(has(
        &warnings,
        Code::UnknownItem,
        "rules content item",
        "",
        "Unknown top level item"
    ));
}

#[test]
fn override_errors() {
    let base = RULE;
    let (errors, _) = load(&format!(
        "{base}- rule: r\n  priority: ERROR\n  override:\n    priority: append\n"
    ));
    assert!(errors.iter().any(|e| e.code == Code::ErrYamlValidate
        && e.message == "Key 'priority' cannot be appended to, use 'replace' instead"));
    let (errors, _) = load(&format!(
        "{base}- rule: r\n  condition: and x\n  override:\n    condition: merge\n"
    ));
    assert!(errors.iter().any(|e| e.message
        == "Invalid override operation for key 'condition': 'merge'. Allowed values are: append replace "));
    let (errors, _) = load(&format!(
        "{base}- rule: r\n  condition: and x\n  desc: more\n  override:\n    condition: append\n"
    ));
    assert!(errors.iter().any(|e| e.message
        == "Unexpected key 'desc': no corresponding entry under 'override' is defined."));
    let (errors, _) = load(&format!(
        "{base}- rule: r\n  override:\n    output: replace\n"
    ));
    assert!(errors.iter().any(|e| e.message
        == "An replace override for 'output' was specified but 'output' is not defined"));
    let (errors, _) = load("- rule: q\n  output: x\n  override:\n    output: replace\n");
    assert!(has(
        &errors,
        Code::ErrValidate,
        "rule",
        "q",
        "An 'override.<key>: replace' to a rule was requested but no rule by that name already exists"
    ));
}

#[test]
fn enabling_a_rule_alone_is_deprecated() {
    let (errors, warnings) = load(&format!("{RULE}- rule: r\n  enabled: false\n"));
    assert!(errors.is_empty());
    assert!(warnings.iter().any(|w| w.code == Code::DeprecatedItem
        && w.message
            .starts_with("The standalone 'enabled' key usage is deprecated.")));
    let (errors, _) = load("- rule: nope\n  enabled: false\n");
    assert!(has(
        &errors,
        Code::ErrValidate,
        "rule",
        "nope",
        "Rule has 'enabled' key but no rule by that name already exists"
    ));
}

fn compiled_warnings(yaml: &str) -> Vec<Diagnostic> {
    let mut loader = RulesLoader::new();
    loader.load_str("rules.yaml", yaml);
    loader.compile(peregrine_engine::syscall_fields::SyscallFields::new());
    loader.results()[0].warnings.clone()
}

#[test]
fn fields_without_meaning_in_one_event_per_syscall_are_warned_about() {
    let w = compiled_warnings(
        "- rule: r\n  desc: d\n  condition: evt.type=open and evt.dir=<\n  output: dir %evt.dir\n  priority: INFO\n",
    );
    let messages: Vec<&str> = w
        .iter()
        .filter(|w| w.code == Code::DeprecatedItem)
        .map(|w| w.message.as_str())
        .collect();
    assert!(
        messages
            .contains(&"usage of deprecated field 'evt.dir' has been detected in the rule output"),
        "{w:#?}"
    );
    assert!(messages
        .iter()
        .any(|m| m.starts_with("due to the drop of enter events, 'evt.dir = <'")));
    assert!(compiled_warnings(RULE).is_empty());
}
