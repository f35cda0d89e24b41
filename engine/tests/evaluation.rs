//! Compiled rules against events: operators, lists, macros, exceptions,
//! appends and overrides, the event-type index and first-match order.

mod common;

use common::{TestEvent, TestSyscallSource};
use peregrine_engine::field::Value;
use peregrine_engine::rules::{Code, CompiledRules, Matching, RuleEventTypes, RulesLoader};

fn compile(yaml: &str) -> (RulesLoader, CompiledRules<TestSyscallSource>) {
    let mut loader = RulesLoader::new();
    let r = loader.load_str("test.yaml", yaml).clone();
    assert!(r.errors.is_empty(), "load errors: {:#?}", r.errors);
    let rules = loader.compile(TestSyscallSource::new());
    let errors: Vec<_> = loader
        .results()
        .iter()
        .flat_map(|r| r.errors.iter())
        .collect();
    assert!(errors.is_empty(), "compile errors: {errors:#?}");
    (loader, rules)
}

fn rule(cond: &str) -> String {
    format!("- rule: r\n  desc: d\n  condition: {cond}\n  output: o\n  priority: WARNING\n")
}

fn matches(rules: &mut CompiledRules<TestSyscallSource>, ev: &TestEvent) -> Vec<String> {
    let mut out = Vec::new();
    rules.evaluate(ev, |r, _| out.push(r.name.clone()));
    out
}

fn check(cond: &str, ev: &TestEvent) -> bool {
    let (_, mut rules) = compile(&rule(&format!("'{}'", cond.replace('\'', "''"))));
    !matches(&mut rules, ev).is_empty()
}

fn open_of(path: &str) -> TestEvent {
    TestEvent::new("open")
        .s("fd.name", path)
        .s("proc.name", "cat")
        .with("proc.pid", Value::Uint(42))
}

#[test]
fn string_operators() {
    let ev = open_of("/etc/Shadow.bak");
    assert!(check("evt.type=open and fd.name = /etc/Shadow.bak", &ev));
    assert!(!check("evt.type=open and fd.name != /etc/Shadow.bak", &ev));
    assert!(check("evt.type=open and fd.name contains Shadow", &ev));
    assert!(!check("evt.type=open and fd.name contains shadow", &ev));
    assert!(check("evt.type=open and fd.name icontains SHADOW", &ev));
    assert!(check("evt.type=open and fd.name startswith /etc/", &ev));
    assert!(check("evt.type=open and fd.name endswith .bak", &ev));
    assert!(check("evt.type=open and fd.name glob '/etc/*.ba?'", &ev));
    assert!(!check("evt.type=open and fd.name glob '/etc/s*'", &ev));
    assert!(check("evt.type=open and fd.name iglob '/ETC/s*'", &ev));
    assert!(check(
        "evt.type=open and fd.name glob '/etc/[A-Z]hadow.bak'",
        &ev
    ));
    assert!(check("evt.type=open and fd.name pmatch (/usr, /etc)", &ev));
    assert!(
        !check("evt.type=open and fd.name pmatch (/et)", &ev),
        "pmatch matches whole path components"
    );
    assert!(check(
        "evt.type=open and fd.name regex '/etc/S[a-z]+\\\\.bak'",
        &ev
    ));
    assert!(
        !check("evt.type=open and fd.name regex 'Shadow'", &ev),
        "regex matches the whole value"
    );
    assert!(check(
        "evt.type=open and fd.name in (/a, /etc/Shadow.bak)",
        &ev
    ));
    // Strings are ordered against another field's value: Falco's parser
    // takes only a number after `<` and `>` otherwise.
    assert!(check("evt.type=open and fd.name < val(proc.name)", &ev));
    assert!(!check("evt.type=open and fd.name > val(proc.name)", &ev));
    assert!(check("evt.type=open and fd.name exists", &ev));
    assert!(!check("evt.type=open and container.id exists", &ev));
    // A missing field makes every comparison false, != included.
    assert!(!check("evt.type=open and container.id != host", &ev));
}

