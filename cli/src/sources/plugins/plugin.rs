//! An initialised plugin: its state, its open event stream if it sources
//! events, and the calls rules and loops make on it. Every answer a plugin
//! gives is copied out and checked before use; a plugin error becomes a
//! [`PluginError`] naming the plugin.

use std::borrow::Cow;
use std::ffi::{CStr, CString};
use std::net::IpAddr;
use std::path::Path;
use std::ptr;
use std::sync::Arc;

use falco_plugin_api as api;
use peregrine_engine::field::Value;
use serde::Deserialize;

use super::event::{PluginEvent, HEADER_LEN};
use super::library::{self, owned_string, Loaded, PluginInfo};
use super::metrics::MetricsSlot;
use super::owner::{AsyncSink, Owner, TablesInput};
use super::PluginError;
use crate::metrics::falco::{PluginMetric, PluginValue};

/// Bounds on what one `next_batch` may hand over: more than this is a
/// malformed batch, not a reason to copy gigabytes.
pub const MAX_BATCH_EVENTS: u32 = 1 << 20;
pub const MAX_EVENT_BYTES: u32 = 64 << 20;

/// Metrics read from one `get_metrics` answer at most.
pub const MAX_METRICS: u32 = 4096;

/// libsinsp's bound on a metric's name, NUL included.
const METRIC_NAME_MAX: usize = 512;

/// How a `next_batch` call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// Events were appended (possibly none).
    Events,
    /// Nothing now; ask again.
    Timeout,
    /// The stream is over (events of this call were still appended).
    Eof,
}

/// One of `plugin_list_open_params`'s suggestions.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct OpenParam {
    pub value: String,
    #[serde(default)]
    pub desc: String,
    #[serde(default)]
    pub separator: String,
}

/// A field request as the extraction ABI takes it, prepared once when a
/// rule is compiled.
#[derive(Debug, Clone)]
pub struct FieldRequest {
    pub field_id: u32,
    pub name: CString,
    pub arg_key: Option<CString>,
    pub arg_index: Option<u64>,
    pub ftype: u32,
    pub is_list: bool,
}

pub struct Plugin {
    loaded: Loaded,
    state: *mut api::ss_plugin_t,
    instance: *mut api::ss_instance_t,
    /// Pointed to by the plugin for its whole life: boxed, freed after
    /// destroy.
    owner: Box<Owner>,
    tables: Option<Box<TablesInput>>,
    /// The C name of the plugin's event source, passed with every event.
    source_name: CString,
    events_read: u64,
    /// Where readers of its metrics ask for them and find them.
    metrics: Arc<MetricsSlot>,
}

// SAFETY: a plugin state is used by one thread at a time (each source loop
// owns its plugins, or they sit behind a Mutex); the plugin API asks no
// more than that.
unsafe impl Send for Plugin {}

impl Plugin {
    /// Opens the library at `path`, checks it and initialises it with
    /// `init_config`.
    pub fn load(path: &Path, init_config: &str) -> Result<Plugin, PluginError> {
        let loaded = library::open(path)?;
        Plugin::init(loaded, init_config)
    }

    pub fn init(loaded: Loaded, init_config: &str) -> Result<Plugin, PluginError> {
        let config = library::checked_init_config(&loaded.info, init_config)?;
        let mut owner = Box::new(Owner::new(&loaded.info.name));
        // Falco hands the tables input to extractors and parsers only.
        let tables = (loaded.info.capabilities.extraction || loaded.info.capabilities.parsing)
            .then(|| {
                super::threads::register();
                TablesInput::new()
            });
        let tables_ptr = tables
            .as_ref()
            .map_or(ptr::null(), |t| &t.input as *const _);
        let state = library::init(&loaded, &config, &mut *owner, tables_ptr)?;
        owner.set_plugin_state(state);
        let source_name = CString::new(loaded.info.event_source.clone()).unwrap_or_default();
        Ok(Plugin {
            loaded,
            state,
            instance: ptr::null_mut(),
            owner,
            tables,
            source_name,
            events_read: 0,
            metrics: Arc::default(),
        })
    }

