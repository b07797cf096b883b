//! Limit rules and `GET /api/v1/rules/types`; `rule_config` as an object
//! or a JSON string holding one, `status` (or `is_active`) as a flag.

use super::*;

pub(super) const RL: &str = "rules";

/// A limit rule as shown.
#[derive(Serialize, ToSchema)]
pub struct RuleView {
    pub rule_id: u64,
    pub namespace_id: Option<u64>,
    pub namespace_code: Option<String>,
    pub rule_name: String,
    /// `rate_limit`, `concurrency` or `token_limit`.
    pub rule_type: String,
    pub priority: i64,
    /// 1 active, 0 inactive.
    pub status: i64,
    /// The type's settings (see `GET /api/v1/rules/types`).
    #[schema(value_type = Object)]
    pub rule_config: Value,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// `POST /api/v1/namespaces/{id}/rules`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"rule_name": "limit-qps", "rule_type": "rate_limit",
    "rule_config": {"max_qps": 50, "time_window_seconds": 1}, "priority": 10, "status": 1}))]
pub struct RuleCreate {
    /// Display name, used in denial messages.
    pub rule_name: String,
    /// `rate_limit`, `concurrency` or `token_limit`.
    pub rule_type: String,
    /// The type's settings: an object, or a JSON string holding one.
    #[serde(default, deserialize_with = "de::json_map")]
    #[schema(value_type = Option<Object>)]
    pub rule_config: Option<Map<String, Value>>,
    /// Lower runs first.
    pub priority: Option<i64>,
    /// `true`/`false` or `1`/`0` (default active).
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub status: Option<bool>,
    /// Same as `status` (when `status` is not given).
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub is_active: Option<bool>,
}

impl Body for RuleCreate {}

/// `PUT /api/v1/rules/{id}`: only the fields sent change; `namespace_id:
/// null` makes the rule apply to every namespace.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"rule_name": "limit-qps", "rule_type": "rate_limit",
    "rule_config": {"max_qps": 50, "time_window_seconds": 1}, "priority": 10, "status": 1}))]
pub struct RuleUpdate {
    pub rule_name: Option<String>,
    pub rule_type: Option<String>,
    #[serde(default, deserialize_with = "de::id_patch")]
    #[schema(value_type = Option<de::Id>)]
    pub namespace_id: Option<Option<u64>>,
    #[serde(default, deserialize_with = "de::json_map")]
    #[schema(value_type = Option<Object>)]
    pub rule_config: Option<Map<String, Value>>,
    pub priority: Option<i64>,
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub status: Option<bool>,
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub is_active: Option<bool>,
}

impl Body for RuleUpdate {}

/// A created, updated or deleted rule.
#[derive(Serialize, ToSchema)]
pub struct RuleSaved {
    pub message: &'static str,
    pub rule_id: u64,
}

/// One supported type and its `rule_config` fields.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RuleTypeInfo {
    /// `matcher`, `rate_limit`, `concurrency`, `token_limit`.
    #[serde(rename = "type")]
    pub kind: String,
    pub description: Option<String>,
    /// Field name → JSON schema of the field.
    #[schema(value_type = Object)]
    pub config_schema: Value,
}

/// `GET /api/v1/rules/types`.
#[derive(Serialize, ToSchema)]
pub struct RuleTypes {
    pub rule_types: Vec<RuleTypeInfo>,
}

fn view(e: &Entities, r: &Rule) -> RuleView {
    let ns = ns_ref(e, r.namespace.as_deref());
    let (created_at, updated_at) = stamps(e, RL, r.id);
    RuleView {
        rule_id: r.id,
        namespace_id: ns.id,
        namespace_code: ns.code,
        rule_name: r.rule_name.clone(),
        rule_type: r.rule_type.clone(),
        priority: r.priority,
        status: int(r.status),
        rule_config: r.rule_config.clone(),
        created_at,
        updated_at,
    }
}

