//! Tests of [`normalize`]: a table of fixed cases for every rule, the
//! borrowed fast path, and properties over generated paths.

use super::*;
use proptest::prelude::*;

#[test]
fn fixed_cases() {
    use PathError::*;
    let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
    let max = format!("/{}", "a".repeat(MAX_PATH_LEN - 1));
    let cases: &[(&str, Result<&str, PathError>)] = &[
        // The bypasses this module exists for.
        ("/echo//secret", Ok("/echo/secret")),
        ("/echo/./secret", Ok("/echo/secret")),
        ("/echo/%73ecret", Ok("/echo/secret")),
        ("/echo/x/../secret", Ok("/echo/secret")),
        ("/v1/../echo/trav", Ok("/echo/trav")),
        // Already normal.
        ("/", Ok("/")),
        ("/v1/chat/completions", Ok("/v1/chat/completions")),
        ("/v1/models/", Ok("/v1/models/")),
        ("/a/.b/..c/...", Ok("/a/.b/..c/...")),
        ("/caf\u{e9}", Ok("/caf%C3%A9")),
        // Absolute only.
        ("", Err(NotAbsolute)),
        ("*", Err(NotAbsolute)),
        ("v1/models", Err(NotAbsolute)),
        ("%2Fv1", Err(NotAbsolute)),
        // Length cap.
        (max.as_str(), Ok(max.as_str())),
        (long.as_str(), Err(TooLong)),
        // Raw characters.
        ("/a\\b", Err(Backslash)),
        ("/a/\\..\\b", Err(Backslash)),
        ("/a\0b", Err(ControlCharacter)),
        ("/a\nb", Err(ControlCharacter)),
        ("/a\tb", Err(ControlCharacter)),
        ("/a\x1fb", Err(ControlCharacter)),
        ("/a\x7fb", Err(ControlCharacter)),
        // Percent-encoding.
        ("/%41%7a%30%2D%5F%7E", Ok("/Az0-_~")),
        ("/a%3ab", Ok("/a%3Ab")),
        ("/a%3Ab", Ok("/a%3Ab")),
        ("/%e2%82%ac", Ok("/%E2%82%AC")),
        ("/%25", Ok("/%25")),
        ("/%2541", Ok("/%2541")),
        ("/a%20b", Ok("/a%20b")),
        ("/a%0Ab", Ok("/a%0Ab")),
        ("/a%2Fb", Err(EncodedSlash)),
        ("/a%2fb", Err(EncodedSlash)),
        ("/a%5Cb", Err(EncodedBackslash)),
        ("/a%5cb", Err(EncodedBackslash)),
        ("/a%00b", Err(EncodedNul)),
        ("/a%", Err(InvalidPercentEncoding)),
        ("/a%4", Err(InvalidPercentEncoding)),
        ("/a%G1", Err(InvalidPercentEncoding)),
        ("/a%1G", Err(InvalidPercentEncoding)),
        ("/a%%41", Err(InvalidPercentEncoding)),
        ("/a%\u{e9}1", Err(InvalidPercentEncoding)),
        // Empty segments.
        ("//", Ok("/")),
        ("///a///b///", Ok("/a/b/")),
        ("//v1/models", Ok("/v1/models")),
        // Dot segments.
        ("/.", Ok("/")),
        ("/./", Ok("/")),
        ("/a/.", Ok("/a/")),
        ("/a/b/.", Ok("/a/b/")),
        ("/a/b/..", Ok("/a/")),
        ("/a/b/../", Ok("/a/")),
        ("/a/..", Ok("/")),
        ("/a/./b/../c", Ok("/a/c")),
        ("/a/b/../../c", Ok("/c")),
        ("/a/%2e%2e/b", Ok("/b")),
        ("/a/%2E/b", Ok("/a/b")),
        ("/a/.%2e/b", Ok("/b")),
        ("/a/%2e./b", Ok("/b")),
        ("/a//../b", Ok("/b")),
        ("/..", Err(AboveRoot)),
        ("/../x", Err(AboveRoot)),
        ("/a/../../x", Err(AboveRoot)),
        ("/%2e%2e/x", Err(AboveRoot)),
        ("/./../x", Err(AboveRoot)),
    ];
    for (input, want) in cases {
        let got = normalize(input);
        assert_eq!(
            got.as_deref().map_err(Clone::clone),
            want.clone(),
            "normalize({input:?})"
        );
    }
}

#[test]
fn normal_paths_are_borrowed() {
    for p in ["/", "/v1/chat/completions", "/v1/models/", "/a/.b/..c/..."] {
        assert!(
            matches!(normalize(p), Ok(Cow::Borrowed(b)) if b == p),
            "{p:?}"
        );
    }
}

#[test]
fn changed_paths_are_owned() {
    for p in ["//", "/a/.", "/a/b/..", "/%41", "/%3a"] {
        assert!(matches!(normalize(p), Ok(Cow::Owned(_))), "{p:?}");
    }
}

