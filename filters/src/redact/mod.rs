//! Masking of sensitive text (e-mail addresses, phone numbers, payment
//! cards, API keys, operator patterns) in model answers sent to external
//! clients. Pure functions, no I/O.
//!
//! - [`MaskRule`] / [`Builtin`]: the operator's configuration; [`Masker`]
//!   compiles and checks it ([`RedactError`]).
//! - [`Masker::mask`]: one string; [`mask_json`] (`json`): the text fields
//!   of a non-streaming OpenAI or Anthropic answer.
//! - [`TextStream`] (`stream`): the same masking over text that arrives in
//!   pieces, holding back only what a match could still extend into.
//! - [`SseRedactor`] (`sse`): OpenAI and Anthropic SSE streams, one
//!   [`TextStream`] per choice / content block.
//! - `prefix`: the regex of "text that could still become a match", which
//!   decides what a [`TextStream`] holds back.
//!
//! **Semantics with several rules.** One left-to-right pass over the text:
//! at each point the match that starts leftmost among all rules is replaced
//! (when two rules match at the same position, the earlier rule wins), and
//! the scan resumes after it. Replacement text is never scanned again, so a
//! later rule cannot rewrite `[REDACTED:email]`. A single pass (rather than
//! one pass per rule over the previous output) keeps the streaming holdback
//! at the longest rule instead of the sum of all rules.
//!
//! **Card numbers** must pass the Luhn check: a card-shaped match that fails
//! it is left as is, and the card rule looks again from the next character
//! (so `1000-4111 1111 1111 1111` still masks the card after `1000-`;
//! other rules may also match inside a rejected span).
//!
//! **Bounded rules.** Every rule must have a bounded maximum match length
//! (at most [`MAX_MATCH_LEN`] bytes) and may not match the empty string:
//! that bound is what lets a stream be masked while holding back only a
//! few hundred bytes.

mod json;
mod prefix;
mod sse;
mod stream;

#[cfg(test)]
mod json_tests;
#[cfg(test)]
mod sse_tests;
#[cfg(test)]
mod tests;

pub use json::mask_json;
pub use sse::{SseRedactor, MAX_TRACKED_STREAMS};
pub use stream::TextStream;

use std::borrow::Cow;

use regex::{Regex, RegexSet};
use regex_syntax::hir::Hir;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// Upper bound on the maximum match length of a rule, in bytes.
pub const MAX_MATCH_LEN: usize = 1024;

/// The built-in detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    /// E-mail addresses (ASCII local part and domain).
    Email,
    /// International numbers written with `+` (9–15 digits) and US numbers
    /// `(415) 555-0199` / `415-555-0199` (optionally `+1`).
    Phone,
    /// Payment card numbers of 13–19 digits, contiguous or in groups
    /// separated by single spaces or dashes, that pass the Luhn check.
    Card,
    /// Provider API keys: OpenAI/Anthropic `sk-…`, AWS `AKIA…`/`ASIA…`,
    /// GitHub `ghp_…`/`github_pat_…`, Slack `xox?-…`.
    ApiKey,
}

// The builtin regexes. ASCII classes only, every repetition bounded.
// `(?-u:\b)` is an ASCII word boundary: the lazy DFA handles it on any text,
// where a Unicode `\b` falls back to slower engines on non-ASCII text.
const EMAIL: &str =
    r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,3}\.[A-Za-z]{2,24}";
const PHONE: &str = concat!(
    r"\+[1-9](?:[ .\-]?[0-9]){8,14}",
    r"|(?:\+1[ .\-]?)?\([0-9]{3}\)[ .\-]?[0-9]{3}[ .\-][0-9]{4}",
    r"|(?-u:\b)[0-9]{3}[ .\-][0-9]{3}[ .\-][0-9]{4}(?-u:\b)",
);
const CARD: &str = concat!(
    r"(?-u:\b)(?:[0-9]{13,19}",
    r"|[0-9]{4}(?:[ \-][0-9]{4}){3}[ \-][0-9]{3}",
    r"|[0-9]{4}(?:[ \-][0-9]{4}){2}[ \-][0-9]{1,7}",
    r"|[0-9]{4}[ \-][0-9]{6}[ \-][0-9]{4,5})(?-u:\b)",
);
const API_KEY: &str = concat!(
    r"(?-u:\b)(?:sk-[A-Za-z0-9_\-]{20,256}",
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)",
    r"|gh[pousr]_[A-Za-z0-9]{36,255}",
    r"|github_pat_[A-Za-z0-9_]{22,255}",
    r"|xox[abposr]-[A-Za-z0-9\-]{10,250})",
);

