//! Test harness: starts the real `sluice` binary with a config written for
//! the test, against in-process mock upstreams (`sluice::mock::MockServer`,
//! bound to port 0), and waits until it answers `/healthz`.
//!
//! - Waiting: [`eventually`] and its variants poll a condition every 20 ms
//!   up to a deadline and panic naming what was awaited. Tests synchronise
//!   with them, never with fixed sleeps.
//! - Ports: a gateway's listeners are `{proxy}`, `{admin}` and `{metrics}`
//!   in its config; [`Gateway::start`] fills them with free ports and, when
//!   another process takes one of them first, starts again on fresh ones.
//!   Addresses that must refuse connections come from [`refused_port`].
//! - Configs: [`config`], [`one_mock`], [`server`], [`with_admin`],
//!   [`admin_config`] build the YAML the tests share.
#![allow(dead_code)]

use serde_json::Value;
use sluice::mock::{MockOptions, MockServer};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- waiting

/// How long [`eventually`] and [`eventually_ok`] wait.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How often the `eventually` helpers look again.
const POLL: Duration = Duration::from_millis(20);

/// Polls `cond` every 20 ms until it holds or `within` has passed; whether
/// it held. For a test that explains a timeout itself; the others use
/// [`eventually`].
pub async fn poll_until(within: Duration, mut cond: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `cond` holds: polls it every 20 ms and panics with
/// "timed out … waiting for: `what`" after [`PATIENCE`]. For effects that
/// land a moment after the client has its answer (settlement, metrics,
/// log lines, a config applied elsewhere).
pub async fn eventually(what: &str, cond: impl AsyncFnMut() -> bool) {
    eventually_within(PATIENCE, what, cond).await;
}

/// [`eventually`] with a deadline of `within` (also when the deadline is
/// what the test asserts: "applied within 1 s").
pub async fn eventually_within(within: Duration, what: &str, cond: impl AsyncFnMut() -> bool) {
    if !poll_until(within, cond).await {
        panic!("timed out after {within:?} waiting for: {what}");
    }
}

/// Polls `check` every 20 ms until it returns `Ok`, and returns that value;
/// after [`PATIENCE`], panics naming `what` and the last `Err` (what was
/// seen instead).
pub async fn eventually_ok<T>(what: &str, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(seen) if Instant::now() >= deadline => {
                panic!("timed out after {PATIENCE:?} waiting for: {what}\nlast seen: {seen}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// The blocking form of [`eventually_ok`] with a deadline of `within`, for
/// checks that block (a subprocess, a file) outside an async test.
pub fn eventually_blocking<T>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(v) => return v,
            Err(seen) if Instant::now() >= deadline => {
                panic!("timed out after {within:?} waiting for: {what}\nlast seen: {seen}")
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

// ------------------------------------------------------------------ ports

/// A free TCP port on 127.0.0.1, bound then released: another process may
/// take it before it is used. Listeners of a test gateway are placeholders
/// in its config instead (see [`Gateway::start`]); an address that must
/// refuse connections is a [`refused_port`].
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A port on 127.0.0.1 that refuses connections for as long as the guard
/// lives: bound (so no other process can take it) but not listening.
pub struct RefusedPort {
    pub port: u16,
    socket: tokio::net::TcpSocket,
}

/// See [`RefusedPort`].
pub fn refused_port() -> RefusedPort {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("bind 127.0.0.1:0");
    let port = socket.local_addr().expect("bound address").port();
    RefusedPort { port, socket }
}

impl RefusedPort {
    /// Gives the port up, for a server the test starts on it (from then on
    /// another process could take it, as with [`free_port`]).
    pub fn release(self) -> u16 {
        self.port
    }
}

/// A port that refuses connections until the test process ends: a
/// [`RefusedPort`] never given back, for configs that have no place to
/// keep the guard.
pub fn refused_for_good() -> u16 {
    let p = refused_port();
    let port = p.port;
    std::mem::forget(p);
    port
}

/// The ports of a gateway's listeners: `{proxy}`, `{admin}` and
/// `{metrics}` in a test config.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub proxy: u16,
    pub admin: u16,
    pub metrics: u16,
}

impl Ports {
    fn fresh() -> Ports {
        // Held together until all three are known, so they differ.
        let held = [listener_port(), listener_port(), listener_port()];
        let port = |i: usize| held[i].local_addr().expect("bound address").port();
        Ports {
            proxy: port(0),
            admin: port(1),
            metrics: port(2),
        }
    }

    /// `yaml` with the placeholders replaced by these ports.
    fn render(&self, yaml: &str) -> String {
        yaml.replace("{proxy}", &format!("127.0.0.1:{}", self.proxy))
            .replace("{admin}", &format!("127.0.0.1:{}", self.admin))
            .replace("{metrics}", &format!("127.0.0.1:{}", self.metrics))
    }
}

/// A free port for a gateway's listener, bound (the caller releases it
/// just before the gateway binds it). Taken below the kernel's ephemeral
/// range when there is room there: the kernel never hands such a port to
/// another socket (an outgoing connection, a bind to port 0), so between
/// the release and the gateway's bind only another test picking ports
/// this way could take it — this process walks the range in order, from
/// a place its id chooses. (From the ephemeral range, a port sometimes
/// went to a connection in between, and the gateway was started again:
/// a test watching what a start does saw it twice.) Falls back to port 0
/// when the ephemeral range starts too low to leave room.
pub fn listener_port() -> TcpListener {
    const LOW: u32 = 10_000;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let ephemeral_low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768);
    if ephemeral_low > LOW + 1_000 {
        let span = u64::from(ephemeral_low - LOW);
        let start = u64::from(std::process::id()) * 997;
        for _ in 0..span {
            let port = LOW as u64 + (start + NEXT.fetch_add(1, Relaxed)) % span;
            if let Ok(l) = TcpListener::bind(("127.0.0.1", port as u16)) {
                return l;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0").expect("free port")
}

/// A config file name no other test (or earlier run) uses.
fn config_file() -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!(
        "sluice-test-{}-{}-{nanos}.yaml",
        std::process::id(),
        SEQ.fetch_add(1, Relaxed)
    ))
}

/// Writes `yaml` (with `{proxy}`, `{admin}` and `{metrics}` replaced by free
/// addresses) to a temp file: for commands that bind nothing (`sluice
/// check`, a startup that fails). Returns the path and the proxy and admin
/// ports.
pub fn write_config(yaml: &str) -> (PathBuf, u16, u16) {
    let ports = Ports::fresh();
    let path = config_file();
    std::fs::write(&path, ports.render(yaml)).expect("write config");
    (path, ports.proxy, ports.admin)
}

/// The inodes of the sockets listening on `port` (any address), from
/// `/proc/net/tcp{,6}`; None without `/proc` (not Linux).
fn listening_inodes(port: u16) -> Option<Vec<u64>> {
    let port = format!(":{port:04X}");
    let mut inodes = Vec::new();
    std::fs::metadata("/proc/net/tcp").ok()?;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[1].ends_with(&port) && f[3] == "0A" {
                if let Ok(inode) = f[9].parse() {
                    inodes.push(inode);
                }
            }
        }
    }
    Some(inodes)
}

/// The inodes of the sockets process `pid` holds.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// Whether a gateway's standard error says a port was taken: Pingora
/// retries a busy address ("… is in use, will try again") and panics in the
/// listener's thread when `listen()` fails ("Address already in use").
fn says_port_taken(text: &str) -> bool {
    text.contains("is in use, will try again")
        || text.contains("still in use")
        || text.contains("Address already in use")
}

// ---------------------------------------------------------------- gateway

/// How a test gateway is started ([`Gateway::start_with`]).
#[derive(Clone, Copy)]
pub struct Launch<'a> {
    /// `RUST_LOG` of the process.
    pub level: &'a str,
    /// A file for the process's standard error; by default it goes to the
    /// test's standard error.
    pub stderr: Option<&'a Path>,
    /// The command line before the config file's path.
    pub args: &'a [&'a str],
    /// Extra environment of the process.
    pub env: &'a [(&'a str, &'a str)],
}

