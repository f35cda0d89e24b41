//! Rule exceptions as Falco reads, checks and applies them, written from
//! Falco's documentation on exceptions and its rule-loader behaviour:
//! every malformed form gives Falco's code, item and message, and every
//! accepted form leaves out exactly the events it names on the kit's
//! cat_write.scap (`cat /dev/null`, started by bash, opening four files).

mod common;

use std::path::PathBuf;

use common::conformance_dir;
use peregrine_engine::rules::{Code, Diagnostic, RulesLoader};
use peregrine_engine::scap::Capture;
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

/// The rule every detection case starts from: it fires on cat's opens.
const OPEN_FROM_CAT: &str = "
- rule: Open From Cat
  desc: A process named cat does an open
  condition: evt.type=open and proc.name=cat
  output: An open was seen (command=%proc.cmdline)
  priority: WARNING
";

/// Loads `yaml` (one file) and compiles it against the syscall fields.
fn load(yaml: &str) -> RulesLoader {
    let mut loader = RulesLoader::new();
    loader.load_str("exceptions.yaml", yaml);
    if loader.results().iter().all(|r| r.successful()) {
        loader.compile(SyscallFields::new());
    }
    loader
}

fn errors(loader: &RulesLoader) -> Vec<Diagnostic> {
    loader
        .results()
        .iter()
        .flat_map(|r| r.errors.iter().cloned())
        .collect()
}

fn warnings(loader: &RulesLoader) -> Vec<Diagnostic> {
    loader
        .results()
        .iter()
        .flat_map(|r| r.warnings.iter().cloned())
        .collect()
}

/// The one error loading `yaml` gives, checked for code, item and text,
/// and for naming the rule it is in.
fn expect_error(yaml: &str, code: Code, item_type: &str, item_name: &str, message: &str) {
    let loader = load(yaml);
    let errors = errors(&loader);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = &errors[0];
    assert_eq!(
        (
            e.code,
            e.item_type.as_str(),
            e.item_name.as_str(),
            e.message.as_str()
        ),
        (code, item_type, item_name, message),
        "{e:#?}"
    );
    assert!(
        e.context.iter().any(|(t, _)| t == "rule") || e.item_type == "rule",
        "the error names no rule: {e:#?}"
    );
}

fn capture() -> Option<PathBuf> {
    let path = conformance_dir()?.join("falco-regression/trace_files/cat_write.scap");
    path.is_file().then_some(path)
}

/// How many events of cat_write.scap the loaded rules alert on; None
/// (after a SKIP line) without the kit.
fn detections(yaml: &str) -> Option<usize> {
    let Some(path) = capture() else {
        println!(
            "SKIP: ../shared/conformance/falco-regression/trace_files/cat_write.scap is absent"
        );
        return None;
    };
    let mut loader = RulesLoader::new();
    loader.load_str("exceptions.yaml", yaml);
    let mut rules = loader.compile(SyscallFields::new());
    let errors = errors(&loader);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(rules.rules().len(), 1, "the rule did not compile");
    let mut capture = Capture::open(&path).unwrap();
    let mut state = State::from_capture(&capture);
    let mut events = capture.events();
    let mut count = 0;
    while let Some(event) = events.next() {
        let event = event.unwrap();
        state.apply(&event);
        count += rules.evaluate(&SyscallEvent::new(&event, &state), |_, _| {});
    }
    Some(count)
}

fn with_rule(extra: &str) -> String {
    format!("{OPEN_FROM_CAT}{extra}")
}

/// The rule with `exceptions` (indented under it) added.
fn rule_with(exceptions: &str) -> String {
    format!(
        "{}  exceptions:\n{exceptions}",
        OPEN_FROM_CAT.trim_end_matches('\n').to_string() + "\n"
    )
}

fn assert_detects(yaml: &str) {
    if let Some(n) = detections(yaml) {
        assert!(n > 0, "no alert where the exception should not apply");
    }
}

fn assert_silent(yaml: &str) {
    if let Some(n) = detections(yaml) {
        assert_eq!(n, 0, "alerts where the exception should apply");
    }
}

// ---- Malformed exceptions: Falco's code, item and message. ----

#[test]
fn no_name_is_a_yaml_error_on_an_unnamed_exception() {
    expect_error(
        &rule_with("    - fields: [proc.name]\n      values: [[cat]]\n"),
        Code::ErrYamlValidate,
        "exception",
        "",
        "Item has no mapping for key 'name'",
    );
}

