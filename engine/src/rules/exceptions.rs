//! Exceptions as Falco treats them once read: their comparison operators
//! checked against their fields, and the condition text each one adds to
//! its rule as `and not (...)`.

use std::borrow::Cow;

use crate::condition::Modifier;

use super::diagnostics::Code;
use super::expand::ExpandError;
use super::items::{Exception, ExceptionEntry, RuleItem};

/// `startswith oneof` and the like: a string operator and a modifier that
/// applies it to each value of a list.
pub(crate) fn is_operator_with_modifier(op: &str) -> bool {
    let mut words = op.split_whitespace();
    let (Some(base), Some(modifier), None) = (words.next(), words.next(), words.next()) else {
        return false;
    };
    Modifier::from_name(modifier).is_some()
        && matches!(
            base,
            "=" | "=="
                | "!="
                | "contains"
                | "icontains"
                | "bcontains"
                | "startswith"
                | "bstartswith"
                | "endswith"
                | "glob"
                | "iglob"
                | "regex"
        )
}

/// Checks an exception's comparison operators against its fields, filling
/// in the default operators, as Falco does when a rule is defined (the
/// fields themselves are checked against the source when compiling).
pub(crate) fn check_comps(ex: &mut Exception) -> Result<(), String> {
    let mut comps = ex.effective_comps();
    match (&ex.fields, &mut comps) {
        (Some(ExceptionEntry::List(fields)), comps) => {
            let ExceptionEntry::List(comps) = comps else {
                return Err("Fields and comps lists must have equal length".to_string());
            };
            if comps.len() != fields.len() {
                return Err("Fields and comps lists must have equal length".to_string());
            }
            for comp in comps.iter_mut() {
                let op = comp.as_scalar().unwrap_or_default().trim().to_string();
                if !crate::condition::is_comparison_operator(&op) && !is_operator_with_modifier(&op)
                {
                    return Err(format!("'{op}' is not a supported comparison operator"));
                }
                *comp = ExceptionEntry::Scalar(op);
            }
        }
        (_, ExceptionEntry::List(_)) => {
            return Err("Fields and comps must both be strings".to_string());
        }
        (_, ExceptionEntry::Scalar(op)) => {
            *op = op.trim().to_string();
            if !matches!(op.as_str(), "in" | "pmatch" | "intersects")
                && !is_operator_with_modifier(op)
            {
                return Err("When fields is a single value, comps must be one of (in, pmatch, intersects) or a modifier operator (e.g. startswith oneof)".to_string());
            }
        }
    }
    ex.comps = Some(comps);
    Ok(())
}

/// Quotes a value holding a space unless it is quoted already, as Falco
/// does when it writes an exception or a list into condition text.
fn quote_item(value: &str) -> String {
    if value.contains(' ') && !value.starts_with(['"', '\'']) {
        format!("\"{value}\"")
    } else {
        value.to_string()
    }
}

/// Falco's condition text for one exception, byte for byte as its
/// compiler writes it (the blank after each opening parenthesis and the
/// doubled blank after `and` included: error columns count them):
/// `(( f1 c1 v1 and  f2 c2 v2) or ( ...))` for a tuple of fields,
/// `(f c (v1, v2))` for a single field, or None when it has no values.
/// A quoted value (`'"cat /dev/null"'`) stays one string, and `(name)` or
/// a bare word naming a list is pasted like any list in a condition.
pub fn exception_condition(exc: &Exception) -> Result<Option<String>, ExpandError> {
    let error = |message: &str| ExpandError {
        code: Code::ErrValidate,
        message: message.to_string(),
        exception: Some(exc.name.clone()),
    };
    let comps = exc.effective_comps();
    match &exc.fields {
        Some(ExceptionEntry::List(fields)) => {
            let mut text = String::from("(");
            for value in &exc.values {
                let values = value.items();
                if values.len() != fields.len() {
                    return Err(error("Fields and values lists must have equal length"));
                }
                if text != "(" {
                    text.push_str(" or ");
                }
                text.push('(');
                for (k, ((field, comp), value)) in
                    fields.iter().zip(comps.items()).zip(values).enumerate()
                {
                    let field = field.as_scalar().unwrap_or_default();
                    let comp = comp.as_scalar().unwrap_or_default().trim();
                    let rhs = match value {
                        ExceptionEntry::List(items) => {
                            let items: Vec<String> = items
                                .iter()
                                .map(|i| quote_item(i.as_scalar().unwrap_or_default()))
                                .collect();
                            format!("({})", items.join(", "))
                        }
                        ExceptionEntry::Scalar(v) if takes_list(comp) => {
                            if v.starts_with('(') {
                                v.clone()
                            } else {
                                format!("({v})")
                            }
                        }
                        ExceptionEntry::Scalar(v) => quote_item(v),
                    };
                    if k > 0 {
                        text.push_str(" and ");
                    }
                    text.push_str(&format!(" {field} {comp} {rhs}"));
                }
                text.push(')');
            }
            text.push(')');
            Ok((text != "()").then_some(text))
        }
        Some(ExceptionEntry::Scalar(field)) => {
            let mut items = Vec::new();
            for value in &exc.values {
                let ExceptionEntry::Scalar(v) = value else {
                    return Err(error("Expected values array to contain a list of strings"));
                };
                items.push(quote_item(v));
            }
            let comp = comps.as_scalar().unwrap_or("in").trim().to_string();
            Ok((!items.is_empty()).then(|| format!("({field} {comp} ({}))", items.join(", "))))
        }
        None => Ok(None),
    }
}

/// The condition Falco compiles for a rule: its own text, or, when the
/// rule has exceptions, `(text)` followed by ` and not <exception>` for
/// each exception with values. Errors and their columns point into this
/// text, so with exceptions they sit one column further right.
pub fn rule_condition(rule: &RuleItem) -> Result<Cow<'_, str>, ExpandError> {
    if rule.exceptions.is_empty() {
        return Ok(Cow::Borrowed(&rule.condition));
    }
    let mut text = format!("({})", rule.condition);
    for exc in &rule.exceptions {
        if let Some(not) = exception_condition(exc)? {
            text.push_str(" and not ");
            text.push_str(&not);
        }
    }
    Ok(Cow::Owned(text))
}

/// Operators whose right-hand side is a parenthesised list.
fn takes_list(comp: &str) -> bool {
    matches!(comp, "in" | "intersects" | "pmatch") || is_operator_with_modifier(comp)
}
