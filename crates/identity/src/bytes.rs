//! Byte-level reads and comparisons of identifier values and keys.
//!
//! The lowest layer of the crate: the engine, its index hash and `extract`
//! all compare short byte strings in their hottest loops, and these helpers
//! are inlined into them instead of calling `memcmp` or going through
//! `Hasher`. Nothing here knows about events or profiles.

/// The 8 bytes of `b` at `at`, little-endian.
#[inline(always)]
pub(crate) fn word(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The 4 bytes of `b` at `at`, little-endian, widened.
#[inline(always)]
pub(crate) fn half(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(
        b[at..at + 4].try_into().expect("4 bytes"),
    ))
}

/// `a == b` for identifier values, inlined: most are a few words long, and
/// a call to `memcmp` costs more than comparing them.
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return if n >= 4 {
            half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4)
        } else {
            a == b
        };
    }
    // Whole words (no bounds checks in the loop), then the last 8 bytes.
    a.chunks_exact(8)
        .zip(b.chunks_exact(8))
        .all(|(x, y)| first8(x) == first8(y))
        && last8(a) == last8(b)
}

/// The first 8 bytes of `b` (at least 8 long), little-endian.
#[inline(always)]
pub(crate) fn first8(b: &[u8]) -> u64 {
    u64::from_le_bytes(*b.first_chunk::<8>().expect("8 bytes"))
}

/// The last 8 bytes of `b` (at least 8 long), little-endian.
#[inline(always)]
pub(crate) fn last8(b: &[u8]) -> u64 {
    u64::from_le_bytes(*b.last_chunk::<8>().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_is_equality() {
        let base: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..base.len() {
            let a = &base[..n];
            assert!(same_bytes(a, a));
            for m in 0..base.len() {
                assert_eq!(same_bytes(a, &base[..m]), n == m);
            }
            for k in 0..n {
                let mut b = a.to_vec();
                b[k] ^= 1;
                assert!(!same_bytes(a, &b), "length {n}, byte {k}");
            }
        }
    }
}
