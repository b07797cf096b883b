//! The token service, at `/api/v1/tokens/...` and at its own short root
//! paths. Counts come from the running config's [`TokenizerMap`]
//! (`tokens.models` over the built-in table, `tokens.fallback_encoding`
//! for unknown models) and the same counters and [`count_prompt`] the
//! limiter bills with. Encodings are compiled in: nothing is ever
//! downloaded.
//!
//! [`TokenizerMap`]: sluice_filters::tokens::TokenizerMap

use super::*;
use sluice_filters::tokens::{count_prompt, Encoding};
use std::collections::BTreeMap;

const SERVICE: &str = "token-calculator";
const TOKENIZER_TYPE: &str = "tiktoken";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Well-known model names shown by `GET /models`, each resolved through the
/// running map (so an override in `tokens.models` shows here too).
const KNOWN_MODELS: &[&str] = &[
    "gpt-5",
    "gpt-4.1",
    "gpt-4o",
    "gpt-4o-mini",
    "o1",
    "o3",
    "o4-mini",
    "gpt-oss-120b",
    "gpt-4",
    "gpt-4-turbo",
    "gpt-3.5-turbo",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
    "text-davinci-003",
    "code-davinci-002",
    "davinci",
    "gpt2",
];

fn encodings_list() -> Vec<&'static str> {
    Encoding::ALL.iter().map(|e| e.name()).collect()
}

/// `GET /api/v1/tokens`.
#[derive(Serialize, ToSchema)]
pub struct ServiceInfo {
    pub message: &'static str,
    pub version: &'static str,
    /// What each endpoint does → its path.
    pub endpoints: BTreeMap<&'static str, &'static str>,
}

/// `GET /api/v1/tokens/health`.
#[derive(Serialize, ToSchema)]
pub struct TokenHealth {
    pub status: &'static str,
    pub service: &'static str,
    pub version: &'static str,
    pub encodings: Vec<&'static str>,
}

/// `POST /api/v1/tokens/calculate`: `text`, or `messages` (with `tools` or
/// `functions`, billed like a chat request), or `input`/`prompt`; the
/// model (`model_name` or `model`) or an explicit `encoding`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"text": "hello world", "model_name": "gpt-4o"}))]
pub struct CalculateRequest {
    #[serde(default, deserialize_with = "de::text")]
    pub text: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub model_name: Option<String>,
    /// Same as `model_name`.
    #[serde(default, deserialize_with = "de::text")]
    pub model: Option<String>,
    /// `o200k_base`, `cl100k_base`, `p50k_base` or `r50k_base`.
    #[serde(default, deserialize_with = "de::text")]
    pub encoding: Option<String>,
    /// Chat messages.
    #[serde(default, deserialize_with = "de::array")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub messages: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Value>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub functions: Option<Value>,
    /// A string or a list of strings (or token lists).
    pub input: Option<Value>,
    pub prompt: Option<Value>,
}

impl Body for CalculateRequest {}

/// `POST /api/v1/tokens/batch-calculate`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"texts": ["hello", "world"], "model_name": "gpt-4o"}))]
pub struct BatchCalculateRequest {
    #[serde(deserialize_with = "de::texts")]
    pub texts: Vec<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub model_name: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub encoding: Option<String>,
}

impl Body for BatchCalculateRequest {}

/// A count.
#[derive(Serialize, ToSchema)]
pub struct Counted {
    pub success: bool,
    pub model_name: String,
    /// The text counted (for `text` and batch requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub token_count: u64,
    pub encoding: &'static str,
    /// The model is unknown (the fallback encoding counted) or a part of
    /// the prompt was estimated.
    pub estimated: bool,
    pub tokenizer_type: &'static str,
}

/// One entry of `GET /api/v1/tokens/models`.
#[derive(Serialize, ToSchema)]
pub struct ModelEntry {
    pub name: String,
    pub encoding: &'static str,
    /// `encoding`, `config`, `built-in` or `fallback`.
    pub source: &'static str,
    pub downloaded: bool,
    pub available: bool,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub tokenizer_type: &'static str,
    /// Set on the fallback entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated: Option<bool>,
}

/// `POST /api/v1/tokens/download-model`: `model_name` (or `model`).
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"model_name": "cl100k_base"}))]
pub struct DownloadRequest {
    /// An encoding name or a model the running map knows.
    #[serde(default, deserialize_with = "de::text")]
    pub model_name: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub model: Option<String>,
}

impl Body for DownloadRequest {}

/// `POST /api/v1/tokens/download-model`.
#[derive(Serialize, ToSchema)]
pub struct Downloaded {
    pub success: bool,
    pub message: String,
    pub model_name: String,
    pub encoding: &'static str,
}

pub fn service_info(_: &Call<'_>, _: NoBody) -> Reply<ServiceInfo> {
    Ok(ServiceInfo {
        message: "Token计算服务",
        version: VERSION,
        endpoints: BTreeMap::from([
            ("计算单个文本token", "/api/v1/tokens/calculate"),
            ("批量计算token", "/api/v1/tokens/batch-calculate"),
            ("获取可用模型", "/api/v1/tokens/models"),
            ("下载模型", "/api/v1/tokens/download-model"),
            ("健康检查", "/api/v1/tokens/health"),
        ]),
    })
}

pub fn health(_: &Call<'_>, _: NoBody) -> Reply<TokenHealth> {
    Ok(TokenHealth {
        status: "healthy",
        service: SERVICE,
        version: VERSION,
        encodings: encodings_list(),
    })
}

