//! Throughput of the stream meter on a realistic OpenAI chat/completions SSE
//! stream: 1M events with one-word content deltas, each carrying the fields
//! OpenAI sends (`id`, `object`, `created`, `model`, `service_tier`,
//! `system_fingerprint`, `logprobs`, `finish_reason`, `usage: null` and the
//! random-length `obfuscation` padding), then the finish, usage and
//! `[DONE]` events.
//!
//! `cargo run --release -p sluice-filters --example meter_bench [events]`
//!
//! Figures are per CPU second of the metering thread (Linux `schedstat`),
//! so they hold on a shared machine; the wall time is printed alongside.

use std::hint::black_box;
use std::time::Instant;

use sluice_filters::stream::{MeterOptions, StreamMeter};
use sluice_filters::tokens::TokenCounter;

/// The counter the headline figures use. The lead switches this to the real
/// BPE counter once it lands.
fn bench_counter() -> &'static dyn TokenCounter {
    // The real BPE (what the gateway meters with); `SLUICE_BENCH_FAKE=1`
    // measures the meter alone with a word counter.
    if std::env::var_os("SLUICE_BENCH_FAKE").is_some() {
        &WORDS
    } else {
        sluice_filters::tokens::Encoding::O200kBase.counter()
    }
}

/// One token per word, the whitespace before a word belonging to it.
struct Words;
static WORDS: Words = Words;

impl TokenCounter for Words {
    fn count_up_to(&self, text: &str, _limit: usize) -> usize {
        self.count(text)
    }

    fn count(&self, text: &str) -> usize {
        let mut n = 0;
        let mut prev_ws = true;
        for (i, b) in text.bytes().enumerate() {
            let ws = b.is_ascii_whitespace();
            if i == 0 || (ws && !prev_ws) {
                n += 1;
            }
            prev_ws = ws;
        }
        n
    }

    fn prefix_within(&self, text: &str, max_tokens: usize) -> (usize, usize) {
        let mut n = 0;
        let mut prev_ws = true;
        for (i, b) in text.bytes().enumerate() {
            let ws = b.is_ascii_whitespace();
            if i == 0 || (ws && !prev_ws) {
                if n == max_tokens {
                    return (i, n);
                }
                n += 1;
            }
            prev_ws = ws;
        }
        (text.len(), n)
    }
}

/// One token per call, no work: shows the meter's own cost.
struct Free;
static FREE: Free = Free;

impl TokenCounter for Free {
    fn count_up_to(&self, text: &str, _limit: usize) -> usize {
        self.count(text)
    }

    fn count(&self, _text: &str) -> usize {
        1
    }

    fn prefix_within(&self, text: &str, max_tokens: usize) -> (usize, usize) {
        if max_tokens == 0 {
            (0, 0)
        } else {
            (text.len(), 1)
        }
    }
}

const POOL: [&str; 16] = [
    " the",
    " model",
    " streams",
    " one",
    " token",
    " per",
    " delta",
    ",",
    " and",
    " gateway",
    " meters",
    " every",
    " chunk",
    " it",
    " forwards",
    ".",
];

const HEAD: &str = r#"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":["#;

/// The upstream stream as three parts: the opening (role) event, `distinct`
/// content events (one word each), and the closing events (finish, usage,
/// `[DONE]`); each part is one buffer plus the end offset of each event.
struct Stream {
    open: Vec<u8>,
    content: Vec<u8>,
    content_ends: Vec<usize>,
    close: Vec<u8>,
    close_ends: Vec<usize>,
}

fn build(distinct: usize, total: usize) -> Stream {
    let pad = "KxR2vQ9wLm3TzYp8";
    let open = format!("data: {HEAD}{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null,\"obfuscation\":\"{pad}\"}}\n\n");
    let mut content = Vec::with_capacity(distinct * 330);
    let mut content_ends = Vec::with_capacity(distinct);
    for i in 0..distinct {
        let w = POOL[i % POOL.len()];
        let o = &pad[..1 + (i * 7) % pad.len()];
        content.extend_from_slice(format!("data: {HEAD}{{\"index\":0,\"delta\":{{\"content\":\"{w}\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null,\"obfuscation\":\"{o}\"}}\n\n").as_bytes());
        content_ends.push(content.len());
    }
    let mut close = Vec::new();
    let mut close_ends = Vec::new();
    for ev in [
        format!("data: {HEAD}{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":null}}\n\n"),
        format!("data: {HEAD}],\"usage\":{{\"prompt_tokens\":12,\"completion_tokens\":{total},\"total_tokens\":{},\"prompt_tokens_details\":{{\"cached_tokens\":0,\"audio_tokens\":0}},\"completion_tokens_details\":{{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}}}}\n\n", total + 12),
        "data: [DONE]\n\n".to_string(),
    ] {
        close.extend_from_slice(ev.as_bytes());
        close_ends.push(close.len());
    }
    Stream {
        open: open.into_bytes(),
        content,
        content_ends,
        close,
        close_ends,
    }
}

