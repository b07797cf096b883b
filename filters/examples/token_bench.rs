//! Token counting throughput: `Encoding::counter().count` against
//! tiktoken-rs (`count_ordinary`, i.e. `encode_ordinary(..).len()`, the reference) on the same
//! deterministic ~1 MB mixed English / Chinese / code text, per encoding.
//! Also checks both give the same count, and times the same text cut into
//! ~200-byte messages (per-call overhead).
//!
//! Then the worst cases next to the mixed text: one character repeated,
//! a run of varied punctuation and a run of spaces (each one pre-tokenized
//! piece of the whole size), and the same counted with a ceiling of 1 000
//! tokens (`count_up_to`, what a request over its limit costs).
//!
//! `cargo run --release -p sluice-filters --example token_bench [size_kb] [rounds]`

#![allow(clippy::expect_used)] // a benchmark: no vocabulary, no run

use std::hint::black_box;
use std::time::Instant;

use sluice_filters::tokens::Encoding;

const EN: &[&str] = &[
    "The quick brown fox jumps over the lazy dog.",
    "It's not that we don't care; we'd rather ship it tomorrow, wouldn't you?",
    "Revenue grew 12.5% year over year to $4,321 million in Q3 2024.",
    "Large language models predict the next token given everything before it.",
    "Please summarize the following document in three bullet points:",
    "HTTP/1.1 200 OK was returned after 37 ms by https://api.example.com/v1/chat.",
    "Gateways meter tokens, enforce budgets and cut streams at exactly N tokens.",
    "\"Quoted text\", (parenthetical remarks) and [brackets] appear in prose too.",
];

const ZH: &[&str] = &[
    "人工智能正在改变世界，大型语言模型可以理解和生成自然语言。",
    "我们今天讨论分词器的性能，以及如何在网关中准确计量令牌。",
    "北京时间2024年5月13日，发布会在线上举行，吸引了数百万观众。",
    "请把下面这段文字翻译成英文，并保持原有的语气和格式。",
    "这个函数的时间复杂度是线性的，但常数因子仍然值得优化。",
    "中文文本通常没有空格，所以每个字往往单独成为一个或多个词元。",
];

const CODE: &[&str] = &[
    "fn main() {\n    let mut v: Vec<u32> = Vec::new();\n    for i in 0..10 {\n        v.push(i * 2);\n    }\n    println!(\"{:?}\", v);\n}\n",
    "def count_tokens(text: str) -> int:\n    \"\"\"Return the number of tokens.\"\"\"\n    return len(enc.encode(text))\n\n",
    "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": true}\n",
    "if (x != null && x.length > 0) { return x.map((y) => y * 2).filter(Boolean); }\n",
    "SELECT id, name, created_at FROM users WHERE status = 'active' ORDER BY id DESC LIMIT 50;\n",
    "    # TODO: handle the error case\n    except ValueError as e:\n        logger.warning(\"bad input: %s\", e)\n",
];

/// Deterministic mixed text of at least `size` bytes: paragraphs of English,
/// Chinese or code picked by a fixed LCG.
fn corpus(size: usize) -> String {
    corpus_of(size, &[EN, ZH, CODE])
}

fn corpus_of(size: usize, pools: &[&[&str]]) -> String {
    let mut s = String::with_capacity(size + 1024);
    let mut x: u64 = 0x5EED;
    let mut next = |n: usize| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize % n
    };
    while s.len() < size {
        let pool = pools[next(pools.len())];
        let sep = if std::ptr::eq(pool, EN) { " " } else { "" };
        for _ in 0..3 + next(5) {
            s.push_str(pool[next(pool.len())]);
            s.push_str(sep);
        }
        s.push_str("\n\n");
    }
    s
}

/// Median seconds of `rounds` runs of `f`.
fn time(rounds: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut out = 0;
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            out = black_box(f());
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], out)
}

