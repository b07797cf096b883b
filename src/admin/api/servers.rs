//! Upstream servers: secrets read back as `***` (and `***` sent back keeps
//! the stored value); a server alone in its pool carries its pool's
//! references when it moves.

use super::*;
use crate::config::{ProviderKind, Secret, ServerType};
use std::collections::BTreeMap;

pub(super) const US: &str = "upstream_servers";
/// What responses show instead of a secret.
pub(super) const REDACTED: &str = "***";

/// `http` or `https` to the upstream.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
    /// Plaintext HTTP/2 with prior knowledge.
    H2c,
}

impl From<ServerType> for Scheme {
    fn from(t: ServerType) -> Self {
        match t {
            ServerType::Http => Scheme::Http,
            ServerType::Https => Scheme::Https,
            ServerType::H2c => Scheme::H2c,
        }
    }
}

impl From<Scheme> for ServerType {
    fn from(t: Scheme) -> Self {
        match t {
            Scheme::Http => ServerType::Http,
            Scheme::Https => ServerType::Https,
            Scheme::H2c => ServerType::H2c,
        }
    }
}

/// The provider's wire format and auth style.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Openai,
    OpenaiCompatible,
    Azure,
    Anthropic,
}

impl From<ProviderKind> for Provider {
    fn from(p: ProviderKind) -> Self {
        match p {
            ProviderKind::Openai => Provider::Openai,
            ProviderKind::OpenaiCompatible => Provider::OpenaiCompatible,
            ProviderKind::Azure => Provider::Azure,
            ProviderKind::Anthropic => Provider::Anthropic,
        }
    }
}

impl From<Provider> for ProviderKind {
    fn from(p: Provider) -> Self {
        match p {
            Provider::Openai => ProviderKind::Openai,
            Provider::OpenaiCompatible => ProviderKind::OpenaiCompatible,
            Provider::Azure => ProviderKind::Azure,
            Provider::Anthropic => ProviderKind::Anthropic,
        }
    }
}

/// An upstream server as shown (secrets as `***`).
#[derive(Serialize, ToSchema)]
pub struct ServerView {
    pub server_id: u64,
    pub server_name: String,
    /// The pool it belongs to (`server_name` unless set).
    pub pool: String,
    pub server_address: String,
    pub server_port: u16,
    pub server_type: Scheme,
    pub sni: Option<String>,
    pub weight: usize,
    pub max_connections: usize,
    pub health_check_url: Option<String>,
    pub provider: Provider,
    /// `***` when a key is set.
    pub api_key: Option<&'static str>,
    /// Header names, each value `***`.
    pub inject_headers: BTreeMap<String, &'static str>,
    pub is_active: i64,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// `POST /api/v1/upstream-servers`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"server_name": "llm-upstream", "server_address": "127.0.0.1",
    "server_port": 8000, "server_type": "http", "weight": 10, "max_connections": 100,
    "health_check_url": "/health", "is_active": 1}))]
pub struct ServerCreate {
    /// Unique name.
    pub server_name: String,
    /// Host name or IP address.
    pub server_address: String,
    pub server_port: u16,
    /// Pool to join (default: its own, named `server_name`).
    pub pool: Option<String>,
    pub server_type: Option<Scheme>,
    /// SNI and `Host` when they differ from `server_address`.
    pub sni: Option<String>,
    /// Share of the pool's traffic (default 1).
    pub weight: Option<usize>,
    /// Requests in flight at most (0 = unlimited).
    pub max_connections: Option<usize>,
    /// Path probed by the active health check.
    pub health_check_url: Option<String>,
    pub provider: Option<Provider>,
    /// Provider API key injected upstream.
    pub api_key: Option<String>,
    /// Headers set on every upstream request.
    pub inject_headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub is_active: Option<bool>,
}

impl Body for ServerCreate {}

/// `PUT /api/v1/upstream-servers/{id}`: only the fields sent change;
/// `null` clears `pool`, `sni`, `health_check_url` and `api_key`; `***`
/// (as read) keeps a secret. Other fields of a server as read are ignored.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"server_name": "llm-upstream", "server_address": "127.0.0.1",
    "server_port": 8000, "weight": 10, "health_check_url": null, "is_active": 1}))]
