//! `--support`: one JSON document for a bug report, as Falco's: the
//! system (uname), the versions, the command line, the config as merged
//! and every rules file loaded with its content.

use serde_json::{json, Value as Json};

use crate::ruleset::RulesInput;

/// The document; `config` is the merged config document.
pub fn document(cmdline: &str, config: &serde_yaml::Value, rules: &[RulesInput]) -> Json {
    let system = nix::sys::utsname::uname().ok();
    let field = |get: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        system
            .as_ref()
            .map(|u| get(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let driver_api = format!(
        "{}.{}.{}",
        peregrine_driver_sys::abi::PG_API_VERSION_MAJOR,
        peregrine_driver_sys::abi::PG_API_VERSION_MINOR,
        peregrine_driver_sys::abi::PG_API_VERSION_PATCH
    );
    let (major, minor, patch) = peregrine_engine::rules::ENGINE_VERSION;
    let rules_files: Vec<Json> = rules
        .iter()
        .map(|input| {
            let content = match input {
                RulesInput::File(path) => std::fs::read_to_string(path).unwrap_or_default(),
                RulesInput::BuiltIn { text, .. } => (*text).to_string(),
                RulesInput::Text { text, .. } => text.clone(),
            };
            json!({ "name": input.name(), "variants": [{ "content": content }] })
        })
        .collect();
    json!({
        "system_info": {
            "sysname": field(|u| u.sysname()),
            "nodename": field(|u| u.nodename()),
            "release": field(|u| u.release()),
            "version": field(|u| u.version()),
            "machine": field(|u| u.machine()),
        },
        "version": env!("CARGO_PKG_VERSION"),
        "engine_info": {
            "falco_version": env!("CARGO_PKG_VERSION"),
            "driver_api_version": driver_api,
            "engine_version": minor.to_string(),
            "engine_version_semver": format!("{major}.{minor}.{patch}"),
        },
        "cmdline": cmdline,
        "config": serde_json::to_value(config).unwrap_or(Json::Null),
        "rules_files": rules_files,
    })
}
