//! The token service (seed 000 §10), at `/api/v1/tokens/...` and at the
//! seed's own root paths. Counts come from the running config's
//! [`TokenizerMap`] (`tokens.models` over the built-in table,
//! `tokens.fallback_encoding` for unknown models) and the same counters and
//! [`count_prompt`] the limiter bills with. Encodings are compiled in:
//! nothing is ever downloaded.
//!
//! [`TokenizerMap`]: sluice_filters::tokens::TokenizerMap

use super::*;
use sluice_filters::tokens::{count_prompt, Encoding};

const SERVICE: &str = "token-calculator";
const TOKENIZER_TYPE: &str = "tiktoken";

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

pub fn token_service_info() -> Value {
    json!({
        "message": "Token计算服务",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": {
            "计算单个文本token": "/api/v1/tokens/calculate",
            "批量计算token": "/api/v1/tokens/batch-calculate",
            "获取可用模型": "/api/v1/tokens/models",
            "下载模型": "/api/v1/tokens/download-model",
            "健康检查": "/api/v1/tokens/health",
        },
    })
}

pub fn token_health() -> Value {
    json!({"status": "healthy", "service": SERVICE, "version": env!("CARGO_PKG_VERSION"),
           "encodings": encodings_list()})
}

/// The model named in the request (`model_name` or `model`), if any.
fn model_of(b: &Body) -> Result<String, ApiError> {
    for field in ["model_name", "model"] {
        match b.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => return Ok(s.clone()),
            Some(_) => return Err(ApiError::bad_request(format!("{field}: 必须是字符串"))),
        }
    }
    Ok(String::new())
}

/// The encoding for the request: an explicit `encoding`, else the model's
/// through the running map. Returns `(encoding, estimated)`.
fn encoding_for(rt: &Runtime, b: &Body, model: &str) -> Result<(Encoding, bool), ApiError> {
    match b.get("encoding") {
        None | Some(Value::Null) => {
            let r = rt.limits.tokenizers.resolve(model);
            Ok((r.encoding, r.estimated))
        }
        Some(Value::String(name)) => {
            Encoding::from_name(name)
                .map(|e| (e, false))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "encoding: 未知的编码 {name}，支持: {}",
                        encodings_list().join(", ")
                    ))
                })
        }
        Some(_) => Err(ApiError::bad_request("encoding: 必须是字符串")),
    }
}

fn counted(model: &str, encoding: Encoding, estimated: bool, tokens: u64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("success".into(), true.into());
    m.insert("model_name".into(), model.into());
    m.insert("token_count".into(), tokens.into());
    m.insert("encoding".into(), encoding.name().into());
    m.insert("estimated".into(), estimated.into());
    m.insert("tokenizer_type".into(), TOKENIZER_TYPE.into());
    m
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

/// `POST /calculate`: `text` (plain text), or `messages` (with optional
/// `tools`/`functions`; billed like a chat request: per-message overheads
/// and reply priming), or `input`/`prompt`; plus `model_name`/`model` or
/// an explicit `encoding`.
pub async fn calculate(rt: &Runtime, b: Body) -> Reply {
    let model = model_of(&b)?;
    let (encoding, estimated) = encoding_for(rt, &b, &model)?;
    match b.get("text") {
        Some(Value::String(text)) => {
            let text = text.clone();
            let (text, n) = blocking(move || {
                let n = encoding.counter().count(&text);
                (text, n)
            })
            .await?;
            let mut m = counted(&model, encoding, estimated, n as u64);
            m.insert("text".into(), text.into());
            return Ok(Value::Object(m));
        }
        Some(Value::Null) | None => {}
        Some(_) => return Err(ApiError::bad_request("text: 必须是字符串")),
    }
    if !["messages", "input", "prompt"]
        .iter()
        .any(|f| b.get(*f).is_some_and(|v| !v.is_null()))
    {
        return Err(ApiError::bad_request("缺少必要字段: text"));
    }
    if b.get("messages")
        .is_some_and(|m| !m.is_null() && !m.is_array())
    {
        return Err(ApiError::bad_request("messages: 必须是数组"));
    }
    let body = Value::Object(b);
    let count = blocking(move || count_prompt(encoding.counter(), &body)).await?;
    Ok(Value::Object(counted(
        &model,
        encoding,
        estimated || count.estimated,
        count.tokens,
    )))
}

/// `POST /batch-calculate`: `texts` (strings) → one result each, in order.
pub async fn batch_calculate(rt: &Runtime, b: Body) -> Reply {
    require(&b, &["texts"])?;
    let Some(items) = b.get("texts").and_then(Value::as_array) else {
        return Err(ApiError::bad_request("texts: 必须是字符串数组"));
    };
    let texts: Vec<String> = items
        .iter()
        .map(|t| t.as_str().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| ApiError::bad_request("texts: 必须是字符串数组"))?;
    let model = model_of(&b)?;
    let (encoding, estimated) = encoding_for(rt, &b, &model)?;
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
    Ok(list_of(counts.into_iter().map(|(t, n)| {
        let mut m = counted(&model, encoding, estimated, n as u64);
        m.insert("text".into(), t.into());
        Value::Object(m)
    })))
}

fn model_entry(name: &str, encoding: Encoding, source: &str) -> Value {
    json!({
        "name": name,
        "encoding": encoding.name(),
        "source": source,
        "downloaded": true,
        "available": true,
        "type": "decoder-only",
        "tokenizer_type": TOKENIZER_TYPE,
    })
}

/// `GET /models`: the encodings themselves, the operator's `tokens.models`
/// patterns, well-known models as the running map resolves them, and the
/// fallback for anything else.
pub fn token_models(rt: &Runtime) -> Value {
    let map = &rt.limits.tokenizers;
    let mut out: Vec<Value> = Encoding::ALL
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
    let mut f = model_entry("*", fallback, "fallback");
    if let Value::Object(o) = &mut f {
        o.insert("estimated".into(), true.into());
    }
    out.push(f);
    Value::Array(out)
}

/// `POST /download-model`: nothing to download; a built-in encoding (or a
/// model the map knows) answers 200 and is loaded now, anything else 400
/// saying what is supported.
pub async fn download_model(rt: &Runtime, b: Body) -> Reply {
    let name = match b.get("model_name").or_else(|| b.get("model")) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(v) if !v.is_null() => return Err(ApiError::bad_request("model_name: 必须是字符串")),
        _ => return Err(ApiError::bad_request("缺少必要字段: model_name")),
    };
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
    Ok(json!({
        "success": true,
        "message": format!("模型 {name} 已内置 ({})，无需下载", encoding.name()),
        "model_name": name,
        "encoding": encoding.name(),
    }))
}
