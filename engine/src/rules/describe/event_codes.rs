//! The event types a condition can match, found as libsinsp's
//! `ppm_event_codes` and `ppm_sc_codes` find them (Falco's `-L` lists
//! the union of both, by name).
//!
//! `and` intersects the sets of its operands and `or` unites them; a
//! `not` is pushed down to the comparisons (De Morgan), where a set that
//! comes from `evt.type` is inverted and any other comparison stays
//! neutral (every type). `evt.num` comparisons that can never or always
//! hold (numbers start at 1) give no type or every type.
//!
//! This follows libsinsp's visitor step by step, state included: which
//! node last gave codes decides whether a set is inverted, so a few odd
//! conditions (`not concat(proc.name, "x") = y`) come out as libsinsp has
//! them.

use crate::condition::print::{is_plain, operator_text};
use crate::condition::{Comparison, Composite, Expr, FieldRef, Operand};
use crate::event::codes::CodeSet;

/// A condition libsinsp cannot search for event codes (and Falco refuses).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("right-hand field comparisons on `evt.type`/`syscall.type` checks are not supported by event code search")]
    FieldOnTheRight,
    #[error("event code search does not support `evt.type` checks with transformers")]
    Transformed,
}

/// What the search runs over: event type numbers or system call codes.
pub struct Universe<'a> {
    pub all: CodeSet,
    /// The codes of a set of `evt.type` names.
    pub named: &'a dyn Fn(&[&str]) -> CodeSet,
}

/// The codes of `universe` for which `expr` can hold.
pub fn search(expr: &Expr, universe: &Universe<'_>) -> Result<CodeSet, SearchError> {
    let mut visitor = Visitor {
        universe,
        evttype_field: false,
        field_or_transformer: true,
        negated: false,
        has_codes: false,
        codes: CodeSet::empty(),
    };
    visitor.expr(expr)?;
    Ok(visitor.codes)
}

struct Visitor<'u, 'a> {
    universe: &'u Universe<'a>,
    /// The last node was the field `evt.type` (or `syscall.type`).
    evttype_field: bool,
    /// The last node was a field or a transformer.
    field_or_transformer: bool,
    /// Inside an odd number of `not`s.
    negated: bool,
    /// The last node gave codes of its own (not a neutral check).
    has_codes: bool,
    /// The codes of the last node.
    codes: CodeSet,
}

/// `evt.num`, whose values start at 1, compared so that the comparison
/// never holds (Some(false)) or always does (Some(true)).
fn evt_num_invariant(cmp: &Comparison) -> Option<bool> {
    if !is_plain(&cmp.field) || cmp.field.name != "evt.num" || cmp.field.arg.is_some() {
        return None;
    }
    let op = operator_text(cmp);
    if op == "in" {
        let Operand::List(items) = &cmp.rhs else {
            return None;
        };
        if cmp.written.bare_name {
            return None;
        }
        return items
            .iter()
            .all(|item| parse_u64(&item.text) == Some(0))
            .then_some(false);
    }
    let Operand::Value(lit) = &cmp.rhs else {
        return None;
    };
    let n = parse_u64(&lit.text)?;
    match op.as_str() {
        "=" | "==" if n == 0 => Some(false),
        "!=" if n == 0 => Some(true),
        "<" if n <= 1 => Some(false),
        "<=" if n == 0 => Some(false),
        ">" if n == 0 => Some(true),
        ">=" if n <= 1 => Some(true),
        _ => None,
    }
}