#[test]
fn appended_exception_without_name_is_the_same_error() {
    expect_error(
        &with_rule("- rule: Open From Cat\n  exceptions:\n    - values: [[cat]]\n  append: true\n"),
        Code::ErrYamlValidate,
        "exception",
        "",
        "Item has no mapping for key 'name'",
    );
}

#[test]
fn no_fields_is_a_yaml_error_on_the_exception() {
    expect_error(
        &rule_with("    - name: ex1\n      values: [[cat]]\n"),
        Code::ErrYamlValidate,
        "exception",
        "ex1",
        "Item has no mapping for key 'fields'",
    );
}

#[test]
fn empty_fields_list_is_a_validation_error() {
    expect_error(
        &rule_with("    - name: ex1\n      fields: []\n"),
        Code::ErrValidate,
        "exception",
        "ex1",
        "Rule exception item must have fields property with a list of fields",
    );
}

#[test]
fn unknown_field_is_named() {
    expect_error(
        &rule_with("    - name: ex1\n      fields: [not.exist]\n"),
        Code::ErrValidate,
        "exception",
        "ex1",
        "'not.exist' is not a supported filter field",
    );
}

#[test]
fn unknown_field_inside_a_transformer_is_named_with_it() {
    expect_error(
        &rule_with("    - name: ex1\n      fields: [tolower(not.exist)]\n      values: [[cat]]\n"),
        Code::ErrValidate,
        "exception",
        "ex1",
        "'tolower(not.exist)' is not a supported filter field",
    );
}

#[test]
fn unknown_single_field_is_named() {
    expect_error(
        &rule_with("    - name: ex1\n      fields: proc.nope\n      values: [cat]\n"),
        Code::ErrValidate,
        "exception",
        "ex1",
        "'proc.nope' is not a supported filter field",
    );
}

#[test]
fn fields_and_comps_of_different_lengths() {
    expect_error(
        &rule_with("    - name: ex1\n      fields: [proc.name, fd.name]\n      comps: [=]\n"),
        Code::ErrValidate,
        "exception",
        "ex1",
        "Fields and comps lists must have equal length",
    );
}

#[test]
fn unknown_comparison_operator() {
    expect_error(
        &rule_with("    - name: ex1\n      fields: [proc.name]\n      comps: [no-comp]\n"),
        Code::ErrValidate,
        "exception",
        "ex1",
        "'no-comp' is not a supported comparison operator",
    );
}

#[test]
fn modifier_on_a_non_string_operator_is_not_an_operator() {
    expect_error(
        &rule_with("    - name: ex1\n      fields: [proc.pid]\n      comps: [\">= oneof\"]\n"),
        Code::ErrValidate,
        "exception",
        "ex1",
        "'>= oneof' is not a supported comparison operator",
    );
}

#[test]
fn fields_and_values_of_different_lengths() {
    expect_error(
        &rule_with(
            "    - name: ex1\n      fields: [proc.name, fd.name]\n      values:\n        - [cat]\n",
        ),
        Code::ErrValidate,
        "exception",
        "ex1",
        "Fields and values lists must have equal length",
    );
}

#[test]
fn appended_values_of_a_different_length() {
    expect_error(
        &with_rule(
            "  exceptions:\n    - name: ex1\n      fields: [proc.name, fd.name]\n\
- rule: Open From Cat\n  exceptions:\n    - name: ex1\n      values:\n        - [cat]\n  append: true\n",
        ),
        Code::ErrValidate,
        "exception",
        "ex1",
        "Fields and values lists must have equal length",
    );
}

#[test]
fn appended_exception_the_rule_does_not_have() {
    expect_error(
        &with_rule(
            "  exceptions:\n    - name: ex1\n      fields: [proc.name]\n\
- rule: Open From Cat\n  exceptions:\n    - name: ex2\n      values:\n        - [cat]\n  append: true\n",
        ),
        Code::ErrValidate,
        "exception",
        "ex2",
        "Rule exception must have fields property with a list of fields",
    );
}

#[test]
fn new_appended_exception_needs_values() {
    expect_error(
        &with_rule(
            "- rule: Open From Cat\n  exceptions:\n    - name: ex2\n      fields: [proc.name]\n  append: true\n",
        ),
        Code::ErrValidate,
        "exception",
        "ex2",
        "Rule exception must have values property with a list of values",
    );
}

