//! Incremental Server-Sent Events parser.
//!
//! [`SseParser`] takes the upstream response body in arbitrary byte chunks
//! and yields complete events through a callback. It follows the
//! WHATWG `text/event-stream` rules:
//!
//! - lines end in `\n`, `\r\n` or `\r` (mixed freely); a chunk may end
//!   anywhere, including between the `\r` and `\n` of a pair or inside a
//!   multi-byte UTF-8 sequence (fields are decoded only once their line is
//!   complete);
//! - `field: value` with at most one space after the colon removed, a line
//!   without a colon is a field with an empty value, `:`-lines are comments;
//! - `data` lines are joined with `\n`; `event`, `id` (ignored when it holds
//!   NUL) and `retry` (ASCII digits only) keep their last value; other fields
//!   are ignored; a leading UTF-8 BOM of the stream is skipped;
//! - a blank line ends an event.
//!
//! Every block of lines up to and including its blank line is yielded,
//! including blocks with no `data` (comments, keep-alives, stray blank
//! lines), each with its exact bytes in [`SseEvent::raw`]: the
//! concatenation of all `raw` slices is exactly the input, so a consumer can
//! forward untouched events byte for byte.
//!
//! A `\r` that is the last byte seen so far is not acted on until the next
//! byte (or [`SseParser::finish`]) shows whether it is a `\r\n` pair, so the
//! events and their `raw` bytes are the same however the input is chunked.
//!
//! **Bounded buffer.** At most [`SseParser::max_event_bytes`] bytes
//! (default [`DEFAULT_MAX_EVENT_BYTES`], 1 MiB) of one event are buffered.
//! An event larger than that is not parsed: it is passed through as one or
//! more pieces flagged [`SseEvent::oversized`] (no fields, `raw` only), the
//! first when the limit is crossed and then one per fed chunk until its blank
//! line. An oversized event that arrives complete in one chunk is yielded
//! whole, also flagged, so whether an event is oversized depends only on its
//! size, never on the chunking. The buffer therefore never holds more than
//! the limit plus one chunk.
//!
//! [`SseParser::finish`] flushes what remains at end of input: an
//! unterminated last line counts as a line and a final event without its
//! blank line is yielded (the spec would discard it; a gateway should not
//! silently drop the provider's last words).

use std::borrow::Cow;

/// Index of the first `\n` or `\r` at or after `from` (`memchr`: SIMD
/// over the long JSON lines of a stream).
fn find_eol(data: &[u8], from: usize) -> Option<usize> {
    memchr::memchr2(b'\n', b'\r', data.get(from..)?).map(|i| from + i)
}

/// Default bound on the bytes of one event ([`SseParser::max_event_bytes`]).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One event (block of lines ended by a blank line) of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The exact input bytes of this event, its blank line included.
    pub raw: &'a [u8],
    /// The `event` field (last one wins), if any.
    pub event: Option<Cow<'a, str>>,
    /// The `data` lines joined with `\n`; `None` when there was no `data`
    /// line (comments only, a stray blank line, an oversized piece).
    pub data: Option<Cow<'a, str>>,
    /// The `id` field (last one wins), if any.
    pub id: Option<Cow<'a, str>>,
    /// The `retry` field when it is all ASCII digits (last one wins).
    pub retry: Option<u64>,
    /// The event is larger than the parser's bound: only `raw` is set and it
    /// may be just one piece of the event (see the module docs).
    pub oversized: bool,
}

impl<'a> SseEvent<'a> {
    /// An oversized event, or one piece of it: bytes only.
    fn piece(raw: &'a [u8]) -> Self {
        SseEvent {
            raw,
            event: None,
            data: None,
            id: None,
            retry: None,
            oversized: true,
        }
    }
}

/// Byte range relative to the start of the current event.
type Span = (usize, usize);

/// Fields of the event being parsed, as spans into the buffered event.
#[derive(Debug, Clone, Default)]
struct Fields {
    event: Option<Span>,
    id: Option<Span>,
    data: Vec<Span>,
    retry: Option<u64>,
}

