//! Syntax errors in conditions are reported as Falco reports them: the
//! words of libsinsp's filter parser, at the line and column where that
//! parser stopped (which Falco adds to the position of the condition in
//! the rules file). Every expectation below was taken from Falco master's
//! `--validate` of a one-rule file holding the condition.

use peregrine_engine::condition::parse_condition;

const TRANSFORMERS: &str =
    "'val', 'tolower', 'toupper', 'b64', 'basename', 'len', 'join', 'concat', 'getopt'";
const OPERATORS: &str = "'exists', '<=', '<', '>=', '>', '==', '=', '!=', 'glob', 'iglob', \
     'contains', 'icontains', 'bcontains', 'startswith', 'bstartswith', 'endswith', 'regex', \
     'intersects', 'in', 'pmatch'";
const STR_OR_TRANSFORMER: &str = "expected a string value or a field with a valid transformer: ";
const NUM_OR_TRANSFORMER: &str = "expected a number value or a field with a valid transformer: ";
const LIST_OR_TRANSFORMER: &str =
    "expected a list, an identifier, or a field with a valid transformer: ";
const OPERATOR: &str = "expected a valid check operator: one of ";
const TRANSFORMER_ARG: &str = "expected field transformer argument: \
     field, transformer, quoted string, number, or transformer list";
const FIELD_ARG: &str = "expected a valid field argument: a quoted string or a bare string";

fn deep(levels: usize) -> String {
    format!("{}proc.name=a{}", "(".repeat(levels), ")".repeat(levels))
}

/// The full message: the prefixes above that Falco ends with a list.
fn full(message: &str) -> String {
    match message {
        STR_OR_TRANSFORMER | NUM_OR_TRANSFORMER | LIST_OR_TRANSFORMER => {
            format!("{message}{TRANSFORMERS}")
        }
        OPERATOR => format!("{message}{OPERATORS}"),
        _ => message.to_string(),
    }
}

