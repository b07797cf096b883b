//! "Would this request…" endpoints (seed 000 §2 validate, §7 routing):
//! a sample request (method, path, headers, query, body) is evaluated by
//! the running [`Runtime`]'s own compiled [`NamespaceResolver`] and
//! [`Router`] — the very objects the proxy's admission uses — so the answer
//! is what live traffic would get. Limit rules are not evaluated (they
//! depend on counters).
//!
//! [`NamespaceResolver`]: sluice_filters::matcher::NamespaceResolver
//! [`Router`]: sluice_filters::routing::Router

use super::*;
use sluice_filters::auth::extract_key;
use sluice_filters::facts::{HeaderLookup, RequestFacts};
use sluice_filters::matcher::NamespaceDecision;
use sluice_filters::routing::RouteMatch;

/// A sample request, owned; [`Sample::facts`] borrows it the way the proxy
/// borrows a live request.
struct Sample {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    raw_body: Vec<u8>,
    /// Why the proxy would refuse the body (400), if it would.
    invalid_body: Option<String>,
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Percent-encodes a query component (RFC 3986 unreserved kept).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Sample {
    /// Reads the sample from a request body: `method` (default POST),
    /// `path` (default `/`, a `?query` part is split off), `headers`
    /// (object), `query_params` or `query` (object, or a raw query string),
    /// `body` (any JSON, or a string sent as is).
    fn parse(b: &Body) -> Result<Sample, ApiError> {
        let method = match b.get("method") {
            None | Some(Value::Null) => "POST".to_string(),
            Some(Value::String(m)) if !m.trim().is_empty() => m.trim().to_ascii_uppercase(),
            Some(_) => return Err(ApiError::bad_request("method: 必须是 HTTP 方法字符串")),
        };
        let full_path = match b.get("path") {
            None | Some(Value::Null) => "/".to_string(),
            Some(Value::String(p)) => p.clone(),
            Some(_) => return Err(ApiError::bad_request("path: 必须是字符串")),
        };
        let (path, mut query) = match full_path.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (full_path, None),
        };
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        let headers = match b.get("headers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(h)) => h.iter().map(|(k, v)| (k.clone(), text_of(v))).collect(),
            Some(_) => return Err(ApiError::bad_request("headers: 必须是 JSON 对象")),
        };
        for field in ["query_params", "query"] {
            match b.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::String(q)) => query = Some(q.trim_start_matches('?').to_string()),
                Some(Value::Object(m)) => {
                    let pairs: Vec<String> = m
                        .iter()
                        .map(|(k, v)| format!("{}={}", encode(k), encode(&text_of(v))))
                        .collect();
                    query = Some(pairs.join("&"));
                }
                Some(_) => {
                    return Err(ApiError::bad_request(format!(
                        "{field}: 必须是 JSON 对象或查询字符串"
                    )))
                }
            }
        }
        let content_type = headers.header("content-type").map(str::to_ascii_lowercase);
        // The proxy parses a body as JSON when it has no content type or
        // one mentioning json, and refuses one that then fails to parse.
        let json_type = content_type.as_deref().is_none_or(|c| c.contains("json"));
        let mut invalid_body = None;
        let (body, raw_body) = match b.get("body") {
            None | Some(Value::Null) => (None, Vec::new()),
            // A string is the raw body.
            Some(Value::String(s)) => {
                let parsed = if json_type && !s.is_empty() {
                    match serde_json::from_str(s) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            invalid_body = Some(format!("request body is not valid JSON: {e}"));
                            None
                        }
                    }
                } else {
                    None
                };
                (parsed, s.clone().into_bytes())
            }
            Some(v) => (json_type.then(|| v.clone()), v.to_string().into_bytes()),
        };
        Ok(Sample {
            method,
            path,
            query,
            headers,
            body,
            raw_body,
            invalid_body,
        })
    }

    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            body: self.body.as_ref(),
            raw_body: &self.raw_body,
        }
    }

    fn echo(&self) -> Value {
        json!({
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect::<Map<String, Value>>(),
            "body": self.body.clone().or_else(|| {
                (!self.raw_body.is_empty())
                    .then(|| String::from_utf8_lossy(&self.raw_body).into_owned().into())
            }),
        })
    }
}

