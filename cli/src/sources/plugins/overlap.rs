//! Falco's check that no two providers give a field of the same name to one
//! event source: a plugin whose field is already provided for a source it
//! extracts from (by the built-in fields of that source or by an earlier
//! plugin) stops the start, since which of the two a rule would read is
//! not something a user should have to guess.
//!
//! The plugins whose job Peregrine does itself (`host::BUILT_IN`) are let
//! through when their real library is loaded: their fields that Peregrine
//! has built in resolve to the built-in ones (the built-in source resolves
//! a name before any plugin), and the log says so once per plugin.

use std::collections::HashSet;

use peregrine_engine::field::FieldSource;
use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::syscall_fields::SyscallFields;

use super::library::PluginInfo;

/// The names a source has before any plugin adds to it.
fn built_in_names(source: &str) -> HashSet<String> {
    let names: Vec<&str> = match source {
        "syscall" => SyscallFields::new()
            .fields()
            .iter()
            .map(|f| f.name)
            .collect(),
        "k8s_audit" => K8sAuditSource::new()
            .fields()
            .iter()
            .map(|f| f.name)
            .collect(),
        // A plugin source has the `evt.*` fields Falco gives every plugin
        // event (its generic filtercheck).
        _ => super::fields::event_field_names().collect(),
    };
    names.into_iter().map(str::to_string).collect()
}

/// Checks the plugins, in load order, against the sources of the run:
/// Peregrine's own two and the ones the plugins source. Returns the
/// warnings for the built-in plugins let through, or Falco's error for the
/// first overlap.
pub fn check(
    plugins: &[&PluginInfo],
    is_built_in: impl Fn(&str) -> bool,
) -> Result<Vec<String>, String> {
    let mut sources: Vec<String> = vec!["syscall".into(), "k8s_audit".into()];
    for info in plugins {
        if info.capabilities.sourcing && !sources.contains(&info.event_source) {
            sources.push(info.event_source.clone());
        }
    }
    let mut provided: Vec<HashSet<String>> = sources.iter().map(|s| built_in_names(s)).collect();
    let mut warnings = Vec::new();
    for info in plugins.iter().filter(|i| i.capabilities.extraction) {
        let mut shadowed: Vec<(&str, &str)> = Vec::new();
        for (source, names) in sources.iter().zip(provided.iter_mut()) {
            if !info.extracts_from(source) {
                continue;
            }
            for field in &info.fields {
                if !names.contains(&field.name) {
                    continue;
                }
                if !is_built_in(&info.name) {
                    return Err(format!(
                        "Plugin '{}' supports extraction of field '{}' that is overlapping for source '{}'",
                        info.name, field.name, source
                    ));
                }
                shadowed.push((field.name.as_str(), source.as_str()));
            }
            names.extend(info.fields.iter().map(|f| f.name.clone()));
        }
        if let Some((field, source)) = shadowed.first() {
            warnings.push(format!(
                "Warning: plugin '{}' supports extraction of {} field(s) Peregrine has built in \
                 (first: '{field}' for source '{source}'): the built-in fields take precedence",
                info.name,
                shadowed.len()
            ));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(name: &str, source: &str, extract: &[&str], fields: &[&str]) -> PluginInfo {
        let mut info = PluginInfo::for_tests(name, source, fields);
        info.capabilities.extraction = true;
        info.extract_sources = extract.iter().map(|s| s.to_string()).collect();
        info
    }

    fn never(_: &str) -> bool {
        false
    }

    #[test]
    fn a_field_of_the_syscall_source_is_refused_with_falcos_text() {
        let p = plugin("mine", "", &["syscall"], &["mine.x", "proc.name"]);
        assert_eq!(
            check(&[&p], never).unwrap_err(),
            "Plugin 'mine' supports extraction of field 'proc.name' that is overlapping for source 'syscall'"
        );
        // The same field on a source it does not extract from is fine.
        let q = plugin("mine", "", &["k8s_audit"], &["proc.name"]);
        assert!(check(&[&q], never).unwrap().is_empty());
        let audit = plugin("mine", "", &["k8s_audit"], &["ka.verb"]);
        assert!(check(&[&audit], never).unwrap_err().contains("'ka.verb'"));
    }

    #[test]
    fn an_earlier_plugins_field_and_the_generic_event_fields_count() {
        let a = plugin("a", "src", &[], &["a.x"]);
        let b = plugin("b", "", &["src"], &["a.x"]);
        assert_eq!(
            check(&[&a, &b], never).unwrap_err(),
            "Plugin 'b' supports extraction of field 'a.x' that is overlapping for source 'src'"
        );
        let generic = plugin("a", "src", &[], &["evt.pluginname"]);
        assert!(check(&[&generic], never).is_err());
        // A plugin with no extraction sources and no source of its own
        // extracts from every source, syscall included.
        let everywhere = plugin("e", "", &[], &["fd.name"]);
        assert!(check(&[&everywhere], never)
            .unwrap_err()
            .contains("'syscall'"));
    }

    #[test]
    fn a_built_in_plugin_is_let_through_with_one_warning() {
        let container = plugin(
            "container",
            "",
            &["syscall"],
            &["container.id", "container.name", "own.x"],
        );
        let warnings = check(&[&container], |n| n == "container").unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("plugin 'container'"), "{warnings:?}");
        assert!(
            warnings[0].contains("built-in fields take precedence"),
            "{warnings:?}"
        );
        // Its own fields are still taken: a later plugin may not reuse them.
        let later = plugin("later", "", &["syscall"], &["own.x"]);
        assert!(check(&[&container, &later], |n| n == "container").is_err());
    }
}
