//! The config center's own I/O runtime: one small Tokio runtime, started
//! once for the process, on which every MySQL and Redis call of the config
//! stores runs (and the follower of other instances' changes lives).
//! Pingora runs each service on a runtime of its own and startup runs on a
//! short-lived one; connections pooled on one runtime must not be used
//! after it ends, so the stores never touch those.

use super::StoreError;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

static IO: OnceLock<Result<tokio::runtime::Runtime, StoreError>> = OnceLock::new();

/// The runtime's handle (started on first use).
pub fn handle() -> Result<tokio::runtime::Handle, StoreError> {
    let rt = IO.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sluice-config-io")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Snapshot(format!("cannot start the config I/O runtime: {e}")))
    });
    rt.as_ref()
        .map(|r| r.handle().clone())
        .map_err(Clone::clone)
}

/// Runs `fut` on the I/O runtime within `timeout` and waits for it from
/// any runtime.
pub async fn run<T: Send + 'static>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let task = handle()?.spawn(async move {
        tokio::time::timeout(timeout, fut)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Timeout {
                    store: "config store",
                    ms: timeout.as_millis(),
                })
            })
    });
    task.await
        .map_err(|e| StoreError::Snapshot(format!("store task failed: {e}")))?
}

/// Runs `fut` on the I/O runtime from synchronous code (startup).
pub fn block_on<T: Send + 'static>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let h = handle()?;
    h.block_on(run(timeout, fut))
}
