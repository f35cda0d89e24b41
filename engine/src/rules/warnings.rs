//! Warnings Falco gives about a rule's condition and output that do not
//! stop it from loading: fields made meaningless by one event per syscall
//! (evt.dir, the latencies) and `<NA>` compared with a k8s audit field.

use std::collections::BTreeSet;

use crate::condition::{parse_field_ref, Expr, Literal, Op, Operand, Pos};
use crate::field::FieldSource;

use super::diagnostics::Code;

/// Fields current Falco reports as deprecated, in its order (falco_load_result.cpp):
/// libsinsp's EPF_DEPRECATED fields ([`crate::syscall_fields::DEPRECATED`],
/// which the listings leave out) but evt.latency.quantized, which Falco
/// does not warn about.
const DEPRECATED_FIELDS: &[&str] = &[
    "evt.dir",
    "evt.latency",
    "evt.latency.s",
    "evt.latency.ns",
    "evt.latency.human",
    "evt.wait_latency",
];

/// Why each deprecated field no longer says anything.
fn deprecation(field: &str) -> &'static str {
    if field == "evt.dir" {
        "due to the drop of enter events, 'evt.dir = <' always evaluates to true, and \
         'evt.dir = >' always evaluates to false. The rule expression can be simplified by \
         removing the condition on 'evt.dir'"
    } else {
        "field is not available due to the drop of enter events."
    }
}

/// The warnings for an expanded condition, as Falco orders them: an unsafe
/// `<NA>` comparison once, then each deprecated field once.
pub fn condition_warnings(expr: &Expr) -> Vec<(Code, String)> {
    let mut unsafe_na = false;
    let mut deprecated = BTreeSet::new();
    expr.walk(&mut |e| {
        let Expr::Compare(cmp) = e else { return };
        if let Some(i) = DEPRECATED_FIELDS.iter().position(|f| *f == cmp.field.name) {
            deprecated.insert(i);
        }
        if let Operand::Field(other) = &cmp.rhs {
            if let Some(i) = DEPRECATED_FIELDS.iter().position(|f| *f == other.name) {
                deprecated.insert(i);
            }
        }
        let audit_field = cmp.field.name.starts_with("ka.") || cmp.field.name.starts_with("jevt.");
        let equality = matches!(
            cmp.op,
            Op::Eq | Op::Ne | Op::In | Op::Intersects | Op::PMatch
        );
        let na = match &cmp.rhs {
            Operand::Value(v) => v.text == "<NA>",
            Operand::List(items) => items.iter().any(|v| v.text == "<NA>"),
            _ => false,
        };
        unsafe_na |= audit_field && equality && na;
    });
    let mut out = Vec::new();
    if unsafe_na {
        out.push((Code::UnsafeNaCheck, String::new()));
    }
    for i in deprecated {
        out.push((
            Code::DeprecatedField(DEPRECATED_FIELDS[i]),
            deprecation(DEPRECATED_FIELDS[i]).to_string(),
        ));
    }
    out
}

/// libsinsp's hints about the values a compiled condition compares with
/// (LOAD_COMPILE_CONDITION), each at the value (or its list) and in its
/// words: a regex a plain operator could do, and a field or a transformer
/// written where a value goes (a forgotten `val()`).
pub fn value_warnings<S: FieldSource>(expr: &Expr, source: &mut S) -> Vec<(String, Pos)> {
    let mut out = Vec::new();
    let mut compares = Vec::new();
    expr.walk(&mut |e| {
        if let Expr::Compare(cmp) = e {
            compares.push(cmp);
        }
    });
    for cmp in compares {
        let values: &[Literal] = match &cmp.rhs {
            Operand::Value(v) => std::slice::from_ref(v),
            Operand::List(items) => items,
            _ => continue,
        };
        for value in values {
            let text = value.text.as_str();
            if cmp.op == Op::Regex && regex_is_plain(text) {
                out.push((
                    format!(
                        "regex check with '{text}' may be optimized with simpler operators \
                         such as '=', 'contains', 'startswith', 'endswith'"
                    ),
                    cmp.rhs_pos,
                ));
            }
            let bare: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let is_field = parse_field_ref(&bare)
                .is_some_and(|f| source.resolve(&f.name, f.arg.as_deref()).is_ok());
            if is_field {
                out.push((
                    format!("'{text}' may be a valid field misused as a const string value"),
                    cmp.rhs_pos,
                ));
            }
            for name in TRANSFORMERS {
                let call = bare.strip_prefix(name).is_some_and(|rest| {
                    rest.len() >= 2 && rest.starts_with('(') && rest.ends_with(')')
                });
                if call {
                    out.push((
                        format!(
                            "'{text}' may be a valid field transformer misused as a const string value"
                        ),
                        cmp.rhs_pos,
                    ));
                }
            }
        }
    }
    out
}

/// The words libsinsp's parser reads as a transformer call, `val` first.
const TRANSFORMERS: &[&str] = &[
    "val", "tolower", "toupper", "b64", "basename", "len", "join", "concat", "getopt",
];

/// Whether a regex has no special character beyond the anchors at its ends
/// and a `.*`-like run at its start or end: what startswith, endswith,
/// contains or `=` would do without a regex engine (libsinsp's heuristic).
fn regex_is_plain(pattern: &str) -> bool {
    let b = pattern.as_bytes();
    let len = b.len();
    let mut i = 0;
    while i < len {
        let anchor = (i == 0 && b[i] == b'^') || (i + 1 == len && b[i] == b'$');
        if anchor {
            i += 1;
            continue;
        }
        let wildcard_end = (i == 0 && len > 1) || i + 2 == len;
        if wildcard_end && b[i] == b'.' && matches!(b.get(i + 1), Some(b'+' | b'*' | b'?')) {
            i += 2;
            continue;
        }
        if b".+*?^$()[]{}|\\".contains(&b[i]) {
            return false;
        }
        i += 1;
    }
    true
}

/// Falco 0.40's placeholder for the container's id and name.
pub const CONTAINER_INFO: &str = "%container.info";

/// Falco's warning for `%container.info` in an output, given before the
/// output is compiled.
pub fn container_info_warning(output: &str) -> Option<(Code, String)> {
    output.contains(CONTAINER_INFO).then(|| {
        (
            Code::DeprecatedItem,
            "%container.info is deprecated and no more useful, and will be dropped by Falco 1.0.0. \
             The container plugin will automatically add required fields to the output message."
                .to_string(),
        )
    })
}

/// The warnings for a compiled output: each deprecated field its text
/// names (as text: `%evt.latency.s` names evt.latency too, as in Falco).
pub fn deprecated_output_warnings(output: &str) -> Vec<(Code, String)> {
    DEPRECATED_FIELDS
        .iter()
        .filter(|f| output.contains(*f))
        .map(|f| {
            (
                Code::DeprecatedField(f),
                format!("usage of deprecated field '{f}' has been detected in the rule output"),
            )
        })
        .collect()
}
