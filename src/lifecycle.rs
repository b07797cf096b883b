//! The process's signals and the drain that makes shutdown graceful.
//!
//! | signal | does |
//! | --- | --- |
//! | SIGTERM | draining starts: `/healthz` answers 503 `draining` and every answer closes its connection; new connections are still accepted for `server.grace_period_seconds`; then the listeners close and the requests and streams in flight finish (up to `server.graceful_shutdown_timeout_seconds`); the process exits as soon as none is left |
//! | SIGQUIT | Pingora's upgrade step (it sends the listening sockets to a process started with `sluice run --upgrade`, waiting on `server.upgrade_sock`, and accepts for 5 s more), then the same drain |
//! | SIGUSR2 | an upgrade in place: the binary on disk is started with `run --upgrade` as a child; once it waits on the upgrade socket, what SIGQUIT does |
//! | SIGINT | fast exit |
//! | SIGHUP | the config file's settings are read again and applied (entities stay the store's), the listeners' certificates are read again, and the access log is reopened (log rotation) |
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

static DRAIN_STARTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

fn start_draining() {
    DRAINING.store(true, SeqCst);
    DRAIN_STARTED.notify_waiters();
}

/// Returns once the process is draining (at once when it already is): a
/// long-lived answer (a Bridge tunnel) ends then, so its client reconnects
/// to another instance.
pub async fn drain_started() {
    let notified = DRAIN_STARTED.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    if draining() {
        return;
    }
    notified.await;
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
    // SIGUSR2 (upgrade) likewise: by default it would end the process.
    rt.block_on(async {
        drop(signal(SignalKind::hangup())?);
        signal(SignalKind::user_defined2()).map(drop)
    })
}

/// The gateway's [`ShutdownSignalWatch`]: see the module docs.
pub struct Signals {
    /// Seconds new connections are still accepted after SIGTERM.
    pub accept_for: Duration,
    /// The config file, read again on SIGHUP.
    pub config_path: Option<PathBuf>,
    pub center: Option<Arc<dyn ConfigControl>>,
    /// Where a successor takes the listeners over (`server.upgrade_sock`).
    pub upgrade_sock: String,
    /// The admin API's file store, when it is not next to the config file
    /// (a successor is started with the same).
    pub state_dir: Option<PathBuf>,
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let streams = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
            signal(SignalKind::user_defined2()),
        );
        let (Ok(mut quit), Ok(mut term), Ok(mut int), Ok(mut hup), Ok(mut usr2)) = streams else {
            log::error!("cannot listen for signals; shutting down");
            return ShutdownSignal::FastShutdown;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => self.reload().await,
                _ = usr2.recv() => match self.start_successor().await {
                    Ok(pid) => {
                        log::warn!("SIGUSR2: process {pid} takes the listeners over; draining");
                        start_draining();
                        return ShutdownSignal::GracefulUpgrade;
                    }
                    Err(e) => log::error!("SIGUSR2: no upgrade, this process keeps serving: {e}"),
                },
                _ = int.recv() => return ShutdownSignal::FastShutdown,
                _ = quit.recv() => {
                    log::warn!("SIGQUIT: draining (after Pingora's upgrade step)");
                    start_draining();
                    return ShutdownSignal::GracefulUpgrade;
                }
                _ = term.recv() => {
                    log::warn!(
                        "SIGTERM: draining; accepting for {} s more, then finishing what is in flight",
                        self.accept_for.as_secs()
                    );
                    start_draining();
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
    /// SIGUSR2: starts the binary on disk (a new version, typically) with
    /// `run --upgrade` and the same config, as this process's child (so it
    /// stays in the service's cgroup), and waits until it listens on the
    /// upgrade socket. Returns its pid.
    async fn start_successor(&self) -> Result<u32, String> {
        let config = self
            .config_path
            .as_ref()
            .ok_or("no config file to start it with")?;
        let exe = std::env::current_exe().map_err(|e| format!("the binary: {e}"))?;
        // A binary replaced on disk reads as "… (deleted)": its new file.
        let exe = PathBuf::from(
            exe.to_string_lossy()
                .trim_end_matches(" (deleted)")
                .to_string(),
        );
        let sock = PathBuf::from(&self.upgrade_sock);
        let _ = std::fs::remove_file(&sock);
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("run").arg("--upgrade");
        if let Some(dir) = &self.state_dir {
            cmd.arg("--state-dir").arg(dir);
        }
        let mut child = cmd
            .arg("-c")
            .arg(config)
            .spawn()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if sock.exists() {
                return Ok(child.id());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("the new process exited first ({status})"));
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                return Err("the new process did not listen for the sockets within 60 s".into());
            }
            // Polls a file another process creates: there is nothing to
            // wait on but the clock.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

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

/// How long nothing must be in flight before a drained process exits.
const QUIET: Duration = Duration::from_millis(200);

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
            // A connection accepted just before the listeners closed may
            // not have started its task yet (nothing counted): the count
            // must stay at zero for a moment before the process exits
            // (exiting under it resets a client that already sent its
            // request; seen under load in the upgrade test).
            let mut quiet_since: Option<std::time::Instant> = None;
            loop {
                if in_flight() > 0 {
                    quiet_since = None;
                } else if quiet_since
                    .get_or_insert_with(std::time::Instant::now)
                    .elapsed()
                    >= QUIET
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            // Settlements still queued for the shared counters land
            // first (2 s at most: Redis may be the reason they wait).
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            let pending = || {
                crate::store::counter_batch::counts()
                    .pending
                    .load(std::sync::atomic::Ordering::Relaxed)
            };
            while pending() > 0 && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if pending() > 0 {
                log::error!("exiting with {} counter settlements not applied", pending());
            }
            crate::metrics::access_log::flush();
            log::warn!("drained: nothing in flight, exiting");
            std::process::exit(0);
        });
    if let Err(e) = spawned {
        log::error!("cannot start the drain thread ({e}); shutdown waits the whole drain timeout");
    }
}
