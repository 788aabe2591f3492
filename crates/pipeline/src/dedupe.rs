//! The dedupe keys of a space in memory: every message id it landed and
//! every refused payload it recorded, as keys ([`crate::state::seen`]).
//!
//! A space holds one key per event it ever admitted, so this set is the
//! largest thing a long-lived space keeps in memory besides the identity
//! engine. A single `HashSet<u128>` costs about 28 bytes a key at 10M keys
//! and, while it doubles, holds the old table beside the new one. Here
//! the keys are spread over [`SHARDS`] small tables by their top 16 bits,
//! each storing the low 64 bits: about 13 bytes a key, and growing one
//! small table at a time.
//!
//! Two keys are the same event when their top 16 and low 64 bits match:
//! 80 bits of a SHA-1 digest. The chance that any two of n distinct keys
//! agree there is about n² / 2⁸¹ (4 × 10⁻¹¹ for 10M events), against
//! n² / 2¹²⁹ with all 128 bits: no practical difference, at half the
//! memory. The keys stored in `_ps_seen` keep all 16 bytes.

use std::hash::{BuildHasherDefault, Hasher};

/// How many tables the keys are spread over (by their top 16 bits).
const SHARD_BITS: u32 = 16;
const SHARDS: usize = 1 << SHARD_BITS;

/// The keys already are uniform digest bits: a table needs no hashing of
/// its own.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard = hashbrown::HashSet<u64, BuildHasherDefault<Identity>>;

/// A set of dedupe keys (see the module docs).
pub(crate) struct Seen {
    shards: Vec<Shard>,
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seen").field("len", &self.len()).finish()
    }
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

fn split(key: u128) -> (usize, u64) {
    ((key >> (128 - SHARD_BITS)) as usize, key as u64)
}

impl Seen {
    /// Adds `key`; `false` if it was there already.
    pub(crate) fn insert(&mut self, key: u128) -> bool {
        let (s, low) = split(key);
        self.shards[s].insert(low)
    }

    /// Removes `key`; `false` if it was not there.
    pub(crate) fn remove(&mut self, key: u128) -> bool {
        let (s, low) = split(key);
        self.shards[s].remove(&low)
    }

    /// Whether `key` is in the set.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: u128) -> bool {
        let (s, low) = split(key);
        self.shards[s].contains(&low)
    }

    /// Keys in the set (counted: it is asked once, at start-up).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(Shard::len).sum()
    }
}

impl Extend<u128> for Seen {
    fn extend<I: IntoIterator<Item = u128>>(&mut self, keys: I) {
        for k in keys {
            self.insert(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Seen;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// Random keys, and keys that differ only in the 48 bits the set does
    /// not keep (the same key to it).
    fn key() -> impl Strategy<Value = u128> {
        prop_oneof![
            any::<u128>(),
            (0u128..4, any::<u64>(), 0u128..3)
                .prop_map(|(top, low, mid)| (top << 112) | (mid << 64) | u128::from(low % 8)),
        ]
    }

    fn canonical(k: u128) -> u128 {
        k & !(((1u128 << 48) - 1) << 64)
    }

    proptest! {
        /// Insert, remove and membership agree with a `HashSet` of the
        /// keys as the set tells them apart, and a key with its 48 middle
        /// bits cleared is the same key to the set.
        #[test]
        fn agrees_with_a_set_of_canonical_keys(
            ops in proptest::collection::vec((any::<bool>(), key()), 0..400)
        ) {
            let (mut seen, mut model) = (Seen::default(), HashSet::new());
            for (add, k) in ops {
                if add {
                    prop_assert_eq!(seen.insert(k), model.insert(canonical(k)));
                } else {
                    prop_assert_eq!(seen.remove(k), model.remove(&canonical(k)));
                }
                prop_assert_eq!(seen.contains(k), model.contains(&canonical(k)));
            }
            prop_assert_eq!(seen.len(), model.len());
            let mut again = Seen::default();
            again.extend(model.iter().copied());
            for k in &model {
                prop_assert!(seen.contains(*k) && again.contains(*k));
            }
            prop_assert_eq!(again.len(), model.len());
        }
    }
}
