//! Nginx configs as gateway setting fragments: list (by `config_type`
//! too), get, create, update, delete. A fragment's directives are parsed
//! on the way in (`config::fragments`): one Sluice cannot apply is refused
//! with a 400 that names it; active fragments apply over the YAML's
//! settings with the same hot apply as every other change.

use super::*;
use crate::config::fragments;
use crate::config::NginxConfig;
use std::collections::BTreeMap;

const NG: &str = "nginx_configs";

/// A fragment as shown.
#[derive(Serialize, ToSchema)]
pub struct NginxView {
    pub config_id: u64,
    pub config_type: String,
    pub config_name: String,
    pub config_content: String,
    /// The applied values of its directives (`client_max_body_size` in
    /// bytes, `proxy_connect_timeout_ms`, `proxy_read_timeout_ms`,
    /// `keepalive_timeout_s`, `gzip`, `gzip_comp_level`, `gzip_types`,
    /// `gzip_min_length`).
    #[schema(value_type = Object)]
    pub config_value: BTreeMap<&'static str, Value>,
    pub is_active: i64,
    /// Same as `is_active`.
    pub status: i64,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// `POST /api/v1/nginx-configs`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"config_type": "http", "config_name": "body-and-timeouts",
    "config_content": "client_max_body_size 8m; proxy_read_timeout 120s;", "is_active": 1}))]
pub struct NginxCreate {
    /// Group label (`http`, `server`…).
    pub config_type: String,
    /// Unique name.
    pub config_name: String,
    /// nginx directives: `client_max_body_size`, `proxy_connect_timeout`,
    /// `proxy_read_timeout`, `keepalive_timeout`.
    pub config_content: String,
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub is_active: Option<bool>,
}

impl Body for NginxCreate {}

/// `PUT /api/v1/nginx-configs/{id}`: only the fields sent change.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"config_type": "http", "config_name": "body-and-timeouts",
    "config_content": "client_max_body_size 8m; proxy_read_timeout 120s;", "is_active": 1}))]
pub struct NginxUpdate {
    pub config_type: Option<String>,
    pub config_name: Option<String>,
    pub config_content: Option<String>,
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub is_active: Option<bool>,
}

impl Body for NginxUpdate {}

/// A created or updated fragment.
#[derive(Serialize, ToSchema)]
pub struct NginxSaved {
    pub message: &'static str,
    pub config_id: u64,
    pub config: NginxView,
}

/// A deleted fragment.
#[derive(Serialize, ToSchema)]
pub struct NginxDeleted {
    pub message: &'static str,
    pub config_id: u64,
}

/// The applied values of a fragment's directives.
fn config_value(content: &str) -> BTreeMap<&'static str, Value> {
    use fragments::Directive as D;
    fragments::parse(content)
        .unwrap_or_default()
        .into_iter()
        .map(|d| match d {
            D::ClientMaxBodySize(n) => ("client_max_body_size", json!(n)),
            D::ProxyConnectTimeoutMs(ms) => ("proxy_connect_timeout_ms", json!(ms)),
            D::ProxyReadTimeoutMs(ms) => ("proxy_read_timeout_ms", json!(ms)),
            D::KeepaliveTimeoutS(s) => ("keepalive_timeout_s", json!(s)),
            D::Gzip(on) => ("gzip", json!(on)),
            D::GzipCompLevel(l) => ("gzip_comp_level", json!(l)),
            D::GzipTypes(t) => ("gzip_types", json!(t)),
            D::GzipMinLength(n) => ("gzip_min_length", json!(n)),
        })
        .collect()
}

fn view(e: &Entities, c: &NginxConfig) -> NginxView {
    let (created_at, updated_at) = stamps(e, NG, c.id);
    NginxView {
        config_id: c.id,
        config_type: c.config_type.clone(),
        config_name: c.config_name.clone(),
        config_content: c.config_content.clone(),
        config_value: config_value(&c.config_content),
        is_active: int(c.is_active),
        status: int(c.is_active),
        created_at,
        updated_at,
    }
}

fn list_of(e: &Entities, config_type: Option<&str>) -> List<NginxView> {
    e.nginx_configs
        .iter()
        .filter(|c| config_type.is_none_or(|t| c.config_type == t))
        .map(|c| view(e, c))
        .collect()
}

