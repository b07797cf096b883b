//! A BPE vocabulary (token bytes ↔ rank) packed for fast lookup, and its
//! loading from tiktoken-rs's embedded `.tiktoken` files.
//!
//! Layout: all token bytes back to back (`bytes`, `starts`); an
//! open-addressing hash table (load <= 1/2) answering "is this byte string a
//! token, of which rank" without touching the token bytes for tokens of up
//! to 8 bytes; in front of it a 512 KB one-bit-per-hash filter that turns
//! most failed lookups (two thirds of a merge's) away early; and a direct
//! 64K table for two-byte tokens (the first round of every merge). About
//! 11 MB for o200k_base, 6 MB for cl100k_base.

use super::Encoding;
use std::collections::HashSet;

/// "No such token" in rank tables.
pub(crate) const NONE: u32 = u32::MAX;

/// A hash slot. Tokens of up to 8 bytes are identified by `key` (their
/// bytes packed, see [`pack`]) and `len` alone; longer ones by a hash in
/// `key`, confirmed against their bytes. `len == 0`: empty slot.
#[derive(Clone, Copy)]
struct Slot {
    key: u64,
    rank: u32,
    len: u32,
}

const EMPTY: Slot = Slot {
    key: 0,
    rank: NONE,
    len: 0,
};

pub(crate) struct Vocab {
    bytes: Vec<u8>,
    /// Token `r` is `bytes[starts[r]..starts[r + 1]]` (empty for unused ranks).
    starts: Vec<u32>,
    slots: Vec<Slot>,
    mask: usize,
    pairs: Vec<u32>,
    /// One bit per hash value (2^22 bits): clear means "not a token", so
    /// most failed lookups never touch `slots`.
    filter: Vec<u64>,
    /// Longest token, in bytes: longer pieces skip the whole-piece lookup.
    pub(crate) max_len: usize,
}

const K: u64 = 0x9E37_79B9_7F4A_7C15;
const FILTER_LOG2: u32 = 22;
const FILTER_BITS: usize = 1 << FILTER_LOG2;

#[inline(always)]
fn read_u32(b: &[u8], at: usize) -> u64 {
    match b.get(at..at + 4) {
        Some(&[w, x, y, z]) => u32::from_le_bytes([w, x, y, z]) as u64,
        _ => 0,
    }
}

#[inline(always)]
fn read_u64(b: &[u8], at: usize) -> u64 {
    match b.get(at..at + 8) {
        Some(&[a, b, c, d, e, f, g, h]) => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
        _ => 0,
    }
}

/// 1 to 8 bytes packed into a u64 by overlapping loads (no copy); with the
/// length it identifies the bytes exactly: the loads cover every byte.
#[inline(always)]
fn pack(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 4 {
        read_u32(b, 0) | read_u32(b, n - 4) << 32
    } else if n > 0 {
        b[0] as u64 | (b[n / 2] as u64) << 8 | (b[n - 1] as u64) << 16
    } else {
        0
    }
}

/// splitmix64's finalizer: every input bit reaches every output bit.
#[inline(always)]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Hash of more than 8 bytes.
#[inline(always)]
fn hash_long(b: &[u8]) -> u64 {
    let n = b.len();
    let mut h = (n as u64).wrapping_mul(K);
    let mut i = 0;
    while i + 8 < n {
        h = (h ^ read_u64(b, i)).wrapping_mul(K).rotate_left(26);
        i += 8;
    }
    mix(h ^ read_u64(b, n.saturating_sub(8)))
}

/// `(key, table hash)` of a byte string.
#[inline(always)]
fn key_of(b: &[u8]) -> (u64, u64) {
    if b.len() <= 8 {
        let key = pack(b);
        (key, mix(key ^ (b.len() as u64) << 59))
    } else {
        let h = hash_long(b);
        (h, h)
    }
}

