//! A BPE vocabulary (token bytes ↔ rank) for lookups, read in place from
//! its packed form (layout and hashing in [`super::pack`]): the four
//! tiktoken encodings are packed by the build script and embedded in the
//! binary's read-only data, so the pages are shared by every process
//! running the binary, only those lookups touch become resident, and
//! nothing is decoded at start-up. Measured on the whole gateway
//! (`load-tests/idle.sh`): see `load-tests/RESULTS.md`, "Idle memory".

use super::pack::{self, FILTER_BITS, HEADER, MAGIC, PAIRS, RANK_MASK};
use super::Encoding;

pub(crate) use super::pack::NONE;

/// The packed bytes, aligned so their words can be read in place.
#[repr(C, align(8))]
struct Aligned<B: ?Sized>(B);

macro_rules! packed {
    ($name:literal) => {
        &Aligned(*include_bytes!(concat!(
            env!("OUT_DIR"),
            "/",
            $name,
            ".vocab"
        )))
    };
}

static O200K_BASE: &Aligned<[u8]> = packed!("o200k_base");
static CL100K_BASE: &Aligned<[u8]> = packed!("cl100k_base");
static P50K_BASE: &Aligned<[u8]> = packed!("p50k_base");
static R50K_BASE: &Aligned<[u8]> = packed!("r50k_base");

pub(crate) struct Vocab {
    /// Token `r` is `bytes[starts[r]..starts[r + 1]]` (empty for unused ranks).
    starts: &'static [u32],
    /// `fingerprint | rank + 1` per slot, 0 when empty ([`pack`]).
    slots: &'static [u32],
    mask: usize,
    /// Rank of each two-byte token (the first round of every merge).
    pairs: &'static [u32],
    /// One bit per [`pack::filter_bit`] value: clear means "no token".
    filter: &'static [u32],
    bytes: &'static [u8],
    /// Longest token, in bytes: longer pieces skip the whole-piece lookup.
    pub(crate) max_len: usize,
}

impl Vocab {
    /// The compiled-in vocabulary of `encoding`; `None` only if the
    /// embedded bytes do not parse (never for a build of this crate).
    pub(crate) fn compiled(encoding: Encoding) -> Option<Vocab> {
        let packed = match encoding {
            Encoding::O200kBase => O200K_BASE,
            Encoding::Cl100kBase => CL100K_BASE,
            Encoding::P50kBase => P50K_BASE,
            Encoding::R50kBase => R50K_BASE,
        };
        Vocab::parse(&packed.0)
    }

    /// Reads a packed vocabulary (4-byte aligned) in place.
    fn parse(packed: &'static [u8]) -> Option<Vocab> {
        let header: &[u32] = bytemuck::try_cast_slice(packed.get(..HEADER * 4)?).ok()?;
        let &[magic, max_len, ranks, slot_count, byte_len] = header else {
            return None;
        };
        let (ranks, slot_count) = (ranks as usize, slot_count as usize);
        if magic != MAGIC || !slot_count.is_power_of_two() {
            return None;
        }
        let words = HEADER + ranks + 1 + slot_count + PAIRS + FILTER_BITS / 32;
        let all: &[u32] = bytemuck::try_cast_slice(packed.get(..words * 4)?).ok()?;
        let bytes = packed.get(words * 4..)?;
        let (starts, rest) = all.get(HEADER..)?.split_at_checked(ranks + 1)?;
        let (slots, rest) = rest.split_at_checked(slot_count)?;
        let (pairs, filter) = rest.split_at_checked(PAIRS)?;
        // Nothing else is checked (it would make every page resident):
        // a lookup reads tokens with `get`, an entry out of bounds is no token.
        let in_bounds = bytes.len() == byte_len as usize;
        in_bounds.then_some(Vocab {
            starts,
            slots,
            mask: slot_count - 1,
            pairs,
            filter,
            bytes,
            max_len: max_len as usize,
        })
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
        if piece.len() == 2 {
            return self.pair(piece[0], piece[1]);
        }
        let h = pack::hash(piece);
        let f = pack::filter_bit(h);
        if self.filter[f / 32] & (1 << (f % 32)) == 0 {
            return NONE;
        }
        let fp = pack::fingerprint(h);
        let mut i = h as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return NONE;
            }
            if s & !RANK_MASK == fp {
                let rank = (s & RANK_MASK) - 1;
                if self.token(rank) == piece {
                    return rank;
                }
            }
            i = (i + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Vocab {
        /// A vocabulary of `(rank, bytes)` pairs, packed as the build
        /// script packs (leaked: tests only).
        pub(crate) fn from_tokens(tokens: &[(u32, Vec<u8>)]) -> Vocab {
            let packed = pack::pack(tokens, cfg!(target_endian = "big")).expect("ranks fit");
            let mut words = vec![0u32; packed.len().div_ceil(4)];
            bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..packed.len()]
                .copy_from_slice(&packed);
            let words: &'static [u32] = Vec::leak(words);
            Vocab::parse(&bytemuck::cast_slice(words)[..packed.len()]).expect("parses")
        }
    }

    #[test]
    fn tokens_compiled_vocabularies_parse() {
        for e in Encoding::ALL {
            let v = Vocab::compiled(e).expect("embedded vocabulary parses");
            let tokens = (0..v.starts.len() as u32 - 1)
                .filter(|&r| !v.token(r).is_empty())
                .count();
            assert_eq!(tokens, e.vocab_size(), "{e}");
            // Every token is found at its rank (the lowest for duplicates).
            for r in 0..v.starts.len() as u32 - 1 {
                let t = v.token(r);
                if !t.is_empty() {
                    assert!(v.rank(t).is_some_and(|found| found <= r), "{e}: rank {r}");
                }
            }
        }
    }

    #[test]
    fn tokens_vocab_lookup() {
        let toks: Vec<(u32, Vec<u8>)> = (0u32..256)
            .map(|b| (b, vec![b as u8]))
            .chain([(256, b"ab".to_vec()), (257, b"abc".to_vec())])
            .collect();
        let v = Vocab::from_tokens(&toks);
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
