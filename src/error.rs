//! The gateway's client-facing errors: one enum, each case with its HTTP
//! status and stable machine code, rendered in one JSON shape:
//! `{"error":{"code":"…","message":"…","type":"…","trace_id":"…"}}`.
//! Messages are written for clients and never carry internal error text.

use serde_json::json;

/// Every error the gateway itself answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("no route matches {0}")]
    RouteNotFound(String),
    #[error("request body exceeds the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("could not connect to the upstream")]
    UpstreamConnect,
    #[error("the upstream failed while answering")]
    UpstreamError,
    #[error("no healthy upstream server is available")]
    NoHealthyUpstream,
    #[error("the upstream did not answer in time")]
    UpstreamTimeout,
    #[error("internal gateway error")]
    Internal,
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

impl GatewayError {
    /// HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::Unauthorized(_) => 401,
            GatewayError::Forbidden(_) => 403,
            GatewayError::RouteNotFound(_) => 404,
            GatewayError::PayloadTooLarge(_) => 413,
            GatewayError::InvalidRequest(_) => 400,
            GatewayError::UpstreamConnect | GatewayError::UpstreamError => 502,
            GatewayError::NoHealthyUpstream => 503,
            GatewayError::UpstreamTimeout => 504,
            GatewayError::Internal => 500,
            GatewayError::Limited(d) => d.status,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::Unauthorized(_) => "unauthorized",
            GatewayError::Forbidden(_) => "forbidden",
            GatewayError::RouteNotFound(_) => "route_not_found",
            GatewayError::PayloadTooLarge(_) => "payload_too_large",
            GatewayError::InvalidRequest(_) => "invalid_request",
            GatewayError::UpstreamConnect => "upstream_connect_error",
            GatewayError::UpstreamError => "upstream_error",
            GatewayError::NoHealthyUpstream => "no_healthy_upstream",
            GatewayError::UpstreamTimeout => "upstream_timeout",
            GatewayError::Internal => "internal_error",
            GatewayError::Limited(d) => d.code,
        }
    }

    /// Error family, in the spirit of OpenAI's `error.type`.
    pub fn kind(&self) -> &'static str {
        match self.status() {
            401 | 403 => "authentication_error",
            400 | 404 | 413 => "invalid_request_error",
            429 => "rate_limit_error",
            _ => "gateway_error",
        }
    }

    /// The JSON body.
    pub fn body(&self, trace_id: &str) -> Vec<u8> {
        json!({"error": {
            "code": self.code(),
            "message": self.to_string(),
            "type": self.kind(),
            "trace_id": trace_id,
        }})
        .to_string()
        .into_bytes()
    }
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
    }
}
