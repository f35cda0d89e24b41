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

/// The steps of Falco's context chain: (item type, item name, line, column).
fn chain(d: &Diagnostic) -> Vec<(&str, &str, usize, usize)> {
    d.locations
        .iter()
        .map(|l| {
            (
                l.item_type.as_str(),
                l.item_name.as_str(),
                l.mark.line,
                l.mark.column,
            )
        })
        .collect()
}

#[test]
fn a_macro_loop_is_reported_once_naming_the_inner_macro() {
    // As the kit's invalid_macro_loop: the loop closes when macro_a is
    // redefined. Falco resolves macro_a, expands macro_b, then macro_a
    // again, and stops at macro_b, already on its way: the loop is
    // reported on macro_a, in macro_b's name, at the reference in
    // macro_a's condition (item mark + 1-based parser position).
    let text = "- macro: macro_a\n  condition: evt.type=open\n\n- macro: macro_b\n  condition: macro_a\n\n- macro: macro_a\n  condition: macro_b\n";
    let (errors, warnings) = load(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(warnings.is_empty(), "{warnings:#?}");
    let e = &errors[0];
    assert_eq!(e.code, Code::ErrValidate);
    assert_eq!(
        (e.item_type.as_str(), e.item_name.as_str()),
        ("macro", "macro_a")
    );
    assert_eq!(e.message, "reference loop in macro 'macro_b'");
    assert_eq!(
        chain(e),
        [
            ("rules content", "", 0, 0),
            ("macro", "macro_a", 6, 2),
            ("condition expression", "", 7, 3)
        ]
    );
    assert_eq!(e.locations[2].name, "\"macro_b\"");
    assert_eq!(
        e.locations[1].mark.offset,
        text.find("macro: macro_a\n  condition: macro_b").unwrap()
    );
}

#[test]
fn a_macro_sees_only_the_macros_defined_before_it() {
    // Falco resolves a macro among the macros defined before it: a
    // reference to a later one is undefined, so two macros naming each
    // other are an undefined macro, not a loop.
    let (errors, _) = load(
        "- macro: macro_a\n  condition: macro_b\n- macro: macro_b\n  condition: macro_a\n\
- rule: r\n  desc: d\n  condition: evt.type=open and macro_a\n  output: o\n  priority: INFO\n",
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].code, Code::ErrValidate);
    assert_eq!(errors[0].item_name, "macro_a");
    assert_eq!(
        errors[0].message,
        "Undefined macro 'macro_b' used in filter."
    );
    // A rule sees every macro, whatever their order.
    let (errors, _) = load(
        "- rule: r\n  desc: d\n  condition: evt.type=open and later\n  output: o\n  priority: INFO\n\
- macro: later\n  condition: proc.name=cat\n",
    );
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn errors_are_located_as_falco_locates_them() {
    // yaml-cpp marks: 0-based line and column; a condition expression adds
    // the parser's 1-based position to the mark of the condition's value.
    let (errors, _) = load(
        "# header\n- rule: r\n  desc: d\n  condition: >\n    evt.type=open and\n    (proc.name=cat\n  output: o\n  priority: INFO\n",
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].code, Code::ErrCompileCondition);
    let c = chain(&errors[0]);
    assert_eq!(
        c[..3],
        [
            ("rules content", "", 0, 0),
            ("rule", "r", 1, 2),
            ("rule condition", "", 3, 13)
        ]
    );
    assert_eq!(c[3].0, "condition expression");
    assert_eq!(
        (c[3].2, c[3].3),
        (
            3 + errors[0].condition_pos.unwrap().0,
            13 + errors[0].condition_pos.unwrap().1
        )
    );

    // An unknown field: the comparison that holds it.
    let (errors, _) = load(
        "- rule: r\n  desc: d\n  condition: evt.type=open and proc.nope=cat\n  output: o\n  priority: INFO\n",
    );
    assert!(errors.is_empty());
    let mut loader = RulesLoader::new();
    loader.load_str(
        "rules.yaml",
        "- rule: r\n  desc: d\n  condition: evt.type=open and proc.nope=cat\n  output: o\n  priority: INFO\n",
    );
    let _ = loader.compile(peregrine_engine::syscall_fields::SyscallFields::new());
    let e = &loader.results()[0].errors[0];
    assert_eq!(
        chain(e),
        [
            ("rules content", "", 0, 0),
            ("rule", "r", 0, 2),
            ("rule condition", "", 2, 13),
            ("condition expression", "", 3, 13 + 19)
        ]
    );

    // An unknown event type, inside a macro: the comparison that names it,
    // at its place in the macro's own text (Falco's invalid_list_loop).
    let mut loader = RulesLoader::new();
    loader.load_str(
        "rules.yaml",
        "- macro: m\n  condition: evt.type in (list_a)\n- rule: r\n  desc: d\n  condition: m\n  output: o\n  priority: INFO\n",
    );
    let _ = loader.compile(peregrine_engine::syscall_fields::SyscallFields::new());
    let e = &loader.results()[0].errors[0];
    assert_eq!(e.message, "unknown event type list_a");
    assert_eq!(
        chain(e),
        [
            ("rules content", "", 0, 0),
            ("rule", "r", 2, 2),
            ("rule condition", "", 4, 13),
            ("condition expression", "", 5, 14)
        ]
    );

    // Unused items: the item itself.
    let (_, warnings) =
        load("- list: l\n  items: [a]\n\n-   macro: m\n    condition: proc.name=x\n");
    let mut got: Vec<_> = warnings.iter().map(chain).collect();
    got.sort();
    assert_eq!(
        got,
        [
            vec![("rules content", "", 0, 0), ("list", "l", 0, 2)],
            vec![("rules content", "", 0, 0), ("macro", "m", 3, 4)],
        ]
    );
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
        .filter(|w| w.code.as_str() == "LOAD_DEPRECATED_ITEM")
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

#[test]
fn unused_lists_and_macros_are_those_falco_finds_unused() {
    // Falco finds a list used when its name stands as a word (between
    // blanks, parentheses, commas or `=`) in any macro's or rule's
    // condition, exceptions included, even a macro nobody uses; in a
    // quoted string or inside a longer word it is not.
    let (errors, warnings) = load(
        "- list: in_unused_macro\n  items: [a]\n\
         - list: after_equal\n  items: [b]\n\
         - list: quoted\n  items: [c]\n\
         - list: in_exception\n  items: [d]\n\
         - list: part\n  items: [e]\n\
         - list: inner\n  items: [f]\n\
         - list: outer\n  items: [inner]\n\
         - macro: lonely\n  condition: proc.name in (in_unused_macro)\n\
         - rule: r\n  desc: d\n  condition: evt.type=open and proc.name=after_equal and proc.name=\"quoted\" and proc.name=partial and proc.pname in (outer)\n  output: o\n  priority: INFO\n  exceptions:\n    - name: e\n      fields: [proc.name]\n      values: [[in_exception]]\n",
    );
    assert!(errors.is_empty(), "{errors:#?}");
    let mut unused: Vec<(&str, &str)> = warnings
        .iter()
        .filter(|w| matches!(w.code, Code::UnusedList | Code::UnusedMacro))
        .map(|w| (w.item_type.as_str(), w.item_name.as_str()))
        .collect();
    unused.sort();
    assert_eq!(
        unused,
        [("list", "part"), ("list", "quoted"), ("macro", "lonely")]
    );
}

#[test]
fn a_list_is_used_where_falco_pastes_it_not_where_its_name_is_written() {
    // Falco marks a list used when its compiler pastes it into a condition
    // (exceptions included, as the compiler writes them) or when a list
    // defined after it takes its items. `later` is named only by a list
    // defined before it, which takes the name as a word; `in_value` only
    // as the bare value of a single-field exception, which Falco writes
    // in parentheses and pastes.
    let (errors, warnings) = load(
        "- list: early\n  items: [later]\n\
         - list: later\n  items: [x]\n\
         - list: taken\n  items: [y]\n\
         - list: taker\n  items: [taken]\n\
         - list: in_value\n  items: [z]\n\
         - rule: r\n  desc: d\n  condition: evt.type=open and proc.name in (taker)\n  output: o\n  priority: INFO\n  exceptions:\n    - name: e\n      fields: [proc.name]\n      comps: [in]\n    - name: f\n      fields: proc.name\n      values: [in_value]\n",
    );
    assert!(errors.is_empty(), "{errors:#?}");
    let mut unused: Vec<&str> = warnings
        .iter()
        .filter(|w| w.code == Code::UnusedList)
        .map(|w| w.item_name.as_str())
        .collect();
    unused.sort();
    assert_eq!(unused, ["early", "later"]);
}

#[test]
fn values_that_look_like_fields_or_plain_regexes_are_warned_about() {
    // Each message and place as Falco master gives them for this rule.
    let w = compiled_warnings(
        "- rule: t\n  desc: d\n  condition: evt.type=open and (proc.name regex \"z1\" or proc.name = proc.pname or fd.name in (a, \"tolower(x)\"))\n  output: o\n  priority: INFO\n",
    );
    let found: Vec<(&str, (usize, usize))> = w
        .iter()
        .filter(|w| w.code == Code::CompileCondition)
        .map(|w| {
            let at = w
                .locations
                .last()
                .map_or((0, 0), |l| (l.mark.line, l.mark.column));
            (w.message.as_str(), at)
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "regex check with 'z1' may be optimized with simpler operators such as '=', 'contains', 'startswith', 'endswith'",
                (3, 49)
            ),
            (
                "'proc.pname' may be a valid field misused as a const string value",
                (3, 69)
            ),
            (
                "'tolower(x)' may be a valid field transformer misused as a const string value",
                (3, 94)
            ),
        ]
    );
    // A regex that needs a regex engine, and values that are no field, are not.
    let quiet = compiled_warnings(
        "- rule: t\n  desc: d\n  condition: evt.type=open and (proc.name regex \"a.b\" or proc.name regex \"^z.*\" and proc.name in (bash, /usr/bin/x))\n  output: o\n  priority: INFO\n",
    );
    let hints: Vec<&str> = quiet
        .iter()
        .filter(|w| w.code == Code::CompileCondition)
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(
        hints,
        ["regex check with '^z.*' may be optimized with simpler operators such as '=', 'contains', 'startswith', 'endswith'"]
    );
}

