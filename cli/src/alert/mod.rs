//! An alert as the outputs see it, and its two renderings: Falco's text
//! line and Falco's JSON object (the shape Falcosidekick accepts).

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Local, Utc};

mod json;
use json::render_json;

pub use peregrine_engine::output::Alert;
pub use peregrine_engine::rules::Priority;

/// The name of the periodic stats alert; Falco's, so dashboards built for
/// Falco's metrics alerts pick it up.
pub const STATS_RULE: &str = "Falco internal: metrics snapshot";

/// Parses a priority name as rules and configs spell it.
pub fn parse_priority(text: &str) -> Option<Priority> {
    text.parse().ok()
}

/// How alerts are rendered, from the `json_*` and `time_format_iso_8601`
/// config keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    pub json_output: bool,
    pub json_include_output_property: bool,
    pub json_include_tags_property: bool,
    pub json_include_message_property: bool,
    pub json_include_output_fields_property: bool,
    pub time_format_iso_8601: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            json_output: false,
            json_include_output_property: true,
            json_include_tags_property: true,
            json_include_message_property: false,
            json_include_output_fields_property: true,
            time_format_iso_8601: false,
        }
    }
}

/// An alert rendered once and shared by every channel.
#[derive(Debug, Clone)]
pub struct RenderedAlert {
    pub alert: Alert,
    /// What text channels write: the JSON object when `json_output` is on,
    /// otherwise Falco's `time: Priority output` line. No newline.
    pub line: String,
    /// The JSON object, always available: HTTP and gRPC send it whatever
    /// `json_output` says.
    pub json: String,
}

pub type SharedAlert = Arc<RenderedAlert>;

pub fn render(alert: Alert, options: &RenderOptions) -> RenderedAlert {
    let json = render_json(&alert, options);
    let line = if options.json_output {
        json.clone()
    } else {
        render_text(&alert, options)
    };
    RenderedAlert { alert, line, json }
}

/// Falco's `evt.time.iso8601`: UTC, nanoseconds, numeric offset.
const ISO_8601: &str = "%Y-%m-%dT%H:%M:%S%.9f%z";

pub(crate) fn event_time(time_ns: u64) -> DateTime<Utc> {
    let secs = (time_ns / 1_000_000_000) as i64;
    let nanos = (time_ns % 1_000_000_000) as u32;
    DateTime::from_timestamp(secs, nanos).unwrap_or_default()
}

/// `19:38:41.152365823: Warning output`, in local time as Falco prints it,
/// or with an ISO 8601 UTC timestamp when configured. A rule's alert is
/// escaped as Falco's engine 0.63 does (quotes, backslashes and control
/// characters as in a JSON string), so a crafted file name cannot forge a
/// second alert line or send escape sequences to a terminal. Internal
/// alerts (drops, stats) are written by Peregrine and kept as they are.
pub(crate) fn render_text(alert: &Alert, options: &RenderOptions) -> String {
    let line = render_text_raw(alert, options);
    if alert.source == "internal" {
        return line;
    }
    match peregrine_engine::text::escape_line(&line) {
        std::borrow::Cow::Borrowed(_) => line,
        std::borrow::Cow::Owned(escaped) => escaped,
    }
}

