//! Falco's condition language: grammar, syntax tree and parser.

pub mod ast;
mod parser;

pub use ast::{Comparison, Expr, FieldRef, Literal, Op, Operand, Pos, Transformer};
pub use parser::{parse_condition, parse_field_ref, unescape, ParseError};
