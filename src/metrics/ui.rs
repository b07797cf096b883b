//! `GET /metrics/ui`: a self-contained page (HTML, CSS and script compiled
//! into the binary, nothing fetched from elsewhere) that polls
//! `/metrics/summary` with the metrics token and shows requests, latency,
//! tokens, denials and upstream health per namespace and route, and the
//! fleet (every instance sharing the Redis, from the last heartbeat). The token
//! comes from the page's `#token=` fragment (never sent to the server) or
//! its input field, and is kept in the browser's session storage.

/// The page.
pub const PAGE: &str = include_str!("ui.html");

/// Its content security policy: nothing but this page and the summary.
pub const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:";
