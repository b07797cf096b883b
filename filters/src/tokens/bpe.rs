//! The [`TokenCounter`] implementations: [`Bpe`], exact tiktoken counts
//! (pre-tokenizer of [`super::pretok`], whole-piece vocabulary lookup, then
//! the merge of [`super::merge`]), and [`Approx`], the stand-in used only if
//! a vocabulary cannot be loaded.

use super::classes::Classes;
use super::merge::{merge, merge_up_to};
use super::pretok::{Pattern, Splitter};
use super::vocab::Vocab;
use super::TokenCounter;

/// Exact byte-pair counter for one tiktoken encoding.
pub(crate) struct Bpe {
    vocab: Vocab,
    pattern: Pattern,
    classes: &'static Classes,
}

impl Bpe {
    pub(crate) fn new(vocab: Vocab, pattern: Pattern) -> Bpe {
        Bpe {
            vocab,
            pattern,
            classes: Classes::get(),
        }
    }

    /// The piece is one token (tiktoken looks the whole piece up first;
    /// every single byte is a token).
    #[inline]
    fn is_token(&self, piece: &[u8]) -> bool {
        piece.len() == 1 || (piece.len() <= self.vocab.max_len && self.vocab.rank(piece).is_some())
    }

    /// Tokens in one piece.
    #[inline]
    fn piece_count(&self, piece: &[u8]) -> usize {
        if self.is_token(piece) {
            return 1;
        }
        merge(&self.vocab, piece, |_| {})
    }

    /// End offsets (within the piece) of its tokens.
    fn piece_bounds(&self, piece: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        if self.is_token(piece) {
            out.push(piece.len());
        } else {
            merge(&self.vocab, piece, |e| out.push(e));
        }
        out
    }

    /// Calls `f(start, end)` for each piece of `text`; stops when it returns false.
    #[inline]
    fn pieces(&self, text: &str, mut f: impl FnMut(usize, usize) -> bool) {
        let sp = Splitter::new(text, self.pattern, self.classes);
        let mut p = 0;
        while p < text.len() {
            let e = sp.piece_end(p).min(text.len());
            if !f(p, e) {
                return;
            }
            p = e;
        }
    }

    /// Token ranks of `text` (for the equality tests against tiktoken-rs).
    #[cfg(test)]
    pub(crate) fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        self.pieces(text, |p, e| {
            let piece = &text.as_bytes()[p..e];
            let mut start = 0;
            for end in self.piece_bounds(piece) {
                out.push(self.vocab.rank(&piece[start..end]).unwrap_or(u32::MAX));
                start = end;
            }
            true
        });
        out
    }
}

impl TokenCounter for Bpe {
    fn count(&self, text: &str) -> usize {
        let b = text.as_bytes();
        let mut n = 0;
        self.pieces(text, |p, e| {
            n += self.piece_count(&b[p..e]);
            true
        });
        n
    }

    fn count_up_to(&self, text: &str, limit: usize) -> usize {
        let b = text.as_bytes();
        let mut n = 0;
        self.pieces(text, |p, e| {
            let piece = &b[p..e];
            n += if self.is_token(piece) {
                1
            } else {
                merge_up_to(&self.vocab, piece, limit.saturating_sub(n), |_| {})
            };
            n <= limit
        });
        n
    }

    /// The first `max_tokens` tokens of the full encoding, backed off to a
    /// char boundary. Re-encoding that prefix normally gives the same
    /// tokens; if it ever gave more than `max_tokens` (a split that reads
    /// differently at the new end), the cut moves back a token at a time.
    fn prefix_within(&self, text: &str, max_tokens: usize) -> (usize, usize) {
        let mut used = 0;
        let mut cut_in: Option<(usize, Vec<usize>)> = None;
        self.pieces(text, |p, e| {
            let piece = &text.as_bytes()[p..e];
            let n = self.piece_count(piece);
            if used + n > max_tokens {
                cut_in = Some((p, self.piece_bounds(piece)));
                return false;
            }
            used += n;
            true
        });
        let Some((start, bounds)) = cut_in else {
            return (text.len(), used);
        };
        let mut take = max_tokens - used;
        loop {
            let raw = start
                + take
                    .checked_sub(1)
                    .and_then(|t| bounds.get(t))
                    .copied()
                    .unwrap_or(0);
            let cut = floor_char_boundary(text, raw);
            let n = self.count(&text[..cut]);
            if n <= max_tokens {
                return (cut, n);
            }
            if take == 0 {
                return self.shrink(text, cut, max_tokens);
            }
            take -= 1;
        }
    }
}

impl Bpe {
    /// Last resort for [`TokenCounter::prefix_within`]: the longest char
    /// boundary below `hi` whose prefix fits, by bisection.
    fn shrink(&self, text: &str, hi: usize, max_tokens: usize) -> (usize, usize) {
        // Invariant: the prefix up to `lo` fits; `hi` is a char boundary.
        let (mut lo, mut hi) = (0, hi);
        while lo < hi {
            let mid = ceil_char_boundary(text, lo + (hi - lo).div_ceil(2));
            if self.count(&text[..mid]) <= max_tokens {
                lo = mid;
            } else {
                hi = floor_char_boundary(text, mid - 1);
            }
        }
        (lo, self.count(&text[..lo]))
    }
}

/// Largest char boundary <= `i` (clamped to the text).
pub(crate) fn floor_char_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Stand-in when an encoding's vocabulary cannot be loaded (never expected:
/// it is compiled in): one token per 4 bytes, rounded up.
pub(crate) struct Approx;

impl TokenCounter for Approx {
    fn count_up_to(&self, text: &str, _limit: usize) -> usize {
        self.count(text)
    }

    fn count(&self, text: &str) -> usize {
        text.len().div_ceil(4)
    }

    fn prefix_within(&self, text: &str, max_tokens: usize) -> (usize, usize) {
        let cut = floor_char_boundary(text, max_tokens.saturating_mul(4));
        (cut, self.count(&text[..cut]))
    }
}
