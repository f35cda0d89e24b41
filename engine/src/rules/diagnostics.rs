//! Load results in Falco's shape: per file, errors and warnings with a code,
//! a message and where they come from.

use std::fmt;
use std::sync::Arc;

pub use super::marks::Mark;

/// Falco's error and warning codes, spelled as Falco spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    ErrFileRead,
    ErrYamlParse,
    ErrYamlValidate,
    ErrCompileCondition,
    ErrCompileOutput,
    ErrValidate,
    ErrExtension,
    UnknownSource,
    UnsafeNaCheck,
    NoEvttype,
    UnknownFilter,
    UnusedMacro,
    UnusedList,
    UnknownItem,
    DeprecatedItem,
    /// LOAD_DEPRECATED_ITEM about one field (`evt.dir`, the latencies),
    /// which Falco names in the title and in `-V`'s JSON.
    DeprecatedField(&'static str),
    AppendNoValues,
    ExceptionNameNotUnique,
    InvalidMacroName,
    InvalidListName,
    CompileCondition,
    UnknownKey,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ErrFileRead => "LOAD_ERR_FILE_READ",
            Code::ErrYamlParse => "LOAD_ERR_YAML_PARSE",
            Code::ErrYamlValidate => "LOAD_ERR_YAML_VALIDATE",
            Code::ErrCompileCondition => "LOAD_ERR_COMPILE_CONDITION",
            Code::ErrCompileOutput => "LOAD_ERR_COMPILE_OUTPUT",
            Code::ErrValidate => "LOAD_ERR_VALIDATE",
            Code::ErrExtension => "LOAD_ERR_EXTENSION",
            Code::UnknownSource => "LOAD_UNKNOWN_SOURCE",
            Code::UnsafeNaCheck => "LOAD_UNSAFE_NA_CHECK",
            Code::NoEvttype => "LOAD_NO_EVTTYPE",
            Code::UnknownFilter => "LOAD_UNKNOWN_FILTER",
            Code::UnusedMacro => "LOAD_UNUSED_MACRO",
            Code::UnusedList => "LOAD_UNUSED_LIST",
            Code::UnknownItem => "LOAD_UNKNOWN_ITEM",
            Code::DeprecatedItem | Code::DeprecatedField(_) => "LOAD_DEPRECATED_ITEM",
            Code::AppendNoValues => "LOAD_APPEND_NO_VALUES",
            Code::ExceptionNameNotUnique => "LOAD_EXCEPTION_NAME_NOT_UNIQUE",
            Code::InvalidMacroName => "LOAD_INVALID_MACRO_NAME",
            Code::InvalidListName => "LOAD_INVALID_LIST_NAME",
            Code::CompileCondition => "LOAD_COMPILE_CONDITION",
            Code::UnknownKey => "LOAD_UNKNOWN_KEY",
        }
    }

    /// The short title Falco prints after the code: `CODE (title): message`.
    pub fn title(self) -> &'static str {
        match self {
            Code::ErrFileRead => "File read error",
            Code::ErrYamlParse => "YAML parse error",
            Code::ErrYamlValidate => "Error validating internal structure of YAML file",
            Code::ErrCompileCondition => "Error compiling condition",
            Code::ErrCompileOutput => "Error compiling output",
            Code::ErrValidate => "Error validating rule/macro/list/exception objects",
            Code::ErrExtension => "Error in extension item",
            Code::UnknownSource => "Unknown event source",
            Code::UnsafeNaCheck => "Unsafe <NA> comparison in condition",
            Code::NoEvttype => "Condition has no event-type restriction",
            Code::UnknownFilter => "Unknown field or event-type in condition or output",
            Code::UnusedMacro => "Unused macro",
            Code::UnusedList => "Unused list",
            Code::UnknownItem => "Unknown rules file item",
            Code::DeprecatedItem | Code::DeprecatedField(_) => "Used deprecated item",
            Code::AppendNoValues => "Overriding/appending with no values",
            Code::ExceptionNameNotUnique => "Multiple exceptions defined with the same name",
            Code::InvalidMacroName => "Invalid macro name",
            Code::InvalidListName => "Invalid list name",
            Code::CompileCondition => "Warning in rule condition",
            Code::UnknownKey => "Unknown key in item definition",
        }
    }

    /// The title with what it is about, as Falco's text report gives it:
    /// `Used deprecated item: field 'evt.dir'`.
    pub fn headline(self) -> String {
        match self {
            Code::DeprecatedField(field) => format!("{}: field '{field}'", self.title()),
            other => other.title().to_string(),
        }
    }

    /// The field a deprecation warning is about.
    pub fn deprecated_field(self) -> Option<&'static str> {
        match self {
            Code::DeprecatedField(field) => Some(field),
            _ => None,
        }
    }

    /// `codedesc` in `-V`'s JSON. Falco gives an error its title there and
    /// a warning the longer account of what it means.
    pub fn description(self) -> &'static str {
        match self {
            Code::UnknownSource => {
                "A rule has a unknown event source. This can occur when reading rules content \
                 without having a corresponding plugin loaded, etc. The rule will be silently \
                 ignored."
            }
            Code::UnsafeNaCheck => {
                "Comparing a field value with <NA> is unsafe and can lead to unpredictable \
                 behavior of the rule condition. If you need to check for the existence of a \
                 field, consider using the 'exists' operator instead."
            }
            Code::NoEvttype => {
                "A rule condition matches too many evt.type values. This has a significant \
                 performance penalty. Make the condition more specific by adding an evt.type \
                 field or further restricting the number of evt.type values in the condition."
            }
            Code::UnknownFilter => {
                "A rule condition or output refers to a field or evt.type that does not exist. \
                 This is normally an error, but if a rule has a skip-if-unknown-filter property, \
                 the error is downgraded to a warning."
            }
            Code::UnusedMacro => {
                "A macro is defined in the rules content but is not used by any other macro or rule."
            }
            Code::UnusedList => {
                "A list is defined in the rules content but is not used by any other list, macro, \
                 or rule."
            }
            Code::UnknownItem => {
                "An unknown top-level object is in the rules content. It will be ignored."
            }
            Code::DeprecatedItem | Code::DeprecatedField(_) => {
                "A deprecated item is employed by lists, macros, or rules."
            }
            Code::AppendNoValues => "A rule exception is overriding/appending with no values",
            Code::ExceptionNameNotUnique => {
                "A rule is defining multiple exceptions with the same name"
            }
            Code::InvalidMacroName => "A macro is defined with an invalid name",
            Code::InvalidListName => "A list is defined with an invalid name",
            Code::CompileCondition => "A rule condition or output have been parsed with a warning",
            Code::UnknownKey => {
                "An item in the rules content contains an unrecognized key. The key will be \
                 ignored. This may indicate a typo or a property placed on the wrong item type."
            }
            error => error.title(),
        }
    }

    pub fn is_error(self) -> bool {
        self.as_str().starts_with("LOAD_ERR_")
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One error or warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    /// `rule`, `macro`, `list`, `rules content`, `required_engine_version`...
    pub item_type: String,
    pub item_name: String,
    /// The items enclosing this one, outermost first, below the file
    /// itself: an exception's error names its rule here, as Falco's
    /// context chain does (`rule 'r'`, then `exception 'ex1'`).
    pub context: Vec<(String, String)>,
    pub file: String,
    /// 1-based line in `file` where the item starts, when known.
    pub line: Option<usize>,
    /// For condition syntax errors: line and column inside the condition.
    pub condition_pos: Option<(usize, usize)>,
    /// Falco's context chain, from the rules content down, with the marks
    /// Falco gives each step; empty where not located yet.
    pub locations: Vec<Location>,
}

