//! The contract between rules and the places values come from.
//!
//! A rule names fields (`proc.name`, `fd.name`, `ka.verb`, `evt.arg.flags`,
//! `proc.aname[2]`). Each event source (syscalls with their system state,
//! Kubernetes audit events) implements [`FieldSource`]: it resolves a name
//! once, when rules are compiled, and later extracts values from events
//! with no string lookup on the hot path. The rules side knows nothing of
//! scap or JSON; the sources know nothing of conditions.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

/// The type of a field's values, as the filter language sees it. It decides
/// how a literal in a condition is parsed and which operators apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// Text; compared as strings, with contains/startswith/glob/...
    String,
    /// Signed integer.
    Int,
    /// Unsigned integer (counts, ids, flags, ports, times in ns).
    Uint,
    Bool,
    /// An IPv4 or IPv6 address; literals may also be networks (`10.0.0.0/8`).
    Ip,
    /// A network in CIDR form.
    IpNet,
    /// Raw bytes (I/O buffers); compared with bcontains/bstartswith.
    Bytes,
    /// A floating-point number (ratios, CPU use); printed with one decimal
    /// as libsinsp prints its doubles.
    Double,
}

/// One value of a field. A field may yield several (a list field such as
/// `ka.req.pod.containers.image`, or `proc.aname` without an index).
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'e> {
    Str(Cow<'e, str>),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Ip(IpAddr),
    /// A network: address and prefix length.
    Net(IpAddr, u8),
    Bytes(Cow<'e, [u8]>),
    Double(f64),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(&crate::text::sanitize(s)),
            Value::Int(v) => write!(f, "{v}"),
            Value::Uint(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Ip(ip) => write!(f, "{ip}"),
            Value::Net(ip, len) => write!(f, "{ip}/{len}"),
            Value::Bytes(b) => f.write_str(&String::from_utf8_lossy(b)),
            Value::Double(v) => write!(f, "{v:.1}"),
        }
    }
}

/// What a source answers when a rule names one of its fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResolvedField {
    /// The source's own handle for the field and its argument; opaque to
    /// the rules side, handed back unchanged to [`FieldSource::extract`].
    pub id: u32,
    /// Index into the source's table of parsed arguments, if any.
    pub arg: Option<u32>,
    pub ty: FieldType,
    /// Whether the field is a list (several values per event).
    pub is_list: bool,
}

/// Why a source could not resolve a field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("unknown field '{0}'")]
    Unknown(String),
    #[error("field '{field}' {problem}")]
    BadArgument { field: String, problem: String },
}

/// A place rules read values from: one per event source (`syscall`,
/// `k8s_audit`).
pub trait FieldSource {
    /// What one evaluation reads: for syscalls an event with the state it
    /// was applied to, for audit events the parsed JSON document.
    type Event<'e>;

    /// The name rules use in `source:` (`syscall`, `k8s_audit`).
    fn name(&self) -> &'static str;

    /// Resolves `name` with the text between its brackets, if any
    /// (`proc.aname[2]` gives `("proc.aname", Some("2"))`). Called while
    /// compiling rules; `&mut self` lets the source store parsed arguments.
    fn resolve(&mut self, name: &str, arg: Option<&str>) -> Result<ResolvedField, FieldError>;

    /// Resolves a field named in an output (`%name[arg]`). Sources whose
    /// fields print other than they compare override it: libsinsp prints
    /// an ancestor field without index as its ancestors' values separated
    /// by spaces, though conditions match it against each.
    fn resolve_output(
        &mut self,
        name: &str,
        arg: Option<&str>,
    ) -> Result<ResolvedField, FieldError> {
        self.resolve(name, arg)
    }

    /// Appends the values of a resolved field for this event to `out`.
    /// Appends nothing when the field does not apply to the event (Falco's
    /// "field not available"); comparisons on it are then false.
    fn extract<'e>(&self, field: &ResolvedField, event: &Self::Event<'e>, out: &mut Vec<Value<'e>>);

    /// The event type codes that `evt.type = name` matches, or None when
    /// the name is no event type of this source. Lets the rules side index
    /// rules by event type. Sources without event types answer None.
    fn event_types_named(&self, _name: &str) -> Option<Vec<u16>> {
        None
    }

    /// The event type code of an event, for the index; None means every
    /// rule of the source is checked.
    fn event_type(&self, _event: &Self::Event<'_>) -> Option<u16> {
        None
    }

    /// The source's [`StaticFields`], when it takes them: the rules
    /// loader sets them, the binder reads them.
    fn static_fields(&mut self) -> Option<&mut StaticFields> {
        None
    }

    /// Falco's `buffer_format_base64`, for sources whose fields render
    /// byte buffers into text (libsinsp's `evt.args`).
    fn set_buffer_base64(&mut self, _on: bool) {}

    /// Whether an output renders this field's buffer twice (libsinsp's
    /// `evt.buffer`, see the syscall source).
    fn renders_buffer_twice(&self, _field: &ResolvedField) -> bool {
        false
    }

    /// Whether a field with several values that is no list compares each
    /// value alone, a match of one being a match whatever the operator
    /// (`!=` included): libsinsp's ancestor fields without a level. Other
    /// such fields (the two ends of a socket) hold `!=` only when no value
    /// is equal.
    fn each_value_alone(&self, _field: &ResolvedField) -> bool {
        false
    }

    /// Called while compiling a comparison of a field with literal values
    /// (`fd.sip.name in (a, b)`), so the source can prepare for them
    /// (Falco's DNS-backed fields resolve the names rules compare with).
    fn literals_compared(&mut self, _field: &ResolvedField, _literals: &[&str]) {}

    /// Every field this source can extract, for `peregrine --list`.
    fn fields(&self) -> &[FieldInfo];
}

/// A line of `peregrine --list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    pub name: &'static str,
    pub ty: FieldType,
    /// `None`, or how the bracketed argument reads (`"index"`, `"name"`...).
    pub arg: Option<&'static str>,
    pub description: &'static str,
}

/// Falco's `static_fields`: each `static.NAME` is a string field of every
/// source, whose value is the configured one (libsinsp's static
/// filtercheck, which Falco adds to each source's fields).
#[derive(Debug, Clone, Default)]
pub struct StaticFields(Vec<(String, String)>);

impl StaticFields {
    pub fn set(&mut self, fields: &[(String, String)]) {
        self.0 = fields.to_vec();
    }

    /// The value of `static.NAME` (`name` without its prefix), when the
    /// configuration defines it.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
