//! The meter's hot path: a hand-rolled scanner that reads from one streamed
//! chunk only what metering needs (the text fields of each choice, each
//! choice's `index` and whether it finished, a non-null `usage`) and skips
//! everything else without building anything.
//!
//! On valid JSON it accepts the shapes the borrowed serde structs in the
//! tests (`scan_tests.rs`, the oracle it is checked against) accept, and
//! counts the same: each field is `null`/absent or of the expected type
//! (strings for text, an array of objects for `choices`/`tool_calls`, a
//! non-negative integer for `index` and the usage counts); anything else
//! makes the chunk "not a chunk" (forwarded uncounted). Where it differs, it
//! meters rather than refuses: values it does not look into are skipped
//! leniently (brackets and strings are matched, the rest is not validated),
//! duplicate keys are all read; only an array standing for an object (which
//! serde would read positionally) is refused. Strings without escapes are
//! counted in place, a string with escapes is decoded by `serde_json`
//! first. Nothing recurses on input depth, nothing indexes out of bounds,
//! nothing panics.
//!
//! [`ScanCache`] lets a chunk skip the parsing of bytes it shares with the
//! previous ones (the header, and everything in `choices` around the one
//! delta text).
//!
//! Why not serde: on the OpenAI chunk shape the whole meter took about
//! 8,000 instructions per event with borrowed `#[serde(borrow)]` structs
//! (~770 ns, 1.3 M events/s on the development machine), and takes about
//! 2,300 with this scanner and its cache (~200 ns, 5 M events/s; see
//! `examples/meter_bench.rs`).

use std::borrow::Cow;
use std::sync::OnceLock;

use super::wire::Usage;
use crate::tokens::TokenCounter;

/// What the meter needs from one chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Output tokens of all choices.
    pub tokens: u64,
    /// A non-null `usage` object.
    pub usage: Option<Usage>,
    /// `(index, finished)` of each choice, in order (a missing `index` is
    /// the choice's position).
    pub choices: Vec<(u32, bool)>,
}

/// What the scanner remembers from earlier chunks of the same stream.
///
/// The scanner is a function of the bytes it reads, so input that repeats
/// bytes already seen reaches the same state and can skip their parsing:
/// - `prefix`: the bytes of a chunk up to its `"choices":`. A chunk that
///   starts with the same bytes resumes right after them. Within a stream
///   `id`, `object`, `created`, `model`, `system_fingerprint` are the same
///   in every chunk.
/// - the choices template: for a `choices` array holding exactly one text
///   string, the bytes before and after that string and the choices it
///   yielded. Another array with the same bytes around a string of any
///   content yields the same choices and that string's tokens. Within a
///   stream most chunks differ only in the text of one delta.
///
/// Each shortcut is taken only when the bytes match exactly, and otherwise
/// the chunk is scanned in full, so the results never depend on the cache
/// (the tests check this against the serde oracle).
#[derive(Debug, Clone, Default)]
pub(crate) struct ScanCache {
    prefix: Vec<u8>,
    template: Option<Template>,
    /// Shortcuts taken (prefix, template), for the tests.
    #[cfg(test)]
    hits: (usize, usize),
}

#[derive(Debug, Clone, Default)]
struct Template {
    /// From the `choices` value's first byte to the string's opening quote.
    before: Vec<u8>,
    /// From after the string's closing quote to after the array's `]`.
    after: Vec<u8>,
    choices: Vec<(u32, bool)>,
}

/// Scans `json` into `out` (cleared first, so its buffer is reused). False
/// when `json` is not a chunk of the expected shape.
pub(crate) fn scan_chunk(
    json: &str,
    counter: &dyn TokenCounter,
    cache: &mut ScanCache,
    out: &mut Scan,
) -> bool {
    out.tokens = 0;
    out.usage = None;
    out.choices.clear();
    let mut c = Cursor {
        src: json,
        b: json.as_bytes(),
        i: 0,
        counter,
        texts: 0,
        text_at: (0, 0),
    };
    c.chunk(out, cache).is_some() && c.peek().is_none()
}

/// The `usage` of a complete response body (`{..., "choices": [...],
/// "usage": {...}}`) without reading anything else: `None` when `json` is
/// not an object with a `choices` array; `Some(None)` without a non-null
/// `usage`. Lenient like [`scan_chunk`] about values it skips.
pub(crate) fn scan_usage(json: &str) -> Option<Option<Usage>> {
    let mut c = Cursor {
        src: json,
        b: json.as_bytes(),
        i: 0,
        counter: &NoCount,
        texts: 0,
        text_at: (0, 0),
    };
    c.eat(b'{')?;
    let (mut first, mut choices, mut usage) = (true, false, None);
    while let Some(key) = c.next_key(&mut first)? {
        match key {
            b"choices" => {
                if c.peek()? != b'[' {
                    return None;
                }
                c.skip()?;
                choices = true;
            }
            b"usage" => {
                usage = if c.null()? { None } else { Some(c.usage()?) };
            }
            _ => c.skip()?,
        }
    }
    (choices && c.peek().is_none()).then_some(usage)
}

