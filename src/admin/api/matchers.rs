//! Matchers, globally and per namespace. The match fields come in
//! `matcher_config` (an object, or a JSON string holding one) or at the
//! body's top level (which wins).

use super::*;
use sluice_filters::matcher::{MatchAction, MatchOperator, MatcherType};

pub(super) const MT: &str = "matchers";

/// Which part of the request a matcher reads.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum MatcherKind {
    Header,
    Query,
    Path,
    Body,
}

impl From<MatcherType> for MatcherKind {
    fn from(t: MatcherType) -> Self {
        match t {
            MatcherType::Header => MatcherKind::Header,
            MatcherType::Query => MatcherKind::Query,
            MatcherType::Path => MatcherKind::Path,
            MatcherType::Body => MatcherKind::Body,
        }
    }
}

impl From<MatcherKind> for MatcherType {
    fn from(t: MatcherKind) -> Self {
        match t {
            MatcherKind::Header => MatcherType::Header,
            MatcherKind::Query => MatcherType::Query,
            MatcherKind::Path => MatcherType::Path,
            MatcherKind::Body => MatcherType::Body,
        }
    }
}

/// How the field is compared with `match_value`.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Operator {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    Regex,
}

impl From<MatchOperator> for Operator {
    fn from(o: MatchOperator) -> Self {
        match o {
            MatchOperator::Eq => Operator::Eq,
            MatchOperator::Ne => Operator::Ne,
            MatchOperator::Gt => Operator::Gt,
            MatchOperator::Gte => Operator::Gte,
            MatchOperator::Lt => Operator::Lt,
            MatchOperator::Lte => Operator::Lte,
            MatchOperator::Contains => Operator::Contains,
            MatchOperator::Regex => Operator::Regex,
        }
    }
}

impl From<Operator> for MatchOperator {
    fn from(o: Operator) -> Self {
        match o {
            Operator::Eq => MatchOperator::Eq,
            Operator::Ne => MatchOperator::Ne,
            Operator::Gt => MatchOperator::Gt,
            Operator::Gte => MatchOperator::Gte,
            Operator::Lt => MatchOperator::Lt,
            Operator::Lte => MatchOperator::Lte,
            Operator::Contains => MatchOperator::Contains,
            Operator::Regex => MatchOperator::Regex,
        }
    }
}

/// What a matching matcher does.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Admit into the namespace.
    Allow,
    /// Refuse (403).
    Deny,
}

impl From<MatchAction> for Action {
    fn from(a: MatchAction) -> Self {
        match a {
            MatchAction::Allow => Action::Allow,
            MatchAction::Deny => Action::Deny,
        }
    }
}

impl From<Action> for MatchAction {
    fn from(a: Action) -> Self {
        match a {
            Action::Allow => MatchAction::Allow,
            Action::Deny => MatchAction::Deny,
        }
    }
}

/// A matcher's match fields as shown.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MatchView {
    pub match_field: String,
    pub match_operator: Operator,
    pub match_value: String,
    pub action: Action,
}

/// A matcher as shown.
#[derive(Serialize, ToSchema)]
pub struct MatcherView {
    pub matcher_id: u64,
    pub namespace_id: Option<u64>,
    pub namespace_code: Option<String>,
    pub matcher_name: String,
    pub matcher_type: MatcherKind,
    pub priority: i64,
    pub is_active: i64,
    pub matcher_config: MatchView,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// The match fields of a request (each optional).
#[derive(Deserialize, ToSchema, Default)]
pub struct MatchFields {
    /// Header name, query parameter or dotted body path (ignored for `path`).
    pub match_field: Option<String>,
    pub match_operator: Option<Operator>,
    /// The value compared against: a string, or a number or boolean.
    #[serde(default, deserialize_with = "de::loose_text")]
    pub match_value: Option<String>,
    pub action: Option<Action>,
}

/// `POST /api/v1/namespaces/{id}/matchers`: `match_operator` and
/// `match_value` are needed, in `matcher_config` or at the top level.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"matcher_name": "route-by-header", "matcher_type": "header",
    "matcher_config": {"match_field": "x-tenant", "match_operator": "eq",
        "match_value": "enterprise", "action": "allow"}, "priority": 10, "is_active": 1}))]
