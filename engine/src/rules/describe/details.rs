//! What a condition names, found as Falco's `filter_details_resolver`
//! finds it: the fields it reads, the operators it uses, the macros and
//! lists it names, and the event names it compares `evt.type` with.

use std::collections::{BTreeSet, HashSet};

use crate::condition::print::{field_name, operator_text};
use crate::condition::{Composite, Expr, FieldRef, Operand};

/// The names found in one condition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Fields, with their argument (`proc.aname[2]`).
    pub fields: BTreeSet<String>,
    pub operators: BTreeSet<String>,
    /// Known macros named (only in a condition whose macros are not
    /// inlined yet).
    pub macros: BTreeSet<String>,
    /// Known lists named inside a parenthesised list.
    pub lists: BTreeSet<String>,
    /// Values compared with `evt.type` or `evt.asynctype` that are not
    /// list names: the event names a plugin's async events may match.
    pub event_names: BTreeSet<String>,
}

/// The macro and list names Falco knows (every one loaded): only these
/// count as macros and lists.
pub struct Known<'a> {
    pub macros: &'a HashSet<&'a str>,
    pub lists: &'a HashSet<&'a str>,
}

/// Walks `expr` as Falco does, adding what it finds to `found`.
pub fn walk(expr: &Expr, known: &Known<'_>, found: &mut Found) {
    crate::condition::with_stack(|| walk_level(expr, known, found));
}

fn walk_level(expr: &Expr, known: &Known<'_>, found: &mut Found) {
    match expr {
        Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| walk(e, known, found)),
        Expr::Not(inner) => walk(inner, known, found),
        Expr::Shared(shared) => walk(&shared.body, known, found),
        Expr::Macro { name, .. } => {
            if known.macros.contains(name.as_str()) {
                found.macros.insert(name.clone());
            }
        }
        Expr::Compare(cmp) => {
            // The field last read on the left decides whether the values
            // on the right are event names.
            let mut last = None;
            visit_field(&cmp.field, false, found, &mut last);
            found.operators.insert(operator_text(cmp));
            let event_names = matches!(last.as_deref(), Some("evt.type" | "evt.asynctype"));
            match &cmp.rhs {
                Operand::None => {}
                Operand::Value(lit) => {
                    if event_names {
                        found.event_names.insert(lit.text.clone());
                    }
                }
                Operand::List(items) if cmp.written.bare_name && items.len() == 1 => {
                    if event_names {
                        found.event_names.insert(items[0].text.clone());
                    }
                }
                Operand::List(items) => {
                    for item in items {
                        let is_list = known.lists.contains(item.text.as_str());
                        if is_list {
                            found.lists.insert(item.text.clone());
                        } else if event_names {
                            found.event_names.insert(item.text.clone());
                        }
                    }
                }
                Operand::Field(field) => {
                    let mut ignored = None;
                    visit_field(field, event_names, found, &mut ignored);
                }
            }
        }
    }
}

/// A field reference as libsinsp's visitor meets it (transformers around
/// a field change nothing here): every plain field inside is a field read (`last` is the last one met), and a literal
/// given to a transformer is an event name where `event_names` says so.
fn visit_field(field: &FieldRef, event_names: bool, found: &mut Found, last: &mut Option<String>) {
    match field.composite.as_deref() {
        None => {
            let name = field_name(field);
            found.fields.insert(name.clone());
            *last = Some(name);
        }
        Some(Composite::Literal(text)) => {
            if event_names {
                found.event_names.insert(text.clone());
            }
        }
        Some(Composite::List(items)) | Some(Composite::Call { args: items, .. }) => {
            for item in items {
                visit_field(item, event_names, found, last);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::parse_condition;

    fn found(text: &str, macros: &[&str], lists: &[&str]) -> Found {
        let macros: HashSet<&str> = macros.iter().copied().collect();
        let lists: HashSet<&str> = lists.iter().copied().collect();
        let known = Known {
            macros: &macros,
            lists: &lists,
        };
        let mut found = Found::default();
        walk(&parse_condition(text).expect("valid"), &known, &mut found);
        found
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fields_operators_macros_and_lists() {
        let f = found(
            "spawned and proc.name in (shells, zsh) and not fd.name startswith /tmp \
             and unknown_thing and proc.aname[2] exists and tolower(proc.pname) == val(user.name)",
            &["spawned"],
            &["shells"],
        );
        assert_eq!(
            f.fields,
            set(&[
                "proc.name",
                "fd.name",
                "proc.aname[2]",
                "proc.pname",
                "user.name"
            ])
        );
        assert_eq!(f.operators, set(&["in", "startswith", "exists", "=="]));
        assert_eq!(f.macros, set(&["spawned"]));
        assert_eq!(f.lists, set(&["shells"]));
        assert!(f.event_names.is_empty());
    }

    #[test]
    fn event_names_are_the_values_of_evt_type() {
        let f = found(
            "evt.type in (open, my_syscalls) or evt.type = execve or evt.asynctype = container \
             or proc.name = open",
            &[],
            &["my_syscalls"],
        );
        assert_eq!(f.event_names, set(&["open", "execve", "container"]));
        assert_eq!(f.lists, set(&["my_syscalls"]));
    }

    #[test]
    fn a_bare_name_is_a_value_not_a_list() {
        let f = found("proc.name in shells", &[], &["shells"]);
        assert!(f.lists.is_empty());
    }
}