/// Bytes from the end of a body searched by [`usage_at_end`]: the usage
/// object and what OpenAI writes after it (`service_tier`,
/// `system_fingerprint`) take a few hundred.
const TAIL_SEARCH: usize = 4096;

/// A response's `usage` read from its end, for a body whose last `"usage"`
/// key (OpenAI writes it after `choices`) is a member of the outermost
/// object: `None` when that is not the case (the caller then scans the
/// whole body with [`scan_usage`]).
///
/// Exact on valid JSON without reading the choices: a `"usage"` whose
/// opening quote is not escaped and that is followed by `:` is a key (a
/// quote inside a string is always escaped, and a string followed by `:`
/// is always a key), the last such key is found from the end, its object
/// is read like [`scan_usage`] reads it, and everything after it must be
/// `(, "key": value)* }` and the end of the body: the object holding the
/// key is then closed by the body's last byte, so it is the outermost one.
/// A nested `usage` (inside a later member, or in a body whose own
/// `usage` comes first) fails that check. Unlike [`scan_usage`] this does
/// not check the body before `usage` (UTF-8, a `choices` array there): it
/// reads the usage of an answer, not whether the answer is well formed.
pub(crate) fn usage_at_end(body: &[u8]) -> Option<Usage> {
    static KEY: OnceLock<memchr::memmem::FinderRev<'static>> = OnceLock::new();
    let key = KEY.get_or_init(|| memchr::memmem::FinderRev::new(b"\"usage\""));
    let from = body.len().saturating_sub(TAIL_SEARCH);
    let at = from + key.rfind(body.get(from..)?)?;
    let escapes = body
        .get(..at)?
        .iter()
        .rev()
        .take_while(|&&c| c == b'\\')
        .count();
    if escapes % 2 == 1 {
        return None;
    }
    // The members after `usage` are only skipped: no text is decoded, so
    // the cursor may read the body as bytes (its `src` is not used).
    let mut c = Cursor {
        src: "",
        b: body,
        i: at + b"\"usage\"".len(),
        counter: &NoCount,
        texts: 0,
        text_at: (0, 0),
    };
    c.eat(b':')?;
    if c.null()? {
        return None;
    }
    let usage = c.usage()?;
    loop {
        match c.peek()? {
            b'}' => {
                c.i += 1;
                return c.peek().is_none().then_some(usage);
            }
            b',' => {
                c.i += 1;
                let (s, e, _) = c.raw_str()?;
                c.eat(b':')?;
                // A `choices` seen here must be an array, as `scan_usage`
                // requires (one before `usage` is not looked at).
                if body.get(s..e) == Some(b"choices") && c.peek()? != b'[' {
                    return None;
                }
                c.skip()?;
            }
            _ => return None,
        }
    }
}

/// The counter of a cursor that reads no text ([`scan_usage`]).
struct NoCount;

impl TokenCounter for NoCount {
    fn count_up_to(&self, _text: &str, _limit: usize) -> usize {
        0
    }

    fn count(&self, _text: &str) -> usize {
        0
    }

    fn prefix_within(&self, _text: &str, _max_tokens: usize) -> (usize, usize) {
        (0, 0)
    }
}

/// Every key the scanner looks at (for decoding keys written with escapes).
const KEYS: [&[u8]; 16] = [
    b"choices",
    b"usage",
    b"index",
    b"delta",
    b"text",
    b"finish_reason",
    b"reasoning_content",
    b"reasoning",
    b"content",
    b"refusal",
    b"tool_calls",
    b"function",
    b"name",
    b"arguments",
    b"prompt_tokens",
    b"completion_tokens",
];

struct Cursor<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    counter: &'a dyn TokenCounter,
    /// Text strings read so far, and where the last one's quotes are.
    texts: usize,
    text_at: (usize, usize),
}

