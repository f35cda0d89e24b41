//! `peregrine --version`: the versions Peregrine reports, as text or, with
//! `json_output` (as `falco --version -o json_output=true`), as JSON whose
//! engine keys are Falco's, so tools that pick rules artifacts by engine
//! version (falcoctl) read them the same way.

use std::sync::Mutex;

use serde_json::{json, Map, Value as Json};

use crate::sources::plugins::version::HOST_API;

/// The loaded plugins' names and versions, as the last plugin load found
/// them: `/versions` reports them (Falco's `plugin_versions`), for tools
/// that check a plugin artifact's requirements against the agent.
static LOADED_PLUGINS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Records the plugins now loaded (replacing what was recorded before).
pub fn record_plugins(plugins: impl IntoIterator<Item = (String, String)>) {
    let mut loaded = LOADED_PLUGINS.lock().unwrap_or_else(|e| e.into_inner());
    *loaded = plugins.into_iter().collect();
}

/// The rules-engine version, `(major, minor, patch)`.
fn engine() -> (u64, u64, u64) {
    peregrine_engine::rules::ENGINE_VERSION
}

fn driver_api() -> String {
    format!(
        "{}.{}.{}",
        peregrine_driver_sys::abi::PG_API_VERSION_MAJOR,
        peregrine_driver_sys::abi::PG_API_VERSION_MINOR,
        peregrine_driver_sys::abi::PG_API_VERSION_PATCH
    )
}

/// The JSON form, of `--version` with `json_output` and of the webserver's
/// `/versions`: `engine_version` is the minor number alone and
/// `engine_version_semver` the whole version, `plugin_api_version` the
/// plugin API offered and `plugin_versions` (when plugins are loaded) each
/// one's version, as Falco writes them. falcoctl reads these keys to
/// check a rules or plugin artifact's requirements.
pub fn as_json() -> Json {
    let (major, minor, patch) = engine();
    let mut v = json!({
        "peregrine_version": env!("CARGO_PKG_VERSION"),
        "driver_api_version": driver_api(),
        "engine_version": minor.to_string(),
        "engine_version_semver": format!("{major}.{minor}.{patch}"),
        "plugin_api_version": HOST_API.to_string(),
    });
    let loaded = LOADED_PLUGINS.lock().unwrap_or_else(|e| e.into_inner());
    if !loaded.is_empty() {
        let versions: Map<String, Json> = loaded
            .iter()
            .map(|(name, version)| (name.clone(), Json::from(version.as_str())))
            .collect();
        v["plugin_versions"] = Json::Object(versions);
    }
    v
}

/// The text form, in the labelled columns of `falco --version`, so the
/// scripts that read a line by its label (`Engine:`, `Plugin API:`,
/// `API version:`) read Peregrine's. Peregrine has no libs or default
/// driver version, so those lines are not written.
pub fn as_text() -> String {
    let (major, minor, patch) = engine();
    format!(
        "Peregrine version: {}\n\
         Plugin API:    {HOST_API}\n\
         Engine:        {major}.{minor}.{patch}\n\
         Driver:\n\
         \x20 API version:    {}\n",
        env!("CARGO_PKG_VERSION"),
        driver_api()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_carries_falcos_engine_keys() {
        let v = as_json();
        let (major, minor, patch) = engine();
        assert_eq!(v["engine_version"], minor.to_string());
        assert_eq!(
            v["engine_version_semver"],
            format!("{major}.{minor}.{patch}")
        );
        let text = as_text();
        assert!(
            text.contains(&format!("\nEngine:        {major}.{minor}.{patch}\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("\n  API version:    {}\n", driver_api())),
            "{text}"
        );
        assert_eq!(v["plugin_api_version"], HOST_API.to_string());
    }

    #[test]
    fn loaded_plugins_are_listed_with_their_versions() {
        record_plugins([("k8saudit".to_string(), "0.11.0".to_string())]);
        let v = as_json();
        record_plugins([]);
        assert_eq!(v["plugin_versions"]["k8saudit"], "0.11.0", "{v}");
        assert!(as_json().get("plugin_versions").is_none());
    }
}