#[test]
fn a_bad_value_is_located_at_the_value() {
    // As Falco master places them: the value of the key, even inside an
    // exception entry.
    let (errors, _) = load(&format!("{RULE}  enabled: maybe\n"));
    assert_eq!(chain(&errors[0])[2], ("value for", "enabled", 5, 11));
    let (errors, _) =
        load("- rule: t\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: LOUD\n");
    assert_eq!(chain(&errors[0])[2], ("rule priority", "", 4, 12));
    let (errors, _) = load(&format!(
        "{RULE}  exceptions:\n    - name: e1\n      fields: [proc.name]\n      values: abc\n"
    ));
    assert_eq!(chain(&errors[0])[3], ("exception values", "", 8, 14));
}

#[test]
fn bad_values_and_arguments_are_reported_in_libsinsps_words() {
    // Each message as Falco master gives it for the same condition.
    let cases = [
        ("proc.pid = abc", "abc is not a valid number"),
        ("proc.pid = 1e+", "1e+ is not a valid number"),
        (
            "evt.failed = maybe",
            "filter error: unrecognized boolean value maybe",
        ),
        ("fd.ip = 1.2.3", "unrecognized IPv4 address 1.2.3"),
        ("fd.net = 1.2.3.4/abc", "abc is not a valid number"),
        ("fd.net = 1.2.3.4/40", "invalid netmask 40"),
        ("fd.net = ::1/200", "invalid v6 netmask 200"),
        (
            "proc.name = \"a\\x00b\"",
            "filter error: filter value cannot contain a NUL byte (\\x00)",
        ),
        (
            "proc.name regex \"a\\x00\"",
            "filter error: filter value cannot contain a NUL byte (\\x00)",
        ),
        (
            "proc.name regex \"\\xff\"",
            "invalid regex pattern: invalid UTF-8",
        ),
        (
            "evt.buffer bcontains \"\\x00\"",
            "filter error: bcontains and bstartswith operator support hex strings only",
        ),
        (
            "proc.name[1] = a",
            "filter_check called with nonexistent field proc.name[1]",
        ),
        (
            "proc.aname[x] = a",
            "filter_check called with nonexistent field proc.aname[x]",
        ),
        ("evt.arg = a", "filter syntax error: evt.arg"),
    ];
    for (condition, message) in cases {
        let mut loader = RulesLoader::new();
        loader.load_str(
            "rules.yaml",
            &format!("- rule: t\n  desc: d\n  condition: evt.type=open and {condition}\n  output: o\n  priority: INFO\n"),
        );
        loader.compile(peregrine_engine::syscall_fields::SyscallFields::new());
        let errors = &loader.results()[0].errors;
        assert_eq!(errors.len(), 1, "{condition}: {errors:#?}");
        assert_eq!(errors[0].message, message, "{condition}");
    }
    // A buffer may hold a NUL, and a literal may hold any byte.
    for condition in ["evt.buffer = \"a\\x00b\"", "proc.name contains \"\\xff\""] {
        let mut loader = RulesLoader::new();
        loader.load_str(
            "rules.yaml",
            &format!("- rule: t\n  desc: d\n  condition: evt.type=open and {condition}\n  output: o\n  priority: INFO\n"),
        );
        loader.compile(peregrine_engine::syscall_fields::SyscallFields::new());
        assert!(loader.results()[0].errors.is_empty(), "{condition}");
    }
}

