//! State tables plugins add (`add_table`) and others read: the host keeps
//! a registry of them and hands a reader its own handle, whose every call
//! it forwards to the vtables the owning plugin registered, as libsinsp
//! does for plugin-owned tables. Peregrine's own thread table is in the
//! registry too; calls on it and on its subtables go to `threads`.

use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::sync::Mutex;

use falco_plugin_api as api;

use super::owner::Owner;
use super::threads;

/// One table a plugin added: the owner's table pointer and a copy of its
/// vtables (the plugin lends them for the add_table call only).
#[derive(Clone, Copy)]
struct Forward {
    table: *mut api::ss_plugin_table_t,
    reader: api::ss_plugin_table_reader_vtable_ext,
    writer: api::ss_plugin_table_writer_vtable_ext,
    fields: api::ss_plugin_table_fields_vtable_ext,
}

#[repr(C)]
struct Hosted {
    /// First, so that the handle readers get points to it: libsinsp's
    /// table handles point to a table input, and the SDK for Rust reads
    /// the key type through the handle. Its vtables are the owner's.
    input: api::ss_plugin_table_input,
    name: CString,
    key_type: api::ss_plugin_state_type,
    /// The Owner of the plugin that added it: its tables go with it.
    owner: usize,
    forward: Forward,
}

#[derive(Default)]
struct Registry {
    /// Boxed: a box's address is the handle readers get, and it must not
    /// move when the vector grows.
    #[allow(clippy::vec_box)]
    tables: Vec<Box<Hosted>>,
    /// What `list_tables` returns, rebuilt on each change.
    infos: Vec<api::ss_plugin_table_info>,
}

// SAFETY: the raw pointers are handles the plugins gave; the registry only
// stores and compares them, and the plugin API is called on them by one
// plugin call at a time.
unsafe impl Send for Registry {}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    tables: Vec::new(),
    infos: Vec::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Registry {
    fn rebuild_infos(&mut self) {
        self.infos = self
            .tables
            .iter()
            .map(|t| api::ss_plugin_table_info {
                name: t.name.as_ptr(),
                key_type: t.key_type,
            })
            .collect();
    }
}

/// The forwarding data of the handle `t`, if it is one the host gave.
fn forward(t: *mut api::ss_plugin_table_t) -> Option<Forward> {
    registry()
        .tables
        .iter()
        .find(|h| ptr::eq(&***h as *const Hosted, t.cast::<Hosted>()))
        .map(|h| h.forward)
}

/// Puts a table of the host's in the registry, under `name`: the
/// address of its handle is what readers get and what the host's own
/// calls recognise it by.
pub(super) fn add_host_table(name: &CStr, key_type: api::ss_plugin_state_type) -> usize {
    // SAFETY: all-zero is a valid table input (NULL pointers, no calls);
    // the host answers the calls on it itself.
    let input: api::ss_plugin_table_input = unsafe { std::mem::zeroed() };
    // SAFETY: as above, for the vtables nothing forwards to.
    let forward: Forward = unsafe { std::mem::zeroed() };
    let mut hosted = Box::new(Hosted {
        input,
        name: name.to_owned(),
        key_type,
        owner: 0,
        forward,
    });
    let address = &*hosted as *const Hosted as usize;
    hosted.input.name = hosted.name.as_ptr();
    hosted.input.key_type = key_type;
    hosted.input.table = address as *mut _;
    let mut registry = registry();
    registry.tables.push(hosted);
    registry.rebuild_infos();
    address
}

/// Drops the tables the plugin of `owner` added (it is being destroyed).
pub(super) fn forget(owner: *const Owner) {
    let mut registry = registry();
    registry.tables.retain(|t| t.owner != owner as usize);
    registry.rebuild_infos();
}

fn set_error(owner: *mut api::ss_plugin_owner_t, message: String) {
    let owner = owner.cast::<Owner>();
    if !owner.is_null() {
        // SAFETY: the boxed Owner given at init, written by the thread
        // that runs the plugin's init, the only one calling it then.
        unsafe { &mut *owner }.last_error = CString::new(message).unwrap_or_default();
    }
}

pub(super) unsafe extern "C-unwind" fn list_tables(
    _owner: *mut api::ss_plugin_owner_t,
    ntables: *mut u32,
) -> *mut api::ss_plugin_table_info {
    let registry = registry();
    if !ntables.is_null() {
        // SAFETY: the plugin passes where to write the count.
        unsafe { *ntables = registry.infos.len() as u32 };
    }
    // Valid until the next table is added or removed, which happens only
    // while plugins initialise or go.
    if registry.infos.is_empty() {
        ptr::NonNull::dangling().as_ptr()
    } else {
        registry.infos.as_ptr().cast_mut()
    }
}