/// A whole text read as one unsigned number, as C's `sscanf("%lu%c")`
/// reads it for libsinsp: blanks before it and a sign are taken (a
/// negative number wraps around), nothing may follow.
fn parse_u64(text: &str) -> Option<u64> {
    let rest = text.trim_start_matches([' ', '\t', '\n', '\r', '\u{b}', '\u{c}']);
    let (negative, digits) = match rest.as_bytes().first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Past the largest value, strtoul's result: the largest value.
    let value = digits.parse::<u64>().unwrap_or(u64::MAX);
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

impl Visitor<'_, '_> {
    fn all(&self) -> CodeSet {
        self.universe.all
    }

    /// The complement of the last codes, unless they were neutral.
    fn invert(&mut self) {
        if self.has_codes {
            self.codes = self.all().difference(&self.codes);
        }
    }

    fn invert_if_negated(&mut self) {
        if self.negated {
            self.invert();
        }
    }

    fn expr(&mut self, expr: &Expr) -> Result<(), SearchError> {
        crate::condition::with_stack(|| self.expr_level(expr))
    }

    fn expr_level(&mut self, expr: &Expr) -> Result<(), SearchError> {
        match expr {
            Expr::And(items) if self.negated => self.any_of(items),
            Expr::And(items) => self.all_of(items),
            Expr::Or(items) if self.negated => self.all_of(items),
            Expr::Or(items) => self.any_of(items),
            Expr::Not(inner) => {
                self.codes = CodeSet::empty();
                self.negated = !self.negated;
                let result = self.expr(inner);
                self.negated = !self.negated;
                self.evttype_field = false;
                result
            }
            Expr::Shared(shared) => self.expr(&shared.body),
            // A macro not inlined: neutral.
            Expr::Macro { .. } => {
                self.has_codes = false;
                self.codes = self.all();
                self.evttype_field = false;
                self.invert_if_negated();
                Ok(())
            }
            Expr::Compare(cmp) if matches!(cmp.rhs, Operand::None) => {
                self.field(&cmp.field)?;
                self.has_codes = self.evttype_field;
                self.codes = self.all();
                self.evttype_field = false;
                self.invert_if_negated();
                Ok(())
            }
            Expr::Compare(cmp) => self.comparison(cmp),
        }
    }

    fn all_of(&mut self, items: &[Expr]) -> Result<(), SearchError> {
        let mut codes = self.all();
        for item in items {
            self.expr(item)?;
            codes = codes.intersection(&self.codes);
        }
        self.codes = codes;
        self.evttype_field = false;
        Ok(())
    }

    fn any_of(&mut self, items: &[Expr]) -> Result<(), SearchError> {
        let mut codes = CodeSet::empty();
        for item in items {
            self.expr(item)?;
            codes = codes.union(&self.codes);
        }
        self.codes = codes;
        self.evttype_field = false;
        Ok(())
    }

    fn comparison(&mut self, cmp: &Comparison) -> Result<(), SearchError> {
        self.has_codes = false;
        if let Some(holds) = evt_num_invariant(cmp) {
            self.codes = if holds { self.all() } else { CodeSet::empty() };
            self.has_codes = true;
            self.evttype_field = false;
            self.invert_if_negated();
            return Ok(());
        }
        let op = operator_text(cmp);
        if matches!(op.as_str(), "=" | "==" | "!=" | "in") {
            self.field(&cmp.field)?;
            if self.evttype_field {
                self.field_or_transformer = false;
                self.right(cmp)?;
                if self.field_or_transformer {
                    return Err(SearchError::FieldOnTheRight);
                }
                if op == "!=" {
                    // The value's set was inverted already inside a `not`:
                    // inverting again covers both cases.
                    self.invert();
                }
                self.evttype_field = false;
                return Ok(());
            }
        }
        self.codes = self.all();
        self.evttype_field = false;
        self.invert_if_negated();
        Ok(())
    }

    /// The right-hand side of an `evt.type` comparison.
    fn right(&mut self, cmp: &Comparison) -> Result<(), SearchError> {
        match &cmp.rhs {
            Operand::None => Ok(()),
            Operand::Value(lit) => {
                self.values(&[lit.text.as_str()]);
                Ok(())
            }
            Operand::List(items) => {
                let names: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
                self.values(&names);
                Ok(())
            }
            // `val(field)`: a transformer around the field.
            Operand::Field(field) if is_plain(field) => self.transformer(|v| v.field(field)),
            Operand::Field(field) => self.field(field),
        }
    }

    /// A value or a list of values: the codes of those names.
    fn values(&mut self, names: &[&str]) {
        self.has_codes = true;
        self.codes = (self.universe.named)(names);
        self.evttype_field = false;
        self.invert_if_negated();
    }

    /// A field reference: a field, or transformers around what they apply to.
    fn field(&mut self, field: &FieldRef) -> Result<(), SearchError> {
        self.wrapped(field, field.transformers.len())
    }

    /// `field` seen through its first `levels` transformers.
    fn wrapped(&mut self, field: &FieldRef, levels: usize) -> Result<(), SearchError> {
        if levels > 0 {
            return self.transformer(|v| v.wrapped(field, levels - 1));
        }
        match field.composite.as_deref() {
            None => {
                self.has_codes = false;
                self.field_or_transformer = true;
                self.evttype_field = matches!(field.name.as_str(), "evt.type" | "syscall.type")
                    && field.arg.is_none();
                self.codes = self.all();
                self.invert_if_negated();
                Ok(())
            }
            Some(Composite::Literal(text)) => {
                self.values(&[text.as_str()]);
                Ok(())
            }
            Some(Composite::List(items)) => items.iter().try_for_each(|item| self.field(item)),
            Some(Composite::Call { args, .. }) => self.transformer(|v| {
                for arg in args {
                    v.field(arg)?;
                    if v.evttype_field {
                        return Err(SearchError::Transformed);
                    }
                }
                Ok(())
            }),
        }
    }

    /// A transformer whose arguments `inside` visits.
    fn transformer(
        &mut self,
        inside: impl FnOnce(&mut Self) -> Result<(), SearchError>,
    ) -> Result<(), SearchError> {
        inside(self)?;
        if self.evttype_field {
            return Err(SearchError::Transformed);
        }
        self.field_or_transformer = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::parse_condition;

    /// A universe of codes 0..8 where a name `cN` is code N.
    fn search_text(text: &str) -> Result<Vec<u16>, SearchError> {
        let named = |names: &[&str]| -> CodeSet {
            names
                .iter()
                .filter_map(|n| n.strip_prefix('c')?.parse().ok())
                .collect()
        };
        let universe = Universe {
            all: (0..8).collect(),
            named: &named,
        };
        let expr = parse_condition(text).expect("valid");
        search(&expr, &universe).map(|set| set.iter().collect())
    }

    #[test]
    fn and_or_not_over_evt_type() {
        assert_eq!(search_text("evt.type = c1").unwrap(), [1]);
        assert_eq!(
            search_text("evt.type in (c1, c2) and proc.name = x").unwrap(),
            [1, 2]
        );
        assert_eq!(
            search_text("evt.type = c1 or evt.type = c3").unwrap(),
            [1, 3]
        );
        assert_eq!(
            search_text("not evt.type in (c1, c2)").unwrap(),
            [0, 3, 4, 5, 6, 7]
        );
        assert_eq!(
            search_text("evt.type != c1").unwrap(),
            [0, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(search_text("not evt.type != c1").unwrap(), [1]);
        assert_eq!(
            search_text("not (evt.type = c1 and proc.name = x)").unwrap(),
            [0, 1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(search_text("proc.name = x").unwrap().len(), 8);
        assert_eq!(search_text("not proc.name = x").unwrap().len(), 8);
    }

    #[test]
    fn evt_num_and_exists() {
        assert!(search_text("evt.num = 0").unwrap().is_empty());
        assert_eq!(search_text("not evt.num = 0").unwrap().len(), 8);
        assert_eq!(search_text("evt.num > 0").unwrap().len(), 8);
        assert!(search_text("evt.num in (0, -0)").unwrap().is_empty());
        assert_eq!(search_text("evt.num = 5").unwrap().len(), 8);
        assert_eq!(search_text("evt.type exists").unwrap().len(), 8);
        assert!(search_text("not evt.type exists").unwrap().is_empty());
    }

    #[test]
    fn what_libsinsp_refuses() {
        assert_eq!(
            search_text("evt.type = val(proc.name)"),
            Err(SearchError::FieldOnTheRight)
        );
        assert_eq!(
            search_text("tolower(evt.type) = c1"),
            Err(SearchError::Transformed)
        );
    }

    #[test]
    fn numbers_read_as_sscanf_reads_them() {
        assert_eq!(parse_u64(" 12"), Some(12));
        assert_eq!(parse_u64("-0"), Some(0));
        assert_eq!(parse_u64("-1"), Some(u64::MAX));
        assert_eq!(parse_u64("12 "), None);
        assert_eq!(parse_u64("0x1"), None);
        assert_eq!(parse_u64(""), None);
    }
}
