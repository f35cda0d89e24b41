//! The tokens of libsinsp's condition parser, read as it reads them: at a
//! byte cursor, each kind by its own rule (libsinsp uses a regular
//! expression or a literal prefix for each), with no separate tokenising
//! pass. A read that fails leaves the cursor where it was.

use super::parser::unescape;

/// A syntax error: Falco's message, and the byte offset where Falco's
/// parser stood when it gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub offset: usize,
}

pub type Step<T = ()> = Result<T, SyntaxError>;

/// Transformers written as a call; tried in this order, with no blank
/// allowed before the parenthesis.
const TRANSFORMER_CALLS: [&str; 8] = [
    "tolower(",
    "toupper(",
    "b64(",
    "basename(",
    "len(",
    "join(",
    "concat(",
    "getopt(",
];

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

pub struct Cursor<'a> {
    pub text: &'a str,
    s: &'a [u8],
    /// A byte offset.
    pub pos: usize,
    /// The last token read, which some errors name. A quoted string's is
    /// its text with the escapes resolved.
    pub token: String,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Cursor<'a> {
        Cursor {
            text,
            s: text.as_bytes(),
            pos: 0,
            token: String::new(),
        }
    }

    pub fn fail<T>(&self, message: impl Into<String>) -> Step<T> {
        Err(SyntaxError {
            message: message.into(),
            offset: self.pos,
        })
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub fn byte(&self) -> u8 {
        self.s.get(self.pos).copied().unwrap_or(0)
    }

    fn rest(&self) -> &[u8] {
        &self.s[self.pos..]
    }

    /// Blanks between tokens; the only read that leaves the last token be.
    pub fn blank(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.byte(), b' ' | b'\t' | 0x08 | b'\r' | b'\n') {
            self.pos += 1;
        }
        self.pos > start
    }

    /// `len` bytes from the cursor as the next token.
    fn take(&mut self, len: usize) -> bool {
        self.token = self.text[self.pos..self.pos + len].to_string();
        self.pos += len;
        true
    }

    /// `w` as a prefix of what follows, whatever comes after it.
    pub fn word(&mut self, w: &str) -> bool {
        self.rest().starts_with(w.as_bytes()) && self.take(w.len())
    }

    /// An operator word, which must be followed by a blank (taken too).
    pub fn word_then_blank(&mut self, w: &str) -> bool {
        let (pos, token) = (self.pos, self.token.clone());
        if self.word(w) && self.blank() {
            return true;
        }
        self.pos = pos;
        self.token = token;
        false
    }

    fn len_identifier(&self, from: usize) -> usize {
        let s = &self.s[from.min(self.s.len())..];
        if !s.first().is_some_and(u8::is_ascii_alphabetic) {
            return 0;
        }
        1 + s[1..].iter().take_while(|&&b| is_word(b)).count()
    }

    /// A letter, then letters, digits and underscores.
    pub fn identifier(&mut self) -> bool {
        let n = self.len_identifier(self.pos);
        n > 0 && self.take(n)
    }

    /// `name.name...`: at least two parts, each starting with a letter.
    pub fn field_name(&mut self) -> bool {
        let mut end = self.pos + self.len_identifier(self.pos);
        if end == self.pos {
            return false;
        }
        let mut parts = 1;
        while self.s.get(end) == Some(&b'.') {
            let n = self.len_identifier(end + 1);
            if n == 0 {
                break;
            }
            end += 1 + n;
            parts += 1;
        }
        parts > 1 && self.take(end - self.pos)
    }

    fn hex_number(&mut self) -> bool {
        let r = self.rest();
        if r.len() < 3 || r[0] != b'0' || !matches!(r[1], b'x' | b'X') {
            return false;
        }
        let n = r[2..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
        n > 0 && self.take(2 + n)
    }

    /// `[+-]digits[.][digits][(e|E)(+|-)digits]`, longest.
    fn decimal_number(&mut self) -> bool {
        let r = self.rest();
        let digits = |from: usize| {
            r[from.min(r.len())..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let mut n = usize::from(matches!(r.first(), Some(b'+' | b'-')));
        let int = digits(n);
        if int == 0 {
            return false;
        }
        n += int;
        if r.get(n) == Some(&b'.') {
            n += 1;
        }
        n += digits(n);
        if matches!(r.get(n), Some(b'e' | b'E')) && matches!(r.get(n + 1), Some(b'+' | b'-')) {
            let exp = digits(n + 2);
            if exp > 0 {
                n += 2 + exp;
            }
        }
        self.take(n)
    }

    /// A number, hexadecimal tried first (and unsigned).
    pub fn number(&mut self) -> bool {
        self.hex_number() || self.decimal_number()
    }

    /// A run of characters none of which is in `stop` nor a space. A byte
    /// that is not UTF-8 ends it too: libsinsp's RE2 patterns match
    /// characters, never such a byte, so a bare `\xff` is no value.
    fn run_except(&mut self, stop: &[u8]) -> bool {
        let rest = self.text.get(self.pos..).unwrap_or_default();
        let n = rest
            .char_indices()
            .find(|&(_, c)| {
                if c.is_ascii() {
                    is_space(c as u8) || stop.contains(&(c as u8))
                } else {
                    crate::text::is_raw_byte(c)
                }
            })
            .map_or(rest.len(), |(at, _)| at);
        n > 0 && self.take(n)
    }

    pub fn bare_string(&mut self) -> bool {
        self.run_except(b"()\"'=,")
    }

    pub fn field_arg_bare(&mut self) -> bool {
        self.run_except(b"[]\"'")
    }

    /// A quoted string. It ends at the first quote like the opening one
    /// that does not follow a backslash (so `"a\\"` does not end there);
    /// without one, nothing is read. Its escapes are resolved once it is
    /// read, and a bad one is an error after the closing quote (the cursor
    /// stays there, which a list's first item relies on).
    pub fn quoted(&mut self) -> Step<bool> {
        let quote = self.byte();
        if quote != b'"' && quote != b'\'' {
            return Ok(false);
        }
        let start = self.pos;
        let mut prev = b'\\';
        let mut i = start;
        while let Some(&b) = self.s.get(i).filter(|&&b| b != 0) {
            if i > start && b == quote && prev != b'\\' {
                self.pos = i + 1;
                let inner = &self.text[start + 1..i];
                self.token = self.text[start..=i].to_string();
                self.token = unescape(inner, quote as char).or_else(|e| self.fail(e))?;
                return Ok(true);
            }
            prev = b;
            i += 1;
        }
        self.token = self.text[start..i].to_string();
        Ok(false)
    }

    /// A transformer's name and opening parenthesis; the token is the name.
    pub fn transformer_call(&mut self) -> bool {
        for call in TRANSFORMER_CALLS {
            if self.word(call) {
                self.token.pop();
                return true;
            }
        }
        false
    }

    /// `not` and at least one space (libsinsp's class, vertical tab and
    /// form feed included).
    pub fn not_blank(&mut self) -> bool {
        let r = self.rest();
        if !r.starts_with(b"not") {
            return false;
        }
        let n = r[3..].iter().take_while(|&&b| is_space(b)).count();
        n > 0 && self.take(3 + n)
    }

    /// Whether a list, or a list's name, follows (after a modifier).
    pub fn list_follows(&self) -> bool {
        self.byte() == b'(' || self.len_identifier(self.pos) > 0
    }

    /// Whether `and`, `or` or `not` follows as a word of its own.
    pub fn boolean_follows(&self) -> bool {
        let r = self.rest();
        ["and", "or", "not"].iter().any(|kw| {
            r.starts_with(kw.as_bytes()) && !r.get(kw.len()).is_some_and(u8::is_ascii_alphanumeric)
        })
    }
}
