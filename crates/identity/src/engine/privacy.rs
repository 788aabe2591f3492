//! Privacy requests (SPEC §8) as the engine sees them.
//!
//! **Forgetting** a profile releases its identifiers: they leave the index, so
//! the same values seen later start a fresh profile. The profile and the
//! segments merged into it stay in the arena as empty shells — profile numbers
//! are never reused, so a returning user gets a new id, and restored state
//! keeps its ordinals dense — but nothing can resolve to them any more.
//!
//! **Suppression** is a set of `(type, value)` pairs: an event carrying any of
//! them is refused by [`Engine::process`] before it changes anything.

use super::record::Profile;
use super::{Engine, Forgotten, IdentIdx, ProfileIdx};
use crate::extract::Candidate;
use crate::settings::TypeId;

impl Engine {
    /// A live profile and every segment merged into it, ascending.
    pub fn segments_of(&self, canonical: ProfileIdx) -> Vec<ProfileIdx> {
        let c = self.canon[canonical as usize];
        let mut v = self.profiles[c as usize].members.to_vec();
        v.push(c);
        v.sort_unstable();
        v
    }

    /// The identifiers a profile holds (through its canonical profile), as
    /// `(type name, value)` in attachment order.
    pub fn identifiers_of(&self, p: ProfileIdx) -> Vec<(String, String)> {
        let c = self.canon[p as usize];
        self.profiles[c as usize]
            .idents
            .iter()
            .map(|&i| {
                let (t, v) = self.identifier(i);
                (t.to_owned(), v.to_owned())
            })
            .collect()
    }

    /// Forgets the profile `p` resolves to, with everything merged into it.
    /// The shells are marked dirty, so their (empty) records are stored with
    /// the next commit — the one that deletes the rows.
    pub fn forget(&mut self, p: ProfileIdx) -> Forgotten {
        let segments = self.segments_of(p);
        let c = self.canon[p as usize];
        let idents = std::mem::take(&mut self.profiles[c as usize].idents);
        let mut identifiers = Vec::with_capacity(idents.len());
        for &i in &idents {
            let (t, v) = self.identifier(i);
            identifiers.push((t.to_owned(), v.to_owned()));
            self.unindex(i);
        }
        for &s in &segments {
            self.profiles[s as usize] = Profile::default();
            self.canon[s as usize] = s;
            self.mark(s);
        }
        Forgotten {
            segments,
            identifiers,
        }
    }

    fn unindex(&mut self, i: IdentIdx) {
        let r = &self.idents[i as usize];
        let h = self.hasher.hash(r.ty, r.value_str(&self.spill));
        self.index.remove(h, i);
        // The arena slot stays (indices are positions) but keeps no value.
        self.idents[i as usize].erase(&mut self.spill);
    }

    /// Refuses, from now on, events carrying `type_name:value`. Returns
    /// whether the pair was new.
    pub fn suppress(&mut self, type_name: &str, value: &str) -> bool {
        let (t, _) = self.settings.type_id_or_add(type_name);
        self.suppressed.insert((t, value.into()))
    }

    /// Lifts a suppression. Returns whether it was there.
    pub fn unsuppress(&mut self, type_name: &str, value: &str) -> bool {
        match self.settings.type_id(type_name) {
            Some(t) => self.suppressed.remove(&(t, value.into())),
            None => false,
        }
    }

    pub(super) fn suppressed_hit(&self, ids: &[Candidate<'_>]) -> Option<(String, String)> {
        ids.iter().find_map(|(t, v)| {
            let key: (TypeId, Box<str>) = (*t, (**v).into());
            self.suppressed
                .contains(&key)
                .then(|| (self.settings.name(*t).to_owned(), v.to_string()))
        })
    }
}
