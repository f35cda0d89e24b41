//! Checks that macros and lists hang together, and expands a rule's
//! condition into one tree: lists pasted into its text (see
//! [`super::paste`]), macros inlined, exceptions added as `and not (...)`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use crate::condition::{parse_condition, Comparison, Expr, Operand, ParseError, Pos, SharedExpr};

use super::diagnostics::{Code, Diagnostic, LoadResult, Location};
use super::exceptions::rule_condition;
use super::items::{Definitions, Origin};
use super::loader::item_locations;
use super::paste::{paste_lists, PasteBudget, PasteError, Pasteable};

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
/// evaluation recurses once per level on the event threads. One
/// condition alone nests at most some 500 levels (`a or(b or(...))`, two
/// levels of libsinsp's parser each), which this leaves room for.
pub const MAX_EXPANDED_DEPTH: usize = 1000;

/// Lists expanded for use in conditions, in definition order: the order
/// Falco pastes them into a condition's text.
#[derive(Debug, Default)]
pub struct ExpandedLists {
    /// Each list with the text that takes its name's place; none for a
    /// list whose expansion went past [`MAX_LIST_ITEMS`] (or past
    /// [`MAX_TOTAL_LIST_ITEMS`] for all lists): a condition naming one
    /// fails.
    lists: Vec<Pasteable>,
}

impl ExpandedLists {
    /// `text` with the lists pasted in, as Falco parses it, its growth
    /// taken from `budget`.
    pub fn paste<'t>(
        &self,
        text: &'t str,
        budget: &mut PasteBudget,
    ) -> Result<Cow<'t, str>, PasteError> {
        paste_lists(text, &self.lists, budget, |name| {
            PasteError::OversizedList {
                name: name.to_string(),
                max_items: MAX_LIST_ITEMS,
                max_total: MAX_TOTAL_LIST_ITEMS,
            }
        })
    }
}

/// Lists with the names of other lists inside them replaced, one level
/// deep, as Falco's compiler builds them: an item naming a list defined
/// before this one was last defined or appended to takes that list's
/// items as written (names of further lists among them stay names); any
/// other item stays as it is. What stays a name may still be pasted into
/// a condition by its own list's turn (see [`super::paste`]).
pub fn expanded_lists(defs: &Definitions) -> ExpandedLists {
    let mut total = 0usize;
    let lists = defs
        .lists
        .iter()
        .map(|list| {
            let mut items = Vec::with_capacity(list.items.len().min(MAX_LIST_ITEMS));
            let mut oversized = false;
            for item in &list.items {
                let more: &[String] = match defs.lists.get(item) {
                    Some(named) if named.index < list.visibility => &named.items,
                    _ => std::slice::from_ref(item),
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
                Pasteable::new(&list.name, None)
            } else {
                total += items.len();
                Pasteable::new(&list.name, Some(&items))
            }
        })
        .collect();
    ExpandedLists { lists }
}

/// Macros whose conditions parsed.
pub type ParsedMacros = HashMap<String, Expr>;

/// The macros and lists that conditions (or other lists) refer to, as the
/// last check found them: the others are the unused ones warned about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub macros: HashSet<String>,
    pub lists: HashSet<String>,
}

/// Macros expanded so far, by name: what later uses share.
pub type ExpandedMacros = HashMap<String, Arc<SharedExpr>>;

