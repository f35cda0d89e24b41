//! One loaded plugin: the shared library, its `plugin_*` symbols, what it
//! says about itself, and its state between `plugin_init` and
//! `plugin_destroy`.
//!
//! The ABI's types come from `falco_plugin_api` (Falco's plugin SDK's
//! bindings); the symbols are looked up one by one under their exported
//! names, as Falco's loader does, into the SDK's `plugin_api` table so that
//! every call goes through the exact C signature.

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};

use falco_plugin_api as api;
use libloading::Library;
use serde::Deserialize;

use super::owner::Owner;
use super::version::{self, Version};
use super::PluginError;

/// What a plugin can do (Falco's capabilities).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub sourcing: bool,
    pub extraction: bool,
    pub parsing: bool,
    pub async_events: bool,
    pub capture_listening: bool,
}

impl Capabilities {
    pub fn any(&self) -> bool {
        self.sourcing
            || self.extraction
            || self.parsing
            || self.async_events
            || self.capture_listening
    }

    /// Falco's names, for `--list-plugins`.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.sourcing {
            names.push("event sourcing");
        }
        if self.extraction {
            names.push("field extraction");
        }
        if self.parsing {
            names.push("event parsing");
        }
        if self.async_events {
            names.push("async events");
        }
        if self.capture_listening {
            names.push("capture listening");
        }
        names
    }
}

/// The argument a plugin field takes (`field[arg]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct FieldArg {
    #[serde(rename = "isRequired", default, deserialize_with = "null_as_default")]
    pub is_required: bool,
    #[serde(rename = "isIndex", default, deserialize_with = "null_as_default")]
    pub is_index: bool,
    #[serde(rename = "isKey", default, deserialize_with = "null_as_default")]
    pub is_key: bool,
}

/// One field as `plugin_get_fields` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct FieldInfo {
    #[serde(rename = "type")]
    pub type_name: String,
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub desc: String,
    #[serde(rename = "isList", default, deserialize_with = "null_as_default")]
    pub is_list: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub arg: FieldArg,
    #[serde(default, deserialize_with = "null_as_default")]
    pub display: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub properties: Vec<String>,
    /// The ABI's type code, from `type_name`.
    #[serde(skip)]
    pub ftype: u32,
}

/// A key given as JSON `null` reads as absent: Falco's SDK for Rust writes
/// `"arg": null` for a field without argument, and libsinsp takes it.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Maps a field's declared type to the ABI's code.
fn field_type_code(name: &str) -> Option<u32> {
    Some(match name {
        "string" => api::ss_plugin_field_type_FTYPE_STRING,
        "uint64" => api::ss_plugin_field_type_FTYPE_UINT64,
        "bool" => api::ss_plugin_field_type_FTYPE_BOOL,
        "reltime" => api::ss_plugin_field_type_FTYPE_RELTIME,
        "abstime" => api::ss_plugin_field_type_FTYPE_ABSTIME,
        "ipaddr" => api::ss_plugin_field_type_FTYPE_IPADDR,
        "ipnet" => api::ss_plugin_field_type_FTYPE_IPNET,
        _ => return None,
    })
}

/// What a plugin says about itself, read before init.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub name: String,
    pub description: String,
    pub contact: String,
    pub version: String,
    pub required_api_version: String,
    pub library_path: PathBuf,
    pub capabilities: Capabilities,
    /// Event sourcing: the plugin's id and the source its events belong to.
    pub id: u32,
    pub event_source: String,
    /// Extraction: the sources its fields apply to (empty: every source
    /// whose events it can read, which for a source plugin is its own).
    pub extract_sources: Vec<String>,
    pub fields: Vec<FieldInfo>,
    pub parse_sources: Vec<String>,
    pub async_sources: Vec<String>,
    pub async_events: Vec<String>,
    /// The JSON schema of its init config, when it gives one.
    pub init_schema: Option<String>,
}

