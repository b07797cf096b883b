//! The answer of a catalog attempt as an OpenAI client gets it: Anthropic
//! JSON and SSE translated to OpenAI's (`sluice_filters::translate`),
//! OpenAI-format answers passed through with `model` set to the public
//! name the client asked for (not the deployment's) while their usage is
//! read, and a
//! final upstream error rewritten into the gateway's error shape
//! ([`crate::error::upstream_error_body`]; for an external-channel client
//! without the provider's words, [`crate::error::external_upstream_error_body`]). Runs in `response_filter` /
//! `response_body_filter` of the session that made the attempt (the direct
//! session, or the subrequest of a stream, so the parent's meter sees
//! OpenAI SSE).

use crate::config::ProviderKind;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use serde_json::Value;
use sluice_filters::stream::SseParser;
use sluice_filters::translate::{anthropic_response_to_openai, AnthropicToOpenAiStream};

/// Largest body buffered for translation or usage; larger bodies pass as is.
const MAX_BUFFER: usize = 8 * 1024 * 1024;

enum Mode {
    /// OpenAI JSON: buffered, `model` renamed, `usage` read.
    OpenAiJson(Vec<u8>),
    /// OpenAI SSE: event by event, `model` renamed, `usage` read.
    OpenAiSse(Box<SseParser>),
    AnthropicJson(Vec<u8>),
    AnthropicSse(Box<AnthropicToOpenAiStream>),
    /// A final error: buffered and rewritten.
    Error(Vec<u8>),
    Off,
}

/// Adapts one attempt's response.
pub struct ResponseAdapter {
    mode: Mode,
    status: u16,
    public_model: String,
    trace_id: String,
    usage: Option<(u64, u64)>,
    /// An external-channel client: a provider's error loses its details.
    external: bool,
}

impl ResponseAdapter {
    /// For an answer with `status` from `provider`; `stream` and
    /// `include_usage` come from the request.
    pub fn new(
        provider: ProviderKind,
        status: u16,
        stream: bool,
        include_usage: bool,
        public_model: &str,
        trace_id: &str,
        external: bool,
    ) -> ResponseAdapter {
        let anthropic = provider == ProviderKind::Anthropic;
        let mode = match (status, anthropic, stream) {
            (200..=299, true, true) => Mode::AnthropicSse(Box::new(
                AnthropicToOpenAiStream::new(public_model, include_usage).with_created(now()),
            )),
            (200..=299, true, false) => Mode::AnthropicJson(Vec::new()),
            (200..=299, false, true) => Mode::OpenAiSse(Box::new(SseParser::new())),
            (200..=299, false, false) => Mode::OpenAiJson(Vec::new()),
            (400..=599, _, _) => Mode::Error(Vec::new()),
            _ => Mode::Off,
        };
        ResponseAdapter {
            mode,
            status,
            public_model: public_model.to_string(),
            trace_id: trace_id.to_string(),
            usage: None,
            external,
        }
    }

    /// The header: a body that will change loses its length.
    pub fn on_header(&mut self, header: &mut ResponseHeader) -> pingora::Result<()> {
        if !matches!(self.mode, Mode::Off) {
            header.remove_header("content-length");
            header.insert_header("transfer-encoding", "chunked")?;
        }
        if matches!(self.mode, Mode::Error(_) | Mode::AnthropicJson(_)) {
            header.insert_header("content-type", "application/json")?;
        }
        if let Mode::Error(_) = self.mode {
            let status = crate::error::upstream_client_status(self.status);
            header.set_status(status)?;
        }
        Ok(())
    }

