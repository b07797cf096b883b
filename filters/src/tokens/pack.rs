//! The packed form of a BPE vocabulary: built once from `(rank, bytes)`
//! pairs — by the crate's build script for the four compiled-in encodings,
//! by tests for small ones — and read in place by [`super::vocab::Vocab`].
//!
//! The build script compiles this file on its own (`#[path]`), so it uses
//! nothing but `std`, and the hashing below is, by construction, the same at
//! build time and at run time.
//!
//! Layout, `u32` words in the target's byte order (the blob is 4-byte
//! aligned where it is embedded; [`HEADER`] words, then the sections back
//! to back):
//! `[MAGIC, max_len, ranks, slot_count, byte_len]`, then `starts`
//! (`ranks + 1` words: token `r` is `bytes[starts[r]..starts[r + 1]]`,
//! empty for an unused rank), `slots` (`slot_count`, a power of two: an
//! open-addressing table at load ≤ 1/2, each slot
//! `fingerprint << RANK_BITS | (rank + 1)`, 0 when empty), `pairs` (65 536
//! words: the rank of each two-byte token, [`NONE`] otherwise), `filter`
//! ([`FILTER_BITS`] / 32 words), then the token bytes. About 4.6 MB for
//! o200k_base and 2.5 MB for cl100k_base, against 11 and 6 MB of heap for
//! the earlier layout; being part of the binary's read-only data, the
//! pages are shared by every process running it and only those a lookup
//! touches become resident.

/// "No such token" in rank tables.
pub const NONE: u32 = u32::MAX;

/// First word of a packed vocabulary (format version 2).
pub const MAGIC: u32 = 0x534c_5632; // "SLV2"

/// Words before the sections.
pub const HEADER: usize = 5;

/// Bits of a slot holding `rank + 1` (o200k_base's ranks are below 2^18).
pub const RANK_BITS: u32 = 18;

/// Mask of a slot's `rank + 1`.
pub const RANK_MASK: u32 = (1 << RANK_BITS) - 1;

/// Entries of the two-byte table.
pub const PAIRS: usize = 1 << 16;

/// Bits of the filter: one per value of [`filter_bit`], set for every token.
/// 128 KiB, small enough to stay in a core's L2 cache: most byte strings
/// that are no token (two thirds of a merge's lookups) are turned away
/// without reading the slots.
pub const FILTER_BITS: usize = 1 << 20;

/// The filter bit of a table hash (bits the slot index and fingerprint of
/// tables up to 2^20 slots do not use).
#[inline(always)]
pub fn filter_bit(h: u64) -> usize {
    (h >> 24) as usize & (FILTER_BITS - 1)
}

const K: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline(always)]
fn read_u64(b: &[u8], at: usize) -> u64 {
    match b.get(at..at + 8) {
        Some(&[a, b, c, d, e, f, g, h]) => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
        _ => 0,
    }
}

#[inline(always)]
fn read_u32(b: &[u8], at: usize) -> u64 {
    match b.get(at..at + 4) {
        Some(&[w, x, y, z]) => u32::from_le_bytes([w, x, y, z]) as u64,
        _ => 0,
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

/// Table hash of a byte string: its low bits pick the slot, its top
/// 32 − [`RANK_BITS`] bits are the slot's fingerprint.
#[inline(always)]
pub fn hash(b: &[u8]) -> u64 {
    let n = b.len();
    let packed = if n > 8 {
        let mut h = (n as u64).wrapping_mul(K);
        let mut i = 0;
        while i + 8 < n {
            h = (h ^ read_u64(b, i)).wrapping_mul(K).rotate_left(26);
            i += 8;
        }
        h ^ read_u64(b, n - 8)
    } else if n >= 4 {
        // Overlapping loads cover every byte.
        read_u32(b, 0) | read_u32(b, n - 4) << 32
    } else if n > 0 {
        b[0] as u64 | (b[n / 2] as u64) << 8 | (b[n - 1] as u64) << 16
    } else {
        0
    };
    mix(packed ^ (n as u64) << 59)
}

/// The fingerprint stored in a slot for `h`.
#[inline(always)]
pub fn fingerprint(h: u64) -> u32 {
    ((h >> (64 - (32 - RANK_BITS))) as u32) << RANK_BITS
}

/// Packs `(rank, bytes)` pairs (ranks below 2^[`RANK_BITS`] − 1; for
/// duplicate bytes the lowest rank wins), its words in the byte order of the
/// target that will read them. `None` if a rank is too large.
#[cfg_attr(not(test), allow(dead_code))] // the build script and tests pack; the library reads
pub fn pack(tokens: &[(u32, Vec<u8>)], big_endian: bool) -> Option<Vec<u8>> {
    let max_rank = tokens.iter().map(|t| t.0).max().unwrap_or(0);
    if max_rank >= RANK_MASK {
        return None;
    }
    let ranks = max_rank as usize + 1;
    let mut by_rank: Vec<Option<&[u8]>> = vec![None; ranks];
    for (rank, b) in tokens {
        by_rank[*rank as usize] = Some(b);
    }
    let mut bytes = Vec::with_capacity(tokens.iter().map(|t| t.1.len()).sum());
    let mut starts = Vec::with_capacity(ranks + 1);
    for b in &by_rank {
        starts.push(bytes.len() as u32);
        bytes.extend_from_slice(b.unwrap_or(&[]));
    }
    starts.push(bytes.len() as u32);
    let token = |r: u32| &bytes[starts[r as usize] as usize..starts[r as usize + 1] as usize];

    let size = (tokens.len() * 2).next_power_of_two().max(16);
    let mask = size - 1;
    let mut slots = vec![0u32; size];
    let mut pairs = vec![NONE; PAIRS];
    let mut filter = vec![0u32; FILTER_BITS / 32];
    let mut max_len = 0usize;
    let mut sorted: Vec<&(u32, Vec<u8>)> = tokens.iter().collect();
    sorted.sort_by_key(|t| t.0);
    for (rank, b) in sorted {
        if b.is_empty() {
            continue;
        }
        let h = hash(b);
        let fp = fingerprint(h);
        let mut i = h as usize & mask;
        let mut duplicate = false;
        while slots[i] != 0 {
            let s = slots[i];
            if s & !RANK_MASK == fp && token((s & RANK_MASK) - 1) == &b[..] {
                duplicate = true;
                break;
            }
            i = (i + 1) & mask;
        }
        if duplicate {
            continue;
        }
        slots[i] = fp | (rank + 1);
        let f = filter_bit(h);
        filter[f / 32] |= 1 << (f % 32);
        max_len = max_len.max(b.len());
        if let [x, y] = b[..] {
            pairs[(x as usize) << 8 | y as usize] = *rank;
        }
    }

    let words = HEADER + starts.len() + slots.len() + pairs.len() + filter.len();
    let mut out = Vec::with_capacity(words * 4 + bytes.len());
    for w in [
        MAGIC,
        max_len as u32,
        ranks as u32,
        size as u32,
        bytes.len() as u32,
    ]
    .iter()
    .chain(&starts)
    .chain(&slots)
    .chain(&pairs)
    .chain(&filter)
    {
        out.extend_from_slice(&if big_endian {
            w.to_be_bytes()
        } else {
            w.to_le_bytes()
        });
    }
    out.extend_from_slice(&bytes);
    Some(out)
}