/// Diagnostics by code and item name.
type Reported = Vec<(Code, String)>;

/// Errors and warnings of loading and compiling `yaml`.
fn reported(yaml: &str) -> (Reported, Reported) {
    let mut loader = RulesLoader::new();
    loader.load_str("rules.yaml", yaml);
    loader.compile(peregrine_engine::syscall_fields::SyscallFields::new());
    let r = loader.results().last().expect("one result").clone();
    let items = |ds: &[Diagnostic]| {
        ds.iter()
            .map(|d| (d.code, d.item_name.clone()))
            .collect::<Vec<_>>()
    };
    (items(&r.errors), items(&r.warnings))
}

#[test]
fn a_load_reports_the_first_error_in_rule_order_as_falco() {
    // Falco's compiler walks the rules in order and stops at the first
    // error, whether a syntax error or an unknown field: what earlier rules
    // warned about stays, later rules and unused lists are not reported
    // (each case checked against Falco master's -V).
    let dir = "  desc: d\n  output: o\n  priority: INFO\n";
    let rule =
        |name: &str, condition: &str| format!("- rule: {name}\n  condition: {condition}\n{dir}");
    let unused = "- list: unused_l\n  items: [a]\n";
    let deprecated = "evt.type=open and evt.dir=<";
    let (errors, warnings) = reported(&format!(
        "{unused}{}{}{}{}",
        rule("r0", deprecated),
        rule("r1", "evt.type=open and proc.nme=cat"),
        rule("r2", "evt.type=open and proc.nxe=cat"),
        rule("r3", deprecated),
    ));
    assert_eq!(errors, [(Code::ErrCompileCondition, "r1".to_string())]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].1, "r0");
    // An unknown field before a syntax error: the unknown field.
    let (errors, _) = reported(&format!(
        "{}{}",
        rule("r1", "evt.type=open and proc.nme=cat"),
        rule("r2", "evt.type=open and")
    ));
    assert_eq!(errors, [(Code::ErrCompileCondition, "r1".to_string())]);
    // A syntax error before an unknown field: the syntax error.
    let (errors, _) = reported(&format!(
        "{}{}",
        rule("r1", "evt.type=open and"),
        rule("r2", "evt.type=open and proc.nme=cat")
    ));
    assert_eq!(errors, [(Code::ErrCompileCondition, "r1".to_string())]);
}

