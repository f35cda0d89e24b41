//! Falco's condition language, read as libsinsp's parser reads it.
//!
//! Falco reads a condition with libsinsp's hand-written recursive-descent
//! parser, which stops at the first token it cannot take and says so in
//! words of its own, at the place its cursor had reached. Those words and
//! places follow from the order in which that parser tries its
//! alternatives, from the shape of its tokens (bare strings end at `=`,
//! `in` needs no blank after it, `and` needs a blank or a `(`...) and from
//! its backtracking. So this parser takes the same steps in the same
//! order, building the tree as it goes: what it accepts is exactly what
//! Falco accepts, read the same way, and what it refuses is refused with
//! the message and the position Falco reports.
//!
//! It recurses like that parser, and counts its depth the same way (each
//! step that libsinsp guards adds one; Falco's rules loader allows 1000),
//! so that too deep a condition fails where Falco's does, and so that its
//! own recursion, and that of everything walking the tree it builds, is
//! bounded. A chain of `not`s is read in a loop, as libsinsp reads it, and
//! costs no depth.

use super::ast::{
    Comparison, Composite, Expr, FieldRef, Literal, Modifier, Op, Operand, Pos, Transformer,
    Written,
};
pub use super::lexer::SyntaxError;
use super::lexer::{Cursor, Step};
use super::limits::{with_stack, LineIndex};

/// The depth Falco's rules loader allows its condition parser.
pub const MAX_DEPTH: u32 = 1000;

/// The operators, in the order Falco lists them when none is found.
const OPERATORS: &str = "'exists', '<=', '<', '>=', '>', '==', '=', '!=', 'glob', 'iglob', \
     'contains', 'icontains', 'bcontains', 'startswith', 'bstartswith', 'endswith', 'regex', \
     'intersects', 'in', 'pmatch'";

/// The transformers (and `val`), in the order Falco lists them.
const TRANSFORMERS: &str =
    "'val', 'tolower', 'toupper', 'b64', 'basename', 'len', 'join', 'concat', 'getopt'";

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

/// Reads `text` as Falco's condition parser does, into a tree, failing
/// at `max_depth` levels (the loader's is [`MAX_DEPTH`]).
pub fn parse_with_max_depth(text: &str, max_depth: u32) -> Step<Expr> {
    let index = LineIndex::new(text);
    let mut r = Reader {
        c: Cursor::new(text),
        index: &index,
        depth: 0,
        max_depth,
        bare_name: false,
    };
    r.parse()
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

struct Reader<'a> {
    c: Cursor<'a>,
    /// For the positions of the nodes (columns in characters).
    index: &'a LineIndex,
    depth: u32,
    /// The depth that fails the parse.
    max_depth: u32,
    /// Whether the last list operand read was a bare name (`in shells`),
    /// which libsinsp keeps as a value rather than a list.
    bare_name: bool,
}

/// The right-hand side of a comparison, and where it starts.
type Rhs = (Operand, Pos);

