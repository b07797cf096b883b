//! The `sluice` command: `run` the gateway, `check` a config, or run the
//! `mock` LLM upstream.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the request path allocates small,
/// short-lived objects (headers, keys, JSON values), where glibc spends
/// ~100-150 instructions per malloc/free pair against mimalloc's ~20-30
/// (measured with `load-tests/cost.sh`, see load-tests/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: an AI (LLM) API gateway on Pingora"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `sluice --config FILE` is `sluice run -c FILE`.
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the gateway.
    Run {
        /// Config file.
        #[arg(short, long, default_value = "conf/sluice.yaml")]
        config: String,
        /// Replace the stored entities (namespaces, servers, matchers,
        /// rules, routes, fragments) with the YAML's, then start.
        #[arg(long)]
        reimport_yaml: bool,
        /// Directory of the admin API's file store (`<config name>.state.json`);
        /// default: next to the config file.
        #[arg(long, env = "SLUICE_STATE_DIR", value_name = "DIR")]
        state_dir: Option<String>,
        /// Take the listening sockets over from the running gateway
        /// (zero-downtime upgrade): start this, then send the old process
        /// SIGQUIT; it hands them over on `server.upgrade_sock` and drains.
        #[arg(long)]
        upgrade: bool,
    },
    /// Probe a running gateway: GET the URL, exit 0 on a 2xx answer within
    /// 3 s, 1 otherwise (container health checks; no curl needed).
    Health {
        #[arg(default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
    /// Validate a config file: list every error (exit 2) and every
    /// warning (what could never take effect yet; exit 0 unless --strict).
    Check {
        /// Config file.
        #[arg(short, long, default_value = "conf/sluice.yaml")]
        config: String,
        /// Fail (exit 1) on warnings too.
        #[arg(long)]
        strict: bool,
    },
    /// Run a mock LLM upstream (OpenAI, Azure and Anthropic wire formats).
    Mock {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: String,
        /// Delay before each response header, in ms.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Completion tokens per answer.
        #[arg(long, default_value_t = 16)]
        tokens: usize,
        /// Gap between SSE chunks, in ms.
        #[arg(long, default_value_t = 0)]
        chunk_ms: u64,
        /// Name sent in the `x-mock-id` response header.
        #[arg(long, default_value = "mock")]
        id: String,
        /// Worker threads.
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Answer every N-th model call with --fail-status (1 = all; 0 = never).
        #[arg(long, default_value_t = 0)]
        fail_every: u64,
        /// Status of the failures --fail-every makes, in the provider's error format.
        #[arg(long, default_value_t = 503, value_parser = clap::value_parser!(u16).range(400..600))]
        fail_status: u16,
        /// Answer model calls beyond N per second with 429 and `retry-after: 1` (0 = no limit).
        #[arg(long, default_value_t = 0)]
        rate_limit_rps: u64,
    },
    /// Install the gateway as a systemd service: the binary in
    /// /usr/local/bin, the config in /etc/sluice, state in /var/lib/sluice,
    /// a system user, a hardened unit (`systemctl enable --now sluice`).
    Install {
        /// The config file the service runs with (copied to /etc/sluice).
        #[arg(short, long, default_value = "conf/sluice.yaml")]
        config: String,
        /// The service account (created when missing).
        #[arg(long, default_value = "sluice")]
        user: String,
        /// Make every path under this directory instead (packaging); the
        /// user and systemd steps are skipped.
        #[arg(long, default_value = "/")]
        root: String,
    },
    /// Remove what `sluice install` made (config and state kept unless --purge).
    Uninstall {
        #[arg(long, default_value = "sluice")]
        user: String,
        #[arg(long, default_value = "/")]
        root: String,
        /// Remove /etc/sluice and /var/lib/sluice too.
        #[arg(long)]
        purge: bool,
    },
    /// Print the argon2id hash of a password read from standard input
    /// (for `users[].password_hash` in the YAML).
    HashPassword,
    /// Run a Bridge agent: dial the gateway's tunnel and serve the tools
    /// of a YAML file (local commands and local MCP servers over stdio).
    Agent {
        /// The gateway's proxy listener, e.g. `https://gw.example.com`.
        #[arg(long, env = "SLUICE_GATEWAY")]
        gateway: String,
        /// The agent token (`bat_…`), from `POST /internal/v1/bridge/agent-token`.
        #[arg(long, env = "SLUICE_AGENT_TOKEN", hide_env_values = true)]
        token: String,
        /// The agent's id (the token's).
        #[arg(long)]
        id: String,
        /// The tools file.
        #[arg(long, default_value = "agent.yaml")]
        tools: String,
        /// PEM certificates to trust for the gateway's TLS (a private CA),
        /// besides the public web roots.
        #[arg(long, env = "SLUICE_AGENT_CA_FILE")]
        ca_file: Option<String>,
    },
}

