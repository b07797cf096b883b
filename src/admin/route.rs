//! What one admin route is, and how a request finds it: the [`Route`]
//! entry (method, path template, documentation, the typed [`Operation`]
//! that serves it), the request side ([`Input`]: no body, or a JSON body
//! decoded into a [`Body`] type), the response side (a `Serialize +
//! ToSchema` type), and [`lookup`] over the table ([`super::routes::ROUTES`]).
//! The same entry is what the router calls and what the OpenAPI document
//! describes ([`super::openapi`]), so neither can list a route the other lacks.

use super::center::ConfigCenter;
use super::ApiError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use utoipa::openapi::schema::{ArrayBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// A handler's answer: the typed response, or the error to send.
pub type Reply<T = Value> = Result<T, ApiError>;
/// The future of an asynchronous handler.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Reply<T>> + Send + 'a>>;
/// Component schemas gathered while documenting (name, schema).
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// One admin endpoint.
#[derive(Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// Path template; `{...}` segments are numeric ids (see [`ID_OR_TYPE`]).
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Needs the admin token (subject to `admin.auth_reads` for GETs).
    pub auth: bool,
    /// Statuses besides 200 (and 401 for `auth` routes).
    pub errors: &'static [u16],
    /// Optional query parameters: name and description.
    pub query: &'static [(&'static str, &'static str)],
    /// Serves the route and describes its request and response.
    pub op: &'static dyn Operation,
}

impl Route {
    /// A route that needs the token, answers only 200 (and 401), takes no query.
    pub const fn new(
        method: &'static str,
        path: &'static str,
        tag: &'static str,
        summary: &'static str,
        op: &'static dyn Operation,
    ) -> Route {
        Route {
            method,
            path,
            tag,
            summary,
            auth: true,
            errors: &[],
            query: &[],
            op,
        }
    }

    /// Served without a token.
    pub const fn open(self) -> Route {
        Route {
            auth: false,
            ..self
        }
    }

    /// The error statuses it may answer.
    pub const fn errors(self, errors: &'static [u16]) -> Route {
        Route { errors, ..self }
    }

    /// Its optional query parameters.
    pub const fn query(self, query: &'static [(&'static str, &'static str)]) -> Route {
        Route { query, ..self }
    }

    /// The statuses it may answer.
    pub fn statuses(&self) -> Vec<u16> {
        let mut s = vec![200];
        if self.auth {
            s.push(401);
        }
        s.extend_from_slice(self.errors);
        s
    }
}

/// What a handler gets besides its decoded body.
pub struct Call<'a> {
    pub center: &'a ConfigCenter,
    /// The `{...}` path segment as sent, when the template has one.
    pub param: Option<&'a str>,
    /// The raw query string ("" when none).
    pub query: &'a str,
    /// Set when the handler changed the config ([`Call::mutate`]): the
    /// answer then carries the config's `warnings`.
    pub changed: &'a std::sync::atomic::AtomicBool,
    /// Who is calling (`token:<name>`, `user:<e-mail>`; `anonymous` for
    /// a read without a token when `admin.auth_reads` is off).
    pub actor: &'a str,
    /// The client's address (sign-in attempts are counted by it).
    pub client: &'a str,
}

impl Call<'_> {
    /// The numeric `{...}` segment (404 otherwise).
    pub fn id(&self) -> Result<u64, ApiError> {
        self.param
            .and_then(|p| p.parse().ok())
            .ok_or_else(ApiError::not_found)
    }

    /// Applies a change through [`ConfigCenter::mutate_as`] as the
    /// caller, noting that this call changed the config.
    pub async fn mutate<T>(
        &self,
        change: impl Fn(
            &mut crate::store::config_file::Entities,
            &crate::state::Snapshot,
        ) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.mutate_because("change", change).await
    }

    /// [`Call::mutate`] recorded with another cause (`restore`).
    pub async fn mutate_because<T>(
        &self,
        cause: &str,
        change: impl Fn(
            &mut crate::store::config_file::Entities,
            &crate::state::Snapshot,
        ) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let out = self.center.mutate_as(self.actor, cause, change).await?;
        self.changed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(out)
    }

    /// Query parameter `name`, when given and not empty (the gateway's
    /// one query decoder, `sluice_filters::facts::query_param`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        sluice_filters::facts::query_param(self.query, name).filter(|v| !v.is_empty())
    }
}

/// A route's typed behaviour, object-safe so the table can hold any.
pub trait Operation: Sync {
    /// Whether the route reads a JSON body.
    fn takes_body(&self) -> bool;
    /// Decodes `body`, runs the handler, and encodes its answer.
    fn call<'a>(&'a self, call: Call<'a>, body: Option<Value>) -> Pending<'a, Value>;
    /// The request body's schema and example, adding the components it uses.
    fn request(&self, schemas: &mut Schemas) -> Option<(RefOr<Schema>, Option<Value>)>;
    /// The 200 answer's schema, adding the components it uses.
    fn response(&self, schemas: &mut Schemas) -> RefOr<Schema>;
    /// Whether `body` decodes as the request type (for checking examples).
    fn decodes(&self, body: Value) -> Reply<()>;
}

