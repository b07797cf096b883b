//! "Would this request…" endpoints (validate, routing): a sample request
//! (method, path, headers, query, body) goes through the very functions
//! live traffic goes through — path normalisation, the gateway's own
//! endpoints, [`decision::authenticate`] and [`decision::decide`] on the
//! running runtime — so the answer is what the proxy would do. Limit rules
//! are not evaluated (they depend on counters). The namespace is resolved
//! even when the sample's API key is missing or wrong (as if it had none),
//! so an operator sees where the request would land.

use super::sample::{SampleQuery, SampleRequest};
use super::*;
use crate::decision::{self, Decision, Endpoint};
use crate::error::GatewayError;
use bytes::Bytes;
use sluice_filters::facts::RequestFacts;
use sluice_filters::matcher::NamespaceDecision;
use sluice_filters::routing::RouteMatch;

/// A sample request, owned, as the proxy would see it once read.
struct Sample {
    method: String,
    /// Normalised as the proxy normalises a request target.
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    /// The raw body: a string sample as is, any other JSON serialised.
    body: Bytes,
    /// The body parsed, for listing each matcher's result.
    json: Option<Value>,
    /// The proxy refuses the path itself (400), with this reason.
    bad_path: Option<String>,
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Sample {
    /// Reads the sample from a request body: `method` (default POST),
    /// `path` (default `/`, a `?query` part is split off), `headers`
    /// (object), `query_params` or `query` (object, or a raw query string),
    /// `body` (any JSON, or a string sent as is).
    fn parse(b: &SampleRequest) -> Result<Sample, ApiError> {
        let method = match &b.method {
            None => "POST".to_string(),
            Some(m) => m.trim().to_ascii_uppercase(),
        };
        let full_path = b.path.clone().unwrap_or_else(|| "/".to_string());
        let (path, mut query) = match full_path.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (full_path, None),
        };
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        let (path, bad_path) = match sluice_filters::path::normalize(&path) {
            Ok(p) => (p.into_owned(), None),
            Err(e) => (path, Some(format!("request path refused: {e}"))),
        };
        let headers = match &b.headers {
            None => Vec::new(),
            Some(h) => h.iter().map(|(k, v)| (k.clone(), text_of(v))).collect(),
        };
        for field in [&b.query_params, &b.query] {
            match field {
                None => {}
                Some(SampleQuery::Raw(q)) => query = Some(q.trim_start_matches('?').to_string()),
                Some(SampleQuery::Params(m)) => {
                    let mut q = form_urlencoded::Serializer::new(String::new());
                    for (k, v) in m {
                        q.append_pair(k, &text_of(v));
                    }
                    query = Some(q.finish());
                }
            }
        }
        // Policy never depends on the declared content type: a string is
        // the raw body, anything else is sent as its JSON text.
        let body = match &b.body {
            None => Bytes::new(),
            Some(Value::String(s)) => Bytes::from(s.clone()),
            Some(v) => Bytes::from(v.to_string()),
        };
        let json = serde_json::from_slice(&body).ok();
        Ok(Sample {
            method,
            path,
            query,
            headers,
            body,
            json,
            bad_path,
        })
    }

    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            body: self.json.as_ref(),
            raw_body: &self.body,
        }
    }

    fn echo(&self) -> Value {
        let body = match &self.json {
            Some(v) => Some(v.clone()),
            None if self.body.is_empty() => None,
            None => Some(String::from_utf8_lossy(&self.body).into_owned().into()),
        };
        json!({
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect::<Map<String, Value>>(),
            "body": body,
        })
    }
}

fn matcher_config(m: &Matcher) -> Value {
    json!({
        "matcher_type": m.matcher_type,
        "match_field": m.match_field,
        "match_operator": m.match_operator,
        "match_value": m.match_value,
        "action": m.action,
    })
}

fn matcher_by_id(rt: &Snapshot, id: u64) -> Option<&Matcher> {
    rt.config.matchers.iter().find(|m| m.id == id)
}

fn namespace_info(rt: &Snapshot, index: usize) -> Value {
    let n = &rt.namespaces[index];
    json!({
        "namespace_id": n.id,
        "namespace_code": n.code,
        "namespace_name": n.name,
        "status": int(n.active),
    })
}

/// Everything the proxy would decide for a sample, minus limits.
struct DryRun {
    /// The gateway answers the path itself.
    endpoint: Option<Endpoint>,
    key: Result<decision::Caller, GatewayError>,
    bound: Option<usize>,
    /// None when the proxy refuses the path before deciding.
    decision: Option<Decision>,
}

