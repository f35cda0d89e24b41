//! Falco plugins through the plugin C API: shared libraries that add event
//! sources, fields, event parsing and async events. This module is the
//! host: it loads what the config's `plugins`/`load_plugins` name, checks
//! each plugin's API version, init config and answers, and hands the
//! rules side a field source per plugin event source.
//!
//! The ABI's types are `falco_plugin_api`'s (Falco's plugin SDK's bindgen
//! output); `falco_plugin_runner`, the SDK's pure-Rust runner, is not used:
//! it owns the event loop and its own tables, where Peregrine needs its
//! loops, its rules and its error reporting per plugin.

pub mod capture;
pub mod event;
pub mod feed;
pub mod fields;
pub mod host;
pub mod library;
pub mod metrics;
mod overlap;
mod owner;
pub mod plugin;
pub mod requirements;
mod routines;
mod schema;
pub mod syscall;
mod tables;
mod threads;
pub mod version;

use std::path::{Path, PathBuf};

use serde_yaml::Value as Yaml;

pub use event::PluginEvent;
pub use fields::output_field_type;
pub use library::{Capabilities, FieldInfo, PluginInfo};
pub use plugin::{Batch, Plugin};

/// Where Falco looks for a plugin whose `library_path` is relative.
pub const PLUGINS_DIR: &str = "/usr/share/falco/plugins";

/// Everything that can go wrong with a plugin; each names the plugin (or
/// the library when its name is not yet known).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot load plugin library {path}: {message}", path = path.display())]
    Load { path: PathBuf, message: String },
    #[error("plugin '{plugin}': init failed: {message}")]
    Init { plugin: String, message: String },
    #[error("plugin '{plugin}': {call} failed: {message}")]
    Call {
        plugin: String,
        call: &'static str,
        message: String,
    },
    #[error("plugin '{plugin}' returned malformed data: {message}")]
    Malformed { plugin: String, message: String },
    #[error("{0}")]
    Config(String),
}

/// One entry of the config's `plugins` list.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    pub name: String,
    pub library_path: PathBuf,
    /// The init config as the plugin gets it: a string as written, or a
    /// mapping turned into JSON.
    pub init_config: String,
    pub open_params: String,
}

impl PluginConfig {
    /// The library's path: absolute as written, or under [`PLUGINS_DIR`].
    pub fn resolved_path(&self) -> PathBuf {
        if self.library_path.is_absolute() {
            self.library_path.clone()
        } else {
            Path::new(PLUGINS_DIR).join(&self.library_path)
        }
    }
}

fn yaml_to_json(value: &Yaml) -> Result<serde_json::Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
}

/// Reads the config's `plugins` entries and picks the ones to load as
/// Falco does: with `load_plugins` absent, all of them in order; with it
/// present, the named ones in its order, a name without an entry being an
/// error.
pub fn selected(
    plugins: &[Yaml],
    load_plugins: Option<&[String]>,
) -> Result<Vec<PluginConfig>, PluginError> {
    let mut all: Vec<PluginConfig> = Vec::new();
    for (index, entry) in plugins.iter().enumerate() {
        let at = |message: String| PluginError::Config(format!("plugins[{index}]: {message}"));
        let Some(map) = entry.as_mapping() else {
            return Err(at("expected a mapping".into()));
        };
        let text = |key: &str| -> Result<Option<String>, PluginError> {
            match map.get(key) {
                None | Some(Yaml::Null) => Ok(None),
                Some(Yaml::String(s)) => Ok(Some(s.clone())),
                Some(Yaml::Number(n)) => Ok(Some(n.to_string())),
                Some(Yaml::Bool(b)) => Ok(Some(b.to_string())),
                Some(_) => Err(at(format!("'{key}' must be a string"))),
            }
        };
        let name = text("name")?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| at("'name' is missing".into()))?;
        // An entry for a plugin whose job Peregrine does itself (the
        // container plugin's init_config, say) may name no library: the
        // built-in part stands in (see `host::BUILT_IN`).
        let library_path = match text("library_path")?.filter(|p| !p.is_empty()) {
            Some(path) => path,
            None if host::is_built_in(&name) => String::new(),
            None => return Err(at(format!("plugin '{name}': 'library_path' is missing"))),
        };
        let init_config = match map.get("init_config") {
            None | Some(Yaml::Null) => String::new(),
            Some(Yaml::String(s)) => s.clone(),
            Some(other) => yaml_to_json(other)
                .map(|json| json.to_string())
                .map_err(|e| at(format!("plugin '{name}': 'init_config': {e}")))?,
        };
        let open_params = text("open_params")?.unwrap_or_default();
        if all.iter().any(|p| p.name == name) {
            return Err(at(format!("found another plugin with name {name}")));
        }
        all.push(PluginConfig {
            name,
            library_path: PathBuf::from(library_path),
            init_config,
            open_params,
        });
    }
    let Some(names) = load_plugins else {
        return Ok(all);
    };
    let mut chosen = Vec::new();
    for name in names {
        let Some(found) = all.iter().find(|p| &p.name == name) else {
            return Err(PluginError::Config(format!(
                "Cannot load plugin '{name}': plugin config not found for given name"
            )));
        };
        if chosen.iter().any(|p: &PluginConfig| &p.name == name) {
            return Err(PluginError::Config(format!(
                "cannot register plugin: found another plugin with name {name}"
            )));
        }
        chosen.push(found.clone());
    }
    Ok(chosen)
}

