//! Image references: `registry/repo:tag` and `repo@sha256:digest`.

/// The repository and tag of an image reference (`host:5000/team/app:1.2`
/// is `host:5000/team/app` and `1.2`); a digest reference has no tag.
pub fn repo_and_tag(reference: &str) -> (String, String) {
    let reference = reference.split('@').next().unwrap_or(reference);
    // A colon after the last slash separates the tag (one before it is a
    // registry's port).
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(colon) => {
            let at = name_start + colon;
            (reference[..at].to_string(), reference[at + 1..].to_string())
        }
        None => (reference.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_ports_are_not_tags() {
        let split = |r: &str| {
            let (repo, tag) = repo_and_tag(r);
            (repo, tag)
        };
        assert_eq!(split("busybox:1.36"), ("busybox".into(), "1.36".into()));
        assert_eq!(
            split("host:5000/team/app:1.2"),
            ("host:5000/team/app".into(), "1.2".into())
        );
        assert_eq!(
            split("host:5000/team/app"),
            ("host:5000/team/app".into(), String::new())
        );
        assert_eq!(
            split("docker.io/library/nginx@sha256:abcd"),
            ("docker.io/library/nginx".into(), String::new())
        );
        assert_eq!(split(""), (String::new(), String::new()));
    }
}
