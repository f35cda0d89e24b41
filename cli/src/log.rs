//! Peregrine's own messages on stderr, each prefixed with the time as
//! Falco prints it (`Wed Mar 27 15:28:22 2019: ...`, or ISO 8601 when
//! `time_format_iso_8601` is set), so that log collectors and habits made
//! for Falco's stderr work unchanged.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{Local, Utc};

static ISO_8601: AtomicBool = AtomicBool::new(false);

/// Switches the prefix to ISO 8601 (from the config).
pub fn use_iso_8601(on: bool) {
    ISO_8601.store(on, Ordering::Relaxed);
}

fn prefix() -> String {
    if ISO_8601.load(Ordering::Relaxed) {
        Utc::now().format("%Y-%m-%dT%H:%M:%S%z").to_string()
    } else {
        Local::now().format("%a %b %d %H:%M:%S %Y").to_string()
    }
}

/// Writes text to stderr in one write(2). `eprintln!` writes a formatted
/// line piece by piece, and stderr is shared: with `run -U` the tracer
/// process and the reader print their summaries at the same moment (the
/// pipe's end), and pieces of the two lines interleaved. A pipe takes a
/// write of up to PIPE_BUF bytes whole.
pub fn write_whole(text: &str) {
    let mut text = text.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    // Nothing useful can be done when stderr is gone.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Writes a block of lines as one message, as Falco's logger writes a
/// multi-line text: the time prefix on its first line only.
pub fn block(text: &str) {
    write_whole(&format!("{}: {}", prefix(), text.trim_end_matches('\n')));
}

/// Writes one message line (or several) with the time prefix.
pub fn message(text: &str) {
    let prefix = prefix();
    for line in text.lines() {
        write_whole(&format!("{prefix}: {line}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_follow_falcos_two_forms() {
        use_iso_8601(true);
        let iso = prefix();
        assert_eq!(iso.len(), "2016-08-04T16:17:57+0000".len(), "{iso}");
        assert!(iso.ends_with("+0000"));
        use_iso_8601(false);
        let ctime = prefix();
        // "Wed Mar 27 15:28:22 2019"
        assert_eq!(ctime.len(), 24, "{ctime}");
    }
}