fn reference(e: Encoding) -> tiktoken_rs::CoreBPE {
    match e {
        Encoding::O200kBase => tiktoken_rs::o200k_base(),
        Encoding::Cl100kBase => tiktoken_rs::cl100k_base(),
        Encoding::P50kBase => tiktoken_rs::p50k_base(),
        Encoding::R50kBase => tiktoken_rs::r50k_base(),
    }
    .expect("tiktoken-rs vocabulary")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let size_kb: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let text = corpus(size_kb * 1024);
    let mb = text.len() as f64 / 1e6;
    let chunks: Vec<&str> = {
        let mut v = Vec::new();
        let mut start = 0;
        while start < text.len() {
            let mut end = (start + 200).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            v.push(&text[start..end]);
            start = end;
        }
        v
    };
    println!(
        "text: {} bytes ({} chunks of ~200 B), median of {rounds} rounds, 1 thread",
        text.len(),
        chunks.len()
    );
    println!();
    println!(
        "| encoding | tokens | sluice MB/s | tiktoken-rs MB/s | ratio | sluice 200 B msgs MB/s | build ms (sluice / tiktoken-rs) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for e in [
        Encoding::O200kBase,
        Encoding::Cl100kBase,
        Encoding::P50kBase,
        Encoding::R50kBase,
    ] {
        let t = Instant::now();
        let counter = e.counter();
        counter.count("warm up");
        let build_ours = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let tik = reference(e);
        tik.encode_ordinary("warm up");
        let build_ref = t.elapsed().as_secs_f64() * 1e3;

        let (ours, n_ours) = time(rounds, || counter.count(&text));
        let (chunked, _) = time(rounds, || chunks.iter().map(|c| counter.count(c)).sum());
        let (theirs, n_ref) = time(rounds.min(3), || tik.count_ordinary(&text));
        assert_eq!(n_ours, n_ref, "{e}: count differs from tiktoken-rs");
        println!(
            "| {e} | {n_ours} | {:.1} | {:.1} | {:.1}x | {:.1} | {build_ours:.0} / {build_ref:.0} |",
            mb / ours,
            mb / theirs,
            theirs / ours,
            mb / chunked,
        );
    }
    println!();
    println!("by content (sluice only, {size_kb} KB each):");
    println!();
    println!("| encoding | English MB/s | Chinese MB/s | code MB/s |");
    println!("| --- | ---: | ---: | ---: |");
    for e in [Encoding::O200kBase, Encoding::Cl100kBase] {
        let counter = e.counter();
        let rates: Vec<String> = [EN, ZH, CODE]
            .iter()
            .map(|pool| {
                let t = corpus_of(size_kb * 1024, &[pool]);
                let (secs, _) = time(rounds, || counter.count(&t));
                format!("{:.1}", t.len() as f64 / 1e6 / secs)
            })
            .collect();
        println!("| {e} | {} |", rates.join(" | "));
    }
    worst_cases(
        size_kb,
        rounds,
        mb / time(rounds, || Encoding::O200kBase.counter().count(&text)).0,
    );
}

/// Worst-case inputs against the mixed text's rate (`normal`, MB/s).
fn worst_cases(size_kb: usize, rounds: usize, normal: f64) {
    let size = size_kb * 1024;
    let punct: String = {
        let set = b"!@#$%^&*()-_=+[]{};:,.<>/?|~";
        let mut x: u64 = 7;
        (0..size)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                set[(x >> 33) as usize % set.len()] as char
            })
            .collect()
    };
    let cases = [
        ("one character (`a` repeated)", "a".repeat(size)),
        ("varied punctuation", punct),
        ("spaces", " ".repeat(size)),
    ];
    println!();
    println!("worst cases (o200k_base, {size_kb} KB each; mixed text: {normal:.1} MB/s):");
    println!();
    println!("| input | MB/s | vs mixed text | with a 1 000-token ceiling: ms |");
    println!("| --- | ---: | ---: | ---: |");
    let counter = Encoding::O200kBase.counter();
    for (name, text) in cases {
        let (secs, _) = time(rounds, || counter.count(&text));
        let (capped, n) = time(rounds, || counter.count_up_to(&text, 1000));
        assert!(n > 1000, "{name}: the ceiling is passed");
        let rate = text.len() as f64 / 1e6 / secs;
        println!(
            "| {name} | {rate:.1} | {:.2} | {:.2} |",
            rate / normal,
            capped * 1e3
        );
    }
}
