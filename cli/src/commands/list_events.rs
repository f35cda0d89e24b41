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

fn param_text(param: &ParamInfo) -> String {
    let ty = param.param_type();
    let mut text = format!("{} **{}**", type_name(ty), param.name);
    if let (true, Some(names)) = (is_flag_type(ty), param.names) {
        text.push_str(": ");
        let names: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
        text.push_str(&names.join(", "));
    }
    text
}

fn line(out: &mut String, event_type: u16, name: &str, info: &EventInfo) {
    let params: Vec<String> = info.params.iter().map(param_text).collect();
    let _ = writeln!(
        out,
        "{} {name}({})",
        Direction::of_type(event_type).symbol(),
        params.join(", ")
    );
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

/// The listing, for a driver schema named `schema`.
pub fn render(schema: &str) -> String {
    let mut syscalls = String::new();
    let mut tracepoints = String::new();
    let mut plugins = String::new();
    let mut meta = String::new();
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
        line(out, event_type, info.name, info);
    }
    for name in generic_names(&event_names) {
        for (event_type, info) in &generic {
            line(&mut syscalls, *event_type, name, info);
        }
    }
    let mut text = format!("The events below are valid for Falco *Schema Version*: {schema}\n");
    for (title, body) in [
        ("Syscall events", syscalls),
        ("Tracepoint events", tracepoints),
        ("Plugin events", plugins),
        ("Metaevents", meta),
    ] {
        let _ = write!(text, "## {title}\n\n{body}\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_print_by_category_with_typed_parameters_and_flag_names() {
        let text = render("2.0.0");
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
