//! What Falco's `-L` and `-l RULE` tell of each rule, macro and list
//! besides its definition (the `details`): the macros and lists a
//! condition names as written; the fields, operators and event types of
//! the condition Falco compiles (macros inlined, lists pasted, exceptions
//! appended) and that condition printed as libsinsp prints it; a rule's
//! output and exceptions; a list's items with the lists inside it
//! resolved; whether a macro or list is used.
//!
//! Sets are returned ordered; Falco's are unordered, so only their
//! members are to be compared.

pub mod details;
pub mod event_codes;

use std::collections::{BTreeSet, HashSet};

use crate::condition::print::condition_text;
use crate::condition::{parse_condition_with_max_depth, Expr, ParseError};
use crate::event::codes;

use super::exceptions::rule_condition;
use super::expand::{
    expand_rule, expanded_lists, ExpandError, ExpandedLists, ExpandedMacros, ParsedMacros, Usage,
};
use super::items::{Definitions, ExceptionEntry, ListItem, MacroItem, RuleItem};
use super::paste::PasteBudget;
use super::{ExtraOutputField, OutputAsFalco};
use details::{Found, Known};
use event_codes::{search, SearchError, Universe};

/// The depth libsinsp's condition parser allows unless told otherwise.
const LIBSINSP_DEFAULT_DEPTH: u32 = 100;

/// Why an item loaded without error cannot be described: as in Falco, a
/// condition as written nesting deeper than libsinsp's default depth;
/// otherwise nothing that should happen once the rules loaded, but a
/// description never panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescribeError {
    #[error("{kind} '{name}': its condition does not parse: {source}")]
    Parse {
        kind: &'static str,
        name: String,
        source: ParseError,
    },
    #[error("{kind} '{name}': its condition does not expand: {message}")]
    Expand {
        kind: &'static str,
        name: String,
        message: String,
    },
    #[error("{kind} '{name}': {source}")]
    EventCodes {
        kind: &'static str,
        name: String,
        source: SearchError,
    },
    #[error("rule '{name}': its output does not parse: {token}")]
    Output { name: String, token: String },
}

/// What a condition names and what it compiles to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConditionDetails {
    /// Macros named in the condition as written.
    pub macros: BTreeSet<String>,
    /// Lists named in the condition as written (inside parentheses).
    pub lists: BTreeSet<String>,
    /// Operators of the compiled condition (`=`, `in`, `startswith oneof`).
    pub operators: BTreeSet<String>,
    /// Fields of the compiled condition, with their arguments.
    pub fields: BTreeSet<String>,
    /// The event type names the compiled condition can match.
    pub events: BTreeSet<String>,
    /// Values the compiled condition compares `evt.type` with: the names
    /// of plugins' async events it may match.
    pub event_names: BTreeSet<String>,
    /// The compiled condition, as libsinsp prints it.
    pub compiled: String,
}

/// A rule's details.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleDetails {
    pub condition: ConditionDetails,
    /// The output with what `append_output` and `-p` add.
    pub output_compiled: String,
    /// The extra fields' formats, then the fields of the output, as
    /// libsinsp's formatter names them (repeats kept, as Falco lists them).
    pub output_fields: Vec<String>,
    /// The extra fields that are formats (not raw fields): name, format.
    pub extra_formatted_fields: Vec<(String, String)>,
    /// The fields of the exceptions that have values.
    pub exception_fields: BTreeSet<String>,
    pub exception_names: BTreeSet<String>,
    pub exception_operators: BTreeSet<String>,
}

impl RuleDetails {
    /// The fields a rule reads in its condition and output, without their
    /// arguments: what tells which plugins' fields it uses.
    pub fn field_names(&self) -> BTreeSet<String> {
        self.condition
            .fields
            .iter()
            .chain(&self.output_fields)
            .map(|f| f.split('[').next().unwrap_or(f).to_string())
            .collect()
    }
}

