//! Proof of exactness: token for token equality with tiktoken-rs
//! (`encode_ordinary`) for all four encodings on a varied corpus (English,
//! Chinese, code, emoji, white-space runs, long repeated chars, contractions,
//! combining marks, non-ASCII digits and spaces) and on random strings
//! (proptest), plus `prefix_within` against its definition computed with
//! tiktoken-rs. The pieces of the hand-written pre-tokenizer are also
//! compared with tiktoken's own split regexes run by `fancy-regex`, so a
//! difference that happens to encode to the same tokens is caught too.

use super::bpe::Approx;
use super::classes::Classes;
use super::pretok::{Pattern, Splitter};
use super::{Encoding, TokenCounter};
use proptest::prelude::*;
use std::sync::OnceLock;
use tiktoken_rs::CoreBPE;

fn reference(e: Encoding) -> &'static CoreBPE {
    match e {
        Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
        Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        Encoding::P50kBase => tiktoken_rs::p50k_base_singleton(),
        Encoding::R50kBase => tiktoken_rs::r50k_base_singleton(),
    }
}

fn assert_same(text: &str) {
    for e in Encoding::ALL {
        let want = reference(e).encode_ordinary(text);
        let got = e.bpe().encode(text);
        assert_eq!(got, want, "{e}: {text:?}");
        assert_eq!(e.counter().count(text), want.len(), "{e} count: {text:?}");
    }
}

/// `prefix_within` by its definition: the first `max` tokens, decoded,
/// backed off to valid UTF-8.
fn reference_prefix(e: Encoding, text: &str, max: usize) -> usize {
    let tokens = reference(e).encode_ordinary(text);
    let take = &tokens[..max.min(tokens.len())];
    let bytes = reference(e).decode_bytes(take).unwrap();
    match std::str::from_utf8(&bytes) {
        Ok(s) => s.len(),
        Err(err) => err.valid_up_to(),
    }
}

fn assert_prefix(e: Encoding, text: &str, max: usize) {
    let c = e.counter();
    let (len, n) = c.prefix_within(text, max);
    assert!(
        text.is_char_boundary(len),
        "{e} cut inside a char: {text:?} {max}"
    );
    assert!(n <= max, "{e}: {n} > {max} for {text:?}");
    assert_eq!(n, c.count(&text[..len]), "{e}: token count of the prefix");
    assert_eq!(
        len,
        reference_prefix(e, text, max),
        "{e}: {text:?} max {max}"
    );
}

/// tiktoken-rs 0.12's split patterns, verbatim (only o200k's is exported).
fn regex(p: Pattern) -> &'static fancy_regex::Regex {
    static RES: OnceLock<[fancy_regex::Regex; 3]> = OnceLock::new();
    let [cl, o, gpt2] = RES.get_or_init(|| {
        let re = |s: &str| fancy_regex::Regex::new(s).unwrap();
        [
            re("'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+|\\s++$|\\s*[\\r\\n]|\\s+(?!\\S)|\\s"),
            re(tiktoken_rs::O200K_BASE_PAT_STR),
            re("'(?:[sdmt]|ll|ve|re)| ?\\p{L}++| ?\\p{N}++| ?[^\\s\\p{L}\\p{N}]++|\\s++$|\\s+(?!\\S)|\\s"),
        ]
    });
    match p {
        Pattern::Cl100k => cl,
        Pattern::O200k => o,
        Pattern::Gpt2 => gpt2,
    }
}

fn assert_same_pieces(text: &str) {
    for p in [Pattern::Cl100k, Pattern::O200k, Pattern::Gpt2] {
        let want: Vec<&str> = regex(p)
            .find_iter(text)
            .map(|m| m.unwrap().as_str())
            .collect();
        let sp = Splitter::new(text, p, Classes::get());
        let mut got = Vec::new();
        let mut i = 0;
        while i < text.len() {
            let e = sp.piece_end(i);
            got.push(&text[i..e]);
            i = e;
        }
        assert_eq!(got, want, "{p:?}: {text:?}");
    }
}

