//! The client's request path normalised before anything reads it
//! ([`normalize_path`], first thing in `request_filter`).
//! Upstream request hygiene (`upstream_request_filter`): path rewrite, Host,
//! provider auth injection, removal of the client's gateway credentials and
//! of hop-by-hop headers, body framing, request id and `X-Forwarded-For`;
//! and the response header the client gets ([`downstream`]: hop-by-hop
//! headers out, `x-request-id` and `x-ratelimit-*` in).

use super::ctx::{Plan, RequestCtx};
use crate::config::ProviderKind;
use crate::state::Snapshot;
use crate::upstream::ServerRt;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;
use sluice_filters::limits::plan::{DurationBuf, RateHeaders, RateValue, RATE_HEADER_NAMES};
use std::cell::RefCell;

/// Normalises the request target's path in place
/// (`sluice_filters::path::normalize`: dot segments, repeated slashes,
/// percent-encoded unreserved characters), so matchers, routes and the
/// upstream all see one spelling of it. An ambiguous or malformed path is
/// refused with the reason.
pub fn normalize_path(req: &mut RequestHeader) -> std::result::Result<(), PathRefused> {
    let normal = match sluice_filters::path::normalize(req.uri.path())? {
        std::borrow::Cow::Borrowed(_) => return Ok(()),
        std::borrow::Cow::Owned(p) => p,
    };
    let target = match req.uri.query() {
        Some(q) => format!("{normal}?{q}"),
        None => normal,
    };
    let mut parts = req.uri.clone().into_parts();
    parts.path_and_query = Some(http::uri::PathAndQuery::from_maybe_shared(Bytes::from(
        target,
    ))?);
    req.set_uri(http::Uri::from_parts(parts)?);
    Ok(())
}

