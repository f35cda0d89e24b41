//! The rules' view of a plugin event source: the `evt.*` fields Falco
//! gives every plugin event, and the fields of each loaded plugin that
//! extracts from this source, resolved once when rules compile and asked of
//! the plugin per event.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use falco_plugin_api as api;
use peregrine_engine::field::{
    FieldError, FieldInfo as EngineFieldInfo, FieldSource, FieldType, ResolvedField, StaticFields,
    Value,
};

use super::plugin::FieldRequest;
use super::{Plugin, PluginEvent, PluginInfo};

/// A plugin shared by the loops and field sources that use it; each call
/// takes the lock, as the API allows one caller at a time per plugin.
pub type SharedPlugin = Arc<Mutex<Plugin>>;

/// The `evt.*` fields of plugin events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventField {
    Num,
    Ts,
    TsS,
    TsNs,
    RelTs,
    RelTsS,
    RelTsNs,
    Time,
    TimeS,
    TimeIso8601,
    Datetime,
    DatetimeS,
    Source,
    PluginName,
    PluginInfo,
    IsAsync,
    AsyncType,
    Hostname,
}

/// libsinsp's generic event fields, which every event source has.
const EVENT_FIELDS: &[(&str, EventField, FieldType)] = &[
    ("evt.num", EventField::Num, FieldType::Uint),
    ("evt.ts", EventField::Ts, FieldType::Uint),
    ("evt.time", EventField::Time, FieldType::String),
    ("evt.time.s", EventField::TimeS, FieldType::String),
    (
        "evt.time.iso8601",
        EventField::TimeIso8601,
        FieldType::String,
    ),
    ("evt.datetime", EventField::Datetime, FieldType::String),
    ("evt.datetime.s", EventField::DatetimeS, FieldType::String),
    ("evt.rawtime", EventField::Ts, FieldType::Uint),
    ("evt.rawtime.s", EventField::TsS, FieldType::Uint),
    ("evt.rawtime.ns", EventField::TsNs, FieldType::Uint),
    ("evt.reltime", EventField::RelTs, FieldType::Uint),
    ("evt.reltime.s", EventField::RelTsS, FieldType::Uint),
    ("evt.reltime.ns", EventField::RelTsNs, FieldType::Uint),
    ("evt.source", EventField::Source, FieldType::String),
    ("evt.pluginname", EventField::PluginName, FieldType::String),
    ("evt.plugininfo", EventField::PluginInfo, FieldType::String),
    ("evt.is_async", EventField::IsAsync, FieldType::Bool),
    ("evt.asynctype", EventField::AsyncType, FieldType::String),
    ("evt.hostname", EventField::Hostname, FieldType::String),
];

const NS_PER_SEC: u64 = 1_000_000_000;

/// The names of the `evt.*` fields every plugin event has.
pub(super) fn event_field_names() -> impl Iterator<Item = &'static str> {
    EVENT_FIELDS.iter().map(|(name, _, _)| *name)
}

#[derive(Debug, Clone)]
enum Resolved {
    Event(EventField),
    Plugin {
        extractor: usize,
        request: FieldRequest,
    },
}

