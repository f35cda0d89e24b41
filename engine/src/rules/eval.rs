//! Evaluates compiled conditions against one event.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::condition::{Op, Transformer};
use crate::field::{FieldSource, FieldType, Value};

use super::compile::{
    without_trailing_slashes, BoundComposite, BoundField, Check, Lit, Needle, Node, OptSpec,
    OptString, Prefixes, Rhs,
};

/// Buffers reused across events so evaluation does not allocate for field
/// values, and what the event's rules share: the results of its macros and
/// the values of its fields.
///
/// A macro such as Falco's `open_read` starts a dozen rules of one event
/// type, and `fd.name` is read by as many; a macro's result and a field's
/// values depend on the event and the state alone, which do not change
/// while the event's rules run, so each is evaluated or extracted once per
/// event. Each is stamped with the scratch's generation, which
/// [`Scratch::recycle`] (called after every event) moves on: a result can
/// never be read for another event, whatever that event's bytes.
#[derive(Debug)]
pub struct Scratch<'e> {
    lhs: Vec<Value<'e>>,
    rhs: Vec<Value<'e>>,
    /// Per macro slot: `generation << 1 | result`.
    shared: Vec<u64>,
    /// The values of memoized fields (see [`BoundField::memo`]), each
    /// field's a run of this vector.
    values: Vec<Value<'e>>,
    /// Per field slot: the generation and the run in `values`.
    runs: Vec<FieldRun>,
    /// Starts at 1, so the zeroed slots of a new vector hold no result.
    generation: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct FieldRun {
    generation: u64,
    start: u32,
    end: u32,
}

impl Default for Scratch<'_> {
    fn default() -> Self {
        Scratch {
            lhs: Vec::new(),
            rhs: Vec::new(),
            shared: Vec::new(),
            values: Vec::new(),
            runs: Vec::new(),
            generation: 1,
        }
    }
}

impl<'e> Scratch<'e> {
    /// Hands the buffers' allocations to a scratch for another event
    /// lifetime; the vectors are emptied first, so no value outlives its
    /// event, and the macro results and field values are forgotten.
    pub fn recycle<'f>(self) -> Scratch<'f> {
        Scratch {
            lhs: recycle_vec(self.lhs),
            rhs: recycle_vec(self.rhs),
            shared: self.shared,
            values: recycle_vec(self.values),
            runs: self.runs,
            generation: self.generation + 1,
        }
    }

    /// The result of the macro in `slot` for this event, if evaluated.
    #[inline]
    pub(super) fn remembered(&self, slot: u32) -> Option<bool> {
        let stamp = *self.shared.get(slot as usize)?;
        (stamp >> 1 == self.generation).then_some(stamp & 1 == 1)
    }

    fn remember(&mut self, slot: u32, held: bool) {
        let slot = slot as usize;
        if slot >= self.shared.len() {
            self.shared.resize(slot + 1, 0);
        }
        self.shared[slot] = self.generation << 1 | u64::from(held);
    }
}

/// Extracts the event's values of the field with memo slot `slot` and
/// keeps them as a run of `values`, the first time the event asks (see
/// [`eval_check`]). Takes the scratch's parts, so the caller may borrow
/// the others meanwhile; apart, so that the check that finds the values
/// kept stays small.
#[inline(never)]
fn memoize<'e, S: FieldSource>(
    values: &mut Vec<Value<'e>>,
    runs: &mut Vec<FieldRun>,
    generation: u64,
    slot: u32,
    field: &BoundField,
    source: &S,
    event: &S::Event<'e>,
) -> std::ops::Range<usize> {
    let slot = slot as usize;
    let start = values.len();
    // Only plain fields are kept (see BoundField::memo): what
    // extract_values adds (built values, transformers) never applies.
    debug_assert!(field.composite.is_none() && field.transformers.is_empty());
    source.extract(&field.resolved, event, values);
    // A run past u32 (never, for one event's fields) is not kept.
    if let (Ok(s), Ok(e)) = (u32::try_from(start), u32::try_from(values.len())) {
        if slot >= runs.len() {
            runs.resize(slot + 1, FieldRun::default());
        }
        runs[slot] = FieldRun {
            generation,
            start: s,
            end: e,
        };
    }
    start..values.len()
}

