//! The admin route table: every endpoint the admin service serves, with
//! its handler (whose request and response types the OpenAPI document
//! describes), listed per concern in [`config`] (the config entities) and
//! [`services`] (everything around them) and [`operate`] (history and
//! the live views) and joined into [`ROUTES`]. The
//! router answers only what [`ROUTES`] lists (anything else is 404, or 405
//! for a listed path with another method).

use super::route::{Async, Direct, Route};
use std::sync::LazyLock;

mod config;
mod operate;
mod services;

const GET: &str = "GET";
const POST: &str = "POST";
const PUT: &str = "PUT";
const DELETE: &str = "DELETE";

/// Errors of a change with a body: validation, duplicates/references,
/// size and media type.
const CHANGE: &[u16] = &[400, 409, 413, 415];
const CHANGE_ID: &[u16] = &[400, 404, 409, 413, 415];
const DELETE_ID: &[u16] = &[404, 409];
const READ_ID: &[u16] = &[404];
const POST_ONLY: &[u16] = &[400, 413, 415];
const POST_ID: &[u16] = &[400, 404, 413, 415];

const RULE_TYPE: &[(&str, &str)] = &[("rule_type", "只列出该类型的规则")];
const CONFIG_TYPE: &[(&str, &str)] = &[("config_type", "只列出该 config_type 的片段")];

/// Every admin endpoint.
pub static ROUTES: LazyLock<Vec<Route>> =
    LazyLock::new(|| [services::SERVICES, config::CONFIG, operate::OPERATE].concat());

#[cfg(test)]
mod tests {
    use super::super::route::{lookup, Lookup};
    use super::*;

    #[test]
    fn paths_are_unique_and_found() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES.iter() {
            assert!(seen.insert((r.method, r.path)), "{} {}", r.method, r.path);
        }
        assert!(matches!(
            lookup(&ROUTES, "GET", "/api/v1/namespaces/3"),
            Lookup::Found(_, Some(p)) if p == "3"
        ));
        assert!(matches!(
            lookup(&ROUTES, "GET", "/api/v1/namespaces/x"),
            Lookup::NotFound
        ));
        assert!(matches!(
            lookup(&ROUTES, "PATCH", "/api/v1/namespaces/3"),
            Lookup::WrongMethod
        ));
        assert!(matches!(
            lookup(&ROUTES, "GET", "/api/v1/rules/types/"),
            Lookup::Found(r, None) if r.path == "/api/v1/rules/types"
        ));
        assert!(matches!(
            lookup(&ROUTES, "GET", "/api/v1/nginx-configs/http"),
            Lookup::Found(_, Some(p)) if p == "http"
        ));
    }
}
