//! [`StreamMeter`]: output metering and truncation of an OpenAI
//! chat/completions (or legacy completions) SSE stream.
//!
//! The gateway feeds the upstream body chunk by chunk from Pingora's
//! synchronous `response_body_filter` and forwards what the meter appends
//! to `out`.
//!
//! **Counting.** The output tokens of an event are the sum over its choices
//! of `counter.count()` of each text field of the `delta`
//! (`reasoning_content`, `reasoning`, `content`, `refusal`,
//! `tool_calls[].function.name` and `.arguments`, cut in that order) plus
//! the legacy `choices[].text`. Providers stream about one token per delta, so counting
//! each delta on its own gives the billed count (counting the concatenation
//! could merge tokens across deltas and would need the whole text). The cap
//! bounds the total over all choices (`n > 1` shares one budget).
//!
//! **Usage.** A chunk with a non-null `usage` is the provider's report; its
//! `prompt_tokens` and `completion_tokens` are what [`StreamMeter::usage`]
//! returns unless the stream was cut. When the client did not ask for usage
//! (the gateway asked the upstream anyway) a usage chunk without choices is
//! dropped from the client's stream, and a usage object riding on a chunk
//! with choices is removed from it (`"usage": null` is left alone).
//!
//! **Truncation.** When an event would take the total above the cap, the
//! meter keeps the choices of that event that fit, cuts the first text field
//! that crosses at a token boundary (`prefix_within`; a function name is
//! never cut, it is kept whole or dropped), drops all text after it
//! (including later choices of the event) and emits, in this order: the
//! rebuilt chunk (same `id`, `object`, `created`, `model`,
//! `system_fingerprint`; omitted when nothing of the event is kept), one
//! `finish_reason: "length"` chunk per choice index seen that has not
//! finished yet, a usage chunk when the client asked for usage, and
//! `data: [DONE]`. The meter is then [`done`](StreamMeter::done) and ignores
//! further input. The cut happens only when text actually overflows: a
//! stream that ends at exactly the cap is not cut.
//!
//! **Pass-through.** Every event that is not cut or dropped is forwarded byte
//! for byte: comments, `[DONE]`, non-JSON data, unknown shapes, upstream
//! error events (`{"error":…}`) and oversized events (over 1 MiB, see
//! [`super::sse`]; they are not counted). A stream the provider ends
//! normally is forwarded unchanged, its `[DONE]` included; no usage chunk is
//! invented for a provider that sends none.
//!
//! **Cost.** Per event: one pass of the SSE parser, UTF-8 validation of the
//! data, and the in-place scanner of `super::scan` (no allocation, no
//! `serde_json::Value`; the header bytes before `"choices":` are compared
//! with the previous event's instead of parsed). Only the one event that
//! crosses the cap is parsed into a `Value` to be rebuilt. A legacy
//! completions stream (`object: "text_completion"`, `choices[].text`) gets
//! legacy-shaped closing chunks (`"text": ""` instead of `"delta": {}`); all
//! synthesized chunks carry the upstream `object` (default
//! `chat.completion.chunk`).

use serde_json::{json, Value};

use super::scan::{scan_chunk, Scan, ScanCache};
use super::sse::{SseEvent, SseParser};
use super::wire::{Budget, Emptied, Header, Usage};
use crate::tokens::TokenCounter;

/// How a [`StreamMeter`] treats one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MeterOptions {
    /// Max output tokens the client may receive (None = meter only, never cut).
    pub output_cap: Option<u64>,
    /// The client asked for usage (`stream_options.include_usage`). When
    /// false, the gateway asked the upstream for usage anyway: the upstream
    /// usage chunk is dropped from what the client receives (but used).
    pub client_wants_usage: bool,
    /// Prompt tokens as counted by the gateway (used in a synthesized usage
    /// chunk if the provider sends none).
    pub prompt_tokens: u64,
}

