//! A stored answer ([`Entry`]) and its form in Redis: a small JSON head
//! (shape, usage, lifetimes, scope) and the answer's chunks, compressed
//! with LZ4. Decoding checks every length against the entry size bound
//! before it allocates.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One stored answer, in OpenAI's wire format (catalog answers are
/// translated before they are stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The body is an SSE stream (else one JSON object).
    pub stream: bool,
    /// The body as it passed, chunk by chunk (replayed chunked the same).
    pub chunks: Vec<Bytes>,
    /// (prompt, completion) tokens the answer reported or was metered at.
    pub usage: Option<(u64, u64)>,
    /// When it was stored (Unix ms) and how long it is fresh, then stale.
    pub stored_ms: u64,
    pub ttl_ms: u64,
    pub stale_ms: u64,
    /// Its scope, for purges: namespace code and public model.
    pub namespace: String,
    pub model: String,
}

#[derive(Serialize, Deserialize)]
struct Head {
    s: bool,
    u: Option<(u64, u64)>,
    t: u64,
    l: u64,
    g: u64,
    n: String,
    m: String,
    /// Chunk lengths.
    c: Vec<usize>,
}

/// Fixed cost of an entry in memory besides its bytes (struct, strings,
/// chunk handles, the cache's own bookkeeping), for the L1 weigher.
const OVERHEAD: usize = 256;

impl Entry {
    /// Bytes of the answer.
    pub fn body_len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    /// What the entry weighs in memory (its bytes and a fixed overhead).
    pub fn weight(&self) -> u32 {
        let w = self.body_len() + self.chunks.len() * 32 + OVERHEAD;
        u32::try_from(w).unwrap_or(u32::MAX)
    }

    /// The whole body.
    pub fn body(&self) -> Vec<u8> {
        self.chunks.concat()
    }

    /// The Redis value: LZ4 of `head-length (4 bytes LE) | head | chunks`.
    pub fn encode(&self) -> Vec<u8> {
        let head = Head {
            s: self.stream,
            u: self.usage,
            t: self.stored_ms,
            l: self.ttl_ms,
            g: self.stale_ms,
            n: self.namespace.clone(),
            m: self.model.clone(),
            c: self.chunks.iter().map(Bytes::len).collect(),
        };
        let head = serde_json::to_vec(&head).unwrap_or_default();
        let mut raw = Vec::with_capacity(4 + head.len() + self.body_len());
        raw.extend_from_slice(&(head.len() as u32).to_le_bytes());
        raw.extend_from_slice(&head);
        for c in &self.chunks {
            raw.extend_from_slice(c);
        }
        lz4_flex::compress_prepend_size(&raw)
    }

    /// An entry from its Redis value; None when it is not one, or larger
    /// than `max_bytes` once decompressed.
    pub fn decode(value: &[u8], max_bytes: usize) -> Option<Entry> {
        let size = u32::from_le_bytes(value.get(..4)?.try_into().ok()?) as usize;
        // The head and chunk lengths come on top of the body's bytes.
        if size > max_bytes.saturating_add(64 * 1024) {
            return None;
        }
        let raw = lz4_flex::decompress_size_prepended(value).ok()?;
        let head_len = u32::from_le_bytes(raw.get(..4)?.try_into().ok()?) as usize;
        let head: Head = serde_json::from_slice(raw.get(4..4usize.checked_add(head_len)?)?).ok()?;
        let raw = Bytes::from(raw);
        let mut at = 4 + head_len;
        let mut chunks = Vec::with_capacity(head.c.len().min(raw.len()));
        for len in head.c {
            let end = at.checked_add(len)?;
            if end > raw.len() {
                return None;
            }
            chunks.push(raw.slice(at..end));
            at = end;
        }
        (at == raw.len()).then_some(Entry {
            stream: head.s,
            chunks,
            usage: head.u,
            stored_ms: head.t,
            ttl_ms: head.l,
            stale_ms: head.g,
            namespace: head.n,
            model: head.m,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            stream: true,
            chunks: vec![
                Bytes::from_static(b"data: a\n\n"),
                Bytes::from_static(b"data: [DONE]\n\n"),
            ],
            usage: Some((3, 4)),
            stored_ms: 1,
            ttl_ms: 2,
            stale_ms: 3,
            namespace: "ns".into(),
            model: "m".into(),
        }
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        let e = entry();
        let v = e.encode();
        assert_eq!(Entry::decode(&v, 1 << 20), Some(e.clone()));
        assert_eq!(Entry::decode(&v[..v.len() - 1], 1 << 20), None);
        assert_eq!(Entry::decode(b"", 1 << 20), None);
        assert_eq!(Entry::decode(b"\xff\xff\xff\x7fxxxx", 1 << 20), None);
        assert!(e.weight() as usize > e.body_len());
    }
}
