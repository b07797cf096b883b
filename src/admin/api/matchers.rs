//! Matchers (seed 000 §5), globally and per namespace; `matcher_config`
//! as an object or a JSON string.

use super::*;

pub(super) const MT: &str = "matchers";
pub(super) const MATCH_CONFIG_FIELDS: &[&str] =
    &["match_field", "match_operator", "match_value", "action"];

pub(super) fn matcher_view(e: &Entities, m: &Matcher) -> Value {
    let (ns_id, ns_code, _) = ns_ref_view(e, Some(&m.namespace));
    with_stamps(
        e,
        MT,
        m.id,
        json!({
            "matcher_id": m.id,
            "namespace_id": ns_id,
            "namespace_code": ns_code,
            "matcher_name": m.matcher_name,
            "matcher_type": m.matcher_type,
            "priority": m.priority,
            "is_active": int(m.is_active),
            "matcher_config": {
                "match_field": m.match_field,
                "match_operator": m.match_operator,
                "match_value": m.match_value,
                "action": m.action,
            },
        }),
    )
}

pub fn list_matchers(e: &Entities, namespace: Option<u64>) -> Reply {
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
        e.matchers
            .iter()
            .filter(|m| code.as_ref().is_none_or(|c| *c == m.namespace))
            .map(|m| matcher_view(e, m)),
    ))
}

pub fn get_matcher(e: &Entities, id: u64) -> Reply {
    e.matchers
        .iter()
        .find(|m| m.id == id)
        .map(|m| matcher_view(e, m))
        .ok_or_else(ApiError::not_found)
}

/// Flattens `matcher_config` (object or JSON string) and top-level
/// `match_*` fields into the matcher's own fields.
pub(super) fn matcher_fields(body: &Body) -> Result<Body, ApiError> {
    let mut flat = Map::new();
    copy(
        &mut flat,
        body,
        &["matcher_name", "matcher_type", "priority", "is_active"],
        &[],
    );
    let config = object_field(body, "matcher_config")?;
    copy(&mut flat, &config, MATCH_CONFIG_FIELDS, &[]);
    copy(&mut flat, body, MATCH_CONFIG_FIELDS, &[]);
    // Numbers compared with gt/lt may come as JSON numbers.
    if let Some(v) = flat.get_mut("match_value") {
        if v.is_number() || v.is_boolean() {
            *v = Value::from(v.to_string());
        }
    }
    Ok(flat)
}

/// Creates a matcher in namespace `ns_id`; returns its id.
pub(super) fn create_matcher_in(
    e: &mut Entities,
    ns_id: u64,
    body: &Body,
) -> Result<u64, ApiError> {
    let flat = matcher_fields(body)?;
    let code = ns_by_id(e, ns_id)
        .ok_or_else(ApiError::not_found)?
        .namespace_code
        .clone();
    require(body, &["matcher_type"])?;
    require(&flat, &["match_operator", "match_value"])?;
    let mut m = flat;
    m.insert("namespace".into(), code.into());
    let mut matcher: Matcher = decode(m)?;
    matcher.id = e.next_id(MT);
    let id = matcher.id;
    e.touch(MT, id, true);
    e.matchers.push(matcher);
    Ok(id)
}

pub async fn create_matcher(c: &ConfigCenter, ns_id: u64, body: Body) -> Reply {
    matcher_fields(&body)?;
    let id = c.mutate(|e, _| create_matcher_in(e, ns_id, &body)).await?;
    Ok(json!({"message": "报文匹配器创建成功", "matcher_id": id}))
}

/// Updates matcher `id` with the fields `body` sends.
pub(super) fn update_matcher_in(e: &mut Entities, id: u64, body: &Body) -> Result<(), ApiError> {
    let flat = matcher_fields(body)?;
    {
        let i = e
            .matchers
            .iter()
            .position(|m| m.id == id)
            .ok_or_else(ApiError::not_found)?;
        let mut m = to_map(&e.matchers[i]);
        for (k, v) in flat {
            m.insert(k, v);
        }
        if let Some(code) = ns_code_field(e, body)? {
            m.insert("namespace".into(), code.into());
        }
        let mut matcher: Matcher = decode(m)?;
        matcher.id = id;
        e.matchers[i] = matcher;
        e.touch(MT, id, false);
        Ok(())
    }
}

pub async fn update_matcher(c: &ConfigCenter, id: u64, body: Body) -> Reply {
    matcher_fields(&body)?;
    c.mutate(|e, _| update_matcher_in(e, id, &body)).await?;
    Ok(json!({"message": "报文匹配器更新成功", "matcher_id": id}))
}

/// Deletes matcher `id`.
pub(super) fn delete_matcher_in(e: &mut Entities, id: u64) -> Result<(), ApiError> {
    let i = e
        .matchers
        .iter()
        .position(|m| m.id == id)
        .ok_or_else(ApiError::not_found)?;
    e.matchers.remove(i);
    e.forget(MT, id);
    Ok(())
}

pub async fn delete_matcher(c: &ConfigCenter, id: u64) -> Reply {
    c.mutate(|e, _| delete_matcher_in(e, id)).await?;
    Ok(json!({"message": "报文匹配器删除成功", "matcher_id": id}))
}
