//! Pre-tokenization: the split of text into pieces before byte-pair merging,
//! hand-written to give exactly the pieces tiktoken's `fancy-regex` patterns
//! give (leftmost-first alternation with backtracking), at several times the
//! speed. One function per pattern; each takes a start offset and returns
//! the end of the piece starting there (always > start, on a char boundary).
//!
//! The patterns, as tiktoken-rs 0.12 writes them:
//!
//! - cl100k: `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|
//!   ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s`
//! - o200k: `[^\r\n\p{L}\p{N}]?[UP]*[LO]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
//!   [^\r\n\p{L}\p{N}]?[UP]+[LO]*(?i:…)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|
//!   \s*[\r\n]+|\s+(?!\S)|\s+` with UP = `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`,
//!   LO = `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`
//! - r50k / p50k (GPT-2): `'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++|
//!   ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s`
//!
//! Equality with tiktoken-rs is proven by the tests in `super::equiv_tests`.

use super::classes::{Classes, END, LETTER, LOWERISH, NEWLINE, NUMBER, SPACE, UPPERISH};

/// Which split pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pattern {
    Cl100k,
    O200k,
    Gpt2,
}

/// `[^\s\p{L}\p{N}]` is "no bit of this mask set" (end of text included).
const NOT_OTHER: u8 = LETTER | NUMBER | SPACE | END;
/// `[^\r\n\p{L}\p{N}]`.
const NOT_PREFIX: u8 = LETTER | NUMBER | NEWLINE | END;

/// A text being split.
pub(crate) struct Splitter<'a> {
    s: &'a [u8],
    cls: &'a Classes,
    pattern: Pattern,
}

/// A run of white space starting at the split point.
struct Ws {
    end: usize,
    chars: usize,
    /// Start of the run's last char.
    last: usize,
    /// Just past the run's last `\r` or `\n`.
    nl_end: Option<usize>,
}

impl<'a> Splitter<'a> {
    pub(crate) fn new(text: &'a str, pattern: Pattern, cls: &'a Classes) -> Self {
        Splitter {
            s: text.as_bytes(),
            cls,
            pattern,
        }
    }

    /// End of the piece starting at `p` (`p` < text length, on a char boundary).
    #[inline]
    pub(crate) fn piece_end(&self, p: usize) -> usize {
        let e = match self.pattern {
            Pattern::Cl100k => self.cl100k(p),
            Pattern::O200k => self.o200k(p),
            Pattern::Gpt2 => self.gpt2(p),
        };
        if e > p {
            e
        } else {
            // Unreachable (every char is in some alternative); never loop.
            p + self.at(p).1.max(1)
        }
    }

    /// Class bits and byte length of the char at `i` (`END`, 0 past the end).
    #[inline(always)]
    fn at(&self, i: usize) -> (u8, usize) {
        match self.s.get(i) {
            None => (END, 0),
            Some(&b) if b < 0x80 => (self.cls.ascii[b as usize], 1),
            Some(&b) => {
                let c = |k: usize| (self.s.get(i + k).copied().unwrap_or(0x80) & 0x3F) as u32;
                let (cp, len) = if b < 0xE0 {
                    (((b as u32 & 0x1F) << 6) | c(1), 2)
                } else if b < 0xF0 {
                    (((b as u32 & 0x0F) << 12) | (c(1) << 6) | c(2), 3)
                } else {
                    (
                        ((b as u32 & 0x07) << 18) | (c(1) << 12) | (c(2) << 6) | c(3),
                        4,
                    )
                };
                (self.cls.of(cp), len)
            }
        }
    }

    /// End of the run from `i` of chars with some bit of `mask`.
    #[inline(always)]
    fn run_any(&self, mut i: usize, mask: u8) -> usize {
        loop {
            match self.s.get(i) {
                Some(&b) if b < 0x80 => {
                    if self.cls.ascii[b as usize] & mask == 0 {
                        return i;
                    }
                    i += 1;
                }
                Some(_) => {
                    let (c, l) = self.at(i);
                    if c & mask == 0 {
                        return i;
                    }
                    i += l;
                }
                None => return i,
            }
        }
    }