/// Loads and initialises the plugins `configs` name, in order. The name
/// the library reports must be the config's; two plugins may not source
/// the same id or the same event source.
pub fn load_all(configs: &[PluginConfig]) -> Result<Vec<Plugin>, PluginError> {
    let mut loaded: Vec<Plugin> = Vec::new();
    for config in configs {
        let path = config.resolved_path();
        let plugin = Plugin::load(&path, &config.init_config)?;
        if plugin.name() != config.name {
            return Err(PluginError::Config(format!(
                "plugin config name '{}' does not match the name '{}' of the library {}",
                config.name,
                plugin.name(),
                path.display()
            )));
        }
        let info = plugin.info();
        for other in &loaded {
            let theirs = other.info();
            if info.capabilities.sourcing && theirs.capabilities.sourcing {
                if info.id == theirs.id {
                    return Err(PluginError::Config(format!(
                        "plugins '{}' and '{}' share the event source id {}",
                        theirs.name, info.name, info.id
                    )));
                }
                if info.event_source == theirs.event_source {
                    return Err(PluginError::Config(format!(
                        "plugins '{}' and '{}' both source '{}' events",
                        theirs.name, info.name, info.event_source
                    )));
                }
            }
        }
        loaded.push(plugin);
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Vec<Yaml> {
        serde_yaml::from_str(text).unwrap()
    }

    const TWO: &str = "
- name: a
  library_path: liba.so
  init_config:
    x: 1
    y: [true]
  open_params: 'file:///tmp/x'
- name: b
  library_path: /opt/libb.so
  init_config: 'raw text'
";

    #[test]
    fn without_load_plugins_every_entry_loads_in_order() {
        let all = selected(&yaml(TWO), None).unwrap();
        assert_eq!(
            all.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let init: serde_json::Value = serde_json::from_str(&all[0].init_config).unwrap();
        assert_eq!(init, serde_json::json!({"x": 1, "y": [true]}));
        assert_eq!(all[1].init_config, "raw text");
        assert_eq!(all[0].open_params, "file:///tmp/x");
        assert_eq!(
            all[0].resolved_path(),
            Path::new(PLUGINS_DIR).join("liba.so")
        );
        assert_eq!(all[1].resolved_path(), Path::new("/opt/libb.so"));
    }

    #[test]
    fn only_a_built_in_plugin_may_name_no_library() {
        let container = selected(&yaml("- name: container\n  init_config: {}\n"), None).unwrap();
        assert!(container[0].library_path.as_os_str().is_empty());
        let other = selected(&yaml("- name: cloudtrail\n"), None).unwrap_err();
        assert!(
            other.to_string().contains("'library_path' is missing"),
            "{other}"
        );
    }

    #[test]
    fn load_plugins_picks_in_its_order_and_names_the_unknown() {
        let picked = selected(&yaml(TWO), Some(&["b".into(), "a".into()])).unwrap();
        assert_eq!(
            picked.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert!(selected(&yaml(TWO), Some(&[])).unwrap().is_empty());
        let err = selected(&yaml(TWO), Some(&["c".into()]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Cannot load plugin 'c'"), "{err}");
    }

    #[test]
    fn refuses_entries_without_name_or_path_and_duplicates() {
        assert!(selected(&yaml("- library_path: x.so"), None).is_err());
        assert!(selected(&yaml("- name: a"), None).is_err());
        let twice = "- {name: a, library_path: x.so}\n- {name: a, library_path: y.so}";
        let err = selected(&yaml(twice), None).unwrap_err().to_string();
        assert!(err.contains("found another plugin with name a"), "{err}");
    }
}
