//! The rule items after loading: lists, macros and rules with appends and
//! overrides applied, in definition order.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Falco's priorities, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Informational,
    Debug,
}

impl Priority {
    /// The spelling Falco prints in outputs (`Warning`, `Informational`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Whole names only, whatever their case: Falco refuses a priority
        // with spaces around it (`priority: "WARNING "`, or the value of a
        // quoted scalar the file's end leaves open, `'WARNING` then a line
        // break, which yaml-cpp reads as `WARNING `).
        Ok(match s.to_ascii_lowercase().as_str() {
            "emergency" => Priority::Emergency,
            "alert" => Priority::Alert,
            "critical" => Priority::Critical,
            "error" => Priority::Error,
            "warning" => Priority::Warning,
            "notice" => Priority::Notice,
            "informational" | "info" => Priority::Informational,
            "debug" => Priority::Debug,
            _ => return Err(format!("Invalid priority '{s}'")),
        })
    }
}

/// Where an item was defined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: Option<usize>,
    /// Where the item and its values start, as Falco's load results
    /// locate them (unknown: all zero).
    pub marks: super::marks::ItemMarks,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListItem {
    pub name: String,
    pub items: Vec<String>,
    pub origin: Origin,
    /// Falco's visibility: an item naming a list defined before this list
    /// was last defined or appended to (index below this) takes that
    /// list's items.
    pub visibility: usize,
    /// Its place among every item loaded (kept by a redefinition).
    pub index: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MacroItem {
    pub name: String,
    pub condition: String,
    pub origin: Origin,
    /// Falco's visibility: a macro's condition sees the macros defined
    /// before it was last defined or appended to (index below this).
    pub visibility: usize,
    /// Its place among every item loaded (kept by a redefinition).
    pub index: usize,
}

/// One of an exception's `fields`, `comps` or `values` as written: a
/// scalar, or a sequence (nested for list values inside a tuple).
#[derive(Debug, Clone, PartialEq)]
pub enum ExceptionEntry {
    Scalar(String),
    List(Vec<ExceptionEntry>),
}

impl ExceptionEntry {
    /// Falco treats an empty sequence like a missing key.
    pub fn is_valid(&self) -> bool {
        match self {
            ExceptionEntry::Scalar(s) => !s.is_empty(),
            ExceptionEntry::List(items) => !items.is_empty(),
        }
    }

    pub fn as_scalar(&self) -> Option<&str> {
        match self {
            ExceptionEntry::Scalar(s) => Some(s),
            ExceptionEntry::List(_) => None,
        }
    }

    pub fn items(&self) -> &[ExceptionEntry] {
        match self {
            ExceptionEntry::Scalar(_) => &[],
            ExceptionEntry::List(items) => items,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Exception {
    pub name: String,
    /// A list of field names (tuple form), or one name (single-field form,
    /// whose values are the right-hand side of one `in`-like comparison).
    /// Absent only on an append that adds values to an existing exception.
    pub fields: Option<ExceptionEntry>,
    /// One operator per field; `=` each (tuple form) or `in` when absent.
    pub comps: Option<ExceptionEntry>,
    pub values: Vec<ExceptionEntry>,
}

impl Exception {
    /// The comparison operators, with Falco's defaults filled in.
    pub fn effective_comps(&self) -> ExceptionEntry {
        match (&self.comps, &self.fields) {
            (Some(c), _) if c.is_valid() => c.clone(),
            (_, Some(ExceptionEntry::List(fields))) => ExceptionEntry::List(
                fields
                    .iter()
                    .map(|_| ExceptionEntry::Scalar("=".into()))
                    .collect(),
            ),
            _ => ExceptionEntry::Scalar("in".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleItem {
    pub name: String,
    pub desc: String,
    pub condition: String,
    pub output: String,
    pub priority: Priority,
    pub source: String,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub exceptions: Vec<Exception>,
    pub warn_evttypes: bool,
    pub skip_if_unknown_filter: bool,
    /// `capture: true`: an alert of this rule starts a capture file when
    /// the capture mode is `rules`.
    pub capture: bool,
    /// `capture_duration`, in milliseconds; 0 leaves the configured default.
    pub capture_duration_ms: u32,
    pub origin: Origin,
}

/// Items kept in definition order and found by name; a redefinition keeps
/// the first definition's place, as Falco does.
#[derive(Debug, Clone)]
pub struct Indexed<T> {
    items: Vec<T>,
    by_name: HashMap<String, usize>,
}

impl<T> Default for Indexed<T> {
    fn default() -> Self {
        Indexed {
            items: Vec::new(),
            by_name: HashMap::new(),
        }
    }
}

impl<T> Indexed<T> {
    pub fn get(&self, name: &str) -> Option<&T> {
        self.by_name.get(name).map(|&i| &self.items[i])
    }
    /// Where `name` stands in definition order.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }
    pub fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        self.by_name.get(name).map(|&i| &mut self.items[i])
    }
    pub fn insert(&mut self, name: &str, item: T) {
        match self.by_name.get(name) {
            Some(&i) => self.items[i] = item,
            None => {
                self.by_name.insert(name.to_string(), self.items.len());
                self.items.push(item);
            }
        }
    }
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// A plugin and version a rules file requires (`required_plugin_versions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginVersion {
    pub name: String,
    /// As written.
    pub version: String,
}

/// Everything loaded so far, from all files.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    /// Items read so far, counted as Falco's collector counts them: every
    /// definition, append and override takes the next number.
    pub counter: usize,
    /// The highest `required_engine_version` of the files (0.0.0 if none).
    pub required_engine_version: (u64, u64, u64),
    /// Each entry of the files' `required_plugin_versions`, in order: the
    /// plugin named, then its alternatives.
    pub required_plugin_versions: Vec<Vec<PluginVersion>>,
    pub lists: Indexed<ListItem>,
    pub macros: Indexed<MacroItem>,
    pub rules: Indexed<RuleItem>,
}
