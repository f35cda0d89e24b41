//! Checks that macros and lists hang together, and expands a rule's
//! condition into one tree: macros inlined, list names replaced by their
//! items, exceptions added as `and not (...)`.

use std::collections::{HashMap, HashSet};

use crate::condition::{
    parse_condition, parse_field_ref, Comparison, Expr, Literal, Op, Operand, ParseError, Pos,
};

use super::diagnostics::{Code, Diagnostic, LoadResult};
use super::items::{Definitions, ExceptionValue, RuleItem};

/// Lists with list names inside them replaced by those lists' items, in
/// definition order: a list sees the expanded form of lists defined before
/// it and the raw form of those defined after, as Falco does.
pub fn expanded_lists(defs: &Definitions) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for list in defs.lists.iter() {
        let mut items = Vec::with_capacity(list.items.len());
        for item in &list.items {
            if let Some(done) = out.get(item) {
                items.extend(done.iter().cloned());
            } else if let Some(raw) = defs.lists.get(item) {
                items.extend(raw.items.iter().cloned());
            } else {
                items.push(item.clone());
            }
        }
        out.insert(list.name.clone(), items);
    }
    out
}

/// Macros whose conditions parsed.
pub type ParsedMacros = HashMap<String, Expr>;

fn macro_refs(expr: &Expr, out: &mut Vec<String>) {
    expr.walk(&mut |e| {
        if let Expr::Macro { name, .. } = e {
            out.push(name.clone());
        }
    });
}

fn list_refs(expr: &Expr, lists: &Definitions, out: &mut HashSet<String>) {
    expr.walk(&mut |e| {
        if let Expr::Compare(Comparison {
            rhs: Operand::List(items),
            ..
        }) = e
        {
            for item in items
                .iter()
                .filter(|i| !i.quoted && lists.lists.get(&i.text).is_some())
            {
                out.insert(item.text.clone());
            }
        }
    });
}

/// Validates everything loaded so far, as Falco does after each file:
/// conditions parse, macros exist and do not loop. Unused lists and macros
/// are warned about.
pub fn validate(defs: &Definitions, file: &str, result: &mut LoadResult) -> ParsedMacros {
    let mut report = |code, item_type: &str, name: &str, line, message: String, condition_pos| {
        result.push(Diagnostic {
            code,
            message,
            item_type: item_type.into(),
            item_name: name.into(),
            file: file.into(),
            line,
            condition_pos,
        })
    };
    let mut macros = ParsedMacros::new();
    let mut used_macros = HashSet::new();
    let mut used_lists = HashSet::new();
    for list in defs.lists.iter() {
        for item in &list.items {
            if defs.lists.get(item).is_some() {
                used_lists.insert(item.clone());
            }
        }
    }
    for m in defs.macros.iter() {
        match parse_condition(&m.condition) {
            Ok(expr) => {
                macros.insert(m.name.clone(), expr);
            }
            Err(e) => report(
                Code::ErrCompileCondition,
                "macro",
                &m.name,
                m.origin.line,
                e.message,
                Some((e.line, e.column)),
            ),
        }
    }
    for m in defs.macros.iter() {
        let Some(expr) = macros.get(&m.name) else {
            continue;
        };
        let mut refs = Vec::new();
        macro_refs(expr, &mut refs);
        list_refs(expr, defs, &mut used_lists);
        for r in &refs {
            used_macros.insert(r.clone());
            if defs.macros.get(r).is_none() {
                report(
                    Code::ErrValidate,
                    "macro",
                    &m.name,
                    m.origin.line,
                    format!("Undefined macro '{r}' used in filter."),
                    None,
                );
            }
        }
        if has_loop(&m.name, &macros) {
            report(
                Code::ErrValidate,
                "macro",
                &m.name,
                m.origin.line,
                format!("reference loop in macro '{}'", m.name),
                None,
            );
        }
    }
    for r in defs.rules.iter() {
        match parse_condition(&r.condition) {
            Ok(expr) => {
                let mut refs = Vec::new();
                macro_refs(&expr, &mut refs);
                list_refs(&expr, defs, &mut used_lists);
                for name in &refs {
                    used_macros.insert(name.clone());
                    if defs.macros.get(name).is_none() {
                        report(
                            Code::ErrValidate,
                            "rule",
                            &r.name,
                            r.origin.line,
                            format!("Undefined macro '{name}' used in filter."),
                            None,
                        );
                    }
                }
            }
            Err(e) => report(
                Code::ErrCompileCondition,
                "rule",
                &r.name,
                r.origin.line,
                e.message,
                Some((e.line, e.column)),
            ),
        }
        for exc in &r.exceptions {
            for tuple in &exc.values {
                for v in tuple {
                    let words: Vec<&String> = match v {
                        ExceptionValue::Scalar(s) => vec![s],
                        ExceptionValue::List(l) => l.iter().collect(),
                    };
                    used_lists.extend(
                        words
                            .into_iter()
                            .filter(|w| defs.lists.get(w).is_some())
                            .cloned(),
                    );
                }
            }
        }
    }
    for m in defs
        .macros
        .iter()
        .filter(|m| !used_macros.contains(&m.name))
    {
        report(
            Code::UnusedMacro,
            "macro",
            &m.name,
            m.origin.line,
            "Macro not referred to by any other rule/macro".into(),
            None,
        );
    }
    for l in defs.lists.iter().filter(|l| !used_lists.contains(&l.name)) {
        report(
            Code::UnusedList,
            "list",
            &l.name,
            l.origin.line,
            "List not referred to by any other rule/macro".into(),
            None,
        );
    }
    macros
}

