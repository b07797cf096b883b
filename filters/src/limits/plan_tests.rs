//! Tests of the per-request plan: checks per rule, stateless denials,
//! decisions, headers, fail modes and settlements.

use super::*;
use crate::limits::local::LocalCounterStore;
use crate::limits::test_support::FakeClock;
use serde_json::{json, Value};

fn rule(id: u64, name: &str, rule_type: &str, config: Value) -> Rule {
    Rule::new(
        id,
        name.into(),
        RuleConfig::parse(rule_type, &config).unwrap(),
    )
}

fn headers() -> Vec<(String, String)> {
    vec![
        ("X-Team".into(), "blue".into()),
        ("x-empty".into(), String::new()),
    ]
}

fn view(h: &Vec<(String, String)>) -> RequestView<'_> {
    RequestView {
        namespace: "ns",
        api_key: Some("team-a"),
        route: "/v1/chat",
        model: Some("gpt-4o"),
        upstream: "openai",
        headers: h,
        request_id: "req-1",
        prompt_tokens: 100,
        requested_output: Some(200),
        choices: 1,
        price: None,
        internal: false,
    }
}

const SETTINGS: PlanSettings = PlanSettings {
    default_output_tokens: 500,
    lease_ms: 60_000,
};

fn planned(rules: &[Rule], req: &RequestView<'_>) -> Result<LimitPlan, Denial> {
    let refs: Vec<&Rule> = rules.iter().collect();
    plan(&refs, req, &SETTINGS)
}

fn keys(p: &LimitPlan) -> Vec<&str> {
    p.checks.iter().map(|c| c.key()).collect()
}

fn allow(d: Decision) -> Reservation {
    match d {
        Decision::Allow(r) => r,
        Decision::Deny(d) => panic!("denied: {d:?}"),
    }
}

fn deny(d: Decision) -> Denial {
    match d {
        Decision::Deny(d) => d,
        Decision::Allow(r) => panic!("allowed: {r:?}"),
    }
}

fn status(passed: bool, limit: u64, remaining: u64, retry: u64, reset: u64) -> CheckStatus {
    CheckStatus {
        passed,
        limit,
        remaining,
        retry_after_ms: retry,
        reset_ms: reset,
        granted: 0,
        window_start_ms: 0,
    }
}

#[test]
fn counter_keys_follow_key_by() {
    let h = headers();
    let by = |key_by: &str| {
        let mut config = json!({"max_qps": 5, "key_by": key_by});
        if key_by == "header" {
            config["header_name"] = json!("x-team");
        }
        rule(3, "r", "rate_limit", config)
    };
    let rules: Vec<Rule> = [
        "namespace",
        "api_key",
        "route",
        "model",
        "header",
        "upstream",
        "global",
    ]
    .into_iter()
    .map(by)
    .collect();
    let p = planned(&rules, &view(&h)).unwrap();
    assert_eq!(
        keys(&p),
        [
            "3:namespace:ns",
            "3:api_key:team-a",
            "3:route:/v1/chat",
            "3:model:gpt-4o",
            "3:header:blue",
            "3:upstream:openai",
            "3:global:*",
        ]
    );
}

#[test]
fn a_key_by_list_counts_each_combination() {
    let h = headers();
    let rules = [rule(
        4,
        "pair",
        "concurrency",
        json!({"max_concurrent": 1, "key_by": ["api_key", "route"]}),
    )];
    let p = planned(&rules, &view(&h)).unwrap();
    assert_eq!(keys(&p), ["4:api_key+route:team-a\u{1f}/v1/chat"]);
    // Without one of the values the rule does not count the request.
    let mut req = view(&h);
    req.api_key = None;
    assert!(planned(&rules, &req).unwrap().is_empty());
}