#[test]
fn within_a_rule_the_output_is_compiled_before_the_condition() {
    // Falco's compiler takes a rule's exceptions, then its output, then
    // its condition (parse, macros, warnings, filter), and the first error
    // ends the walk; the warnings given before it stay.
    let rule = |condition: &str, output: &str| {
        format!("- rule: r\n  desc: d\n  condition: {condition}\n  output: {output}\n  priority: INFO\n")
    };
    let r = || "r".to_string();
    // A bad output and an unknown field in the condition: the output.
    let (errors, _) = reported(&rule("evt.type=open and proc.nme=cat", "o %not.afield"));
    assert_eq!(errors, [(Code::ErrCompileOutput, r())]);
    // A bad output and a syntax error in the condition: still the output.
    let (errors, warnings) = reported(&rule("evt.type=open and", "o %not.afield"));
    assert_eq!(errors, [(Code::ErrCompileOutput, r())]);
    assert!(warnings.is_empty(), "{warnings:?}");
    // %container.info is warned about before the output fails.
    let (errors, warnings) = reported(&rule("evt.type=open", "o %container.info %not.afield"));
    assert_eq!(errors, [(Code::ErrCompileOutput, r())]);
    assert_eq!(warnings, [(Code::DeprecatedItem, r())]);
    // The condition's warnings come before its filter fails to compile.
    let (errors, warnings) = reported(&rule("evt.type=open and evt.dir=< and proc.nme=cat", "o"));
    assert_eq!(errors, [(Code::ErrCompileCondition, r())]);
    assert_eq!(warnings, [(Code::DeprecatedField("evt.dir"), r())]);
    // The output's deprecated fields, then the condition's; the hints of
    // the compiled filter, then too many event types, last.
    let (errors, warnings) = reported(&rule(
        "evt.dir=< and proc.name regex 'abc'",
        "o %evt.latency",
    ));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        warnings,
        [
            (Code::DeprecatedField("evt.latency"), r()),
            (Code::DeprecatedField("evt.dir"), r()),
            (Code::CompileCondition, r()),
            (Code::NoEvttype, r()),
        ]
    );
}

