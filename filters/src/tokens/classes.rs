//! Unicode character classes the pre-tokenizers ([`super::pretok`]) test:
//! `\p{L}`, `\p{N}`, `\s`, the two o200k letter-case sets and `[\r\n]`.
//!
//! The ranges come from `regex-syntax`, the very crate whose tables
//! `fancy-regex` (and so tiktoken) matches these classes with, so both sides
//! agree on every code point whatever the Unicode version. They are packed
//! into one byte of class bits per code point, stored as a two-level table
//! (256-code-point blocks, identical blocks shared): about 60 KB, built once
//! per process in a few milliseconds.

use regex_syntax::hir::{Class, HirKind};
use std::collections::HashMap;
use std::sync::OnceLock;

/// `\p{L}`.
pub(crate) const LETTER: u8 = 1;
/// `\p{N}`.
pub(crate) const NUMBER: u8 = 2;
/// `\s` (Unicode `White_Space`).
pub(crate) const SPACE: u8 = 4;
/// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]` (o200k's "upper" run).
pub(crate) const UPPERISH: u8 = 8;
/// `[\p{Ll}\p{Lm}\p{Lo}\p{M}]` (o200k's "lower" run).
pub(crate) const LOWERISH: u8 = 16;
/// `[\r\n]`.
pub(crate) const NEWLINE: u8 = 32;
/// Past the end of the text: in no class, and not "other" either.
pub(crate) const END: u8 = 128;

const BLOCK: usize = 256;
const CODE_POINTS: usize = 0x11_0000;

/// One byte of class bits per code point.
pub(crate) struct Classes {
    /// The first 128 code points, the hot path.
    pub(crate) ascii: [u8; 128],
    /// Block number → offset of its 256 bytes in `blocks`.
    index: Vec<u32>,
    blocks: Vec<u8>,
}

impl Classes {
    /// The shared table.
    pub(crate) fn get() -> &'static Classes {
        static CLASSES: OnceLock<Classes> = OnceLock::new();
        CLASSES.get_or_init(Classes::build)
    }

    /// Class bits of a code point (0 for one in no class, e.g. punctuation).
    #[inline(always)]
    pub(crate) fn of(&self, cp: u32) -> u8 {
        let cp = cp as usize;
        match self.index.get(cp / BLOCK) {
            Some(&off) => self
                .blocks
                .get(off as usize + cp % BLOCK)
                .copied()
                .unwrap_or(0),
            None => 0,
        }
    }

    fn build() -> Classes {
        let mut flat = vec![0u8; CODE_POINTS];
        let sets: [(&str, u8); 6] = [
            (r"\p{L}", LETTER),
            (r"\p{N}", NUMBER),
            (r"\s", SPACE),
            (r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]", UPPERISH),
            (r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]", LOWERISH),
            (r"[\r\n]", NEWLINE),
        ];
        for (pattern, bit) in sets {
            for (lo, hi) in ranges(pattern) {
                let hi = (hi as usize).min(CODE_POINTS - 1);
                for slot in flat.iter_mut().take(hi + 1).skip(lo as usize) {
                    *slot |= bit;
                }
            }
        }
        let mut ascii = [0u8; 128];
        ascii.copy_from_slice(&flat[..128]);
        let mut seen: HashMap<&[u8], u32> = HashMap::new();
        let mut index = Vec::with_capacity(CODE_POINTS / BLOCK);
        let mut blocks = Vec::new();
        for block in flat.chunks(BLOCK) {
            let off = *seen.entry(block).or_insert_with(|| {
                let off = blocks.len() as u32;
                blocks.extend_from_slice(block);
                off
            });
            index.push(off);
        }
        Classes {
            ascii,
            index,
            blocks,
        }
    }
}

/// The code point ranges of a class, as `regex-syntax` parses it.
fn ranges(pattern: &str) -> Vec<(u32, u32)> {
    let Ok(hir) = regex_syntax::parse(pattern) else {
        return Vec::new();
    };
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => class
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_classes_of_sample_chars() {
        let c = Classes::get();
        let of = |ch: char| c.of(ch as u32);
        assert_eq!(of('a'), LETTER | LOWERISH);
        assert_eq!(of('Z'), LETTER | UPPERISH);
        assert_eq!(of('7'), NUMBER);
        assert_eq!(of(' '), SPACE);
        assert_eq!(of('\n'), SPACE | NEWLINE);
        assert_eq!(of('.'), 0);
        assert_eq!(of('中'), LETTER | UPPERISH | LOWERISH); // Lo
        assert_eq!(of('\u{0301}'), UPPERISH | LOWERISH); // combining mark: not \p{L}
        assert_eq!(of('ǅ'), LETTER | UPPERISH); // Lt
        assert_eq!(of('٣'), NUMBER); // Arabic-Indic digit
        assert_eq!(of('\u{3000}'), SPACE);
        assert_eq!(of('😀'), 0);
        assert_eq!(c.of(0x10_FFFF), 0);
        assert_eq!(c.of(0x11_0000), 0);
    }
}
