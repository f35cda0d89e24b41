//! Binds an expanded condition to a [`FieldSource`]: fields resolved once,
//! literals parsed for the field's type, regexes compiled, `in` lists
//! turned into hash sets.

use crate::fast_hash::FastSet;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use regex::Regex;

use crate::condition::{
    Comparison, Composite, Expr, FieldRef, Literal, Modifier, Op, Operand, Pos, Transformer,
    Written,
};
use crate::field::{FieldError, FieldSource, FieldType, ResolvedField};

/// A compiled condition node.
#[derive(Debug, Clone)]
pub enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// Shared, so that a condition specialised for each of a rule's event
    /// types (see [`super::specialize`]) does not copy its lists and regexes.
    Check(Arc<Check>),
    /// `op oneof (...)`: exactly one of the checks holds.
    ExactlyOne(Vec<Node>),
    /// A macro's condition, bound once and used by every rule naming it.
    /// `slot` numbers the macro within its compile: an event's rules
    /// share its result (see [`super::eval::Scratch`]).
    Shared {
        node: Arc<Node>,
        slot: u32,
    },
    /// `evt.type = name`, `evt.type in (...)` (or `!=`, negated): whether
    /// the event's index key is in a sorted set (see
    /// [`FieldSource::event_type`]), decided without extracting the type
    /// name; the general check answers for events the source gives no key.
    TypeIn {
        keys: Box<[u16]>,
        negate: bool,
        check: Arc<Check>,
    },
    /// A result known without the event: what a condition specialised for
    /// one event type makes of its `evt.type` tests.
    Const(bool),
}

/// A field as read at evaluation time: the source's handle plus the
/// transformers to apply, innermost first.
#[derive(Debug, Clone)]
pub struct BoundField {
    /// The source's handle; unused when `composite` builds the values.
    pub resolved: ResolvedField,
    pub transformers: Vec<Transformer>,
    /// The type after transformers.
    pub ty: FieldType,
    /// Whether the values after transformers are a list (`len` of a list
    /// is one number).
    pub is_list: bool,
    /// `len` applied to a list, at this index of `transformers`: counts
    /// the values rather than measuring each.
    pub counts_at: Option<usize>,
    /// Values built from literals, lists and multi-value transformers;
    /// None for a field of the source.
    pub composite: Option<Box<BoundComposite>>,
    /// See [`FieldSource::each_value_alone`].
    pub each_value_alone: bool,
    /// The slot the event's values of this field are kept in while the
    /// event's rules run (see [`super::eval::Scratch`]): one per distinct
    /// plain field of a compile, so `fd.name`, read by a dozen rules of an
    /// open, is extracted once. None for transformed and built values.
    pub memo: Option<u32>,
}

/// The compiled form of a [`Composite`].
#[derive(Debug, Clone)]
pub enum BoundComposite {
    Literal(String),
    /// Fails (no values) when any item has none, as libsinsp's lists.
    List(Vec<BoundField>),
    Join {
        separator: BoundField,
        list: BoundField,
    },
    Concat(Vec<BoundField>),
    Getopt {
        args: BoundField,
        optstring: OptString,
        /// `getopt(...)[c]`: only the last value of option `c`.
        selector: Option<u8>,
    },
}

/// getopt's option string: decoded once when written as a literal.
#[derive(Debug, Clone)]
pub enum OptString {
    Fixed(Box<OptSpec>),
    Field(BoundField),
}

/// Which option characters are valid and which take a value, as
/// getopt(3) reads an option string (a leading `:` and a second `:` of
/// an optional value change nothing here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptSpec {
    pub valid: [bool; 256],
    pub takes_value: [bool; 256],
}

impl OptSpec {
    pub fn parse(optstring: &str) -> OptSpec {
        let mut spec = OptSpec {
            valid: [false; 256],
            takes_value: [false; 256],
        };
        let bytes = optstring.as_bytes();
        let mut i = usize::from(bytes.first() == Some(&b':'));
        while i < bytes.len() {
            let opt = bytes[i];
            if opt != b':' {
                spec.valid[usize::from(opt)] = true;
                if bytes.get(i + 1) == Some(&b':') {
                    spec.takes_value[usize::from(opt)] = true;
                    i += 1;
                }
            }
            i += 1;
        }
        spec
    }
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
    Double(f64),
}

/// A `contains` string literal, with its searcher built once.
#[derive(Debug, Clone)]
pub struct Needle {
    pub text: String,
    /// Holds bytes that are not UTF-8 (see crate::text): searched for in
    /// the value's bytes, not its text.
    pub raw: bool,
    pub finder: memchr::memmem::Finder<'static>,
}

