//! Lists in conditions are pasted into the condition's text before it is
//! parsed, as Falco's rule compiler does (falcosecurity/falco,
//! userspace/engine/rule_loader_compiler.cpp, `resolve_list`, called from
//! `parse_condition` for every macro and rule condition): what parses,
//! what fails, and where errors point all follow from the pasted text.

mod common;

use common::{TestEvent, TestSyscallSource};
use peregrine_engine::condition::parse_condition;
use peregrine_engine::field::Value;
use peregrine_engine::rules::{Code, Diagnostic, RulesLoader};
use peregrine_engine::syscall_fields::SyscallFields;

fn rule(condition: &str) -> String {
    format!(
        "- rule: r\n  desc: d\n  condition: '{}'\n  output: o\n  priority: WARNING\n",
        condition.replace('\'', "''")
    )
}

/// Load and compile errors of `yaml`, compiled against the real syscall
/// fields.
fn errors(yaml: &str) -> Vec<Diagnostic> {
    let mut loader = RulesLoader::new();
    loader.load_str("rules.yaml", yaml);
    let _ = loader.compile(SyscallFields::new());
    loader
        .results()
        .iter()
        .flat_map(|r| r.errors.iter().cloned())
        .collect()
}

/// Whether the rule with `condition`, after the `lists` (YAML), fires on
/// `ev`; the rules must load and compile without error.
fn holds(lists: &str, condition: &str, ev: &TestEvent) -> bool {
    let mut loader = RulesLoader::new();
    let r = loader
        .load_str("rules.yaml", &format!("{lists}{}", rule(condition)))
        .clone();
    assert!(r.errors.is_empty(), "{condition}: {:#?}", r.errors);
    let mut rules = loader.compile(TestSyscallSource::new());
    let compile_errors: Vec<_> = loader
        .results()
        .iter()
        .flat_map(|r| r.errors.iter())
        .collect();
    assert!(
        compile_errors.is_empty(),
        "{condition}: {compile_errors:#?}"
    );
    let mut fired = false;
    rules.evaluate(ev, |_, _| fired = true);
    fired
}

fn open_by(name: &str, pid: u64) -> TestEvent {
    TestEvent::new("open")
        .s("proc.name", name)
        .with("proc.pid", Value::Uint(pid))
}

/// Where libsinsp's parser stops in `text`: what Falco reports.
fn parse_stop(text: &str) -> (String, (usize, usize)) {
    let e = parse_condition(text).expect_err(text);
    (e.message, (e.line, e.column))
}

#[test]
fn a_one_item_list_after_a_number_operator_is_that_number() {
    // Falco pastes `5` in place of `l`: `proc.pid > 5` parses.
    let l5 = "- list: l\n  items: [5]\n";
    assert!(holds(
        l5,
        "evt.type=open and proc.pid > l",
        &open_by("a", 42)
    ));
    assert!(!holds(
        l5,
        "evt.type=open and proc.pid > l",
        &open_by("a", 3)
    ));
    // The same in a macro: its condition is pasted too.
    let m = format!("{l5}- macro: m\n  condition: proc.pid > l\n");
    assert!(holds(&m, "evt.type=open and m", &open_by("a", 42)));
}

#[test]
fn a_two_item_list_after_a_number_operator_stops_the_parser_after_its_first_item() {
    // Falco pastes `1, 2` (items joined by ", ", a blank each side): the
    // parser reads `proc.pid > 1` and stops at the comma.
    let errs = errors(&format!(
        "- list: l\n  items: [1, 2]\n{}",
        rule("evt.type=open and proc.pid > l")
    ));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = &errs[0];
    assert_eq!(e.code, Code::ErrCompileCondition);
    let pasted = "evt.type=open and proc.pid > 1, 2 ";
    let (message, pos) = parse_stop(pasted);
    assert_eq!(message, "unexpected token after '1', expecting 'or', 'and'");
    assert_eq!(e.message, message);
    assert_eq!(e.condition_pos, Some(pos));
    // Falco's snippet for a syntax error is cut from the pasted text.
    let expr = e.locations.last().expect("located");
    assert_eq!(expr.condition.as_deref(), Some(pasted));
}

#[test]
fn syntax_errors_after_a_list_point_into_the_pasted_text() {
    // Falco parses the pasted text, so a column after the list counts
    // its items, not its name.
    let errs = errors(&format!(
        "- list: l\n  items: [open, openat]\n{}",
        rule("evt.type in (l) and proc.name = (")
    ));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let pasted = "evt.type in ( open, openat ) and proc.name = (";
    let (message, pos) = parse_stop(pasted);
    assert_eq!(pos, (1, 46));
    assert_eq!(errs[0].message, message);
    assert_eq!(errs[0].condition_pos, Some(pos));
}

#[test]
fn compile_errors_after_a_list_point_into_the_pasted_text() {
    // Falco's compiler positions come from the tree of the pasted text:
    // `proc.nope` starts at column 26 of `evt.type in ( open ) and ...`.
    let errs = errors(&format!(
        "- list: l\n  items: [open]\n{}",
        rule("evt.type in (l) and proc.nope = x")
    ));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let expr = errs[0].locations.last().expect("located");
    assert_eq!(expr.item_type, "condition expression");
    // The rule's condition value starts at line 4, column 13 (0-based).
    assert_eq!((expr.mark.line, expr.mark.column), (4 + 1, 13 + 26));
}