#[test]
fn a_rule_without_a_value_for_its_dimension_does_not_apply() {
    let h = headers();
    let mut req = view(&h);
    req.api_key = None;
    req.model = None;
    let rules = [
        rule(
            1,
            "a",
            "rate_limit",
            json!({"max_qps": 5, "key_by": "api_key"}),
        ),
        rule(
            2,
            "b",
            "concurrency",
            json!({"max_concurrent": 5, "key_by": "model"}),
        ),
        rule(
            3,
            "c",
            "rate_limit",
            json!({"max_qps": 5, "key_by": "header", "header_name": "x-missing"}),
        ),
        rule(
            4,
            "d",
            "rate_limit",
            json!({"max_qps": 5, "key_by": "header", "header_name": "x-empty"}),
        ),
        rule(
            5,
            "e",
            "token_limit",
            json!({"max_tokens": 10_000, "key_by": "api_key", "time_window_enabled": true, "time_window_minutes": 1, "max_tokens_per_window": 1000}),
        ),
        rule(6, "f", "rate_limit", json!({"max_qps": 5})),
    ];
    let p = planned(&rules, &req).unwrap();
    assert_eq!(keys(&p), ["6:namespace:ns"]);
    // The per-request cap of rule 5 still applies without an API key.
    assert_eq!(p.static_output_cap(), Some(9_900));
}

#[test]
fn each_rule_type_becomes_its_check() {
    let h = headers();
    let rules = [
        rule(
            1,
            "fixed",
            "rate_limit",
            json!({"max_requests": 10, "time_window_seconds": 60}),
        ),
        rule(
            2,
            "sliding",
            "rate_limit",
            json!({"max_requests": 10, "time_window_seconds": 60, "algorithm": "sliding_window"}),
        ),
        rule(
            3,
            "bucket",
            "rate_limit",
            json!({"max_requests": 120, "time_window_seconds": 60, "algorithm": "token_bucket", "burst": 7}),
        ),
        rule(4, "conc", "concurrency", json!({"max_concurrent": 3})),
        rule(
            5,
            "budget",
            "token_limit",
            json!({"time_window_enabled": true, "time_window_minutes": 2, "max_tokens_per_window": 5000}),
        ),
    ];
    let p = planned(&rules, &view(&h)).unwrap();
    assert_eq!(
        p.checks.as_slice(),
        [
            Check::Window {
                key: "1:namespace:ns".into(),
                limit: 10,
                window_ms: 60_000,
                sliding: false,
                cost: 1
            },
            Check::Window {
                key: "2:namespace:ns".into(),
                limit: 10,
                window_ms: 60_000,
                sliding: true,
                cost: 1
            },
            Check::Bucket {
                key: "3:namespace:ns".into(),
                rate_per_sec: 2,
                burst: 7,
                cost: 1
            },
            Check::Concurrency {
                key: "4:namespace:ns".into(),
                limit: 3,
                lease_id: "req-1".into(),
                lease_ms: 60_000
            },
            Check::Tokens {
                key: "5:namespace:ns".into(),
                limit: 5000,
                window_ms: 120_000,
                need: 101,
                want: 300,
                money: false,
            },
        ]
    );
    assert!(!p.is_empty());
}

#[test]
fn token_rules_apply_to_their_models_only() {
    let h = headers();
    let rules = [
        rule(
            1,
            "old",
            "token_limit",
            json!({"model_name": "gpt-3*", "max_input_tokens": 1}),
        ),
        rule(
            2,
            "new",
            "token_limit",
            json!({"model_name": "gpt-4*", "max_output_tokens": 50}),
        ),
    ];
    let p = planned(&rules, &view(&h)).unwrap();
    assert!(p.is_empty());
    assert_eq!(p.static_output_cap(), Some(50));
}

#[test]
fn per_request_caps_deny_without_the_store() {
    let h = headers();
    let input = [rule(
        7,
        "cap",
        "token_limit",
        json!({"max_input_tokens": 99}),
    )];
    let d = planned(&input, &view(&h)).unwrap_err();
    assert_eq!(
        (d.status, d.code, d.rule_id, d.retry_after_secs),
        (429, "token_limit_exceeded", 7, 1)
    );
    assert_eq!(d.message, "rule \"cap\" (id 7): the prompt has 100 tokens, more than the 99 allowed per request (max_input_tokens)");
    assert!(planned(
        &[rule(
            7,
            "cap",
            "token_limit",
            json!({"max_input_tokens": 100})
        )],
        &view(&h)
    )
    .is_ok());
    let total = [rule(8, "total", "token_limit", json!({"max_tokens": 100}))];
    let d = planned(&total, &view(&h)).unwrap_err();
    assert!(
        d.message.starts_with(
            "rule \"total\" (id 8): the prompt has 100 tokens, leaving no room for output"
        ),
        "{}",
        d.message
    );
    let p = planned(
        &[rule(8, "total", "token_limit", json!({"max_tokens": 101}))],
        &view(&h),
    )
    .unwrap();
    assert_eq!(p.static_output_cap(), Some(1));
}

