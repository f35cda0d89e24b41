//! Falco's condition language: grammar, syntax tree and parser.

pub mod ast;
mod lexer;
mod limits;
mod parser;
pub mod print;
mod syntax;
pub(crate) use syntax::is_comparison_operator;

pub use ast::{
    Comparison, Composite, Expr, FieldRef, Literal, Modifier, Op, Operand, Pos, SharedExpr,
    Transformer, Written,
};
pub use limits::{with_stack, MAX_NESTING};
pub use parser::{
    parse_condition, parse_condition_with_max_depth, parse_field_ref, parse_operand, unescape,
    ParseError,
};
