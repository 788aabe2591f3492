//! The identifier index: `(type, value)` → [`IdentIdx`], by hash.
//!
//! Open addressing with linear probing over slots holding 32 bits of the
//! identifier's hash next to its arena index, so a probe compares hashes in
//! the table itself and reads an identifier (a likely cache miss) only when
//! 32 bits match; the slot is found from the top bits of those 32, so
//! growing never re-hashes a value. At most 5/8 full; removal shifts the
//! following run back, leaving no tombstones. `hashbrown` did the same job
//! with more instructions per lookup.

/// A position in the arena the index is over: an identifier's
/// [`IdentIdx`](super::IdentIdx), or a trait name's number.
type IdentIdx = u32;

#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u32,
    ident: IdentIdx,
}

/// Marks a free slot (never a real identifier: the arena would need 2³²
/// entries).
const FREE: IdentIdx = IdentIdx::MAX;
const FREE_SLOT: Slot = Slot {
    hash: 0,
    ident: FREE,
};
/// Slots of a table's first allocation.
const MIN_SLOTS: usize = 16;

#[derive(Debug, Default)]
pub(super) struct Index {
    slots: Vec<Slot>,
    len: usize,
    /// `32 - log2(slots.len())`: a hash's home slot is `hash >> shift`.
    shift: u32,
}

/// The 32 bits of a 64-bit hash the table keeps (the high ones: the hash is
/// a folded multiply, whose high bits are as good as its low ones).
#[inline(always)]
fn short(hash: u64) -> u32 {
    (hash >> 32) as u32
}

impl Index {
    #[inline(always)]
    fn home(&self, h: u32) -> usize {
        (h >> self.shift) as usize
    }

    /// The identifier with hash `hash` for which `eq` holds.
    #[inline(always)]
    pub(super) fn find(&self, hash: u64, mut eq: impl FnMut(IdentIdx) -> bool) -> Option<IdentIdx> {
        if self.slots.is_empty() {
            return None;
        }
        let h = short(hash);
        let mask = self.slots.len() - 1;
        let mut p = self.home(h);
        loop {
            let s = self.slots[p];
            if s.ident == FREE {
                return None;
            }
            if s.hash == h && eq(s.ident) {
                return Some(s.ident);
            }
            p = (p + 1) & mask;
        }
    }

    /// Adds `ident`, which must not be in the table yet.
    pub(super) fn insert(&mut self, hash: u64, ident: IdentIdx) {
        debug_assert_ne!(ident, FREE);
        if (self.len + 1) * 8 > self.slots.len() * 5 {
            self.resize((self.len + 1).max(MIN_SLOTS / 2));
        }
        self.place(Slot {
            hash: short(hash),
            ident,
        });
        self.len += 1;
    }

    fn place(&mut self, s: Slot) {
        let mask = self.slots.len() - 1;
        let mut p = self.home(s.hash);
        while self.slots[p].ident != FREE {
            p = (p + 1) & mask;
        }
        self.slots[p] = s;
    }

    /// Makes room for `n` more identifiers without growing.
    pub(super) fn reserve(&mut self, n: usize) {
        if (self.len + n) * 8 > self.slots.len() * 5 {
            self.resize(self.len + n);
        }
    }

    /// Re-lays the table out with room for at least `n` identifiers.
    fn resize(&mut self, n: usize) {
        let slots = (n * 8).div_ceil(5).next_power_of_two().max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![FREE_SLOT; slots]);
        self.shift = 32 - slots.trailing_zeros();
        for s in old {
            if s.ident != FREE {
                self.place(s);
            }
        }
    }

    /// Removes `ident` (whose hash is `hash`); returns whether it was there.
    pub(super) fn remove(&mut self, hash: u64, ident: IdentIdx) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let h = short(hash);
        let mask = self.slots.len() - 1;
        let mut hole = self.home(h);
        loop {
            let s = self.slots[hole];
            if s.ident == FREE {
                return false;
            }
            if s.ident == ident {
                break;
            }
            hole = (hole + 1) & mask;
        }
        // Shift back every later entry of the run that may live in the hole:
        // one whose home is not strictly between the hole and where it sits.
        let mut q = (hole + 1) & mask;
        loop {
            let s = self.slots[q];
            if s.ident == FREE {
                break;
            }
            let home = self.home(s.hash);
            if (q.wrapping_sub(home) & mask) >= (q.wrapping_sub(hole) & mask) {
                self.slots[hole] = s;
                hole = q;
            }
            q = (q + 1) & mask;
        }
        self.slots[hole] = FREE_SLOT;
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Random inserts, lookups and removals against a `HashMap`, with hashes
    /// drawn from a small set so runs, collisions and wrap-around are common.
    #[test]
    fn behaves_like_a_map() {
        let mut rng = crate::testgen::Rng::new(0x2545_F491_4F6C_DD1D);
        for round in 0..20 {
            let mut index = Index::default();
            // ident -> hash
            let mut model: HashMap<IdentIdx, u64> = HashMap::new();
            let mut hashes: Vec<u64> = (0..(1 + round * 7)).map(|_| rng.next_u64()).collect();
            // Hashes whose home slots are adjacent, and ones at the end of the table.
            hashes.push(u64::MAX);
            hashes.push(u64::MAX - (1 << 32));
            let mut ident: IdentIdx = 0;
            for step in 0..3_000 {
                match rng.next_u64() % 5 {
                    0..=2 => {
                        let h = hashes[(rng.next_u64() % hashes.len() as u64) as usize];
                        index.insert(h, ident);
                        model.insert(ident, h);
                        ident += 1;
                    }
                    3 if !model.is_empty() => {
                        let k = *model
                            .keys()
                            .nth((rng.next_u64() % model.len() as u64) as usize)
                            .unwrap();
                        let h = model.remove(&k).unwrap();
                        assert!(index.remove(h, k));
                        assert!(!index.remove(h, k));
                    }
                    _ => {}
                }
                if step % 50 == 0 {
                    for (&i, &h) in &model {
                        assert_eq!(index.find(h, |j| j == i), Some(i), "round {round}");
                    }
                }
                assert_eq!(index.find(rng.next_u64(), |_| true), None);
                assert_eq!(index.len, model.len());
            }
            let mut r = Index::default();
            r.reserve(100);
            let slots = r.slots.len();
            for k in 0..100 {
                r.insert(rng.next_u64(), k);
            }
            assert_eq!(r.slots.len(), slots, "reserve made room");
        }
    }
}