#[test]
fn a_prompt_larger_than_the_whole_budget_is_denied_at_once() {
    let h = headers();
    let rules = [rule(
        9,
        "small",
        "token_limit",
        json!({"time_window_enabled": true, "time_window_minutes": 1, "max_tokens_per_window": 100}),
    )];
    let d = planned(&rules, &view(&h)).unwrap_err();
    assert_eq!((d.status, d.code), (429, "token_limit_exceeded"));
    assert!(
        d.message
            .contains("budget of 100 tokens per 1m0s for namespace \"ns\""),
        "{}",
        d.message
    );
    assert!(d.message.ends_with("can never fit"));
}

#[test]
fn want_uses_the_requested_or_default_output_within_the_static_cap() {
    let h = headers();
    let window = json!({"time_window_enabled": true, "time_window_minutes": 1, "max_tokens_per_window": 100_000});
    let want = |req: &RequestView<'_>, extra: Value| {
        let mut config = window.clone();
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        match &planned(&[rule(1, "b", "token_limit", config)], req)
            .unwrap()
            .checks[0]
        {
            Check::Tokens { need, want, .. } => (*need, *want),
            other => panic!("{other:?}"),
        }
    };
    let mut req = view(&h);
    assert_eq!(want(&req, json!({})), (101, 300));
    assert_eq!(want(&req, json!({"max_output_tokens": 150})), (101, 250));
    assert_eq!(want(&req, json!({"max_tokens": 180})), (101, 180));
    req.requested_output = None;
    assert_eq!(want(&req, json!({})), (101, 600));
    req.requested_output = Some(0);
    assert_eq!(want(&req, json!({})), (101, 101));
    // `n` choices are generated and billed: the reservation covers all of
    // them, and a per-request cap bounds their total.
    req.requested_output = Some(50);
    req.choices = 100;
    assert_eq!(want(&req, json!({})), (101, 100 + 5_000));
    assert_eq!(want(&req, json!({"max_output_tokens": 50})), (101, 150));
    req.requested_output = None;
    assert_eq!(want(&req, json!({})), (101, 100 + 50_000));
    req.choices = 0;
    assert_eq!(want(&req, json!({})), (101, 600));
}

#[test]
fn output_cap_is_the_least_of_static_caps_and_grants() {
    let h = headers();
    let rules = [
        rule(
            1,
            "caps",
            "token_limit",
            json!({"max_tokens": 1000, "max_output_tokens": 500}),
        ),
        rule(
            2,
            "a",
            "token_limit",
            json!({"time_window_enabled": true, "time_window_minutes": 1, "max_tokens_per_window": 1000}),
        ),
        rule(
            3,
            "b",
            "token_limit",
            json!({"time_window_enabled": true, "time_window_minutes": 1, "max_tokens_per_window": 1000}),
        ),
    ];
    let refs: Vec<&Rule> = rules.iter().collect();
    let p = planned(&rules, &view(&h)).unwrap();
    assert_eq!(p.static_output_cap(), Some(500));
    let granted = |g: u64| CheckStatus {
        passed: true,
        limit: 1000,
        remaining: 1000 - g,
        granted: g,
        window_start_ms: 60_000,
        reset_ms: 30_000,
        retry_after_ms: 0,
    };
    let r = allow(p.decide(
        &refs,
        &Admission {
            admitted: true,
            statuses: smallvec::smallvec![granted(250), granted(300)],
        },
    ));
    assert_eq!((r.output_cap, r.reserved_tokens), (Some(150), 250));
    let r = allow(p.decide(
        &refs,
        &Admission {
            admitted: true,
            statuses: smallvec::smallvec![granted(700), granted(700)],
        },
    ));
    assert_eq!(r.output_cap, Some(500));
    // No caps and no budgets: unlimited.
    let p = planned(
        &[rule(4, "q", "rate_limit", json!({"max_qps": 1}))],
        &view(&h),
    )
    .unwrap();
    let r = allow(p.decide(
        &[],
        &Admission {
            admitted: true,
            statuses: smallvec::smallvec![status(true, 1, 0, 0, 1000)],
        },
    ));
    assert_eq!((r.output_cap, r.reserved_tokens), (None, 0));
}