/// Validates everything loaded so far, as Falco's compiler does after
/// each file: macro conditions parse, then each macro's references resolve
/// among the macros it can see (those defined before it was last defined
/// or appended to), then rule conditions parse and resolve among all
/// macros. The first error ends the stage; without one, unused lists and
/// macros are warned about. Returns the macros parsed and what is used.
pub fn validate(defs: &Definitions, file: &str, result: &mut LoadResult) -> (ParsedMacros, Usage) {
    let mut diags: Vec<Diagnostic> = Vec::new();
    let failed = std::cell::Cell::new(false);
    let mut report = |code: Code,
                      item_type: &str,
                      name: &str,
                      origin: &Origin,
                      message: String,
                      condition_pos: Option<(usize, usize)>,
                      sub: Vec<Location>| {
        let mut locations = Vec::new();
        if origin.line.is_some() {
            locations = item_locations(&origin.file, &origin.marks, &[], item_type, name);
            locations.extend(sub);
        }
        if code.is_error() {
            failed.set(true);
        }
        diags.push(Diagnostic {
            code,
            message,
            item_type: item_type.into(),
            item_name: name.into(),
            file: file.into(),
            line: origin.line,
            context: Vec::new(),
            condition_pos,
            locations,
        })
    };
    let lists = expanded_lists(defs);
    let mut budget = PasteBudget::default();
    let mut macros = ParsedMacros::new();
    for m in defs.macros.iter() {
        let at = m.origin.marks.value("condition");
        // Falco parses the text with the lists pasted in: its errors point
        // into that text, and its snippet is cut from it.
        let text = match lists.paste(&m.condition, &mut budget) {
            Ok(text) => text,
            Err(e) => {
                report(
                    Code::ErrCompileCondition,
                    "macro",
                    &m.name,
                    &m.origin,
                    e.to_string(),
                    None,
                    vec![Location::new("macro condition", "", &m.origin.file, at)],
                );
                break;
            }
        };
        match parse_condition(&text) {
            Ok(expr) => {
                macros.insert(m.name.clone(), expr);
            }
            Err(e) => {
                report(
                    Code::ErrCompileCondition,
                    "macro",
                    &m.name,
                    &m.origin,
                    e.message,
                    Some((e.line, e.column)),
                    vec![
                        Location::new("macro condition", "", &m.origin.file, at),
                        Location::condition_expression(&text, at, e.line, e.column),
                    ],
                );
                break;
            }
        }
    }
    let mut resolver = Resolver::new(defs, &macros);
    if !failed.get() {
        for m in defs.macros.iter() {
            let Some(expr) = macros.get(&m.name) else {
                continue;
            };
            if let Err((message, pos)) = resolver.resolve(expr, Some(m.visibility)) {
                let at = m.origin.marks.item;
                report(
                    Code::ErrValidate,
                    "macro",
                    &m.name,
                    &m.origin,
                    message,
                    None,
                    vec![Location::condition_expression(
                        &m.condition,
                        at,
                        pos.line,
                        pos.column,
                    )],
                );
                break;
            }
        }
    }
    if !failed.get() {
        for r in defs.rules.iter() {
            let at = r.origin.marks.value("condition");
            // A malformed exception is the compiler's error to report,
            // at the exception; as in Falco it is this rule's, and ends
            // the stage.
            let Ok(condition) = rule_condition(r) else {
                break;
            };
            let text = match lists.paste(&condition, &mut budget) {
                Ok(text) => text,
                Err(e) => {
                    report(
                        Code::ErrCompileCondition,
                        "rule",
                        &r.name,
                        &r.origin,
                        e.to_string(),
                        None,
                        vec![Location::new("rule condition", "", &r.origin.file, at)],
                    );
                    break;
                }
            };
            match parse_condition(&text) {
                Ok(expr) => {
                    if let Err((message, pos)) = resolver.resolve(&expr, None) {
                        let at = r.origin.marks.item;
                        report(
                            Code::ErrValidate,
                            "rule",
                            &r.name,
                            &r.origin,
                            message,
                            None,
                            vec![Location::condition_expression(
                                &condition, at, pos.line, pos.column,
                            )],
                        );
                        break;
                    }
                }
                Err(e) => {
                    report(
                        Code::ErrCompileCondition,
                        "rule",
                        &r.name,
                        &r.origin,
                        e.message,
                        Some((e.line, e.column)),
                        vec![
                            Location::new("rule condition", "", &r.origin.file, at),
                            Location::condition_expression(&text, at, e.line, e.column),
                        ],
                    );
                    break;
                }
            }
        }
    }
    let mut usage = Usage::default();
    if !failed.get() {
        let used_macros = resolver.used;
        usage.macros = used_macros.iter().map(|m| m.to_string()).collect();
        let in_lists = lists_named_in_lists(defs);
        usage.lists = defs
            .lists
            .iter()
            .filter(|l| in_lists.contains(l.name.as_str()) || budget.has_pasted(&l.name))
            .map(|l| l.name.clone())
            .collect();
        for m in defs
            .macros
            .iter()
            .filter(|m| !used_macros.contains(m.name.as_str()))
        {
            report(
                Code::UnusedMacro,
                "macro",
                &m.name,
                &m.origin,
                "Macro not referred to by any other rule/macro".into(),
                None,
                Vec::new(),
            );
        }
        let in_lists = lists_named_in_lists(defs);
        for l in defs
            .lists
            .iter()
            .filter(|l| !in_lists.contains(l.name.as_str()) && !budget.has_pasted(&l.name))
        {
            report(
                Code::UnusedList,
                "list",
                &l.name,
                &l.origin,
                "List not referred to by any other rule/macro".into(),
                None,
                Vec::new(),
            );
        }
    }
    diags.into_iter().for_each(|d| result.push(d));
    (macros, usage)
}

