//! `--list-events`: the events the schema defines, as Falco prints them
//! (userspace/falco/app/actions/print_syscall_events.cpp): by category,
//! `> name(TYPE **param**, ...)` per direction, flag parameters with
//! their flag names; old versions, unused and unknown events left out,
//! and the system calls without an event of their own listed under the
//! generic event's two directions.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use peregrine_engine::event::table::{all_event_types, flags, syscall_name, Direction};
use peregrine_engine::event::{EventInfo, ParamInfo, ParamType};
use serde_json::{json, Value};

use super::list_format::ListFormat;

/// libscap's category bits that sort events.
const EC_SYSCALL: u32 = 1 << 9;
const EC_TRACEPOINT: u32 = 1 << 10;
const EC_PLUGIN: u32 = 1 << 11;
const EC_METAEVENT: u32 = 1 << 12;

/// libsinsp's name of a parameter type: the `PT_` name without `PT_`.
fn type_name(ty: ParamType) -> String {
    match ty {
        ParamType::Dyn => "DYNAMIC".into(),
        ParamType::CharBufPairArray => "CHARBUF_PAIR_ARRAY".into(),
        ParamType::Unknown(_) => "<NA>".into(),
        other => format!("{other:?}").to_ascii_uppercase(),
    }
}

fn is_flag_type(ty: ParamType) -> bool {
    matches!(
        ty,
        ParamType::Flags8
            | ParamType::Flags16
            | ParamType::Flags32
            | ParamType::Enumflags8
            | ParamType::Enumflags16
            | ParamType::Enumflags32
    )
}

fn param_text(param: &ParamInfo, format: ListFormat) -> String {
    let ty = param.param_type();
    let mut text = format!("{} **{}**", type_name(ty), param.name);
    if let (true, Some(names)) = (is_flag_type(ty), param.names) {
        text.push_str(": ");
        let names: Vec<String> = names
            .iter()
            .map(|(name, _)| match format {
                ListFormat::Markdown => format!("*{name}*"),
                _ => name.to_string(),
            })
            .collect();
        text.push_str(&names.join(", "));
    }
    text
}

fn param_json(param: &ParamInfo) -> Value {
    let ty = param.param_type();
    let mut out = json!({ "type": type_name(ty), "name": param.name });
    if let (true, Some(names)) = (is_flag_type(ty), param.names) {
        let names: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
        out["flags"] = json!(names);
    }
    out
}

/// One line of the listing.
struct Entry {
    event_type: u16,
    name: &'static str,
    info: &'static EventInfo,
    /// Falco's "Default" column: whether the event is captured without
    /// `-A`. Falco drops the read and write floods that do not change its
    /// state even when a rule names them; Peregrine captures every event
    /// an enabled rule names, so each is available.
    available: bool,
}

/// The system calls that have no event of their own, which the generic
/// event stands for.
fn generic_names(event_names: &BTreeSet<&str>) -> BTreeSet<&'static str> {
    (0u64..)
        .map_while(|code| {
            if code > u64::from(u16::MAX) {
                None
            } else {
                Some(syscall_name(code))
            }
        })
        .take(4096)
        .flatten()
        .filter(|name| *name != "unknown" && !event_names.contains(name))
        .collect()
}