#[test]
fn numeric_bool_ip_and_bytes_operators() {
    let ev = open_of("/x")
        .with("fd.sip", Value::Ip("10.1.2.3".parse().unwrap()))
        .with("fd.num", Value::Int(-3))
        .with("evt.is_open_read", Value::Bool(true))
        .with("evt.buffer", Value::Bytes(b"\x01\x02hello".to_vec().into()));
    assert!(check("evt.type=open and proc.pid = 42", &ev));
    assert!(check(
        "evt.type=open and proc.pid >= 42 and proc.pid < 43",
        &ev
    ));
    assert!(check("evt.type=open and proc.pid in (1, 42)", &ev));
    assert!(check("evt.type=open and fd.num < 0", &ev));
    assert!(check("evt.type=open and evt.is_open_read = true", &ev));
    assert!(check("evt.type=open and fd.sip = 10.0.0.0/8", &ev));
    assert!(!check("evt.type=open and fd.sip = 192.168.0.0/16", &ev));
    assert!(check(
        "evt.type=open and fd.sip in (10.1.2.3, 127.0.0.1)",
        &ev
    ));
    assert!(check(
        "evt.type=open and evt.buffer bcontains 68656c6c6f",
        &ev
    ));
    assert!(check("evt.type=open and evt.buffer bstartswith 0102", &ev));
    assert!(!check("evt.type=open and evt.buffer bstartswith 02", &ev));
}

#[test]
fn bad_literals_are_compile_errors() {
    let mut loader = RulesLoader::new();
    loader.load_str("t.yaml", &rule("evt.type=open and proc.pid = abc"));
    loader.compile(TestSyscallSource::new());
    let e = &loader.results()[0].errors;
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].code, Code::ErrCompileCondition);
    assert!(e[0].message.contains("abc"), "{}", e[0].message);
    // Numbers are decimal only, as Falco's value parser reads them:
    // a hexadecimal or binary literal is an error, not a silent zero.
    for literal in ["0x10", "0b101", "1e3", "12abc"] {
        let mut loader = RulesLoader::new();
        loader.load_str(
            "t.yaml",
            &rule(&format!("evt.type=open and proc.pid = {literal}")),
        );
        loader.compile(TestSyscallSource::new());
        let e = &loader.results()[0].errors;
        assert_eq!(e.len(), 1, "{literal}: {e:#?}");
        assert!(e[0].message.contains(literal), "{}", e[0].message);
    }
}

#[test]
fn list_fields_in_means_all_intersects_means_any() {
    let ev = TestEvent::new("execve")
        .s("fd.types", "ipv4")
        .s("fd.types", "file");
    assert!(check(
        "evt.type=execve and fd.types in (ipv4, file, pipe)",
        &ev
    ));
    assert!(!check("evt.type=execve and fd.types in (ipv4)", &ev));
    assert!(check("evt.type=execve and fd.types intersects (ipv4)", &ev));
    assert!(!check(
        "evt.type=execve and fd.types intersects (unix)",
        &ev
    ));
}

/// A field with several values that is no list field (every ancestor of
/// `proc.aname`): each value is compared, and one match is a match.
#[test]
fn ancestor_fields_match_when_any_ancestor_does() {
    let ev = TestEvent::new("execve")
        .s("proc.aname", "bash")
        .s("proc.aname", "sshd");
    assert!(check("evt.type=execve and proc.aname in (bash)", &ev));
    assert!(check(
        "evt.type=execve and proc.aname in (nginx, sshd)",
        &ev
    ));
    assert!(!check("evt.type=execve and proc.aname in (nginx)", &ev));
    assert!(check(
        "evt.type=execve and proc.aname intersects (sshd)",
        &ev
    ));
}

#[test]
fn transformers_and_field_comparison() {
    let ev = TestEvent::new("execve")
        .s("proc.exe", "/usr/bin/Cat")
        .s("proc.name", "cat")
        .s("proc.args", "aGVsbG8=");
    assert!(check(
        "evt.type=execve and tolower(basename(proc.exe)) = val(proc.name)",
        &ev
    ));
    assert!(!check(
        "evt.type=execve and basename(proc.exe) = val(proc.name)",
        &ev
    ));
    assert!(check("evt.type=execve and toupper(proc.name) = CAT", &ev));
    assert!(check("evt.type=execve and len(proc.exe) = 12", &ev));
    assert!(check("evt.type=execve and b64(proc.args) = hello", &ev));
    // A transformed field on the right compares with that field's value.
    assert!(check(
        "evt.type=execve and proc.name = tolower(basename(proc.exe))",
        &ev
    ));
    assert!(!check(
        "evt.type=execve and proc.name = basename(proc.exe)",
        &ev
    ));
    assert!(check(
        "evt.type=execve and len(proc.name) < len(proc.exe)",
        &ev
    ));
}

