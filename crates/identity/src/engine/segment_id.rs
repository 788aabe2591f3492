//! Segment ids: how a new profile's id is made ([`make_id`]) and how the
//! engine stores every profile's id ([`SegmentIds`]).

use super::effect::ProfileIdx;
use crate::settings::IdScheme;
use sha1::{Digest, Sha1};

/// Profile ids. The `use` scheme hashes the space and the profile's number so
/// ids are stable across replays yet do not reveal how many profiles exist.
/// (Built without `format!`, at their exact length: one allocation per id.)
pub fn make_id(scheme: IdScheme, space: &str, n: u64) -> String {
    let mut buf = [0u8; 27];
    let (prefix, digits) = id_parts(scheme, space, n, &mut buf);
    let mut id = String::with_capacity(prefix.len() + digits.len());
    id.push_str(prefix);
    id.push_str(digits);
    id
}

/// [`make_id`] in two parts, the prefix and the digits (written to `buf`),
/// so the engine can append them to its segment ids without a `String`.
pub(super) fn id_parts<'b>(
    scheme: IdScheme,
    space: &str,
    n: u64,
    buf: &'b mut [u8; 27],
) -> (&'static str, &'b str) {
    match scheme {
        IdScheme::Sequential => {
            let mut at = buf.len();
            let mut rest = n;
            loop {
                at -= 1;
                buf[at] = b'0' + (rest % 10) as u8;
                rest /= 10;
                if rest == 0 {
                    break;
                }
            }
            ("profile_", std::str::from_utf8(&buf[at..]).expect("ascii"))
        }
        IdScheme::Use => {
            const ALPHABET: &[u8; 62] =
                b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
            let mut h = Sha1::new();
            h.update(space.as_bytes());
            h.update([0]);
            h.update(n.to_be_bytes());
            let digest = h.finalize();
            // 27 base-62 digits of the 160-bit digest, most significant first.
            let mut num = [0u32; 5];
            for (limb, c) in num.iter_mut().zip(digest.chunks(4)) {
                *limb = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            }
            for d in buf.iter_mut().rev() {
                let mut rem: u64 = 0;
                for limb in num.iter_mut() {
                    let cur = (rem << 32) | *limb as u64;
                    *limb = (cur / 62) as u32;
                    rem = cur % 62;
                }
                *d = ALPHABET[rem as usize];
            }
            ("use_", std::str::from_utf8(&buf[..]).expect("ascii"))
        }
    }
}

/// Every profile's segment id, end to end in one string: no allocation per
/// profile, and 8 bytes of bookkeeping each instead of a boxed string's 16
/// and its heap block's overhead.
#[derive(Debug, Default)]
pub(super) struct SegmentIds {
    text: String,
    /// Where each profile's id ends in `text` (it starts where the previous
    /// one ends).
    ends: Vec<u64>,
}

impl SegmentIds {
    /// Appends the next profile's id, given in parts.
    pub(super) fn push(&mut self, parts: &[&str]) {
        for part in parts {
            self.text.push_str(part);
        }
        self.ends.push(self.text.len() as u64);
    }

    #[inline]
    pub(super) fn get(&self, p: ProfileIdx) -> &str {
        let p = p as usize;
        let start = if p == 0 { 0 } else { self.ends[p - 1] as usize };
        &self.text[start..self.ends[p] as usize]
    }

    /// Makes room for `n` more ids of `bytes` bytes in all.
    pub(super) fn reserve(&mut self, n: usize, bytes: usize) {
        self.ends.reserve_exact(n);
        self.text.reserve_exact(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `make_id` as it was (with `format!`): ids must stay identical, since
    /// stored state and warehouse rows hold them.
    fn make_id_reference(scheme: IdScheme, space: &str, n: u64) -> String {
        match scheme {
            IdScheme::Sequential => format!("profile_{n}"),
            IdScheme::Use => {
                const ALPHABET: &[u8; 62] =
                    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
                let mut h = Sha1::new();
                h.update(space.as_bytes());
                h.update([0]);
                h.update(n.to_be_bytes());
                let digest = h.finalize();
                // 27 base-62 digits of the 160-bit digest, most significant first.
                let mut num: Vec<u32> = digest
                    .chunks(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                let mut digits = [0u8; 27];
                for d in digits.iter_mut().rev() {
                    let mut rem: u64 = 0;
                    for limb in num.iter_mut() {
                        let cur = (rem << 32) | *limb as u64;
                        *limb = (cur / 62) as u32;
                        rem = cur % 62;
                    }
                    *d = ALPHABET[rem as usize];
                }
                format!("use_{}", std::str::from_utf8(&digits).expect("ascii"))
            }
        }
    }

    #[test]
    fn make_id_is_unchanged() {
        for space in [
            "",
            "s",
            "space_a",
            "a space name longer than one sha-1 block of sixty-four bytes",
        ] {
            for n in (0..2_000).chain([u64::from(u32::MAX), u64::MAX - 1, u64::MAX]) {
                for scheme in [IdScheme::Use, IdScheme::Sequential] {
                    let id = make_id(scheme, space, n);
                    assert_eq!(id, make_id_reference(scheme, space, n));
                    assert_eq!(id.capacity(), id.len());
                }
            }
        }
    }
}