    /// End of the run from `i` of chars with no bit of `mask`.
    #[inline(always)]
    fn run_none(&self, mut i: usize, mask: u8) -> usize {
        loop {
            let (c, l) = self.at(i);
            if c & mask != 0 || l == 0 {
                return i;
            }
            i += l;
        }
    }

    /// `'` + contraction at `i`: `(?i:s|d|m|t|ll|ve|re)` when `fold`
    /// (case-insensitive, so `ſ` counts as `s`), else case-sensitive.
    #[inline]
    fn contraction(&self, i: usize, fold: bool) -> Option<usize> {
        if self.s.get(i) != Some(&b'\'') {
            return None;
        }
        let low = |b: u8| if fold { b.to_ascii_lowercase() } else { b };
        let a = *self.s.get(i + 1)?;
        let second = |want: u8| {
            let b = *self.s.get(i + 2)?;
            (low(b) == want).then_some(i + 3)
        };
        match low(a) {
            b's' | b'd' | b'm' | b't' => Some(i + 2),
            b'l' => second(b'l'),
            b'v' | b'r' => second(b'e'),
            // U+017F LATIN SMALL LETTER LONG S folds to `s`.
            0xC5 if fold && self.s.get(i + 2) == Some(&0xBF) => Some(i + 3),
            _ => None,
        }
    }

    /// `\p{N}{1,3}` at `p` (a number).
    #[inline]
    fn digits3(&self, p: usize, l0: usize) -> usize {
        let mut e = p + l0;
        for _ in 0..2 {
            let (c, l) = self.at(e);
            if c & NUMBER == 0 {
                break;
            }
            e += l;
        }
        e
    }

    /// ` ?[^\s\p{L}\p{N}]+` at `p`: end of the match, if any.
    #[inline]
    fn other_run(&self, p: usize, c0: u8, l0: usize) -> Option<usize> {
        if self.s.get(p) == Some(&b' ') {
            let (c1, l1) = self.at(p + 1);
            if c1 & NOT_OTHER == 0 {
                return Some(self.run_none(p + 1 + l1, NOT_OTHER));
            }
        }
        (c0 & NOT_OTHER == 0).then(|| self.run_none(p + l0, NOT_OTHER))
    }

    fn ws(&self, p: usize) -> Ws {
        let mut w = Ws {
            end: p,
            chars: 0,
            last: p,
            nl_end: None,
        };
        loop {
            let (c, l) = self.at(w.end);
            if c & SPACE == 0 {
                return w;
            }
            w.last = w.end;
            w.end += l;
            w.chars += 1;
            if c & NEWLINE != 0 {
                w.nl_end = Some(w.end);
            }
        }
    }

    fn cl100k(&self, p: usize) -> usize {
        let (c0, l0) = self.at(p);
        if let Some(e) = self.contraction(p, true) {
            return e;
        }
        // [^\r\n\p{L}\p{N}]?+\p{L}++
        if c0 & LETTER != 0 {
            return self.run_any(p + l0, LETTER);
        }
        if c0 & NOT_PREFIX == 0 {
            let (c1, l1) = self.at(p + l0);
            if c1 & LETTER != 0 {
                return self.run_any(p + l0 + l1, LETTER);
            }
        }
        if c0 & NUMBER != 0 {
            return self.digits3(p, l0);
        }
        if let Some(e) = self.other_run(p, c0, l0) {
            return self.run_any(e, NEWLINE);
        }
        // White space: \s++$ | \s*[\r\n] | \s+(?!\S) | \s
        let w = self.ws(p);
        if w.end == self.s.len() {
            w.end
        } else if let Some(e) = w.nl_end {
            e
        } else if w.chars >= 2 {
            w.last
        } else {
            p + l0
        }
    }

    /// `[UP]*[LO]+` (with backtracking) + optional contraction, from `q`.
    #[inline]
    fn o200k_word1(&self, q: usize) -> Option<usize> {
        let mut i = q;
        let mut last_lo = None;
        loop {
            let (c, l) = self.at(i);
            if c & UPPERISH == 0 {
                let lo = if c & LOWERISH != 0 { i } else { last_lo? };
                let e = self.run_any(lo, LOWERISH);
                return Some(self.contraction(e, true).unwrap_or(e));
            }
            if c & LOWERISH != 0 {
                last_lo = Some(i);
            }
            i += l;
        }
    }

