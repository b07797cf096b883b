//! The admin console (`/ui` on the admin listener) in a real browser:
//! `tests/browser/console.py` drives headless Chromium through Selenium
//! and Debian's chromedriver (both installed by `scripts/test-deps.sh`)
//! against the real binary: sign-in, a namespace with a matcher and a rate
//! rule made through the forms, traffic seen on the overview and in the
//! namespace's usage, a dry-run, a restore, the audit log, a phone-width
//! layout, no Content-Security-Policy violation. Screenshots of each page
//! land in `target/console-screenshots/` (the README shows some).

use crate::common::*;

const TOKEN: &str = "console-admin-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_edits_shows_traffic_and_restores() {
    let a = mock("a").await;
    let yaml = admin_config(
        a.addr.port(),
        &format!("{{name: console, token: {TOKEN}}}"),
        "",
    );
    // Sign-in on, for the admin user's part of the flow.
    let head = "auth:\n  enabled: true\n";
    assert!(yaml.contains(head));
    let yaml = yaml.replacen(
        head,
        &format!("{head}  jwt: {{secret: \"console-jwt-secret-0123456789abcdef\"}}\n"),
        1,
    );
    let gw = Gateway::start(&yaml).await;
    let shots = format!("{}/target/console-screenshots", env!("CARGO_MANIFEST_DIR"));
    let args = vec![
        gw.admin_url(""),
        gw.url(""),
        TOKEN.to_string(),
        "sk-test".to_string(),
        shots.clone(),
    ];
    let failure = format!("console flow failed (screenshot and HTML in {shots})");
    run_python("browser/console.py", args, &failure).await;
    // What the flow did went through the admin API, as the audit log says.
    let api = Admin::new(&gw, TOKEN);
    let (_, log) = api.get("/api/v1/audit?limit=500").await;
    let actions: Vec<String> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {} {}", e["cause"], e["entity"], e["operation"]))
        .collect();
    for want in [
        "\"change\" \"namespaces\" \"create\"",
        "\"change\" \"matchers\" \"create\"",
        "\"change\" \"rules\" \"create\"",
        "\"restore\" \"namespaces\" \"delete\"",
    ] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
    }
    assert!(log["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"] == "token:console"));
}