impl DryRun {
    fn matched(&self) -> Option<&NamespaceDecision> {
        self.decision.as_ref()?.matched.as_ref()
    }
}

/// Runs the sample through what live traffic goes through, in its order.
fn evaluate(rt: &Snapshot, s: &Sample) -> DryRun {
    let endpoint = decision::endpoint(rt, &s.method, &s.path);
    let key = decision::authenticate(rt, &s.headers);
    let bound = key.as_ref().ok().and_then(|c| {
        c.namespace
            .or_else(|| c.key.and_then(|k| rt.keys.get(k)).and_then(|k| k.namespace))
    });
    let decision = (s.bad_path.is_none() && endpoint.is_none()).then(|| {
        let request = decision::Request {
            method: &s.method,
            path: &s.path,
            query: s.query.as_deref(),
            headers: &s.headers,
            body: s.body.clone(),
        };
        let caller = key.as_ref().ok().cloned().unwrap_or_default();
        decision::decide(rt, request, &caller)
    });
    DryRun {
        endpoint,
        key,
        bound,
        decision,
    }
}

/// What the proxy would answer before limits: `{"result", "status", "reason"}`.
fn verdict(rt: &Snapshot, s: &Sample, o: &DryRun) -> Value {
    let refused = |result: &str, e: &GatewayError| json!({"result": result, "status": e.status(), "reason": e.to_string()});
    if let Some(why) = &s.bad_path {
        return refused(
            "invalid_request",
            &GatewayError::InvalidRequest(why.clone()),
        );
    }
    if let Some(endpoint) = o.endpoint {
        if let (true, Err(e)) = (endpoint.needs_key(), &o.key) {
            return refused("unauthorized", e);
        }
        return json!({"result": "gateway_endpoint", "status": 200,
                      "reason": format!("answered by the gateway itself ({endpoint:?})")});
    }
    if let Err(e) = &o.key {
        return refused("unauthorized", e);
    }
    let Some(d) = &o.decision else {
        return refused("internal_error", &GatewayError::Internal);
    };
    match (&d.outcome, &d.matched) {
        (Ok(_), _) => json!({"result": "proxied", "status": 200,
                             "reason": "forwarded upstream (limits not evaluated)"}),
        (Err(e @ GatewayError::Forbidden(_)), Some(m)) => {
            let result = match m {
                NamespaceDecision::Deny { .. } => "denied",
                NamespaceDecision::NoNamespace => "no_namespace",
                NamespaceDecision::Namespace { index, .. } if !rt.namespaces[*index].active => {
                    "namespace_inactive"
                }
                NamespaceDecision::Namespace { .. } => "forbidden",
            };
            refused(result, e)
        }
        (Err(e), _) => refused(e.code(), e),
    }
}

fn route_view(rt: &Snapshot, o: &DryRun, s: &Sample) -> Value {
    let Some(d) = &o.decision else {
        return Value::Null;
    };
    let upstream_path = match &d.outcome {
        Ok(t) => t.upstream_uri.clone().unwrap_or_else(|| s.path.clone()),
        Err(_) => decision::alias_of(&s.path).unwrap_or(&s.path).to_string(),
    };
    let pool_name = |i: usize| {
        rt.pools
            .get(i)
            .map_or(Value::Null, |p| p.name.clone().into())
    };
    if let Some((op, m)) = d.catalog {
        let model = &rt.catalog.models[m];
        return json!({
            "type": "catalog_model",
            "model": model.name,
            "operation": format!("{op:?}").to_ascii_lowercase(),
            "upstream": model.deployments.first().map_or(Value::Null, |dep| pool_name(dep.pool)),
            "upstream_path": upstream_path,
        });
    }
    let Some(r) = &d.route else {
        return Value::Null;
    };
    let pool = pool_name(r.target());
    match r {
        RouteMatch::ProxyRule { rule, .. } => {
            let name = rt
                .config
                .proxy_rules
                .iter()
                .find(|p| p.id == *rule)
                .map_or(Value::Null, |p| p.rule_name.clone().into());
            json!({"type": "proxy_rule", "rule_id": rule, "rule_name": name,
                   "upstream": pool, "upstream_path": upstream_path})
        }
        RouteMatch::Prefix { .. } => json!({
            "type": "prefix",
            "prefix": r.label(&rt.router),
            "upstream": pool,
            "upstream_path": upstream_path,
        }),
    }
}