#[test]
fn errors_have_messages() {
    assert_eq!(
        PathError::EncodedSlash.to_string(),
        "path contains an encoded slash (%2F)"
    );
    assert_eq!(
        PathError::TooLong.to_string(),
        "path is longer than 8192 bytes"
    );
}

/// Strings made mostly of the characters the rules are about.
fn pathish() -> impl Strategy<Value = String> {
    prop_oneof![
        "/[/a-c.%0-9A-Fa-f\\\\]{0,30}",
        "[/a.%2eEfF5cC0\\\\\u{0}\u{7f}\n\u{e9}]{0,30}",
        any::<String>(),
    ]
}

/// An already normal path: unreserved segments that are not dot segments.
fn normal_path() -> impl Strategy<Value = String> {
    let segment = "[a-zA-Z0-9._~-]{1,6}".prop_filter("dot segment", |s| s != "." && s != "..");
    (prop::collection::vec(segment, 0..6), any::<bool>()).prop_map(|(segs, trailing)| {
        let mut p = format!("/{}", segs.join("/"));
        if trailing && !segs.is_empty() {
            p.push('/');
        }
        p
    })
}

/// The byte offsets just after each `/` in `p`.
fn after_slashes(p: &str) -> Vec<usize> {
    p.match_indices('/').map(|(i, _)| i + 1).collect()
}

proptest! {
    #[test]
    fn never_panics(p in pathish()) {
        let _ = normalize(&p);
    }

    #[test]
    fn idempotent(p in pathish()) {
        if let Ok(once) = normalize(&p) {
            let twice = normalize(&once);
            // Escapes always take the slow path; everything else is borrowed.
            if !once.contains('%') {
                prop_assert!(matches!(twice, Ok(Cow::Borrowed(_))), "{p:?} -> {once:?} -> {twice:?}");
            }
            prop_assert_eq!(twice.as_deref(), Ok(&*once));
        }
    }

    #[test]
    fn output_is_normal(p in pathish()) {
        if let Ok(out) = normalize(&p) {
            prop_assert!(out.starts_with('/'), "{out:?}");
            prop_assert!(!out.contains("//"), "{out:?}");
            prop_assert!(!out.contains('\\'), "{out:?}");
            prop_assert!(!out.to_ascii_uppercase().contains("%2F"), "{out:?}");
            prop_assert!(!out.chars().any(|c| c.is_ascii_control()), "{out:?}");
            // Non-ASCII is percent-encoded: at most 3 bytes per input byte.
            prop_assert!(out.is_ascii(), "{out:?}");
            prop_assert!(out.len() <= 3 * p.len(), "{p:?} -> {out:?}");
            for seg in out.split('/') {
                prop_assert!(seg != "." && seg != "..", "{out:?}");
            }
            for (i, _) in out.match_indices('%') {
                let hex = out.get(i + 1..i + 3).unwrap_or("");
                prop_assert!(
                    hex.len() == 2 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')),
                    "{out:?}"
                );
                let value = u8::from_str_radix(hex, 16).unwrap();
                prop_assert!(!is_unreserved(value), "{out:?}");
            }
        }
    }

    #[test]
    fn equivalent_spellings_agree(
        base in normal_path(),
        encodes in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..4),
        inserts in prop::collection::vec((0..3u8, any::<prop::sample::Index>()), 0..6),
    ) {
        prop_assert!(matches!(normalize(&base), Ok(Cow::Borrowed(b)) if b == base));
        // Percent-encode unreserved characters first (so no insert lands in an escape)…
        let mut p = base.clone();
        for (at, lower) in encodes {
            let plain: Vec<usize> = p
                .char_indices()
                .filter(|&(i, c)| c != '/' && c != '%' && !p[..i].ends_with('%') && !p[..i.saturating_sub(1)].ends_with('%'))
                .map(|(i, _)| i)
                .collect();
            if plain.is_empty() {
                break;
            }
            let i = plain[at.index(plain.len())];
            let c = p.as_bytes()[i];
            let esc = if lower { format!("%{c:02x}") } else { format!("%{c:02X}") };
            p.replace_range(i..=i, &esc);
        }
        // …then `./`, doubled slashes and `x/../` after a slash.
        for (op, at) in inserts {
            let slashes = after_slashes(&p);
            let i = slashes[at.index(slashes.len())];
            p.insert_str(i, ["./", "/", "x/../"][usize::from(op)]);
        }
        let got = normalize(&p);
        prop_assert_eq!(got.as_deref(), Ok(base.as_str()), "{}", p);
    }
}

#[test]
fn non_ascii_is_one_spelling() {
    assert_eq!(normalize("/echo/sécret").unwrap(), "/echo/s%C3%A9cret");
    assert_eq!(normalize("/echo/s%c3%a9cret").unwrap(), "/echo/s%C3%A9cret");
    assert_eq!(normalize("/中").unwrap(), "/%E4%B8%AD");
}