/// Source and field names live as long as the process: the engine's
/// sources name themselves and their fields with `&'static str`; plugins
/// are few and reloaded rarely, so each distinct text is leaked once.
pub(super) fn interned(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let names = NAMES.get_or_init(Default::default);
    let mut names = names
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(found) = names.get(name) {
        return found;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// The [`FieldSource`] of one plugin event source.
pub struct PluginFields {
    source: &'static str,
    c_source: CString,
    /// The plugin that sources these events (for `evt.pluginname`,
    /// `evt.plugininfo`).
    source_plugin: Option<SharedPlugin>,
    source_plugin_name: String,
    /// The plugins whose fields apply here, in load order: the first that
    /// defines a name wins, as in Falco.
    extractors: Vec<SharedPlugin>,
    /// Per extractor, the event types its fields have values on (None:
    /// all): a plugin is asked only about events of those types, as in
    /// Falco, so an async event goes to the extractors that list 402.
    types: Vec<Option<HashSet<u16>>>,
    resolved: Vec<Resolved>,
    errors: AtomicU64,
    /// The time of the stream's first event (`evt.reltime`), 0 until then.
    first_ts: AtomicU64,
    /// The machine's name (`evt.hostname`), as libscap reads it.
    hostname: String,
    /// For `--list`: the `evt.*` fields and every extractor's.
    listed: Vec<EngineFieldInfo>,
    /// Falco's `static_fields`.
    static_fields: StaticFields,
}

impl PluginFields {
    /// The fields of `source`, sourced by `source_plugin` and extracted by
    /// those of `plugins` whose extraction applies to it.
    pub fn new(
        source: &str,
        source_plugin: Option<SharedPlugin>,
        plugins: &[SharedPlugin],
    ) -> PluginFields {
        let extractors: Vec<SharedPlugin> = plugins
            .iter()
            .filter(|p| lock(p).info().extracts_from(source))
            .cloned()
            .collect();
        let mut listed: Vec<EngineFieldInfo> = EVENT_FIELDS
            .iter()
            .map(|&(name, _, ty)| EngineFieldInfo {
                name,
                ty,
                arg: None,
                description: "",
            })
            .collect();
        for plugin in &extractors {
            for field in &lock(plugin).info().fields {
                listed.push(EngineFieldInfo {
                    name: interned(&field.name),
                    ty: field_type(field.ftype),
                    arg: match (field.arg.is_index, field.arg.is_key) {
                        (true, _) => Some("index"),
                        (_, true) => Some("key"),
                        _ => None,
                    },
                    description: interned(&field.desc),
                });
            }
        }
        let types = extractors
            .iter()
            .map(|p| {
                lock(p)
                    .extract_event_types()
                    .map(|codes| codes.into_iter().collect())
            })
            .collect();
        let source_plugin_name = source_plugin
            .as_ref()
            .map(|p| lock(p).name().to_string())
            .unwrap_or_default();
        PluginFields {
            source: interned(source),
            c_source: CString::new(source).unwrap_or_default(),
            source_plugin,
            source_plugin_name,
            extractors,
            types,
            resolved: Vec::new(),
            errors: AtomicU64::new(0),
            first_ts: AtomicU64::new(0),
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|name| name.into_string().ok())
                .unwrap_or_default(),
            listed,
            static_fields: StaticFields::default(),
        }
    }

    /// Notes an event of the stream: the first one's time is what
    /// `evt.reltime` counts from.
    pub fn note_event(&self, ts: u64) {
        if self.first_ts.load(Ordering::Relaxed) == 0 {
            let _ = self
                .first_ts
                .compare_exchange(0, ts, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// How many extractions failed (the plugin returned an error).
    pub fn extraction_errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn push(&mut self, resolved: Resolved, ty: FieldType, is_list: bool) -> ResolvedField {
        self.resolved.push(resolved);
        ResolvedField {
            id: (self.resolved.len() - 1) as u32,
            arg: None,
            ty,
            is_list,
        }
    }
}

pub(super) fn lock(plugin: &SharedPlugin) -> std::sync::MutexGuard<'_, Plugin> {
    // A panic while holding the lock leaves the plugin as it was between
    // two calls; the plugin is still usable.
    plugin
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) fn field_type(ftype: u32) -> FieldType {
    match ftype {
        api::ss_plugin_field_type_FTYPE_STRING => FieldType::String,
        api::ss_plugin_field_type_FTYPE_BOOL => FieldType::Bool,
        api::ss_plugin_field_type_FTYPE_IPADDR => FieldType::Ip,
        api::ss_plugin_field_type_FTYPE_IPNET => FieldType::IpNet,
        _ => FieldType::Uint,
    }
}

/// (source, field) to the field's type and whether it is a list, for
/// the fields plugins give each source: what a JSON alert types its
/// output fields by, as Falco types plugin fields.
type OutputTypes = HashMap<(String, String), (FieldType, bool)>;

static OUTPUT_TYPES: RwLock<Option<OutputTypes>> = RwLock::new(None);

/// Records the types of the fields `infos` give the syscall source and
/// the plugin sources; the first plugin in load order that defines a name
/// on a source has it, as in resolution.
pub(super) fn install_output_types(infos: &[&PluginInfo]) {
    let mut sources = vec!["syscall".to_string()];
    sources.extend(
        infos
            .iter()
            .filter(|i| i.capabilities.sourcing)
            .map(|i| i.event_source.clone()),
    );
    let mut types = OutputTypes::new();
    for source in &sources {
        if source != "syscall" {
            for (name, _, ty) in EVENT_FIELDS {
                types.insert((source.clone(), (*name).to_string()), (*ty, false));
            }
        }
        for info in infos.iter().filter(|i| i.extracts_from(source)) {
            for field in &info.fields {
                types
                    .entry((source.clone(), field.name.clone()))
                    .or_insert((field_type(field.ftype), field.is_list));
            }
        }
    }
    *OUTPUT_TYPES
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(types);
}

/// The type of the field `name` plugins give `source`, and whether it is
/// a list; None when no loaded plugin gives it.
pub fn output_field_type(source: &str, name: &str) -> Option<(FieldType, bool)> {
    OUTPUT_TYPES
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .as_ref()?
        .get(&(source.to_string(), name.to_string()))
        .copied()
}

/// `HH:MM:SS.nnnnnnnnn` in UTC, as `evt.time` prints elsewhere.
fn clock_time(ts: u64) -> String {
    let secs = ts / 1_000_000_000;
    let day = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        day / 3600,
        (day / 60) % 60,
        day % 60,
        ts % 1_000_000_000
    )
}

/// The extraction request for `name[arg]`, a field `info` defines, with
/// its argument checked against what the field takes.
pub(super) fn field_request(
    field_id: u32,
    info: &super::FieldInfo,
    name: &str,
    arg: Option<&str>,
) -> Result<FieldRequest, FieldError> {
    let bad = |problem: &str| FieldError::BadArgument {
        field: name.into(),
        problem: problem.into(),
    };
    let (arg_key, arg_index) = match arg {
        None if info.arg.is_required => return Err(bad("requires an argument")),
        None => (None, None),
        Some(_) if !info.arg.is_index && !info.arg.is_key => return Err(bad("takes no argument")),
        Some(text) if info.arg.is_index && !info.arg.is_key => {
            let index = text
                .trim()
                .parse::<u64>()
                .map_err(|_| bad("needs a numeric index argument"))?;
            (None, Some(index))
        }
        Some(text) => {
            let key = CString::new(text).map_err(|_| bad("argument contains a NUL byte"))?;
            let index = if info.arg.is_index {
                text.trim().parse().ok()
            } else {
                None
            };
            (Some(key), index)
        }
    };
    Ok(FieldRequest {
        field_id,
        name: CString::new(name).map_err(|_| FieldError::Unknown(name.into()))?,
        arg_key,
        arg_index,
        ftype: info.ftype,
        is_list: info.is_list,
    })
}

impl FieldSource for PluginFields {
    type Event<'e> = PluginEvent;

    fn name(&self) -> &'static str {
        self.source
    }

    fn static_fields(&mut self) -> Option<&mut StaticFields> {
        Some(&mut self.static_fields)
    }

    fn fields(&self) -> &[EngineFieldInfo] {
        &self.listed
    }

    fn resolve(&mut self, name: &str, arg: Option<&str>) -> Result<ResolvedField, FieldError> {
        if let Some(&(_, field, ty)) = EVENT_FIELDS.iter().find(|(n, _, _)| *n == name) {
            if arg.is_some() {
                return Err(FieldError::BadArgument {
                    field: name.into(),
                    problem: "takes no argument".into(),
                });
            }
            return Ok(self.push(Resolved::Event(field), ty, false));
        }
        let mut found = None;
        for (index, plugin) in self.extractors.iter().enumerate() {
            let guard = lock(plugin);
            if let Some((id, info)) = guard
                .info()
                .fields
                .iter()
                .enumerate()
                .find(|(_, f)| f.name == name)
            {
                found = Some((index, id as u32, info.clone()));
                break;
            }
        }
        let Some((extractor, field_id, info)) = found else {
            return Err(FieldError::Unknown(name.into()));
        };
        let request = field_request(field_id, &info, name, arg)?;
        Ok(self.push(
            Resolved::Plugin { extractor, request },
            field_type(info.ftype),
            info.is_list,
        ))
    }

    fn extract<'e>(&self, field: &ResolvedField, event: &PluginEvent, out: &mut Vec<Value<'e>>) {
        let Some(resolved) = self.resolved.get(field.id as usize) else {
            return;
        };
        match resolved {
            Resolved::Event(which) => match which {
                EventField::Num => out.push(Value::Uint(event.number)),
                EventField::Ts => out.push(Value::Uint(event.ts())),
                EventField::TsS => out.push(Value::Uint(event.ts() / NS_PER_SEC)),
                EventField::TsNs => out.push(Value::Uint(event.ts() % NS_PER_SEC)),
                EventField::RelTs | EventField::RelTsS | EventField::RelTsNs => {
                    let first = self.first_ts.load(Ordering::Relaxed);
                    let rel = event.ts().saturating_sub(first);
                    out.push(Value::Uint(match which {
                        EventField::RelTsS => rel / NS_PER_SEC,
                        EventField::RelTsNs => rel % NS_PER_SEC,
                        _ => rel,
                    }))
                }
                EventField::Time => out.push(Value::Str(Cow::Owned(clock_time(event.ts())))),
                EventField::TimeS => {
                    let mut text = clock_time(event.ts());
                    text.truncate(8);
                    out.push(Value::Str(Cow::Owned(text)))
                }
                EventField::TimeIso8601 => {
                    // libsinsp writes the zone as an offset.
                    let mut text = peregrine_engine::output::iso8601(event.ts());
                    text.pop();
                    text.push_str("+0000");
                    out.push(Value::Str(Cow::Owned(text)))
                }
                EventField::Datetime | EventField::DatetimeS => {
                    // `YYYY-MM-DD HH:MM:SS[.nnnnnnnnn]` from the ISO form.
                    let iso = peregrine_engine::output::iso8601(event.ts());
                    let end = if *which == EventField::Datetime {
                        iso.len() - 1
                    } else {
                        19
                    };
                    let mut text = iso.get(..end).unwrap_or(&iso).to_string();
                    text.replace_range(10..11, " ");
                    out.push(Value::Str(Cow::Owned(text)))
                }
                EventField::Source => out.push(Value::Str(Cow::Borrowed(self.source))),
                EventField::Hostname => {
                    if !self.hostname.is_empty() {
                        out.push(Value::Str(Cow::Owned(self.hostname.clone())))
                    }
                }
                // libsinsp names the plugin of plugin events only: an
                // async event in the stream has none.
                EventField::PluginName if event.is_async() => {}
                EventField::PluginName => {
                    out.push(Value::Str(Cow::Owned(self.source_plugin_name.clone())))
                }
                EventField::PluginInfo => {
                    if let Some(text) = self
                        .source_plugin
                        .as_ref()
                        .filter(|_| !event.is_async())
                        .and_then(|p| lock(p).event_to_string(event))
                    {
                        out.push(Value::Str(Cow::Owned(text)));
                    }
                }
                EventField::IsAsync => out.push(Value::Bool(event.is_async())),
                EventField::AsyncType => {
                    if let Some(name) = event.async_name() {
                        out.push(Value::Str(Cow::Owned(name.to_string())));
                    }
                }
            },
            Resolved::Plugin { extractor, request } => {
                let Some(plugin) = self.extractors.get(*extractor) else {
                    return;
                };
                if let Some(Some(types)) = self.types.get(*extractor) {
                    if !types.contains(&event.event_type()) {
                        return;
                    }
                }
                let mut values = Vec::new();
                let result = lock(plugin).extract(event, &self.c_source, request, &mut values);
                match result {
                    Ok(()) => out.extend(values),
                    Err(e) => {
                        // Falco stops the rule's evaluation on an extraction
                        // error and logs it; here the field has no value, and
                        // the first errors are logged, not every one.
                        let seen = self.errors.fetch_add(1, Ordering::Relaxed);
                        if seen < 10 || seen.is_power_of_two() {
                            crate::log::message(&format!(
                                "{e} (field errors so far: {})",
                                seen + 1
                            ));
                        }
                    }
                }
            }
        }
    }
}