fn recycle_vec<'a, 'b>(mut v: Vec<Value<'a>>) -> Vec<Value<'b>> {
    v.clear();
    let mut v = std::mem::ManuallyDrop::new(v);
    let (ptr, capacity) = (v.as_mut_ptr(), v.capacity());
    // SAFETY: the allocation is handed over whole (pointer and capacity
    // of a vector forgotten above, so freed once) with length 0: no value
    // of lifetime 'a is in it. Value<'a> and Value<'b> differ by a
    // lifetime only, so size, alignment and layout are the same. The safe
    // in-place collect that did this cost half the per-event recycle.
    unsafe { Vec::from_raw_parts(ptr.cast::<Value<'b>>(), 0, capacity) }
}

pub fn eval<'e, S: FieldSource>(
    node: &Node,
    source: &S,
    event: &S::Event<'e>,
    scratch: &mut Scratch<'e>,
) -> bool {
    match node {
        Node::And(items) => items.iter().all(|n| step(n, source, event, scratch)),
        Node::Or(items) => items.iter().any(|n| step(n, source, event, scratch)),
        Node::Not(inner) => !eval(inner, source, event, scratch),
        Node::Shared { node, slot } => {
            if let Some(held) = scratch.remembered(*slot) {
                return held;
            }
            let held = eval(node, source, event, scratch);
            scratch.remember(*slot, held);
            held
        }
        Node::Check(check) => eval_check(check, source, event, scratch),
        Node::ExactlyOne(items) => {
            let mut held = 0;
            for n in items {
                if eval(n, source, event, scratch) {
                    held += 1;
                    if held > 1 {
                        return false;
                    }
                }
            }
            held == 1
        }
        Node::TypeIn {
            keys,
            negate,
            check,
        } => match source.event_type(event) {
            Some(t) => keys.binary_search(&t).is_ok() != *negate,
            None => eval_check(check, source, event, scratch),
        },
        Node::Const(held) => *held,
    }
}

/// A child of an `and` or an `or`: the common leaves (a check, a macro
/// already evaluated for the event) are answered here, without a visit
/// of [`eval`], whose register saves cost more than such a leaf.
#[inline(always)]
fn step<'e, S: FieldSource>(
    node: &Node,
    source: &S,
    event: &S::Event<'e>,
    scratch: &mut Scratch<'e>,
) -> bool {
    match node {
        Node::Check(check) => eval_check(check, source, event, scratch),
        Node::Shared { slot, .. } => match scratch.remembered(*slot) {
            Some(held) => held,
            None => eval(node, source, event, scratch),
        },
        _ => eval(node, source, event, scratch),
    }
}

fn extract<'e, S: FieldSource>(
    field: &BoundField,
    source: &S,
    event: &S::Event<'e>,
    out: &mut Vec<Value<'e>>,
) {
    out.clear();
    extract_values(field, source, event, out);
}

/// Appends the values of a bound field (transformers applied) to `out`;
/// false when the field has no value for this event, which for a list or
/// a multi-value transformer is not the same as no values (`join(",", ())`
/// is the empty string).
pub(crate) fn extract_values<'e, S: FieldSource>(
    field: &BoundField,
    source: &S,
    event: &S::Event<'e>,
    out: &mut Vec<Value<'e>>,
) -> bool {
    let start = out.len();
    let found = match &field.composite {
        None => {
            source.extract(&field.resolved, event, out);
            out.len() > start
        }
        Some(c) => extract_composite(c, source, event, out),
    };
    if !found {
        out.truncate(start);
        return false;
    }
    for (i, t) in field.transformers.iter().enumerate() {
        if field.counts_at == Some(i) {
            let count = (out.len() - start) as u64;
            out.truncate(start);
            out.push(Value::Uint(count));
            continue;
        }
        for v in out[start..].iter_mut() {
            *v = transform(*t, std::mem::replace(v, Value::Bool(false)));
        }
    }
    true
}

/// Lists and multi-value transformers, as libsinsp's list check and its
/// `join`, `concat` and `getopt`. Their values are owned: rules that use
/// them pay for it, others do not. They nest as deep as the parser lets
/// transformers nest (some 1000 levels): the stack grows rather than
/// overflow, a check only rules with such transformers pay for.
fn extract_composite<'e, S: FieldSource>(
    composite: &BoundComposite,
    source: &S,
    event: &S::Event<'e>,
    out: &mut Vec<Value<'e>>,
) -> bool {
    crate::condition::with_stack(|| extract_composite_level(composite, source, event, out))
}

