//! Falco-syntax rule files: loading (lists, macros, rules, appends,
//! overrides, exceptions), compiling against a [`FieldSource`], and
//! evaluating events through an index by event type.
//!
//! ```text
//! let mut loader = RulesLoader::new();
//! loader.load_file(path);                 // -> &LoadResult (errors, warnings)
//! let rules = loader.compile(source);     // CompiledRules<S>, diagnostics on the last result
//! rules.evaluate(&event, |rule| ...);     // first matching rule, as Falco's default
//! ```

pub mod compile;
pub mod describe;
pub mod diagnostics;
pub mod eval;
pub mod exceptions;
pub mod expand;
pub mod filter;
pub mod items;
pub mod loader;
pub mod marks;
mod open_scalar;
pub mod paste;
mod quoted_clip;
pub mod schema;
pub mod schema_check;
mod specialize;
pub mod warnings;

use crate::fast_hash::FastMap;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

pub use diagnostics::{Code, Diagnostic, LoadResult, Location, Mark};
pub use expand::Usage;
pub use filter::{ConditionError, Filter, FilterError};
pub use items::{
    Definitions, Exception, ExceptionEntry, ListItem, MacroItem, Origin, PluginVersion, Priority,
    RuleItem,
};
pub use loader::ENGINE_VERSION;

use crate::field::FieldSource;
use crate::output::OutputFormat;
use compile::{Node, TypeSet};
use eval::Scratch;
use expand::ParsedMacros;

/// Loads rule files in order, later ones appending to and overriding
/// earlier ones.
#[derive(Debug, Default)]
pub struct RulesLoader {
    defs: Definitions,
    macros: ParsedMacros,
    usage: expand::Usage,
    results: Vec<LoadResult>,
    output_extra: Option<String>,
    appends: Vec<OutputAppend>,
    static_fields: Vec<(String, String)>,
    buffer_base64: bool,
    /// What libsinsp's event code search refused in a compiled syscall
    /// rule (see [`compile::code_search_refusal`]): Falco stops there.
    fatal: Option<String>,
}

/// Falco's `append_output`: text added to the outputs of the rules it
/// matches, and fields added to their alerts' `output_fields`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputAppend {
    /// Only the rule of this name, when set.
    pub rule: Option<String>,
    /// Only rules of this source, when set.
    pub source: Option<String>,
    /// Only rules that have every one of these tags.
    pub tags: Vec<String>,
    /// Added at the end of the output, after a space; none when empty.
    pub text: String,
    pub fields: Vec<ExtraOutputField>,
}

/// A field an [`OutputAppend`] adds to `output_fields`: a `raw` one is a
/// field (`%proc.pid`) whose value keeps its type; the others are a
/// format rendered as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraOutputField {
    pub name: String,
    pub format: String,
    pub raw: bool,
}

impl OutputAppend {
    fn applies_to(&self, rule: &RuleItem) -> bool {
        self.rule.as_ref().map_or(true, |name| *name == rule.name)
            && self
                .source
                .as_ref()
                .map_or(true, |source| *source == rule.source)
            && self.tags.iter().all(|t| rule.tags.contains(t))
    }
}

/// A rule's output as Falco's engine holds it: the text with what
/// `append_output` and `-p` add (static fields not yet replaced by their
/// values), and the extra fields of `append_output`. What `-L` describes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputAsFalco {
    pub text: String,
    pub extra_fields: Vec<ExtraOutputField>,
}

/// `text` with each `token` (`%static.NAME`) that is not the start of a
/// longer field name (`%static.NAME2`) replaced by `value`; None when
/// there is none.
fn replace_token(text: &str, token: &str, value: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut replaced = false;
    while let Some(at) = rest.find(token) {
        let after = &rest[at + token.len()..];
        let longer = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        out.push_str(&rest[..at]);
        if longer {
            out.push_str(token);
        } else {
            out.push_str(value);
            replaced = true;
        }
        rest = after;
    }
    out.push_str(rest);
    replaced.then_some(out)
}

/// An extra output field, compiled.
#[derive(Debug, Clone)]
pub struct CompiledExtraField {
    pub name: String,
    pub format: OutputFormat,
    pub raw: bool,
}

