//! Text from the kernel, kept byte for byte.
//!
//! Paths, command lines and names are bytes, and nothing makes them UTF-8:
//! a file can be called `a\xffb`. Since engine 0.63 Falco matches conditions
//! on those raw bytes (`fd.name contains "\xff"` is how a rule finds such a
//! byte), feeds `regex` the text with each invalid sequence replaced by
//! U+FFFD, and prints U+FFFD in alerts.
//!
//! Peregrine keeps values as Rust strings, so [`decode`] stores each byte of
//! an invalid sequence as one character of a private range (U+10FF80 to
//! U+10FFFF stand for bytes 0x80 to 0xFF). The mapping is one to one:
//! [`raw_bytes`] gives the original bytes back, so equal strings mean equal
//! bytes, and a condition's literal decoded the same way compares as Falco's
//! raw comparison does. A real character of that private range is stored as
//! its own four bytes, so it cannot pass for an escaped byte. [`sanitize`]
//! turns a value into what Falco shows: the raw bytes, with U+FFFD for each
//! invalid sequence (the Unicode "maximal subpart" rule, as libsinsp's).
//!
//! Valid UTF-8 outside the private range, nearly all text, is borrowed
//! unchanged: the cost is one validation, which the old lossy reading paid
//! too.

use std::borrow::Cow;

/// The first character standing for a byte: byte `b` is `ESCAPE_BASE + b`.
const ESCAPE_BASE: u32 = 0x10FF00;

/// Every character of the private range is encoded as F4 8F BE xx or
/// F4 8F BF xx; F4 starts only characters from U+100000 on, so a string
/// without it holds no escaped byte.
const ESCAPE_LEAD: u8 = 0xF4;

fn is_escape(c: char) -> bool {
    (ESCAPE_BASE + 0x80..=ESCAPE_BASE + 0xFF).contains(&(c as u32))
}

fn escape_byte(b: u8, out: &mut String) {
    // Bytes below 0x80 are ASCII and always valid, never escaped.
    if let Some(c) = char::from_u32(ESCAPE_BASE + u32::from(b)) {
        out.push(c);
    }
}

/// Bytes as text, losing nothing: see the module's comment.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if !text.as_bytes().contains(&ESCAPE_LEAD) || !text.chars().any(is_escape) {
            return Cow::Borrowed(text);
        }
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_escape(c) {
                let mut buf = [0u8; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    escape_byte(b, &mut out);
                }
            } else {
                out.push(c);
            }
        }
        for &b in chunk.invalid() {
            escape_byte(b, &mut out);
        }
    }
    Cow::Owned(out)
}

/// [`decode`] of owned bytes, without a copy when they are plain UTF-8.
pub fn decode_owned(bytes: Vec<u8>) -> String {
    match decode(&bytes) {
        Cow::Borrowed(_) => String::from_utf8(bytes).unwrap_or_default(),
        Cow::Owned(text) => text,
    }
}

/// Whether `text` holds bytes that were not UTF-8 (or a character of the
/// private range): only then does it differ from its raw bytes.
pub fn has_raw(text: &str) -> bool {
    text.as_bytes().contains(&ESCAPE_LEAD) && text.chars().any(is_escape)
}

/// The bytes `text` was decoded from.
pub fn raw_bytes(text: &str) -> Cow<'_, [u8]> {
    if !has_raw(text) {
        return Cow::Borrowed(text.as_bytes());
    }
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if is_escape(c) {
            out.push((c as u32 - ESCAPE_BASE) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Cow::Owned(out)
}

/// What Falco shows of a value: its raw bytes, each invalid sequence
/// replaced by U+FFFD.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    match raw_bytes(text) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// An alert line as Falco prints it in text (engine 0.63): sanitized, then
/// written as the body of a JSON string, so a newline, a quote or an
/// escape sequence in a file name cannot forge a line or drive a terminal.
/// `"` and `\` are escaped, control characters below U+0020 become `\n`,
/// `\t`, `\r`, `\b`, `\f` or `\u00XX`; everything else is kept.
pub fn escape_line(line: &str) -> Cow<'_, str> {
    let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\' || b == ESCAPE_LEAD;
    if !line.bytes().any(needs) {
        return Cow::Borrowed(line);
    }
    let clean = sanitize(line);
    let mut out = String::with_capacity(clean.len() + 16);
    for c in clean.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_text_is_borrowed() {
        assert!(matches!(
            decode(b"/etc/passwd"),
            Cow::Borrowed("/etc/passwd")
        ));
        assert!(matches!(decode("caf\u{e9}".as_bytes()), Cow::Borrowed(_)));
        assert!(matches!(raw_bytes("/etc"), Cow::Borrowed(b"/etc")));
        assert!(matches!(sanitize("/etc"), Cow::Borrowed("/etc")));
    }

    #[test]
    fn every_byte_string_comes_back() {
        let samples: [&[u8]; 7] = [
            b"a\xffb",
            b"\xe2\x82",
            b"\xe2\x82\xac",
            b"\xf0\x80\x80",
            b"x\xc3",
            "\u{10ff80}\u{10ffff}".as_bytes(),
            b"\xf4\x8f\xbe\x80\xff",
        ];
        for bytes in samples {
            let text = decode(bytes);
            assert_eq!(raw_bytes(&text).as_ref(), bytes, "{bytes:x?}");
        }
        // Every two-byte string, so every lead and continuation pairing.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let bytes = [a, b'x', b, a];
                assert_eq!(raw_bytes(&decode(&bytes)).as_ref(), &bytes);
            }
        }
    }

    #[test]
    fn decoding_is_one_to_one() {
        // A real private-range character and the byte it would stand for
        // decode differently.
        assert_ne!(decode(b"\xff"), decode("\u{10ffff}".as_bytes()));
        assert_eq!(decode(b"\xff"), "\u{10ffff}");
    }

    #[test]
    fn sanitize_replaces_each_maximal_subpart() {
        // libsinsp's cases: a 3-byte lead with one good continuation is one
        // subpart; a lead with a bad first continuation is one byte.
        assert_eq!(sanitize(&decode(b"\xe2\x82A")), "\u{fffd}A");
        assert_eq!(sanitize(&decode(b"\xf0\x80")), "\u{fffd}\u{fffd}");
        assert_eq!(sanitize(&decode(b"a\xff\xfez")), "a\u{fffd}\u{fffd}z");
        // A real private-range character is shown as itself.
        assert_eq!(sanitize(&decode("\u{10ff80}".as_bytes())), "\u{10ff80}");
    }

    #[test]
    fn lines_are_escaped_as_falco_prints_them() {
        assert!(matches!(escape_line("plain é text"), Cow::Borrowed(_)));
        assert_eq!(escape_line("a\nb\tc\u{1b}[31m"), "a\\nb\\tc\\u001b[31m");
        assert_eq!(escape_line("say \"hi\" \\ bye"), "say \\\"hi\\\" \\\\ bye");
        assert_eq!(
            escape_line("\u{7f}\u{85}\r\u{8}\u{c}\0"),
            "\u{7f}\u{85}\\r\\b\\f\\u0000"
        );
        assert_eq!(
            escape_line(&decode(b"/tmp/\xff\xfez")),
            "/tmp/\u{fffd}\u{fffd}z"
        );
    }
}
