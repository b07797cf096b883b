//! Namespaces: list, get, create, update (a code rename carries over to
//! every reference), delete (409 while referenced).

use super::*;

pub(super) const NS: &str = "namespaces";

/// A namespace as shown.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct NamespaceView {
    pub id: u64,
    pub namespace_name: String,
    pub namespace_code: String,
    pub description: String,
    /// 1 active, 0 inactive.
    pub is_active: i64,
    /// Masking rules of answers to external-channel clients.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub masking: Vec<sluice_filters::redact::MaskRule>,
    /// Its use of the response cache; null = off.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub cache: Option<crate::config::NamespaceCache>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// `POST /api/v1/namespaces`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"namespace_name": "企业业务", "namespace_code": "enterprise",
    "description": "说明", "is_active": 1}))]
pub struct NamespaceCreate {
    /// Display name.
    pub namespace_name: String,
    /// Unique code, used by references.
    pub namespace_code: String,
    #[serde(default, deserialize_with = "de::text")]
    pub description: Option<String>,
    /// `true`/`false` or `1`/`0` (default active).
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub is_active: Option<bool>,
    /// Masking of answers to external-channel clients: each rule is
    /// `{"builtin": "email"|"phone"|"card"|"api_key"}` or `{"name",
    /// "pattern"}` (a regex with bounded repetitions), optionally with a
    /// `replacement`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub masking: Option<Vec<sluice_filters::redact::MaskRule>>,
    /// Response cache: `{"enabled", "per_key", "tools", "any_sampling",
    /// "charge_hits", "ttl_s"}` (answers of catalog models that cache).
    #[schema(value_type = Option<Object>)]
    pub cache: Option<crate::config::NamespaceCache>,
}

impl Body for NamespaceCreate {}

/// `PUT /api/v1/namespaces/{id}`: only the fields sent change.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"namespace_name": "企业业务", "description": "说明", "is_active": 1}))]
pub struct NamespaceUpdate {
    pub namespace_name: Option<String>,
    /// A new code: every reference follows.
    pub namespace_code: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub is_active: Option<bool>,
    /// Replaces the masking rules (`[]` removes them).
    #[schema(value_type = Option<Vec<Object>>)]
    pub masking: Option<Vec<sluice_filters::redact::MaskRule>>,
    /// Replaces the response-cache settings (`{"enabled": false}` turns
    /// the cache off).
    #[schema(value_type = Option<Object>)]
    pub cache: Option<crate::config::NamespaceCache>,
}

impl Body for NamespaceUpdate {}

/// A created or updated namespace.
#[derive(Serialize, ToSchema)]
pub struct NamespaceSaved {
    pub message: &'static str,
    pub namespace_id: u64,
    pub namespace: NamespaceView,
}

/// A deleted namespace.
#[derive(Serialize, ToSchema)]
pub struct NamespaceDeleted {
    pub message: &'static str,
    pub namespace_id: u64,
}

pub(super) fn view(e: &Entities, n: &Namespace) -> NamespaceView {
    let (created_at, updated_at) = stamps(e, NS, n.id);
    NamespaceView {
        id: n.id,
        namespace_name: n.namespace_name.clone(),
        namespace_code: n.namespace_code.clone(),
        description: n.description.clone(),
        is_active: int(n.is_active),
        masking: n.masking.clone(),
        cache: n.cache.clone(),
        created_at,
        updated_at,
    }
}

pub fn list(c: &Call<'_>, _: NoBody) -> Reply<List<NamespaceView>> {
    let e = c.center.snapshot();
    Ok(e.namespaces.iter().map(|n| view(&e, n)).collect())
}

pub(super) fn find(e: &Entities, id: u64) -> Reply<NamespaceView> {
    ns_by_id(e, id)
        .map(|n| view(e, n))
        .ok_or_else(ApiError::not_found)
}