pub struct ServerUpdate {
    pub server_name: Option<String>,
    pub server_address: Option<String>,
    pub server_port: Option<u16>,
    #[serde(default, deserialize_with = "de::patch")]
    #[schema(value_type = Option<String>)]
    pub pool: Option<Option<String>>,
    pub server_type: Option<Scheme>,
    #[serde(default, deserialize_with = "de::patch")]
    #[schema(value_type = Option<String>)]
    pub sni: Option<Option<String>>,
    pub weight: Option<usize>,
    pub max_connections: Option<usize>,
    #[serde(default, deserialize_with = "de::patch")]
    #[schema(value_type = Option<String>)]
    pub health_check_url: Option<Option<String>>,
    pub provider: Option<Provider>,
    #[serde(default, deserialize_with = "de::patch")]
    #[schema(value_type = Option<String>)]
    pub api_key: Option<Option<String>>,
    pub inject_headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub is_active: Option<bool>,
}

impl Body for ServerUpdate {}

/// A created or updated server.
#[derive(Serialize, ToSchema)]
pub struct ServerSaved {
    pub message: &'static str,
    pub server_id: u64,
    pub server: ServerView,
}

/// A deleted server.
#[derive(Serialize, ToSchema)]
pub struct ServerDeleted {
    pub message: &'static str,
    pub server_id: u64,
}

fn view(e: &Entities, s: &UpstreamServer) -> ServerView {
    let (created_at, updated_at) = stamps(e, US, s.id);
    ServerView {
        server_id: s.id,
        server_name: s.server_name.clone(),
        pool: s.pool_name().to_string(),
        server_address: s.server_address.clone(),
        server_port: s.server_port,
        server_type: s.server_type.into(),
        sni: s.sni.clone(),
        weight: s.weight,
        max_connections: s.max_connections,
        health_check_url: s.health_check_url.clone(),
        provider: s.provider.into(),
        api_key: s.api_key.as_ref().map(|_| REDACTED),
        inject_headers: s
            .inject_headers
            .keys()
            .map(|k| (k.clone(), REDACTED))
            .collect(),
        is_active: int(s.is_active),
        created_at,
        updated_at,
    }
}

pub fn list(c: &Call<'_>, _: NoBody) -> Reply<List<ServerView>> {
    let e = c.center.snapshot();
    Ok(e.upstream_servers.iter().map(|s| view(&e, s)).collect())
}

fn find(e: &Entities, id: u64) -> Reply<ServerView> {
    e.upstream_servers
        .iter()
        .find(|s| s.id == id)
        .map(|s| view(e, s))
        .ok_or_else(ApiError::not_found)
}

pub fn get(c: &Call<'_>, _: NoBody) -> Reply<ServerView> {
    find(&c.center.snapshot(), c.id()?)
}

fn check_name_free(e: &Entities, name: &str, except: u64) -> Result<(), ApiError> {
    if e.upstream_servers
        .iter()
        .any(|s| s.server_name == name && s.id != except)
    {
        return Err(ApiError::conflict(format!("server_name 已存在: {name}")));
    }
    Ok(())
}

fn secret_headers(headers: &BTreeMap<String, String>) -> BTreeMap<String, Secret<String>> {
    headers
        .iter()
        .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
        .collect()
}

/// Creates an upstream server; returns its id.
pub(super) fn create_in(e: &mut Entities, b: &ServerCreate) -> Result<u64, ApiError> {
    check_name_free(e, &b.server_name, 0)?;
    let id = e.next_id(US);
    e.touch(US, id, true);
    e.upstream_servers.push(UpstreamServer {
        id,
        server_name: b.server_name.clone(),
        pool: b.pool.clone(),
        server_address: b.server_address.clone(),
        server_port: b.server_port,
        server_type: b.server_type.map(Into::into).unwrap_or_default(),
        sni: b.sni.clone(),
        weight: b.weight.unwrap_or(1),
        max_connections: b.max_connections.unwrap_or(0),
        health_check_url: b.health_check_url.clone(),
        provider: b.provider.map(Into::into).unwrap_or_default(),
        api_key: b.api_key.clone().map(Secret::new),
        inject_headers: b
            .inject_headers
            .as_ref()
            .map(secret_headers)
            .unwrap_or_default(),
        is_active: b.is_active.unwrap_or(true),
    });
    Ok(id)
}

fn saved(c: &ConfigCenter, message: &'static str, id: u64) -> Reply<ServerSaved> {
    Ok(ServerSaved {
        message,
        server_id: id,
        server: find(&c.snapshot(), id)?,
    })
}

