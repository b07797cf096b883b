//! The request body as the decision reads it: parsed as JSON whatever its
//! declared `Content-Type`, bounded in size and shape, and the few LLM
//! fields the gateway acts on, type-checked.

use crate::error::GatewayError;
use serde_json::Value;

/// The LLM fields of a JSON request body, parsed once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LlmFields {
    pub model: Option<String>,
    pub stream: bool,
    /// The output limit per choice: the larger of `max_tokens` and
    /// `max_completion_tokens` when both are given (providers differ in
    /// which one wins; the gateway reasons on the one that costs more and
    /// clamps both).
    pub max_tokens: Option<u64>,
    pub messages: Option<usize>,
    /// Completions generated and billed: the larger of `n` and `best_of`
    /// (0 when neither is given, i.e. one).
    pub choices: u64,
}

/// Whether `path` is an endpoint whose body is a JSON request the
/// gateway's policy reads (chat, legacy completions, embeddings, Anthropic
/// messages, responses), under any prefix route or alias.
pub fn json_endpoint(path: &str) -> bool {
    const ENDPOINTS: [&str; 5] = [
        "/chat/completions",
        "/completions",
        "/embeddings",
        "/messages",
        "/responses",
    ];
    let path = path.trim_end_matches('/');
    ENDPOINTS.iter().any(|e| path.ends_with(e))
}

/// Parses a non-empty body as JSON **whatever its declared
/// `Content-Type`**: policy (model allow-lists, body matchers, token caps
/// and budgets, stream metering) must not depend on a header the client
/// chooses. On a model endpoint ([`json_endpoint`]) a body that is not JSON
/// is refused with 400; elsewhere (a file upload behind a prefix route,
/// say) it is forwarded as opaque bytes, which body matchers see as having
/// no fields.
pub fn parse_json(model_endpoint: bool, body: &[u8]) -> Result<Option<Value>, GatewayError> {
    if body.is_empty() {
        return Ok(None);
    }
    if let Err(e) = std::str::from_utf8(body) {
        if !model_endpoint {
            return Ok(None);
        }
        return Err(GatewayError::InvalidRequest(format!(
            "request body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )));
    }
    match serde_json::from_slice(body) {
        Ok(v) => Ok(Some(v)),
        Err(_) if !model_endpoint => Ok(None),
        Err(e) => Err(GatewayError::InvalidRequest(format!(
            "request body is not valid JSON: {e}"
        ))),
    }
}

/// The body bounded and parsed: at most `max_values` JSON values (a
/// cheap scan before the parser allocates anything), parsed per
/// [`parse_json`], and no object repeating a key (the parser keeps the
/// last of repeated keys; an upstream may read the first: the gateway
/// would decide on one and forward the other).
pub fn read_json(
    path: &str,
    body: &[u8],
    max_values: usize,
) -> Result<Option<Value>, GatewayError> {
    let shape = sluice_filters::json_size::scan(body, max_values)
        .ok_or(GatewayError::TooManyJsonValues(max_values))?;
    let parsed = parse_json(json_endpoint(path), body)?;
    if parsed
        .as_ref()
        .is_some_and(|v| sluice_filters::json_size::members(v) != shape.members)
    {
        return Err(GatewayError::InvalidRequest(
            "the request body repeats a key in a JSON object".into(),
        ));
    }
    Ok(parsed)
}

/// Extracts and type-checks the fields the gateway acts on.
pub fn llm_fields(body: &Value) -> Result<LlmFields, GatewayError> {
    let Value::Object(map) = body else {
        return Ok(LlmFields::default());
    };
    let bad =
        |field: &str, want: &str| GatewayError::InvalidRequest(format!("`{field}` must be {want}"));
    let model = match map.get("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("model", "a string")),
    };
    let stream = match map.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("stream", "a boolean")),
    };
    let uint = |field: &str| -> Result<Option<u64>, GatewayError> {
        match map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| bad(field, "a non-negative integer")),
        }
    };
    let max_tokens = uint("max_tokens")?.max(uint("max_completion_tokens")?);
    let mut choices = 0;
    for field in ["n", "best_of"] {
        match uint(field)? {
            Some(0) => return Err(bad(field, "at least 1")),
            Some(k) => choices = choices.max(k),
            None => {}
        }
    }
    let messages = match map.get("messages") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(items.len()),
        Some(_) => return Err(bad("messages", "an array")),
    };
    Ok(LlmFields {
        model,
        stream,
        max_tokens,
        messages,
        choices,
    })
}

/// Whether the client asked for the usage chunk of a stream
/// (`stream_options.include_usage`). Two map lookups: `Value::pointer`
/// splits and copies the path per call (about 1 400 instructions).
pub fn wants_usage(body: &Value) -> bool {
    body.get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn llm_fields_are_type_checked() {
        let f =
            llm_fields(&json!({"model":"m","stream":true,"max_tokens":5,"messages":[{}]})).unwrap();
        assert_eq!(
            f,
            LlmFields {
                model: Some("m".into()),
                stream: true,
                max_tokens: Some(5),
                messages: Some(1),
                choices: 0,
            }
        );
        for (body, field) in [
            (json!({"model": 1}), "model"),
            (json!({"stream": "yes"}), "stream"),
            (json!({"max_tokens": -1}), "max_tokens"),
            (json!({"max_tokens": 1.5}), "max_tokens"),
            (json!({"messages": "hi"}), "messages"),
            (json!({"n": 0}), "n"),
            (json!({"best_of": -2}), "best_of"),
        ] {
            let err = llm_fields(&body).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
        let f = llm_fields(
            &json!({"max_tokens": 5000, "max_completion_tokens": 10, "n": 3, "best_of": 4}),
        )
        .unwrap();
        assert_eq!((f.max_tokens, f.choices), (Some(5000), 4));
        let f = llm_fields(&json!({"max_tokens": 10, "max_completion_tokens": 5000})).unwrap();
        assert_eq!(f.max_tokens, Some(5000));
    }

    #[test]
    fn json_parsing_explains_failures() {
        assert!(parse_json(true, b"{\"a\":")
            .unwrap_err()
            .to_string()
            .contains("JSON"));
        assert!(parse_json(true, b"{\"a\":\"\xff\"}")
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
        // Off the model endpoints a body that is not JSON is opaque.
        assert_eq!(parse_json(false, b"not json").unwrap(), None);
        assert_eq!(parse_json(false, b"\xff\xfe").unwrap(), None);
        // JSON is JSON on every path, whatever the client declared.
        assert!(parse_json(false, b"{}").unwrap().is_some());
        assert!(parse_json(true, b"{}").unwrap().is_some());
        // Repeated keys are refused.
        assert!(read_json("/v1/chat/completions", br#"{"a":1,"a":2}"#, 100).is_err());
        assert!(read_json("/v1/chat/completions", br#"[1,2,3]"#, 2).is_err());
    }

    #[test]
    fn model_endpoints_are_recognised_under_any_prefix() {
        for p in [
            "/v1/chat/completions",
            "/openai/v1/chat/completions/",
            "/v1/completions",
            "/v1/embeddings",
            "/v1/messages",
            "/v1/responses",
            "/internal/v1/chat/completions",
            "/api/chat/completions",
        ] {
            assert!(json_endpoint(p), "{p}");
        }
        for p in ["/v1/models", "/v1/files", "/echo/secret", "/"] {
            assert!(!json_endpoint(p), "{p}");
        }
    }
}