fn has_loop(start: &str, macros: &ParsedMacros) -> bool {
    fn visit(name: &str, start: &str, macros: &ParsedMacros, seen: &mut HashSet<String>) -> bool {
        let Some(expr) = macros.get(name) else {
            return false;
        };
        let mut refs = Vec::new();
        macro_refs(expr, &mut refs);
        for r in refs {
            if r == start {
                return true;
            }
            if seen.insert(r.clone()) && visit(&r, start, macros, seen) {
                return true;
            }
        }
        false
    }
    visit(start, start, macros, &mut HashSet::new())
}

/// Why a rule's condition could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub code: Code,
    pub message: String,
}

impl From<ParseError> for ExpandError {
    fn from(e: ParseError) -> Self {
        ExpandError {
            code: Code::ErrCompileCondition,
            message: e.message,
        }
    }
}

/// The full condition of a rule: its own, with macros and lists expanded
/// and exceptions appended.
pub fn expand_rule(
    rule: &RuleItem,
    macros: &ParsedMacros,
    lists: &HashMap<String, Vec<String>>,
) -> Result<Expr, ExpandError> {
    let expr = parse_condition(&rule.condition)?;
    let mut expr = expand(&expr, macros, lists, &mut Vec::new())?;
    let mut excepted = Vec::new();
    for exc in &rule.exceptions {
        let mut tuples = Vec::new();
        for tuple in &exc.values {
            let mut terms = Vec::new();
            for (i, value) in tuple.iter().enumerate() {
                let (Some(field_text), Some(comp)) = (exc.fields.get(i), exc.comps.get(i)) else {
                    return Err(ExpandError {
                        code: Code::ErrValidate,
                        message: format!(
                            "Rule exception item {}: fields, comps and values do not match",
                            exc.name
                        ),
                    });
                };
                let field = parse_field_ref(field_text).ok_or_else(|| ExpandError {
                    code: Code::ErrValidate,
                    message: format!(
                        "Rule exception item {}: invalid field name {field_text}",
                        exc.name
                    ),
                })?;
                let op = Op::from_token(comp).filter(|o| *o != Op::Exists).ok_or_else(|| ExpandError {
                    code: Code::ErrValidate,
                    message: format!("Rule exception item {}: comparison operator {comp} is not a supported comparison operator", exc.name),
                })?;
                let rhs = match (op.takes_list(), value) {
                    (true, ExceptionValue::Scalar(s)) => Operand::List(vec![Literal::bare(s.clone())]),
                    (true, ExceptionValue::List(items)) => Operand::List(items.iter().map(|s| Literal::bare(s.clone())).collect()),
                    (false, ExceptionValue::Scalar(s)) => Operand::Value(Literal::quoted(s.clone())),
                    (false, ExceptionValue::List(_)) => {
                        return Err(ExpandError {
                            code: Code::ErrValidate,
                            message: format!("Rule exception item {}: a list value needs an in-like operator, not {comp}", exc.name),
                        })
                    }
                };
                let cmp = Comparison {
                    field,
                    op,
                    rhs,
                    pos: Pos::default(),
                };
                terms.push(expand(&Expr::Compare(cmp), macros, lists, &mut Vec::new())?);
            }
            tuples.push(if terms.len() == 1 {
                terms.remove(0)
            } else {
                Expr::And(terms)
            });
        }
        excepted.extend(tuples);
    }
    if !excepted.is_empty() {
        expr = Expr::And(vec![expr, Expr::Not(Box::new(Expr::Or(excepted)))]);
    }
    Ok(expr)
}