impl Vocab {
    /// Builds from `(rank, bytes)` pairs (ranks unique).
    pub(crate) fn new(tokens: &[(u32, Vec<u8>)]) -> Vocab {
        let max_rank = tokens.iter().map(|t| t.0).max().unwrap_or(0) as usize;
        let mut by_rank: Vec<Option<&[u8]>> = vec![None; max_rank + 1];
        for (rank, b) in tokens {
            by_rank[*rank as usize] = Some(b);
        }
        let mut bytes = Vec::with_capacity(tokens.iter().map(|t| t.1.len()).sum());
        let mut starts = Vec::with_capacity(max_rank + 2);
        for b in &by_rank {
            starts.push(bytes.len() as u32);
            bytes.extend_from_slice(b.unwrap_or(&[]));
        }
        starts.push(bytes.len() as u32);
        let size = (tokens.len() * 2).next_power_of_two().max(16);
        let mut v = Vocab {
            bytes,
            starts,
            slots: vec![EMPTY; size],
            mask: size - 1,
            pairs: vec![NONE; 1 << 16],
            filter: vec![0; FILTER_BITS / 64],
            max_len: 0,
        };
        for (rank, b) in tokens {
            if b.is_empty() || v.rank(b).is_some() {
                continue; // duplicate bytes: keep the first (lowest) rank
            }
            let (key, h) = key_of(b);
            let mut i = h as usize & v.mask;
            while v.slots[i].len != 0 {
                i = (i + 1) & v.mask;
            }
            let f = (h >> (64 - FILTER_LOG2)) as usize;
            v.filter[f / 64] |= 1 << (f % 64);
            v.slots[i] = Slot {
                key,
                rank: *rank,
                len: b.len() as u32,
            };
            v.max_len = v.max_len.max(b.len());
            if let [x, y] = b[..] {
                v.pairs[(x as usize) << 8 | y as usize] = *rank;
            }
        }
        v
    }

    #[inline(always)]
    fn token(&self, rank: u32) -> &[u8] {
        let r = rank as usize;
        match (self.starts.get(r), self.starts.get(r + 1)) {
            (Some(&a), Some(&b)) => self.bytes.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The rank of `piece` if it is a token.
    #[inline]
    pub(crate) fn rank(&self, piece: &[u8]) -> Option<u32> {
        let r = self.rank_or_none(piece);
        (r != NONE).then_some(r)
    }

    /// Rank of the two-byte token `a b`, or [`NONE`].
    #[inline(always)]
    pub(crate) fn pair(&self, a: u8, b: u8) -> u32 {
        self.pairs[(a as usize) << 8 | b as usize]
    }

    /// Rank of `piece` if a token, else [`NONE`].
    #[inline(always)]
    pub(crate) fn rank_or_none(&self, piece: &[u8]) -> u32 {
        let len = piece.len();
        if len == 2 {
            return self.pair(piece[0], piece[1]);
        }
        let (key, h) = key_of(piece);
        let f = (h >> (64 - FILTER_LOG2)) as usize;
        if self.filter[f / 64] & (1 << (f % 64)) == 0 {
            return NONE;
        }
        let mut i = h as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s.len == 0 {
                return NONE;
            }
            if s.key == key && s.len as usize == len && (len <= 8 || self.token(s.rank) == piece) {
                return s.rank;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Loads an encoding's mergeable ranks from tiktoken-rs (which embeds
    /// OpenAI's `.tiktoken` files). Slow (a few hundred ms for o200k): done
    /// once per process by [`Encoding::counter`].
    pub(crate) fn load(encoding: Encoding) -> Option<Vocab> {
        let core = match encoding {
            Encoding::O200kBase => tiktoken_rs::o200k_base(),
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base(),
            Encoding::P50kBase => tiktoken_rs::p50k_base(),
            Encoding::R50kBase => tiktoken_rs::r50k_base(),
        }
        .ok()?;
        let specials: HashSet<&[u8]> = core
            .special_tokens()
            .into_iter()
            .map(str::as_bytes)
            .collect();
        // Every rank below this is a mergeable token or a special; the
        // margin only costs failed lookups.
        let limit = encoding.vocab_size() as u32 + 1024;
        let tokens: Vec<(u32, Vec<u8>)> = (0..limit)
            .filter_map(|rank| {
                let b = core.decode_bytes(&[rank]).ok()?;
                (!specials.contains(&b[..])).then_some((rank, b))
            })
            .collect();
        (tokens.len() == encoding.vocab_size()).then(|| Vocab::new(&tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_vocab_lookup() {
        let toks: Vec<(u32, Vec<u8>)> = (0u32..256)
            .map(|b| (b, vec![b as u8]))
            .chain([(256, b"ab".to_vec()), (257, b"abc".to_vec())])
            .collect();
        let v = Vocab::new(&toks);
        assert_eq!(v.rank(b"a"), Some(b'a' as u32));
        assert_eq!(v.rank(b"ab"), Some(256));
        assert_eq!(v.pair(b'a', b'b'), 256);
        assert_eq!(v.pair(b'b', b'a'), NONE);
        assert_eq!(v.rank(b"abc"), Some(257));
        assert_eq!(v.rank(b"abcd"), None);
        assert_eq!(v.rank(b""), None);
        assert_eq!(v.max_len, 3);
    }
}