    /// A body chunk (`None` at a bare end): replaced with what the client gets.
    pub fn on_body(&mut self, body: &mut Option<Bytes>, end: bool) {
        match &mut self.mode {
            Mode::Off => {}
            Mode::OpenAiJson(buf) => {
                if let Some(b) = body.take() {
                    buf.extend_from_slice(&b);
                }
                if buf.len() > MAX_BUFFER {
                    // Too large to rewrite: what is held goes out as is,
                    // and so does the rest.
                    *body = Some(Bytes::from(std::mem::take(buf)));
                    self.mode = Mode::Off;
                } else if end {
                    let whole = std::mem::take(buf);
                    let out = match serde_json::from_slice::<Value>(&whole) {
                        Ok(mut v) => {
                            self.usage = openai_usage(&v);
                            match rename_model(&mut v, &self.public_model) {
                                true => v.to_string().into_bytes(),
                                false => whole,
                            }
                        }
                        Err(_) => whole,
                    };
                    *body = Some(Bytes::from(out));
                }
            }
            Mode::OpenAiSse(parser) => {
                let usage = &mut self.usage;
                let public = self.public_model.as_str();
                let mut out = Vec::new();
                let mut on_event = |ev: sluice_filters::stream::SseEvent<'_>| {
                    let json = ev
                        .data
                        .as_deref()
                        .filter(|d| d.starts_with('{'))
                        .and_then(|d| serde_json::from_str::<Value>(d).ok());
                    let Some(mut v) = json else {
                        out.extend_from_slice(ev.raw);
                        return;
                    };
                    if let Some(u) = openai_usage(&v) {
                        *usage = Some(u);
                    }
                    if rename_model(&mut v, public) {
                        out.extend_from_slice(b"data: ");
                        out.extend_from_slice(v.to_string().as_bytes());
                        out.extend_from_slice(b"\n\n");
                    } else {
                        out.extend_from_slice(ev.raw);
                    }
                };
                if let Some(b) = body.as_deref() {
                    parser.feed(b, &mut on_event);
                }
                if end {
                    parser.finish(&mut on_event);
                }
                *body = (!out.is_empty()).then(|| Bytes::from(out));
            }
            Mode::AnthropicSse(t) => {
                let mut out = Vec::new();
                if let Some(b) = body.as_deref() {
                    t.feed(b, &mut out);
                }
                if end {
                    t.finish(&mut out);
                }
                self.usage = t.usage();
                *body = (!out.is_empty()).then(|| Bytes::from(out));
            }
            Mode::AnthropicJson(buf) | Mode::Error(buf) => {
                if let Some(b) = body.take() {
                    if buf.len() + b.len() <= MAX_BUFFER {
                        buf.extend_from_slice(&b);
                    }
                }
                if end {
                    let whole = std::mem::take(buf);
                    *body = Some(Bytes::from(self.finish_buffered(&whole)));
                }
            }
        }
    }

    fn finish_buffered(&mut self, whole: &[u8]) -> Vec<u8> {
        if let Mode::Error(_) = self.mode {
            return self.error_body(self.status, whole);
        }
        let parsed = serde_json::from_slice::<Value>(whole)
            .ok()
            .and_then(|v| anthropic_response_to_openai(&v, &self.public_model).ok());
        match parsed {
            Some(v) => {
                self.usage = openai_usage(&v);
                v.to_string().into_bytes()
            }
            // An answer the translator cannot read: a gateway error body
            // instead of bytes an OpenAI client could not parse.
            None => self.error_body(502, whole),
        }
    }

    /// A provider's error in the gateway's shape (without its details for
    /// an external client).
    fn error_body(&self, status: u16, whole: &[u8]) -> Vec<u8> {
        if self.external {
            crate::error::external_upstream_error_body(status, &self.trace_id)
        } else {
            crate::error::upstream_error_body(status, whole, &self.trace_id)
        }
    }

    /// `(prompt, completion)` tokens, once the answer reported them.
    pub fn usage(&self) -> Option<(u64, u64)> {
        self.usage
    }
}

/// Sets an answer's `model` to `public` when it names another; returns
/// whether it changed.
fn rename_model(v: &mut Value, public: &str) -> bool {
    match v.get_mut("model") {
        Some(Value::String(m)) if m != public => {
            *m = public.to_string();
            true
        }
        _ => false,
    }
}

/// `usage.prompt_tokens` / `completion_tokens` of an OpenAI body or chunk.
fn openai_usage(v: &Value) -> Option<(u64, u64)> {
    let u = v.get("usage")?;
    let prompt = u.get("prompt_tokens")?.as_u64()?;
    let completion = u
        .get("completion_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Some((prompt, completion))
}

fn now() -> u64 {
    crate::clock::unix_secs()
}