#[test]
fn appending_fields_to_an_existing_exception() {
    expect_error(
        &with_rule(
            "  exceptions:\n    - name: ex1\n      fields: [proc.name]\n\
- rule: Open From Cat\n  exceptions:\n    - name: ex1\n      fields: [proc.name]\n      values: [[cat]]\n  append: true\n",
        ),
        Code::ErrValidate,
        "exception",
        "ex1",
        "Can not append exception fields to existing exception, only values",
    );
}

#[test]
fn appending_comps_to_an_existing_exception() {
    expect_error(
        &with_rule(
            "  exceptions:\n    - name: ex1\n      fields: [proc.name]\n\
- rule: Open From Cat\n  exceptions:\n    - name: ex1\n      comps: [=]\n      values: [[cat]]\n  append: true\n",
        ),
        Code::ErrValidate,
        "exception",
        "ex1",
        "Can not append exception comps to existing exception, only values",
    );
}

#[test]
fn single_field_with_a_list_of_comps() {
    expect_error(
        &rule_with("    - name: ex1\n      fields: proc.name\n      comps: [in]\n"),
        Code::ErrValidate,
        "exception",
        "ex1",
        "Fields and comps must both be strings",
    );
}

#[test]
fn single_field_with_an_equality_comp() {
    expect_error(
        &rule_with("    - name: ex1\n      fields: proc.name\n      comps: =\n"),
        Code::ErrValidate,
        "exception",
        "ex1",
        "When fields is a single value, comps must be one of (in, pmatch, intersects) or a modifier operator (e.g. startswith oneof)",
    );
}

#[test]
fn single_field_with_a_list_value() {
    expect_error(
        &rule_with(
            "    - name: ex1\n      fields: proc.name\n      values:\n        - [cat, less]\n",
        ),
        Code::ErrValidate,
        "exception",
        "ex1",
        "Expected values array to contain a list of strings",
    );
}

#[test]
fn exceptions_that_are_not_a_sequence() {
    expect_error(
        &rule_with("    name: ex1\n"),
        Code::ErrYamlValidate,
        "exceptions",
        "",
        "Rule exceptions must be a sequence",
    );
}

#[test]
fn exception_that_is_not_a_mapping() {
    expect_error(
        &rule_with("    - ex1\n"),
        Code::ErrYamlValidate,
        "exception",
        "",
        "Rule exception must be a mapping",
    );
}

#[test]
fn values_that_are_not_a_sequence() {
    expect_error(
        &rule_with("    - name: ex1\n      fields: [proc.name]\n      values: cat\n"),
        Code::ErrYamlValidate,
        "exception values",
        "",
        "Rule exception values must be a sequence",
    );
}

#[test]
fn empty_field_name_must_be_non_empty() {
    expect_error(
        &rule_with("    - name: ex1\n      fields: ''\n"),
        Code::ErrYamlValidate,
        "value for",
        "fields",
        "Value must be non-empty",
    );
}

#[test]
fn exceptions_appended_to_a_missing_rule() {
    expect_error(
        "- rule: Nowhere\n  exceptions:\n    - name: ex1\n      values: [[cat]]\n  append: true\n",
        Code::ErrValidate,
        "rule",
        "Nowhere",
        "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists",
    );
}

#[test]
fn repeated_exception_name_is_warned_about() {
    let loader = load(&rule_with(
        "    - name: ex1\n      fields: [proc.name]\n    - name: ex1\n      fields: [fd.name]\n",
    ));
    assert!(errors(&loader).is_empty());
    let w = warnings(&loader);
    assert!(
        w.iter().any(|w| w.code == Code::ExceptionNameNotUnique
            && w.item_type == "exception"
            && w.item_name == "ex1"
            && w.message == "Multiple definitions of exception 'ex1' in the same rule"),
        "{w:#?}"
    );
}

#[test]
fn appending_an_exception_without_values_is_warned_about() {
    let loader = load(&with_rule(
        "  exceptions:\n    - name: ex1\n      fields: [proc.name]\n\
- rule: Open From Cat\n  exceptions:\n    - name: ex1\n  override:\n    exceptions: append\n",
    ));
    assert!(errors(&loader).is_empty(), "{:#?}", errors(&loader));
    assert!(warnings(&loader)
        .iter()
        .any(|w| w.code == Code::AppendNoValues
            && w.item_name == "ex1"
            && w.message == "Overriding/appending exception with no values"));
}

