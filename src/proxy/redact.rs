//! The external channel's redaction of an upstream answer, as a pipeline
//! stage on the client side (after the meter, so token counts and cuts
//! see the provider's text; before the client's wire format):
//! - an upstream error status of a routed (non-catalog) request gets the
//!   gateway's external error body instead of the upstream's (catalog
//!   errors are rewritten by the translation already);
//! - with the namespace's masking rules, the text of JSON answers and of
//!   SSE streams is masked (`sluice_filters::redact`): a match split
//!   across events is found by holding back no more than the longest rule
//!   can span.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::Result;
use sluice_filters::redact::{mask_json, Masker, SseRedactor, TextStream};
use std::sync::Arc;

/// Largest JSON answer parsed to be masked; a larger one is masked as
/// text, chunk by chunk (its strings' escapes may hide a match).
const MAX_JSON: usize = 8 * 1024 * 1024;

enum Mode {
    /// Waiting for the header.
    Pending,
    Sse(Box<SseRedactor>),
    Json(Vec<u8>),
    /// A JSON answer too large to parse: masked as raw text.
    Raw(TextStream),
    /// An upstream error: replaced at its end.
    Error(u16),
    Off,
}

/// One answer's redaction.
pub struct Redactor {
    masker: Option<Arc<Masker>>,
    replace_errors: bool,
    trace_id: String,
    mode: Mode,
}

impl Redactor {
    /// `masker`: the namespace's rules, if any; `replace_errors`: a routed
    /// request's upstream errors are replaced.
    pub fn new(masker: Option<Arc<Masker>>, replace_errors: bool, trace_id: &str) -> Redactor {
        Redactor {
            masker,
            replace_errors,
            trace_id: trace_id.to_string(),
            mode: Mode::Pending,
        }
    }

    pub fn on_header(&mut self, header: &mut ResponseHeader) -> Result<()> {
        let status = header.status.as_u16();
        let is = |media: &str| {
            header
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.as_bytes().get(..media.len()))
                .is_some_and(|p| p.eq_ignore_ascii_case(media.as_bytes()))
        };
        self.mode = match &self.masker {
            _ if status >= 400 && self.replace_errors => Mode::Error(status),
            Some(m) if is("text/event-stream") => Mode::Sse(Box::new(SseRedactor::new(m.clone()))),
            Some(_) if is("application/json") => Mode::Json(Vec::new()),
            _ => Mode::Off,
        };
        if let Mode::Error(_) = self.mode {
            header.insert_header(http::header::CONTENT_TYPE, "application/json")?;
        }
        if !matches!(self.mode, Mode::Off) {
            header.remove_header(&http::header::CONTENT_LENGTH);
            header.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
        }
        if let Mode::Error(status) = self.mode {
            header.set_status(crate::error::upstream_client_status(status))?;
        }
        Ok(())
    }

    pub fn on_body(&mut self, body: &mut Option<Bytes>, end: bool) {
        if let Mode::Error(status) = self.mode {
            // The upstream's body is dropped; at its end the gateway's
            // external error body takes its place.
            *body = end.then(|| {
                Bytes::from(crate::error::external_upstream_error_body(
                    status,
                    &self.trace_id,
                ))
            });
            return;
        }
        let Some(masker) = self.masker.as_deref() else {
            return;
        };
        match &mut self.mode {
            Mode::Pending | Mode::Off | Mode::Error(_) => {}
            Mode::Sse(r) => {
                let mut out = body.as_deref().map(|b| r.feed(b)).unwrap_or_default();
                if end {
                    out.extend(r.finish());
                }
                *body = (!out.is_empty()).then(|| Bytes::from(out));
            }
            Mode::Json(buf) => {
                if let Some(b) = body.take() {
                    buf.extend_from_slice(&b);
                }
                if buf.len() > MAX_JSON {
                    let held = std::mem::take(buf);
                    let mut text = TextStream::new();
                    let mut out = text.push(masker, &String::from_utf8_lossy(&held));
                    if end {
                        out.push_str(&text.finish(masker));
                    }
                    self.mode = Mode::Raw(text);
                    *body = Some(Bytes::from(out));
                } else if end {
                    let whole = std::mem::take(buf);
                    let out = match serde_json::from_slice::<serde_json::Value>(&whole) {
                        Ok(mut v) => match mask_json(masker, &mut v) {
                            true => v.to_string().into_bytes(),
                            false => whole,
                        },
                        // Not JSON after all: masked as text.
                        Err(_) => masker
                            .mask(&String::from_utf8_lossy(&whole))
                            .into_owned()
                            .into_bytes(),
                    };
                    *body = Some(Bytes::from(out));
                }
            }
            Mode::Raw(text) => {
                let mut out = body
                    .as_deref()
                    .map(|b| text.push(masker, &String::from_utf8_lossy(b)))
                    .unwrap_or_default();
                if end {
                    out.push_str(&text.finish(masker));
                }
                *body = (!out.is_empty()).then(|| Bytes::from(out));
            }
        }
    }
}
