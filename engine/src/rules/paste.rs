//! Lists pasted into a condition's text before it is parsed, as Falco's
//! rule compiler does for every macro and rule condition: what parses, and
//! where a syntax error points, follow from the text with the items in
//! place of the names. So `proc.pid > l` is `proc.pid > 5` with `l: [5]`,
//! and a column after a list counts the list's items.
//!
//! Falco's rules, from its compiler's list substitution:
//! - lists are pasted one after the other in definition order, each into
//!   the text as the lists before it left it (so an item naming a list
//!   defined later is pasted again in that list's turn);
//! - a name is replaced where it stands between delimiters (blank, `(`,
//!   `)`, `,`, `=`) or an end of the text, quotes or not;
//! - the blanks around it go, and the items take its place joined by
//!   `", "`, with one blank after them and one before unless they start
//!   the text; an item holding a space is wrapped in double quotes unless
//!   it starts with a quote;
//! - an empty list takes the comma before its place, else the one after;
//! - the search goes on after what was pasted (one character further
//!   when the list name began the text).

use std::collections::HashSet;

/// How long a condition may grow once its lists are pasted. Falco has no
/// limit; without one, a small file naming a long list many times (or
/// lists whose pasted items name other lists) would take gigabytes. The
/// largest of Falco's own rules stays below some tens of kilobytes.
pub const MAX_PASTED_BYTES: usize = 8 << 20;

/// How much all the conditions read in one pass (a load's macros and
/// rules, or a compile's rules) may grow in all by pasting: each macro's
/// pasted text is kept parsed, so many macros naming one long list would
/// otherwise add up to gigabytes below the limit of each.
pub const MAX_TOTAL_PASTED_BYTES: usize = 64 << 20;

/// What is left of [`MAX_TOTAL_PASTED_BYTES`] in one pass, and the lists
/// the pass has pasted somewhere (the lists Falco's compiler marks used).
#[derive(Debug)]
pub struct PasteBudget {
    left: usize,
    pasted: HashSet<String>,
}

impl Default for PasteBudget {
    fn default() -> Self {
        PasteBudget {
            left: MAX_TOTAL_PASTED_BYTES,
            pasted: HashSet::new(),
        }
    }
}

impl PasteBudget {
    /// Whether the list `name` has been pasted into a text of this pass.
    pub fn has_pasted(&self, name: &str) -> bool {
        self.pasted.contains(name)
    }
}

/// Why a condition's lists could not be pasted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasteError {
    /// The list named is one that expands past the list limits.
    #[error("list '{name}' expands to more than {max_items} items (or all lists together to more than {max_total})")]
    OversizedList {
        name: String,
        max_items: usize,
        max_total: usize,
    },
    #[error(
        "condition grows past {MAX_PASTED_BYTES} bytes once its lists are pasted \
         (while pasting list '{name}')"
    )]
    TooLarge { name: String },
    #[error(
        "conditions grow past {MAX_TOTAL_PASTED_BYTES} bytes in all once their lists are \
         pasted (while pasting list '{name}')"
    )]
    TotalTooLarge { name: String },
}

/// One list as pasted: its name, and its items as the text that takes
/// the name's place, or `None` for a list past the list limits (an error
/// where named).
#[derive(Debug, Clone)]
pub struct Pasteable {
    pub name: String,
    pub text: Option<String>,
}

impl Pasteable {
    /// The text Falco pastes for `items`.
    pub fn new(name: &str, items: Option<&[String]>) -> Pasteable {
        let text = items.map(|items| {
            let mut text = String::new();
            for item in items {
                if !text.is_empty() {
                    text.push_str(", ");
                }
                // Falco quotes on a space only (not a tab), and leaves an
                // item that starts with a quote as written.
                if item.contains(' ') && !item.starts_with(['"', '\'']) {
                    text.push('"');
                    text.push_str(item);
                    text.push('"');
                } else {
                    text.push_str(item);
                }
            }
            text
        });
        Pasteable {
            name: name.to_string(),
            text,
        }
    }
}

const BLANKS: &[u8] = b" \t\n\r";
const DELIMS: &[u8] = b" \t\n\r(),=";

fn is_blank(b: u8) -> bool {
    BLANKS.contains(&b)
}

fn is_delim(b: u8) -> bool {
    DELIMS.contains(&b)
}