impl RulesLoader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Text appended to every rule's output (`-p`).
    pub fn set_output_extra(&mut self, extra: Option<String>) {
        self.output_extra = extra;
    }

    /// Falco's `append_output` items, applied in order to each rule they match.
    pub fn set_output_appends(&mut self, appends: Vec<OutputAppend>) {
        self.appends = appends;
    }

    /// The first condition libsinsp's event code search would refuse, in
    /// its words: Falco ends with a runtime error on it (no load result).
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// Falco's `buffer_format_base64`: byte buffers in outputs as base64.
    pub fn set_buffer_format_base64(&mut self, on: bool) {
        self.buffer_base64 = on;
    }

    /// Falco's `static_fields`: `%static.NAME` in an output is the value,
    /// and `static.NAME` joins the alert's `output_fields`.
    pub fn set_static_fields(&mut self, fields: Vec<(String, String)>) {
        self.static_fields = fields;
    }

    /// A rule's output with the `append_output` texts that match it, and
    /// the extra fields they add (a later item's field of the same name
    /// replaces an earlier one's, as in Falco); then each `%static.NAME`
    /// replaced by its value, which joins the extra fields. Also returns
    /// the output as Falco holds it, before that replacement.
    fn shaped_output(&self, rule: &RuleItem) -> (String, Vec<ExtraOutputField>, OutputAsFalco) {
        let mut output = rule.output.clone();
        let mut fields: Vec<ExtraOutputField> = Vec::new();
        for append in self.appends.iter().filter(|a| a.applies_to(rule)) {
            if !append.text.is_empty() {
                output = format!("{} {}", output.trim_end(), append.text);
            }
            for field in &append.fields {
                fields.retain(|f| f.name != field.name);
                fields.push(field.clone());
            }
        }
        let output = self.output_text(&output);
        let as_falco = OutputAsFalco {
            text: output.clone(),
            extra_fields: fields.clone(),
        };
        let mut output = output;
        for (name, value) in &self.static_fields {
            let token = format!("%static.{name}");
            if let Some(replaced) = replace_token(&output, &token, value) {
                output = replaced;
                let name = format!("static.{name}");
                if !fields.iter().any(|f| f.name == name) {
                    fields.push(ExtraOutputField {
                        name,
                        format: value.clone(),
                        raw: false,
                    });
                }
            }
        }
        (output, fields, as_falco)
    }

    /// The `-p` text appended, and `%container.info` taken out: with
    /// Falco's container plugin (Falco 0.41 and later) it says nothing, as
    /// the plugin's suggested fields name the container instead.
    fn output_text(&self, output: &str) -> String {
        let output = match &self.output_extra {
            Some(extra) => format!("{} {extra}", output.trim_end()),
            None => output.to_string(),
        };
        output.replace(warnings::CONTAINER_INFO, "")
    }

    /// Loads a file from disk; an unreadable file is reported as
    /// LOAD_ERR_FILE_READ in its result. Bytes that are not UTF-8 (a
    /// Latin-1 comment, a raw byte in a name) load as yaml-cpp reads
    /// them, byte for byte (see crate::text).
    pub fn load_file(&mut self, path: impl AsRef<Path>) -> &LoadResult {
        let path = path.as_ref();
        let name = path.display().to_string();
        match crate::bounded_read::read_bytes(path, crate::bounded_read::MAX_RULES_FILE_BYTES) {
            Ok(bytes) => self.load_str(&name, &crate::text::decode_owned(bytes)),
            Err(e) => {
                let mut result = LoadResult {
                    name: name.clone(),
                    ..Default::default()
                };
                result.push(Diagnostic {
                    code: Code::ErrFileRead,
                    message: format!("Could not read file: {e}"),
                    item_type: "rules content".into(),
                    item_name: String::new(),
                    file: name,
                    line: None,
                    context: Vec::new(),
                    condition_pos: None,
                    locations: Vec::new(),
                });
                self.results.push(result);
                self.last_result()
            }
        }
    }

    /// Loads rules text named `name` (used in diagnostics).
    pub fn load_str(&mut self, name: &str, content: &str) -> &LoadResult {
        let mut result = LoadResult {
            name: name.to_string(),
            content: Some(Arc::from(content)),
            ..Default::default()
        };
        loader::load_content(&mut self.defs, name, content, &mut result);
        if result.successful() {
            (self.macros, self.usage) = expand::validate(&self.defs, name, &mut result);
        }
        if crate::text::has_raw(content) {
            diagnostics::marks_in_raw_bytes(&mut result, content);
        }
        self.results.push(result);
        self.last_result()
    }

    fn last_result(&self) -> &LoadResult {
        // load_* always pushes before calling this.
        static EMPTY: LoadResult = LoadResult {
            name: String::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            content: None,
            schema_status: Vec::new(),
        };
        self.results.last().unwrap_or(&EMPTY)
    }

    pub fn results(&self) -> &[LoadResult] {
        &self.results
    }

    /// The errors of every file loaded and compiled so far.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.results.iter().flat_map(|r| r.errors.iter())
    }

    pub fn definitions(&self) -> &Definitions {
        &self.defs
    }

    /// The macros as the last load checked them (parsed, references and
    /// loops validated), taken out once compiling is done: what a later
    /// user of the same definitions (the console's try box) needs without
    /// checking them again.
    pub fn take_macros(&mut self) -> expand::ParsedMacros {
        std::mem::take(&mut self.macros)
    }

    /// The macros and lists the last load found used.
    pub fn usage(&self) -> &expand::Usage {
        &self.usage
    }

    /// Whether any file had an error.
    pub fn has_errors(&self) -> bool {
        self.results.iter().any(|r| !r.successful())
    }

    /// Compiles every rule whose `source` is the source's name. Errors and
    /// warnings go to the result of the last file loaded (Falco compiles
    /// after each file); rules that fail are left out.
    pub fn compile<S: FieldSource>(&mut self, mut source: S) -> CompiledRules<S> {
        let lists = expand::expanded_lists(&self.defs);
        let mut paste_budget = paste::PasteBudget::default();
        // Macros are expanded and bound once, then shared by the rules.
        let mut expanded_macros = expand::ExpandedMacros::new();
        let mut bound_macros = compile::BoundMacros::new();
        let mut compiled = Vec::new();
        let mut diags = Vec::new();
        source.set_buffer_base64(self.buffer_base64);
        if let Some(statics) = source.static_fields() {
            statics.set(&self.static_fields);
        }
        let source_name = source.name();
        let is_syscall = source_name == "syscall";
        for (position, rule) in self
            .defs
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.source == source_name)
        {
            let file = rule.origin.file.as_str();
            let marks = &rule.origin.marks;
            let located = rule.origin.line.is_some();
            // Where Falco points inside the rule: its condition (and a
            // point of it), or its output.
            // Positions point into the text Falco compiles: with
            // exceptions, `(condition) and not ...`.
            let composed = exceptions::rule_condition(rule);
            let condition: &str = match &composed {
                Ok(text) => text,
                Err(_) => &rule.condition,
            };
            let in_condition = |line: usize, column: usize| {
                let at = marks.value("condition");
                vec![
                    Location::new("rule condition", "", file, at),
                    Location::condition_expression(condition, at, line, column),
                ]
            };
            let in_output = || {
                vec![Location::new(
                    "rule output",
                    "",
                    file,
                    marks.value("output"),
                )]
            };
            let mut report_at =
                |code: Code, exception: Option<&str>, message: String, sub: Vec<Location>| {
                    let (context, item_type, item_name) = match exception {
                        Some(ex) => (
                            vec![("rule".to_string(), rule.name.clone())],
                            "exception".to_string(),
                            ex.to_string(),
                        ),
                        None => (Vec::new(), "rule".to_string(), rule.name.clone()),
                    };
                    let mut locations = Vec::new();
                    if located {
                        locations =
                            loader::item_locations(file, marks, &context, &item_type, &item_name);
                        locations.extend(sub);
                    }
                    diags.push((
                        position,
                        Diagnostic {
                            code,
                            message,
                            item_type,
                            item_name,
                            context,
                            file: file.to_string(),
                            line: rule.origin.line,
                            condition_pos: None,
                            locations,
                        },
                    ))
                };
            if let Err((exception, message)) = check_exception_fields(&mut source, rule) {
                report_at(Code::ErrValidate, Some(&exception), message, Vec::new());
                continue;
            }
            // Falco's compiler takes a rule in this order: its exceptions,
            // its output (and the extra fields), then its condition; the
            // first error ends the walk, and the warnings before it stay.
            if let Err(e) = &composed {
                report_at(
                    e.code,
                    e.exception.as_deref(),
                    e.message.clone(),
                    Vec::new(),
                );
                continue;
            }
            if let Some((code, message)) = warnings::container_info_warning(&rule.output) {
                report_at(code, None, message, Vec::new());
            }
            let (output_text, extra, falco_output) = self.shaped_output(rule);
            let mut output = match OutputFormat::compile(&output_text, &mut source) {
                Ok(o) => o,
                Err(_token) => {
                    // libsinsp tries ever shorter prefixes of the token as a
                    // field and reports the last failure: the one-letter
                    // prefix, with nothing parsed before it.
                    let message = "unknown filter: unexpected token after '".to_string();
                    let code = if rule.skip_if_unknown_filter {
                        Code::UnknownFilter
                    } else {
                        Code::ErrCompileOutput
                    };
                    report_at(code, None, message, in_output());
                    continue;
                }
            };
            for (code, message) in warnings::deprecated_output_warnings(&rule.output) {
                report_at(code, None, message, in_output());
            }
            let mut extra_fields = Vec::with_capacity(extra.len());
            let mut bad_extra = false;
            for field in extra {
                match OutputFormat::compile(&field.format, &mut source) {
                    Ok(mut format) => {
                        for (code, message) in warnings::deprecated_output_warnings(&field.format) {
                            report_at(code, None, message, in_output());
                        }
                        format.set_buffer_base64(self.buffer_base64);
                        extra_fields.push(CompiledExtraField {
                            name: field.name,
                            format,
                            raw: field.raw,
                        })
                    }
                    Err(token) => {
                        bad_extra = true;
                        report_at(
                            Code::ErrCompileOutput,
                            None,
                            format!(
                                "invalid formatting token {token} in extra field {}",
                                field.name
                            ),
                            in_output(),
                        );
                        break;
                    }
                }
            }
            if bad_extra {
                continue;
            }
            let expr = match expand::expand_rule(
                condition,
                &self.macros,
                &lists,
                &mut expanded_macros,
                &mut paste_budget,
            ) {
                Ok(e) => e,
                Err(e) => {
                    // Parse and macro errors were reported when loading.
                    if !matches!(e.code, Code::ErrValidate | Code::ErrCompileCondition)
                        || self.macros_complete(rule, &lists)
                    {
                        report_at(e.code, None, e.message, Vec::new());
                    }
                    continue;
                }
            };
            // libsinsp's warning pass runs on the parsed condition before
            // the filter compiles.
            for (code, message) in warnings::condition_warnings(&expr) {
                report_at(code, None, message, in_condition(0, 0));
            }
            let node = match compile::bind_in(&mut source, &expr, &mut bound_macros) {
                Ok(n) => n,
                Err(e) => {
                    let pos = compile::failing_comparison(&mut source, &expr).unwrap_or_default();
                    let code = match e {
                        compile::BindError::UnknownField(_) if rule.skip_if_unknown_filter => {
                            Code::UnknownFilter
                        }
                        _ => Code::ErrCompileCondition,
                    };
                    report_at(code, None, e.message(), in_condition(pos.line, pos.column));
                    continue;
                }
            };
            let types = match compile::event_types(&source, &expr) {
                Ok(t) => t,
                Err(msg) => {
                    let pos = compile::failing_event_type(&source, &expr).unwrap_or_default();
                    report_at(
                        Code::ErrCompileCondition,
                        None,
                        msg,
                        in_condition(pos.line, pos.column),
                    );
                    continue;
                }
            };
            if is_syscall && self.fatal.is_none() {
                self.fatal = compile::code_search_refusal(&expr).map(str::to_string);
            }
            for (message, pos) in warnings::value_warnings(&expr, &mut source) {
                report_at(
                    Code::CompileCondition,
                    None,
                    message,
                    in_condition(pos.line, pos.column),
                );
            }
            // Cannot fail where `event_types` succeeded: same walk, same lookups.
            let type_names = compile::event_type_names(&source, &expr).unwrap_or(TypeSet::All);
            // An empty set is a condition that can never hold (Falco's
            // `never_true` idiom), not one that matches every type.
            let too_many_types = match &types {
                TypeSet::Only(s) => s.len() > TOO_MANY_EVENT_TYPES,
                _ => true,
            };
            if is_syscall && rule.warn_evttypes && too_many_types {
                report_at(Code::NoEvttype, None, "Rule matches too many evt.type values. This has a significant performance penalty.".into(), Vec::new());
            }
            output.set_buffer_base64(self.buffer_base64);
            compiled.push(CompiledRule {
                name: rule.name.clone(),
                desc: rule.desc.clone(),
                priority: rule.priority,
                source: rule.source.clone(),
                tags: rule.tags.clone(),
                enabled: rule.enabled,
                output,
                extra_fields,
                falco_output,
                capture: rule.capture,
                capture_duration_ms: rule.capture_duration_ms,
                node,
                types,
                type_names,
            });
        }
        if let Some(last) = self.results.last_mut() {
            keep_up_to_the_first_error(last, &self.defs, diags);
        }
        CompiledRules::new(source, compiled)
    }

    /// Warns (LOAD_UNKNOWN_SOURCE, on the last file's result) about rules
    /// whose `source` is none of `known`: they are never compiled.
    pub fn warn_unknown_sources(&mut self, known: &[&str]) {
        let mut diags = Vec::new();
        for rule in self
            .defs
            .rules
            .iter()
            .filter(|r| !known.contains(&r.source.as_str()))
        {
            diags.push(Diagnostic {
                code: Code::UnknownSource,
                message: format!("Unknown source {}, skipping", rule.source),
                item_type: "rule".into(),
                item_name: rule.name.clone(),
                file: rule.origin.file.clone(),
                line: rule.origin.line,
                context: Vec::new(),
                condition_pos: None,
                locations: Vec::new(),
            });
        }
        if let Some(last) = self.results.last_mut() {
            diags.into_iter().for_each(|d| last.push(d));
        }
    }

    /// Whether the rule's condition (its lists pasted) parsed and its
    /// macros exist, i.e. an expansion error is new and not one already
    /// reported at load.
    fn macros_complete(&self, rule: &RuleItem, lists: &expand::ExpandedLists) -> bool {
        // A budget of its own: this only asks whether the text pastes.
        let Ok(condition) = exceptions::rule_condition(rule) else {
            return false;
        };
        let Ok(text) = lists.paste(&condition, &mut paste::PasteBudget::default()) else {
            return false;
        };
        let Ok(expr) = crate::condition::parse_condition(&text) else {
            return false;
        };
        let mut ok = true;
        expr.walk(&mut |e| {
            if let crate::condition::Expr::Macro { name, .. } = e {
                ok &= self.macros.contains_key(name);
            }
        });
        ok
    }
}