#[test]
fn end_to_end_with_the_local_store() {
    let h = headers();
    let clock = FakeClock::at(90_000);
    let store = LocalCounterStore::new(clock.clone());
    let rules = [
        rule(1, "qps", "rate_limit", json!({"max_qps": 2})),
        rule(2, "conc", "concurrency", json!({"max_concurrent": 5})),
        rule(
            3,
            "budget",
            "token_limit",
            json!({"time_window_enabled": true, "time_window_minutes": 1, "max_tokens_per_window": 450}),
        ),
    ];
    let refs: Vec<&Rule> = rules.iter().collect();
    let p = planned(&rules, &view(&h)).unwrap();
    let r = allow(p.decide(&refs, &store.admit_now(&p.checks)));
    assert_eq!((r.reserved_tokens, r.output_cap), (300, Some(200)));
    assert_eq!(
        r.rate.pairs(),
        vec![
            ("x-ratelimit-limit-requests", "2".to_string()),
            ("x-ratelimit-remaining-requests", "1".to_string()),
            ("x-ratelimit-reset-requests", "1s".to_string()),
            ("x-ratelimit-limit-tokens", "450".to_string()),
            ("x-ratelimit-remaining-tokens", "150".to_string()),
            ("x-ratelimit-reset-tokens", "30s".to_string()),
        ]
    );
    // The second request gets what is left of the budget: 150 - 100 prompt.
    let mut second = view(&h);
    second.request_id = "req-2";
    let p2 = planned(&rules, &second).unwrap();
    let r2 = allow(p2.decide(&refs, &store.admit_now(&p2.checks)));
    assert_eq!((r2.reserved_tokens, r2.output_cap), (150, Some(50)));
    // The third is over the rate (and the budget); the budget waits longest.
    let mut third = view(&h);
    third.request_id = "req-3";
    let p3 = planned(&rules, &third).unwrap();
    let d = deny(p3.decide(&refs, &store.admit_now(&p3.checks)));
    assert_eq!(
        (d.status, d.code, d.rule_id, d.retry_after_secs),
        (429, "token_limit_exceeded", 3, 30)
    );
    assert_eq!(d.message, "rule \"budget\" (id 3): token budget of 450 per 1m0s for namespace \"ns\" has 0 left; this request needs at least 101 (100 prompt + 1 output); retry after 30s");
    assert!(d
        .headers
        .contains(&("x-ratelimit-remaining-requests", "0".to_string())));
    // Settling refunds the unused reservation and frees both slots.
    store.settle_now(&r.settlement(120));
    store.settle_now(&r2.settlement(100));
    assert_eq!(store.tokens_used("3:namespace:ns", 60_000), 220);
    assert_eq!(store.active_leases("2:namespace:ns"), 0);
}

#[test]
fn rate_and_concurrency_denials() {
    let h = headers();
    let rules = [
        rule(3, "limit-qps", "rate_limit", json!({"max_qps": 2})),
        rule(
            4,
            "conc",
            "concurrency",
            json!({"max_concurrent": 1, "key_by": "api_key"}),
        ),
    ];
    let refs: Vec<&Rule> = rules.iter().collect();
    let p = planned(&rules, &view(&h)).unwrap();
    let rate_denied = Admission {
        admitted: false,
        statuses: smallvec::smallvec![status(false, 2, 0, 250, 250), status(true, 1, 1, 0, 0)],
    };
    let d = deny(p.decide(&refs, &rate_denied));
    assert_eq!(
        (d.status, d.code, d.rule_id, d.retry_after_secs),
        (429, "rate_limited", 3, 1)
    );
    assert_eq!(d.message, "rule \"limit-qps\" (id 3): rate limit of 2 requests per 1s (fixed window) reached for namespace \"ns\"; retry after 1s");
    assert_eq!(
        d.headers,
        vec![
            ("x-ratelimit-limit-requests", "2".to_string()),
            ("x-ratelimit-remaining-requests", "0".to_string()),
            ("x-ratelimit-reset-requests", "250ms".to_string()),
        ]
    );
    // A lease far from expiry still asks for at most a second.
    let conc_denied = Admission {
        admitted: false,
        statuses: smallvec::smallvec![
            status(true, 2, 2, 0, 1000),
            status(false, 1, 0, 59_000, 59_000),
        ],
    };
    let d = deny(p.decide(&refs, &conc_denied));
    assert_eq!(
        (d.status, d.code, d.rule_id, d.retry_after_secs),
        (503, "concurrency_limited", 4, 1)
    );
    assert_eq!(d.message, "rule \"conc\" (id 4): concurrency limit of 1 requests in flight reached for API key \"team-a\"; retry after 1s");
    // Both fail: the longest wait decides.
    let both = Admission {
        admitted: false,
        statuses: smallvec::smallvec![
            status(false, 2, 0, 2500, 2500),
            status(false, 1, 0, 59_000, 59_000),
        ],
    };
    let d = deny(p.decide(&refs, &both));
    assert_eq!((d.code, d.retry_after_secs), ("rate_limited", 3));
}

