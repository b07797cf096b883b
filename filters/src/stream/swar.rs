//! Byte search eight bytes at a time (SWAR), for the two hot scans: line
//! ends in the SSE parser and string ends in the chunk scanner. Both run
//! over long stretches (a JSON line, a string) holding neither needle.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Index of the first byte equal to `a` or `b` at or after `from`.
#[inline(always)]
pub(crate) fn find2(data: &[u8], from: usize, a: u8, b: u8) -> Option<usize> {
    let hay = data.get(from..)?;
    let (sa, sb) = (LO * u64::from(a), LO * u64::from(b));
    let mut words = hay.chunks_exact(8);
    let mut at = from;
    for word in &mut words {
        let w = word.try_into().map_or(0, u64::from_le_bytes);
        let (x, y) = (w ^ sa, w ^ sb);
        // High bit set in each byte that is zero in x or y; the lowest set
        // bit is exact (false positives only occur above a true zero byte).
        let hit = ((x.wrapping_sub(LO) & !x) | (y.wrapping_sub(LO) & !y)) & HI;
        if hit != 0 {
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| c == a || c == b)
        .map(|i| at + i)
}

/// Index of the first `\n` or `\r` at or after `from`. One test per word
/// flags every byte below `0x0E` (control characters, rare in a line);
/// flagged bytes are then checked in order.
#[inline]
pub(crate) fn find_eol(data: &[u8], from: usize) -> Option<usize> {
    let hay = data.get(from..)?;
    let mut words = hay.chunks_exact(8);
    let mut at = from;
    for word in &mut words {
        let w = word.try_into().map_or(0, u64::from_le_bytes);
        // Every byte below 0x0E is flagged (a borrow can flag more above a
        // flagged byte, never fewer), so checking them in order is exact.
        let mut low = w.wrapping_sub(LO * 0x0E) & !w & HI;
        while low != 0 {
            let k = (low.trailing_zeros() / 8) as usize;
            if matches!(word.get(k), Some(b'\n' | b'\r')) {
                return Some(at + k);
            }
            low &= low - 1;
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| c == b'\n' || c == b'\r')
        .map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_naive(
            hay in proptest::collection::vec(prop_oneof![
                Just(b'\n'), Just(b'\r'), Just(b'"'), Just(b'\\'), Just(0x0Bu8), Just(0x8Du8),
                Just(0u8), Just(1u8), Just(0x80u8), Just(b'\t'), Just(0x0Eu8), Just(0x8Eu8), any::<u8>()
            ], 0..64),
            from in 0usize..70,
            pair in prop_oneof![Just((b'\n', b'\r')), Just((b'"', b'\\'))],
        ) {
            let (a, b) = pair;
            let naive = hay
                .get(from..)
                .and_then(|h| h.iter().position(|&c| c == a || c == b).map(|i| i + from));
            prop_assert_eq!(find2(&hay, from, a, b), naive);
            if (a, b) == (b'\n', b'\r') {
                prop_assert_eq!(find_eol(&hay, from), naive);
            }
        }
    }
}