/// The encoding for a request: an explicit `encoding`, else the model's
/// through the running map. Returns `(encoding, estimated)`.
fn encoding_for(
    rt: &Snapshot,
    encoding: Option<&str>,
    model: &str,
) -> Result<(Encoding, bool), ApiError> {
    match encoding {
        None => {
            let r = rt.limits.tokenizers.resolve(model);
            Ok((r.encoding, r.estimated))
        }
        Some(name) => Encoding::from_name(name)
            .map(|e| (e, false))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "encoding: 未知的编码 {name}，支持: {}",
                    encodings_list().join(", ")
                ))
            }),
    }
}

fn counted(model: &str, encoding: Encoding, estimated: bool, tokens: u64) -> Counted {
    Counted {
        success: true,
        model_name: model.to_string(),
        text: None,
        token_count: tokens,
        encoding: encoding.name(),
        estimated,
        tokenizer_type: TOKENIZER_TYPE,
    }
}

/// Counting is CPU work (and the first use of an encoding loads its
/// vocabulary): off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `POST /calculate`.
pub fn calculate(c: Call<'_>, b: CalculateRequest) -> Pending<'_, Counted> {
    Box::pin(async move {
        let rt = c.center.runtime();
        let model = b.model_name.clone().or(b.model.clone()).unwrap_or_default();
        let (encoding, estimated) = encoding_for(&rt, b.encoding.as_deref(), &model)?;
        if let Some(text) = b.text {
            let (text, n) = blocking(move || {
                let n = encoding.counter().count(&text);
                (text, n)
            })
            .await?;
            let mut m = counted(&model, encoding, estimated, n as u64);
            m.text = Some(text);
            return Ok(m);
        }
        let mut prompt = Map::new();
        if let Some(messages) = b.messages {
            prompt.insert("messages".into(), Value::Array(messages));
        }
        for (field, value) in [
            ("tools", b.tools),
            ("functions", b.functions),
            ("input", b.input),
            ("prompt", b.prompt),
        ] {
            if let Some(v) = value {
                prompt.insert(field.into(), v);
            }
        }
        if !["messages", "input", "prompt"]
            .iter()
            .any(|f| prompt.contains_key(*f))
        {
            return Err(ApiError::bad_request("缺少必要字段: text"));
        }
        let body = Value::Object(prompt);
        let count = blocking(move || count_prompt(encoding.counter(), &body)).await?;
        Ok(counted(
            &model,
            encoding,
            estimated || count.estimated,
            count.tokens,
        ))
    })
}

/// `POST /batch-calculate`: one result per text, in order.
pub fn batch_calculate(c: Call<'_>, b: BatchCalculateRequest) -> Pending<'_, List<Counted>> {
    Box::pin(async move {
        let rt = c.center.runtime();
        let model = b.model_name.clone().or(b.model.clone()).unwrap_or_default();
        let (encoding, estimated) = encoding_for(&rt, b.encoding.as_deref(), &model)?;
        let texts = b.texts;
        let counts = blocking(move || {
            texts
                .into_iter()
                .map(|t| {
                    let n = encoding.counter().count(&t);
                    (t, n)
                })
                .collect::<Vec<_>>()
        })
        .await?;
        Ok(counts
            .into_iter()
            .map(|(t, n)| Counted {
                text: Some(t),
                ..counted(&model, encoding, estimated, n as u64)
            })
            .collect())
    })
}

fn model_entry(name: &str, encoding: Encoding, source: &'static str) -> ModelEntry {
    ModelEntry {
        name: name.to_string(),
        encoding: encoding.name(),
        source,
        downloaded: true,
        available: true,
        kind: "decoder-only",
        tokenizer_type: TOKENIZER_TYPE,
        estimated: None,
    }
}

/// `GET /models`: the encodings themselves, the operator's `tokens.models`
/// patterns, well-known models as the running map resolves them, and the
/// fallback for anything else.
pub fn models(c: &Call<'_>, _: NoBody) -> Reply<List<ModelEntry>> {
    let rt = c.center.runtime();
    let map = &rt.limits.tokenizers;
    let mut out: Vec<ModelEntry> = Encoding::ALL
        .iter()
        .map(|e| model_entry(e.name(), *e, "encoding"))
        .collect();
    for (pattern, e) in &rt.config.tokens.models {
        out.push(model_entry(pattern, *e, "config"));
    }
    for m in KNOWN_MODELS {
        let r = map.resolve(m);
        if !r.estimated {
            out.push(model_entry(m, r.encoding, "built-in"));
        }
    }
    let fallback = map.resolve("").encoding;
    out.push(ModelEntry {
        estimated: Some(true),
        ..model_entry("*", fallback, "fallback")
    });
    Ok(List(out))
}

/// `POST /download-model`: nothing to download; a built-in encoding (or a
/// model the map knows) answers 200 and is loaded now, anything else 400
/// saying what is supported.
pub fn download_model(c: Call<'_>, b: DownloadRequest) -> Pending<'_, Downloaded> {
    Box::pin(async move {
        let name = match b.model_name.or(b.model) {
            Some(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => return Err(ApiError::bad_request("缺少必要字段: model_name")),
        };
        let rt = c.center.runtime();
        let encoding = Encoding::from_name(&name).or_else(|| {
            let r = rt.limits.tokenizers.resolve(&name);
            (!r.estimated).then_some(r.encoding)
        });
        let Some(encoding) = encoding else {
            return Err(ApiError::bad_request(format!(
                "tokenizers are built in ({}); map a model to one with tokens.models",
                encodings_list().join(", ")
            )));
        };
        blocking(move || {
            encoding.counter();
        })
        .await?;
        Ok(Downloaded {
            success: true,
            message: format!("模型 {name} 已内置 ({})，无需下载", encoding.name()),
            model_name: name,
            encoding: encoding.name(),
        })
    })
}
