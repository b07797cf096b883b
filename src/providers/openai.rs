//! OpenAI: `/v1/chat/completions`, `/v1/embeddings`; the body as the client
//! sent it with the deployment's model name. Auth (`Authorization: Bearer`)
//! comes from the server's key.

use super::{openai_path, with_model, Refusal, UpstreamRequest};
use crate::catalog::{DeploymentRt, Operation};
use serde_json::Value;

pub fn request(op: Operation, d: &DeploymentRt, body: &Value) -> Result<UpstreamRequest, Refusal> {
    Ok(UpstreamRequest {
        uri: openai_path(op).to_string(),
        body: with_model(body, &d.model)?,
    })
}