    pub fn info(&self) -> &PluginInfo {
        &self.loaded.info
    }

    pub fn name(&self) -> &str {
        &self.loaded.info.name
    }

    fn error(&self) -> String {
        // SAFETY: state is live until Drop.
        unsafe { library::last_error(&self.loaded.api, self.state) }
    }

    /// Falco's `list_open_params`: the values `open_params` may take.
    pub fn list_open_params(&self) -> Result<Vec<OpenParam>, PluginError> {
        let Some(list) = self.loaded.api.__bindgen_anon_1.list_open_params else {
            return Ok(Vec::new());
        };
        let mut rc = api::ss_plugin_rc_SS_PLUGIN_FAILURE;
        // SAFETY: live state; the returned text is copied at once.
        let text = unsafe { owned_string(list(self.state, &mut rc)) };
        if rc != api::ss_plugin_rc_SS_PLUGIN_SUCCESS {
            return Err(PluginError::Call {
                plugin: self.name().into(),
                call: "list_open_params",
                message: self.error(),
            });
        }
        match text.filter(|t| !t.trim().is_empty()) {
            None => Ok(Vec::new()),
            Some(text) => serde_json::from_str(&text).map_err(|e| PluginError::Call {
                plugin: self.name().into(),
                call: "list_open_params",
                message: format!("invalid JSON: {e}"),
            }),
        }
    }

    /// Opens the plugin's event stream with `params`.
    pub fn open(&mut self, params: &str) -> Result<(), PluginError> {
        let open = self
            .loaded
            .api
            .__bindgen_anon_1
            .open
            .ok_or_else(|| PluginError::Call {
                plugin: self.name().into(),
                call: "open",
                message: "the plugin sources no events".into(),
            })?;
        self.close();
        let params = CString::new(params).map_err(|_| PluginError::Call {
            plugin: self.name().into(),
            call: "open",
            message: "open_params contains a NUL byte".into(),
        })?;
        let mut rc = api::ss_plugin_rc_SS_PLUGIN_FAILURE;
        // SAFETY: live state; params outlives the call.
        let instance = unsafe { open(self.state, params.as_ptr(), &mut rc) };
        if rc != api::ss_plugin_rc_SS_PLUGIN_SUCCESS || instance.is_null() {
            let message = self.error();
            if !instance.is_null() {
                if let Some(close) = self.loaded.api.__bindgen_anon_1.close {
                    // SAFETY: the instance open returned, closed once.
                    unsafe { close(self.state, instance) };
                }
            }
            return Err(PluginError::Call {
                plugin: self.name().into(),
                call: "open",
                message,
            });
        }
        self.instance = instance;
        Ok(())
    }

    /// Closes the open event stream, if any.
    pub fn close(&mut self) {
        if self.instance.is_null() {
            return;
        }
        if let Some(close) = self.loaded.api.__bindgen_anon_1.close {
            // SAFETY: the live instance, closed once, then forgotten.
            unsafe { close(self.state, self.instance) };
        }
        self.instance = ptr::null_mut();
    }

