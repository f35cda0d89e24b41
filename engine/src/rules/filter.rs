//! A single condition, outside any rule file: what `peregrine capture
//! 'FILTER'` keeps, and what sysdig's `-r FILE 'FILTER'` is compared with.

use crate::condition::parse_condition;
use crate::field::FieldSource;

use super::compile::{bind, Node};
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
    scratch: Option<Scratch<'static>>,
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
        Ok(Filter {
            source,
            node,
            scratch: Some(Scratch::default()),
        })
    }

    pub fn matches<'e>(&mut self, event: &S::Event<'e>) -> bool {
        let mut scratch: Scratch<'e> = self.scratch.take().unwrap_or_default().recycle();
        let matched = eval(&self.node, &self.source, event, &mut scratch);
        self.scratch = Some(scratch.recycle());
        matched
    }

    pub fn source(&self) -> &S {
        &self.source
    }
}
