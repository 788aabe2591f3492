//! The records the engine keeps in memory: one per identifier
//! ([`IdentRec`], a cache line), per trait value ([`TraitRec`]) and per
//! profile ([`Profile`]).

use super::effect::{IdentIdx, ProfileIdx};
use super::names::NameId;
use crate::bytes::word;
use crate::settings::TypeId;
use serde_json::Value as Json;
use smallvec::SmallVec;

/// Values up to this many bytes are stored in the identifier's record.
pub(super) const INLINE: usize = 44;

/// One identifier: a cache line holding everything a lookup reads (type,
/// value, owner) and the last-seen time it updates. Values longer than
/// [`INLINE`] bytes (rare: ids are mostly UUIDs, emails and shorter) live in
/// the engine's `spill` arena instead, the record holding their offset. A
/// value in a separate heap string cost a second cache miss per lookup, and
/// about as much memory again as the part of the line it now fills.
#[derive(Debug, Clone)]
#[repr(align(64))]
pub(super) struct IdentRec {
    pub(super) last_seen: i64,
    pub(super) owner: ProfileIdx,
    pub(super) ty: TypeId,
    len: u32,
    /// The value when `len <= INLINE`, else its offset in `spill` (8 bytes,
    /// little-endian).
    bytes: [u8; INLINE],
}

impl IdentRec {
    pub(super) fn new(
        ty: TypeId,
        v: &str,
        owner: ProfileIdx,
        last_seen: i64,
        spill: &mut Vec<u8>,
    ) -> Self {
        let v = v.as_bytes();
        let mut bytes = [0u8; INLINE];
        if v.len() <= INLINE {
            bytes[..v.len()].copy_from_slice(v);
        } else {
            bytes[..8].copy_from_slice(&(spill.len() as u64).to_le_bytes());
            spill.extend_from_slice(v);
        }
        IdentRec {
            last_seen,
            owner,
            ty,
            len: u32::try_from(v.len()).expect("identifier under 4 GiB"),
            bytes,
        }
    }

    /// The value's bytes (`spill` is the engine's).
    #[inline(always)]
    pub(super) fn value<'a>(&'a self, spill: &'a [u8]) -> &'a [u8] {
        let n = self.len as usize;
        if n <= INLINE {
            &self.bytes[..n]
        } else {
            let at = word(&self.bytes, 0) as usize;
            &spill[at..at + n]
        }
    }

    /// The value (`spill` is the engine's).
    pub(super) fn value_str<'a>(&'a self, spill: &'a [u8]) -> &'a str {
        std::str::from_utf8(self.value(spill)).expect("stored from a str")
    }

    /// Erases the value (its bytes too, when spilled), for a privacy
    /// deletion.
    pub(super) fn erase(&mut self, spill: &mut [u8]) {
        let n = self.len as usize;
        if n > INLINE {
            let at = word(&self.bytes, 0) as usize;
            spill[at..at + n].fill(0);
        }
        self.bytes = [0; INLINE];
        self.len = 0;
    }
}

#[derive(Debug, Clone)]
pub(super) struct TraitRec {
    pub(super) name: NameId,
    /// `Json::Null` marks a trait removed by an explicit null; it is kept so a
    /// merge still knows when it was removed.
    pub(super) value: Json,
    pub(super) order: u64,
}

/// A profile's state besides its canonical pointer and dirty flag, which the
/// engine keeps in dense arrays of their own: every event reads one and sets
/// the other, and a 4-byte or 1-byte entry is far likelier to be in cache
/// than this 80-byte one.
///
/// Members and identifiers are few per profile: up to four are kept in
/// place, in the space a `Vec` would take, so most profiles allocate for
/// neither.
#[derive(Debug, Clone, Default)]
pub(super) struct Profile {
    pub(super) merges: u32,
    pub(super) members: SmallVec<[ProfileIdx; 4]>,
    pub(super) idents: SmallVec<[IdentIdx; 4]>,
    pub(super) traits: Vec<TraitRec>,
}
