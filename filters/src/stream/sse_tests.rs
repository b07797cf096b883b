use super::*;
use proptest::prelude::*;

/// An owned copy of an [`SseEvent`] for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ev {
    raw: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    oversized: bool,
}

fn own(e: SseEvent<'_>) -> Ev {
    Ev {
        raw: e.raw.to_vec(),
        event: e.event.map(|c| c.into_owned()),
        data: e.data.map(|c| c.into_owned()),
        id: e.id.map(|c| c.into_owned()),
        retry: e.retry,
        oversized: e.oversized,
    }
}

fn parse_chunks(parser: &mut SseParser, chunks: &[&[u8]]) -> Vec<Ev> {
    let mut out = Vec::new();
    for c in chunks {
        parser.feed(c, |e| out.push(own(e)));
    }
    parser.finish(|e| out.push(own(e)));
    out
}

fn parse(input: &[u8]) -> Vec<Ev> {
    parse_chunks(&mut SseParser::new(), &[input])
}

/// Parses `input` cut at the given (sorted, deduplicated) offsets.
fn parse_split(parser: &mut SseParser, input: &[u8], cuts: &[usize]) -> Vec<Ev> {
    let mut chunks = Vec::new();
    let mut prev = 0;
    for &c in cuts {
        chunks.push(&input[prev..c]);
        prev = c;
    }
    chunks.push(&input[prev..]);
    parse_chunks(parser, &chunks)
}

fn data_of(evs: &[Ev]) -> Vec<Option<&str>> {
    evs.iter().map(|e| e.data.as_deref()).collect()
}

/// A stream exercising every feature: all three line endings (a `\r\n`
/// pair and multi-byte UTF-8 included at many split points), comments,
/// multi-line data, other fields, an empty data line and a final event
/// without its blank line.
const SAMPLE: &[u8] = b": keep-alive comment\n\
\n\
data: {\"a\":\"h\xc3\xa9llo \xf0\x9f\x98\x80\"}\r\n\
\r\n\
event: update\rid: 42\rretry: 1500\rdata: first\rdata:second\r\r\
data\n\
unknown: x\n\
data: \n\n\
\n\
data: last line no blank";

#[test]
fn sample_events() {
    let evs = parse(SAMPLE);
    assert_eq!(
        data_of(&evs),
        vec![
            None,
            Some("{\"a\":\"h\u{e9}llo \u{1F600}\"}"),
            Some("first\nsecond"),
            Some("\n"),
            None,
            Some("last line no blank"),
        ]
    );
    assert_eq!(evs[0].raw, b": keep-alive comment\n\n");
    assert_eq!(evs[2].event.as_deref(), Some("update"));
    assert_eq!(evs[2].id.as_deref(), Some("42"));
    assert_eq!(evs[2].retry, Some(1500));
    assert_eq!(evs[4].raw, b"\n");
    let concat: Vec<u8> = evs.iter().flat_map(|e| e.raw.clone()).collect();
    assert_eq!(concat, SAMPLE);
}

#[test]
fn every_split_point_gives_the_same_events() {
    let whole = parse(SAMPLE);
    for i in 0..=SAMPLE.len() {
        assert_eq!(
            parse_split(&mut SseParser::new(), SAMPLE, &[i]),
            whole,
            "split at {i}"
        );
        for j in i..=SAMPLE.len() {
            let got = parse_split(&mut SseParser::new(), SAMPLE, &[i, j]);
            assert_eq!(got, whole, "split at {i},{j}");
        }
    }
}

#[test]
fn byte_by_byte() {
    let chunks: Vec<&[u8]> = SAMPLE.chunks(1).collect();
    assert_eq!(parse_chunks(&mut SseParser::new(), &chunks), parse(SAMPLE));
}

#[test]
fn line_endings_are_equivalent() {
    let lf = parse(b"event: e\ndata: a\ndata: b\n\ndata: c\n\n");
    let crlf = parse(b"event: e\r\ndata: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n");
    let cr = parse(b"event: e\rdata: a\rdata: b\r\rdata: c\r\r");
    let strip = |v: Vec<Ev>| v.into_iter().map(|e| (e.event, e.data)).collect::<Vec<_>>();
    let want = vec![
        (Some("e".to_string()), Some("a\nb".to_string())),
        (None, Some("c".to_string())),
    ];
    assert_eq!(strip(lf), want);
    assert_eq!(strip(crlf), want);
    assert_eq!(strip(cr), want);
}

