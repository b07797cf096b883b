//! gzip of upstream answers (`compression` in the config, the `gzip*`
//! nginx directives) on Pingora's response compression module, which the
//! proxy registers disabled (`ProxyHttp::init_downstream_modules`'s
//! default). The module reads the client's `Accept-Encoding` only when it
//! is enabled before the request's modules run, so [`enable`] runs in
//! `early_request_filter`; [`decide`] then switches it off again for a
//! response the settings do not cover (type, length, streams) — for a
//! catalog answer piped from a subrequest, [`decide_type`] before the
//! pipe starts — and [`off`] for the gateway's own answers. The module's level can be
//! changed only before it sees a response header (Pingora panics after):
//! each call checks the phase first.

use crate::config::Compression;
use pingora::http::ResponseHeader;
use pingora::modules::http::compression::ResponseCompression;
use pingora::proxy::Session;

fn module(session: &mut Session) -> Option<&mut ResponseCompression> {
    session
        .downstream_modules_ctx
        .get_mut::<ResponseCompression>()
        .filter(|m| m.is_header_phase())
}

/// Turns gzip on for this request when the settings ask for it.
pub fn enable(session: &mut Session, c: &Compression) {
    if c.gzip {
        if let Some(m) = module(session) {
            m.adjust_level(c.level);
        }
    }
}

/// Keeps gzip for an upstream answer the settings cover, else turns it off.
pub fn decide(session: &mut Session, c: &Compression, resp: &ResponseHeader) {
    if !c.gzip {
        return;
    }
    let header = |name| resp.headers.get(name).and_then(|v| v.to_str().ok());
    let length = header(http::header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    if !c.applies(header(http::header::CONTENT_TYPE), length) {
        off(session);
    }
}

/// [`decide`] for an answer known only by its type (length unknown).
pub fn decide_type(session: &mut Session, c: &Compression, content_type: &str) {
    if c.gzip && !c.applies(Some(content_type), None) {
        off(session);
    }
}

/// No gzip for this answer (the gateway's own answers).
pub fn off(session: &mut Session) {
    if let Some(m) = module(session) {
        if m.is_enabled() {
            m.adjust_level(0);
        }
    }
}