/// Adds a compile pass's diagnostics (each with its rule's place in
/// definition order) to `result` as Falco reports them: its compiler
/// walks the rules in order and the first error ends the walk, so a load
/// reports one error, what earlier rules warned about, and no unused
/// list or macro. The load's checks (which stop at a macro or list, or at
/// a rule's syntax) and each source's pass each find a first error; the
/// earliest in Falco's order is the one kept.
fn keep_up_to_the_first_error(
    result: &mut LoadResult,
    defs: &items::Definitions,
    diags: Vec<(usize, Diagnostic)>,
) {
    // Falco's order: lists and macros (0), then rule n (n + 1).
    let place = |d: &Diagnostic| -> usize {
        let rule = match d.item_type.as_str() {
            "rule" => Some(d.item_name.as_str()),
            _ => d
                .context
                .iter()
                .find(|(kind, _)| kind == "rule")
                .map(|(_, name)| name.as_str()),
        };
        rule.and_then(|name| defs.rules.position(name))
            .map_or(0, |n| n + 1)
    };
    let earlier = result.errors.iter().map(place).min();
    let first = diags
        .iter()
        .find(|(_, d)| d.code.is_error())
        .map(|(n, _)| n + 1);
    // A load error at the same rule as this pass's first error is about
    // its condition, which Falco compiles after the exceptions and the
    // output this pass checked first.
    let condition_errors_only = |at: usize| {
        result.errors.iter().filter(|d| place(d) == at).all(|d| {
            d.code == Code::ErrCompileCondition || d.locations.iter().any(|l| l.condition.is_some())
        })
    };
    let cut = match (earlier, first) {
        (Some(e), Some(f)) if f < e || (f == e && condition_errors_only(e)) => {
            // This pass's error comes first: the later one and what only
            // a successful compile reports are dropped.
            result.errors.clear();
            result.warnings.retain(|w| {
                !matches!(w.code, Code::UnusedList | Code::UnusedMacro) && place(w) <= f
            });
            f
        }
        (Some(e), _) => e.saturating_sub(1),
        (None, Some(f)) => {
            result
                .warnings
                .retain(|w| !matches!(w.code, Code::UnusedList | Code::UnusedMacro));
            f
        }
        (None, None) => usize::MAX,
    };
    let mut errors = 0;
    for (n, d) in diags {
        if n + 1 > cut || (d.code.is_error() && (n + 1 != cut || errors > 0)) {
            continue;
        }
        errors += usize::from(d.code.is_error());
        result.push(d);
    }
}

