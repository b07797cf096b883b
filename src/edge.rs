//! The client connection loop of every listener (proxy, admin, metrics):
//! what a slow, idle or greedy client can hold is bounded here, before
//! Pingora parses anything (`clients` in the config).
//!
//! - **Connection caps**: open connections per listener and per client
//!   address; one over either is answered 503 `too_many_connections` and
//!   closed.
//! - **Request head deadline**: the whole head must arrive within
//!   `header_timeout_ms` of its first byte (one byte every few seconds is
//!   no longer enough) and fit in `max_header_bytes` (else 431). The
//!   loop reads the head itself and hands it to Pingora as the session's
//!   first bytes (`set_pipelined_prefix`), so Pingora's per-read timeout
//!   is no longer the only bound.
//! - **Idle keep-alive**: a connection waiting for its next request is
//!   closed after `idle_timeout_ms` (or `timeouts.client_keepalive_s`), and
//!   a quarter second after the listeners close on a drain (a request
//!   already on its way is served, with `Connection: close`).
//! - **Writes**: every session gets `write_timeout_ms`, so a client that
//!   stops reading ends its request (and frees its slots).
//! - **Malformed heads** on the admin and metrics listeners are answered
//!   400 here, so Pingora's parse error (which carries the raw request,
//!   credentials included) never reaches a log; the proxy listener's
//!   Pingora path answers them 400 itself.
//!
//! HTTP/2 connections (ALPN `h2`) go to Pingora's own loop.

use crate::error::GatewayError;
use crate::state::SharedSnapshot;
use async_trait::async_trait;
use bytes::BytesMut;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// A listener's application behind the bounded connection loop.
pub struct Edge<A> {
    app: Arc<A>,
    runtime: SharedSnapshot,
    /// Validate every head with `httparse` (admin and metrics listeners).
    strict: bool,
    open: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

impl<A> Edge<A> {
    /// `strict`: answer every malformed head 400 here (see the module docs).
    pub fn new(app: A, runtime: SharedSnapshot, strict: bool) -> Edge<A> {
        Edge {
            app: Arc::new(app),
            runtime,
            strict,
            open: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
        }
    }
}

/// One open connection, counted until dropped.
struct Slot<'a, A> {
    edge: &'a Edge<A>,
    ip: Option<IpAddr>,
}

impl<A> Drop for Slot<'_, A> {
    fn drop(&mut self) {
        self.edge.open.fetch_sub(1, Relaxed);
        if let Some(ip) = self.ip {
            if let Ok(mut map) = self.edge.per_client.lock() {
                if let Some(n) = map.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        map.remove(&ip);
                    }
                }
            }
        }
    }
}

/// The `clients` settings one connection lives by.
struct Bounds {
    header: Duration,
    idle: Duration,
    write: Duration,
    max_header: usize,
    max_open: usize,
    max_per_client: usize,
}

/// How reading a request head ended.
enum Head {
    Ready(BytesMut),
    /// The client closed, went idle too long, or the process drains.
    Closed,
    Reject(GatewayError),
}

impl<A> Edge<A> {
    fn bounds(&self) -> Bounds {
        let rt = self.runtime.load();
        let c = &rt.config.clients;
        let idle = match rt.config.timeouts.client_keepalive_s {
            Some(s) if s > 0 => Duration::from_secs(s),
            _ => Duration::from_millis(c.idle_timeout_ms),
        };
        Bounds {
            header: Duration::from_millis(c.header_timeout_ms),
            idle,
            write: Duration::from_millis(c.write_timeout_ms),
            max_header: c.max_header_bytes,
            max_open: c.max_connections,
            max_per_client: c.max_connections_per_client,
        }
    }

    /// Counts the connection in, or None when a cap is reached.
    fn admit(&self, ip: Option<IpAddr>, b: &Bounds) -> Option<Slot<'_, A>> {
        if self.open.fetch_add(1, Relaxed) >= b.max_open {
            self.open.fetch_sub(1, Relaxed);
            return None;
        }
        // From here on `slot` gives the global count back when dropped.
        let mut slot = Slot {
            edge: self,
            ip: None,
        };
        let Some(ip) = ip else {
            return Some(slot);
        };
        let mut map = self.per_client.lock().ok()?;
        let n = map.entry(ip).or_insert(0);
        if *n >= b.max_per_client {
            return None;
        }
        *n += 1;
        slot.ip = Some(ip);
        Some(slot)
    }

    /// Reads one request head: within `wait` for its first byte, then
    /// within `b.header` for the rest. A connection idle between requests
    /// is closed when the process drains; a `fresh` one (its first
    /// request, which the client may already have sent) is read and served.
    async fn read_head(
        &self,
        stream: &mut Stream,
        wait: Duration,
        b: &Bounds,
        shutdown: &ShutdownWatch,
        fresh: bool,
    ) -> Head {
        let mut buf = BytesMut::with_capacity(4096);
        let mut shutdown = shutdown.clone();
        let mut deadline = Instant::now() + wait;
        // Idle between requests when the process drains: the client may
        // be sending its next request this very moment (it cannot know),
        // so wait [`LINGER`] for it before closing. Closing at once makes
        // such a request meet a reset (seen under load in the upgrade
        // test); one that arrives is served (with `Connection: close`).
        let mut lingering = *shutdown.borrow() && !fresh;
        if lingering {
            deadline = deadline.min(Instant::now() + LINGER);
        }
        let mut started = false;
        loop {
            let read = tokio::select! {
                biased;
                r = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)) => r,
                _ = shutdown.changed(), if buf.is_empty() && !fresh && !lingering => {
                    lingering = true;
                    deadline = deadline.min(Instant::now() + LINGER);
                    continue;
                }
            };
            match read {
                Err(_) if buf.is_empty() => return Head::Closed,
                Err(_) => return Head::Reject(GatewayError::HeadTimeout),
                Ok(Ok(0)) | Ok(Err(_)) => return Head::Closed,
                Ok(Ok(_)) => {}
            }
            if !started {
                // The first bytes arrived: the head's own deadline starts.
                started = true;
                deadline = Instant::now() + b.header;
            }
            if let Some(end) = head_end(&buf) {
                if self.strict {
                    if let Err(why) = check_head(&buf[..end]) {
                        return Head::Reject(GatewayError::InvalidRequest(why.to_string()));
                    }
                }
                return Head::Ready(buf);
            }
            if buf.len() > b.max_header {
                return Head::Reject(GatewayError::HeadTooLarge(b.max_header));
            }
        }
    }
}

