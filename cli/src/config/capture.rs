//! Falco's `capture:` section (capture on alert), plus Peregrine's
//! pre-alert window: how much of what came before an alert goes into its
//! capture file.

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// Which alerts start a capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMode {
    /// Only the alerts of rules with `capture: true` (Falco's default).
    #[default]
    Rules,
    /// Every alert.
    AllRules,
}

impl CaptureMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMode::Rules => "rules",
            CaptureMode::AllRules => "all_rules",
        }
    }
}

/// The largest pre-alert window kept in memory, in MiB: the window is a
/// copy of recent events, and a typo of a few digits must not take the
/// machine's memory.
pub const MAX_PRE_ALERT_MB: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Capture {
    pub enabled: bool,
    /// Files are `<path_prefix>_<event time, 20 digits>_<event number, 20
    /// digits>.scap`, as Falco names them.
    pub path_prefix: String,
    pub mode: CaptureMode,
    /// Milliseconds a capture lasts after the alert that started it, for
    /// rules without `capture_duration`; later alerts extend it.
    pub default_duration: u32,
    /// Size at which a capture stops, whatever its deadline; 0: no cap.
    pub max_file_size_mb: u64,
    /// Peregrine: milliseconds of events before the alert written at the
    /// start of its file (0: none, as Falco).
    pub pre_alert_duration: u32,
    /// Peregrine: memory the pre-alert window may hold, in MiB; the oldest
    /// events leave first.
    #[serde(deserialize_with = "pre_alert_mb")]
    pub pre_alert_max_mb: u64,
}

impl Default for Capture {
    fn default() -> Self {
        Capture {
            enabled: false,
            path_prefix: "/tmp/falco".into(),
            mode: CaptureMode::Rules,
            default_duration: 5000,
            max_file_size_mb: 0,
            pre_alert_duration: 5000,
            pre_alert_max_mb: 16,
        }
    }
}

fn pre_alert_mb<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = u64::deserialize(deserializer)?;
    if value > MAX_PRE_ALERT_MB {
        return Err(de::Error::custom(format!(
            "{value} MiB is more than the {MAX_PRE_ALERT_MB} MiB the pre-alert window may hold"
        )));
    }
    Ok(value)
}
