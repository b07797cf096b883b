//! Fake token counters for the stream tests (the real BPE counter lives in
//! `crate::tokens` and is not used here).

use crate::tokens::TokenCounter;

/// One token per word, the whitespace before a word belonging to it
/// (`" hello world"` is `[" hello", " world"]`); trailing whitespace is a
/// token of its own.
pub(crate) struct Words;

/// One token per `char`.
pub(crate) struct Chars;

pub(crate) static WORDS: Words = Words;
pub(crate) static CHARS: Chars = Chars;

/// Byte offsets where the word tokens of `text` start.
fn word_starts(text: &str) -> impl Iterator<Item = usize> + '_ {
    let mut prev_ws = true;
    let mut first = true;
    text.char_indices().filter_map(move |(i, c)| {
        let ws = c.is_whitespace();
        let start = first || (ws && !prev_ws);
        first = false;
        prev_ws = ws;
        start.then_some(i)
    })
}

impl TokenCounter for Words {
    fn count_up_to(&self, text: &str, _limit: usize) -> usize {
        self.count(text)
    }

    fn count(&self, text: &str) -> usize {
        word_starts(text).count()
    }

    fn prefix_within(&self, text: &str, max_tokens: usize) -> (usize, usize) {
        match word_starts(text).nth(max_tokens) {
            Some(b) => (b, max_tokens),
            None => (text.len(), self.count(text)),
        }
    }
}

impl TokenCounter for Chars {
    fn count_up_to(&self, text: &str, _limit: usize) -> usize {
        self.count(text)
    }

    fn count(&self, text: &str) -> usize {
        text.chars().count()
    }

    fn prefix_within(&self, text: &str, max_tokens: usize) -> (usize, usize) {
        match text.char_indices().nth(max_tokens) {
            Some((b, _)) => (b, max_tokens),
            None => (text.len(), self.count(text)),
        }
    }
}

#[test]
fn fake_counters() {
    assert_eq!(WORDS.count(" hello world"), 2);
    assert_eq!(WORDS.count("hello"), 1);
    assert_eq!(WORDS.count(""), 0);
    assert_eq!(WORDS.count("a b  "), 3);
    assert_eq!(WORDS.prefix_within(" hello world", 1), (6, 1));
    assert_eq!(WORDS.prefix_within(" hello world", 0), (0, 0));
    assert_eq!(WORDS.prefix_within(" hello world", 5), (12, 2));
    assert_eq!(CHARS.count("h\u{e9}"), 2);
    assert_eq!(CHARS.prefix_within("h\u{e9}llo", 2), (3, 2));
}