impl Reader<'_> {
    fn here(&self) -> Pos {
        let (line, column) = self.index.line_col(self.c.pos);
        Pos { line, column }
    }

    fn fail<T>(&self, message: impl Into<String>) -> Step<T> {
        self.c.fail(message)
    }

    /// One level of recursion, counted as libsinsp counts it: the level
    /// that goes over the limit is never given back (libsinsp's guard
    /// throws from its constructor, so its destructor never runs).
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> Step<T>) -> Step<T> {
        self.depth += 1;
        if self.depth >= self.max_depth {
            let max = self.max_depth;
            return self.fail(format!("exceeded max depth limit of {max}"));
        }
        let result = with_stack(|| f(self));
        self.depth -= 1;
        result
    }

    fn parse(&mut self) -> Step<Expr> {
        if self.c.text.is_empty() {
            return self.fail("filter input string is empty");
        }
        let expr = self.parse_or()?;
        if self.depth > 0 {
            return self.fail("parser fatal error: recursion is unbalanced");
        }
        if !self.c.at_end() {
            return self.fail(format!(
                "unexpected token after '{}', expecting 'or', 'and'",
                self.c.token
            ));
        }
        Ok(expr)
    }

    // ---- expressions ----

    fn parse_or(&mut self) -> Step<Expr> {
        self.parse_chain("or", Self::parse_and, Expr::Or)
    }

    fn parse_and(&mut self) -> Step<Expr> {
        self.parse_chain("and", Self::parse_not, Expr::And)
    }

    /// `operand (word operand)*`, where the word is followed by a blank or
    /// an opening parenthesis, as libsinsp reads `or` and `and`.
    fn parse_chain(
        &mut self,
        word: &'static str,
        operand: fn(&mut Self) -> Step<Expr>,
        node: fn(Vec<Expr>) -> Expr,
    ) -> Step<Expr> {
        self.guarded(|r| {
            r.c.blank();
            let mut items = vec![operand(r)?];
            r.c.blank();
            while r.c.word(word) {
                if r.c.blank() {
                    items.push(operand(r)?);
                } else if r.c.word("(") {
                    items.push(r.embedded()?);
                } else {
                    return r.fail(format!("expected blank or '(' after '{word}'"));
                }
                r.c.blank();
            }
            Ok(match items.len() {
                1 => items.remove(0),
                _ => node(items),
            })
        })
    }

    fn parse_not(&mut self) -> Step<Expr> {
        self.guarded(|r| {
            r.c.blank();
            let mut negated = false;
            while r.c.not_blank() {
                negated = !negated;
            }
            let expr = if r.c.word("not(") {
                negated = !negated;
                r.embedded()?
            } else {
                r.parse_check()?
            };
            Ok(match negated {
                true => Expr::Not(Box::new(expr)),
                false => expr,
            })
        })
    }

    /// What follows an opening parenthesis of a sub-expression.
    fn embedded(&mut self) -> Step<Expr> {
        self.guarded(|r| {
            r.c.blank();
            let expr = r.parse_or()?;
            r.c.blank();
            if !r.c.word(")") {
                return r.fail("expected a ')' token");
            }
            Ok(expr)
        })
    }

    fn parse_check(&mut self) -> Step<Expr> {
        self.guarded(|r| {
            r.c.blank();
            let pos = r.here();
            if r.c.word("(") {
                return r.embedded();
            }
            if r.c.field_name() {
                let field = r.field_rest(pos)?;
                return r.comparison(field, pos);
            }
            if r.c.transformer_call() {
                r.c.blank();
                let field = r.transformer_rest(pos)?;
                return r.comparison(field, pos);
            }
            if r.c.identifier() {
                return Ok(Expr::Macro {
                    name: r.c.token.clone(),
                    pos,
                });
            }
            r.fail("expected a '(' token, a field check, or an identifier")
        })
    }

    /// A field just read, with its optional `[argument]`.
    fn field_rest(&mut self, pos: Pos) -> Step<FieldRef> {
        let name = self.c.token.clone();
        self.guarded(|r| Ok(FieldRef::field(name, r.field_arg()?, pos)))
    }

    /// `[argument]`: a quoted string (its escapes resolved) or a bare one.
    fn field_arg(&mut self) -> Step<Option<String>> {
        if !self.c.word("[") {
            return Ok(None);
        }
        if !self.c.quoted()? && !self.c.field_arg_bare() {
            return self.fail("expected a valid field argument: a quoted string or a bare string");
        }
        let arg = self.c.token.clone();
        if !self.c.word("]") {
            return self.fail("expected a ']' token");
        }
        Ok(Some(arg))
    }

    /// A transformer's arguments, after its opening parenthesis, and its
    /// optional selector.
    fn transformer_rest(&mut self, pos: Pos) -> Step<FieldRef> {
        let name = self.c.token.clone();
        self.guarded(|r| {
            r.c.blank();
            let mut args = Vec::new();
            loop {
                args.push(r.transformer_arg()?);
                r.c.blank();
                if !r.c.word(",") {
                    break;
                }
            }
            r.c.blank();
            if !r.c.word(")") {
                return r.fail("expected a ')' token closing the transformer");
            }
            let selector = r.field_arg()?;
            Ok(transformed(name, args, selector, pos))
        })
    }

    fn transformer_arg(&mut self) -> Step<FieldRef> {
        self.guarded(|r| {
            r.c.blank();
            let pos = r.here();
            if r.c.number() || r.c.quoted()? {
                return Ok(literal_operand(r.c.token.clone(), pos));
            }
            if r.c.word("(") {
                return r.transformer_list(pos);
            }
            if r.c.transformer_call() {
                return r.transformer_rest(pos);
            }
            if r.c.field_name() {
                return r.field_rest(pos);
            }
            r.fail(
                "expected field transformer argument: \
                 field, transformer, quoted string, number, or transformer list",
            )
        })
    }

    fn transformer_list(&mut self, pos: Pos) -> Step<FieldRef> {
        let mut items = Vec::new();
        self.c.blank();
        if !self.c.word(")") {
            items.push(self.transformer_list_item()?);
            self.c.blank();
            while self.c.word(",") {
                self.c.blank();
                items.push(self.transformer_list_item()?);
                self.c.blank();
            }
            if !self.c.word(")") {
                return self.fail("expected ')'");
            }
        }
        Ok(FieldRef {
            name: "list".into(),
            arg: None,
            transformers: Vec::new(),
            pos,
            composite: Some(Box::new(Composite::List(items))),
        })
    }

    fn transformer_list_item(&mut self) -> Step<FieldRef> {
        let pos = self.here();
        if self.c.field_name() {
            return self.field_rest(pos);
        }
        if self.c.transformer_call() {
            self.c.blank();
            return self.transformer_rest(pos);
        }
        if self.c.quoted()? || self.c.number() {
            return Ok(literal_operand(self.c.token.clone(), pos));
        }
        self.fail(
            "expected transformer list argument: field, transformer, quoted string, or number",
        )
    }

    /// The operator and right-hand side after a field.
    fn comparison(&mut self, field: FieldRef, pos: Pos) -> Step<Expr> {
        self.guarded(|r| {
            r.c.blank();
            r.bare_name = false;
            let compare = |op: &str, modifier, (rhs, rhs_pos): Rhs, bare_name: bool| {
                let written = Written {
                    double_equals: op == "==",
                    bare_name,
                };
                let op = Op::from_token(op).ok_or_else(|| SyntaxError {
                    message: format!("internal parser error: operator '{op}'"),
                    offset: 0,
                })?;
                Ok(Expr::Compare(Comparison {
                    field,
                    op,
                    modifier,
                    rhs,
                    pos,
                    rhs_pos,
                    written,
                }))
            };
            if r.c.word("exists") {
                return compare("exists", None, (Operand::None, pos), false);
            }
            r.c.blank();
            if NUM_OPS.iter().any(|op| r.c.word(op)) {
                let op = r.c.token.clone();
                return compare(&op, None, r.num_value()?, false);
            }
            let word_op = STR_WORD_OPS.iter().any(|op| r.c.word_then_blank(op));
            if word_op || STR_SYMBOL_OPS.iter().any(|op| r.c.word(op)) {
                let op = r.c.token.trim_end().to_string();
                let had_blank = word_op || r.c.blank();
                let (at, token) = (r.c.pos, r.c.token.clone());
                if had_blank
                    && MODIFIERS.iter().any(|m| r.c.word_then_blank(m))
                    && r.c.list_follows()
                    && !r.c.boolean_follows()
                {
                    let modifier = Modifier::from_name(r.c.token.trim_end());
                    let rhs = r.list_value()?;
                    return compare(&op, modifier, rhs, r.bare_name);
                }
                r.c.pos = at;
                r.c.token = token;
                return compare(&op, None, r.str_value(false)?, false);
            }
            if LIST_OPS.iter().any(|op| r.c.word(op)) {
                let op = r.c.token.clone();
                let rhs = r.list_value_or_transformer()?;
                return compare(&op, None, rhs, r.bare_name);
            }
            r.fail(format!(
                "expected a valid check operator: one of {OPERATORS}"
            ))
        })
    }

    fn num_value(&mut self) -> Step<Rhs> {
        self.guarded(|r| {
            r.c.blank();
            let pos = r.here();
            if let Some(field) = r.transformer_or_val()? {
                return Ok((Operand::Field(field), pos));
            }
            if r.c.number() {
                return Ok((Operand::Value(Literal::bare(r.c.token.clone())), pos));
            }
            r.fail(format!(
                "expected a number value or a field with a valid transformer: {TRANSFORMERS}"
            ))
        })
    }

    fn str_value(&mut self, value_only: bool) -> Step<Rhs> {
        self.guarded(|r| {
            r.c.blank();
            let pos = r.here();
            if !value_only {
                if let Some(field) = r.transformer_or_val()? {
                    return Ok((Operand::Field(field), pos));
                }
            }
            if r.c.quoted()? {
                return Ok((Operand::Value(Literal::quoted(r.c.token.clone())), pos));
            }
            if r.c.bare_string() {
                return Ok((Operand::Value(Literal::bare(r.c.token.clone())), pos));
            }
            if value_only {
                return r.fail("expected a string value");
            }
            r.fail(format!(
                "expected a string value or a field with a valid transformer: {TRANSFORMERS}"
            ))
        })
    }

    /// `(a, "b", ...)`. libsinsp gives up on the first item silently,
    /// whatever went wrong with it (a bad escape, too deep), and then
    /// expects the list to close: that list is empty. Errors in the other
    /// items are errors.
    fn try_list(&mut self) -> Step<Option<Rhs>> {
        let pos = self.here();
        if !self.c.word("(") {
            return Ok(None);
        }
        self.c.blank();
        let mut items = Vec::new();
        if let Ok((Operand::Value(first), _)) = self.str_value(true) {
            items.push(first);
            self.c.blank();
            while self.c.word(",") {
                if let (Operand::Value(item), _) = self.str_value(true)? {
                    items.push(item);
                }
                self.c.blank();
            }
        }
        if !self.c.word(")") {
            return self.fail("expected a ')' token");
        }
        Ok(Some((Operand::List(items), pos)))
    }

    /// A list's name: one item, replaced by the list's items if a list of
    /// that name is defined (a value of its own otherwise, as in libsinsp).
    fn list_name(&mut self) -> Option<Rhs> {
        let pos = self.here();
        if !self.c.identifier() {
            return None;
        }
        self.bare_name = true;
        Some((
            Operand::List(vec![Literal::bare(self.c.token.clone())]),
            pos,
        ))
    }

    /// After an operator with a modifier: a list or a list's name.
    fn list_value(&mut self) -> Step<Rhs> {
        self.guarded(|r| {
            r.c.blank();
            if let Some(list) = r.try_list()? {
                return Ok(list);
            }
            match r.list_name() {
                Some(name) => Ok(name),
                None => r.fail("expected a list or an identifier"),
            }
        })
    }

    fn list_value_or_transformer(&mut self) -> Step<Rhs> {
        self.guarded(|r| {
            r.c.blank();
            let pos = r.here();
            if let Some(list) = r.try_list()? {
                return Ok(list);
            }
            if let Some(field) = r.transformer_or_val()? {
                return Ok((Operand::Field(field), pos));
            }
            match r.list_name() {
                Some(name) => Ok(name),
                None => r.fail(format!(
                    "expected a list, an identifier, or a field with a valid transformer: {TRANSFORMERS}"
                )),
            }
        })
    }

    /// `val(field)` or a transformer call, if one starts here.
    fn transformer_or_val(&mut self) -> Step<Option<FieldRef>> {
        self.guarded(|r| {
            r.c.blank();
            let pos = r.here();
            if r.c.word("val(") {
                r.c.blank();
                let field_pos = r.here();
                if !r.c.field_name() {
                    return r.fail("expected a field within 'val' transformer");
                }
                let field = r.field_rest(field_pos)?;
                r.c.blank();
                if !r.c.word(")") {
                    return r.fail("expected a ')' token closing the transformer");
                }
                if r.field_arg()?.is_some() {
                    // libsinsp's compiler refuses it, with these words.
                    return r
                        .fail("filter error: transformer 'val' does not support field arguments");
                }
                return Ok(Some(field));
            }
            if r.c.transformer_call() {
                r.c.blank();
                return r.transformer_rest(pos).map(Some);
            }
            Ok(None)
        })
    }
}