pub fn create(c: Call<'_>, b: ServerCreate) -> Pending<'_, ServerSaved> {
    Box::pin(async move {
        let id = c.mutate(|e, _| create_in(e, &b)).await?;
        saved(c.center, "上游服务器创建成功", id)
    })
}

/// Servers other than `except` in pool `pool`.
fn pool_has_others(e: &Entities, pool: &str, except: u64) -> bool {
    e.upstream_servers
        .iter()
        .any(|s| s.id != except && s.pool_name() == pool)
}

/// Updates upstream server `id` with the fields `b` sends.
pub(super) fn update_in(e: &mut Entities, id: u64, b: &ServerUpdate) -> Result<(), ApiError> {
    let i = position(&e.upstream_servers, id, |s| s.id)?;
    let old = e.upstream_servers[i].clone();
    let mut s = old.clone();
    if let Some(v) = &b.server_name {
        s.server_name = v.clone();
    }
    if let Some(v) = &b.server_address {
        s.server_address = v.clone();
    }
    if let Some(v) = b.server_port {
        s.server_port = v;
    }
    if let Some(v) = &b.pool {
        s.pool = v.clone();
    }
    if let Some(v) = b.server_type {
        s.server_type = v.into();
    }
    if let Some(v) = &b.sni {
        s.sni = v.clone();
    }
    if let Some(v) = b.weight {
        s.weight = v;
    }
    if let Some(v) = b.max_connections {
        s.max_connections = v;
    }
    if let Some(v) = &b.health_check_url {
        s.health_check_url = v.clone();
    }
    if let Some(v) = b.provider {
        s.provider = v.into();
    }
    match &b.api_key {
        // A redacted secret sent back as read keeps the stored value.
        Some(Some(k)) if k == REDACTED => {}
        Some(k) => s.api_key = k.clone().map(Secret::new),
        None => {}
    }
    if let Some(headers) = &b.inject_headers {
        s.inject_headers = headers
            .iter()
            .map(|(name, value)| {
                let kept = old.inject_headers.get(name).filter(|_| value == REDACTED);
                let value = kept.cloned().unwrap_or_else(|| Secret::new(value.clone()));
                (name.clone(), value)
            })
            .collect();
    }
    if let Some(v) = b.is_active {
        s.is_active = v;
    }
    check_name_free(e, &s.server_name, id)?;
    let (old_pool, new_pool) = (old.pool_name().to_string(), s.pool_name().to_string());
    if old_pool != new_pool && !pool_has_others(e, &old_pool, id) {
        // The pool moved with its only server: references follow it.
        for r in &mut e.proxy_rules {
            if r.upstream == old_pool {
                r.upstream = new_pool.clone();
            }
        }
        for r in &mut e.routes {
            if r.upstream == old_pool {
                r.upstream = new_pool.clone();
            }
        }
    }
    e.upstream_servers[i] = s;
    e.touch(US, id, false);
    Ok(())
}

pub fn update(c: Call<'_>, b: ServerUpdate) -> Pending<'_, ServerSaved> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| update_in(e, id, &b)).await?;
        saved(c.center, "上游服务器更新成功", id)
    })
}

/// Deletes upstream server `id` (409 while it is the last of a referenced pool).
pub(super) fn delete_in(e: &mut Entities, id: u64) -> Result<(), ApiError> {
    let i = position(&e.upstream_servers, id, |s| s.id)?;
    let pool = e.upstream_servers[i].pool_name().to_string();
    if !pool_has_others(e, &pool, id) {
        let mut refs = Vec::new();
        let proxy: Vec<u64> = e
            .proxy_rules
            .iter()
            .filter(|r| r.upstream == pool)
            .map(|r| r.id)
            .collect();
        if !proxy.is_empty() {
            refs.push(format!("proxy_rules [{}]", ids(proxy)));
        }
        let routes: Vec<&str> = e
            .routes
            .iter()
            .filter(|r| r.upstream == pool)
            .map(|r| r.prefix.as_str())
            .collect();
        if !routes.is_empty() {
            refs.push(format!("routes [{}]", routes.join(", ")));
        }
        if !refs.is_empty() {
            return Err(ApiError::conflict(format!(
                "上游服务器是 pool {pool} 的最后一台，仍被引用，无法删除: {}",
                refs.join("; ")
            )));
        }
    }
    e.upstream_servers.remove(i);
    e.forget(US, id);
    Ok(())
}

pub fn delete(c: Call<'_>, _: NoBody) -> Pending<'_, ServerDeleted> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| delete_in(e, id)).await?;
        Ok(ServerDeleted {
            message: "上游服务器删除成功",
            server_id: id,
        })
    })
}
