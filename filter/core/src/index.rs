//! A read-only hash index, built once per configuration, whose lookups read
//! a bounded number of slots however many entries it holds.
//!
//! Design decision: linear probing over a power-of-two table at most half
//! full, storing a 32-bit tag beside each id so that most mismatches never
//! touch the entry itself. At build time the index tries seeds 0, 1, 2, …
//! and grows the table if needed, until no entry sits more than
//! [`MAX_PROBE`] slots from its home slot. A lookup therefore reads at most
//! [`MAX_PROBE`] slots, whether the table holds 10 entries or 100,000, and
//! the build is deterministic (no randomness, so no WASI `random_get`).
//!
//! Lookups never allocate and never panic.

use alloc::boxed::Box;
use alloc::vec;

/// The most slots a lookup reads.
pub const MAX_PROBE: usize = 8;

const EMPTY: u32 = u32::MAX;
const SEEDS_PER_SIZE: u64 = 16;

#[derive(Clone, Copy, Debug)]
struct Slot {
    tag: u32,
    id: u32,
}

/// Maps a 64-bit hash to the ids `0..n` it was built over.
#[derive(Clone, Debug)]
pub struct Index {
    seed: u64,
    mask: usize,
    probe: usize,
    slots: Box<[Slot]>,
}

impl Index {
    /// Builds an index over ids `0..n`; `hash(seed, id)` hashes entry `id`
    /// with the seed that lookups will use. Entries must be distinct.
    pub fn build(n: u32, hash: impl Fn(u64, u32) -> u64) -> Index {
        let n_slots = (n as usize).saturating_mul(2).max(8).next_power_of_two();
        let mut size = n_slots;
        let mut seed = 0;
        // Distinct entries fit long before the table is 64 times larger;
        // equal entries would never fit, so fall back to a longer probe
        // rather than loop forever.
        while size <= n_slots << 6 {
            for _ in 0..SEEDS_PER_SIZE {
                if let Some(index) = Index::place(n, size, seed, MAX_PROBE, &hash) {
                    return index;
                }
                seed += 1;
            }
            size *= 2;
        }
        let mut probe = MAX_PROBE;
        loop {
            probe = probe.saturating_mul(2).min(n_slots);
            if let Some(index) = Index::place(n, n_slots, 0, probe, &hash) {
                return index;
            }
        }
    }

    fn place(
        n: u32,
        size: usize,
        seed: u64,
        probe: usize,
        hash: &impl Fn(u64, u32) -> u64,
    ) -> Option<Index> {
        let mask = size - 1;
        let mut slots = vec![Slot { tag: 0, id: EMPTY }; size].into_boxed_slice();
        for id in 0..n {
            let h = hash(seed, id);
            let home = h as usize & mask;
            let free = (0..probe)
                .map(|d| (home + d) & mask)
                .find(|&i| slots[i].id == EMPTY)?;
            slots[free] = Slot {
                tag: (h >> 32) as u32,
                id,
            };
        }
        Some(Index {
            seed,
            mask,
            probe,
            slots,
        })
    }

    /// The seed to hash lookups with.
    #[inline]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The most slots one lookup reads.
    pub fn max_probe(&self) -> usize {
        self.probe
    }

    /// Finds the id whose entry hashes to `hash` and satisfies `is`.
    #[inline]
    pub fn find(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = (hash >> 32) as u32;
        let mut i = hash as usize & self.mask;
        for _ in 0..self.probe {
            let slot = self.slots[i];
            if slot.id == EMPTY {
                return None;
            }
            if slot.tag == tag && is(slot.id) {
                return Some(slot.id);
            }
            i = (i + 1) & self.mask;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hasher;
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("sandbox-{i:06}")).collect()
    }

    fn index(keys: &[String]) -> Index {
        Index::build(keys.len() as u32, |seed, id| {
            let mut h = Hasher::new(seed);
            h.bytes(keys[id as usize].as_bytes());
            h.finish()
        })
    }

    fn lookup(ix: &Index, keys: &[String], k: &str) -> Option<u32> {
        let mut h = Hasher::new(ix.seed());
        h.bytes(k.as_bytes());
        ix.find(h.finish(), |id| keys[id as usize] == k)
    }

    #[test]
    fn finds_every_entry_and_nothing_else_with_bounded_probes() {
        for n in [0, 1, 10, 1000, 100_000] {
            let keys = keys(n);
            let ix = index(&keys);
            assert!(
                ix.max_probe() <= MAX_PROBE,
                "n={n}: probe {}",
                ix.max_probe()
            );
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(lookup(&ix, &keys, k), Some(i as u32));
            }
            assert_eq!(lookup(&ix, &keys, "sandbox-x"), None);
            assert_eq!(lookup(&ix, &keys, ""), None);
        }
    }

    proptest::proptest! {
        /// Against a naive oracle (a linear search): every entry is found
        /// at its own id, every other string is not, and no lookup reads
        /// more than `MAX_PROBE` slots.
        #[test]
        fn finds_what_a_linear_search_finds(
            keys in proptest::collection::btree_set("[a-c]{0,6}", 0..300),
            probes in proptest::collection::vec("[a-d]{0,7}", 0..50),
        ) {
            let keys: Vec<String> = keys.into_iter().collect();
            let ix = index(&keys);
            proptest::prop_assert!(ix.max_probe() <= MAX_PROBE);
            for k in keys.iter().chain(&probes) {
                let naive = keys.iter().position(|x| x == k).map(|i| i as u32);
                proptest::prop_assert_eq!(lookup(&ix, &keys, k), naive, "{:?}", k);
            }
        }
    }

    #[test]
    fn equal_entries_do_not_hang_the_build() {
        let keys: Vec<String> = (0..40).map(|_| String::from("same")).collect();
        let ix = index(&keys);
        assert!(lookup(&ix, &keys, "same").is_some());
    }
}