    /// Reads the next batch into `out`, each event checked and copied.
    pub fn next_batch(&mut self, out: &mut Vec<PluginEvent>) -> Result<Batch, PluginError> {
        let next = self.loaded.api.__bindgen_anon_1.next_batch;
        let (Some(next), false) = (next, self.instance.is_null()) else {
            return Err(PluginError::Call {
                plugin: self.name().into(),
                call: "next_batch",
                message: "the event stream is not open".into(),
            });
        };
        let mut count: u32 = 0;
        let mut events: *mut *mut api::ss_plugin_event = ptr::null_mut();
        // SAFETY: live state and instance; the plugin writes the count and
        // the array pointer, which stay valid until the next call.
        let rc = unsafe { next(self.state, self.instance, &mut count, &mut events) };
        let status = match rc {
            api::ss_plugin_rc_SS_PLUGIN_SUCCESS => Batch::Events,
            api::ss_plugin_rc_SS_PLUGIN_TIMEOUT => Batch::Timeout,
            api::ss_plugin_rc_SS_PLUGIN_EOF => Batch::Eof,
            _ => {
                return Err(PluginError::Call {
                    plugin: self.name().into(),
                    call: "next_batch",
                    message: self.error(),
                })
            }
        };
        if status == Batch::Timeout || count == 0 {
            return Ok(status);
        }
        if count > MAX_BATCH_EVENTS || events.is_null() {
            return Err(self.malformed(format!("a batch of {count} events at {events:p}")));
        }
        for index in 0..count as usize {
            // SAFETY: the plugin says `events` holds `count` pointers.
            let event = unsafe { *events.add(index) };
            let copied = self.copy_event(event).map_err(|m| self.malformed(m))?;
            out.push(copied);
        }
        Ok(status)
    }

    fn malformed(&self, message: String) -> PluginError {
        PluginError::Malformed {
            plugin: self.name().into(),
            message,
        }
    }

    /// Checks one event a plugin returned and copies it: a PLUGINEVENT_E
    /// of two parameters (the plugin id, the payload) whose lengths add up.
    fn copy_event(&mut self, event: *const api::ss_plugin_event) -> Result<PluginEvent, String> {
        if event.is_null() {
            return Err("a NULL event".into());
        }
        // SAFETY: the plugin returned a pointer to an event header; the
        // header is packed, so it is read unaligned.
        let header = unsafe { ptr::read_unaligned(event) };
        let len = header.len;
        if len < HEADER_LEN as u32 + 8 || len > MAX_EVENT_BYTES {
            return Err(format!("an event of {len} bytes"));
        }
        // SAFETY: the header says the event is `len` bytes long; it is
        // checked below to be the shape that length claims.
        let bytes = unsafe { std::slice::from_raw_parts(event.cast::<u8>(), len as usize) };
        let mut copied = PluginEvent::from_bytes(bytes.to_vec()).map_err(|e| e.to_string())?;
        match copied.plugin_id() {
            0 => copied.set_plugin_id(self.loaded.info.id),
            id if id == self.loaded.info.id => {}
            id => {
                return Err(format!(
                    "an event with plugin id {id}, not the plugin's id {}",
                    self.loaded.info.id
                ))
            }
        }
        // Falco's rule: a plugin that cannot time its events leaves the
        // timestamp at all ones, and the host stamps it on arrival.
        if copied.ts() == u64::MAX {
            copied.set_ts(now_ns());
        }
        self.events_read += 1;
        copied.number = self.events_read;
        Ok(copied)
    }

    /// Falco's `get_progress`: a percentage with two decimals, and the
    /// plugin's own text for it.
    pub fn progress(&self) -> Option<(f64, String)> {
        let get = self.loaded.api.__bindgen_anon_1.get_progress?;
        if self.instance.is_null() {
            return None;
        }
        let mut pct: u32 = 0;
        // SAFETY: live state and instance; the text is copied at once.
        let text = unsafe { owned_string(get(self.state, self.instance, &mut pct)) };
        Some((f64::from(pct.min(10_000)) / 100.0, text.unwrap_or_default()))
    }

    /// Falco's `event_to_string`: the plugin's rendering of its event
    /// (`evt.plugininfo`).
    pub fn event_to_string(&self, event: &PluginEvent) -> Option<String> {
        let render = self.loaded.api.__bindgen_anon_1.event_to_string?;
        let input = self.event_input(event);
        // SAFETY: live state; the input points into `event`, which
        // outlives the call; the text is copied at once.
        unsafe { owned_string(render(self.state, &input)) }
    }

    pub fn metrics_slot(&self) -> Arc<MetricsSlot> {
        Arc::clone(&self.metrics)
    }