impl Builtin {
    /// Every builtin.
    pub const ALL: [Builtin; 4] = [
        Builtin::Email,
        Builtin::Phone,
        Builtin::Card,
        Builtin::ApiKey,
    ];

    /// The configuration spelling (`email`, `phone`, `card`, `api_key`).
    pub fn as_str(self) -> &'static str {
        match self {
            Builtin::Email => "email",
            Builtin::Phone => "phone",
            Builtin::Card => "card",
            Builtin::ApiKey => "api_key",
        }
    }

    /// The regex of this builtin.
    pub fn pattern(self) -> &'static str {
        match self {
            Builtin::Email => EMAIL,
            Builtin::Phone => PHONE,
            Builtin::Card => CARD,
            Builtin::ApiKey => API_KEY,
        }
    }
}

/// One masking rule as configured: exactly one of `builtin` and `pattern`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskRule {
    /// Shown in the default replacement `[REDACTED:<name>]`; for a builtin
    /// it defaults to the builtin's spelling.
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<Builtin>,
    /// A regex (`regex` crate syntax) with bounded repetitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The text put in place of a match (literal, no `$1` expansion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
}

impl MaskRule {
    /// A rule for `builtin` with its default name and replacement.
    pub fn builtin(builtin: Builtin) -> Self {
        MaskRule {
            builtin: Some(builtin),
            ..MaskRule::default()
        }
    }

    /// A rule for an operator's `pattern`.
    pub fn pattern(name: &str, pattern: &str) -> Self {
        MaskRule {
            name: name.to_owned(),
            pattern: Some(pattern.to_owned()),
            ..MaskRule::default()
        }
    }

    /// The name used in the replacement and in errors.
    fn effective_name(&self) -> &str {
        match (&self.builtin, self.name.is_empty()) {
            (Some(b), true) => b.as_str(),
            _ => &self.name,
        }
    }
}

/// Why a list of [`MaskRule`]s was refused. `index` is the rule's position
/// (from 0) in the list, `name` its name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedactError {
    #[error("mask rule #{index} ({name:?}): set either `builtin` or `pattern`, not both")]
    BothBuiltinAndPattern { index: usize, name: String },
    #[error("mask rule #{index} ({name:?}): set one of `builtin` (email, phone, card, api_key) or `pattern`")]
    NeitherBuiltinNorPattern { index: usize, name: String },
    #[error("mask rule #{index} ({name:?}): invalid regex: {message}")]
    InvalidRegex {
        index: usize,
        name: String,
        message: String,
    },
    #[error("mask rule #{index} ({name:?}): the pattern can match the empty string; make it require at least one character")]
    MatchesEmpty { index: usize, name: String },
    #[error("mask rule #{index} ({name:?}): the pattern can never match anything")]
    NeverMatches { index: usize, name: String },
    #[error("mask rule #{index} ({name:?}): the pattern has no maximum match length; bound every repetition, e.g. `{{1,64}}` instead of `+` or `*`")]
    Unbounded { index: usize, name: String },
    #[error(
        "mask rules: together too large to compile ({message}); use fewer or smaller patterns"
    )]
    TooLarge { message: String },
    #[error("mask rule #{index} ({name:?}): the pattern can match up to {max_len} bytes, more than the limit of {limit}; lower its repetition bounds")]
    TooLong {
        index: usize,
        name: String,
        max_len: usize,
        limit: usize,
    },
}

/// One compiled rule.
#[derive(Debug, Clone)]
struct Rule {
    regex: Regex,
    replacement: String,
    /// Card numbers: a match counts only when its digits pass Luhn.
    luhn: bool,
}

impl Rule {
    fn accepts(&self, matched: &str) -> bool {
        !self.luhn || luhn_ok(matched)
    }
}

/// Where text may still turn into a match (see [`Masker::viable_start`]).
#[derive(Debug, Clone)]
enum Viable {
    /// `(?:prefixes of every rule)\z`: its leftmost match starts at the first
    /// position whose rest could begin a match.
    Regex(Regex),
    /// Fallback when that regex could not be built: the last `n` bytes.
    Window(usize),
}

