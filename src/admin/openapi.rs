//! The OpenAPI 3 document of the admin API (`GET /openapi.json`), built by
//! utoipa from the route table ([`ROUTES`]): one operation per route, its
//! request body and 200 answer from the handler's request and response
//! types (components from their `ToSchema` derives, examples from their
//! `#[schema(example)]`), its error statuses as `{"detail": "..."}`, and
//! `security: []` on the routes served without a token.

use super::route::{Call, NoBody, Reply, Route, Schemas, ID_OR_TYPE};
use super::routes::ROUTES;
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::OnceLock;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr,
    Required, ResponseBuilder, Schema,
};
use utoipa::{PartialSchema, ToSchema};

/// An error answer.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong (a 400 names the field).
    pub detail: String,
}

/// The document as served.
#[derive(Serialize)]
#[serde(transparent)]
pub struct Document(Value);

impl PartialSchema for Document {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("An OpenAPI 3 document"))
            .property("openapi", ObjectBuilder::new().schema_type(Type::String))
            .property("info", ObjectBuilder::new().schema_type(Type::Object))
            .property("paths", ObjectBuilder::new().schema_type(Type::Object))
            .required("openapi")
            .required("info")
            .required("paths")
            .into()
    }
}

impl ToSchema for Document {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("OpenApiDocument")
    }
}

/// `GET /openapi.json`.
pub fn serve(_: &Call<'_>, _: NoBody) -> Reply<Document> {
    static DOC: OnceLock<Value> = OnceLock::new();
    let doc = DOC.get_or_init(|| serde_json::to_value(document()).unwrap_or(Value::Null));
    Ok(Document(doc.clone()))
}

fn status_text(s: u16) -> &'static str {
    match s {
        200 => "成功",
        400 => "请求无效（detail 指明字段）",
        401 => "未授权: 需要有效的管理令牌",
        404 => "资源不存在",
        409 => "冲突: 重复的编码/名称，或仍被引用",
        413 => "请求体过大",
        415 => "请求体必须是 JSON",
        503 => "配置存储或 Redis 缓存不可用（当前配置继续生效，变更未保存）",
        _ => "",
    }
}

fn method(m: &str) -> HttpMethod {
    match m {
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "DELETE" => HttpMethod::Delete,
        "PATCH" => HttpMethod::Patch,
        _ => HttpMethod::Get,
    }
}

fn json_content(schema: RefOr<Schema>, example: Option<Value>) -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(schema))
        .example(example)
        .build()
}

/// `ok` and the `warnings` every answer to a change carries.
fn with_warnings(ok: RefOr<Schema>) -> RefOr<Schema> {
    use utoipa::openapi::schema::{AllOfBuilder, ArrayBuilder};
    let warnings = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "warnings",
            ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(
                    "Present when the call changed the configuration: what in the applied configuration can never take effect yet (empty when nothing).",
                )),
        )
        .property(
            "fleet",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(
                    "Present with `?wait=fleet` when the call changed the configuration: the revision, whether every live instance applied it within the wait (`complete`), the ids that did (`applied`) and the instances that did not (`pending`).",
                )),
        )
        .build();
    RefOr::T(Schema::AllOf(
        AllOfBuilder::new().item(ok).item(warnings).build(),
    ))
}

/// The operation of one route.
fn operation(r: &Route, schemas: &mut Schemas) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new()
        .tag(r.tag)
        .summary(Some(r.summary))
        .operation_id(Some(format!("{} {}", r.method.to_lowercase(), r.path)));
    for name in r
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    {
        let p = ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Path)
            .required(Required::True);
        let p = if format!("{{{name}}}") == ID_OR_TYPE {
            p.description(Some("numeric config_id, or (GET) a config_type word"))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some("^[A-Za-z0-9_-]+$")),
                ))
        } else {
            p.schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(0)),
            ))
        };
        op = op.parameter(p);
    }
    let writes: &[(&str, &str)] = if r.method == "GET" {
        &[]
    } else {
        &[
            ("wait", "`fleet`: when the call changes the configuration, answer once every live instance of the fleet applied it (or the wait ended), with a `fleet` member saying which did not"),
            ("timeout_ms", "Longest wait for `wait=fleet`, 1 to 60000 ms (default 5000)"),
        ]
    };
    for (name, description) in r.query.iter().chain(writes) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(*name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(*description))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
    }
    if let Some((schema, example)) = r.op.request(schemas) {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content("application/json", json_content(schema, example))
                .build(),
        ));
    }
    let ok = r.op.response(schemas);
    // An answer to a change carries the config's `warnings` too.
    let ok = if r.method == "GET" {
        ok
    } else {
        with_warnings(ok)
    };
    for s in r.statuses() {
        let content = if s == 200 {
            json_content(ok.clone(), None)
        } else {
            json_content(Ref::from_schema_name("Error").into(), None)
        };
        op = op.response(
            s.to_string(),
            ResponseBuilder::new()
                .description(status_text(s))
                .content("application/json", content),
        );
    }
    if !r.auth {
        op = op.securities(Some(Vec::<SecurityRequirement>::new()));
    }
    op.build()
}

/// The OpenAPI 3 document of [`ROUTES`].
pub fn document() -> OpenApi {
    let mut schemas: Schemas = Vec::new();
    let mut paths = Paths::new();
    for r in ROUTES.iter() {
        let op = operation(r, &mut schemas);
        paths.add_path_operation(r.path, vec![method(r.method)], op);
    }
    schemas.push((ErrorBody::name().into_owned(), ErrorBody::schema()));
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Sluice config center (admin API)")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The admin API of the Sluice gateway. Errors are {\"detail\": \"...\"}.",
                )),
        )
        .paths(paths)
        .components(Some(components))
        .security(Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_types() {
        let doc = serde_json::to_value(document()).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut n = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (m, op) in item.as_object().unwrap() {
                n += 1;
                let route = ROUTES
                    .iter()
                    .find(|r| r.path == path && r.method.eq_ignore_ascii_case(m))
                    .unwrap();
                let body = &op["requestBody"]["content"]["application/json"];
                assert_eq!(route.op.takes_body(), !body.is_null(), "{m} {path}");
                if !body.is_null() {
                    assert!(!body["example"].is_null(), "{m} {path}: no example");
                }
                for s in [
                    &body["schema"],
                    &op["responses"]["200"]["content"]["application/json"]["schema"],
                ] {
                    if let Some(r) = s["$ref"].as_str() {
                        let name = r.trim_start_matches("#/components/schemas/");
                        assert!(schemas.contains_key(name), "{m} {path}: {r}");
                    }
                }
            }
        }
        assert_eq!(n, ROUTES.len());
        // Every reference resolves.
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(schemas.contains_key(name), "{name}");
        }
    }

    #[test]
    fn request_examples_decode_as_their_types() {
        for r in ROUTES.iter() {
            let mut schemas = Vec::new();
            if let Some((_, example)) = r.op.request(&mut schemas) {
                let example =
                    example.unwrap_or_else(|| panic!("{} {}: no example", r.method, r.path));
                if let Err(e) = r.op.decodes(example) {
                    panic!("{} {}: {}", r.method, r.path, e.detail);
                }
            }
        }
    }
}
