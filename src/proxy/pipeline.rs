//! The response pipeline: the stages an answer's header and body pass
//! through, as one list per request, run by the same code on the direct
//! path (`response_filter` / `response_body_filter`) and on the piped path
//! (the child's filters, the parent's pipe filter in `handoff.rs`).
//!
//! Stages fall on two sides:
//! - **upstream side**, run by the session that reads the upstream (direct
//!   or child): the catalog translation of a provider's answer (added per
//!   attempt, once its header says how to translate) and the usage tail of
//!   answers nobody meters;
//! - **client side**, run by the session that writes to the client (direct
//!   or parent): the meter (token count, clean cut at the output cap), the
//!   client's wire format (`/v1/messages`), the internal channel's
//!   `session_id` echo, the external channel's redaction (`redact.rs`);
//!   first of all the response cache's recording (`cache_record.rs`),
//!   which sees the answer as the upstream side made it.
//!
//! [`Role`] matters only in [`Pipeline::new`]: a direct session runs both
//! sides, a child the upstream side, a parent the client side.

use super::cache_record::Recorder;
use super::client_format::{ClientFormat, ToClient};
use super::metering::ResponseMeter;
use super::plan::{Plan, Role};
use super::redact::Redactor;
use crate::providers::response::ResponseAdapter;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::protocols::http::HttpTask;
use pingora::Result;
use sluice_filters::stream::UsageTail;
use std::sync::Arc;

/// One stage of the pipeline.
pub enum Stage {
    /// A catalog answer translated from its provider's format to
    /// OpenAI's; at the end its usage is priced into the plan's outcome.
    Translate {
        adapter: Box<ResponseAdapter>,
        /// (input, output) price per million tokens of the deployment.
        prices: (f64, f64),
        plan: Arc<Plan>,
    },
    /// The usage an unmetered answer reports, read from its tail (token
    /// metrics only).
    UsageTail { tail: UsageTail, plan: Arc<Plan> },
    /// Output metering under a token rule.
    Meter(Box<ResponseMeter>),
    /// The answer translated into the client's wire format (the
    /// translator is chosen by the answer's header).
    ToClient {
        format: ClientFormat,
        to_client: Option<ToClient>,
    },
    /// The internal channel's `session_id`: in `x-session-id`, and added
    /// to a successful JSON answer (buffered while `buf` is set).
    SessionEcho { id: String, buf: Option<Vec<u8>> },
    /// The external channel's redaction: upstream error details out, the
    /// namespace's masking rules over the answer's text.
    Redact(Box<Redactor>),
    /// The response cache: `x-cache`, the answer recorded (and shared
    /// with coalesced followers), or a stale entry instead of a failure.
    Cache(Box<Recorder>),
    /// A traced request's finish reason, read as the answer passes (its
    /// last `"finish_reason":"…"`; the bytes are not changed).
    FinishReason {
        last: Option<String>,
        /// The end of the previous chunk (a match split across two).
        tail: Vec<u8>,
    },
}

/// The last `"finish_reason":"…"` value in `bytes`.
fn last_finish_reason(bytes: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"finish_reason\":";
    let at = memchr::memmem::rfind(bytes, KEY)? + KEY.len();
    let rest = bytes[at..].strip_prefix(b" ").unwrap_or(&bytes[at..]);
    let rest = rest.strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest).filter(|&e| e <= 64)?;
    std::str::from_utf8(&rest[..end]).ok().map(str::to_string)
}

impl Stage {
    fn on_header(&mut self, header: &mut ResponseHeader) -> Result<()> {
        match self {
            Stage::Translate { .. } | Stage::UsageTail { .. } => Ok(()),
            Stage::Meter(meter) => meter.on_header(header),
            Stage::Redact(r) => r.on_header(header),
            Stage::Cache(r) => r.on_header(header),
            Stage::FinishReason { .. } => Ok(()),
            Stage::ToClient { format, to_client } => {
                *to_client = Some(ToClient::on_header(format, header)?);
                Ok(())
            }
            Stage::SessionEcho { id, buf } => {
                if let Ok(v) = http::HeaderValue::from_str(id) {
                    header.insert_header("x-session-id", v)?;
                }
                let json = header
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
                *buf = None;
                if json && header.status.is_success() {
                    header.remove_header(&http::header::CONTENT_LENGTH);
                    header.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
                    *buf = Some(Vec::new());
                }
                Ok(())
            }
        }
    }

