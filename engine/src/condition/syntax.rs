//! Falco's syntax check of a condition, with Falco's words and positions.
//!
//! Falco reads a condition with libsinsp's hand-written recursive-descent
//! parser, which stops at the first token it cannot take and says so in
//! words of its own, at the place its cursor had reached. Those words and
//! places follow from the order in which that parser tries its
//! alternatives, from the shape of its tokens (bare strings end at `=`,
//! `in` needs no blank after it, `and` needs a blank or a `(`...) and from
//! its backtracking, none of which a PEG's error report can give back. So
//! before the grammar builds a tree, this recogniser walks the condition
//! the way that parser does and keeps nothing but the first error: what
//! it accepts is exactly what Falco accepts, and what it refuses is
//! refused with the message and the position Falco reports.
//!
//! It recurses like that parser, and counts its depth the same way (each
//! step that Falco guards adds one; Falco's rules loader allows 1000), so
//! that too deep a condition fails where Falco's does — and so that its
//! own recursion is bounded.

use super::parser::unescape;

/// The depth Falco's rules loader allows its condition parser.
const MAX_DEPTH: u32 = 1000;

/// The operators, in the order Falco lists them when none is found.
const OPERATORS: &str = "'exists', '<=', '<', '>=', '>', '==', '=', '!=', 'glob', 'iglob', \
     'contains', 'icontains', 'bcontains', 'startswith', 'bstartswith', 'endswith', 'regex', \
     'intersects', 'in', 'pmatch'";

/// The transformers (and `val`), in the order Falco lists them.
const TRANSFORMERS: &str =
    "'val', 'tolower', 'toupper', 'b64', 'basename', 'len', 'join', 'concat', 'getopt'";

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

/// Comparison operators taking a number; tried in this order.
const NUM_OPS: [&str; 4] = ["<=", "<", ">=", ">"];
/// Comparison operators taking a string. Words must be followed by a blank
/// (which is taken with them); symbols need not.
const STR_SYMBOL_OPS: [&str; 3] = ["==", "=", "!="];
const STR_WORD_OPS: [&str; 9] = [
    "glob",
    "iglob",
    "contains",
    "icontains",
    "bcontains",
    "startswith",
    "bstartswith",
    "endswith",
    "regex",
];
const MODIFIERS: [&str; 3] = ["oneof", "anyof", "allof"];
/// Operators taking a list: matched as prefixes, no blank needed after.
const LIST_OPS: [&str; 3] = ["intersects", "in", "pmatch"];

/// Whether `op` is one of the comparison operators libsinsp's parser knows
/// (what an exception's `comps` may name).
pub(crate) fn is_comparison_operator(op: &str) -> bool {
    op == "exists"
        || NUM_OPS
            .iter()
            .chain(&STR_SYMBOL_OPS)
            .chain(&STR_WORD_OPS)
            .chain(&LIST_OPS)
            .any(|known| *known == op)
}

/// The first syntax error of a condition: Falco's message, and the byte
/// offset where Falco's parser stood when it gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub offset: usize,
}

/// Checks `text` as Falco's condition parser reads it.
pub fn check(text: &str) -> Result<(), SyntaxError> {
    let mut c = Checker {
        text,
        s: text.as_bytes(),
        pos: 0,
        token: String::new(),
        depth: 0,
    };
    c.parse()
}

/// Falco's line and column (both 1-based) of byte `offset` in `text`: a
/// carriage return starts a line as a line feed does, and columns count
/// bytes.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let (mut line, mut column) = (1, 1);
    for &b in &text.as_bytes()[..offset.min(text.len())] {
        column += 1;
        if b == b'\r' || b == b'\n' {
            column = 1;
            line += 1;
        }
    }
    (line, column)
}

type Step<T = ()> = Result<T, SyntaxError>;