/// The API key the sample presents, as the proxy finds it: `Err` with the
/// reason when auth is on and the key is missing or unknown.
fn sample_key(rt: &Runtime, s: &Sample) -> Result<Option<usize>, &'static str> {
    if !rt.config.auth.enabled {
        return Ok(None);
    }
    let custom = rt
        .auth_header
        .as_ref()
        .and_then(|name| s.headers.header(name.as_str()));
    let presented = extract_key(
        s.headers.header("authorization"),
        s.headers.header("x-api-key"),
        custom,
    )
    .ok_or("missing API key")?;
    rt.keyring
        .lookup(presented.as_bytes())
        .map(Some)
        .ok_or("invalid API key")
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

fn matcher_by_id(rt: &Runtime, id: u64) -> Option<&Matcher> {
    rt.config.matchers.iter().find(|m| m.id == id)
}

fn namespace_info(rt: &Runtime, index: usize) -> Value {
    let n = &rt.namespaces[index];
    json!({
        "namespace_id": n.id,
        "namespace_code": n.code,
        "namespace_name": n.name,
        "status": int(n.active),
    })
}

/// Everything the proxy's admission decides for a sample, minus limits.
struct Outcome {
    key: Result<Option<usize>, &'static str>,
    bound: Option<usize>,
    decision: NamespaceDecision,
    route: Option<RouteMatch>,
}

fn evaluate(rt: &Runtime, s: &Sample) -> Outcome {
    let facts = s.facts();
    let key = sample_key(rt, s);
    let bound = key
        .ok()
        .flatten()
        .and_then(|k| rt.keys.get(k))
        .and_then(|k| k.namespace);
    let decision = rt.resolver.resolve(&facts, bound);
    let route = match &decision {
        NamespaceDecision::Namespace { index, .. } if rt.namespaces[*index].active => {
            rt.router.route(&facts, *index)
        }
        _ => None,
    };
    Outcome {
        key,
        bound,
        decision,
        route,
    }
}

/// What the proxy would answer before limits: `{"result", "status", "reason"}`.
fn verdict(rt: &Runtime, s: &Sample, o: &Outcome) -> Value {
    let (result, status, reason) = if let Err(why) = o.key {
        ("unauthorized", 401, why.to_string())
    } else if let Some(why) = &s.invalid_body {
        ("invalid_request", 400, why.clone())
    } else {
        match &o.decision {
            NamespaceDecision::Deny { matcher } => (
                "denied",
                403,
                format!("request denied by matcher {matcher}"),
            ),
            NamespaceDecision::NoNamespace => (
                "no_namespace",
                403,
                "no namespace accepts this request".to_string(),
            ),
            NamespaceDecision::Namespace { index, .. } if !rt.namespaces[*index].active => (
                "namespace_inactive",
                403,
                format!("namespace {} is inactive", rt.namespaces[*index].code),
            ),
            NamespaceDecision::Namespace { .. } if o.route.is_none() => {
                ("route_not_found", 404, format!("{} {}", s.method, s.path))
            }
            NamespaceDecision::Namespace { .. } => (
                "proxied",
                200,
                "forwarded upstream (limits not evaluated)".to_string(),
            ),
        }
    };
    json!({"result": result, "status": status, "reason": reason})
}

fn route_view(rt: &Runtime, r: &Option<RouteMatch>, s: &Sample) -> Value {
    let Some(r) = r else {
        return Value::Null;
    };
    let pool = rt
        .pools
        .get(r.target())
        .map_or(Value::Null, |p| p.name.clone().into());
    match r {
        RouteMatch::ProxyRule { rule, .. } => {
            let name = rt
                .config
                .proxy_rules
                .iter()
                .find(|p| p.id == *rule)
                .map_or(Value::Null, |p| p.rule_name.clone().into());
            json!({"type": "proxy_rule", "rule_id": rule, "rule_name": name,
                   "upstream": pool, "upstream_path": s.path})
        }
        RouteMatch::Prefix { path, .. } => json!({
            "type": "prefix",
            "prefix": r.label(&rt.router),
            "upstream": pool,
            "upstream_path": path.clone().unwrap_or_else(|| s.path.clone()),
        }),
    }
}

