//! "Try a condition": a condition typed in the console, compiled as a
//! rule's would be (with the loaded macros and lists), evaluated over the
//! events kept in memory (`recent.rs`). Read-only: it compiles its own
//! filter and replays copies; the running rules and state are untouched.
//!
//! Bounded: the condition's length, one try at a time, [`TIME_BUDGET`] of
//! CPU, at most [`MAX_SHOWN`] matches listed.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use peregrine_engine::output::OutputFormat;
use peregrine_engine::rules::expand::{expanded_lists, ExpandedLists, ParsedMacros};
use peregrine_engine::rules::Filter;
use peregrine_engine::state::State;
use peregrine_engine::syscall_fields::{SyscallEvent, SyscallFields};
use serde_json::{json, Value as Json};

use super::recent::Recent;
use crate::ruleset::Ruleset;

/// Longest condition tried, in bytes.
pub const MAX_CONDITION: usize = 16 * 1024;
/// Matches listed; the rest are counted.
pub const MAX_SHOWN: usize = 100;
/// CPU a try may take; events past it are left untried, and the answer
/// says how many were tried.
pub const TIME_BUDGET: Duration = Duration::from_millis(500);

/// The fields shown for each match.
const SHOWN_FIELDS: [&str; 8] = [
    "evt.time",
    "evt.type",
    "proc.name",
    "proc.pid",
    "proc.cmdline",
    "fd.name",
    "user.name",
    "container.id",
];

/// What the loaded rules give a try: their macros, parsed, their lists,
/// expanded, and their syscall source's settings.
struct Loaded {
    macros: Arc<ParsedMacros>,
    lists: ExpandedLists,
    source: SyscallFields,
}

fn loaded() -> &'static Mutex<Option<Arc<Loaded>>> {
    static LOADED: OnceLock<Mutex<Option<Arc<Loaded>>>> = OnceLock::new();
    LOADED.get_or_init(Mutex::default)
}

/// Keeps what a try needs of the rules loaded now (at start and at each
/// reload).
pub fn set_rules(ruleset: &Ruleset) {
    // The load parsed and checked the macros already: they are shared.
    let next = Arc::new(Loaded {
        macros: Arc::clone(&ruleset.macros),
        lists: expanded_lists(&ruleset.definitions),
        source: ruleset.syscall.source().clone(),
    });
    *loaded().lock().unwrap_or_else(|p| p.into_inner()) = Some(next);
}

/// Lets go of the rules kept for tries: the run is over, and their
/// field source holds the plugins that extract from syscall events.
pub fn forget_rules() {
    loaded().lock().unwrap_or_else(|p| p.into_inner()).take();
}

/// The answer to one try, as the console shows it.
pub fn try_condition(condition: &str) -> Json {
    static RUNNING: Mutex<()> = Mutex::new(());
    let condition = condition.trim();
    if condition.is_empty() {
        return json!({"error": {"code": "", "message": "type a condition"}});
    }
    if condition.len() > MAX_CONDITION {
        return json!({"error": {"code": "", "message": format!(
            "the condition is longer than the {MAX_CONDITION} bytes the console tries")}});
    }
    let Ok(_one_at_a_time) = RUNNING.try_lock() else {
        return json!({"error": {"code": "", "message":
            "another condition is being tried; try again in a moment"}});
    };
    let Some(loaded) = loaded().lock().unwrap_or_else(|p| p.into_inner()).clone() else {
        return json!({"error": {"code": "", "message": "no rules are loaded yet"}});
    };
    let mut filter = match Filter::with_macros(
        condition,
        &loaded.macros,
        &loaded.lists,
        loaded.source.clone(),
    ) {
        Ok(filter) => filter,
        Err(e) => {
            return json!({"error": {
                "code": e.code.as_str(),
                "title": e.code.title(),
                "message": e.message,
                "text": e.to_string(),
            }})
        }
    };
    let mut display_source = loaded.source.clone();
    let shown: Vec<(&str, OutputFormat)> = SHOWN_FIELDS
        .iter()
        .filter_map(|f| {
            OutputFormat::compile(&format!("%{f}"), &mut display_source)
                .ok()
                .map(|o| (*f, o))
        })
        .collect();

    let kept = Recent::global().kept();
    let started = Instant::now();
    let (mut tried, mut matched, mut out_of_time) = (0usize, 0usize, false);
    let mut matches = Vec::new();
    let total: usize = kept.segments.iter().map(|s| s.len()).sum();
    'segments: for segment in &kept.segments {
        let mut state: State = (*segment.start).clone();
        for event in segment.events() {
            if tried % 256 == 0 && started.elapsed() > TIME_BUDGET {
                out_of_time = true;
                break 'segments;
            }
            state.apply(&event);
            tried += 1;
            let input = SyscallEvent::new(&event, &state);
            if !filter.matches(&input) {
                continue;
            }
            matched += 1;
            if matches.len() < MAX_SHOWN {
                let fields: serde_json::Map<String, Json> = shown
                    .iter()
                    .map(|(name, format)| {
                        (
                            name.to_string(),
                            Json::String(format.render(&display_source, &input)),
                        )
                    })
                    .collect();
                matches.push(Json::Object(fields));
            }
        }
    }
    // Newest first, as the alert list.
    matches.reverse();
    json!({
        "condition": condition,
        "kept": total,
        "tried": tried,
        "matched": matched,
        "shown": matches.len(),
        "out_of_time": out_of_time,
        "millis": started.elapsed().as_millis() as u64,
        "fields": SHOWN_FIELDS,
        "matches": matches,
        "note": kept.refused,
    })
}