    fn on_body(&mut self, body: &mut Option<Bytes>, end: bool) {
        match self {
            Stage::Translate {
                adapter,
                prices,
                plan,
            } => {
                adapter.on_body(body, end);
                if end {
                    let usage = adapter.usage();
                    if let Some(cp) = &plan.catalog {
                        if let Ok(mut o) = cp.outcome.lock() {
                            o.usage = usage;
                            o.cost = usage.map(|(p, c)| {
                                (p as f64 * prices.0 + c as f64 * prices.1) / 1_000_000.0
                            });
                        }
                    }
                }
            }
            Stage::UsageTail { tail, plan } => {
                if end {
                    if let Some(u) = tail.finish(body.as_deref()) {
                        let _ = plan.reported_usage.set(u);
                    }
                } else if let Some(b) = body.as_deref() {
                    tail.feed(b);
                }
            }
            Stage::Meter(meter) => meter.on_body(body, end),
            Stage::Redact(r) => r.on_body(body, end),
            Stage::Cache(r) => r.on_body(body, end),
            Stage::FinishReason { last, tail } => {
                if let Some(b) = body.as_deref() {
                    tail.extend_from_slice(b);
                    if let Some(r) = last_finish_reason(tail) {
                        *last = Some(r);
                    }
                    let keep = tail.len().saturating_sub(96);
                    tail.drain(..keep);
                }
            }
            Stage::ToClient { to_client, .. } => {
                if let Some(t) = to_client {
                    t.on_body(body, end);
                }
            }
            Stage::SessionEcho { id, buf } => {
                let Some(b) = buf else { return };
                if let Some(chunk) = body.take() {
                    b.extend_from_slice(&chunk);
                }
                if end {
                    *body = Some(Bytes::from(with_session_id(std::mem::take(b), id)));
                }
            }
        }
    }

    /// The stage ended the answer early (a cut stream).
    fn done(&self) -> bool {
        matches!(self, Stage::Meter(m) if m.done())
    }
}

/// The stages of one request, in order.
#[derive(Default)]
pub struct Pipeline {
    upstream: Vec<Stage>,
    client: Vec<Stage>,
    /// Whether this session runs the upstream side (direct, child).
    runs_upstream: bool,
}

impl Pipeline {
    /// The client side of `plan`'s pipeline for a session in `role` (a
    /// child gets none: its parent runs it); the upstream side is added
    /// as the answer's header arrives ([`Pipeline::set_translation`],
    /// [`Pipeline::add_usage_tail`]).
    pub fn new(role: Role, plan: &Plan, request_id: &str) -> Pipeline {
        let mut client = Vec::new();
        if role != Role::Child {
            if let Some(granted) = plan.granted.as_ref().filter(|_| plan.metered) {
                client.push(Stage::Meter(Box::new(ResponseMeter::new(
                    granted,
                    plan.llm.stream,
                    plan.client_wants_usage,
                ))));
            }
            // A routed answer's errors and the namespace's masking rules
            // (a catalog answer's errors are rewritten by its translation).
            if !plan.internal && (plan.masker.is_some() || plan.catalog.is_none()) {
                client.push(Stage::Redact(Box::new(Redactor::new(
                    plan.masker.clone(),
                    plan.catalog.is_none(),
                    request_id,
                ))));
            }
            if let Some(format) = &plan.client_format {
                client.push(Stage::ToClient {
                    format: format.clone(),
                    to_client: None,
                });
            }
            if let Some(id) = &plan.session_id {
                client.push(Stage::SessionEcho {
                    id: id.clone(),
                    buf: None,
                });
            }
        }
        Pipeline {
            upstream: Vec::new(),
            client,
            runs_upstream: role != Role::Parent,
        }
    }

    /// The current attempt's answer is translated by `adapter` (catalog),
    /// which has seen the answer's header.
    pub fn set_translation(
        &mut self,
        adapter: ResponseAdapter,
        prices: (f64, f64),
        plan: Arc<Plan>,
    ) {
        self.upstream
            .retain(|s| !matches!(s, Stage::Translate { .. }));
        self.upstream.insert(
            0,
            Stage::Translate {
                adapter: Box::new(adapter),
                prices,
                plan,
            },
        );
    }

    /// The answer's usage is read from its tail (unmetered answers).
    pub fn add_usage_tail(&mut self, plan: Arc<Plan>) {
        self.upstream
            .retain(|s| !matches!(s, Stage::UsageTail { .. }));
        self.upstream.push(Stage::UsageTail {
            tail: UsageTail::new(),
            plan,
        });
    }

    /// The answer goes through the response cache's stage (first on the
    /// client side).
    pub fn add_recorder(&mut self, recorder: Box<Recorder>) {
        self.client.insert(0, Stage::Cache(recorder));
    }

    /// Reads the answer's finish reason as it passes (traced requests).
    pub fn add_finish_reason(&mut self) {
        self.client.insert(
            0,
            Stage::FinishReason {
                last: None,
                tail: Vec::new(),
            },
        );
    }

    /// The answer's last finish reason, when it was read.
    pub fn finish_reason(&self) -> Option<String> {
        self.client.iter().find_map(|s| match s {
            Stage::FinishReason { last, .. } => last.clone(),
            _ => None,
        })
    }

    /// Takes the cache stage out of the pipeline.
    pub fn take_recorder(&mut self) -> Option<Box<Recorder>> {
        let i = self
            .client
            .iter()
            .position(|s| matches!(s, Stage::Cache(_)))?;
        match self.client.remove(i) {
            Stage::Cache(r) => Some(r),
            _ => None,
        }
    }

