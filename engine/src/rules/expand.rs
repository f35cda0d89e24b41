//! Checks that macros and lists hang together, and expands a rule's
//! condition into one tree: macros inlined, list names replaced by their
//! items, exceptions added as `and not (...)`.

use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use crate::condition::{
    parse_condition, Comparison, Expr, Literal, Operand, ParseError, SharedExpr,
};

use super::diagnostics::{Code, Diagnostic, LoadResult};
use super::exceptions::exception_condition;
use super::items::{Definitions, ExceptionEntry, RuleItem};

/// How many items one list may hold once the lists named in it are
/// replaced by their items; a few lines that double a list at each step
/// would otherwise take all memory.
pub const MAX_LIST_ITEMS: usize = 100_000;

/// How many items all lists together may hold once expanded.
pub const MAX_TOTAL_LIST_ITEMS: usize = 1_000_000;

/// How many nodes (comparisons, `and`/`or`/`not`, list items) one rule's
/// condition may have once its macros and lists are expanded. A macro is
/// expanded once and shared by the rules (and macros) that use it, so it
/// takes its memory once; it is still counted at its size at every use,
/// since evaluation walks it at every use. The largest of Falco's own
/// rules stays below a few thousand.
pub const MAX_EXPANDED_NODES: usize = 200_000;

/// How deep one rule's condition may nest once its macros are expanded:
/// evaluation recurses once per level on the event threads.
pub const MAX_EXPANDED_DEPTH: usize = 300;

/// Lists expanded for use in conditions.
#[derive(Debug, Default)]
pub struct ExpandedLists {
    items: HashMap<String, Vec<String>>,
    /// Lists whose expansion went past [`MAX_LIST_ITEMS`] (or past
    /// [`MAX_TOTAL_LIST_ITEMS`] for all lists): a rule naming one fails.
    oversized: HashSet<String>,
}

impl ExpandedLists {
    fn get(&self, name: &str) -> Result<Option<&Vec<String>>, ExpandError> {
        if self.oversized.contains(name) {
            return Err(ExpandError {
                code: Code::ErrCompileCondition,
                message: format!(
                    "list '{name}' expands to more than {MAX_LIST_ITEMS} items \
                     (or all lists together to more than {MAX_TOTAL_LIST_ITEMS})"
                ),
                exception: None,
            });
        }
        Ok(self.items.get(name))
    }
}

/// Lists with list names inside them replaced by those lists' items, in
/// definition order: a list sees the expanded form of lists defined before
/// it and the raw form of those defined after, as Falco does.
pub fn expanded_lists(defs: &Definitions) -> ExpandedLists {
    let mut out = ExpandedLists::default();
    let mut total = 0usize;
    for list in defs.lists.iter() {
        let mut items = Vec::with_capacity(list.items.len().min(MAX_LIST_ITEMS));
        let mut oversized = false;
        for item in &list.items {
            let more: &[String] = if out.oversized.contains(item) {
                oversized = true;
                break;
            } else if let Some(done) = out.items.get(item) {
                done
            } else if let Some(raw) = defs.lists.get(item) {
                &raw.items
            } else {
                std::slice::from_ref(item)
            };
            if items.len() + more.len() > MAX_LIST_ITEMS
                || total + items.len() + more.len() > MAX_TOTAL_LIST_ITEMS
            {
                oversized = true;
                break;
            }
            items.extend(more.iter().cloned());
        }
        if oversized {
            out.items.remove(&list.name);
            out.oversized.insert(list.name.clone());
        } else {
            total += items.len();
            out.oversized.remove(&list.name);
            out.items.insert(list.name.clone(), items);
        }
    }
    out
}

/// Macros whose conditions parsed.
pub type ParsedMacros = HashMap<String, Expr>;