#[test]
fn comps_are_read_without_surrounding_blanks() {
    let loader = load(&rule_with(
        "    - name: ex1\n      fields: [proc.name]\n      comps: [' in ']\n      values: [[[cat]]]\n",
    ));
    assert!(errors(&loader).is_empty(), "{:#?}", errors(&loader));
}

// ---- Accepted forms on cat_write.scap. ----

#[test]
fn base_rule_detects() {
    assert_detects(OPEN_FROM_CAT);
}

#[test]
fn exception_without_values_excepts_nothing() {
    assert_detects(&rule_with(
        "    - name: proc_name\n      fields: [proc.name]\n",
    ));
}

#[test]
fn one_value_excepts() {
    assert_silent(&rule_with(
        "    - name: proc_name\n      fields: [proc.name]\n      values:\n        - [cat]\n",
    ));
}

#[test]
fn a_value_that_does_not_match_excepts_nothing() {
    assert_detects(&rule_with(
        "    - name: proc_name\n      fields: [proc.name]\n      values:\n        - [not-cat]\n",
    ));
}

#[test]
fn appended_value_excepts() {
    assert_silent(&with_rule(
        "  exceptions:\n    - name: proc_name\n      fields: [proc.name]\n\
- rule: Open From Cat\n  exceptions:\n    - name: proc_name\n      values:\n        - [cat]\n  append: true\n",
    ));
}

#[test]
fn value_appended_by_override_excepts() {
    assert_silent(&with_rule(
        "  exceptions:\n    - name: proc_name\n      fields: [proc.name]\n      values: [[not-cat]]\n\
- rule: Open From Cat\n  exceptions:\n    - name: proc_name\n      values:\n        - [cat]\n  override:\n    exceptions: append\n",
    ));
}

#[test]
fn second_of_several_values_excepts() {
    assert_silent(&rule_with(
        "    - name: proc_name\n      fields: [proc.name]\n      values:\n        - [not-cat]\n        - [cat]\n",
    ));
}

#[test]
fn second_exception_of_several_excepts() {
    assert_silent(&rule_with(
        "    - name: other\n      fields: [proc.name]\n      values: [[not-cat]]\n    - name: proc_cmdline\n      fields: [proc.name, proc.cmdline]\n      values:\n        - [cat, cat /dev/null]\n",
    ));
}

#[test]
fn third_field_of_a_tuple_must_match_too() {
    assert_detects(&rule_with(
        "    - name: three\n      fields: [proc.name, proc.cmdline, proc.pname]\n      values:\n        - [cat, cat /dev/null, not-bash]\n",
    ));
    assert_silent(&rule_with(
        "    - name: three\n      fields: [proc.name, proc.cmdline, proc.pname]\n      values:\n        - [cat, cat /dev/null, bash]\n",
    ));
}

#[test]
fn quoted_value_is_one_string() {
    assert_silent(&rule_with(
        "    - name: proc_name_cmdline\n      fields: [proc.name, proc.cmdline]\n      values:\n        - [not-cat, not-cat]\n        - [cat, '\"cat /dev/null\"']\n",
    ));
}

#[test]
fn value_with_a_space_is_quoted_for_us() {
    assert_silent(&rule_with(
        "    - name: proc_name_cmdline\n      fields: [proc.name, proc.cmdline]\n      values:\n        - [cat, cat /dev/null]\n",
    ));
}

#[test]
fn list_reference_in_parentheses() {
    assert_silent(&format!(
        "- list: cat_cmdlines\n  items: [cat /dev/zero, \"cat /dev/null\"]\n{}",
        rule_with(
            "    - name: proc_name_cmdline\n      fields: [proc.name, proc.cmdline]\n      comps: [=, in]\n      values:\n        - [cat, (cat_cmdlines)]\n"
        )
    ));
}

#[test]
fn list_reference_without_parentheses() {
    assert_silent(&format!(
        "- list: cat_cmdlines\n  items: [cat /dev/zero, \"cat /dev/null\"]\n{}",
        rule_with(
            "    - name: proc_name_cmdline\n      fields: [proc.name, proc.cmdline]\n      comps: [=, in]\n      values:\n        - [cat, cat_cmdlines]\n"
        )
    ));
}

