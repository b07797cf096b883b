//! The one admission decision: from the compiled runtime, the request as
//! the client sent it (normalised) and the API key that authenticated it,
//! to where the request goes — namespace, route or catalog model, upstream
//! pool — or the error to answer with. Pure: no I/O, no counters. Live
//! traffic (`proxy/admission.rs`, which then runs the limit rules) and
//! every admin dry-run endpoint (`admin/api/validate.rs`) call the same
//! [`authenticate`] and [`decide`], so "what would happen to this request"
//! has one answer.
//!
//! Order of the steps (the first failing one answers):
//! 1. the API key ([`authenticate`], before the body is read);
//! 2. the body: size, JSON shape, parsed whatever its `Content-Type`
//!    ([`body`]); an Anthropic Messages request for a catalog model is
//!    translated to the OpenAI chat request it stands for;
//! 3. the LLM fields, type-checked; the key's model allow-list;
//! 4. the namespace: matchers see the path **as the client sent it** (and
//!    its body as sent); the key's bound namespace restricts them;
//! 5. aliases are resolved after the namespace: `/api/chat/completions`
//!    and `/internal/v1/…` are routed (and forwarded) as the OpenAI path
//!    they stand for, `/v1/messages` for a catalog model as
//!    `/v1/chat/completions`;
//! 6. the catalog model (POST chat or embeddings naming a catalog model)
//!    or else a route (proxy rule or prefix route); neither = 404;
//! 7. refusals no deployment of a catalog model can take, and the internal
//!    channel's `session_id` (echoed back, never sent upstream).

pub mod body;
mod endpoint;

pub use body::LlmFields;
pub use endpoint::{endpoint, Endpoint, TRACE_PREFIX};

use crate::catalog::Operation;
use crate::error::{clip, GatewayError};
pub use crate::identity::Caller;
use crate::state::Snapshot;
use bytes::Bytes;
use serde_json::Value;
use sluice_filters::auth::extract_key;
use sluice_filters::facts::{HeaderLookup, RequestFacts};
use sluice_filters::matcher::NamespaceDecision;
use sluice_filters::routing::RouteMatch;
use sluice_filters::signing;

/// The wire format the client speaks, when it is not OpenAI's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFormat {
    /// Anthropic Messages API; the public model name to report.
    Anthropic { model: String },
}

/// The request as the decision sees it: what the client sent, with the
/// path already normalised (RFC 3986) and the body read whole.
pub struct Request<'a> {
    /// Upper case (`GET`, `POST`).
    pub method: &'a str,
    pub path: &'a str,
    /// Raw query string without the `?`.
    pub query: Option<&'a str>,
    pub headers: &'a dyn HeaderLookup,
    pub body: Bytes,
}

/// Everything the decision found, as far as it got. On a refusal the
/// fields resolved before it stay set (metrics label a refused request
/// with them; the dry-run shows them).
#[derive(Debug)]
pub struct Decision {
    /// The body's LLM fields, once the body was parsed.
    pub llm: Option<LlmFields>,
    /// The resolver's answer, once matching ran.
    pub matched: Option<NamespaceDecision>,
    /// The namespace the request is admitted to (active).
    pub namespace: Option<usize>,
    /// The route that matched (none for a catalog model no route takes).
    pub route: Option<RouteMatch>,
    /// The catalog model that serves the request, and the operation.
    pub catalog: Option<(Operation, usize)>,
    /// A signed request's nonce, to accept once (the caller's check:
    /// the counter store is shared by every instance).
    pub nonce: Option<String>,
    pub outcome: Result<Target, GatewayError>,
}

/// Where an admitted request goes and what is sent.
#[derive(Debug)]
pub struct Target {
    /// Index into `Snapshot::pools` (a catalog model's first deployment's).
    pub pool: usize,
    /// Path and query to send upstream when a route or an alias rewrote
    /// the path.
    pub upstream_uri: Option<String>,
    /// The body to send (the client's, or rewritten).
    pub body: Bytes,
    /// `body` parsed (the OpenAI form for a translated request).
    pub json: Option<Value>,
    /// `body` is not what the client sent.
    pub body_rewritten: bool,
    pub client_format: Option<ClientFormat>,
    /// The internal channel's `session_id`, removed from the body.
    pub session_id: Option<String>,
}