#[test]
fn bucket_and_sliding_messages() {
    let h = headers();
    let rules = [
        rule(
            1,
            "bucket",
            "rate_limit",
            json!({"max_qps": 5, "algorithm": "token_bucket", "burst": 9, "key_by": "global"}),
        ),
        rule(
            2,
            "slide",
            "rate_limit",
            json!({"max_requests": 100, "time_window_seconds": 3600, "algorithm": "sliding_window", "key_by": "header", "header_name": "x-team"}),
        ),
    ];
    let refs: Vec<&Rule> = rules.iter().collect();
    let p = planned(&rules, &view(&h)).unwrap();
    let a = Admission {
        admitted: false,
        statuses: smallvec::smallvec![status(false, 9, 0, 200, 1800), status(true, 100, 3, 0, 10)],
    };
    let d = deny(p.decide(&refs, &a));
    assert_eq!(d.message, "rule \"bucket\" (id 1): rate limit of 5 requests per second (burst 9) reached for all requests; retry after 1s");
    let a = Admission {
        admitted: false,
        statuses: smallvec::smallvec![
            status(true, 9, 4, 0, 1000),
            status(false, 100, 0, 61_500, 3_600_000),
        ],
    };
    let d = deny(p.decide(&refs, &a));
    assert_eq!(d.retry_after_secs, 62);
    assert_eq!(d.message, "rule \"slide\" (id 2): rate limit of 100 requests per 1h0m0s (sliding window) reached for header x-team \"blue\"; retry after 62s");
    // The least remaining of the two request rules sets the headers.
    assert_eq!(
        d.headers[1],
        ("x-ratelimit-remaining-requests", "0".to_string())
    );
    assert_eq!(
        d.headers[2],
        ("x-ratelimit-reset-requests", "1h0m0s".to_string())
    );
}

#[test]
fn a_budget_failing_only_because_of_another_is_not_blamed() {
    // A store may report a budget failed along with an exhausted one.
    let h = headers();
    let budget = |id: u64, limit: u64| {
        rule(
            id,
            "b",
            "token_limit",
            json!({"time_window_enabled": true, "time_window_minutes": 1, "max_tokens_per_window": limit}),
        )
    };
    let rules = [budget(1, 10_000), budget(2, 10_000)];
    let refs: Vec<&Rule> = rules.iter().collect();
    let p = planned(&rules, &view(&h)).unwrap();
    let a = Admission {
        admitted: false,
        statuses: smallvec::smallvec![
            status(false, 10_000, 9000, 5000, 5000),
            status(false, 10_000, 50, 5000, 5000),
        ],
    };
    assert_eq!(deny(p.decide(&refs, &a)).rule_id, 2);
}

#[test]
fn fail_modes_on_store_errors() {
    let h = headers();
    let open = [
        rule(1, "qps", "rate_limit", json!({"max_qps": 5})),
        rule(
            2,
            "cap",
            "token_limit",
            json!({"max_output_tokens": 64, "fail_mode": "closed"}),
        ),
    ];
    let refs: Vec<&Rule> = open.iter().collect();
    let p = planned(&open, &view(&h)).unwrap();
    // The closed token rule has no counter here, so the plan fails open.
    let r = allow(p.on_store_error(&refs));
    assert_eq!(
        r,
        Reservation {
            output_cap: Some(64),
            ..Reservation::default()
        }
    );
    assert!(r.settlement(10).is_empty() && r.is_empty());
    let closed = [
        rule(1, "qps", "rate_limit", json!({"max_qps": 5})),
        rule(
            5,
            "strict",
            "concurrency",
            json!({"max_concurrent": 5, "fail_mode": "closed"}),
        ),
    ];
    let refs: Vec<&Rule> = closed.iter().collect();
    let p = planned(&closed, &view(&h)).unwrap();
    let d = deny(p.on_store_error(&refs));
    assert_eq!(
        (d.status, d.code, d.rule_id, d.retry_after_secs),
        (503, "limits_unavailable", 5, 1)
    );
    assert_eq!(
        d.message,
        "rule \"strict\" (id 5): the limits store is unavailable and the rule has fail_mode closed"
    );
    // A store answer that does not fit the plan counts as a failure.
    let d = deny(p.decide(
        &refs,
        &Admission {
            admitted: true,
            statuses: smallvec::smallvec![],
        },
    ));
    assert_eq!(d.code, "limits_unavailable");
}