/// The words of `text` between delimiters: a name without delimiters in
/// it can only be pasted where it is one of them.
fn add_words(words: &mut HashSet<String>, text: &str) {
    words.extend(
        text.split(|c: char| c.is_ascii() && is_delim(c as u8))
            .filter(|w| !w.is_empty())
            .map(str::to_string),
    );
}

/// `text` with `lists` pasted in, in their order, its growth taken from
/// `budget`. Borrowed back when no list is named.
pub fn paste_lists<'t>(
    text: &'t str,
    lists: &[Pasteable],
    budget: &mut PasteBudget,
    oversized: impl Fn(&str) -> PasteError,
) -> Result<std::borrow::Cow<'t, str>, PasteError> {
    // The pass stops as soon as the text outgrows what is left, so a
    // spent budget makes each later condition cheap to refuse.
    let cap = MAX_PASTED_BYTES.min(text.len().saturating_add(budget.left));
    let too_large = |name: &str| {
        let name = name.to_string();
        if cap < MAX_PASTED_BYTES {
            PasteError::TotalTooLarge { name }
        } else {
            PasteError::TooLarge { name }
        }
    };
    let mut current = std::borrow::Cow::Borrowed(text);
    // Most lists are not named in a given condition: a look-up in the
    // words of the text spares a scan of it per list.
    let mut words = HashSet::new();
    add_words(&mut words, text);
    for list in lists {
        let plain = !list.name.bytes().any(is_delim);
        if list.name.is_empty() || (plain && !words.contains(&list.name)) {
            continue;
        }
        let Some(pasted) = paste_one(&current, list, cap, &oversized, &too_large)? else {
            continue;
        };
        if !budget.pasted.contains(&list.name) {
            budget.pasted.insert(list.name.clone());
        }
        if let Some(items) = &list.text {
            add_words(&mut words, items);
        }
        current = std::borrow::Cow::Owned(pasted);
    }
    budget.left -= current.len().saturating_sub(text.len()).min(budget.left);
    Ok(current)
}

/// One pass of Falco's substitution for one list over `text`, in one
/// sweep: `out` holds the text as the pass has rewritten it so far, so
/// the blanks and comma Falco removes before a name are trimmed from it.
fn paste_one(
    text: &str,
    list: &Pasteable,
    cap: usize,
    oversized: &impl Fn(&str) -> PasteError,
    too_large: &impl Fn(&str) -> PasteError,
) -> Result<Option<String>, PasteError> {
    let bytes = text.as_bytes();
    let name = list.name.as_str();
    let mut out = String::new();
    // `text[copied..]` is not in `out` yet; the search goes on from `from`.
    let mut copied = 0;
    let mut from = 0;
    let mut used = false;
    while let Some(at) = text.get(from..).and_then(|rest| rest.find(name)) {
        let start = from + at;
        let end = start + name.len();
        let before = if start > copied {
            Some(bytes[start - 1])
        } else {
            out.as_bytes().last().copied()
        };
        let after = bytes.get(end).copied();
        if !(before.map_or(true, is_delim) && after.map_or(true, is_delim)) {
            from = next_boundary(text, start + 1);
            continue;
        }
        let Some(items) = list.text.as_deref() else {
            return Err(oversized(name));
        };
        out.push_str(&text[copied..start]);
        while out.as_bytes().last().is_some_and(|&b| is_blank(b)) {
            out.pop();
        }
        let mut end = end;
        while bytes.get(end).is_some_and(|&b| is_blank(b)) {
            end += 1;
        }
        if items.is_empty() {
            if out.ends_with(',') {
                out.pop();
            } else if bytes.get(end) == Some(&b',') {
                end += 1;
            }
        }
        let at_start = out.is_empty();
        if !at_start {
            out.push(' ');
        }
        out.push_str(items);
        out.push(' ');
        copied = end;
        // Falco resumes one character past the blank after the items,
        // which skips the first character after them when they start
        // the text.
        from = if at_start {
            next_boundary(text, end + 1)
        } else {
            end
        };
        used = true;
        if out.len().saturating_add(text.len() - copied) > cap {
            return Err(too_large(name));
        }
    }
    if !used {
        return Ok(None);
    }
    out.push_str(&text[copied..]);
    Ok(Some(out))
}