/// `GET /api/v1/nginx-configs[?config_type=]`.
pub fn list(c: &Call<'_>, _: NoBody) -> Reply<List<NginxView>> {
    let t = c.query_param("config_type");
    Ok(list_of(&c.center.snapshot(), t.as_deref()))
}

/// One fragment, or a list when the path holds a `config_type` word.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum NginxOneOrList {
    One(NginxView),
    List(Vec<NginxView>),
}

/// `GET /api/v1/nginx-configs/{id}`, or `/{config_type}` (a list).
pub fn get(c: &Call<'_>, _: NoBody) -> Reply<NginxOneOrList> {
    let e = c.center.snapshot();
    match c.id() {
        Ok(id) => find(&e, id).map(NginxOneOrList::One),
        Err(_) => Ok(NginxOneOrList::List(list_of(&e, c.param).0)),
    }
}

fn find(e: &Entities, id: u64) -> Reply<NginxView> {
    e.nginx_configs
        .iter()
        .find(|c| c.id == id)
        .map(|c| view(e, c))
        .ok_or_else(ApiError::not_found)
}

/// Checks a fragment: non-empty type and name, a unique name, directives
/// Sluice applies.
fn checked(e: &Entities, c: NginxConfig) -> Result<NginxConfig, ApiError> {
    for (field, value) in [
        ("config_type", &c.config_type),
        ("config_name", &c.config_name),
    ] {
        if value.trim().is_empty() {
            return Err(ApiError::bad_request(format!("{field}: 不能为空")));
        }
    }
    if e.nginx_configs
        .iter()
        .any(|o| o.config_name == c.config_name && o.id != c.id)
    {
        return Err(ApiError::conflict(format!(
            "config_name 已存在: {}",
            c.config_name
        )));
    }
    fragments::parse(&c.config_content)
        .map_err(|e| ApiError::bad_request(format!("config_content: {e}")))?;
    Ok(c)
}

pub(super) fn create_in(e: &mut Entities, b: &NginxCreate) -> Result<u64, ApiError> {
    let mut c = checked(
        e,
        NginxConfig {
            id: 0,
            config_type: b.config_type.clone(),
            config_name: b.config_name.clone(),
            config_content: b.config_content.clone(),
            is_active: b.is_active.unwrap_or(true),
        },
    )?;
    c.id = e.next_id(NG);
    let id = c.id;
    e.touch(NG, id, true);
    e.nginx_configs.push(c);
    Ok(id)
}

fn saved(c: &ConfigCenter, message: &'static str, id: u64) -> Reply<NginxSaved> {
    Ok(NginxSaved {
        message,
        config_id: id,
        config: find(&c.snapshot(), id)?,
    })
}

pub fn create(c: Call<'_>, b: NginxCreate) -> Pending<'_, NginxSaved> {
    Box::pin(async move {
        let id = c.mutate(|e, _| create_in(e, &b)).await?;
        saved(c.center, "nginx配置创建成功", id)
    })
}

pub(super) fn update_in(e: &mut Entities, id: u64, b: &NginxUpdate) -> Result<(), ApiError> {
    let i = position(&e.nginx_configs, id, |c| c.id)?;
    let mut c = e.nginx_configs[i].clone();
    if let Some(v) = &b.config_type {
        c.config_type = v.clone();
    }
    if let Some(v) = &b.config_name {
        c.config_name = v.clone();
    }
    if let Some(v) = &b.config_content {
        c.config_content = v.clone();
    }
    if let Some(v) = b.is_active {
        c.is_active = v;
    }
    e.nginx_configs[i] = checked(e, c)?;
    e.touch(NG, id, false);
    Ok(())
}

pub fn update(c: Call<'_>, b: NginxUpdate) -> Pending<'_, NginxSaved> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| update_in(e, id, &b)).await?;
        saved(c.center, "nginx配置更新成功", id)
    })
}

pub(super) fn delete_in(e: &mut Entities, id: u64) -> Result<(), ApiError> {
    let i = position(&e.nginx_configs, id, |c| c.id)?;
    e.nginx_configs.remove(i);
    e.forget(NG, id);
    Ok(())
}

pub fn delete(c: Call<'_>, _: NoBody) -> Pending<'_, NginxDeleted> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| delete_in(e, id)).await?;
        Ok(NginxDeleted {
            message: "nginx配置删除成功",
            config_id: id,
        })
    })
}