    /// The cache stage, if the answer has one.
    pub fn recorder_mut(&mut self) -> Option<&mut Recorder> {
        self.client.iter_mut().find_map(|s| match s {
            Stage::Cache(r) => Some(&mut **r),
            _ => None,
        })
    }

    /// The request's meter, if it is metered.
    pub fn meter(&self) -> Option<&ResponseMeter> {
        self.client.iter().find_map(|s| match s {
            Stage::Meter(m) => Some(&**m),
            _ => None,
        })
    }

    /// Whether the client side cut the answer short.
    pub fn done(&self) -> bool {
        self.client.iter().any(Stage::done)
    }

    fn stages(&mut self) -> impl Iterator<Item = &mut Stage> {
        let upstream = if self.runs_upstream {
            &mut self.upstream[..]
        } else {
            &mut []
        };
        upstream.iter_mut().chain(self.client.iter_mut())
    }

    /// The answer's header through the client side (the upstream side's
    /// translation saw it when it was chosen, [`Pipeline::set_translation`]).
    pub fn on_header(&mut self, header: &mut ResponseHeader) -> Result<()> {
        for stage in self.client.iter_mut() {
            stage.on_header(header)?;
        }
        Ok(())
    }

    /// One body chunk (`None` at a bare end) through every stage this
    /// session runs. Once a stage cut the answer, the later stages see
    /// the end. Returns whether the answer ended here.
    pub fn on_body(&mut self, body: &mut Option<Bytes>, end: bool) -> bool {
        let upstream_end = end;
        let mut end = end;
        for stage in self.stages() {
            stage.on_body(body, end);
            end |= stage.done();
        }
        if upstream_end {
            // The whole answer passed: the cache stores it unless a later
            // stage cut it.
            let cut = self.done();
            if let Some(r) = self.recorder_mut() {
                r.finish(cut);
            }
        }
        end
    }

    /// One task of the parent's pipe through the client side. Once the
    /// meter cut the stream, the task carrying its last bytes ends the
    /// client's response (`end = true`: Pingora writes the terminating
    /// chunk, so the client sees a cleanly ended body, unlike returning an
    /// error, pingora issue #951) and every later task is dropped.
    pub fn on_task(&mut self, task: HttpTask) -> Result<Option<HttpTask>> {
        if self.done() {
            return Ok(None);
        }
        Ok(Some(match task {
            HttpTask::Header(mut header, end) => {
                self.on_header(&mut header)?;
                HttpTask::Header(header, end)
            }
            HttpTask::Body(mut body, end) => {
                let end = self.on_body(&mut body, end);
                HttpTask::Body(body, end)
            }
            HttpTask::Done => {
                // A bare end: flush whatever the stages still hold.
                let mut body = None;
                self.on_body(&mut body, true);
                match body {
                    Some(b) => HttpTask::Body(Some(b), true),
                    None => HttpTask::Done,
                }
            }
            other => other,
        }))
    }
}

/// A JSON object answer with `"session_id"` added before its closing brace
/// (anything else is returned as it is).
fn with_session_id(mut body: Vec<u8>, id: &str) -> Vec<u8> {
    let end = body.iter().rposition(|b| !b.is_ascii_whitespace());
    let Some(end) = end.filter(|&e| body[e] == b'}') else {
        return body;
    };
    let empty = body[..end]
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .is_some_and(|p| body[p] == b'{');
    let mut field = if empty { Vec::new() } else { b",".to_vec() };
    field.extend_from_slice(b"\"session_id\":");
    field.extend_from_slice(serde_json::Value::from(id).to_string().as_bytes());
    body.splice(end..end, field);
    body
}

#[cfg(test)]
mod tests {
    use super::{last_finish_reason, with_session_id};

    #[test]
    fn finish_reasons_are_read() {
        let r = |b: &[u8]| last_finish_reason(b);
        assert_eq!(r(br#"{"finish_reason":null}"#), None);
        assert_eq!(r(br#"{"finish_reason":"stop"}"#).as_deref(), Some("stop"));
        assert_eq!(
            r(br#"{"finish_reason": "length"},{"finish_reason":"tool_calls"}"#).as_deref(),
            Some("tool_calls")
        );
        assert_eq!(r(br#"{"finish_reason":"unterminated"#), None);
    }

    #[test]
    fn session_id_is_added_to_a_json_object() {
        let v =
            |b: &str| String::from_utf8(with_session_id(b.as_bytes().to_vec(), "s-\"1")).unwrap();
        assert_eq!(v("{\"a\":1}\n"), "{\"a\":1,\"session_id\":\"s-\\\"1\"}\n");
        assert_eq!(v("{ }"), "{ \"session_id\":\"s-\\\"1\"}");
        assert_eq!(v("[1]"), "[1]");
        assert_eq!(v(""), "");
    }
}
