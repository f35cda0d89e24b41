//! Binds an expanded condition to a [`FieldSource`]: fields resolved once,
//! literals parsed for the field's type, regexes compiled, `in` lists
//! turned into hash sets.

use crate::fast_hash::FastSet;
use std::collections::BTreeSet;
use std::net::IpAddr;

use regex::Regex;

use crate::condition::{Comparison, Expr, FieldRef, Literal, Op, Operand, Transformer};
use crate::field::{FieldError, FieldSource, FieldType, ResolvedField};

/// A compiled condition node.
#[derive(Debug)]
pub enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Check(Box<Check>),
    /// `evt.type = name`, `evt.type in (...)` (or `!=`, negated): whether
    /// the event's index key is in a sorted set (see
    /// [`FieldSource::event_type`]), decided without extracting the type
    /// name; the general check answers for events the source gives no key.
    TypeIn {
        keys: Box<[u16]>,
        negate: bool,
        check: Box<Check>,
    },
}

/// A field as read at evaluation time: the source's handle plus the
/// transformers to apply, innermost first.
#[derive(Debug, Clone)]
pub struct BoundField {
    pub resolved: ResolvedField,
    pub transformers: Vec<Transformer>,
    /// The type after transformers.
    pub ty: FieldType,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Ip(IpAddr),
    Net(IpAddr, u8),
    Bytes(Vec<u8>),
}

#[derive(Debug)]
pub enum Rhs {
    None,
    One(Lit),
    Many(Vec<Lit>),
    /// `in`/`intersects` over strings.
    StrSet(FastSet<String>),
    Regex(Regex),
    Field(BoundField),
}

#[derive(Debug)]
pub struct Check {
    pub field: BoundField,
    pub op: Op,
    pub rhs: Rhs,
}

/// Why a condition could not be bound to a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// A field the source does not know: may be skipped with
    /// `skip-if-unknown-filter`.
    UnknownField(String),
    Other(String),
}

impl BindError {
    pub fn message(&self) -> String {
        match self {
            BindError::UnknownField(f) => format!("filter_check called with nonexistent field {f}"),
            BindError::Other(m) => m.clone(),
        }
    }
}