/// Falco warns LOAD_NO_EVTTYPE above this many event types.
const TOO_MANY_EVENT_TYPES: usize = 100;

/// Checks each exception field against the source, as Falco does when a
/// rule is defined: a field wrapped in transformers must compile as
/// `FIELD exists`, a plain one must be a field the source has. Returns the
/// exception and message of the first that is not.
fn check_exception_fields<S: FieldSource>(
    source: &mut S,
    rule: &RuleItem,
) -> Result<(), (String, String)> {
    for exc in &rule.exceptions {
        let fields: Vec<&str> = match &exc.fields {
            Some(ExceptionEntry::Scalar(f)) => vec![f.as_str()],
            Some(ExceptionEntry::List(items)) => items
                .iter()
                .map(|i| i.as_scalar().unwrap_or_default())
                .collect(),
            None => Vec::new(),
        };
        for field in fields {
            let valid = crate::condition::parse_condition(&format!("{field} exists"))
                .ok()
                .filter(|e| matches!(e, crate::condition::Expr::Compare(_)))
                .is_some_and(|e| compile::bind(source, &e).is_ok());
            if !valid {
                return Err((
                    exc.name.clone(),
                    format!("'{field}' is not a supported filter field"),
                ));
            }
        }
    }
    Ok(())
}

