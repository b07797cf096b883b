//! Answers in the client's wire format when it is not OpenAI's. A request
//! to Anthropic's `POST /v1/messages` naming a catalog model is admitted as
//! the equivalent OpenAI chat request (translated in admission, so limits,
//! routing and every provider adapter see one format), and its answer —
//! OpenAI's format whatever the deployment (`providers::response`) — is
//! translated back here: JSON with `openai_response_to_anthropic`, SSE with
//! `OpenAiToAnthropicStream` (the whole `message_start … message_stop`
//! sequence), errors into Anthropic's `{"type":"error","error":{…}}`. It runs
//! in the session that writes to the client (the direct session's
//! `response_filter` / `response_body_filter`, or the parent's pipe in
//! `handoff.rs`), after the meter, so token caps still cut the OpenAI stream
//! and the cut shows as `stop_reason: "max_tokens"`.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use serde_json::Value;
use sluice_filters::translate::{
    openai_error_to_anthropic, openai_response_to_anthropic, OpenAiToAnthropicStream,
};

/// Largest answer buffered for JSON translation; a larger one is answered
/// with an Anthropic error instead of an unparseable body.
const MAX_JSON: usize = 16 * 1024 * 1024;

pub use crate::decision::ClientFormat;

enum Mode {
    Sse(Box<OpenAiToAnthropicStream>),
    Json(Vec<u8>),
    Error(Vec<u8>),
}

/// Translates one answer for the client.
pub struct ToClient {
    mode: Mode,
    model: String,
}

impl ToClient {
    /// Decides from the answer's header (already adapted to OpenAI's
    /// format) and fixes it: the body changes, so no `content-length`.
    pub fn on_header(format: &ClientFormat, header: &mut ResponseHeader) -> pingora::Result<Self> {
        let ClientFormat::Anthropic { model } = format;
        let sse = header
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let mode = if !header.status.is_success() {
            Mode::Error(Vec::new())
        } else if sse {
            Mode::Sse(Box::new(OpenAiToAnthropicStream::new(model)))
        } else {
            Mode::Json(Vec::new())
        };
        header.remove_header(&http::header::CONTENT_LENGTH);
        header.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
        if !sse {
            header.insert_header(http::header::CONTENT_TYPE, "application/json")?;
        }
        Ok(ToClient {
            mode,
            model: model.clone(),
        })
    }

    /// A body chunk (`None` at a bare end), replaced with what the client gets.
    pub fn on_body(&mut self, body: &mut Option<Bytes>, end: bool) {
        match &mut self.mode {
            Mode::Sse(t) => {
                let mut out = Vec::new();
                if let Some(b) = body.as_deref() {
                    t.feed(b, &mut out);
                }
                if end {
                    t.finish(&mut out);
                }
                *body = (!out.is_empty()).then(|| Bytes::from(out));
            }
            Mode::Json(buf) | Mode::Error(buf) => {
                if let Some(b) = body.take() {
                    if buf.len() + b.len() <= MAX_JSON {
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

    fn finish_buffered(&self, whole: &[u8]) -> Vec<u8> {
        let parsed = serde_json::from_slice::<Value>(whole).ok();
        let out = match (&self.mode, parsed) {
            (Mode::Error(_), Some(v)) => openai_error_to_anthropic(&v),
            (Mode::Json(_), Some(v)) => match openai_response_to_anthropic(&v, &self.model) {
                Ok(a) => a,
                Err(e) => api_error(&format!("the upstream answer could not be translated: {e}")),
            },
            _ => api_error("the upstream answer is not JSON"),
        };
        out.to_string().into_bytes()
    }
}

fn api_error(message: &str) -> Value {
    serde_json::json!({"type": "error", "error": {"type": "api_error", "message": message}})
}