    /// Answers a metrics reader waiting for this plugin, if there is one:
    /// its event loop calls this between two batches.
    pub fn serve_metrics(&self) {
        self.metrics.serve(self);
    }

    /// What the plugin reports through `get_metrics`, each named
    /// `<plugin>.<metric>` as libsinsp names them. A plugin without the
    /// call reports nothing; a metric of a value type the API does not
    /// define is left out, and more than [`MAX_METRICS`] are cut there.
    pub fn metrics(&self) -> Vec<PluginMetric> {
        let Some(get_metrics) = self.loaded.api.get_metrics else {
            return Vec::new();
        };
        let mut count: u32 = 0;
        // SAFETY: live state; the array the plugin returns stays valid
        // until its next call, and is copied out before this returns.
        let array = unsafe { get_metrics(self.state, &mut count) };
        if array.is_null() || count == 0 {
            return Vec::new();
        }
        // SAFETY: the plugin says `array` holds `count` metrics.
        let metrics = unsafe { std::slice::from_raw_parts(array, count.min(MAX_METRICS) as usize) };
        metrics
            .iter()
            .filter_map(|metric| {
                // SAFETY: the union is read as the member `value_type` names.
                let value = unsafe {
                    match metric.value_type {
                        api::ss_plugin_metric_value_type_SS_PLUGIN_METRIC_VALUE_TYPE_U32 => {
                            PluginValue::Unsigned(metric.value.u32_.into())
                        }
                        api::ss_plugin_metric_value_type_SS_PLUGIN_METRIC_VALUE_TYPE_S32 => {
                            PluginValue::Signed(metric.value.s32.into())
                        }
                        api::ss_plugin_metric_value_type_SS_PLUGIN_METRIC_VALUE_TYPE_U64 => {
                            PluginValue::Unsigned(metric.value.u64_)
                        }
                        api::ss_plugin_metric_value_type_SS_PLUGIN_METRIC_VALUE_TYPE_S64 => {
                            PluginValue::Signed(metric.value.s64)
                        }
                        api::ss_plugin_metric_value_type_SS_PLUGIN_METRIC_VALUE_TYPE_D => {
                            PluginValue::Double(metric.value.d)
                        }
                        api::ss_plugin_metric_value_type_SS_PLUGIN_METRIC_VALUE_TYPE_F => {
                            PluginValue::Double(metric.value.f.into())
                        }
                        api::ss_plugin_metric_value_type_SS_PLUGIN_METRIC_VALUE_TYPE_I => {
                            PluginValue::Signed(metric.value.i.into())
                        }
                        _ => return None,
                    }
                };
                // SAFETY: a NUL-terminated name the plugin owns, copied now.
                let name = unsafe { owned_string(metric.name) }.unwrap_or_default();
                let mut name = format!("{}.{name}", self.name());
                // libsinsp keeps names to METRIC_NAME_MAX bytes.
                truncate_at_char(&mut name, METRIC_NAME_MAX - 1);
                Some(PluginMetric {
                    name,
                    monotonic: metric.type_
                        == api::ss_plugin_metric_type_SS_PLUGIN_METRIC_TYPE_MONOTONIC,
                    value,
                })
            })
            .collect()
    }

    fn event_input(&self, event: &PluginEvent) -> api::ss_plugin_event_input {
        api::ss_plugin_event_input {
            evt: event.bytes().as_ptr().cast(),
            evtnum: event.number,
            evtsrc: self.source_name.as_ptr(),
        }
    }

    /// Extracts one field from an event of the source named `source`.
    /// An empty result means the field has no value on this event.
    pub fn extract(
        &self,
        event: &PluginEvent,
        source: &CStr,
        request: &FieldRequest,
        out: &mut Vec<Value<'static>>,
    ) -> Result<(), PluginError> {
        self.extract_raw(event.bytes(), event.number, source, request, out)
    }

