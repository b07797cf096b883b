//! Admission, run once per client request in `request_filter`: the API key
//! and, once the body is read whole (up to the limit and the deadline),
//! the one admission decision ([`crate::decision`]: namespace, route or
//! catalog model, pool), then the limit rules (`limits.rs`) and the body
//! rewrites they call for. Produces a [`Plan`] or the [`GatewayError`] to
//! answer with. This file gathers the decision's inputs from the Pingora
//! session; the decision itself is shared with the admin dry-run.

use super::ctx::{CatalogPlan, Plan};
use super::limits::{self, LimitInput};
use super::observe;
use super::observed::Observed;
use crate::decision::body::wants_usage;
use crate::decision::{self, LlmFields, Target};
use crate::error::GatewayError;
use crate::state::Snapshot;
use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use pingora::proxy::Session;
use serde_json::Value;
use sluice_filters::facts::HeaderLookup;

/// `HeaderLookup` over Pingora's request headers.
pub struct Headers<'a>(pub &'a HeaderMap);

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

/// Runs admission. `Err` carries the error to answer with. `obs` gets the
/// request's labels as they are resolved (a denied request keeps those
/// known so far).
pub async fn admit(
    session: &mut Session,
    rt: &Snapshot,
    request_id: &str,
    obs: &mut Observed,
) -> Result<Plan, GatewayError> {
    let caller = decision::authenticate(rt, &Headers(&session.req_header().headers))?;
    obs.key = caller.key;
    obs.subject.clone_from(&caller.subject);
    let body_deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(rt.config.clients.body_timeout_ms);
    let (body, has_body) =
        read_body(session, rt.config.limits.max_body_bytes, body_deadline).await?;
    let first = admit_body(
        session,
        rt,
        request_id,
        obs,
        &caller,
        body.clone(),
        has_body,
        true,
    )
    .await;
    // A budget with a `fallback_model` serves the request with that
    // cheaper catalog model instead of refusing it (once).
    let outcome = match first {
        Err(GatewayError::Limited(d)) if d.code == "budget_exceeded" => {
            match fallback_body(rt, d.rule_id, &body) {
                Some(cheaper) => {
                    admit_body(
                        session, rt, request_id, obs, &caller, cheaper, has_body, false,
                    )
                    .await
                }
                None => Err(GatewayError::Limited(d)),
            }
        }
        other => other,
    };
    outcome.inspect_err(|e| {
        if let GatewayError::Limited(d) = e {
            observe::denied(obs, rt, d.rule_id, d.code);
        }
    })
}

/// The body with its `model` replaced by the `fallback_model` of budget
/// rule `rule_id`, when it has one and the request does not already ask
/// for it.
fn fallback_body(rt: &Snapshot, rule_id: u64, body: &Bytes) -> Option<Bytes> {
    let rule = rt.limits.rules.iter().find(|r| r.id == rule_id)?;
    let sluice_filters::limits::rules::RuleConfig::Budget(c) = &rule.config else {
        return None;
    };
    let cheaper = c.fallback_model.as_deref()?;
    let mut json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let map = json.as_object_mut()?;
    if map.get("model").and_then(|m| m.as_str()) == Some(cheaper) {
        return None;
    }
    map.insert("model".into(), cheaper.into());
    serde_json::to_vec(&json).ok().map(Bytes::from)
}

