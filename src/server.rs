//! Assembles the Pingora `Server` for `sluice run`: the proxy service on
//! `listen.proxy`, the admin service on `listen.admin`, and the upkeep
//! background service (DNS refresh + active health checks).

use crate::admin::center::{follow, ConfigCenter};
use crate::admin::AdminApp;
use crate::config::{Config, ConfigStoreKind, CounterStoreKind};
use crate::edge::Edge;
use crate::lifecycle::Signals;
use crate::live::{Counters, LiveState};
use crate::proxy::Gateway;
use crate::state::{SharedSnapshot, Snapshot};
use crate::store::config_file::Entities;
use crate::store::lazy::LazyRedisStore;
use crate::store::open;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{ListenFds, RunArgs, RuntimeOpts, Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;
use pingora::services::{ServiceReadyNotifier, ServiceWithDependents};
use sluice_filters::limits::local::LocalCounterStore;
use sluice_filters::limits::store::SystemClock;
use std::path::PathBuf;
use std::sync::Arc;

/// Refreshes upstream names and runs health checks on the current runtime.
pub struct Upkeep {
    runtime: SharedSnapshot,
}

#[async_trait]
impl BackgroundService for Upkeep {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            let rt = self.runtime.load_full();
            let interval =
                std::time::Duration::from_millis(rt.config.upstream.health_check_interval_ms);
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            let rt = self.runtime.load_full();
            rt.refresh_pools().await;
            rt.health_check_pools().await;
        }
    }
}

/// A listener on `addr`: plain TCP, or TLS with `tls`'s certificates.
fn listen<A: pingora::apps::ServerApp + Send + Sync + 'static>(
    service: &mut Service<A>,
    what: &str,
    addr: &str,
    tls: Option<&crate::config::TlsListener>,
) -> Result<(), ServerError> {
    use pingora::listeners::{L4BufferSettings, ListenerConfig, DEFAULT_L4_WRITE_BUFFER_SIZE};
    // Pingora puts a 64 KiB read buffer (zero-filled, so resident) under
    // every accepted connection. Plain HTTP gains nothing from it: `edge`
    // reads each head into its own buffer and Pingora reads bodies in 64
    // KiB chunks straight from the socket. TLS reads records of up to
    // 16 KiB: that much. (Measured with load-tests/streams.sh: 64 KiB
    // less per open connection.)
    let (config, read) = match tls {
        None => (ListenerConfig::tcp(addr), 0),
        Some(tls) => {
            let settings = crate::tls::settings(what, tls).map_err(ServerError::Config)?;
            (ListenerConfig::tcp(addr).tls(settings), 16 * 1024)
        }
    };
    service
        .add_listener(config.l4_buffer(L4BufferSettings::new(read, DEFAULT_L4_WRITE_BUFFER_SIZE)));
    Ok(())
}

/// Reads the listeners' certificates again when their files change.
pub struct CertificateUpkeep;

#[async_trait]
impl BackgroundService for CertificateUpkeep {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
            }
            crate::tls::reload_all(false);
        }
    }
}

/// Applies the response-cache purges other instances announce (through
/// the cache's Redis tier) to this instance's memory tier.
pub struct CachePurges;

#[async_trait]
impl BackgroundService for CachePurges {
    async fn start(&self, shutdown: ShutdownWatch) {
        crate::cache::cache().follow_purges(shutdown).await;
    }
}

/// Called on a service's runtime as it starts (to spawn tasks there), with
/// the server's table of listening sockets.
pub type StartHook = Box<dyn FnOnce(Option<ListenFds>) + Send + Sync>;

/// A service that first calls `on_start` on its own runtime, then runs as
/// `inner` would. Pingora gives each service a runtime of its own and has
/// no start-up hook for a listening service's app; the Redis counter store
/// is connected this way so that its connection task lives with the
/// requests that use it (`store::lazy`), and the readiness systemd is told
/// of waits there for the listeners (`systemd::ready_when_bound`).
pub struct OnServiceRuntime<S> {
    inner: S,
    on_start: Vec<StartHook>,
}