    /// `[UP]+[LO]*` + optional contraction, from `q`.
    #[inline]
    fn o200k_word2(&self, q: usize) -> Option<usize> {
        let e = self.run_any(q, UPPERISH);
        if e == q {
            return None;
        }
        let e = self.run_any(e, LOWERISH);
        Some(self.contraction(e, true).unwrap_or(e))
    }

    fn o200k(&self, p: usize) -> usize {
        let (c0, l0) = self.at(p);
        let prefix = c0 & NOT_PREFIX == 0;
        if prefix {
            if let Some(e) = self.o200k_word1(p + l0) {
                return e;
            }
        }
        if let Some(e) = self.o200k_word1(p) {
            return e;
        }
        if prefix {
            if let Some(e) = self.o200k_word2(p + l0) {
                return e;
            }
        }
        if let Some(e) = self.o200k_word2(p) {
            return e;
        }
        if c0 & NUMBER != 0 {
            return self.digits3(p, l0);
        }
        if let Some(mut e) = self.other_run(p, c0, l0) {
            while matches!(self.s.get(e), Some(b'\r' | b'\n' | b'/')) {
                e += 1;
            }
            return e;
        }
        // White space: \s*[\r\n]+ | \s+(?!\S) | \s+
        let w = self.ws(p);
        if let Some(e) = w.nl_end {
            e
        } else if w.end == self.s.len() {
            w.end
        } else if w.chars >= 2 {
            w.last
        } else {
            w.end.max(p + l0)
        }
    }

    fn gpt2(&self, p: usize) -> usize {
        let (c0, l0) = self.at(p);
        if let Some(e) = self.contraction(p, false) {
            return e;
        }
        // ` ?\p{L}++`, ` ?\p{N}++`, ` ?[^\s\p{L}\p{N}]++`, in that order.
        if self.s.get(p) == Some(&b' ') {
            let (c1, l1) = self.at(p + 1);
            if c1 & LETTER != 0 {
                return self.run_any(p + 1 + l1, LETTER);
            }
            if c1 & NUMBER != 0 {
                return self.run_any(p + 1 + l1, NUMBER);
            }
        }
        if c0 & LETTER != 0 {
            return self.run_any(p + l0, LETTER);
        }
        if c0 & NUMBER != 0 {
            return self.run_any(p + l0, NUMBER);
        }
        if let Some(e) = self.other_run(p, c0, l0) {
            return e;
        }
        // White space: \s++$ | \s+(?!\S) | \s
        let w = self.ws(p);
        if w.end == self.s.len() {
            w.end
        } else if w.chars >= 2 {
            w.last
        } else {
            p + l0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str, pattern: Pattern) -> Vec<&str> {
        let sp = Splitter::new(text, pattern, Classes::get());
        let mut out = Vec::new();
        let mut p = 0;
        while p < text.len() {
            let e = sp.piece_end(p);
            out.push(&text[p..e]);
            p = e;
        }
        out
    }

    #[test]
    fn tokens_pretok_known_splits() {
        use Pattern::*;
        assert_eq!(
            pieces("Hello world, it's 12345!", Cl100k),
            ["Hello", " world", ",", " it", "'s", " ", "123", "45", "!"]
        );
        assert_eq!(pieces("a\n  ", Cl100k), ["a", "\n  "]);
        assert_eq!(pieces("a \n b", Cl100k), ["a", " \n", " b"]);
        assert_eq!(pieces("x   y", Cl100k), ["x", "  ", " y"]);
        assert_eq!(
            pieces("HELLOworld don't 你好，世界", O200k),
            ["HELLOworld", " don't", " 你好", "，世界"]
        );
        assert_eq!(pieces("a\n  ", O200k), ["a", "\n", "  "]);
        assert_eq!(pieces("x.\n/y", O200k), ["x", ".\n/", "y"]);
        assert_eq!(
            pieces("'s 'S  12345", Gpt2),
            ["'s", " '", "S", " ", " 12345"]
        );
    }
}