fn extract_composite_level<'e, S: FieldSource>(
    composite: &BoundComposite,
    source: &S,
    event: &S::Event<'e>,
    out: &mut Vec<Value<'e>>,
) -> bool {
    match composite {
        BoundComposite::Literal(text) => {
            out.push(Value::Str(Cow::Owned(text.clone())));
            true
        }
        BoundComposite::List(items) => items
            .iter()
            .all(|item| extract_values(item, source, event, out)),
        BoundComposite::Join { separator, list } => {
            let mut parts = Vec::new();
            if !extract_values(separator, source, event, &mut parts) {
                return false;
            }
            let sep = parts.first().map(|v| as_text(v).into_owned());
            parts.clear();
            if !extract_values(list, source, event, &mut parts) {
                return false;
            }
            let sep = sep.unwrap_or_default();
            let joined = parts
                .iter()
                .map(|v| as_text(v))
                .collect::<Vec<_>>()
                .join(&sep);
            out.push(Value::Str(Cow::Owned(joined)));
            true
        }
        BoundComposite::Concat(args) => {
            let mut joined = String::new();
            let mut parts = Vec::new();
            for arg in args {
                parts.clear();
                if !extract_values(arg, source, event, &mut parts) {
                    return false;
                }
                if let Some(first) = parts.first() {
                    joined.push_str(&as_text(first));
                }
            }
            out.push(Value::Str(Cow::Owned(joined)));
            true
        }
        BoundComposite::Getopt {
            args,
            optstring,
            selector,
        } => {
            let mut values = Vec::new();
            let fetched;
            let spec = match optstring {
                OptString::Fixed(spec) => spec,
                OptString::Field(field) => {
                    if !extract_values(field, source, event, &mut values) {
                        return false;
                    }
                    let Some(first) = values.first() else {
                        return false;
                    };
                    fetched = OptSpec::parse(&as_text(first));
                    values.clear();
                    &fetched
                }
            };
            if !extract_values(args, source, event, &mut values) {
                return false;
            }
            let argv: Vec<Cow<'_, str>> = values.iter().map(|v| as_text(v)).collect();
            let results = getopt(&argv, spec, *selector);
            if selector.is_some() && results.is_empty() {
                return false;
            }
            out.extend(results.into_iter().map(|r| Value::Str(Cow::Owned(r))));
            true
        }
    }
}

/// Reads short options as getopt(3) does: stops at `--` or at the first
/// word that is not an option, skips long options, and splits clusters
/// (`-nt value`). Gives each option and its value, `?` for an option the
/// spec does not know, and an empty value for a missing one; with a
/// selector, only the last value (or the option itself) of that option.
fn getopt(argv: &[Cow<'_, str>], spec: &OptSpec, selector: Option<u8>) -> Vec<String> {
    let mut results = Vec::new();
    let mut selected: Option<String> = None;
    let mut emit = |results: &mut Vec<String>, name: &str, value: Option<&str>| match selector {
        Some(_) => selected = Some(value.unwrap_or(name).to_string()),
        None => {
            results.push(name.to_string());
            if let Some(v) = value {
                results.push(v.to_string());
            }
        }
    };
    let mut idx = 0;
    'words: while idx < argv.len() {
        let word = argv[idx].as_bytes();
        if word == b"--" {
            break;
        }
        if word.len() > 2 && word.starts_with(b"--") {
            idx += 1;
            continue;
        }
        if word.len() < 2 || word[0] != b'-' {
            break;
        }
        for i in 1..word.len() {
            let opt = word[i];
            if opt == b':' || !spec.valid[usize::from(opt)] {
                if selector.is_none() {
                    results.push("?".to_string());
                }
                continue;
            }
            let wanted = selector.map_or(true, |s| s == opt);
            let name = String::from_utf8_lossy(&word[i..=i]);
            let name = name.as_ref();
            if !spec.takes_value[usize::from(opt)] {
                if wanted {
                    emit(&mut results, name, None);
                }
                continue;
            }
            let value = if i + 1 < word.len() {
                Some(String::from_utf8_lossy(&word[i + 1..]).into_owned())
            } else if idx + 1 < argv.len() {
                idx += 1;
                Some(argv[idx].to_string())
            } else {
                None
            };
            match value {
                Some(v) if wanted => emit(&mut results, name, Some(&v)),
                Some(_) => {}
                None => {
                    if wanted {
                        emit(&mut results, "", None);
                    }
                    break 'words;
                }
            }
            break;
        }
        idx += 1;
    }
    if let Some(s) = selected {
        return vec![s];
    }
    results
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

/// A check: the field's values (kept for the event, see [`Scratch`])
/// against the right-hand side. Most checks compare one value with a
/// literal, answered here; the rest go to [`compare_values`].
#[inline]
fn eval_check<'e, S: FieldSource>(
    check: &Check,
    source: &S,
    event: &S::Event<'e>,
    scratch: &mut Scratch<'e>,
) -> bool {
    let values: &[Value<'e>] = match check.field.memo {
        Some(slot) => {
            let run = match scratch.runs.get(slot as usize) {
                Some(run) if run.generation == scratch.generation => {
                    run.start as usize..run.end as usize
                }
                _ => memoize(
                    &mut scratch.values,
                    &mut scratch.runs,
                    scratch.generation,
                    slot,
                    &check.field,
                    source,
                    event,
                ),
            };
            &scratch.values[run]
        }
        None => {
            extract(&check.field, source, event, &mut scratch.lhs);
            &scratch.lhs
        }
    };
    match values {
        [] => false,
        [one] => match one_value(check, one) {
            Some(held) => held,
            None => compare_values(check, values, source, event, &mut scratch.rhs),
        },
        _ => compare_values(check, values, source, event, &mut scratch.rhs),
    }
}