/// Lists whose items another list takes (see [`expanded_lists`]): with
/// the lists pasted into a condition, the lists Falco counts as used.
fn lists_named_in_lists(defs: &Definitions) -> HashSet<&str> {
    let mut used = HashSet::new();
    for list in defs.lists.iter() {
        for item in &list.items {
            if let Some(named) = defs.lists.get(item) {
                if named.index < list.visibility {
                    used.insert(named.name.as_str());
                }
            }
        }
    }
    used
}

/// Falco's macro resolution: each macro name is replaced by the macro's
/// condition, depth first; a name met again on the way down is a loop,
/// a name not visible is undefined. Iterative, so that a chain of
/// thousands of macros needs no deep stack, and each macro found whole
/// once is not walked again.
struct Resolver<'a> {
    defs: &'a Definitions,
    /// The macros each macro's condition names, in order, with where.
    refs: HashMap<&'a str, Vec<(&'a str, Pos)>>,
    /// Macros resolved without error: the highest index they reach.
    whole: HashMap<&'a str, usize>,
    used: HashSet<&'a str>,
}

fn refs_with_pos(expr: &Expr) -> Vec<(&str, Pos)> {
    let mut out = Vec::new();
    expr.walk(&mut |e| {
        if let Expr::Macro { name, pos } = e {
            out.push((name.as_str(), *pos));
        }
    });
    out
}

impl<'a> Resolver<'a> {
    fn new(defs: &'a Definitions, macros: &'a ParsedMacros) -> Self {
        let refs = macros
            .iter()
            .map(|(name, expr)| (name.as_str(), refs_with_pos(expr)))
            .collect();
        Resolver {
            defs,
            refs,
            whole: HashMap::new(),
            used: HashSet::new(),
        }
    }