/// A handler that answers at once.
pub struct Direct<Req, Resp>(pub fn(&Call<'_>, Req) -> Reply<Resp>);

/// A handler that awaits (changes, the cache, counting off-thread).
pub struct Async<Req, Resp>(pub for<'a> fn(Call<'a>, Req) -> Pending<'a, Resp>);

fn encode<T: Serialize>(v: &T) -> Reply<Value> {
    serde_json::to_value(v).map_err(ApiError::internal)
}

impl<Req: Input, Resp: Serialize + ToSchema + Send> Operation for Direct<Req, Resp> {
    fn takes_body(&self) -> bool {
        Req::BODY
    }

    fn call<'a>(&'a self, call: Call<'a>, body: Option<Value>) -> Pending<'a, Value> {
        let answer = Req::read(body).and_then(|req| (self.0)(&call, req));
        Box::pin(async move { encode(&answer?) })
    }

    fn request(&self, schemas: &mut Schemas) -> Option<(RefOr<Schema>, Option<Value>)> {
        Req::doc(schemas)
    }

    fn response(&self, schemas: &mut Schemas) -> RefOr<Schema> {
        component::<Resp>(schemas)
    }

    fn decodes(&self, body: Value) -> Reply<()> {
        Req::read(Some(body)).map(|_| ())
    }
}

impl<Req: Input, Resp: Serialize + ToSchema + Send> Operation for Async<Req, Resp> {
    fn takes_body(&self) -> bool {
        Req::BODY
    }

    fn call<'a>(&'a self, call: Call<'a>, body: Option<Value>) -> Pending<'a, Value> {
        Box::pin(async move {
            let req = Req::read(body)?;
            encode(&(self.0)(call, req).await?)
        })
    }

    fn request(&self, schemas: &mut Schemas) -> Option<(RefOr<Schema>, Option<Value>)> {
        Req::doc(schemas)
    }

    fn response(&self, schemas: &mut Schemas) -> RefOr<Schema> {
        component::<Resp>(schemas)
    }

    fn decodes(&self, body: Value) -> Reply<()> {
        Req::read(Some(body)).map(|_| ())
    }
}

/// What a route takes: [`NoBody`], or a [`Body`] type.
pub trait Input: Sized + Send + 'static {
    const BODY: bool;
    fn read(body: Option<Value>) -> Reply<Self>;
    fn doc(schemas: &mut Schemas) -> Option<(RefOr<Schema>, Option<Value>)>;
}

/// A route without a request body (one sent is not read).
pub struct NoBody;

impl Input for NoBody {
    const BODY: bool = false;

    fn read(_: Option<Value>) -> Reply<Self> {
        Ok(NoBody)
    }

    fn doc(_: &mut Schemas) -> Option<(RefOr<Schema>, Option<Value>)> {
        None
    }
}

/// A JSON request body type. Object bodies are checked for the fields
/// their schema marks required (in declaration order, absent or `null`:
/// `缺少必要字段: <field>`) before decoding; a field that fails to decode
/// is named in the 400 (`<field>: ...`).
pub trait Body: DeserializeOwned + ToSchema + Send + 'static {
    /// Whether the body is a JSON object (else an array).
    const OBJECT: bool = true;
    /// What a body of the other JSON type is told.
    const SHAPE: &'static str = "请求体必须是 JSON 对象";
}

impl<T: Body> Input for T {
    const BODY: bool = true;

    fn read(body: Option<Value>) -> Reply<Self> {
        decode(body.unwrap_or(Value::Null))
    }

    fn doc(schemas: &mut Schemas) -> Option<(RefOr<Schema>, Option<Value>)> {
        Some((component::<T>(schemas), example_of(&T::schema())))
    }
}

/// The fields `T`'s schema marks required.
pub fn required<T: ToSchema>() -> Vec<String> {
    match T::schema() {
        RefOr::T(Schema::Object(o)) => o.required,
        _ => Vec::new(),
    }
}

/// The example a schema carries, if any.
pub fn example_of(schema: &RefOr<Schema>) -> Option<Value> {
    match schema {
        RefOr::T(Schema::Object(o)) => {
            #[allow(deprecated)]
            let example = o.example.clone();
            example.or_else(|| o.examples.first().cloned())
        }
        RefOr::T(Schema::Array(a)) => {
            #[allow(deprecated)]
            let example = a.example.clone();
            example.or_else(|| a.examples.first().cloned())
        }
        _ => None,
    }
}

/// The longest field error kept (a serde error may quote the whole value).
const MAX_DETAIL: usize = 300;