/// One step of Falco's context chain: what the item is and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub item_type: String,
    pub item_name: String,
    /// The file, or for a condition expression the start of its text.
    pub name: String,
    pub mark: Mark,
    /// The condition a "condition expression" step points into (Falco's
    /// snippet is cut from it).
    pub condition: Option<String>,
}

impl Location {
    pub fn new(item_type: &str, item_name: &str, name: &str, mark: Mark) -> Location {
        Location {
            item_type: item_type.to_string(),
            item_name: item_name.to_string(),
            name: name.to_string(),
            mark,
            condition: None,
        }
    }

    /// The rules content: the file as a whole, at its start.
    pub fn content(file: &str) -> Location {
        Location::new("rules content", "", file, Mark::default())
    }

    /// A point of `condition`, whose text starts at `base` in the file: as
    /// Falco adds the parser's 1-based line and column to the 0-based mark
    /// of what encloses the condition, and names the step after the first
    /// characters of the condition.
    pub fn condition_expression(
        condition: &str,
        base: Mark,
        line: usize,
        column: usize,
    ) -> Location {
        let shown: String = if condition.chars().count() > 20 {
            format!("\"{}...\"", condition.chars().take(17).collect::<String>())
        } else {
            format!("\"{condition}\"")
        };
        let name = shown.replace(['\n', '\r'], " ");
        let idx = if line == 0 {
            0
        } else {
            super::marks::index_of(condition, line, column)
        };
        Location {
            item_type: "condition expression".into(),
            item_name: String::new(),
            name,
            mark: Mark {
                line: base.line + line,
                column: base.column + column,
                offset: base.offset + idx,
            },
            condition: Some(condition.to_string()),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.code)?;
        for (item_type, item_name) in &self.context {
            write!(f, " {item_type}")?;
            if !item_name.is_empty() {
                write!(f, " '{item_name}'")?;
            }
        }
        write!(f, " {}", self.item_type)?;
        if !self.item_name.is_empty() {
            write!(f, " '{}'", self.item_name)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some((line, column)) = self.condition_pos {
            write!(f, " (condition line {line}, column {column})")?;
        }
        Ok(())
    }
}

/// What loading one file gave, like an entry of Falco's
/// `falco_load_results`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadResult {
    pub name: String,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// The text that was loaded, kept for the snippets of its diagnostics:
    /// the file is never read a second time (it may have changed, or be a
    /// FIFO or a device that never ends). None when it could not be read.
    pub content: Option<Arc<str>>,
    /// The rule-schema check of each document (see `schema_check`): `ok`
    /// or its complaints; empty when the file held no document.
    pub schema_status: Vec<String>,
}

