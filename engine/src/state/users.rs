//! User and group names, from a capture's user list or /etc on a live
//! system.

use crate::fast_hash::FastMap;
use crate::scap::{GroupEntry, UserEntry};
use std::path::Path;

#[derive(Debug, Default, Clone)]
pub struct Users {
    users: FastMap<u32, String>,
    homes: FastMap<u32, String>,
    groups: FastMap<u32, String>,
}

impl Users {
    pub fn from_capture(users: &[UserEntry], groups: &[GroupEntry]) -> Users {
        let mut u = Users::default();
        for e in users {
            u.users.insert(e.uid, e.name.clone());
            u.homes.insert(e.uid, e.homedir.clone());
        }
        for g in groups {
            u.groups.insert(g.gid, g.name.clone());
        }
        u
    }

    /// Reads `passwd` and `group` files (`/etc` on a live system).
    pub fn from_etc(dir: &Path) -> std::io::Result<Users> {
        let mut u = Users::default();
        for line in std::fs::read_to_string(dir.join("passwd"))?.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(uid)) = (f.first(), f.get(2).and_then(|s| s.parse().ok())) {
                u.users.insert(uid, name.to_string());
                if let Some(home) = f.get(5) {
                    u.homes.insert(uid, home.to_string());
                }
            }
        }
        for line in std::fs::read_to_string(dir.join("group"))?.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(gid)) = (f.first(), f.get(2).and_then(|s| s.parse().ok())) {
                u.groups.insert(gid, name.to_string());
            }
        }
        Ok(u)
    }

    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.users.get(&uid).map(String::as_str)
    }

    pub fn home(&self, uid: u32) -> Option<&str> {
        self.homes.get(&uid).map(String::as_str)
    }

    pub fn group_name(&self, gid: u32) -> Option<&str> {
        self.groups.get(&gid).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_passwd_and_group_files() {
        let dir = std::env::temp_dir().join(format!("peregrine-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("passwd"),
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:100::/home/alice:/bin/bash\nbroken\n",
        )
        .unwrap();
        std::fs::write(dir.join("group"), "root:x:0:\nusers:x:100:alice\n").unwrap();
        let u = Users::from_etc(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(u.user_name(1000), Some("alice"));
        assert_eq!(u.home(1000), Some("/home/alice"));
        assert_eq!(u.group_name(100), Some("users"));
        assert_eq!(u.user_name(5), None);
    }
}