/// Whether `path` is on the internal channel (`/internal/v1/…`): the
/// channel label of metrics, traces, rules and the bandit report.
pub fn internal_channel(path: &str) -> bool {
    path.starts_with("/internal/")
}

/// The OpenAI path an alias stands for: `/api/chat` and
/// `/api/chat/completions`, and the internal channel's `/internal/v1/…`.
pub fn alias_of(path: &str) -> Option<&'static str> {
    match path {
        "/api/chat" | "/api/chat/completions" | "/internal/v1/chat/completions" => {
            Some("/v1/chat/completions")
        }
        "/internal/v1/embeddings" => Some("/v1/embeddings"),
        "/internal/v1/models" => Some("/v1/models"),
        _ => None,
    }
}

/// Checks the credentials: an API key (YAML, signing or virtual), one of
/// the gateway's access tokens or an external issuer's JWT. The caller is
/// empty when auth is off.
pub fn authenticate(rt: &Snapshot, headers: &dyn HeaderLookup) -> Result<Caller, GatewayError> {
    if !rt.config.auth.enabled {
        return Ok(Caller::default());
    }
    // A signed request names its access key; the signature is checked
    // with the body ([`decide`], [`verify_signature`]).
    if let Some(id) = headers.header(signing::KEY_ID) {
        return rt
            .keys
            .iter()
            .position(|k| k.signing_secret.is_some() && k.name == id)
            .map(Caller::key)
            .ok_or_else(|| GatewayError::Unauthorized("unknown access key id".into()));
    }
    let custom = rt
        .auth_header
        .as_ref()
        .and_then(|name| headers.header(name.as_str()));
    let presented = extract_key(
        headers.header("authorization"),
        headers.header("x-api-key"),
        custom,
    )
    .ok_or_else(|| GatewayError::Unauthorized("missing API key".into()))?;
    if rt.identity.takes(presented) {
        let namespace_of = |code: &str| rt.namespaces.iter().position(|n| n.code == code);
        return rt
            .identity
            .authenticate(&rt.config, presented, &namespace_of);
    }
    match rt.keyring.lookup(presented.as_bytes()) {
        // A signing secret never travels: presented as a bearer key it is
        // refused like any unknown key.
        Some(k) if rt.keys[k].signing_secret.is_none() => Ok(Caller::key(k)),
        Some(_) => Err(GatewayError::Unauthorized("invalid API key".into())),
        None => virtual_key(rt, presented.as_bytes()).map(Caller::key),
    }
}

/// A key created through the admin API: found by the SHA-256 of what was
/// presented; refused once it (or, after a rotation, its previous secret)
/// has expired.
fn virtual_key(rt: &Snapshot, presented: &[u8]) -> Result<usize, GatewayError> {
    use sha2::{Digest, Sha256};
    if rt.virtual_keys.is_empty() {
        return Err(GatewayError::Unauthorized("invalid API key".into()));
    }
    let digest: [u8; 32] = Sha256::digest(presented).into();
    let now = crate::clock::unix_secs();
    match rt.virtual_keys.get(&digest) {
        Some(&(k, until))
            if until.is_none_or(|u| now < u) && rt.keys[k].expires_at.is_none_or(|e| now < e) =>
        {
            Ok(k)
        }
        Some(_) => Err(GatewayError::Unauthorized(
            "this API key has expired".into(),
        )),
        None => Err(GatewayError::Unauthorized("invalid API key".into())),
    }
}

/// Checks the signature of a request made with a signing key (any other
/// key passes); returns the nonce to accept once.
pub fn verify_signature(
    rt: &Snapshot,
    key: Option<usize>,
    req: &Request<'_>,
    now_secs: u64,
) -> Result<Option<String>, GatewayError> {
    let Some(secret) = key.and_then(|k| rt.keys[k].signing_secret.as_ref()) else {
        return Ok(None);
    };
    let signed = signing::Signed {
        method: req.method,
        path: req.path,
        query: req.query,
        timestamp: req.headers.header(signing::TIMESTAMP),
        nonce: req.headers.header(signing::NONCE),
        signature: req.headers.header(signing::SIGNATURE),
        body: &req.body,
    };
    signing::verify(
        &signed,
        secret.expose().as_bytes(),
        now_secs,
        rt.config.auth.signing_max_skew_s,
    )
    .map(|nonce| Some(nonce.to_string()))
    .map_err(|e| GatewayError::Unauthorized(e.to_string()))
}

