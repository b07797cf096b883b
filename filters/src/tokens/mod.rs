//! Token counting: model → encoding map, text and chat-prompt counts the way
//! OpenAI bills them, and the [`TokenCounter`] the stream meter cuts with.
//!
//! - this file: the [`TokenCounter`] trait and [`Encoding`] (with its shared,
//!   lazily built counter);
//! - `models.rs` ([`TokenizerMap`]): model name → encoding, defaults +
//!   overrides;
//! - `prompt.rs` ([`count_prompt`]): prompt tokens of an OpenAI request body;
//! - `memo.rs`: the lock-free memo of prompt-text counts and model names;
//! - `bpe.rs`, `pretok.rs`, `merge.rs`, `vocab.rs`, `classes.rs`: the
//!   counter itself; `pack.rs`: the vocabularies' packed layout, built by
//!   the crate's build script and read in place.
//!
//! Counts are exactly tiktoken's (`encode_ordinary`, i.e. special-token
//! strings in text count as plain text): the vocabularies come from
//! tiktoken-rs (at build time), the pre-tokenizer is a hand-written
//! equivalent of its regexes and the merge a port of its algorithm. The tests in
//! `equiv_tests` hold the result equal to tiktoken-rs token for token on a
//! varied corpus and random strings. One exception, for bounded cost: a
//! single pre-tokenized piece over 16 KiB (no real text has one) is merged
//! in chunks (`merge.rs`).
//!
//! Why hand-written: counting the 1 MB bench text is 5–10 × faster than
//! tiktoken-rs on every encoding (o200k_base 54.8 against 10.2 MB/s,
//! cl100k_base 68.2 against 7.0, same run; `load-tests/tokens.sh`,
//! figures in `load-tests/RESULTS.md`).

mod bpe;
mod classes;
mod memo;
mod merge;
mod models;
mod pack;
mod pretok;
mod prompt;
mod vocab;

#[cfg(test)]
mod equiv_tests;

pub use models::{Resolved, TokenizerMap};
pub use prompt::{
    count_prompt, count_prompt_within, PromptCount, IMAGE_TOKENS_HIGH, IMAGE_TOKENS_LOW,
};

use std::fmt;
use std::sync::OnceLock;

/// Counts and cuts text in one encoding. The stream meter and the
/// non-streaming truncator only need this.
pub trait TokenCounter: Send + Sync {
    /// Tokens in `text`.
    fn count(&self, text: &str) -> usize;
    /// The longest prefix of `text` (cut on a char boundary) whose token
    /// count is at most `max_tokens`: `(byte_len, tokens)`.
    fn prefix_within(&self, text: &str, max_tokens: usize) -> (usize, usize);
    /// Tokens in `text`, or any number over `limit` once the count has
    /// passed it (counting stops there: the caller only needs to know).
    fn count_up_to(&self, text: &str, limit: usize) -> usize;
}

/// A tiktoken encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// GPT-4o, GPT-4.1, GPT-4.5, GPT-5, o1/o3/o4.
    O200kBase,
    /// GPT-4, GPT-3.5, text-embedding-ada-002 / -3.
    Cl100kBase,
    /// Codex, text-davinci-002/003.
    P50kBase,
    /// GPT-3 (davinci, curie, …), also known as `gpt2`.
    R50kBase,
}

/// What [`Encoding::counter`] hands out.
enum Counter {
    Bpe(bpe::Bpe),
    Approx(bpe::Approx),
}

impl TokenCounter for Counter {
    fn count(&self, text: &str) -> usize {
        match self {
            Counter::Bpe(c) => c.count(text),
            Counter::Approx(c) => c.count(text),
        }
    }

    fn prefix_within(&self, text: &str, max_tokens: usize) -> (usize, usize) {
        match self {
            Counter::Bpe(c) => c.prefix_within(text, max_tokens),
            Counter::Approx(c) => c.prefix_within(text, max_tokens),
        }
    }

    fn count_up_to(&self, text: &str, limit: usize) -> usize {
        match self {
            Counter::Bpe(c) => c.count_up_to(text, limit),
            Counter::Approx(c) => c.count_up_to(text, limit),
        }
    }
}

static COUNTERS: [OnceLock<Counter>; 4] = [
    OnceLock::new(),
    OnceLock::new(),
    OnceLock::new(),
    OnceLock::new(),
];

impl Encoding {
    /// Every encoding.
    pub const ALL: [Encoding; 4] = [
        Encoding::O200kBase,
        Encoding::Cl100kBase,
        Encoding::P50kBase,
        Encoding::R50kBase,
    ];

