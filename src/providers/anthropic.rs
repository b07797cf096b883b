//! Anthropic Messages API: `/v1/messages`, the OpenAI request translated
//! with `sluice_filters::translate::openai_to_anthropic` (system prompt,
//! content blocks, tools, `max_tokens` required), `anthropic-version`.
//! Auth (`x-api-key`) comes from the server's key. Responses are
//! translated back in [`super::response`].

use super::{Refusal, UpstreamRequest};
use crate::catalog::{DeploymentRt, Operation};
use bytes::Bytes;
use pingora::http::RequestHeader;
use serde_json::Value;
use sluice_filters::translate::openai_to_anthropic;

/// The API version sent when the client did not choose one.
pub const VERSION: &str = "2023-06-01";

pub fn request(op: Operation, d: &DeploymentRt, body: &Value) -> Result<UpstreamRequest, Refusal> {
    if op != Operation::Chat {
        return Err(Refusal::ChatOnly("anthropic"));
    }
    let mut out = openai_to_anthropic(body, d.default_max_tokens)?;
    if let Value::Object(map) = &mut out {
        map.insert("model".into(), Value::String(d.model.clone()));
    }
    let body = serde_json::to_vec(&out)?;
    Ok(UpstreamRequest {
        uri: "/v1/messages".into(),
        body: Bytes::from(body),
    })
}

/// What [`request`] would refuse, without serializing.
pub fn check(op: Operation, d: &DeploymentRt, body: &Value) -> Result<(), Refusal> {
    if op != Operation::Chat {
        return Err(Refusal::ChatOnly("anthropic"));
    }
    openai_to_anthropic(body, d.default_max_tokens)?;
    Ok(())
}

pub fn headers(req: &mut RequestHeader) -> pingora::Result<()> {
    if req.headers.get("anthropic-version").is_none() {
        req.insert_header("anthropic-version", VERSION)?;
    }
    Ok(())
}
