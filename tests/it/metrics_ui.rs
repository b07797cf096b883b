//! `/metrics/ui` in a real browser: headless Chromium (Debian's
//! `chromium`, installed by `scripts/test-deps.sh`) loads the page from the
//! gateway, the page fetches `/metrics/summary` with the token from its URL
//! fragment, and the test asserts on the rendered document: the figures a
//! person would read in the tables. The DOM is dumped repeatedly until the
//! data shows or a deadline passes (no fixed sleeps).

use crate::common::*;
use std::process::Command;
use std::time::Duration;

const TOKEN: &str = "ui-metrics-token";

pub(crate) fn chromium() -> String {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if !found.is_empty() {
            return found;
        }
    }
    panic!("no chromium on this machine: run scripts/test-deps.sh (or `make test`)");
}

/// The page's document after its scripts ran (up to a few seconds of
/// virtual time, which also lets its fetch complete).
fn dump_dom(browser: &str, url: &str) -> String {
    let profile =
        std::env::temp_dir().join(format!("sluice-ui-{}-{}", std::process::id(), free_port()));
    let out = Command::new("timeout")
        .arg("60")
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    let _ = std::fs::remove_dir_all(&profile);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Dumps the page until `cond` holds on its document.
pub(crate) fn render_until(
    browser: &str,
    url: &str,
    what: &str,
    cond: impl Fn(&str) -> bool,
) -> String {
    eventually_blocking(
        Duration::from_secs(120),
        &format!("the page showing {what}"),
        || {
            let dom = dump_dom(browser, url);
            if cond(&dom) {
                Ok(dom)
            } else {
                Err(dom)
            }
        },
    )
}

/// The texts of the cells of the table row whose first cell is `first`.
pub(crate) fn row(dom: &str, first: &str) -> Option<Vec<String>> {
    let start = dom.find(&format!("<tr><td>{first}</td>"))?;
    let end = start + dom[start..].find("</tr>")?;
    Some(
        dom[start..end]
            .split("<td")
            .skip(1)
            .map(|cell| {
                let inner = cell.split_once('>').map_or("", |(_, rest)| rest);
                let inner = inner.split("</td>").next().unwrap_or("");
                // Cells holding markup (the sparkline) reduce to their text.
                let mut text = String::new();
                let mut in_tag = false;
                for c in inner.chars() {
                    match c {
                        '<' => in_tag = true,
                        '>' => in_tag = false,
                        c if !in_tag => text.push(c),
                        _ => {}
                    }
                }
                text
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_ui_shows_live_figures_in_chromium() {
    let browser = chromium();
    let m = mock("m1").await;
    let yaml = config(
        &[server("m1", "p", m.addr.port(), "")],
        &format!("{CATCH_ALL}metrics:\n  token: {TOKEN}\n"),
    );
    let gw = Gateway::start(&yaml).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let r = gw.chat(&client, false).await;
        assert_eq!(r.status(), 200);
        r.bytes().await.expect("body");
    }
    let page = gw.url("/metrics/ui");

    // Without a valid token the page says so and shows no figures.
    let dom = render_until(
        &browser,
        &format!("{page}#token=wrong"),
        "the refusal",
        |d| d.contains("The metrics token was refused."),
    );
    assert!(
        row(&dom, "default").is_none(),
        "figures shown without a token"
    );

    // With the token: the namespace and route rows carry the traffic sent.
    let url = format!("{page}#token={TOKEN}");
    let dom = render_until(&browser, &url, "3 requests for namespace default", |d| {
        row(d, "default").is_some_and(|cells| cells.get(1).map(String::as_str) == Some("3"))
    });
    // The page polls: within the 5 s of virtual time it loaded the summary
    // more than once.
    let loads = dom
        .split("loads: ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    assert!(
        loads >= 2,
        "the page did not refresh by itself (loads: {loads})"
    );
    let ns = row(&dom, "default").unwrap_or_default();
    assert_eq!(ns[2], "3", "requests 24h: {ns:?}");
    let route = row(&dom, "/").expect("route row");
    assert_eq!(
        (route[1].as_str(), route[2].as_str()),
        ("3", "3"),
        "{route:?}"
    );
    let server = row(&dom, "p / m1").expect("upstream row");
    assert_eq!(server[1], "healthy");
    let key = row(&dom, "test (…)").expect("key row");
    assert_eq!(key[1], "3");
    assert!(!dom.contains("sk-test"), "the page shows a key");

    // More traffic shows up on a later render.
    for _ in 0..2 {
        let r = gw.chat(&client, false).await;
        r.bytes().await.expect("body");
    }
    render_until(&browser, &url, "5 requests", |d| {
        row(d, "default").is_some_and(|cells| cells.get(1).map(String::as_str) == Some("5"))
    });
}

/// Two instances sharing a Redis: each page lists both, live, this one
/// marked, with their version and config revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_ui_shows_the_fleet() {
    let browser = chromium();
    let m = mock("m1").await;
    let prefix = format!("sluice-ui-fleet-{}-{}:", std::process::id(), free_port());
    let yaml = |name: &str| {
        config(
            &[server("m1", "p", m.addr.port(), "")],
            &format!(
                "{CATCH_ALL}metrics:\n  token: {TOKEN}\nfleet: {{heartbeat_ms: 200, advertise: \"{name}\"}}\ncache:\n  redis_url: \"{}\"\n  key_prefix: \"{prefix}\"\n",
                redis_base()
            ),
        )
    };
    let one = Gateway::start(&yaml("gw-one:8080")).await;
    let _two = Gateway::start(&yaml("gw-two:8080")).await;
    let url = format!("{}#token={TOKEN}", one.url("/metrics/ui"));
    let dom = render_until(&browser, &url, "both instances live", |d| {
        row(d, "gw-one:8080 (this one)").is_some_and(|c| c[1] == "live")
            && row(d, "gw-two:8080").is_some_and(|c| c[1] == "live")
    });
    let two = row(&dom, "gw-two:8080").unwrap_or_default();
    assert_eq!(two[2], env!("CARGO_PKG_VERSION"), "{two:?}");
    assert_eq!(two[4], "local", "{two:?}");
}
