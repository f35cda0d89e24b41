//! The transformers of several arguments (`join`, `concat`, `getopt`),
//! transformer lists and literal arguments, in conditions, outputs and
//! exception fields, with libsinsp's errors for wrong arguments.

mod common;

use common::{TestEvent, TestSyscallSource};
use peregrine_engine::condition::{parse_condition, parse_operand, Composite, Expr};
use peregrine_engine::field::Value;
use peregrine_engine::output::OutputFormat;
use peregrine_engine::rules::{Code, RulesLoader};

fn rule(cond: &str) -> String {
    format!(
        "- rule: r\n  desc: d\n  condition: '{}'\n  output: o\n  priority: WARNING\n",
        cond.replace('\'', "''")
    )
}

/// Compiles one rule; Ok(whether it matches `ev`) or Err((code, message))
/// of the first load or compile error.
fn run(cond: &str, ev: &TestEvent) -> Result<bool, (Code, String)> {
    let mut loader = RulesLoader::new();
    let loaded = loader.load_str("t.yaml", &rule(cond)).clone();
    if let Some(e) = loaded.errors.first() {
        return Err((e.code, e.message.clone()));
    }
    let mut rules = loader.compile(TestSyscallSource::new());
    if let Some(e) = loader.results().iter().flat_map(|r| r.errors.iter()).next() {
        return Err((e.code, e.message.clone()));
    }
    let mut hit = false;
    rules.evaluate(ev, |_, _| hit = true);
    Ok(hit)
}

fn holds(cond: &str, ev: &TestEvent) -> bool {
    run(&format!("evt.type=open and {cond}"), ev).unwrap_or_else(|e| panic!("{cond}: {e:?}"))
}

fn compile_error(cond: &str) -> String {
    match run(&format!("evt.type=open and {cond}"), &open()) {
        Err((Code::ErrCompileCondition, m)) => m,
        other => panic!("{cond}: expected a compile error, got {other:?}"),
    }
}

/// The event of libsinsp's own transformer tests: a file opened under /tmp.
fn open() -> TestEvent {
    TestEvent::new("open")
        .s("fd.name", "/tmp/file_to_run")
        .s("fd.directory", "/tmp")
        .s("proc.name", "cat")
        .with("evt.num", Value::Uint(1))
        .with("proc.pid", Value::Uint(123))
        .s("fd.types", "file")
        .s("fd.types", "ipv4")
}

