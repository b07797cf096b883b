//! Tests of the rules, [`Masker::mask`], [`mask_json`] and [`TextStream`]
//! (the split-invariance property included).

use super::*;
use proptest::prelude::*;
use serde_json::json;
use std::sync::LazyLock;

fn builtins() -> &'static Masker {
    static M: LazyLock<Masker> =
        LazyLock::new(|| Masker::new(&Builtin::ALL.map(MaskRule::builtin)).unwrap());
    &M
}

fn only(b: Builtin) -> Masker {
    Masker::new(&[MaskRule::builtin(b)]).unwrap()
}

fn masked(m: &Masker, text: &str) -> String {
    m.mask(text).into_owned()
}

#[test]
fn email() {
    let m = only(Builtin::Email);
    for (text, want) in [
        ("mail alice@example.com now", "mail [REDACTED:email] now"),
        (
            "<bob.smith+tag@mail.corp.example.co.uk>.",
            "<[REDACTED:email]>.",
        ),
        ("a@b.io, c_d@e-f.org", "[REDACTED:email], [REDACTED:email]"),
        ("end: x@example.com.", "end: [REDACTED:email]."),
    ] {
        assert_eq!(masked(&m, text), want, "{text}");
    }
    for text in [
        "no at sign",
        "@example.com",
        "alice@",
        "alice@localhost",
        "a@b.c",
    ] {
        assert_eq!(masked(&m, text), text);
    }
}

#[test]
fn phone() {
    let m = only(Builtin::Phone);
    for text in [
        "+1 415-555-0199",
        "(415) 555-0199",
        "+44 20 7946 0958",
        "+1 (415) 555-0199",
        "415-555-0199",
        "415.555.0199",
        "+14155550199",
    ] {
        assert_eq!(
            masked(&m, &format!("call {text} now")),
            "call [REDACTED:phone] now",
            "{text}"
        );
    }
    for text in [
        "in 2024 and 1999",
        "call 555-0199",
        "12345678",
        "+1 234 567",
        "1,234,567,890",
        "version 1.2.3",
        "2024-12-31",
        "ts 1700000000",
        "4155550199123",
    ] {
        assert_eq!(masked(&m, text), text);
    }
}

#[test]
fn card_luhn() {
    let m = only(Builtin::Card);
    for text in [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5555555555554444",
        "378282246310005",
        "3782 822463 10005",
        "6011111111111117",
    ] {
        assert_eq!(
            masked(&m, &format!("card {text}.")),
            "card [REDACTED:card].",
            "{text}"
        );
    }
    // After a rejected match the rule looks again from the next character.
    assert_eq!(
        masked(&m, "1000-4111 1111 1111 1111"),
        "1000-[REDACTED:card]"
    );
    for text in [
        "4111111111111112",
        "4111 1111 1111 1112",
        "order 123456789012",
        "41111111111111111111111",
        "x4111111111111111",
        "1 2 3 4 5 6 7 8 9 10 11 12 13 14",
    ] {
        assert_eq!(masked(&m, text), text);
        assert!(matches!(m.mask(text), Cow::Borrowed(_)), "{text}");
    }
    assert!(luhn_ok("4111-1111-1111-1111"));
    assert!(!luhn_ok("4111-1111-1111-1112"));
    assert!(!luhn_ok("0"), "too few digits");
}

#[test]
fn api_key() {
    let m = only(Builtin::ApiKey);
    let keys = [
        format!("sk-proj-{}", "aB3_".repeat(12)),
        format!("sk-ant-api03-{}", "xY9-".repeat(20)),
        "AKIAIOSFODNN7EXAMPLE".to_owned(),
        format!("ghp_{}", "a1B2".repeat(9)),
        format!("github_pat_{}", "11ABC_".repeat(5)),
        "xoxb-123456789012-abcdefghij".to_owned(),
    ];
    for key in &keys {
        assert_eq!(
            masked(&m, &format!("key={key} ok")),
            "key=[REDACTED:api_key] ok",
            "{key}"
        );
    }
    for text in [
        "task-management-system-design-doc",
        "sk-short",
        "AKIAIOSFODNN7EXAMPLEX",
        "ghp_tooshort",
        "a very long identifier_with_underscores_and_more_than_32_chars",
    ] {
        assert_eq!(masked(&m, text), text);
    }
}

