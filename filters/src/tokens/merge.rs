//! Byte-pair merging of one pre-tokenized piece: tiktoken's algorithm
//! (repeatedly merge the adjacent pair whose concatenation has the lowest
//! rank, leftmost first) in two ports. Pieces up to 255 bytes: on the stack,
//! parts as a linked list, candidates in a heap, no allocation. Longer
//! pieces (say 10 000 repeated chars): a port of `_byte_pair_merge_large`.
//! Same rank order, same leftmost tie-break, so the same tokens as tiktoken
//! (whose own switch between its two versions is at 100 bytes) by
//! construction.
//!
//! Only token boundaries come out: counting and cutting need no ranks.
//!
//! **Very long pieces** (over [`LONG`] = 16 KiB: a run of one character,
//! of spaces or of punctuation, never a word of real text) are merged in
//! [`CHUNK`]-byte chunks cut at character boundaries, and a chunk equal to
//! one of the last few is not merged again. Whole, such a piece costs
//! O(n log n) with merge state far larger than the caches (a 15 MiB run of
//! `a` took 0.3–0.4 s of CPU per MiB and 24 bytes of state per byte); in
//! chunks the cost is linear with stack-sized state: a run of one
//! character counts faster than text, varied punctuation at about a
//! quarter of mixed text's rate (`examples/token_bench.rs`). The count of
//! such a piece can differ from tiktoken's by a few per cent (merges across
//! a seam do not happen), and [`merge_up_to`] stops between chunks once a
//! ceiling is passed.

use super::vocab::{Vocab, NONE};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Pieces up to this long merge on the stack (byte offsets fit a u8);
/// longer ones use the allocating port of `_byte_pair_merge_large`.
const STACK: usize = 255;
/// Longest piece merged whole; longer ones are merged in chunks of this size.
pub(crate) const LONG: usize = 16 * 1024;
/// Chunk size of pieces over [`LONG`] bytes.
pub(crate) const CHUNK: usize = STACK;

/// Splits `piece` (at least 2 bytes, not itself a token) into tokens:
/// `end(offset)` gets each token's end offset in order; returns the count.
pub(crate) fn merge(v: &Vocab, piece: &[u8], end: impl FnMut(usize)) -> usize {
    merge_up_to(v, piece, usize::MAX, end)
}

/// [`merge`] that may stop once the count is over `limit` (only pieces
/// over [`LONG`] bytes do, chunk by chunk): then it returns that count.
pub(crate) fn merge_up_to(v: &Vocab, piece: &[u8], limit: usize, end: impl FnMut(usize)) -> usize {
    if piece.len() > LONG {
        return chunked(v, piece, limit, end);
    }
    merge_whole(v, piece, end)
}

/// [`merge`] of a piece of at most [`LONG`] bytes.
fn merge_whole(v: &Vocab, piece: &[u8], end: impl FnMut(usize)) -> usize {
    if piece.len() < 2 {
        let mut end = end;
        if !piece.is_empty() {
            end(piece.len());
        }
        return piece.len();
    }
    // Three stack sizes: the arrays are zeroed on every call.
    match piece.len() {
        0..=31 => small::<32, 96>(v, piece, end),
        32..=99 => small::<100, 300>(v, piece, end),
        100..=STACK => small::<256, 768>(v, piece, end),
        _ => large(v, piece, end),
    }
}

/// Distinct chunks remembered by [`chunked`]: a long run of one unit
/// (`aaaa…`, spaces, `abab…`) cuts into a few distinct chunks, merged once
/// each.
const RECENT: usize = 4;

/// A piece over [`LONG`] bytes, merged in chunks of at most [`CHUNK`]
/// bytes that end on a UTF-8 character boundary (see the module docs);
/// stops once the count is over `limit`.
fn chunked(v: &Vocab, piece: &[u8], limit: usize, mut end: impl FnMut(usize)) -> usize {
    // Recently merged chunks with their token ends (offsets fit a u8).
    let mut recent: [(&[u8], Vec<u8>); RECENT] = Default::default();
    let mut next_slot = 0;
    let mut count = 0;
    let mut start = 0;
    while start < piece.len() && count <= limit {
        let mut stop = (start + CHUNK).min(piece.len());
        // Back off continuation bytes (0b10xx_xxxx) to a character start;
        // a chunk of only continuation bytes (not UTF-8) is cut anyway.
        while stop < piece.len() && stop > start + 4 && piece[stop] & 0xC0 == 0x80 {
            stop -= 1;
        }
        let chunk = &piece[start..stop];
        let known = recent.iter().position(|(c, _)| *c == chunk);
        let slot = match known {
            Some(i) => i,
            None => {
                let mut ends = Vec::new();
                if chunk.len() == 1 || v.rank(chunk).is_some() {
                    ends.push(chunk.len() as u8);
                } else {
                    merge_whole(v, chunk, |e| ends.push(e as u8));
                }
                let i = next_slot;
                next_slot = (next_slot + 1) % RECENT;
                recent[i] = (chunk, ends);
                i
            }
        };
        let ends = &recent[slot].1;
        for &e in ends {
            end(start + e as usize);
        }
        count += ends.len();
        start = stop;
    }
    count
}

/// A binary min-heap on the stack: at most `n - 1` initial candidates plus
/// 2 per merge (`n - 1` merges at most).
struct Heap<const H: usize> {
    a: [u64; H],
    len: usize,
}

