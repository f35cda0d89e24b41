//! Load results in Falco's shape: per file, errors and warnings with a code,
//! a message and where they come from.

use std::fmt;

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
    UnknownField,
    UnknownFilter,
    NoEvttype,
    UnusedMacro,
    UnusedList,
    CompileCondition,
    DeprecatedItem,
    UnknownItem,
    WarningInvalidPriority,
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
            Code::UnknownField => "LOAD_UNKNOWN_FIELD",
            Code::UnknownFilter => "LOAD_UNKNOWN_FILTER",
            Code::NoEvttype => "LOAD_NO_EVTTYPE",
            Code::UnusedMacro => "LOAD_UNUSED_MACRO",
            Code::UnusedList => "LOAD_UNUSED_LIST",
            Code::CompileCondition => "LOAD_COMPILE_CONDITION",
            Code::DeprecatedItem => "LOAD_DEPRECATED_ITEM",
            Code::UnknownItem => "LOAD_UNKNOWN_ITEM",
            Code::WarningInvalidPriority => "LOAD_INVALID_PRIORITY",
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
    pub file: String,
    /// 1-based line in `file` where the item starts, when known.
    pub line: Option<usize>,
    /// For condition syntax errors: line and column inside the condition.
    pub condition_pos: Option<(usize, usize)>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {} {}", self.code, self.item_type)?;
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
}

impl LoadResult {
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
