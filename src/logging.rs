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
//! are logged at `info` (the access log records the request anyway).

use log::{Log, Metadata, Record};

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
        if record.level() <= log::Level::Warn && client_gone(&text) {
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
