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
    /// `internal` (`/internal/v1/…`) or `external`.
    pub channel: &'a str,
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
    /// The response cache's part: `hit`, `miss`, `stale` or `bypass`;
    /// none when the model does not cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'a str>,
    /// A Bridge invocation (`POST /internal/v1/bridge/invoke`, MCP
    /// `tools/call`): which agent's tool, and how it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge: Option<BridgeCall<'a>>,
}

/// The Bridge part of an access log line.
#[derive(Debug, Serialize)]
pub struct BridgeCall<'a> {
    pub agent: &'a str,
    pub tool: &'a str,
    pub req_id: &'a str,
    /// `ok`, `error`, `cancelled`, `running` (the client left first) or
    /// `refused` (never sent).
    pub outcome: &'a str,
}

/// What the writer thread is told.
enum Msg {
    Line(String),
    /// Reopen the file (log rotation, SIGHUP).
    Reopen,
    /// Flush, then acknowledge (before the process exits).
    Flush(SyncSender<()>),
}

static SENDER: OnceLock<SyncSender<Msg>> = OnceLock::new();

fn open(path: &str) -> std::io::Result<Box<dyn Write + Send>> {
    if path == "-" {
        return Ok(Box::new(std::io::stdout()));
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{path}: {e}")))?;
    Ok(Box::new(file))
}

/// Starts the writer for `path` (`-` = standard output). Call once at start.
pub fn start(path: &str) -> std::io::Result<()> {
    let out = open(path)?;
    let (tx, rx) = sync_channel(QUEUE);
    let path = path.to_string();
    std::thread::Builder::new()
        .name("sluice access log".into())
        .spawn(move || write_lines(rx, out, &path))?;
    SENDER.set(tx).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "the access log is already started",
        )
    })
}

fn write_lines(rx: Receiver<Msg>, out: Box<dyn Write + Send>, path: &str) {
    let mut out = std::io::BufWriter::new(out);
    while let Ok(first) = rx.recv() {
        let mut ok = true;
        let mut next = Some(first);
        // Batch what is already queued, then flush once.
        while let Some(msg) = next.take().or_else(|| rx.try_recv().ok()) {
            match msg {
                Msg::Line(line) => ok &= writeln!(out, "{line}").is_ok(),
                Msg::Reopen => {
                    ok &= out.flush().is_ok();
                    match open(path) {
                        Ok(file) => out = std::io::BufWriter::new(file),
                        Err(e) => log::error!("access log: {e}; still writing to the old file"),
                    }
                }
                Msg::Flush(ack) => {
                    ok &= out.flush().is_ok();
                    let _ = ack.send(());
                }
            }
        }
        ok &= out.flush().is_ok();
        if !ok {
            log::warn!("access log: write failed");
        }
    }
}

/// Reopens the access log file (after it was moved away for rotation).
pub fn reopen() {
    if let Some(tx) = SENDER.get() {
        let _ = tx.try_send(Msg::Reopen);
    }
}

/// Writes what is queued; waits at most a second.
pub fn flush() {
    let Some(tx) = SENDER.get() else {
        return;
    };
    let (ack, done) = sync_channel(1);
    if tx.send(Msg::Flush(ack)).is_ok() {
        let _ = done.recv_timeout(std::time::Duration::from_secs(1));
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
    if let Err(TrySendError::Full(_)) = tx.try_send(Msg::Line(text)) {
        super::metrics().f.access_log_dropped.inc();
    }
}

/// RFC 3339 UTC with milliseconds for a system time.
pub fn timestamp(t: std::time::SystemTime) -> String {
    crate::clock::rfc3339_millis(t)
}
