//! Plugin fields on syscall events: a plugin whose extraction covers the
//! `syscall` source (it lists it, or lists no source and sources none)
//! lends its fields to syscall rules, as in Falco. Each request hands the
//! plugin the event in the scap layout, its number and the source name
//! "syscall"; the plugin's event types, when it lists them, limit the
//! events its fields have values on.
//!
//! Parser plugins that take syscall events see each one after the state
//! has applied it and before rules run, as libsinsp calls them after its
//! own parsers. While a plugin reads or parses, the thread table it finds
//! under `threads` is the state of that event.

use std::collections::HashSet;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use peregrine_engine::event::EventView;
use peregrine_engine::field::{FieldError, FieldInfo as EngineFieldInfo, Value};
use peregrine_engine::syscall_fields::{ExtensionField, SyscallEvent, SyscallExtension};

use super::fields::{field_request, field_type, interned, lock, SharedPlugin};
use super::plugin::FieldRequest;

/// The source name Falco passes with syscall events.
const SYSCALL: &str = "syscall";

struct Extractor {
    plugin: SharedPlugin,
    /// The event types its fields apply to; None: all of them.
    types: Option<HashSet<u16>>,
}

/// The fields of the plugins that extract from syscall events.
pub struct SyscallPluginFields {
    extractors: Vec<Extractor>,
    /// Requests resolved while rules compile, read by every extraction.
    requests: RwLock<Vec<(usize, FieldRequest)>>,
    c_source: CString,
    errors: AtomicU64,
}

impl SyscallPluginFields {
    /// The extension for `plugins`, or None when none extracts from
    /// syscall events.
    pub fn new(plugins: &[SharedPlugin]) -> Option<SyscallPluginFields> {
        let extractors: Vec<Extractor> = plugins
            .iter()
            .filter_map(|plugin| {
                let guard = lock(plugin);
                guard.info().extracts_from(SYSCALL).then(|| Extractor {
                    plugin: Arc::clone(plugin),
                    types: guard
                        .extract_event_types()
                        .map(|codes| codes.into_iter().collect()),
                })
            })
            .collect();
        (!extractors.is_empty()).then(|| SyscallPluginFields {
            extractors,
            requests: RwLock::new(Vec::new()),
            c_source: CString::new(SYSCALL).unwrap_or_default(),
            errors: AtomicU64::new(0),
        })
    }

    /// How many extractions the plugins failed.
    pub fn extraction_errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// The event as plugins read it: the scap header in the current layout
/// (ts, tid, len, type, nparams), the parameter lengths, the values.
fn scap_bytes(event: &EventView<'_>, out: &mut Vec<u8>) {
    let (lens, data, _) = event.body();
    let len = 26 + lens.len() + data.len();
    out.clear();
    out.reserve(len);
    out.extend_from_slice(&event.ts.to_le_bytes());
    out.extend_from_slice(&event.tid.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&event.event_type.to_le_bytes());
    out.extend_from_slice(&event.nparams.to_le_bytes());
    out.extend_from_slice(lens);
    out.extend_from_slice(data);
}

impl SyscallExtension for SyscallPluginFields {
    fn resolve(&self, name: &str, arg: Option<&str>) -> Option<Result<ExtensionField, FieldError>> {
        // The first plugin, in load order, that defines the name has it.
        let (index, field_id, info) = self.extractors.iter().enumerate().find_map(|(i, e)| {
            let guard = lock(&e.plugin);
            let found = guard
                .info()
                .fields
                .iter()
                .enumerate()
                .find(|(_, f)| f.name == name)
                .map(|(id, f)| (i, id as u32, f.clone()));
            found
        })?;
        let request = match field_request(field_id, &info, name, arg) {
            Ok(request) => request,
            Err(e) => return Some(Err(e)),
        };
        let mut requests = self
            .requests
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        requests.push((index, request));
        Some(Ok(ExtensionField {
            id: (requests.len() - 1) as u32,
            ty: field_type(info.ftype),
            is_list: info.is_list,
        }))
    }

    fn extract<'e>(&self, id: u32, event: &SyscallEvent<'e>, out: &mut Vec<Value<'e>>) {
        let requests = self
            .requests
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some((index, request)) = requests.get(id as usize) else {
            return;
        };
        let Some(extractor) = self.extractors.get(*index) else {
            return;
        };
        let view = event.event();
        if let Some(types) = &extractor.types {
            if !types.contains(&view.event_type) {
                return;
            }
        }
        let mut bytes = Vec::new();
        scap_bytes(view, &mut bytes);
        let mut values = Vec::new();
        let result = super::threads::with_state(event.state(), || {
            lock(&extractor.plugin).extract_raw(
                &bytes,
                view.num,
                &self.c_source,
                request,
                &mut values,
            )
        });
        match result {
            Ok(()) => out.extend(values),
            Err(e) => {
                let seen = self.errors.fetch_add(1, Ordering::Relaxed);
                if seen < 10 || seen.is_power_of_two() {
                    crate::log::message(&format!("{e} (field errors so far: {})", seen + 1));
                }
            }
        }
    }

