//! Key layouts of identify traits seen lately, so that traits shaped like
//! earlier ones are applied without sorting their keys or looking them up.
//!
//! An SDK sends a user's traits with the same keys in the same order event
//! after event (`email`, `plan`, `createdAt`, ...). Applying them in
//! `serde_json`'s map order (sorted, a repeated key's last value kept) took
//! an insertion sort of the members and a name lookup per key, a large share
//! of an identify event's cost. A [`Shape`] records, for one sequence of
//! keys (with which values were objects), the members to apply in that order
//! and the trait name each gives; an event whose keys are exactly the same
//! bytes, in the same order, with objects at the same places, is applied
//! from it. Trait name numbers stay valid for the engine's life, so a shape
//! never goes stale.

use super::hasher::IdentHasher;
use super::names::{NameId, Names};
use crate::bytes::same_bytes;
use ps_spec::naming::to_snake_case;
use ps_spec::tape::JsonRef;

/// Members an object may have to be remembered (larger ones take the
/// general path).
pub(super) const MAX_MEMBERS: usize = 16;
/// Shapes kept; the oldest is replaced first.
const CAPACITY: usize = 8;

/// What to do with one member, in map order.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// Member number `.0` (document order) sets trait `.1`.
    Flat(u8, NameId),
    /// Member number `.0` is an object: its leaves are named under `.1`.
    Object(u8, Box<str>),
}

#[derive(Debug, Clone)]
struct Shape {
    sig: u64,
    objects: u16,
    /// The keys in document order, concatenated, and where each ends.
    text: Box<[u8]>,
    ends: Box<[u32]>,
    steps: Box<[Step]>,
}

/// An object's members in document order, as [`Shapes`] reads them.
pub(super) struct Members<'a> {
    pub(super) list: [(&'a str, JsonRef<'a>); MAX_MEMBERS],
    pub(super) n: usize,
    sig: u64,
    objects: u16,
}

impl<'a> Members<'a> {
    /// None yet; [`Members::read`] fills them in place (returning the
    /// filled list by value cost a copy of it, a call to `memcpy`).
    #[inline]
    pub(super) fn new(obj: JsonRef<'a>) -> Members<'a> {
        Members {
            list: [("", obj); MAX_MEMBERS],
            n: 0,
            sig: 0,
            objects: 0,
        }
    }

    /// Reads the members of `obj`; `false` if it has more than
    /// [`MAX_MEMBERS`].
    #[inline]
    pub(super) fn read(&mut self, obj: JsonRef<'a>) -> bool {
        for (k, v) in obj.members() {
            if self.n == MAX_MEMBERS {
                return false;
            }
            let b = k.as_bytes();
            let tail = match b {
                [first, .., last] => u64::from(*first) << 8 | u64::from(*last),
                [only] => u64::from(*only),
                [] => 0,
            };
            self.sig = self.sig.rotate_left(7) ^ (b.len() as u64) << 16 ^ tail;
            if v.is_object() {
                self.objects |= 1 << self.n;
            }
            self.list[self.n] = (k, v);
            self.n += 1;
        }
        true
    }
}

#[derive(Debug, Default, Clone)]
pub(super) struct Shapes {
    list: Vec<Shape>,
    /// The next to replace once `list` is full.
    next: usize,
    /// Events applied from a shape (tests check the path is taken).
    #[cfg(test)]
    pub(super) hits: u64,
}

impl Shapes {
    /// The steps for members `m`, if a shape with exactly these keys is
    /// remembered.
    #[inline]
    pub(super) fn find(&mut self, m: &Members<'_>) -> Option<&[Step]> {
        let keys = &m.list[..m.n];
        let s = self.list.iter().find(|s| {
            s.sig == m.sig
                && s.objects == m.objects
                && s.ends.len() == keys.len()
                && keys.iter().enumerate().all(|(i, (k, _))| {
                    let start = if i == 0 { 0 } else { s.ends[i - 1] as usize };
                    same_bytes(&s.text[start..s.ends[i] as usize], k.as_bytes())
                })
        })?;
        #[cfg(test)]
        {
            self.hits += 1;
        }
        Some(&s.steps)
    }

    /// Remembers the shape of `m` (applied by the general path, so every
    /// key already has its name), replacing the oldest when full.
    pub(super) fn add(&mut self, m: &Members<'_>, names: &mut Names, hasher: &IdentHasher) {
        let keys = &m.list[..m.n];
        // Map order: keys sorted (stable, so among equal keys the last in
        // the document is last), each distinct key once, its last member.
        let mut order: Vec<u8> = (0..m.n as u8).collect();
        order.sort_by(|&a, &b| keys[a as usize].0.cmp(keys[b as usize].0));
        let mut steps = Vec::with_capacity(order.len());
        for (at, &i) in order.iter().enumerate() {
            let key = keys[i as usize].0;
            if order
                .get(at + 1)
                .is_some_and(|&j| keys[j as usize].0 == key)
            {
                continue;
            }
            if m.objects & (1 << i) != 0 {
                steps.push(Step::Object(i, to_snake_case(key).into()));
            } else if let Some(id) = names.of_key(hasher, key) {
                steps.push(Step::Flat(i, id));
            }
        }
        let mut text = Vec::new();
        let mut ends = Vec::with_capacity(keys.len());
        for (k, _) in keys {
            text.extend_from_slice(k.as_bytes());
            ends.push(text.len() as u32);
        }
        let shape = Shape {
            sig: m.sig,
            objects: m.objects,
            text: text.into(),
            ends: ends.into(),
            steps: steps.into(),
        };
        if self.list.len() < CAPACITY {
            self.list.push(shape);
        } else {
            self.list[self.next] = shape;
            self.next = (self.next + 1) % CAPACITY;
        }
    }
}