/// Macros expanded so far, by name: what later uses share.
pub type ExpandedMacros = HashMap<String, Arc<SharedExpr>>;

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
    // Falco stops at the first error of this stage: a macro loop is
    // reported once, and unused items are not reported after an error.
    let mut diags: Vec<Diagnostic> = Vec::new();
    let mut report = |code, item_type: &str, name: &str, line, message: String, condition_pos| {
        diags.push(Diagnostic {
            code,
            message,
            item_type: item_type.into(),
            item_name: name.into(),
            file: file.into(),
            line,
            context: Vec::new(),
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
    let in_loops = macros_in_loops(defs, &macros);
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
        if in_loops.contains(&m.name) {
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
            let mut words = Vec::new();
            exc.values.iter().for_each(|v| entry_words(v, &mut words));
            used_lists.extend(
                words
                    .into_iter()
                    .map(|w| w.trim_start_matches('(').trim_end_matches(')'))
                    .filter(|w| defs.lists.get(w).is_some())
                    .map(str::to_string),
            );
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
    if let Some(first_error) = diags.iter().position(|d| d.code.is_error()) {
        diags.truncate(first_error + 1);
    }
    diags.into_iter().for_each(|d| result.push(d));
    macros
}

/// The macros that are part of a reference loop: those in a strongly
/// connected component of more than one macro, or referring to
/// themselves. Tarjan's algorithm, without recursion and in linear time:
/// a chain of thousands of macros must neither overflow the stack nor
/// cost a walk per macro.
fn macros_in_loops(defs: &Definitions, macros: &ParsedMacros) -> HashSet<String> {
    let names: Vec<&str> = defs
        .macros
        .iter()
        .map(|m| m.name.as_str())
        .filter(|name| macros.contains_key(*name))
        .collect();
    let id: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let edges: Vec<Vec<usize>> = names
        .iter()
        .map(|name| {
            let mut refs = Vec::new();
            if let Some(expr) = macros.get(*name) {
                macro_refs(expr, &mut refs);
            }
            let mut targets: Vec<usize> = refs
                .iter()
                .filter_map(|r| id.get(r.as_str()).copied())
                .collect();
            targets.sort_unstable();
            targets.dedup();
            targets
        })
        .collect();
    let n = names.len();
    let mut index: Vec<Option<usize>> = vec![None; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut counter = 0;
    let mut in_loops = HashSet::new();
    for root in 0..n {
        if index[root].is_some() {
            continue;
        }
        // (macro, next of its references to follow)
        let mut calls = vec![(root, 0usize)];
        index[root] = Some(counter);
        low[root] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut next)) = calls.last_mut() {
            if let Some(&w) = edges[v].get(*next) {
                *next += 1;
                match index[w] {
                    None => {
                        index[w] = Some(counter);
                        low[w] = counter;
                        counter += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        calls.push((w, 0));
                    }
                    Some(iw) if on_stack[w] => low[v] = low[v].min(iw),
                    Some(_) => {}
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if Some(low[v]) == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 || edges[v].contains(&v) {
                    in_loops.extend(component.into_iter().map(|w| names[w].to_string()));
                }
            }
        }
    }
    in_loops
}

/// Why a rule's condition could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub code: Code,
    pub message: String,
    /// The exception the error is about, when it is about one.
    pub exception: Option<String>,
}

impl From<ParseError> for ExpandError {
    fn from(e: ParseError) -> Self {
        ExpandError {
            code: Code::ErrCompileCondition,
            message: e.message,
            exception: None,
        }
    }
}

fn entry_words<'a>(entry: &'a ExceptionEntry, out: &mut Vec<&'a str>) {
    match entry {
        ExceptionEntry::Scalar(s) => out.push(s),
        ExceptionEntry::List(items) => items.iter().for_each(|i| entry_words(i, out)),
    }
}

/// The full condition of a rule: its own, with macros and lists expanded
/// and each exception appended as `and not (...)`.
pub fn expand_rule(
    rule: &RuleItem,
    macros: &ParsedMacros,
    lists: &ExpandedLists,
    expanded: &mut ExpandedMacros,
) -> Result<Expr, ExpandError> {
    let expr = parse_condition(&rule.condition)?;
    let mut expansion = Expansion {
        macros,
        lists,
        expanded,
        stack: Vec::new(),
        nodes: 0,
        deepest: 0,
    };
    let expr = expansion.expand(&expr, 0)?;
    let mut terms = vec![expr];
    for exc in &rule.exceptions {
        let Some(text) = exception_condition(exc)? else {
            continue;
        };
        let parsed = parse_condition(&text).map_err(|e| ExpandError {
            code: Code::ErrCompileCondition,
            message: e.message,
            exception: None,
        })?;
        let parsed = expansion.expand(&parsed, 0)?;
        terms.push(Expr::Not(Box::new(parsed)));
    }
    Ok(if terms.len() == 1 {
        terms.remove(0)
    } else {
        Expr::And(terms)
    })
}

/// A condition outside any rule (a console's "try this"), expanded as a
/// rule's would be: its macros and lists are those loaded.
pub fn expand_condition(
    text: &str,
    macros: &ParsedMacros,
    lists: &ExpandedLists,
) -> Result<Expr, ExpandError> {
    let expr = parse_condition(text)?;
    let mut expanded = ExpandedMacros::new();
    let mut expansion = Expansion {
        macros,
        lists,
        expanded: &mut expanded,
        stack: Vec::new(),
        nodes: 0,
        deepest: 0,
    };
    expansion.expand(&expr, 0)
}

/// One rule's expansion: the macros being inlined (to catch loops) and
/// the nodes made so far, checked against the limits at each node so that
/// a condition too large fails before it takes the memory.
struct Expansion<'a> {
    macros: &'a ParsedMacros,
    lists: &'a ExpandedLists,
    expanded: &'a mut ExpandedMacros,
    stack: Vec<String>,
    nodes: usize,
    /// The deepest level reached so far.
    deepest: usize,
}

