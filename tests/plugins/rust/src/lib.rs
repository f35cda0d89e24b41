//! Falco plugins written against Falco's Rust SDK (`falco_plugin`), one
//! cdylib per file in `examples/`, built by Peregrine's tests and loaded by
//! the `peregrine` binary through the plugin C API:
//!
//! - `rsource`: a source of `rsource` events with its own fields;
//! - `rsyscall`: an extractor on syscall events;
//! - `rparse`: a parser of `rsource` events that keeps a count per word in
//!   a table and exposes it as a field (with `{"export": true}` it also
//!   registers the table with the host);
//! - `rcount`: reads `rparse`'s table through the host's table API;
//! - `rasync`: pushes async events into the `rsource` stream.
//!
//! This library holds what they share: the `rsource` event payload.

use std::io::Write;

use falco_event::fields::{FromBytes, FromBytesError, ToBytes};
use falco_plugin::event::EventSource;

/// The event source `rsource` opens, and its plugin id.
pub const RSOURCE: &str = "rsource";
pub const RSOURCE_ID: u32 = 999_101;

/// The words `rsource` events carry, in turn.
pub const WORDS: [&str; 3] = ["alpha", "beta", "gamma"];

/// The payload of an `rsource` event: `"<n> <word>"` in ASCII.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a>(pub &'a [u8]);

impl Line<'_> {
    /// The event's number and word.
    pub fn parts(&self) -> Option<(u64, &str)> {
        let text = std::str::from_utf8(self.0).ok()?;
        let (n, word) = text.split_once(' ')?;
        Some((n.parse().ok()?, word))
    }
}

impl EventSource for Line<'_> {
    const SOURCE: Option<&'static str> = Some(RSOURCE);
}

impl<'a> FromBytes<'a> for Line<'a> {
    fn from_bytes(buf: &mut &'a [u8]) -> Result<Self, FromBytesError> {
        let all = *buf;
        *buf = &[];
        Ok(Line(all))
    }
}

impl ToBytes for Line<'_> {
    fn binary_size(&self) -> usize {
        self.0.len()
    }

    fn write<W: Write>(&self, mut writer: W) -> std::io::Result<()> {
        writer.write_all(self.0)
    }

    fn default_repr() -> impl ToBytes {
        Line(&[])
    }
}