#[test]
fn an_empty_plan_allows_with_the_static_cap() {
    let h = headers();
    let rules = [rule(1, "cap", "token_limit", json!({"max_tokens": 300}))];
    let refs: Vec<&Rule> = rules.iter().collect();
    let p = planned(&rules, &view(&h)).unwrap();
    assert!(p.is_empty());
    let r = allow(p.decide(&refs, &Admission::default()));
    assert_eq!(
        (r.output_cap, r.reserved_tokens, r.rate.pairs().len()),
        (Some(200), 0, 0)
    );
    let none = planned(&[], &view(&h)).unwrap();
    assert_eq!(
        allow(none.decide(&[], &Admission::default())),
        Reservation::default()
    );
}

#[test]
fn settlements_release_leases_and_adjust_budgets() {
    let h = headers();
    let rules = [
        rule(2, "conc", "concurrency", json!({"max_concurrent": 5})),
        rule(
            3,
            "budget",
            "token_limit",
            json!({"time_window_enabled": true, "time_window_minutes": 1, "max_tokens_per_window": 1000}),
        ),
    ];
    let refs: Vec<&Rule> = rules.iter().collect();
    let p = planned(&rules, &view(&h)).unwrap();
    let mut tokens = status(true, 1000, 700, 0, 1000);
    tokens.granted = 300;
    tokens.window_start_ms = 120_000;
    let r = allow(p.decide(
        &refs,
        &Admission {
            admitted: true,
            statuses: smallvec::smallvec![status(true, 5, 4, 0, 60_000), tokens],
        },
    ));
    let release = Settle::Release {
        key: "2:namespace:ns".into(),
        lease_id: "req-1".into(),
    };
    let adjust = |delta| Settle::Tokens {
        key: "3:namespace:ns".into(),
        window_ms: 60_000,
        window_start_ms: 120_000,
        delta,
    };
    assert_eq!(r.settlement(120), vec![release.clone(), adjust(-180)]);
    assert_eq!(r.settlement(450), vec![release.clone(), adjust(150)]);
    assert_eq!(r.settlement(300), vec![release.clone()]);
    assert_eq!(r.releases(), vec![release]);
    assert!(!r.is_empty());
}

#[test]
fn durations_in_openai_form() {
    for (ms, text) in [
        (0, "0s"),
        (20, "20ms"),
        (999, "999ms"),
        (1000, "1s"),
        (1500, "1.5s"),
        (1250, "1.25s"),
        (59_999, "59.999s"),
        (360_000, "6m0s"),
        (61_250, "1m1.25s"),
        (3_600_000, "1h0m0s"),
        (3_723_004, "1h2m3.004s"),
        (90_000_000, "25h0m0s"),
        (u64::MAX, "5124095576030h25m51.615s"),
    ] {
        assert_eq!(duration(ms), text, "{ms}");
    }
    // One buffer reused: each call writes from the start.
    let mut buf = DurationBuf::default();
    assert_eq!(buf.format(3_723_004), b"1h2m3.004s");
    assert_eq!(buf.format(20), b"20ms");
}

#[test]
fn decimal_without_fmt() {
    for n in [
        0,
        5,
        7,
        10,
        99,
        100,
        101,
        1000,
        123_456_789,
        10_000_000_000_000_000_000,
        u64::MAX,
    ] {
        let mut s = String::from("x");
        push_u64(&mut s, n);
        assert_eq!(s, format!("x{n}"));
    }
}

