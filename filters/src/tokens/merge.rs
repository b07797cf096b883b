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

use super::vocab::{Vocab, NONE};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Pieces up to this long merge on the stack (byte offsets fit a u8);
/// longer ones use the allocating port of `_byte_pair_merge_large`.
const STACK: usize = 255;
const LARGE_MIN: usize = STACK + 1;
/// Longest piece merged in one go (u32 offsets, with room to spare).
const LARGE_MAX: usize = 1 << 30;

/// Splits `piece` (at least 2 bytes, not itself a token) into tokens:
/// `end(offset)` gets each token's end offset in order; returns the count.
pub(crate) fn merge(v: &Vocab, piece: &[u8], end: impl FnMut(usize)) -> usize {
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
        LARGE_MIN..=LARGE_MAX => large(v, piece, end),
        _ => {
            // Beyond any real input (offsets must fit u32): merged in 1 GiB
            // chunks, which may differ from tiktoken at the seams.
            let mut end = end;
            let mut count = 0;
            for (k, chunk) in piece.chunks(LARGE_MAX).enumerate() {
                count += large(v, chunk, |e| end(k * LARGE_MAX + e));
            }
            count
        }
    }
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
