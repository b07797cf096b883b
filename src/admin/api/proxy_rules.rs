//! Proxy rules: `upstream_server_id` names the server whose pool the rule
//! routes to (or `upstream` names the pool).

use super::*;

pub(super) const PR: &str = "proxy_rules";

/// A proxy rule as shown.
#[derive(Serialize, ToSchema)]
pub struct ProxyRuleView {
    pub rule_id: u64,
    pub rule_name: String,
    pub namespace_id: Option<u64>,
    pub namespace_code: Option<String>,
    pub namespace_name: Option<String>,
    /// The pool it routes to.
    pub upstream: String,
    /// The first server of that pool.
    pub upstream_server_id: Option<u64>,
    pub upstream_server_address: Option<String>,
    pub upstream_server_port: Option<u16>,
    pub path_pattern: Option<String>,
    pub method_pattern: Option<String>,
    pub header_pattern: Option<String>,
    pub body_pattern: Option<String>,
    pub priority: i64,
    pub is_active: i64,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// `POST /api/v1/proxy-rules`: `upstream_server_id` (or `upstream`, a
/// pool name) is needed.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"rule_name": "enterprise-policy", "namespace_id": 1,
    "upstream_server_id": 1, "path_pattern": "/v1/.*", "method_pattern": "GET|POST",
    "header_pattern": "x-tenant:enterprise", "body_pattern": null, "priority": 10,
    "is_active": 1}))]
pub struct ProxyRuleCreate {
    pub rule_name: Option<String>,
    /// Only requests of this namespace (none: all).
    #[serde(default, deserialize_with = "de::id")]
    #[schema(value_type = Option<de::Id>)]
    pub namespace_id: Option<u64>,
    /// The server whose pool the rule routes to.
    #[serde(default, deserialize_with = "de::id")]
    #[schema(value_type = Option<de::Id>)]
    pub upstream_server_id: Option<u64>,
    /// A pool name, when `upstream_server_id` is not given.
    #[serde(default, deserialize_with = "de::text")]
    pub upstream: Option<String>,
    /// Regex over the path, anchored (`/v1/.*`).
    pub path_pattern: Option<String>,
    /// Regex over the method, anchored (`GET|POST`).
    pub method_pattern: Option<String>,
    /// `header-name:value-regex`, value anchored.
    pub header_pattern: Option<String>,
    /// Regex searched in the raw body.
    pub body_pattern: Option<String>,
    /// Lower runs first.
    pub priority: Option<i64>,
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub is_active: Option<bool>,
}

impl Body for ProxyRuleCreate {}

/// `PUT /api/v1/proxy-rules/{id}`: only the fields sent change; `null`
/// clears `namespace_id` and the patterns.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"rule_name": "enterprise-policy", "namespace_id": 1,
    "upstream_server_id": 1, "path_pattern": "/v1/.*", "method_pattern": "GET|POST",
    "header_pattern": "x-tenant:enterprise", "body_pattern": null, "priority": 10,
    "is_active": 1}))]
pub struct ProxyRuleUpdate {
    pub rule_name: Option<String>,
    #[serde(default, deserialize_with = "de::id_patch")]
    #[schema(value_type = Option<de::Id>)]
    pub namespace_id: Option<Option<u64>>,
    #[serde(default, deserialize_with = "de::id")]
    #[schema(value_type = Option<de::Id>)]
    pub upstream_server_id: Option<u64>,
    #[serde(default, deserialize_with = "de::text")]
    pub upstream: Option<String>,
    #[serde(default, deserialize_with = "de::patch")]
    #[schema(value_type = Option<String>)]
    pub path_pattern: Option<Option<String>>,
    #[serde(default, deserialize_with = "de::patch")]
    #[schema(value_type = Option<String>)]
    pub method_pattern: Option<Option<String>>,
    #[serde(default, deserialize_with = "de::patch")]
    #[schema(value_type = Option<String>)]
    pub header_pattern: Option<Option<String>>,
    #[serde(default, deserialize_with = "de::patch")]
    #[schema(value_type = Option<String>)]
    pub body_pattern: Option<Option<String>>,
    pub priority: Option<i64>,
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub is_active: Option<bool>,
}

impl Body for ProxyRuleUpdate {}

/// A created or updated proxy rule.
#[derive(Serialize, ToSchema)]
pub struct ProxyRuleSaved {
    pub message: &'static str,
    pub rule_id: u64,
    pub rule: ProxyRuleView,
}

/// A deleted proxy rule.
#[derive(Serialize, ToSchema)]
pub struct ProxyRuleDeleted {
    pub message: &'static str,
    pub rule_id: u64,
}

