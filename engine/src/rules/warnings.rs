//! Warnings Falco gives about a rule's condition and output that do not
//! stop it from loading: fields made meaningless by one event per syscall
//! (evt.dir, the latencies) and `<NA>` compared with a k8s audit field.

use std::collections::BTreeSet;

use crate::condition::{Expr, Op, Operand};

use super::diagnostics::Code;

/// Fields current Falco reports as deprecated, in its order.
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
            Code::DeprecatedItem,
            deprecation(DEPRECATED_FIELDS[i]).to_string(),
        ));
    }
    out
}

/// Falco 0.40's placeholder for the container's id and name.
pub const CONTAINER_INFO: &str = "%container.info";

/// The warnings for an output: each deprecated field its text names (as
/// text: `%evt.latency.s` names evt.latency too, as in Falco).
pub fn output_warnings(output: &str) -> Vec<(Code, String)> {
    let container_info = output.contains(CONTAINER_INFO).then(|| {
        (
            Code::DeprecatedItem,
            "%container.info is deprecated and no more useful, and will be dropped by Falco 1.0.0. \
             The container plugin will automatically add required fields to the output message."
                .to_string(),
        )
    });
    container_info
        .into_iter()
        .chain(
            DEPRECATED_FIELDS
                .iter()
                .filter(|f| output.contains(*f))
                .map(|f| {
                    (
                        Code::DeprecatedItem,
                        format!(
                            "usage of deprecated field '{f}' has been detected in the rule output"
                        ),
                    )
                }),
        )
        .collect()
}
