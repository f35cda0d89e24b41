//! Turns condition text into an [`Expr`] with pest.

use pest::iterators::Pair;
use pest::Parser;

use super::ast::{Comparison, Expr, FieldRef, Literal, Op, Operand, Pos, Transformer};

#[derive(pest_derive::Parser)]
#[grammar = "condition/grammar.pest"]
struct ConditionGrammar;

/// A condition that does not parse, with where in its text it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line}, column {column})")]
pub struct ParseError {
    /// Falco-style description, e.g. `unexpected token after 'execve', expecting 'or', 'and'`.
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// Parses one condition.
pub fn parse_condition(text: &str) -> Result<Expr, ParseError> {
    if text.trim().is_empty() {
        return Err(ParseError {
            message: "empty condition".into(),
            line: 1,
            column: 1,
        });
    }
    let mut pairs =
        ConditionGrammar::parse(Rule::condition, text).map_err(|e| to_parse_error(text, e))?;
    let condition = pairs.next().ok_or_else(|| internal("no condition"))?;
    let expr = condition
        .into_inner()
        .find(|p| p.as_rule() == Rule::expr)
        .ok_or_else(|| internal("no expression"))?;
    build_expr(expr)
}

fn internal(what: &str) -> ParseError {
    ParseError {
        message: format!("internal parser error: {what}"),
        line: 1,
        column: 1,
    }
}

fn to_parse_error(text: &str, err: pest::error::Error<Rule>) -> ParseError {
    let (line, column) = match err.line_col {
        pest::error::LineColLocation::Pos(p) => p,
        pest::error::LineColLocation::Span(p, _) => p,
    };
    let offset = match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((p, _)) => p,
    };
    let expects_boolean_op = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            positives.contains(&Rule::and_kw)
                || positives.contains(&Rule::or_kw)
                || positives.contains(&Rule::EOI)
        }
        _ => false,
    };
    let before = text.get(..offset).unwrap_or("").trim_end();
    let message = if expects_boolean_op && !before.is_empty() && offset < text.trim_end().len() {
        // The same wording as Falco: name the last token that did parse.
        let last_word = before.rsplit(char::is_whitespace).next().unwrap_or(before);
        let token = last_word
            .rsplit(['=', '<', '>', '!', '(', ')', ','])
            .find(|s| !s.is_empty())
            .unwrap_or(last_word);
        format!("unexpected token after '{token}', expecting 'or', 'and'")
    } else if offset >= text.trim_end().len() {
        "unexpected end of condition".to_string()
    } else {
        let rest: String = text[offset..].chars().take(20).collect();
        format!("unexpected token at '{rest}'")
    };
    ParseError {
        message,
        line,
        column,
    }
}

fn pos_of(pair: &Pair<'_, Rule>) -> Pos {
    let (line, column) = pair.as_span().start_pos().line_col();
    Pos { line, column }
}

fn build_expr(pair: Pair<'_, Rule>) -> Result<Expr, ParseError> {
    match pair.as_rule() {
        Rule::expr => {
            let mut items: Vec<Expr> = Vec::new();
            for p in pair.into_inner().filter(|p| p.as_rule() == Rule::and_expr) {
                items.push(build_expr(p)?);
            }
            Ok(if items.len() == 1 {
                items.remove(0)
            } else {
                Expr::Or(items)
            })
        }
        Rule::and_expr => {
            let mut items: Vec<Expr> = Vec::new();
            for p in pair.into_inner().filter(|p| p.as_rule() == Rule::not_expr) {
                items.push(build_expr(p)?);
            }
            Ok(if items.len() == 1 {
                items.remove(0)
            } else {
                Expr::And(items)
            })
        }
        Rule::not_expr => {
            let mut inner = pair.into_inner();
            let first = inner.next().ok_or_else(|| internal("empty term"))?;
            match first.as_rule() {
                Rule::not_kw => {
                    let operand = inner
                        .next()
                        .ok_or_else(|| internal("not without operand"))?;
                    Ok(Expr::Not(Box::new(build_expr(operand)?)))
                }
                _ => build_expr(first),
            }
        }
        Rule::paren => {
            let inner = pair
                .into_inner()
                .next()
                .ok_or_else(|| internal("empty parentheses"))?;
            build_expr(inner)
        }
        Rule::macro_ref => Ok(Expr::Macro {
            name: pair.as_str().to_string(),
            pos: pos_of(&pair),
        }),
        Rule::comparison => build_comparison(pair),
        other => Err(internal(&format!("unexpected rule {other:?}"))),
    }
}