impl PluginInfo {
    /// A plugin described by hand, for tests: `source` (none when empty)
    /// with the string fields `fields`; its id is 999 when it sources
    /// events, 0 otherwise.
    #[cfg(test)]
    pub(crate) fn for_tests(name: &str, source: &str, fields: &[&str]) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            description: String::new(),
            contact: String::new(),
            version: "0.1.0".into(),
            required_api_version: "3.0.0".into(),
            library_path: "/x.so".into(),
            capabilities: Capabilities {
                sourcing: !source.is_empty(),
                extraction: !fields.is_empty(),
                ..Capabilities::default()
            },
            id: u32::from(!source.is_empty()) * 999,
            event_source: source.into(),
            extract_sources: Vec::new(),
            fields: fields
                .iter()
                .map(|f| {
                    serde_json::from_value(serde_json::json!({"name": f, "type": "string"}))
                        .expect("a field")
                })
                .collect(),
            parse_sources: Vec::new(),
            async_sources: Vec::new(),
            async_events: Vec::new(),
            init_schema: None,
        }
    }

    /// Whether this plugin's fields may be used on events of `source`.
    pub fn extracts_from(&self, source: &str) -> bool {
        self.serves(self.capabilities.extraction, &self.extract_sources, source)
    }

    /// Whether this plugin parses events of `source`.
    pub fn parses_from(&self, source: &str) -> bool {
        self.serves(self.capabilities.parsing, &self.parse_sources, source)
    }

    /// Whether this plugin's async events go to `source`.
    pub fn sends_async_to(&self, source: &str) -> bool {
        self.serves(self.capabilities.async_events, &self.async_sources, source)
    }

    /// libsinsp's rule for the sources of a capability: a source plugin
    /// serves its own source and those it lists; a plugin that sources
    /// nothing and lists nothing serves every source.
    fn serves(&self, capable: bool, listed: &[String], source: &str) -> bool {
        if !capable {
            return false;
        }
        if self.capabilities.sourcing && self.event_source == source {
            return true;
        }
        if listed.is_empty() {
            return !self.capabilities.sourcing;
        }
        listed.iter().any(|s| s == source)
    }

    pub fn version(&self) -> Option<Version> {
        Version::parse(&self.version)
    }
}

/// A loaded library with its symbols, before init.
pub struct Loaded {
    pub api: api::plugin_api,
    pub info: PluginInfo,
    /// Kept alive for every function pointer in `api`; dropped last.
    pub library: Library,
}

