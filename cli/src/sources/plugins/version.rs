//! Version strings of the plugin world: the plugin API version a plugin
//! requires, and the plugin versions rules files ask for. Both are
//! `MAJOR.MINOR.PATCH`; a pre-release or build suffix is tolerated and
//! ignored, as Falco's semver checks do.

use std::fmt;

use falco_plugin_api as api;

/// A `MAJOR.MINOR.PATCH` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    /// Parses `1.2.3` (with an optional `-pre`/`+build` tail). None when
    /// the text is no such version.
    pub fn parse(text: &str) -> Option<Version> {
        let core = text.trim().split(['-', '+']).next().unwrap_or_default();
        let mut parts = core.split('.');
        let mut number = || -> Option<u64> {
            let part = parts.next()?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let version = Version {
            major: number()?,
            minor: number()?,
            patch: number()?,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(version)
    }

    /// Whether a plugin at this version satisfies a rules file that asks
    /// for `wanted`: same major, and not older (Falco's rule for
    /// `required_plugin_versions`).
    pub fn satisfies(&self, wanted: &Version) -> bool {
        self.major == wanted.major && self >= wanted
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The plugin API version this host implements: the one the bindings were
/// generated from.
pub const HOST_API: Version = Version {
    major: api::PLUGIN_API_VERSION_MAJOR as u64,
    minor: api::PLUGIN_API_VERSION_MINOR as u64,
    patch: api::PLUGIN_API_VERSION_PATCH as u64,
};

/// Checks the API version a plugin requires against [`HOST_API`]: the
/// major must match (a new major breaks the ABI), and the plugin may not
/// need a newer minor (or, at the same minor, a newer patch) than the host
/// offers.
pub fn check_required_api(required: &str) -> Result<(), String> {
    let Some(wanted) = Version::parse(required) else {
        return Err(format!(
            "plugin provided an invalid required API version: '{required}'"
        ));
    };
    if wanted.major != HOST_API.major || wanted > HOST_API {
        return Err(format!(
            "plugin requires API version {wanted}, which is not compatible with the framework's API version {HOST_API}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_semver_and_refuses_other_text() {
        assert_eq!(
            Version::parse("0.10.2"),
            Some(Version {
                major: 0,
                minor: 10,
                patch: 2
            })
        );
        assert_eq!(Version::parse("1.2.3-rc1").map(|v| v.patch), Some(3));
        assert_eq!(Version::parse("1.2"), None);
        assert_eq!(Version::parse("1.2.3.4"), None);
        assert_eq!(Version::parse("v1.2.3"), None);
        assert_eq!(Version::parse(""), None);
    }

    #[test]
    fn required_api_must_share_the_major_and_not_be_newer() {
        let host = HOST_API;
        assert!(check_required_api(&format!("{}.0.0", host.major)).is_ok());
        assert!(check_required_api(&host.to_string()).is_ok());
        let newer_minor = format!("{}.{}.0", host.major, host.minor + 1);
        assert!(check_required_api(&newer_minor).is_err());
        let newer_patch = format!("{}.{}.{}", host.major, host.minor, host.patch + 1);
        assert!(check_required_api(&newer_patch).is_err());
        assert!(check_required_api(&format!("{}.0.0", host.major + 1)).is_err());
        assert!(check_required_api(&format!("{}.0.0", host.major - 1)).is_err());
        assert!(check_required_api("three").is_err());
    }

    #[test]
    fn a_plugin_version_satisfies_same_major_not_older() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("0.10.0").satisfies(&v("0.9.1")));
        assert!(v("0.9.1").satisfies(&v("0.9.1")));
        assert!(!v("0.9.0").satisfies(&v("0.9.1")));
        assert!(!v("1.0.0").satisfies(&v("0.9.1")));
    }
}
