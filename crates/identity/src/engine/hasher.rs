//! The hash the engine's indexes use for identifiers and trait names.

use crate::bytes::{first8, half, last8, word};
use crate::settings::TypeId;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// The identifier index's hash of `(type, value)`: foldhash's folded
/// multiply applied to the value's bytes directly, without going through
/// `Hasher` (which costs as much again for these short strings). Seeded per
/// engine from the standard library's randomly keyed `RandomState`, so crafted
/// identifiers cannot aim at one bucket. Nothing persisted depends on it: the index is
/// rebuilt on restore.
#[derive(Debug, Clone, Copy)]
pub(super) struct IdentHasher {
    k: [u64; 3],
}

#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl IdentHasher {
    pub(super) fn new() -> IdentHasher {
        let random = RandomState::new();
        IdentHasher {
            k: [
                random.hash_one(1u64),
                random.hash_one(2u64),
                random.hash_one(3u64) | 1,
            ],
        }
    }

    #[inline(always)]
    pub(super) fn hash(&self, t: TypeId, v: &str) -> u64 {
        let b = v.as_bytes();
        let n = b.len();
        let [k0, k1, k2] = self.k;
        let mut s0 = k0 ^ u64::from(t);
        let mut s1 = k1 ^ n as u64;
        if n <= 16 {
            let (lo, hi) = if n >= 8 {
                (word(b, 0), word(b, n - 8))
            } else if n >= 4 {
                (half(b, 0), half(b, n - 4))
            } else if n > 0 {
                let x = u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16;
                (x, 0)
            } else {
                (0, 0)
            };
            s0 ^= lo;
            s1 ^= hi;
        } else {
            // Every 16-byte block that ends before the last byte, then the
            // last 16 bytes (whole blocks: no bounds checks in the loop).
            for c in b[..n - 1].chunks_exact(16) {
                s0 = fold(first8(c) ^ s0, last8(c) ^ k2);
            }
            let c = &b[n - 16..];
            s1 = fold(first8(c) ^ s1, last8(c) ^ k2);
        }
        fold(s0 ^ k2, s1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ident_hash_sees_every_byte_and_the_type() {
        let h = IdentHasher::new();
        let base: Vec<u8> = (0..70u8).map(|i| b'0' + i % 43).collect();
        let mut seen = std::collections::HashSet::new();
        for n in 0..base.len() {
            let v = std::str::from_utf8(&base[..n]).unwrap();
            assert_eq!(h.hash(1, v), h.hash(1, &String::from(v)));
            assert!(seen.insert(h.hash(1, v)), "length {n}");
            assert!(seen.insert(h.hash(2, v)), "type, length {n}");
            for k in 0..n {
                let mut b = base[..n].to_vec();
                b[k] = b'~';
                let w = std::str::from_utf8(&b).unwrap();
                assert_ne!(h.hash(1, v), h.hash(1, w), "length {n}, byte {k}");
            }
        }
    }
}