fn key_view(rt: &Snapshot, o: &DryRun) -> Value {
    match &o.key {
        Ok(c) if c.key.is_none() => Value::Null,
        Ok(c) => json!({
            "key_name": c.key.and_then(|k| rt.keys.get(k)).map(|k| k.name.clone()),
            "subject": c.subject,
            "bound_namespace": o.bound.map(|i| rt.namespaces[i].code.clone()),
        }),
        Err(why) => json!({"error": why.to_string()}),
    }
}

/// `POST /api/v1/route/namespace`: the namespace (and route) a request gets.
pub fn route_namespace(rt: &Snapshot, b: &SampleRequest) -> Reply {
    let s = Sample::parse(b)?;
    let o = evaluate(rt, &s);
    // The namespace comes from the matchers alone (the contract's
    // answer); what the sample's API key changes is said apart.
    let alone = o.decision.as_ref().map(|_| {
        let request = decision::Request {
            method: &s.method,
            path: &s.path,
            query: s.query.as_deref(),
            headers: &s.headers,
            body: s.body.clone(),
        };
        decision::decide(rt, request, &decision::Caller::default()).matched
    });
    let alone = alone.flatten();
    let mut out = Map::new();
    if let (Some(NamespaceDecision::Namespace { index, .. }), Some(bound)) = (o.matched(), o.bound)
    {
        let by_matchers = match &alone {
            Some(NamespaceDecision::Namespace { index, .. }) => Some(*index),
            _ => None,
        };
        if by_matchers != Some(*index) && *index == bound {
            out.insert(
                "key_namespace".into(),
                rt.namespaces[bound].code.clone().into(),
            );
        }
    }
    match alone.as_ref() {
        None => {
            out.insert("matched".into(), false.into());
            out.insert("target_namespace".into(), Value::Null);
            out.insert("namespace_info".into(), Value::Null);
            out.insert(
                "message".into(),
                "请求在命名空间匹配之前即被处理（见 decision）".into(),
            );
        }
        Some(NamespaceDecision::Namespace { index, matcher }) => {
            out.insert("matched".into(), matcher.is_some().into());
            if let Some(m) = matcher.and_then(|id| matcher_by_id(rt, id)) {
                out.insert("rule_id".into(), m.id.into());
                out.insert("rule_name".into(), m.matcher_name.clone().into());
                out.insert("matched_config".into(), matcher_config(m));
            }
            out.insert(
                "target_namespace".into(),
                rt.namespaces[*index].code.clone().into(),
            );
            out.insert("namespace_info".into(), namespace_info(rt, *index));
            if matcher.is_none() {
                out.insert(
                    "message".into(),
                    "未找到匹配的规则，使用默认命名空间".into(),
                );
            }
        }
        Some(NamespaceDecision::Deny { matcher }) => {
            out.insert("matched".into(), true.into());
            out.insert("rule_id".into(), (*matcher).into());
            if let Some(m) = matcher_by_id(rt, *matcher) {
                out.insert("rule_name".into(), m.matcher_name.clone().into());
                out.insert("matched_config".into(), matcher_config(m));
            }
            out.insert("target_namespace".into(), Value::Null);
            out.insert("namespace_info".into(), Value::Null);
            out.insert(
                "message".into(),
                format!("请求被匹配器 {matcher} 拒绝").into(),
            );
        }
        Some(NamespaceDecision::NoNamespace) => {
            out.insert("matched".into(), false.into());
            out.insert("target_namespace".into(), Value::Null);
            out.insert("namespace_info".into(), Value::Null);
            out.insert(
                "message".into(),
                "未找到匹配的规则，且未配置默认命名空间".into(),
            );
        }
    }
    out.insert("route".into(), route_view(rt, &o, &s));
    out.insert("api_key".into(), key_view(rt, &o));
    out.insert("decision".into(), verdict(rt, &s, &o));
    Ok(Value::Object(out))
}

/// `POST /api/v1/route/validate`: every active matcher, in evaluation
/// order, with whether it matches the request, which one decided, and the
/// overall decision.
pub fn route_validate(rt: &Snapshot, b: &SampleRequest) -> Reply {
    let s = Sample::parse(b)?;
    let facts = s.facts();
    let o = evaluate(rt, &s);
    let decisive = match o.matched() {
        Some(NamespaceDecision::Namespace { matcher, .. }) => *matcher,
        Some(NamespaceDecision::Deny { matcher }) => Some(*matcher),
        Some(NamespaceDecision::NoNamespace) | None => None,
    };
    let rules: Vec<Value> = rt
        .resolver
        .explain(&facts)
        .map(|(c, matched)| {
            let m = matcher_by_id(rt, c.id);
            json!({
                "rule_id": c.id,
                "rule_name": m.map(|m| m.matcher_name.clone()),
                "rule_type": "matcher",
                "priority": c.priority,
                "status": 1,
                "namespace_id": rt.namespaces[c.namespace].id,
                "namespace_code": rt.namespaces[c.namespace].code,
                "evaluated": o.bound.is_none_or(|ns| ns == c.namespace),
                "matched": matched,
                "decisive": decisive == Some(c.id),
                "config": m.map(matcher_config),
            })
        })
        .collect();
    let target = match o.matched() {
        Some(NamespaceDecision::Namespace { index, .. }) => {
            rt.namespaces[*index].code.clone().into()
        }
        _ => Value::Null,
    };
    Ok(json!({
        "request_data": s.echo(),
        "rules": rules,
        "target_namespace": target,
        "route": route_view(rt, &o, &s),
        "api_key": key_view(rt, &o),
        "decision": verdict(rt, &s, &o),
    }))
}