/// Reads a C string a plugin returns; None for NULL.
///
/// # Safety
/// `text` is NULL or points to a NUL-terminated string that lives at least
/// until this returns.
pub(super) unsafe fn owned_string(text: *const c_char) -> Option<String> {
    if text.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    Some(
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// Calls one of the plugin's string getters.
fn get_string(getter: Option<unsafe extern "C-unwind" fn() -> *const c_char>) -> Option<String> {
    let getter = getter?;
    // SAFETY: a symbol of the C ABI with no arguments returning a C string
    // the plugin owns; it is copied at once.
    unsafe { owned_string(getter()) }
}

/// Looks up `plugin_<name>` and stores it, typed as the ABI table's slot.
macro_rules! symbol {
    ($library:expr, $slot:expr, $name:literal) => {{
        // SAFETY: the slot's type is the C signature the plugin API defines
        // for this exported name; a plugin exporting the name with another
        // signature breaks the ABI it declares it implements.
        $slot = unsafe { $library.get(concat!("plugin_", $name, "\0").as_bytes()) }
            .ok()
            .map(|s: libloading::Symbol<_>| *s);
    }};
}

/// Opens `path`, checks the API version and reads the plugin's info.
pub fn open(path: &Path) -> Result<Loaded, PluginError> {
    // SAFETY: loading a plugin runs its initialisers; that a configured
    // plugin may run code is what loading plugins means, as in Falco.
    let library = unsafe { Library::new(path) }.map_err(|e| PluginError::Load {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    // SAFETY: all-NULL is a valid plugin_api (every slot is an Option).
    let mut table: api::plugin_api = unsafe { std::mem::zeroed() };
    symbol!(
        library,
        table.get_required_api_version,
        "get_required_api_version"
    );
    symbol!(library, table.get_init_schema, "get_init_schema");
    symbol!(library, table.init, "init");
    symbol!(library, table.destroy, "destroy");
    symbol!(library, table.get_last_error, "get_last_error");
    symbol!(library, table.get_name, "get_name");
    symbol!(library, table.get_description, "get_description");
    symbol!(library, table.get_contact, "get_contact");
    symbol!(library, table.get_version, "get_version");
    symbol!(library, table.set_config, "set_config");
    symbol!(library, table.get_metrics, "get_metrics");
    symbol!(library, table.__bindgen_anon_1.get_id, "get_id");
    symbol!(
        library,
        table.__bindgen_anon_1.get_event_source,
        "get_event_source"
    );
    symbol!(library, table.__bindgen_anon_1.open, "open");
    symbol!(library, table.__bindgen_anon_1.close, "close");
    symbol!(
        library,
        table.__bindgen_anon_1.list_open_params,
        "list_open_params"
    );
    symbol!(library, table.__bindgen_anon_1.get_progress, "get_progress");
    symbol!(
        library,
        table.__bindgen_anon_1.event_to_string,
        "event_to_string"
    );
    symbol!(library, table.__bindgen_anon_1.next_batch, "next_batch");
    symbol!(
        library,
        table.__bindgen_anon_2.get_extract_event_types,
        "get_extract_event_types"
    );
    symbol!(
        library,
        table.__bindgen_anon_2.get_extract_event_sources,
        "get_extract_event_sources"
    );
    symbol!(library, table.__bindgen_anon_2.get_fields, "get_fields");
    symbol!(
        library,
        table.__bindgen_anon_2.extract_fields,
        "extract_fields"
    );
    symbol!(
        library,
        table.__bindgen_anon_3.get_parse_event_types,
        "get_parse_event_types"
    );
    symbol!(
        library,
        table.__bindgen_anon_3.get_parse_event_sources,
        "get_parse_event_sources"
    );
    symbol!(library, table.__bindgen_anon_3.parse_event, "parse_event");
    symbol!(
        library,
        table.__bindgen_anon_4.get_async_event_sources,
        "get_async_event_sources"
    );
    symbol!(
        library,
        table.__bindgen_anon_4.get_async_events,
        "get_async_events"
    );
    symbol!(
        library,
        table.__bindgen_anon_4.set_async_event_handler,
        "set_async_event_handler"
    );
    symbol!(library, table.__bindgen_anon_4.dump_state, "dump_state");
    symbol!(library, table.__bindgen_anon_5.capture_open, "capture_open");
    symbol!(
        library,
        table.__bindgen_anon_5.capture_close,
        "capture_close"
    );

    let bad = |message: String| PluginError::Load {
        path: path.to_path_buf(),
        message,
    };
    // The API version first: a plugin for another major may lack or
    // change every other symbol.
    if table.get_required_api_version.is_none() {
        return Err(bad(
            "symbol 'plugin_get_required_api_version' is missing".into()
        ));
    }
    let required_api_version = get_string(table.get_required_api_version).unwrap_or_default();
    version::check_required_api(&required_api_version).map_err(bad)?;
    // The symbols every plugin must have, whatever it does.
    let required = [
        ("get_version", table.get_version.is_some()),
        ("get_name", table.get_name.is_some()),
        ("get_description", table.get_description.is_some()),
        ("get_contact", table.get_contact.is_some()),
        ("init", table.init.is_some()),
        ("destroy", table.destroy.is_some()),
        ("get_last_error", table.get_last_error.is_some()),
    ];
    if let Some((name, _)) = required.iter().find(|(_, present)| !present) {
        return Err(bad(format!("symbol 'plugin_{name}' is missing")));
    }
    let name = get_string(table.get_name).unwrap_or_default();
    if name.is_empty() {
        return Err(bad("plugin_get_name returned no name".into()));
    }
    let plugin_version = get_string(table.get_version).unwrap_or_default();
    if Version::parse(&plugin_version).is_none() {
        return Err(bad(format!(
            "plugin '{name}' provided an invalid version string: '{plugin_version}'"
        )));
    }

    let a1 = &table.__bindgen_anon_1;
    let a2 = &table.__bindgen_anon_2;
    let a3 = &table.__bindgen_anon_3;
    let a4 = &table.__bindgen_anon_4;
    let a5 = &table.__bindgen_anon_5;
    let capabilities = Capabilities {
        sourcing: a1.open.is_some() && a1.close.is_some() && a1.next_batch.is_some(),
        extraction: a2.get_fields.is_some() && a2.extract_fields.is_some(),
        parsing: a3.parse_event.is_some(),
        async_events: a4.get_async_events.is_some() && a4.set_async_event_handler.is_some(),
        capture_listening: a5.capture_open.is_some() && a5.capture_close.is_some(),
    };
    if !capabilities.any() {
        return Err(bad(format!("plugin '{name}' implements no capability")));
    }

    let mut info = PluginInfo {
        description: get_string(table.get_description).unwrap_or_default(),
        contact: get_string(table.get_contact).unwrap_or_default(),
        version: plugin_version,
        required_api_version,
        library_path: path.to_path_buf(),
        capabilities,
        id: 0,
        event_source: String::new(),
        extract_sources: Vec::new(),
        fields: Vec::new(),
        parse_sources: Vec::new(),
        async_sources: Vec::new(),
        async_events: Vec::new(),
        init_schema: None,
        name,
    };
    let sources_list = |getter, what: &str| -> Result<Vec<String>, PluginError> {
        match get_string(getter) {
            None => Ok(Vec::new()),
            Some(text) if text.trim().is_empty() => Ok(Vec::new()),
            Some(text) => {
                serde_json::from_str::<Vec<String>>(&text).map_err(|e| PluginError::Load {
                    path: path.to_path_buf(),
                    message: format!(
                        "plugin '{}' returned an invalid {what} list: {e}",
                        info.name
                    ),
                })
            }
        }
    };
    if capabilities.sourcing {
        if let Some(get_id) = a1.get_id {
            // SAFETY: C ABI symbol with no arguments.
            info.id = unsafe { get_id() };
        }
        info.event_source = get_string(a1.get_event_source).unwrap_or_default();
        if info.id == 0 || info.event_source.is_empty() {
            return Err(bad(format!(
                "plugin '{}' sources events with id {} and source '{}': a plugin source needs a non-zero id and a source name (plugins sourcing syscall events are not supported)",
                info.name, info.id, info.event_source
            )));
        }
        if info.event_source == "syscall" {
            return Err(bad(format!(
                "plugin '{}' declares the reserved source name 'syscall'",
                info.name
            )));
        }
    }
    if capabilities.extraction {
        info.extract_sources = sources_list(a2.get_extract_event_sources, "extraction source")?;
        let text = get_string(a2.get_fields).unwrap_or_default();
        let mut fields: Vec<FieldInfo> = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "plugin '{}' returned invalid field definitions: {e}",
                info.name
            ))
        })?;
        let mut seen = std::collections::HashSet::new();
        for field in &mut fields {
            if field.name.is_empty() {
                return Err(bad(format!(
                    "plugin '{}' defines a field with no name",
                    info.name
                )));
            }
            field.ftype = field_type_code(&field.type_name).ok_or_else(|| {
                bad(format!(
                    "plugin '{}' field '{}' has unknown type '{}'",
                    info.name, field.name, field.type_name
                ))
            })?;
            if field.arg.is_required && !field.arg.is_index && !field.arg.is_key {
                return Err(bad(format!(
                    "plugin '{}' field '{}' requires an argument that is neither an index nor a key",
                    info.name, field.name
                )));
            }
            if !seen.insert(field.name.clone()) {
                return Err(bad(format!(
                    "plugin '{}' defines the field '{}' twice",
                    info.name, field.name
                )));
            }
        }
        info.fields = fields;
    }
    if capabilities.parsing {
        info.parse_sources = sources_list(a3.get_parse_event_sources, "parsing source")?;
    }
    if capabilities.async_events {
        info.async_sources = sources_list(a4.get_async_event_sources, "async source")?;
        info.async_events = sources_list(a4.get_async_events, "async event name")?;
        if info.async_events.is_empty() {
            return Err(bad(format!(
                "plugin '{}' declares async events but names none",
                info.name
            )));
        }
    }
    if let Some(get_schema) = table.get_init_schema {
        let mut kind: api::ss_plugin_schema_type = api::ss_plugin_schema_type_SS_PLUGIN_SCHEMA_NONE;
        // SAFETY: C ABI symbol writing the schema type through the pointer.
        let schema = unsafe { owned_string(get_schema(&mut kind)) };
        if kind == api::ss_plugin_schema_type_SS_PLUGIN_SCHEMA_JSON {
            info.init_schema = schema.filter(|s| !s.trim().is_empty());
        }
    }
    Ok(Loaded {
        api: table,
        info,
        library,
    })
}

