//! User and group names, from a capture's user list or /etc on a live
//! system.

use crate::scap::{GroupEntry, UserEntry};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Default, Clone)]
pub struct Users {
    users: HashMap<u32, String>,
    homes: HashMap<u32, String>,
    groups: HashMap<u32, String>,
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