/// `<path>: <error>` for a decoding error (the error alone at the top).
pub fn field_error(path: &str, error: &str) -> ApiError {
    let mut text = if path == "." || path.is_empty() {
        error.to_string()
    } else {
        format!("{path}: {error}")
    };
    if text.len() > MAX_DETAIL {
        let mut cut = MAX_DETAIL;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    ApiError::bad_request(text)
}

/// Decodes a body (or one batch operation's `data`) as `T`.
pub fn decode<T: Body>(v: Value) -> Reply<T> {
    if T::OBJECT {
        let Value::Object(m) = &v else {
            return Err(ApiError::bad_request(T::SHAPE));
        };
        for f in required::<T>() {
            if m.get(&f).is_none_or(Value::is_null) {
                return Err(ApiError::bad_request(format!("缺少必要字段: {f}")));
            }
        }
    } else if !v.is_array() {
        return Err(ApiError::bad_request(T::SHAPE));
    }
    serde_path_to_error::deserialize(v)
        .map_err(|e| field_error(&e.path().to_string(), &e.into_inner().to_string()))
}

/// The schema of a request or response type: arrays inline (their items
/// referenced), anything else as a reference to its component.
pub fn component<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    T::schemas(schemas);
    let schema = T::schema();
    if matches!(schema, RefOr::T(Schema::Array(_))) {
        return schema;
    }
    let name = T::name().into_owned();
    schemas.push((name.clone(), schema));
    RefOr::Ref(Ref::from_schema_name(name))
}

/// A JSON array answer whose items are documented as a component.
#[derive(Serialize)]
#[serde(transparent)]
pub struct List<T>(pub Vec<T>);

impl<T: ToSchema> PartialSchema for List<T> {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(Ref::from_schema_name(T::name()))
            .into()
    }
}

impl<T: ToSchema> ToSchema for List<T> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("List{}", T::name()))
    }

    fn schemas(schemas: &mut Schemas) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}

impl<T> FromIterator<T> for List<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        List(iter.into_iter().collect())
    }
}

/// What a request path matches in the table.
pub enum Lookup {
    Found(&'static Route, Option<String>),
    /// The path exists, not with this method.
    WrongMethod,
    NotFound,
}

/// The path parameter that is a numeric id or a `config_type` word (both
/// served at one path; PUT/DELETE answer 404 for a word).
pub const ID_OR_TYPE: &str = "{config_id}";

/// Whether a path segment fits template segment `t`.
fn segment_fits(t: &str, p: &str) -> bool {
    match t {
        ID_OR_TYPE => {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
        _ if t.starts_with('{') => p.parse::<u64>().is_ok(),
        _ => t == p,
    }
}

/// The `{...}` segment of `path` when it fits `template`, `Some(None)`
/// when it fits without one, `None` when it does not fit.
fn fits(template: &str, path: &str) -> Option<Option<String>> {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    if t.len() != p.len() || !t.iter().zip(&p).all(|(t, p)| segment_fits(t, p)) {
        return None;
    }
    Some(
        t.iter()
            .zip(&p)
            .find(|(t, _)| t.starts_with('{'))
            .map(|(_, p)| (*p).to_string()),
    )
}

/// Finds the route of `method path` in `routes`.
pub fn lookup(routes: &'static [Route], method: &str, path: &str) -> Lookup {
    let mut path_known = false;
    for r in routes {
        if let Some(param) = fits(r.path, path) {
            if r.method == method {
                return Lookup::Found(r, param);
            }
            path_known = true;
        }
    }
    if path_known {
        Lookup::WrongMethod
    } else {
        Lookup::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::api::{namespaces::NamespaceCreate, servers::ServerCreate, system::Batch};
    use serde_json::json;

    fn err<T: Body>(v: Value) -> String {
        match decode::<T>(v) {
            Err(e) => e.detail,
            Ok(_) => panic!("decoded"),
        }
    }

    #[test]
    fn bodies_decode_with_the_apis_messages() {
        assert_eq!(
            err::<NamespaceCreate>(json!({"namespace_name": "x"})),
            "缺少必要字段: namespace_code"
        );
        // Missing fields first (in field order), `null` counting as missing.
        assert_eq!(
            err::<NamespaceCreate>(json!({"is_active": "yes", "namespace_code": null})),
            "缺少必要字段: namespace_name"
        );
        assert!(err::<NamespaceCreate>(
            json!({"namespace_name": "x", "namespace_code": "x", "is_active": "yes"})
        )
        .starts_with("is_active: "));
        assert_eq!(err::<NamespaceCreate>(json!([1])), "请求体必须是 JSON 对象");
        // A value quoted by serde is not echoed whole.
        let long = "9".repeat(20_000);
        let e = err::<ServerCreate>(
            json!({"server_name": "s", "server_address": "h", "server_port": long}),
        );
        assert!(e.starts_with("server_port: ") && e.len() < 400, "{e}");
        // Unknown fields are ignored, as before.
        assert!(decode::<NamespaceCreate>(
            json!({"namespace_name": "x", "namespace_code": "x", "id": 9, "created_at": "t"})
        )
        .is_ok());

        assert!(err::<Batch>(json!({"op": "x"})).starts_with("请求体必须是操作数组"));
        assert_eq!(err::<Batch>(json!([])), "操作数组为空");
        assert_eq!(err::<Batch>(json!([1])), "[0]: 必须是 JSON 对象");
        assert_eq!(
            err::<Batch>(json!([{"op": "delete_rule", "id": "x"}])),
            "[0].id: 必须是数字 ID"
        );
    }
}