    /// The event types whose events this plugin's fields apply to, as
    /// Falco reads them after init: the plugin's list, or with none, every
    /// type where the syscall source is among its sources (None here), and
    /// plugin events alone elsewhere.
    pub fn extract_event_types(&self) -> Option<Vec<u16>> {
        let listed = self
            .loaded
            .api
            .__bindgen_anon_2
            .get_extract_event_types
            .and_then(|get| {
                let mut count: u32 = 0;
                // SAFETY: live state; the plugin writes the count and returns
                // an array of that many codes, valid until its next call and
                // copied at once.
                let codes = unsafe { get(&mut count, self.state) };
                if codes.is_null() || count == 0 || count > u32::from(u16::MAX) {
                    return None;
                }
                // SAFETY: as above, `count` codes at `codes`.
                Some(unsafe { std::slice::from_raw_parts(codes, count as usize) }.to_vec())
            });
        match listed {
            Some(codes) => Some(codes),
            None if self.info().extracts_from("syscall") => None,
            None => Some(vec![super::event::PLUGINEVENT_E]),
        }
    }

    /// [`Plugin::extract`] on an event's bytes in the scap layout, numbered
    /// `evtnum` (syscall events come this way).
    pub fn extract_raw(
        &self,
        event_bytes: &[u8],
        evtnum: u64,
        source: &CStr,
        request: &FieldRequest,
        out: &mut Vec<Value<'static>>,
    ) -> Result<(), PluginError> {
        let extract = self
            .loaded
            .api
            .__bindgen_anon_2
            .extract_fields
            .ok_or_else(|| PluginError::Call {
                plugin: self.name().into(),
                call: "extract_fields",
                message: "the plugin extracts no fields".into(),
            })?;
        // SAFETY: all-zero is a valid request (NULL pointers, no result).
        let mut field: api::ss_plugin_extract_field = unsafe { std::mem::zeroed() };
        field.field_id = request.field_id;
        field.field = request.name.as_ptr();
        field.arg_key = request.arg_key.as_ref().map_or(ptr::null(), |k| k.as_ptr());
        field.arg_index = request.arg_index.unwrap_or(0);
        field.arg_present = u32::from(request.arg_key.is_some() || request.arg_index.is_some());
        field.ftype = request.ftype;
        field.flist = u32::from(request.is_list);
        // SAFETY: all-zero is a valid input; the slots used are set below.
        let mut input: api::ss_plugin_field_extract_input = unsafe { std::mem::zeroed() };
        input.owner = (&*self.owner as *const Owner).cast_mut().cast();
        input.get_owner_last_error = Some(super::owner::get_owner_last_error);
        input.num_fields = 1;
        input.fields = &mut field;
        if let Some(tables) = &self.tables {
            (input.table_reader, input.table_reader_ext) = tables.reader();
        }
        let event_input = api::ss_plugin_event_input {
            evt: event_bytes.as_ptr().cast(),
            evtnum,
            evtsrc: source.as_ptr(),
        };
        // SAFETY: live state; every pointer in the inputs outlives the
        // call; the results the plugin writes stay valid until its next
        // call and are copied below before any.
        let rc = unsafe { extract(self.state, &event_input, &input) };
        if rc != api::ss_plugin_rc_SS_PLUGIN_SUCCESS {
            return Err(PluginError::Call {
                plugin: self.name().into(),
                call: "extract_fields",
                message: self.error(),
            });
        }
        let count = field.res_len;
        if count == 0 {
            return Ok(());
        }
        if count > u64::from(MAX_BATCH_EVENTS) || (!request.is_list && count > 1) {
            return Err(self.malformed(format!(
                "{count} values for field '{}'",
                request.name.to_string_lossy()
            )));
        }
        // SAFETY (every arm): the plugin wrote `count` results of the
        // requested type through the union member for that type.
        unsafe {
            match request.ftype {
                api::ss_plugin_field_type_FTYPE_STRING => {
                    let values = field.res.str_;
                    for i in 0..count as usize {
                        let text = *values.add(i);
                        if text.is_null() {
                            continue;
                        }
                        let s = CStr::from_ptr(text).to_string_lossy().into_owned();
                        out.push(Value::Str(Cow::Owned(s)));
                    }
                }
                api::ss_plugin_field_type_FTYPE_BOOL => {
                    for i in 0..count as usize {
                        out.push(Value::Bool(*field.res.boolean.add(i) != 0));
                    }
                }
                api::ss_plugin_field_type_FTYPE_IPADDR | api::ss_plugin_field_type_FTYPE_IPNET => {
                    for i in 0..count as usize {
                        let buf = *field.res.buf.add(i);
                        if buf.ptr.is_null() {
                            continue;
                        }
                        let bytes =
                            std::slice::from_raw_parts(buf.ptr.cast::<u8>(), buf.len as usize);
                        if let Some(ip) = ip_from_bytes(bytes) {
                            out.push(Value::Ip(ip));
                        }
                    }
                }
                _ => {
                    for i in 0..count as usize {
                        out.push(Value::Uint(*field.res.u64_.add(i)));
                    }
                }
            }
        }
        Ok(())
    }

