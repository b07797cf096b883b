//! Per-provider adapters for catalog deployments: for each attempt, the
//! upstream path and query, extra headers and the request body with the
//! deployment's real model name (one module per provider); for the answer,
//! a [`response::ResponseAdapter`] that turns the provider's body (JSON,
//! SSE, errors) into what an OpenAI client expects and reads the usage the
//! request is priced with. Called from `src/proxy/catalog.rs`
//! (`upstream_peer`, `upstream_request_filter`, `response_filter`,
//! `response_body_filter`).

pub mod anthropic;
pub mod azure;
pub mod openai;
pub mod openai_compatible;
pub mod response;

use crate::catalog::{DeploymentRt, Operation};
use crate::config::ProviderKind;
use bytes::Bytes;
use pingora::http::RequestHeader;
use serde_json::Value;

/// What one attempt sends upstream.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    /// Path and query.
    pub uri: String,
    pub body: Bytes,
}

/// Why a provider cannot take a request (the deployment is skipped, or
/// the request refused with 400 when no deployment can take it).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0} serves chat only")]
    ChatOnly(&'static str),
    #[error("azure deployment without deployment/api_version")]
    AzureUnconfigured,
    #[error(transparent)]
    Untranslatable(#[from] sluice_filters::translate::TranslateError),
    #[error("the body could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Builds the request for deployment `d`; `Err` says what the provider
/// cannot take.
pub fn request(op: Operation, d: &DeploymentRt, body: &Value) -> Result<UpstreamRequest, Refusal> {
    match d.provider {
        ProviderKind::Openai => openai::request(op, d, body),
        ProviderKind::OpenaiCompatible => openai_compatible::request(op, d, body),
        ProviderKind::Azure => azure::request(op, d, body),
        ProviderKind::Anthropic => anthropic::request(op, d, body),
    }
}

/// Whether deployment `d` can take `body` at all (what [`request`] would
/// refuse for the request itself, checked without building it): only
/// Anthropic refuses requests, those its translation cannot express.
pub fn check(op: Operation, d: &DeploymentRt, body: &Value) -> Result<(), Refusal> {
    match d.provider {
        ProviderKind::Anthropic => anthropic::check(op, d, body),
        _ => Ok(()),
    }
}

/// Headers the provider needs besides auth (which `headers.rs` injects
/// from the server's key).
pub fn headers(provider: ProviderKind, req: &mut RequestHeader) -> pingora::Result<()> {
    match provider {
        ProviderKind::Anthropic => anthropic::headers(req),
        _ => Ok(()),
    }
}

/// The body with `model` set to the deployment's model, serialized.
fn with_model(body: &Value, model: &str) -> Result<Bytes, Refusal> {
    let mut body = body.clone();
    if let Value::Object(map) = &mut body {
        map.insert("model".into(), Value::String(model.to_string()));
    }
    Ok(Bytes::from(serde_json::to_vec(&body)?))
}

/// The OpenAI path of an operation.
fn openai_path(op: Operation) -> &'static str {
    match op {
        Operation::Chat => "/v1/chat/completions",
        Operation::Embeddings => "/v1/embeddings",
    }
}