/// Rules, optionally of one namespace (404 when unknown) and/or one `rule_type`.
pub(super) fn list_of(
    e: &Entities,
    namespace: Option<u64>,
    rule_type: Option<&str>,
) -> Reply<List<RuleView>> {
    let code = namespace.map(|id| ns_code_of(e, id)).transpose()?;
    Ok(e.rules
        .iter()
        .filter(|r| code.is_none() || r.namespace == code)
        .filter(|r| rule_type.is_none_or(|t| r.rule_type == t))
        .map(|r| view(e, r))
        .collect())
}

pub fn list(c: &Call<'_>, _: NoBody) -> Reply<List<RuleView>> {
    let t = c.query_param("rule_type");
    list_of(&c.center.snapshot(), None, t.as_deref())
}

pub fn list_in_namespace(c: &Call<'_>, _: NoBody) -> Reply<List<RuleView>> {
    let t = c.query_param("rule_type");
    list_of(&c.center.snapshot(), Some(c.id()?), t.as_deref())
}

pub fn get(c: &Call<'_>, _: NoBody) -> Reply<RuleView> {
    let e = c.center.snapshot();
    let id = c.id()?;
    e.rules
        .iter()
        .find(|r| r.id == id)
        .map(|r| view(&e, r))
        .ok_or_else(ApiError::not_found)
}

/// `GET /api/v1/rules/types`: the matcher type and the limit types.
pub fn types(_: &Call<'_>, _: NoBody) -> Reply<RuleTypes> {
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
    let rule_types = types
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    Ok(RuleTypes { rule_types })
}

/// Creates a limit rule in namespace `ns_id`; returns its id.
pub(super) fn create_in(e: &mut Entities, ns_id: u64, b: &RuleCreate) -> Result<u64, ApiError> {
    let namespace = ns_code_of(e, ns_id)?;
    let id = e.next_id(RL);
    e.touch(RL, id, true);
    e.rules.push(Rule {
        id,
        rule_name: b.rule_name.clone(),
        namespace: Some(namespace),
        rule_type: b.rule_type.clone(),
        priority: b.priority.unwrap_or(0),
        status: b.status.or(b.is_active).unwrap_or(true),
        rule_config: Value::Object(b.rule_config.clone().unwrap_or_default()),
    });
    Ok(id)
}

pub fn create(c: Call<'_>, b: RuleCreate) -> Pending<'_, RuleSaved> {
    Box::pin(async move {
        let ns = c.id()?;
        let id = c.mutate(|e, _| create_in(e, ns, &b)).await?;
        Ok(RuleSaved {
            message: "规则创建成功",
            rule_id: id,
        })
    })
}

/// Updates limit rule `id` with the fields `b` sends.
pub(super) fn update_in(e: &mut Entities, id: u64, b: &RuleUpdate) -> Result<(), ApiError> {
    let i = position(&e.rules, id, |r| r.id)?;
    let mut r = e.rules[i].clone();
    if let Some(v) = &b.rule_name {
        r.rule_name = v.clone();
    }
    if let Some(v) = &b.rule_type {
        r.rule_type = v.clone();
    }
    if let Some(v) = b.priority {
        r.priority = v;
    }
    if let Some(v) = b.status.or(b.is_active) {
        r.status = v;
    }
    if let Some(v) = &b.rule_config {
        r.rule_config = Value::Object(v.clone());
    }
    if let Some(ns) = b.namespace_id {
        r.namespace = ns.map(|id| ns_code_field(e, id)).transpose()?;
    }
    e.rules[i] = r;
    e.touch(RL, id, false);
    Ok(())
}

pub fn update(c: Call<'_>, b: RuleUpdate) -> Pending<'_, RuleSaved> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| update_in(e, id, &b)).await?;
        Ok(RuleSaved {
            message: "规则更新成功",
            rule_id: id,
        })
    })
}

/// Deletes limit rule `id`.
pub(super) fn delete_in(e: &mut Entities, id: u64) -> Result<(), ApiError> {
    let i = position(&e.rules, id, |r| r.id)?;
    e.rules.remove(i);
    e.forget(RL, id);
    Ok(())
}

pub fn delete(c: Call<'_>, _: NoBody) -> Pending<'_, RuleSaved> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| delete_in(e, id)).await?;
        Ok(RuleSaved {
            message: "规则删除成功",
            rule_id: id,
        })
    })
}
