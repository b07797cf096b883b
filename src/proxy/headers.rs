//! Upstream request hygiene (`upstream_request_filter`): path rewrite, Host,
//! provider auth injection, removal of the client's gateway credentials and
//! of hop-by-hop headers, body framing, request id and `X-Forwarded-For`.

use super::ctx::{Plan, RequestCtx};
use crate::config::ProviderKind;
use crate::state::Runtime;
use crate::upstream::ServerRt;
use http::header::{self, HeaderName};
use pingora::http::RequestHeader;
use pingora::Result;

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus ones a proxy must not pass on.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    // The gateway meters response bodies; it asks for them uncompressed.
    "accept-encoding",
];

/// Rewrites the request header sent upstream.
pub fn prepare(
    req: &mut RequestHeader,
    rt: &Runtime,
    plan: &Plan,
    server: &ServerRt,
    ctx: &RequestCtx,
    client_ip: Option<String>,
) -> Result<()> {
    if let Some(uri) = &plan.upstream_uri {
        let uri: http::Uri = uri.parse().map_err(|_| {
            pingora::Error::explain(pingora::ErrorType::InternalError, "bad rewritten uri")
        })?;
        req.set_uri(uri);
    }

    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = req
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        req.remove_header(&name);
    }
    for name in HOP_BY_HOP {
        req.remove_header(*name);
    }

    // The client's gateway credentials never reach the upstream. With auth
    // off and no provider key, `Authorization` passes through unchanged
    // (the gateway is then a plain proxy for the client's own key).
    let injects_auth = server.api_key.is_some();
    if rt.config.auth.enabled || injects_auth {
        req.remove_header("authorization");
        req.remove_header("x-api-key");
        req.remove_header("api-key");
    }
    if let Some(custom) = &rt.auth_header {
        req.remove_header(custom);
    }
    if let Some(key) = &server.api_key {
        let key = key.expose().as_str();
        match server.provider {
            ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
                req.insert_header("authorization", format!("Bearer {key}"))?
            }
            ProviderKind::Azure => req.insert_header("api-key", key)?,
            ProviderKind::Anthropic => {
                req.insert_header("x-api-key", key)?;
                if req.headers.get("anthropic-version").is_none() {
                    req.insert_header("anthropic-version", "2023-06-01")?;
                }
            }
        }
    }
    for (name, value) in &server.inject_headers {
        req.insert_header(name.clone(), value.clone())?;
    }

    req.insert_header(header::HOST, server.host_header.as_str())?;
    req.insert_header("x-request-id", ctx.request_id.as_str())?;
    if rt.config.forward_xff {
        if let Some(ip) = client_ip {
            let value = match req
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
            {
                Some(prev) => format!("{prev}, {ip}"),
                None => ip,
            };
            req.insert_header("x-forwarded-for", value)?;
        }
    } else {
        req.remove_header("x-forwarded-for");
    }

    // The body was read whole: frame it with its exact length.
    if plan.has_body {
        req.insert_header(header::CONTENT_LENGTH, plan.body.len().to_string())?;
    } else {
        req.remove_header(&header::CONTENT_LENGTH);
    }
    Ok(())
}