struct Checker<'a> {
    text: &'a str,
    s: &'a [u8],
    /// The cursor, a byte offset.
    pos: usize,
    /// The last token read, which the final error names.
    token: String,
    depth: u32,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Checker<'_> {
    fn fail<T>(&self, message: impl Into<String>) -> Step<T> {
        Err(SyntaxError {
            message: message.into(),
            offset: self.pos,
        })
    }

    fn byte(&self) -> u8 {
        self.s.get(self.pos).copied().unwrap_or(0)
    }

    fn rest(&self) -> &[u8] {
        &self.s[self.pos..]
    }

    /// One level of recursion, counted as Falco counts it: the level that
    /// goes over the limit is never given back.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> Step<T>) -> Step<T> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return self.fail(format!("exceeded max depth limit of {MAX_DEPTH}"));
        }
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn parse(&mut self) -> Step {
        if self.s.is_empty() {
            return self.fail("filter input string is empty");
        }
        self.parse_or()?;
        if self.depth > 0 {
            return self.fail("parser fatal error: recursion is unbalanced");
        }
        if self.pos != self.s.len() {
            return self.fail(format!(
                "unexpected token after '{}', expecting 'or', 'and'",
                self.token
            ));
        }
        Ok(())
    }

    // ---- tokens ----

    /// Blanks between tokens; the only read that leaves the last token be.
    fn blank(&mut self) -> bool {
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

    fn word(&mut self, w: &str) -> bool {
        self.rest().starts_with(w.as_bytes()) && self.take(w.len())
    }

    /// An operator word, which must be followed by a blank (taken too).
    fn word_then_blank(&mut self, w: &str) -> bool {
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

    fn identifier(&mut self) -> bool {
        let n = self.len_identifier(self.pos);
        n > 0 && self.take(n)
    }

    /// `name.name...`: at least two parts, each starting with a letter.
    fn field_name(&mut self) -> bool {
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
    fn number(&mut self) -> bool {
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

    fn any_number(&mut self) -> bool {
        self.hex_number() || self.number()
    }

    /// A run of bytes none of which is in `stop` nor a space.
    fn run_except(&mut self, stop: &[u8]) -> bool {
        let n = self
            .rest()
            .iter()
            .take_while(|&&b| !is_space(b) && !stop.contains(&b))
            .count();
        n > 0 && self.take(n)
    }

    fn bare_string(&mut self) -> bool {
        self.run_except(b"()\"'=,")
    }

    fn field_arg_bare(&mut self) -> bool {
        self.run_except(b"[]\"'")
    }

    /// A quoted string. It ends at the first quote like the opening one
    /// that does not follow a backslash (so `"a\\"` does not end there);
    /// without one, nothing is read. Its escapes are resolved once it is
    /// read, and a bad one is an error after the closing quote.
    fn quoted(&mut self) -> Step<bool> {
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

    fn transformer_call(&mut self) -> bool {
        for call in TRANSFORMER_CALLS {
            if self.word(call) {
                self.token.pop();
                return true;
            }
        }
        false
    }

    // ---- expressions ----

    fn parse_or(&mut self) -> Step {
        self.parse_chain("or", Self::parse_and)
    }

    fn parse_and(&mut self) -> Step {
        self.parse_chain("and", Self::parse_not)
    }

    /// `operand (word operand)*`, where the word is followed by a blank or
    /// an opening parenthesis, as libsinsp reads `or` and `and`.
    fn parse_chain(&mut self, word: &'static str, operand: fn(&mut Self) -> Step) -> Step {
        self.guarded(|c| {
            c.blank();
            operand(c)?;
            c.blank();
            while c.word(word) {
                if c.blank() {
                    operand(c)?;
                } else if c.word("(") {
                    c.embedded()?;
                } else {
                    return c.fail(format!("expected blank or '(' after '{word}'"));
                }
                c.blank();
            }
            Ok(())
        })
    }

    fn not_blank(&mut self) -> bool {
        let r = self.rest();
        if !r.starts_with(b"not") {
            return false;
        }
        let n = r[3..].iter().take_while(|&&b| is_space(b)).count();
        n > 0 && self.take(3 + n)
    }

    fn parse_not(&mut self) -> Step {
        self.guarded(|c| {
            c.blank();
            while c.not_blank() {}
            if c.word("not(") {
                c.embedded()
            } else {
                c.parse_check()
            }
        })
    }

    /// What follows an opening parenthesis of a sub-expression.
    fn embedded(&mut self) -> Step {
        self.guarded(|c| {
            c.blank();
            c.parse_or()?;
            c.blank();
            if !c.word(")") {
                return c.fail("expected a ')' token");
            }
            Ok(())
        })
    }

    fn parse_check(&mut self) -> Step {
        self.guarded(|c| {
            c.blank();
            if c.word("(") {
                return c.embedded();
            }
            if c.field_name() {
                c.field_rest()?;
                return c.comparison();
            }
            if c.transformer_call() {
                c.blank();
                c.transformer_rest()?;
                return c.comparison();
            }
            if c.identifier() {
                return Ok(());
            }
            c.fail("expected a '(' token, a field check, or an identifier")
        })
    }

    fn field_rest(&mut self) -> Step {
        self.guarded(|c| c.field_arg())
    }

    fn field_arg(&mut self) -> Step {
        if !self.word("[") {
            return Ok(());
        }
        if !self.quoted()? && !self.field_arg_bare() {
            return self.fail("expected a valid field argument: a quoted string or a bare string");
        }
        if !self.word("]") {
            return self.fail("expected a ']' token");
        }
        Ok(())
    }

    /// A transformer's arguments, after its opening parenthesis.
    fn transformer_rest(&mut self) -> Step {
        self.guarded(|c| {
            c.blank();
            loop {
                c.transformer_arg()?;
                c.blank();
                if !c.word(",") {
                    break;
                }
            }
            c.blank();
            if !c.word(")") {
                return c.fail("expected a ')' token closing the transformer");
            }
            c.field_arg()
        })
    }

    fn transformer_arg(&mut self) -> Step {
        self.guarded(|c| {
            c.blank();
            if c.any_number() || c.quoted()? {
                return Ok(());
            }
            if c.word("(") {
                return c.transformer_list();
            }
            if c.transformer_call() {
                return c.transformer_rest();
            }
            if c.field_name() {
                return c.field_rest();
            }
            c.fail(
                "expected field transformer argument: \
                 field, transformer, quoted string, number, or transformer list",
            )
        })
    }

    fn transformer_list(&mut self) -> Step {
        self.blank();
        if self.word(")") {
            return Ok(());
        }
        self.transformer_list_item()?;
        self.blank();
        while self.word(",") {
            self.blank();
            self.transformer_list_item()?;
            self.blank();
        }
        if !self.word(")") {
            return self.fail("expected ')'");
        }
        Ok(())
    }

    fn transformer_list_item(&mut self) -> Step {
        if self.field_name() {
            return self.field_rest();
        }
        if self.transformer_call() {
            self.blank();
            return self.transformer_rest();
        }
        if self.quoted()? || self.any_number() {
            return Ok(());
        }
        self.fail(
            "expected transformer list argument: field, transformer, quoted string, or number",
        )
    }

    /// The operator and right-hand side after a field.
    fn comparison(&mut self) -> Step {
        self.guarded(|c| {
            c.blank();
            if c.word("exists") {
                return Ok(());
            }
            c.blank();
            if NUM_OPS.iter().any(|op| c.word(op)) {
                return c.num_value();
            }
            let word_op = STR_WORD_OPS.iter().any(|op| c.word_then_blank(op));
            if word_op || STR_SYMBOL_OPS.iter().any(|op| c.word(op)) {
                let had_blank = word_op || c.blank();
                let (pos, token) = (c.pos, c.token.clone());
                if had_blank
                    && MODIFIERS.iter().any(|m| c.word_then_blank(m))
                    && c.list_follows()
                    && !c.boolean_follows()
                {
                    return c.list_value();
                }
                c.pos = pos;
                c.token = token;
                return c.str_value(false);
            }
            if LIST_OPS.iter().any(|op| c.word(op)) {
                return c.list_value_or_transformer();
            }
            c.fail(format!(
                "expected a valid check operator: one of {OPERATORS}"
            ))
        })
    }

    fn list_follows(&self) -> bool {
        self.byte() == b'(' || self.len_identifier(self.pos) > 0
    }

    fn boolean_follows(&self) -> bool {
        let r = self.rest();
        ["and", "or", "not"].iter().any(|kw| {
            r.starts_with(kw.as_bytes()) && !r.get(kw.len()).is_some_and(u8::is_ascii_alphanumeric)
        })
    }

    fn num_value(&mut self) -> Step {
        self.guarded(|c| {
            c.blank();
            if c.transformer_or_val()? || c.any_number() {
                return Ok(());
            }
            c.fail(format!(
                "expected a number value or a field with a valid transformer: {TRANSFORMERS}"
            ))
        })
    }

    fn str_value(&mut self, value_only: bool) -> Step {
        self.guarded(|c| {
            c.blank();
            if !value_only && c.transformer_or_val()? {
                return Ok(());
            }
            if c.quoted()? || c.bare_string() {
                return Ok(());
            }
            if value_only {
                return c.fail("expected a string value");
            }
            c.fail(format!(
                "expected a string value or a field with a valid transformer: {TRANSFORMERS}"
            ))
        })
    }

    /// `(a, "b", ...)`. Falco gives up on the first item silently (the
    /// list is then expected to close), and on the others with an error.
    fn try_list(&mut self) -> Step<bool> {
        if !self.word("(") {
            return Ok(false);
        }
        self.blank();
        if self.str_value(true).is_ok() {
            self.blank();
            while self.word(",") {
                self.str_value(true)?;
                self.blank();
            }
        }
        if !self.word(")") {
            return self.fail("expected a ')' token");
        }
        Ok(true)
    }

    /// After an operator with a modifier: a list or a list's name.
    fn list_value(&mut self) -> Step {
        self.guarded(|c| {
            c.blank();
            if c.try_list()? || c.identifier() {
                return Ok(());
            }
            c.fail("expected a list or an identifier")
        })
    }

    fn list_value_or_transformer(&mut self) -> Step {
        self.guarded(|c| {
            c.blank();
            if c.try_list()? || c.transformer_or_val()? || c.identifier() {
                return Ok(());
            }
            c.fail(format!(
                "expected a list, an identifier, or a field with a valid transformer: {TRANSFORMERS}"
            ))
        })
    }

    /// `val(field)` or a transformer call, if one starts here.
    fn transformer_or_val(&mut self) -> Step<bool> {
        self.guarded(|c| {
            c.blank();
            if c.word("val(") {
                c.blank();
                c.token.pop();
                if !c.field_name() {
                    return c.fail("expected a field within 'val' transformer");
                }
                c.field_rest()?;
                c.blank();
                if !c.word(")") {
                    return c.fail("expected a ')' token closing the transformer");
                }
                c.field_arg()?;
                return Ok(true);
            }
            if c.transformer_call() {
                c.blank();
                c.transformer_rest()?;
                return Ok(true);
            }
            Ok(false)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (String, usize) {
        let e = check(text).expect_err(text);
        (e.message, e.offset)
    }

    #[test]
    fn falco_accepts() {
        for ok in [
            "evt.type=open",
            "a.b in (x, \"y\") and not m",
            "not(a.b=1)or(c.d exists)",
            "a.b startswith oneof (x, y)",
            "a.b = oneof",
            "a.b pmatch val(c.d)",
            "len(a.b) > 0x1f",
            "join(\",\", (a.b, tolower(c.d), 1)) = x",
            "getopt(a.b, \"nt:\")[t] = x",
            "a.b[1] = 'x' or a.b[\"k\"] exists",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn depth_over_falco_limit() {
        let deep = format!("{}a.b=1{}", "(".repeat(300), ")".repeat(300));
        let (message, _) = err(&deep);
        assert_eq!(message, "exceeded max depth limit of 1000");
    }

    #[test]
    fn positions_count_bytes_and_carriage_returns() {
        assert_eq!(line_col("ab\r\ncd", 5), (3, 2));
        assert_eq!(line_col("é x", 3), (1, 4));
    }
}
