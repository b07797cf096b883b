//! The process's logger: `env_logger` (level from `RUST_LOG`, default
//! `warn`) behind a filter that keeps request bytes out of every line.
//!
//! Pingora attaches the raw request buffer to HTTP parse errors
//! (`"buf: …"`, `protocols/http/v1/server.rs`) and logs those errors as
//! they are (at `error` on its plain HTTP apps, at `debug` on the proxy):
//! the client's `Authorization` header would be written to the log. The
//! gateway's listeners answer malformed heads before Pingora sees them
//! (`edge.rs`); this filter is the second line: in any Pingora log line,
//! everything from `buf:` on is replaced.
//!
//! Pingora also logs a client that went away (closed mid-stream, stopped
//! reading) as an `ERROR`, twice for a piped stream (the request and its
//! subrequest). That is the client's doing, not the gateway's: such lines
//! are logged at `info` (the access log records the request anyway), as
//! are the subrequest's copy of any failure and Pingora's "failed to
//! acquire reusable stream" (a race with its idle-connection poll; a new
//! connection is made). Pingora's remaining warnings and errors (one per
//! failed request during an upstream outage) are capped at
//! [`PER_SECOND`] a second; the next line says how many were left out.

use log::{Log, Metadata, Record};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

struct Redacting(env_logger::Logger);

/// What replaces the request bytes in a log line.
const REDACTED: &str = "buf: [request bytes redacted]";

impl Log for Redacting {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.0.matches(record) {
            return;
        }
        if !record.target().starts_with("pingora") {
            self.0.log(record);
            return;
        }
        let text = record.args().to_string();
        let mut metadata = record.metadata().clone();
        let noise = client_gone(&text)
            || text.ends_with("(subrequest)")
            || text.contains("failed to acquire reusable stream");
        if record.level() <= log::Level::Warn && !noise {
            match BUDGET.take() {
                Take::Yes => {}
                Take::After(skipped) => self.0.log(
                    &Record::builder()
                        .args(format_args!("{skipped} more Pingora warnings and errors left out in the last second"))
                        .metadata(record.metadata().clone())
                        .build(),
                ),
                Take::No => return,
            }
        }
        if record.level() <= log::Level::Warn && noise {
            metadata = Metadata::builder()
                .level(log::Level::Info)
                .target(record.target())
                .build();
            if !self.0.enabled(&metadata) {
                return;
            }
        }
        let clean = redact(&text);
        self.0.log(
            &Record::builder()
                .args(format_args!("{}", clean.as_deref().unwrap_or(&text)))
                .metadata(metadata)
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// Pingora warning and error lines written per second, at most.
pub const PER_SECOND: u64 = 20;

/// A per-second budget of log lines (lock-free; a line racing the turn of
/// a second may count in either).
struct Budget {
    second: AtomicU64,
    used: AtomicU64,
    skipped: AtomicU64,
}

enum Take {
    Yes,
    /// Yes, and this many were left out before.
    After(u64),
    No,
}

static BUDGET: Budget = Budget {
    second: AtomicU64::new(0),
    used: AtomicU64::new(0),
    skipped: AtomicU64::new(0),
};

impl Budget {
    fn take(&self) -> Take {
        let now = crate::clock::unix_secs();
        if self.second.swap(now, Relaxed) != now {
            self.used.store(0, Relaxed);
        }
        if self.used.fetch_add(1, Relaxed) >= PER_SECOND {
            self.skipped.fetch_add(1, Relaxed);
            return Take::No;
        }
        match self.skipped.swap(0, Relaxed) {
            0 => Take::Yes,
            n => Take::After(n),
        }
    }
}

/// Whether a Pingora error line is about the client going away.
fn client_gone(text: &str) -> bool {
    text.contains("Downstream ")
        && [
            "WriteError",
            "ReadError",
            "ConnectionClosed",
            "WriteTimedout",
        ]
        .iter()
        .any(|e| text.contains(e))
}

/// `text` cut at its first `buf:`, or None when it has none.
fn redact(text: &str) -> Option<String> {
    let at = text.find("buf:")?;
    Some(format!("{}{REDACTED}", &text[..at]))
}

/// Installs the logger (once, at start).
pub fn init() {
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).build();
    let level = logger.filter();
    if log::set_boxed_logger(Box::new(Redacting(logger))).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn request_bytes_are_cut_from_a_line() {
        let line = r#"Fail to proxy: InvalidHTTPHeader context: buf: GET / HTTP/1.1\r\nAuthorization: Bearer sk-secret\r\n"#;
        let clean = redact(line).unwrap();
        assert!(!clean.contains("sk-secret"), "{clean}");
        assert!(clean.starts_with("Fail to proxy: InvalidHTTPHeader context: "));
        assert_eq!(redact("no request here"), None);
    }

    #[test]
    fn pingora_lines_are_capped_per_second() {
        use super::{Take, BUDGET, PER_SECOND};
        let mut taken = 0;
        let mut refused = 0;
        for _ in 0..(PER_SECOND * 3) {
            match BUDGET.take() {
                Take::Yes | Take::After(_) => taken += 1,
                Take::No => refused += 1,
            }
        }
        // At most two seconds' worth if the loop straddles a second.
        assert!(taken <= 2 * PER_SECOND, "{taken}");
        assert!(refused >= PER_SECOND, "{refused}");
    }

    #[test]
    fn a_client_going_away_is_not_an_error() {
        assert!(super::client_gone("Fail to filter request: Downstream WriteError context: flushing body cause: Broken pipe"));
        assert!(super::client_gone(
            "Fail to proxy: Downstream ReadError context: during HTTP idle state (subrequest)"
        ));
        assert!(!super::client_gone(
            "Fail to proxy: Upstream ConnectRefused"
        ));
    }
}
