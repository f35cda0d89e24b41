//! A rule's condition specialised for one event type.
//!
//! Rules are indexed by event type, so when a rule is checked the event's
//! type is already known; yet its condition still asks it, often more than
//! once: Falco's `open_read` macro starts with `evt.type in (open, openat,
//! openat2)`, and a dozen rules of an open go through it. For each type in
//! the index the `evt.type` tests are answered in advance and the branches
//! they decide are cut, so an open's rules run only the checks that depend
//! on the event itself, and a rule none of whose branches can hold for a
//! type is not checked for that type at all.

use std::sync::Arc;

use crate::fast_hash::FastMap;

use super::compile::Node;

/// Specialises conditions for one event type key. One per key: a macro's
/// specialised body is made once and shared by every rule naming it, so
/// its result is still remembered per event (the slot stays the macro's).
pub(super) struct ForType {
    key: u16,
    macros: FastMap<u32, Node>,
}

impl ForType {
    pub(super) fn new(key: u16) -> ForType {
        ForType {
            key,
            macros: FastMap::default(),
        }
    }

    /// `node` as it evaluates for events whose type key is this one.
    pub(super) fn condition(&mut self, node: &Node) -> Node {
        crate::condition::with_stack(|| self.level(node))
    }

    fn level(&mut self, node: &Node) -> Node {
        match node {
            Node::And(items) => self.junction(items, true),
            Node::Or(items) => self.junction(items, false),
            Node::Not(inner) => match self.condition(inner) {
                Node::Const(held) => Node::Const(!held),
                other => Node::Not(Box::new(other)),
            },
            Node::Shared { node, slot } => {
                if let Some(done) = self.macros.get(slot) {
                    return done.clone();
                }
                let done = match self.condition(node) {
                    Node::Const(held) => Node::Const(held),
                    body => Node::Shared {
                        node: Arc::new(body),
                        slot: *slot,
                    },
                };
                self.macros.insert(*slot, done.clone());
                done
            }
            Node::ExactlyOne(items) => {
                let items: Vec<Node> = items.iter().map(|n| self.condition(n)).collect();
                Node::ExactlyOne(items)
            }
            Node::TypeIn { keys, negate, .. } => {
                Node::Const(keys.binary_search(&self.key).is_ok() != *negate)
            }
            Node::Check(check) => Node::Check(Arc::clone(check)),
            Node::Const(held) => Node::Const(*held),
        }
    }

    /// An `and` (`all`) or an `or`: items that cannot change the result
    /// are left out, and one that decides it decides the whole.
    fn junction(&mut self, items: &[Node], all: bool) -> Node {
        let mut kept = Vec::with_capacity(items.len());
        for item in items {
            match self.condition(item) {
                Node::Const(held) if held == all => {}
                Node::Const(held) => return Node::Const(held),
                other => kept.push(other),
            }
        }
        match kept.len() {
            0 => Node::Const(all),
            1 => kept.pop().unwrap_or(Node::Const(all)),
            _ if all => Node::And(kept),
            _ => Node::Or(kept),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use crate::field::{FieldError, FieldInfo, FieldSource, FieldType, ResolvedField, Value};
    use crate::rules::eval::{eval, Scratch};
    use crate::rules::{Matching, RulesLoader};

    use super::*;

    /// Events of three named types (keys 1 to 3) and a fourth no rule
    /// names, each with a number `n.v`.
    struct Typed;

    const TYPES: [&str; 3] = ["alpha", "beta", "gamma"];

    impl FieldSource for Typed {
        type Event<'e> = (u16, u64);

        fn name(&self) -> &'static str {
            "syscall"
        }

        fn resolve(&mut self, name: &str, _arg: Option<&str>) -> Result<ResolvedField, FieldError> {
            let (id, ty) = match name {
                "evt.type" => (1, FieldType::String),
                "n.v" => (2, FieldType::Uint),
                _ => return Err(FieldError::Unknown(name.into())),
            };
            Ok(ResolvedField {
                id,
                arg: None,
                ty,
                is_list: false,
            })
        }

        fn extract<'e>(&self, field: &ResolvedField, event: &(u16, u64), out: &mut Vec<Value<'e>>) {
            out.push(match field.id {
                1 => Value::Str(Cow::Borrowed(
                    TYPES
                        .get(usize::from(event.0) - 1)
                        .copied()
                        .unwrap_or("delta"),
                )),
                _ => Value::Uint(event.1),
            });
        }

        fn event_types_named(&self, name: &str) -> Option<Vec<u16>> {
            let i = TYPES.iter().position(|t| *t == name)?;
            Some(vec![i as u16 + 1])
        }

        fn event_type(&self, event: &(u16, u64)) -> Option<u16> {
            Some(event.0)
        }

        fn fields(&self) -> &[FieldInfo] {
            &[]
        }
    }