#[test]
fn syntax_errors_have_falcos_words_and_positions() {
    let deep_199 = deep(199);
    let cases: Vec<(&str, &str, usize, usize)> = vec![
        ("evt.type=open and proc.name = (", STR_OR_TRANSFORMER, 1, 31),
        (
            "evt.type=open and proc.name = \"\\q\"",
            "unsupported string escape sequence: \\q",
            1,
            35,
        ),
        (
            "evt.type=open and proc.name = \"\\xg1\"",
            "invalid hex char escape sequence: g1",
            1,
            37,
        ),
        (
            "evt.type=open and proc.name = \"\\x4\"",
            "truncated hex char escape sequence",
            1,
            36,
        ),
        (
            "evt.type=open and proc.name = 'a\\\"b'",
            "invalid \\\" escape in '-quoted string",
            1,
            37,
        ),
        (
            "evt.type=open and proc.name = \"a\\'b\"",
            "invalid \\' escape in \"-quoted string",
            1,
            37,
        ),
        (
            "evt.type=open and proc.name = \"abc",
            STR_OR_TRANSFORMER,
            1,
            31,
        ),
        (
            "evt.type=open and proc.name = 'abc",
            STR_OR_TRANSFORMER,
            1,
            31,
        ),
        ("evt.type=open and proc.name", OPERATOR, 1, 28),
        ("evt.type=open and proc.name ~ x", OPERATOR, 1, 29),
        ("evt.type=open and proc.name =", STR_OR_TRANSFORMER, 1, 30),
        (
            "evt.type=open and proc.pid > abc",
            NUM_OR_TRANSFORMER,
            1,
            30,
        ),
        (
            "evt.type=open and proc.pid > \"5\"",
            NUM_OR_TRANSFORMER,
            1,
            30,
        ),
        ("evt.type=open and proc.name in", LIST_OR_TRANSFORMER, 1, 31),
        (
            "evt.type=open and proc.name in (a, b",
            "expected a ')' token",
            1,
            37,
        ),
        (
            "evt.type=open and proc.name in (a, )",
            "expected a string value",
            1,
            36,
        ),
        (
            "evt.type=open and proc.name in (a b)",
            "expected a ')' token",
            1,
            35,
        ),
        (
            "evt.type=open and proc.name in (a=b)",
            "expected a ')' token",
            1,
            34,
        ),
        (
            "evt.type=open and (proc.name = a",
            "expected a ')' token",
            1,
            33,
        ),
        (
            "evt.type=open and proc.name = a)",
            "unexpected token after 'a', expecting 'or', 'and'",
            1,
            32,
        ),
        (
            "evt.type=open and proc.name = a b",
            "unexpected token after 'a', expecting 'or', 'and'",
            1,
            33,
        ),
        (
            "evt.type=open and proc.name = a andx",
            "expected blank or '(' after 'and'",
            1,
            36,
        ),
        (
            "evt.type=open and proc.name = a orx",
            "expected blank or '(' after 'or'",
            1,
            35,
        ),
        (
            "evt.type=open and proc.name = a and",
            "expected blank or '(' after 'and'",
            1,
            36,
        ),
        (
            "evt.type=open and proc.name = a and ",
            "expected a '(' token, a field check, or an identifier",
            1,
            37,
        ),
        (
            "evt.type=open and proc.name = a or (",
            "expected a '(' token, a field check, or an identifier",
            1,
            37,
        ),
        (
            "evt.type=open and proc.name=a or(",
            "expected a '(' token, a field check, or an identifier",
            1,
            34,
        ),
        ("evt.type=open and proc.aname[ = x", FIELD_ARG, 1, 30),
        (
            "evt.type=open and proc.aname[1 = x",
            "expected a ']' token",
            1,
            31,
        ),
        ("evt.type=open and proc.aname[] = x", FIELD_ARG, 1, 30),
        ("evt.type=open and proc.name[", FIELD_ARG, 1, 29),
        (
            "evt.type=open and val(proc.name) = x",
            "unexpected token after 'val', expecting 'or', 'and'",
            1,
            22,
        ),
        (
            "evt.type=open and proc.name = val(1)",
            "expected a field within 'val' transformer",
            1,
            35,
        ),
        (
            "evt.type=open and proc.name = val(proc.pname",
            "expected a ')' token closing the transformer",
            1,
            45,
        ),
        (
            "evt.type=open and proc.name in val(proc.pname",
            "expected a ')' token closing the transformer",
            1,
            46,
        ),
        (
            "evt.type=open and tolower(proc.name = x",
            "expected a ')' token closing the transformer",
            1,
            37,
        ),
        ("evt.type=open and tolower() = x", TRANSFORMER_ARG, 1, 27),
        (
            "evt.type=open and proc.name = tolower(",
            TRANSFORMER_ARG,
            1,
            39,
        ),
        ("evt.type=open and proc.pid >= len(", TRANSFORMER_ARG, 1, 35),
        (
            "evt.type=open and proc.name = b64(proc.name, )",
            TRANSFORMER_ARG,
            1,
            46,
        ),
        (
            "evt.type=open and join(\",\", (proc.name, ) = x",
            "expected transformer list argument: field, transformer, quoted string, or number",
            1,
            41,
        ),
        (
            "evt.type=open and join(\",\", (proc.name proc.pname)) = x",
            "expected ')'",
            1,
            40,
        ),
        (
            "evt.type=open and tolower (proc.name) = x",
            "unexpected token after 'tolower', expecting 'or', 'and'",
            1,
            27,
        ),
        (
            "evt.type=open and len(proc.name)[x = 1",
            "expected a ']' token",
            1,
            35,
        ),
        (
            "evt.type=open and getopt(proc.args, \"nt:\")[ = x",
            FIELD_ARG,
            1,
            44,
        ),
        (
            "evt.type=open and proc.pid > 5abc",
            "unexpected token after '5', expecting 'or', 'and'",
            1,
            31,
        ),
        (
            "evt.type=open and proc.name = a=b",
            "unexpected token after 'a', expecting 'or', 'and'",
            1,
            32,
        ),
        ("evt.type=open and proc.name contains", OPERATOR, 1, 29),
        ("evt.type=open and proc.name bcontains", OPERATOR, 1, 29),
        (
            "evt.type=open and proc.name exists x",
            "unexpected token after 'exists', expecting 'or', 'and'",
            1,
            36,
        ),
        (
            "evt.type=open and proc.name in (a, \"\\q\")",
            "unsupported string escape sequence: \\q",
            1,
            40,
        ),
        (
            "evt.type=open and proc.name = \"é\" x",
            "unexpected token after 'é', expecting 'or', 'and'",
            1,
            36,
        ),
        (
            "evt.type=open and proc.name in (a, b) x",
            "unexpected token after ')', expecting 'or', 'and'",
            1,
            39,
        ),
        (
            "evt.type=open and not(proc.name = a",
            "expected a ')' token",
            1,
            36,
        ),
        (
            "evt.type=open and proc.name intersects x y",
            "unexpected token after 'x', expecting 'or', 'and'",
            1,
            42,
        ),
        (
            "evt.type=open and proc.name = \"abc\" \"def\"",
            "unexpected token after 'abc', expecting 'or', 'and'",
            1,
            37,
        ),
        (
            "evt.type=open and proc.name = \"a\\\\\" and proc.pid=1",
            STR_OR_TRANSFORMER,
            1,
            31,
        ),
        (
            "evt.type=open and proc.name = 'abc\\'",
            STR_OR_TRANSFORMER,
            1,
            31,
        ),
        (
            "evt.type=open and proc.name startswith oneof (a, ",
            "expected a string value",
            1,
            50,
        ),
        (
            "evt.type=open and proc.name startswith oneof and",
            "expected blank or '(' after 'and'",
            1,
            49,
        ),
        (
            "evt.type=open and proc.name pmatch (",
            "expected a ')' token",
            1,
            37,
        ),
        ("evt.type=open and proc.name = ,", STR_OR_TRANSFORMER, 1, 31),
        (
            "evt.type=open and 1abc",
            "expected a '(' token, a field check, or an identifier",
            1,
            19,
        ),
        (
            "evt.type=open and (",
            "expected a '(' token, a field check, or an identifier",
            1,
            20,
        ),
        (
            "evt.type=open and proc.name=x)and(proc.pid=1",
            "unexpected token after 'x', expecting 'or', 'and'",
            1,
            30,
        ),
        (
            " ",
            "expected a '(' token, a field check, or an identifier",
            1,
            2,
        ),
        (
            "and proc.name = a",
            "unexpected token after 'and', expecting 'or', 'and'",
            1,
            5,
        ),
        (
            "= x",
            "expected a '(' token, a field check, or an identifier",
            1,
            1,
        ),
        (
            "evt.type=open and\nproc.name = (",
            STR_OR_TRANSFORMER,
            2,
            13,
        ),
        (
            "evt.type=open and\r\nproc.name = (",
            STR_OR_TRANSFORMER,
            3,
            13,
        ),
        (
            deep_199.as_str(),
            "exceeded max depth limit of 1000",
            1,
            209,
        ),
    ];
    let mut wrong = Vec::new();
    for (condition, message, line, column) in &cases {
        let expected = (full(message), *line, *column);
        match parse_condition(condition) {
            Ok(_) => wrong.push(format!("{condition:?}: parsed, expected {expected:?}")),
            Err(e) if (e.message.clone(), e.line, e.column) != expected => wrong.push(format!(
                "{condition:?}: got {:?}, expected {expected:?}",
                (e.message, e.line, e.column)
            )),
            Err(_) => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
