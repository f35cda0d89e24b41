//! The host side a plugin calls back into: its owner handle (last error,
//! log), and the state tables input Falco passes to extractors and parsers.
//!
//! The tables calls go to `tables`, the registry of the tables plugins add.

use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Mutex;

use falco_plugin_api as api;

use super::routines::Routines;
use super::tables::{
    add_entry, add_table, add_table_field, clear, create_entry, destroy_entry, erase, get_table,
    get_table_field, iterate, list_table_fields, list_tables, read_field, release_entry,
    table_entry, table_name, table_size, write_field,
};
use super::PluginEvent;

/// What a plugin's `owner` pointer points to.
pub struct Owner {
    pub plugin: String,
    pub last_error: CString,
    /// Where an async plugin's events go while its handler is set; the
    /// plugin calls the handler from threads of its own.
    pub async_sink: Mutex<Option<AsyncSink>>,
    /// The plugin's state, once init returned it: what its routines are
    /// called with.
    state: AtomicPtr<api::ss_plugin_t>,
    /// The routines it subscribed.
    pub routines: Routines,
}

impl Owner {
    pub fn new(plugin: &str) -> Owner {
        Owner {
            plugin: plugin.to_string(),
            last_error: CString::default(),
            async_sink: Mutex::new(None),
            state: AtomicPtr::new(ptr::null_mut()),
            routines: Routines::default(),
        }
    }

    pub fn set_plugin_state(&self, state: *mut api::ss_plugin_t) {
        self.state.store(state, Ordering::Release);
    }

    pub fn plugin_state(&self) -> *mut api::ss_plugin_t {
        self.state.load(Ordering::Acquire)
    }
}

/// The loops an async plugin's events are delivered to, and the names it
/// declared (an event of another name is refused, as in Falco).
pub struct AsyncSink {
    pub names: Vec<String>,
    /// The plugin's id when it sources events too, 0 otherwise: what the
    /// events' plugin id parameter is set to.
    pub plugin_id: u32,
    pub loops: Vec<Sender<PluginEvent>>,
}

/// The async event handler a plugin gets with `set_async_event_handler`:
/// checks the event, stamps it and hands a copy to each loop it goes to.
pub(super) unsafe extern "C-unwind" fn async_handler(
    owner: *mut api::ss_plugin_owner_t,
    event: *const api::ss_plugin_event,
    err: *mut c_char,
) -> api::ss_plugin_rc {
    let fail = |message: String| {
        if !err.is_null() {
            let bytes = message.as_bytes();
            let n = bytes.len().min(api::PLUGIN_MAX_ERRLEN as usize - 1);
            // SAFETY: the plugin passes a buffer of PLUGIN_MAX_ERRLEN bytes
            // for the message; n + 1 bytes are written.
            unsafe {
                ptr::copy_nonoverlapping(bytes.as_ptr(), err.cast::<u8>(), n);
                *err.add(n) = 0;
            }
        }
        api::ss_plugin_rc_SS_PLUGIN_FAILURE
    };
    let owner = owner.cast::<Owner>();
    if owner.is_null() || event.is_null() {
        return fail("async event handler called without owner or event".into());
    }
    // SAFETY: the boxed Owner given with the handler; it outlives the
    // handler, which is unset before the plugin is destroyed.
    let owner = unsafe { &*owner };
    // SAFETY: the plugin passes an event header, read unaligned (packed).
    let header = unsafe { ptr::read_unaligned(event) };
    let len = header.len as usize;
    if len < super::event::HEADER_LEN || len > super::plugin::MAX_EVENT_BYTES as usize {
        return fail(format!("an async event of {len} bytes"));
    }
    // SAFETY: the header says the event is `len` bytes; its layout is
    // checked before use.
    let bytes = unsafe { std::slice::from_raw_parts(event.cast::<u8>(), len) }.to_vec();
    let mut event = match PluginEvent::from_async_bytes(bytes) {
        Ok(event) => event,
        Err(e) => return fail(format!("malformed async event: {e}")),
    };
    let sink = owner
        .async_sink
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(sink) = sink.as_ref() else {
        return fail("async events are not being taken now".into());
    };
    let name = event.async_name().unwrap_or_default();
    if !sink.names.iter().any(|n| n == name) {
        return fail(format!(
            "async event '{name}' is not one the plugin '{}' declares",
            owner.plugin
        ));
    }
    event.set_plugin_id(sink.plugin_id);
    if event.ts() == u64::MAX {
        event.set_ts(super::plugin::now_ns());
    }
    let mut delivered = false;
    for lane in &sink.loops {
        delivered |= lane.send(event.clone()).is_ok();
    }
    if delivered {
        crate::wakeup::ring();
    }
    if !delivered && !sink.loops.is_empty() {
        return fail("the event loops async events go to have ended".into());
    }
    api::ss_plugin_rc_SS_PLUGIN_SUCCESS
}

/// `get_owner_last_error`.
pub(super) unsafe extern "C-unwind" fn get_owner_last_error(
    owner: *mut api::ss_plugin_owner_t,
) -> *const c_char {
    let owner = owner.cast::<Owner>();
    if owner.is_null() {
        return ptr::null();
    }
    // SAFETY: the host passed this pointer at init; it points to the
    // plugin's boxed Owner, which lives as long as the plugin.
    let owner = unsafe { &*owner };
    if owner.last_error.as_bytes().is_empty() {
        ptr::null()
    } else {
        owner.last_error.as_ptr()
    }
}