fn split<'a>(buf: &'a [u8], ends: &[usize]) -> Vec<&'a [u8]> {
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let ev = &buf[start..end];
            start = end;
            ev
        })
        .collect()
}

impl Stream {
    /// The network chunks of a stream of `total` content events: one event
    /// per chunk (as OpenAI flushes them) or `size`-byte chunks; the content
    /// events are cycled when there are fewer distinct ones than `total`.
    fn chunks(&self, total: usize, size: Option<usize>) -> Vec<&[u8]> {
        let content: Vec<&[u8]> = match size {
            None => split(&self.content, &self.content_ends),
            Some(n) => self.content.chunks(n).collect(),
        };
        let per_cycle = self.content_ends.len();
        let mut out = vec![&self.open[..]];
        let mut left = total;
        while left >= per_cycle {
            out.extend_from_slice(&content);
            left -= per_cycle;
        }
        out.extend(split(&self.content, &self.content_ends[..left]));
        out.extend(split(&self.close, &self.close_ends));
        out
    }
}

/// CPU time of this thread in seconds (Linux `schedstat`); `None` elsewhere
/// (wall time is used then).
fn cpu_time() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// Meters `chunks` five times; prints the best run. `events` is the number
/// of content events in `chunks`; `None` counts the chunks fed until the
/// meter is done (one event per chunk).
fn run(
    name: &str,
    counter: &'static dyn TokenCounter,
    opts: MeterOptions,
    chunks: &[&[u8]],
    events: Option<usize>,
) {
    let mut best = f64::MAX;
    let mut best_wall = f64::MAX;
    let mut tokens = 0;
    let mut fed = 0usize;
    let mut bytes = 0;
    for _ in 0..5 {
        let mut meter = StreamMeter::new(counter, opts);
        let mut out = Vec::with_capacity(64 * 1024);
        let cpu = cpu_time();
        let t = Instant::now();
        bytes = 0;
        fed = 0;
        for c in chunks {
            meter.feed(black_box(c), &mut out);
            bytes += c.len();
            fed += 1;
            black_box(&out);
            out.clear();
            if meter.done() {
                break;
            }
        }
        meter.finish(&mut out);
        let wall = t.elapsed().as_secs_f64();
        best_wall = best_wall.min(wall);
        best = best.min(match (cpu, cpu_time()) {
            (Some(a), Some(b)) => b - a,
            _ => wall,
        });
        tokens = meter.sent_tokens();
        black_box(meter.usage());
    }
    // Without the opening (role) event.
    let events = events.unwrap_or(fed.saturating_sub(1)).max(1);
    println!(
        "{name:<42} {:>4.0} ns/event {:>5.2} M events/s {:>5.2} M tokens/s {:>5.0} MB/s (wall {:.0} ms)",
        best * 1e9 / events as f64,
        events as f64 / best / 1e6,
        tokens as f64 / best / 1e6,
        bytes as f64 / best / 1e6,
        best_wall * 1e3,
    );
}

fn main() {
    let events: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    // Hot: 4096 distinct events (1.3 MB) cycled, as fresh network buffers
    // sit in cache. Cold: every event distinct (hundreds of MB from RAM).
    let hot = build(4096.min(events), events);
    let cold = build(events, events);
    println!(
        "{events} content events of {} bytes; best of 5, per CPU second",
        hot.content.len() / hot.content_ends.len()
    );
    let meter_only = MeterOptions {
        output_cap: None,
        client_wants_usage: true,
        prompt_tokens: 12,
    };
    let capped = MeterOptions {
        output_cap: Some(u64::MAX / 2),
        client_wants_usage: false,
        prompt_tokens: 12,
    };
    let c = bench_counter();
    let per_event = hot.chunks(events, None);
    let total_tokens = {
        let mut m = StreamMeter::new(c, meter_only);
        let mut out = Vec::new();
        for ch in &per_event {
            m.feed(ch, &mut out);
            out.clear();
        }
        m.sent_tokens()
    };
    let half = MeterOptions {
        output_cap: Some(total_tokens / 2),
        ..meter_only
    };
    let all = Some(events);
    let hot_run = |name: &str, opts: MeterOptions, events: Option<usize>| {
        run(name, c, opts, &per_event, events);
    };
    hot_run("bench_counter: meter only, 1 event/chunk", meter_only, all);
    hot_run("bench_counter: capped, usage dropped", capped, all);
    hot_run("bench_counter: cut at half the tokens", half, None);
    let big = hot.chunks(events, Some(16 * 1024));
    run(
        "bench_counter: meter only, 16 KiB chunks",
        c,
        meter_only,
        &big,
        all,
    );
    let cold = cold.chunks(events, None);
    run(
        "bench_counter: cold memory, 1 event/chunk",
        c,
        meter_only,
        &cold,
        all,
    );
    run(
        "free counter (meter's own cost)",
        &FREE,
        meter_only,
        &per_event,
        all,
    );
}
