//! Absolute paths of the path arguments of file syscalls: `evt.abspath`
//! (with `.src` and `.dst`), resolved against the directory fd the syscall
//! was given, and `fs.path.*`, resolved against the working directory,
//! each for the event types and parameters libsinsp reads them from.

use super::Field;
use crate::event::table::ParamType;
use crate::event::EventView;
use crate::state::{resolve_path, State};

/// Which path of the event a field asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    /// The one path of the event (`evt.abspath`, `fs.path.name`); for two
    /// paths, `evt.abspath` means the source.
    Name,
    Source,
    Target,
}

/// `AT_FDCWD` as the drivers encode it.
const AT_FDCWD: i64 = -100;

/// The (dirfd, path) parameter names `evt.abspath` reads, by event type
/// and by the path asked for: the *at syscalls' exit events (and the
/// enter events of their first versions, which held the arguments).
fn abspath_params(event_type: u16, which: Which) -> Option<(&'static str, &'static str)> {
    let source = which != Which::Target;
    Some(match event_type {
        // renameat, renameat2
        177 | 319 if source => ("olddirfd", "oldpath"),
        177 | 319 => ("newdirfd", "newpath"),
        // symlinkat
        181 => ("linkdirfd", "linkpath"),
        // openat (first enter), openat exit, openat2 exit
        102 | 307 | 327 => ("dirfd", "name"),
        // linkat (first enter), linkat exit
        106 | 311 if source => ("olddir", "oldpath"),
        106 | 311 => ("newdir", "newpath"),
        // unlinkat (first enter), unlinkat exit
        110 | 303 => ("dirfd", "name"),
        305 => ("dirfd", "path"),
        313 => ("dirfd", "filename"),
        385 => ("dirfd", "pathname"),
        _ => return None,
    })
}

/// The text of a string parameter, without a trailing NUL.
fn text<'a>(ev: &EventView<'a>, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    let p = ev.param_named(name)?;
    Some(crate::text::decode(p.as_bytes_str()))
}

/// `evt.abspath`, `evt.abspath.src`, `evt.abspath.dst`.
fn abspath(ev: &EventView<'_>, state: &State, which: Which) -> Option<String> {
    state.thread(ev.tid as i64)?;
    if ev.event_type == 337 {
        // open_by_handle_at: the driver reads the opened file's path.
        let fd = ev.param(0)?.as_i64()?;
        if fd <= 0 {
            return None;
        }
        let path = ev.param(3)?;
        return Some(resolve_path("/", &crate::text::decode(path.as_bytes_str())));
    }
    let (dirfd_name, path_name) = abspath_params(ev.event_type, which)?;
    let dirfd = ev.param_named(dirfd_name)?.as_i64()?;
    let path = text(ev, path_name)?;
    let tid = ev.tid as i64;
    if path.starts_with('/') {
        return Some(resolve_path("/", &path));
    }
    if dirfd == AT_FDCWD {
        let cwd = &state.thread(tid)?.cwd;
        return Some(resolve_path(cwd, &path));
    }
    Some(match state.fd(tid, dirfd) {
        Some(dir) => resolve_path(&dir.name, &path),
        // As libsinsp writes a path whose directory fd it does not know.
        None => format!("<UNKNOWN>/{path}"),
    })
}