    const RULES: &str = "
- macro: alpha_or_beta
  condition: evt.type in (alpha, beta) and n.v > 1
- macro: not_beta
  condition: not evt.type = beta
- rule: through_macros
  desc: d
  condition: alpha_or_beta and not_beta
  output: o
  priority: INFO
- rule: either_branch
  desc: d
  condition: (evt.type = alpha and n.v = 2) or (evt.type = gamma and n.v < 3) or evt.type = beta
  output: o
  priority: INFO
- rule: never_beta
  desc: d
  condition: evt.type in (alpha, beta) and not_beta and not (evt.type = alpha and n.v in (0, 1, 2))
  output: o
  priority: INFO
- rule: any_type
  desc: d
  condition: n.v = 3 or evt.type != gamma
  output: o
  priority: INFO
- rule: exactly_one
  desc: d
  condition: evt.type in (alpha, gamma) and n.v = oneof (2, 3) and evt.type != alpha
  output: o
  priority: INFO
";

    fn compiled() -> crate::rules::CompiledRules<Typed> {
        let mut loader = RulesLoader::new();
        loader.load_str("typed.yaml", RULES);
        let mut rules = loader.compile(Typed);
        assert!(!loader.has_errors(), "{:?}", loader.results());
        rules.matching = Matching::All;
        rules
    }

    /// Every event of the toy source (types 1 to 4, `n.v` 0 to 5), with
    /// the rules that matched through the index and the specialisation and
    /// the rules whose written condition holds, both in load order.
    fn matched_and_written(rules: &mut crate::rules::CompiledRules<Typed>) -> Vec<Outcome> {
        let written: Vec<Node> = rules.rules().iter().map(|r| r.node.clone()).collect();
        let order: std::collections::HashMap<String, usize> = rules
            .rules()
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        let mut out = Vec::new();
        for key in 1..=4u16 {
            for v in 0..6u64 {
                let event = (key, v);
                let mut scratch = Scratch::default();
                let expected: Vec<bool> = written
                    .iter()
                    .map(|node| eval(node, &Typed, &event, &mut scratch))
                    .collect();
                let mut held = vec![false; written.len()];
                rules.evaluate(&event, |rule, _| held[order[&rule.name]] = true);
                out.push(Outcome {
                    event,
                    held,
                    expected,
                });
            }
        }
        out
    }

    /// One event's rules, through the index and as written.
    struct Outcome {
        event: (u16, u64),
        held: Vec<bool>,
        expected: Vec<bool>,
    }

    #[test]
    fn specialised_conditions_hold_where_the_written_ones_do() {
        let mut rules = compiled();
        assert_eq!(rules.rules().len(), 5);
        for Outcome {
            event,
            held,
            expected,
        } in matched_and_written(&mut rules)
        {
            assert_eq!(held, expected, "type and n.v {event:?}");
        }
    }

    #[test]
    fn a_rule_that_cannot_hold_for_a_type_is_not_checked_for_it() {
        let rules = compiled();
        let checked = |key: u16| -> Vec<&str> {
            rules.by_type[&key]
                .iter()
                .map(|c| rules.rules()[c.rule].name.as_str())
                .collect()
        };
        // beta: `not_beta` is false, so through_macros and never_beta go;
        // exactly_one was never indexed for beta.
        assert_eq!(checked(2), ["either_branch", "any_type"]);
        // alpha: exactly_one's `evt.type != alpha` leaves it out. never_beta
        // is checked: its `not (evt.type = alpha and ...)` holds for some
        // alphas (libsinsp pushes the `not` down to the comparisons).
        assert_eq!(
            checked(1),
            ["through_macros", "either_branch", "never_beta", "any_type"]
        );
        // On alpha, never_beta is left with its `n.v in (...)` test alone,
        // the type tests answered.
        let never_beta = rules.by_type[&1]
            .iter()
            .find(|c| rules.rules()[c.rule].name == "never_beta")
            .map(|c| &c.node);
        assert!(
            matches!(never_beta, Some(Node::Not(inner)) if matches!(**inner, Node::Check(_))),
            "{never_beta:?}"
        );
        // On gamma, either_branch is its second branch's check, any_type's
        // `evt.type != gamma` is false and the rule is its `n.v = 3` test,
        // and exactly_one is its `oneof`.
        let on_gamma: Vec<&Node> = rules.by_type[&3].iter().map(|c| &c.node).collect();
        assert!(
            matches!(
                on_gamma[..],
                [Node::Check(_), Node::Check(_), Node::ExactlyOne(_)]
            ),
            "{on_gamma:?}"
        );
    }

