//! A single condition, outside any rule file: what `peregrine capture
//! 'FILTER'` keeps, and what sysdig's `-r FILE 'FILTER'` is compared with.

use crate::condition::parse_condition;
use crate::field::FieldSource;

use super::compile::{bind, event_types, Node, TypeSet};
use super::diagnostics::Code;
use super::eval::{eval, Scratch};
use super::expand::{expand_condition, ExpandedLists, ParsedMacros};

/// Why a filter could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("filter does not parse at column {column}: {message}")]
    Parse { column: usize, message: String },
    #[error("filter does not compile: {0}")]
    Compile(String),
}

/// Why a condition could not be compiled against loaded rules, as a rule
/// load would say it: `CODE (title): message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({}): {message}", code.as_str(), code.title())]
pub struct ConditionError {
    pub code: Code,
    pub message: String,
}

/// A compiled condition bound to its source.
pub struct Filter<S: FieldSource> {
    source: S,
    node: Node,
    /// One bit per event type the condition can match, when it names its
    /// types (`evt.type = open and ...`): other events are not evaluated,
    /// as rules are indexed by type.
    types: Option<Vec<u64>>,
    scratch: Option<Scratch<'static>>,
}

/// The bits of a type set over every 16-bit type code; None for all types.
fn type_bits(set: TypeSet) -> Option<Vec<u64>> {
    let (codes, keep) = match set {
        TypeSet::All => return None,
        TypeSet::Only(codes) => (codes, true),
        TypeSet::Except(codes) => (codes, false),
    };
    let mut bits = vec![if keep { 0 } else { u64::MAX }; 1 << 10];
    for c in codes {
        let (word, bit) = (usize::from(c >> 6), c & 63);
        if keep {
            bits[word] |= 1 << bit;
        } else {
            bits[word] &= !(1 << bit);
        }
    }
    Some(bits)
}

impl<S: FieldSource> Filter<S> {
    /// Compiles `text` for `source`. A filter has no macros or lists to
    /// refer to: a bare word in it is an error.
    pub fn new(text: &str, mut source: S) -> Result<Filter<S>, FilterError> {
        let expr = parse_condition(text).map_err(|e| FilterError::Parse {
            column: e.column,
            message: e.message,
        })?;
        let node = bind(&mut source, &expr).map_err(|e| FilterError::Compile(e.message()))?;
        // A type name the source does not know leaves the filter unindexed
        // (the comparison itself then decides, as before).
        let types = event_types(&source, &expr).ok().and_then(type_bits);
        Ok(Filter {
            source,
            node,
            types,
            scratch: Some(Scratch::default()),
        })
    }

    /// Compiles `text` as a rule's condition: the macros and lists it
    /// names are the loaded ones (see [`super::expand::validate`] and
    /// [`super::expand::expanded_lists`]).
    pub fn with_macros(
        text: &str,
        macros: &ParsedMacros,
        lists: &ExpandedLists,
        mut source: S,
    ) -> Result<Filter<S>, ConditionError> {
        let expr = expand_condition(text, macros, lists).map_err(|e| ConditionError {
            code: e.code,
            message: e.message,
        })?;
        let compile_error = |message| ConditionError {
            code: Code::ErrCompileCondition,
            message,
        };
        let node = bind(&mut source, &expr).map_err(|e| compile_error(e.message()))?;
        let types = event_types(&source, &expr).map_err(compile_error)?;
        Ok(Filter {
            source,
            node,
            types: type_bits(types),
            scratch: Some(Scratch::default()),
        })
    }

    /// Whether the event meets the condition. Events of types the
    /// condition cannot match are answered here, without evaluating.
    #[inline]
    pub fn matches<'e>(&mut self, event: &S::Event<'e>) -> bool {
        if let (Some(bits), Some(t)) = (&self.types, self.source.event_type(event)) {
            if bits[usize::from(t >> 6)] & (1 << (t & 63)) == 0 {
                return false;
            }
        }
        self.evaluate(event)
    }

    #[inline(never)]
    fn evaluate<'e>(&mut self, event: &S::Event<'e>) -> bool {
        // Scratch<'static> is a Scratch<'e> as it is (covariance): only
        // the way back needs the buffers emptied and recycled.
        let mut scratch: Scratch<'e> = self.scratch.take().unwrap_or_default();
        let matched = eval(&self.node, &self.source, event, &mut scratch);
        self.scratch = Some(scratch.recycle());
        matched
    }

    pub fn source(&self) -> &S {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s_audit::K8sAuditSource;
    use crate::rules::expand::{expanded_lists, validate};
    use crate::rules::{LoadResult, RulesLoader};

    const RULES: &str = r#"
- list: watched_resources
  items: [configmaps, secrets]
- macro: creating
  condition: ka.verb=create
- rule: Created
  desc: d
  condition: creating and ka.target.resource in (watched_resources)
  output: o
  priority: NOTICE
  source: k8s_audit
"#;

    fn loaded() -> (ParsedMacros, ExpandedLists) {
        let mut loader = RulesLoader::new();
        assert!(loader.load_str("rules.yaml", RULES).successful());
        let defs = loader.definitions();
        let mut result = LoadResult::default();
        (
            validate(defs, "rules.yaml", &mut result).0,
            expanded_lists(defs),
        )
    }

    #[test]
    fn a_condition_uses_the_loaded_macros_and_lists() {
        let (macros, lists) = loaded();
        let mut filter = Filter::with_macros(
            "creating and ka.target.resource in (watched_resources)",
            &macros,
            &lists,
            K8sAuditSource::new(),
        )
        .unwrap();
        let event = |verb: &str, resource: &str| serde_json::json!({"verb": verb, "objectRef": {"resource": resource}});
        assert!(filter.matches(&&event("create", "secrets")));
        assert!(!filter.matches(&&event("delete", "secrets")));
        assert!(!filter.matches(&&event("create", "pods")));
    }

    #[test]
    fn errors_are_worded_as_a_rule_load_words_them() {
        let (macros, lists) = loaded();
        let error = |text: &str| {
            Filter::with_macros(text, &macros, &lists, K8sAuditSource::new())
                .err()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            error("ka.nosuchfield = 1"),
            "LOAD_ERR_COMPILE_CONDITION (Error compiling condition): filter_check called \
             with nonexistent field ka.nosuchfield"
        );
        let unknown_macro = error("creating and not_a_macro");
        assert!(
            unknown_macro.starts_with("LOAD_ERR_") && unknown_macro.contains("not_a_macro"),
            "{unknown_macro}"
        );
        assert!(error("ka.verb = ").starts_with("LOAD_ERR_COMPILE_CONDITION"));
    }
}