    /// Shared counter for this encoding, built on first use (cheap: the
    /// vocabulary is compiled in and read in place). Never fails: were the
    /// compiled-in vocabulary unreadable, the counter would be a bytes/4
    /// estimate.
    pub fn counter(self) -> &'static dyn TokenCounter {
        self.shared()
    }

    fn shared(self) -> &'static Counter {
        COUNTERS[self.index()].get_or_init(|| match vocab::Vocab::compiled(self) {
            Some(v) => Counter::Bpe(bpe::Bpe::new(v, self.pattern())),
            None => Counter::Approx(bpe::Approx),
        })
    }

    /// The exact counter (tests: token ranks).
    #[cfg(test)]
    pub(crate) fn bpe(self) -> &'static bpe::Bpe {
        match self.shared() {
            Counter::Bpe(b) => b,
            Counter::Approx(_) => panic!("{self}: vocabulary failed to load"),
        }
    }

    /// tiktoken's name: `o200k_base`, `cl100k_base`, `p50k_base`, `r50k_base`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
            Encoding::P50kBase => "p50k_base",
            Encoding::R50kBase => "r50k_base",
        }
    }

    /// The encoding named `name` (tiktoken's names; `gpt2` = `r50k_base`).
    pub fn from_name(name: &str) -> Option<Encoding> {
        match name {
            "gpt2" => Some(Encoding::R50kBase),
            _ => Encoding::ALL.into_iter().find(|e| e.name() == name),
        }
    }

    fn index(self) -> usize {
        match self {
            Encoding::O200kBase => 0,
            Encoding::Cl100kBase => 1,
            Encoding::P50kBase => 2,
            Encoding::R50kBase => 3,
        }
    }

    fn pattern(self) -> pretok::Pattern {
        match self {
            Encoding::O200kBase => pretok::Pattern::O200k,
            Encoding::Cl100kBase => pretok::Pattern::Cl100k,
            Encoding::P50kBase | Encoding::R50kBase => pretok::Pattern::Gpt2,
        }
    }

    /// Mergeable (ordinary) tokens in the vocabulary (build.rs checks the
    /// same figures).
    #[cfg(test)]
    pub(crate) fn vocab_size(self) -> usize {
        match self {
            Encoding::O200kBase => 199_998,
            Encoding::Cl100kBase => 100_256,
            Encoding::P50kBase => 50_280,
            Encoding::R50kBase => 50_256,
        }
    }

    /// The encoding whose shared counter `counter` is, if any (without
    /// building any counter).
    pub(crate) fn of_counter(counter: &dyn TokenCounter) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|e| {
            COUNTERS[e.index()]
                .get()
                .is_some_and(|c| std::ptr::addr_eq(c as &dyn TokenCounter, counter))
        })
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_encoding_names_and_serde() {
        for e in Encoding::ALL {
            assert_eq!(Encoding::from_name(e.name()), Some(e));
            assert_eq!(
                serde_json::to_string(&e).ok(),
                Some(format!("\"{}\"", e.name()))
            );
            let back: Encoding = serde_json::from_str(&format!("\"{e}\"")).unwrap();
            assert_eq!(back, e);
        }
        assert_eq!(Encoding::from_name("gpt2"), Some(Encoding::R50kBase));
        assert_eq!(Encoding::from_name("o200k"), None);
    }

    #[test]
    fn tokens_counter_is_shared_and_known() {
        let a = Encoding::Cl100kBase.counter();
        let b = Encoding::Cl100kBase.counter();
        assert!(std::ptr::addr_eq(a, b));
        assert_eq!(Encoding::of_counter(a), Some(Encoding::Cl100kBase));
        assert_eq!(Encoding::of_counter(&bpe::Approx), None);
    }

    /// Published tiktoken values: OpenAI cookbook "How to count tokens with
    /// tiktoken" (section 5 compares r50k/p50k/cl100k/o200k) and the
    /// well-known "hello world" (cl100k [15339, 1917], GPT-2 [31373, 995]).
    #[test]
    fn tokens_pinned_counts() {
        use Encoding::*;
        // [o200k, cl100k, p50k, r50k]; None: not published.
        let cases: [(&str, [Option<usize>; 4]); 5] = [
            ("hello world", [Some(2), Some(2), Some(2), Some(2)]),
            ("tiktoken is great!", [Some(6), Some(6), None, None]),
            (
                "antidisestablishmentarianism",
                [Some(6), Some(6), Some(5), Some(5)],
            ),
            ("2 + 2 = 4", [Some(7), Some(7), Some(5), Some(5)]),
            ("お誕生日おめでとう", [Some(8), Some(9), Some(14), Some(14)]),
        ];
        for (text, counts) in cases {
            for (e, want) in [O200kBase, Cl100kBase, P50kBase, R50kBase]
                .into_iter()
                .zip(counts)
            {
                if let Some(want) = want {
                    assert_eq!(e.counter().count(text), want, "{e} {text:?}");
                }
            }
        }
    }

    /// Published token ids (same sources).
    #[test]
    fn tokens_pinned_ids() {
        use Encoding::*;
        let cl = Cl100kBase.bpe();
        let o = O200kBase.bpe();
        assert_eq!(cl.encode("hello world"), [15339, 1917]);
        assert_eq!(R50kBase.bpe().encode("hello world"), [31373, 995]);
        assert_eq!(
            cl.encode("tiktoken is great!"),
            [83, 1609, 5963, 374, 2294, 0]
        );
        assert_eq!(
            o.encode("tiktoken is great!"),
            [83, 8251, 2488, 382, 2212, 0]
        );
        assert_eq!(
            cl.encode("お誕生日おめでとう"),
            [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699]
        );
        assert_eq!(
            o.encode("お誕生日おめでとう"),
            [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669]
        );
        assert_eq!(o.encode("2 + 2 = 4"), [17, 659, 220, 17, 314, 220, 19]);
        assert_eq!(
            P50kBase.bpe().encode("antidisestablishmentarianism"),
            [415, 29207, 44390, 3699, 1042]
        );
    }
}