    /// Falco's `parse_event`: lets a parser plugin update its state from
    /// an event of `source`.
    pub fn parse(&self, event: &PluginEvent, source: &CStr) -> Result<(), PluginError> {
        self.parse_raw(event.bytes(), event.number, source)
    }

    /// [`Plugin::parse`] on an event's bytes in the scap layout, numbered
    /// `evtnum` (syscall events come this way).
    pub fn parse_raw(
        &self,
        event_bytes: &[u8],
        evtnum: u64,
        source: &CStr,
    ) -> Result<(), PluginError> {
        let Some(parse) = self.loaded.api.__bindgen_anon_3.parse_event else {
            return Ok(());
        };
        // SAFETY: all-zero is a valid input; owner is set.
        let mut input: api::ss_plugin_event_parse_input = unsafe { std::mem::zeroed() };
        input.owner = (&*self.owner as *const Owner).cast_mut().cast();
        input.get_owner_last_error = Some(super::owner::get_owner_last_error);
        if let Some(tables) = &self.tables {
            (input.table_reader, input.table_reader_ext) = tables.reader();
            (input.table_writer, input.table_writer_ext) = tables.writer();
        }
        let event_input = api::ss_plugin_event_input {
            evt: event_bytes.as_ptr().cast(),
            evtnum,
            evtsrc: source.as_ptr(),
        };
        // SAFETY: live state; the inputs outlive the call.
        let rc = unsafe { parse(self.state, &event_input, &input) };
        if rc != api::ss_plugin_rc_SS_PLUGIN_SUCCESS {
            return Err(PluginError::Call {
                plugin: self.name().into(),
                call: "parse_event",
                message: self.error(),
            });
        }
        Ok(())
    }

    /// The event types this parser wants: its list, or every type.
    pub fn parse_event_types(&self) -> Option<Vec<u16>> {
        let get = self.loaded.api.__bindgen_anon_3.get_parse_event_types?;
        let mut count: u32 = 0;
        // SAFETY: live state; the plugin writes the count and returns an
        // array of that many codes, copied at once.
        let codes = unsafe { get(&mut count, self.state) };
        if codes.is_null() || count == 0 || count > u32::from(u16::MAX) {
            return None;
        }
        // SAFETY: as above, `count` codes at `codes`.
        Some(unsafe { std::slice::from_raw_parts(codes, count as usize) }.to_vec())
    }