proptest::proptest! {
    /// The stack formatting of counts and resets matches `fmt` (counts)
    /// and Go's duration form written with `fmt` (resets).
    #[test]
    fn counts_and_durations_match_fmt(n in proptest::prelude::any::<u64>(), ms in 0u64..400_000_000) {
        let mut text = String::new();
        push_u64(&mut text, n);
        proptest::prop_assert_eq!(text, n.to_string());
        let (h, m, s, f) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        let reference = if ms < 1000 {
            if ms == 0 { "0s".to_string() } else { format!("{ms}ms") }
        } else {
            let frac = if f == 0 {
                String::new()
            } else {
                format!(".{f:03}").trim_end_matches('0').to_string()
            };
            match (h, m) {
                (0, 0) => format!("{s}{frac}s"),
                (0, _) => format!("{m}m{s}{frac}s"),
                _ => format!("{h}h{m}m{s}{frac}s"),
            }
        };
        proptest::prop_assert_eq!(duration(ms), reference);
    }
}

#[test]
fn prompt_ceiling_is_the_largest_threshold_of_the_applicable_rules() {
    let rate = rule(1, "r", "rate_limit", json!({"max_requests": 5}));
    let input = rule(2, "i", "token_limit", json!({"max_input_tokens": 1000}));
    let window = rule(
        3,
        "w",
        "token_limit",
        json!({"time_window_enabled": true, "time_window_minutes": 1, "max_tokens_per_window": 500}),
    );
    let other_model = rule(
        4,
        "m",
        "token_limit",
        json!({"model_name": "claude*", "max_tokens": 9000}),
    );
    let out_only = rule(5, "o", "token_limit", json!({"max_output_tokens": 50}));
    assert_eq!(prompt_ceiling(&[&rate], Some("gpt-4o")), None);
    assert_eq!(prompt_ceiling(&[&out_only], Some("gpt-4o")), None);
    assert_eq!(prompt_ceiling(&[&rate, &window], Some("gpt-4o")), Some(500));
    // Over 1000 both deny: the first one in order, as with the full count.
    assert_eq!(
        prompt_ceiling(&[&input, &window, &other_model, &out_only], Some("gpt-4o")),
        Some(1000)
    );
    assert_eq!(
        prompt_ceiling(&[&other_model], Some("claude-3")),
        Some(9000)
    );
    // Any count over the ceiling gets the same decision as the true one.
    let h = headers();
    let rules = [&input, &window];
    for prompt in [1001, 1_000_000] {
        let mut req = view(&h);
        req.prompt_tokens = prompt;
        let denial = plan(&rules, &req, &SETTINGS).err().unwrap();
        assert_eq!(denial.rule_id, 2, "{prompt}");
    }
}

#[test]
fn money_budgets_reserve_the_price_cap_the_output_and_settle_the_cost() {
    let h = headers();
    // $0.01 a day; $10 per 1M input tokens, $30 per 1M output.
    let rules = [rule(
        9,
        "daily",
        "budget",
        json!({"max_usd": 0.01, "key_by": "api_key"}),
    )];
    let mut req = view(&h);
    // Unpriced (outside the catalog): not counted.
    assert!(planned(&rules, &req).unwrap().is_empty());
    req.price = Some(Price::per_million(10.0, 30.0));
    let p = planned(&rules, &req).unwrap();
    // 100 prompt tokens = 1000 micro-USD; 200 output = 6000.
    assert_eq!(
        p.checks[0],
        Check::Tokens {
            key: "9:api_key:team-a".into(),
            limit: 10_000,
            window_ms: 86_400_000,
            need: 1_030,
            want: 7_000,
            money: true,
        }
    );
    let store = LocalCounterStore::new(FakeClock::at(0));
    let Decision::Allow(r) = p.decide(
        &rules.iter().collect::<Vec<_>>(),
        &store.admit_now(&p.checks),
    ) else {
        panic!("denied")
    };
    assert_eq!((r.reserved_micros, r.output_cap), (7_000, Some(200)));
    assert_eq!(r.rate.budget.map(|l| l.remaining), Some(3_000));
    let headers = r.rate.pairs();
    assert!(
        headers.contains(&("x-budget-remaining-usd", "0.003".into())),
        "{headers:?}"
    );
    // It cost less: the difference comes back.
    store.settle_now(&r.into_settlement_priced(150, Some(2_500)).into_vec());
    // The next one is capped at what $0.0075 buys after its prompt:
    // (7500 - 1000) / 30 = 216 output tokens.
    let p = planned(&rules, &req).unwrap();
    let Decision::Allow(r) = p.decide(
        &rules.iter().collect::<Vec<_>>(),
        &store.admit_now(&p.checks),
    ) else {
        panic!("denied")
    };
    assert_eq!(r.output_cap, Some(200));
    assert_eq!(r.reserved_micros, 7_000);
    // A third finds $0.0005 left: less than the prompt and one token.
    let p = planned(&rules, &req).unwrap();
    let Decision::Deny(d) = p.decide(
        &rules.iter().collect::<Vec<_>>(),
        &store.admit_now(&p.checks),
    ) else {
        panic!("admitted")
    };
    assert_eq!((d.status, d.code), (402, "budget_exceeded"));
    assert!(d.message.contains("$0.0005 left"), "{}", d.message);
    // A prompt that alone costs more than the budget can never fit.
    req.prompt_tokens = 2_000;
    let d = planned(&rules, &req).unwrap_err();
    assert_eq!((d.status, d.code), (402, "budget_exceeded"));
}

