//! The gateway's own answers on the client API, for a valid API key (no
//! namespace, route or limit applies): `GET /v1/models` (and its seed
//! alias `/internal/v1/models`) listed from the model
//! catalog — on `/v1/models` only the models the key may use, on the
//! internal path every configured model (the internal channel is
//! not filtered) — and `GET /internal/v1/bandit/report` (filters
//! `capability`, `model`, `channel`). Without a catalog the models paths
//! are routed upstream like any request.

use super::admission::Headers;
use super::ctx::RequestCtx;
use super::reply;
use crate::decision::{self, Endpoint};
use crate::state::Snapshot;
use pingora::proxy::Session;
use pingora::Result;
use sluice_filters::balance::ReportFilter;

/// Answers one of the client API endpoints ([`Endpoint::Models`],
/// [`Endpoint::BanditReport`]) for a valid API key.
pub async fn serve(
    session: &mut Session,
    ctx: &RequestCtx,
    rt: &Snapshot,
    endpoint: Endpoint,
) -> Result<()> {
    let req = session.req_header();
    let query = req.uri.query().unwrap_or("").to_string();
    let caller = match decision::authenticate(rt, &Headers(&req.headers)) {
        Ok(c) => c,
        Err(e) => return reply::error(session, &e, &ctx.request_id).await,
    };
    let key = caller.key;
    // A signed request: the signature (empty body), then the nonce once.
    let signed = decision::Request {
        method: req.method.as_str(),
        path: req.uri.path(),
        query: req.uri.query(),
        headers: &Headers(&req.headers),
        body: bytes::Bytes::new(),
    };
    let nonce = match decision::verify_signature(rt, key, &signed, crate::clock::unix_secs()) {
        Ok(n) => n,
        Err(e) => return reply::error(session, &e, &ctx.request_id).await,
    };
    if let (Some(nonce), Some(k)) = (nonce, key) {
        if let Err(e) = super::admission::nonce_once(rt, k, &nonce).await {
            return reply::error(session, &e, &ctx.request_id).await;
        }
    }
    let body = match endpoint {
        Endpoint::BanditReport => {
            let filter = ReportFilter {
                capability: param(&query, "capability"),
                model: param(&query, "model"),
                channel: param(&query, "channel"),
            };
            rt.catalog.bandit_report(&filter)
        }
        Endpoint::Trace => {
            // Only the key that made the request sees its trace.
            let id = req
                .uri
                .path()
                .strip_prefix(crate::decision::TRACE_PREFIX)
                .unwrap_or_default();
            let name = key.map(|k| rt.keys[k].name.as_str());
            match crate::metrics::trace::find(id).filter(|t| {
                t["key_name"].as_str() == Some(name.unwrap_or("-"))
                    && t["subject"].as_str() == caller.subject.as_deref()
            }) {
                Some(t) => t,
                None => {
                    let e = crate::error::GatewayError::RouteNotFound(format!(
                        "no trace {id:?} of this key on this instance (the last {} internal-channel requests are kept)",
                        crate::metrics::trace::KEEP
                    ));
                    return reply::error(session, &e, &ctx.request_id).await;
                }
            }
        }
        Endpoint::Models { internal } => {
            let key = key.map(|k| &rt.keys[k]);
            rt.catalog
                .models_json(&|m| internal || key.is_none_or(|k| k.allows(m)))
        }
        _ => {
            return reply::error(
                session,
                &crate::error::GatewayError::Internal,
                &ctx.request_id,
            )
            .await
        }
    };
    reply::json(session, 200, &body, &ctx.request_id).await
}

/// A query parameter's value, decoded; empty = none.
fn param(query: &str, name: &str) -> Option<String> {
    sluice_filters::facts::query_param(query, name).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::param;

    #[test]
    fn query_parameters() {
        let q = "capability=chat&model=gpt-4o%2Dmini&channel=&x";
        assert_eq!(param(q, "capability").as_deref(), Some("chat"));
        assert_eq!(param(q, "model").as_deref(), Some("gpt-4o-mini"));
        assert_eq!(param(q, "channel"), None);
        assert_eq!(param(q, "x"), None);
        assert_eq!(param("model=a+b%2", "model").as_deref(), Some("a b%2"));
        assert_eq!(param("model=%zz", "model").as_deref(), Some("%zz"));
    }
}
