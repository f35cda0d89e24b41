//! Evaluates compiled conditions against one event.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::condition::{Op, Transformer};
use crate::field::{FieldSource, FieldType, Value};

use super::compile::{BoundField, Check, Lit, Node, Rhs};

/// Buffers reused across events so evaluation does not allocate for field
/// values.
#[derive(Debug, Default)]
pub struct Scratch<'e> {
    lhs: Vec<Value<'e>>,
    rhs: Vec<Value<'e>>,
}

impl<'e> Scratch<'e> {
    /// Hands the buffers' allocations to a scratch for another event
    /// lifetime; the vectors are emptied first, so no value outlives its
    /// event.
    pub fn recycle<'f>(self) -> Scratch<'f> {
        Scratch { lhs: recycle_vec(self.lhs), rhs: recycle_vec(self.rhs) }
    }
}

// `filter` cannot change the element's lifetime; `filter_map` can.
#[allow(clippy::unnecessary_filter_map)]
fn recycle_vec<'a, 'b>(mut v: Vec<Value<'a>>) -> Vec<Value<'b>> {
    v.clear();
    // An empty in-place collect keeps the allocation (same layout).
    v.into_iter().filter_map(|_| None).collect()
}

pub fn eval<'e, S: FieldSource>(node: &Node, source: &S, event: &S::Event<'e>, scratch: &mut Scratch<'e>) -> bool {
    match node {
        Node::And(items) => items.iter().all(|n| eval(n, source, event, scratch)),
        Node::Or(items) => items.iter().any(|n| eval(n, source, event, scratch)),
        Node::Not(inner) => !eval(inner, source, event, scratch),
        Node::Check(check) => eval_check(check, source, event, scratch),
    }
}

fn extract<'e, S: FieldSource>(field: &BoundField, source: &S, event: &S::Event<'e>, out: &mut Vec<Value<'e>>) {
    out.clear();
    source.extract(&field.resolved, event, out);
    for t in &field.transformers {
        for v in out.iter_mut() {
            *v = transform(*t, std::mem::replace(v, Value::Bool(false)));
        }
    }
}

fn as_text<'a>(v: &'a Value<'_>) -> Cow<'a, str> {
    match v {
        Value::Str(s) => Cow::Borrowed(s.as_ref()),
        Value::Bytes(b) => String::from_utf8_lossy(b),
        other => Cow::Owned(other.to_string()),
    }
}

fn transform(t: Transformer, v: Value<'_>) -> Value<'_> {
    match t {
        Transformer::ToLower => Value::Str(Cow::Owned(as_text(&v).to_lowercase())),
        Transformer::ToUpper => Value::Str(Cow::Owned(as_text(&v).to_uppercase())),
        Transformer::Basename => {
            let text = as_text(&v);
            let base = text.rsplit('/').next().unwrap_or("").to_string();
            Value::Str(Cow::Owned(base))
        }
        Transformer::B64 => {
            let decoded = crate::output::base64_decode(as_text(&v).trim()).unwrap_or_default();
            Value::Str(Cow::Owned(String::from_utf8_lossy(&decoded).into_owned()))
        }
        Transformer::Len => Value::Uint(match &v {
            Value::Str(s) => s.len() as u64,
            Value::Bytes(b) => b.len() as u64,
            _ => 0,
        }),
    }
}

fn eval_check<'e, S: FieldSource>(check: &Check, source: &S, event: &S::Event<'e>, scratch: &mut Scratch<'e>) -> bool {
    extract(&check.field, source, event, &mut scratch.lhs);
    let values = &scratch.lhs;
    if values.is_empty() {
        return false;
    }
    let is_list = check.field.resolved.is_list;
    match (&check.rhs, check.op) {
        (Rhs::None, _) => true,
        (Rhs::Field(other), op) => {
            extract(other, source, event, &mut scratch.rhs);
            let Some(first) = scratch.rhs.first() else { return false };
            let lit = value_to_lit(first);
            scratch.lhs.iter().any(|v| compare(op, v, &lit, check.field.ty))
        }
        (Rhs::Regex(re), _) => values.iter().any(|v| re.is_match(&as_text(v))),
        (Rhs::StrSet(set), Op::In) if is_list => values.iter().all(|v| set.contains(as_text(v).as_ref())),
        (Rhs::StrSet(set), _) => values.iter().any(|v| set.contains(as_text(v).as_ref())),
        (Rhs::Many(lits), Op::In) if is_list => values.iter().all(|v| lits.iter().any(|l| compare(Op::Eq, v, l, check.field.ty))),
        (Rhs::Many(lits), Op::In | Op::Intersects) => {
            values.iter().any(|v| lits.iter().any(|l| compare(Op::Eq, v, l, check.field.ty)))
        }
        (Rhs::Many(lits), Op::PMatch) => values.iter().any(|v| lits.iter().any(|l| pmatch(&as_text(v), l))),
        (Rhs::Many(lits), op) => values.iter().any(|v| lits.iter().any(|l| compare(op, v, l, check.field.ty))),
        (Rhs::One(lit), op) => values.iter().any(|v| compare(op, v, lit, check.field.ty)),
    }
}

