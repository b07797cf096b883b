//! Limit rules (seed 000 §4) and `GET /api/v1/rules/types`; `rule_config`
//! as an object or a JSON string.

use super::*;

pub(super) const RL: &str = "rules";

pub(super) fn rule_view(e: &Entities, r: &Rule) -> Value {
    let (ns_id, ns_code, _) = ns_ref_view(e, r.namespace.as_deref());
    with_stamps(
        e,
        RL,
        r.id,
        json!({
            "rule_id": r.id,
            "namespace_id": ns_id,
            "namespace_code": ns_code,
            "rule_name": r.rule_name,
            "rule_type": r.rule_type,
            "priority": r.priority,
            "status": int(r.status),
            "rule_config": r.rule_config,
        }),
    )
}

/// Rules, optionally of one namespace and/or one `rule_type`.
pub fn list_rules(e: &Entities, namespace: Option<u64>, rule_type: Option<&str>) -> Reply {
    let code = match namespace {
        None => None,
        Some(id) => Some(
            ns_by_id(e, id)
                .ok_or_else(ApiError::not_found)?
                .namespace_code
                .clone(),
        ),
    };
    Ok(list_of(
        e.rules
            .iter()
            .filter(|r| code.is_none() || r.namespace == code)
            .filter(|r| rule_type.is_none_or(|t| r.rule_type == t))
            .map(|r| rule_view(e, r)),
    ))
}

pub fn get_rule(e: &Entities, id: u64) -> Reply {
    e.rules
        .iter()
        .find(|r| r.id == id)
        .map(|r| rule_view(e, r))
        .ok_or_else(ApiError::not_found)
}

/// `GET /api/v1/rules/types`: the matcher type (seed 000) and the limit types.
pub fn rule_types() -> Value {
    let matcher = json!({
        "type": "matcher",
        "description": "报文匹配器：按请求头/查询参数/路径/请求体把请求归入命名空间或拒绝（在 /api/v1/namespaces/{id}/matchers 管理）",
        "config_schema": {
            "matcher_type": {"type": "string", "enum": ["header", "body", "query", "path"]},
            "match_field": {"type": "string"},
            "match_operator": {"type": "string", "enum": ["eq", "ne", "gt", "gte", "lt", "lte", "contains", "regex"]},
            "match_value": {"type": "string"},
            "action": {"type": "string", "enum": ["allow", "deny"]},
        },
    });
    let mut types = vec![matcher];
    if let Some(Value::Array(limits)) =
        sluice_filters::limits::rules::rule_types_schema().get("rule_types")
    {
        types.extend(limits.iter().cloned());
    }
    json!({ "rule_types": types })
}

/// The rule's own fields from a body: `status` (or `is_active`), and
/// `rule_config` as an object (an object, or a string holding one).
pub(super) fn rule_fields(body: &Body) -> Result<Body, ApiError> {
    let mut m = Map::new();
    copy(
        &mut m,
        body,
        &["rule_name", "rule_type", "priority", "status"],
        &[],
    );
    if !m.contains_key("status") {
        copy(&mut m, body, &["is_active"], &[]);
        if let Some(v) = m.remove("is_active") {
            m.insert("status".into(), v);
        }
    }
    if body.get("rule_config").is_some_and(|v| !v.is_null()) {
        m.insert(
            "rule_config".into(),
            Value::Object(object_field(body, "rule_config")?),
        );
    }
    Ok(m)
}

/// Creates a limit rule in namespace `ns_id`; returns its id.
pub(super) fn create_rule_in(e: &mut Entities, ns_id: u64, body: &Body) -> Result<u64, ApiError> {
    let fields = rule_fields(body)?;
    let code = ns_by_id(e, ns_id)
        .ok_or_else(ApiError::not_found)?
        .namespace_code
        .clone();
    require(body, &["rule_name", "rule_type"])?;
    let mut m = fields;
    m.insert("namespace".into(), code.into());
    m.entry("rule_config").or_insert_with(|| json!({}));
    let mut r: Rule = decode(m)?;
    r.id = e.next_id(RL);
    let id = r.id;
    e.touch(RL, id, true);
    e.rules.push(r);
    Ok(id)
}

pub async fn create_rule(c: &ConfigCenter, ns_id: u64, body: Body) -> Reply {
    rule_fields(&body)?;
    let id = c.mutate(|e, _| create_rule_in(e, ns_id, &body)).await?;
    Ok(json!({"message": "规则创建成功", "rule_id": id}))
}

/// Updates limit rule `id` with the fields `body` sends.
pub(super) fn update_rule_in(e: &mut Entities, id: u64, body: &Body) -> Result<(), ApiError> {
    let fields = rule_fields(body)?;
    {
        let i = e
            .rules
            .iter()
            .position(|r| r.id == id)
            .ok_or_else(ApiError::not_found)?;
        let mut m = to_map(&e.rules[i]);
        for (k, v) in fields {
            m.insert(k, v);
        }
        if body.contains_key("namespace_id") {
            let code = ns_code_field(e, body)?;
            m.insert("namespace".into(), code.map_or(Value::Null, Value::from));
        }
        let mut r: Rule = decode(m)?;
        r.id = id;
        e.rules[i] = r;
        e.touch(RL, id, false);
        Ok(())
    }
}

pub async fn update_rule(c: &ConfigCenter, id: u64, body: Body) -> Reply {
    rule_fields(&body)?;
    c.mutate(|e, _| update_rule_in(e, id, &body)).await?;
    Ok(json!({"message": "规则更新成功", "rule_id": id}))
}

/// Deletes limit rule `id`.
pub(super) fn delete_rule_in(e: &mut Entities, id: u64) -> Result<(), ApiError> {
    let i = e
        .rules
        .iter()
        .position(|r| r.id == id)
        .ok_or_else(ApiError::not_found)?;
    e.rules.remove(i);
    e.forget(RL, id);
    Ok(())
}

pub async fn delete_rule(c: &ConfigCenter, id: u64) -> Reply {
    c.mutate(|e, _| delete_rule_in(e, id)).await?;
    Ok(json!({"message": "规则删除成功", "rule_id": id}))
}