#[test]
fn join_joins_a_list_with_a_separator() {
    let ev = open();
    assert!(holds(
        r#"join("-", (fd.name, fd.directory)) = /tmp/file_to_run-/tmp"#,
        &ev
    ));
    assert!(holds(r#"join('->', ("aaa", "bbb")) = aaa->bbb"#, &ev));
    assert!(holds(r#"join("->", ("aaa")) = aaa"#, &ev));
    assert!(holds(r#"join(",", ("aaa","bbb")) = "aaa,bbb""#, &ev));
    assert!(!holds(r#"join(",", ("aaa","bbb")) = "aaa-bbb""#, &ev));
    // Numbers join in their text form; the separator may be a field.
    assert!(holds(r#"join(",", (evt.num, proc.pid)) = "1,123""#, &ev));
    assert!(holds(r#"join(",", (proc.pid, 123)) = "123,123""#, &ev));
    assert!(holds(
        "join(fd.name, (fd.name, fd.directory)) = /tmp/file_to_run/tmp/file_to_run/tmp",
        &ev
    ));
    // A list field is one item contributing all its values.
    assert!(holds(
        r#"join(":", (proc.name, fd.types)) = cat:file:ipv4"#,
        &ev
    ));
    assert!(holds(r#"join(":", fd.types) = file:ipv4"#, &ev));
    // Nested transformers, inside and around.
    assert!(holds(
        r#"join("->", (toupper(fd.name), "aaa")) = /TMP/FILE_TO_RUN->aaa"#,
        &ev
    ));
    assert!(holds(
        r#"join("-", (fd.directory, join("->", ("aaa", toupper(fd.name))))) = /tmp-aaa->/TMP/FILE_TO_RUN"#,
        &ev
    ));
    assert!(holds(
        r#"len(join("-", (fd.name, fd.directory))) = 21"#,
        &ev
    ));
    assert!(holds(
        r#"b64(join("W", ("YWFhL", "JiYg"))) = "aaa-bbb""#,
        &ev
    ));
    assert!(holds(
        r#"toupper(join("-", (fd.name, fd.directory))) startswith /TMP"#,
        &ev
    ));
    // The empty list joins to the empty string.
    assert!(holds(r#"join(",", ()) = """#, &ev));
    // A single-value transformer applies to each item of a list.
    assert!(holds(r#"join("", tolower(("A", "B"))) = ab"#, &ev));
    assert!(holds(r#"tolower(("A", "B")) in (a, b)"#, &ev));
    assert!(holds(r#"len(("a", "b", "c")) = 3"#, &ev));
    assert!(!holds(r#"join(",", ()) = ",""#, &ev));
}

#[test]
fn join_and_concat_have_no_value_when_an_argument_has_none() {
    let ev = open();
    assert!(!holds(r#"join("-", (fd.name, fd.cip)) exists"#, &ev));
    assert!(!holds(r#"concat(fd.name, proc.cwd) exists"#, &ev));
    assert!(holds(r#"not concat(fd.name, proc.cwd) = x"#, &ev));
}

#[test]
fn concat_concatenates_strings() {
    let ev = open();
    assert!(holds(
        "concat(fd.name, fd.directory) = /tmp/file_to_run/tmp",
        &ev
    ));
    assert!(holds(r#"concat("aaa", "bbb", "ccc") = aaabbbccc"#, &ev));
    assert!(holds(
        r#"concat(toupper(fd.name), "aaa") = /TMP/FILE_TO_RUNaaa"#,
        &ev
    ));
    assert!(holds(
        r#"concat(fd.directory, concat("aaa", toupper(fd.name))) = /tmpaaa/TMP/FILE_TO_RUN"#,
        &ev
    ));
    assert!(holds(r#"len(concat(fd.name, fd.directory)) = 20"#, &ev));
    assert!(holds(r#"b64(concat("YWFh", "YmJi")) = "aaabbb""#, &ev));
    // On the right-hand side, as any transformed field.
    assert!(holds(
        r#"fd.name = concat(fd.directory, "/file_to_run")"#,
        &ev
    ));
}

#[test]
fn getopt_reads_short_options_like_getopt3() {
    let ev = open();
    let yes = |c: &str| assert!(holds(c, &ev), "{c}");
    let no = |c: &str| assert!(!holds(c, &ev), "{c}");
    yes(r#"getopt(("-n",""), "n") intersects ("n")"#);
    yes(r#"getopt(("-t", "hello"), "t:") intersects ("t", "hello")"#);
    yes(r#"getopt(("-nt", "hello"), "nt:") in ("n", "t", "hello")"#);
    yes(r#"getopt(("-thello"), "t:") in ("t", "hello")"#);
    no(r#"getopt(("-n"), "n") intersects ("t")"#);
    // `--` ends the options; long options are skipped.
    yes(r#"getopt(("-n", "--", "-t"), "nt:") intersects ("n")"#);
    no(r#"getopt(("-n", "--", "-t"), "nt:") intersects ("t")"#);
    yes(r#"getopt(("--exec", "-n"), "n") intersects ("n")"#);
    // An unknown option reads as `?`.
    yes(r#"getopt(("-x", "-n"), "n") in ("?", "n")"#);
    no(r#"getopt(("-x", "-n"), "n") intersects ("x")"#);
    // A value glued to its option or in the next word.
    yes(
        r#"getopt(("-l", "-p", "8080", "-e", "/bin/sh"), "lp:e:") in ("l", "p", "e", "8080", "/bin/sh")"#,
    );
    yes(r#"getopt(("-lpe", "/bin/sh"), "lpe:") intersects ("/bin/sh")"#);
    // The first word that is not an option stops the reading.
    no(r#"getopt(("arg1", "-n", "arg2"), "n") intersects ("n")"#);
    no(r#"getopt(("-", "-n"), "n") intersects ("n")"#);
    no(r#"getopt(("-n", "-t"), "") intersects ("n")"#);
    // A missing value is an empty string.
    yes(r#"getopt(("-t"), "t:") intersects ("")"#);
}

#[test]
fn getopt_with_a_selector_gives_the_last_value_of_one_option() {
    let ev = open();
    assert!(holds(r#"getopt(("-t", "a", "-t", "b"), "t:")[t] = b"#, &ev));
    assert!(holds(r#"getopt(("-t", "a", "-n"), "nt:")["t"] = a"#, &ev));
    assert!(holds(r#"getopt(("-n"), "nt:")[n] = n"#, &ev));
    // An absent option has no value: not even `!=` holds.
    assert!(!holds(r#"getopt(("-n"), "nt:")[t] != x"#, &ev));
    assert!(!holds(r#"getopt(("-n"), "nt:")[t] exists"#, &ev));
    assert!(holds(r#"getopt(("-t"), "t:")[t] = """#, &ev));
    // The option string may come from a field.
    let ev = ev.s("proc.cwd", "t:");
    assert!(holds(r#"getopt(("-tx"), proc.cwd)[t] = x"#, &ev));
}

#[test]
fn wrong_arguments_are_falcos_errors() {
    let cases = [
        (r#"join("-") = foo"#, "unknown field transfomer 'join'"),
        (
            r#"join("-", "a", "b") = foo"#,
            "join() requires exactly 2 arguments: separator and list",
        ),
        (
            r#"join(fd.types, ("a", "b")) = foo"#,
            "join() first argument (separator) must be a single value, not a list",
        ),
        (
            r#"join(("a", "b"), "a") = foo"#,
            "join() first argument (separator) must be a single value, not a list",
        ),
        (
            r#"join("a", "b") = foo"#,
            "join() second argument must be a list",
        ),
        (
            r#"concat("aaa") = foo"#,
            "unknown field transfomer 'concat'",
        ),
        (
            r#"concat(fd.types, "a") = foo"#,
            "concat() arguments must be strings",
        ),
        (
            r#"concat("a", ("a", "b")) = foo"#,
            "concat() arguments must be strings",
        ),
        (
            r#"concat(proc.pid, "a") = foo"#,
            "concat() arguments must be strings",
        ),
        (
            r#"getopt(("a"), "n", "extra") intersects ("n")"#,
            "getopt() requires exactly 2 arguments: args list and optstring",
        ),
        (
            r#"getopt("not_a_list", "n") intersects ("n")"#,
            "getopt() first argument must be a list",
        ),
        (
            r#"getopt(("-n"), ("n")) intersects ("n")"#,
            "getopt() second argument (optstring) must be a single value",
        ),
        (
            r#"getopt(("-n"), "nt:")[""] = x"#,
            "getopt() field argument must be a single option character",
        ),
        (
            r#"getopt(("-n"), "nt:")[tt] = x"#,
            "getopt() field argument must be a single option character",
        ),
        (
            r#"join("-", ("a", "b"))[x] = foo"#,
            "transformer 'join' does not support field arguments",
        ),
        (
            r#"tolower(proc.name)[x] = foo"#,
            "filter error: transformer 'tolower' does not support field arguments",
        ),
        (
            r#"tolower(proc.name, fd.name) = x"#,
            "unknown multivalue transformer",
        ),
        (
            r#"getopt(("-n"), "n") = n"#,
            "filter error: '=' operator not supported list filters",
        ),
        (
            r#"tolower(("A", "b")) contains a"#,
            "filter error: 'contains' operator not supported list filters",
        ),
    ];
    for (cond, message) in cases {
        assert_eq!(compile_error(cond), message, "{cond}");
    }
    // A transformer with no argument, or brackets with nothing inside,
    // do not parse.
    for cond in [r#"join() = foo"#, r#"getopt(("-n"), "n")[] = x"#] {
        match run(&format!("evt.type=open and {cond}"), &open()) {
            Err((Code::ErrCompileCondition, _)) => {}
            other => panic!("{cond}: {other:?}"),
        }
    }
    let e = parse_condition(r#"getopt(("-n"), "n")[] = x"#).unwrap_err();
    assert_eq!(
        e.message,
        "expected a valid field argument: a quoted string or a bare string"
    );
}

#[test]
fn parse_keeps_the_shape_libsinsp_prints() {
    let f =
        parse_operand(r#"toupper(join("->", (concat(proc.name, fd.name), proc.name)))"#).unwrap();
    assert_eq!(
        f.to_string(),
        "toupper(join(->,(concat(proc.name,fd.name),proc.name)))"
    );
    assert!(matches!(f.composite.as_deref(), Some(Composite::Call { name, .. }) if name == "join"));
    let f = parse_operand(r#"getopt(proc.args, "nt:")["t"]"#).unwrap();
    assert_eq!(f.to_string(), "getopt(proc.args,nt:)[t]");
    // A single-value transformer over a field stays a plain chain.
    let Expr::Compare(c) = parse_condition("tolower(proc.name) = x").unwrap() else {
        panic!("not a comparison");
    };
    assert!(c.field.composite.is_none());
    assert_eq!(c.field.name, "proc.name");
}

#[test]
fn exception_fields_may_be_multi_value_transformers() {
    let yaml = r#"
- rule: r
  desc: d
  condition: evt.type=open
  output: o
  priority: WARNING
  exceptions:
    - name: pair
      fields:
        - 'join(":", (proc.name, fd.directory))'
      comps: [=]
      values:
        - ["cat:/tmp"]
"#;
    let mut loader = RulesLoader::new();
    let r = loader.load_str("t.yaml", yaml).clone();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let mut rules = loader.compile(TestSyscallSource::new());
    assert!(loader.results().iter().all(|r| r.errors.is_empty()));
    let mut hits = 0;
    rules.evaluate(&open(), |_, _| hits += 1);
    assert_eq!(hits, 0, "the exception covers cat in /tmp");
    let other = open().s("proc.name", "dd");
    let mut other_rules = {
        let mut loader = RulesLoader::new();
        loader.load_str("t.yaml", yaml);
        loader.compile(TestSyscallSource::new())
    };
    // TestEvent keeps every value given: proc.name is now (cat, dd), and
    // the join reads both, so the exception no longer holds.
    other_rules.evaluate(&other, |_, _| hits += 1);
    assert_eq!(hits, 1);
}

#[test]
fn outputs_render_transformers_and_list_the_fields_inside() {
    let mut src = TestSyscallSource::new();
    let fmt = OutputFormat::compile(
        r#"start %join("->", (proc.name, fd.name)) %toupper(concat(proc.name, fd.directory)) end %proc.pid"#,
        &mut src,
    )
    .unwrap();
    let ev = open();
    assert_eq!(
        fmt.render(&src, &ev),
        "start cat->/tmp/file_to_run CAT/TMP end 123"
    );
    // Transformed values are not keys of their own in output_fields.
    let keys: Vec<String> = fmt.fields(&src, &ev).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["proc.name", "fd.name", "fd.directory", "proc.pid"]);
    let fmt = OutputFormat::compile(r#"opts=%getopt(("-n", "-t", "v"), "nt:")"#, &mut src).unwrap();
    assert_eq!(fmt.render(&src, &ev), "opts=(n,t,v)");
    assert!(OutputFormat::compile(r#"x %join("-") y"#, &mut src).is_err());
}
