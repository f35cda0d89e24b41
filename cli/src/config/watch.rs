//! Falco's `watch_config_files`: a change to the config file, one of its
//! drop-ins or a rules file reloads as SIGHUP does, by raising SIGHUP, so
//! that the reload is the one path [`crate::reload`] already takes (all
//! or nothing, the old config kept when the new one is broken).
//!
//! Editors save by writing a new file and renaming it over the old one,
//! which ends a watch on the file itself; so the folders holding the files
//! are watched, and their events filtered by name. A burst of events (a
//! save touches a file several times) makes one reload.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// How long after the first change the watcher waits for the burst to end.
const SETTLE: Duration = Duration::from_millis(300);

/// What is watched: folders whose every YAML file counts (rules folders),
/// and single files, by folder and name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Watched {
    pub folders: BTreeSet<PathBuf>,
    pub files: BTreeSet<(PathBuf, OsString)>,
}

impl Watched {
    /// The config file, its drop-ins and the rules paths (files or folders).
    pub fn of(config: &[PathBuf], rules: &[PathBuf]) -> Watched {
        let mut watched = Watched::default();
        for path in config.iter().chain(rules) {
            if path.is_dir() {
                watched.folders.insert(path.clone());
            } else if let (Some(name), parent) = (path.file_name(), path.parent()) {
                let parent = match parent {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                watched.files.insert((parent, name.to_os_string()));
            }
        }
        watched
    }

    /// Whether an event about `name` in `folder` is about a watched file.
    fn concerns(&self, folder: &Path, name: Option<&OsString>) -> bool {
        if self.folders.contains(folder) {
            return name.is_none_or_yaml();
        }
        name.is_some_and(|n| self.files.contains(&(folder.to_path_buf(), n.clone())))
    }
}

trait YamlName {
    fn is_none_or_yaml(&self) -> bool;
}

impl YamlName for Option<&OsString> {
    fn is_none_or_yaml(&self) -> bool {
        match self {
            None => true,
            Some(name) => {
                let name = name.to_string_lossy();
                name.ends_with(".yaml") || name.ends_with(".yml")
            }
        }
    }
}

/// The watching thread; it ends when told to stop.
pub struct ConfigWatch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl ConfigWatch {
    /// Starts watching; None (said on stderr) when inotify or the thread
    /// cannot start, or a folder cannot be watched: SIGHUP still reloads.
    pub fn start(watched: Watched) -> Option<ConfigWatch> {
        let inotify = match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) {
            Ok(i) => i,
            Err(e) => {
                crate::log::message(&format!(
                    "watch_config_files: cannot use inotify ({e}); reload with SIGHUP"
                ));
                return None;
            }
        };
        let mask = AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE;
        let folders: BTreeSet<PathBuf> = watched
            .folders
            .iter()
            .cloned()
            .chain(watched.files.iter().map(|(folder, _)| folder.clone()))
            .collect();
        let mut by_descriptor = Vec::new();
        for folder in folders {
            match inotify.add_watch(&folder, mask) {
                Ok(wd) => by_descriptor.push((wd, folder)),
                Err(e) => crate::log::message(&format!(
                    "watch_config_files: cannot watch {} ({e}); its changes need SIGHUP",
                    folder.display()
                )),
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let spawned = std::thread::Builder::new()
            .name("config-watch".into())
            .spawn(move || watch(inotify, &by_descriptor, &watched, &stopping));
        match spawned {
            Ok(thread) => Some(ConfigWatch { stop, thread }),
            Err(e) => {
                crate::log::message(&format!(
                    "watch_config_files: cannot start its thread ({e}); reload with SIGHUP"
                ));
                None
            }
        }
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if self.thread.join().is_err() {
            crate::log::message("the config watch thread panicked");
        }
    }
}

fn watch(
    inotify: Inotify,
    by_descriptor: &[(nix::sys::inotify::WatchDescriptor, PathBuf)],
    watched: &Watched,
    stop: &AtomicBool,
) {
    let mut changed_since: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(100u16));
        if let Ok(events) = inotify.read_events() {
            for event in events {
                let Some((_, folder)) = by_descriptor.iter().find(|(wd, _)| *wd == event.wd) else {
                    continue;
                };
                if watched.concerns(folder, event.name.as_ref()) {
                    changed_since.get_or_insert_with(Instant::now);
                }
            }
        }
        if changed_since.is_some_and(|at| at.elapsed() >= SETTLE) {
            changed_since = None;
            crate::log::message("watch_config_files: a config or rules file changed");
            if let Err(e) = signal_hook::low_level::raise(signal_hook::consts::SIGHUP) {
                crate::log::message(&format!("watch_config_files: cannot raise SIGHUP ({e})"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_matched_by_folder_and_name_and_folders_by_yaml_files() {
        let dir = std::env::temp_dir().join(format!("peregrine-watch-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rules.d")).unwrap();
        let watched = Watched::of(
            &[dir.join("falco.yaml")],
            &[dir.join("rules.d"), dir.join("local.yaml")],
        );
        let name = |n: &str| Some(OsString::from(n));
        assert!(watched.concerns(&dir, name("falco.yaml").as_ref()));
        assert!(watched.concerns(&dir, name("local.yaml").as_ref()));
        assert!(!watched.concerns(&dir, name("falco.yaml.swp").as_ref()));
        assert!(watched.concerns(&dir.join("rules.d"), name("x.yml").as_ref()));
        assert!(!watched.concerns(&dir.join("rules.d"), name("x.txt").as_ref()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