#[test]
fn lists_macros_and_nested_lists_expand() {
    let yaml = "
- list: shells
  items: [bash, sh]
- list: all_shells
  items: [shells, zsh, '\"my shell\"']
- macro: spawned_shell
  condition: evt.type = execve and proc.name in (all_shells)
- macro: outer
  condition: spawned_shell and not proc.pname = init
- rule: shell
  desc: d
  condition: outer
  output: o
  priority: notice
";
    let (_, mut rules) = compile(yaml);
    for (name, want) in [
        ("bash", true),
        ("zsh", true),
        ("my shell", true),
        ("fish", false),
        ("shells", false),
    ] {
        let ev = TestEvent::new("execve")
            .s("proc.name", name)
            .s("proc.pname", "login");
        assert_eq!(!matches(&mut rules, &ev).is_empty(), want, "{name}");
    }
    let ev = TestEvent::new("execve")
        .s("proc.name", "bash")
        .s("proc.pname", "init");
    assert!(matches(&mut rules, &ev).is_empty());
}

#[test]
fn append_and_override_across_files() {
    let mut loader = RulesLoader::new();
    loader.load_str(
        "base.yaml",
        "
- list: bins
  items: [cat]
- macro: m
  condition: proc.name in (bins)
- rule: r
  desc: d
  condition: evt.type = open and m
  output: base
  priority: WARNING
",
    );
    let r = loader.load_str(
        "local.yaml",
        "
- list: bins
  items: [less]
  append: true
- macro: m
  condition: or proc.name = vi
  append: true
- rule: r
  condition: and not fd.name startswith /tmp
  append: true
- rule: r
  output: local %proc.name
  priority: ERROR
  override:
    output: replace
    priority: replace
",
    );
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    // `append: true` still works, and each use is reported as deprecated,
    // naming the item; `override:` is not.
    let deprecated: Vec<(&str, &str)> = r
        .warnings
        .iter()
        .filter(|w| w.code.as_str() == "LOAD_DEPRECATED_ITEM")
        .map(|w| (w.item_type.as_str(), w.item_name.as_str()))
        .collect();
    assert_eq!(
        deprecated,
        [("list", "bins"), ("macro", "m"), ("rule", "r")]
    );
    assert_eq!(r.warnings[0].code.as_str(), "LOAD_DEPRECATED_ITEM");
    let mut rules = loader.compile(TestSyscallSource::new());
    assert_eq!(
        rules.rules()[0]
            .output
            .render(rules.source(), &open_of("/etc")),
        "local cat"
    );
    assert_eq!(rules.rules()[0].priority.as_str(), "Error");
    for (proc, path, want) in [
        ("cat", "/etc", true),
        ("less", "/etc", true),
        ("vi", "/etc", true),
        ("vim", "/etc", false),
        ("cat", "/tmp/x", false),
    ] {
        let ev = TestEvent::new("open")
            .s("proc.name", proc)
            .s("fd.name", path);
        assert_eq!(!matches(&mut rules, &ev).is_empty(), want, "{proc} {path}");
    }
}

