//! A bounded, lock-free memo table: a 64-bit key hash → a 64-bit value,
//! shared by every thread without locks.
//!
//! Used where the same input comes back request after request: the token
//! count of a prompt text (a chat resends its system prompt and its whole
//! history on every turn; [`super::count_prompt`]) and the encoding of a
//! model name ([`super::TokenizerMap::resolve`]).
//!
//! Direct-mapped: a key lives in one slot (`hash & mask`); a newer key
//! evicts an older one. A slot holds `check = key ^ value` and `value` in
//! two relaxed atomics, so two writers racing on one slot, or a reader
//! racing a writer, can only leave a slot whose `check ^ value` is not the
//! reader's key (a miss), never a wrong value for that key (the lockless
//! transposition-table scheme of chess engines). A false hit needs two
//! different inputs with the same 64-bit hash in the same slot; the hasher
//! is seeded per table from the process's random state, so inputs cannot
//! be crafted to collide.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

struct Slot {
    check: AtomicU64,
    value: AtomicU64,
}

/// The memo table. `slots` is a power of two.
pub(crate) struct Memo {
    slots: Box<[Slot]>,
    mask: u64,
    hasher: foldhash::fast::RandomState,
}

impl Memo {
    /// A table of `slots` entries (rounded up to a power of two, at least 1).
    pub(crate) fn new(slots: usize) -> Memo {
        let n = slots.max(1).next_power_of_two();
        Memo {
            slots: (0..n)
                .map(|_| Slot {
                    check: AtomicU64::new(0),
                    value: AtomicU64::new(0),
                })
                .collect(),
            mask: n as u64 - 1,
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The key of `input`; never 0 (so an empty slot, all zeroes, matches
    /// no key).
    pub(crate) fn key(&self, input: impl Hash) -> u64 {
        self.hasher.hash_one(input) | 1
    }

    fn slot(&self, key: u64) -> &Slot {
        // Slot index from the high bits: foldhash mixes them best, and the
        // low bit is forced to 1 by `key`.
        let i = (key.rotate_left(32) & self.mask) as usize;
        &self.slots[i]
    }

    pub(crate) fn get(&self, key: u64) -> Option<u64> {
        let slot = self.slot(key);
        let value = slot.value.load(Relaxed);
        let check = slot.check.load(Relaxed);
        (check ^ value == key).then_some(value)
    }

    pub(crate) fn put(&self, key: u64, value: u64) {
        let slot = self.slot(key);
        slot.value.store(value, Relaxed);
        slot.check.store(key ^ value, Relaxed);
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo")
            .field("slots", &self.slots.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memo_hits_only_its_own_key() {
        let m = Memo::new(4);
        let a = m.key("alpha");
        let b = m.key("beta");
        assert_ne!(a, b);
        assert_eq!(m.get(a), None, "empty table");
        m.put(a, 7);
        assert_eq!(m.get(a), Some(7));
        // 0 is a value like any other.
        m.put(a, 0);
        assert_eq!(m.get(a), Some(0));
        // Another key never reads a's value, whether or not it shares the slot.
        assert_eq!(m.get(b), None);
        m.put(b, 9);
        assert_eq!(m.get(b), Some(9));
        assert!(matches!(m.get(a), None | Some(0)));
    }

    #[test]
    fn memo_one_slot_evicts() {
        let m = Memo::new(1);
        let keys: Vec<u64> = (0..50u32).map(|i| m.key(i)).collect();
        for (i, k) in keys.iter().enumerate() {
            m.put(*k, i as u64 * 3);
            assert_eq!(m.get(*k), Some(i as u64 * 3));
        }
        let hits = keys.iter().filter(|k| m.get(**k).is_some()).count();
        assert_eq!(hits, 1, "one slot keeps only the last key");
    }

    /// Writers racing on one slot: every hit a reader sees is the value
    /// written for that key (value = key's index × 1000 + index).
    #[test]
    fn memo_races_never_give_a_wrong_value() {
        let m = Memo::new(1);
        let keys: Vec<u64> = (0..8u64).map(|i| m.key(i)).collect();
        std::thread::scope(|s| {
            for (i, k) in keys.iter().enumerate() {
                let m = &m;
                s.spawn(move || {
                    for _ in 0..20_000 {
                        m.put(*k, i as u64 * 1001);
                        if let Some(v) = m.get(*k) {
                            assert_eq!(v, i as u64 * 1001);
                        }
                    }
                });
            }
        });
    }
}