/// A check of a single value against a literal of the common kinds; None
/// for the others. With one value, every form of [`compare_values`] (all
/// values or any, a list or not) is this one comparison.
#[inline(always)]
fn one_value(check: &Check, v: &Value<'_>) -> Option<bool> {
    match (&check.rhs, v) {
        (Rhs::One(lit), v) => compare_number(check.op, v, lit),
        (Rhs::Text(text), Value::Str(s)) => Some(compare_text(check.op, s, text)),
        (Rhs::StrSet(set), Value::Str(s)) => Some(set.contains(s.as_ref())),
        (Rhs::Prefixes(prefixes), Value::Str(s)) => Some(pmatch_any(s, prefixes)),
        _ => None,
    }
}

/// A check's values (at least one) against its right-hand side.
#[inline(never)]
fn compare_values<'e, S: FieldSource>(
    check: &Check,
    values: &[Value<'e>],
    source: &S,
    event: &S::Event<'e>,
    rhs: &mut Vec<Value<'e>>,
) -> bool {
    let is_list = check.field.is_list;
    match (&check.rhs, check.op) {
        (Rhs::None, _) => true,
        // `in val(f)`: the other field's values make the set, as a
        // literal list would (a list on the left must lie wholly in it).
        (Rhs::Field(other), op @ (Op::In | Op::Intersects | Op::PMatch)) => {
            extract(other, source, event, rhs);
            let set: Vec<Lit> = rhs.iter().map(value_to_lit).collect();
            let member = |v: &Value<'_>| {
                set.iter().any(|l| match op {
                    Op::PMatch => pmatch(&as_text(v), l),
                    _ => compare(Op::Eq, v, l, check.field.ty),
                })
            };
            if is_list && op == Op::In {
                values.iter().all(member)
            } else {
                values.iter().any(member)
            }
        }
        (Rhs::Field(other), op) => {
            extract(other, source, event, rhs);
            let Some(first) = rhs.first() else {
                return false;
            };
            if let Value::Str(other) = first {
                return values.iter().any(|v| compare_str(op, &as_text(v), other));
            }
            let lit = value_to_lit(first);
            values.iter().any(|v| compare(op, v, &lit, check.field.ty))
        }
        (Rhs::Contains(needle), _) => values.iter().any(|v| {
            let text = as_text(v);
            if needle.raw {
                needle.finder.find(&crate::text::raw_bytes(&text)).is_some()
            } else {
                find_in(needle, text.as_bytes())
            }
        }),
        // A regex sees each invalid byte sequence as U+FFFD, as libsinsp's.
        (Rhs::Regex(re), _) => values
            .iter()
            .any(|v| re.is_match(&crate::text::sanitize(&as_text(v)))),
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
        (Rhs::Prefixes(prefixes), _) => values.iter().any(|v| pmatch_any(&as_text(v), prefixes)),
        (Rhs::Many(lits), Op::PMatch) => values
            .iter()
            .any(|v| lits.iter().any(|l| pmatch(&as_text(v), l))),
        (Rhs::Many(lits), op) => values
            .iter()
            .any(|v| lits.iter().any(|l| compare(op, v, l, check.field.ty))),
        // Several values of a field that is not a list are the two ends
        // of a socket (fd.ip, fd.port...): `!=` holds when neither is equal;
        // or ancestors, each compared alone.
        (Rhs::One(lit), Op::Ne) if !is_list && !check.field.each_value_alone => values
            .iter()
            .all(|v| compare(Op::Ne, v, lit, check.field.ty)),
        (Rhs::One(lit), op) => values.iter().any(|v| compare(op, v, lit, check.field.ty)),
        (Rhs::Text(text), Op::Ne) if !is_list && !check.field.each_value_alone => values
            .iter()
            .all(|v| compare_text(Op::Ne, &as_text(v), text)),
        (Rhs::Text(text), op) => values.iter().any(|v| compare_text(op, &as_text(v), text)),
    }
}