#[test]
fn exceptions_tuple_and_single_field_forms() {
    let yaml = "
- list: trusted
  items: [sshd]
- rule: r
  desc: d
  condition: evt.type = open and fd.name startswith /etc
  output: o
  priority: WARNING
  exceptions:
    - name: proc_file
      fields: [proc.name, fd.name]
      comps: [=, startswith]
      values:
        - [cat, /etc/hosts]
    - name: trusted_procs
      fields: proc.name
      values: [trusted, cron]
    - name: parents
      fields: [proc.pname]
      comps: [in]
      values:
        - [[systemd, init]]
- rule: r
  exceptions:
    - name: proc_file
      values:
        - [less, /etc/passwd]
  append: true
";
    let (_, mut rules) = compile(yaml);
    for (proc, parent, path, want) in [
        ("cat", "bash", "/etc/hosts", false),
        ("cat", "bash", "/etc/shadow", true),
        ("less", "bash", "/etc/passwd", false),
        ("sshd", "bash", "/etc/shadow", false),
        ("cron", "bash", "/etc/shadow", false),
        ("vi", "init", "/etc/shadow", false),
        ("vi", "bash", "/etc/shadow", true),
    ] {
        let ev = TestEvent::new("open")
            .s("proc.name", proc)
            .s("proc.pname", parent)
            .s("fd.name", path);
        assert_eq!(
            !matches(&mut rules, &ev).is_empty(),
            want,
            "{proc} {parent} {path}"
        );
    }
}

#[test]
fn event_type_index_and_first_match_order() {
    let yaml = "
- rule: any_cat
  desc: d
  condition: proc.name = cat
  output: o
  priority: INFO
- rule: open_cat
  desc: d
  condition: evt.type in (open, openat) and proc.name = cat
  output: o
  priority: INFO
- rule: exec_cat
  desc: d
  condition: evt.type = execve and proc.name = cat
  output: o
  priority: INFO
";
    let (loader, mut rules) = compile(yaml);
    let warned: Vec<_> = loader.results()[0]
        .warnings
        .iter()
        .filter(|w| w.code == Code::NoEvttype)
        .map(|w| w.item_name.as_str())
        .collect();
    assert_eq!(warned, vec!["any_cat"]);
    assert_eq!(rules.rules()[1].event_types().map(|s| s.len()), Some(2));
    let ev = TestEvent::new("openat").s("proc.name", "cat");
    assert_eq!(
        matches(&mut rules, &ev),
        vec!["any_cat"],
        "the first rule in load order wins"
    );
    rules.matching = Matching::All;
    assert_eq!(
        matches(&mut rules, &ev),
        vec!["any_cat", "open_cat"],
        "exec_cat is not even checked"
    );
    rules.set_enabled(false, |r| r.name == "any_cat");
    assert_eq!(
        matches(&mut rules, &TestEvent::new("execve").s("proc.name", "cat")),
        vec!["exec_cat"]
    );
}

#[test]
fn disabled_rules_and_enabled_only_items() {
    let yaml = "
- rule: r
  desc: d
  condition: evt.type = open
  output: o
  priority: INFO
  enabled: false
- rule: s
  desc: d
  condition: evt.type = open
  output: o
  priority: INFO
- rule: s
  enabled: false
- rule: r
  enabled: true
- rule: s
  enabled: false
  override:
    enabled: replace
";
    let (loader, mut rules) = compile(yaml);
    assert_eq!(matches(&mut rules, &TestEvent::new("open")), vec!["r"]);
    // The two lone `enabled:` items are deprecated; the override is not.
    let deprecated: Vec<(&str, Option<usize>)> = loader.results()[0]
        .warnings
        .iter()
        .filter(|w| w.code.as_str() == "LOAD_DEPRECATED_ITEM")
        .map(|w| (w.item_name.as_str(), w.line))
        .collect();
    assert_eq!(deprecated, [("s", Some(13)), ("r", Some(15))]);
}

#[test]
fn unknown_fields_error_or_skip() {
    let mut loader = RulesLoader::new();
    loader.load_str(
        "t.yaml",
        "
- rule: skipped
  desc: d
  condition: evt.type = open and proc.nobody = x
  output: o
  priority: INFO
  skip-if-unknown-filter: true
- rule: kept
  desc: d
  condition: evt.type = open
  output: o
  priority: INFO
",
    );
    let rules = loader.compile(TestSyscallSource::new());
    assert_eq!(rules.rules().len(), 1);
    let w = &loader.results()[0].warnings;
    assert!(
        w.iter()
            .any(|w| w.code == Code::UnknownFilter && w.item_name == "skipped"),
        "{w:#?}"
    );
}

