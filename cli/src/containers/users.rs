//! A container's own users and groups, from its /etc through
//! `/proc/PID/root` (under `HOST_ROOT`), as libsinsp names a container
//! process's user from the container's files rather than the host's.
//!
//! The files belong to whoever controls the container: each is opened
//! without following a symbolic link (an absolute link would resolve on
//! the host), without waiting (a FIFO must not hang the lookup), must be a
//! regular file, and is read up to a bound.

use peregrine_engine::state::users::{parse_etc, Users};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest passwd or group file read.
const MAX_ETC_BYTES: u64 = 4 << 20;

/// The users of the container process `pid` runs in; None when its files
/// cannot be read safely (the host's names then stand).
pub fn of_process(pid: i64) -> Option<Users> {
    if pid <= 0 {
        return None;
    }
    let root = crate::host::path(&format!("/proc/{pid}/root"));
    let etc = root.join("etc");
    // A linked /etc would lead out of the container.
    if std::fs::symlink_metadata(&etc)
        .ok()?
        .file_type()
        .is_symlink()
    {
        return None;
    }
    let passwd = read_plain(&etc.join("passwd"))?;
    let group = read_plain(&etc.join("group")).unwrap_or_default();
    let (users, groups) = parse_etc(&passwd, &group);
    Some(Users::from_capture(&users, &groups))
}

fn read_plain(path: &Path) -> Option<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_ETC_BYTES).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_or_a_link_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path and a mode.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(read_plain(&fifo), None, "a FIFO must not block the lookup");
        let target = dir.path().join("passwd");
        std::fs::write(&target, "root:x:0:0::/root:/bin/sh\n").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_plain(&link), None);
        assert!(read_plain(&target).is_some());
    }

    #[test]
    fn this_process_has_users() {
        let users = of_process(std::process::id() as i64).expect("our own /etc/passwd");
        assert_eq!(users.user_name(0), Some("root"));
    }
}