/// [`compare_str`] for a plain-text literal and an operator that looks
/// for it whole (see [`super::compile::Rhs::Text`]): the raw bytes of the
/// value need not be looked at.
#[inline(always)]
fn compare_text(op: Op, t: &str, s: &str) -> bool {
    match op {
        Op::Eq => t == s,
        Op::Ne => t != s,
        Op::StartsWith => t.starts_with(s),
        Op::EndsWith => t.ends_with(s),
        Op::IContains => contains_ignore_ascii_case(t.as_bytes(), s.as_bytes()),
        Op::PMatch => pmatch_bytes(t.as_bytes(), s.as_bytes()),
        _ => compare_str(op, t, s),
    }
}

/// Whether the needle occurs in `hay`. Most values rules search are paths
/// and flags of a few dozen bytes, where a plain scan beats the searcher's
/// set-up; longer ones (command lines, buffers) take the searcher. The
/// scan looks at the needle's first and last bytes before the rest: in
/// `O_WRONLY|O_CREAT|O_TRUNC` every name starts as `O_TRUNC` does.
fn find_in(needle: &Needle, hay: &[u8]) -> bool {
    const SHORT: usize = 64;
    let n = needle.text.as_bytes();
    let (Some(&first), Some(&last)) = (n.first(), n.last()) else {
        return true;
    };
    if hay.len() > SHORT {
        return needle.finder.find(hay).is_some();
    }
    let Some(starts) = hay.len().checked_sub(n.len()) else {
        return false;
    };
    (0..=starts)
        .any(|i| hay[i] == first && hay[i + n.len() - 1] == last && &hay[i..i + n.len()] == n)
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
        Value::Double(d) => Lit::Double(*d),
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
    if crate::text::has_raw(prefix) {
        return pmatch_bytes(
            &crate::text::raw_bytes(path),
            &crate::text::raw_bytes(prefix),
        );
    }
    pmatch_bytes(path.as_bytes(), prefix.as_bytes())
}

fn pmatch_bytes(path: &[u8], prefix: &[u8]) -> bool {
    under(path, without_trailing_slashes(prefix))
}

/// Whether `path` lies under one of the prefixes (see [`Prefixes`]).
fn pmatch_any(path: &str, prefixes: &Prefixes) -> bool {
    if prefixes.text.iter().any(|p| under(path.as_bytes(), p)) {
        return true;
    }
    if prefixes.raw.is_empty() {
        return false;
    }
    let raw = crate::text::raw_bytes(path);
    prefixes.raw.iter().any(|p| under(&raw, p))
}

