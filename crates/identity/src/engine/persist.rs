//! Saving and restoring the engine's state as [`ProfileRecord`]s and an
//! [`EngineMeta`]: [`Engine::record`], [`Engine::meta`] and
//! [`Engine::restore`].

use super::record::{Profile, TraitRec};
use super::stored::{EngineMeta, ProfileRecord, RestoreError};
use super::{Engine, ProfileIdx};
use crate::settings::{IdScheme, Settings};

impl Engine {
    /// The persistent state of one profile.
    pub fn record(&self, p: ProfileIdx) -> ProfileRecord {
        let prof = &self.profiles[p as usize];
        ProfileRecord {
            segment_id: self.segment_id(p).to_owned(),
            ord: p,
            canonical: self.segment_id(self.canon[p as usize]).to_owned(),
            merges: prof.merges,
            idents: prof
                .idents
                .iter()
                .map(|&i| {
                    let r = &self.idents[i as usize];
                    (
                        self.settings.name(r.ty).to_owned(),
                        r.value_str(&self.spill).to_owned(),
                        r.last_seen,
                    )
                })
                .collect(),
            traits: prof
                .traits
                .iter()
                .map(|t| (self.names.get(t.name).to_owned(), t.value.clone(), t.order))
                .collect(),
        }
    }

    /// The engine-wide counters to store beside the profile records.
    pub fn meta(&self) -> EngineMeta {
        EngineMeta {
            order: self.order,
            added_types: self.settings.added_types().to_vec(),
            profiles: self.profiles.len() as u64,
        }
    }

    /// Rebuilds an engine from stored records (any order) and meta.
    pub fn restore(
        settings: Settings,
        scheme: IdScheme,
        space: &str,
        meta: &EngineMeta,
        records: Vec<ProfileRecord>,
    ) -> Result<Engine, RestoreError> {
        let mut e = Engine::new(settings, scheme, space);
        for t in &meta.added_types {
            e.settings.type_id_or_add(t);
        }
        e.order = meta.order;
        let mut records = records;
        records.sort_unstable_by_key(|r| r.ord);
        let mut by_id = std::collections::HashMap::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            if r.ord as usize != i {
                return Err(RestoreError(format!(
                    "profile {} has ordinal {} but {} was expected",
                    r.segment_id, r.ord, i
                )));
            }
            by_id.insert(r.segment_id.as_str(), i as ProfileIdx);
        }
        e.profiles = vec![Profile::default(); records.len()];
        e.canon = vec![0; records.len()];
        e.marked = vec![false; records.len()];
        e.segment_ids.reserve(
            records.len(),
            records.iter().map(|r| r.segment_id.len()).sum(),
        );
        for r in &records {
            e.segment_ids.push(&[&r.segment_id]);
        }
        for (i, r) in records.iter().enumerate() {
            let c = *by_id.get(r.canonical.as_str()).ok_or_else(|| {
                RestoreError(format!(
                    "profile {} points to unknown {}",
                    r.segment_id, r.canonical
                ))
            })?;
            e.canon[i] = c;
            let prof = &mut e.profiles[i];
            prof.merges = r.merges;
            prof.traits = r
                .traits
                .iter()
                .map(|(n, v, o)| TraitRec {
                    name: e.names.id(&e.hasher, n),
                    value: v.clone(),
                    order: *o,
                })
                .collect();
        }
        for i in 0..records.len() {
            let c = e.canon[i];
            if c as usize != i {
                // One hop: a merged-away profile must point at a live one.
                if e.canon[c as usize] != c {
                    return Err(RestoreError(format!(
                        "profile {} points to {}, which is itself merged away",
                        records[i].segment_id, records[c as usize].segment_id
                    )));
                }
                e.profiles[c as usize].members.push(i as ProfileIdx);
            }
        }
        let mut sink = Vec::new();
        for (i, r) in records.iter().enumerate() {
            for (ty, v, seen) in &r.idents {
                let (t, _) = e.settings.type_id_or_add(ty);
                if e.find(t, v).is_some() {
                    return Err(RestoreError(format!(
                        "identifier {ty}:{v} is held by two profiles"
                    )));
                }
                e.attach(i as ProfileIdx, t, v, *seen, &mut sink);
            }
        }
        Ok(e)
    }
}
