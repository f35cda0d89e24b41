//! The condition grammar: precedence, operators, literals, fields, errors.

use peregrine_engine::condition::{
    parse_condition, Comparison, Expr, Literal, Op, Operand, Transformer,
};

fn cmp(expr: &Expr) -> &Comparison {
    match expr {
        Expr::Compare(c) => c,
        other => panic!("not a comparison: {other:?}"),
    }
}

fn macro_name(expr: &Expr) -> &str {
    match expr {
        Expr::Macro { name, .. } => name,
        other => panic!("not a macro: {other:?}"),
    }
}

#[test]
fn and_binds_tighter_than_or() {
    let e = parse_condition("a or b and c").unwrap();
    let Expr::Or(items) = e else {
        panic!("top is not or")
    };
    assert_eq!(macro_name(&items[0]), "a");
    let Expr::And(inner) = &items[1] else {
        panic!("second is not and")
    };
    assert_eq!(macro_name(&inner[0]), "b");
    assert_eq!(macro_name(&inner[1]), "c");
}

#[test]
fn not_binds_tighter_than_and() {
    let e = parse_condition("not a and b").unwrap();
    let Expr::And(items) = e else {
        panic!("top is not and")
    };
    assert!(matches!(&items[0], Expr::Not(inner) if macro_name(inner) == "a"));
    assert_eq!(macro_name(&items[1]), "b");
}

#[test]
fn parentheses_override_precedence() {
    let e = parse_condition("(a or b) and not (c)").unwrap();
    let Expr::And(items) = e else {
        panic!("top is not and")
    };
    assert!(matches!(&items[0], Expr::Or(_)));
    assert!(matches!(&items[1], Expr::Not(_)));
}

#[test]
fn double_not_and_keywords_need_word_boundaries() {
    // libsinsp's parser reads a chain of `not`s in a loop, toggling: two
    // are none.
    let e = parse_condition("not not andy").unwrap();
    assert_eq!(macro_name(&e), "andy");
    let e = parse_condition("not not not andy").unwrap();
    let Expr::Not(inner) = e else { panic!() };
    assert_eq!(macro_name(&inner), "andy");
    // `order` and `notify` are macro names, not keywords.
    let e = parse_condition("order and notify").unwrap();
    assert!(
        matches!(e, Expr::And(ref v) if macro_name(&v[0]) == "order" && macro_name(&v[1]) == "notify")
    );
}

#[test]
fn every_operator_parses() {
    let cases = [
        ("proc.name = a", Op::Eq),
        ("proc.name == a", Op::Eq),
        ("proc.name != a", Op::Ne),
        ("proc.pid < 1", Op::Lt),
        ("proc.pid <= 1", Op::Le),
        ("proc.pid > 1", Op::Gt),
        ("proc.pid >= 1", Op::Ge),
        ("proc.name contains a", Op::Contains),
        ("proc.name icontains a", Op::IContains),
        ("evt.buffer bcontains 0a0b", Op::BContains),
        ("proc.name startswith a", Op::StartsWith),
        ("evt.buffer bstartswith 0a", Op::BStartsWith),
        ("proc.name endswith a", Op::EndsWith),
        ("proc.name glob 'a*'", Op::Glob),
        ("proc.name iglob 'A*'", Op::IGlob),
        ("fd.name pmatch (/tmp)", Op::PMatch),
        ("proc.name in (a, b)", Op::In),
        ("ka.user.groups intersects (a)", Op::Intersects),
        ("proc.name exists", Op::Exists),
        ("proc.name regex '^a.*$'", Op::Regex),
    ];
    for (text, op) in cases {
        let e = parse_condition(text).unwrap_or_else(|err| panic!("{text}: {err}"));
        assert_eq!(cmp(&e).op, op, "{text}");
    }
    // Operators glued to field and value.
    let e = parse_condition("fd.name=/etc/passwd").unwrap();
    assert_eq!(cmp(&e).rhs, Operand::Value(Literal::bare("/etc/passwd")));
    let e = parse_condition("proc.name!=foo").unwrap();
    assert_eq!(cmp(&e).op, Op::Ne);
}