fn key_view(rt: &Runtime, o: &Outcome) -> Value {
    match o.key {
        Ok(None) => Value::Null,
        Ok(Some(k)) => json!({
            "key_name": rt.keys.get(k).map(|k| k.name.clone()),
            "bound_namespace": o.bound.map(|i| rt.namespaces[i].code.clone()),
        }),
        Err(why) => json!({"error": why}),
    }
}

/// `POST /api/v1/route/namespace`: the namespace (and route) a request gets.
pub fn route_namespace(rt: &Runtime, b: &Body) -> Reply {
    let s = Sample::parse(b)?;
    let o = evaluate(rt, &s);
    let mut out = Map::new();
    match &o.decision {
        NamespaceDecision::Namespace { index, matcher } => {
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
                let msg = if o.bound.is_some() {
                    "未找到匹配的规则，使用 API 密钥绑定的命名空间"
                } else {
                    "未找到匹配的规则，使用默认命名空间"
                };
                out.insert("message".into(), msg.into());
            }
        }
        NamespaceDecision::Deny { matcher } => {
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
        NamespaceDecision::NoNamespace => {
            out.insert("matched".into(), false.into());
            out.insert("target_namespace".into(), Value::Null);
            out.insert("namespace_info".into(), Value::Null);
            out.insert(
                "message".into(),
                "未找到匹配的规则，且未配置默认命名空间".into(),
            );
        }
    }
    out.insert("route".into(), route_view(rt, &o.route, &s));
    out.insert("api_key".into(), key_view(rt, &o));
    out.insert("decision".into(), verdict(rt, &s, &o));
    Ok(Value::Object(out))
}

/// `POST /api/v1/route/validate`: every active matcher, in evaluation
/// order, with whether it matches the request, which one decided, and the
/// overall decision.
pub fn route_validate(rt: &Runtime, b: &Body) -> Reply {
    let s = Sample::parse(b)?;
    let facts = s.facts();
    let o = evaluate(rt, &s);
    let decisive = match o.decision {
        NamespaceDecision::Namespace { matcher, .. } => matcher,
        NamespaceDecision::Deny { matcher } => Some(matcher),
        NamespaceDecision::NoNamespace => None,
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
    let target = match o.decision {
        NamespaceDecision::Namespace { index, .. } => rt.namespaces[index].code.clone().into(),
        _ => Value::Null,
    };
    Ok(json!({
        "request_data": s.echo(),
        "rules": rules,
        "target_namespace": target,
        "route": route_view(rt, &o.route, &s),
        "api_key": key_view(rt, &o),
        "decision": verdict(rt, &s, &o),
    }))
}

/// `POST /api/v1/namespaces/{id}/validate`: whether the request is admitted
/// into namespace `id`, with each of its matchers' result.
pub fn validate_namespace(rt: &Runtime, id: u64, b: &Body) -> Reply {
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
    let resolved = match o.decision {
        NamespaceDecision::Namespace { index: i, .. } => rt.namespaces[i].code.clone().into(),
        _ => Value::Null,
    };
    // Matching only: `decision` also tells whether the key would pass.
    let allowed = ns.active
        && matches!(o.decision, NamespaceDecision::Namespace { index: i, .. } if i == index);
    Ok(json!({
        "allowed": allowed,
        "namespace_id": ns.id,
        "namespace_code": ns.code,
        "namespace_name": ns.name,
        "resolved_namespace": resolved,
        "rules": rules,
        "route": if allowed { route_view(rt, &o.route, &s) } else { Value::Null },
        "decision": verdict(rt, &s, &o),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(v: Value) -> Sample {
        match v {
            Value::Object(m) => Sample::parse(&m).unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn samples_read_like_live_requests() {
        let s = sample(json!({"method": "get", "path": "v1/models?x=1",
                              "headers": {"X-Tenant": "acme", "x-n": 5},
                              "query_params": {"q": "a b&c=中", "model": "gpt-4"}}));
        let f = s.facts();
        assert_eq!(f.method, "GET");
        assert_eq!(f.path, "/v1/models");
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

        // Not JSON by its content type: raw only, as the proxy does.
        let s = sample(json!({"headers": {"content-type": "text/plain"}, "body": "{\"a\":1}"}));
        assert!(s.body.is_none() && s.invalid_body.is_none());
        let s = sample(json!({"body": "{bad"}));
        assert!(s.invalid_body.is_some());
    }
}