    #[test]
    fn a_macro_specialised_once_is_shared_by_its_rules() {
        let mut yaml = String::from(
            "- macro: m\n  condition: evt.type in (alpha, beta) and n.v > 1 and n.v < 5\n",
        );
        for i in 0..3 {
            yaml += &format!(
                "- rule: r{i}\n  desc: d\n  condition: m and n.v != {i}\n  output: o\n  priority: INFO\n"
            );
        }
        let mut loader = RulesLoader::new();
        loader.load_str("shared.yaml", &yaml);
        let rules = loader.compile(Typed);
        let bodies: Vec<&Arc<Node>> = rules.by_type[&1]
            .iter()
            .map(|c| match &c.node {
                Node::And(items) => match &items[0] {
                    Node::Shared { node, .. } => node,
                    other => panic!("not shared: {other:?}"),
                },
                other => panic!("not an and: {other:?}"),
            })
            .collect();
        assert_eq!(bodies.len(), 3);
        assert!(bodies.iter().all(|b| Arc::ptr_eq(b, bodies[0])));
        assert!(matches!(&**bodies[0], Node::And(items) if items.len() == 2));
    }

    /// Conditions made up by a fixed pseudo-random walk over the grammar
    /// (type tests of every form, `n.v` tests, and/or/not, macros naming
    /// macros) must hold through the index and the specialisation exactly
    /// where they hold as written, on every event: a rule indexed under too
    /// few types, or a branch cut wrongly, would show as a lost match.
    #[test]
    fn generated_conditions_hold_through_the_index_as_written() {
        let mut gen = Walk(0x9e37_79b9_7f4a_7c15);
        let mut yaml = String::new();
        for m in 0..6 {
            let body = gen.expr(2, m);
            yaml += &format!("- macro: m{m}\n  condition: {body}\n");
        }
        let count = 400;
        let bodies: Vec<String> = (0..count).map(|_| gen.expr(3, 6)).collect();
        for (r, body) in bodies.iter().enumerate() {
            yaml += &format!(
                "- rule: r{r}\n  desc: d\n  condition: {body}\n  output: o\n  priority: INFO\n"
            );
        }
        let mut loader = RulesLoader::new();
        loader.load_str("generated.yaml", &yaml);
        let mut rules = loader.compile(Typed);
        assert!(!loader.has_errors(), "{:?}", loader.results());
        assert_eq!(rules.rules().len(), count);
        rules.matching = Matching::All;
        let mut held_somewhere = 0;
        for Outcome {
            event,
            held,
            expected,
        } in matched_and_written(&mut rules)
        {
            for (i, (got, want)) in held.iter().zip(&expected).enumerate() {
                assert_eq!(got, want, "r{i} on type and n.v {event:?}: {}", bodies[i]);
            }
            held_somewhere += expected.iter().filter(|h| **h).count();
        }
        // The walk makes conditions that hold and ones that do not.
        assert!(held_somewhere > 0 && held_somewhere < count * 24);
    }

    /// A small deterministic generator of condition text (xorshift64).
    struct Walk(u64);

    impl Walk {
        fn next(&mut self, below: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % below
        }

        fn type_name(&mut self) -> &'static str {
            TYPES[self.next(3) as usize]
        }

        /// A condition of at most `depth` levels, naming macros below
        /// `macros`.
        fn expr(&mut self, depth: u32, macros: u64) -> String {
            let pick = if depth == 0 {
                6 + self.next(2)
            } else {
                self.next(8)
            };
            match pick {
                0 | 1 => {
                    let joint = if pick == 0 { "and" } else { "or" };
                    let n = 2 + self.next(2);
                    let parts: Vec<String> = (0..n).map(|_| self.expr(depth - 1, macros)).collect();
                    format!("({})", parts.join(&format!(" {joint} ")))
                }
                2 => format!("not {}", self.expr(depth - 1, macros)),
                3 if macros > 0 => format!("m{}", self.next(macros)),
                3 | 4 | 6 => match self.next(4) {
                    0 => format!("evt.type = {}", self.type_name()),
                    1 => format!("evt.type != {}", self.type_name()),
                    2 => format!("evt.type in ({}, {})", self.type_name(), self.type_name()),
                    _ => format!("not evt.type in ({})", self.type_name()),
                },
                _ => match self.next(4) {
                    0 => format!("n.v = {}", self.next(6)),
                    1 => format!("n.v > {}", self.next(6)),
                    2 => format!("n.v in ({}, {})", self.next(6), self.next(6)),
                    _ => format!("n.v != {}", self.next(6)),
                },
            }
        }
    }
}
