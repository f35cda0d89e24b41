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

/// Whether `c` stands for a byte that was not UTF-8 (see [`decode`]).
pub fn is_raw_byte(c: char) -> bool {
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
    // Most paths and names are short ASCII, where the word-at-a-time test
    // costs a fraction of a validation's set-up.
    if bytes.is_ascii() {
        // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8.
        return Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        if !text.as_bytes().contains(&ESCAPE_LEAD) || !text.chars().any(is_raw_byte) {
            return Cow::Borrowed(text);
        }
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_raw_byte(c) {
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
    text.as_bytes().contains(&ESCAPE_LEAD) && text.chars().any(is_raw_byte)
}

/// The bytes `text` was decoded from.
pub fn raw_bytes(text: &str) -> Cow<'_, [u8]> {
    if !has_raw(text) {
        return Cow::Borrowed(text.as_bytes());
    }
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if is_raw_byte(c) {
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

/// What Falco's JSON `output_fields` show of a value, which is not what
/// its text shows when the bytes are not UTF-8. libsinsp writes the
/// fields as JSON with jsoncpp, and Falco parses that JSON back before
/// writing its own (`output_fields` of its alert): the characters are
/// jsoncpp's reading of the raw bytes, which trusts a lead byte without
/// checking what follows it (see [`jsoncpp_char`]). So a cut sequence in
/// the middle of a value takes the next bytes with it (`e2 82 62`, a cut
/// `€` then `b`, reads as U+20A2), and one cut by the end of the value
/// shows one U+FFFD per byte where the text shows one for all (`e2 82` at
/// the end: two U+FFFD). Valid UTF-8 reads as itself.
pub fn json_field(text: &str) -> Cow<'_, str> {
    let bytes = raw_bytes(text);
    if let Cow::Borrowed(_) = bytes {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    let mut rest: &[u8] = &bytes;
    while !rest.is_empty() {
        let (c, len) = jsoncpp_char(rest);
        out.push(c);
        rest = &rest[len..];
    }
    Cow::Owned(out)
}

/// The character jsoncpp's writer (1.9, `utf8ToCodepoint`) reads at the
/// start of `bytes` (not empty), and how many bytes it takes. The lead
/// byte alone sets the length: below 0x80 one byte; up to 0xDF two (so a
/// stray continuation byte is a lead too); up to 0xEF three; up to 0xF7
/// four; above, one byte read as U+FFFD. When the value ends before that
/// length, the lead alone is U+FFFD and the next byte starts afresh.
/// Otherwise the bytes are taken whatever they are, and only their low six
/// bits count: an overlong result or a surrogate is U+FFFD, and a four-byte
/// result past U+10FFFF keeps its low 20 bits above U+10000 (jsoncpp writes
/// it as a `\u` surrogate pair from those 20 bits).
fn jsoncpp_char(bytes: &[u8]) -> (char, usize) {
    const REPLACEMENT: char = char::REPLACEMENT_CHARACTER;
    let lead = bytes[0];
    let (len, high_bits) = match lead {
        0x00..=0x7F => return (char::from(lead), 1),
        0x80..=0xDF => (2, lead & 0x1F),
        0xE0..=0xEF => (3, lead & 0x0F),
        0xF0..=0xF7 => (4, lead & 0x07),
        0xF8..=0xFF => return (REPLACEMENT, 1),
    };
    let Some(tail) = bytes.get(1..len) else {
        return (REPLACEMENT, 1);
    };
    let value = tail
        .iter()
        .fold(u32::from(high_bits), |v, &b| (v << 6) | u32::from(b & 0x3F));
    let value = match len {
        2 if value < 0x80 => None,
        3 if value < 0x800 || (0xD800..=0xDFFF).contains(&value) => None,
        4 if value < 0x10000 => None,
        4 => Some(0x10000 + ((value - 0x10000) & 0xF_FFFF)),
        _ => Some(value),
    };
    (value.and_then(char::from_u32).unwrap_or(REPLACEMENT), len)
}

/// An alert line as Falco prints it in text (engine 0.63): the line, whose
/// values are already shown as [`sanitize`] gives them, written as the
/// body of a JSON string, so a newline, a quote or an escape sequence in a
/// file name cannot forge a line or drive a terminal. `"` and `\` are
/// escaped, control characters below U+0020 become `\n`, `\t`, `\r`,
/// `\b`, `\f` or `\u00XX`; everything else is kept. The line is not
/// sanitized again: a real character of the private range (U+10FFFF in a
/// name, say) would be taken for an escaped byte and lost.
pub fn escape_line(line: &str) -> Cow<'_, str> {
    let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    if !line.bytes().any(needs) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in line.chars() {
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

    /// (name's bytes, Falco's JSON `output_fields` value, Falco's text
    /// alert), as Falco master (0.45.0-36, engine 0.63) showed `fd.name`
    /// of files named `z` then these bytes, opened by `touch` and replayed
    /// from a capture: the value of `output_fields`, and the same value in
    /// the text line (which JSON's `output` shows unescaped).
    const FALCO_SHOWED: &[(&[u8], &[u8], &[u8])] = &[
        (b"a\xe2\x82", b"a\xef\xbf\xbd\xef\xbf\xbd", b"a\xef\xbf\xbd"),
        (b"a\xe2", b"a\xef\xbf\xbd", b"a\xef\xbf\xbd"),
        (b"a\xc3", b"a\xef\xbf\xbd", b"a\xef\xbf\xbd"),
        (b"a\xf0\x9f\x98", b"a\xef\xbf\xbd\xdf\x98", b"a\xef\xbf\xbd"),
        (b"a\xf0\x9f", b"a\xef\xbf\xbd\xef\xbf\xbd", b"a\xef\xbf\xbd"),
        (b"a\xf0", b"a\xef\xbf\xbd", b"a\xef\xbf\xbd"),
        (b"a\xe2\x82b", b"a\xe2\x82\xa2", b"a\xef\xbf\xbdb"),
        (b"a\xf0\x9f\x98b", b"a\xf0\x9f\x98\xa2", b"a\xef\xbf\xbdb"),
        (b"a\xc3b", b"a\xc3\xa2", b"a\xef\xbf\xbdb"),
        (b"a\x80b", b"a\xef\xbf\xbd", b"a\xef\xbf\xbdb"),
        (b"a\x80", b"a\xef\xbf\xbd", b"a\xef\xbf\xbd"),
        (
            b"a\x80\x80b",
            b"a\xef\xbf\xbdb",
            b"a\xef\xbf\xbd\xef\xbf\xbdb",
        ),
        (b"a\xffb", b"a\xef\xbf\xbdb", b"a\xef\xbf\xbdb"),
        (b"a\xff", b"a\xef\xbf\xbd", b"a\xef\xbf\xbd"),
        (
            b"a\xc0\xafb",
            b"a\xef\xbf\xbdb",
            b"a\xef\xbf\xbd\xef\xbf\xbdb",
        ),
        (
            b"a\xed\xa0\x80b",
            b"a\xef\xbf\xbdb",
            b"a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdb",
        ),
        (
            b"a\xf4\x90\x80\x80b",
            b"a\xf0\x90\x80\x80b",
            b"a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdb",
        ),
        (
            b"a\xe2\x82\xe2\x82\xacb",
            b"a\xe2\x82\xa2\xc2\xacb",
            b"a\xef\xbf\xbd\xe2\x82\xacb",
        ),
        (
            b"\xe2\x82\xac\xe2",
            b"\xe2\x82\xac\xef\xbf\xbd",
            b"\xe2\x82\xac\xef\xbf\xbd",
        ),
        (b"a\xe2\x82\xac", b"a\xe2\x82\xac", b"a\xe2\x82\xac"),
        (
            b"a\xf0\x9f\x98\x80",
            b"a\xf0\x9f\x98\x80",
            b"a\xf0\x9f\x98\x80",
        ),
        (
            b"a\xe0\x80\x80b",
            b"a\xef\xbf\xbdb",
            b"a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdb",
        ),
        (b"a\xe1\x80", b"a\xef\xbf\xbd\xef\xbf\xbd", b"a\xef\xbf\xbd"),
        (
            b"a\xe2\x82\x80\x80",
            b"a\xe2\x82\x80\xef\xbf\xbd",
            b"a\xe2\x82\x80\xef\xbf\xbd",
        ),
        (
            b"a\xc2\x80\x80",
            b"a\xc2\x80\xef\xbf\xbd",
            b"a\xc2\x80\xef\xbf\xbd",
        ),
        (b"a\xf4\x8f\xbf", b"a\xef\xbf\xbd\xcf\xbf", b"a\xef\xbf\xbd"),
        (
            b"a\xf4\x8f\xbf\xbf",
            b"a\xf4\x8f\xbf\xbf",
            b"a\xf4\x8f\xbf\xbf",
        ),
        (
            b"a\xff\xfe",
            b"a\xef\xbf\xbd\xef\xbf\xbd",
            b"a\xef\xbf\xbd\xef\xbf\xbd",
        ),
        (
            b"a\xf0\x80\x80",
            b"a\xef\xbf\xbd\xef\xbf\xbd",
            b"a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
        ),
        (b"a\xed\x9f\xbf", b"a\xed\x9f\xbf", b"a\xed\x9f\xbf"),
        (
            b"a\xed\xa0",
            b"a\xef\xbf\xbd\xef\xbf\xbd",
            b"a\xef\xbf\xbd\xef\xbf\xbd",
        ),
        (
            b"a\xe2\x82\x22q",
            b"a\xe2\x82\xa2q",
            b"a\xef\xbf\xbd\x5c\x22q",
        ),
        (b"a\xe2\x82\x5c", b"a\xe2\x82\x9c", b"a\xef\xbf\xbd\x5c\x5c"),
        (
            b"a\xe2\x82\x01",
            b"a\xe2\x82\x81",
            b"a\xef\xbf\xbd\x5cu0001",
        ),
        (
            b"a\xf7\xbf\xbf\xbfb",
            b"a\xf3\xbf\xbf\xbfb",
            b"a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdb",
        ),
        (
            b"a\xf5\x80\x80\x80",
            b"a\xf1\x80\x80\x80",
            b"a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
        ),
        (b"a\xf8b", b"a\xef\xbf\xbdb", b"a\xef\xbf\xbdb"),
        (b"a\xfe", b"a\xef\xbf\xbd", b"a\xef\xbf\xbd"),
        (
            b"a\xc1\xbfb",
            b"a\xef\xbf\xbdb",
            b"a\xef\xbf\xbd\xef\xbf\xbdb",
        ),
        (b"a\xe0\xa0\x80", b"a\xe0\xa0\x80", b"a\xe0\xa0\x80"),
        (b"a\xef\xbf\xbf", b"a\xef\xbf\xbf", b"a\xef\xbf\xbf"),
        (b"\x80a", b"\xef\xbf\xbd", b"\xef\xbf\xbda"),
        (b"a\xc3\x0ab", b"a\xc3\x8ab", b"a\xef\xbf\xbd\x5cnb"),
        (b"a\xc3\x09b", b"a\xc3\x89b", b"a\xef\xbf\xbd\x5ctb"),
        (
            b"a\xe2\x82\x1b[1m",
            b"a\xe2\x82\x9b[1m",
            b"a\xef\xbf\xbd\x5cu001b[1m",
        ),
        (
            b"a\xf0\x9f\x98\x80\x80",
            b"a\xf0\x9f\x98\x80\xef\xbf\xbd",
            b"a\xf0\x9f\x98\x80\xef\xbf\xbd",
        ),
        (
            b"a\xe2\x82\xe2\x82",
            b"a\xe2\x82\xa2\xef\xbf\xbd",
            b"a\xef\xbf\xbd\xef\xbf\xbd",
        ),
        (
            b"a\xf4\x8f\xbf\xbf\xbf",
            b"a\xf4\x8f\xbf\xbf\xef\xbf\xbd",
            b"a\xf4\x8f\xbf\xbf\xef\xbf\xbd",
        ),
        (b"a\xdf", b"a\xef\xbf\xbd", b"a\xef\xbf\xbd"),
        (b"a\xdf\xbf", b"a\xdf\xbf", b"a\xdf\xbf"),
        (
            b"a\xdf\xbf\xbf",
            b"a\xdf\xbf\xef\xbf\xbd",
            b"a\xdf\xbf\xef\xbf\xbd",
        ),
        (b"a\xee\x80", b"a\xef\xbf\xbd\xef\xbf\xbd", b"a\xef\xbf\xbd"),
        (b"a\xc0", b"a\xef\xbf\xbd", b"a\xef\xbf\xbd"),
        (b"a\xc0\x80", b"a\xef\xbf\xbd", b"a\xef\xbf\xbd\xef\xbf\xbd"),
        (b"a\xc2", b"a\xef\xbf\xbd", b"a\xef\xbf\xbd"),
        (
            b"a\xed\xbf\xbfb",
            b"a\xef\xbf\xbdb",
            b"a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdb",
        ),
        (b"a\xee\x80\x80b", b"a\xee\x80\x80b", b"a\xee\x80\x80b"),
        (b"a\xf0\x90\x80", b"a\xef\xbf\xbd\xd0\x80", b"a\xef\xbf\xbd"),
        (b"a\xf0\x90", b"a\xef\xbf\xbd\xef\xbf\xbd", b"a\xef\xbf\xbd"),
    ];

    #[test]
    fn json_fields_and_text_show_bytes_as_falco_does() {
        for &(name, json, text) in FALCO_SHOWED {
            let value = decode(name);
            assert_eq!(
                json_field(&value).as_bytes(),
                json,
                "JSON field of {name:x?}"
            );
            assert_eq!(
                escape_line(&sanitize(&value)).as_bytes(),
                text,
                "text of {name:x?}"
            );
        }
        // Valid text is borrowed, and a real private-range character is
        // itself in both.
        assert!(matches!(json_field("caf\u{e9}"), Cow::Borrowed(_)));
        assert_eq!(json_field(&decode("\u{10ff80}".as_bytes())), "\u{10ff80}");
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
        // Sanitized values, as an alert's output holds them, stay as
        // they are, a real U+10FFFF with them.
        assert_eq!(
            escape_line(&sanitize(&decode(b"/tmp/\xff\xfe\"z"))),
            "/tmp/\u{fffd}\u{fffd}\\\"z"
        );
        let top = sanitize(&decode("/tmp/\u{10ffff}\n".as_bytes())).into_owned();
        assert_eq!(escape_line(&top), "/tmp/\u{10ffff}\\n");
    }
}