impl Expansion<'_> {
    fn count(&mut self, nodes: usize) -> Result<(), ExpandError> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_EXPANDED_NODES {
            return Err(ExpandError {
                code: Code::ErrCompileCondition,
                message: format!(
                    "condition expands to more than {MAX_EXPANDED_NODES} nodes once its macros \
                     and lists are expanded{}",
                    self.inside()
                ),
                exception: None,
            });
        }
        Ok(())
    }

    fn inside(&self) -> String {
        match self.stack.last() {
            Some(name) => format!(" (while expanding macro '{name}')"),
            None => String::new(),
        }
    }

    fn too_deep(&self) -> ExpandError {
        ExpandError {
            code: Code::ErrCompileCondition,
            message: format!(
                "condition nests deeper than {MAX_EXPANDED_DEPTH} levels once its macros \
                 are expanded{}",
                self.inside()
            ),
            exception: None,
        }
    }

    fn expand(&mut self, expr: &Expr, depth: usize) -> Result<Expr, ExpandError> {
        if depth > MAX_EXPANDED_DEPTH {
            return Err(self.too_deep());
        }
        self.deepest = self.deepest.max(depth);
        if !matches!(expr, Expr::Macro { .. }) {
            self.count(1)?;
        }
        Ok(match expr {
            Expr::And(items) => Expr::And(
                items
                    .iter()
                    .map(|e| self.expand(e, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Or(items) => Expr::Or(
                items
                    .iter()
                    .map(|e| self.expand(e, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Not(inner) => Expr::Not(Box::new(self.expand(inner, depth + 1)?)),
            // Expanded already (not made by the parser): kept as it is.
            Expr::Shared(shared) => Expr::Shared(Arc::clone(shared)),
            Expr::Macro { name, .. } => self.expand_macro(name, depth)?,
            Expr::Compare(cmp) => Expr::Compare(self.expand_compare(cmp)?),
        })
    }

    /// A macro's body, expanded the first time it is named and shared
    /// after. Out of line, like [`Self::expand_compare`], so the frame of
    /// the recursion through [`Self::expand`] stays small.
    #[inline(never)]
    fn expand_macro(&mut self, name: &str, depth: usize) -> Result<Expr, ExpandError> {
        if let Some(shared) = self.expanded.get(name).map(Arc::clone) {
            self.count(shared.nodes)?;
            if depth + shared.depth > MAX_EXPANDED_DEPTH {
                return Err(self.too_deep());
            }
            self.deepest = self.deepest.max(depth + shared.depth);
            return Ok(Expr::Shared(shared));
        }
        let macros = self.macros;
        let Some(body) = macros.get(name) else {
            return Err(ExpandError {
                code: Code::ErrValidate,
                message: format!("Undefined macro '{name}' used in filter."),
                exception: None,
            });
        };
        if self.stack.iter().any(|s| s == name) {
            return Err(ExpandError {
                code: Code::ErrValidate,
                message: format!("reference loop in macro '{name}'"),
                exception: None,
            });
        }
        // The body is measured as if it stood alone, so that any
        // later use can be checked against the limits at its place.
        let (nodes_before, deepest_before) = (self.nodes, self.deepest);
        self.deepest = depth;
        self.stack.push(name.to_string());
        let body = self.expand(body, depth + 1)?;
        self.stack.pop();
        let shared = Arc::new(SharedExpr {
            name: name.to_string(),
            body,
            nodes: self.nodes - nodes_before,
            depth: self.deepest - depth,
        });
        self.deepest = self.deepest.max(deepest_before);
        self.expanded.insert(name.to_string(), Arc::clone(&shared));
        Ok(Expr::Shared(shared))
    }

    /// A comparison with list names replaced by their items.
    #[inline(never)]
    fn expand_compare(&mut self, cmp: &Comparison) -> Result<Comparison, ExpandError> {
        let mut cmp = cmp.clone();
        if let Operand::List(items) = &cmp.rhs {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let values = if item.quoted {
                    None
                } else {
                    self.lists.get(&item.text)?
                };
                match values {
                    Some(values) => {
                        self.count(values.len())?;
                        for v in values.iter() {
                            out.push(list_item_literal(v)?);
                        }
                    }
                    None => {
                        self.count(1)?;
                        out.push(item.clone())
                    }
                }
            }
            cmp.rhs = Operand::List(out);
        }
        // Falco substitutes a list's items for its name wherever the
        // name stands as a bare word, so `proc.name=cat_binaries`
        // compares with the item of a one-item list.
        if let Operand::Value(value) = &cmp.rhs {
            let values = if value.quoted {
                None
            } else {
                self.lists.get(&value.text)?
            };
            if let Some([only]) = values.map(Vec::as_slice) {
                cmp.rhs = Operand::Value(list_item_literal(only)?);
            }
        }
        Ok(cmp)
    }
}

/// A list item as a literal: items written with quotes inside the YAML
/// (`'"sh -c"'`) are strings with the quotes removed.
fn list_item_literal(item: &str) -> Result<Literal, ExpandError> {
    let quoted = item.len() >= 2
        && ((item.starts_with('"') && item.ends_with('"'))
            || (item.starts_with('\'') && item.ends_with('\'')));
    if !quoted {
        return Ok(Literal::bare(item));
    }
    let quote = if item.starts_with('"') { '"' } else { '\'' };
    crate::condition::unescape(&item[1..item.len() - 1], quote)
        .map(Literal::quoted)
        .map_err(|message| ExpandError {
            code: Code::ErrCompileCondition,
            message,
            exception: None,
        })
}
