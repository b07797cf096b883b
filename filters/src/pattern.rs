//! Compiled match patterns: regexes that are really plain strings.
//!
//! Most patterns operators write are literals with anchors (`^gpt-4o`,
//! `POST`, `/v1/chat/.*`), and a `regex::Regex` costs hundreds of
//! instructions per `is_match` even for those. [`Pattern`] parses the
//! pattern once with `regex_syntax` (the parser `regex` itself uses, with
//! the same default flags), recognises those shapes in the `Hir`, and then
//! matches them with `str` operations. Anything else keeps a `Regex`.
//! Results are exactly `Regex::is_match`'s: only shapes whose meaning is
//! certain are recognised, and the `Hir` already reflects every flag, so
//! `(?i)post` (a concatenation of classes) falls back on its own.

use regex::Regex;
use regex_syntax::hir::{Class, ClassUnicodeRange, Hir, HirKind, Look};
use regex_syntax::ParserBuilder;

/// A pattern compiled to its cheapest exact form.
#[derive(Debug, Clone)]
pub struct Pattern {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// `^lit$`: the whole haystack is the literal.
    Exact(String),
    /// `^lit` (or `^lit.*`): the haystack starts with the literal.
    Prefix(String),
    /// `lit$` (or `.*lit$`): the haystack ends with the literal.
    Suffix(String),
    /// `lit`, `lit.*`, `.*lit`: the literal occurs anywhere.
    Contains(String),
    /// `^lit.*$`: starts with the literal and the rest is one line, since
    /// `.` does not match `\n` by default (`^/v1/.*$` rejects "/v1/a\nb").
    PrefixRestLine(String),
    /// Everything else.
    Regex(Regex),
}

impl Pattern {
    /// Search semantics, like `Regex::new(pattern)?.is_match`: unanchored
    /// unless the pattern anchors itself.
    pub fn new(pattern: &str) -> Result<Pattern, regex::Error> {
        // Always compile the regex first so that an invalid pattern (syntax,
        // nesting, compiled size) fails exactly as `Regex::new` does; it is
        // kept only when the shape is not recognised.
        let re = Regex::new(pattern)?;
        let kind = ParserBuilder::new()
            .build()
            .parse(pattern)
            .ok()
            .and_then(|hir| recognise(&hir))
            .unwrap_or(Kind::Regex(re));
        Ok(Pattern { kind })
    }

    /// Whole-string semantics, exactly `Regex::new(&format!("^(?:{pattern})$"))`.
    ///
    /// The wrapped text is what gets analysed, not `pattern` with anchors
    /// assumed: the wrapper is plain text, so the pattern can interact with
    /// it. `a)|(?:b` becomes `^(?:a)|(?:b)$`, "starts with a or ends with b",
    /// not a whole-string match. Parsing the very string `Regex` compiles
    /// gives its meaning in every such case.
    pub fn full(pattern: &str) -> Result<Pattern, regex::Error> {
        Pattern::new(&format!("^(?:{pattern})$"))
    }

    /// Whether the pattern matches somewhere in (or, for [`Pattern::full`],
    /// the whole of) `haystack`.
    pub fn is_match(&self, haystack: &str) -> bool {
        match &self.kind {
            Kind::Exact(lit) => haystack == lit,
            Kind::Prefix(lit) => haystack.starts_with(lit.as_str()),
            Kind::Suffix(lit) => haystack.ends_with(lit.as_str()),
            Kind::Contains(lit) => haystack.contains(lit.as_str()),
            Kind::PrefixRestLine(lit) => haystack
                .strip_prefix(lit.as_str())
                .is_some_and(|rest| !rest.contains('\n')),
            Kind::Regex(re) => re.is_match(haystack),
        }
    }
}

/// One piece of a flattened concatenation.
#[derive(Debug, PartialEq)]
enum Item {
    /// `^` / `\A` without multi-line: start of the haystack.
    Start,
    /// `$` / `\z` without multi-line: end of the haystack (not before a
    /// trailing `\n`: Rust's `$` has no such exception).
    End,
    Lit(Vec<u8>),
    /// `.*` (greedy or lazy, the same for `is_match`) with `.` excluding `\n`.
    DotStar,
}

/// The recognised form of `hir`, or `None` to keep the regex.
fn recognise(hir: &Hir) -> Option<Kind> {
    let mut items = Vec::new();
    flatten(hir, &mut items)?;
    let mut items = items.as_slice();

    let start = items.first() == Some(&Item::Start);
    if start {
        items = &items[1..];
    }
    let end = items.last() == Some(&Item::End);
    if end {
        items = &items[..items.len() - 1];
    }
    // Unanchored at the start, a leading `.*` can always match the empty
    // string right before the literal, so it changes nothing.
    if !start && items.first() == Some(&Item::DotStar) {
        items = &items[1..];
    }
    let (lit, rest) = match items {
        [Item::Lit(bytes), rest @ ..] => (String::from_utf8(bytes.clone()).ok()?, rest),
        rest => (String::new(), rest),
    };
    let dot_star = match rest {
        [] => false,
        [Item::DotStar] => true,
        _ => return None,
    };
    Some(match (start, dot_star, end) {
        (true, false, true) => Kind::Exact(lit),
        (true, true, true) => Kind::PrefixRestLine(lit),
        // A trailing `.*` may match the empty string, so it adds nothing
        // without `$`.
        (true, _, false) => Kind::Prefix(lit),
        (false, false, true) => Kind::Suffix(lit),
        (false, _, false) => Kind::Contains(lit),
        // `lit.*$`: the literal must occur with no `\n` after it; rare
        // enough to leave to the regex.
        (false, true, true) => return None,
    })
}

/// Appends `hir` as a flat list of items, unwrapping concatenations and
/// capture groups (groups do not change whether something matches) and
/// merging adjacent literals; `None` if any piece is not an [`Item`].
fn flatten(hir: &Hir, out: &mut Vec<Item>) -> Option<()> {
    match hir.kind() {
        HirKind::Empty => {}
        HirKind::Literal(lit) => match out.last_mut() {
            Some(Item::Lit(prev)) => prev.extend_from_slice(&lit.0),
            _ => out.push(Item::Lit(lit.0.to_vec())),
        },
        HirKind::Look(Look::Start) => out.push(Item::Start),
        HirKind::Look(Look::End) => out.push(Item::End),
        HirKind::Repetition(rep) if rep.min == 0 && rep.max.is_none() && is_dot(&rep.sub) => {
            out.push(Item::DotStar)
        }
        HirKind::Capture(cap) => flatten(&cap.sub, out)?,
        HirKind::Concat(subs) => {
            for sub in subs {
                flatten(sub, out)?;
            }
        }
        _ => return None,
    }
    Some(())
}

/// Whether `hir` is the default `.`: any scalar value except `\n`. `(?s).`
/// (also `\n`), `(?R).` (also `\r`) and byte classes are different classes
/// and do not qualify.
fn is_dot(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => {
            class.ranges()
                == [
                    ClassUnicodeRange::new('\0', '\x09'),
                    ClassUnicodeRange::new('\x0B', '\u{10FFFF}'),
                ]
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "pattern_tests.rs"]
mod tests;