/// A plugin's last error, or a stand-in when it has none to give.
///
/// # Safety
/// `state` is the plugin's live state (or NULL, then nothing is asked).
pub(super) unsafe fn last_error(table: &api::plugin_api, state: *mut api::ss_plugin_t) -> String {
    if state.is_null() {
        return "no error message".into();
    }
    match table.get_last_error {
        // SAFETY: state is live by the caller's contract.
        Some(get) => unsafe { owned_string(get(state)) }
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "no error message".into()),
        None => "no error message".into(),
    }
}

/// The config text a plugin is initialised with, checked as Falco checks
/// it when the plugin publishes a JSON schema: empty becomes `{}`, and the
/// text must be JSON that the schema accepts.
pub fn checked_init_config(info: &PluginInfo, config: &str) -> Result<CString, PluginError> {
    let mut text = config.to_string();
    if let Some(schema) = &info.init_schema {
        if text.trim().is_empty() {
            text = "{}".into();
        }
        let init_error = |message: String| PluginError::Init {
            plugin: info.name.clone(),
            message,
        };
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| init_error(format!("init config is not valid JSON: {e}")))?;
        let schema: serde_json::Value = serde_json::from_str(schema)
            .map_err(|e| init_error(format!("the plugin's init schema is not valid JSON: {e}")))?;
        super::schema::validate(&schema, &value, "").map_err(|e| {
            init_error(format!(
                "init config does not match the plugin's schema: {e}"
            ))
        })?;
    }
    CString::new(text).map_err(|_| PluginError::Init {
        plugin: info.name.clone(),
        message: "init config contains a NUL byte".into(),
    })
}