impl Default for Launch<'_> {
    fn default() -> Self {
        Launch {
            level: "warn",
            stderr: None,
            args: &["run", "-c"],
            env: &[],
        }
    }
}

/// How many times a gateway is started on fresh ports when one was taken.
const START_ATTEMPTS: usize = 5;

/// The standard error of a gateway whose output goes to the test's: copied
/// there line by line, the last lines kept for a failure's message.
#[derive(Default)]
struct StderrTail {
    lines: Mutex<std::collections::VecDeque<String>>,
    port_taken: AtomicBool,
}

impl StderrTail {
    fn follow(from: std::process::ChildStderr) -> Arc<StderrTail> {
        let tail = Arc::new(StderrTail::default());
        let sink = tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(std::io::stderr(), "{line}");
                if says_port_taken(&line) {
                    sink.port_taken.store(true, Relaxed);
                }
                let mut lines = sink.lines.lock().unwrap_or_else(|e| e.into_inner());
                if lines.len() == 200 {
                    lines.pop_front();
                }
                lines.push_back(line);
            }
        });
        tail
    }

    fn text(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().map(|l| format!("{l}\n")).collect()
    }
}

/// A running gateway process; killed on drop (its config file and admin
/// state file removed).
pub struct Gateway {
    child: Option<Child>,
    pub port: u16,
    pub admin_port: u16,
    pub metrics_port: u16,
    pub config_path: PathBuf,
    /// The config with its port placeholders, for a start on fresh ports.
    yaml: String,
    level: String,
    stderr_file: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stderr: Option<Arc<StderrTail>>,
}