fn expand(
    expr: &Expr,
    macros: &ParsedMacros,
    lists: &HashMap<String, Vec<String>>,
    stack: &mut Vec<String>,
) -> Result<Expr, ExpandError> {
    Ok(match expr {
        Expr::And(items) => Expr::And(
            items
                .iter()
                .map(|e| expand(e, macros, lists, stack))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(items) => Expr::Or(
            items
                .iter()
                .map(|e| expand(e, macros, lists, stack))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(inner) => Expr::Not(Box::new(expand(inner, macros, lists, stack)?)),
        Expr::Macro { name, .. } => {
            let Some(body) = macros.get(name) else {
                return Err(ExpandError {
                    code: Code::ErrValidate,
                    message: format!("Undefined macro '{name}' used in filter."),
                });
            };
            if stack.contains(name) {
                return Err(ExpandError {
                    code: Code::ErrValidate,
                    message: format!("reference loop in macro '{name}'"),
                });
            }
            stack.push(name.clone());
            let out = expand(body, macros, lists, stack)?;
            stack.pop();
            out
        }
        Expr::Compare(cmp) => {
            let mut cmp = cmp.clone();
            if let Operand::List(items) = &cmp.rhs {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match lists.get(&item.text).filter(|_| !item.quoted) {
                        Some(values) => out.extend(values.iter().map(|v| list_item_literal(v))),
                        None => out.push(item.clone()),
                    }
                }
                cmp.rhs = Operand::List(out);
            }
            // Falco substitutes a list's items for its name wherever the
            // name stands as a bare word, so `proc.name=cat_binaries`
            // compares with the item of a one-item list.
            if let Operand::Value(value) = &cmp.rhs {
                if let Some([only]) = lists
                    .get(&value.text)
                    .filter(|_| !value.quoted)
                    .map(Vec::as_slice)
                {
                    cmp.rhs = Operand::Value(list_item_literal(only));
                }
            }
            Expr::Compare(cmp)
        }
    })
}

/// A list item as a literal: items written with quotes inside the YAML
/// (`'"sh -c"'`) are strings with the quotes removed.
fn list_item_literal(item: &str) -> Literal {
    let quoted = item.len() >= 2
        && ((item.starts_with('"') && item.ends_with('"'))
            || (item.starts_with('\'') && item.ends_with('\'')));
    if quoted {
        Literal::quoted(crate::condition::unescape(&item[1..item.len() - 1]))
    } else {
        Literal::bare(item)
    }
}