impl Needle {
    pub(crate) fn new(text: String) -> Needle {
        // A needle with raw bytes is searched for in the value's bytes.
        let bytes = crate::text::raw_bytes(&text);
        let finder = memchr::memmem::Finder::new(&bytes).into_owned();
        Needle {
            raw: crate::text::has_raw(&text),
            text,
            finder,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Rhs {
    None,
    One(Lit),
    /// A string literal of plain text (no raw bytes, see crate::text)
    /// with an operator that looks for it whole (`=`, `!=`, `startswith`,
    /// `endswith`, `icontains`, `pmatch`): compared with each value's
    /// text as it is, the most common check of Falco's rules.
    Text(String),
    /// `contains` one string literal.
    Contains(Box<Needle>),
    Many(Vec<Lit>),
    /// `pmatch` over literal paths, made ready once (see [`Prefixes`]).
    Prefixes(Prefixes),
    /// `in`/`intersects` over strings.
    StrSet(StrSet),
    Regex(Regex),
    Field(BoundField),
}

/// The strings of an `in` or `intersects` list, with the lengths they
/// have: a value of a length no item has (most paths against a list of
/// file names, most process names against a list of others) is answered
/// without hashing it.
#[derive(Debug, Clone)]
pub struct StrSet {
    items: FastSet<String>,
    /// Bit `n` for an item of `n` bytes, bit 63 for any of 63 or more.
    lengths: u64,
}

impl StrSet {
    fn length_bit(len: usize) -> u64 {
        1 << len.min(63)
    }

    #[inline]
    pub fn contains(&self, s: &str) -> bool {
        self.lengths & Self::length_bit(s.len()) != 0 && self.items.contains(s)
    }
}

impl FromIterator<String> for StrSet {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> StrSet {
        let items: FastSet<String> = iter.into_iter().collect();
        let lengths = items
            .iter()
            .fold(0, |bits, item| bits | Self::length_bit(item.len()));
        StrSet { items, lengths }
    }
}

/// The literal paths of a `pmatch`, each without its trailing slashes
/// (`/usr/bin/` and `/usr/bin` are the same prefix; `/` is every absolute
/// path). Most are plain text, compared with a value's text; one holding
/// raw bytes (see crate::text) is compared with the value's raw bytes, as
/// any literal holding them is. Done once when the rules are compiled:
/// `pmatch (binary_directories)` runs on every open for writing.
#[derive(Debug, Clone)]
pub struct Prefixes {
    pub text: Vec<Box<[u8]>>,
    pub raw: Vec<Box<[u8]>>,
}

impl Prefixes {
    /// None when a literal is not a string (pmatch only binds to strings).
    pub(super) fn of(lits: &[Lit]) -> Option<Prefixes> {
        let mut prefixes = Prefixes {
            text: Vec::new(),
            raw: Vec::new(),
        };
        for lit in lits {
            let Lit::Str(text) = lit else { return None };
            let raw = crate::text::has_raw(text);
            let bytes = if raw {
                crate::text::raw_bytes(text).into_owned()
            } else {
                text.as_bytes().to_vec()
            };
            let prefix: Box<[u8]> = without_trailing_slashes(&bytes).into();
            if raw {
                prefixes.raw.push(prefix);
            } else {
                prefixes.text.push(prefix);
            }
        }
        Some(prefixes)
    }
}

/// A pmatch prefix as it compares: `/usr/bin/` is `/usr/bin`, and `/` is
/// empty (every absolute path).
pub(super) fn without_trailing_slashes(prefix: &[u8]) -> &[u8] {
    let kept = prefix.len() - prefix.iter().rev().take_while(|&&b| b == b'/').count();
    &prefix[..kept]
}

#[derive(Debug, Clone)]
pub struct Check {
    pub field: BoundField,
    pub op: Op,
    pub rhs: Rhs,
}

/// Operators for which a plain-text literal compares the same with a
/// value's text as with its raw bytes (see `compare_str` in eval).
fn compares_text_whole(op: Op) -> bool {
    matches!(
        op,
        Op::Eq | Op::Ne | Op::StartsWith | Op::EndsWith | Op::IContains | Op::PMatch
    )
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
    bind_field_as(source, f, false)
}

/// Binds a field as an output prints it (see
/// [`FieldSource::resolve_output`]); fields inside transformers keep the
/// meaning they have in conditions.
pub(crate) fn bind_output_field<S: FieldSource>(
    source: &mut S,
    f: &FieldRef,
) -> Result<BoundField, BindError> {
    bind_field_as(
        source,
        f,
        f.composite.is_none() && f.transformers.is_empty(),
    )
}

fn bind_field_as<S: FieldSource>(
    source: &mut S,
    f: &FieldRef,
    for_output: bool,
) -> Result<BoundField, BindError> {
    // Transformers nest as deep as conditions do.
    crate::condition::with_stack(|| bind_field_level(source, f, for_output))
}

fn bind_field_level<S: FieldSource>(
    source: &mut S,
    f: &FieldRef,
    for_output: bool,
) -> Result<BoundField, BindError> {
    let static_value = match f.composite {
        None => f
            .name
            .strip_prefix("static.")
            .and_then(|name| source.static_fields()?.value(name).map(str::to_string)),
        Some(_) => None,
    };
    // A static field takes no argument: with one, libsinsp knows no such
    // field, and names it with its argument.
    if let (Some(_), Some(arg)) = (&static_value, f.arg.as_deref()) {
        return Err(BindError::UnknownField(format!("{}[{arg}]", f.name)));
    }
    let (resolved, composite) = match f.composite.as_deref() {
        // A configured static field: its value, as a literal's.
        None if static_value.is_some() => {
            let resolved = ResolvedField {
                id: u32::MAX,
                arg: None,
                ty: FieldType::String,
                is_list: false,
            };
            let value = static_value.unwrap_or_default();
            (resolved, Some(Box::new(BoundComposite::Literal(value))))
        }
        None => {
            let resolved = if for_output {
                source.resolve_output(&f.name, f.arg.as_deref())
            } else {
                source.resolve(&f.name, f.arg.as_deref())
            };
            // libsinsp's words: a field that needs an argument and has
            // none is a syntax error; one whose argument it cannot take
            // does not exist (and skip-if-unknown-filter skips it).
            let resolved = resolved.map_err(|e| match (e, f.arg.as_deref()) {
                // Named as written, argument included (libsinsp's words).
                (FieldError::Unknown(_), None) => BindError::UnknownField(f.name.clone()),
                (FieldError::Unknown(_), Some(arg)) => {
                    BindError::UnknownField(format!("{}[{arg}]", f.name))
                }
                (FieldError::BadArgument { .. }, None) => {
                    BindError::Other(format!("filter syntax error: {}", f.name))
                }
                (FieldError::BadArgument { .. }, Some(arg)) => {
                    BindError::UnknownField(format!("{}[{arg}]", f.name))
                }
            })?;
            (resolved, None)
        }
        Some(c) => {
            let (bound, ty, is_list) = bind_composite(source, c, f.arg.as_deref())?;
            let resolved = ResolvedField {
                id: u32::MAX,
                arg: None,
                ty,
                is_list,
            };
            (resolved, Some(Box::new(bound)))
        }
    };
    let mut ty = resolved.ty;
    let mut is_list = resolved.is_list;
    let mut counts_at = None;
    for (i, t) in f.transformers.iter().enumerate() {
        ty = match t {
            Transformer::Len => {
                if is_list && counts_at.is_none() {
                    counts_at = Some(i);
                }
                is_list = false;
                FieldType::Uint
            }
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
    let each_value_alone = composite.is_none() && source.each_value_alone(&resolved);
    Ok(BoundField {
        resolved,
        transformers: f.transformers.clone(),
        ty,
        is_list,
        counts_at,
        composite,
        each_value_alone,
        memo: None,
    })
}

/// Binds a literal, a list or a transformer of several arguments, with
/// libsinsp's checks (and words) on the number and kinds of arguments.
/// Returns the compiled form, its type and whether it is a list.
fn bind_composite<S: FieldSource>(
    source: &mut S,
    composite: &Composite,
    selector: Option<&str>,
) -> Result<(BoundComposite, FieldType, bool), BindError> {
    let err = |m: &str| Err(BindError::Other(m.to_string()));
    match composite {
        Composite::Literal(text) => Ok((
            BoundComposite::Literal(text.clone()),
            FieldType::String,
            false,
        )),
        Composite::List(items) => {
            let items = items
                .iter()
                .map(|i| bind_field(source, i))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((BoundComposite::List(items), FieldType::String, true))
        }
        Composite::Call { name, args } => {
            let mut args = args
                .iter()
                .map(|a| bind_field(source, a))
                .collect::<Result<Vec<_>, _>>()?;
            if args.len() == 1 {
                return Err(BindError::Other(if selector.is_some() {
                    format!("filter error: transformer '{name}' does not support field arguments")
                } else {
                    format!("unknown field transfomer '{name}'")
                }));
            }
            let no_selector = |bound| match selector {
                Some(_) => Err(BindError::Other(format!(
                    "transformer '{name}' does not support field arguments"
                ))),
                None => Ok(bound),
            };
            match name.as_str() {
                "join" => {
                    if args.len() != 2 {
                        return err("join() requires exactly 2 arguments: separator and list");
                    }
                    if args[0].is_list {
                        return err(
                            "join() first argument (separator) must be a single value, not a list",
                        );
                    }
                    if !args[1].is_list {
                        return err("join() second argument must be a list");
                    }
                    let list = args.pop().ok_or_else(|| BindError::Other("join".into()))?;
                    let separator = args.pop().ok_or_else(|| BindError::Other("join".into()))?;
                    no_selector((
                        BoundComposite::Join { separator, list },
                        FieldType::String,
                        false,
                    ))
                }
                "concat" => {
                    if args.len() < 2 {
                        return err("concat() requires at least 2 arguments");
                    }
                    if args.iter().any(|a| a.is_list || a.ty != FieldType::String) {
                        return err("concat() arguments must be strings");
                    }
                    no_selector((BoundComposite::Concat(args), FieldType::String, false))
                }
                "getopt" => {
                    if args.len() != 2 {
                        return err(
                            "getopt() requires exactly 2 arguments: args list and optstring",
                        );
                    }
                    if !args[0].is_list {
                        return err("getopt() first argument must be a list");
                    }
                    if args[1].is_list {
                        return err("getopt() second argument (optstring) must be a single value");
                    }
                    if args[0].ty != FieldType::String || args[1].ty != FieldType::String {
                        return err("getopt() arguments must be strings");
                    }
                    let selector = match selector {
                        None => None,
                        Some(s) if s.len() == 1 => Some(s.as_bytes()[0]),
                        Some(_) => {
                            return err("getopt() field argument must be a single option character")
                        }
                    };
                    let optstring = args
                        .pop()
                        .ok_or_else(|| BindError::Other("getopt".into()))?;
                    let list = args
                        .pop()
                        .ok_or_else(|| BindError::Other("getopt".into()))?;
                    let optstring = match optstring.composite.as_deref() {
                        Some(BoundComposite::Literal(text))
                            if optstring.transformers.is_empty() =>
                        {
                            OptString::Fixed(Box::new(OptSpec::parse(text)))
                        }
                        _ => OptString::Field(optstring),
                    };
                    Ok((
                        BoundComposite::Getopt {
                            args: list,
                            optstring,
                            selector,
                        },
                        FieldType::String,
                        selector.is_none(),
                    ))
                }
                // A single-value transformer given several arguments.
                _ => err("unknown multivalue transformer"),
            }
        }
    }
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

fn parse_literal(ty: FieldType, op: Op, lit: &Literal, _field: &str) -> Result<Lit, BindError> {
    let text = lit.text.as_str();
    let error = |message: String| BindError::Other(message);
    let hex_only = || {
        error("filter error: bcontains and bstartswith operator support hex strings only".into())
    };
    if matches!(op, Op::BContains | Op::BStartsWith) {
        // The operand is hex digits, whatever the field's type.
        return Ok(Lit::Bytes(decode_hex(text).ok_or_else(hex_only)?));
    }
    // A NUL can only be compared with a buffer (engine 0.63): every other
    // value is text that ends at its first NUL.
    if ty != FieldType::Bytes && text.contains('\0') {
        return Err(error(
            "filter error: filter value cannot contain a NUL byte (\\x00)".into(),
        ));
    }
    // libsinsp's words for a value its parser refuses.
    let not_number_text = |t: &str| error(format!("{t} is not a valid number"));
    let not_number = || not_number_text(text);
    Ok(match ty {
        FieldType::String => Lit::Str(text.to_string()),
        FieldType::Int => Lit::Int(text.trim().parse().map_err(|_| not_number())?),
        // As libsinsp's scanf("%lu"): a negative number wraps around.
        FieldType::Uint => Lit::Uint(
            text.trim()
                .parse::<u64>()
                .or_else(|_| text.trim().parse::<i64>().map(|v| v as u64))
                .map_err(|_| not_number())?,
        ),
        FieldType::Bool => match text.trim() {
            "true" | "1" => Lit::Bool(true),
            "false" | "0" => Lit::Bool(false),
            _ => {
                return Err(error(format!(
                    "filter error: unrecognized boolean value {text}"
                )))
            }
        },
        FieldType::Double => Lit::Double(text.trim().parse().map_err(|_| not_number())?),
        FieldType::Ip | FieldType::IpNet => {
            if let Some((_, mask)) = text.trim().split_once('/') {
                let v4 = text.contains('.');
                let bits: u32 = mask.parse().map_err(|_| not_number_text(mask))?;
                if v4 && bits > 32 {
                    return Err(error(format!("invalid netmask {mask}")));
                }
                if !v4 && bits > 128 {
                    return Err(error(format!("invalid v6 netmask {mask}")));
                }
            }
            parse_ip_or_net(text.trim()).ok_or_else(|| {
                let what = match (text.contains('/'), text.contains('.')) {
                    (true, _) => "IP address",
                    (false, true) => "IPv4 address",
                    (false, false) => "IPv6 address",
                };
                error(format!("unrecognized {what} {text}"))
            })?
        }
        // `=` and the string operators on a buffer compare its raw bytes.
        FieldType::Bytes => Lit::Bytes(crate::text::raw_bytes(text).into_owned()),
    })
}

fn op_allowed(ty: FieldType, op: Op) -> bool {
    use FieldType::*;
    match op {
        Op::Eq | Op::Ne | Op::In | Op::Intersects | Op::Exists => true,
        Op::Lt | Op::Le | Op::Gt | Op::Ge => matches!(ty, Int | Uint | Double | String),
        Op::BContains | Op::BStartsWith => matches!(ty, Bytes),
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

/// What one compile binds once for all its rules: each macro, by name,
/// with its memo slot (the order it was bound in), and the memo slot of
/// each plain field.
#[derive(Debug, Default)]
pub struct BoundMacros {
    macros: HashMap<String, (Arc<Node>, u32)>,
    fields: HashMap<ResolvedField, u32>,
}

impl BoundMacros {
    pub fn new() -> Self {
        BoundMacros::default()
    }

    /// Gives a field read as the source gives it (no transformer, not
    /// built from others) the memo slot of its resolved form.
    fn memoize(&mut self, field: &mut BoundField) {
        if field.composite.is_some() || !field.transformers.is_empty() {
            return;
        }
        // Slots only need to differ within one compile.
        let next = u32::try_from(self.fields.len()).unwrap_or(u32::MAX);
        field.memo = Some(*self.fields.entry(field.resolved.clone()).or_insert(next));
    }
}

/// Binds an expanded condition.
pub fn bind<S: FieldSource>(source: &mut S, expr: &Expr) -> Result<Node, BindError> {
    bind_in(source, expr, &mut BoundMacros::new())
}

/// Where binding `expr` fails: the start of the first comparison that
/// cannot be bound (libsinsp's compiler reports the node it was at).
pub fn failing_comparison<S: FieldSource>(source: &mut S, expr: &Expr) -> Option<Pos> {
    let mut found = None;
    expr.walk(&mut |e| {
        if found.is_some() {
            return;
        }
        match e {
            Expr::Compare(cmp) => {
                let one = Expr::Compare(cmp.clone());
                if bind_in(source, &one, &mut BoundMacros::new()).is_err() {
                    found = Some(cmp.pos);
                }
            }
            Expr::Macro { pos, .. } => found = Some(*pos),
            _ => {}
        }
    });
    found
}

/// Where the `evt.type` comparison naming an unknown event type is, as
/// Falco points at the node it fails to compile (inside a macro, the
/// node's place in the macro's own text).
pub fn failing_event_type<S: FieldSource>(source: &S, expr: &Expr) -> Option<Pos> {
    let mut found = None;
    expr.walk(&mut |e| {
        if found.is_some() {
            return;
        }
        if let Expr::Compare(cmp) = e {
            if event_types(source, &Expr::Compare(cmp.clone())).is_err() {
                found = Some(cmp.pos);
            }
        }
    });
    found
}

/// What libsinsp's event code search refuses in a condition: it indexes
/// rules by the `evt.type`/`syscall.type` values they compare with, and
/// throws on a comparison it cannot read (Falco then stops with a runtime
/// error, not a load result). None when the condition is indexable.
pub fn code_search_refusal(expr: &Expr) -> Option<&'static str> {
    const TRANSFORMERS: &str =
        "event code search does not support `evt.type` checks with transformers";
    const RIGHT_FIELD: &str = "right-hand field comparisons on `evt.type`/`syscall.type` checks \
         are not supported by event code search";
    let is_type =
        |f: &FieldRef| (f.name == "evt.type" || f.name == "syscall.type") && f.arg.is_none();
    let holds_type = |f: &FieldRef| {
        let mut held = false;
        f.visit_fields(&mut |inner| held |= is_type(inner));
        held
    };
    let mut found = None;
    expr.walk(&mut |e| {
        let Expr::Compare(cmp) = e else { return };
        if found.is_some() || cmp.modifier.is_some() {
            return;
        }
        // The search reads the left side of `exists` and of its own
        // operators only.
        let unary = matches!(cmp.rhs, Operand::None);
        if !unary && !matches!(cmp.op, Op::Eq | Op::Ne | Op::In) {
            return;
        }
        let wrapped = cmp.field.composite.is_some() || !cmp.field.transformers.is_empty();
        if wrapped {
            if holds_type(&cmp.field) {
                found = Some(TRANSFORMERS);
            }
            return;
        }
        if let (true, Operand::Field(other)) = (is_type(&cmp.field), &cmp.rhs) {
            // `val(...)` is a transformer to libsinsp.
            found = Some(if holds_type(other) {
                TRANSFORMERS
            } else {
                RIGHT_FIELD
            });
        }
    });
    found
}

/// Binds an expanded condition; a shared macro is bound the first time
/// and referenced after, so its regexes, sets and lists exist once.
pub fn bind_in<S: FieldSource>(
    source: &mut S,
    expr: &Expr,
    macros: &mut BoundMacros,
) -> Result<Node, BindError> {
    crate::condition::with_stack(|| bind_level(source, expr, macros))
}

fn bind_level<S: FieldSource>(
    source: &mut S,
    expr: &Expr,
    macros: &mut BoundMacros,
) -> Result<Node, BindError> {
    Ok(match expr {
        Expr::And(items) => Node::And(
            items
                .iter()
                .map(|e| bind_in(source, e, macros))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(items) => Node::Or(
            items
                .iter()
                .map(|e| bind_in(source, e, macros))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(inner) => Node::Not(Box::new(bind_in(source, inner, macros)?)),
        Expr::Shared(shared) => {
            if let Some((node, slot)) = macros.macros.get(&shared.name) {
                return Ok(Node::Shared {
                    node: Arc::clone(node),
                    slot: *slot,
                });
            }
            let node = Arc::new(bind_in(source, &shared.body, macros)?);
            // Slots only need to differ within one compile; u32 holds far
            // more macros than a rules file can name.
            let slot = u32::try_from(macros.macros.len()).unwrap_or(u32::MAX);
            macros
                .macros
                .insert(shared.name.clone(), (Arc::clone(&node), slot));
            Node::Shared { node, slot }
        }
        Expr::Macro { name, .. } => {
            return Err(BindError::Other(format!(
                "Undefined macro '{name}' used in filter."
            )))
        }
        Expr::Compare(cmp) if cmp.modifier.is_some() => bind_modified(source, cmp, macros)?,
        Expr::Compare(cmp) if is_evt_around(&cmp.field) => bind_around(source, cmp)?,
        Expr::Compare(cmp) => {
            let mut check = bind_check(source, cmp)?;
            macros.memoize(&mut check.field);
            let check = Arc::new(check);
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

fn is_evt_around(f: &FieldRef) -> bool {
    f.name == "evt.around" && f.composite.is_none() && f.transformers.is_empty()
}

/// `evt.around[T] = D`: the event's time is within D milliseconds of T
/// (libsinsp's filter-only field, which takes `=` alone). Compiled into
/// two comparisons of `evt.rawtime`, so it costs what they cost.
fn bind_around<S: FieldSource>(source: &mut S, cmp: &Comparison) -> Result<Node, BindError> {
    // The source says whether it has the field and checks its argument.
    bind_field(source, &cmp.field)?;
    if cmp.op != Op::Eq {
        return Err(BindError::Other(
            "evt.around supports only '=' comparison operator".into(),
        ));
    }
    let center = cmp
        .field
        .arg
        .as_deref()
        .and_then(|a| a.trim().parse::<u64>().ok())
        .ok_or_else(|| BindError::Other("wrong syntax for evt.around".into()))?;
    let Operand::Value(lit) = &cmp.rhs else {
        return Err(BindError::Other(
            "evt.around takes a number of milliseconds".into(),
        ));
    };
    let millis: u64 = lit.text.trim().parse().map_err(|_| {
        BindError::Other(format!(
            "'{}' is not a valid number for field evt.around",
            lit.text
        ))
    })?;
    let delta = millis.saturating_mul(1_000_000);
    let time = FieldRef::field("evt.rawtime", None, cmp.pos);
    let low = Comparison {
        field: time.clone(),
        op: Op::Ge,
        modifier: None,
        rhs: Operand::Value(Literal::bare(center.saturating_sub(delta).to_string())),
        pos: cmp.pos,
        rhs_pos: cmp.rhs_pos,
        written: Written::default(),
    };
    let high = Comparison {
        op: Op::Le,
        rhs: Operand::Value(Literal::bare(center.saturating_add(delta).to_string())),
        ..low.clone()
    };
    Ok(Node::And(vec![
        Node::Check(Arc::new(bind_check(source, &low)?)),
        Node::Check(Arc::new(bind_check(source, &high)?)),
    ]))
}

/// `f op anyof/allof/oneof (v1, v2...)`: the operator applied to each value,
/// at least one, all, or exactly one of them holding (libsinsp's list
/// modifiers for string operators).
fn bind_modified<S: FieldSource>(
    source: &mut S,
    cmp: &Comparison,
    macros: &mut BoundMacros,
) -> Result<Node, BindError> {
    let Operand::List(items) = &cmp.rhs else {
        return Err(BindError::Other(format!(
            "a list modifier needs a list of values ({})",
            cmp.field
        )));
    };
    let checks = items
        .iter()
        .map(|item| {
            let one = Comparison {
                modifier: None,
                rhs: Operand::Value(item.clone()),
                ..cmp.clone()
            };
            let mut check = bind_check(source, &one)?;
            macros.memoize(&mut check.field);
            Ok(Node::Check(Arc::new(check)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match cmp.modifier {
        Some(Modifier::AllOf) if !checks.is_empty() => Node::And(checks),
        Some(Modifier::OneOf) => Node::ExactlyOne(checks),
        // `anyof`, and an empty list (which no value matches).
        _ => Node::Or(checks),
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
    // A list built in the condition (a transformer list, getopt) takes
    // only the list operators, as libsinsp's list filters.
    if field.composite.is_some()
        && field.is_list
        && !matches!(cmp.op, Op::In | Op::Intersects | Op::Exists)
    {
        return Err(BindError::Other(format!(
            "filter error: '{}' operator not supported list filters",
            cmp.op.as_str()
        )));
    }
    // libsinsp's byte operators take buffers only (the raw bytes of a
    // string are matched with \xHH escapes and the text operators).
    if matches!(cmp.op, Op::BContains | Op::BStartsWith) && field.ty == FieldType::String {
        return Err(BindError::Other(format!(
            "filter error: '{}' operator not supported for string filters",
            cmp.op.as_str()
        )));
    }
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
            if lit.text.contains('\0') {
                return Err(BindError::Other(
                    "filter error: filter value cannot contain a NUL byte (\\x00)".into(),
                ));
            }
            // Values reach the regex sanitized (crate::text), so a pattern
            // of bytes that are not UTF-8 could never match: refused, as
            // RE2 refuses it in libsinsp.
            if crate::text::has_raw(&lit.text) {
                return Err(BindError::Other(
                    "invalid regex pattern: invalid UTF-8".into(),
                ));
            }
            let re = Regex::new(&format!("^(?:{})$", lit.text))
                .map_err(|e| BindError::Other(format!("invalid regex pattern: {e}")))?;
            Rhs::Regex(re)
        }
        (Operand::Value(lit), op) if op.takes_list() => {
            Rhs::Many(vec![parse_literal(field.ty, op, lit, &name)?])
        }
        (Operand::Value(lit), op) => match parse_literal(field.ty, op, lit, &name)? {
            Lit::Str(text) if op == Op::Contains => Rhs::Contains(Box::new(Needle::new(text))),
            Lit::Str(text) if compares_text_whole(op) && !crate::text::has_raw(&text) => {
                Rhs::Text(text)
            }
            other => Rhs::One(other),
        },
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
    let rhs = match rhs {
        Rhs::Many(lits) if cmp.op == Op::PMatch => match Prefixes::of(&lits) {
            Some(prefixes) => Rhs::Prefixes(prefixes),
            None => Rhs::Many(lits),
        },
        other => other,
    };
    let literals: Vec<&str> = match &cmp.rhs {
        Operand::Value(lit) => vec![lit.text.as_str()],
        Operand::List(items) => items.iter().map(|l| l.text.as_str()).collect(),
        Operand::None | Operand::Field(_) => Vec::new(),
    };
    if !literals.is_empty() {
        source.literals_compared(&field.resolved, &literals);
    }
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

fn is_plain(f: &FieldRef, name: &str) -> bool {
    f.name == name && f.arg.is_none() && f.transformers.is_empty() && f.composite.is_none()
}

/// What a comparison of `evt.num` is for every event, knowing event
/// numbers start at 1: Some(false) when it can never hold (`evt.num = 0`,
/// `evt.num < 1`, `evt.num in (0)`), Some(true) when it always does
/// (`evt.num != 0`, `evt.num >= 1`), None otherwise. libsinsp reasons the
/// same way, so such a rule is not warned about as matching every event
/// type (Falco's `never_true` macro is `evt.num=0`).
fn evt_num_invariant(cmp: &Comparison) -> Option<bool> {
    let number = |lit: &Literal| lit.text.trim().parse::<u64>().ok();
    match (&cmp.rhs, cmp.op) {
        (Operand::List(items), Op::In) => {
            items.iter().all(|l| number(l) == Some(0)).then_some(false)
        }
        (Operand::Value(lit), op) => {
            let n = number(lit)?;
            match op {
                Op::Eq | Op::Le if n == 0 => Some(false),
                Op::Lt if n <= 1 => Some(false),
                Op::Ne | Op::Gt if n == 0 => Some(true),
                Op::Ge if n <= 1 => Some(true),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Walks the condition: `evt.type` comparisons narrow the set, `and`, `or`
/// and `not` combine it, anything else leaves it open. As libsinsp does, a
/// `not` is pushed down to the comparisons (De Morgan): `not (evt.type =
/// open and fd.name = x)` can hold for an open, so its set is every type,
/// where negating the set of the `and` ({open}) would leave opens out and
/// never check the rule on them.
fn type_set<T: Ord + Clone>(
    expr: &Expr,
    lookup: &mut impl FnMut(&str) -> Result<Vec<T>, String>,
) -> Result<TypeSet<T>, String> {
    type_set_under(expr, false, lookup)
}

/// The lookup of `evt.type` names, as [`type_set`] is given it.
type Lookup<'a, T> = dyn FnMut(&str) -> Result<Vec<T>, String> + 'a;

fn type_set_under<T: Ord + Clone>(
    expr: &Expr,
    negated: bool,
    lookup: &mut Lookup<'_, T>,
) -> Result<TypeSet<T>, String> {
    let all_of = |items: &[Expr], lookup: &mut Lookup<'_, T>| {
        let mut acc = TypeSet::All;
        for e in items {
            acc = acc.and(type_set_under(e, negated, lookup)?);
        }
        Ok::<_, String>(acc)
    };
    let any_of = |items: &[Expr], lookup: &mut Lookup<'_, T>| {
        let mut acc: Option<TypeSet<T>> = None;
        for e in items {
            let t = type_set_under(e, negated, lookup)?;
            acc = Some(match acc {
                None => t,
                Some(a) => a.or(t),
            });
        }
        Ok::<_, String>(acc.unwrap_or(TypeSet::All))
    };
    // A set a comparison decides: its complement under a `not`.
    let decided = |set: TypeSet<T>| if negated { set.not() } else { set };
    Ok(match expr {
        Expr::And(items) if negated => any_of(items, lookup)?,
        Expr::And(items) => all_of(items, lookup)?,
        Expr::Or(items) if negated => all_of(items, lookup)?,
        Expr::Or(items) => any_of(items, lookup)?,
        Expr::Not(inner) => type_set_under(inner, !negated, lookup)?,
        Expr::Shared(shared) => type_set_under(&shared.body, negated, lookup)?,
        Expr::Macro { .. } => TypeSet::All,
        Expr::Compare(cmp) if cmp.modifier.is_some() => TypeSet::All,
        Expr::Compare(cmp) if is_plain(&cmp.field, "evt.num") => match evt_num_invariant(cmp) {
            // Never holds (or, under a `not`, always holds): no type.
            Some(held) if held == negated => TypeSet::Only(BTreeSet::new()),
            Some(_) | None => TypeSet::All,
        },
        Expr::Compare(cmp) => {
            // libsinsp's evt.type check takes only event names as values,
            // whatever the operator or transformers (`evt.type contains
            // ope` is an unknown event type).
            if cmp.field.name == "evt.type"
                && cmp.field.arg.is_none()
                && cmp.field.composite.is_none()
            {
                let values: Vec<&str> = match &cmp.rhs {
                    Operand::Value(l) => vec![l.text.as_str()],
                    Operand::List(items) => items.iter().map(|l| l.text.as_str()).collect(),
                    Operand::None | Operand::Field(_) => Vec::new(),
                };
                for value in values {
                    lookup(value)?;
                }
            }
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
            decided(if cmp.op == Op::Ne {
                TypeSet::Except(codes)
            } else {
                TypeSet::Only(codes)
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::StrSet;

    #[test]
    fn a_string_set_holds_what_its_items_are_whatever_their_length() {
        let long = "x".repeat(63);
        let longer = "y".repeat(200);
        let items = [
            "",
            "a",
            "sshd",
            "/etc/shadow",
            long.as_str(),
            longer.as_str(),
        ];
        let set: StrSet = items.iter().map(|s| s.to_string()).collect();
        let probes = [
            "",
            "a",
            "b",
            "sshd",
            "sshe",
            "/etc/shadow",
            "/etc/shadoW",
            "/bench-file",
            long.as_str(),
            longer.as_str(),
            &long[1..],
            &longer[1..],
        ];
        for probe in probes {
            assert_eq!(set.contains(probe), items.contains(&probe), "{probe:?}");
        }
        // Lengths above 63 share one bit: found by the items, not the bit.
        assert!(!set.contains(&"z".repeat(200)));
    }
}
