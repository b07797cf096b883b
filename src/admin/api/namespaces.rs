//! Namespaces (seed 000 §2): list, get, create, update (a code rename
//! carries over to every reference), delete (409 while referenced).

use super::*;

pub(super) const NS: &str = "namespaces";

pub(super) fn namespace_view(e: &Entities, n: &Namespace) -> Value {
    with_stamps(
        e,
        NS,
        n.id,
        json!({
            "id": n.id,
            "namespace_name": n.namespace_name,
            "namespace_code": n.namespace_code,
            "description": n.description,
            "is_active": int(n.is_active),
        }),
    )
}

pub fn list_namespaces(e: &Entities) -> Value {
    list_of(e.namespaces.iter().map(|n| namespace_view(e, n)))
}

pub fn get_namespace(e: &Entities, id: u64) -> Reply {
    ns_by_id(e, id)
        .map(|n| namespace_view(e, n))
        .ok_or_else(ApiError::not_found)
}

const NS_FIELDS: &[&str] = &[
    "namespace_code",
    "namespace_name",
    "description",
    "is_active",
];

pub(super) fn check_code_free(e: &Entities, code: &str, except: u64) -> Result<(), ApiError> {
    if e.namespaces
        .iter()
        .any(|n| n.namespace_code == code && n.id != except)
    {
        return Err(ApiError::conflict(format!("namespace_code 已存在: {code}")));
    }
    Ok(())
}

/// Creates a namespace; returns its id.
pub(super) fn create_namespace_in(e: &mut Entities, body: &Body) -> Result<u64, ApiError> {
    require(body, &["namespace_name", "namespace_code"])?;
    let mut m = Map::new();
    copy(&mut m, body, NS_FIELDS, &[]);
    let mut ns: Namespace = decode(m)?;
    check_code_free(e, &ns.namespace_code, 0)?;
    ns.id = e.next_id(NS);
    let id = ns.id;
    e.touch(NS, id, true);
    e.namespaces.push(ns);
    Ok(id)
}

pub async fn create_namespace(c: &ConfigCenter, body: Body) -> Reply {
    require(&body, &["namespace_name", "namespace_code"])?;
    let id = c.mutate(|e, _| create_namespace_in(e, &body)).await?;
    let e = c.snapshot();
    Ok(json!({"message": "命名空间创建成功", "namespace_id": id,
        "namespace": get_namespace(&e, id)?}))
}

/// Updates namespace `id` with the fields `body` sends.
pub(super) fn update_namespace_in(e: &mut Entities, id: u64, body: &Body) -> Result<(), ApiError> {
    {
        let i = e
            .namespaces
            .iter()
            .position(|n| n.id == id)
            .ok_or_else(ApiError::not_found)?;
        let old = e.namespaces[i].clone();
        let mut m = to_map(&old);
        copy(&mut m, body, NS_FIELDS, &[]);
        let mut ns: Namespace = decode(m)?;
        ns.id = id;
        check_code_free(e, &ns.namespace_code, id)?;
        if ns.namespace_code != old.namespace_code {
            rename_namespace(e, &old.namespace_code, &ns.namespace_code);
        }
        e.namespaces[i] = ns;
        e.touch(NS, id, false);
        Ok(())
    }
}

pub async fn update_namespace(c: &ConfigCenter, id: u64, body: Body) -> Reply {
    c.mutate(|e, _| update_namespace_in(e, id, &body)).await?;
    let e = c.snapshot();
    Ok(json!({"message": "命名空间更新成功", "namespace_id": id,
        "namespace": get_namespace(&e, id)?}))
}

/// A renamed namespace keeps its stored references (they hold the code).
pub(super) fn rename_namespace(e: &mut Entities, old: &str, new: &str) {
    let fix = |slot: &mut Option<String>| {
        if slot.as_deref() == Some(old) {
            *slot = Some(new.to_string());
        }
    };
    for m in &mut e.matchers {
        if m.namespace == old {
            m.namespace = new.to_string();
        }
    }
    e.proxy_rules.iter_mut().for_each(|r| fix(&mut r.namespace));
    e.routes.iter_mut().for_each(|r| fix(&mut r.namespace));
    e.rules.iter_mut().for_each(|r| fix(&mut r.namespace));
}

pub(super) fn ids(list: Vec<u64>) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Deletes namespace `id` (409 while anything references it).
pub(super) fn delete_namespace_in(e: &mut Entities, rt: &Runtime, id: u64) -> Result<(), ApiError> {
    {
        let i = e
            .namespaces
            .iter()
            .position(|n| n.id == id)
            .ok_or_else(ApiError::not_found)?;
        let code = e.namespaces[i].namespace_code.clone();
        let is = |n: &Option<String>| n.as_deref() == Some(code.as_str());
        let mut refs = Vec::new();
        let matchers: Vec<u64> = e
            .matchers
            .iter()
            .filter(|m| m.namespace == code)
            .map(|m| m.id)
            .collect();
        if !matchers.is_empty() {
            refs.push(format!("matchers [{}]", ids(matchers)));
        }
        let proxy: Vec<u64> = e
            .proxy_rules
            .iter()
            .filter(|r| is(&r.namespace))
            .map(|r| r.id)
            .collect();
        if !proxy.is_empty() {
            refs.push(format!("proxy_rules [{}]", ids(proxy)));
        }
        let rules: Vec<u64> = e
            .rules
            .iter()
            .filter(|r| is(&r.namespace))
            .map(|r| r.id)
            .collect();
        if !rules.is_empty() {
            refs.push(format!("rules [{}]", ids(rules)));
        }
        let routes: Vec<&str> = e
            .routes
            .iter()
            .filter(|r| is(&r.namespace))
            .map(|r| r.prefix.as_str())
            .collect();
        if !routes.is_empty() {
            refs.push(format!("routes [{}]", routes.join(", ")));
        }
        let keys: Vec<&str> = rt
            .config
            .auth
            .keys
            .iter()
            .filter(|k| is(&k.namespace))
            .map(|k| k.name.as_str())
            .collect();
        if !keys.is_empty() {
            refs.push(format!("auth.keys [{}]", keys.join(", ")));
        }
        if is(&rt.config.default_namespace) {
            refs.push("default_namespace".into());
        }
        if !refs.is_empty() {
            return Err(ApiError::conflict(format!(
                "命名空间 {code} 仍被引用，无法删除: {}",
                refs.join("; ")
            )));
        }
        e.namespaces.remove(i);
        e.forget(NS, id);
        Ok(())
    }
}

pub async fn delete_namespace(c: &ConfigCenter, id: u64) -> Reply {
    c.mutate(|e, rt| delete_namespace_in(e, rt, id)).await?;
    Ok(json!({"message": "命名空间删除成功", "namespace_id": id}))
}
