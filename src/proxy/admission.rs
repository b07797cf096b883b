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
    let body_deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(rt.config.clients.body_timeout_ms);
    let (body, has_body) =
        read_body(session, rt.config.limits.max_body_bytes, body_deadline).await?;
    let max_values = rt.config.limits.max_json_values;
    let shape = sluice_filters::json_size::scan(&body, max_values)
        .ok_or(GatewayError::TooManyJsonValues(max_values))?;
    let parsed = parse_json(json_endpoint(session.req_header().uri.path()), &body)?;
    // The parser keeps the last of repeated keys; an upstream may read the
    // first: the gateway would decide on one and forward the other.
    if parsed
        .as_ref()
        .is_some_and(|v| sluice_filters::json_size::members(v) != shape.members)
    {
        return Err(GatewayError::InvalidRequest(
            "the request body repeats a key in a JSON object".into(),
        ));
    }
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
            return Err(GatewayError::ModelNotAllowed(crate::error::clip(model)));
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
            facts.method,
            crate::error::clip(facts.path)
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
    // Refusals that do not depend on the limits come before them (nothing
    // is reserved for a request refused here).
    //
    // A catalog request no deployment can take is the client's error: a
    // 400 now, before anything is sent (not a failure mid-attempt).
    if let (Some((op, model)), Some(json)) = (catalog_model, parsed.as_ref()) {
        let mut refusal = None;
        for d in &rt.catalog.models[model].deployments {
            match crate::providers::check(op, d, json) {
                Ok(()) => {
                    refusal = None;
                    break;
                }
                Err(why) => {
                    refusal.get_or_insert(why);
                }
            }
        }
        if let Some(why) = refusal {
            return Err(GatewayError::InvalidRequest(why));
        }
    }
    let mut body = body;
    let mut body_rewritten = false;
    let mut parsed = parsed;
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
    let granted = limits::admit(
        rt,
        &LimitInput {
            namespace,
            key,
            route: route.as_ref(),
            pool,
            model: llm.model.as_deref(),
            requested_output: llm.max_tokens,
            choices: llm.choices.max(1),
            body: parsed.as_ref(),
            body_len: body.len(),
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
    if let (Some(json), Some(g)) = (parsed.as_mut(), &granted) {
        let ask_usage = metered && llm.stream && !client_wants_usage;
        let rewritten = rewrite_body(json, &llm, g.output_cap, ask_usage).and_then(|changed| {
            changed
                .then(|| serde_json::to_vec(json).map_err(|_| GatewayError::Internal))
                .transpose()
        });
        match rewritten {
            Ok(Some(bytes)) => {
                body = Bytes::from(bytes);
                body_rewritten = true;
            }
            Ok(None) => {}
            Err(e) => {
                // Refused after the limits granted: give it all back.
                if let Some(r) = granted.and_then(|g| g.reservation) {
                    limits::settle(rt, &r.into_settlement(0)).await;
                }
                return Err(e);
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
                estimated_tokens: prompt
                    + llm
                        .max_tokens
                        .unwrap_or(0)
                        .saturating_mul(llm.choices.max(1)),
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

/// Clamps the output limit the upstream sees so that all of the request's
/// choices together stay within `cap` (the provider then stops by itself
/// within the budget): each of `max_tokens` and `max_completion_tokens`
/// that is present and larger is lowered to `cap / choices`; when neither
/// is present the field the model accepts is added. For metered streams it
/// asks for the usage chunk. Only chat/completions bodies are touched.
/// Returns whether the body changed; a cap smaller than the number of
/// choices is refused.
fn rewrite_body(
    body: &mut Value,
    llm: &LlmFields,
    cap: Option<u64>,
    ask_usage: bool,
) -> Result<bool, GatewayError> {
    let Value::Object(map) = body else {
        return Ok(false);
    };
    if llm.messages.is_none() && !map.contains_key("prompt") {
        return Ok(false);
    }
    let mut changed = false;
    if let Some(cap) = cap {
        let choices = llm.choices.max(1);
        let per_choice = cap / choices;
        if per_choice == 0 {
            return Err(GatewayError::InvalidRequest(format!(
                "{choices} choices (`n`/`best_of`) cannot fit in the output cap of {cap} tokens per request"
            )));
        }
        if llm.max_tokens.is_none_or(|r| r > per_choice) {
            let mut present = false;
            for field in ["max_tokens", "max_completion_tokens"] {
                if let Some(v) = map.get_mut(field).filter(|v| !v.is_null()) {
                    present = true;
                    if v.as_u64().is_none_or(|r| r > per_choice) {
                        *v = Value::from(per_choice);
                    }
                }
            }
            if !present {
                // o-series and gpt-5 models refuse `max_tokens`.
                let model = llm.model.as_deref().unwrap_or("");
                let newer = model.starts_with("gpt-5")
                    || (model.starts_with('o')
                        && model[1..].starts_with(|c: char| c.is_ascii_digit()));
                let field = if newer {
                    "max_completion_tokens"
                } else {
                    "max_tokens"
                };
                map.insert(field.to_string(), Value::from(per_choice));
            }
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
    Ok(changed)
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

/// Reads the whole request body, refusing more than `limit` bytes and a
/// body still incomplete at `deadline` (408).
///
/// Retry buffering is enabled first: for bodies up to Pingora's 64 KiB
/// retry buffer, Pingora replays the buffer upstream (on every attempt);
/// larger bodies are handed to a subrequest with the body preset (see
/// `handoff.rs`).
async fn read_body(
    session: &mut Session,
    limit: usize,
    deadline: tokio::time::Instant,
) -> Result<(Bytes, bool), GatewayError> {
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
        let chunk = tokio::time::timeout_at(deadline, downstream.read_request_body())
            .await
            .map_err(|_| GatewayError::RequestTimeout)?;
        match chunk {
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

/// Whether `path` is an endpoint whose body is a JSON request the
/// gateway's policy reads (chat, legacy completions, embeddings, Anthropic
/// messages, responses), under any prefix route or seed alias.
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
/// chooses. On a model endpoint (`json_endpoint`) a body that is not JSON
/// is refused with 400; elsewhere (a file upload behind a prefix route,
/// say) it is forwarded as opaque bytes, which body matchers see as having
/// no fields.
fn parse_json(model_endpoint: bool, body: &[u8]) -> Result<Option<Value>, GatewayError> {
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
    }

    #[test]
    fn both_output_fields_and_all_choices_are_accounted() {
        let f = llm_fields(
            &json!({"max_tokens": 5000, "max_completion_tokens": 10, "n": 3, "best_of": 4}),
        )
        .unwrap();
        assert_eq!((f.max_tokens, f.choices), (Some(5000), 4));
        let f = llm_fields(&json!({"max_tokens": 10, "max_completion_tokens": 5000})).unwrap();
        assert_eq!(f.max_tokens, Some(5000));
        // Both fields are clamped to the per-choice share of the cap.
        let mut body =
            json!({"messages": [], "max_tokens": 5000, "max_completion_tokens": 10, "n": 5});
        let llm = llm_fields(&body).unwrap();
        assert!(rewrite_body(&mut body, &llm, Some(50), false).unwrap());
        assert_eq!(body["max_tokens"], 10);
        assert_eq!(body["max_completion_tokens"], 10);
        // Neither given: the model's field is added with the share.
        let mut body = json!({"messages": [], "model": "gpt-4o", "n": 4});
        let llm = llm_fields(&body).unwrap();
        assert!(rewrite_body(&mut body, &llm, Some(50), false).unwrap());
        assert_eq!(body["max_tokens"], 12);
        // More choices than tokens in the cap: refused.
        let mut body = json!({"messages": [], "n": 100});
        let llm = llm_fields(&body).unwrap();
        assert!(rewrite_body(&mut body, &llm, Some(50), false).is_err());
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
