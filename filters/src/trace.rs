//! W3C Trace Context and sampling, as pure functions: a request's
//! `traceparent` header ([`parse`]), the header sent upstream ([`format()`]),
//! and whether a trace is recorded ([`sampled`]: a parent's decision is
//! kept; a new trace is recorded with the configured ratio, decided on its
//! id so every instance that sees it decides alike).

/// A parsed `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    /// The caller's span: the parent of the gateway's.
    pub span_id: [u8; 8],
    /// The caller recorded it (flag `01`).
    pub sampled: bool,
}

fn hex_into(text: &str, out: &mut [u8]) -> Option<()> {
    if text.len() != out.len() * 2
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    hex::decode_to_slice(text, out).ok()
}

/// A `traceparent` value: `00-{32 hex trace id}-{16 hex span id}-{2 hex
/// flags}` in lower case; an all-zero id, an unknown version `ff` or any
/// other shape is refused (the request then starts a trace of its own).
/// Versions above 00 are read as 00 (their first four fields), as the
/// specification asks.
pub fn parse(value: &str) -> Option<TraceParent> {
    let value = value.trim();
    let mut parts = value.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let mut v = [0u8; 1];
    hex_into(version, &mut v)?;
    if v[0] == 0xff || (v[0] == 0 && parts.next().is_some()) {
        return None;
    }
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    let mut f = [0u8; 1];
    hex_into(trace, &mut trace_id)?;
    hex_into(span, &mut span_id)?;
    hex_into(flags, &mut f)?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(TraceParent {
        trace_id,
        span_id,
        sampled: f[0] & 1 == 1,
    })
}

/// The `traceparent` of a span.
pub fn format(trace_id: &[u8; 16], span_id: &[u8; 8], sampled: bool) -> String {
    format!(
        "00-{}-{}-{}",
        hex::encode(trace_id),
        hex::encode(span_id),
        if sampled { "01" } else { "00" }
    )
}

/// Whether a trace is recorded: as its parent decided, else with `ratio`
/// (0 to 1) by the trace id's last 8 bytes.
pub fn sampled(parent: Option<&TraceParent>, trace_id: &[u8; 16], ratio: f64) -> bool {
    if let Some(p) = parent {
        return p.sampled;
    }
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 || ratio.is_nan() {
        return false;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    let x = u64::from_be_bytes(low) >> 1;
    (x as f64) < ratio * (u64::MAX >> 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn reads_and_writes_traceparent() {
        let p = parse(GOOD).unwrap();
        assert!(p.sampled);
        assert_eq!(hex::encode(p.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(format(&p.trace_id, &p.span_id, true), GOOD);
        assert!(
            !parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .unwrap()
                .sampled
        );
        // A later version with more fields is read as 00.
        assert!(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").is_some());
        for bad in [
            "",
            "garbage",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn sampling_keeps_the_parents_choice_and_the_ratio() {
        let p = parse(GOOD).unwrap();
        assert!(sampled(Some(&p), &p.trace_id, 0.0));
        let unsampled = TraceParent {
            sampled: false,
            ..p
        };
        assert!(!sampled(Some(&unsampled), &p.trace_id, 1.0));
        assert!(sampled(None, &[7; 16], 1.0));
        assert!(!sampled(None, &[7; 16], 0.0));
        // About the ratio over many ids.
        let n = (0..10_000u32)
            .filter(|i| {
                let mut id = [0u8; 16];
                id[8..12].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
                id[12..].copy_from_slice(&i.to_le_bytes());
                sampled(None, &id, 0.25)
            })
            .count();
        assert!((2_000..3_000).contains(&n), "{n}");
    }
}
