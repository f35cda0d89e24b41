//! Where the host's files are. Run in a container, Peregrine sees the host
//! through a mount of its root, named by `HOST_ROOT` as Falco names it
//! (`/host` in the DaemonSet of scripts/deploy/k8s): the running processes
//! come from `$HOST_ROOT/proc` and the module DKMS built from
//! `$HOST_ROOT/lib/modules`. Unset or empty, the host is `/`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable Falco and its tools read the host's root from.
pub const HOST_ROOT: &str = "HOST_ROOT";

/// `path` (absolute, on the host) as seen from here.
pub fn path(path: &str) -> PathBuf {
    under(std::env::var_os(HOST_ROOT), path)
}

fn under(root: Option<OsString>, path: &str) -> PathBuf {
    match root.filter(|r| !r.is_empty()) {
        Some(root) => Path::new(&root).join(path.trim_start_matches('/')),
        None => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_sit_under_host_root_when_it_is_set() {
        assert_eq!(under(None, "/proc"), Path::new("/proc"));
        assert_eq!(under(Some("".into()), "/proc"), Path::new("/proc"));
        assert_eq!(
            under(Some("/host".into()), "/proc"),
            Path::new("/host/proc")
        );
        assert_eq!(
            under(Some("/host/".into()), "/lib/modules/6.1"),
            Path::new("/host/lib/modules/6.1")
        );
    }
}
