//! `peregrine --version`: the versions Peregrine reports, as text or, with
//! `json_output` (as `falco --version -o json_output=true`), as JSON whose
//! engine keys are Falco's, so tools that pick rules artifacts by engine
//! version (falcoctl) read them the same way.

use serde_json::{json, Value as Json};

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

/// The JSON form: `engine_version` is the minor number alone and
/// `engine_version_semver` the whole version, as Falco writes them.
pub fn as_json() -> Json {
    let (major, minor, patch) = engine();
    json!({
        "peregrine_version": env!("CARGO_PKG_VERSION"),
        "driver_api_version": driver_api(),
        "engine_version": minor.to_string(),
        "engine_version_semver": format!("{major}.{minor}.{patch}"),
    })
}

/// The text form, one line per component.
pub fn as_text() -> String {
    let (major, minor, patch) = engine();
    format!(
        "peregrine {}\ndriver API {}\nrules engine {major}.{minor}.{patch}\n",
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
        assert!(as_text().contains(&format!("rules engine {major}.{minor}.{patch}")));
    }
}