/// The namespace of a request as sent: the key's or token's binding, the
/// matchers, then `channel_header`; `matched_out` gets the matchers'
/// decision (for the dry-run and the trace).
fn resolve_namespace(
    rt: &Snapshot,
    as_sent: &RequestFacts<'_>,
    caller: &Caller,
    matched_out: &mut Option<NamespaceDecision>,
) -> Result<usize, GatewayError> {
    let key = caller.key;
    let bound = caller
        .namespace
        .or_else(|| key.and_then(|k| rt.keys[k].namespace));
    let mut resolved = rt.resolver.resolve(as_sent, bound);
    // `channel_header` (`X-Channel-Code: <namespace code>`) picks the
    // namespace when no matcher decided and no key binding did.
    if let (NamespaceDecision::Namespace { matcher: None, .. }, None)
    | (NamespaceDecision::NoNamespace, None) = (&resolved, bound)
    {
        let channel = rt.config.channel_header.as_deref();
        if let Some((name, code)) = channel.and_then(|h| Some((h, as_sent.headers.header(h)?))) {
            match rt.namespaces.iter().position(|n| n.code == code) {
                Some(index) => {
                    resolved = NamespaceDecision::Namespace {
                        index,
                        matcher: None,
                    }
                }
                None => {
                    *matched_out = Some(NamespaceDecision::NoNamespace);
                    return Err(GatewayError::Forbidden(format!(
                        "{name} {:?} names no namespace",
                        clip(code)
                    )));
                }
            }
        }
    }
    let matched = matched_out.insert(resolved);
    Ok(match *matched {
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
    })
}

/// The namespace of a request the gateway answers itself (a Bridge
/// invocation), decided as for a proxied request with the same method,
/// path, headers and body.
pub fn namespace_for(
    rt: &Snapshot,
    req: &Request<'_>,
    body: Option<&Value>,
    caller: &Caller,
) -> Result<usize, GatewayError> {
    let facts = RequestFacts {
        method: req.method,
        path: req.path,
        query: req.query,
        headers: req.headers,
        body,
        raw_body: &req.body,
    };
    resolve_namespace(rt, &facts, caller, &mut None)
}

/// Decides where `req`, authenticated as `key`, goes (steps 2–7 above).
pub fn decide(rt: &Snapshot, req: Request<'_>, caller: &Caller) -> Decision {
    let key = caller.key;
    let mut d = Decision {
        llm: None,
        matched: None,
        namespace: None,
        route: None,
        catalog: None,
        nonce: None,
        outcome: Err(GatewayError::Internal),
    };
    match verify_signature(rt, key, &req, crate::clock::unix_secs()) {
        Ok(nonce) => d.nonce = nonce,
        Err(e) => {
            d.outcome = Err(e);
            return d;
        }
    }
    d.outcome = target(rt, req, caller, &mut d);
    d
}