#[test]
fn a_yaml_parse_error_is_placed_at_yaml_cpps_mark() {
    // Current Falco adds a "value for" step at the parser's mark (0-based
    // line and column, byte offset) under the rules content; each case
    // is what Falco master's -V printed for the same text.
    for (text, message, at) in [
        (
            "this : is : not : yaml",
            "yaml-cpp: error at line 1, column 11: illegal map value",
            (0, 10, 10),
        ),
        (
            "- list: l\n  items: [a, b]\n- macro: m\n  condition: : x\n",
            "yaml-cpp: error at line 4, column 14: illegal map value",
            (3, 13, 50),
        ),
        (
            "- list: l\n  items: [a, b\n",
            "yaml-cpp: error at line 3, column 1: end of sequence flow not found",
            (2, 0, 25),
        ),
    ] {
        let (errors, _) = load(text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        let e = &errors[0];
        assert_eq!(e.code, Code::ErrYamlParse);
        assert_eq!(e.message, message);
        assert_eq!(
            chain(e),
            [("rules content", "", 0, 0), ("value for", "", at.0, at.1)]
        );
        assert_eq!(e.locations[1].mark.offset, at.2, "{text}");
    }
}

/// A rule whose last key, `desc`, is `tail`: an open quoted scalar.
fn rule_ending_in(tail: &str) -> String {
    format!(
        "- rule: r1\n  condition: evt.type = open\n  priority: WARNING\n  output: \"abc %fd.name\"\n  desc: {tail}"
    )
}

#[test]
fn a_quoted_scalar_the_file_leaves_open_reads_as_yaml_cpp_reads_it() {
    // (the end of the file after `desc: `, the description Falco master
    // loaded, as -L printed it). yaml-cpp ends an open quoted scalar at
    // the end of the file when a line break came after its last text:
    // that break folds into a space, blank lines after it clip to one
    // line break, later lines at any indentation (`- rule:` included) are
    // the scalar's, and a CRLF is one break.
    for (tail, desc) in [
        ("\"the desc\n", "the desc "),
        ("'the desc\n", "the desc "),
        ("\"the desc\n\n", "the desc\n"),
        ("\"the desc\n\n\n", "the desc\n"),
        ("'the desc\n\n\n", "the desc\n"),
        ("\"the desc\n   ", "the desc "),
        ("\"the desc\n\t", "the desc "),
        ("\"the desc   \n", "the desc "),
        ("\"the desc\n\n  ", "the desc\n"),
        ("\"the desc\n   \n", "the desc\n"),
        ("\"the desc\r\n", "the desc "),
        ("\"the desc\n  more words\n", "the desc more words "),
        (
            "\"the desc\n   second\n\n   third   \n",
            "the desc second\nthird ",
        ),
        ("\"the desc\n# comment\n", "the desc # comment "),
        (
            "\"the desc\n- rule: r2\n  desc: d\n",
            "the desc - rule: r2 desc: d ",
        ),
        ("\"the desc\\\n", "the desc"),
        ("\"it\\\"s\n", "it\"s "),
        ("'it''s\n", "it's "),
        ("\"the \\x41 desc\n", "the A desc "),
        ("\"\n", " "),
    ] {
        let text = rule_ending_in(tail);
        let mut loader = RulesLoader::new();
        let result = loader.load_str("rules.yaml", &text).clone();
        assert!(result.errors.is_empty(), "{tail:?}: {:#?}", result.errors);
        assert!(
            result.warnings.is_empty(),
            "{tail:?}: {:#?}",
            result.warnings
        );
        let rule = loader.definitions().rules.get("r1");
        assert_eq!(rule.map(|r| r.desc.as_str()), Some(desc), "{tail:?}");
    }
}

#[test]
fn closed_quoted_scalars_keep_trailing_breaks_as_yaml_cpp_keeps_them() {
    // (desc as written, the description Falco master printed with -L in
    // JSON). Empty lines before the closing quote fold into line breaks;
    // yaml-cpp keeps one of them, or two after an escaped character,
    // where libyaml keeps them all.
    for (written, desc) in [
        ("\"x y\n\n\n  \"", "x y\n"),
        ("\"x\\t\n\n\n\n  \"", "x\t\n\n"),
        ("\"x\\n\n\n\n\n\"", "x\n\n\n"),
        ("\"x\\\\\n\n\n\n  \"", "x\\\n\n"),
        ("'it''\n\n\n\n'", "it'\n\n"),
        ("\"x y\n\n  \"", "x y\n"),
        ("\"a\n\n\nb\"", "a\n\nb"),
    ] {
        let text = format!(
            "- rule: r1\n  condition: evt.type = open\n  priority: WARNING\n  output: o\n  desc: {written}\n"
        );
        let mut loader = RulesLoader::new();
        let result = loader.load_str("rules.yaml", &text).clone();
        assert!(
            result.errors.is_empty(),
            "{written:?}: {:#?}",
            result.errors
        );
        let rule = loader.definitions().rules.get("r1");
        assert_eq!(rule.map(|r| r.desc.as_str()), Some(desc), "{written:?}");
    }
}

#[test]
fn values_of_open_quoted_scalars_are_checked_as_falco_checks_them() {
    // Falco master's load results: the value is what yaml-cpp folded, so
    // a priority gets a trailing space and is invalid, an output is
    // trimmed, a condition is not, a description of blank lines clipped
    // to nothing is empty, and a list item keeps its space.
    let text = "- rule: r1\n  condition: evt.type = open\n  output: \"abc %fd.name\"\n  desc: d\n  priority: 'WARNING\n";
    let (errors, _) = load(text);
    assert!(
        has(
            &errors,
            Code::ErrYamlValidate,
            "rule priority",
            "",
            "Invalid priority"
        ),
        "{errors:#?}"
    );
    let (errors, _) = load(&rule_ending_in("\"\n\n"));
    assert!(
        has(
            &errors,
            Code::ErrYamlValidate,
            "value for",
            "desc",
            "Value must be non-empty"
        ),
        "{errors:#?}"
    );
    let mut loader = RulesLoader::new();
    loader.load_str(
        "rules.yaml",
        "- rule: r1\n  condition: evt.type = open\n  desc: d\n  priority: WARNING\n  output: \"abc %fd.name\n",
    );
    let rule = loader.definitions().rules.get("r1");
    assert_eq!(rule.map(|r| r.output.as_str()), Some("abc %fd.name"));
    let mut loader = RulesLoader::new();
    loader.load_str(
        "rules.yaml",
        "- rule: r1\n  desc: d\n  priority: WARNING\n  output: \"abc %fd.name\"\n  condition: \"evt.type = open\n",
    );
    let rule = loader.definitions().rules.get("r1");
    assert_eq!(rule.map(|r| r.condition.as_str()), Some("evt.type = open "));
    let mut loader = RulesLoader::new();
    loader.load_str("rules.yaml", "- list: l1\n  items:\n    - a\n    - \"b\n");
    let list = loader.definitions().lists.get("l1");
    assert_eq!(
        list.map(|l| l.items.clone()),
        Some(vec!["a".to_string(), "b ".to_string()])
    );
    // The open scalar where a key belongs: a key of its own, unknown.
    let (errors, warnings) = load(
        "- rule: r1\n  condition: evt.type = open\n  output: \"abc %fd.name\"\n  priority: WARNING\n  desc: d\n  \"enabled\n",
    );
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(
        has(
            &warnings,
            Code::UnknownKey,
            "rule",
            "r1",
            "Unknown key 'enabled '. The key will be ignored."
        ),
        "{warnings:#?}"
    );
}

#[test]
fn open_quoted_scalars_yaml_cpp_refuses_are_refused_as_it_does() {
    // (end of the file after `desc: `, Falco master's message, its mark
    // as 0-based line, column and offset).
    let base = rule_ending_in("").len();
    for (tail, message, at) in [
        // The input ends inside a line of the scalar (a lone CR is no
        // line break to yaml-cpp).
        (
            "\"the desc",
            "yaml-cpp: error at line 5, column 18: illegal EOF in scalar",
            (4, 17, base + 9),
        ),
        (
            "'the desc",
            "yaml-cpp: error at line 5, column 18: illegal EOF in scalar",
            (4, 17, base + 9),
        ),
        (
            "\"the desc\n  more words",
            "yaml-cpp: error at line 6, column 13: illegal EOF in scalar",
            (5, 12, base + 22),
        ),
        (
            "\"the desc\r",
            "yaml-cpp: error at line 5, column 19: illegal EOF in scalar",
            (4, 18, base + 10),
        ),
        // An escape the end of the input cuts: yaml-cpp escapes its end
        // character, past the end.
        (
            "\"the desc\\",
            "yaml-cpp: error at line 5, column 20: unknown escape character: \u{4}",
            (4, 19, base + 11),
        ),
        // A document marker inside the scalar.
        (
            "\"the desc\n---\n",
            "yaml-cpp: error at line 6, column 1: illegal document indicator in scalar",
            (5, 0, base + 10),
        ),
        (
            "\"the desc\n...\n",
            "yaml-cpp: error at line 6, column 1: illegal document indicator in scalar",
            (5, 0, base + 10),
        ),
    ] {
        let (errors, _) = load(&rule_ending_in(tail));
        assert_eq!(errors.len(), 1, "{tail:?}: {errors:#?}");
        let e = &errors[0];
        assert_eq!(e.code, Code::ErrYamlParse, "{tail:?}");
        assert_eq!(e.message, message, "{tail:?}");
        assert_eq!(
            chain(e),
            [("rules content", "", 0, 0), ("value for", "", at.0, at.1)],
            "{tail:?}"
        );
        assert_eq!(e.locations[1].mark.offset, at.2, "{tail:?}");
    }
    // What yaml-cpp finds missing after an open scalar, it finds at the
    // end of the file.
    for (text, message, at) in [
        (
            "- rule: r1\n  desc: d\n  priority: WARNING\n  output: \"abc %fd.name\"\n  condition: evt.type = open\n  tags: [\"a\n",
            "yaml-cpp: error at line 7, column 1: end of sequence flow not found",
            (6, 0),
        ),
        (
            "- rule: r1\n  desc: \"d\n---\n- list: l1\n  items: [a]\n",
            "yaml-cpp: error at line 3, column 1: illegal document indicator in scalar",
            (2, 0),
        ),
    ] {
        let (errors, _) = load(text);
        assert_eq!(errors.len(), 1, "{text:?}: {errors:#?}");
        assert_eq!(errors[0].message, message, "{text:?}");
        assert_eq!(
            chain(&errors[0]),
            [("rules content", "", 0, 0), ("value for", "", at.0, at.1)],
            "{text:?}"
        );
    }
}

/// An unknown escape in a closed double-quoted scalar, as Falco master
/// reports it (checked there): yaml-cpp names the byte after the
/// backslash and marks the byte after that, where libyaml marks the
/// backslash.
#[test]
fn an_unknown_escape_is_named_and_marked_as_yaml_cpp_does() {
    let head = "- rule: r\n  desc: d\n  condition: evt.type = open\n";
    for (output, message, at) in [
        (
            "  output: \"a \\q b\"\n",
            "yaml-cpp: error at line 4, column 16: unknown escape character: q",
            (3, 15),
        ),
        (
            "  output: \"\\9\"\n",
            "yaml-cpp: error at line 4, column 14: unknown escape character: 9",
            (3, 13),
        ),
    ] {
        let text = format!("{head}{output}  priority: WARNING\n");
        let (errors, _) = load(&text);
        assert_eq!(errors.len(), 1, "{output:?}: {errors:#?}");
        let e = &errors[0];
        assert_eq!(e.code, Code::ErrYamlParse, "{output:?}");
        assert_eq!(e.message, message, "{output:?}");
        assert_eq!(
            chain(e),
            [("rules content", "", 0, 0), ("value for", "", at.0, at.1)],
            "{output:?}"
        );
        let backslash = text.find('\\').unwrap();
        assert_eq!(e.locations[1].mark.offset, backslash + 2, "{output:?}");
    }
}