    fn fields(&self) -> Vec<EngineFieldInfo> {
        let mut listed = Vec::new();
        for extractor in &self.extractors {
            for field in &lock(&extractor.plugin).info().fields {
                listed.push(EngineFieldInfo {
                    name: interned(&field.name),
                    ty: field_type(field.ftype),
                    arg: None,
                    description: interned(&field.desc),
                });
            }
        }
        listed
    }
}

/// The run's extension, installed once its plugins load, so that every
/// rules load (the first and each reload) gives syscall rules its fields.
static INSTALLED: RwLock<Option<Arc<SyscallPluginFields>>> = RwLock::new(None);

/// Installs the extension for `plugins`, if any of them extracts from
/// syscall events.
pub fn install(plugins: &[SharedPlugin]) {
    if let Some(fields) = SyscallPluginFields::new(plugins) {
        *INSTALLED
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(fields));
    }
}

/// The installed extension, for the rules loader.
pub fn installed() -> Option<Arc<dyn SyscallExtension>> {
    INSTALLED
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .as_ref()
        .map(|fields| Arc::clone(fields) as Arc<dyn SyscallExtension>)
}

/// Lets go of the plugins [`install`] and [`install_parsers`] hold, so
/// that they are destroyed with the rest when the run ends, as Falco
/// destroys its plugins.
pub fn uninstall() {
    INSTALLED
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    PARSING.store(false, Ordering::Release);
    PARSERS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
}

/// A parser of syscall events and the event types it takes (None: all).
struct Parser {
    plugin: SharedPlugin,
    types: Option<HashSet<u16>>,
}

/// The parsers of syscall events, in load order.
pub struct SyscallParsers {
    parsers: Vec<Parser>,
    c_source: CString,
    errors: AtomicU64,
}

impl SyscallParsers {
    fn new(plugins: Vec<SharedPlugin>) -> Option<SyscallParsers> {
        let parsers: Vec<Parser> = plugins
            .into_iter()
            .map(|plugin| {
                let types = lock(&plugin)
                    .parse_event_types()
                    .map(|codes| codes.into_iter().collect());
                Parser { plugin, types }
            })
            .collect();
        (!parsers.is_empty()).then(|| SyscallParsers {
            parsers,
            c_source: CString::new(SYSCALL).unwrap_or_default(),
            errors: AtomicU64::new(0),
        })
    }

    /// Hands `event` to each parser that takes its type. A parser that
    /// fails is counted and logged, never fatal: one plugin's bad event
    /// must not stop the sensor.
    fn parse(&self, event: &EventView<'_>, state: &peregrine_engine::state::State) {
        let mut bytes = Vec::new();
        for parser in &self.parsers {
            if parser
                .types
                .as_ref()
                .is_some_and(|t| !t.contains(&event.event_type))
            {
                continue;
            }
            if bytes.is_empty() {
                scap_bytes(event, &mut bytes);
            }
            let result = super::threads::with_state(state, || {
                lock(&parser.plugin).parse_raw(&bytes, event.num, &self.c_source)
            });
            if let Err(e) = result {
                let seen = self.errors.fetch_add(1, Ordering::Relaxed);
                if seen < 10 || seen.is_power_of_two() {
                    crate::log::message(&format!("{e} (parse errors so far: {})", seen + 1));
                }
            }
        }
    }
}

static PARSERS: RwLock<Option<SyscallParsers>> = RwLock::new(None);
/// Whether any are installed: the one load on each event's path when none.
static PARSING: AtomicBool = AtomicBool::new(false);

/// Installs the parsers of syscall events (`Hosted::parsers_for`).
pub fn install_parsers(plugins: Vec<SharedPlugin>) {
    if let Some(parsers) = SyscallParsers::new(plugins) {
        *PARSERS
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(parsers);
        PARSING.store(true, Ordering::Release);
    }
}

/// Lets the installed parsers see `event`, which `state` has applied.
#[inline]
pub fn parse(event: &EventView<'_>, state: &peregrine_engine::state::State) {
    if !PARSING.load(Ordering::Acquire) {
        return;
    }
    // Read-locked for the call: only `uninstall`, at the end of the run,
    // writes, so the lock is never contended and no count is touched.
    let parsers = PARSERS
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(parsers) = parsers.as_ref() {
        parsers.parse(event, state);
    }
}

/// The async event names plugins may send into the syscall source.
static ASYNC_NAMES: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Records the async event names plugins may send into the syscall
/// source (`Hosted::async_names_for`), so rules can name them in evt.type.
pub fn install_async_names(names: Vec<String>) {
    *ASYNC_NAMES
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = names;
}

/// The names [`install_async_names`] recorded, for the rules loader.
pub fn async_names() -> Vec<String> {
    ASYNC_NAMES
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}