#[test]
fn diagnostics_carry_file_and_line() {
    let mut loader = RulesLoader::new();
    let r = loader
        .load_str(
            "lines.yaml",
            "# comment\n\n- list: l\n  items: [a]\n\n- macro: m\n  condition: evt.type=open and\n",
        )
        .clone();
    let err = r.errors.first().expect("a parse error");
    assert_eq!(
        (err.file.as_str(), err.line, err.item_name.as_str()),
        ("lines.yaml", Some(6), "m")
    );
    // As Falco, nothing is reported about unused items after an error.
    assert!(r.warnings.iter().all(|w| w.code != Code::UnusedList));
    let r = RulesLoader::new()
        .load_str("lines.yaml", "# comment\n\n- list: l\n  items: [a]\n")
        .clone();
    let warn = r
        .warnings
        .iter()
        .find(|w| w.code == Code::UnusedList)
        .expect("unused list warning");
    assert_eq!(warn.line, Some(3));
    assert!(
        err.to_string()
            .starts_with("lines.yaml:6: LOAD_ERR_COMPILE_CONDITION macro 'm'"),
        "{err}"
    );
    assert_eq!(
        err.condition_pos,
        Some((1, 18)),
        "the end of `evt.type=open and`"
    );
}

#[test]
fn priorities_parse_case_insensitively() {
    for (text, want) in [
        ("emergency", "Emergency"),
        ("ALERT", "Alert"),
        ("Critical", "Critical"),
        ("error", "Error"),
        ("warning", "Warning"),
        ("NOTICE", "Notice"),
        ("info", "Informational"),
        ("informational", "Informational"),
        ("debug", "Debug"),
    ] {
        let (_, rules) = compile(&rule("evt.type=open").replace("WARNING", text));
        assert_eq!(rules.rules()[0].priority.as_str(), want, "{text}");
    }
    let mut loader = RulesLoader::new();
    let r = loader.load_str("t.yaml", &rule("evt.type=open").replace("WARNING", "loud"));
    assert_eq!(r.errors[0].code, Code::ErrYamlValidate);
}

#[test]
fn glob_matching_rules() {
    use peregrine_engine::rules::eval::glob_match;
    assert!(glob_match("/etc/*", "/etc/passwd", false));
    assert!(glob_match("*", "", false));
    assert!(glob_match("a*b*c", "axxbyyc", false));
    assert!(!glob_match("a*b*c", "axxbyy", false));
    // `?` takes one byte, as libsinsp's glob (checked against Falco 0.63).
    assert!(!glob_match("h?llo", "héllo", false));
    assert!(glob_match("h??llo", "héllo", false));
    assert!(glob_match("[!a-c]x", "dx", false));
    assert!(!glob_match("[!a-c]x", "bx", false));
    assert!(glob_match("[A-C]X", "bx", true));
    assert!(!glob_match("[A-C]X", "bx", false));
    assert!(glob_match(r"\*lit", "*lit", false));
    assert!(glob_match("[unclosed", "[unclosed", false));
}

#[test]
fn rules_of_unknown_sources_are_warned_about() {
    let mut loader = RulesLoader::new();
    loader.load_str(
        "t.yaml",
        &rule("evt.type=open").replace(
            "priority: WARNING",
            "priority: WARNING\n  source: aws_cloudtrail",
        ),
    );
    loader.warn_unknown_sources(&["syscall", "k8s_audit"]);
    let w = &loader.results()[0].warnings;
    assert!(
        w.iter().any(|w| w.code == Code::UnknownSource
            && w.message == "Unknown source aws_cloudtrail, skipping"),
        "{w:#?}"
    );
    assert!(loader.compile(TestSyscallSource::new()).rules().is_empty());
}