/// Where `fs.path.*` finds a path in an event.
enum Source {
    Param(&'static str),
    /// The name the enter event gave (the first versions' exits had none).
    EnterName,
    /// The file of the event's fd (fchmod, fchown).
    FdName,
}

/// What `fs.path.*` reads for an event type: the condition for the event
/// to count (res = 0, or fd != -1 for opens), then the source of each path.
struct FsPathRule {
    needs_fd: bool,
    name: Option<Source>,
    source: Option<Source>,
    target: Option<Source>,
}

fn fspath_rule(event_type: u16) -> Option<FsPathRule> {
    use Source::*;
    let one = |s: Source| FsPathRule {
        needs_fd: false,
        name: Some(s),
        source: None,
        target: None,
    };
    let two = |s: &'static str, t: &'static str| FsPathRule {
        needs_fd: false,
        name: None,
        source: Some(Param(s)),
        target: Some(Param(t)),
    };
    let opened = |s: Source| FsPathRule {
        needs_fd: true,
        ..one(s)
    };
    Some(match event_type {
        // mkdir, rmdir, unlink, unlinkat: first versions from the enter event.
        99 | 101 | 109 | 111 => one(EnterName),
        277 | 279 | 301 | 305 => one(Param("path")),
        303 => one(Param("name")),
        3 | 307 | 327 => opened(Param("name")),
        103 => opened(EnterName),
        313 | 315 => one(Param("filename")),
        317 | 383 => one(FdName),
        379 | 381 => one(Param("path")),
        385 => one(Param("pathname")),
        191 => one(Param("special")),
        175 | 177 | 319 => two("oldpath", "newpath"),
        // A link's source is the new name, its target the file linked to.
        309 | 311 => two("newpath", "oldpath"),
        179 | 181 => two("linkpath", "target"),
        257 => two("dev", "dir"),
        259 | 387 | 391 => one(Param("name")),
        // link, linkat first versions: neither path in the exit event.
        105 | 107 => FsPathRule {
            needs_fd: false,
            name: None,
            source: None,
            target: None,
        },
        _ => return None,
    })
}

/// `fs.path.name`, `.source`, `.target` and their `raw` forms.
fn fspath(ev: &EventView<'_>, state: &State, which: Which, raw: bool) -> Option<String> {
    let rule = fspath_rule(ev.event_type)?;
    let counts = if rule.needs_fd {
        ev.param_named("fd")
            .and_then(|p| p.as_i64())
            .is_some_and(|fd| fd != -1)
    } else {
        ev.res() == Some(0)
    };
    if !counts {
        return None;
    }
    let source = match which {
        Which::Name => rule.name,
        Which::Source => rule.source,
        Which::Target => rule.target,
    }?;
    let tid = ev.tid as i64;
    let path = match source {
        Source::Param(name) => text(ev, name)?.into_owned(),
        Source::EnterName => state.enter_name(ev)?.to_string(),
        Source::FdName => state.fd(tid, state.event_fd(ev)?)?.name.clone(),
    };
    if raw || path.starts_with('/') {
        return Some(path);
    }
    let cwd = &state.thread(tid)?.cwd;
    Some(resolve_path(cwd, &path))
}

/// What libsinsp resolves path parameter `index` to, which `evt.arg.*`
/// gives instead of the raw path and `evt.args` shows after it in
/// parentheses: a relative PT_FSPATH joined to the thread's working
/// directory; a relative PT_FSRELPATH joined to the directory of its dirfd
/// (the working directory for AT_FDCWD). Every PT_FSRELPATH of the schema
/// names the parameter just before it as its dirfd (`DIRFD_PARAM`); where
/// that is not an fd, libsinsp takes the working directory too. A
/// directory fd the state does not know (or knows without a name) is an
/// empty base, as in libsinsp's replay: the path is only normalized, and
/// stays relative. None for other parameters, absolute or empty paths, a
/// thread the state does not know, or a path that normalizes to nothing
/// (the raw path then stands, as libsinsp's empty resolved string).
pub(super) fn resolved_arg(ev: &EventView<'_>, index: usize, state: &State) -> Option<String> {
    let info = ev.param_info(index)?;
    let rel = match info.param_type() {
        ParamType::FsPath => false,
        ParamType::FsRelPath => true,
        _ => return None,
    };
    let raw = ev.param(index)?;
    let path = crate::text::decode(raw.as_bytes_str());
    if path.is_empty() || path.starts_with('/') || path == "<NA>" {
        return None;
    }
    let tid = ev.tid as i64;
    let thread = state.thread(tid)?;
    let dirfd = index
        .checked_sub(1)
        .filter(|_| rel)
        .and_then(|i| ev.param(i))
        .filter(|p| p.ty() == ParamType::Fd);
    let base = match dirfd {
        Some(p) => match p.as_i64()? {
            AT_FDCWD => thread.cwd.as_str(),
            fd => match state.fd(tid, fd) {
                Some(dir) if !dir.name.is_empty() => dir.name.as_str(),
                _ => return normalize_relative(&path),
            },
        },
        None => thread.cwd.as_str(),
    };
    Some(resolve_path(base, &path))
}

/// `path` joined to an empty base as libsinsp's `concatenate_paths` does:
/// without empty and `.` segments, each `..` taking the segment before it
/// (none left: dropped). None when nothing remains.
fn normalize_relative(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The value of one of this module's fields, if the event has it.
pub(super) fn extract(field: Field, ev: &EventView<'_>, state: &State) -> Option<String> {
    match field {
        Field::EvtAbspath => abspath(ev, state, Which::Name),
        Field::EvtAbspathSrc => abspath(ev, state, Which::Source),
        Field::EvtAbspathDst => abspath(ev, state, Which::Target),
        Field::FsPathName => fspath(ev, state, Which::Name, false),
        Field::FsPathNameraw => fspath(ev, state, Which::Name, true),
        Field::FsPathSource => fspath(ev, state, Which::Source, false),
        Field::FsPathSourceraw => fspath(ev, state, Which::Source, true),
        Field::FsPathTarget => fspath(ev, state, Which::Target, false),
        Field::FsPathTargetraw => fspath(ev, state, Which::Target, true),
        _ => None,
    }
}
