//! Anthropic Messages API: `/v1/messages`, the OpenAI request translated
//! with `sluice_filters::translate::openai_to_anthropic` (system prompt,
//! content blocks, tools, `max_tokens` required), `anthropic-version`.
//! Auth (`x-api-key`) comes from the server's key. Responses are
//! translated back in [`super::response`].

use super::UpstreamRequest;
use crate::catalog::{DeploymentRt, Operation};
use bytes::Bytes;
use pingora::http::RequestHeader;
use serde_json::Value;
use sluice_filters::translate::openai_to_anthropic;

/// The API version sent when the client did not choose one.
pub const VERSION: &str = "2023-06-01";

pub fn request(op: Operation, d: &DeploymentRt, body: &Value) -> Result<UpstreamRequest, String> {
    if op != Operation::Chat {
        return Err("anthropic serves chat only".into());
    }
    let mut out = openai_to_anthropic(body, d.default_max_tokens).map_err(|e| e.to_string())?;
    if let Value::Object(map) = &mut out {
        map.insert("model".into(), Value::String(d.model.clone()));
    }
    let body = serde_json::to_vec(&out).map_err(|e| e.to_string())?;
    Ok(UpstreamRequest {
        uri: "/v1/messages".into(),
        body: Bytes::from(body),
    })
}

/// What [`request`] would refuse, without serializing.
pub fn check(op: Operation, d: &DeploymentRt, body: &Value) -> Result<(), String> {
    if op != Operation::Chat {
        return Err("anthropic serves chat only".into());
    }
    openai_to_anthropic(body, d.default_max_tokens)
        .map(drop)
        .map_err(|e| e.to_string())
}

pub fn headers(req: &mut RequestHeader) -> pingora::Result<()> {
    if req.headers.get("anthropic-version").is_none() {
        req.insert_header("anthropic-version", VERSION)?;
    }
    Ok(())
}