#[test]
fn crlf_split_between_cr_and_lf_keeps_raw() {
    let input = b"data: x\r\n\r\ndata: y\r\n\r\n";
    let whole = parse(input);
    assert_eq!(whole.len(), 2);
    assert_eq!(whole[0].raw, b"data: x\r\n\r\n");
    for i in 0..=input.len() {
        assert_eq!(
            parse_split(&mut SseParser::new(), input, &[i]),
            whole,
            "split {i}"
        );
    }
}

#[test]
fn trailing_cr_waits_for_next_byte() {
    let mut p = SseParser::new();
    let mut got = Vec::new();
    p.feed(b"data: x\r\r", |e| got.push(own(e)));
    assert!(got.is_empty(), "must wait: a \\n may follow");
    p.feed(b"\n", |e| got.push(own(e)));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].raw, b"data: x\r\r\n");
    p.feed(b"data: y\r\r", |e| got.push(own(e)));
    p.feed(b"data: z\n\n", |e| got.push(own(e)));
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].raw, b"data: y\r\r");
    assert_eq!(got[2].data.as_deref(), Some("z"));
}

#[test]
fn comments_and_field_rules() {
    let evs = parse(
        b":c1\n: c2\ndata:no-space\ndata:  two spaces\nid: a\0b\nid: 7\nretry: 12x\nretry: 9\n\n",
    );
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].data.as_deref(), Some("no-space\n two spaces"));
    assert_eq!(evs[0].id.as_deref(), Some("7"));
    assert_eq!(evs[0].retry, Some(9));
    let comment_only = parse(b": ping\n\n");
    assert_eq!(comment_only.len(), 1);
    assert_eq!(comment_only[0].data, None);
}

#[test]
fn final_event_without_blank_line() {
    assert_eq!(
        data_of(&parse(b"data: a\n\ndata: b")),
        vec![Some("a"), Some("b")]
    );
    assert_eq!(
        data_of(&parse(b"data: a\n\ndata: b\n")),
        vec![Some("a"), Some("b")]
    );
    assert_eq!(
        data_of(&parse(b"data: a\n\ndata: b\r")),
        vec![Some("a"), Some("b")]
    );
    assert!(parse(b"").is_empty());
    // Nothing is yielded before finish.
    let mut p = SseParser::new();
    let mut n = 0;
    p.feed(b"data: b", |_| n += 1);
    assert_eq!(n, 0);
    assert_eq!(p.buffered(), 7);
    p.finish(|_| n += 1);
    assert_eq!(n, 1);
    assert_eq!(p.buffered(), 0);
}

#[test]
fn bom_is_skipped_once() {
    let evs = parse(b"\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n");
    assert_eq!(evs[0].data.as_deref(), Some("a"));
    assert_eq!(evs[1].data, None, "only the stream's first BOM is skipped");
    assert_eq!(evs[0].raw, b"\xEF\xBB\xBFdata: a\n\n");
    let whole = parse(b"\xEF\xBB\xBFdata: a\n\n");
    for i in 0..4 {
        let got = parse_split(&mut SseParser::new(), b"\xEF\xBB\xBFdata: a\n\n", &[i]);
        assert_eq!(got, whole);
    }
}

#[test]
fn invalid_utf8_is_replaced() {
    let evs = parse(b"data: a\xffb\n\n");
    assert_eq!(evs[0].data.as_deref(), Some("a\u{FFFD}b"));
}

fn oversized_stream() -> Vec<u8> {
    let mut s = b"data: small\n\n".to_vec();
    s.extend_from_slice(b"data: ");
    s.extend_from_slice(&[b'x'; 100]);
    s.extend_from_slice(b"\r\ndata: more\r\n\r\n: after\n\ndata: tail\n\n");
    s
}

