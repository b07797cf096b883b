//! Signed requests from an external client (HMAC-SHA256): a Python client
//! using only its standard library signs requests to two gateway
//! instances sharing Redis; a valid signature passes, a wrong one, a
//! skewed clock and a replayed nonce (on the other instance) are refused,
//! and the secret is never accepted as a bearer key.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

const SECRET: &str = "partner-secret-0123456789";

/// Runs the Python signing client against `gw`; its one JSON line.
fn client(gw: &Gateway, extra: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/hmac_client.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(gw.url(""))
        .args(["partner", SECRET])
        .args(extra)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_across_two_instances() {
    let m = mock("a").await;
    let prefix = format!(
        "sluice-sign-{}-{}:",
        std::process::id(),
        sluice::clock::wall_nanos()
    );
    let yaml = one_mock(
        m.addr.port(),
        &format!(
            "counters:\n  store: redis\n  redis_url: \"{}\"\n  key_prefix: \"{prefix}\"\n",
            redis_base()
        ),
    )
    .replace(
        "      key: sk-test\n",
        &format!(
            "      key: sk-test\n    - name: partner\n      key: {SECRET}\n      signing: true\n"
        ),
    );
    let (a, b) = (Gateway::start(&yaml).await, Gateway::start(&yaml).await);
    // Each instance's nonce store is connected (it connects as the
    // process starts; a loaded machine may take a moment).
    for gw in [&a, &b] {
        eventually_blocking(Duration::from_secs(10), "the nonce store connected", || {
            let v = client(gw, &["--query", "warm=1"]);
            if v["status"] == 200 {
                Ok(())
            } else {
                Err(v.to_string())
            }
        });
    }

    let ok = client(&a, &["--query", "b=2&a=1"]);
    assert_eq!(ok["status"], 200, "{ok}");
    // The same nonce again, on the other instance: refused.
    let nonce = ok["nonce"].as_str().unwrap();
    let replay = client(&b, &["--nonce", nonce, "--query", "b=2&a=1"]);
    assert_eq!(replay["status"], 401, "{replay}");
    assert!(
        replay["message"].as_str().unwrap().contains("nonce"),
        "{replay}"
    );
    // A body changed after signing, a clock 10 minutes off.
    let tampered = client(&b, &["--tamper"]);
    assert_eq!(tampered["status"], 401, "{tampered}");
    assert!(
        tampered["message"].as_str().unwrap().contains("signature"),
        "{tampered}"
    );
    let skewed = client(&a, &["--skew", "600"]);
    assert_eq!(skewed["status"], 401, "{skewed}");
    assert!(
        skewed["message"].as_str().unwrap().contains("clock"),
        "{skewed}"
    );
    // Fresh nonces keep working on both.
    assert_eq!(client(&b, &[])["status"], 200);
    assert_eq!(client(&a, &[])["status"], 200);

    // The secret is not a bearer key, and an unknown key id is refused.
    let c = reqwest::Client::new();
    let r = c
        .post(a.url("/v1/chat/completions"))
        .bearer_auth(SECRET)
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(a.url("/v1/chat/completions"))
        .header("x-sluice-key-id", "nobody")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Signed with the right id but no signature headers at all.
    let r = c
        .post(a.url("/v1/chat/completions"))
        .header("x-sluice-key-id", "partner")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The two warm-up requests and the three accepted above.
    assert_eq!(served(&m), 5);
}
