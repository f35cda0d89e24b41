//! The syntax tree of a condition, before macros, lists and fields are
//! resolved.

use std::fmt;

/// Where a node starts inside the condition text (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// A bare identifier: the name of a macro.
    Macro {
        name: String,
        pos: Pos,
    },
    Compare(Comparison),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transformer {
    ToLower,
    ToUpper,
    B64,
    Basename,
    Len,
}

impl Transformer {
    pub fn from_name(name: &str) -> Option<Transformer> {
        Some(match name {
            "tolower" => Transformer::ToLower,
            "toupper" => Transformer::ToUpper,
            "b64" => Transformer::B64,
            "basename" => Transformer::Basename,
            "len" => Transformer::Len,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Transformer::ToLower => "tolower",
            Transformer::ToUpper => "toupper",
            Transformer::B64 => "b64",
            Transformer::Basename => "basename",
            Transformer::Len => "len",
        }
    }
}

/// A field with its bracketed argument and the transformers wrapped
/// around it, innermost first.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRef {
    pub name: String,
    pub arg: Option<String>,
    pub transformers: Vec<Transformer>,
    pub pos: Pos,
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in self.transformers.iter().rev() {
            write!(f, "{}(", t.name())?;
        }
        f.write_str(&self.name)?;
        if let Some(arg) = &self.arg {
            write!(f, "[{arg}]")?;
        }
        for _ in &self.transformers {
            f.write_str(")")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    IContains,
    BContains,
    StartsWith,
    BStartsWith,
    EndsWith,
    Glob,
    IGlob,
    PMatch,
    In,
    Intersects,
    Exists,
    Regex,
}

impl Op {
    pub fn from_token(token: &str) -> Option<Op> {
        Some(match token {
            "=" | "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "contains" => Op::Contains,
            "icontains" => Op::IContains,
            "bcontains" => Op::BContains,
            "startswith" => Op::StartsWith,
            "bstartswith" => Op::BStartsWith,
            "endswith" => Op::EndsWith,
            "glob" => Op::Glob,
            "iglob" => Op::IGlob,
            "pmatch" => Op::PMatch,
            "in" => Op::In,
            "intersects" => Op::Intersects,
            "exists" => Op::Exists,
            "regex" => Op::Regex,
            _ => return None,
        })
    }

    /// Whether the right-hand side is a parenthesised list.
    pub fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::PMatch)
    }
}

/// One literal as written; only unquoted words may name a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    pub text: String,
    pub quoted: bool,
}

impl Literal {
    pub fn bare(text: impl Into<String>) -> Literal {
        Literal {
            text: text.into(),
            quoted: false,
        }
    }
    pub fn quoted(text: impl Into<String>) -> Literal {
        Literal {
            text: text.into(),
            quoted: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `exists` takes nothing.
    None,
    Value(Literal),
    List(Vec<Literal>),
    /// `val(field)`: compare against another field of the same event.
    Field(FieldRef),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub field: FieldRef,
    pub op: Op,
    pub rhs: Operand,
    pub pos: Pos,
}

impl Expr {
    /// Calls `f` on every node, parents before children.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| e.walk(f)),
            Expr::Not(inner) => inner.walk(f),
            Expr::Macro { .. } | Expr::Compare(_) => {}
        }
    }
}