#[test]
fn list_reference_to_other_values_excepts_nothing() {
    assert_detects(&format!(
        "- list: cat_cmdlines\n  items: [cat /dev/zero]\n{}",
        rule_with(
            "    - name: proc_name_cmdline\n      fields: [proc.name, proc.cmdline]\n      comps: [=, in]\n      values:\n        - [cat, (cat_cmdlines)]\n"
        )
    ));
}

#[test]
fn list_value_inside_a_tuple() {
    assert_silent(&rule_with(
        "    - name: proc_name_cmdline\n      fields: [proc.name, proc.cmdline]\n      comps: [=, in]\n      values:\n        - [cat, [cat /dev/zero, cat /dev/null]]\n",
    ));
}

#[test]
fn single_field_with_in() {
    assert_silent(&rule_with(
        "    - name: proc_cmdline\n      fields: proc.cmdline\n      comps: in\n      values:\n        - cat /dev/zero\n        - cat /dev/null\n",
    ));
}

#[test]
fn single_field_defaults_to_in() {
    assert_silent(&rule_with(
        "    - name: proc_name\n      fields: proc.name\n      values: [less, cat]\n",
    ));
}

#[test]
fn single_field_values_appended() {
    assert_silent(&with_rule(
        "  exceptions:\n    - name: proc_cmdline\n      fields: proc.cmdline\n      comps: in\n      values:\n        - cat /dev/zero\n\
- rule: Open From Cat\n  exceptions:\n    - name: proc_cmdline\n      values:\n        - \"cat /dev/null\"\n  append: true\n",
    ));
}

#[test]
fn new_single_field_exception_appended_with_scalar_values() {
    assert_silent(&with_rule(
        "- rule: Open From Cat\n  exceptions:\n    - name: proc_cmdline\n      fields: proc.cmdline\n      comps: in\n      values:\n        - \"cat /dev/null\"\n  append: true\n",
    ));
}

#[test]
fn new_tuple_exception_appended() {
    assert_silent(&with_rule(
        "  exceptions:\n    - name: proc_name\n      fields: [proc.name]\n      values: [[not-cat]]\n\
- rule: Open From Cat\n  exceptions:\n    - name: proc_name_cmdline\n      fields: [proc.name, proc.cmdline]\n      values:\n        - [cat, cat /dev/null]\n  append: true\n",
    ));
}

#[test]
fn single_field_list_name_as_a_value() {
    assert_silent(&format!(
        "- list: cat_names\n  items: [cat, tac]\n{}",
        rule_with("    - name: proc_name\n      fields: proc.name\n      values: [cat_names]\n")
    ));
}

#[test]
fn contains_comp() {
    assert_silent(&rule_with(
        "    - name: proc_name_contains\n      fields: [proc.name]\n      comps: [contains]\n      values:\n        - [at]\n",
    ));
}

#[test]
fn startswith_comp_on_a_command_line() {
    assert_silent(&rule_with(
        "    - name: cmdline_prefix\n      fields: [proc.cmdline]\n      comps: [startswith]\n      values:\n        - [cat /dev]\n",
    ));
}

#[test]
fn pmatch_on_path_prefixes() {
    assert_silent(&rule_with(
        "    - name: dirs\n      fields: proc.cwd\n      comps: pmatch\n      values: [/tmp, /mnt/sf_mstemm]\n",
    ));
    assert_detects(&rule_with(
        "    - name: dirs\n      fields: proc.cwd\n      comps: pmatch\n      values: [/nope]\n",
    ));
}

#[test]
fn tuple_matching_some_events_leaves_the_others() {
    let all = detections(OPEN_FROM_CAT);
    let rest = detections(&rule_with(
        "    - name: dev_null\n      fields: [proc.name, fd.name]\n      values:\n        - [cat, /dev/null]\n",
    ));
    if let (Some(all), Some(rest)) = (all, rest) {
        assert!(rest > 0 && rest < all, "{rest} of {all}");
    }
}

#[test]
fn transformer_in_fields() {
    assert_silent(&rule_with(
        "    - name: upper\n      fields: [toupper(proc.name)]\n      values:\n        - [CAT]\n",
    ));
    assert_detects(&rule_with(
        "    - name: upper\n      fields: [toupper(proc.name)]\n      values:\n        - [cat]\n",
    ));
}

