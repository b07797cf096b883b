//! Admission, run once per client request in `request_filter`: API key →
//! body (read whole, up to the limit) → JSON fields → namespace (matchers)
//! → route → limit rules (`limits.rs`). Produces a [`Plan`] or the [`GatewayError`] to answer with. The
//! decisions themselves are `sluice_filters` functions; this file only
//! gathers their inputs from the Pingora session.

use super::client_format::ClientFormat;
use super::ctx::{CatalogPlan, LlmFields, Plan};
use super::headers::X_API_KEY;
use super::limits::{self, LimitInput};
use super::observe::{self, Obs};
use crate::catalog::Operation;
use crate::error::GatewayError;
use crate::state::Runtime;
use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, AUTHORIZATION};
use http::HeaderMap;
use pingora::proxy::Session;
use serde_json::Value;
use sluice_filters::auth::extract_key;
use sluice_filters::facts::{HeaderLookup, RequestFacts};
use sluice_filters::matcher::NamespaceDecision;
use sluice_filters::routing::RouteMatch;

/// `HeaderLookup` over Pingora's request headers.
struct Headers<'a>(&'a HeaderMap);

impl HeaderLookup for Headers<'_> {
    /// Matchers and rules name headers as text. `HeaderMap::get(&str)`
    /// parses the name on every call (lower-casing it into a buffer, trying
    /// the standard names, then hashing it): ≈ 350 instructions. A request
    /// carries a handful of headers, so comparing the stored (lower-case)
    /// names by length and bytes is cheaper; a large map uses the index.
    fn header(&self, name: &str) -> Option<&str> {
        let map = self.0;
        let value = if map.keys_len() <= SCAN_HEADERS {
            map.iter()
                .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        } else {
            map.get(name)
        };
        value.and_then(|v| v.to_str().ok())
    }
}