#[test]
fn oversized_events_pass_through_flagged() {
    let input = oversized_stream();
    for chunk in [1usize, 3, 7, 50, 1000] {
        let mut p = SseParser::with_max_event_bytes(40);
        let chunks: Vec<&[u8]> = input.chunks(chunk).collect();
        let evs = parse_chunks(&mut p, &chunks);
        let concat: Vec<u8> = evs.iter().flat_map(|e| e.raw.clone()).collect();
        assert_eq!(concat, input, "chunk {chunk}");
        assert_eq!(evs[0].data.as_deref(), Some("small"));
        let normal: Vec<_> = evs
            .iter()
            .filter(|e| !e.oversized)
            .map(|e| e.data.clone())
            .collect();
        assert_eq!(
            normal,
            vec![Some("small".into()), None, Some("tail".into())],
            "chunk {chunk}"
        );
        let big: usize = evs
            .iter()
            .filter(|e| e.oversized)
            .map(|e| e.raw.len())
            .sum();
        assert_eq!(big, 6 + 100 + 2 + 12 + 2, "chunk {chunk}");
        assert!(evs.iter().filter(|e| e.oversized).all(|e| e.data.is_none()));
    }
}

#[test]
fn buffer_stays_bounded() {
    let mut p = SseParser::with_max_event_bytes(1024);
    let chunk = [b'y'; 100];
    p.feed(b"data: ", |_| {});
    let mut pieces = 0usize;
    for _ in 0..1000 {
        p.feed(&chunk, |e| {
            assert!(e.oversized);
            pieces += e.raw.len();
        });
        assert!(p.buffered() <= 1024 + 100);
    }
    let mut rest = Vec::new();
    p.feed(b"\n\ndata: ok\n\n", |e| rest.push(own(e)));
    assert_eq!(
        pieces + rest.iter().take(1).map(|e| e.raw.len()).sum::<usize>(),
        6 + 100_000 + 2
    );
    assert_eq!(rest.last().and_then(|e| e.data.as_deref()), Some("ok"));
}

fn cuts_strategy(len: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..=len, 0..12).prop_map(|mut v| {
        v.sort_unstable();
        v
    })
}

proptest! {
    #[test]
    fn any_chunking_gives_identical_events(cuts in cuts_strategy(SAMPLE.len())) {
        prop_assert_eq!(parse_split(&mut SseParser::new(), SAMPLE, &cuts), parse(SAMPLE));
    }

    #[test]
    fn any_chunking_oversized(cuts in cuts_strategy(oversized_stream().len())) {
        let input = oversized_stream();
        let got = parse_split(&mut SseParser::with_max_event_bytes(40), &input, &cuts);
        let concat: Vec<u8> = got.iter().flat_map(|e| e.raw.clone()).collect();
        prop_assert_eq!(concat, input.clone());
        let normal = |v: &[Ev]| v.iter().filter(|e| !e.oversized).cloned().collect::<Vec<_>>();
        let whole = parse_chunks(&mut SseParser::with_max_event_bytes(40), &[&input]);
        prop_assert_eq!(normal(&got), normal(&whole));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_round_trip(
        input in proptest::collection::vec(prop_oneof![
            Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' '), Just(b'd'), Just(b'a'),
            Just(b't'), Just(0xEFu8), Just(0xBB), Just(0xBF), any::<u8>()
        ], 0..200),
        cuts in cuts_strategy(200),
    ) {
        let cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= input.len()).collect();
        let got = parse_split(&mut SseParser::with_max_event_bytes(16), &input, &cuts);
        let concat: Vec<u8> = got.iter().flat_map(|e| e.raw.clone()).collect();
        prop_assert_eq!(&concat, &input);
        let whole = parse_chunks(&mut SseParser::with_max_event_bytes(16), &[&input]);
        let normal = |v: &[Ev]| v.iter().filter(|e| !e.oversized).cloned().collect::<Vec<_>>();
        prop_assert_eq!(normal(&got), normal(&whole));
        let unbounded = parse_split(&mut SseParser::new(), &input, &cuts);
        prop_assert_eq!(unbounded, parse(&input));
    }
}
