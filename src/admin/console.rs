//! The admin console's assets at `/ui` on the admin listener: the page
//! (`/ui`, `/ui/`), its script and its stylesheet, built from `ui/` (a
//! Preact app; `make ui`) and embedded in the binary, so the console works
//! offline from one origin. Served without a token (the page signs in with
//! one and calls the documented admin API with it), under a strict
//! Content-Security-Policy: nothing but this origin's script, style and
//! API, no inline code, no framing.

use http::{HeaderValue, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

const INDEX: &[u8] = include_bytes!("../../ui/dist/index.html");
const SCRIPT: &[u8] = include_bytes!("../../ui/dist/app.js");
const STYLE: &[u8] = include_bytes!("../../ui/dist/app.css");

/// The policy every console answer carries.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// One asset: its bytes, type and entity tag.
struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
    etag: String,
}

fn asset(bytes: &'static [u8], content_type: &'static str) -> Asset {
    let digest = Sha256::digest(bytes);
    Asset {
        bytes,
        content_type,
        etag: format!("\"{}\"", hex::encode(&digest[..12])),
    }
}

static ASSETS: LazyLock<[Asset; 3]> = LazyLock::new(|| {
    [
        asset(INDEX, "text/html; charset=utf-8"),
        asset(SCRIPT, "text/javascript; charset=utf-8"),
        asset(STYLE, "text/css; charset=utf-8"),
    ]
});

/// Whether `path` is the console's (`/ui` and below).
pub fn owns(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// The answer to `method path` under `/ui` (`if_none_match`: the
/// request's `If-None-Match`).
pub fn serve(method: &http::Method, path: &str, if_none_match: Option<&str>) -> Response<Vec<u8>> {
    let index = match path {
        "/ui" | "/ui/" | "/ui/index.html" => Some(0),
        "/ui/app.js" => Some(1),
        "/ui/app.css" => Some(2),
        _ => None,
    };
    let Some(a) = index.and_then(|i| ASSETS.get(i)) else {
        return plain(404, "not found");
    };
    if method != http::Method::GET && method != http::Method::HEAD {
        let mut r = plain(405, "method not allowed");
        r.headers_mut()
            .insert("allow", HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let fresh = if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == a.etag));
    let (status, body) = if fresh {
        (304, Vec::new())
    } else if method == http::Method::HEAD {
        (200, Vec::new())
    } else {
        (200, a.bytes.to_vec())
    };
    let mut r = Response::new(body);
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static(a.content_type));
    h.insert(
        "content-length",
        HeaderValue::from(if fresh { 0 } else { a.bytes.len() }),
    );
    if let Ok(tag) = HeaderValue::from_str(&a.etag) {
        h.insert("etag", tag);
    }
    // Revalidated each time (the names carry no hash): a new binary's
    // console is never mixed with an old cached script.
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    secure(h);
    r
}

/// The headers every console answer carries.
fn secure(h: &mut http::HeaderMap) {
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

fn plain(status: u16, text: &'static str) -> Response<Vec<u8>> {
    let mut r = Response::new(text.as_bytes().to_vec());
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::NOT_FOUND);
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert("content-length", HeaderValue::from(text.len()));
    secure(h);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_three_assets_under_the_policy() {
        let get = http::Method::GET;
        let page = serve(&get, "/ui", None);
        assert_eq!(page.status(), 200);
        assert!(String::from_utf8_lossy(page.body()).contains("/ui/app.js"));
        assert_eq!(page.headers()["content-security-policy"], CSP);
        let etag = page.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(serve(&get, "/ui/", Some(&etag)).status(), 304);
        assert_eq!(serve(&get, "/ui/app.js", None).status(), 200);
        assert_eq!(serve(&get, "/ui/app.css", None).status(), 200);
        assert_eq!(serve(&get, "/ui/../Cargo.toml", None).status(), 404);
        assert_eq!(serve(&http::Method::POST, "/ui", None).status(), 405);
        assert!(owns("/ui") && owns("/ui/x") && !owns("/uix"));
    }
}