#[test]
fn transformer_in_a_single_field() {
    assert_silent(&rule_with(
        "    - name: base\n      fields: basename(proc.exe)\n      values: [sh, cat]\n",
    ));
}

#[test]
fn replaced_exceptions_no_longer_apply() {
    assert_detects(&with_rule(
        "  exceptions:\n    - name: proc_name\n      fields: [proc.name]\n      values: [[cat]]\n\
- rule: Open From Cat\n  exceptions:\n    - name: other\n      fields: [proc.name]\n      values: [[not-cat]]\n  override:\n    exceptions: replace\n",
    ));
}

#[test]
fn parent_name_exception() {
    assert_silent(&rule_with(
        "    - name: from_bash\n      fields: [proc.pname]\n      values: [[bash]]\n",
    ));
}

#[test]
fn modifier_operator_as_a_comp() {
    assert_silent(&rule_with(
        "    - name: cmdline_prefixes\n      fields: [proc.cmdline]\n      comps: [startswith anyof]\n      values:\n        - [[cat /dev/zero, cat /dev/null]]\n",
    ));
    assert_silent(&rule_with(
        "    - name: cmdline_prefixes\n      fields: proc.cmdline\n      comps: startswith oneof\n      values: [cat /dev/zero, cat /dev/null]\n",
    ));
    assert_detects(&rule_with(
        "    - name: cmdline_prefixes\n      fields: proc.cmdline\n      comps: contains allof\n      values: [cat, zero]\n",
    ));
}

// ---- The condition Falco compiles: `(condition) and not ...` ----

/// The "condition expression" step of the one error `yaml` gives.
fn condition_step(yaml: &str) -> peregrine_engine::rules::Location {
    let errs = errors(&load(yaml));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs[0]
        .locations
        .last()
        .filter(|l| l.item_type == "condition expression")
        .cloned()
        .unwrap_or_else(|| panic!("no condition expression step: {errs:#?}"))
}

#[test]
fn errors_in_a_rule_with_exceptions_point_into_the_wrapped_condition() {
    // Falco's compiler writes `(condition)`, then ` and not ` and each
    // exception's text (a tuple as `(( f = v and  g = w) or (...))`, one
    // field as `(f in (v, w))`), and parses that: the error's column is
    // one further right and the step is named after `(`.
    let bare = "
- rule: Open From Cat
  desc: d
  condition: evt.type=open and proc.nope=cat
  output: o
  priority: WARNING
";
    let wrapped = format!(
        "{bare}  exceptions:
    - name: pair
      fields: [proc.name, proc.pname]
      values: [[cat, bash], [ls, \"my shell\"]]
    - name: names
      fields: proc.name
      comps: in
      values: [sed, awk]
    - name: no_values
      fields: [proc.name]
"
    );
    let plain = condition_step(bare);
    let step = condition_step(&wrapped);
    assert_eq!(plain.name, "\"evt.type=open and...\"");
    assert_eq!(step.name, "\"(evt.type=open an...\"");
    assert_eq!(
        step.condition.as_deref(),
        Some(
            "(evt.type=open and proc.nope=cat) and not (( proc.name = cat and  proc.pname = bash) \
             or ( proc.name = ls and  proc.pname = \"my shell\")) and not (proc.name in (sed, awk))"
        )
    );
    assert_eq!(step.mark.line, plain.mark.line);
    assert_eq!(step.mark.column, plain.mark.column + 1);
}

#[test]
fn a_condition_balanced_only_once_wrapped_loads_and_binds_as_in_falco() {
    // `evt.type=open) or (proc.name=nobody` parses once Falco has put it
    // in parentheses, and `and` binds tighter than `or`: the exception
    // applies to the second branch only, so cat's opens still alert.
    let yaml = "
- rule: Open From Cat
  desc: d
  condition: evt.type=open) or (proc.name=nobody
  output: o
  priority: WARNING
  exceptions:
    - name: cat
      fields: [proc.name]
      values: [[cat]]
";
    assert!(errors(&load(yaml)).is_empty());
    assert_detects(yaml);
    // The same exception on a condition written whole leaves them out.
    assert_silent(&yaml.replace("evt.type=open) or (proc.name=nobody", "evt.type=open"));
}