/// The text line before escaping: JSON's `output`.
pub(crate) fn render_text_raw(alert: &Alert, options: &RenderOptions) -> String {
    let time = event_time(alert.time_ns);
    let mut line = String::with_capacity(alert.output.len() + 48);
    if options.time_format_iso_8601 {
        let _ = write!(line, "{}", time.format(ISO_8601));
    } else {
        let local: DateTime<Local> = time.into();
        let _ = write!(line, "{}", local.format("%H:%M:%S%.9f"));
    }
    let _ = write!(line, ": {} {}", alert.priority.as_str(), alert.output);
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as Json;

    fn sample() -> Alert {
        Alert {
            time_ns: 1_700_000_000_123_456_789,
            rule: "Write below etc".into(),
            priority: Priority::Error,
            source: "syscall".into(),
            tags: vec!["filesystem".into(), "T1565".into()],
            hostname: "box".into(),
            output: "File below /etc opened for writing (file=/etc/x)".into(),
            output_fields: vec![
                ("fd.name".into(), Some("/etc/x".into())),
                ("proc.pid".into(), Some("42".into())),
                ("user.name".into(), None),
            ],
        }
    }

    #[test]
    fn json_has_falcosidekick_shape() {
        let rendered = render(sample(), &RenderOptions::default());
        let v: Json = serde_json::from_str(&rendered.json).unwrap();
        assert_eq!(v["rule"], "Write below etc");
        assert_eq!(v["priority"], "Error");
        assert_eq!(v["source"], "syscall");
        assert_eq!(v["hostname"], "box");
        assert_eq!(v["time"], "2023-11-14T22:13:20.123456789Z");
        // An integer field is a number, as in Falco's JSON.
        assert_eq!(v["output_fields"]["proc.pid"], 42);
        assert_eq!(v["output_fields"]["user.name"], Json::Null);
        // Tags sorted, as Falco's set of tags.
        assert_eq!(v["tags"][0], "T1565");
        // The whole line, as Falco's JSON, and the time field it starts with.
        assert_eq!(
            v["output"].as_str().unwrap(),
            render_text(&sample(), &RenderOptions::default())
        );
        assert!(v["output"]
            .as_str()
            .unwrap()
            .ends_with(": Error File below /etc opened for writing (file=/etc/x)"));
        assert_eq!(v["output_fields"]["evt.time"], 1_700_000_000_123_456_789u64);
        let iso = RenderOptions {
            time_format_iso_8601: true,
            ..RenderOptions::default()
        };
        let v: Json = serde_json::from_str(&render(sample(), &iso).json).unwrap();
        assert_eq!(
            v["output_fields"]["evt.time.iso8601"],
            1_700_000_000_123_456_789u64
        );
        assert!(v["output"]
            .as_str()
            .unwrap()
            .starts_with("2023-11-14T22:13:20.123456789+0000: Error "));
        // Internal alerts: the message alone.
        let internal = Alert {
            source: "internal".into(),
            ..sample()
        };
        let v: Json =
            serde_json::from_str(&render(internal, &RenderOptions::default()).json).unwrap();
        assert_eq!(
            v["output"],
            "File below /etc opened for writing (file=/etc/x)"
        );
        assert!(v["output_fields"].get("evt.time").is_none());
    }

    /// Byte for byte what Falco (0.40 and later) writes for this alert:
    /// keys sorted, no spaces, typed output fields.
    #[test]
    fn json_is_byte_for_byte_falcos() {
        let alert = Alert {
            time_ns: 1_470_327_477_881_781_397,
            rule: "open_from_cat".into(),
            priority: Priority::Warning,
            source: "syscall".into(),
            tags: vec!["testing".into(), "filesystem".into(), "process".into()],
            hostname: "test-falco-hostname".into(),
            output: "An open was seen (command=cat /dev/null fd=3 ok=true)".into(),
            output_fields: vec![
                ("proc.cmdline".into(), Some("cat /dev/null".into())),
                ("fd.num".into(), Some("3".into())),
                ("evt.failed".into(), Some("false".into())),
                ("proc.aname[2]".into(), None),
            ],
        };
        let options = RenderOptions {
            json_output: true,
            time_format_iso_8601: true,
            json_include_message_property: true,
            ..RenderOptions::default()
        };
        assert_eq!(
            render(alert.clone(), &options).line,
            concat!(
                r#"{"hostname":"test-falco-hostname","#,
                r#""message":"An open was seen (command=cat /dev/null fd=3 ok=true)","#,
                r#""output":"2016-08-04T16:17:57.881781397+0000: Warning An open was seen (command=cat /dev/null fd=3 ok=true)","#,
                r#""output_fields":{"evt.failed":false,"evt.time.iso8601":1470327477881781397,"fd.num":3,"proc.aname[2]":null,"proc.cmdline":"cat /dev/null"},"#,
                r#""priority":"Warning","rule":"open_from_cat","source":"syscall","#,
                r#""tags":["filesystem","process","testing"],"time":"2016-08-04T16:17:57.881781397Z"}"#
            )
        );
        let without_fields = RenderOptions {
            json_include_output_fields_property: false,
            ..options
        };
        let v: Json = serde_json::from_str(&render(alert, &without_fields).line).unwrap();
        assert!(v.get("output_fields").is_none());
        assert_eq!(v["rule"], "open_from_cat");
    }

    #[test]
    fn json_properties_can_be_left_out() {
        let options = RenderOptions {
            json_output: true,
            json_include_output_property: false,
            json_include_tags_property: false,
            ..RenderOptions::default()
        };
        let rendered = render(sample(), &options);
        let v: Json = serde_json::from_str(&rendered.line).unwrap();
        assert!(v.get("output").is_none());
        assert!(v.get("tags").is_none());
        assert_eq!(v["rule"], "Write below etc");
    }

    #[test]
    fn text_line_is_time_priority_output() {
        let options = RenderOptions {
            time_format_iso_8601: true,
            ..RenderOptions::default()
        };
        let rendered = render(sample(), &options);
        assert_eq!(
            rendered.line,
            "2023-11-14T22:13:20.123456789+0000: Error File below /etc opened for writing (file=/etc/x)"
        );
        let plain = render(sample(), &RenderOptions::default());
        let (time, rest) = plain.line.split_once(": ").unwrap();
        assert_eq!(time.len(), "22:13:20.123456789".len());
        assert!(time.ends_with(".123456789"));
        assert_eq!(
            rest,
            "Error File below /etc opened for writing (file=/etc/x)"
        );
    }

    #[test]
    fn priorities_parse_case_insensitively_and_map_to_syslog() {
        assert_eq!(parse_priority("WARNING"), Some(Priority::Warning));
        assert_eq!(parse_priority("info"), Some(Priority::Informational));
        assert_eq!(parse_priority("loud"), None);
        assert!(Priority::Emergency < Priority::Debug);
    }
}
