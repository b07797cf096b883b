//! Writing the gateway's own responses (errors, health, metrics) to the
//! client. Always with `content-length` and `x-request-id`; Pingora closes
//! the connection afterwards when the request body was left unread.

use crate::error::GatewayError;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

/// Writes a complete response.
pub async fn send(
    session: &mut Session,
    status: u16,
    content_type: &str,
    body: Vec<u8>,
    request_id: &str,
    extra: &[(&'static str, String)],
) -> Result<()> {
    let mut header = ResponseHeader::build(status, Some(4 + extra.len()))?;
    header.insert_header("content-type", content_type)?;
    header.insert_header("content-length", body.len().to_string())?;
    header.insert_header("x-request-id", request_id)?;
    for (name, value) in extra {
        header.insert_header(*name, value.as_str())?;
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    super::compression::off(session);
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(Bytes::from(body)), true)
            .await?;
    }
    Ok(())
}

/// Writes a JSON response.
pub async fn json(
    session: &mut Session,
    status: u16,
    body: &serde_json::Value,
    request_id: &str,
) -> Result<()> {
    send(
        session,
        status,
        "application/json",
        body.to_string().into_bytes(),
        request_id,
        &[],
    )
    .await
}

/// Writes a gateway error: the one error shape on the internal channel,
/// its external form (no internals: [`GatewayError::external_body`]) on
/// every other path, Anthropic's to clients of the Messages API (`POST
/// /v1/messages`; a subrequest's errors are translated by its parent).
///
/// When the request body was left unread, Pingora cannot reuse the
/// connection; say so (`Connection: close`) so clients do not send the next
/// request on a connection about to close.
pub async fn error(session: &mut Session, err: &GatewayError, request_id: &str) -> Result<()> {
    if !session.as_downstream_mut().is_body_done() {
        session.set_keepalive(None);
    }
    let extra = match err {
        GatewayError::Unauthorized(_) => vec![("www-authenticate", "Bearer".to_string())],
        GatewayError::Limited(d) => {
            let mut h = d.headers.clone();
            h.push(("retry-after", d.retry_after_secs.to_string()));
            h
        }
        _ => Vec::new(),
    };
    let req = session.req_header();
    let anthropic = session.subrequest_ctx.is_none()
        && req.method == http::Method::POST
        && req.uri.path() == "/v1/messages";
    let body = if anthropic {
        err.anthropic_body(request_id)
    } else if crate::decision::internal_channel(req.uri.path()) {
        err.body(request_id)
    } else {
        err.external_body(request_id)
    };
    send(
        session,
        err.status(),
        "application/json",
        body,
        request_id,
        &extra,
    )
    .await
}