fn value_to_lit(v: &Value<'_>) -> Lit {
    match v {
        Value::Str(s) => Lit::Str(s.to_string()),
        Value::Int(i) => Lit::Int(*i),
        Value::Uint(u) => Lit::Uint(*u),
        Value::Bool(b) => Lit::Bool(*b),
        Value::Ip(ip) => Lit::Ip(*ip),
        Value::Net(ip, l) => Lit::Net(*ip, *l),
        Value::Bytes(b) => Lit::Bytes(b.to_vec()),
    }
}

fn pmatch(path: &str, lit: &Lit) -> bool {
    let Lit::Str(prefix) = lit else { return false };
    let prefix = prefix.trim_end_matches('/');
    if prefix.contains(['*', '?', '[']) {
        return glob_match(&format!("{prefix}*"), path, false);
    }
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

fn ip_in_net(ip: &IpAddr, net: &IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let len = u32::from(len.min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            (u32::from(*a) & mask) == (u32::from(*n) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let len = u32::from(len.min(128));
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            (u128::from(*a) & mask) == (u128::from(*n) & mask)
        }
        _ => false,
    }
}

fn ordering<T: PartialOrd>(op: Op, a: T, b: T) -> bool {
    match op {
        Op::Eq | Op::In | Op::Intersects => a == b,
        Op::Ne => a != b,
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Gt => a > b,
        Op::Ge => a >= b,
        _ => false,
    }
}

fn compare(op: Op, v: &Value<'_>, lit: &Lit, _ty: FieldType) -> bool {
    match (v, lit) {
        (Value::Int(a), Lit::Int(b)) => ordering(op, *a, *b),
        (Value::Uint(a), Lit::Uint(b)) => ordering(op, *a, *b),
        (Value::Int(a), Lit::Uint(b)) => ordering(op, i128::from(*a), i128::from(*b)),
        (Value::Uint(a), Lit::Int(b)) => ordering(op, i128::from(*a), i128::from(*b)),
        (Value::Bool(a), Lit::Bool(b)) => ordering(op, *a, *b),
        (Value::Ip(a), Lit::Ip(b)) => ordering(op, a, b),
        (Value::Ip(a), Lit::Net(n, l)) => {
            let inside = ip_in_net(a, n, *l);
            if op == Op::Ne {
                !inside
            } else {
                inside
            }
        }
        (Value::Net(n, l), Lit::Ip(a)) => ip_in_net(a, n, *l) != (op == Op::Ne),
        (Value::Net(a, al), Lit::Net(b, bl)) => ordering(op, (a, al), (b, bl)),
        (Value::Bytes(b), Lit::Bytes(l)) => match op {
            Op::BContains | Op::Contains => contains_bytes(b, l),
            Op::BStartsWith | Op::StartsWith => b.starts_with(l),
            Op::EndsWith => b.ends_with(l),
            _ => ordering(op, b.as_ref(), l.as_slice()),
        },
        (_, Lit::Bytes(l)) => {
            let text = as_text(v);
            match op {
                Op::BContains => contains_bytes(text.as_bytes(), l),
                Op::BStartsWith => text.as_bytes().starts_with(l),
                _ => false,
            }
        }
        (_, Lit::Str(s)) => {
            let text = as_text(v);
            let t = text.as_ref();
            match op {
                Op::Contains => t.contains(s.as_str()),
                Op::IContains => t.to_lowercase().contains(&s.to_lowercase()),
                Op::StartsWith => t.starts_with(s.as_str()),
                Op::EndsWith => t.ends_with(s.as_str()),
                Op::Glob => glob_match(s, t, false),
                Op::IGlob => glob_match(s, t, true),
                Op::PMatch => pmatch(t, lit),
                _ => ordering(op, t, s.as_str()),
            }
        }
        _ => false,
    }
}

fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Shell-style glob: `*`, `?` and `[...]` classes, matching the whole text.
pub fn glob_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if ignore_case {
        (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect())
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class_match(&p, pi, t[ti]) {
                        if matched {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() && p[pi + 1] == t[ti] => {
                    pi += 2;
                    ti += 1;
                    continue;
                }
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class starting at `p[start] == '['`; returns
/// (matched, index after the class) or None when the class is unclosed.
fn class_match(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() && (p[i] != ']' || first) {
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    (i < p.len()).then_some((matched != negate, i + 1))
}