/// A quoted string or a number given to a transformer: a constant.
fn literal_operand(text: String, pos: Pos) -> FieldRef {
    FieldRef {
        name: "literal".into(),
        arg: None,
        transformers: Vec::new(),
        pos,
        composite: Some(Box::new(Composite::Literal(text))),
    }
}

/// A transformer applied to its arguments. One argument and a
/// single-value transformer, the common `tolower(proc.name)`, is kept as
/// a chain on its argument.
fn transformed(
    name: String,
    mut args: Vec<FieldRef>,
    selector: Option<String>,
    pos: Pos,
) -> FieldRef {
    if let (Some(t), 1, None) = (Transformer::from_name(&name), args.len(), &selector) {
        if let Some(mut field) = args.pop() {
            field.transformers.push(t);
            return field;
        }
    }
    FieldRef {
        name: name.clone(),
        arg: selector,
        transformers: Vec::new(),
        pos,
        composite: Some(Box::new(Composite::Call { name, args })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (String, usize) {
        let e = parse_with_max_depth(text, MAX_DEPTH).expect_err(text);
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
            assert!(parse_with_max_depth(ok, MAX_DEPTH).is_ok(), "{ok}");
        }
    }

    #[test]
    fn depth_over_libsinsps_default() {
        // Falco's -L parses each condition as written at libsinsp's default
        // depth, 100: Falco master describes 18 parentheses here, not 19.
        let nested = |n: usize| {
            format!(
                "evt.type = open and {}proc.name = x{}",
                "(".repeat(n),
                ")".repeat(n)
            )
        };
        assert!(parse_with_max_depth(&nested(18), 100).is_ok());
        let e = parse_with_max_depth(&nested(19), 100).expect_err("too deep");
        assert_eq!(e.message, "exceeded max depth limit of 100");
        assert!(parse_with_max_depth(&nested(19), MAX_DEPTH).is_ok());
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