/// `log_fn`: a plugin's messages go to Peregrine's log, named after the
/// plugin (or the component it gives).
pub(super) unsafe extern "C-unwind" fn log(
    owner: *mut api::ss_plugin_owner_t,
    component: *const c_char,
    message: *const c_char,
    severity: api::ss_plugin_log_severity,
) {
    if message.is_null() {
        return;
    }
    // SAFETY: a NUL-terminated string the plugin passes for this call.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    let who = if !component.is_null() {
        // SAFETY: as above.
        unsafe { CStr::from_ptr(component) }
            .to_string_lossy()
            .into_owned()
    } else if !owner.is_null() {
        // SAFETY: the boxed Owner given at init.
        unsafe { &*owner.cast::<Owner>() }.plugin.clone()
    } else {
        "plugin".into()
    };
    let level = match severity {
        api::ss_plugin_log_severity_SS_PLUGIN_LOG_SEV_FATAL
        | api::ss_plugin_log_severity_SS_PLUGIN_LOG_SEV_CRITICAL
        | api::ss_plugin_log_severity_SS_PLUGIN_LOG_SEV_ERROR => "error",
        api::ss_plugin_log_severity_SS_PLUGIN_LOG_SEV_WARNING => "warning",
        api::ss_plugin_log_severity_SS_PLUGIN_LOG_SEV_NOTICE
        | api::ss_plugin_log_severity_SS_PLUGIN_LOG_SEV_INFO => "info",
        _ => return, // debug and trace stay quiet, as at Falco's default level
    };
    crate::log::message(&format!("[{who}] {level}: {text}"));
}

/// The tables input handed to extractors and parsers at init; boxed with
/// the plugin so its pointers stay put.
pub struct TablesInput {
    _fields_ext: Box<api::ss_plugin_table_fields_vtable_ext>,
    reader_ext: Box<api::ss_plugin_table_reader_vtable_ext>,
    writer_ext: Box<api::ss_plugin_table_writer_vtable_ext>,
    pub input: api::ss_plugin_init_tables_input,
}

impl TablesInput {
    pub fn new() -> Box<TablesInput> {
        let mut fields_ext = Box::new(api::ss_plugin_table_fields_vtable_ext {
            list_table_fields: Some(list_table_fields),
            get_table_field: Some(get_table_field),
            add_table_field: Some(add_table_field),
        });
        let mut reader_ext = Box::new(api::ss_plugin_table_reader_vtable_ext {
            get_table_name: Some(table_name),
            get_table_size: Some(table_size),
            get_table_entry: Some(table_entry),
            read_entry_field: Some(read_field),
            release_table_entry: Some(release_entry),
            iterate_entries: Some(iterate),
        });
        let mut writer_ext = Box::new(api::ss_plugin_table_writer_vtable_ext {
            clear_table: Some(clear),
            erase_table_entry: Some(erase),
            create_table_entry: Some(create_entry),
            destroy_table_entry: Some(destroy_entry),
            add_table_entry: Some(add_entry),
            write_entry_field: Some(write_field),
        });
        let input = api::ss_plugin_init_tables_input {
            list_tables: Some(list_tables),
            get_table: Some(get_table),
            add_table: Some(add_table),
            fields: api::ss_plugin_table_fields_vtable {
                list_table_fields: Some(list_table_fields),
                get_table_field: Some(get_table_field),
                add_table_field: Some(add_table_field),
            },
            fields_ext: &mut *fields_ext,
            reader_ext: &mut *reader_ext,
            writer_ext: &mut *writer_ext,
        };
        Box::new(TablesInput {
            _fields_ext: fields_ext,
            reader_ext,
            writer_ext,
            input,
        })
    }
}

impl TablesInput {
    /// The reader vtables an extraction or a parse is given: Falco hands
    /// them with every call, and the SDK for Rust refuses a call without.
    pub fn reader(
        &self,
    ) -> (
        api::ss_plugin_table_reader_vtable,
        *mut api::ss_plugin_table_reader_vtable_ext,
    ) {
        let ext = &*self.reader_ext;
        (
            api::ss_plugin_table_reader_vtable {
                get_table_name: ext.get_table_name,
                get_table_size: ext.get_table_size,
                get_table_entry: ext.get_table_entry,
                read_entry_field: ext.read_entry_field,
            },
            (ext as *const api::ss_plugin_table_reader_vtable_ext).cast_mut(),
        )
    }

    /// The writer vtables a parse is given.
    pub fn writer(
        &self,
    ) -> (
        api::ss_plugin_table_writer_vtable,
        *mut api::ss_plugin_table_writer_vtable_ext,
    ) {
        let ext = &*self.writer_ext;
        (
            api::ss_plugin_table_writer_vtable {
                clear_table: ext.clear_table,
                erase_table_entry: ext.erase_table_entry,
                create_table_entry: ext.create_table_entry,
                destroy_table_entry: ext.destroy_table_entry,
                add_table_entry: ext.add_table_entry,
                write_entry_field: ext.write_entry_field,
            },
            (ext as *const api::ss_plugin_table_writer_vtable_ext).cast_mut(),
        )
    }
}