pub struct MatcherCreate {
    pub matcher_type: MatcherKind,
    pub matcher_name: Option<String>,
    /// An object, or a JSON string holding one.
    #[serde(default, deserialize_with = "de::json_object")]
    #[schema(value_type = Option<MatchFields>)]
    pub matcher_config: Option<MatchFields>,
    /// Lower runs first.
    pub priority: Option<i64>,
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub is_active: Option<bool>,
    pub match_field: Option<String>,
    pub match_operator: Option<Operator>,
    #[serde(default, deserialize_with = "de::loose_text")]
    pub match_value: Option<String>,
    pub action: Option<Action>,
}

impl Body for MatcherCreate {}

/// `PUT /api/v1/matchers/{id}`: only the fields sent change
/// (`matcher_config` may hold some of the match fields).
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"matcher_name": "route-by-header", "matcher_type": "header",
    "matcher_config": {"match_field": "x-tenant", "match_operator": "eq",
        "match_value": "enterprise", "action": "allow"}, "priority": 10, "is_active": 1}))]
pub struct MatcherUpdate {
    pub matcher_type: Option<MatcherKind>,
    pub matcher_name: Option<String>,
    /// Moves the matcher to another namespace.
    #[serde(default, deserialize_with = "de::id")]
    #[schema(value_type = Option<de::Id>)]
    pub namespace_id: Option<u64>,
    #[serde(default, deserialize_with = "de::json_object")]
    #[schema(value_type = Option<MatchFields>)]
    pub matcher_config: Option<MatchFields>,
    pub priority: Option<i64>,
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub is_active: Option<bool>,
    pub match_field: Option<String>,
    pub match_operator: Option<Operator>,
    #[serde(default, deserialize_with = "de::loose_text")]
    pub match_value: Option<String>,
    pub action: Option<Action>,
}

impl Body for MatcherUpdate {}

/// A created or updated matcher.
#[derive(Serialize, ToSchema)]
pub struct MatcherSaved {
    pub message: &'static str,
    pub matcher_id: u64,
}

/// The top-level match fields over those of `matcher_config`.
fn merged(config: &Option<MatchFields>, top: MatchFields) -> MatchFields {
    let base = config.as_ref();
    MatchFields {
        match_field: top
            .match_field
            .or_else(|| base.and_then(|c| c.match_field.clone())),
        match_operator: top
            .match_operator
            .or_else(|| base.and_then(|c| c.match_operator)),
        match_value: top
            .match_value
            .or_else(|| base.and_then(|c| c.match_value.clone())),
        action: top.action.or_else(|| base.and_then(|c| c.action)),
    }
}

impl MatcherCreate {
    fn fields(&self) -> MatchFields {
        merged(
            &self.matcher_config,
            MatchFields {
                match_field: self.match_field.clone(),
                match_operator: self.match_operator,
                match_value: self.match_value.clone(),
                action: self.action,
            },
        )
    }
}

impl MatcherUpdate {
    fn fields(&self) -> MatchFields {
        merged(
            &self.matcher_config,
            MatchFields {
                match_field: self.match_field.clone(),
                match_operator: self.match_operator,
                match_value: self.match_value.clone(),
                action: self.action,
            },
        )
    }
}

pub(super) fn match_view(m: &Matcher) -> MatchView {
    MatchView {
        match_field: m.match_field.clone(),
        match_operator: m.match_operator.into(),
        match_value: m.match_value.clone(),
        action: m.action.into(),
    }
}

fn view(e: &Entities, m: &Matcher) -> MatcherView {
    let ns = ns_ref(e, Some(&m.namespace));
    let (created_at, updated_at) = stamps(e, MT, m.id);
    MatcherView {
        matcher_id: m.id,
        namespace_id: ns.id,
        namespace_code: ns.code,
        matcher_name: m.matcher_name.clone(),
        matcher_type: m.matcher_type.into(),
        priority: m.priority,
        is_active: int(m.is_active),
        matcher_config: match_view(m),
        created_at,
        updated_at,
    }
}

/// Matchers, optionally of namespace `namespace` (404 when unknown).
pub(super) fn list_of(e: &Entities, namespace: Option<u64>) -> Reply<List<MatcherView>> {
    let code = namespace.map(|id| ns_code_of(e, id)).transpose()?;
    Ok(e.matchers
        .iter()
        .filter(|m| code.as_ref().is_none_or(|c| *c == m.namespace))
        .map(|m| view(e, m))
        .collect())
}

