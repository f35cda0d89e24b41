//! The syntax tree of a condition, before macros, lists and fields are
//! resolved.

use std::fmt;
use std::sync::Arc;

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
    /// A macro already expanded, shared by every condition that uses it
    /// (the rules expander makes these; the parser never does).
    Shared(Arc<SharedExpr>),
}

/// An expanded macro body and what its expansion costs were it copied:
/// the limits on expanded conditions count it at that size wherever it is
/// used, since evaluation still walks it at each use.
#[derive(Debug, PartialEq)]
pub struct SharedExpr {
    pub name: String,
    pub body: Expr,
    /// Nodes of the body once expanded.
    pub nodes: usize,
    /// Levels of the body once expanded.
    pub depth: usize,
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
    /// The field's name; with a `composite` base, the name of what built
    /// it (`join`, `concat`, a list...), for messages only.
    pub name: String,
    /// The bracketed argument: of the field, or a transformer's selector
    /// (`getopt(...)[t]`).
    pub arg: Option<String>,
    pub transformers: Vec<Transformer>,
    pub pos: Pos,
    /// What the transformers apply to when it is not a field of the
    /// source: a literal, a list, or a transformer of several arguments.
    /// None for a plain field, the common case.
    pub composite: Option<Box<Composite>>,
}

/// The base of a [`FieldRef`] that is not a field of the source, written
/// as a transformer argument (libsinsp's transformer lists and
/// multi-value transformers).
#[derive(Debug, Clone, PartialEq)]
pub enum Composite {
    /// A quoted string or a number: one constant value.
    Literal(String),
    /// `(a, b, ...)`: a list of the values of its items, in order.
    List(Vec<FieldRef>),
    /// `name(a, b, ...)`: a transformer given other than one argument
    /// (`join`, `concat`, `getopt`; any other name is an error at bind
    /// time, as in libsinsp), or `join`/`concat`/`getopt` given one.
    Call { name: String, args: Vec<FieldRef> },
}

impl FieldRef {
    /// A plain field of the source.
    pub fn field(name: impl Into<String>, arg: Option<String>, pos: Pos) -> FieldRef {
        FieldRef {
            name: name.into(),
            arg,
            transformers: Vec::new(),
            pos,
            composite: None,
        }
    }

    /// Calls `f` on every plain field this reference reads, in the order
    /// they are written (the fields of a composite included).
    pub fn visit_fields<'a>(&'a self, f: &mut dyn FnMut(&'a FieldRef)) {
        match self.composite.as_deref() {
            None => f(self),
            Some(Composite::Literal(_)) => {}
            Some(Composite::List(items)) | Some(Composite::Call { args: items, .. }) => {
                items.iter().for_each(|i| i.visit_fields(f))
            }
        }
    }
}

/// Writes a reference the way libsinsp prints one (its `as_string`):
/// arguments separated by bare commas, literals unquoted.
impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in self.transformers.iter().rev() {
            write!(f, "{}(", t.name())?;
        }
        let write_all = |f: &mut fmt::Formatter<'_>, items: &[FieldRef]| -> fmt::Result {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        };
        match self.composite.as_deref() {
            None => f.write_str(&self.name)?,
            Some(Composite::Literal(text)) => f.write_str(text)?,
            Some(Composite::List(items)) => {
                f.write_str("(")?;
                write_all(f, items)?;
                f.write_str(")")?;
            }
            Some(Composite::Call { name, args }) => {
                write!(f, "{name}(")?;
                write_all(f, args)?;
                f.write_str(")")?;
            }
        }
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

    /// The operator as libsinsp writes it in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::IContains => "icontains",
            Op::BContains => "bcontains",
            Op::StartsWith => "startswith",
            Op::BStartsWith => "bstartswith",
            Op::EndsWith => "endswith",
            Op::Glob => "glob",
            Op::IGlob => "iglob",
            Op::PMatch => "pmatch",
            Op::In => "in",
            Op::Intersects => "intersects",
            Op::Exists => "exists",
            Op::Regex => "regex",
        }
    }

    /// Whether the right-hand side is a parenthesised list.
    pub fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::PMatch)
    }
}

/// A list modifier after a string operator (`startswith oneof (a, b)`):
/// how many of the list's values the operator must hold for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modifier {
    /// Exactly one.
    OneOf,
    /// At least one.
    AnyOf,
    /// Every one.
    AllOf,
}

impl Modifier {
    pub fn from_name(name: &str) -> Option<Modifier> {
        Some(match name {
            "oneof" => Modifier::OneOf,
            "anyof" => Modifier::AnyOf,
            "allof" => Modifier::AllOf,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Modifier::OneOf => "oneof",
            Modifier::AnyOf => "anyof",
            Modifier::AllOf => "allof",
        }
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
    /// `op oneof/anyof/allof (list)`: `rhs` is the list.
    pub modifier: Option<Modifier>,
    pub rhs: Operand,
    pub pos: Pos,
    /// Where the right-hand side starts (a value, a list's parenthesis):
    /// where libsinsp places a warning about a value.
    pub rhs_pos: Pos,
    pub written: Written,
}

/// What the tree does not otherwise say of how a comparison was written,
/// and libsinsp's syntax tree keeps: `-L` prints conditions back as
/// libsinsp does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    /// `==` rather than `=`: one operator, two spellings.
    pub double_equals: bool,
    /// A list's place taken by a bare name (`in shells`), which libsinsp
    /// holds as one value, not as a list of one.
    pub bare_name: bool,
}

impl Expr {
    /// Calls `f` on every node, parents before children.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| e.walk(f)),
            Expr::Not(inner) => inner.walk(f),
            Expr::Shared(shared) => shared.body.walk(f),
            Expr::Macro { .. } | Expr::Compare(_) => {}
        }
    }
}
