//! [`TextStream`]: masking of one text that arrives in pieces (one choice of
//! a streamed answer).
//!
//! Each [`TextStream::push`] appends the piece to the held text and returns
//! the masked text up to the first position whose rest could still begin a
//! match (see `prefix`): for prose that is usually only the last, unfinished
//! word. Matches before that position are final (no later text can change
//! them) and are replaced at once. One character before the held text is
//! kept as context for the look-behind of `\b` and `(?m)^`.
//!
//! **Invariant** (property-tested): however a text is split into pieces,
//! the concatenation of every `push` output and of [`TextStream::finish`]
//! equals [`Masker::mask`] of the whole text.
//!
//! **Memory.** The held text is at most the longest partial match of a rule
//! (for the built-in rules [`Masker::holdback`] + 1 bytes), plus one
//! character of context and the piece being pushed.

use super::Masker;

/// The masking state of one text stream; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct TextStream {
    /// One character of context (already emitted), then the held text.
    buf: String,
    /// Start of the held text in `buf`.
    pos: usize,
}

impl TextStream {
    /// A stream at the start of its text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `text`; returns the masked text that is now final.
    pub fn push(&mut self, masker: &Masker, text: &str) -> String {
        if text.is_empty() {
            return String::new();
        }
        if masker.is_empty() && self.held().is_empty() {
            return text.to_owned();
        }
        self.buf.push_str(text);
        let mut out = String::new();
        let (end, _) = masker.run(&self.buf, self.pos, false, &mut out);
        self.consume(end);
        out
    }

    /// Ends the text: returns the masked rest. The stream is then empty and
    /// could take a new text.
    pub fn finish(&mut self, masker: &Masker) -> String {
        let mut out = String::new();
        if self.pos < self.buf.len() {
            masker.run(&self.buf, self.pos, true, &mut out);
        }
        self.buf.clear();
        self.pos = 0;
        out
    }

    /// The text held back (not returned yet, before masking).
    pub fn held(&self) -> &str {
        self.buf.get(self.pos..).unwrap_or("")
    }

    /// Drops what precedes `end` except the one character of context.
    fn consume(&mut self, end: usize) {
        let keep = self
            .buf
            .get(..end)
            .and_then(|s| s.char_indices().next_back())
            .map_or(0, |(i, _)| i);
        self.buf.drain(..keep);
        self.pos = end - keep;
    }
}