#[test]
fn a_name_is_pasted_only_between_blanks_parentheses_commas_and_equals() {
    // Falco's delimiters around a list name: blanks, `(`, `)`, `,`, `=`
    // or either end of the text; never `.`, `>`, or a quote.
    let sh = "- list: sh\n  items: [zsh]\n";
    let cases = [
        ("evt.type=open and proc.name=sh", "zsh", true),
        ("evt.type=open and proc.name=sh", "sh", false),
        ("evt.type=open and proc.name!=sh", "sh", true),
        ("evt.type=open and proc.name!=sh", "zsh", false),
        ("evt.type=open and proc.name in (bash, sh)", "zsh", true),
        ("evt.type=open and proc.name = bash", "bash", true),
        ("evt.type=open and proc.name = \"sh\"", "sh", true),
        // Inside quotes too, where blanks surround it.
        (
            "evt.type=open and proc.name = \"run sh now\"",
            "run zsh now",
            true,
        ),
        (
            "evt.type=open and proc.name = \"run sh now\"",
            "run sh now",
            false,
        ),
    ];
    for (condition, name, want) in cases {
        assert_eq!(
            holds(sh, condition, &open_by(name, 1)),
            want,
            "{condition} on {name}"
        );
    }
    // `>` is no delimiter: `proc.pid>l` keeps the name, not a number.
    let errs = errors(&format!(
        "- list: l\n  items: [5]\n{}",
        rule("evt.type=open and proc.pid>l")
    ));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].message.starts_with("expected a number value"),
        "{errs:#?}"
    );
}

#[test]
fn items_are_pasted_as_written_with_blanks_quoted() {
    // Falco wraps an item holding a blank in double quotes unless it
    // starts with a quote, and pastes every other item as it is: a comma
    // inside an item makes two values.
    let lists = "- list: l\n  items: ['a b', '\"c d\"', 'e,f', g]\n";
    let cond = "evt.type=open and proc.name in (l)";
    for (name, want) in [
        ("a b", true),
        ("c d", true),
        ("e", true),
        ("f", true),
        ("e,f", false),
        ("g", true),
        ("l", false),
    ] {
        assert_eq!(holds(lists, cond, &open_by(name, 1)), want, "{name}");
    }
}

#[test]
fn an_empty_list_takes_a_comma_with_it() {
    // Falco drops the comma before an empty list's place, else the one
    // after it.
    let lists = "- list: none\n  items: []\n";
    for cond in [
        "evt.type=open and proc.name in (a, none)",
        "evt.type=open and proc.name in (none, a)",
        "evt.type=open and proc.name in (a, none, none)",
    ] {
        assert!(holds(lists, cond, &open_by("a", 1)), "{cond}");
        assert!(!holds(lists, cond, &open_by("none", 1)), "{cond}");
    }
}

#[test]
fn a_name_in_pasted_items_is_pasted_by_a_later_list() {
    // Falco pastes the lists one after the other in definition order:
    // an item naming a list defined later is replaced in its turn.
    let lists = "- list: a\n  items: [b, x]\n- list: b\n  items: [zz]\n";
    let cond = "evt.type=open and proc.name in (a)";
    assert!(holds(lists, cond, &open_by("zz", 1)));
    assert!(holds(lists, cond, &open_by("x", 1)));
    assert!(!holds(lists, cond, &open_by("b", 1)));
}

#[test]
fn a_list_takes_an_earlier_lists_items_one_level_deep() {
    // Falco's compile_list_infos copies the items of an earlier list as
    // they were written: c gets b's item `a`, which stays a name because
    // a's turn to be pasted came before c's.
    let lists = "- list: a\n  items: [x]\n- list: b\n  items: [a]\n- list: c\n  items: [b]\n";
    let cond = "evt.type=open and proc.name in (c)";
    assert!(holds(lists, cond, &open_by("a", 1)));
    assert!(!holds(lists, cond, &open_by("x", 1)));
    // One level is expanded: b holds x.
    assert!(holds(
        lists,
        "evt.type=open and proc.name in (b)",
        &open_by("x", 1)
    ));
    // A list appended after a later list was defined sees that list.
    let appended = "- list: p\n  items: [q]\n- list: q\n  items: [y]\n\
                    - list: p\n  items: [z]\n  append: true\n";
    assert!(holds(
        appended,
        "evt.type=open and proc.name in (p)",
        &open_by("y", 1)
    ));
}

#[test]
fn pasting_a_large_list_many_times_is_refused_in_bounded_time() {
    // Falco has no limit here; a few lines must not become gigabytes.
    let item = "x".repeat(64 << 10);
    let refs = ["big"; 2_000].join(", ");
    let yaml = format!(
        "- list: big\n  items: [{item}]\n{}",
        rule(&format!("evt.type=open and proc.name in ({refs})"))
    );
    let start = std::time::Instant::now();
    let errs = errors(&yaml);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].message.contains("once its lists are pasted"),
        "{}",
        errs[0].message
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn many_macros_naming_a_long_list_are_refused_once_their_total_grows_too_large() {
    // Each macro's pasted text stays parsed: under the limit of each, they
    // must not add up to gigabytes together.
    let item = "x".repeat(256 << 10);
    let mut yaml = format!("- list: big\n  items: [{item}]\n");
    for i in 0..300 {
        yaml.push_str(&format!("- macro: m{i}\n  condition: proc.name in (big)\n"));
    }
    let start = std::time::Instant::now();
    let errs = errors(&yaml);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0]
            .message
            .contains("in all once their lists are pasted"),
        "{}",
        errs[0].message
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(60));
}
