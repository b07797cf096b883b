//! Token counting: model → encoding map, text and chat-prompt counts the way
//! OpenAI bills them, and the [`TokenCounter`] the stream meter cuts with.

/// Counts and cuts text in one encoding. The stream meter and the
/// non-streaming truncator only need this.
pub trait TokenCounter: Send + Sync {
    /// Tokens in `text`.
    fn count(&self, text: &str) -> usize;
    /// The longest prefix of `text` (cut on a char boundary) whose token
    /// count is at most `max_tokens`: `(byte_len, tokens)`.
    fn prefix_within(&self, text: &str, max_tokens: usize) -> (usize, usize);
}