fn view(e: &Entities, r: &ProxyRule) -> ProxyRuleView {
    let ns = ns_ref(e, r.namespace.as_deref());
    let server = e
        .upstream_servers
        .iter()
        .find(|s| s.pool_name() == r.upstream);
    let (created_at, updated_at) = stamps(e, PR, r.id);
    ProxyRuleView {
        rule_id: r.id,
        rule_name: r.rule_name.clone(),
        namespace_id: ns.id,
        namespace_code: ns.code,
        namespace_name: ns.name,
        upstream: r.upstream.clone(),
        upstream_server_id: server.map(|s| s.id),
        upstream_server_address: server.map(|s| s.server_address.clone()),
        upstream_server_port: server.map(|s| s.server_port),
        path_pattern: r.path_pattern.clone(),
        method_pattern: r.method_pattern.clone(),
        header_pattern: r.header_pattern.clone(),
        body_pattern: r.body_pattern.clone(),
        priority: r.priority,
        is_active: int(r.is_active),
        created_at,
        updated_at,
    }
}

pub fn list(c: &Call<'_>, _: NoBody) -> Reply<List<ProxyRuleView>> {
    let e = c.center.snapshot();
    Ok(e.proxy_rules.iter().map(|r| view(&e, r)).collect())
}

fn find(e: &Entities, id: u64) -> Reply<ProxyRuleView> {
    e.proxy_rules
        .iter()
        .find(|r| r.id == id)
        .map(|r| view(e, r))
        .ok_or_else(ApiError::not_found)
}

pub fn get(c: &Call<'_>, _: NoBody) -> Reply<ProxyRuleView> {
    find(&c.center.snapshot(), c.id()?)
}

/// Creates a proxy rule; returns its id.
pub(super) fn create_in(e: &mut Entities, b: &ProxyRuleCreate) -> Result<u64, ApiError> {
    let upstream = pool_field(e, b.upstream_server_id, b.upstream.as_ref())?
        .ok_or_else(|| ApiError::bad_request("缺少必要字段: upstream_server_id"))?;
    let namespace = b.namespace_id.map(|id| ns_code_field(e, id)).transpose()?;
    let id = e.next_id(PR);
    e.touch(PR, id, true);
    e.proxy_rules.push(ProxyRule {
        id,
        rule_name: b.rule_name.clone().unwrap_or_default(),
        namespace,
        upstream,
        path_pattern: b.path_pattern.clone(),
        method_pattern: b.method_pattern.clone(),
        header_pattern: b.header_pattern.clone(),
        body_pattern: b.body_pattern.clone(),
        priority: b.priority.unwrap_or(0),
        is_active: b.is_active.unwrap_or(true),
    });
    Ok(id)
}

fn saved(c: &ConfigCenter, message: &'static str, id: u64) -> Reply<ProxyRuleSaved> {
    Ok(ProxyRuleSaved {
        message,
        rule_id: id,
        rule: find(&c.snapshot(), id)?,
    })
}

pub fn create(c: Call<'_>, b: ProxyRuleCreate) -> Pending<'_, ProxyRuleSaved> {
    Box::pin(async move {
        let id = c.mutate(|e, _| create_in(e, &b)).await?;
        saved(c.center, "代理规则创建成功", id)
    })
}

/// Updates proxy rule `id` with the fields `b` sends.
pub(super) fn update_in(e: &mut Entities, id: u64, b: &ProxyRuleUpdate) -> Result<(), ApiError> {
    let i = position(&e.proxy_rules, id, |r| r.id)?;
    let mut r = e.proxy_rules[i].clone();
    if let Some(v) = &b.rule_name {
        r.rule_name = v.clone();
    }
    for (slot, patch) in [
        (&mut r.path_pattern, &b.path_pattern),
        (&mut r.method_pattern, &b.method_pattern),
        (&mut r.header_pattern, &b.header_pattern),
        (&mut r.body_pattern, &b.body_pattern),
    ] {
        if let Some(v) = patch {
            *slot = v.clone();
        }
    }
    if let Some(v) = b.priority {
        r.priority = v;
    }
    if let Some(v) = b.is_active {
        r.is_active = v;
    }
    if let Some(pool) = pool_field(e, b.upstream_server_id, b.upstream.as_ref())? {
        r.upstream = pool;
    }
    if let Some(ns) = b.namespace_id {
        r.namespace = ns.map(|id| ns_code_field(e, id)).transpose()?;
    }
    e.proxy_rules[i] = r;
    e.touch(PR, id, false);
    Ok(())
}

pub fn update(c: Call<'_>, b: ProxyRuleUpdate) -> Pending<'_, ProxyRuleSaved> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| update_in(e, id, &b)).await?;
        saved(c.center, "代理规则更新成功", id)
    })
}

/// Deletes proxy rule `id`.
pub(super) fn delete_in(e: &mut Entities, id: u64) -> Result<(), ApiError> {
    let i = position(&e.proxy_rules, id, |r| r.id)?;
    e.proxy_rules.remove(i);
    e.forget(PR, id);
    Ok(())
}

pub fn delete(c: Call<'_>, _: NoBody) -> Pending<'_, ProxyRuleDeleted> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| delete_in(e, id)).await?;
        Ok(ProxyRuleDeleted {
            message: "代理规则删除成功",
            rule_id: id,
        })
    })
}
