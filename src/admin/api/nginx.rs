//! Nginx configs (seed 000 §8) as gateway setting fragments: list (by
//! `config_type` too), get, create, update, delete. A fragment's directives
//! are parsed on the way in (`config::fragments`): one Sluice cannot apply
//! is refused with a 400 that names it; active fragments apply over the
//! YAML's settings with the same hot apply as every other change.

use super::*;
use crate::config::fragments;
use crate::config::NginxConfig;

const NG: &str = "nginx_configs";
const NG_FIELDS: &[&str] = &["config_type", "config_name", "config_content", "is_active"];

/// The applied values of a fragment's directives.
fn config_value(content: &str) -> Value {
    let mut m = Map::new();
    for d in fragments::parse(content).unwrap_or_default() {
        let (k, v) = match d {
            fragments::Directive::ClientMaxBodySize(n) => ("client_max_body_size", json!(n)),
            fragments::Directive::ProxyConnectTimeoutMs(ms) => {
                ("proxy_connect_timeout_ms", json!(ms))
            }
            fragments::Directive::ProxyReadTimeoutMs(ms) => ("proxy_read_timeout_ms", json!(ms)),
            fragments::Directive::KeepaliveTimeoutS(s) => ("keepalive_timeout_s", json!(s)),
        };
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

fn nginx_view(e: &Entities, c: &NginxConfig) -> Value {
    with_stamps(
        e,
        NG,
        c.id,
        json!({
            "config_id": c.id,
            "config_type": c.config_type,
            "config_name": c.config_name,
            "config_content": c.config_content,
            "config_value": config_value(&c.config_content),
            "is_active": int(c.is_active),
            "status": int(c.is_active),
        }),
    )
}

/// `GET /api/v1/nginx-configs[?config_type=]` and `/api/v1/nginx-configs/{config_type}`.
pub fn list_nginx_configs(e: &Entities, config_type: Option<&str>) -> Value {
    list_of(
        e.nginx_configs
            .iter()
            .filter(|c| config_type.is_none_or(|t| c.config_type == t))
            .map(|c| nginx_view(e, c)),
    )
}

pub fn get_nginx_config(e: &Entities, id: u64) -> Reply {
    e.nginx_configs
        .iter()
        .find(|c| c.id == id)
        .map(|c| nginx_view(e, c))
        .ok_or_else(ApiError::not_found)
}

/// Decodes and checks a fragment: non-empty type and name, a unique name,
/// directives Sluice applies.
fn checked(e: &Entities, m: Body, id: u64) -> Result<NginxConfig, ApiError> {
    let mut c: NginxConfig = decode(m)?;
    c.id = id;
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
        .any(|o| o.config_name == c.config_name && o.id != id)
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

pub(super) fn create_nginx_config_in(e: &mut Entities, body: &Body) -> Result<u64, ApiError> {
    require(body, &["config_type", "config_name", "config_content"])?;
    let mut m = Map::new();
    copy(&mut m, body, NG_FIELDS, &[]);
    let mut c = checked(e, m, 0)?;
    c.id = e.next_id(NG);
    let id = c.id;
    e.touch(NG, id, true);
    e.nginx_configs.push(c);
    Ok(id)
}

pub async fn create_nginx_config(c: &ConfigCenter, body: Body) -> Reply {
    let id = c.mutate(|e, _| create_nginx_config_in(e, &body)).await?;
    let e = c.snapshot();
    Ok(
        json!({"message": "nginx配置创建成功", "config_id": id, "config": get_nginx_config(&e, id)?}),
    )
}

pub(super) fn update_nginx_config_in(
    e: &mut Entities,
    id: u64,
    body: &Body,
) -> Result<(), ApiError> {
    let i = e
        .nginx_configs
        .iter()
        .position(|c| c.id == id)
        .ok_or_else(ApiError::not_found)?;
    let mut m = to_map(&e.nginx_configs[i]);
    copy(&mut m, body, NG_FIELDS, &[]);
    let c = checked(e, m, id)?;
    e.nginx_configs[i] = c;
    e.touch(NG, id, false);
    Ok(())
}

pub async fn update_nginx_config(c: &ConfigCenter, id: u64, body: Body) -> Reply {
    c.mutate(|e, _| update_nginx_config_in(e, id, &body))
        .await?;
    let e = c.snapshot();
    Ok(
        json!({"message": "nginx配置更新成功", "config_id": id, "config": get_nginx_config(&e, id)?}),
    )
}

pub(super) fn delete_nginx_config_in(e: &mut Entities, id: u64) -> Result<(), ApiError> {
    let i = e
        .nginx_configs
        .iter()
        .position(|c| c.id == id)
        .ok_or_else(ApiError::not_found)?;
    e.nginx_configs.remove(i);
    e.forget(NG, id);
    Ok(())
}

pub async fn delete_nginx_config(c: &ConfigCenter, id: u64) -> Reply {
    c.mutate(|e, _| delete_nginx_config_in(e, id)).await?;
    Ok(json!({"message": "nginx配置删除成功", "config_id": id}))
}
