//! The official Anthropic Python SDK against the real gateway's
//! `/v1/messages` (`tests/sdk/anthropic_e2e.py`): messages, streams, tool
//! use, a token cap ending a stream cleanly, and upstream errors as the
//! SDK's exceptions, on an OpenAI-format and an Anthropic-format
//! deployment. The SDK lives in `.venv-test` (created by
//! `scripts/test-deps.sh`, which `make test` runs first).

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_python_sdk_end_to_end() {
    let m = mock("a").await;
    let port = m.addr.port();
    let servers = [
        server("p", "p", port, ""),
        provider_server("an", "anp", port, "anthropic", "an"),
    ];
    let rules = "rules:\n  - rule_name: five-out\n    rule_type: token_limit\n    rule_config: {max_output_tokens: 5, model_name: capped-*}\n";
    let models = "models:\n  - name: via-openai\n    deployments:\n      - {name: oa, upstream: p, model: gpt-4o-mini}\n  - name: via-claude\n    deployments:\n      - {name: an, upstream: anp, model: claude-sonnet-4-5}\n  - name: capped-via-openai\n    deployments:\n      - {name: oa, upstream: p, model: gpt-4o-mini}\n  - name: capped-via-claude\n    deployments:\n      - {name: an, upstream: anp, model: claude-sonnet-4-5}\n";
    let gw = Gateway::start(&config(&servers, &format!("{CATCH_ALL}{rules}{models}"))).await;
    run_sdk_script("anthropic_e2e.py", gw.url("")).await;
}