pub(crate) fn bind_field<S: FieldSource>(
    source: &mut S,
    f: &FieldRef,
) -> Result<BoundField, BindError> {
    let resolved = source
        .resolve(&f.name, f.arg.as_deref())
        .map_err(|e| match e {
            FieldError::Unknown(_) => BindError::UnknownField(f.name.clone()),
            FieldError::BadArgument { .. } => BindError::Other(e.to_string()),
        })?;
    let mut ty = resolved.ty;
    for t in &f.transformers {
        ty = match t {
            Transformer::Len => FieldType::Uint,
            Transformer::ToLower
            | Transformer::ToUpper
            | Transformer::B64
            | Transformer::Basename => {
                if !matches!(ty, FieldType::String | FieldType::Bytes) {
                    return Err(BindError::Other(format!(
                        "transformer {} needs a string field, {} is not",
                        t.name(),
                        f.name
                    )));
                }
                FieldType::String
            }
        };
    }
    Ok(BoundField {
        resolved,
        transformers: f.transformers.clone(),
        ty,
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn parse_ip_or_net(s: &str) -> Option<Lit> {
    match s.split_once('/') {
        Some((ip, len)) => Some(Lit::Net(ip.parse().ok()?, len.parse().ok()?)),
        None => s.parse().ok().map(Lit::Ip),
    }
}

fn parse_literal(ty: FieldType, op: Op, lit: &Literal, field: &str) -> Result<Lit, BindError> {
    let text = lit.text.as_str();
    let bad =
        |what: &str| BindError::Other(format!("'{text}' is not a valid {what} for field {field}"));
    Ok(match ty {
        FieldType::String => Lit::Str(text.to_string()),
        FieldType::Int => Lit::Int(text.trim().parse().map_err(|_| bad("number"))?),
        FieldType::Uint => Lit::Uint(text.trim().parse().map_err(|_| bad("number"))?),
        FieldType::Bool => match text.trim() {
            "true" | "1" => Lit::Bool(true),
            "false" | "0" => Lit::Bool(false),
            _ => return Err(bad("boolean")),
        },
        FieldType::Ip | FieldType::IpNet => {
            parse_ip_or_net(text.trim()).ok_or_else(|| bad("address"))?
        }
        FieldType::Bytes => match op {
            Op::BContains | Op::BStartsWith => {
                Lit::Bytes(decode_hex(text).ok_or_else(|| bad("hex string"))?)
            }
            _ => Lit::Bytes(text.as_bytes().to_vec()),
        },
    })
}

fn op_allowed(ty: FieldType, op: Op) -> bool {
    use FieldType::*;
    match op {
        Op::Eq | Op::Ne | Op::In | Op::Intersects | Op::Exists => true,
        Op::Lt | Op::Le | Op::Gt | Op::Ge => matches!(ty, Int | Uint | String),
        Op::BContains | Op::BStartsWith => matches!(ty, Bytes | String),
        Op::Contains
        | Op::IContains
        | Op::StartsWith
        | Op::EndsWith
        | Op::Glob
        | Op::IGlob
        | Op::Regex => {
            matches!(ty, String | Bytes)
        }
        Op::PMatch => matches!(ty, String),
    }
}

/// Binds an expanded condition.
pub fn bind<S: FieldSource>(source: &mut S, expr: &Expr) -> Result<Node, BindError> {
    Ok(match expr {
        Expr::And(items) => Node::And(
            items
                .iter()
                .map(|e| bind(source, e))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(items) => Node::Or(
            items
                .iter()
                .map(|e| bind(source, e))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(inner) => Node::Not(Box::new(bind(source, inner)?)),
        Expr::Macro { name, .. } => {
            return Err(BindError::Other(format!(
                "Undefined macro '{name}' used in filter."
            )))
        }
        Expr::Compare(cmp) => {
            let check = Box::new(bind_check(source, cmp)?);
            match type_keys(source, cmp) {
                Some(keys) => Node::TypeIn {
                    keys,
                    negate: cmp.op == Op::Ne,
                    check,
                },
                None => Node::Check(check),
            }
        }
    })
}

/// `evt.type` compared for equality with names the source indexes by type
/// (an unknown name, a transformer or another operator leaves the
/// comparison to the general check). Event types named like the generic
/// event itself are left out: evt.type never shows that name.
fn type_keys<S: FieldSource>(source: &S, cmp: &Comparison) -> Option<Box<[u16]>> {
    if cmp.field.name != "evt.type" || !cmp.field.transformers.is_empty() || cmp.field.arg.is_some()
    {
        return None;
    }
    let names: Vec<&str> = match (&cmp.rhs, cmp.op) {
        (Operand::Value(l), Op::Eq | Op::Ne) => vec![l.text.as_str()],
        (Operand::List(items), Op::In) => items.iter().map(|l| l.text.as_str()).collect(),
        _ => return None,
    };
    let generic: BTreeSet<u16> = source
        .event_types_named("syscall")
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut keys = BTreeSet::new();
    for name in names {
        let types = source.event_types_named(name)?;
        keys.extend(types.into_iter().filter(|t| !generic.contains(t)));
    }
    Some(keys.into_iter().collect())
}

fn bind_check<S: FieldSource>(source: &mut S, cmp: &Comparison) -> Result<Check, BindError> {
    let field = bind_field(source, &cmp.field)?;
    let name = cmp.field.to_string();
    if !op_allowed(field.ty, cmp.op) {
        return Err(BindError::Other(format!(
            "operator {:?} is not supported for field {name}",
            cmp.op
        )));
    }
    let rhs = match (&cmp.rhs, cmp.op) {
        (Operand::None, Op::Exists) => Rhs::None,
        (Operand::None, _) => {
            return Err(BindError::Other(format!(
                "missing value after field {name}"
            )))
        }
        (_, Op::Exists) => return Err(BindError::Other("exists takes no value".into())),
        (Operand::Field(other), _) => {
            let other = bind_field(source, other)?;
            if other.ty != field.ty
                && !(matches!(other.ty, FieldType::Int | FieldType::Uint)
                    && matches!(field.ty, FieldType::Int | FieldType::Uint))
            {
                return Err(BindError::Other(format!(
                    "val() compares fields of different types ({name})"
                )));
            }
            Rhs::Field(other)
        }
        (Operand::Value(lit), Op::Regex) => {
            let re = Regex::new(&format!("^(?:{})$", lit.text))
                .map_err(|e| BindError::Other(format!("invalid regex '{}': {e}", lit.text)))?;
            Rhs::Regex(re)
        }
        (Operand::Value(lit), op) if op.takes_list() => {
            Rhs::Many(vec![parse_literal(field.ty, op, lit, &name)?])
        }
        (Operand::Value(lit), op) => Rhs::One(parse_literal(field.ty, op, lit, &name)?),
        (Operand::List(items), op) if op.takes_list() => {
            if field.ty == FieldType::String && op != Op::PMatch {
                Rhs::StrSet(items.iter().map(|l| l.text.clone()).collect())
            } else {
                Rhs::Many(
                    items
                        .iter()
                        .map(|l| parse_literal(field.ty, op, l, &name))
                        .collect::<Result<_, _>>()?,
                )
            }
        }
        (Operand::List(_), op) => {
            return Err(BindError::Other(format!(
                "operator {op:?} does not take a list ({name})"
            )))
        }
    };
    Ok(Check {
        field,
        op: cmp.op,
        rhs,
    })
}

/// The event types a condition can match, for the index and for Falco's
/// "matches too many evt.type values" warning: type codes, or the
/// `evt.type` names themselves when a live source narrows what it captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeSet<T = u16> {
    All,
    Only(BTreeSet<T>),
    Except(BTreeSet<T>),
}

impl<T: Ord + Clone> TypeSet<T> {
    fn and(self, other: Self) -> Self {
        use TypeSet::*;
        match (self, other) {
            (All, x) | (x, All) => x,
            (Only(a), Only(b)) => Only(a.intersection(&b).cloned().collect()),
            (Only(a), Except(b)) | (Except(b), Only(a)) => {
                Only(a.difference(&b).cloned().collect())
            }
            (Except(a), Except(b)) => Except(a.union(&b).cloned().collect()),
        }
    }
    fn or(self, other: Self) -> Self {
        use TypeSet::*;
        match (self, other) {
            (All, _) | (_, All) => All,
            (Only(a), Only(b)) => Only(a.union(&b).cloned().collect()),
            (Only(a), Except(b)) | (Except(b), Only(a)) => {
                Except(b.difference(&a).cloned().collect())
            }
            (Except(a), Except(b)) => Except(a.intersection(&b).cloned().collect()),
        }
    }
    fn not(self) -> Self {
        match self {
            TypeSet::All => TypeSet::All,
            TypeSet::Only(s) => TypeSet::Except(s),
            TypeSet::Except(s) => TypeSet::Only(s),
        }
    }
}

/// Computes the event type codes of an expanded condition. `evt.type`
/// names the source does not know are an error, as in Falco.
pub fn event_types<S: FieldSource>(source: &S, expr: &Expr) -> Result<TypeSet, String> {
    type_set(expr, &mut |name| {
        source
            .event_types_named(name)
            .ok_or_else(|| format!("unknown event type {name}"))
    })
}

/// Like [`event_types`], but keeps the `evt.type` names: what a live
/// source needs to choose the syscalls it captures.
pub fn event_type_names<S: FieldSource>(
    source: &S,
    expr: &Expr,
) -> Result<TypeSet<String>, String> {
    type_set(expr, &mut |name| match source.event_types_named(name) {
        Some(_) => Ok(vec![name.to_owned()]),
        None => Err(format!("unknown event type {name}")),
    })
}

/// Walks the condition: `evt.type` comparisons narrow the set, `and`, `or`
/// and `not` combine it, anything else leaves it open.
fn type_set<T: Ord + Clone>(
    expr: &Expr,
    lookup: &mut impl FnMut(&str) -> Result<Vec<T>, String>,
) -> Result<TypeSet<T>, String> {
    Ok(match expr {
        Expr::And(items) => {
            let mut acc = TypeSet::All;
            for e in items {
                acc = acc.and(type_set(e, lookup)?);
            }
            acc
        }
        Expr::Or(items) => {
            let mut acc: Option<TypeSet<T>> = None;
            for e in items {
                let t = type_set(e, lookup)?;
                acc = Some(match acc {
                    None => t,
                    Some(a) => a.or(t),
                });
            }
            acc.unwrap_or(TypeSet::All)
        }
        Expr::Not(inner) => type_set(inner, lookup)?.not(),
        Expr::Macro { .. } => TypeSet::All,
        Expr::Compare(cmp) => {
            if cmp.field.name != "evt.type"
                || !cmp.field.transformers.is_empty()
                || cmp.field.arg.is_some()
            {
                return Ok(TypeSet::All);
            }
            let names: Vec<&str> = match (&cmp.rhs, cmp.op) {
                (Operand::Value(l), Op::Eq | Op::Ne) => vec![l.text.as_str()],
                (Operand::List(items), Op::In | Op::Intersects) => {
                    items.iter().map(|l| l.text.as_str()).collect()
                }
                _ => return Ok(TypeSet::All),
            };
            let mut codes = BTreeSet::new();
            for name in names {
                codes.extend(lookup(name)?);
            }
            if cmp.op == Op::Ne {
                TypeSet::Except(codes)
            } else {
                TypeSet::Only(codes)
            }
        }
    })
}