/// Proptest cases: `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub(crate) fn corpus() -> Vec<String> {
    let mut v: Vec<String> = [
        "The quick brown fox jumps over the lazy dog. It's 9:41 — isn't it?",
        "I'M HERE, you're THERE; they'll go, we'd stay, she's SURE, 'ſ 'S 'Ll 'VE 'rE",
        "HELLOworld helloWORLD HeLLo McDonald's iPhone ǅemal ʰhello ªb",
        "人工智能正在改变世界，大型语言模型可以理解和生成自然语言。你好！",
        "お誕生日おめでとう。日本語のテキストです。한국어 텍스트입니다.",
        "Ünïcödé café naïve résumé e\u{301}clair a\u{308}\u{301}b \u{301}start \u{301}ABC",
        "مرحبا بالعالم ١٢٣٤٥ हिन्दी में लिखा गया ٣ ² ½ Ⅻ",
        "fn main() {\n    let v: Vec<u32> = (0..10).map(|i| i * 2).collect();\n    println!(\"{v:?}\");\n}\n",
        "def f(x):\r\n\treturn x  # comment\r\n\r\n\r\n    \n\t\n",
        "😀😃😄 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ✈️ #️⃣ 🇫🇷",
        "   leading and trailing   ",
        "a\n  ",
        "x \n \n   ",
        " \u{3000}\u{a0}\u{2028}\u{85}\u{b}\u{c} mixed spaces\u{3000}end\u{3000}",
        "12345678901234567890 3.14159 1,000,000 0x1F 007",
        "http://example.com/path/to?q=1&r=2#frag //comment /* c */ a/b/c\n/\n",
        "<|endoftext|> <|im_start|>user\nhi<|im_end|>",
        "!!!???... ---___*** \"quoted\" 'single' (paren) [bracket] {brace}",
        "",
        " ",
        "\n",
        "'",
        "'s",
        "a",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for unit in [
        "a", " ", "\n", "😀", "1", "ab", "中", ".", " a", "\r\n", "\u{301}", "A",
    ] {
        for n in [2, 3, 31, 32, 99, 100, 101, 255, 256, 257, 3000] {
            v.push(unit.repeat(n));
        }
    }
    v
}

#[test]
fn tokens_equal_tiktoken_on_corpus() {
    for text in corpus() {
        assert_same_pieces(&text);
        assert_same(&text);
    }
}

#[test]
fn tokens_equal_tiktoken_on_long_mixed_text() {
    let parts = corpus();
    let mut text = String::new();
    let mut x: u64 = 7;
    while text.len() < 60_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        text.push_str(&parts[(x >> 33) as usize % parts.len()][..]);
    }
    for e in Encoding::ALL {
        assert_eq!(
            e.counter().count(&text),
            reference(e).encode_ordinary(&text).len(),
            "{e}"
        );
    }
}

fn interesting() -> impl Strategy<Value = String> {
    let chars = prop::sample::select(vec![
        'a',
        'b',
        'z',
        's',
        't',
        'd',
        'm',
        'l',
        'v',
        'r',
        'e',
        'A',
        'S',
        'T',
        'L',
        'V',
        'R',
        'E',
        'D',
        'M',
        'Q',
        'ſ',
        'é',
        'ǅ',
        'ʰ',
        'ª',
        'ß',
        '\u{301}',
        '\u{308}',
        '\u{93F}',
        '中',
        '文',
        'の',
        '한',
        'ع',
        '0',
        '7',
        '٣',
        '²',
        '½',
        'Ⅻ',
        ' ',
        ' ',
        '\t',
        '\n',
        '\r',
        '\u{3000}',
        '\u{a0}',
        '\u{2028}',
        '\u{85}',
        '\u{b}',
        '\'',
        '"',
        '.',
        ',',
        '/',
        '(',
        '!',
        '-',
        '_',
        '<',
        '|',
        '，',
        '。',
        '…',
        '😀',
        '👍',
        '🏽',
        '\u{200d}',
        '\u{fe0f}',
        '\u{1F1EB}',
    ])
    .prop_map(String::from);
    let snippets = prop::sample::select(vec![
        "'s",
        "'ll",
        "'RE",
        "'ve",
        "'M",
        "'D",
        "'ſ",
        "don't",
        "\r\n",
        "  ",
        "\n\n",
        " \n ",
        "http://",
        "<|endoftext|>",
        "123456",
        "Hello",
        " world",
        "HELLO",
        "你好",
        "\t\t",
    ])
    .prop_map(String::from);
    let any = any::<char>().prop_map(String::from);
    prop::collection::vec(prop_oneof![6 => chars, 3 => snippets, 1 => any], 0..48)
        .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(1500)))]

    #[test]
    fn tokens_equal_tiktoken_on_random_mixes(text in interesting()) {
        assert_same_pieces(&text);
        assert_same(&text);
    }

    #[test]
    fn tokens_prefix_within_matches_definition(text in interesting(), max in 0usize..24) {
        for e in Encoding::ALL {
            assert_prefix(e, &text, max);
        }
    }
}

