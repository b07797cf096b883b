//! The gateway's client-facing errors: one enum, each case with its HTTP
//! status and stable machine code, rendered in one JSON shape that both
//! OpenAI SDKs (`error.message`) and internal-channel clients (top-level `code`,
//! `message`, `source`, `trace_id`, `upstream_status`, `upstream_code`)
//! read: `{"error":{"code","message","type","source","trace_id",…},
//! "code","message","source","trace_id",…}`. Errors a provider answered
//! are mapped into the same shape ([`upstream_error_body`]). Messages are
//! written for clients and never carry internal error text.

use serde_json::json;

/// Every error the gateway itself answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// The API key may not use this model (`auth.keys[].models`).
    #[error("this API key may not use model {0:?}")]
    ModelNotAllowed(String),
    #[error("no route matches {0}")]
    RouteNotFound(String),
    #[error("request body exceeds the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body did not arrive in time (clients.body_timeout_ms)")]
    RequestTimeout,
    #[error("the request head did not arrive in time (clients.header_timeout_ms)")]
    HeadTimeout,
    #[error("the request head is larger than {0} bytes (clients.max_header_bytes)")]
    HeadTooLarge(usize),
    #[error("too many open connections (clients.max_connections / max_connections_per_client)")]
    TooManyConnections,
    #[error("the request body holds more than {0} JSON values (limits.max_json_values)")]
    TooManyJsonValues(usize),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("could not connect to the upstream")]
    UpstreamConnect,
    #[error("the upstream failed while answering")]
    UpstreamError,
    #[error("no healthy upstream server is available")]
    NoHealthyUpstream,
    /// Every usable server is at its `max_connections`.
    #[error("the upstream servers are at their concurrency limit (max_connections)")]
    UpstreamConcurrency,
    #[error("the upstream did not answer in time")]
    UpstreamTimeout,
    #[error("internal gateway error")]
    Internal,
    /// Every deployment tried answered an error status (the last one's).
    #[error("the upstream answered {0}")]
    UpstreamStatus(u16),
    /// A limit rule denied the request (429/503 with rate-limit headers).
    #[error("{}", .0.message)]
    Limited(Box<LimitDenial>),
}