/// A start that failed because another process had one of the ports.
struct PortTaken;

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_file(&self.config_path);
        let state = state_path(self);
        let _ = std::fs::remove_file(&state);
        let mut history = state.into_os_string();
        history.push(".history");
        let _ = std::fs::remove_dir_all(history);
    }
}

/// The `sluice` binary.
pub fn sluice_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sluice")
}

/// Runs `sluice check -c` on `yaml` (placeholders filled); its output.
pub fn sluice_check(yaml: &str) -> std::process::Output {
    let (path, _, _) = write_config(yaml);
    let out = Command::new(sluice_bin())
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("run sluice check");
    let _ = std::fs::remove_file(&path);
    out
}

impl Gateway {
    /// Starts the gateway with `yaml` and waits until each of its listeners
    /// answers.
    pub async fn start(yaml: &str) -> Gateway {
        Gateway::start_with(yaml, Launch::default()).await
    }

    /// Like [`Gateway::start`] with `RUST_LOG=level`, its standard error
    /// written to `stderr` when given.
    pub async fn start_logging(yaml: &str, level: &str, stderr: Option<&Path>) -> Gateway {
        Gateway::start_with(
            yaml,
            Launch {
                level,
                stderr,
                ..Launch::default()
            },
        )
        .await
    }

    /// Starts the gateway as `launch` says, on free ports for `{proxy}`,
    /// `{admin}` and `{metrics}`. Ports are picked free but bound only by
    /// the process, later: when another process took one in between, the
    /// gateway is started again on fresh ports.
    pub async fn start_with(yaml: &str, launch: Launch<'_>) -> Gateway {
        let mut gw = Gateway {
            child: None,
            port: 0,
            admin_port: 0,
            metrics_port: 0,
            config_path: config_file(),
            yaml: yaml.to_string(),
            level: launch.level.to_string(),
            stderr_file: launch.stderr.map(Path::to_path_buf),
            args: launch.args.iter().map(|a| a.to_string()).collect(),
            env: launch
                .env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            stderr: None,
        };
        gw.launch(true).await;
        gw
    }