/// Token usage of a metered stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamUsage {
    /// Prompt tokens: the provider's when it reported them, else the gateway's.
    pub prompt_tokens: u64,
    /// Output tokens: the provider's report, or (no report, or truncated)
    /// the tokens the client actually received.
    pub completion_tokens: u64,
    /// Usage came from the provider's usage chunk (false once truncated:
    /// the completion count is then the meter's own).
    pub provider_reported: bool,
    /// The meter cut the stream at the cap.
    pub truncated: bool,
}

/// Meters (and caps) the output of one streamed response; see the module
/// docs.
pub struct StreamMeter {
    parser: SseParser,
    core: Core,
}

/// Choice index seen in the stream and whether it finished.
#[derive(Debug, Clone, Copy)]
struct ChoiceState {
    index: u32,
    finished: bool,
}

struct Core {
    counter: &'static dyn TokenCounter,
    opts: MeterOptions,
    /// Output tokens forwarded to the client.
    sent: u64,
    choices: Vec<ChoiceState>,
    provider: Option<Usage>,
    truncated: bool,
    done: bool,
    /// Scratch for the hot path (reused, so metering allocates nothing).
    scan: Scan,
    /// What the scanner keeps from earlier chunks (see `ScanCache`).
    cache: ScanCache,
}

impl StreamMeter {
    /// A meter counting with `counter` under `opts`.
    pub fn new(counter: &'static dyn TokenCounter, opts: MeterOptions) -> Self {
        StreamMeter {
            parser: SseParser::new(),
            core: Core {
                counter,
                opts,
                sent: 0,
                choices: Vec::new(),
                provider: None,
                truncated: false,
                done: false,
                scan: Scan::default(),
                cache: ScanCache::default(),
            },
        }
    }

    /// Feeds upstream bytes; appends what the client must receive to `out`.
    /// After [`done`](Self::done) is true, further input is ignored.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.core.done {
            return;
        }
        let core = &mut self.core;
        self.parser.feed(chunk, |ev| core.on_event(ev, out));
    }

    /// Upstream ended: flushes any complete trailing event (even without its
    /// blank line) into `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.core.done {
            return;
        }
        let core = &mut self.core;
        self.parser.finish(|ev| core.on_event(ev, out));
    }

    /// True once the stream was cut: everything the client gets (incl.
    /// `data: [DONE]`) is already in `out`; the caller closes the upstream.
    pub fn done(&self) -> bool {
        self.core.done
    }

    /// Output tokens forwarded to the client so far (the meter's own count).
    pub fn sent_tokens(&self) -> u64 {
        self.core.sent
    }

    /// Usage so far (final once the stream ended or [`done`](Self::done)).
    pub fn usage(&self) -> StreamUsage {
        let c = &self.core;
        let provider_prompt = c.provider.and_then(|u| u.prompt_tokens);
        let prompt_tokens = provider_prompt.unwrap_or(c.opts.prompt_tokens);
        match c.provider {
            Some(u) if !c.truncated => StreamUsage {
                prompt_tokens,
                completion_tokens: u.completion_tokens.unwrap_or(c.sent),
                provider_reported: true,
                truncated: false,
            },
            _ => StreamUsage {
                prompt_tokens,
                completion_tokens: c.sent,
                provider_reported: false,
                truncated: c.truncated,
            },
        }
    }
}