/// Up to this many header names, [`Headers`] finds a name by comparing.
const SCAN_HEADERS: usize = 16;

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Runs admission. `Err` carries the error to answer with. `obs` gets the
/// request's labels as they are resolved (a denied request keeps those
/// known so far).
pub async fn admit(
    session: &mut Session,
    rt: &Runtime,
    request_id: &str,
    obs: &mut Obs,
) -> Result<Plan, GatewayError> {
    let key = authenticate(session, rt)?;
    obs.key = key;
    let (body, has_body) = read_body(session, rt.config.limits.max_body_bytes).await?;
    let parsed = parse_json(session.req_header().headers.get("content-type"), &body)?;
    // Anthropic's Messages API for a catalog model: admitted as the OpenAI
    // chat request it translates to; the answer is translated back
    // (`client_format.rs`).
    let (parsed, body, client_format) = match anthropic_client(session, rt, parsed, body)? {
        (parsed, body, Some(model)) => (parsed, body, Some(ClientFormat::Anthropic { model })),
        (parsed, body, None) => (parsed, body, None),
    };
    let llm = parsed
        .as_ref()
        .map(llm_fields)
        .transpose()?
        .unwrap_or_default();
    observe::model(obs, rt, llm.model.as_deref(), llm.stream);
    if let (Some(k), Some(model)) = (key, llm.model.as_deref()) {
        if !rt.keys[k].allows(model) {
            return Err(GatewayError::ModelNotAllowed(model.to_string()));
        }
    }

    let req = session.req_header();
    let headers = Headers(&req.headers);
    // Seed paths (`/api/…`, `/internal/v1/…`) are routed and forwarded as
    // the OpenAI path they alias.
    let internal_channel = req.uri.path().starts_with("/internal/");
    let alias = match client_format {
        Some(ClientFormat::Anthropic { .. }) => Some("/v1/chat/completions"),
        None => alias_of(req.uri.path()),
    };
    let path = alias.unwrap_or(req.uri.path());
    let facts = RequestFacts {
        method: req.method.as_str(),
        path,
        query: req.uri.query(),
        headers: &headers,
        body: parsed.as_ref(),
        raw_body: &body,
    };
    let bound = key.and_then(|k| rt.keys[k].namespace);
    let namespace = match rt.resolver.resolve(&facts, bound) {
        NamespaceDecision::Namespace { index, .. } if rt.namespaces[index].active => index,
        NamespaceDecision::Namespace { index, .. } => {
            return Err(GatewayError::Forbidden(format!(
                "namespace {} is inactive",
                rt.namespaces[index].code
            )))
        }
        NamespaceDecision::Deny { matcher } => {
            return Err(GatewayError::Forbidden(format!(
                "request denied by matcher {matcher}"
            )))
        }
        NamespaceDecision::NoNamespace => {
            return Err(GatewayError::Forbidden(
                "no namespace accepts this request".into(),
            ))
        }
    };
    obs.namespace = Some(namespace);
    // A catalog model is served by its deployments; everything else by
    // the routes (the lookup is skipped when there is no catalog).
    let catalog_model = if rt.catalog.is_empty() || req.method != http::Method::POST {
        None
    } else {
        let op = match path {
            "/v1/chat/completions" => Some(Operation::Chat),
            "/v1/embeddings" => Some(Operation::Embeddings),
            _ => None,
        };
        op.zip(llm.model.as_deref().and_then(|m| rt.catalog.find(m)))
    };
    let route = rt.router.route(&facts, namespace);
    if route.is_none() && catalog_model.is_none() {
        return Err(GatewayError::RouteNotFound(format!(
            "{} {}",
            facts.method, facts.path
        )));
    }
    if let Some(route) = &route {
        obs.route = Some(rt.obs.route_index(route));
        obs.pool = Some(route.target());
    }
    let upstream_uri = match &route {
        Some(RouteMatch::Prefix {
            path: Some(path), ..
        }) => Some(match facts.query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        }),
        _ => alias.map(|p| match facts.query {
            Some(q) => format!("{p}?{q}"),
            None => p.to_string(),
        }),
    };
    let pool = match (catalog_model, &route) {
        (Some((_, m)), _) => rt.catalog.models[m]
            .deployments
            .first()
            .map_or(0, |d| d.pool),
        (None, Some(route)) => route.target(),
        (None, None) => return Err(GatewayError::Internal),
    };
    let granted = limits::admit(
        rt,
        &LimitInput {
            namespace,
            key,
            route: route.as_ref(),
            pool,
            model: llm.model.as_deref(),
            requested_output: llm.max_tokens,
            body: parsed.as_ref(),
            headers: &headers,
            request_id,
        },
    )
    .await
    .inspect_err(|e| {
        if let GatewayError::Limited(d) = e {
            observe::denied(obs, rt, d.rule_id, d.code);
        }
    })?;
    let metered = granted.as_ref().is_some_and(|g| g.metered);
    let client_wants_usage = parsed.as_ref().is_some_and(wants_usage);
    let mut body = body;
    let mut body_rewritten = false;
    let mut parsed = parsed;
    if let (Some(json), Some(g)) = (parsed.as_mut(), &granted) {
        let ask_usage = metered && llm.stream && !client_wants_usage;
        if rewrite_body(json, &llm, g.output_cap, ask_usage) {
            body = Bytes::from(serde_json::to_vec(json).map_err(|_| GatewayError::Internal)?);
            body_rewritten = true;
        }
    }
    // Seed 002: the internal channel's `session_id` is echoed back, never
    // sent upstream (providers refuse unknown fields).
    let mut session_id = None;
    if internal_channel {
        if let Some(Value::Object(map)) = parsed.as_mut() {
            match map.remove("session_id") {
                None | Some(Value::Null) => {}
                Some(Value::String(id)) => {
                    session_id = Some(id);
                    body =
                        Bytes::from(serde_json::to_vec(&map).map_err(|_| GatewayError::Internal)?);
                    body_rewritten = true;
                }
                Some(_) => {
                    return Err(GatewayError::InvalidRequest(
                        "session_id must be a string".into(),
                    ))
                }
            }
        }
    }
    let catalog = match (catalog_model, parsed) {
        (Some((op, model)), Some(json)) => {
            let prompt = granted
                .as_ref()
                .filter(|g| g.metered)
                .map_or(body.len() as u64 / 4, |g| g.prompt_tokens);
            Some(CatalogPlan {
                model,
                op,
                include_usage: wants_usage(&json),
                body: json,
                estimated_tokens: prompt + llm.max_tokens.unwrap_or(0),
                outcome: Default::default(),
            })
        }
        _ => None,
    };
    Ok(Plan {
        namespace,
        key,
        pool,
        upstream_uri,
        body,
        has_body,
        body_rewritten,
        llm,
        granted,
        metered,
        client_wants_usage,
        catalog,
        reported_usage: Default::default(),
        session_id,
        client_format,
    })
}