#[test]
fn the_internal_channel_skips_quotas_unless_a_rule_names_it() {
    let h = headers();
    let rules = [
        rule(
            1,
            "rpm",
            "rate_limit",
            json!({"max_requests": 10, "time_window_seconds": 60}),
        ),
        rule(
            2,
            "tokens",
            "token_limit",
            json!({"time_window_enabled": true, "time_window_minutes": 2, "max_tokens_per_window": 5000}),
        ),
        rule(3, "money", "budget", json!({"max_usd": 1.0})),
        rule(
            4,
            "internal-money",
            "budget",
            json!({"max_usd": 1.0, "channel": "internal"}),
        ),
        rule(5, "cap", "token_limit", json!({"max_tokens": 4000})),
    ];
    let mut req = view(&h);
    req.price = Some(Price::per_million(10.0, 30.0));
    let external = planned(&rules, &req).unwrap();
    assert_eq!(
        keys(&external),
        ["1:namespace:ns", "2:namespace:ns", "3:namespace:ns"]
    );
    req.internal = true;
    let internal = planned(&rules, &req).unwrap();
    // Rate limits and per-request caps hold; budgets only when named.
    assert_eq!(keys(&internal), ["1:namespace:ns", "4:namespace:ns"]);
    assert_eq!(internal.static_cap, Some(3900));
}

/// While the store is unreachable, a `local_share` rule's window shares out
/// what the store last left of it (nothing when nothing was left, the
/// whole limit when it never answered); concurrency always the whole
/// limit. Keys are marked; rules that fail open are left out.
#[test]
fn local_share_divides_what_was_left() {
    let h = headers();
    let rules = [
        rule(
            1,
            "rate",
            "rate_limit",
            json!({"max_requests": 30, "time_window_seconds": 60, "fail_mode": "local_share"}),
        ),
        rule(
            2,
            "slots",
            "concurrency",
            json!({"max_concurrent": 9, "fail_mode": "local_share"}),
        ),
        rule(3, "open", "rate_limit", json!({"max_qps": 5})),
    ];
    let p = planned(&rules, &view(&h)).unwrap();
    assert!(p.shares_locally());
    let limits = |left: Option<u64>| -> Vec<(u64, bool)> {
        let local = p.local_share(3, |_| left).unwrap();
        local
            .checks
            .iter()
            .map(|c| match c {
                Check::Window { limit, key, .. } | Check::Concurrency { limit, key, .. } => {
                    (*limit, key.starts_with(LOCAL_SHARE_MARK))
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    };
    assert_eq!(limits(None), [(10, true), (3, true)]);
    assert_eq!(limits(Some(28)), [(9, true), (3, true)]);
    assert_eq!(limits(Some(0)), [(0, true), (3, true)]);
    // Never more than the limit, at least one while something is left.
    assert_eq!(limits(Some(1000)), [(10, true), (3, true)]);
    assert_eq!(limits(Some(2)), [(1, true), (3, true)]);

    // What an admission left is noted for the local_share rules only.
    let store = LocalCounterStore::new(FakeClock::at(0));
    let admission = store.admit_now(&p.checks);
    assert!(admission.admitted);
    let mut seen = SeenRemaining::new(10);
    p.note_remaining(&admission, &mut seen, 0);
    assert_eq!(seen.remaining(&p.checks[0], 0), Some(29));
    assert_eq!(seen.len(), 1);
}