impl Fields {
    fn clear(&mut self) {
        self.event = None;
        self.id = None;
        self.data.clear();
        self.retry = None;
    }
}

/// Incremental SSE parser; see the module docs for the rules it follows.
#[derive(Debug, Clone)]
pub struct SseParser {
    /// Unconsumed input: starts at the current event's first byte (or, while
    /// skipping an oversized event, holds at most one pending `\r`).
    buf: Vec<u8>,
    /// Offset in `buf` of the first line not parsed yet.
    line: usize,
    /// Offset in `buf` where the search for the end of that line resumes.
    scan: usize,
    fields: Fields,
    /// `Some(at_line_start)` while passing an oversized event through.
    skip: Option<bool>,
    max_event: usize,
    bom_checked: bool,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser bounding events at [`DEFAULT_MAX_EVENT_BYTES`].
    pub fn new() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser bounding events at `max` bytes (at least 1).
    pub fn with_max_event_bytes(max: usize) -> Self {
        SseParser {
            buf: Vec::new(),
            line: 0,
            scan: 0,
            fields: Fields::default(),
            skip: None,
            max_event: max.max(1),
            bom_checked: false,
        }
    }

    /// The bound on the bytes of one event.
    pub fn max_event_bytes(&self) -> usize {
        self.max_event
    }

    /// Bytes currently buffered (an incomplete event).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds the next chunk of input; calls `f` for each event it completes.
    pub fn feed<F: FnMut(SseEvent<'_>)>(&mut self, chunk: &[u8], mut f: F) {
        if chunk.is_empty() {
            return;
        }
        if self.buf.is_empty() {
            // Common case: parse straight from the chunk, keep only the tail.
            let consumed = self.run(chunk, false, &mut f);
            self.buf
                .extend_from_slice(chunk.get(consumed..).unwrap_or(&[]));
        } else {
            let mut buf = std::mem::take(&mut self.buf);
            buf.extend_from_slice(chunk);
            let consumed = self.run(&buf, false, &mut f);
            buf.drain(..consumed.min(buf.len()));
            self.buf = buf;
        }
    }

    /// Ends the input: yields the last event even without its blank line.
    /// The parser is then empty and could take a new stream.
    pub fn finish<F: FnMut(SseEvent<'_>)>(&mut self, mut f: F) {
        let buf = std::mem::take(&mut self.buf);
        self.run(&buf, true, &mut f);
        self.line = 0;
        self.scan = 0;
        self.fields.clear();
        self.skip = None;
        self.bom_checked = false;
    }

