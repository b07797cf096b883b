//! Azure OpenAI: `/openai/deployments/{deployment}/chat/completions` (or
//! `/embeddings`) `?api-version=…`; OpenAI's body (the deployment decides
//! the model, `model` is set to the catalog's name anyway). Auth (`api-key`)
//! comes from the server's key.

use super::{with_model, Refusal, UpstreamRequest};
use crate::catalog::{DeploymentRt, Operation};
use serde_json::Value;

pub fn request(op: Operation, d: &DeploymentRt, body: &Value) -> Result<UpstreamRequest, Refusal> {
    let Some((deployment, version)) = &d.azure else {
        return Err(Refusal::AzureUnconfigured);
    };
    let what = match op {
        Operation::Chat => "chat/completions",
        Operation::Embeddings => "embeddings",
    };
    Ok(UpstreamRequest {
        uri: format!("/openai/deployments/{deployment}/{what}?api-version={version}"),
        body: with_model(body, &d.model)?,
    })
}