/// A macro's details.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MacroDetails {
    pub condition: ConditionDetails,
    /// Named by a rule or another macro.
    pub used: bool,
}

/// A list's details.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListDetails {
    /// Its items as written, without the names of the lists it takes
    /// items from.
    pub items: Vec<String>,
    /// The lists it takes items from.
    pub lists: BTreeSet<String>,
    /// Its items with those lists' items in their place.
    pub items_compiled: Vec<String>,
    /// Named by a condition or another list.
    pub used: bool,
}

/// Describes the items of one load.
pub struct Describer<'a> {
    defs: &'a Definitions,
    macros: &'a ParsedMacros,
    usage: &'a Usage,
    lists: ExpandedLists,
    macro_names: HashSet<&'a str>,
    list_names: HashSet<&'a str>,
}

impl<'a> Describer<'a> {
    /// `macros` and `usage` are what the load found checking `defs`.
    pub fn new(defs: &'a Definitions, macros: &'a ParsedMacros, usage: &'a Usage) -> Self {
        Describer {
            defs,
            macros,
            usage,
            lists: expanded_lists(defs),
            macro_names: defs.macros.iter().map(|m| m.name.as_str()).collect(),
            list_names: defs.lists.iter().map(|l| l.name.as_str()).collect(),
        }
    }

    /// A rule's details; `output` is its output as compiled.
    pub fn rule(
        &self,
        rule: &RuleItem,
        output: &OutputAsFalco,
    ) -> Result<RuleDetails, DescribeError> {
        let kind = "rule";
        let compiled_text = rule_condition(rule).map_err(|e| DescribeError::Expand {
            kind,
            name: rule.name.clone(),
            message: e.message,
        })?;
        let condition = self.condition(
            kind,
            &rule.name,
            &rule.condition,
            &compiled_text,
            rule.source == "syscall",
        )?;
        let mut output_fields: Vec<String> = output
            .extra_fields
            .iter()
            .map(|f| f.format.clone())
            .collect();
        output_fields.extend(crate::output::field_names(&output.text).map_err(|token| {
            DescribeError::Output {
                name: rule.name.clone(),
                token,
            }
        })?);
        let extra_formatted_fields = output
            .extra_fields
            .iter()
            .filter(|f| !f.raw)
            .map(|ExtraOutputField { name, format, .. }| (name.clone(), format.clone()))
            .collect();
        let mut details = RuleDetails {
            condition,
            output_compiled: output.text.clone(),
            output_fields,
            extra_formatted_fields,
            ..RuleDetails::default()
        };
        for exception in &rule.exceptions {
            details.exception_names.insert(exception.name.clone());
            collect_scalars(
                &exception.effective_comps(),
                &mut details.exception_operators,
            );
            // Falco names an exception's fields only once it has values.
            if !exception.values.is_empty() {
                if let Some(fields) = &exception.fields {
                    collect_scalars(fields, &mut details.exception_fields);
                }
            }
        }
        Ok(details)
    }

    /// A macro's details.
    pub fn macro_item(&self, item: &MacroItem) -> Result<MacroDetails, DescribeError> {
        Ok(MacroDetails {
            condition: self.condition(
                "macro",
                &item.name,
                &item.condition,
                &item.condition,
                true,
            )?,
            used: self.usage.macros.contains(&item.name),
        })
    }

    /// A list's details: its items with those of the lists it names (the
    /// lists defined before it was last defined or appended to) in their
    /// place, as Falco compiles it.
    pub fn list(&self, item: &ListItem) -> ListDetails {
        let mut items_compiled = Vec::with_capacity(item.items.len());
        for name in &item.items {
            match self.defs.lists.get(name) {
                Some(named) if named.index < item.visibility => {
                    items_compiled.extend(named.items.iter().cloned())
                }
                _ => items_compiled.push(name.clone()),
            }
        }
        // An item that the compiled items lack was a list's name.
        let (items, lists): (Vec<&String>, Vec<&String>) = item
            .items
            .iter()
            .partition(|name| items_compiled.contains(name));
        ListDetails {
            items: items.into_iter().cloned().collect(),
            lists: lists.into_iter().cloned().collect(),
            items_compiled,
            used: self.usage.lists.contains(&item.name),
        }
    }

