//! Conditions that libsinsp's parser (falcosecurity/libs master,
//! userspace/libsinsp/filter/parser.cpp) accepts, read the way it reads
//! them, and evaluated as Falco evaluates them.

mod common;

use common::{TestEvent, TestSyscallSource};
use peregrine_engine::condition::{parse_condition, Composite, Expr, Literal, Op, Operand};
use peregrine_engine::field::Value;
use peregrine_engine::rules::{CompiledRules, RulesLoader};

fn compile(yaml: &str) -> CompiledRules<TestSyscallSource> {
    let mut loader = RulesLoader::new();
    let r = loader.load_str("test.yaml", yaml).clone();
    assert!(r.errors.is_empty(), "load errors: {:#?}", r.errors);
    let rules = loader.compile(TestSyscallSource::new());
    let errors: Vec<_> = loader.errors().collect();
    assert!(errors.is_empty(), "compile errors: {errors:#?}");
    rules
}

fn holds(items: &str, cond: &str, ev: &TestEvent) -> bool {
    let yaml = format!(
        "{items}- rule: r\n  desc: d\n  condition: '{}'\n  output: o\n  priority: WARNING\n",
        cond.replace('\'', "''")
    );
    let mut rules = compile(&yaml);
    let mut fired = false;
    rules.evaluate(ev, |_, _| fired = true);
    fired
}

fn open_of(name: &str) -> TestEvent {
    TestEvent::new("open")
        .s("proc.name", name)
        .with("proc.pid", Value::Uint(42))
}

fn comparison(text: &str) -> peregrine_engine::condition::Comparison {
    match parse_condition(text) {
        Ok(Expr::Compare(c)) => c,
        other => panic!("{text:?}: {other:?}"),
    }
}

#[test]
fn a_list_operator_word_runs_into_the_name_after_it() {
    // libsinsp's parser matches `in`, `intersects` and `pmatch` as bare
    // prefixes (no blank needed after them), then reads a list, a
    // transformer or an identifier: `inx` is `in x`, the one value `x`.
    for (text, op, value) in [
        ("proc.name inx", Op::In, "x"),
        ("proc.name in x", Op::In, "x"),
        ("proc.name intersectsx", Op::Intersects, "x"),
        ("proc.name pmatchx", Op::PMatch, "x"),
        ("proc.name index", Op::In, "dex"),
    ] {
        let c = comparison(text);
        assert_eq!(c.op, op, "{text}");
        assert_eq!(c.rhs, Operand::List(vec![Literal::bare(value)]), "{text}");
    }
    let ev = open_of("x");
    assert!(holds("", "evt.type=open and proc.name inx", &ev));
    assert!(!holds("", "evt.type=open and proc.name iny", &ev));
    // Falco pastes a list only where its name follows a delimiter: in
    // `inl` the name follows `n`, so `l` stays the one value `l`.
    let list = "- list: l\n  items: [a, x]\n";
    assert!(!holds(list, "evt.type=open and proc.name inl", &ev));
    assert!(holds(
        list,
        "evt.type=open and proc.name inl",
        &open_of("l")
    ));
}

#[test]
fn exists_needs_no_blank_after_it() {
    // `exists` is matched as a bare prefix too; `or(` then opens a group.
    let ev = open_of("x");
    assert!(holds(
        "",
        "evt.type=open and proc.name existsor(proc.pid exists)",
        &ev
    ));
}

#[test]
fn numbers_in_transformers_are_libsinsp_numbers() {
    // A transformer argument may be a number as libsinsp's number token
    // reads it: a sign, digits, an optional point and digits, an optional
    // signed exponent; it is then a constant string (its text).
    for (text, value) in [
        ("len(+5) = 2", "+5"),
        ("len(-5) = 2", "-5"),
        ("len(5.) = 2", "5."),
        ("len(1e+5) = 4", "1e+5"),
        ("len(0X1f) = 4", "0X1f"),
    ] {
        let c = comparison(text);
        assert_eq!(
            c.field.composite.as_deref(),
            Some(&Composite::Literal(value.into())),
            "{text}"
        );
    }
    let ev = open_of("x");
    assert!(holds("", "evt.type=open and len(+5) = 2", &ev));
    assert!(holds(
        "",
        "evt.type=open and proc.name = x and len(1e+5) = 4",
        &ev
    ));
}

