//! The host's users and groups for live sources.

use peregrine_engine::scap::{GroupEntry, UserEntry};

/// The host's users and groups from /etc: live, libsinsp names a host
/// thread's user with getpwuid, and libscap writes the same list at the
/// start of a capture so that a replay names users as the live run did.
/// Unreadable files are reported and leave the names unknown (`<NA>`).
/// In a container the host's /etc is read under `HOST_ROOT`.
pub fn host_users() -> (Vec<UserEntry>, Vec<GroupEntry>) {
    let etc = crate::host::path("/etc");
    match peregrine_engine::state::users::read_etc(&etc) {
        Ok(lists) => lists,
        Err(e) => {
            crate::log::message(&format!(
                "cannot read the host's users from {}/passwd and group: {e}",
                etc.display()
            ));
            (Vec::new(), Vec::new())
        }
    }
}