/// A rule ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub name: String,
    pub desc: String,
    pub priority: Priority,
    pub source: String,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub output: OutputFormat,
    /// `append_output`'s fields for this rule's alerts.
    pub extra_fields: Vec<CompiledExtraField>,
    /// The output as Falco holds it, for `-L`.
    pub falco_output: OutputAsFalco,
    /// The rule's `capture` key: its alerts start a capture file.
    pub capture: bool,
    /// The rule's `capture_duration` in milliseconds, 0 when unset.
    pub capture_duration_ms: u32,
    node: Node,
    types: TypeSet,
    type_names: TypeSet<String>,
}

/// A rule to check for an event, with its condition as it evaluates for
/// that event's type (see [`specialize`]).
#[derive(Debug, Clone)]
struct Candidate {
    rule: usize,
    node: Node,
    /// The macro whose false result settles the condition (the first
    /// term of its `and`), looked at before the condition is visited: one
    /// `open_write` that failed rules out a dozen rules of an open at the
    /// cost of a load each.
    guard: Option<u32>,
}

impl Candidate {
    fn new(rule: usize, node: Node) -> Candidate {
        Candidate {
            rule,
            guard: leading_macro(&node),
            node,
        }
    }
}

/// The slot of the macro that must hold for `node` to hold, found down
/// the first terms of nested `and`s.
fn leading_macro(node: &Node) -> Option<u32> {
    match node {
        Node::Shared { slot, .. } => Some(*slot),
        Node::And(items) => leading_macro(items.first()?),
        _ => None,
    }
}