#[async_trait]
impl<S: ServiceWithDependents> ServiceWithDependents for OnServiceRuntime<S> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        listeners_per_fd: usize,
        ready: ServiceReadyNotifier,
    ) {
        for hook in self.on_start.drain(..) {
            hook(fds.clone());
        }
        self.inner
            .start_service(fds, shutdown, listeners_per_fd, ready)
            .await
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn threads(&self) -> Option<usize> {
        self.inner.threads()
    }

    fn runtime_opts_override(&self, global: &RuntimeOpts) -> Option<RuntimeOpts> {
        self.inner.runtime_opts_override(global)
    }

    fn on_startup_delay(&self, time_waited: std::time::Duration) {
        self.inner.on_startup_delay(time_waited)
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        self.inner.listen_addresses()
    }
}

/// The addresses `service` listens on, as Pingora's table of listening
/// sockets names them.
fn listen_addresses<A>(service: &Service<A>) -> Vec<String>
where
    A: pingora::apps::ServerApp + Send + Sync + 'static,
{
    pingora::services::Service::listen_addresses(service).unwrap_or_default()
}

/// Renews this instance's entry in the fleet registry (`crate::fleet`).
pub struct FleetHeartbeat;

/// Relays Bridge invocations between the instances sharing the fleet's
/// Redis (`bridge::relay`).
pub struct BridgeRelay;

#[async_trait]
impl BackgroundService for BridgeRelay {
    async fn start(&self, shutdown: ShutdownWatch) {
        crate::bridge::relay::run(shutdown).await;
    }
}

#[async_trait]
impl BackgroundService for FleetHeartbeat {
    async fn start(&self, shutdown: ShutdownWatch) {
        crate::fleet::run(shutdown).await;
    }
}

/// Keeps the JWKS of external issuers fresh (`identity::jwks`): each
/// second, the sources that are due are read or fetched.
pub struct JwksUpkeep {
    runtime: SharedSnapshot,
}

#[async_trait]
impl BackgroundService for JwksUpkeep {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
            let rt = self.runtime.load_full();
            if !rt.config.auth.issuers.is_empty() {
                crate::identity::jwks::refresh(&rt).await;
            }
        }
    }
}