impl Core {
    fn on_event(&mut self, ev: SseEvent<'_>, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let data = match &ev.data {
            Some(d) if !ev.oversized && d.trim_start().starts_with('{') => d,
            _ => return out.extend_from_slice(ev.raw),
        };
        let mut scan = std::mem::take(&mut self.scan);
        if scan_chunk(data, self.counter, &mut self.cache, &mut scan) {
            self.on_chunk(&ev, data, &scan, out);
        } else {
            out.extend_from_slice(ev.raw);
        }
        self.scan = scan;
    }

    /// A chunk of the expected shape: count, cut, drop or forward it.
    fn on_chunk(&mut self, ev: &SseEvent<'_>, data: &str, scan: &Scan, out: &mut Vec<u8>) {
        if scan.usage.is_some() {
            self.provider = scan.usage;
        }
        if let Some(cap) = self.opts.output_cap {
            if self.sent.saturating_add(scan.tokens) > cap && self.cut(data, cap, out) {
                return;
            }
        }
        self.sent += scan.tokens;
        for &(index, finished) in &scan.choices {
            self.note_choice(index, finished);
        }
        if scan.usage.is_some() && !self.opts.client_wants_usage {
            if !scan.choices.is_empty() {
                strip_usage(data, ev.raw, out);
            }
            return;
        }
        out.extend_from_slice(ev.raw);
    }

    fn note_choice(&mut self, index: u32, finished: bool) {
        match self.choices.iter_mut().find(|c| c.index == index) {
            Some(c) => c.finished |= finished,
            None => self.choices.push(ChoiceState { index, finished }),
        }
    }

    /// Cuts the stream inside the event `data`, which overflows `cap`.
    /// Returns false (nothing written) if, against the count, every text of
    /// the event fits after all.
    ///
    /// The scanner skips what it does not read without validating it, so
    /// the event may fail to parse here: then nothing of it is kept (the
    /// client could not have parsed it either) and the stream ends.
    fn cut(&mut self, data: &str, cap: u64, out: &mut Vec<u8>) -> bool {
        let mut budget = Budget::new(self.counter, cap.saturating_sub(self.sent));
        let mut chunk = match serde_json::from_str::<Value>(data) {
            Ok(v) => v,
            Err(_) => {
                budget.crossed = true;
                Value::Null
            }
        };
        let header = Header::of(&chunk);
        let mut legacy = header.is_text_completion();
        let mut kept = Vec::new();
        let mut seen = Vec::new();
        let choices = match chunk.get_mut("choices").map(Value::take) {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        for (pos, mut choice) in choices.into_iter().enumerate() {
            let index = choice
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|i| u32::try_from(i).ok())
                .unwrap_or(pos as u32);
            legacy |= choice.get("text").is_some() && choice.get("delta").is_none();
            if budget.crossed {
                seen.push((index, false));
                continue;
            }
            let before = budget.kept;
            budget.cut_choice(&mut choice, "delta", Emptied::Remove);
            if !budget.crossed {
                let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
                seen.push((index, finished));
                kept.push(choice);
                continue;
            }
            seen.push((index, false));
            if budget.kept > before {
                if let Some(c) = choice.as_object_mut() {
                    c.remove("logprobs");
                    c.insert("finish_reason".into(), Value::Null);
                }
                kept.push(choice);
            }
        }
        if !budget.crossed {
            return false;
        }
        for (index, finished) in seen {
            self.note_choice(index, finished);
        }
        self.sent += budget.kept;
        self.truncated = true;
        self.done = true;
        if !kept.is_empty() {
            header.write_event(out, &Value::Array(kept), None);
        }
        if self.choices.is_empty() {
            self.note_choice(0, false);
        }
        for c in self.choices.iter().filter(|c| !c.finished) {
            let last = if legacy {
                json!([{"index": c.index, "text": "", "logprobs": null, "finish_reason": "length"}])
            } else {
                json!([{"index": c.index, "delta": {}, "finish_reason": "length"}])
            };
            header.write_event(out, &last, None);
        }
        if self.opts.client_wants_usage {
            let p = self
                .provider
                .and_then(|u| u.prompt_tokens)
                .unwrap_or(self.opts.prompt_tokens);
            let usage = json!({
                "prompt_tokens": p,
                "completion_tokens": self.sent,
                "total_tokens": p.saturating_add(self.sent),
            });
            header.write_event(out, &json!([]), Some(&usage));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        true
    }
}

/// Writes the chunk `data` without its `usage` object (or the event as it
/// came, `raw`, if `data` does not parse as an object after all).
fn strip_usage(data: &str, raw: &[u8], out: &mut Vec<u8>) {
    match serde_json::from_str::<Value>(data) {
        Ok(Value::Object(mut obj)) => {
            obj.remove("usage");
            out.extend_from_slice(b"data: ");
            super::wire::put(out, &Value::Object(obj));
            out.extend_from_slice(b"\n\n");
        }
        _ => out.extend_from_slice(raw),
    }
}

#[cfg(test)]
#[path = "meter_tests.rs"]
mod tests;