pub fn list(c: &Call<'_>, _: NoBody) -> Reply<List<MatcherView>> {
    list_of(&c.center.snapshot(), None)
}

pub fn list_in_namespace(c: &Call<'_>, _: NoBody) -> Reply<List<MatcherView>> {
    list_of(&c.center.snapshot(), Some(c.id()?))
}

pub fn get(c: &Call<'_>, _: NoBody) -> Reply<MatcherView> {
    let e = c.center.snapshot();
    let id = c.id()?;
    e.matchers
        .iter()
        .find(|m| m.id == id)
        .map(|m| view(&e, m))
        .ok_or_else(ApiError::not_found)
}

fn missing(field: &str) -> ApiError {
    ApiError::bad_request(format!("缺少必要字段: {field}"))
}

/// Creates a matcher in namespace `ns_id`; returns its id.
pub(super) fn create_in(e: &mut Entities, ns_id: u64, b: &MatcherCreate) -> Result<u64, ApiError> {
    let namespace = ns_code_of(e, ns_id)?;
    let f = b.fields();
    let match_operator = f.match_operator.ok_or_else(|| missing("match_operator"))?;
    let match_value = f.match_value.ok_or_else(|| missing("match_value"))?;
    let id = e.next_id(MT);
    e.touch(MT, id, true);
    e.matchers.push(Matcher {
        id,
        matcher_name: b.matcher_name.clone().unwrap_or_default(),
        namespace,
        matcher_type: b.matcher_type.into(),
        match_field: f.match_field.unwrap_or_default(),
        match_operator: match_operator.into(),
        match_value,
        action: f.action.map(Into::into).unwrap_or_default(),
        priority: b.priority.unwrap_or(0),
        is_active: b.is_active.unwrap_or(true),
        namespace_route: false,
    });
    Ok(id)
}

pub fn create(c: Call<'_>, b: MatcherCreate) -> Pending<'_, MatcherSaved> {
    Box::pin(async move {
        let ns = c.id()?;
        let id = c.mutate(|e, _| create_in(e, ns, &b)).await?;
        Ok(MatcherSaved {
            message: "报文匹配器创建成功",
            matcher_id: id,
        })
    })
}

/// Updates matcher `id` with the fields `b` sends.
pub(super) fn update_in(e: &mut Entities, id: u64, b: &MatcherUpdate) -> Result<(), ApiError> {
    let i = position(&e.matchers, id, |m| m.id)?;
    let mut m = e.matchers[i].clone();
    let f = b.fields();
    if let Some(v) = &b.matcher_name {
        m.matcher_name = v.clone();
    }
    if let Some(v) = b.matcher_type {
        m.matcher_type = v.into();
    }
    if let Some(v) = b.priority {
        m.priority = v;
    }
    if let Some(v) = b.is_active {
        m.is_active = v;
    }
    if let Some(v) = f.match_field {
        m.match_field = v;
    }
    if let Some(v) = f.match_operator {
        m.match_operator = v.into();
    }
    if let Some(v) = f.match_value {
        m.match_value = v;
    }
    if let Some(v) = f.action {
        m.action = v.into();
    }
    if let Some(ns) = b.namespace_id {
        m.namespace = ns_code_field(e, ns)?;
    }
    e.matchers[i] = m;
    e.touch(MT, id, false);
    Ok(())
}

pub fn update(c: Call<'_>, b: MatcherUpdate) -> Pending<'_, MatcherSaved> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| update_in(e, id, &b)).await?;
        Ok(MatcherSaved {
            message: "报文匹配器更新成功",
            matcher_id: id,
        })
    })
}

/// Deletes matcher `id`.
pub(super) fn delete_in(e: &mut Entities, id: u64) -> Result<(), ApiError> {
    let i = position(&e.matchers, id, |m| m.id)?;
    e.matchers.remove(i);
    e.forget(MT, id);
    Ok(())
}

pub fn delete(c: Call<'_>, _: NoBody) -> Pending<'_, MatcherSaved> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| delete_in(e, id)).await?;
        Ok(MatcherSaved {
            message: "报文匹配器删除成功",
            matcher_id: id,
        })
    })
}
