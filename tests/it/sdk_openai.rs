//! The official OpenAI Python SDK against the real gateway: a stream cut at
//! its token cap ends cleanly for the SDK (no exception, `finish_reason:
//! "length"`, usage), the non-streaming cut, and a rate-limit denial
//! surfacing as `openai.RateLimitError`; and the model catalog through the
//! SDK (`tests/sdk/openai_catalog.py`). The SDK lives in `.venv-test`
//! (created by `scripts/test-deps.sh`, which `make test` runs first).

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_sees_clean_truncation_and_rate_limits() {
    let m = mock("a").await;
    let rules = "rules:\n  - rule_name: five-out\n    rule_type: token_limit\n    rule_config: {max_output_tokens: 5}\n  - rule_name: per-key\n    rule_type: rate_limit\n    rule_config: {max_requests: 3, time_window_seconds: 60, key_by: api_key}\n";
    let yaml = one_mock(m.addr.port(), rules).replace(
        "      key: sk-test\n",
        "      key: sk-test\n    - name: limited\n      key: sk-limited\n",
    );
    let gw = Gateway::start(&yaml).await;
    run_sdk_script("openai_limits.py", gw.url("")).await;
}

/// The official OpenAI Python SDK through the model catalog: OpenAI,
/// Anthropic (translated) and Azure deployments; chat, streams, tools,
/// embeddings, models, and upstream errors as the SDK's exceptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_through_the_catalog() {
    let m = mock("a").await;
    let port = m.addr.port();
    let servers = [
        server("p", "p", port, ""),
        provider_server("az", "azp", port, "azure", "az"),
        provider_server("an", "anp", port, "anthropic", "an"),
    ];
    let models = "models:\n  - name: gpt-4o\n    deployments:\n      - {name: oa, upstream: p}\n  - name: claude\n    deployments:\n      - {name: sonnet, upstream: anp, model: claude-sonnet-4-5}\n  - name: emb\n    deployments:\n      - {name: east, upstream: azp, deployment: emb, api_version: 2024-10-21}\n";
    let gw = Gateway::start(&config(&servers, &format!("{CATCH_ALL}{models}"))).await;
    run_sdk_script("openai_catalog.py", gw.url("")).await;
}