fn target(
    rt: &Snapshot,
    req: Request<'_>,
    caller: &Caller,
    d: &mut Decision,
) -> Result<Target, GatewayError> {
    let key = caller.key;
    let limits = &rt.config.limits;
    if req.body.len() > limits.max_body_bytes {
        return Err(GatewayError::PayloadTooLarge(limits.max_body_bytes));
    }
    let sent = body::read_json(req.path, &req.body, limits.max_json_values)?;
    let post = req.method == "POST";
    // Anthropic's Messages API for a catalog model: decided as the OpenAI
    // chat request it translates to; the answer is translated back.
    let anthropic_model = sent
        .as_ref()
        .filter(|_| post && req.path == "/v1/messages")
        .and_then(|v| v.get("model"))
        .and_then(Value::as_str)
        .filter(|m| rt.catalog.find(m).is_some());
    let (translated, client_format) = match (anthropic_model, sent.as_ref()) {
        (Some(model), Some(json)) => {
            let openai = sluice_filters::translate::anthropic_to_openai(json)
                .map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
            let format = ClientFormat::Anthropic {
                model: model.to_string(),
            };
            (Some(openai), Some(format))
        }
        _ => (None, None),
    };
    let llm = match translated.as_ref().or(sent.as_ref()) {
        Some(json) => body::llm_fields(json)?,
        None => LlmFields::default(),
    };
    let llm = d.llm.insert(llm);
    if let (Some(k), Some(model)) = (key, llm.model.as_deref()) {
        if !rt.keys[k].allows(model) {
            return Err(GatewayError::ModelNotAllowed(clip(model)));
        }
    }

    // The namespace, on the request as sent.
    let as_sent = RequestFacts {
        method: req.method,
        path: req.path,
        query: req.query,
        headers: req.headers,
        body: sent.as_ref(),
        raw_body: &req.body,
    };
    let namespace = resolve_namespace(rt, &as_sent, caller, &mut d.matched)?;
    d.namespace = Some(namespace);

    // Then aliases, the catalog model or a route.
    let alias = match client_format {
        Some(ClientFormat::Anthropic { .. }) => Some("/v1/chat/completions"),
        None => alias_of(req.path),
    };
    let path = alias.unwrap_or(req.path);
    let facts = RequestFacts {
        path,
        body: translated.as_ref().or(sent.as_ref()),
        ..as_sent
    };
    let catalog = if rt.catalog.is_empty() || !post {
        None
    } else {
        let op = match path {
            "/v1/chat/completions" => Some(Operation::Chat),
            "/v1/embeddings" => Some(Operation::Embeddings),
            _ => None,
        };
        op.zip(llm.model.as_deref().and_then(|m| rt.catalog.find(m)))
    };
    d.catalog = catalog;
    let route = rt.router.route(&facts, namespace);
    let pool = match (catalog, &route) {
        (Some((_, m)), _) => rt.catalog.models[m]
            .deployments
            .first()
            .map_or(0, |d| d.pool),
        (None, Some(route)) => route.target(),
        (None, None) => {
            return Err(GatewayError::RouteNotFound(format!(
                "{} {}",
                req.method,
                clip(req.path)
            )))
        }
    };
    let with_query = |p: &str| match req.query {
        Some(q) => format!("{p}?{q}"),
        None => p.to_string(),
    };
    let upstream_uri = match &route {
        Some(RouteMatch::Prefix {
            path: Some(path), ..
        }) => Some(with_query(path)),
        _ => alias.map(with_query),
    };
    d.route = route;
    let json = translated.or(sent);

    // Refusals that do not depend on the limits come before them: a
    // catalog request no deployment can take is the client's error, a 400
    // now (not a failure mid-attempt).
    if let Some((op, model)) = catalog {
        let m = &rt.catalog.models[model];
        if let Some(serves) = m.capability.filter(|c| *c != op) {
            return Err(GatewayError::InvalidRequest(format!(
                "model {:?} serves {} requests only",
                m.name,
                serves.capability()
            )));
        }
    }
    if let (Some((op, model)), Some(json)) = (catalog, json.as_ref()) {
        let mut refusal = None;
        for dep in &rt.catalog.models[model].deployments {
            match crate::providers::check(op, dep, json) {
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
            return Err(GatewayError::InvalidRequest(why.to_string()));
        }
    }
    let mut target = Target {
        pool,
        upstream_uri,
        body: req.body,
        json,
        body_rewritten: false,
        client_format,
        session_id: None,
    };
    if target.client_format.is_some() {
        target.body = to_bytes(target.json.as_ref())?;
        target.body_rewritten = true;
    }
    // The internal channel's `session_id` is echoed back, never sent
    // upstream (providers refuse unknown fields).
    if internal_channel(req.path) {
        if let Some(Value::Object(map)) = target.json.as_mut() {
            match map.remove("session_id") {
                None | Some(Value::Null) => {}
                Some(Value::String(id)) => {
                    target.session_id = Some(id);
                    target.body = to_bytes(target.json.as_ref())?;
                    target.body_rewritten = true;
                }
                Some(_) => {
                    return Err(GatewayError::InvalidRequest(
                        "session_id must be a string".into(),
                    ))
                }
            }
        }
    }
    Ok(target)
}

fn to_bytes(json: Option<&Value>) -> Result<Bytes, GatewayError> {
    serde_json::to_vec(&json)
        .map(Bytes::from)
        .map_err(|_| GatewayError::Internal)
}