    /// Resolves `expr` seeing the macros whose index is below
    /// `visibility` (all, when None). The error is Falco's first: the
    /// first loop, else the first undefined macro.
    fn resolve(&mut self, expr: &Expr, visibility: Option<usize>) -> Result<(), (String, Pos)> {
        let visible = |defs: &Definitions, name: &str| -> Option<usize> {
            let m = defs.macros.get(name)?;
            match visibility {
                Some(v) if m.index >= v => None,
                _ => Some(m.index),
            }
        };
        let root: Vec<(Cow<'a, str>, Pos)> = refs_with_pos(expr)
            .into_iter()
            .map(|(n, p)| (Cow::Owned(n.to_string()), p))
            .collect();
        let mut first_loop: Option<(String, Pos)> = None;
        let mut first_unknown: Option<(String, Pos)> = None;
        // (macro being walked, its references, next one, problems when
        // entered, highest index reached)
        struct Frame<'r> {
            name: Option<&'r str>,
            refs: Vec<(Cow<'r, str>, Pos)>,
            next: usize,
            problems: usize,
            max_index: usize,
        }
        let mut problems = 0usize;
        let mut path: HashSet<&'a str> = HashSet::new();
        let mut frames = vec![Frame {
            name: None,
            refs: root,
            next: 0,
            problems: 0,
            max_index: 0,
        }];
        while let Some(top) = frames.last_mut() {
            if let Some((name, pos)) = top.refs.get(top.next).cloned() {
                top.next += 1;
                let name = name.as_ref();
                let Some(index) = visible(self.defs, name) else {
                    problems += 1;
                    first_unknown.get_or_insert((name.to_string(), pos));
                    continue;
                };
                if path.contains(name) {
                    problems += 1;
                    first_loop.get_or_insert((format!("reference loop in macro '{name}'"), pos));
                    continue;
                }
                if let Some(&reach) = self.whole.get(name) {
                    if visibility.map_or(true, |v| reach < v) {
                        top.max_index = top.max_index.max(reach);
                        continue;
                    }
                }
                let Some((&key, refs)) = self.refs.get_key_value(name) else {
                    problems += 1;
                    first_unknown.get_or_insert((name.to_string(), pos));
                    continue;
                };
                let refs = refs.iter().map(|(n, p)| (Cow::Borrowed(*n), *p)).collect();
                path.insert(key);
                frames.push(Frame {
                    name: Some(key),
                    refs,
                    next: 0,
                    problems,
                    max_index: index,
                });
                continue;
            }
            let Some(done) = frames.pop() else {
                break;
            };
            if let Some(name) = done.name {
                path.remove(name);
                self.used.insert(name);
                if problems == done.problems {
                    self.whole.insert(name, done.max_index);
                }
                if let Some(parent) = frames.last_mut() {
                    parent.max_index = parent.max_index.max(done.max_index);
                }
            }
        }
        if let Some(e) = first_loop {
            return Err(e);
        }
        if let Some((name, pos)) = first_unknown {
            return Err((format!("Undefined macro '{name}' used in filter."), pos));
        }
        Ok(())
    }
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

impl From<PasteError> for ExpandError {
    fn from(e: PasteError) -> Self {
        ExpandError {
            code: Code::ErrCompileCondition,
            message: e.to_string(),
            exception: None,
        }
    }
}

/// The full condition of a rule as Falco compiles it: `text` is the rule's
/// condition with its exceptions appended (see [`rule_condition`]), here
/// with the lists pasted in, parsed once, and macros inlined.
pub fn expand_rule(
    text: &str,
    macros: &ParsedMacros,
    lists: &ExpandedLists,
    expanded: &mut ExpandedMacros,
    budget: &mut PasteBudget,
) -> Result<Expr, ExpandError> {
    let expr = parse_condition(&lists.paste(text, budget)?)?;
    let mut expansion = Expansion {
        macros,
        expanded,
        stack: Vec::new(),
        nodes: 0,
        deepest: 0,
    };
    expansion.expand(&expr, 0)
}

/// A condition outside any rule (a console's "try this"), expanded as a
/// rule's would be: its macros and lists are those loaded.
pub fn expand_condition(
    text: &str,
    macros: &ParsedMacros,
    lists: &ExpandedLists,
) -> Result<Expr, ExpandError> {
    let mut expanded = ExpandedMacros::new();
    expand_rule(
        text,
        macros,
        lists,
        &mut expanded,
        &mut PasteBudget::default(),
    )
}

/// One rule's expansion: the macros being inlined (to catch loops) and
/// the nodes made so far, checked against the limits at each node so that
/// a condition too large fails before it takes the memory.
struct Expansion<'a> {
    macros: &'a ParsedMacros,
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
        crate::condition::with_stack(|| self.expand_level(expr, depth))
    }

    fn expand_level(&mut self, expr: &Expr, depth: usize) -> Result<Expr, ExpandError> {
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

    /// A comparison, its list items counted: the lists named in it were
    /// pasted into the text before it was parsed.
    #[inline(never)]
    fn expand_compare(&mut self, cmp: &Comparison) -> Result<Comparison, ExpandError> {
        if let Operand::List(items) = &cmp.rhs {
            self.count(items.len())?;
        }
        Ok(cmp.clone())
    }
}