#[test]
fn builtin_lengths_are_bounded() {
    for b in Builtin::ALL {
        let (_, _, len) = check_pattern(b.pattern(), 0, b.as_str()).unwrap();
        assert!(len > 0 && len <= 400, "{b:?}: {len}");
    }
    let m = builtins();
    assert_eq!(m.holdback(), m.max_len - 1);
    assert!(matches!(m.viable, Viable::Regex(_)));
    assert_eq!(Masker::new(&[]).unwrap().holdback(), 0);
}

#[test]
fn errors_name_the_rule() {
    let err = |rules: &[MaskRule]| Masker::new(rules).unwrap_err();
    let e = err(&[
        MaskRule::builtin(Builtin::Email),
        MaskRule::pattern("ids", "a("),
    ]);
    assert!(
        matches!(e, RedactError::InvalidRegex { index: 1, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("#1") && e.to_string().contains("\"ids\""),
        "{e}"
    );
    let e = err(&[MaskRule::pattern("star", "ab*")]);
    assert!(matches!(e, RedactError::Unbounded { index: 0, .. }));
    assert!(e.to_string().contains("{1,64}"), "{e}");
    assert!(matches!(
        err(&[MaskRule::pattern("e", "a*")]),
        RedactError::MatchesEmpty { .. }
    ));
    assert!(matches!(
        err(&[MaskRule::pattern("e", r"\b")]),
        RedactError::MatchesEmpty { .. }
    ));
    assert!(matches!(
        err(&[MaskRule::pattern("n", r"[^\s\S]")]),
        RedactError::NeverMatches { .. }
    ));
    let e = err(&[MaskRule::pattern("big", "a{2000}")]);
    assert!(
        matches!(
            e,
            RedactError::TooLong {
                max_len: 2000,
                limit: 1024,
                ..
            }
        ),
        "{e:?}"
    );
    let both = MaskRule {
        pattern: Some("x".into()),
        ..MaskRule::builtin(Builtin::Card)
    };
    let e = err(&[both]);
    assert!(matches!(e, RedactError::BothBuiltinAndPattern { ref name, .. } if name == "card"));
    let e = err(&[MaskRule {
        name: "z".into(),
        ..MaskRule::default()
    }]);
    assert!(matches!(
        e,
        RedactError::NeitherBuiltinNorPattern { index: 0, .. }
    ));
    assert!(Masker::new(&[MaskRule::pattern("ok", "a{1,1024}")]).is_ok());
}

#[test]
fn rules_from_config() {
    let rules: Vec<MaskRule> = serde_json::from_value(json!([
        {"builtin": "api_key"},
        {"name": "mail", "builtin": "email", "replacement": "<email>"},
        {"name": "ticket", "pattern": "TICKET-[0-9]{1,8}"},
        {"pattern": "secret[0-9]{2}"}
    ]))
    .unwrap();
    assert_eq!(rules[0].builtin, Some(Builtin::ApiKey));
    let m = Masker::new(&rules).unwrap();
    assert_eq!(
        masked(&m, "a@b.io TICKET-42 secret77 AKIAIOSFODNN7EXAMPLE"),
        "<email> [REDACTED:ticket] [REDACTED] [REDACTED:api_key]"
    );
    let bad = serde_json::from_value::<MaskRule>(json!({"builtin": "email", "color": 1}));
    assert!(bad.is_err());
    assert!(serde_json::from_value::<MaskRule>(json!({"builtin": "ssn"})).is_err());
    for b in Builtin::ALL {
        assert_eq!(serde_json::to_value(b).unwrap(), json!(b.as_str()));
    }
}

#[test]
fn overlapping_rules_leftmost_then_first() {
    let rules = [
        MaskRule::pattern("short", "bc"),
        MaskRule::pattern("long", "abcd"),
        MaskRule::pattern("re", r"\[RE[A-Z:a-z]{1,20}\]"),
    ];
    let m = Masker::new(&rules).unwrap();
    // "abcd" starts first, so it wins over "bc".
    assert_eq!(masked(&m, "xabcdx"), "x[REDACTED:long]x");
    // Same start: the earlier rule wins.
    let m2 = Masker::new(&[
        MaskRule::pattern("one", "ab"),
        MaskRule::pattern("two", "abc"),
    ])
    .unwrap();
    assert_eq!(masked(&m2, "abc"), "[REDACTED:one]c");
    // Replacements are not scanned again.
    assert_eq!(masked(&m, "bc"), "[REDACTED:short]");
    assert!(matches!(m.mask("nothing here"), Cow::Borrowed(_)));
}

/// Pushes `pieces` through a fresh stream; returns the outputs, the finish
/// output, and the largest held text seen after a push.
fn stream(m: &Masker, pieces: &[&str]) -> (Vec<String>, String, usize) {
    let mut s = TextStream::new();
    let mut outs = Vec::new();
    let mut max_held = 0;
    for p in pieces {
        outs.push(s.push(m, p));
        max_held = max_held.max(s.held().len());
    }
    (outs, s.finish(m), max_held)
}

fn streamed(m: &Masker, pieces: &[&str]) -> String {
    let (outs, last, _) = stream(m, pieces);
    outs.concat() + &last
}

#[test]
fn stream_split_email() {
    let m = builtins();
    let pieces = ["Write to ali", "ce@exa", "mple.com today."];
    let (outs, last, _) = stream(m, &pieces);
    assert_eq!(outs.concat() + &last, "Write to [REDACTED:email] today.");
    assert_eq!(outs[0], "Write to ", "only the unfinished word is held");
    assert_eq!(outs[1], "");
    assert_eq!(outs[2], "[REDACTED:email] ");
    assert_eq!(last, "today.", "could still become an e-mail address");
}

#[test]
fn stream_holds_only_the_last_word() {
    let m = builtins();
    let mut s = TextStream::new();
    assert_eq!(s.push(m, "Hello"), "");
    assert_eq!(s.push(m, " world"), "Hello ");
    assert_eq!(s.held(), "world");
    assert_eq!(s.push(m, ", fine. "), "world, fine. ");
    assert_eq!(s.held(), "");
    assert_eq!(s.finish(m), "");
}

#[test]
fn stream_boundaries() {
    let m = builtins();
    for (pieces, why) in [
        (
            vec!["card 4111111111111111", "1 more"],
            "digits continue: 17 digits, no card",
        ),
        (
            vec!["card 4111111111111111", " more"],
            "card ends at a boundary",
        ),
        (
            vec!["4111 1111 1111 111", "2 x"],
            "non-Luhn at the boundary",
        ),
        (vec!["+1 415-555-01", "99"], "phone split"),
        (
            vec!["sk-", "proj-abcdefghij", "klmnopqrstuvwxyz012345"],
            "key split",
        ),
        (
            vec!["AKIAIOSFODNN7EXAMPLE", "X"],
            "trailing \\b fails later",
        ),
        (vec!["é4111111111111111", "é"], "multi-byte context"),
        (
            vec!["1000-4111 1111 1111 1111"],
            "rejected match overlapping the held text",
        ),
        (
            vec!["0100-4111 1111 11", "11 1111"],
            "rejected match, split",
        ),
        (
            vec!["+4", "111 1111 1111 1112"],
            "phone prefix, then a non-Luhn card",
        ),
        (vec!["é0", "#"], "context before a look-behind"),
    ] {
        let whole = pieces.concat();
        for m in [m, custom()] {
            assert_eq!(streamed(m, &pieces), masked(m, &whole), "{why}");
        }
    }
}

#[test]
fn stream_without_rules_passes_through() {
    let m = Masker::new(&[]).unwrap();
    let (outs, last, held) = stream(&m, &["a@b.io", " x"]);
    assert_eq!(outs, ["a@b.io", " x"]);
    assert_eq!((last.as_str(), held), ("", 0));
}

#[test]
fn large_patterns() {
    // A long literal: the prefix regex nests by halves, not per character.
    let lit: String = (0..600)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let m = Masker::new(&[
        MaskRule::pattern("lit", &lit),
        MaskRule::pattern("w", r"[a-z]{1,250}#"),
    ])
    .unwrap();
    assert!(matches!(m.viable, Viable::Regex(_)));
    let text = format!("x {lit} y");
    let pieces: Vec<&str> = text
        .as_bytes()
        .chunks(7)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    assert_eq!(streamed(&m, &pieces), "x [REDACTED:lit] y");
    // Unicode classes repeated that much exceed the regex size limit.
    let e = Masker::new(&[MaskRule::pattern("w", r"\w{1,900}")]).unwrap_err();
    assert!(matches!(e, RedactError::InvalidRegex { .. }), "{e:?}");
}

/// Custom rules with look-arounds, anchors, Unicode and case folding.
fn custom() -> &'static Masker {
    static M: LazyLock<Masker> = LazyLock::new(custom_rules);
    &M
}

/// [`custom`] with the fallback holdback (a fixed window).
fn custom_window() -> &'static Masker {
    static M: LazyLock<Masker> = LazyLock::new(|| {
        let mut m = custom_rules();
        m.viable = Viable::Window(m.max_len);
        m
    });
    &M
}