impl CompiledRule {
    /// The event type codes this rule is limited to, or None when it may
    /// match any event.
    pub fn event_types(&self) -> Option<&BTreeSet<u16>> {
        match &self.types {
            TypeSet::Only(s) => Some(s),
            _ => None,
        }
    }
}

/// What [`CompiledRules::event_type_names`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleEventTypes<'a> {
    /// Every enabled rule is limited to these `evt.type` names.
    Names(BTreeSet<&'a str>),
    /// This rule (the first such) may match events of any type.
    Any { rule: &'a str },
}

/// Whether an event stops at the first matching rule (Falco's default) or
/// meets every rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Matching {
    #[default]
    First,
    All,
}

/// The compiled rules of one source, indexed by event type.
pub struct CompiledRules<S: FieldSource> {
    source: S,
    rules: Vec<CompiledRule>,
    /// Per event type: the rules to check, in load order, each with its
    /// condition specialised for that type.
    by_type: FastMap<u16, Vec<Candidate>>,
    /// Rules checked for events of any other type.
    any_type: Vec<Candidate>,
    all_enabled: Vec<Candidate>,
    scratch: Option<Scratch<'static>>,
    pub matching: Matching,
}

/// A copy for another thread (parallel evaluation): the same rules, index
/// and matching mode, with scratch buffers of its own.
impl<S: FieldSource + Clone> Clone for CompiledRules<S> {
    fn clone(&self) -> Self {
        CompiledRules {
            source: self.source.clone(),
            rules: self.rules.clone(),
            by_type: self.by_type.clone(),
            any_type: self.any_type.clone(),
            all_enabled: self.all_enabled.clone(),
            scratch: Some(Scratch::default()),
            matching: self.matching,
        }
    }
}

