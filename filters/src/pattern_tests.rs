//! Tests of [`Pattern`]: which shapes take the fast path, and that every
//! pattern matches exactly what its `Regex` matches.

use super::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// The variant's name and literal (empty for `Regex`).
fn shape(p: &Pattern) -> (&'static str, &str) {
    match &p.kind {
        Kind::Exact(l) => ("Exact", l),
        Kind::Prefix(l) => ("Prefix", l),
        Kind::Suffix(l) => ("Suffix", l),
        Kind::Contains(l) => ("Contains", l),
        Kind::PrefixRestLine(l) => ("PrefixRestLine", l),
        Kind::Regex(_) => ("Regex", ""),
    }
}

/// `Pattern::new` or `Pattern::full`, and the regex it must agree with.
fn both(pattern: &str, full: bool) -> (Pattern, Regex) {
    if full {
        (
            Pattern::full(pattern).unwrap(),
            Regex::new(&format!("^(?:{pattern})$")).unwrap(),
        )
    } else {
        (Pattern::new(pattern).unwrap(), Regex::new(pattern).unwrap())
    }
}

const HAYSTACKS: &[&str] = &[
    "",
    "\n",
    "gpt",
    "gpt-4o",
    "gpt-4o-mini",
    "xgpt-4o",
    "gpt-4o\n",
    "\ngpt-4o",
    "POST",
    "post",
    "POSTX",
    "/v1/chat/",
    "/v1/chat/completions",
    "/v1/chat/a\nb",
    "/v1/",
    "x/v1/",
    "a.b",
    "axb",
    "a.b\n",
    "mini",
    "mini\n",
    "gpt-4o-mini\n",
    "é/v1/é",
    "éab",
    "a",
    "b",
    "ab",
    "1234",
];

#[test]
fn fixed_cases_pick_the_expected_shape_and_agree_with_regex() {
    #[rustfmt::skip]
    let cases: &[(&str, bool, &str, &str)] = &[
        // pattern, full?, variant, literal
        ("^gpt-4o", false, "Prefix", "gpt-4o"),
        ("POST", true, "Exact", "POST"),
        ("/v1/chat/.*", true, "PrefixRestLine", "/v1/chat/"),
        ("gpt", false, "Contains", "gpt"),
        ("mini$", false, "Suffix", "mini"),
        (r"^a\.b$", false, "Exact", "a.b"),
        ("(?i)post", false, "Regex", ""),
        ("(?i)post", true, "Regex", ""),
        ("a|b", false, "Regex", ""),
        ("a|b", true, "Regex", ""),
        ("[ab]", false, "Regex", ""),
        ("^$", false, "Exact", ""),
        ("", false, "Contains", ""),
        ("", true, "Exact", ""),
        (".*", false, "Contains", ""),
        (".*", true, "PrefixRestLine", ""),
        ("^/v1/.*", false, "Prefix", "/v1/"),
        (r"\d+", false, "Regex", ""),
        (r"\d+", true, "Regex", ""),
        // Groups do not change whether something matches.
        ("(?:gpt)", false, "Contains", "gpt"),
        ("(gpt)-(4o)", true, "Exact", "gpt-4o"),
        ("^(/v1/.*)$", false, "PrefixRestLine", "/v1/"),
        // An unanchored leading `.*` can match the empty string.
        (".*gpt.*", false, "Contains", "gpt"),
        (".*mini$", false, "Suffix", "mini"),
        // Lazy or swapped greed is the same for `is_match`.
        ("^/v1/.*?$", false, "PrefixRestLine", "/v1/"),
        ("(?U)^/v1/.*$", false, "PrefixRestLine", "/v1/"),
        // Case-insensitive text with no case variants is a plain literal.
        ("(?i)/-", false, "Contains", "/-"),
        ("^é", false, "Prefix", "é"),
        // Not recognised: left to the regex.
        ("gpt.*$", false, "Regex", ""),
        ("^.*gpt", false, "Regex", ""),
        ("(?s)^/v1/.*$", false, "Regex", ""),
        ("(?R)^/v1/.*$", false, "Regex", ""),
        ("(?m)^gpt$", false, "Regex", ""),
        (r"\bgpt", false, "Regex", ""),
        ("^/v1/.+", false, "Regex", ""),
        ("^a.*b.*", false, "Regex", ""),
        ("^^a", false, "Regex", ""),
        ("a$$", false, "Regex", ""),
        // The wrapper is text: this is "starts with a or ends with b".
        ("a)|(?:b", true, "Regex", ""),
    ];
    for &(pattern, full, variant, lit) in cases {
        let (p, re) = both(pattern, full);
        assert_eq!(shape(&p), (variant, lit), "{pattern:?} full={full}");
        for h in HAYSTACKS {
            assert_eq!(
                p.is_match(h),
                re.is_match(h),
                "{pattern:?} full={full} on {h:?}"
            );
        }
    }
}

#[test]
fn invalid_patterns_fail_as_regex_does() {
    for pattern in ["(unclosed", "a{2,1}", r"\p{Nope}", "(?-u:\\xFF)", "a)"] {
        let want = Regex::new(pattern).unwrap_err().to_string();
        assert_eq!(Pattern::new(pattern).unwrap_err().to_string(), want);
    }
    let unclosed = "(x";
    let want = Regex::new(&format!("^(?:{unclosed})$"))
        .unwrap_err()
        .to_string();
    assert_eq!(Pattern::full(unclosed).unwrap_err().to_string(), want);
    // Parses, but is too big to compile: the size limit still applies.
    let big = "a{1000}{1000}";
    assert!(Regex::new(big).is_err());
    assert!(Pattern::new(big).is_err());
}