#[test]
fn strings_quotes_and_escapes() {
    let e = parse_condition(r#"proc.cmdline contains "a \"quoted\" word""#).unwrap();
    assert_eq!(
        cmp(&e).rhs,
        Operand::Value(Literal::quoted(r#"a "quoted" word"#))
    );
    let e = parse_condition(r"proc.name = 'it\'s'").unwrap();
    assert_eq!(cmp(&e).rhs, Operand::Value(Literal::quoted("it's")));
    // (Not `\\"` at the end: Falco's lexer takes that quote as escaped.)
    let e = parse_condition(r#"proc.name = "tab\there\\!""#).unwrap();
    assert_eq!(cmp(&e).rhs, Operand::Value(Literal::quoted("tab\there\\!")));
    // A regex escape is written with a doubled backslash, as in Falco.
    let e = parse_condition(r#"proc.name regex "a\\.b""#).unwrap();
    assert_eq!(cmp(&e).rhs, Operand::Value(Literal::quoted(r"a\.b")));
    // `\xHH` gives one byte; `\/` a slash; `\ ` a backslash (libsinsp keeps
    // that for rules written with it).
    let e = parse_condition(r#"proc.name = "\x41\x2fb\/c\ ""#).unwrap();
    assert_eq!(cmp(&e).rhs, Operand::Value(Literal::quoted(r"A/b/c\")));
    let e = parse_condition(r#"fd.name = "caf\xc3\xa9""#).unwrap();
    assert_eq!(cmp(&e).rhs, Operand::Value(Literal::quoted("café")));
}

#[test]
fn escapes_libsinsp_refuses_are_errors() {
    for (text, message) in [
        (
            r#"proc.name regex "a\.b""#,
            r"unsupported string escape sequence: \.",
        ),
        (
            r#"proc.name = 'a\"b'"#,
            r#"invalid \" escape in '-quoted string"#,
        ),
        (
            r#"proc.name = "a\'b""#,
            r#"invalid \' escape in "-quoted string"#,
        ),
        (
            r#"proc.name = "a\x4""#,
            "truncated hex char escape sequence",
        ),
        (
            r#"proc.name = "a\xzz""#,
            "invalid hex char escape sequence: zz",
        ),
        (
            r#"proc.name in ("a", "b\q")"#,
            r"unsupported string escape sequence: \q",
        ),
    ] {
        let e = parse_condition(text).unwrap_err();
        assert_eq!(e.message, message, "{text}");
    }
}

#[test]
fn lists_keep_bare_and_quoted_items() {
    let e = parse_condition(r#"proc.name in (bash, "sh -c", 'x,y', shell_binaries)"#).unwrap();
    let Operand::List(items) = &cmp(&e).rhs else {
        panic!()
    };
    assert_eq!(
        items,
        &vec![
            Literal::bare("bash"),
            Literal::quoted("sh -c"),
            Literal::quoted("x,y"),
            Literal::bare("shell_binaries")
        ]
    );
    let e = parse_condition("proc.name in ()").unwrap();
    assert_eq!(cmp(&e).rhs, Operand::List(vec![]));
}

#[test]
fn field_arguments() {
    for (text, name, arg) in [
        ("proc.aname[2] = bash", "proc.aname", Some("2")),
        ("evt.arg.flags contains O_CREAT", "evt.arg.flags", None),
        ("evt.arg[0] = x", "evt.arg", Some("0")),
        ("jevt.value[/a/b] = 1", "jevt.value", Some("/a/b")),
        (
            "ka.req.volume.hostpath[/proc*] = true",
            "ka.req.volume.hostpath",
            Some("/proc*"),
        ),
        ("jevt.value[/a~1~0b] exists", "jevt.value", Some("/a~1~0b")),
    ] {
        let e = parse_condition(text).unwrap_or_else(|err| panic!("{text}: {err}"));
        assert_eq!(cmp(&e).field.name, name, "{text}");
        assert_eq!(cmp(&e).field.arg.as_deref(), arg, "{text}");
    }
}

#[test]
fn transformers_and_field_values() {
    let e = parse_condition("tolower(basename(proc.exe)) = val(proc.name)").unwrap();
    let c = cmp(&e);
    assert_eq!(c.field.name, "proc.exe");
    assert_eq!(
        c.field.transformers,
        vec![Transformer::Basename, Transformer::ToLower]
    );
    let Operand::Field(other) = &c.rhs else {
        panic!("rhs is not a field")
    };
    assert_eq!(other.name, "proc.name");
    for t in ["toupper", "b64", "len"] {
        parse_condition(&format!("{t}(proc.name) exists")).unwrap_or_else(|e| panic!("{t}: {e}"));
    }
}

#[test]
fn errors_name_the_position_and_falco_wording() {
    let err = parse_condition("evt.type=execve foo").unwrap_err();
    assert_eq!(
        err.message,
        "unexpected token after 'execve', expecting 'or', 'and'"
    );
    assert_eq!((err.line, err.column), (1, 17));
    let err = parse_condition("evt.type=open and\n  (proc.name = a").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(parse_condition("proc.name =").is_err());
    assert!(
        parse_condition("proc.name").is_err(),
        "a field alone is no condition"
    );
    assert!(parse_condition("").is_err());
    assert!(parse_condition("a and").is_err());
    // libsinsp's parser takes an identifier after `in` (a list's name,
    // or one value of its own).
    assert!(parse_condition("proc.name in a").is_ok());
    assert!(
        parse_condition("proc.name in 1").is_err(),
        "in needs a list"
    );
}

#[test]
fn multiline_conditions_parse() {
    let text =
        "evt.type = open\n  and (proc.name in (cat, less)\n       or fd.name startswith /etc)\n";
    let e = parse_condition(text).unwrap();
    assert!(matches!(e, Expr::And(ref v) if v.len() == 2));
}