impl<S: FieldSource> CompiledRules<S> {
    fn new(source: S, rules: Vec<CompiledRule>) -> Self {
        let mut out = CompiledRules {
            source,
            rules,
            by_type: FastMap::default(),
            any_type: Vec::new(),
            all_enabled: Vec::new(),
            scratch: Some(Scratch::default()),
            matching: Matching::First,
        };
        out.reindex();
        out
    }

    fn reindex(&mut self) {
        let enabled = || self.rules.iter().enumerate().filter(|(_, r)| r.enabled);
        let as_written = |(rule, r): (usize, &CompiledRule)| Candidate::new(rule, r.node.clone());
        self.all_enabled = enabled().map(as_written).collect();
        self.any_type = enabled()
            .filter(|(_, r)| !matches!(r.types, TypeSet::Only(_)))
            .map(as_written)
            .collect();
        let mut indexes: FastMap<u16, Vec<usize>> = FastMap::default();
        for (i, rule) in enabled() {
            if let TypeSet::Only(codes) = &rule.types {
                for c in codes {
                    indexes.entry(*c).or_default().push(i);
                }
            }
        }
        self.by_type = indexes
            .into_iter()
            .map(|(key, mut list)| {
                list.extend(self.any_type.iter().map(|c| c.rule));
                list.sort_unstable();
                list.dedup();
                let mut specialise = specialize::ForType::new(key);
                let candidates = list
                    .into_iter()
                    .filter_map(|rule| {
                        match specialise.condition(&self.rules[rule].node) {
                            // Cannot hold for this type: not checked.
                            Node::Const(false) => None,
                            node => Some(Candidate::new(rule, node)),
                        }
                    })
                    .collect();
                (key, candidates)
            })
            .collect();
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// The `evt.type` names the enabled rules can match, or the first rule
    /// that may match any event type (then no event can be left out).
    pub fn event_type_names(&self) -> RuleEventTypes<'_> {
        let mut names = BTreeSet::new();
        for rule in self.rules.iter().filter(|r| r.enabled) {
            match &rule.type_names {
                TypeSet::Only(set) => names.extend(set.iter().map(String::as_str)),
                _ => return RuleEventTypes::Any { rule: &rule.name },
            }
        }
        RuleEventTypes::Names(names)
    }

    /// Enables or disables rules; `pred` picks them (by name substring,
    /// tag...). Returns how many changed.
    pub fn set_enabled(
        &mut self,
        enabled: bool,
        mut pred: impl FnMut(&CompiledRule) -> bool,
    ) -> usize {
        let mut n = 0;
        for r in self.rules.iter_mut().filter(|r| pred(r)) {
            if r.enabled != enabled {
                r.enabled = enabled;
                n += 1;
            }
        }
        self.reindex();
        n
    }