/// The compiled rules; see the module docs for the matching semantics.
#[derive(Debug, Clone)]
pub struct Masker {
    rules: Vec<Rule>,
    /// Cheap "any rule matches from here" test; `None` without rules.
    set: Option<RegexSet>,
    viable: Viable,
    max_len: usize,
}

/// The next accepted match `(start, end)` of one rule from some search
/// position (`None`: there is none), or `None` when not computed yet.
/// Since acceptance is decided per start position, it stays the answer
/// for every later search position up to its start.
type Next = Option<Option<(usize, usize)>>;

/// A match chosen for replacement.
#[derive(Debug, Clone, Copy)]
struct Found {
    rule: usize,
    start: usize,
    end: usize,
}

impl Masker {
    /// Compiles and checks `rules` (see [`RedactError`] for what is refused).
    pub fn new(rules: &[MaskRule]) -> Result<Masker, RedactError> {
        let mut compiled = Vec::with_capacity(rules.len());
        let mut hirs = Vec::with_capacity(rules.len());
        let mut max_len = 0;
        for (index, rule) in rules.iter().enumerate() {
            let name = rule.effective_name().to_owned();
            let pattern = match (&rule.builtin, &rule.pattern) {
                (Some(_), Some(_)) => {
                    return Err(RedactError::BothBuiltinAndPattern { index, name })
                }
                (None, None) => return Err(RedactError::NeitherBuiltinNorPattern { index, name }),
                (Some(b), None) => b.pattern(),
                (None, Some(p)) => p.as_str(),
            };
            let (regex, hir, len) = check_pattern(pattern, index, &name)?;
            max_len = max_len.max(len);
            hirs.push(hir);
            let replacement = match &rule.replacement {
                Some(r) => r.clone(),
                None if name.is_empty() => "[REDACTED]".to_owned(),
                None => format!("[REDACTED:{name}]"),
            };
            compiled.push(Rule {
                regex,
                replacement,
                luhn: rule.builtin == Some(Builtin::Card),
            });
        }
        let set = if compiled.is_empty() {
            None
        } else {
            let set = RegexSet::new(compiled.iter().map(|r| r.regex.as_str()));
            Some(set.map_err(|e| RedactError::TooLarge {
                message: e.to_string(),
            })?)
        };
        let viable = match prefix::viable_regex(&hirs) {
            Some(re) => Viable::Regex(re),
            None => Viable::Window(max_len),
        };
        Ok(Masker {
            rules: compiled,
            set,
            viable,
            max_len,
        })
    }

    /// Longest possible match of any rule, in bytes, minus one (0 without
    /// rules). A [`TextStream`] holds back at most `holdback() + 1` bytes
    /// (for rules whose every partial match can still complete, as all the
    /// builtins; in general, the longest partial match): a match of the
    /// longest length is held whole while a `\b` after it still needs the
    /// next character.
    pub fn holdback(&self) -> usize {
        self.max_len.saturating_sub(1)
    }