/// Admission after the body was read (again with another body for a
/// budget's fallback model; `first` = the nonce of a signed request is
/// still to be accepted).
#[allow(clippy::too_many_arguments)]
async fn admit_body(
    session: &mut Session,
    rt: &Snapshot,
    request_id: &str,
    obs: &mut Observed,
    caller: &decision::Caller,
    body: Bytes,
    has_body: bool,
    first: bool,
) -> Result<Plan, GatewayError> {
    let key = caller.key;
    let req = session.req_header();
    let internal = decision::internal_channel(req.uri.path());
    let headers = Headers(&req.headers);
    let request = decision::Request {
        method: req.method.as_str(),
        path: req.uri.path(),
        query: req.uri.query(),
        headers: &headers,
        body,
    };
    let d = decision::decide(rt, request, caller);
    if let Some(llm) = &d.llm {
        observe::model(obs, rt, llm.model.as_deref(), llm.stream);
    }
    obs.namespace = d.namespace;
    if let Some(route) = &d.route {
        obs.route = Some(rt.handles.route_index(route));
        obs.pool = Some(route.target());
    }
    // A signed request's nonce is accepted once, on every instance.
    if let (true, Ok(_), Some(nonce), Some(k)) = (first, &d.outcome, &d.nonce, key) {
        nonce_once(rt, k, nonce).await?;
    }
    // A route with its own `max_concurrency` (counted by the limits)
    // replaces the servers' `max_connections`.
    let route_capped = matches!(
        d.route,
        Some(sluice_filters::routing::RouteMatch::Prefix { index, .. })
            if rt.router.prefix(index).is_some_and(|p| p.max_concurrency.is_some())
    );
    let target = d.outcome?;
    let (Some(namespace), Some(llm)) = (d.namespace, d.llm) else {
        return Err(GatewayError::Internal);
    };
    let Target {
        pool,
        upstream_uri,
        mut body,
        json: mut parsed,
        mut body_rewritten,
        client_format,
        session_id,
    } = target;
    let limits_from = obs.traced.then(crate::otel::now_ns);
    let granted = limits::admit(
        rt,
        &LimitInput {
            namespace,
            key,
            subject: caller.subject.as_deref(),
            route: d.route.as_ref(),
            pool: Some(pool),
            model: llm.model.as_deref(),
            requested_output: llm.max_tokens,
            choices: llm.choices.max(1),
            body: parsed.as_ref(),
            body_len: body.len(),
            headers: &headers,
            request_id,
            price: d.catalog.map(|(_, m)| rt.catalog.models[m].dearest_price()),
            internal,
        },
    )
    .await;
    // A traced request's limit rules (counter-store call included).
    if let Some(from) = limits_from {
        obs.limits_span = Some((from, crate::otel::now_ns()));
    }
    let granted = granted?;
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
    let catalog = match (d.catalog, parsed) {
        (Some((op, model)), Some(json)) => {
            let prompt = granted
                .as_ref()
                .filter(|g| g.metered)
                .map_or(body.len() as u64 / 4, |g| g.prompt_tokens);
            Some(CatalogPlan {
                model,
                op,
                internal,
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
        route_capped,
        internal,
        masker: (!internal)
            .then(|| rt.namespaces[namespace].masker.clone())
            .flatten(),
    })
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

/// Reads the whole request body, refusing more than `limit` bytes and a
/// body still incomplete at `deadline` (408).
///
/// Retry buffering is enabled first: for bodies up to Pingora's 64 KiB
/// retry buffer, Pingora replays the buffer upstream (on every attempt);
/// larger bodies are handed to a subrequest with the body preset (see
/// `handoff.rs`).
pub(super) async fn read_body(
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

/// Accepts a signed request's nonce once: a sliding window of one per
/// access key and nonce, in the counter store (shared by every instance
/// with Redis), remembered for twice the allowed clock skew.
pub async fn nonce_once(rt: &Snapshot, key: usize, nonce: &str) -> Result<(), GatewayError> {
    use sluice_filters::limits::store::Check;
    let check = Check::Window {
        key: format!("nonce:{}:{nonce}", rt.keys[key].name),
        limit: 1,
        window_ms: rt.config.auth.signing_max_skew_s.saturating_mul(2000),
        sliding: true,
        cost: 1,
    };
    match rt.live.counters().admit(std::slice::from_ref(&check)).await {
        Ok(a) if a.admitted => Ok(()),
        Ok(_) => Err(GatewayError::Unauthorized(
            "this nonce was already used: sign each request with a new x-sluice-nonce".into(),
        )),
        Err(_) => Err(crate::error::LimitDenial::store_unavailable(
            "the nonce store is unavailable: signed requests cannot be accepted now".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::body::llm_fields;
    use serde_json::json;

    #[test]
    fn both_output_fields_are_clamped_to_the_share_of_each_choice() {
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
}
