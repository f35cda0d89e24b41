//! User and group names, from a capture's user list or /etc on a live
//! system.

use crate::fast_hash::FastMap;
use crate::scap::{GroupEntry, UserEntry};
use std::path::Path;

#[derive(Debug, Default, Clone)]
pub struct Users {
    users: FastMap<u32, String>,
    homes: FastMap<u32, String>,
    shells: FastMap<u32, String>,
    groups: FastMap<u32, String>,
}

impl Users {
    pub fn from_capture(users: &[UserEntry], groups: &[GroupEntry]) -> Users {
        let mut u = Users::default();
        for e in users {
            u.users.insert(e.uid, e.name.clone());
            u.homes.insert(e.uid, e.homedir.clone());
            u.shells.insert(e.uid, e.shell.clone());
        }
        for g in groups {
            u.groups.insert(g.gid, g.name.clone());
        }
        u
    }

    /// Reads `passwd` and `group` files (`/etc` on a live system).
    pub fn from_etc(dir: &Path) -> std::io::Result<Users> {
        let (users, groups) = read_etc(dir)?;
        Ok(Users::from_capture(&users, &groups))
    }

    // Uid and gid 0 are root even where no list names them (a capture
    // without a user list), as libsinsp names them.

    pub fn user_name(&self, uid: u32) -> Option<&str> {
        match self.users.get(&uid) {
            Some(name) => Some(name),
            None => (uid == 0).then_some("root"),
        }
    }

    pub fn home(&self, uid: u32) -> Option<&str> {
        match self.homes.get(&uid) {
            Some(home) => Some(home),
            None => (uid == 0).then_some("/root"),
        }
    }

    pub fn shell(&self, uid: u32) -> Option<&str> {
        self.shells.get(&uid).map(String::as_str)
    }

    pub fn group_name(&self, gid: u32) -> Option<&str> {
        match self.groups.get(&gid) {
            Some(name) => Some(name),
            None => (gid == 0).then_some("root"),
        }
    }
}

/// The entries of `passwd` and `group` files in `dir` (`/etc` on a live
/// system), as libscap lists the host's users at the start of a capture
/// so that a replay names them as the live run did. Malformed lines are
/// skipped.
pub fn read_etc(dir: &Path) -> std::io::Result<(Vec<UserEntry>, Vec<GroupEntry>)> {
    let passwd = std::fs::read_to_string(dir.join("passwd"))?;
    let group = std::fs::read_to_string(dir.join("group"))?;
    Ok(parse_etc(&passwd, &group))
}

/// The entries of the texts of a `passwd` and a `group` file.
pub fn parse_etc(passwd: &str, group: &str) -> (Vec<UserEntry>, Vec<GroupEntry>) {
    let mut users = Vec::new();
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        let id = |i: usize| f.get(i).and_then(|s| s.parse::<u32>().ok());
        if let (Some(name), Some(uid)) = (f.first(), id(2)) {
            let text = |i: usize| f.get(i).copied().unwrap_or_default().to_string();
            users.push(UserEntry {
                uid,
                gid: id(3).unwrap_or(u32::MAX),
                name: name.to_string(),
                homedir: text(5),
                shell: text(6),
            });
        }
    }
    let mut groups = Vec::new();
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if let (Some(name), Some(gid)) = (f.first(), f.get(2).and_then(|s| s.parse().ok())) {
            groups.push(GroupEntry {
                gid,
                name: name.to_string(),
            });
        }
    }
    (users, groups)
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

    #[test]
    fn root_is_named_without_a_list() {
        let u = Users::default();
        assert_eq!(u.user_name(0), Some("root"));
        assert_eq!(u.home(0), Some("/root"));
        assert_eq!(u.group_name(0), Some("root"));
        assert_eq!(u.user_name(1000), None);
    }

    #[test]
    fn read_etc_gives_the_entries_a_capture_lists() {
        let dir = std::env::temp_dir().join(format!("peregrine-etc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("passwd"),
            "root:x:0:0:root:/root:/bin/sh\nbad:x:notanumber:0::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.join("group"), "adm:x:4:\n").unwrap();
        let (users, groups) = read_etc(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            users,
            [UserEntry {
                uid: 0,
                gid: 0,
                name: "root".into(),
                homedir: "/root".into(),
                shell: "/bin/sh".into(),
            }]
        );
        assert_eq!(
            groups,
            [GroupEntry {
                gid: 4,
                name: "adm".into()
            }]
        );
    }
}