/// A `POST /v1/messages` body naming a catalog model, translated to the
/// OpenAI chat request (body and parsed JSON); the public model name says
/// the answer must be translated back. Anything else is returned as is.
fn anthropic_client(
    session: &Session,
    rt: &Runtime,
    parsed: Option<Value>,
    body: Bytes,
) -> Result<(Option<Value>, Bytes, Option<String>), GatewayError> {
    let req = session.req_header();
    let model = parsed
        .as_ref()
        .and_then(|v| v.get("model"))
        .and_then(Value::as_str)
        .filter(|m| rt.catalog.find(m).is_some())
        .map(str::to_string);
    let (Some(json), Some(model)) = (parsed.as_ref(), model) else {
        return Ok((parsed, body, None));
    };
    if req.method != http::Method::POST || req.uri.path() != "/v1/messages" {
        return Ok((parsed, body, None));
    }
    let openai = sluice_filters::translate::anthropic_to_openai(json)
        .map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
    let bytes = Bytes::from(serde_json::to_vec(&openai).map_err(|_| GatewayError::Internal)?);
    Ok((Some(openai), bytes, Some(model)))
}

/// The OpenAI path a seed path stands for: seed 001's
/// `/api/chat/completions`, seed 002's `/internal/v1/…`.
pub fn alias_of(path: &str) -> Option<&'static str> {
    match path {
        "/api/chat/completions" | "/internal/v1/chat/completions" => Some("/v1/chat/completions"),
        "/internal/v1/embeddings" => Some("/v1/embeddings"),
        "/internal/v1/models" => Some("/v1/models"),
        _ => None,
    }
}