pub(super) unsafe extern "C-unwind" fn get_table(
    owner: *mut api::ss_plugin_owner_t,
    name: *const c_char,
    key_type: api::ss_plugin_state_type,
) -> *mut api::ss_plugin_table_t {
    if name.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: a NUL-terminated name the plugin passes for this call.
    let name = unsafe { CStr::from_ptr(name) };
    let registry = registry();
    let Some(found) = registry.tables.iter().find(|t| t.name.as_c_str() == name) else {
        drop(registry);
        set_error(
            owner,
            format!("no state table named '{}'", name.to_string_lossy()),
        );
        return ptr::null_mut();
    };
    if found.key_type != key_type {
        let have = found.key_type;
        drop(registry);
        set_error(
            owner,
            format!(
                "state table '{}' has key type {have}, not {key_type}",
                name.to_string_lossy()
            ),
        );
        return ptr::null_mut();
    }
    (&**found as *const Hosted).cast_mut().cast()
}

pub(super) unsafe extern "C-unwind" fn add_table(
    owner: *mut api::ss_plugin_owner_t,
    input: *const api::ss_plugin_table_input,
) -> api::ss_plugin_rc {
    // SAFETY: the input the plugin passes for this call.
    let Some(input) = (unsafe { input.as_ref() }) else {
        return api::ss_plugin_rc_SS_PLUGIN_FAILURE;
    };
    if input.name.is_null() || input.table.is_null() {
        set_error(owner, "add_table: a table needs a name and a handle".into());
        return api::ss_plugin_rc_SS_PLUGIN_FAILURE;
    }
    // SAFETY: a NUL-terminated name, copied at once.
    let name = unsafe { CStr::from_ptr(input.name) }.to_owned();
    // SAFETY: the ext vtable the plugin passes for this call (NULL or
    // valid), copied by value; absent, the plain vtable stands in (the calls
    // it lacks stay None and fail).
    let reader = unsafe { input.reader_ext.as_ref() }.copied().unwrap_or(
        api::ss_plugin_table_reader_vtable_ext {
            get_table_name: input.reader.get_table_name,
            get_table_size: input.reader.get_table_size,
            get_table_entry: input.reader.get_table_entry,
            read_entry_field: input.reader.read_entry_field,
            release_table_entry: None,
            iterate_entries: None,
        },
    );
    // SAFETY: as for the reader.
    let writer = unsafe { input.writer_ext.as_ref() }.copied().unwrap_or(
        api::ss_plugin_table_writer_vtable_ext {
            clear_table: input.writer.clear_table,
            erase_table_entry: input.writer.erase_table_entry,
            create_table_entry: input.writer.create_table_entry,
            destroy_table_entry: input.writer.destroy_table_entry,
            add_table_entry: input.writer.add_table_entry,
            write_entry_field: input.writer.write_entry_field,
        },
    );
    // SAFETY: as for the reader.
    let fields = unsafe { input.fields_ext.as_ref() }.copied().unwrap_or(
        api::ss_plugin_table_fields_vtable_ext {
            list_table_fields: input.fields.list_table_fields,
            get_table_field: input.fields.get_table_field,
            add_table_field: input.fields.add_table_field,
        },
    );
    let mut registry = registry();
    if registry.tables.iter().any(|t| t.name == name) {
        drop(registry);
        set_error(
            owner,
            format!(
                "cannot add table '{}': a table of that name exists",
                name.to_string_lossy()
            ),
        );
        return api::ss_plugin_rc_SS_PLUGIN_FAILURE;
    }
    let mut hosted = Box::new(Hosted {
        input: *input,
        name,
        key_type: input.key_type,
        owner: owner as usize,
        forward: Forward {
            table: input.table,
            reader,
            writer,
            fields,
        },
    });
    // The copy's pointers must outlive the call: to the box's own copies.
    hosted.input.name = hosted.name.as_ptr();
    hosted.input.reader_ext = &mut hosted.forward.reader;
    hosted.input.writer_ext = &mut hosted.forward.writer;
    hosted.input.fields_ext = &mut hosted.forward.fields;
    registry.tables.push(hosted);
    registry.rebuild_infos();
    api::ss_plugin_rc_SS_PLUGIN_SUCCESS
}

/// Answers a call on one of the host's tables with `threads::$host`, or
/// calls the owner's `$vtable.$call` on its table with the other
/// arguments, or returns `$failed` for a handle the host did not give or
/// a call the owner does not implement.
macro_rules! forward {
    ($t:expr, $host:ident, $vtable:ident . $call:ident ( $($arg:expr),* ), $failed:expr) => {{
        if let Some(target) = threads::target($t) {
            threads::$host(target $(, $arg)*)
        } else {
            match forward($t).and_then(|f| f.$vtable.$call.map(|call| (f.table, call))) {
                // SAFETY: the owner's own function on the owner's own table,
                // with the arguments the calling plugin passed for this call.
                Some((table, call)) => unsafe { call(table $(, $arg)*) },
                None => $failed,
            }
        }
    }};
}

