//! Conditions and fields written back as text the way libsinsp prints its
//! syntax tree (`as_string`): what Falco's `-L` shows as a rule's
//! compiled condition, and the names it gives output fields.
//!
//! `and` and `or` each print in parentheses, with their operands in a
//! row; `not` prints before its operand; values are quoted only when they
//! hold a blank, `=`, a quote, a backslash or a control character, and
//! then escaped. A macro already inlined prints as its condition.

use super::ast::{Comparison, Composite, Expr, FieldRef, Op, Operand};

/// The condition as libsinsp prints it.
pub fn condition_text(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(expr, &mut out);
    out
}

/// A field, or a transformer and what it applies to, as libsinsp prints
/// it: `proc.aname[2]`, `tolower(proc.name)`, `concat(proc.name,"-")`.
pub fn field_text(field: &FieldRef) -> String {
    let mut out = String::new();
    write_field(field, field.transformers.len(), &mut out);
    out
}

/// The name libsinsp gives a plain field in the lists of fields it
/// reports: its argument in brackets as written, unquoted (an empty one
/// is left out).
pub fn field_name(field: &FieldRef) -> String {
    match field.arg.as_deref() {
        Some(arg) if !arg.is_empty() => format!("{}[{arg}]", field.name),
        _ => field.name.clone(),
    }
}

/// libsinsp's `escape_str`: the text as it is, or between double quotes
/// with its special characters escaped when it has any.
pub fn escape_value(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    let mut quote = false;
    for c in text.chars() {
        match c {
            '\u{8}' => escaped.push_str("\\b"),
            '\u{c}' => escaped.push_str("\\f"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            // Quoted, but kept as they are.
            ' ' | '=' | '\'' | '\0' => escaped.push(c),
            _ => {
                escaped.push(c);
                continue;
            }
        }
        quote = true;
    }
    if quote {
        format!("\"{escaped}\"")
    } else {
        escaped
    }
}

/// A comparison's operator as libsinsp holds it: as written (`==` stays
/// `==`), followed by its list modifier if any (`startswith oneof`).
pub fn operator_text(cmp: &Comparison) -> String {
    let op = if cmp.op == Op::Eq && cmp.written.double_equals {
        "=="
    } else {
        cmp.op.as_str()
    };
    match cmp.modifier {
        Some(modifier) => format!("{op} {}", modifier.as_str()),
        None => op.to_string(),
    }
}

fn write_expr(expr: &Expr, out: &mut String) {
    // A condition may nest as deep as its expansion allows.
    super::with_stack(|| write_expr_level(expr, out));
}

fn write_expr_level(expr: &Expr, out: &mut String) {
    match expr {
        Expr::And(items) => write_chain(items, "and", out),
        Expr::Or(items) => write_chain(items, "or", out),
        Expr::Not(inner) => {
            out.push_str("not ");
            write_expr(inner, out);
        }
        Expr::Macro { name, .. } => out.push_str(name),
        Expr::Shared(shared) => write_expr(&shared.body, out),
        Expr::Compare(cmp) => write_comparison(cmp, out),
    }
}

fn write_chain(items: &[Expr], word: &str, out: &mut String) {
    out.push('(');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
            out.push_str(word);
            out.push(' ');
        }
        write_expr(item, out);
    }
    out.push(')');
}

fn write_comparison(cmp: &Comparison, out: &mut String) {
    write_field(&cmp.field, cmp.field.transformers.len(), out);
    out.push(' ');
    out.push_str(&operator_text(cmp));
    match &cmp.rhs {
        Operand::None => {}
        Operand::Value(lit) => {
            out.push(' ');
            out.push_str(&escape_value(&lit.text));
        }
        Operand::List(items) if cmp.written.bare_name && items.len() == 1 => {
            out.push(' ');
            out.push_str(&escape_value(&items[0].text));
        }
        Operand::List(items) => {
            out.push_str(" (");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&escape_value(&item.text));
            }
            out.push(')');
        }
        Operand::Field(field) => {
            out.push(' ');
            if is_plain(field) {
                // `val(field)`: libsinsp's transformer naming another field.
                out.push_str("val(");
                write_field(field, 0, out);
                out.push(')');
            } else {
                write_field(field, field.transformers.len(), out);
            }
        }
    }
}

