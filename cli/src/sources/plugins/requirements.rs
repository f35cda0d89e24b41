//! `required_plugin_versions` in rules files, checked against the loaded
//! plugins as Falco checks them: each requirement is met by the plugin it
//! names or by one of its `alternatives`, loaded at a version of the same
//! major that is not older. Every requirement item counts on its own, so a
//! second item asking a newer version of the same plugin raises the bar.

use serde_yaml::Value as Yaml;

use super::version::Version;

/// One plugin a requirement accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    pub version: Version,
}

/// One entry of a `required_plugin_versions` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub wanted: Wanted,
    pub alternatives: Vec<Wanted>,
    /// The rules file it came from, for the error.
    pub origin: String,
}

fn wanted(item: &Yaml, origin: &str) -> Result<Wanted, String> {
    let name = item
        .get("name")
        .and_then(Yaml::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{origin}: required_plugin_versions: an entry has no name"))?;
    let text = match item.get("version") {
        Some(Yaml::String(s)) => s.clone(),
        Some(Yaml::Number(n)) => n.to_string(),
        _ => {
            return Err(format!(
                "{origin}: required_plugin_versions: plugin '{name}' has no version"
            ))
        }
    };
    let version = Version::parse(&text).ok_or_else(|| {
        format!("{origin}: required_plugin_versions: plugin '{name}': invalid version '{text}'")
    })?;
    Ok(Wanted {
        name: name.to_string(),
        version,
    })
}

/// The requirements of one rules file's text.
pub fn from_rules_text(text: &str, origin: &str) -> Result<Vec<Requirement>, String> {
    // A file that is not YAML fails to load as rules with its own error.
    let Ok(Yaml::Sequence(items)) = serde_yaml::from_str::<Yaml>(text) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in &items {
        let Some(list) = item.get("required_plugin_versions") else {
            continue;
        };
        let Some(entries) = list.as_sequence() else {
            return Err(format!("{origin}: required_plugin_versions must be a list"));
        };
        for entry in entries {
            let main = wanted(entry, origin)?;
            let mut alternatives = Vec::new();
            if let Some(alts) = entry.get("alternatives") {
                let Some(alts) = alts.as_sequence() else {
                    return Err(format!(
                        "{origin}: required_plugin_versions: plugin '{}': alternatives must be a list",
                        main.name
                    ));
                };
                for alt in alts {
                    let alt = wanted(alt, origin)?;
                    if alt.name == main.name {
                        return Err(format!(
                            "{origin}: required_plugin_versions: plugin '{}' names itself as an alternative",
                            main.name
                        ));
                    }
                    alternatives.push(alt);
                }
            }
            out.push(Requirement {
                wanted: main,
                alternatives,
                origin: origin.to_string(),
            });
        }
    }
    Ok(out)
}

/// Checks every requirement against the loaded plugins (name, version).
/// The error names the plugin and what was found of it.
pub fn check(requirements: &[Requirement], loaded: &[(String, String)]) -> Result<(), String> {
    for requirement in requirements {
        let candidates = std::iter::once(&requirement.wanted).chain(&requirement.alternatives);
        let mut found = Vec::new();
        let mut met = false;
        for candidate in candidates {
            if let Some((_, version)) = loaded.iter().find(|(name, _)| *name == candidate.name) {
                if Version::parse(version).is_some_and(|v| v.satisfies(&candidate.version)) {
                    met = true;
                    break;
                }
                found.push(format!(
                    "'{}' is loaded at version {version}, not compatible with the required {}",
                    candidate.name, candidate.version
                ));
            }
        }
        if met {
            continue;
        }
        let wanted = &requirement.wanted;
        let alternatives: Vec<String> = requirement
            .alternatives
            .iter()
            .map(|a| format!("'{}' {}", a.name, a.version))
            .collect();
        let mut message = format!(
            "{}: plugin '{}' version {} is required",
            requirement.origin, wanted.name, wanted.version
        );
        if !alternatives.is_empty() {
            message.push_str(&format!(" (or {})", alternatives.join(", ")));
        }
        if found.is_empty() {
            message.push_str(", but it is not loaded");
        } else {
            message.push_str(&format!(": {}", found.join("; ")));
        }
        return Err(message);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(loaded: &[(&str, &str)], text: &str) -> Result<(), String> {
        let requirements = from_rules_text(text, "rules.yaml")?;
        let loaded: Vec<(String, String)> = loaded
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        check(&requirements, &loaded)
    }

    const ALTERNATIVES: &str = "
- required_plugin_versions:
  - name: k8saudit
    version: 0.1.0
    alternatives:
      - name: k8saudit-eks
        version: 0.4.0
  - name: json
    version: 0.3.0
";

    #[test]
    fn met_by_the_plugin_or_an_alternative_at_a_compatible_version() {
        assert!(check_text(&[("k8saudit", "0.2.0"), ("json", "0.3.1")], ALTERNATIVES).is_ok());
        assert!(check_text(
            &[("k8saudit-eks", "0.5.0"), ("json", "0.3.0")],
            ALTERNATIVES
        )
        .is_ok());
        assert!(check_text(&[], "- rule: x\n").is_ok());
    }

    #[test]
    fn a_missing_or_old_plugin_is_named() {
        let missing = check_text(&[("k8saudit", "0.2.0")], ALTERNATIVES).unwrap_err();
        assert!(
            missing.contains("'json'") && missing.contains("not loaded"),
            "{missing}"
        );
        let old = check_text(
            &[("k8saudit-eks", "0.3.9"), ("json", "0.3.0")],
            ALTERNATIVES,
        )
        .unwrap_err();
        assert!(
            old.contains("'k8saudit-eks' is loaded at version 0.3.9"),
            "{old}"
        );
        let other_major = check_text(&[("k8saudit", "1.0.0"), ("json", "0.3.0")], ALTERNATIVES);
        assert!(other_major.is_err());
    }

    #[test]
    fn each_item_counts_so_a_later_one_raises_the_bar() {
        let twice = "
- required_plugin_versions:
  - {name: k8saudit, version: 0.1.0, alternatives: [{name: other, version: 0.4.0}]}
- required_plugin_versions:
  - {name: k8saudit, version: 1.0.0, alternatives: [{name: other, version: 0.7.0}]}
";
        assert!(check_text(&[("other", "0.7.0")], twice).is_ok());
        assert!(check_text(&[("k8saudit", "0.7.0")], twice).is_err());
    }

    #[test]
    fn malformed_requirements_are_errors() {
        let itself = "- required_plugin_versions:\n  - {name: a, version: 0.1.0, alternatives: [{name: a, version: 0.2.0}]}";
        assert!(from_rules_text(itself, "r").is_err());
        assert!(from_rules_text("- required_plugin_versions:\n  - {name: a}", "r").is_err());
        assert!(from_rules_text(
            "- required_plugin_versions:\n  - {name: a, version: x}",
            "r"
        )
        .is_err());
    }
}