    /// Whether there are no rules (everything passes unchanged).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Masks `text`; borrowed when nothing was replaced.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match &self.set {
            Some(set) if set.is_match(text) => {}
            _ => return Cow::Borrowed(text),
        }
        let mut out = String::with_capacity(text.len() + 16);
        let (_, replaced) = self.run(text, 0, true, &mut out);
        if replaced {
            Cow::Owned(out)
        } else {
            Cow::Borrowed(text)
        }
    }

    /// Masks `hay[from..]` into `out` as far as the result is final and
    /// returns the position reached and whether anything was replaced.
    /// `hay[..from]` is context already emitted (the look-behind of `\b`).
    /// With `eof` the text ends at `hay.len()`; otherwise more may follow
    /// and the result stops at the first position whose rest could still
    /// begin (or change) a match.
    fn run(&self, hay: &str, from: usize, eof: bool, out: &mut String) -> (usize, bool) {
        let limit_from = |p: usize| {
            if eof {
                hay.len()
            } else {
                self.viable_start(hay, p)
            }
        };
        let mut p = from;
        let any = match &self.set {
            Some(set) => set.is_match_at(hay, p),
            None => false,
        };
        if !any {
            let limit = limit_from(p);
            out.push_str(&hay[p..limit]);
            return (limit, false);
        }
        let mut cache: SmallVec<[Next; 8]> = self.rules.iter().map(|_| None).collect();
        let mut replaced = false;
        loop {
            let limit = limit_from(p);
            match self.next_match(hay, p, &mut cache) {
                Some(f) if f.start < limit => {
                    out.push_str(&hay[p..f.start]);
                    if let Some(rule) = self.rules.get(f.rule) {
                        out.push_str(&rule.replacement);
                    }
                    replaced = true;
                    p = f.end;
                }
                _ => {
                    out.push_str(&hay[p..limit]);
                    return (limit, replaced);
                }
            }
        }
    }

    /// The leftmost accepted match at or after `from` over all rules (the
    /// earlier rule on a tie).
    fn next_match(&self, hay: &str, from: usize, cache: &mut [Next]) -> Option<Found> {
        let mut best: Option<Found> = None;
        for (k, (rule, next)) in self.rules.iter().zip(cache.iter_mut()).enumerate() {
            let found = match *next {
                Some(None) => None,
                Some(Some((start, end))) if from <= start => Some((start, end)),
                _ => accepted_from(rule, hay, from),
            };
            *next = Some(found);
            if let Some((start, end)) = found {
                if best.is_none_or(|b| start < b.start) {
                    best = Some(Found {
                        rule: k,
                        start,
                        end,
                    });
                }
            }
        }
        best
    }

    /// The first position at or after `p` where the rest of `hay` could
    /// still begin a match once more text is appended (`hay.len()` when
    /// none). Before it, every match is final.
    fn viable_start(&self, hay: &str, p: usize) -> usize {
        match &self.viable {
            Viable::Regex(re) => re.find_at(hay, p).map_or(hay.len(), |m| m.start()),
            Viable::Window(n) => ceil_char_boundary(hay, hay.len().saturating_sub(*n)).max(p),
        }
    }
}

/// The match of `rule` starting leftmost at or after `from` that it
/// accepts. After a rejected match the search goes on from the character
/// after its start, so whether a position starts an accepted match does not
/// depend on where the search began (a stream resumes mid-text).
fn accepted_from(rule: &Rule, hay: &str, from: usize) -> Option<(usize, usize)> {
    let mut at = from;
    while let Some(m) = rule.regex.find_at(hay, at) {
        if rule.accepts(m.as_str()) {
            return Some((m.start(), m.end()));
        }
        let first = hay[m.start()..].chars().next().map_or(1, char::len_utf8);
        at = m.start() + first;
    }
    None
}

/// Compiles `pattern` and checks its lengths: the regex, its `Hir` and its
/// maximum match length.
fn check_pattern(
    pattern: &str,
    index: usize,
    name: &str,
) -> Result<(Regex, Hir, usize), RedactError> {
    let name = name.to_owned();
    let invalid = |message: String| RedactError::InvalidRegex {
        index,
        name: name.clone(),
        message,
    };
    let regex = Regex::new(pattern).map_err(|e| invalid(e.to_string()))?;
    // The parser `regex` uses, with its default flags.
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .map_err(|e| invalid(e.to_string()))?;
    let props = hir.properties();
    match props.minimum_len() {
        None => return Err(RedactError::NeverMatches { index, name }),
        Some(0) => return Err(RedactError::MatchesEmpty { index, name }),
        Some(_) => {}
    }
    let max_len = props.maximum_len().ok_or_else(|| RedactError::Unbounded {
        index,
        name: name.clone(),
    })?;
    if max_len > MAX_MATCH_LEN {
        return Err(RedactError::TooLong {
            index,
            name,
            max_len,
            limit: MAX_MATCH_LEN,
        });
    }
    Ok((regex, hir, max_len))
}

/// The Luhn checksum over the ASCII digits of `s` (13–19 of them).
fn luhn_ok(s: &str) -> bool {
    let mut sum = 0u32;
    let mut count = 0usize;
    for (i, d) in s.bytes().rev().filter(u8::is_ascii_digit).enumerate() {
        let mut d = u32::from(d - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        count += 1;
    }
    (13..=19).contains(&count) && sum.is_multiple_of(10)
}

/// The smallest char boundary of `s` at or after `i` (`s.len()` at most).
fn ceil_char_boundary(s: &str, i: usize) -> usize {
    (i..s.len())
        .find(|&j| s.is_char_boundary(j))
        .unwrap_or(s.len())
}