fn build_comparison(pair: Pair<'_, Rule>) -> Result<Expr, ParseError> {
    let pos = pos_of(&pair);
    let mut inner = pair.into_inner();
    let field = build_operand(
        inner
            .next()
            .ok_or_else(|| internal("comparison without field"))?,
    )?;
    let op_pair = inner
        .next()
        .ok_or_else(|| internal("comparison without operator"))?;
    let op = Op::from_token(op_pair.as_str()).ok_or_else(|| internal("unknown operator"))?;
    let rhs = match inner.next() {
        None => Operand::None,
        Some(p) => match p.as_rule() {
            Rule::list => Operand::List(
                p.into_inner()
                    .map(build_literal)
                    .collect::<Result<_, _>>()?,
            ),
            Rule::val_ref => {
                let f = p
                    .into_inner()
                    .next()
                    .ok_or_else(|| internal("empty val()"))?;
                Operand::Field(build_operand(f)?)
            }
            _ => Operand::Value(build_literal(p)?),
        },
    };
    Ok(Expr::Compare(Comparison {
        field,
        op,
        rhs,
        pos,
    }))
}

fn build_operand(pair: Pair<'_, Rule>) -> Result<FieldRef, ParseError> {
    match pair.as_rule() {
        Rule::field => {
            let pos = pos_of(&pair);
            let mut inner = pair.into_inner();
            let name = inner
                .next()
                .ok_or_else(|| internal("field without name"))?
                .as_str()
                .to_string();
            let arg = inner.next().map(|a| a.as_str().to_string());
            Ok(FieldRef {
                name,
                arg,
                transformers: Vec::new(),
                pos,
            })
        }
        Rule::transformed => {
            let mut inner = pair.into_inner();
            let t = inner
                .next()
                .ok_or_else(|| internal("transformer without name"))?;
            let transformer = Transformer::from_name(t.as_str())
                .ok_or_else(|| internal("unknown transformer"))?;
            let mut field = build_operand(
                inner
                    .next()
                    .ok_or_else(|| internal("transformer without field"))?,
            )?;
            field.transformers.push(transformer);
            Ok(field)
        }
        other => Err(internal(&format!("unexpected operand {other:?}"))),
    }
}

fn build_literal(pair: Pair<'_, Rule>) -> Result<Literal, ParseError> {
    match pair.as_rule() {
        Rule::bare => Ok(Literal::bare(pair.as_str())),
        Rule::quoted => {
            let inner = pair.into_inner().next().map(|p| p.as_str()).unwrap_or("");
            Ok(Literal::quoted(unescape(inner)))
        }
        other => Err(internal(&format!("unexpected literal {other:?}"))),
    }
}

/// Resolves backslash escapes. Unknown escapes keep their backslash so
/// regular expressions such as `"\."` reach the regex engine intact.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\'') => out.push('\''),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Parses a field reference written alone, as in an exception's `fields`
/// or an output's `%field[arg]`: `name` or `name[arg]`.
pub fn parse_field_ref(text: &str) -> Option<FieldRef> {
    let text = text.trim();
    let (name, arg) = match text.find('[') {
        Some(open) if text.ends_with(']') => (
            &text[..open],
            Some(text[open + 1..text.len() - 1].to_string()),
        ),
        Some(_) => return None,
        None => (text, None),
    };
    let valid = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    valid.then(|| FieldRef {
        name: name.to_string(),
        arg,
        transformers: Vec::new(),
        pos: Pos::default(),
    })
}
