//! Serde helpers of the admin request types: the spellings the API accepts
//! besides plain JSON types (`is_active` as `true`/`false` or `1`/`0`, ids
//! as numbers or numeric strings, `matcher_config`/`rule_config` as objects
//! or JSON strings holding one, `match_value` as a string, number or
//! boolean), partial-update fields (absent = unchanged, `null` = cleared)
//! and the wording of the field errors (`<field>: 必须是字符串`).
//!
//! Every helper is for an `Option` field with `#[serde(default)]`: absent
//! and `null` are `None` unless the helper says otherwise.

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// The schema of what [`flag`] accepts: `true`/`false` or `1`/`0`.
pub struct Flag;

impl PartialSchema for Flag {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some("`true`/`false` or `1`/`0`"))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .enum_values(Some([0, 1])),
            )
            .into()
    }
}

impl ToSchema for Flag {}

/// The schema of what [`id`] accepts: a number or a string of digits.
pub struct Id;

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some("A numeric id (a number or a string of digits)"))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9]+$")),
            )
            .into()
    }
}

impl ToSchema for Id {}

/// `true`/`false` or `1`/`0`.
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
        Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
        Some(other) => Err(D::Error::custom(format!(
            "expected true/false or 1/0, got {}",
            kind(&other)
        ))),
    }
}

/// A nullable field of a partial update: absent is `None` (unchanged, via
/// `#[serde(default)]`), `null` is `Some(None)` (cleared), a value `Some(Some(v))`.
pub fn patch<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// [`patch`] of an id ([`id`]'s spellings).
pub fn id_patch<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    id(d).map(Some)
}

/// A numeric id: a number or a string of digits.
pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .map(Some)
            .ok_or_else(|| D::Error::custom("必须是数字 ID")),
    }
}

/// A string (`必须是字符串` otherwise).
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(D::Error::custom("必须是字符串")),
    }
}

/// A string list (`必须是字符串数组` otherwise).
pub fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let wrong = || D::Error::custom("必须是字符串数组");
    match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .map(|t| match t {
                Value::String(s) => Ok(s),
                _ => Err(wrong()),
            })
            .collect(),
        _ => Err(wrong()),
    }
}

/// A JSON array (`必须是数组` otherwise).
pub fn array<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Value>>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(D::Error::custom("必须是数组")),
    }
}

/// A value compared as text: a string, or a number or boolean (`gt`/`lt`
/// compare numbers) written as its JSON text.
pub fn loose_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
        Some(other) => Err(D::Error::custom(format!(
            "expected a string, number or boolean, got {}",
            kind(&other)
        ))),
    }
}

/// What a field holding an object accepts besides the object itself.
const OBJECT_OR_STRING: &str = "必须是 JSON 对象或表示 JSON 对象的字符串";

/// An object, or a JSON string holding one (`matcher_config` and
/// `rule_config` as older clients send them), decoded as `T`; the error names the inner field.
pub fn json_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let object = match Option::<Value>::deserialize(d)? {
        None => return Ok(None),
        Some(Value::Object(m)) => m,
        Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(m)) => m,
            _ => return Err(D::Error::custom(OBJECT_OR_STRING)),
        },
        Some(_) => return Err(D::Error::custom(OBJECT_OR_STRING)),
    };
    serde_path_to_error::deserialize(Value::Object(object))
        .map(Some)
        .map_err(|e| {
            let path = e.path().to_string();
            D::Error::custom(format!("{path}: {}", e.into_inner()))
        })
}

/// [`json_object`] as a plain JSON object.
pub fn json_map<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Map<String, Value>>, D::Error> {
    json_object(d)
}

/// Present at all, `null` included (for fields refused whatever they hold).
pub fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A JSON value's kind, for messages that must not echo the value.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize, Debug)]
    struct T {
        #[serde(default, deserialize_with = "flag")]
        on: Option<bool>,
        #[serde(default, deserialize_with = "patch")]
        note: Option<Option<String>>,
        #[serde(default, deserialize_with = "id")]
        id: Option<u64>,
        #[serde(default, deserialize_with = "json_map")]
        config: Option<Map<String, Value>>,
    }

    fn t(v: Value) -> Result<T, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn accepted_spellings() {
        assert_eq!(t(json!({"on": 1})).unwrap().on, Some(true));
        assert_eq!(t(json!({"on": false})).unwrap().on, Some(false));
        assert_eq!(t(json!({"on": null})).unwrap().on, None);
        assert!(t(json!({"on": "yes"})).is_err());
        assert!(t(json!({"on": 2})).is_err());
        assert_eq!(t(json!({})).unwrap().note, None);
        assert_eq!(t(json!({"note": null})).unwrap().note, Some(None));
        assert_eq!(
            t(json!({"note": "x"})).unwrap().note,
            Some(Some("x".into()))
        );
        assert_eq!(t(json!({"id": "12"})).unwrap().id, Some(12));
        assert!(t(json!({"id": "x"})).unwrap_err().contains("必须是数字 ID"));
        let c = t(json!({"config": "{\"a\": 1}"})).unwrap().config.unwrap();
        assert_eq!(c["a"], 1);
        assert!(t(json!({"config": "[1]"}))
            .unwrap_err()
            .contains(OBJECT_OR_STRING));
    }
}
