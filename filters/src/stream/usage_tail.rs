//! The provider-reported `usage` of a response nobody meters: the last
//! bytes of the body are kept ([`UsageTail::feed`]) and, at the end, the
//! last `"usage": {...}` object in them is read ([`UsageTail::usage`]).
//! OpenAI puts `usage` at the end of a JSON answer and in the last chunk
//! of a stream (before `data: [DONE]`), so a short tail holds it without
//! buffering or parsing the answer. Anthropic's `input_tokens` /
//! `output_tokens` names are read too. Used for token metrics of requests
//! no token rule meters; never for limits (those count themselves).

/// Bytes of the body kept: the usage object with every detail field is
/// about 300 bytes; the rest of a final chunk and `[DONE]` fit as well.
pub const TAIL_BYTES: usize = 2048;

/// The last [`TAIL_BYTES`] of a body.
#[derive(Debug, Default, Clone)]
pub struct UsageTail {
    buf: Vec<u8>,
}

impl UsageTail {
    pub fn new() -> Self {
        UsageTail {
            buf: Vec::with_capacity(TAIL_BYTES),
        }
    }

    /// Appends a body chunk, keeping only the last [`TAIL_BYTES`].
    pub fn feed(&mut self, chunk: &[u8]) {
        if chunk.len() >= TAIL_BYTES {
            self.buf.clear();
            self.buf
                .extend_from_slice(&chunk[chunk.len() - TAIL_BYTES..]);
            return;
        }
        let excess = (self.buf.len() + chunk.len()).saturating_sub(TAIL_BYTES);
        if excess > 0 {
            self.buf.drain(..excess);
        }
        self.buf.extend_from_slice(chunk);
    }

    /// `(prompt, completion)` of the last complete `usage` object in the
    /// tail; `None` when there is none (or it is cut or malformed).
    pub fn usage(&self) -> Option<(u64, u64)> {
        last_usage(&self.buf)
    }

    /// Ends the body with its last chunk (if any) and reads the usage; a
    /// body that came in one chunk is read where it is, without a copy.
    pub fn finish(&mut self, last: Option<&[u8]>) -> Option<(u64, u64)> {
        match last {
            Some(chunk) if self.buf.is_empty() => {
                last_usage(&chunk[chunk.len().saturating_sub(TAIL_BYTES)..])
            }
            Some(chunk) => {
                self.feed(chunk);
                self.usage()
            }
            None => self.usage(),
        }
    }
}

/// The last `"usage"` key followed by a complete object with token counts.
fn last_usage(buf: &[u8]) -> Option<(u64, u64)> {
    const KEY: &[u8] = b"\"usage\"";
    let mut end = buf.len();
    while let Some(at) = find_last(&buf[..end], KEY) {
        end = at;
        // A key inside a JSON string would have its quotes escaped.
        if at > 0 && buf[at - 1] == b'\\' {
            continue;
        }
        if let Some(u) = object_after(&buf[at + KEY.len()..]).and_then(read_counts) {
            return Some(u);
        }
    }
    None
}

/// Searches backwards (the usage sits near the end, so this stops early).
fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = hay.len().checked_sub(needle.len())?;
    loop {
        if hay[i] == first && &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        i = i.checked_sub(1)?;
    }
}

/// The `{...}` after `: ` (whitespace allowed), when it closes in `rest`.
fn object_after(rest: &[u8]) -> Option<&[u8]> {
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < rest.len() && rest[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if rest.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    skip_ws(&mut i);
    if rest.get(i) != Some(&b'{') {
        return None;
    }
    let start = i;
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    while i < rest.len() {
        let b = rest[i];
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(&rest[start..=i]);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// The counts in a usage object, read without a JSON parser: the first
/// `"key": <digits>` of each name (the detail objects nested in OpenAI's
/// usage use other key names).
fn read_counts(object: &[u8]) -> Option<(u64, u64)> {
    let get = |a: &[u8], b: &[u8]| number_of(object, a).or_else(|| number_of(object, b));
    let prompt = get(b"\"prompt_tokens\"", b"\"input_tokens\"");
    let completion = get(b"\"completion_tokens\"", b"\"output_tokens\"");
    match (prompt, completion) {
        (None, None) => None,
        (p, c) => Some((p.unwrap_or(0), c.unwrap_or(0))),
    }
}

fn number_of(object: &[u8], key: &[u8]) -> Option<u64> {
    // Keys start with a quote: compare only at quotes.
    let at = (0..object.len().saturating_sub(key.len() - 1))
        .find(|&i| object[i] == b'"' && object[i..].starts_with(key))?;
    let rest = &object[at + key.len()..];
    let mut i = 0;
    while rest.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    if rest.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    while rest.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    let mut n: u64 = 0;
    let start = i;
    while let Some(d) = rest.get(i).filter(|b| b.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        i += 1;
    }
    (i > start).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_of(chunks: &[&str]) -> UsageTail {
        let mut t = UsageTail::new();
        for c in chunks {
            t.feed(c.as_bytes());
        }
        t
    }

    #[test]
    fn json_answer() {
        let body = r#"{"id":"x","choices":[{"message":{"content":"the \"usage\": {\"prompt_tokens\": 99}"}}],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46,"completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":"fp"}"#;
        assert_eq!(tail_of(&[body]).usage(), Some((12, 34)));
        // Split anywhere, fed in pieces.
        for cut in 0..body.len() {
            assert_eq!(
                tail_of(&[&body[..cut], &body[cut..]]).usage(),
                Some((12, 34))
            );
        }
    }

    #[test]
    fn stream_usage_chunk_before_done() {
        let mut chunks: Vec<String> = (0..500)
            .map(|i| format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"t{i}\"}}}}]}}\n\n"))
            .collect();
        chunks.push(
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":500}}\n\n"
                .into(),
        );
        chunks.push("data: [DONE]\n\n".into());
        let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
        assert_eq!(tail_of(&refs).usage(), Some((7, 500)));
    }

    #[test]
    fn anthropic_names_and_absent_usage() {
        let t = tail_of(&["event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n"]);
        assert_eq!(t.usage(), Some((0, 15)));
        assert_eq!(tail_of(&["{\"choices\":[]}"]).usage(), None);
        assert_eq!(tail_of(&["{\"usage\":null}"]).usage(), None);
        assert_eq!(tail_of(&["{\"usage\":{\"prompt_tokens\":1"]).usage(), None);
        assert_eq!(tail_of(&[]).usage(), None);
    }

    #[test]
    fn finish_reads_a_single_chunk_in_place() {
        let body = br#"{"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":9}}"#;
        assert_eq!(UsageTail::new().finish(Some(body)), Some((2, 9)));
        let mut t = tail_of(&["{\"choices\":[],\"usage\":{\"prompt_"]);
        assert_eq!(
            t.finish(Some(b"tokens\":4,\"completion_tokens\":5}}")),
            Some((4, 5))
        );
        let mut t = tail_of(&["{\"usage\":{\"prompt_tokens\":1}}"]);
        assert_eq!(t.finish(None), Some((1, 0)));
    }

    #[test]
    fn a_long_body_keeps_only_its_tail() {
        let big = "x".repeat(10 * TAIL_BYTES);
        let t = tail_of(&[
            "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}",
            &big,
        ]);
        assert_eq!(t.usage(), None);
        assert!(t.buf.len() <= TAIL_BYTES);
        let t = tail_of(&[
            &big,
            "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}",
        ]);
        assert_eq!(t.usage(), Some((3, 4)));
    }
}