/// Worker threads: the configured number, or one per core.
fn threads(config: &Config) -> usize {
    if config.server.threads > 0 {
        config.server.threads
    } else {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The config (with the stored entities) has problems.
    #[error("{0}")]
    Config(String),
    /// The config store or the Redis bus cannot be used.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A runtime, signal handler or file could not be set up.
    #[error("cannot start {what}: {source}")]
    Setup {
        what: &'static str,
        source: std::io::Error,
    },
}

/// Builds and runs the gateway; returns only on error before start.
/// Admin API changes apply but are not persisted (see [`run_with_state`]).
pub fn run(config: Config) -> Result<(), ServerError> {
    run_with_state(config, None, None, false, false)
}

/// Builds and runs the gateway with the admin API's entity store
/// (`config_store`; the file store's file is `state_path`): the stored
/// entities replace the YAML's (validated together with the YAML's
/// process settings); an empty store starts from the YAML's entities, and
/// `reimport` replaces the stored entities with the YAML's. SIGHUP reads
/// `config_path` again (see `lifecycle`).
pub fn run_with_state(
    yaml: Config,
    config_path: Option<PathBuf>,
    state_path: Option<PathBuf>,
    reimport: bool,
    upgrade: bool,
) -> Result<(), ServerError> {
    crate::lifecycle::hold_sighup().map_err(|source| ServerError::Setup {
        what: "the SIGHUP handler",
        source,
    })?;
    // A successor (SIGUSR2 upgrade) keeps the same store: its directory,
    // when it is not the config file's.
    let state_dir = match (&state_path, &config_path) {
        (Some(state), Some(config)) if state.parent() != config.parent() => {
            state.parent().map(std::path::Path::to_path_buf)
        }
        _ => None,
    };
    let opened = match state_path {
        Some(path) => Some(open::open(&yaml, path, reimport)?),
        None => None,
    };
    let entities = opened
        .as_ref()
        .map_or_else(|| Entities::from_config(&yaml), |o| o.entities.clone());
    let config = entities.config_over(&yaml).map_err(|problems| {
        let origin = opened
            .as_ref()
            .map_or("the config file", |o| o.origin.as_str());
        ServerError::Config(format!(
            "{origin} (with the config file's settings): {} problem(s):\n{}",
            problems.len(),
            problems
                .iter()
                .map(|p| format!("  - {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    })?;
    let mut shared_counters: Option<Arc<LazyRedisStore>> = None;
    let store = match (&config.counters.store, &config.counters.redis_url) {
        (CounterStoreKind::Redis, Some(url)) => {
            // Reported by `/health` from here on; each call updates it.
            crate::store::status::status().set_counters(true);
            let redis = Arc::new(LazyRedisStore::new(
                url.expose(),
                &config.counters.key_prefix,
                std::time::Duration::from_millis(config.counters.timeout_ms),
            ));
            shared_counters = Some(redis.clone());
            Counters::Shared(redis)
        }
        _ => Counters::Local(Arc::new(LocalCounterStore::new(Arc::new(SystemClock)))),
    };
    let live = LiveState::new(store);
    crate::cache::init(&config.cache);
    crate::fleet::init(&config, live.clone());
    if let Some(t) = &config.tracing {
        crate::otel::export::start(t).map_err(ServerError::Config)?;
    }
    let runtime = Snapshot::build(config.clone(), &live).map_err(|problems| {
        ServerError::Config(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    for w in &runtime.warnings {
        log::warn!("config: {w} (GET /api/v1/status lists these)");
    }
    runtime.warm_tokenizers();
    // Resolve names and probe health once before taking traffic.
    let startup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ServerError::Setup {
            what: "the startup runtime",
            source,
        })?;
    startup.block_on(async {
        runtime.refresh_pools().await;
        runtime.health_check_pools().await;
        crate::identity::jwks::refresh(&runtime).await;
    });
    drop(startup);
    let shared: SharedSnapshot = Arc::new(ArcSwap::from_pointee(runtime));
    crate::metrics::metrics().config_applied(true);
    if let Some(log) = &config.access_log {
        crate::metrics::access_log::start(&log.path).map_err(|source| ServerError::Setup {
            what: "the access log (access_log.path)",
            source,
        })?;
    }

    // Pingora's grace period starts when its listeners close; the gateway
    // uses it as the drain deadline and exits earlier once nothing is in
    // flight (`lifecycle`). The accepting phase after SIGTERM
    // (`grace_period_seconds`) is the gateway's own. Pingora's runtime
    // shutdown timeout only bounds the teardown after the deadline.
    let conf = ServerConf {
        threads: threads(&config),
        grace_period_seconds: Some(config.server.graceful_shutdown_timeout_seconds),
        graceful_shutdown_timeout_seconds: Some(1),
        upstream_keepalive_pool_size: config.server.upstream_keepalive_pool_size,
        // Pingora's retry loop bound; our own attempt counting decides per request.
        max_retries: config.upstream.max_attempts.max(1),
        // Pingora's rustls connector trusts this bundle instead of the system store.
        ca_file: config.upstream.ca_file.clone(),
        // Large prompt counts run on blocking threads (`proxy/limits.rs`);
        // an idle one exits after a second, giving back the memory its
        // allocator still holds for requests it served (measured: RSS back
        // near idle ~10 s after a burst of 16 MiB bodies with tokio's
        // 10 s default, see load-tests/RESULTS.md).
        blocking_threads_ttl_seconds: Some(1),
        upgrade_sock: config.server.upgrade_sock.clone(),
        ..ServerConf::default()
    };
    // `upgrade`: the listening sockets come from the running process
    // (Pingora's graceful upgrade: it sends them on `upgrade_sock` when it
    // gets SIGQUIT, then drains); `bootstrap` waits for them.
    let opt = pingora::server::configuration::Opt {
        upgrade,
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    server.bootstrap();
    let conf = server.configuration.clone();

    let center: Arc<ConfigCenter> = Arc::new(ConfigCenter::new(
        shared.clone(),
        yaml,
        opened.as_ref().map(|o| o.store.clone()),
        opened.as_ref().and_then(|o| o.bus.clone()),
        entities,
    ));
    // The Bridge issues agent tokens through the center.
    let _ = crate::proxy::bridge::CENTER.set(center.clone());
    crate::bridge::applied(&shared.load().config);
    // Every listener runs the bounded connection loop of `edge`.
    let proxy_app =
        pingora::proxy::http_proxy(&conf, Gateway::new(shared.clone(), Some(center.clone())));
    let mut proxy = Service::new(
        "sluice proxy".to_string(),
        Edge::new(proxy_app, shared.clone(), false),
    );
    listen(
        &mut proxy,
        "listen.proxy_tls",
        &config.listen.proxy,
        config.listen.proxy_tls.as_ref(),
    )?;
    // Every listener's address, for the readiness systemd is told of.
    let mut addresses = listen_addresses(&proxy);
    // The Redis counter store connects on the proxy's runtime.
    let mut on_start: Vec<StartHook> = Vec::new();
    if let Some(redis) = shared_counters {
        on_start.push(Box::new(move |_| {
            tokio::spawn(async move { redis.start().await });
        }));
    }

    // Other instances' changes (shared store only): bus messages and the
    // periodic revision check, on the config I/O runtime.
    if config.config_store.kind == ConfigStoreKind::Mysql && opened.is_some() {
        let poll = std::time::Duration::from_millis(config.config_store.poll_ms);
        crate::store::io::handle()?.spawn(follow(center.clone(), poll));
    }
    if let Some(admin_addr) = &config.listen.admin {
        let app = AdminApp::with_center(shared.clone(), center.clone());
        let mut admin = Service::new(
            "sluice admin".to_string(),
            Edge::new(app, shared.clone(), true),
        );
        listen(
            &mut admin,
            "listen.admin_tls",
            admin_addr,
            config.listen.admin_tls.as_ref(),
        )?;
        addresses.extend(listen_addresses(&admin));
        server.add_service(admin);
    }

    if let Some(metrics_addr) = &config.metrics.listen {
        let app = crate::metrics::endpoints::MetricsApp {
            runtime: shared.clone(),
        };
        let mut service = Service::new(
            "sluice metrics".to_string(),
            Edge::new(app, shared.clone(), true),
        );
        service.add_tcp(metrics_addr);
        addresses.extend(listen_addresses(&service));
        server.add_service(service);
    }
    // Under systemd (`Type=notify`): ready once every listener is bound; a
    // successor (upgrade) is the service's main process from then on.
    on_start.push(Box::new(move |fds| {
        tokio::spawn(crate::systemd::ready_when_bound(fds, addresses, upgrade));
    }));
    server.add_service(OnServiceRuntime {
        inner: proxy,
        on_start,
    });

    server.add_service(background_service(
        "sluice upkeep",
        Upkeep {
            runtime: shared.clone(),
        },
    ));
    if crate::tls::any() {
        server.add_service(background_service("sluice certificates", CertificateUpkeep));
    }
    if crate::fleet::shared() {
        server.add_service(background_service("sluice fleet", FleetHeartbeat));
    }
    if crate::fleet::shared() && config.bridge.enabled {
        server.add_service(background_service("sluice bridge relay", BridgeRelay));
    }
    if crate::cache::cache().has_shared() {
        server.add_service(background_service("sluice cache purges", CachePurges));
    }
    server.add_service(background_service(
        "sluice jwks",
        JwksUpkeep {
            runtime: shared.clone(),
        },
    ));
    log::warn!(
        "sluice listening on {} (admin: {})",
        config.listen.proxy,
        config.listen.admin.as_deref().unwrap_or("off")
    );
    crate::lifecycle::exit_when_drained(server.watch_execution_phase());
    server.run(RunArgs {
        shutdown_signal: Box::new(Signals {
            accept_for: std::time::Duration::from_secs(config.server.grace_period_seconds),
            config_path,
            center: Some(center),
            upgrade_sock: config.server.upgrade_sock.clone(),
            state_dir,
        }),
    });
    crate::metrics::access_log::flush();
    Ok(())
}
