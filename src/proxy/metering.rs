//! Metering the response of a request under a token rule: streams through
//! `sluice_filters::stream::StreamMeter` (count per delta, cut cleanly at
//! the output cap), JSON bodies buffered and checked whole
//! (`enforce_json`). Called from `response_filter`/`response_body_filter`
//! on the direct path and from the subrequest pipe's task filter
//! (`handoff.rs`) for streams; both feed the same [`ResponseMeter`].

use super::limits::Granted;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::Result;
use sluice_filters::stream::{enforce_json, enforce_json_sized, MeterOptions, StreamMeter};
use sluice_filters::tokens::TokenCounter;

/// Largest non-streaming body buffered for checking; a larger one passes
/// through unchecked and is settled at its reservation.
const MAX_JSON_BYTES: usize = 32 * 1024 * 1024;

enum Mode {
    /// SSE, metered event by event.
    Stream(Box<StreamMeter>),
    /// A JSON body, buffered until its end.
    Json(Vec<u8>),
    /// Not metered (error status, body too large): passed through.
    Off,
}

/// The response side of a metered request.
pub struct ResponseMeter {
    mode: Mode,
    cap: Option<u64>,
    prompt_tokens: u64,
    counter: &'static dyn TokenCounter,
    /// A 2xx header was seen.
    answered: bool,
    /// (prompt, completion) once known.
    usage: Option<(u64, u64)>,
    truncated: bool,
    /// The upstream body was not fully checked (too large, not JSON).
    unchecked: bool,
    /// The body's end was seen; later calls are no-ops.
    ended: bool,
    /// The upstream's `content-length` went to the client: a rewritten
    /// JSON body must keep that length.
    sized: bool,
}

impl ResponseMeter {
    /// A meter for a request admitted with `granted`; `stream` and
    /// `client_wants_usage` come from the request body.
    pub fn new(granted: &Granted, stream: bool, client_wants_usage: bool) -> ResponseMeter {
        let mode = if stream {
            Mode::Stream(Box::new(StreamMeter::new(
                granted.counter,
                MeterOptions {
                    output_cap: granted.output_cap,
                    client_wants_usage,
                    prompt_tokens: granted.prompt_tokens,
                },
            )))
        } else {
            Mode::Json(Vec::new())
        };
        ResponseMeter {
            mode,
            cap: granted.output_cap,
            prompt_tokens: granted.prompt_tokens,
            counter: granted.counter,
            answered: false,
            usage: None,
            truncated: false,
            unchecked: false,
            ended: false,
            sized: false,
        }
    }

    /// The response header: only 2xx answers are metered. A stream (or a
    /// JSON body of unknown length) may change length: it loses its
    /// `content-length` and goes chunked. A JSON body with a
    /// `content-length` keeps it, and a rewritten body is padded to it
    /// ([`enforce_json_sized`]): Pingora 0.9.1 flushes a header without
    /// `content-length` on its own ("could be real time",
    /// `prepare_response_header` in `pingora-core`'s v1 server) and frames
    /// every chunked write and the last chunk separately, which made a
    /// metered answer three `sendto`s instead of one.
    pub fn on_header(&mut self, header: &mut ResponseHeader) -> Result<()> {
        if !header.status.is_success() {
            self.mode = Mode::Off;
            return Ok(());
        }
        self.answered = true;
        if matches!(self.mode, Mode::Json(_))
            && header.headers.contains_key(http::header::CONTENT_LENGTH)
        {
            self.sized = true;
            return Ok(());
        }
        header.remove_header("content-length");
        header.insert_header("transfer-encoding", "chunked")?;
        Ok(())
    }

    /// A body chunk (`None` at a bare end): replaces `body` with what the
    /// client gets.
    pub fn on_body(&mut self, body: &mut Option<Bytes>, end: bool) {
        if self.ended {
            return;
        }
        self.ended = end;
        match &mut self.mode {
            Mode::Off => {}
            Mode::Stream(meter) => {
                let mut out = Vec::new();
                if !meter.done() {
                    if let Some(chunk) = body.as_deref() {
                        meter.feed(chunk, &mut out);
                    }
                    if end && !meter.done() {
                        meter.finish(&mut out);
                    }
                }
                let u = meter.usage();
                self.usage = Some((u.prompt_tokens, u.completion_tokens));
                self.truncated = u.truncated;
                *body = (!out.is_empty()).then(|| Bytes::from(out));
            }
            Mode::Json(buf) if end && buf.is_empty() => {
                // The whole body in one piece (the usual case for a small
                // answer): checked in place, passed on without a copy.
                let whole = body.take().unwrap_or_default();
                *body = Some(self.check_json(whole));
            }
            Mode::Json(buf) => {
                if let Some(chunk) = body.take() {
                    if buf.len() + chunk.len() > MAX_JSON_BYTES {
                        // Give up checking: release what was held back.
                        let mut all = std::mem::take(buf);
                        all.extend_from_slice(&chunk);
                        self.mode = Mode::Off;
                        self.unchecked = true;
                        *body = Some(Bytes::from(all));
                        return;
                    }
                    buf.extend_from_slice(&chunk);
                }
                if end {
                    let whole = Bytes::from(std::mem::take(buf));
                    *body = Some(self.check_json(whole));
                }
            }
        }
    }

    /// Checks a complete JSON body; returns what the client gets.
    fn check_json(&mut self, whole: Bytes) -> Bytes {
        let enforce = if self.sized {
            enforce_json_sized
        } else {
            enforce_json
        };
        let outcome = enforce(&whole, self.counter, self.cap, self.prompt_tokens);
        self.usage = outcome.usage;
        self.unchecked = outcome.usage.is_none();
        self.truncated = outcome.truncated;
        outcome.rewritten.map_or(whole, Bytes::from)
    }

    /// The stream was cut: the client has its complete response; stop
    /// reading the upstream.
    pub fn done(&self) -> bool {
        matches!(&self.mode, Mode::Stream(m) if m.done())
    }

    /// (prompt, completion) tokens to settle with and whether the output was
    /// cut. `None` when the body could not be checked: settle at the
    /// reservation.
    pub fn usage(&self) -> Option<(u64, u64, bool)> {
        if !self.answered {
            // No answer (error status, no response): nothing was generated.
            return Some((0, 0, false));
        }
        if self.unchecked {
            return None;
        }
        Some(
            self.usage
                .map_or((self.prompt_tokens, 0, self.truncated), |(p, c)| {
                    (p, c, self.truncated)
                }),
        )
    }
}