/// A field with no transformer around it and nothing composite inside.
pub(crate) fn is_plain(field: &FieldRef) -> bool {
    field.transformers.is_empty() && field.composite.is_none()
}

/// `field` with its first `levels` transformers (innermost first).
pub(crate) fn write_field(field: &FieldRef, levels: usize, out: &mut String) {
    let levels = levels.min(field.transformers.len());
    for t in field.transformers[..levels].iter().rev() {
        out.push_str(t.name());
        out.push('(');
    }
    match field.composite.as_deref() {
        None => {
            out.push_str(&field.name);
            write_argument(field.arg.as_deref(), out);
        }
        Some(Composite::Literal(text)) => out.push_str(&escape_value(text)),
        Some(Composite::List(items)) => {
            out.push('(');
            write_items(items, out);
            out.push(')');
        }
        Some(Composite::Call { name, args }) => {
            out.push_str(name);
            out.push('(');
            write_items(args, out);
            out.push(')');
            write_argument(field.arg.as_deref(), out);
        }
    }
    for _ in 0..levels {
        out.push(')');
    }
}

fn write_items(items: &[FieldRef], out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_field(item, item.transformers.len(), out);
    }
}

fn write_argument(arg: Option<&str>, out: &mut String) {
    match arg {
        None => {}
        Some("") => out.push_str("[\"\"]"),
        Some(arg) => {
            out.push('[');
            out.push_str(&escape_value(arg));
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::parse_condition;

    fn printed(text: &str) -> String {
        condition_text(&parse_condition(text).expect("a valid condition"))
    }

    #[test]
    fn chains_print_in_parentheses_and_single_items_bare() {
        assert_eq!(
            printed("a.b = 1 and (c.d = 2 or not e.f exists) and (g.h=3)"),
            "(a.b = 1 and (c.d = 2 or not e.f exists) and g.h = 3)"
        );
        assert_eq!(printed("not not a.b = 1"), "a.b = 1");
    }

    #[test]
    fn operators_keep_their_spelling() {
        assert_eq!(printed("a.b == x"), "a.b == x");
        assert_eq!(
            printed("a.b startswith oneof (x, y)"),
            "a.b startswith oneof (x, y)"
        );
        assert_eq!(printed("a.b in shells"), "a.b in shells");
        assert_eq!(printed("a.b in (shells)"), "a.b in (shells)");
        assert_eq!(
            printed("a.b pmatch (/x, '/y z')"),
            "a.b pmatch (/x, \"/y z\")"
        );
    }

    #[test]
    fn values_are_quoted_as_libsinsp_quotes_them() {
        assert_eq!(escape_value("plain/path"), "plain/path");
        assert_eq!(escape_value("a b"), "\"a b\"");
        assert_eq!(escape_value("a=b"), "\"a=b\"");
        assert_eq!(escape_value("it's"), "\"it's\"");
        assert_eq!(escape_value("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(escape_value("a\tb\\"), "\"a\\tb\\\\\"");
        assert_eq!(escape_value(""), "");
    }

    #[test]
    fn fields_transformers_and_val() {
        assert_eq!(
            printed("tolower(proc.aname[2]) = x and proc.name = val(proc.pname)"),
            "(tolower(proc.aname[2]) = x and proc.name = val(proc.pname))"
        );
        assert_eq!(
            printed("toupper(tolower(proc.name)) != tolower(proc.pname)"),
            "toupper(tolower(proc.name)) != tolower(proc.pname)"
        );
        assert_eq!(
            printed(r#"concat(proc.name, "a b", 12) = x"#),
            r#"concat(proc.name,"a b",12) = x"#
        );
        assert_eq!(printed(r#"proc.env[""] = x"#), r#"proc.env[""] = x"#);
    }
}
