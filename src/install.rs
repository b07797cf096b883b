//! `sluice install` and `sluice uninstall`: the gateway as a systemd
//! service. Install copies the running binary to `bin_dir`, creates the
//! service user (a system account without a shell) and the config and
//! state directories, copies the config file when it is elsewhere, and
//! writes a unit: restart on failure, a high `LimitNOFILE`, reload by
//! SIGHUP, a drain by SIGTERM with room for it (`TimeoutStopSec`), and
//! hardening (`NoNewPrivileges`, `ProtectSystem=strict` with only the state
//! directory writable, private `/tmp` and devices, no kernel tunables).
//! Uninstall stops and removes the unit, the binary it installed and the
//! user; the config and state are kept unless `purge`.
//!
//! With a `root` other than `/` (packaging, tests) every path is made
//! under it, and the user and systemd steps are skipped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where and as whom the service is installed.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Prefix of every path (`/` on a real install).
    pub root: PathBuf,
    /// The service account.
    pub user: String,
    /// The config file the service runs with (copied into `config_dir`
    /// when it lives elsewhere).
    pub config: PathBuf,
}

impl Layout {
    fn at(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    fn real(&self) -> bool {
        self.root == Path::new("/")
    }

    pub fn unit_path(&self) -> PathBuf {
        self.at("/etc/systemd/system/sluice.service")
    }

    pub fn binary(&self) -> PathBuf {
        self.at("/usr/local/bin/sluice")
    }

    pub fn config_dir(&self) -> PathBuf {
        self.at("/etc/sluice")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.at("/var/lib/sluice")
    }

    /// The config file as the service sees it.
    pub fn installed_config(&self) -> PathBuf {
        let name = self
            .config
            .file_name()
            .map_or("sluice.yaml".into(), |n| n.to_string_lossy().into_owned());
        self.config_dir().join(name)
    }

    /// The unit file's text.
    pub fn unit(&self) -> String {
        let bin = self.binary().display().to_string();
        let config = self.installed_config().display().to_string();
        let state = self.state_dir().display().to_string();
        let env = self.config_dir().join("sluice.env").display().to_string();
        let mut u = String::new();
        let _ = write!(
            u,
            "# Written by `sluice install`; `sluice uninstall` removes it.
[Unit]
Description=Sluice AI gateway
After=network-online.target
Wants=network-online.target

[Service]
# Ready when it says so; after an upgrade (`systemctl kill -s USR2 sluice`:
# the binary on disk is started, takes the listeners over and reports
# itself as the main process) the old one drains and exits.
Type=notify
NotifyAccess=all
User={user}
Group={user}
# Credentials (SLUICE_API_KEY, SLUICE_ADMIN_TOKEN, ...): one VAR=value per line.
EnvironmentFile=-{env}
Environment=SLUICE_STATE_DIR={state}
ExecStartPre={bin} check -c {config}
ExecStart={bin} run -c {config}
# Reload: the config file's settings, certificates, the access log.
ExecReload=/bin/kill -HUP $MAINPID
# Drain: requests and streams in flight finish (grace period + drain timeout).
KillSignal=SIGTERM
TimeoutStopSec=90
Restart=on-failure
RestartSec=2
LimitNOFILE=1048576
# Ports below 1024 without root.
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={state}
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
",
            user = self.user,
        );
        u
    }
}

fn run(what: &str, cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn user_exists(user: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(user)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs the service; returns what was done, one step per line.
pub fn install(layout: &Layout) -> Result<Vec<String>, String> {
    let mut done = Vec::new();
    let exe = std::env::current_exe().map_err(|e| format!("the running binary: {e}"))?;
    if !layout.config.exists() {
        return Err(format!("{}: no such config file", layout.config.display()));
    }
    for dir in [
        layout.config_dir(),
        layout.state_dir(),
        layout
            .binary()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        layout
            .unit_path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    ] {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    if exe != layout.binary() {
        std::fs::copy(&exe, layout.binary())
            .map_err(|e| format!("{}: {e}", layout.binary().display()))?;
        done.push(format!("binary: {}", layout.binary().display()));
    }
    let target = layout.installed_config();
    let same = std::fs::canonicalize(&layout.config).ok() == std::fs::canonicalize(&target).ok();
    if !same {
        if target.exists() {
            done.push(format!("config: {} kept (already there)", target.display()));
        } else {
            std::fs::copy(&layout.config, &target)
                .map_err(|e| format!("{}: {e}", target.display()))?;
            done.push(format!("config: {}", target.display()));
        }
    }
    if layout.real() {
        if !user_exists(&layout.user) {
            run(
                "useradd",
                Command::new("useradd")
                    .args([
                        "--system",
                        "--no-create-home",
                        "--shell",
                        "/usr/sbin/nologin",
                    ])
                    .args(["--home-dir", "/var/lib/sluice"])
                    .arg(&layout.user),
            )?;
            done.push(format!("user: {}", layout.user));
        }
        run(
            "chown",
            Command::new("chown")
                .arg("-R")
                .arg(format!("{0}:{0}", layout.user))
                .arg(layout.state_dir()),
        )?;
    }
    std::fs::write(layout.unit_path(), layout.unit())
        .map_err(|e| format!("{}: {e}", layout.unit_path().display()))?;
    done.push(format!("unit: {}", layout.unit_path().display()));
    if layout.real() && Path::new("/run/systemd/system").exists() {
        run(
            "systemctl daemon-reload",
            Command::new("systemctl").arg("daemon-reload"),
        )?;
        done.push("systemd: reloaded; start with `systemctl enable --now sluice`".into());
    }
    Ok(done)
}

/// Removes the service (and, with `purge`, its config and state).
pub fn uninstall(layout: &Layout, purge: bool) -> Result<Vec<String>, String> {
    let mut done = Vec::new();
    let systemd = layout.real() && Path::new("/run/systemd/system").exists();
    if systemd {
        // Stopping drains; a unit that is not there or not running is fine.
        let _ = Command::new("systemctl")
            .args(["disable", "--now", "sluice"])
            .output();
    }
    for file in [layout.unit_path(), layout.binary()] {
        match std::fs::remove_file(&file) {
            Ok(()) => done.push(format!("removed {}", file.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", file.display())),
        }
    }
    if systemd {
        run(
            "systemctl daemon-reload",
            Command::new("systemctl").arg("daemon-reload"),
        )?;
    }
    if layout.real() && user_exists(&layout.user) {
        run("userdel", Command::new("userdel").arg(&layout.user))?;
        done.push(format!("removed user {}", layout.user));
    }
    if purge {
        for dir in [layout.config_dir(), layout.state_dir()] {
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                done.push(format!("removed {}", dir.display()));
            }
        }
    } else {
        done.push(format!(
            "kept {} and {} (--purge removes them)",
            layout.config_dir().display(),
            layout.state_dir().display()
        ));
    }
    Ok(done)
}
