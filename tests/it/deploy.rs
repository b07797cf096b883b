//! The deployment files and the container's entry points: the Kubernetes
//! manifests and compose files checked by `deploy/check.py` (schemas,
//! files, variables), the container configs passing `sluice check
//! --strict` with the example environment, `sluice health` as the image's
//! health check, and `--state-dir` (`SLUICE_STATE_DIR`) keeping the admin
//! API's store out of the config's directory.

use crate::common::*;
use serde_json::json;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn example_env(path: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(format!("{ROOT}/{path}"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn manifests_and_compose_files_pass_their_checks() {
    let python = format!("{ROOT}/.venv-test/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run ./scripts/test-deps.sh (make test does)"
    );
    let out = Command::new(python)
        .arg(format!("{ROOT}/deploy/check.py"))
        .arg(ROOT)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "deploy/check.py:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn container_configs_pass_sluice_check_with_the_example_environment() {
    let cases = [
        ("deploy/sluice.yaml", "deploy/compose/env.example"),
        (
            "deploy/sluice-fleet.yaml",
            "deploy/kubernetes/secrets.env.example",
        ),
    ];
    for (config, env) in cases {
        let out = Command::new(sluice_bin())
            .args(["check", "--strict", "-c", &format!("{ROOT}/{config}")])
            .env_clear()
            .envs(example_env(env))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{config} with {env}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Without the environment it refuses, naming what is missing.
        let out = Command::new(sluice_bin())
            .args(["check", "-c", &format!("{ROOT}/{config}")])
            .env_clear()
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("SLUICE_API_KEY"));
    }
    let dockerfile = std::fs::read_to_string(format!("{ROOT}/Dockerfile")).unwrap();
    for needed in [
        "COPY deploy/sluice.yaml /etc/sluice/sluice.yaml",
        "--profile optimized",
        "USER sluice",
        "VOLUME [\"/var/lib/sluice\"]",
        "SLUICE_STATE_DIR=/var/lib/sluice",
        "HEALTHCHECK",
        "\"sluice\", \"health\"",
    ] {
        assert!(dockerfile.contains(needed), "Dockerfile lacks {needed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probe_and_state_dir() {
    let m = mock("a").await;
    let state = std::env::temp_dir().join(format!(
        "sluice-state-{}-{}",
        std::process::id(),
        m.addr.port()
    ));
    std::fs::create_dir_all(&state).unwrap();
    let dir = state.display().to_string();
    let gw = Gateway::start_with(
        &admin_config(m.addr.port(), "dep-tok", ""),
        Launch {
            args: &["run", "--state-dir", &dir, "-c"],
            ..Launch::default()
        },
    )
    .await;
    let probe = |url: String| {
        Command::new(sluice_bin())
            .args(["health", &url])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(probe(gw.url("/healthz")));
    assert!(!probe(format!(
        "http://127.0.0.1:{}/healthz",
        refused_for_good()
    )));
    // An admin change is stored under the state directory, not next to
    // the config file.
    let api = Admin::new(&gw, "dep-tok");
    let (s, v) = api
        .post(
            "/api/v1/namespaces",
            json!({"namespace_name": "T", "namespace_code": "t"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let name = gw
        .config_path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let stored = state.join(format!("{name}.state.json"));
    assert!(stored.exists(), "{} missing", stored.display());
    assert!(!state_path(&gw).exists());
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn install_writes_a_hardened_unit_that_systemd_accepts_and_uninstall_removes_it() {
    let root = std::env::temp_dir().join(format!("sluice-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let config = format!("{ROOT}/conf/sluice.yaml");
    let run = |args: &[&str]| {
        let out = Command::new(sluice_bin()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "sluice {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let r = root.display().to_string();
    run(&["install", "--root", &r, "-c", &config, "--user", "sluice"]);
    let unit_path = root.join("etc/systemd/system/sluice.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    for line in [
        "User=sluice",
        "Type=notify",
        "NotifyAccess=all",
        "Restart=on-failure",
        "LimitNOFILE=1048576",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        &format!("ReadWritePaths={}", root.join("var/lib/sluice").display()),
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        &format!(
            "ExecStart={} run -c {}",
            root.join("usr/local/bin/sluice").display(),
            root.join("etc/sluice/sluice.yaml").display()
        ),
    ] {
        assert!(unit.contains(line), "the unit lacks {line}:\n{unit}");
    }
    assert!(root.join("usr/local/bin/sluice").exists());
    assert!(root.join("etc/sluice/sluice.yaml").exists());
    assert!(root.join("var/lib/sluice").is_dir());
    // systemd's own check of the unit, where systemd-analyze exists.
    match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit_path)
        .output()
    {
        Ok(out) => assert!(
            out.status.success() && out.stderr.is_empty(),
            "systemd-analyze verify: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => {
            eprintln!("systemd-analyze is not installed: the unit was not verified by systemd")
        }
    }
    // Installing again keeps the config already there.
    let again = run(&["install", "--root", &r, "-c", &config]);
    assert!(again.contains("kept"), "{again}");
    let out = run(&["uninstall", "--root", &r]);
    assert!(out.contains("kept"), "{out}");
    assert!(!unit_path.exists() && !root.join("usr/local/bin/sluice").exists());
    assert!(root.join("etc/sluice/sluice.yaml").exists());
    run(&["uninstall", "--root", &r, "--purge"]);
    assert!(!root.join("etc/sluice").exists() && !root.join("var/lib/sluice").exists());
    let _ = std::fs::remove_dir_all(&root);
}