#[test]
fn override_keys_for_lists_and_macros() {
    let mut loader = RulesLoader::new();
    loader.load_str(
        "base.yaml",
        "
- list: bins
  items: [cat]
- macro: m
  condition: proc.name in (bins)
- rule: r
  desc: d
  condition: evt.type = open and m
  output: o
  priority: WARNING
",
    );
    let r = loader
        .load_str(
            "local.yaml",
            "
- list: bins
  items: [vi]
  override:
    items: replace
- macro: m
  condition: or proc.name = less
  override:
    condition: append
",
        )
        .clone();
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    let mut rules = loader.compile(TestSyscallSource::new());
    for (proc, want) in [("cat", false), ("vi", true), ("less", true)] {
        let ev = TestEvent::new("open").s("proc.name", proc);
        assert_eq!(!matches(&mut rules, &ev).is_empty(), want, "{proc}");
    }
    let r = loader.load_str(
        "bad.yaml",
        "- list: nope\n  items: [a]\n  override:\n    items: append\n",
    );
    assert_eq!(r.errors[0].code, Code::ErrValidate);
    let r = loader.load_str(
        "bad2.yaml",
        "- macro: m\n  condition: x\n  append: true\n  override:\n    condition: append\n",
    );
    // Falco's reader rejects the pair before looking for the macro.
    assert_eq!(r.errors[0].code, Code::ErrYamlValidate);
}

#[test]
fn event_type_names_are_what_the_enabled_rules_can_match() {
    let two = |a: &str, b: &str| {
        format!(
            "{}{}",
            rule(a),
            rule(b).replace("- rule: r\n", "- rule: r2\n")
        )
    };
    let names = |yaml: &str| {
        let (_, rules) = compile(yaml);
        match rules.event_type_names() {
            RuleEventTypes::Names(s) => Ok(s.into_iter().map(str::to_owned).collect::<Vec<_>>()),
            RuleEventTypes::Any { rule } => Err(rule.to_owned()),
        }
    };
    // Unions across rules, through `and`, `or` and macros.
    let yaml = format!(
        "- macro: spawned\n  condition: evt.type in (execve, execveat)\n{}",
        two(
            "spawned and proc.name=sh",
            "(evt.type=open or evt.type=openat) and fd.name=/etc/shadow"
        )
    );
    assert_eq!(
        names(&yaml),
        Ok(vec![
            "execve".into(),
            "execveat".into(),
            "open".into(),
            "openat".into()
        ])
    );
    // `and` narrows: only what both sides allow.
    assert_eq!(
        names(&rule("evt.type in (open, openat) and evt.type != open")),
        Ok(vec!["openat".into()])
    );
    // One rule open to every type opens the whole set...
    assert_eq!(
        names(&two("evt.type=open", "proc.name=sh")),
        Err("r2".into())
    );
    assert_eq!(
        names(&two("evt.type=open", "evt.type != open")),
        Err("r2".into())
    );
    // ...unless it is disabled.
    let (_, mut rules) = compile(&two("evt.type=open", "proc.name=sh"));
    rules.set_enabled(false, |r| r.name == "r2");
    assert_eq!(
        rules.event_type_names(),
        RuleEventTypes::Names(["open"].into()),
        "the disabled rule no longer counts"
    );
}

#[test]
fn list_modifiers_apply_an_operator_to_each_value() {
    let ev = open_of("/etc/shadow");
    let t = |cond: &str| check(&format!("evt.type=open and {cond}"), &ev);
    // anyof: at least one; allof: every one; oneof: exactly one.
    assert!(t("fd.name startswith anyof (/tmp, /etc)"));
    assert!(!t("fd.name startswith anyof (/tmp, /var)"));
    assert!(t("fd.name contains allof (etc, shadow)"));
    assert!(!t("fd.name contains allof (etc, passwd)"));
    assert!(t("fd.name startswith oneof (/etc, /var)"));
    assert!(!t("fd.name startswith oneof (/etc, /etc/sh)"));
    assert!(t("fd.name endswith oneof (dow, passwd)"));
    assert!(t("proc.name == anyof (cat, less)"));
    assert!(t("proc.name != allof (vi, less)"));
    assert!(!t("proc.name != allof (cat, less)"));
    assert!(t("fd.name glob anyof ('/etc/*', '/var/*')"));
    assert!(t("fd.name regex oneof ('/etc/.*', '/var/.*')"));
    // Without a list after it, `oneof` is a value like any other.
    assert!(!t("proc.name = oneof"));
    assert!(!t("proc.name = oneof and fd.name exists"));
    assert!(check(
        "evt.type=open and proc.name = oneof or fd.name exists",
        &ev
    ));
}