/// One long piece (letters or CJK only): the heap merges (> 255 bytes).
fn long_piece() -> impl Strategy<Value = String> {
    let letters = prop::sample::select(vec!["a", "b", "e", "r", "t", "s", "中", "文", "の", "é"]);
    prop::collection::vec(letters, 60..900).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(400)))]

    #[test]
    fn tokens_equal_tiktoken_on_long_pieces(text in long_piece()) {
        assert_same(&text);
    }

    #[test]
    fn tokens_equal_tiktoken_on_random_unicode(text in any::<String>()) {
        assert_same_pieces(&text);
        assert_same(&text);
    }
}

#[test]
fn tokens_prefix_within_cjk_and_emoji() {
    for text in [
        "人工智能正在改变世界，大型语言模型可以理解和生成自然语言。",
        "😀👍🏽👨‍👩‍👧 ok 🇫🇷!",
        "お誕生日おめでとう",
        "e\u{301}e\u{301}e\u{301} naïve",
    ] {
        for e in Encoding::ALL {
            let total = e.counter().count(text);
            for max in 0..=total + 1 {
                assert_prefix(e, text, max);
            }
            // Whole text when it fits.
            assert_eq!(e.counter().prefix_within(text, total), (text.len(), total));
        }
    }
}

#[test]
fn tokens_prefix_within_is_maximal_on_token_boundaries() {
    let c = Encoding::Cl100kBase.counter();
    let text = "The quick brown fox jumps over the lazy dog";
    // One token per word here: the cut falls exactly after word N.
    assert_eq!(c.count(text), 9);
    assert_eq!(c.prefix_within(text, 3), ("The quick brown".len(), 3));
    assert_eq!(c.prefix_within(text, 0), (0, 0));
    assert_eq!(c.prefix_within(text, 1000), (text.len(), 9));
    assert_eq!(c.prefix_within("", 5), (0, 0));
    // "誕" is 2 cl100k tokens: a cut never splits it.
    let (len, n) = c.prefix_within("誕誕誕", 3);
    assert_eq!(len % "誕".len(), 0);
    assert!(n <= 3);
    assert_prefix(Encoding::Cl100kBase, "誕誕誕", 3);
}

#[test]
fn tokens_prefix_within_long_piece() {
    // One 3000-byte piece (large merge): cut inside it.
    let text = "ab".repeat(1500);
    for e in Encoding::ALL {
        for max in [1, 7, 100, 333] {
            assert_prefix(e, &text, max);
        }
    }
}

#[test]
fn tokens_approx_counter() {
    let a = Approx;
    assert_eq!(a.count("abcdefgh"), 2);
    assert_eq!(a.count("abcdefghi"), 3);
    assert_eq!(a.prefix_within("abcdefghij", 2), (8, 2));
    let (len, n) = a.prefix_within("中中中", 1);
    assert_eq!((len, n), (3, 1));
}