    /// Falco's `set_async_event_handler`: from now on the plugin's async
    /// events go to `sink`'s loops (None: the plugin stops sending).
    pub fn set_async_sink(&self, sink: Option<AsyncSink>) -> Result<(), PluginError> {
        let Some(set) = self.loaded.api.__bindgen_anon_4.set_async_event_handler else {
            return Err(PluginError::Call {
                plugin: self.name().into(),
                call: "set_async_event_handler",
                message: "the plugin has no async events".into(),
            });
        };
        let start = sink.is_some();
        if start {
            *self
                .owner
                .async_sink
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = sink;
        }
        let owner = (&*self.owner as *const Owner).cast_mut().cast();
        let handler = if start {
            Some(super::owner::async_handler as _)
        } else {
            None
        };
        // SAFETY: live state; the owner box outlives the handler, which is
        // unset (this call with None) before the plugin is destroyed.
        let rc = unsafe { set(self.state, owner, handler) };
        if !start {
            *self
                .owner
                .async_sink
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = None;
        }
        if rc != api::ss_plugin_rc_SS_PLUGIN_SUCCESS {
            return Err(PluginError::Call {
                plugin: self.name().into(),
                call: "set_async_event_handler",
                message: self.error(),
            });
        }
        Ok(())
    }

    /// Whether the plugin has an async handler set now.
    /// Falco's `capture_open`: the capture (live or a file) starts; the
    /// plugin may subscribe routines. Nothing for a plugin that does not
    /// listen.
    pub fn capture_open(&self) -> Result<(), PluginError> {
        self.capture_notify(
            self.loaded.api.__bindgen_anon_5.capture_open,
            "capture_open",
        )
    }

    /// Falco's `capture_close`, then every routine stops, as libsinsp
    /// purges its pool when the capture closes.
    pub fn capture_close(&self) -> Result<(), PluginError> {
        let result = self.capture_notify(
            self.loaded.api.__bindgen_anon_5.capture_close,
            "capture_close",
        );
        super::routines::purge(&self.owner);
        result
    }

    fn capture_notify(
        &self,
        notify: Option<
            unsafe extern "C-unwind" fn(
                *mut api::ss_plugin_t,
                *const api::ss_plugin_capture_listen_input,
            ) -> api::ss_plugin_rc,
        >,
        call: &'static str,
    ) -> Result<(), PluginError> {
        let Some(notify) = notify else {
            return Ok(());
        };
        let mut routine = super::routines::vtable();
        // A listener that neither extracts nor parses got no tables at
        // init; it gets the table vtables here all the same, as in libsinsp.
        let own_tables;
        let tables = match &self.tables {
            Some(tables) => tables,
            None => {
                own_tables = TablesInput::new();
                &own_tables
            }
        };
        let input = api::ss_plugin_capture_listen_input {
            owner: (&*self.owner as *const Owner).cast_mut().cast(),
            routine: &mut routine,
            table_reader_ext: tables.reader().1,
            table_writer_ext: tables.writer().1,
            get_owner_last_error: Some(super::owner::get_owner_last_error),
        };
        // SAFETY: live state; the input and what it points to outlive the
        // call (the routine vtable is copied by the SDKs, and its
        // functions are static).
        let rc = unsafe { notify(self.state, &input) };
        if rc != api::ss_plugin_rc_SS_PLUGIN_SUCCESS {
            return Err(PluginError::Call {
                plugin: self.name().into(),
                call,
                message: self.error(),
            });
        }
        Ok(())
    }

    pub fn async_started(&self) -> bool {
        self.owner
            .async_sink
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some()
    }

    pub fn events_read(&self) -> u64 {
        self.events_read
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.close();
        // Its tables go first: no reader may reach them once it is gone.
        super::tables::forget(&*self.owner);
        if self.async_started() {
            // The plugin's threads must stop calling the handler before
            // the owner it points to goes.
            let _ = self.set_async_sink(None);
        }
        // No routine may run on a destroyed state.
        super::routines::purge(&self.owner);
        if let Some(destroy) = self.loaded.api.destroy {
            // SAFETY: the state init returned, destroyed once; the owner
            // and tables boxes are dropped after this.
            unsafe { destroy(self.state) };
        }
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

pub(super) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}