/// Why a request path is refused (400).
#[derive(Debug, thiserror::Error)]
pub enum PathRefused {
    #[error("request path refused: {0}")]
    Ambiguous(#[from] sluice_filters::path::PathError),
    #[error("request path refused: {0}")]
    Uri(#[from] http::uri::InvalidUri),
    #[error("request path refused: {0}")]
    Parts(#[from] http::uri::InvalidUriParts),
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus ones a proxy must not pass on.
static HOP_BY_HOP: [HeaderName; 11] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::EXPECT,
    // The gateway meters response bodies; it asks for them uncompressed.
    header::ACCEPT_ENCODING,
];

/// Removes `name` when the request has it. Pingora's `remove_header`
/// also rewrites its case-preserving name map: ≈ 1 000 instructions a
/// call under callgrind even for an absent name, against ≈ 50 for the
/// lookup (`load-tests/RESULTS.md`, the eighth session).
fn strip(req: &mut RequestHeader, name: &HeaderName) {
    if req.headers.contains_key(name) {
        req.remove_header(name);
    }
}

/// Rewrites the request header sent upstream.
pub fn prepare(
    req: &mut RequestHeader,
    rt: &Snapshot,
    plan: &Plan,
    server: &ServerRt,
    ctx: &RequestCtx,
    client_ip: Option<String>,
) -> Result<()> {
    if let Some(uri) = &plan.upstream_uri {
        let uri: http::Uri = uri.parse().map_err(|_| {
            pingora::Error::explain(pingora::ErrorType::InternalError, "bad rewritten uri")
        })?;
        req.set_uri(uri);
    }

    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = req
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        strip(req, &name);
    }
    for name in &HOP_BY_HOP {
        strip(req, name);
    }

    // The client's gateway credentials never reach the upstream. With auth
    // off and no provider key, `Authorization` passes through unchanged
    // (the gateway is then a plain proxy for the client's own key).
    let injects_auth = server.api_key.is_some();
    if rt.config.auth.enabled || injects_auth {
        strip(req, &header::AUTHORIZATION);
        strip(req, &X_API_KEY);
        strip(req, &API_KEY);
    }
    if let Some(custom) = &rt.auth_header {
        strip(req, custom);
    }
    if let Some(key) = &server.api_key {
        let key = key.expose().as_str();
        match server.provider {
            ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
                req.insert_header("authorization", format!("Bearer {key}"))?
            }
            ProviderKind::Azure => req.insert_header(API_KEY, key)?,
            ProviderKind::Anthropic => {
                req.insert_header(X_API_KEY, key)?;
                if req.headers.get("anthropic-version").is_none() {
                    req.insert_header("anthropic-version", "2023-06-01")?;
                }
            }
        }
    }
    for (name, value) in &server.inject_headers {
        req.insert_header(name.clone(), value.clone())?;
    }

    req.insert_header(header::HOST, server.host_header.as_str())?;
    req.insert_header("x-request-id", ctx.request_id.as_str())?;
    // The client's claims about the original request (its address, host,
    // scheme) are not forwarded: the gateway vouches only for the
    // `X-Forwarded-For` it writes itself.
    for name in &FORWARDED_FAMILY {
        strip(req, name);
    }
    if rt.config.forward_xff {
        if let Some(ip) = client_ip {
            let value = match req
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
            {
                Some(prev) => format!("{prev}, {ip}"),
                None => ip,
            };
            req.insert_header("x-forwarded-for", value)?;
        }
    } else {
        strip(req, &X_FORWARDED_FOR);
    }

    // The body was read whole: frame it with its exact length.
    if plan.has_body {
        req.insert_header(header::CONTENT_LENGTH, plan.body.len().to_string())?;
    } else {
        strip(req, &header::CONTENT_LENGTH);
    }
    Ok(())
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Headers in which a client asserts who or where it is, removed before
/// the upstream (`X-Forwarded-For` is handled by `forward_xff`).
static FORWARDED_FAMILY: [HeaderName; 6] = [
    HeaderName::from_static("forwarded"),
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-client-ip"),
];

/// `x-request-id` (also what the limits' headers use: names as constants,
/// so no name is parsed per response).
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The credential headers besides `Authorization`: read from clients
/// (`admission::authenticate`), removed before the upstream and set for
/// Anthropic (`x-api-key`) and Azure (`api-key`) upstreams.
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
pub const API_KEY: HeaderName = HeaderName::from_static("api-key");

/// [`RATE_HEADER_NAMES`] as header names, by the index
/// [`RateHeaders::for_each`] passes.
static RATE_NAMES: [HeaderName; 6] = [
    HeaderName::from_static(RATE_HEADER_NAMES[0]),
    HeaderName::from_static(RATE_HEADER_NAMES[1]),
    HeaderName::from_static(RATE_HEADER_NAMES[2]),
    HeaderName::from_static(RATE_HEADER_NAMES[3]),
    HeaderName::from_static(RATE_HEADER_NAMES[4]),
    HeaderName::from_static(RATE_HEADER_NAMES[5]),
];

/// The response header as the client gets it: hop-by-hop headers removed,
/// `x-request-id` and the limits' `x-ratelimit-*` headers set.
///
/// Pingora 0.9.1 keeps a case-preserving name map next to the header map
/// of every response it parsed from an upstream, and its only way to add
/// a header (`ResponseHeader::insert_header`) parses the name into a new
/// `HeaderName` (an allocation for non-standard names) and inserts into
/// both maps: ≈ 1 900 instructions per header under callgrind, seven per
/// limited response. The header map itself is reachable only by
/// converting the header into `http::response::Parts` and back, which
/// drops the case map (pingora-http `From<RespParts>`; writing to the map
/// without it would break the zip of the two maps that serialization
/// asserts on). So the header is taken apart once, edited with constant
/// names, and put back without the case map; HTTP/1 header names are
/// case-insensitive, and Pingora writes known names title-cased.
pub fn downstream(
    resp: &mut ResponseHeader,
    request_id: &str,
    rate: Option<&RateHeaders>,
    external: bool,
) -> Result<()> {
    let custom_reason = resp
        .get_reason_phrase()
        .filter(|r| Some(*r) != resp.status.canonical_reason())
        .map(str::to_string);
    let placeholder = ResponseHeader::build_no_case(resp.status, Some(0))?;
    let mut parts: http::response::Parts = std::mem::replace(resp, placeholder).into();
    let h = &mut parts.headers;
    for name in [
        header::CONNECTION.as_str(),
        "keep-alive",
        "proxy-connection",
    ] {
        h.remove(name);
    }
    if external {
        strip_provider_headers(h);
    }
    // The map was sized for the upstream's headers: one growth for all the
    // headers added below, not one per insert (an over-full map, which
    // Pingora's header limits rule out, just grows per insert).
    let _ = h.try_reserve(1 + rate.map_or(0, |_| RATE_NAMES.len()));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(X_REQUEST_ID, v);
    }
    if let Some(rate) = rate {
        rate.for_each(|i, value| {
            if let Some(name) = RATE_NAMES.get(i) {
                h.insert(name.clone(), rate_value(i, value));
            }
        });
    }
    *resp = ResponseHeader::from(parts);
    if let Some(reason) = custom_reason {
        resp.set_reason_phrase(Some(&reason))?;
    }
    Ok(())
}

/// Response headers in which providers describe their side (account,
/// project, deployment, region, their own request ids and limits, the
/// servers and proxies in front of them): an external-channel client
/// never sees them (the gateway's own `x-request-id` and `x-ratelimit-*`
/// are set after).
const PROVIDER_PREFIXES: &[&str] = &[
    "openai-",
    "anthropic-",
    "x-ms-",
    "azureml-",
    "apim-",
    "x-envoy-",
    "x-kong-",
    "x-ratelimit-",
    "cf-",
    "x-amz",
];
const PROVIDER_NAMES: &[&str] = &["request-id", "server", "via", "x-powered-by"];

fn strip_provider_headers(h: &mut http::HeaderMap) {
    // Most answers carry none of them: names whose first byte no entry
    // starts with are passed over without comparing.
    let internal = |name: &str| {
        matches!(
            name.as_bytes().first(),
            Some(b'o' | b'a' | b'x' | b'c' | b'r' | b's' | b'v')
        ) && (PROVIDER_NAMES.contains(&name)
            || PROVIDER_PREFIXES.iter().any(|p| name.starts_with(p)))
    };
    if h.keys().any(|n| internal(n.as_str())) {
        let gone: Vec<http::HeaderName> =
            h.keys().filter(|n| internal(n.as_str())).cloned().collect();
        for name in gone {
            h.remove(name);
        }
    }
}

/// An `x-ratelimit-*` value (`index` in [`RATE_NAMES`]), formatted
/// without `fmt`.
///
/// The `limit` headers repeat a rule's configured limit on every response,
/// and a reset changes once per millisecond while a busy gateway answers
/// many requests per millisecond. So, as Pingora keeps its `Date` header
/// per second, each thread keeps the last value of those four headers with
/// the number it shows and shares it (a reference count instead of
/// formatting, an allocation and a validation). `remaining` changes with
/// every request and is always formatted.
fn rate_value(index: usize, value: RateValue) -> HeaderValue {
    match value {
        RateValue::Count(_) if index % 3 == 1 => format_value(value),
        // The money budget's headers (rare): formatted each time.
        RateValue::Usd(_) => format_value(value),
        RateValue::Count(n) | RateValue::Reset(n) => SHARED_VALUES.with(|cache| {
            let Ok(mut cache) = cache.try_borrow_mut() else {
                return format_value(value);
            };
            let Some(slot) = cache.get_mut(index) else {
                return format_value(value);
            };
            match slot {
                Some((shown, shared)) if *shown == n => shared.clone(),
                _ => {
                    let fresh = shareable(value);
                    *slot = Some((n, fresh.clone()));
                    fresh
                }
            }
        }),
    }
}

thread_local! {
    /// By header index: the last value this thread wrote for the `limit`
    /// and `reset` headers, with the number it shows.
    static SHARED_VALUES: RefCell<[Option<(u64, HeaderValue)>; 9]> =
        const { RefCell::new([None, None, None, None, None, None, None, None, None]) };
}

/// `value` formatted on the stack, in a fresh (unshared) header value.
fn format_value(value: RateValue) -> HeaderValue {
    with_text(value, |text| {
        HeaderValue::from_bytes(text).unwrap_or_else(|_| HeaderValue::from_static("0"))
    })
}

/// `value` in a reference-counted buffer: a clone is a counter increment.
/// (`HeaderValue::from_bytes` copies into a `Vec`-backed `Bytes`, whose
/// first clone allocates a shared header: two allocations instead of one.)
fn shareable(value: RateValue) -> HeaderValue {
    with_text(value, |text| {
        let mut owned = ValueText::default();
        match owned.bytes.get_mut(..text.len()) {
            Some(slot) => {
                slot.copy_from_slice(text);
                owned.len = text.len();
                HeaderValue::from_maybe_shared(Bytes::from_owner(owned))
                    .unwrap_or_else(|_| HeaderValue::from_static("0"))
            }
            None => HeaderValue::from_bytes(text).unwrap_or_else(|_| HeaderValue::from_static("0")),
        }
    })
}

/// Calls `f` with the ASCII text of `value`, formatted on the stack.
fn with_text<T>(value: RateValue, f: impl FnOnce(&[u8]) -> T) -> T {
    match value {
        RateValue::Count(n) => f(itoa::Buffer::new().format(n).as_bytes()),
        RateValue::Reset(ms) => {
            let mut buf = DurationBuf::default();
            f(buf.format(ms))
        }
        RateValue::Usd(micros) => f(sluice_filters::limits::rules::Usd::text(micros).as_bytes()),
    }
}

/// The text of a shared value: a count has at most 20 digits, a reset at
/// most 24 bytes.
#[derive(Default)]
struct ValueText {
    bytes: [u8; 32],
    len: usize,
}

impl AsRef<[u8]> for ValueText {
    fn as_ref(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(index: usize, value: RateValue) -> String {
        rate_value(index, value).to_str().unwrap().to_string()
    }

    #[test]
    fn shared_values_follow_the_number_they_show() {
        // limit, remaining, reset of the requests line, then the tokens line.
        for index in 0..6 {
            let value = |n| match index % 3 {
                2 => RateValue::Reset(n),
                _ => RateValue::Count(n),
            };
            let want = |n| match index % 3 {
                2 => sluice_filters::limits::plan::duration(n),
                _ => n.to_string(),
            };
            for n in [60_000, 60_000, 59_999, 0, 0, u64::MAX, 60_000, 1_500] {
                assert_eq!(text(index, value(n)), want(n), "header {index}, {n}");
            }
        }
        // A value handed out stays what it was when the slot moves on.
        let first = rate_value(2, RateValue::Reset(1_000));
        let _ = rate_value(2, RateValue::Reset(2_000));
        assert_eq!(first.to_str().unwrap(), "1s");
    }
}
