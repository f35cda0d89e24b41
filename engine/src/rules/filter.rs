//! A single condition, outside any rule file: what `peregrine capture
//! 'FILTER'` keeps, and what sysdig's `-r FILE 'FILTER'` is compared with.

use crate::condition::parse_condition;
use crate::field::FieldSource;

use super::compile::{bind, event_types, Node, TypeSet};
use super::eval::{eval, Scratch};

/// Why a filter could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("filter does not parse at column {column}: {message}")]
    Parse { column: usize, message: String },
    #[error("filter does not compile: {0}")]
    Compile(String),
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