#[test]
fn ancestor_level_minus_one_is_any_ancestor() {
    // libsinsp's thread fields read the level with sscanf("%d"): -1 is its
    // "no level" value (any ancestor), other negative levels wrap to huge
    // unsigned ones and never reach an ancestor.
    let c = comparison("proc.aname[-1] = x");
    assert_eq!(c.field.arg.as_deref(), Some("-1"));
    let mut loader = RulesLoader::new();
    let yaml = "- rule: r\n  desc: d\n  condition: evt.type=open and proc.aname[-1] = x and proc.aname[+1] = x and not proc.aname[-2] = x\n  output: o\n  priority: WARNING\n";
    loader.load_str("t.yaml", yaml);
    loader.compile(peregrine_engine::syscall_fields::SyscallFields::new());
    let errors: Vec<_> = loader.errors().collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn a_list_whose_only_item_has_a_bad_escape_is_empty() {
    // libsinsp's list reader gives up silently on the first item (a bad
    // escape is found once the closing quote is read), then expects `)`.
    let c = comparison(r#"proc.name in ("\q")"#);
    assert_eq!(c.rhs, Operand::List(vec![]));
    let c = comparison(r#"proc.name startswith oneof ("\q")"#);
    assert_eq!(c.rhs, Operand::List(vec![]));
    for refused in [
        r#"proc.name in ("\q", a)"#,
        r#"proc.name in (a, "\q")"#,
        r#"proc.name in ("\q" )"#,
    ] {
        assert!(parse_condition(refused).is_err(), "{refused}");
    }
    let ev = open_of("x");
    assert!(!holds("", r#"evt.type=open and proc.name in ("\q")"#, &ev));
}

#[test]
fn not_chains_toggle_without_nesting() {
    // libsinsp reads `not not ...` in a loop: an even count is no `not`,
    // an odd count one, however many there are.
    let even = format!("{}proc.name = x", "not ".repeat(8_000));
    assert!(matches!(parse_condition(&even), Ok(Expr::Compare(_))));
    let odd = format!("{}proc.name = x", "not ".repeat(8_001));
    assert!(
        matches!(parse_condition(&odd), Ok(Expr::Not(inner)) if matches!(*inner, Expr::Compare(_)))
    );
}

/// The deepest conditions of each shape libsinsp's parser accepts with
/// the depth Falco's rules loader gives it (1000 guarded calls), and the
/// first it refuses.
fn deepest() -> Vec<(&'static str, String, String)> {
    let shape = |open: &str, close: &str, n: usize, leaf: &str| {
        format!("{}{leaf}{}", open.repeat(n), close.repeat(n))
    };
    let leaf = "proc.name=x";
    vec![
        (
            "parens",
            shape("(", ")", 198, leaf),
            shape("(", ")", 199, leaf),
        ),
        (
            "or(",
            shape("proc.pid=1 or(", ")", 496, leaf),
            shape("proc.pid=1 or(", ")", 497, leaf),
        ),
        (
            "and/or",
            shape("proc.pid=42 and(proc.pid=1 or(", "))", 198, leaf),
            shape("proc.pid=42 and(proc.pid=1 or(", "))", 199, leaf),
        ),
        (
            "not(",
            shape("not(", ")", 248, leaf),
            shape("not(", ")", 249, leaf),
        ),
        (
            "join",
            shape("join(\",\", (", "))", 497, "proc.name") + " = x",
            shape("join(\",\", (", "))", 498, "proc.name") + " = x",
        ),
        (
            "tolower",
            shape("tolower(", ")", 497, "proc.name") + " = x",
            shape("tolower(", ")", 498, "proc.name") + " = x",
        ),
    ]
}

#[test]
fn nesting_stops_where_libsinsps_depth_guard_stops_it() {
    for (name, ok, too_deep) in deepest() {
        let run = move || {
            let accepted = parse_condition(&ok).map(|_| ()).map_err(|e| e.message);
            let refused = parse_condition(&too_deep)
                .map(|_| ())
                .map_err(|e| e.message);
            (accepted, refused)
        };
        // A thread of the size tokio gives its workers (the console tries
        // conditions on one): deep nesting must fit in it.
        let (accepted, refused) = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(run)
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(accepted, Ok(()), "{name}");
        assert_eq!(
            refused,
            Err("exceeded max depth limit of 1000".to_string()),
            "{name}"
        );
    }
}

#[test]
fn the_deepest_accepted_conditions_compile_and_evaluate_on_a_small_stack() {
    for (name, ok, _) in deepest() {
        let run = move || holds("", &format!("evt.type=open and {ok}"), &open_of("x"));
        let fired = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(run)
            .unwrap()
            .join()
            .unwrap();
        assert!(fired, "{name}");
    }
}
