//! Durations as Falco's config writes them (`15m`, `1h30m`, `500ms`, or
//! plain seconds), checked at parse time: a period that would overflow a
//! clock or a multiplication is a config error, never a panic at start or
//! after SIGHUP.

use std::time::Duration;

/// The longest period accepted anywhere (a hundred years): far past any
/// useful interval and far from the overflow of `Instant + Duration`.
pub const MAX_DURATION_SECS: u64 = 100 * 365 * 86_400;

/// Units in the Prometheus style Falco uses, in milliseconds.
const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 7 * 86_400_000),
    ("y", 365 * 86_400_000),
];

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("'{0}' is no duration; expected e.g. 30s, 15m, 1h30m, 500ms")]
    Syntax(String),
    #[error("'{0}' is longer than the {MAX_DURATION_SECS} seconds (100 years) allowed")]
    TooLong(String),
}

/// Whole seconds, bounded by [`MAX_DURATION_SECS`].
pub fn from_secs(secs: u64) -> Result<Duration, DurationError> {
    if secs > MAX_DURATION_SECS {
        return Err(DurationError::TooLong(secs.to_string()));
    }
    Ok(Duration::from_secs(secs))
}

/// A duration string: one or more `number unit` pairs (`1h30m`), or a
/// bare number of seconds.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let syntax = || DurationError::Syntax(text.to_string());
    let too_long = || DurationError::TooLong(text.to_string());
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = trimmed.parse().map_err(|_| too_long())?;
        return from_secs(secs).map_err(|_| too_long());
    }
    let mut rest = trimmed;
    let mut millis: u64 = 0;
    if rest.is_empty() {
        return Err(syntax());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(syntax)?;
        if digits == 0 {
            return Err(syntax());
        }
        // Digits that do not fit in u64 are too long, not malformed.
        let number: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = &rest[digits..];
        let letters = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = UNITS
            .iter()
            .find(|(unit, _)| *unit == &rest[..letters])
            .map(|(_, scale)| *scale)
            .ok_or_else(syntax)?;
        rest = &rest[letters..];
        millis = number
            .checked_mul(scale)
            .and_then(|ms| millis.checked_add(ms))
            .ok_or_else(too_long)?;
    }
    if millis / 1_000 > MAX_DURATION_SECS {
        return Err(too_long());
    }
    Ok(Duration::from_millis(millis))
}

/// `-M`: seconds, bounded as config durations are.
pub fn seconds_arg(text: &str) -> Result<u64, String> {
    let secs: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a whole number of seconds"))?;
    from_secs(secs).map_err(|e| e.to_string())?;
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falco_durations_parse() {
        assert_eq!(parse("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse(" 30 "), Ok(Duration::from_secs(30)));
    }

    #[test]
    fn malformed_durations_are_refused() {
        for text in ["", "soon", "m", "5x", "1h30", "-5s", "1.5h"] {
            assert!(
                matches!(parse(text), Err(DurationError::Syntax(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn overflowing_durations_are_refused_not_wrapped() {
        for text in [
            "18446744073709551615",
            "18446744073709551615s",
            "99999999999999999999999m",
            "5124095576030431h",
            "3000000000y",
            "101y",
            "9223372036854775807ms9223372036854775807ms1ms",
        ] {
            assert!(
                matches!(parse(text), Err(DurationError::TooLong(_))),
                "{text}: {:?}",
                parse(text)
            );
        }
        assert_eq!(parse("100y"), Ok(Duration::from_secs(MAX_DURATION_SECS)));
        assert!(seconds_arg("18446744073709551615").is_err());
        assert_eq!(seconds_arg("60"), Ok(60));
    }
}