/// Runs `plugin_init`. Returns the state, or the plugin's error after
/// destroying whatever state it returned.
pub(super) fn init(
    lib: &Loaded,
    config: &CStr,
    owner: *mut Owner,
    tables: *const api::ss_plugin_init_tables_input,
) -> Result<*mut api::ss_plugin_t, PluginError> {
    let input = api::ss_plugin_init_input {
        config: config.as_ptr(),
        owner: owner.cast(),
        get_owner_last_error: Some(super::owner::get_owner_last_error),
        tables,
        log_fn: Some(super::owner::log),
    };
    let mut rc: api::ss_plugin_rc = api::ss_plugin_rc_SS_PLUGIN_FAILURE;
    let Some(init) = lib.api.init else {
        return Err(PluginError::Init {
            plugin: lib.info.name.clone(),
            message: "plugin_init is missing".into(),
        });
    };
    // SAFETY: input and the config text outlive the call; the owner and
    // tables pointers stay valid while the plugin lives (the caller boxes
    // them next to the state).
    let state = unsafe { init(&input, &mut rc) };
    if rc != api::ss_plugin_rc_SS_PLUGIN_SUCCESS || state.is_null() {
        // SAFETY: state is what init returned, possibly NULL.
        let message = unsafe { last_error(&lib.api, state) };
        if !state.is_null() {
            if let Some(destroy) = lib.api.destroy {
                // SAFETY: a state init returned, destroyed once.
                unsafe { destroy(state) };
            }
        }
        return Err(PluginError::Init {
            plugin: lib.info.name.clone(),
            message: if state.is_null() && rc == api::ss_plugin_rc_SS_PLUGIN_SUCCESS {
                "plugin_init returned no state".into()
            } else {
                message
            },
        });
    }
    Ok(state)
}