impl<'a> Cursor<'a> {
    /// Next non-whitespace byte (not consumed).
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(c);
            }
            self.i += 1;
        }
        None
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// `null` is next: consumes it and returns true; false for anything
    /// else (not consumed).
    #[inline]
    fn null(&mut self) -> Option<bool> {
        if self.peek()? != b'n' {
            return Some(false);
        }
        if self.b.get(self.i..self.i + 4)? == b"null" {
            self.i += 4;
            Some(true)
        } else {
            None
        }
    }

    /// A string: `(start, end, has_escapes)` of its contents.
    #[inline]
    fn raw_str(&mut self) -> Option<(usize, usize, bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        let mut p = start;
        loop {
            let q = p + memchr::memchr2(b'"', b'\\', self.b.get(p..)?)?;
            if self.b.get(q) == Some(&b'"') {
                self.i = q + 1;
                return Some((start, q, escaped));
            }
            escaped = true;
            p = q + 2;
        }
    }

    /// A string, decoded.
    #[inline]
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let (s, e, escaped) = self.raw_str()?;
        let src: &'a str = self.src;
        if escaped {
            serde_json::from_str::<String>(src.get(s - 1..e + 1)?)
                .ok()
                .map(Cow::Owned)
        } else {
            src.get(s..e).map(Cow::Borrowed)
        }
    }

    /// A text field: `null` (0) or a string (its token count).
    #[inline]
    fn text(&mut self) -> Option<u64> {
        if self.null()? {
            return Some(0);
        }
        let open = self.i;
        let s = self.string()?;
        self.texts += 1;
        self.text_at = (open, self.i);
        Some(self.counter.count(&s) as u64)
    }

    /// A non-negative JSON integer that fits in `u64`.
    fn uint(&mut self) -> Option<u64> {
        self.peek()?;
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(&d) = self.b.get(self.i) {
            if !d.is_ascii_digit() {
                break;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        let len = self.i - start;
        let leading_zero = len > 1 && self.b.get(start) == Some(&b'0');
        if len == 0 || leading_zero || matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(n)
    }

    /// Skips any value.
    fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.raw_str().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match *self.b.get(self.i)? {
                        b'"' => {
                            self.raw_str()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            b',' | b'}' | b']' | b':' => None,
            _ => {
                while let Some(&c) = self.b.get(self.i) {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.i += 1;
                }
                Some(())
            }
        }
    }

    /// The next key of an object whose `{` was eaten (`first` is true until
    /// the first key); `Some(None)` at its `}`.
    #[inline]
    fn next_key(&mut self, first: &mut bool) -> Option<Option<&'a [u8]>> {
        match self.peek()? {
            b'}' => {
                self.i += 1;
                return Some(None);
            }
            b',' if !*first => self.i += 1,
            _ if *first => {}
            _ => return None,
        }
        *first = false;
        let (s, e, escaped) = self.raw_str()?;
        if escaped {
            return self.escaped_key(s, e);
        }
        self.eat(b':')?;
        let b: &'a [u8] = self.b;
        Some(Some(b.get(s..e)?))
    }

    /// A key with escapes (contents `s..e`): decoded, it is one of [`KEYS`]
    /// or a key that matches nothing (`""`).
    #[cold]
    fn escaped_key(&mut self, s: usize, e: usize) -> Option<Option<&'a [u8]>> {
        let src: &'a str = self.src;
        let key = serde_json::from_str::<String>(src.get(s - 1..e + 1)?).ok()?;
        let known = KEYS.iter().find(|k| **k == key.as_bytes());
        self.eat(b':')?;
        Some(Some(known.copied().unwrap_or(b"")))
    }

    /// Whether another element of an array whose `[` was eaten follows.
    #[inline]
    fn next_elem(&mut self, first: &mut bool) -> Option<bool> {
        match self.peek()? {
            b']' => {
                self.i += 1;
                Some(false)
            }
            b',' if !*first => {
                self.i += 1;
                Some(true)
            }
            _ if *first => {
                *first = false;
                Some(true)
            }
            _ => None,
        }
    }

    fn chunk(&mut self, out: &mut Scan, cache: &mut ScanCache) -> Option<()> {
        let mut first = true;
        let mut recorded = false;
        if !cache.prefix.is_empty() && self.b.starts_with(&cache.prefix) {
            // Same state as after the cached chunk's `"choices":`.
            self.i = cache.prefix.len();
            #[cfg(test)]
            {
                cache.hits.0 += 1;
            }
            first = false;
            recorded = true;
            if !self.null()? {
                self.cached_choices(out, cache)?;
            }
        } else {
            self.eat(b'{')?;
        }
        while let Some(key) = self.next_key(&mut first)? {
            match key {
                b"choices" => {
                    if !recorded && out.usage.is_none() {
                        cache.prefix.clear();
                        cache.prefix.extend_from_slice(self.b.get(..self.i)?);
                    }
                    recorded = true;
                    if !self.null()? {
                        self.cached_choices(out, cache)?;
                    }
                }
                b"usage" => {
                    if !self.null()? {
                        out.usage = Some(self.usage()?);
                    }
                }
                _ => self.skip()?,
            }
        }
        Some(())
    }

    /// The `choices` array, through the template when its bytes match;
    /// records a new template from an array with exactly one text string.
    fn cached_choices(&mut self, out: &mut Scan, cache: &mut ScanCache) -> Option<()> {
        self.peek()?;
        let at = self.i;
        if let Some(t) = cache.template.as_ref() {
            if let Some(tokens) = self.apply(t) {
                out.tokens += tokens;
                out.choices.extend_from_slice(&t.choices);
                #[cfg(test)]
                {
                    cache.hits.1 += 1;
                }
                return Some(());
            }
            self.i = at;
        }
        let (texts, pushed) = (self.texts, out.choices.len());
        self.choices(out)?;
        if self.texts == texts + 1 {
            let (open, close) = self.text_at;
            let t = cache.template.get_or_insert_with(Template::default);
            t.before.clear();
            t.before.extend_from_slice(self.b.get(at..open)?);
            t.after.clear();
            t.after.extend_from_slice(self.b.get(close..self.i)?);
            t.choices.clear();
            t.choices.extend_from_slice(out.choices.get(pushed..)?);
        }
        Some(())
    }

    /// Reads `before`, a string, `after`; the string's tokens.
    #[inline]
    fn apply(&mut self, t: &Template) -> Option<u64> {
        let rest = self.b.get(self.i..)?;
        if !rest.starts_with(&t.before) {
            return None;
        }
        self.i += t.before.len();
        let s = self.string()?;
        if !self.b.get(self.i..)?.starts_with(&t.after) {
            return None;
        }
        self.i += t.after.len();
        Some(self.counter.count(&s) as u64)
    }

    fn choices(&mut self, out: &mut Scan) -> Option<()> {
        self.eat(b'[')?;
        let mut first = true;
        let mut pos = 0u32;
        while self.next_elem(&mut first)? {
            self.eat(b'{')?;
            let mut index = None;
            let mut finished = false;
            let mut first_key = true;
            while let Some(key) = self.next_key(&mut first_key)? {
                match key {
                    b"index" => {
                        if !self.null()? {
                            index = Some(u32::try_from(self.uint()?).ok()?);
                        }
                    }
                    b"delta" => {
                        if !self.null()? {
                            self.delta(out)?;
                        }
                    }
                    b"text" => out.tokens += self.text()?,
                    b"finish_reason" => {
                        if !self.null()? {
                            self.skip()?;
                            finished = true;
                        }
                    }
                    _ => self.skip()?,
                }
            }
            out.choices.push((index.unwrap_or(pos), finished));
            pos = pos.saturating_add(1);
        }
        Some(())
    }

    fn delta(&mut self, out: &mut Scan) -> Option<()> {
        self.eat(b'{')?;
        let mut first = true;
        while let Some(key) = self.next_key(&mut first)? {
            match key {
                b"reasoning_content" | b"reasoning" | b"content" | b"refusal" => {
                    out.tokens += self.text()?;
                }
                b"tool_calls" => {
                    if !self.null()? {
                        self.tool_calls(out)?;
                    }
                }
                _ => self.skip()?,
            }
        }
        Some(())
    }

    fn tool_calls(&mut self, out: &mut Scan) -> Option<()> {
        self.eat(b'[')?;
        let mut first = true;
        while self.next_elem(&mut first)? {
            self.eat(b'{')?;
            let mut first_key = true;
            while let Some(key) = self.next_key(&mut first_key)? {
                if key != b"function" {
                    self.skip()?;
                } else if !self.null()? {
                    self.function(out)?;
                }
            }
        }
        Some(())
    }

    fn function(&mut self, out: &mut Scan) -> Option<()> {
        self.eat(b'{')?;
        let mut first = true;
        while let Some(key) = self.next_key(&mut first)? {
            match key {
                b"name" | b"arguments" => out.tokens += self.text()?,
                _ => self.skip()?,
            }
        }
        Some(())
    }

    fn usage(&mut self) -> Option<Usage> {
        self.eat(b'{')?;
        let mut u = Usage::default();
        let mut first = true;
        while let Some(key) = self.next_key(&mut first)? {
            match key {
                b"prompt_tokens" => {
                    u.prompt_tokens = if self.null()? {
                        None
                    } else {
                        Some(self.uint()?)
                    };
                }
                b"completion_tokens" => {
                    u.completion_tokens = if self.null()? {
                        None
                    } else {
                        Some(self.uint()?)
                    };
                }
                _ => self.skip()?,
            }
        }
        Some(u)
    }
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