/// A limit rule's denial as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitDenial {
    /// 429 or 503.
    pub status: u16,
    /// `rate_limited`, `token_limit_exceeded`, `concurrency_limited`, `limits_unavailable`.
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After`.
    pub retry_after_secs: u64,
    /// `x-ratelimit-*` headers.
    pub headers: Vec<(&'static str, String)>,
    /// The rule that denied (for metrics).
    pub rule_id: u64,
}

impl LimitDenial {
    /// 503 `limits_unavailable`: the counter store cannot be asked, and
    /// what needed it (`message`) is refused (`Retry-After: 1`).
    pub fn store_unavailable(message: String) -> GatewayError {
        GatewayError::Limited(Box::new(LimitDenial {
            status: 503,
            code: "limits_unavailable",
            message,
            retry_after_secs: 1,
            headers: Vec::new(),
            rule_id: 0,
        }))
    }
}

impl GatewayError {
    /// HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::Unauthorized(_) => 401,
            GatewayError::Forbidden(_) | GatewayError::ModelNotAllowed(_) => 403,
            GatewayError::RouteNotFound(_) => 404,
            GatewayError::PayloadTooLarge(_) | GatewayError::TooManyJsonValues(_) => 413,
            GatewayError::RequestTimeout | GatewayError::HeadTimeout => 408,
            GatewayError::HeadTooLarge(_) => 431,
            GatewayError::TooManyConnections => 503,
            GatewayError::InvalidRequest(_) => 400,
            GatewayError::UpstreamConnect | GatewayError::UpstreamError => 502,
            GatewayError::NoHealthyUpstream | GatewayError::UpstreamConcurrency => 503,
            GatewayError::UpstreamTimeout => 504,
            GatewayError::Internal => 500,
            GatewayError::UpstreamStatus(s) => upstream_client_status(*s),
            GatewayError::Limited(d) => d.status,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::Unauthorized(_) => "unauthorized",
            GatewayError::Forbidden(_) => "forbidden",
            GatewayError::ModelNotAllowed(_) => "model_not_allowed",
            GatewayError::RouteNotFound(_) => "route_not_found",
            GatewayError::PayloadTooLarge(_) | GatewayError::TooManyJsonValues(_) => {
                "payload_too_large"
            }
            GatewayError::RequestTimeout | GatewayError::HeadTimeout => "request_timeout",
            GatewayError::HeadTooLarge(_) => "header_too_large",
            GatewayError::TooManyConnections => "too_many_connections",
            GatewayError::InvalidRequest(_) => "invalid_request",
            GatewayError::UpstreamConnect => "upstream_connect_error",
            GatewayError::UpstreamError => "upstream_error",
            GatewayError::NoHealthyUpstream => "no_healthy_upstream",
            GatewayError::UpstreamConcurrency => "upstream_concurrency_exceeded",
            GatewayError::UpstreamTimeout => "upstream_timeout",
            GatewayError::Internal => "internal_error",
            GatewayError::UpstreamStatus(s) => upstream_code(upstream_client_status(*s)).0,
            GatewayError::Limited(d) => d.code,
        }
    }

    /// Error family, in the spirit of OpenAI's `error.type`.
    pub fn kind(&self) -> &'static str {
        match self.status() {
            401 | 403 => "authentication_error",
            402 => "insufficient_quota",
            400 | 404 | 408 | 413 | 431 => "invalid_request_error",
            429 => "rate_limit_error",
            _ => "gateway_error",
        }
    }

    /// Who caused it: `client`, `upstream` or `gateway`.
    pub fn source(&self) -> &'static str {
        match self {
            GatewayError::UpstreamConnect
            | GatewayError::UpstreamError
            | GatewayError::UpstreamStatus(_)
            | GatewayError::UpstreamTimeout => "upstream",
            GatewayError::Internal
            | GatewayError::NoHealthyUpstream
            | GatewayError::UpstreamConcurrency
            | GatewayError::Limited(_) => "gateway",
            _ => "client",
        }
    }

    /// The JSON body.
    pub fn body(&self, trace_id: &str) -> Vec<u8> {
        shape(
            self.code(),
            &self.to_string(),
            self.kind(),
            self.source(),
            trace_id,
            match self {
                GatewayError::UpstreamStatus(s) => Some((*s, None)),
                _ => None,
            },
        )
    }
}

impl GatewayError {
    /// The body an external-channel client gets (every path but
    /// `/internal/…`): OpenAI's error object with `code`, `message`, `type`
    /// and `trace_id` only. No `source`, no provider status or code, and
    /// an upstream failure described without the provider's words.
    pub fn external_body(&self, trace_id: &str) -> Vec<u8> {
        let message = match self {
            GatewayError::UpstreamStatus(s) => {
                external_upstream_message(upstream_client_status(*s)).to_string()
            }
            other => other.to_string(),
        };
        external_shape(self.code(), &message, self.kind(), trace_id)
    }

    /// The body in Anthropic's error shape, for clients of the Messages
    /// API (`POST /v1/messages`): `{"type":"error","error":{"type",
    /// "message"}}`, with the gateway's `code` and `trace_id` beside them.
    pub fn anthropic_body(&self, trace_id: &str) -> Vec<u8> {
        let kind = match self.status() {
            400 | 408 | 413 | 422 | 431 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            _ => "api_error",
        };
        let message = match self {
            GatewayError::UpstreamStatus(s) => {
                external_upstream_message(upstream_client_status(*s)).to_string()
            }
            other => other.to_string(),
        };
        json!({"type": "error", "error": {"type": kind, "message": message,
            "code": self.code(), "trace_id": trace_id}})
        .to_string()
        .into_bytes()
    }
}

/// A client-supplied string as it may appear in an error message: at most
/// 128 bytes (cut on a character boundary, `…` added), so an answer never
/// echoes a huge input back.
pub fn clip(s: &str) -> String {
    const MAX: usize = 128;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// An error of the gateway's own endpoints (the Bridge) in the internal
/// channel's shape: `status` gives its `type`.
pub fn shape_of(code: &str, message: &str, status: u16, source: &str, trace_id: &str) -> Vec<u8> {
    let kind = match status {
        401 | 403 => "authentication_error",
        400 | 404 | 405 | 408 | 409 | 413 => "invalid_request_error",
        429 => "rate_limit_error",
        _ => "api_error",
    };
    shape(code, message, kind, source, trace_id, None)
}

/// The one error shape: OpenAI's `error` object plus the internal channel's top level.
fn shape(
    code: &str,
    message: &str,
    kind: &str,
    source: &str,
    trace_id: &str,
    upstream: Option<(u16, Option<&str>)>,
) -> Vec<u8> {
    let (ustatus, ucode) = match upstream {
        Some((s, c)) => (json!(s), json!(c)),
        None => (serde_json::Value::Null, serde_json::Value::Null),
    };
    json!({
        "error": {
            "code": code,
            "message": message,
            "type": kind,
            "source": source,
            "trace_id": trace_id,
            "upstream_status": ustatus,
            "upstream_code": ucode,
        },
        "code": code,
        "message": message,
        "source": source,
        "trace_id": trace_id,
        "upstream_status": ustatus,
        "upstream_code": ucode,
    })
    .to_string()
    .into_bytes()
}

/// The external channel's error shape (see [`GatewayError::external_body`]).
fn external_shape(code: &str, message: &str, kind: &str, trace_id: &str) -> Vec<u8> {
    json!({
        "error": {"code": code, "message": message, "type": kind, "trace_id": trace_id},
        "code": code,
        "message": message,
        "trace_id": trace_id,
    })
    .to_string()
    .into_bytes()
}

/// What an external client is told about an upstream failure answered
/// with client status `status`.
fn external_upstream_message(status: u16) -> &'static str {
    match status {
        429 => "the model provider is limiting requests: retry later",
        400..=499 => "the model provider refused the request as invalid",
        503 => "the model provider is unavailable: retry later",
        504 => "the model provider did not answer in time",
        _ => "the model provider failed to answer",
    }
}

/// A provider's error answer for an external-channel client: the
/// gateway's code for the status and a message of its own; the provider's
/// body (which may name deployments, accounts or internal ids) is dropped.
pub fn external_upstream_error_body(upstream_status: u16, trace_id: &str) -> Vec<u8> {
    let status = upstream_client_status(upstream_status);
    let (code, kind) = upstream_code(status);
    external_shape(code, external_upstream_message(status), kind, trace_id)
}

/// The status a client gets for an upstream's final error answer (seed
/// 001's table): the provider's 400/404/413/422 stay (the request is at
/// fault), 429 stays, a provider auth failure (the gateway's key) and
/// other 5xx become 502, 503/529 (overloaded) become 503, 504 stays.
pub fn upstream_client_status(upstream: u16) -> u16 {
    match upstream {
        400 | 404 | 409 | 413 | 422 | 429 => upstream,
        503 | 529 => 503,
        504 => 504,
        _ => 502,
    }
}

/// Code and type of an upstream error answered with client status `status`.
fn upstream_code(status: u16) -> (&'static str, &'static str) {
    match status {
        429 => ("upstream_rate_limited", "rate_limit_error"),
        400..=499 => ("upstream_invalid_request", "invalid_request_error"),
        503 => ("upstream_unavailable", "gateway_error"),
        504 => ("upstream_timeout", "gateway_error"),
        _ => ("upstream_error", "gateway_error"),
    }
}

/// Rewrites a provider's error answer (OpenAI, Azure or Anthropic body)
/// into the gateway's shape, keeping its status and code as
/// `upstream_status` / `upstream_code`.
pub fn upstream_error_body(upstream_status: u16, body: &[u8], trace_id: &str) -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let err = v.get("error");
    let text = |k: &str| err.and_then(|e| e.get(k)).and_then(|x| x.as_str());
    // OpenAI: error.code (or type); Anthropic: error.type.
    let ucode = text("code").or_else(|| text("type"));
    let message = text("message")
        .map(str::to_string)
        .unwrap_or_else(|| format!("the upstream answered {upstream_status}"));
    let (code, kind) = upstream_code(upstream_client_status(upstream_status));
    shape(
        code,
        &message,
        kind,
        "upstream",
        trace_id,
        Some((upstream_status, ucode)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_stable_shape() {
        let e = GatewayError::RouteNotFound("/nope".into());
        let v: serde_json::Value = serde_json::from_slice(&e.body("req-1")).unwrap();
        assert_eq!(v["error"]["code"], "route_not_found");
        assert_eq!(v["error"]["trace_id"], "req-1");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(e.status(), 404);
        assert_eq!(v["code"], "route_not_found");
        assert_eq!(v["source"], "client");
        assert_eq!(v["error"]["message"], v["message"]);
    }

    #[test]
    fn external_bodies_carry_no_internals() {
        let v: serde_json::Value =
            serde_json::from_slice(&GatewayError::UpstreamStatus(503).external_body("t-1"))
                .unwrap();
        assert_eq!(v["code"], "upstream_unavailable");
        assert_eq!(v["trace_id"], "t-1");
        assert_eq!(v["error"]["trace_id"], "t-1");
        for gone in ["source", "upstream_status", "upstream_code"] {
            assert!(
                v.get(gone).is_none() && v["error"].get(gone).is_none(),
                "{v}"
            );
        }
        assert!(!v.to_string().contains("503"), "{v}");
        let v: serde_json::Value =
            serde_json::from_slice(&external_upstream_error_body(401, "t")).unwrap();
        assert_eq!(v["code"], "upstream_error");
        assert_eq!(v["message"], "the model provider failed to answer");
        assert_eq!(v.as_object().unwrap().len(), 4, "{v}");
    }

    #[test]
    fn upstream_errors_keep_their_status_and_code() {
        for (status, body, client, code, ucode) in [
            (
                429,
                r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#,
                429,
                "upstream_rate_limited",
                "rate_limit_exceeded",
            ),
            (
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                503,
                "upstream_unavailable",
                "overloaded_error",
            ),
            (
                400,
                r#"{"error":{"message":"bad","type":"invalid_request_error","code":null}}"#,
                400,
                "upstream_invalid_request",
                "invalid_request_error",
            ),
            (
                401,
                r#"{"error":{"code":"401","message":"Access denied due to invalid subscription key."}}"#,
                502,
                "upstream_error",
                "401",
            ),
        ] {
            let v: serde_json::Value =
                serde_json::from_slice(&upstream_error_body(status, body.as_bytes(), "t")).unwrap();
            assert_eq!(upstream_client_status(status), client);
            assert_eq!(v["code"], code, "{v}");
            assert_eq!(v["error"]["code"], code);
            assert_eq!(v["source"], "upstream");
            assert_eq!(v["upstream_status"], status);
            assert_eq!(v["upstream_code"], ucode);
            assert!(v["error"]["message"].as_str().unwrap().len() > 2);
        }
        let v: serde_json::Value =
            serde_json::from_slice(&upstream_error_body(500, b"<html>", "t")).unwrap();
        assert_eq!(v["message"], "the upstream answered 500");
        assert_eq!(v["upstream_code"], serde_json::Value::Null);
    }
}