#[test]
fn a_modifier_may_name_a_list() {
    // Falco pastes a list's items in place of its name: in parentheses
    // they are the modifier's list.
    let yaml = "
- list: secret_dirs
  items: [/etc, /root]
- rule: r
  desc: d
  condition: evt.type=open and fd.name startswith anyof (secret_dirs)
  output: o
  priority: WARNING
- rule: r2
  desc: d
  condition: evt.type=open and fd.name startswith allof (secret_dirs)
  output: o
  priority: WARNING
";
    let (_, mut rules) = compile(yaml);
    assert_eq!(matches(&mut rules, &open_of("/etc/shadow")), ["r"]);
    assert!(matches(&mut rules, &open_of("/tmp/x")).is_empty());
    // Without them, Falco pastes `/etc, /root` after `anyof`: no list
    // follows, so libsinsp reads `anyof` as the value and stops there.
    let mut loader = RulesLoader::new();
    let r = loader.load_str(
        "test.yaml",
        "- list: secret_dirs\n  items: [/etc, /root]\n- rule: r\n  desc: d\n  \
         condition: evt.type=open and fd.name startswith anyof secret_dirs\n  \
         output: o\n  priority: WARNING\n",
    );
    assert_eq!(r.errors.len(), 1, "{:#?}", r.errors);
    assert_eq!(
        r.errors[0].message,
        "unexpected token after 'anyof', expecting 'or', 'and'"
    );
}

#[test]
fn list_operators_take_the_values_of_another_field() {
    // sh started by bash, under sshd: proc.aname holds every ancestor.
    let ev = open_of("/etc/shadow")
        .s("proc.pname", "bash")
        .s("proc.aname", "bash")
        .s("proc.aname", "sshd")
        .s("fd.types", "file")
        .s("fd.directory", "/etc");
    let t = |cond: &str| check(&format!("evt.type=open and {cond}"), &ev);
    assert!(t("proc.pname in val(proc.aname)"));
    assert!(!t("proc.name in val(proc.aname)"));
    assert!(t("toupper(proc.pname) in toupper(proc.aname)"));
    // A list on the left lies wholly in the other field's values for `in`,
    // shares one with it for `intersects`; the ancestors are no list: one
    // of them in the set is enough.
    assert!(!t("fd.types in val(proc.aname)"));
    assert!(t("fd.types in val(fd.types)"));
    assert!(t("proc.aname in val(proc.pname)"));
    assert!(t("proc.aname intersects val(proc.pname)"));
    assert!(t("fd.name pmatch val(fd.directory)"));
    assert!(!t("fd.name pmatch val(proc.pname)"));
    assert!(!t("proc.aname intersects val(fd.types)"));
}

/// A macro several rules start with is evaluated once per event (its
/// result depends on the event alone), and never carried to the next
/// event: a stale result would fire the rules on /tmp.
#[test]
fn a_shared_macro_is_evaluated_once_per_event_and_only_for_it() {
    let mut yaml = String::from(
        "- macro: etc_by_cat\n  condition: fd.name startswith /etc and proc.name = cat\n",
    );
    for i in 0..3 {
        yaml += &format!(
            "- rule: r{i}\n  desc: d\n  condition: evt.type = open and etc_by_cat and proc.pid > {i}\n  \
             output: o\n  priority: WARNING\n"
        );
    }
    let (_, mut rules) = compile(&yaml);
    rules.matching = Matching::All;
    let before = rules.source().extracts();
    assert_eq!(
        matches(&mut rules, &open_of("/etc/passwd")),
        ["r0", "r1", "r2"]
    );
    // fd.name and proc.name once, proc.pid once per rule.
    assert_eq!(rules.source().extracts() - before, 2 + 3);
    assert!(matches(&mut rules, &open_of("/tmp/passwd")).is_empty());
    assert_eq!(
        matches(&mut rules, &open_of("/etc/shadow")),
        ["r0", "r1", "r2"]
    );
    let by_cp = TestEvent::new("open")
        .s("fd.name", "/etc/shadow")
        .s("proc.name", "cp")
        .with("proc.pid", Value::Uint(42));
    assert!(matches(&mut rules, &by_cp).is_empty());
}