/// `POST /api/v1/namespaces/{id}/validate`: whether the request is admitted
/// into namespace `id`, with each of its matchers' result.
pub fn validate_namespace(rt: &Snapshot, id: u64, b: &SampleRequest) -> Reply {
    let index = rt
        .namespaces
        .iter()
        .position(|n| n.id == id)
        .ok_or_else(ApiError::not_found)?;
    let ns = &rt.namespaces[index];
    let s = Sample::parse(b)?;
    let facts = s.facts();
    let o = evaluate(rt, &s);
    let rules: Vec<Value> = rt
        .resolver
        .explain(&facts)
        .filter(|(c, _)| c.namespace == index)
        .map(|(c, matched)| {
            let m = matcher_by_id(rt, c.id);
            let deny = m.is_some_and(|m| m.action == sluice_filters::matcher::MatchAction::Deny);
            let passed = matched != deny;
            let message = match (matched, deny) {
                (true, false) => "规则验证通过",
                (false, false) => "请求不满足该匹配条件",
                (true, true) => "请求被该规则拒绝",
                (false, true) => "规则验证通过（拒绝条件未命中）",
            };
            json!({
                "rule_id": c.id,
                "rule_name": m.map(|m| m.matcher_name.clone()),
                "rule_type": "matcher",
                "passed": passed,
                "details": {"message": message, "matched": matched, "config": m.map(matcher_config)},
            })
        })
        .collect();
    let resolved = match o.matched() {
        Some(NamespaceDecision::Namespace { index: i, .. }) => {
            rt.namespaces[*i].code.clone().into()
        }
        _ => Value::Null,
    };
    // Matching only: `decision` also tells whether the key would pass.
    let allowed = ns.active
        && matches!(o.matched(), Some(NamespaceDecision::Namespace { index: i, .. }) if *i == index);
    Ok(json!({
        "allowed": allowed,
        "namespace_id": ns.id,
        "namespace_code": ns.code,
        "namespace_name": ns.name,
        "resolved_namespace": resolved,
        "rules": rules,
        "route": if allowed { route_view(rt, &o, &s) } else { Value::Null },
        "decision": verdict(rt, &s, &o),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(v: Value) -> Sample {
        Sample::parse(&serde_json::from_value(v).unwrap()).unwrap()
    }

    #[test]
    fn samples_read_like_live_requests() {
        let s = sample(json!({"method": "get", "path": "v1/./models//x?x=1",
                              "headers": {"X-Tenant": "acme", "x-n": 5},
                              "query_params": {"q": "a b&c=中", "model": "gpt-4"}}));
        let f = s.facts();
        assert_eq!(f.method, "GET");
        assert_eq!(f.path, "/v1/models/x");
        assert_eq!(f.query_param("q").as_deref(), Some("a b&c=中"));
        assert_eq!(f.query_param("model").as_deref(), Some("gpt-4"));
        assert_eq!(f.query_param("x"), None);
        assert_eq!(f.headers.header("x-tenant"), Some("acme"));
        assert_eq!(f.headers.header("X-N"), Some("5"));

        let s = sample(json!({"path": "/p?x=1", "body": {"model": "m"}}));
        let f = s.facts();
        assert_eq!(f.query_param("x").as_deref(), Some("1"));
        assert_eq!(f.body_field("model").as_deref(), Some("m"));
        assert_eq!(f.raw_body, br#"{"model":"m"}"#);

        // JSON whatever the declared content type, as the proxy does.
        let s = sample(json!({"headers": {"content-type": "text/plain"}, "body": "{\"a\":1}"}));
        assert!(s.json.is_some());
        let s = sample(json!({"path": "/a/%2e%2e/%2e%2e/b"}));
        assert!(s.bad_path.is_some() || s.path == "/b");
    }
}