impl LoadResult {
    /// Whether the schema check passed, as Falco judges it (by the first
    /// document's status); None when nothing was checked.
    pub fn schema_valid(&self) -> Option<bool> {
        self.schema_status
            .first()
            .map(|s| s == super::schema_check::OK)
    }

    pub fn successful(&self) -> bool {
        self.errors.is_empty()
    }

    pub(crate) fn push(&mut self, d: Diagnostic) {
        if d.code.is_error() {
            self.errors.push(d);
        } else {
            self.warnings.push(d);
        }
    }
}

/// Moves the marks of `result`'s diagnostics from the decoded text (where
/// a byte that is not UTF-8 takes four) to the file's bytes, as yaml-cpp
/// and libsinsp count them. A condition expression's mark is the mark of
/// the step before it (where the condition starts) plus the parser's
/// position in the condition: both parts are moved.
pub(crate) fn marks_in_raw_bytes(result: &mut LoadResult, content: &str) {
    let raw_len = |text: &str| crate::text::raw_bytes(text).len();
    // The raw mark of decoded `offset` in `text`, its line unchanged.
    let in_raw = |text: &str, mark: Mark| -> Mark {
        let Some(before) = text.get(..mark.offset) else {
            return mark;
        };
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Mark {
            line: mark.line,
            column: raw_len(&before[line_start..]),
            offset: raw_len(before),
        }
    };
    for d in result.errors.iter_mut().chain(result.warnings.iter_mut()) {
        let decoded: Vec<Mark> = d.locations.iter().map(|l| l.mark).collect();
        for (i, location) in d.locations.iter_mut().enumerate() {
            match &location.condition {
                Some(condition) => {
                    let Some(&base) = i.checked_sub(1).and_then(|p| decoded.get(p)) else {
                        continue;
                    };
                    let raw_base = in_raw(content, base);
                    let mark = location.mark;
                    let inner_offset = mark.offset.saturating_sub(base.offset);
                    let Some(inner) = condition.get(..inner_offset) else {
                        continue;
                    };
                    let inner_column = mark.column.saturating_sub(base.column);
                    let line_start = inner.rfind('\n').map_or(0, |i| i + 1);
                    let column_shift = inner[line_start..].len() - raw_len(&inner[line_start..]);
                    location.mark = Mark {
                        line: mark.line,
                        column: raw_base.column + inner_column.saturating_sub(column_shift),
                        offset: raw_base.offset + raw_len(inner),
                    };
                }
                None if location.name == result.name => {
                    location.mark = in_raw(content, location.mark)
                }
                None => {}
            }
        }
    }
}