    /// Starts the process, on fresh ports first when `fresh`, and again on
    /// fresh ones while a port turns out to be taken.
    async fn launch(&mut self, mut fresh: bool) {
        for attempt in 1..=START_ATTEMPTS {
            if fresh {
                let ports = Ports::fresh();
                std::fs::write(&self.config_path, ports.render(&self.yaml)).expect("write config");
                (self.port, self.admin_port, self.metrics_port) =
                    (ports.proxy, ports.admin, ports.metrics);
            }
            self.spawn(fresh);
            match self.wait_ready().await {
                Ok(()) => return,
                Err(PortTaken) => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "test gateway: a port was taken (attempt {attempt}), starting again on fresh ports"
                    );
                    self.kill9();
                    fresh = true;
                }
            }
        }
        panic!(
            "sluice found a port taken {START_ATTEMPTS} times in a row\n{}",
            self.stderr_text()
        );
    }

    /// Spawns the process on the config file as it is; its standard error
    /// file is truncated when `truncate` (a first start), appended to
    /// otherwise (a restart).
    fn spawn(&mut self, truncate: bool) {
        let err = match &self.stderr_file {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(truncate)
                    .append(!truncate)
                    .open(path)
                    .expect("stderr file"),
            ),
            None => Stdio::piped(),
        };
        let mut child = Command::new(sluice_bin())
            .args(&self.args)
            .arg(&self.config_path)
            .env("RUST_LOG", &self.level)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn sluice");
        self.stderr = child.stderr.take().map(StderrTail::follow);
        self.child = Some(child);
    }

    /// The process's standard error so far (its last lines when it goes to
    /// the test's).
    fn stderr_text(&self) -> String {
        match (&self.stderr_file, &self.stderr) {
            (Some(path), _) => std::fs::read_to_string(path).unwrap_or_default(),
            (None, Some(tail)) => tail.text(),
            (None, None) => String::new(),
        }
    }

    fn port_taken(&self) -> bool {
        match &self.stderr {
            Some(tail) if self.stderr_file.is_none() => tail.port_taken.load(Relaxed),
            _ => says_port_taken(&self.stderr_text()),
        }
    }

    /// Waits until each configured listener is bound by this process and
    /// answers: the proxy's `/healthz` and the admin's `/health` with 200,
    /// the metrics listener with anything. Pingora binds each service on its
    /// own thread, so they come up in any order.
    async fn wait_ready(&mut self) -> Result<(), PortTaken> {
        let deadline = Instant::now() + Duration::from_secs(30);
        // TLS listeners (tests/it/tls.rs) are probed over TLS, whatever
        // their certificate; one that asks for client certificates only
        // has to be bound.
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let text = std::fs::read_to_string(&self.config_path).unwrap_or_default();
        let https = |url: String, tls: bool| {
            if tls {
                url.replacen("http://", "https://", 1)
            } else {
                url
            }
        };
        let mut listeners = vec![(
            "proxy",
            self.port,
            https(self.url("/healthz"), text.contains("proxy_tls:")),
            true,
        )];
        if text.contains(&format!("127.0.0.1:{}", self.admin_port)) {
            let mtls = text.contains("client_ca:");
            let url = https(self.admin_url("/health"), text.contains("admin_tls:"));
            listeners.push(("admin", self.admin_port, url, !mtls));
        }
        if text.contains(&format!("127.0.0.1:{}", self.metrics_port)) {
            listeners.push((
                "metrics",
                self.metrics_port,
                self.metrics_url("/stats"),
                false,
            ));
        }
        let pid = self.pid();
        for (name, port, url, want_200) in listeners {
            loop {
                if self.port_taken() {
                    return Err(PortTaken);
                }
                if let Some(child) = self.child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        if self.port_taken() {
                            return Err(PortTaken);
                        }
                        panic!(
                            "sluice exited before its {name} listener was ready: {status}\n{}",
                            self.stderr_text()
                        );
                    }
                }
                // Only this process's listener counts: another one on the
                // port (a gateway of another test) means it was taken.
                let bound = match listening_inodes(port) {
                    Some(holders) => {
                        let ours = socket_inodes(pid);
                        if holders.iter().any(|i| !ours.contains(i)) {
                            return Err(PortTaken);
                        }
                        !holders.is_empty()
                    }
                    None => true,
                };
                if bound {
                    if name == "admin" && !want_200 {
                        break;
                    }
                    if let Ok(r) = client.get(&url).send().await {
                        if !want_200 || r.status() == 200 {
                            break;
                        }
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "sluice's {name} listener (port {port}) did not come up within 30 s\n{}",
                    self.stderr_text()
                );
                tokio::time::sleep(POLL).await;
            }
        }
        Ok(())
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    /// A URL on the dedicated metrics listener (`metrics.listen: "{metrics}"`).
    pub fn metrics_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.metrics_port)
    }

    /// `GET path` with the test key.
    pub async fn get(&self, client: &reqwest::Client, path: &str) -> reqwest::Response {
        client
            .get(self.url(path))
            .bearer_auth("sk-test")
            .send()
            .await
            .expect("get")
    }

    /// A small chat completion with the test key.
    pub async fn chat(&self, client: &reqwest::Client, stream: bool) -> reqwest::Response {
        post(client, self.url("/v1/chat/completions"))
            .json(&chat_body(stream))
            .send()
            .await
            .expect("chat")
    }

    /// The Prometheus text of `GET /metrics` with the metrics `token`
    /// (asserting a 200).
    pub async fn metrics(&self, client: &reqwest::Client, token: &str) -> String {
        let r = client
            .get(self.url("/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .expect("scrape");
        assert_eq!(r.status(), 200, "GET /metrics");
        r.text().await.expect("metrics body")
    }

    /// A streamed chat completion of `tokens` chunks, `chunk_ms` apart at
    /// the mock (`x-mock-tokens`, `x-mock-chunk-ms`).
    pub async fn slow_stream(
        &self,
        client: &reqwest::Client,
        tokens: u32,
        chunk_ms: u32,
    ) -> reqwest::Response {
        post(client, self.url("/v1/chat/completions"))
            .header("x-mock-tokens", tokens.to_string())
            .header("x-mock-chunk-ms", chunk_ms.to_string())
            .json(&chat_body(true))
            .send()
            .await
            .expect("stream")
    }

    /// Sends `signal` (`TERM`, `HUP`, …) to the gateway process.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{signal} failed");
    }

    /// Waits (bounded by `within`) for the process to exit.
    pub async fn exited(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(POLL).await;
        }
        None
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends raw bytes and returns the raw response (read until close or
    /// the first complete response head + content-length body).
    pub fn raw(&self, request: &[u8]) -> String {
        raw_to(self.port, request)
    }

    /// Stops the process and starts it again on the same config file and
    /// ports (the admin API's state file stays), then waits until it
    /// answers; on fresh ports if one was taken meanwhile.
    pub async fn restart(&mut self) {
        self.kill9();
        self.launch(false).await;
    }

    /// `kill -9` (SIGKILL): no shutdown of any kind.
    pub fn kill9(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------- configs

/// The `server` section of every test config: one thread, no grace period.
pub const TEST_SERVER: &str =
    "server:\n  threads: 1\n  grace_period_seconds: 0\n  graceful_shutdown_timeout_seconds: 1\n";

/// A catch-all route to pool `p`.
pub const CATCH_ALL: &str = "routes:\n  - {prefix: /, upstream: p}\n";

/// A pool entry for the config: one upstream server pointing at `mock`.
pub fn server(name: &str, pool: &str, port: u16, extra: &str) -> String {
    format!(
        "  - server_name: {name}\n    pool: {pool}\n    server_address: 127.0.0.1\n    server_port: {port}\n{extra}"
    )
}

/// A pool entry for a model provider's server (`provider: azure`,
/// `anthropic`, …) with its API key, pointing at a mock.
pub fn provider_server(name: &str, pool: &str, port: u16, provider: &str, api_key: &str) -> String {
    server(
        name,
        pool,
        port,
        &format!("    provider: {provider}\n    api_key: {api_key}\n"),
    )
}

/// A config with one namespace, auth on with `sk-test`, the given servers
/// and routes/extra sections appended.
pub fn config(servers: &[String], rest: &str) -> String {
    config_ns(servers, "", rest)
}

/// Like [`config`], with extra namespace entries (YAML list items).
pub fn config_ns(servers: &[String], namespaces: &str, rest: &str) -> String {
    format!(
        r#"{TEST_SERVER}listen:
  proxy: "{{proxy}}"
auth:
  enabled: true
  header: x-gw-token
  keys:
    - name: test
      key: sk-test
default_namespace: default
namespaces:
  - namespace_code: default
{namespaces}
upstream_servers:
{}
{rest}
"#,
        servers.join("\n")
    )
}

/// The most common config: [`config`] with one upstream server (`a` in pool
/// `p`, at `port`), the catch-all route and `rest` appended.
pub fn one_mock(port: u16, rest: &str) -> String {
    config(&[server("a", "p", port, "")], &format!("{CATCH_ALL}{rest}"))
}

/// `yaml` (from [`config`]) with the admin listener on `{admin}` too.
pub fn with_admin(yaml: &str) -> String {
    let proxy = "listen:\n  proxy: \"{proxy}\"\n";
    assert!(
        yaml.contains(proxy),
        "no proxy listener to add the admin's to"
    );
    yaml.replacen(
        proxy,
        "listen:\n  proxy: \"{proxy}\"\n  admin: \"{admin}\"\n",
        1,
    )
}

/// [`one_mock`] with the admin API on `{admin}` behind `token`, and `rest`
/// appended.
pub fn admin_config(port: u16, token: &str, rest: &str) -> String {
    with_admin(&one_mock(
        port,
        &format!("admin: {{tokens: [{token}]}}\n{rest}"),
    ))
}

/// Counts requests a mock has served.
pub fn served(m: &MockServer) -> u64 {
    m.state.requests.load(Relaxed)
}

/// An authorized client request builder.
pub fn post(client: &reqwest::Client, url: String) -> reqwest::RequestBuilder {
    client.post(url).bearer_auth("sk-test")
}

/// A small chat completion body.
pub fn chat_body(stream: bool) -> serde_json::Value {
    serde_json::json!({"model": "gpt-4o-mini", "stream": stream,
        "messages": [{"role": "user", "content": "hello there"}]})
}

/// The admin API's entity store next to a gateway's config file.
pub fn state_path(gw: &Gateway) -> PathBuf {
    let mut p = gw.config_path.clone().into_os_string();
    p.push(".state.json");
    p.into()
}

/// A client of a gateway's admin API, with its bearer token.
pub struct Admin {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    pub fn new(gw: &Gateway, token: &str) -> Admin {
        Admin {
            client: reqwest::Client::new(),
            base: gw.admin_url(""),
            token: token.to_string(),
        }
    }

    /// A request for `method path` with the token, to finish and [`Admin::send`].
    pub fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends `req`: the status and the answer (a JSON string when the
    /// answer is not JSON).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let r = req.send().await.expect("admin request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// `method path` with `body` as JSON.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call("DELETE", path, None).await
    }

    /// Creates the namespace `code` (named `name`); fails the test unless
    /// the API answers 200.
    pub async fn create_namespace(&self, name: &str, code: &str) -> Value {
        let body = serde_json::json!({"namespace_name": name, "namespace_code": code});
        let (st, v) = self.post("/api/v1/namespaces", body).await;
        assert_eq!(st, 200, "{v}");
        v
    }

    /// Waits until this instance lists the namespace `code` (`what` names
    /// the wait in the failure).
    pub async fn until_namespace(&self, what: &str, code: &str) {
        let quoted = format!("\"{code}\"");
        eventually(what, async || {
            let (_, v) = self.get("/api/v1/namespaces").await;
            v.to_string().contains(&quoted)
        })
        .await;
    }
}

// ------------------------------------------------------------------ mocks

/// Starts a mock upstream named `id` (on a port of its own: it binds port 0).
pub async fn mock(id: &str) -> MockServer {
    mock_with(MockOptions {
        id: id.into(),
        ..MockOptions::default()
    })
    .await
}

pub async fn mock_with(options: MockOptions) -> MockServer {
    MockServer::start("127.0.0.1:0", options)
        .await
        .expect("mock starts")
}

// -------------------------------------------------------------- raw HTTP

/// Sends raw bytes to `port` and returns the raw response (read until
/// close or the first complete response head + content-length body).
pub fn raw_to(port: u16, request: &[u8]) -> String {
    {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(request).expect("write");
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if complete(&out) {
                        break;
                    }
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn complete(resp: &[u8]) -> bool {
    let text = String::from_utf8_lossy(resp);
    let Some(head_end) = text.find("\r\n\r\n") else {
        return false;
    };
    let len = head_value(&text[..head_end], "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    resp.len() >= head_end + 4 + len
}

/// The value of header `name` in a raw HTTP message head.
pub fn head_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

// ------------------------------------------------------------- stores

/// A MySQL database and Redis key prefix of one test, dropped (database
/// and keys) when the guard goes, also after a failed assertion.
pub struct StoreGuard {
    pub db: String,
    pub prefix: String,
}

static STORE_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The MySQL server the store tests use (`SLUICE_TEST_MYSQL`, default root
/// without password on 127.0.0.1:3306).
pub fn mysql_base() -> String {
    std::env::var("SLUICE_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// The Redis the store tests use (`SLUICE_TEST_REDIS`).
pub fn redis_base() -> String {
    std::env::var("SLUICE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

impl StoreGuard {
    /// A fresh database name and key prefix.
    pub fn new() -> StoreGuard {
        let n = STORE_SEQ.fetch_add(1, Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tag = format!("{}_{n}_{nanos}", std::process::id());
        StoreGuard {
            db: format!("sluice_test_{tag}"),
            prefix: format!("sluice-test:{tag}:"),
        }
    }

    /// The `config_store` YAML section for this database (and Redis).
    pub fn yaml(&self, mysql_url: Option<&str>) -> String {
        let url = mysql_url.map_or_else(|| format!("{}/{}", mysql_base(), self.db), str::to_string);
        format!(
            "config_store:\n  kind: mysql\n  mysql_url: \"{url}\"\n  redis_url: \"{}\"\n  key_prefix: \"{}\"\n  poll_ms: 200\n  timeout_ms: 1000\n",
            redis_base(),
            self.prefix
        )
    }
}

impl Drop for StoreGuard {
    fn drop(&mut self) {
        let (db, prefix) = (self.db.clone(), self.prefix.clone());
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use mysql_async::prelude::Queryable;
                if let Ok(mut conn) = mysql_async::Conn::from_url(mysql_base()).await {
                    let _ = conn
                        .query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
                        .await;
                    let _ = conn.disconnect().await;
                }
                use fred::prelude::*;
                if let Ok(config) = Config::from_url(&redis_base()) {
                    if let Ok(client) = Builder::from_config(config).build() {
                        if client.init().await.is_ok() {
                            let keys: Vec<String> = client
                                .custom(
                                    fred::types::CustomCommand::new_static("KEYS", None, false),
                                    vec![format!("{prefix}*")],
                                )
                                .await
                                .unwrap_or_default();
                            for k in keys {
                                let _: Result<i64, _> = client.del(k).await;
                            }
                            let _ = client.quit().await;
                        }
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

// ---------------------------------------------------------------- SDKs

/// Runs `tests/sdk/{script}` with the `.venv-test` Python (official SDKs,
/// installed by `scripts/test-deps.sh`) against `base_url`; fails the test
/// with the script's output unless it exits 0.
pub async fn run_sdk_script(script: &str, base_url: String) {
    run_python(
        &format!("sdk/{script}"),
        vec![base_url],
        "SDK script failed",
    )
    .await;
}

/// Runs `tests/{script}` with the `.venv-test` Python (installed by
/// `scripts/test-deps.sh`) and `args`, for at most 4 minutes; fails the
/// test with `failure` and the script's output unless it exits 0.
pub async fn run_python(script: &str, args: Vec<String>, failure: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = format!("{root}/.venv-test/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run ./scripts/test-deps.sh (make test does)"
    );
    let path = format!("{root}/tests/{script}");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .arg("240")
            .arg(python)
            .arg(path)
            .args(args)
            .output()
            .expect("run python")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{failure}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
