//! The process's signals and the drain that makes shutdown graceful.
//!
//! | signal | does |
//! | --- | --- |
//! | SIGTERM | draining starts: `/healthz` answers 503 `draining` and every answer closes its connection; new connections are still accepted for `server.grace_period_seconds`; then the listeners close and the requests and streams in flight finish (up to `server.graceful_shutdown_timeout_seconds`); the process exits as soon as none is left |
//! | SIGQUIT | Pingora's upgrade step (it offers the listening sockets on its upgrade socket and accepts for 5 s more; `sluice run` has no upgrade mode yet, so nothing takes them), then the same drain |
//! | SIGINT | fast exit |
//! | SIGHUP | the config file's settings are read again and applied (entities stay the store's), and the access log is reopened (log rotation) |
//!
//! Pingora 0.9.1 itself sleeps its whole grace period and then drops its
//! runtimes, cancelling every task still running (`server/mod.rs`, after
//! `main_loop`): it neither counts what is in flight nor waits for it. So
//! the gateway counts requests itself ([`InFlight`], held by each request's
//! context from `request_filter` until the context is dropped after
//! `logging`), hands Pingora the drain deadline as its grace period, and
//! exits the process once Pingora has closed the listeners and nothing is
//! in flight ([`exit_when_drained`]).

use crate::control::ConfigControl;
use async_trait::async_trait;
use pingora::server::{ExecutionPhase, ShutdownSignal, ShutdownSignalWatch};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

static DRAINING: AtomicBool = AtomicBool::new(false);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Whether the process is shutting down (answers close their connection,
/// `/healthz` says so).
pub fn draining() -> bool {
    DRAINING.load(SeqCst)
}

/// One request in progress; the count drops when it is dropped.
#[derive(Debug)]
pub struct InFlight(());

impl InFlight {
    pub fn enter() -> InFlight {
        IN_FLIGHT.fetch_add(1, SeqCst);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, SeqCst);
    }
}

/// Requests in progress (proxy and admin listeners).
pub fn in_flight() -> usize {
    IN_FLIGHT.load(SeqCst)
}

/// Makes SIGHUP harmless from now on (its default action kills the
/// process): tokio keeps a signal's handler installed once registered, so
/// a SIGHUP that arrives before [`Signals`] listens is ignored, not fatal.
pub fn hold_sighup() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async { signal(SignalKind::hangup()).map(drop) })
}

/// The gateway's [`ShutdownSignalWatch`]: see the module docs.
pub struct Signals {
    /// Seconds new connections are still accepted after SIGTERM.
    pub accept_for: Duration,
    /// The config file, read again on SIGHUP.
    pub config_path: Option<PathBuf>,
    pub center: Option<Arc<dyn ConfigControl>>,
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let streams = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        );
        let (Ok(mut quit), Ok(mut term), Ok(mut int), Ok(mut hup)) = streams else {
            log::error!("cannot listen for signals; shutting down");
            return ShutdownSignal::FastShutdown;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => self.reload().await,
                _ = int.recv() => return ShutdownSignal::FastShutdown,
                _ = quit.recv() => {
                    log::warn!("SIGQUIT: draining (after Pingora's upgrade step)");
                    DRAINING.store(true, SeqCst);
                    return ShutdownSignal::GracefulUpgrade;
                }
                _ = term.recv() => {
                    log::warn!(
                        "SIGTERM: draining; accepting for {} s more, then finishing what is in flight",
                        self.accept_for.as_secs()
                    );
                    DRAINING.store(true, SeqCst);
                    tokio::select! {
                        _ = tokio::time::sleep(self.accept_for) => {}
                        _ = int.recv() => return ShutdownSignal::FastShutdown,
                    }
                    return ShutdownSignal::GracefulTerminate;
                }
            }
        }
    }
}

impl Signals {
    /// SIGHUP: the access log is reopened, the listeners' certificates
    /// read again and the config file's settings applied; a file that does
    /// not load changes nothing.
    async fn reload(&self) {
        crate::metrics::access_log::reopen();
        crate::tls::reload_all(true);
        let (Some(path), Some(center)) = (&self.config_path, &self.center) else {
            log::warn!("SIGHUP: access log reopened (no config file to reload)");
            return;
        };
        let Some(path) = path.to_str() else {
            return;
        };
        let yaml = match crate::config::load_file(path) {
            Ok(c) => c,
            Err(problems) => {
                log::error!(
                    "SIGHUP: {path} not applied, {} problem(s): {}",
                    problems.len(),
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                return;
            }
        };
        match center.reload_settings(yaml).await {
            Ok(restart) if restart.is_empty() => log::warn!("SIGHUP: {path} applied"),
            Ok(restart) => log::warn!(
                "SIGHUP: {path} applied; these settings take effect only after a restart: {}",
                restart.join(", ")
            ),
            Err(e) => log::error!("SIGHUP: {path} not applied: {e}"),
        }
    }
}

/// Exits the process once Pingora has closed the listeners (its grace
/// period started) and no request is in flight; Pingora's own deadline
/// (the drain timeout) ends the rest. Runs on its own thread.
pub fn exit_when_drained(mut phases: tokio::sync::broadcast::Receiver<ExecutionPhase>) {
    let spawned = std::thread::Builder::new()
        .name("sluice drain".into())
        .spawn(move || {
            loop {
                match phases.blocking_recv() {
                    Ok(ExecutionPhase::ShutdownGracePeriod) => break,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
            // Polled: the count changes on every request, a wake-up per
            // change would cost the hot path; 10 ms is the exit's latency.
            while in_flight() > 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
            crate::metrics::access_log::flush();
            log::warn!("drained: nothing in flight, exiting");
            std::process::exit(0);
        });
    if let Err(e) = spawned {
        log::error!("cannot start the drain thread ({e}); shutdown waits the whole drain timeout");
    }
}
