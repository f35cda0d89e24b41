//! Output formats: substitution, missing values, lists, errors, alerts.

mod common;

use common::{TestEvent, TestSyscallSource};
use peregrine_engine::field::Value;
use peregrine_engine::output::{iso8601, Alert, OutputFormat};
use peregrine_engine::rules::{Code, RulesLoader};

#[test]
fn substitutes_fields_arguments_and_parenthesised_names() {
    let mut src = TestSyscallSource::new();
    let fmt = OutputFormat::compile(
        "File %fd.name opened by %(proc.name) (parent=%proc.aname[1] pid=%proc.pid). 100% sure",
        &mut src,
    )
    .unwrap();
    let ev = TestEvent::new("open")
        .s("fd.name", "/etc/shadow")
        .s("proc.name", "cat")
        .s("proc.aname[1]", "bash")
        .with("proc.pid", Value::Uint(7));
    assert_eq!(
        fmt.render(&src, &ev),
        "File /etc/shadow opened by cat (parent=bash pid=7). 100% sure"
    );
    assert_eq!(
        fmt.fields(&src, &ev),
        vec![
            ("fd.name".to_string(), Some("/etc/shadow".to_string())),
            ("proc.name".to_string(), Some("cat".to_string())),
            ("proc.aname[1]".to_string(), Some("bash".to_string())),
            ("proc.pid".to_string(), Some("7".to_string())),
        ]
    );
}

#[test]
fn missing_values_render_as_na_and_lists_in_parentheses() {
    let mut src = TestSyscallSource::new();
    let fmt = OutputFormat::compile("cport=%fd.cport types=%fd.types", &mut src).unwrap();
    let ev = TestEvent::new("open")
        .s("fd.types", "file")
        .s("fd.types", "ipv4");
    assert_eq!(fmt.render(&src, &ev), "cport=<NA> types=(file,ipv4)");
    assert_eq!(fmt.fields(&src, &ev)[0], ("fd.cport".to_string(), None));
}

/// `%NUMfield` cuts or pads the value to NUM bytes in the text, as
/// libsinsp's formatter does; the JSON key is the field's own name.
#[test]
fn a_width_before_a_field_cuts_or_pads_its_value() {
    let mut src = TestSyscallSource::new();
    let fmt = OutputFormat::compile(
        "[%8proc.name] [%3fd.name] [%5fd.cport] [%0proc.name] [%2proc.pname]",
        &mut src,
    )
    .unwrap();
    let ev = TestEvent::new("open")
        .s("proc.name", "cat")
        .s("fd.name", "/etc/shadow")
        .s("proc.pname", "bé");
    // "bé" is 3 bytes: cut at 2 would split the é, so its byte is padding.
    assert_eq!(fmt.render(&src, &ev), "[cat     ] [/et] [<NA> ] [cat] [b ]");
    let names: Vec<String> = fmt.fields(&src, &ev).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["proc.name", "fd.name", "fd.cport", "proc.pname"]);
    assert!(OutputFormat::compile("x %12", &mut src)
        .unwrap_err()
        .contains("cannot end with a number"));
    assert!(OutputFormat::compile("x %12 y", &mut src).is_err());
}

#[test]
fn unknown_field_in_output_is_a_compile_error() {
    let mut src = TestSyscallSource::new();
    assert_eq!(
        OutputFormat::compile("x %not_a_real_field y", &mut src).unwrap_err(),
        "not_a_real_field"
    );
    let mut loader = RulesLoader::new();
    loader.load_str("t.yaml", "- rule: r\n  desc: d\n  condition: evt.type=open\n  output: bad %proc.nope\n  priority: INFO\n");
    let rules = loader.compile(TestSyscallSource::new());
    assert!(rules.rules().is_empty());
    let e = &loader.results()[0].errors[0];
    assert_eq!(
        (e.code, e.message.as_str()),
        // Current libsinsp's words: it tries ever shorter prefixes of the
        // token as a field and reports the last, one-letter, try.
        (
            Code::ErrCompileOutput,
            "unknown filter: unexpected token after '"
        )
    );
}

#[test]
fn alert_has_falcos_json_shape() {
    let mut loader = RulesLoader::new();
    loader.load_str(
        "t.yaml",
        "- rule: Open cat\n  desc: d\n  condition: evt.type=open\n  output: open by %proc.name on %fd.cport\n  priority: WARNING\n  tags: [fs, t1]\n",
    );
    let mut rules = loader.compile(TestSyscallSource::new());
    let ev = TestEvent::new("open").s("proc.name", "cat");
    let mut alerts = Vec::new();
    rules.evaluate(&ev, |rule, src| {
        alerts.push(Alert::new(
            rule,
            src,
            &ev,
            1_470_327_477_881_781_397,
            "host1",
        ))
    });
    assert_eq!(alerts.len(), 1);
    let json = alerts[0].to_json();
    assert_eq!(json["rule"], "Open cat");
    assert_eq!(json["priority"], "Warning");
    assert_eq!(json["source"], "syscall");
    assert_eq!(json["hostname"], "host1");
    assert_eq!(json["output"], "open by cat on <NA>");
    assert_eq!(json["tags"], serde_json::json!(["fs", "t1"]));
    assert_eq!(json["time"], "2016-08-04T16:17:57.881781397Z");
    assert_eq!(json["output_fields"]["proc.name"], "cat");
    assert!(json["output_fields"]["fd.cport"].is_null());
    assert_eq!(
        alerts[0].text_line(true),
        "2016-08-04T16:17:57.881781397+0000: Warning open by cat on <NA>"
    );
    assert_eq!(
        alerts[0].text_line(false),
        "16:17:57.881781397: Warning open by cat on <NA>"
    );
}

#[test]
fn iso8601_formats_dates() {
    assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000000Z");
    assert_eq!(
        iso8601(951_782_400_000_000_001),
        "2000-02-29T00:00:00.000000001Z"
    );
}