pub fn get(c: &Call<'_>, _: NoBody) -> Reply<NamespaceView> {
    find(&c.center.snapshot(), c.id()?)
}

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
pub(super) fn create_in(e: &mut Entities, b: &NamespaceCreate) -> Result<u64, ApiError> {
    check_code_free(e, &b.namespace_code, 0)?;
    let id = e.next_id(NS);
    e.touch(NS, id, true);
    e.namespaces.push(Namespace {
        id,
        namespace_code: b.namespace_code.clone(),
        namespace_name: b.namespace_name.clone(),
        description: b.description.clone().unwrap_or_default(),
        is_active: b.is_active.unwrap_or(true),
        masking: b.masking.clone().unwrap_or_default(),
        cache: b.cache.clone(),
    });
    Ok(id)
}

fn saved(c: &ConfigCenter, message: &'static str, id: u64) -> Reply<NamespaceSaved> {
    Ok(NamespaceSaved {
        message,
        namespace_id: id,
        namespace: find(&c.snapshot(), id)?,
    })
}

pub fn create(c: Call<'_>, b: NamespaceCreate) -> Pending<'_, NamespaceSaved> {
    Box::pin(async move {
        let id = c.mutate(|e, _| create_in(e, &b)).await?;
        saved(c.center, "命名空间创建成功", id)
    })
}

/// Updates namespace `id` with the fields `b` sends.
pub(super) fn update_in(e: &mut Entities, id: u64, b: &NamespaceUpdate) -> Result<(), ApiError> {
    let i = position(&e.namespaces, id, |n| n.id)?;
    let old = e.namespaces[i].clone();
    let mut ns = old.clone();
    if let Some(v) = &b.namespace_name {
        ns.namespace_name = v.clone();
    }
    if let Some(v) = &b.namespace_code {
        ns.namespace_code = v.clone();
    }
    if let Some(v) = &b.description {
        ns.description = v.clone();
    }
    if let Some(v) = b.is_active {
        ns.is_active = v;
    }
    if let Some(v) = &b.masking {
        ns.masking = v.clone();
    }
    if let Some(v) = &b.cache {
        ns.cache = Some(v.clone());
    }
    check_code_free(e, &ns.namespace_code, id)?;
    if ns.namespace_code != old.namespace_code {
        rename(e, &old.namespace_code, &ns.namespace_code);
    }
    e.namespaces[i] = ns;
    e.touch(NS, id, false);
    Ok(())
}

pub fn update(c: Call<'_>, b: NamespaceUpdate) -> Pending<'_, NamespaceSaved> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| update_in(e, id, &b)).await?;
        saved(c.center, "命名空间更新成功", id)
    })
}

/// A renamed namespace keeps its stored references (they hold the code).
fn rename(e: &mut Entities, old: &str, new: &str) {
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
    e.virtual_keys
        .iter_mut()
        .for_each(|k| fix(&mut k.namespace));
}

/// Deletes namespace `id` (409 while anything references it).
pub(super) fn delete_in(e: &mut Entities, rt: &Snapshot, id: u64) -> Result<(), ApiError> {
    let i = position(&e.namespaces, id, |n| n.id)?;
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
        .chain(
            e.virtual_keys
                .iter()
                .filter(|k| is(&k.namespace))
                .map(|k| k.name.as_str()),
        )
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

pub fn delete(c: Call<'_>, _: NoBody) -> Pending<'_, NamespaceDeleted> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, rt| delete_in(e, rt, id)).await?;
        Ok(NamespaceDeleted {
            message: "命名空间删除成功",
            namespace_id: id,
        })
    })
}

/// `POST /namespaces/batch`: namespace ids.
#[derive(Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(example = json!([1, 2, 3]))]
pub struct NamespaceIds(#[serde(deserialize_with = "numeric_ids")] pub Vec<u64>);

impl Body for NamespaceIds {
    const OBJECT: bool = false;
    const SHAPE: &'static str = "请求体必须是命名空间 ID 的数组，如 [1, 2, 3]";
}

fn numeric_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    let items = Vec::<Value>::deserialize(d)?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_u64()
                .ok_or_else(|| serde::de::Error::custom(format!("[{i}]: 必须是数字 ID")))
        })
        .collect()
}

/// `POST /namespaces/batch`: the namespaces that exist, in the order asked.
pub fn batch(c: &Call<'_>, b: NamespaceIds) -> Reply<List<NamespaceView>> {
    let e = c.center.snapshot();
    Ok(b.0
        .iter()
        .filter_map(|id| ns_by_id(&e, *id))
        .map(|n| view(&e, n))
        .collect())
}