const FAILURE: api::ss_plugin_rc = api::ss_plugin_rc_SS_PLUGIN_FAILURE;

pub(super) unsafe extern "C-unwind" fn list_table_fields(
    t: *mut api::ss_plugin_table_t,
    nfields: *mut u32,
) -> *const api::ss_plugin_table_fieldinfo {
    forward!(t, list_fields, fields.list_table_fields(nfields), {
        if !nfields.is_null() {
            // SAFETY: the plugin passes where to write the count.
            unsafe { *nfields = 0 };
        }
        ptr::null()
    })
}

pub(super) unsafe extern "C-unwind" fn get_table_field(
    t: *mut api::ss_plugin_table_t,
    name: *const c_char,
    data_type: api::ss_plugin_state_type,
) -> *mut api::ss_plugin_table_field_t {
    forward!(
        t,
        get_field,
        fields.get_table_field(name, data_type),
        ptr::null_mut()
    )
}

pub(super) unsafe extern "C-unwind" fn add_table_field(
    t: *mut api::ss_plugin_table_t,
    name: *const c_char,
    data_type: api::ss_plugin_state_type,
) -> *mut api::ss_plugin_table_field_t {
    forward!(
        t,
        add_field,
        fields.add_table_field(name, data_type),
        ptr::null_mut()
    )
}

pub(super) unsafe extern "C-unwind" fn table_name(t: *mut api::ss_plugin_table_t) -> *const c_char {
    forward!(t, name, reader.get_table_name(), ptr::null())
}

pub(super) unsafe extern "C-unwind" fn table_size(t: *mut api::ss_plugin_table_t) -> u64 {
    forward!(t, size, reader.get_table_size(), u64::MAX)
}

pub(super) unsafe extern "C-unwind" fn table_entry(
    t: *mut api::ss_plugin_table_t,
    key: *const api::ss_plugin_state_data,
) -> *mut api::ss_plugin_table_entry_t {
    forward!(t, entry, reader.get_table_entry(key), ptr::null_mut())
}

pub(super) unsafe extern "C-unwind" fn read_field(
    t: *mut api::ss_plugin_table_t,
    e: *mut api::ss_plugin_table_entry_t,
    f: *const api::ss_plugin_table_field_t,
    out: *mut api::ss_plugin_state_data,
) -> api::ss_plugin_rc {
    forward!(t, read, reader.read_entry_field(e, f, out), FAILURE)
}

pub(super) unsafe extern "C-unwind" fn release_entry(
    t: *mut api::ss_plugin_table_t,
    e: *mut api::ss_plugin_table_entry_t,
) {
    forward!(t, release, reader.release_table_entry(e), ())
}

pub(super) unsafe extern "C-unwind" fn iterate(
    t: *mut api::ss_plugin_table_t,
    it: api::ss_plugin_table_iterator_func_t,
    s: *mut api::ss_plugin_table_iterator_state_t,
) -> api::ss_plugin_bool {
    forward!(t, iterate, reader.iterate_entries(it, s), 0)
}

pub(super) unsafe extern "C-unwind" fn clear(t: *mut api::ss_plugin_table_t) -> api::ss_plugin_rc {
    forward!(t, clear, writer.clear_table(), FAILURE)
}

pub(super) unsafe extern "C-unwind" fn erase(
    t: *mut api::ss_plugin_table_t,
    key: *const api::ss_plugin_state_data,
) -> api::ss_plugin_rc {
    forward!(t, erase, writer.erase_table_entry(key), FAILURE)
}

pub(super) unsafe extern "C-unwind" fn create_entry(
    t: *mut api::ss_plugin_table_t,
) -> *mut api::ss_plugin_table_entry_t {
    forward!(
        t,
        create_entry,
        writer.create_table_entry(),
        ptr::null_mut()
    )
}

pub(super) unsafe extern "C-unwind" fn destroy_entry(
    t: *mut api::ss_plugin_table_t,
    e: *mut api::ss_plugin_table_entry_t,
) {
    forward!(t, destroy, writer.destroy_table_entry(e), ())
}

pub(super) unsafe extern "C-unwind" fn add_entry(
    t: *mut api::ss_plugin_table_t,
    key: *const api::ss_plugin_state_data,
    entry: *mut api::ss_plugin_table_entry_t,
) -> *mut api::ss_plugin_table_entry_t {
    forward!(
        t,
        add_entry,
        writer.add_table_entry(key, entry),
        ptr::null_mut()
    )
}

pub(super) unsafe extern "C-unwind" fn write_field(
    t: *mut api::ss_plugin_table_t,
    e: *mut api::ss_plugin_table_entry_t,
    f: *const api::ss_plugin_table_field_t,
    value: *const api::ss_plugin_state_data,
) -> api::ss_plugin_rc {
    forward!(t, write, writer.write_entry_field(e, f, value), FAILURE)
}