/// How long a connection idle between requests stays open once the
/// process drains, for a request already on its way.
const LINGER: Duration = Duration::from_millis(250);

/// End of the request head (after the blank line), if it is complete.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4);
    let lf = memchr::memmem::find(buf, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Why a request head is refused before Pingora parses it.
#[derive(Debug, thiserror::Error)]
enum BadHead {
    #[error("incomplete request head")]
    Incomplete,
    #[error("malformed request head: {0}")]
    Malformed(#[from] httparse::Error),
    #[error("an HTTP/1.1 request must carry a Host header")]
    NoHost,
}

/// A complete head parsed as HTTP/1.x; HTTP/1.1 must name its `Host`.
fn check_head(head: &[u8]) -> Result<(), BadHead> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    if req.parse(head)?.is_partial() {
        return Err(BadHead::Incomplete);
    }
    let has_host = req
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("host"));
    if req.version == Some(1) && !has_host {
        return Err(BadHead::NoHost);
    }
    Ok(())
}

/// Answers `err` in the gateway's one error shape and closes.
async fn reject(stream: &mut Stream, err: &GatewayError) {
    let status = err.status();
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let body = err.body("");
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}

#[async_trait]
impl<A> ServerApp for Edge<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let out = self.serve(stream, shutdown).await;
        // The last connection of a busy spell ended: the workers' heaps
        // give their free pages back (mimalloc returns freed memory only as
        // the owning thread keeps allocating, so an idle worker kept the
        // memory of the streams it served; load-tests/streams.sh). Only
        // when nothing is in flight anywhere, so never under load.
        if crate::lifecycle::in_flight() == 0 {
            crate::alloc::trim_workers();
        }
        out
    }

    async fn cleanup(&self) {
        self.app.http_cleanup().await;
    }
}

impl<A> Edge<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    /// One connection: its requests one after another (HTTP/1.x), or the
    /// HTTP/2 session.
    async fn serve(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return ServerApp::process_new(&self.app, stream, shutdown).await;
        }
        let b = self.bounds();
        let ip = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let Some(_slot) = self.admit(ip, &b) else {
            crate::metrics::metrics().connection_refused();
            reject(&mut stream, &GatewayError::TooManyConnections).await;
            return None;
        };
        let mut reused: Option<HttpPersistentSettings> = None;
        let mut wait = b.header;
        // A new connection's first request is one in flight from the
        // moment it is accepted: the drain must not exit under a client
        // whose request is on the wire (seen: a request accepted during
        // the upgrade hand-over, reset by the old process exiting).
        let mut first: Option<crate::lifecycle::InFlight> =
            Some(crate::lifecycle::InFlight::enter());
        loop {
            let fresh = first.is_some();
            let head = match self.read_head(&mut stream, wait, &b, shutdown, fresh).await {
                Head::Ready(head) => head,
                Head::Closed => return None,
                Head::Reject(err) => {
                    reject(&mut stream, &err).await;
                    return None;
                }
            };
            let mut session = ServerSession::new_http1(stream);
            match reused.take() {
                Some(settings) => settings.apply_to_session(&mut session),
                None => session.set_keepalive(Some(b.idle.as_secs().max(1))),
            }
            if *shutdown.borrow() {
                session.set_keepalive(None);
            }
            session.set_pipelined_prefix(head);
            session.set_write_timeout(Some(b.write));
            let (next, settings) = self
                .app
                .process_new_http(session, shutdown)
                .await?
                .consume();
            stream = next;
            reused = settings;
            wait = b.idle;
            first = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{check_head, head_end};

    #[test]
    fn head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: x\n\nbody"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn heads_are_checked() {
        assert!(check_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_ok());
        assert!(check_head(b"GET / HTTP/1.0\r\n\r\n").is_ok());
        let no_host = check_head(b"GET / HTTP/1.1\r\nA: b\r\n\r\n").unwrap_err();
        assert!(matches!(no_host, super::BadHead::NoHost), "{no_host}");
        assert!(check_head(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").is_err());
        assert!(check_head(b"\x01\x02 / HTTP/1.1\r\n\r\n").is_err());
    }
}