fn custom_rules() -> Masker {
    let mut rules = Builtin::ALL.map(MaskRule::builtin).to_vec();
    for (name, p) in [
        ("line", r"(?m)^secret$"),
        ("word", r"\bfoo\b"),
        ("start", r"^hdr"),
        ("end", r"tail$"),
        ("pw", r"(?i)password=[a-z0-9]{1,12}"),
        ("u", r"é{2}ß"),
        ("w", r"\w{2,5}#"),
        ("lazy", r"<.{1,10}?>"),
        ("crlf", r"(?mR)^k$"),
    ] {
        rules.push(MaskRule::pattern(name, p));
    }
    Masker::new(&rules).unwrap()
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9@.+ ()_#<>=é\n\\-]{0,12}",
        1 => "[0-9 \\-]{0,20}",
        1 => prop::sample::select(vec![
            "alice@example.com", "4111 1111 1111 1111", "4111111111111111", "+1 415-555-0199",
            "(415) 555-0199", "+44 20 7946 0958", "AKIAIOSFODNN7EXAMPLE", "secret", "\nsecret\n",
            "foo", "hdr", "tail", "PassWord=abc123", "ééß", "😀", "<ab>", "k\r\n", "sk-",
            "abcdefghijklmnopqrstuvwxyz", "4111 1111 1111 1112",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A text and the byte offsets (char boundaries) where it is cut.
fn text_and_cuts() -> impl Strategy<Value = (String, Vec<usize>)> {
    (
        prop::collection::vec(fragment(), 0..10),
        prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    )
        .prop_map(|(frags, idx)| {
            let text = frags.concat();
            let bounds: Vec<usize> = (0..=text.len())
                .filter(|&i| text.is_char_boundary(i))
                .collect();
            let mut cuts: Vec<usize> = idx.iter().map(|i| bounds[i.index(bounds.len())]).collect();
            cuts.sort_unstable();
            cuts.dedup();
            (text, cuts)
        })
}

fn pieces_at<'a>(text: &'a str, cuts: &[usize]) -> Vec<&'a str> {
    let mut prev = 0;
    let mut out: Vec<&str> = cuts
        .iter()
        .map(|&c| {
            let p = &text[prev..c];
            prev = c;
            p
        })
        .collect();
    out.push(&text[prev..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn split_invariance_builtins((text, cuts) in text_and_cuts()) {
        let m = builtins();
        let pieces = pieces_at(&text, &cuts);
        let (outs, last, held) = stream(m, &pieces);
        prop_assert_eq!(outs.concat() + &last, masked(m, &text));
        prop_assert!(held <= m.holdback() + 1, "held {} > {}", held, m.holdback() + 1);
    }

    #[test]
    fn split_invariance_custom((text, cuts) in text_and_cuts()) {
        let pieces = pieces_at(&text, &cuts);
        for m in [custom(), custom_window()] {
            prop_assert_eq!(streamed(m, &pieces), masked(m, &text));
        }
    }

    #[test]
    fn char_by_char(text in prop::collection::vec(fragment(), 0..8).prop_map(|f| f.concat())) {
        let m = custom();
        let pieces: Vec<String> = text.chars().map(String::from).collect();
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        prop_assert_eq!(streamed(m, &pieces), masked(m, &text));
    }
}
