//! I/O buffers in rule outputs, as Falco master prints them (checked with
//! Falco built from source on the kit's captures, text and JSON, with and
//! without `buffer_format_base64`): a byte that is not printable ASCII
//! is a dot; in base64, `evt.arg.data` and `evt.args` show the bytes
//! encoded, and `evt.buffer` the encoded text encoded again (libsinsp
//! renders it twice). Conditions keep their own forms: `evt.arg.data`
//! compares the dotted text in either format, `evt.buffer` the bytes,
//! `evt.args` the text in the configured format.

use peregrine_engine::event::EventView;
use peregrine_engine::rules::{CompiledRules, RulesLoader};
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};

mod raw_events;
use raw_events::{event, i64b, u64b};

const WRITE_X: u16 = 9;

fn rules(base64: bool, condition: &str, output: &str) -> CompiledRules<SyscallFields> {
    let text = format!(
        "- rule: io\n  desc: d\n  condition: {condition}\n  output: \"{output}\"\n  priority: INFO\n"
    );
    let mut loader = RulesLoader::new();
    loader.set_buffer_format_base64(base64);
    loader.load_str("io.yaml", &text);
    let rules = loader.compile(SyscallFields::new());
    let errors: Vec<_> = loader.errors().collect();
    assert!(errors.is_empty(), "{errors:#?}");
    rules
}

/// write(3, `data`) = its length.
fn write(data: &[u8]) -> Vec<u8> {
    event(
        WRITE_X,
        1,
        100,
        &[
            ("res", i64b(data.len() as i64)),
            ("data", data.to_vec()),
            ("fd", i64b(3)),
            ("size", u64b(data.len() as u64)),
        ],
    )
}

/// A JSON alert's `output_fields`: names and rendered values.
type OutputFields = Vec<(String, Option<String>)>;

/// The outputs the rules give for one event, and its JSON output fields.
fn outputs(rules: &mut CompiledRules<SyscallFields>, raw: &[u8]) -> Vec<(String, OutputFields)> {
    let state = State::new();
    let view = EventView::parse(raw).unwrap();
    let input = SyscallEvent::new(&view, &state);
    let mut alerts = Vec::new();
    rules.evaluate(&input, |rule, source| {
        alerts.push((
            rule.output.render(source, &input),
            rule.output.fields(source, &input),
        ))
    });
    alerts
}

const ALL: &str = "buf=%evt.buffer arg=%evt.arg.data idx=%evt.arg[1] args=%evt.args";

#[test]
fn buffers_show_non_printable_bytes_as_dots() {
    let mut rules = rules(false, "evt.type = write", ALL);
    let got = outputs(&mut rules, &write(b"this is a test\n\x7fELF\x00\xff"));
    assert_eq!(
        got[0].0,
        "buf=this is a test..ELF.. arg=this is a test..ELF.. idx=this is a test..ELF.. \
         args=res=21 data=this is a test..ELF.. fd=3 size=21"
    );
    let fields = &got[0].1;
    let field = |name: &str| fields.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(
        field("evt.buffer").as_deref(),
        Some("this is a test..ELF..")
    );
    assert_eq!(
        field("evt.arg.data").as_deref(),
        Some("this is a test..ELF..")
    );
}

#[test]
fn base64_encodes_arguments_once_and_evt_buffer_twice() {
    let mut rules = rules(true, "evt.type = write", ALL);
    let got = outputs(&mut rules, &write(b"this is a test\n"));
    // base64("this is a test\n") = dGhpcyBpcyBhIHRlc3QK, and that text
    // encoded again is ZEdocGN5QnBjeUJoSUhSbGMzUUs=, as Falco prints.
    assert_eq!(
        got[0].0,
        "buf=ZEdocGN5QnBjeUJoSUhSbGMzUUs= arg=dGhpcyBpcyBhIHRlc3QK idx=dGhpcyBpcyBhIHRlc3QK \
         args=res=15 data=dGhpcyBpcyBhIHRlc3QK fd=3 size=15"
    );
}

#[test]
fn an_empty_buffer_shows_null() {
    // libsinsp writes NULL for an empty buffer; its evt.buffer then shows
    // the stale length of the last buffer it rendered (NULL, a NUL as a
    // dot, and the rest of that buffer), which is not reproduced.
    let mut rules = rules(false, "evt.type = write", ALL);
    let got = outputs(&mut rules, &write(b""));
    assert_eq!(
        got[0].0,
        "buf=NULL arg=NULL idx=NULL args=res=0 data=NULL fd=3 size=0"
    );
}

#[test]
fn conditions_compare_their_own_forms() {
    let event = write(b"this is a test\n");
    for (base64, condition, fires) in [
        (false, "evt.arg.data = 'this is a test.'", true),
        (true, "evt.arg.data = 'this is a test.'", true),
        (false, "evt.buffer contains 'test\\n'", true),
        (false, "evt.buffer bcontains 746573740a", true),
        (true, "evt.buffer bcontains 746573740a", true),
        (false, "evt.args contains 'data=this is'", true),
        (true, "evt.args contains 'data=dGhp'", true),
        (true, "evt.args contains 'data=this is'", false),
    ] {
        let mut rules = rules(base64, &format!("evt.type = write and {condition}"), "x");
        assert_eq!(
            !outputs(&mut rules, &event).is_empty(),
            fires,
            "{condition} (base64 {base64})"
        );
    }
}