/// Patterns operators write must keep the fast path.
#[test]
fn common_literal_patterns_are_not_regexes() {
    let search = [
        "^gpt-4o",
        "gpt-4o",
        "mini$",
        "^gpt-4o-mini$",
        r"^api\.openai\.com$",
        "^/v1/chat/.*",
        "(?:prod)",
        "(prod)",
        ".*prod.*",
    ];
    for pattern in search {
        let p = Pattern::new(pattern).unwrap();
        assert_ne!(shape(&p).0, "Regex", "{pattern:?}");
    }
    for pattern in ["POST", "/v1/chat/.*", "/v1/models", "prod", "gpt-4o.*"] {
        let p = Pattern::full(pattern).unwrap();
        assert_ne!(shape(&p).0, "Regex", "full {pattern:?}");
    }
}

/// Pattern pieces: the text in the pattern, and text it can match (used to
/// build haystacks that contain the pattern's literal part).
const LITERAL: &[(&str, &str)] = &[
    ("a", "a"),
    ("b", "b"),
    ("-", "-"),
    ("/", "/"),
    ("é", "é"),
    (r"\.", "."),
    (".", "é"),
];
const META: &[(&str, &str)] = &[
    ("^", ""),
    ("$", ""),
    (".*", "a-"),
    ("(?:", ""),
    ("(", ""),
    (")", ""),
    ("|", ""),
    ("(?i)", ""),
    ("[ab]", "b"),
];
const HAY: &[&str] = &["a", "b", "A", "B", "-", "/", "é", "É", ".", "\n"];

fn piece(from: &'static [(&'static str, &'static str)]) -> impl Strategy<Value = (String, String)> {
    prop::sample::select(from).prop_map(|(p, m)| (p.to_string(), m.to_string()))
}

fn join(pieces: Vec<(String, String)>) -> (String, String) {
    pieces
        .into_iter()
        .fold(Default::default(), |(mut p, mut m), (a, b)| {
            p.push_str(&a);
            m.push_str(&b);
            (p, m)
        })
}

/// `(pattern, text it may match)`: mostly the literal shapes the recogniser
/// looks for (`^lit`, `lit$`, `lit.*`, in groups or not), the rest random
/// mixes of literal and meta pieces.
fn pattern() -> impl Strategy<Value = (String, String)> {
    let lit = prop::collection::vec(piece(LITERAL), 0..4).prop_map(join);
    let shaped = (any::<bool>(), lit, 0u8..3, any::<bool>(), 0u8..3).prop_map(
        |(start, (lp, lm), tail, end, group)| {
            let tail = [("", ""), (".*", "a-"), (".*?", "")][tail as usize];
            let body = format!("{lp}{}", tail.0);
            let body = match group {
                0 => body,
                1 => format!("(?:{body})"),
                _ => format!("({body})"),
            };
            let (s, e) = (if start { "^" } else { "" }, if end { "$" } else { "" });
            (format!("{s}{body}{e}"), format!("{lm}{}", tail.1))
        },
    );
    let mixed = prop::collection::vec(prop_oneof![3 => piece(LITERAL), 2 => piece(META)], 0..7)
        .prop_map(join);
    prop_oneof![3 => shaped, 2 => mixed]
}

/// Haystacks: random text, or the pattern's matchable text with random
/// text around it.
fn haystacks(matchable: &str) -> impl Strategy<Value = Vec<String>> {
    let text = || prop::collection::vec(prop::sample::select(HAY), 0..4).prop_map(|v| v.concat());
    let matchable = matchable.to_string();
    let around = (text(), text()).prop_map(move |(a, b)| format!("{a}{matchable}{b}"));
    prop::collection::vec(prop_oneof![text(), around], 1..8)
}

fn pattern_and_haystacks() -> impl Strategy<Value = (String, Vec<String>)> {
    pattern().prop_flat_map(|(p, m)| (Just(p), haystacks(&m)))
}

/// The generator reaches the fast path often; otherwise the property below
/// would mostly compare the regex with itself.
#[test]
fn generator_produces_recognised_patterns() {
    let mut runner = TestRunner::deterministic();
    let (mut valid, mut fast) = (0, 0);
    for _ in 0..1000 {
        let (p, _) = pattern().new_tree(&mut runner).unwrap().current();
        if let Ok(p) = Pattern::new(&p) {
            valid += 1;
            fast += usize::from(shape(&p).0 != "Regex");
        }
    }
    assert!(
        fast * 2 > valid,
        "{fast} of {valid} valid patterns recognised"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// `Pattern::new` and `Pattern::full` match exactly what the regex does.
    #[test]
    fn pattern_agrees_with_regex((p, hs) in pattern_and_haystacks()) {
        let Ok(re) = Regex::new(&p) else { return Ok(()) };
        let pat = Pattern::new(&p).unwrap();
        let full_re = Regex::new(&format!("^(?:{p})$"));
        let full = Pattern::full(&p);
        prop_assert_eq!(full_re.is_ok(), full.is_ok());
        for h in &hs {
            prop_assert_eq!(pat.is_match(h), re.is_match(h), "{:?} {:?} on {:?}", p, pat, h);
            if let (Ok(full_re), Ok(full)) = (&full_re, &full) {
                prop_assert_eq!(
                    full.is_match(h),
                    full_re.is_match(h),
                    "full {:?} {:?} on {:?}", p, full, h
                );
            }
        }
    }
}
