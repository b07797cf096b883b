//! Test harness: starts the real `sluice` binary on free ports with a config
//! written for the test, against in-process mock upstreams
//! (`sluice::mock::MockServer`), and waits until it answers `/healthz`.
#![allow(dead_code)]

use sluice::mock::{MockOptions, MockServer};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts a mock upstream named `id`.
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

/// A running gateway process; killed on drop.
pub struct Gateway {
    child: Child,
    pub port: u16,
    pub admin_port: u16,
    pub config_path: std::path::PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config_path);
    }
}

/// The `sluice` binary.
pub fn sluice_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sluice")
}

/// Writes `yaml` (with `{proxy}` and `{admin}` replaced by free addresses) to
/// a temp file.
pub fn write_config(yaml: &str) -> (std::path::PathBuf, u16, u16) {
    let port = free_port();
    let admin_port = free_port();
    let text = yaml
        .replace("{proxy}", &format!("127.0.0.1:{port}"))
        .replace("{admin}", &format!("127.0.0.1:{admin_port}"));
    let path = std::env::temp_dir().join(format!("sluice-test-{}-{port}.yaml", std::process::id()));
    std::fs::write(&path, text).expect("write config");
    (path, port, admin_port)
}

impl Gateway {
    /// Starts the gateway with `yaml` and waits for `/healthz`.
    pub async fn start(yaml: &str) -> Gateway {
        Gateway::start_logging(yaml, "warn", None).await
    }

    /// Like [`Gateway::start`] with `RUST_LOG=level`, its standard error
    /// written to `stderr` when given.
    pub async fn start_logging(
        yaml: &str,
        level: &str,
        stderr: Option<&std::path::Path>,
    ) -> Gateway {
        let (config_path, port, admin_port) = write_config(yaml);
        let err = match stderr {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("stderr file")),
            None => Stdio::inherit(),
        };
        let child = Command::new(sluice_bin())
            .args(["run", "-c"])
            .arg(&config_path)
            .env("RUST_LOG", level)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn sluice");
        let mut gw = Gateway {
            child,
            port,
            admin_port,
            config_path,
        };
        gw.wait_ready().await;
        gw
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sluice exited before it was ready: {status}");
            }
            if let Ok(r) = client.get(self.url("/healthz")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "sluice did not become ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Pingora starts each service (and binds its listener) on its own
        // thread: the admin listener may come up after the proxy's.
        let admin = format!("127.0.0.1:{}", self.admin_port);
        let has_admin =
            std::fs::read_to_string(&self.config_path).is_ok_and(|text| text.contains(&admin));
        if !has_admin {
            return;
        }
        loop {
            if let Ok(r) = client.get(self.admin_url("/health")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the admin listener did not come up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
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

    /// Sends `signal` (`TERM`, `HUP`, …) to the gateway process.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{signal} failed");
    }

    /// Waits (bounded by `within`) for the process to exit.
    pub async fn exited(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends raw bytes and returns the raw response (read until close or
    /// the first complete response head + content-length body).
    pub fn raw(&self, request: &[u8]) -> String {
        raw_to(self.port, request)
    }
}

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

/// A catch-all route to pool `p`.
pub const CATCH_ALL: &str = "routes:\n  - {prefix: /, upstream: p}\n";

/// A pool entry for the config: one upstream server pointing at `mock`.
pub fn server(name: &str, pool: &str, port: u16, extra: &str) -> String {
    format!(
        "  - server_name: {name}\n    pool: {pool}\n    server_address: 127.0.0.1\n    server_port: {port}\n{extra}"
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
        r#"server:
  threads: 1
  grace_period_seconds: 0
  graceful_shutdown_timeout_seconds: 1
listen:
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
pub fn state_path(gw: &Gateway) -> std::path::PathBuf {
    let mut p = gw.config_path.clone().into_os_string();
    p.push(".state.json");
    p.into()
}

impl Gateway {
    /// Stops the process and starts it again on the same config file and
    /// ports (the admin API's state file stays), then waits for `/healthz`.
    pub async fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Command::new(sluice_bin())
            .args(["run", "-c"])
            .arg(&self.config_path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sluice");
        self.wait_ready().await;
    }
}

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

impl Gateway {
    /// `kill -9` (SIGKILL): no shutdown of any kind.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tests/sdk/{script}` with the `.venv-test` Python (official SDKs,
/// installed by `scripts/test-deps.sh`) against `base_url`; fails the test
/// with the script's output unless it exits 0.
pub async fn run_sdk_script(script: &str, base_url: String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = format!("{root}/.venv-test/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run ./scripts/test-deps.sh (make test does)"
    );
    let path = format!("{root}/tests/sdk/{script}");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(path)
            .arg(base_url)
            .output()
            .expect("run python")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "SDK script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
