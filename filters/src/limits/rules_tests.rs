//! Tests of rule config parsing, validation messages and the schema.

use super::*;
use serde_json::json;

fn parse(rule_type: &str, config: Value) -> Result<RuleConfig, String> {
    RuleConfig::parse(rule_type, &config)
}

fn err(rule_type: &str, config: Value) -> String {
    match parse(rule_type, config) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e,
    }
}

fn rate(config: Value) -> RateLimitConfig {
    match parse("rate_limit", config) {
        Ok(RuleConfig::RateLimit(c)) => c,
        other => panic!("{other:?}"),
    }
}

fn tokens(config: Value) -> TokenLimitConfig {
    match parse("token_limit", config) {
        Ok(RuleConfig::TokenLimit(c)) => c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn seed_000_examples_parse() {
    let c = rate(json!({"max_qps": 50, "time_window_seconds": 1}));
    assert_eq!((c.limit(), c.window_ms()), (50, 1000));
    assert_eq!(c.algorithm, RateAlgorithm::FixedWindow);
    assert_eq!(
        (c.key_by, c.fail_mode),
        (KeyBySet::from(KeyBy::Namespace), FailMode::Open)
    );
    assert_eq!(rate(json!({"max_qps": 50})).time_window_seconds, 1);
    let t = tokens(json!({"max_tokens": 4096}));
    assert_eq!(t.max_tokens, Some(4096));
    assert!(t.matches_model(None) && t.matches_model(Some("gpt-4o")));
    let t = tokens(json!({"model_name": "gpt-4o", "max_tokens": 4096,
        "time_window_enabled": true, "time_window_minutes": 60, "max_tokens_per_window": 100000}));
    assert_eq!(t.budget(), Some((3_600_000, 100_000)));
}

#[test]
fn configs_round_trip_through_json() {
    let configs = [
        (
            "rate_limit",
            json!({"max_requests": 60, "time_window_seconds": 60, "algorithm": "token_bucket", "burst": 5, "key_by": "api_key", "fail_mode": "closed"}),
        ),
        (
            "concurrency",
            json!({"max_concurrent": 3, "key_by": "header", "header_name": "X-Team"}),
        ),
        (
            "token_limit",
            json!({"model_name": "gpt-4*", "max_input_tokens": 100, "max_output_tokens": 50}),
        ),
    ];
    for (rule_type, config) in configs {
        let parsed = parse(rule_type, config).unwrap();
        assert_eq!(parsed.rule_type(), rule_type);
        let again = parse(rule_type, serde_json::to_value(&parsed).unwrap()).unwrap();
        assert_eq!(parsed, again);
    }
}

#[test]
fn header_names_are_lower_cased() {
    let c = parse(
        "concurrency",
        json!({"max_concurrent": 3, "key_by": "header", "header_name": "X-Team"}),
    )
    .unwrap();
    assert_eq!(c.header_name(), Some("x-team"));
    assert_eq!(c.key_by(), &KeyBySet::from(KeyBy::Header));
}

#[test]
fn nulls_are_absent_and_strings_are_parsed() {
    let c = rate(json!({"max_requests": 5, "burst": null, "max_qps": null}));
    assert_eq!(c.limit(), 5);
    let c = parse("rate_limit", Value::String("{\"max_qps\": 7}".into())).unwrap();
    assert!(matches!(c, RuleConfig::RateLimit(r) if r.limit() == 7));
    assert!(err("rate_limit", Value::String("max_qps=7".into()))
        .starts_with("rule_config: is a string"));
    assert!(err("rate_limit", json!([1])).starts_with("rule_config: must be an object"));
}

#[test]
fn flags_accept_seed_style_numbers() {
    let t = tokens(
        json!({"time_window_enabled": 1, "time_window_minutes": 1, "max_tokens_per_window": 10}),
    );
    assert!(t.time_window_enabled);
    assert!(err("token_limit", json!({"time_window_enabled": "yes"}))
        .starts_with("rule_config.time_window_enabled: expected true or false"));
}

#[test]
fn errors_name_the_field() {
    let cases = [
        ("rate_limit", json!({"max_requests": 5, "burts": 3}), "rule_config.burts: unknown field for rule_type rate_limit"),
        ("rate_limit", json!({"max_requests": "5"}), "rule_config.max_requests: expected a whole number"),
        ("rate_limit", json!({"max_requests": 2.5}), "rule_config.max_requests: expected a whole number"),
        ("rate_limit", json!({"max_requests": -1}), "rule_config.max_requests: expected a whole number"),
        ("rate_limit", json!({"max_requests": 5, "algorithm": "leaky"}), "rule_config.algorithm: expected one of fixed_window, sliding_window, token_bucket"),
        ("rate_limit", json!({"max_requests": 5, "key_by": "user"}), "rule_config.key_by: expected one of namespace"),
        ("rate_limit", json!({"max_requests": 5, "fail_mode": "shut"}), "rule_config.fail_mode: expected one of open, closed"),
        ("rate_limit", json!({}), "rule_config.max_requests: missing"),
        ("rate_limit", json!({"max_requests": 5, "max_qps": 5}), "rule_config.max_qps: is an alias"),
        ("rate_limit", json!({"max_qps": 0}), "rule_config.max_qps: must be at least 1"),
        ("rate_limit", json!({"max_requests": 5, "time_window_seconds": 0}), "rule_config.time_window_seconds: must be at least 1"),
        ("rate_limit", json!({"max_requests": 5, "time_window_seconds": 40_000_000}), "rule_config.time_window_seconds: the window may be at most 366 days"),
        ("rate_limit", json!({"max_requests": 5, "burst": 10}), "rule_config.burst: only the token_bucket algorithm has a burst"),
        ("rate_limit", json!({"max_requests": 5, "algorithm": "token_bucket", "burst": 0}), "rule_config.burst: must be at least 1"),
        ("rate_limit", json!({"max_requests": 10, "time_window_seconds": 60, "algorithm": "token_bucket"}), "rule_config.time_window_seconds: a token_bucket refills"),
        ("rate_limit", json!({"max_requests": 5, "key_by": "header"}), "rule_config.header_name: missing"),
        ("rate_limit", json!({"max_requests": 5, "key_by": "header", "header_name": "x team"}), "rule_config.header_name: \"x team\" is not a valid header name"),
        ("rate_limit", json!({"max_requests": 5, "header_name": "x-team"}), "rule_config.header_name: only used with \"key_by\": \"header\""),
        ("concurrency", json!({}), "rule_config.max_concurrent: missing"),
        ("concurrency", json!({"max_concurrent": 0}), "rule_config.max_concurrent: must be at least 1"),
        ("concurrency", json!({"max_concurrent": 1, "max_qps": 3}), "rule_config.max_qps: unknown field for rule_type concurrency"),
        ("token_limit", json!({}), "rule_config: a token_limit without a limit does nothing"),
        ("token_limit", json!({"model_name": "gpt-4o"}), "rule_config: a token_limit without a limit does nothing"),
        ("token_limit", json!({"max_tokens": 0}), "rule_config.max_tokens: must be at least 1"),
        ("token_limit", json!({"max_output_tokens": 0}), "rule_config.max_output_tokens: must be at least 1"),
        ("token_limit", json!({"model_name": "", "max_tokens": 5}), "rule_config.model_name: is empty"),
        ("token_limit", json!({"model_name": "gpt*4", "max_tokens": 5}), "rule_config.model_name: \"gpt*4\" has a * before the end"),
        ("token_limit", json!({"time_window_enabled": true, "max_tokens_per_window": 5}), "rule_config.time_window_minutes: missing"),
        ("token_limit", json!({"time_window_enabled": true, "time_window_minutes": 5}), "rule_config.max_tokens_per_window: missing"),
        ("token_limit", json!({"time_window_enabled": true, "time_window_minutes": 0, "max_tokens_per_window": 5}), "rule_config.time_window_minutes: must be at least 1"),
        ("token_limit", json!({"time_window_enabled": true, "time_window_minutes": 5, "max_tokens_per_window": 0}), "rule_config.max_tokens_per_window: must be at least 1"),
        ("token_limit", json!({"max_tokens": 5, "time_window_minutes": 5}), "rule_config.time_window_minutes: has no effect without \"time_window_enabled\": true"),
        ("token_limit", json!({"max_tokens": 5, "max_tokens_per_window": 5}), "rule_config.max_tokens_per_window: has no effect"),
        ("matcher", json!({}), "rule_type: unknown type \"matcher\"; write one of rate_limit, concurrency, token_limit"),
    ];
    for (rule_type, config, expected) in cases {
        let e = err(rule_type, config.clone());
        assert!(e.starts_with(expected), "{rule_type} {config}: {e}");
    }
}

#[test]
fn token_bucket_rates_must_be_whole_per_second() {
    let c =
        rate(json!({"max_requests": 120, "time_window_seconds": 60, "algorithm": "token_bucket"}));
    assert_eq!((c.rate_per_sec(), c.bucket_size()), (2, 120));
    let c = rate(json!({"max_qps": 5, "algorithm": "token_bucket", "burst": 20}));
    assert_eq!((c.rate_per_sec(), c.bucket_size()), (5, 20));
    let e = err(
        "rate_limit",
        json!({"max_requests": 10, "time_window_seconds": 60, "algorithm": "token_bucket"}),
    );
    assert!(e.contains("10 / 60 is not"), "{e}");
    assert!(
        e.contains("\"max_requests\": 60, \"time_window_seconds\": 60"),
        "{e}"
    );
    assert!(e.contains("sliding_window"), "{e}");
    // Any rate works with the window algorithms.
    assert_eq!(
        rate(json!({"max_requests": 10, "time_window_seconds": 60, "algorithm": "sliding_window"}))
            .window_ms(),
        60_000
    );
}

#[test]
fn model_patterns() {
    let with = |p: &str| tokens(json!({"model_name": p, "max_tokens": 10}));
    assert!(with("gpt-4o").matches_model(Some("gpt-4o")));
    assert!(!with("gpt-4o").matches_model(Some("gpt-4o-mini")));
    assert!(with("gpt-4o*").matches_model(Some("gpt-4o-mini")));
    assert!(!with("gpt-4o*").matches_model(Some("gpt-3.5")));
    assert!(with("*").matches_model(Some("anything")));
    assert!(!with("*").matches_model(None));
}

#[test]
fn fail_mode_is_read_from_every_type() {
    for (t, c) in [
        ("rate_limit", json!({"max_qps": 1, "fail_mode": "closed"})),
        (
            "concurrency",
            json!({"max_concurrent": 1, "fail_mode": "closed"}),
        ),
        (
            "token_limit",
            json!({"max_tokens": 1, "fail_mode": "closed"}),
        ),
    ] {
        assert_eq!(parse(t, c).unwrap().fail_mode(), FailMode::Closed);
    }
}

#[test]
fn schema_lists_the_seed_types_and_budget() {
    let schema = rule_types_schema();
    let types = schema["rule_types"].as_array().unwrap();
    let names: Vec<&str> = types.iter().map(|t| t["type"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["rate_limit", "concurrency", "token_limit", "budget"]
    );
    let budget = &types[3]["config_schema"];
    assert_eq!(budget["max_usd"]["type"], "number");
    assert_eq!(budget["max_usd"]["required"], json!(true));
    assert_eq!(
        budget["period"]["enum"],
        json!(["hour", "day", "week", "month"])
    );
    assert_eq!(
        types[0]["config_schema"]["channel"]["enum"],
        json!(["internal", "external"])
    );
    assert_eq!(
        types[0]["config_schema"]["key_by"]["list_allowed"],
        json!(true)
    );
    let token = &types[2]["config_schema"];
    for (field, ty) in [
        ("model_name", "string"),
        ("max_tokens", "number"),
        ("time_window_enabled", "boolean"),
        ("time_window_minutes", "number"),
        ("max_tokens_per_window", "number"),
    ] {
        assert_eq!(token[field]["type"], ty, "{field}");
        assert!(token[field]["description"].is_string());
    }
    let rate = &types[0]["config_schema"];
    assert_eq!(
        rate["algorithm"]["enum"],
        json!(["fixed_window", "sliding_window", "token_bucket"])
    );
    assert_eq!(rate["time_window_seconds"]["default"], json!(1));
    assert_eq!(rate["key_by"]["default"], json!("namespace"));
    assert_eq!(
        types[1]["config_schema"]["max_concurrent"]["required"],
        json!(true)
    );
    assert_eq!(token["time_window_enabled"]["default"], json!(false));
}

#[test]
fn every_schema_field_is_a_config_field() {
    // A config that sets every field of the schema parses (so the schema
    // and the structs cannot drift apart).
    let full = [
        (
            "rate_limit",
            json!({"max_requests": 2, "max_qps": null, "time_window_seconds": 2, "algorithm": "token_bucket", "burst": 3, "key_by": "header", "header_name": "x-a", "fail_mode": "closed", "channel": "external"}),
        ),
        (
            "concurrency",
            json!({"max_concurrent": 1, "key_by": "header", "header_name": "x-a", "fail_mode": "open", "channel": "internal"}),
        ),
        (
            "token_limit",
            json!({"model_name": "m", "max_tokens": 9, "max_input_tokens": 5, "max_output_tokens": 4, "time_window_enabled": true, "time_window_minutes": 1, "period": null, "max_tokens_per_window": 100, "key_by": "header", "header_name": "x-a", "fail_mode": "open", "channel": "internal"}),
        ),
        (
            "budget",
            json!({"max_usd": 2.5, "period": null, "window_minutes": 30, "key_by": ["header", "api_key"], "header_name": "x-a", "fail_mode": "closed", "channel": "external", "fallback_model": "cheap"}),
        ),
    ];
    let schema = rule_types_schema();
    for (i, (rule_type, config)) in full.into_iter().enumerate() {
        let fields = schema["rule_types"][i]["config_schema"]
            .as_object()
            .unwrap();
        assert_eq!(
            fields.len(),
            config.as_object().unwrap().len(),
            "{rule_type}"
        );
        parse(rule_type, config).unwrap();
    }
}

#[test]
fn key_by_takes_a_list() {
    let c = parse(
        "concurrency",
        json!({"max_concurrent": 2, "key_by": ["api_key", "route"]}),
    )
    .unwrap();
    assert_eq!(c.key_by().dims(), [KeyBy::ApiKey, KeyBy::Route]);
    assert_eq!(c.key_by().name(), "api_key+route");
    for (bad, says) in [
        (json!([]), "expected one of"),
        (json!(["api_key", "api_key"]), "listed twice"),
        (json!(["global", "route"]), "combines with nothing"),
        (json!(["api_key", "route", "model", "upstream"]), "1 to 3"),
        (json!(["api_key", "colour"]), "expected one of"),
    ] {
        let e = err("concurrency", json!({"max_concurrent": 2, "key_by": bad}));
        assert!(e.contains(says), "{bad}: {e}");
    }
    let e = err(
        "rate_limit",
        json!({"max_qps": 2, "key_by": ["api_key", "header"]}),
    );
    assert!(e.contains("header_name: missing"), "{e}");
    assert!(parse(
        "rate_limit",
        json!({"max_qps": 2, "key_by": ["api_key", "header"], "header_name": "x-team"})
    )
    .is_ok());
}

#[test]
fn token_budgets_take_a_calendar_period() {
    use crate::limits::store::CALENDAR_MONTH;
    let RuleConfig::TokenLimit(c) = parse(
        "token_limit",
        json!({"time_window_enabled": true, "period": "month", "max_tokens_per_window": 1000}),
    )
    .unwrap() else {
        panic!("token_limit")
    };
    assert_eq!(c.budget(), Some((CALENDAR_MONTH, 1000)));
    let err = parse(
        "token_limit",
        json!({"time_window_enabled": true, "period": "day", "time_window_minutes": 5, "max_tokens_per_window": 1}),
    )
    .unwrap_err();
    assert!(err.contains("not both"), "{err}");
    let err = parse("token_limit", json!({"period": "day", "max_tokens": 5})).unwrap_err();
    assert!(err.contains("rule_config.period"), "{err}");
    let RuleConfig::Budget(b) = parse("budget", json!({"max_usd": 5, "period": "month"})).unwrap()
    else {
        panic!("budget")
    };
    assert_eq!(b.window_ms(), CALENDAR_MONTH);
}
