//! The structured access log (`access_log.path`): one JSON object per line
//! per client request, written by a background thread so the request path
//! only formats the line and hands it over (a full queue drops the line and
//! counts it in `sluice_access_log_dropped_total`). Never holds keys or
//! prompt text: the caller builds [`Line`] from labels and figures only.

use serde::Serialize;
use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;

/// Lines queued for the writer before new ones are dropped.
const QUEUE: usize = 16 * 1024;

/// One access log line.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    /// RFC 3339 UTC time the request finished, with milliseconds.
    pub ts: String,
    pub trace_id: &'a str,
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    pub namespace: &'a str,
    pub route: &'a str,
    /// The key's configured name (never the key).
    pub key_name: &'a str,
    /// The model the client asked for (truncated to 64 bytes).
    pub model: &'a str,
    pub upstream: &'a str,
    pub provider: &'a str,
    pub status: u16,
    /// The gateway's error code, when it answered with one.
    pub error: Option<&'a str>,
    pub stream: bool,
    pub attempts: usize,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// USD; 0 until the model catalog (prices) exists.
    pub cost: f64,
    pub latency_ms: f64,
    /// Time in Sluice (before the upstream attempt + settling afterwards).
    pub gateway_ms: f64,
    /// The rest: connecting, waiting for and streaming the upstream answer.
    pub upstream_ms: f64,
    pub ttfb_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
}

static SENDER: OnceLock<SyncSender<String>> = OnceLock::new();

/// Starts the writer for `path` (`-` = standard output). Call once at start.
pub fn start(path: &str) -> Result<(), String> {
    let out: Box<dyn Write + Send> = if path == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("access_log.path: cannot open {path}: {e}"))?,
        )
    };
    let (tx, rx) = sync_channel(QUEUE);
    std::thread::Builder::new()
        .name("sluice access log".into())
        .spawn(move || write_lines(rx, out))
        .map_err(|e| format!("cannot start the access log writer: {e}"))?;
    SENDER
        .set(tx)
        .map_err(|_| "the access log is already started".to_string())
}

fn write_lines(rx: Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::new(out);
    while let Ok(line) = rx.recv() {
        let mut ok = writeln!(out, "{line}").is_ok();
        // Batch what is already queued, then flush once.
        while let Ok(more) = rx.try_recv() {
            ok &= writeln!(out, "{more}").is_ok();
        }
        ok &= out.flush().is_ok();
        if !ok {
            log::warn!("access log: write failed");
        }
    }
}

/// Whether the access log is on.
pub fn enabled() -> bool {
    SENDER.get().is_some()
}

/// Queues one line (dropped and counted when the writer is behind).
pub fn write(line: &Line<'_>) {
    let Some(tx) = SENDER.get() else {
        return;
    };
    let Ok(text) = serde_json::to_string(line) else {
        return;
    };
    if let Err(TrySendError::Full(_)) = tx.try_send(text) {
        super::metrics().f.access_log_dropped.inc();
    }
}

/// RFC 3339 UTC with milliseconds for a system time.
pub fn timestamp(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let base = super::summary::rfc3339(d.as_secs());
    format!("{}.{:03}Z", base.trim_end_matches('Z'), d.subsec_millis())
}
