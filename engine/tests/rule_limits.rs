//! Hostile rule files meet a limit with an error naming the file and the
//! line, instead of a stack overflow, gigabytes or minutes.

use peregrine_engine::condition::parse_condition;
use peregrine_engine::rules::{Diagnostic, RulesLoader};
use peregrine_engine::syscall_fields::SyscallFields;

/// Loads `text` as `hostile.yaml` and compiles it for syscalls; returns
/// every error reported.
fn errors_of(text: &str) -> Vec<Diagnostic> {
    let mut loader = RulesLoader::new();
    loader.load_str("hostile.yaml", text);
    loader.compile(SyscallFields::new());
    loader
        .results()
        .iter()
        .flat_map(|r| r.errors.iter().cloned())
        .collect()
}

fn rule(condition: &str) -> String {
    format!("- rule: r\n  desc: d\n  condition: {condition}\n  output: o\n  priority: WARNING\n")
}

#[test]
fn nested_parentheses_past_the_limit_are_an_error_with_file_and_line() {
    // 199 is the first depth libsinsp's parser refuses with the 1000
    // levels Falco's loader gives it (5 per parenthesis); the others are
    // deeper than the 8 MiB of a test thread could ever recurse through.
    for depth in [199, 5_000, 100_000] {
        let condition = format!("{}evt.type=open{}", "(".repeat(depth), ")".repeat(depth));
        let text = format!("- list: l\n  items: [a]\n\n{}", rule(&condition));
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        let shown = errors[0].to_string();
        assert!(shown.starts_with("hostile.yaml:4: "), "{shown}");
        assert!(shown.contains("exceeded max depth limit"), "{shown}");
    }
}

#[test]
fn not_chains_past_the_limit_are_an_error() {
    // `not(` nests (4 levels of libsinsp's parser each); the 250th is one
    // too many, found right after it is read.
    let condition = format!("{}evt.type=open{}", "not(".repeat(8_000), ")".repeat(8_000));
    let errors = errors_of(&rule(&condition));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].message.contains("exceeded max depth limit"));
    assert_eq!(errors[0].condition_pos, Some((1, 1 + 4 * 250)));
    // `not not ...` does not nest: libsinsp reads it in a loop.
    let condition = format!("{}evt.type=open", "not ".repeat(8_000));
    assert!(errors_of(&rule(&condition)).is_empty());
}

#[test]
fn nesting_up_to_the_limit_still_compiles() {
    let depth = 99;
    let condition = format!(
        "evt.type=open and {}proc.name=x{}",
        "not (".repeat(depth / 2),
        ")".repeat(depth / 2)
    );
    assert!(errors_of(&rule(&condition)).is_empty());
}

/// A macro that doubles the one before it, `levels` times.
fn doubling_macros(levels: usize) -> String {
    let mut text = String::from("- macro: m0\n  condition: proc.name=x\n");
    for i in 1..=levels {
        text.push_str(&format!(
            "- macro: m{i}\n  condition: m{} or m{}\n",
            i - 1,
            i - 1
        ));
    }
    text + &rule(&format!("evt.type=open and m{levels}"))
}

#[test]
fn macros_doubled_many_times_stop_at_the_expansion_limit() {
    // 24 doublings would be 16 million comparisons (about 20 GB).
    for levels in [20, 24, 64] {
        let errors = errors_of(&doubling_macros(levels));
        assert_eq!(errors.len(), 1, "{errors:#?}");
        let shown = errors[0].to_string();
        assert!(shown.starts_with("hostile.yaml:"), "{shown}");
        assert!(shown.contains("rule 'r'"), "{shown}");
        assert!(shown.contains("nodes once its macros"), "{shown}");
    }
    // A few doublings are an ordinary condition.
    assert!(errors_of(&doubling_macros(8)).is_empty());
}

/// Lists doubling the one before (`l40: [l39, l39]`, ...) or the one after.
fn doubling_lists(levels: usize, forward: bool) -> String {
    let mut text = String::new();
    for i in 0..=levels {
        let items = match (i, forward) {
            (0, false) => "[a, b]".to_string(),
            (i, false) => format!("[l{}, l{}]", i - 1, i - 1),
            (i, true) if i == levels => "[a, b]".to_string(),
            (i, true) => format!("[l{}, l{}]", i + 1, i + 1),
        };
        text.push_str(&format!("- list: l{i}\n  items: {items}\n"));
    }
    text
}

#[test]
fn lists_doubled_many_times_stay_small_or_are_refused() {
    // Falco's compiler takes an earlier list's items as written, one
    // level deep: l40 holds l38 four times, a name pasted by no later
    // list, so the backward chain is a short condition.
    let text = doubling_lists(40, false) + &rule("evt.type=open and proc.name in (l40)");
    let errors = errors_of(&text);
    assert!(errors.is_empty(), "{errors:#?}");
    // Forward, each list's turn pastes the next one's names: the text
    // doubles at every turn, and the paste limit refuses it.
    let text = doubling_lists(40, true) + &rule("evt.type=open and proc.name in (l0)");
    let start = std::time::Instant::now();
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].message.contains("once its lists are pasted"),
        "{errors:#?}"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn a_long_chain_of_macros_is_checked_without_recursion() {
    let mut text = String::from("- macro: m0\n  condition: proc.name=x\n");
    let n = 5_000;
    for i in 1..=n {
        text.push_str(&format!("- macro: m{i}\n  condition: not m{}\n", i - 1));
    }
    text += &rule(&format!("evt.type=open and m{n}"));
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].message.contains("levels once its macros"),
        "{errors:#?}"
    );
}

#[test]
fn macro_loops_are_still_found() {
    // A loop closes through a redefinition (a macro sees only the macros
    // defined before it); Falco stops at the first error: one loop.
    let text = "- macro: a\n  condition: proc.name=x\n- macro: b\n  condition: a or proc.name=x\n\
                - macro: a\n  condition: b\n- macro: c\n  condition: proc.name=y\n\
                - macro: c\n  condition: c\n- macro: d\n  condition: a\n";
    let errors = errors_of(&(text.to_string() + &rule("evt.type=open and d")));
    let looped: Vec<(&str, &str)> = errors
        .iter()
        .filter(|e| e.item_type == "macro" && e.message.starts_with("reference loop"))
        .map(|e| (e.item_name.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        looped,
        [("a", "reference loop in macro 'b'")],
        "{errors:#?}"
    );
}

#[test]
fn positions_in_a_long_condition_are_right() {
    let terms: Vec<String> = (0..8_000).map(|i| format!("proc.name=p{i}")).collect();
    let condition = terms.join(" or\n ");
    let expr = parse_condition(&condition).expect("parses");
    let peregrine_engine::condition::Expr::Or(items) = expr else {
        panic!("an or of 8000 terms");
    };
    assert_eq!(items.len(), 8_000);
    let peregrine_engine::condition::Expr::Compare(last) = &items[7_999] else {
        panic!("a comparison");
    };
    assert_eq!((last.pos.line, last.pos.column), (8_000, 2));
    let one_line = terms.join(" or ");
    assert!(errors_of(&rule(&format!("evt.type=open and ({one_line})"))).is_empty());
}
