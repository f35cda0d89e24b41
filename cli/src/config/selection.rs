//! The config sections that choose which rules run and how they match
//! (`rules`, `rule_matching`), what their alerts carry (`append_output`),
//! and where events come from (`engine`, `falco_libs`).

use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_yaml::Value as Yaml;

/// Falco's `rule_matching`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleMatching {
    /// An event stops at the first rule it matches (Falco's default).
    #[default]
    First,
    /// Every rule an event matches fires.
    All,
}

/// One item of Falco's `rules:` list: `{enable: {rule: PATTERN}}`,
/// `{disable: {tag: TAG}}`, or both a rule and a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSelection {
    pub enable: bool,
    /// A rule name, where `*` matches any text.
    pub rule: Option<String>,
    pub tag: Option<String>,
}

impl<'de> Deserialize<'de> for RuleSelection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Target {
            rule: Option<String>,
            tag: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Item {
            enable: Option<Target>,
            disable: Option<Target>,
        }
        let item = Item::deserialize(deserializer)?;
        // Falco reads `enable` when an item has both.
        let (enable, target) = match (item.enable, item.disable) {
            (Some(target), _) => (true, target),
            (None, Some(target)) => (false, target),
            (None, None) => {
                return Err(de::Error::custom(
                    "a rules item is {enable: {rule: NAME}} or {disable: {tag: TAG}}",
                ))
            }
        };
        if target.rule.is_none() && target.tag.is_none() {
            return Err(de::Error::custom(
                "a rules item names a rule, a tag, or both",
            ));
        }
        Ok(RuleSelection {
            enable,
            rule: target.rule,
            tag: target.tag,
        })
    }
}

/// One item of Falco's `append_output`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppendOutput {
    #[serde(rename = "match")]
    pub matching: AppendMatch,
    /// Text added at the end of the matching rules' outputs.
    pub extra_output: String,
    /// Added to the alerts' `output_fields`: a field name, or
    /// `{name: format}`.
    #[serde(deserialize_with = "extra_fields")]
    pub extra_fields: Vec<ExtraField>,
    /// Adds the suggested fields (`static_NAME=VALUE`) to the outputs.
    pub suggested_output: bool,
}

/// Which rules an `append_output` item applies to; all when empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppendMatch {
    pub rule: Option<String>,
    pub source: Option<String>,
    /// The rule must have every one of these.
    pub tags: Vec<String>,
}

/// An extra output field: `raw` fields are a field name whose value is
/// kept with its type; the others are a format rendered as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraField {
    pub name: String,
    pub format: String,
    pub raw: bool,
}

fn extra_fields<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<ExtraField>, D::Error> {
    let items = Vec::<Yaml>::deserialize(deserializer)?;
    let mut fields: Vec<ExtraField> = Vec::new();
    for item in items {
        let field = match item {
            Yaml::String(name) => ExtraField {
                format: format!("%{name}"),
                name,
                raw: true,
            },
            Yaml::Mapping(map) if map.len() == 1 => {
                let (name, format) = map.into_iter().next().expect("one entry");
                match (name, format) {
                    (Yaml::String(name), Yaml::String(format)) => ExtraField {
                        name,
                        format,
                        raw: false,
                    },
                    _ => return Err(de::Error::custom("an extra field is {name: \"format\"}")),
                }
            }
            _ => {
                return Err(de::Error::custom(
                    "an extra field is a field name or one {name: \"format\"} pair",
                ))
            }
        };
        // As Falco: naming a field twice in one item is an error.
        if fields.iter().any(|f| f.name == field.name) {
            return Err(de::Error::custom(format!(
                "extra field '{}' is defined twice",
                field.name
            )));
        }
        fields.push(field);
    }
    Ok(fields)
}

/// Falco's `engine.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// The kernel module.
    #[default]
    Kmod,
    /// Drivers Peregrine does not have: its kernel module runs instead.
    ModernEbpf,
    Ebpf,
    Gvisor,
    /// A capture file (`engine.replay.capture_file`).
    Replay,
    /// No syscall source.
    Nodriver,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Kmod => "kmod",
            EngineKind::ModernEbpf => "modern_ebpf",
            EngineKind::Ebpf => "ebpf",
            EngineKind::Gvisor => "gvisor",
            EngineKind::Replay => "replay",
            EngineKind::Nodriver => "nodriver",
        }
    }
}

/// Falco's `engine` section; the keys of drivers Peregrine lacks are taken
/// out with a warning before this is decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Engine {
    pub kind: EngineKind,
    pub kmod: Option<Yaml>,
    pub replay: Replay,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Replay {
    pub capture_file: String,
}

/// Falco's `falco_libs`: `snaplen` and `thread_table_size` apply to
/// Peregrine.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FalcoLibs {
    /// Bytes of I/O buffers kept; 0 leaves `driver.snaplen` as it is.
    pub snaplen: u32,
    /// Threads the state holds at most; 0 keeps Peregrine's default
    /// ([`peregrine_engine::state::DEFAULT_MAX_THREADS`]).
    pub thread_table_size: u64,
    /// Live, how often threads idle for the timeout are checked against
    /// /proc, and purged if gone (their exit was lost); 0: Falco's 300 s.
    pub thread_table_auto_purging_interval_s: u64,
    /// 0: Falco's 300 s.
    pub thread_table_auto_purging_thread_timeout_s: u64,
}
