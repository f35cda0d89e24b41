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
        Scratch {
            lhs: recycle_vec(self.lhs),
            rhs: recycle_vec(self.rhs),
        }
    }
}

// `filter` cannot change the element's lifetime; `filter_map` can.
#[allow(clippy::unnecessary_filter_map)]
fn recycle_vec<'a, 'b>(mut v: Vec<Value<'a>>) -> Vec<Value<'b>> {
    // Nothing to keep (a filter that never extracted, like a test of
    // evt.type alone): the collect below costs more than the check.
    if v.capacity() == 0 {
        return Vec::new();
    }
    v.clear();
    // An empty in-place collect keeps the allocation (same layout).
    v.into_iter().filter_map(|_| None).collect()
}

pub fn eval<'e, S: FieldSource>(
    node: &Node,
    source: &S,
    event: &S::Event<'e>,
    scratch: &mut Scratch<'e>,
) -> bool {
    match node {
        Node::And(items) => items.iter().all(|n| eval(n, source, event, scratch)),
        Node::Or(items) => items.iter().any(|n| eval(n, source, event, scratch)),
        Node::Not(inner) => !eval(inner, source, event, scratch),
        Node::Check(check) => eval_check(check, source, event, scratch),
        Node::TypeIn {
            keys,
            negate,
            check,
        } => match source.event_type(event) {
            Some(t) => keys.binary_search(&t).is_ok() != *negate,
            None => eval_check(check, source, event, scratch),
        },
    }
}

fn extract<'e, S: FieldSource>(
    field: &BoundField,
    source: &S,
    event: &S::Event<'e>,
    out: &mut Vec<Value<'e>>,
) {
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

fn eval_check<'e, S: FieldSource>(
    check: &Check,
    source: &S,
    event: &S::Event<'e>,
    scratch: &mut Scratch<'e>,
) -> bool {
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
            let Some(first) = scratch.rhs.first() else {
                return false;
            };
            if let Value::Str(other) = first {
                return scratch
                    .lhs
                    .iter()
                    .any(|v| compare_str(op, &as_text(v), other));
            }
            let lit = value_to_lit(first);
            scratch
                .lhs
                .iter()
                .any(|v| compare(op, v, &lit, check.field.ty))
        }
        (Rhs::Regex(re), _) => values.iter().any(|v| re.is_match(&as_text(v))),
        (Rhs::StrSet(set), Op::In) if is_list => {
            values.iter().all(|v| set.contains(as_text(v).as_ref()))
        }
        (Rhs::StrSet(set), _) => values.iter().any(|v| set.contains(as_text(v).as_ref())),
        (Rhs::Many(lits), Op::In) if is_list => values
            .iter()
            .all(|v| lits.iter().any(|l| compare(Op::Eq, v, l, check.field.ty))),
        (Rhs::Many(lits), Op::In | Op::Intersects) => values
            .iter()
            .any(|v| lits.iter().any(|l| compare(Op::Eq, v, l, check.field.ty))),
        (Rhs::Many(lits), Op::PMatch) => values
            .iter()
            .any(|v| lits.iter().any(|l| pmatch(&as_text(v), l))),
        (Rhs::Many(lits), op) => values
            .iter()
            .any(|v| lits.iter().any(|l| compare(op, v, l, check.field.ty))),
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
    match lit {
        Lit::Str(prefix) => pmatch_str(path, prefix),
        _ => false,
    }
}

/// Whether `path` is `prefix` or lies under it (whole path components).
fn pmatch_str(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return path.starts_with('/');
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
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
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
        (_, Lit::Str(s)) => compare_str(op, &as_text(v), s),
        _ => false,
    }
}

fn compare_str(op: Op, t: &str, s: &str) -> bool {
    match op {
        Op::Contains => t.contains(s),
        Op::IContains => contains_ignore_ascii_case(t.as_bytes(), s.as_bytes()),
        Op::StartsWith => t.starts_with(s),
        Op::EndsWith => t.ends_with(s),
        Op::Glob => glob_match(s, t, false),
        Op::IGlob => glob_match(s, t, true),
        Op::PMatch => pmatch_str(t, s),
        _ => ordering(op, t, s),
    }
}

fn contains_ignore_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Shell-style glob: `*`, `?` and `[...]` classes, matching the whole
/// text; `ignore_case` folds ASCII letters. Works on bytes without
/// allocating (`?` consumes one whole UTF-8 character).
pub fn glob_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let eq = |a: u8, b: u8| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ti += utf8_len(t[ti]);
                    continue;
                }
                b'[' => match class_match(p, pi, t[ti], ignore_case) {
                    Some((true, next)) => {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                    Some((false, _)) => {}
                    None if t[ti] == b'[' => {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                    None => {}
                },
                b'\\' if pi + 1 < p.len() && eq(p[pi + 1], t[ti]) => {
                    pi += 2;
                    ti += 1;
                    continue;
                }
                c if eq(c, t[ti]) => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                let next = st + utf8_len(t[st]);
                pi = sp + 1;
                ti = next;
                star = Some((sp, next));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Matches byte `c` against the class starting at `p[start] == b'['`;
/// returns (matched, index after the class) or None when unclosed.
fn class_match(p: &[u8], start: usize, c: u8, ignore_case: bool) -> Option<(bool, usize)> {
    let c = if ignore_case {
        c.to_ascii_lowercase()
    } else {
        c
    };
    let fold = |x: u8| {
        if ignore_case {
            x.to_ascii_lowercase()
        } else {
            x
        }
    };
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() && (p[i] != b']' || first) {
        first = false;
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            if fold(p[i]) <= c && c <= fold(p[i + 2]) {
                matched = true;
            }
            i += 3;
        } else {
            if fold(p[i]) == c {
                matched = true;
            }
            i += 1;
        }
    }
    (i < p.len()).then_some((matched != negate, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycling_scratch_keeps_its_allocations() {
        let mut scratch: Scratch<'_> = Scratch::default();
        let text = String::from("value");
        scratch
            .lhs
            .extend((0..32).map(|_| Value::Str(Cow::Borrowed(text.as_str()))));
        let (ptr, cap) = (scratch.lhs.as_ptr() as usize, scratch.lhs.capacity());
        let recycled: Scratch<'static> = scratch.recycle();
        assert!(recycled.lhs.is_empty());
        assert_eq!(
            (recycled.lhs.as_ptr() as usize, recycled.lhs.capacity()),
            (ptr, cap)
        );
    }
}