/// The categories of the listing, in Falco's order, with their events.
fn categories() -> Vec<(&'static str, Vec<Entry>)> {
    let mut syscalls = Vec::new();
    let mut tracepoints = Vec::new();
    let mut plugins = Vec::new();
    let mut meta = Vec::new();
    let mut generic = Vec::new();
    let mut event_names = BTreeSet::new();
    for (event_type, info) in all_event_types() {
        // Falco adds both directions of the generic event whatever their
        // flags, once per system call it stands for.
        if info.name == "syscall" {
            if generic.len() < 2 {
                generic.push((event_type, info));
            }
            continue;
        }
        let skipped = info.flags & (flags::OLD_VERSION | flags::UNUSED) != 0
            || info.category == 0
            || info.name == "NA";
        if skipped {
            continue;
        }
        event_names.insert(info.name);
        let out = if info.category & EC_SYSCALL != 0 {
            &mut syscalls
        } else if info.category & EC_TRACEPOINT != 0 {
            &mut tracepoints
        } else if info.category & EC_PLUGIN != 0 {
            &mut plugins
        } else if info.category & EC_METAEVENT != 0 {
            &mut meta
        } else {
            continue;
        };
        out.push(Entry {
            event_type,
            name: info.name,
            info,
            available: true,
        });
    }
    for name in generic_names(&event_names) {
        for (event_type, info) in &generic {
            syscalls.push(Entry {
                event_type: *event_type,
                name,
                info,
                available: true,
            });
        }
    }
    vec![
        ("Syscall events", syscalls),
        ("Tracepoint events", tracepoints),
        ("Plugin events", plugins),
        ("Metaevents", meta),
    ]
}

/// The listing, for a driver schema named `schema`, in one of Falco's
/// `--format`s.
pub fn render(schema: &str, format: ListFormat) -> Result<String, String> {
    let categories = categories();
    if format == ListFormat::Json {
        let mut root = json!({ "schema_version": schema });
        for (title, entries) in &categories {
            let events: Vec<Value> = entries
                .iter()
                .map(|e| {
                    json!({
                        "name": e.name,
                        "dir": Direction::of_type(e.event_type).symbol(),
                        "available": e.available,
                        "params": e.info.params.iter().map(param_json).collect::<Vec<_>>(),
                    })
                })
                .collect();
            root[*title] = Value::Array(events);
        }
        let mut text = serde_json::to_string_pretty(&root).map_err(|e| e.to_string())?;
        text.push('\n');
        return Ok(text);
    }
    let mut text = format!("The events below are valid for Falco *Schema Version*: {schema}\n");
    for (title, entries) in &categories {
        let _ = write!(text, "## {title}\n\n");
        if format == ListFormat::Markdown {
            text.push_str("Default | Dir | Name | Params \n:-------|:----|:-----|:-----\n");
        }
        for e in entries {
            let params: Vec<String> = e
                .info
                .params
                .iter()
                .map(|p| param_text(p, format))
                .collect();
            let dir = Direction::of_type(e.event_type).symbol();
            let _ = match format {
                ListFormat::Markdown => writeln!(
                    text,
                    "{} | `{dir}` | `{}` | {}",
                    if e.available { "Yes" } else { "No" },
                    e.name,
                    params.join(", ")
                ),
                _ => writeln!(text, "{dir} {}({})", e.name, params.join(", ")),
            };
        }
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_print_by_category_with_typed_parameters_and_flag_names() {
        let text = render("2.0.0", ListFormat::Text).unwrap();
        assert!(text.starts_with(
            "The events below are valid for Falco *Schema Version*: 2.0.0\n## Syscall events\n\n"
        ));
        let section = |title: &str| {
            let start = text.find(&format!("## {title}\n")).unwrap();
            let rest = &text[start + title.len() + 4..];
            rest[..rest.find("\n## ").unwrap_or(rest.len())].to_string()
        };
        let syscalls = section("Syscall events");
        assert!(
            syscalls
                .contains("\n< open(FD **fd**, FSPATH **name**, FLAGS32 **flags**: O_LARGEFILE"),
            "{syscalls}"
        );
        assert!(
            syscalls.contains("\n< execve(ERRNO **res**, CHARBUF **exe**"),
            "{syscalls}"
        );
        // Enter events of old versions are left out, as Falco leaves them.
        assert!(!syscalls.contains("> execve("));
        // A system call with no event of its own, under the generic event.
        assert!(
            syscalls.contains("> syncfs(") || syscalls.contains("> getcpu("),
            "{syscalls}"
        );
        assert!(!syscalls.contains("> syscall("));
        let tracepoints = section("Tracepoint events");
        assert!(tracepoints.contains("> procexit("), "{tracepoints}");
        assert!(section("Plugin events").contains("pluginevent("));
        assert!(section("Metaevents").contains("container("));
    }
}