    /// Parses `data` (whose first byte is the current event's first byte);
    /// returns how many leading bytes were consumed (yielded).
    fn run<F: FnMut(SseEvent<'_>)>(&mut self, data: &[u8], eof: bool, f: &mut F) -> usize {
        let len = data.len();
        let mut start = 0;
        let mut pos = self.line.min(len);
        let mut scan = self.scan.min(len);
        'outer: loop {
            if let Some(mut at_line_start) = self.skip {
                let mut p = pos;
                loop {
                    match find_eol(data, p) {
                        None => {
                            if len > p {
                                at_line_start = false;
                            }
                            emit_piece(data, start, len, f);
                            self.skip = Some(at_line_start);
                            start = len;
                            pos = len;
                            scan = len;
                            break 'outer;
                        }
                        Some(i) if data[i] == b'\r' && i + 1 == len && !eof => {
                            if i > p {
                                at_line_start = false;
                            }
                            emit_piece(data, start, i, f);
                            self.skip = Some(at_line_start);
                            start = i;
                            pos = i;
                            scan = i;
                            break 'outer;
                        }
                        Some(i) => {
                            let end = eol_end(data, i);
                            if i == p && at_line_start {
                                emit_piece(data, start, end, f);
                                self.skip = None;
                                start = end;
                                pos = end;
                                scan = end;
                                continue 'outer;
                            }
                            at_line_start = true;
                            p = end;
                        }
                    }
                }
            }
            if !self.bom_checked {
                let avail = &data[pos..];
                if avail.len() < BOM.len() && !eof && BOM.starts_with(avail) {
                    break;
                }
                if avail.starts_with(&BOM) {
                    pos += BOM.len();
                    scan = pos;
                }
                self.bom_checked = true;
            }
            match find_eol(data, pos.max(scan)) {
                None => {
                    scan = len;
                    break;
                }
                Some(i) if data[i] == b'\r' && i + 1 == len && !eof => {
                    scan = i;
                    break;
                }
                Some(i) => {
                    let end = eol_end(data, i);
                    if i == pos {
                        self.dispatch(data, start, end, f);
                        start = end;
                    } else {
                        self.parse_line(data, start, pos, i);
                    }
                    pos = end;
                    scan = end;
                }
            }
        }
        if self.skip.is_none() {
            if eof {
                if pos < len {
                    self.parse_line(data, start, pos, len);
                }
                if start < len {
                    self.dispatch(data, start, len, f);
                }
                start = len;
                pos = len;
                scan = len;
            } else if len - start > self.max_event {
                // Too big to buffer: pass what we have on and skip the rest.
                let cut = if data[len - 1] == b'\r' { len - 1 } else { len };
                emit_piece(data, start, cut, f);
                self.skip = Some(pos == cut);
                self.bom_checked = true;
                self.fields.clear();
                start = cut;
                pos = cut;
                scan = cut;
            }
        }
        self.line = pos - start;
        self.scan = scan - start;
        start
    }

    /// Records the field of the line `data[ls..le]` of the event starting at
    /// `data[start]`.
    fn parse_line(&mut self, data: &[u8], start: usize, ls: usize, le: usize) {
        let line = &data[ls..le];
        let (name, vs) = match line.iter().position(|&b| b == b':') {
            Some(0) => return, // comment
            Some(c) => {
                let vs = if line.get(c + 1) == Some(&b' ') {
                    c + 2
                } else {
                    c + 1
                };
                (&line[..c], ls + vs)
            }
            None => (line, le),
        };
        let span = (vs - start, le - start);
        let value = &data[vs..le];
        match name {
            b"data" => self.fields.data.push(span),
            b"event" => self.fields.event = Some(span),
            b"id" if !value.contains(&0) => self.fields.id = Some(span),
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                let n = value.iter().fold(0u64, |n, &d| {
                    n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                self.fields.retry = Some(n);
            }
            _ => {}
        }
    }

    /// Yields the event `data[start..end]` and resets the field state.
    fn dispatch<F: FnMut(SseEvent<'_>)>(
        &mut self,
        data: &[u8],
        start: usize,
        end: usize,
        f: &mut F,
    ) {
        let raw = &data[start..end];
        if raw.len() > self.max_event {
            f(SseEvent::piece(raw));
        } else {
            let text = |s: &Span| utf8(&raw[s.0..s.1]);
            let joined = match self.fields.data.as_slice() {
                [] => None,
                [one] => Some(text(one)),
                many => {
                    let mut s = String::new();
                    for (k, span) in many.iter().enumerate() {
                        if k > 0 {
                            s.push('\n');
                        }
                        s.push_str(&text(span));
                    }
                    Some(Cow::Owned(s))
                }
            };
            f(SseEvent {
                raw,
                event: self.fields.event.as_ref().map(text),
                data: joined,
                id: self.fields.id.as_ref().map(text),
                retry: self.fields.retry,
                oversized: false,
            });
        }
        self.fields.clear();
    }
}

/// Decodes a field value, replacing invalid UTF-8 (the fast validator
/// first: `from_utf8_lossy` is several times slower on valid input).
#[inline]
fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Yields `data[start..end]` as an oversized piece unless it is empty.
fn emit_piece<F: FnMut(SseEvent<'_>)>(data: &[u8], start: usize, end: usize, f: &mut F) {
    if end > start {
        f(SseEvent::piece(&data[start..end]));
    }
}

/// End of the line terminator starting at `i` (a `\r\n` pair is one).
#[inline]
fn eol_end(data: &[u8], i: usize) -> usize {
    if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
        i + 2
    } else {
        i + 1
    }
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;