/// The first character boundary of `text` at or after `at` (past the end
/// when `at` is).
fn next_boundary(text: &str, mut at: usize) -> usize {
    while at < text.len() && !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(name: &str, items: &[&str]) -> Pasteable {
        let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        Pasteable::new(name, Some(&items))
    }

    fn paste(text: &str, lists: &[Pasteable]) -> String {
        paste_lists(text, lists, &mut PasteBudget::default(), |name| {
            PasteError::TooLarge {
                name: name.to_string(),
            }
        })
        .expect("pasted")
        .into_owned()
    }

    #[test]
    fn blanks_around_the_name_become_one_each_side() {
        let l = [list("l", &["a", "b"])];
        assert_eq!(paste("x.y in (l)", &l), "x.y in ( a, b )");
        assert_eq!(paste("x.y in (  l\t)", &l), "x.y in ( a, b )");
        assert_eq!(paste("x.y = l", &l), "x.y = a, b ");
        assert_eq!(paste("x.y=l", &l), "x.y= a, b ");
        assert_eq!(paste("l", &l), "a, b ");
    }

    #[test]
    fn only_whole_words_between_delimiters() {
        let l = [list("sh", &["zsh"])];
        for same in ["bash", "x.sh", "a>sh", "\"sh\"", "sh.x", "shx"] {
            assert_eq!(paste(same, &l), same);
        }
        assert_eq!(paste("\"run sh now\"", &l), "\"run zsh now\"");
        assert_eq!(paste("(sh,sh)", &l), "( zsh , zsh )");
    }

    #[test]
    fn items_with_a_space_are_quoted_unless_they_start_with_a_quote() {
        let l = [list("l", &["a b", "\"c d\"", "'e f'", "g\th", ""])];
        assert_eq!(paste("(l)", &l), "( \"a b\", \"c d\", 'e f', g\th,  )");
    }

    #[test]
    fn an_empty_list_takes_the_comma_before_else_after() {
        let l = [list("e", &[])];
        assert_eq!(paste("(a, e)", &l), "(a  )");
        assert_eq!(paste("(e, a)", &l), "(   a)");
        assert_eq!(paste("(e)", &l), "(  )");
    }

    #[test]
    fn a_name_that_begins_the_text_skips_the_next_character() {
        // Falco's search resumes one character late there: the second
        // `l` is left as it is.
        let l = [list("l", &["5"])];
        assert_eq!(paste("l l", &l), "5 l");
        assert_eq!(paste("x l l", &l), "x 5 5 ");
    }

    #[test]
    fn lists_are_pasted_in_order_into_what_earlier_ones_pasted() {
        let lists = [list("a", &["b", "x"]), list("b", &["zz"])];
        assert_eq!(paste("(a)", &lists), "( zz , x )");
        let lists = [list("b", &["zz"]), list("a", &["b"])];
        assert_eq!(paste("(a)", &lists), "( b )");
    }

    #[test]
    fn a_list_past_the_limits_is_an_error_where_named() {
        let big = [Pasteable::new("big", None)];
        let err = |name: &str| PasteError::OversizedList {
            name: name.to_string(),
            max_items: 1,
            max_total: 2,
        };
        let mut budget = PasteBudget::default();
        assert!(paste_lists("bigger = 1", &big, &mut budget, err).is_ok());
        assert!(matches!(
            paste_lists("x in (big)", &big, &mut budget, err),
            Err(PasteError::OversizedList { .. })
        ));
    }

    #[test]
    fn growth_stops_at_the_limit() {
        let item = "x".repeat(1 << 20);
        let l = [list("l", &[item.as_str()])];
        let text = ["l"; 9].join(",");
        let err = |n: &str| PasteError::TooLarge { name: n.into() };
        let mut budget = PasteBudget::default();
        assert!(matches!(
            paste_lists(&text, &l, &mut budget, err),
            Err(PasteError::TooLarge { .. })
        ));
        // Conditions within the limit each add up to the total one.
        let text = ["l"; 7].join(",");
        let mut refused = None;
        for n in 0..20 {
            if let Err(e) = paste_lists(&text, &l, &mut budget, err) {
                refused = Some((n, e));
                break;
            }
        }
        assert!(
            matches!(refused, Some((9, PasteError::TotalTooLarge { .. }))),
            "{refused:?}"
        );
    }
}