impl<const H: usize> Heap<H> {
    #[inline(always)]
    fn push(&mut self, x: u64) {
        let mut i = self.len;
        if i >= self.a.len() {
            return; // unreachable: capacity is the proven bound
        }
        self.len += 1;
        while i > 0 {
            let p = (i - 1) / 2;
            if self.a[p] <= x {
                break;
            }
            self.a[i] = self.a[p];
            i = p;
        }
        self.a[i] = x;
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let top = self.a[0];
        self.len -= 1;
        let x = self.a[self.len];
        let mut i = 0;
        loop {
            let mut c = 2 * i + 1;
            if c >= self.len {
                break;
            }
            if c + 1 < self.len && self.a[c + 1] < self.a[c] {
                c += 1;
            }
            if self.a[c] >= x {
                break;
            }
            self.a[i] = self.a[c];
            i = c;
        }
        self.a[i] = x;
        Some(top)
    }
}

/// tiktoken's `_byte_pair_merge` with the parts as a linked list over byte
/// offsets (no shifting) and the candidate merges in a heap keyed
/// `(rank, offset)`: `rank[i]` is the rank of merging the part starting at
/// `i` with the next one (`NONE` if impossible or if `i` starts no part any
/// more), and the heap's smallest still-current entry is tiktoken's choice,
/// the leftmost minimum. An entry is current iff `rank[offset]` still
/// equals it: a part's candidate only ever grows, so ranks never repeat.
///
/// `N` > piece length, `H` = 3 `N` (heap bound).
fn small<const N: usize, const H: usize>(
    v: &Vocab,
    piece: &[u8],
    mut end: impl FnMut(usize),
) -> usize {
    let n = piece.len().min(N - 1);
    let mut rank = [NONE; N];
    let mut next = [0u8; N];
    let mut prev = [0u8; N];
    let mut heap = Heap::<H> { a: [0; H], len: 0 };
    let key = |r: u32, i: usize| (r as u64) << 8 | i as u64;
    for i in 0..n {
        next[i] = (i + 1) as u8;
        prev[i] = i.saturating_sub(1) as u8;
        if i + 1 < n {
            let r = v.pair(piece[i], piece[i + 1]);
            rank[i] = r;
            if r != NONE {
                heap.push(key(r, i));
            }
        }
    }
    while let Some(top) = heap.pop() {
        let (r, i) = ((top >> 8) as u32, (top & 0xFF) as usize);
        if rank[i] != r {
            continue; // stale
        }
        // Merge part i with part j: the new part i is [i, k).
        let j = next[i] as usize;
        let k = next[j] as usize;
        next[i] = k as u8;
        if k < n {
            prev[k] = i as u8;
        }
        rank[j] = NONE;
        rank[i] = if k < n {
            v.rank_or_none(&piece[i..next[k] as usize])
        } else {
            NONE
        };
        if rank[i] != NONE {
            heap.push(key(rank[i], i));
        }
        if i > 0 {
            let p = prev[i] as usize;
            rank[p] = v.rank_or_none(&piece[p..k]);
            if rank[p] != NONE {
                heap.push(key(rank[p], p));
            }
        }
    }
    let mut count = 0;
    let mut i = 0;
    while i < n {
        i = next[i] as usize;
        end(i);
        count += 1;
    }
    count
}

/// A part of a long piece (offsets as u32: 16 bytes per byte of piece).
struct State {
    prev: u32,
    end: u32,
    next_end: u32,
    next_rank: u32,
}

/// Port of tiktoken's `_byte_pair_merge_large`; heap entries are
/// `rank << 32 | start`, so the smallest is the leftmost lowest rank.
fn large(v: &Vocab, piece: &[u8], mut end: impl FnMut(usize)) -> usize {
    let n = piece.len();
    let mut state = Vec::with_capacity(n);
    state.push(State {
        prev: u32::MAX,
        end: 1,
        next_end: 2,
        next_rank: NONE,
    });
    let key = |r: u32, start: usize| Reverse((r as u64) << 32 | start as u64);
    let mut heap = BinaryHeap::with_capacity(n);
    for i in 0..n - 1 {
        let r = v.pair(piece[i], piece[i + 1]);
        if r != NONE {
            heap.push(key(r, i));
            state[i].next_rank = r;
        }
        state.push(State {
            prev: i as u32,
            end: (i + 2) as u32,
            next_end: (i + 3) as u32,
            next_rank: NONE,
        });
    }
    let potential = |state: &mut Vec<State>, heap: &mut BinaryHeap<_>, start: usize, to: usize| {
        state[start].next_end = to as u32;
        state[start].next_rank = NONE;
        if to <= n {
            let r = v.rank_or_none(&piece[start..to]);
            if r != NONE {
                heap.push(key(r, start));
                state[start].next_rank = r;
            }
        }
    };
    while let Some(Reverse(top)) = heap.pop() {
        let (rank, left) = ((top >> 32) as u32, (top & 0xFFFF_FFFF) as usize);
        if rank != state[left].next_rank {
            continue; // invalidated
        }
        let right = state[left].end as usize;
        let right_end = state[left].next_end as usize;
        let right_next_end = state[right].next_end as usize;
        state[left].end = right_end as u32;
        potential(&mut state, &mut heap, left, right_next_end);
        if right_end < state.len() {
            state[right_end].prev = left as u32;
        }
        if left > 0 {
            let prev = state[left].prev as usize;
            potential(&mut state, &mut heap, prev, right_end);
        }
        state[right].next_rank = NONE;
    }
    let mut count = 0;
    let mut i = 0;
    while i < n {
        i = state[i].end as usize;
        end(i);
        count += 1;
    }
    count
}