/// Whether `path` is `prefix` or lies under it, for a prefix without
/// trailing slashes (empty: every absolute path).
#[inline]
fn under(path: &[u8], prefix: &[u8]) -> bool {
    if prefix.is_empty() {
        return path.first() == Some(&b'/');
    }
    path.starts_with(prefix) && matches!(path.get(prefix.len()), None | Some(b'/'))
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

#[inline(always)]
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

/// [`compare`] for the pairs most checks are (`fd.num >= 0`,
/// `evt.is_open_write = true`): inlined into the one-value check, and
/// where `compare` starts. None for other pairs.
#[inline(always)]
fn compare_number(op: Op, v: &Value<'_>, lit: &Lit) -> Option<bool> {
    Some(match (v, lit) {
        (Value::Int(a), Lit::Int(b)) => ordering(op, *a, *b),
        (Value::Uint(a), Lit::Uint(b)) => ordering(op, *a, *b),
        (Value::Bool(a), Lit::Bool(b)) => ordering(op, *a, *b),
        _ => return None,
    })
}

fn compare(op: Op, v: &Value<'_>, lit: &Lit, _ty: FieldType) -> bool {
    if let Some(held) = compare_number(op, v, lit) {
        return held;
    }
    match (v, lit) {
        (Value::Int(a), Lit::Uint(b)) => ordering(op, i128::from(*a), i128::from(*b)),
        (Value::Uint(a), Lit::Int(b)) => ordering(op, i128::from(*a), i128::from(*b)),
        (Value::Double(a), Lit::Double(b)) => ordering(op, *a, *b),
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
    // Bytes that were not UTF-8 are held as private characters
    // (crate::text). Comparing those strings is comparing the bytes for
    // `=`, `in` and, when the literal is plain text, for every operator
    // that looks for it whole (a plain-text literal cannot begin or end
    // inside an invalid sequence). Globs and orderings step byte by byte,
    // so they, and literals that hold raw bytes, compare the bytes.
    let bytewise = matches!(op, Op::Glob | Op::IGlob | Op::Lt | Op::Le | Op::Gt | Op::Ge);
    if crate::text::has_raw(s) || (bytewise && crate::text::has_raw(t)) {
        return compare_raw(op, &crate::text::raw_bytes(t), &crate::text::raw_bytes(s));
    }
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

/// [`compare_str`] on the raw bytes of value `t` and literal `s`.
fn compare_raw(op: Op, t: &[u8], s: &[u8]) -> bool {
    match op {
        Op::Contains => contains_bytes(t, s),
        Op::IContains => contains_ignore_ascii_case(t, s),
        Op::StartsWith => t.starts_with(s),
        Op::EndsWith => t.ends_with(s),
        Op::Glob => glob_bytes(s, t, false),
        Op::IGlob => glob_bytes(s, t, true),
        Op::PMatch => pmatch_bytes(t, s),
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
/// allocating; `?` takes one byte, as libsinsp's, so `h?llo` does not
/// match `héllo` (é is two bytes) and `h??llo` does.
pub fn glob_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    if crate::text::has_raw(pattern) || crate::text::has_raw(text) {
        return glob_bytes(
            &crate::text::raw_bytes(pattern),
            &crate::text::raw_bytes(text),
            ignore_case,
        );
    }
    glob_bytes(pattern.as_bytes(), text.as_bytes(), ignore_case)
}

fn glob_bytes(p: &[u8], t: &[u8], ignore_case: bool) -> bool {
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
                    ti += 1;
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
                let next = st + 1;
                pi = sp + 1;
                ti = next;
                star = Some((sp, next));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
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

    /// Prefixes made ready once answer as each literal did when compared
    /// alone: trailing slashes, `/`, whole components, raw bytes.
    #[test]
    fn prefixes_made_once_match_as_each_literal_alone() {
        let raw = crate::text::decode(b"/opt/\xff").into_owned();
        let raw_under = format!("{raw}/x");
        let paths = [
            "",
            "/",
            "//",
            "/usr",
            "/usr/",
            "/usrx",
            "/usr/bin/x",
            "usr/bin",
            "/etc",
            raw.as_str(),
            raw_under.as_str(),
            "/opt",
            "/opt/\u{ff}",
        ];
        let lists: [&[&str]; 7] = [
            &["/"],
            &["//", "/usr"],
            &["/usr/"],
            &["/usr/bin", "/etc/", "/var"],
            &[""],
            &[raw.as_str(), "/etc"],
            &["usr", "/usr//"],
        ];
        for list in lists {
            let lits: Vec<Lit> = list.iter().map(|l| Lit::Str(l.to_string())).collect();
            let Some(prefixes) = Prefixes::of(&lits) else {
                panic!("string literals: {list:?}");
            };
            for path in paths {
                let alone = list.iter().any(|l| pmatch_str(path, l));
                assert_eq!(
                    pmatch_any(path, &prefixes),
                    alone,
                    "{path:?} pmatch {list:?}"
                );
            }
        }
    }
    use crate::condition::parse_condition;
    use crate::field::{FieldError, FieldInfo, ResolvedField};
    use crate::rules::compile::{bind_in, BoundMacros};
    use std::cell::Cell;

    /// A source of one field, `n.v`, whose value is the event (a number),
    /// counting how often it is extracted.
    #[derive(Default)]
    struct Counting {
        extractions: Cell<usize>,
    }

    impl FieldSource for Counting {
        type Event<'e> = u64;

        fn name(&self) -> &'static str {
            "counting"
        }

        fn resolve(&mut self, name: &str, _arg: Option<&str>) -> Result<ResolvedField, FieldError> {
            match name {
                "n.v" => Ok(ResolvedField {
                    id: 1,
                    arg: None,
                    ty: FieldType::Uint,
                    is_list: false,
                }),
                _ => Err(FieldError::Unknown(name.into())),
            }
        }

        fn extract<'e>(&self, _field: &ResolvedField, event: &u64, out: &mut Vec<Value<'e>>) {
            self.extractions.set(self.extractions.get() + 1);
            out.push(Value::Uint(*event));
        }

        fn fields(&self) -> &[FieldInfo] {
            &[]
        }
    }

    #[test]
    fn a_field_is_extracted_once_per_event_and_never_served_to_the_next() {
        let mut source = Counting::default();
        let mut bound = BoundMacros::new();
        let rules: Vec<Node> = ["n.v > 5", "n.v < 3 or n.v = 4", "n.v in (1, 2)"]
            .iter()
            .map(|text| {
                let expr = parse_condition(text).expect("parses");
                bind_in(&mut source, &expr, &mut bound).expect("binds")
            })
            .collect();
        let mut scratch: Scratch<'static> = Scratch::default();
        for (event, expected) in [(4, [false, true, false]), (9, [true, false, false])] {
            let before = source.extractions.get();
            let mut current: Scratch<'_> = scratch;
            let held: Vec<bool> = rules
                .iter()
                .map(|r| eval(r, &source, &event, &mut current))
                .collect();
            assert_eq!(held, expected, "event {event}");
            assert_eq!(source.extractions.get() - before, 1, "event {event}");
            scratch = current.recycle();
        }
    }

    /// Values of every kind a text comparison meets: plain, empty, with
    /// bytes that were not UTF-8 (crate::text), longer than the scan for
    /// short values.
    fn sample_values() -> Vec<String> {
        let mut values: Vec<String> = [
            "",
            "/",
            "/etc",
            "/etc/",
            "/etc/shadow",
            "/ETC/Shadow",
            "/root/.ssh/id_rsa",
            "/home/u/.ssh/known_hosts",
            "id_rsa",
            "/bench-file",
            "/e",
            "etc",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        values.push(crate::text::decode(b"/etc/\xff\xfeshadow").into_owned());
        values.push(crate::text::decode(b"/etc/\xffid_rsa").into_owned());
        values.push("/very/long/path/".repeat(8) + "id_rsa");
        values
    }

    #[test]
    fn plain_text_literals_compare_as_the_general_path_does() {
        let literals = [
            "",
            "/",
            "/etc",
            "/etc/",
            "etc",
            "shadow",
            "ID_RSA",
            "id_rsa",
            "/root/.ssh",
        ];
        let ops = [
            Op::Eq,
            Op::Ne,
            Op::StartsWith,
            Op::EndsWith,
            Op::IContains,
            Op::PMatch,
        ];
        for value in sample_values() {
            for lit in literals {
                for op in ops {
                    assert_eq!(
                        compare_text(op, &value, lit),
                        compare_str(op, &value, lit),
                        "{value:?} {op:?} {lit:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_short_scan_finds_what_the_searcher_finds() {
        let needles = [
            "",
            "/",
            "id_rsa",
            "/.ssh/",
            "shadow",
            "etc/",
            "x",
            "/very/long/path/",
            "O_TRUNC",
            "O_TRUNC|",
            "aab",
            "bab",
        ];
        // Flags, where every name starts as the needle does, and needles
        // that overlap their own start.
        let flags = [
            "577(O_WRONLY|O_CREAT|O_TRUNC)",
            "O_TRUNCO_TRUN",
            "aaab",
            "abab",
        ];
        for value in sample_values().into_iter().chain(flags.map(String::from)) {
            for text in needles {
                let needle = Needle::new(text.to_string());
                assert_eq!(
                    find_in(&needle, value.as_bytes()),
                    needle.finder.find(value.as_bytes()).is_some(),
                    "{value:?} contains {text:?}"
                );
            }
        }
    }

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
