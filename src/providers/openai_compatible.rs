//! OpenAI-compatible servers (vLLM, Ollama, DeepSeek, Qwen…): OpenAI's
//! paths and body, the deployment's model name, Bearer auth.

use super::{Refusal, UpstreamRequest};
use crate::catalog::{DeploymentRt, Operation};
use serde_json::Value;

pub fn request(op: Operation, d: &DeploymentRt, body: &Value) -> Result<UpstreamRequest, Refusal> {
    super::openai::request(op, d, body)
}