/// Prints what an install step did, or its error.
fn report(result: Result<Vec<String>, String>) -> ExitCode {
    match result {
        Ok(done) => {
            for line in done {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sluice: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `sluice health URL`.
fn health(url: &str) -> ExitCode {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::FAILURE;
    };
    let ok = rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(3))
            .build()
            .ok()?;
        let r = client.get(url).send().await.ok()?;
        Some(r.status().is_success())
    });
    match ok {
        Some(true) => ExitCode::SUCCESS,
        _ => {
            eprintln!("sluice health: {url} is not healthy");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &str) -> Result<sluice::config::Config, ExitCode> {
    sluice::config::load_file(path).map_err(|problems| {
        eprintln!("{path}: {} problem(s):", problems.len());
        for p in &problems {
            eprintln!("  - {p}");
        }
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    sluice::alloc::no_huge_pages();
    sluice::logging::init();
    let cli = Cli::parse();
    let command = match (cli.command, cli.config) {
        (Some(command), _) => command,
        (None, Some(config)) => Command::Run {
            config,
            reimport_yaml: false,
            state_dir: std::env::var("SLUICE_STATE_DIR").ok(),
            upgrade: false,
        },
        (None, None) => {
            eprintln!("sluice: a command is needed (run, check, mock), or --config FILE to run; see --help");
            return ExitCode::from(2);
        }
    };
    match command {
        // Load (parse, references, ranges) and build (compile matchers,
        // rules, proxy rules, the catalog): what a start would do, every
        // problem reported at once.
        Command::Check { config, strict } => {
            let (problems, warnings) = match sluice::config::read_file(&config) {
                Ok((cfg, mut problems)) => {
                    let live = sluice::live::LiveState::local();
                    let warnings = cfg.warnings();
                    match sluice::state::Snapshot::build(cfg, &live) {
                        Ok(built) => (problems, built.warnings),
                        Err(built) => {
                            // A key already reported (a missing pool, say)
                            // is not reported again by the build.
                            let known: Vec<String> =
                                problems.iter().map(|p| p.path.clone()).collect();
                            problems.extend(built.into_iter().filter(|p| !known.contains(&p.path)));
                            (problems, warnings)
                        }
                    }
                }
                Err(problems) => (problems, Vec::new()),
            };
            if !problems.is_empty() {
                eprintln!("{config}: {} problem(s):", problems.len());
                for p in &problems {
                    eprintln!("  - {p}");
                }
            }
            if !warnings.is_empty() {
                eprintln!(
                    "{config}: {} warning(s), configured but never taking effect yet:",
                    warnings.len()
                );
                for w in &warnings {
                    eprintln!("  - {w}");
                }
            }
            if !problems.is_empty() {
                ExitCode::from(2)
            } else if strict && !warnings.is_empty() {
                ExitCode::from(1)
            } else {
                println!("{config}: OK");
                ExitCode::SUCCESS
            }
        }
        Command::Health { url } => health(&url),
        Command::Install { config, user, root } => {
            let layout = sluice::install::Layout {
                root: root.into(),
                user,
                config: config.into(),
            };
            report(sluice::install::install(&layout))
        }
        Command::Uninstall { user, root, purge } => {
            let layout = sluice::install::Layout {
                root: root.into(),
                user,
                config: "sluice.yaml".into(),
            };
            report(sluice::install::uninstall(&layout, purge))
        }
        Command::Run {
            config,
            reimport_yaml,
            state_dir,
            upgrade,
        } => {
            let cfg = match load(&config) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            let state = match state_dir.filter(|d| !d.is_empty()) {
                Some(dir) => {
                    let name = std::path::Path::new(&config)
                        .file_name()
                        .map_or("sluice.yaml".into(), |n| n.to_string_lossy().into_owned());
                    std::path::Path::new(&dir).join(format!("{name}.state.json"))
                }
                None => sluice::store::config_file::state_path_for(&config),
            };
            let path = Some(std::path::PathBuf::from(&config));
            match sluice::server::run_with_state(cfg, path, Some(state), reimport_yaml, upgrade) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sluice: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Agent {
            gateway,
            token,
            id,
            tools,
            ca_file,
        } => agent(gateway, token, id, &tools, ca_file.as_deref()),
        Command::HashPassword => {
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).is_err() {
                eprintln!("sluice hash-password: cannot read standard input");
                return ExitCode::FAILURE;
            }
            let password = line.trim_end_matches(['\r', '\n']);
            if password.chars().count() < sluice::identity::password::MIN_LEN {
                eprintln!(
                    "sluice hash-password: a password needs at least {} characters",
                    sluice::identity::password::MIN_LEN
                );
                return ExitCode::from(2);
            }
            match sluice::identity::password::hash(password) {
                Ok(h) => {
                    println!("{h}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("sluice hash-password: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Mock {
            listen,
            latency_ms,
            tokens,
            chunk_ms,
            id,
            threads,
            fail_every,
            fail_status,
            rate_limit_rps,
        } => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if threads > 0 {
                builder.worker_threads(threads);
            }
            let rt = match builder.enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("sluice mock: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let options = sluice::mock::MockOptions {
                latency_ms,
                tokens,
                chunk_ms,
                id,
                fail_every,
                fail_status,
                rate_limit_rps,
            };
            match rt.block_on(sluice::mock::run(&listen, options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sluice mock: cannot listen on {listen}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `sluice agent`: runs until the token is refused (exit 1) or the
/// process is stopped.
fn agent(
    gateway: String,
    token: String,
    id: String,
    tools: &str,
    ca_file: Option<&str>,
) -> ExitCode {
    let file = match std::fs::read_to_string(tools)
        .map_err(|e| e.to_string())
        .and_then(|t| {
            serde_yaml::from_str::<sluice::bridge::agent::AgentFile>(&t).map_err(|e| e.to_string())
        }) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sluice agent: {tools}: {e}");
            return ExitCode::from(2);
        }
    };
    let ca_pem = match ca_file.map(std::fs::read).transpose() {
        Ok(pem) => pem,
        Err(e) => {
            eprintln!("sluice agent: --ca-file: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    sluice::logging::init();
    let opts = sluice::bridge::agent::AgentOptions {
        gateway,
        token,
        id,
        file,
        ca_pem,
    };
    match rt.block_on(sluice::bridge::agent::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice agent: {e}");
            ExitCode::FAILURE
        }
    }
}