    /// Runs the event through the rules that can match it, in load order,
    /// calling `on_match` for each match (only the first with
    /// [`Matching::First`]). Returns the number of matches.
    pub fn evaluate<'e>(
        &mut self,
        event: &S::Event<'e>,
        mut on_match: impl FnMut(&CompiledRule, &S),
    ) -> usize {
        let candidates: &[Candidate] = match self.source.event_type(event) {
            Some(t) => self
                .by_type
                .get(&t)
                .map(Vec::as_slice)
                .unwrap_or(&self.any_type),
            // Without an event type, type-indexed rules are checked as well.
            None => &self.all_enabled,
        };
        if candidates.is_empty() {
            return 0;
        }
        // Scratch<'static> is a Scratch<'e> as it is (covariance): only
        // the way back needs the buffers emptied and recycled.
        let mut scratch: Scratch<'e> = self.scratch.take().unwrap_or_default();
        let mut matches = 0;
        for candidate in candidates {
            if candidate.guard.and_then(|slot| scratch.remembered(slot)) == Some(false) {
                continue;
            }
            if eval::eval(&candidate.node, &self.source, event, &mut scratch) {
                matches += 1;
                on_match(&self.rules[candidate.rule], &self.source);
                if self.matching == Matching::First {
                    break;
                }
            }
        }
        self.scratch = Some(scratch.recycle());
        matches
    }
}

#[cfg(test)]
mod output_extra_tests {
    use super::RulesLoader;

    #[test]
    fn container_info_says_nothing_and_the_extra_is_appended() {
        let mut loader = RulesLoader::new();
        assert_eq!(loader.output_text("a %container.info b"), "a  b");
        assert_eq!(loader.output_text("plain"), "plain");
        loader.set_output_extra(Some("x=%proc.pid".into()));
        assert_eq!(
            loader.output_text("a %container.info b"),
            "a  b x=%proc.pid"
        );
        assert_eq!(loader.output_text("plain "), "plain x=%proc.pid");
    }

    #[test]
    fn container_info_is_a_deprecated_item() {
        let mut loader = RulesLoader::new();
        loader.load_str(
            "r.yaml",
            "- rule: r\n  desc: d\n  condition: evt.type = open\n  output: opened %container.info by %proc.name\n  priority: INFO\n",
        );
        let rules = loader.compile(crate::syscall_fields::SyscallFields::new());
        assert_eq!(rules.rules().len(), 1);
        let warned = loader
            .results()
            .iter()
            .flat_map(|r| r.warnings.iter())
            .any(|d| {
                d.code == super::diagnostics::Code::DeprecatedItem
                    && d.message.starts_with("%container.info is deprecated")
            });
        assert!(warned, "{:?}", loader.results());
    }
}

#[cfg(test)]
mod shared_macro_tests {
    use std::sync::Arc;

    use super::compile::Node;
    use super::RulesLoader;
    use crate::syscall_fields::SyscallFields;

    /// The shared node under a rule's `and`, at `index`.
    fn shared_at(node: &Node, index: usize) -> &Arc<Node> {
        match node {
            Node::And(items) => match &items[index] {
                Node::Shared { node, .. } => node,
                other => panic!("not shared: {other:?}"),
            },
            other => panic!("not an and: {other:?}"),
        }
    }

    #[test]
    fn a_macro_is_bound_once_for_every_rule_that_names_it() {
        let mut yaml = String::from(
            "- list: shells\n  items: [bash, sh, zsh]\n\
             - macro: spawned_shell\n  condition: evt.type = execve and proc.name in (shells)\n\
             - macro: via_shell\n  condition: spawned_shell and proc.pname regex '[a-z]+d'\n",
        );
        for i in 0..3 {
            yaml += &format!(
                "- rule: r{i}\n  desc: d\n  condition: proc.pid > {i} and via_shell\n  \
                 output: o\n  priority: INFO\n"
            );
        }
        let mut loader = RulesLoader::new();
        loader.load_str("t.yaml", &yaml);
        let rules = loader.compile(SyscallFields::new());
        assert!(!loader.has_errors());
        let compiled = rules.rules();
        assert_eq!(compiled.len(), 3);
        let first = shared_at(&compiled[0].node, 1);
        for rule in &compiled[1..] {
            assert!(Arc::ptr_eq(first, shared_at(&rule.node, 1)));
        }
        // The macro inside the macro is shared as well, and the rules are
        // still indexed by the event type the macros name.
        assert!(matches!(&**first, Node::And(items) if matches!(items[0], Node::Shared { .. })));
        assert!(compiled.iter().all(|r| r
            .event_types()
            .is_some_and(|t| !t.is_empty() && t.len() < 30)));
    }
}