/// Whether the client asked for the usage chunk of a stream
/// (`stream_options.include_usage`). Two map lookups: `Value::pointer`
/// splits and copies the path per call (about 1 400 instructions).
fn wants_usage(body: &Value) -> bool {
    body.get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Clamps the output limit the upstream sees to `cap` (so the provider
/// stops by itself within the budget) and, for metered streams, asks for
/// the usage chunk. Only chat/completions bodies are touched. Returns
/// whether the body changed.
fn rewrite_body(body: &mut Value, llm: &LlmFields, cap: Option<u64>, ask_usage: bool) -> bool {
    let Value::Object(map) = body else {
        return false;
    };
    if llm.messages.is_none() && !map.contains_key("prompt") {
        return false;
    }
    let mut changed = false;
    if let Some(cap) = cap {
        if llm.max_tokens.is_none_or(|r| r > cap) {
            // o-series and gpt-5 models refuse `max_tokens`.
            let model = llm.model.as_deref().unwrap_or("");
            let newer = model.starts_with("gpt-5")
                || (model.starts_with('o') && model[1..].starts_with(|c: char| c.is_ascii_digit()));
            let field = if map.contains_key("max_completion_tokens") || newer {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            map.insert(field.to_string(), Value::from(cap));
            changed = true;
        }
    }
    if ask_usage {
        let options = map
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(o) = options {
            o.insert("include_usage".to_string(), Value::Bool(true));
            changed = true;
        }
    }
    changed
}

/// Checks the API key; returns the index of the key that matched.
pub fn authenticate(session: &Session, rt: &Runtime) -> Result<Option<usize>, GatewayError> {
    if !rt.config.auth.enabled {
        return Ok(None);
    }
    let h = &session.req_header().headers;
    let custom = rt
        .auth_header
        .as_ref()
        .and_then(|name| h.get(name).and_then(|v| v.to_str().ok()));
    let presented = extract_key(header(h, &AUTHORIZATION), header(h, &X_API_KEY), custom)
        .ok_or_else(|| GatewayError::Unauthorized("missing API key".into()))?;
    rt.keyring
        .lookup(presented.as_bytes())
        .map(Some)
        .ok_or_else(|| GatewayError::Unauthorized("invalid API key".into()))
}

/// Reads the whole request body, refusing more than `limit` bytes.
///
/// Retry buffering is enabled first: for bodies up to Pingora's 64 KiB
/// retry buffer, Pingora replays the buffer upstream (on every attempt);
/// larger bodies are handed to a subrequest with the body preset (see
/// `handoff.rs`).
async fn read_body(session: &mut Session, limit: usize) -> Result<(Bytes, bool), GatewayError> {
    let req = session.req_header();
    let declared = req
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = req.headers.contains_key(http::header::TRANSFER_ENCODING);
    if declared.is_some_and(|n| n > limit) {
        return Err(GatewayError::PayloadTooLarge(limit));
    }
    if !chunked && declared.unwrap_or(0) == 0 {
        return Ok((Bytes::new(), false));
    }
    let expects_continue = req
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let downstream = session.as_downstream_mut();
    downstream.enable_retry_buffering();
    if expects_continue {
        downstream
            .write_continue_response()
            .await
            .map_err(|_| GatewayError::InvalidRequest("client went away".into()))?;
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(8192).min(limit));
    loop {
        match downstream.read_request_body().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > limit {
                    return Err(GatewayError::PayloadTooLarge(limit));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(GatewayError::InvalidRequest(format!(
                    "could not read the request body: {}",
                    e.etype().as_str()
                )))
            }
        }
    }
    Ok((buf.freeze(), true))
}

/// Parses the body as JSON when it claims to be JSON (or claims nothing).
fn parse_json(
    content_type: Option<&http::HeaderValue>,
    body: &[u8],
) -> Result<Option<Value>, GatewayError> {
    if body.is_empty() {
        return Ok(None);
    }
    let is_json = match content_type {
        None => true,
        Some(ct) => ct
            .to_str()
            .map(|s| s.to_ascii_lowercase().contains("json"))
            .unwrap_or(false),
    };
    if !is_json {
        return Ok(None);
    }
    if let Err(e) = std::str::from_utf8(body) {
        return Err(GatewayError::InvalidRequest(format!(
            "request body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )));
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| GatewayError::InvalidRequest(format!("request body is not valid JSON: {e}")))
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
    let mut max_tokens = None;
    for field in ["max_tokens", "max_completion_tokens"] {
        match map.get(field) {
            None | Some(Value::Null) => {}
            Some(v) => {
                max_tokens = Some(
                    v.as_u64()
                        .ok_or_else(|| bad(field, "a non-negative integer"))?,
                )
            }
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
    })
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
                messages: Some(1)
            }
        );
        for (body, field) in [
            (json!({"model": 1}), "model"),
            (json!({"stream": "yes"}), "stream"),
            (json!({"max_tokens": -1}), "max_tokens"),
            (json!({"max_tokens": 1.5}), "max_tokens"),
            (json!({"messages": "hi"}), "messages"),
        ] {
            let err = llm_fields(&body).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn json_parsing_explains_failures() {
        let ct = http::HeaderValue::from_static("application/json");
        assert!(parse_json(Some(&ct), b"{\"a\":")
            .unwrap_err()
            .to_string()
            .contains("JSON"));
        assert!(parse_json(Some(&ct), b"{\"a\":\"\xff\"}")
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
        let text = http::HeaderValue::from_static("text/plain");
        assert_eq!(parse_json(Some(&text), b"not json").unwrap(), None);
        assert!(parse_json(None, b"{}").unwrap().is_some());
    }
}
