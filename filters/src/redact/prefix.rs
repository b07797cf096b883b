//! The "could still become a match" regex behind [`super::TextStream`]'s
//! holdback.
//!
//! For a rule `R`, `prefixes(R)` matches every string that a match attempt
//! of `R` can consume entirely and still be alive: every prefix of a
//! partial match path (dead ends included), assertions at the end dropped.
//! `(?:prefixes(R0)|prefixes(R1)|…)\z`, searched from a position, finds the
//! first position whose rest of the text could begin a match, or change
//! one, once more text is appended. Every position before it is final: any
//! match attempt starting there either fails or ends strictly inside the
//! text seen so far, with its look-ahead (`\b`, `$`) on a character already
//! seen, so appending text cannot change it.
//!
//! The language is an over-approximation (look-arounds inside a prefix are
//! kept, the ones at its end are dropped), which only ever holds back more,
//! never less. Its longest string is at most the rule's longest partial
//! match, so the held text stays within the longest match length for the
//! built-in rules.
//!
//! Concatenations are split in halves (`P(AB) = P(A) | A·P(B)`) so the
//! nesting depth of the printed regex grows with the logarithm of a
//! literal's length, not linearly.

use regex::{Regex, RegexBuilder};
use regex_syntax::hir::{Hir, HirKind, Look, Repetition};

/// Compiled size limit for the prefix regex (the default of `regex`, made
/// explicit: a larger rule set falls back to a fixed window).
const SIZE_LIMIT: usize = 10 * (1 << 20);

/// `(?:prefixes of each hir)\z`, or `None` when it cannot be built (the
/// caller then holds back a fixed window).
pub(super) fn viable_regex(hirs: &[Hir]) -> Option<Regex> {
    if hirs.is_empty() {
        return None;
    }
    let alts = hirs.iter().map(prefixes).collect::<Option<Vec<_>>>()?;
    let hir = Hir::concat(vec![Hir::alternation(alts), Hir::look(Look::End)]);
    RegexBuilder::new(&hir.to_string())
        .size_limit(SIZE_LIMIT)
        .nest_limit(1000)
        .build()
        .ok()
}

/// Every string a match attempt of `hir` can consume while still alive.
fn prefixes(hir: &Hir) -> Option<Hir> {
    Some(match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Hir::empty(),
        HirKind::Class(_) => optional(hir.clone()),
        HirKind::Literal(lit) => {
            let text = std::str::from_utf8(&lit.0).ok()?;
            if text.chars().nth(1).is_none() {
                return Some(optional(hir.clone()));
            }
            let chars: Vec<Hir> = text
                .chars()
                .map(|c| Hir::literal(c.to_string().into_bytes()))
                .collect();
            concat_prefixes(&chars)?
        }
        HirKind::Repetition(rep) => match rep.max {
            Some(0) => Hir::empty(),
            max => Hir::concat(vec![
                Hir::repetition(Repetition {
                    min: 0,
                    max: max.map(|m| m - 1),
                    greedy: rep.greedy,
                    sub: rep.sub.clone(),
                }),
                prefixes(&rep.sub)?,
            ]),
        },
        HirKind::Capture(cap) => prefixes(&cap.sub)?,
        HirKind::Concat(subs) => concat_prefixes(subs)?,
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.iter().map(prefixes).collect::<Option<Vec<_>>>()?)
        }
    })
}

/// Prefixes of the concatenation of `items`: `P(A) | A·P(B)` with `A`, `B`
/// the two halves.
fn concat_prefixes(items: &[Hir]) -> Option<Hir> {
    match items {
        [] => Some(Hir::empty()),
        [one] => prefixes(one),
        _ => {
            let (a, b) = items.split_at(items.len() / 2);
            Some(Hir::alternation(vec![
                concat_prefixes(a)?,
                Hir::concat(vec![Hir::concat(a.to_vec()), concat_prefixes(b)?]),
            ]))
        }
    }
}

/// `hir?`
fn optional(hir: Hir) -> Hir {
    Hir::repetition(Repetition {
        min: 0,
        max: Some(1),
        greedy: true,
        sub: Box::new(hir),
    })
}