    /// The details of a condition written as `written`, compiled from
    /// `text` (the written one with a rule's exceptions appended).
    fn condition(
        &self,
        kind: &'static str,
        name: &str,
        written: &str,
        text: &str,
        syscall: bool,
    ) -> Result<ConditionDetails, DescribeError> {
        let known = Known {
            macros: &self.macro_names,
            lists: &self.list_names,
        };
        // Falco parses the condition as written again with libsinsp's
        // parser at its default depth, so -L fails on a condition that
        // nests deeper, which the loader accepted.
        let parsed =
            parse_condition_with_max_depth(written, LIBSINSP_DEFAULT_DEPTH).map_err(|source| {
                DescribeError::Parse {
                    kind,
                    name: name.to_string(),
                    source,
                }
            })?;
        let mut as_written = Found::default();
        details::walk(&parsed, &known, &mut as_written);

        let compiled = expand_rule(
            text,
            self.macros,
            &self.lists,
            &mut ExpandedMacros::new(),
            &mut PasteBudget::default(),
        )
        .map_err(|ExpandError { message, .. }| DescribeError::Expand {
            kind,
            name: name.to_string(),
            message,
        })?;
        let mut found = Found::default();
        details::walk(&compiled, &known, &mut found);
        let events =
            event_types(&compiled, syscall).map_err(|source| DescribeError::EventCodes {
                kind,
                name: name.to_string(),
                source,
            })?;
        Ok(ConditionDetails {
            macros: as_written.macros,
            lists: as_written.lists,
            operators: found.operators,
            fields: found.fields,
            events,
            event_names: found.event_names,
            compiled: condition_text(&compiled),
        })
    }
}

/// Every scalar in an exception's fields or comps, one level of lists
/// deep and two for comps, as Falco reads them.
fn collect_scalars(entry: &ExceptionEntry, out: &mut BTreeSet<String>) {
    match entry {
        ExceptionEntry::Scalar(s) => {
            out.insert(s.clone());
        }
        ExceptionEntry::List(items) => {
            for item in items {
                match item {
                    ExceptionEntry::Scalar(s) => {
                        out.insert(s.clone());
                    }
                    ExceptionEntry::List(inner) => out.extend(
                        inner
                            .iter()
                            .filter_map(|i| i.as_scalar().map(str::to_string)),
                    ),
                }
            }
        }
    }
}

/// The names of the event types a condition can match, as Falco's `-L`
/// lists them: for a syscall condition, the events and system calls
/// libsinsp finds for it, and `asyncevent`, which any rule may see; for
/// another source, its plugin events and `asyncevent`.
pub fn event_types(expr: &Expr, syscall: bool) -> Result<BTreeSet<String>, SearchError> {
    if !syscall {
        let events: codes::CodeSet = [codes::PLUGIN_EVENT, codes::ASYNC_EVENT]
            .into_iter()
            .collect();
        return Ok(codes::event_names(&events)
            .into_iter()
            .map(str::to_string)
            .collect());
    }
    let events_named = |names: &[&str]| codes::events_named(names.iter().copied());
    let syscalls_named = |names: &[&str]| codes::syscalls_named(names.iter().copied());
    let mut events = search(
        expr,
        &Universe {
            all: codes::all_events(),
            named: &events_named,
        },
    )?;
    events.insert(codes::ASYNC_EVENT);
    let syscalls = search(
        expr,
        &Universe {
            all: codes::all_syscalls(),
            named: &syscalls_named,
        },
    )?;
    Ok(codes::syscall_event_names(&syscalls)
        .into_iter()
        .chain(codes::event_names(&events))
        .map(str::to_string)
        .collect())
}
