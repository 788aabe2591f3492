//! The identity engine (SPEC §3.3).
//!
//! A pure state machine: [`Engine::process`] takes one event, whose timestamp is
//! the only notion of time the engine has, and reports what changed as
//! [`Effect`]s, which the pipeline turns into landed rows. Processing the same
//! events in the same order always gives the same profiles, ids and effects.
//!
//! ## Data layout
//! Profiles are numbered by creation (`ProfileIdx`), so "the oldest profile" is
//! the smallest number. Identifiers live in one arena (`IdentIdx`) with a hash
//! index over `(type, value)`; each identifier remembers the profile it was
//! first attached to, and each profile holds a one-hop pointer to its canonical
//! profile that merges keep current for every member, so resolving an
//! identifier is two array reads. A live profile keeps its members sorted, so
//! the order of recursive `id_graph_updates` rows does not depend on history
//! (a restored engine emits exactly what an uninterrupted one would).
//!
//! ## Speed
//! Events are read on their tape ([`ps_spec::tape`]); no `serde_json` value
//! is built for an event except a trait value that is new or changed.
//! Most events take [`Engine::process`]'s shortcut: their identifiers
//! (`userId`, `anonymousId`, an identify's `traits.email`, a mobile
//! `context.device`'s ids) are all known on one profile, so they are looked
//! up in place, without a candidate list. Identify traits are compared with
//! the stored values on the tape, named without the naming rule for keys
//! seen before, and walked in `serde_json`'s key order without allocating:
//! keys laid out as in a recent identify (same keys, same order) are
//! applied from that layout (`engine/shape.rs`: no sort, no name lookups),
//! others through `JsonRef::for_each_sorted_member`. What is left per event
//! is mostly the identifier lookups themselves (hash, probe, value compare:
//! the first touch of an event's bytes and of a record is a cache miss),
//! and, per identify, the trait walk. Figures and how to measure them:
//! `BENCHMARKS.md`, `examples/profile_engine.rs`.

use crate::bytes::{same_bytes, word};
use crate::extract::{device_ids, extract, Candidate, Candidates};
use crate::settings::{IdScheme, Settings, TypeId, IDENTIFIER_CAP, MERGE_CAP};
use ps_spec::flatten::for_each_doc_leaf;
use ps_spec::naming::to_snake_case;
use ps_spec::tape::{JsonRef, Kind};
use ps_spec::{Event, EventType};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha1::{Digest, Sha1};
use smallvec::SmallVec;

mod hasher;
mod index;
mod names;
mod privacy;
mod shape;
mod snapshot;

use hasher::IdentHasher;
use index::Index;
use names::{NameId, Names};

/// A profile, numbered in creation order.
pub type ProfileIdx = u32;
/// An identifier in the engine's arena.
pub type IdentIdx = u32;

/// The rule a demoted identifier broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The type's `limit` of identifiers a profile may hold (within its
    /// window).
    Limit(TypeId),
    /// [`MERGE_CAP`]: merges one profile may take part in.
    MergeCap,
    /// [`IDENTIFIER_CAP`]: identifiers one profile may hold.
    IdentifierCap,
}

/// One demotion: an identifier dropped from an event because keeping it would
/// have broken `rule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The demoted identifier's type.
    pub ident_type: TypeId,
    /// The demoted identifier's value.
    pub value: String,
    /// The rule keeping it would have broken.
    pub rule: Rule,
    /// The canonical profiles the event touched when the rule was hit.
    pub profiles: Vec<ProfileIdx>,
}

/// What one event changed, in the order the rows are to be landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A profile was created: an `id_graph_updates` row `(p, p)`.
    Created {
        /// The new profile.
        profile: ProfileIdx,
    },
    /// `segment` now resolves to `canonical` (one row per member on a merge).
    Repointed {
        /// The profile re-pointed.
        segment: ProfileIdx,
        /// The live profile it now resolves to.
        canonical: ProfileIdx,
    },
    /// An identifier was attached to a profile for the first time.
    Attached {
        /// The profile it was attached to.
        profile: ProfileIdx,
        /// The identifier ([`Engine::identifier`] gives its type and value).
        ident: IdentIdx,
    },
    /// The profile's traits changed or it survived a merge: a full snapshot row.
    Traits {
        /// The profile to snapshot.
        profile: ProfileIdx,
    },
    /// An identifier was demoted.
    Conflict(Conflict),
}

/// How one event resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The event's `segment_id` (SPEC §3.3); `None` when no identifier survived.
    pub segment: Option<ProfileIdx>,
    /// The profile the event's identifiers now belong to.
    pub canonical: Option<ProfileIdx>,
    /// Profiles merged away by this event.
    pub merges: u32,
    /// Identifier types first seen in this event's `context.externalIds`.
    pub new_types: Vec<String>,
    /// The suppressed identifier that made the engine refuse the event
    /// (SPEC §8); nothing else changed.
    pub suppressed: Option<(String, String)>,
}

/// What [`Engine::forget`] released.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Every segment that resolved to the profile, the canonical one
    /// included, ascending.
    pub segments: Vec<ProfileIdx>,
    /// The identifiers released, as `(type name, value)`.
    pub identifiers: Vec<(String, String)>,
}

/// Values up to this many bytes are stored in the identifier's record.
const INLINE: usize = 44;

/// One identifier: a cache line holding everything a lookup reads (type,
/// value, owner) and the last-seen time it updates. Values longer than
/// [`INLINE`] bytes (rare: ids are mostly UUIDs, emails and shorter) live in
/// the engine's `spill` arena instead, the record holding their offset. A
/// value in a separate heap string cost a second cache miss per lookup, and
/// about as much memory again as the part of the line it now fills.
#[derive(Debug, Clone)]
#[repr(align(64))]
struct IdentRec {
    last_seen: i64,
    owner: ProfileIdx,
    ty: TypeId,
    len: u32,
    /// The value when `len <= INLINE`, else its offset in `spill` (8 bytes,
    /// little-endian).
    bytes: [u8; INLINE],
}

impl IdentRec {
    fn new(ty: TypeId, v: &str, owner: ProfileIdx, last_seen: i64, spill: &mut Vec<u8>) -> Self {
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
    fn value<'a>(&'a self, spill: &'a [u8]) -> &'a [u8] {
        let n = self.len as usize;
        if n <= INLINE {
            &self.bytes[..n]
        } else {
            let at = word(&self.bytes, 0) as usize;
            &spill[at..at + n]
        }
    }

    /// The value (`spill` is the engine's).
    fn value_str<'a>(&'a self, spill: &'a [u8]) -> &'a str {
        std::str::from_utf8(self.value(spill)).expect("stored from a str")
    }

    /// Erases the value (its bytes too, when spilled), for a privacy
    /// deletion.
    fn erase(&mut self, spill: &mut [u8]) {
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
struct TraitRec {
    name: NameId,
    /// `Json::Null` marks a trait removed by an explicit null; it is kept so a
    /// merge still knows when it was removed.
    value: Json,
    order: u64,
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
struct Profile {
    merges: u32,
    members: SmallVec<[ProfileIdx; 4]>,
    idents: SmallVec<[IdentIdx; 4]>,
    traits: Vec<TraitRec>,
}

/// A profile's persistent state, as stored by the warehouse and read back by
/// [`Engine::restore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// The profile's segment id.
    pub segment_id: String,
    /// The profile's number ([`ProfileIdx`]): its place in creation order.
    pub ord: u32,
    /// The segment id of the live profile it resolves to (its own while live).
    pub canonical: String,
    /// Merges the profile has taken part in (counted towards [`MERGE_CAP`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub merges: u32,
    /// Its identifiers, in attachment order: `(type name, value, last seen)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idents: Vec<(String, String, i64)>,
    /// Its traits in first-set order, `(name, value, order of the last
    /// event that sent it)`; a `null` value records a removal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traits: Vec<(String, Json, u64)>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Engine-wide counters that are not per profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineMeta {
    /// The number of the last event processed (trait values carry these
    /// numbers as their order).
    pub order: u64,
    /// Identifier types added since the settings were read (first seen in
    /// `context.externalIds`), in the order they were added.
    pub added_types: Vec<String>,
    /// Profiles ever created: a snapshot must hold exactly this many, so a
    /// lost chunk at the end cannot pass for a smaller engine.
    #[serde(default)]
    pub profiles: u64,
}

/// An inconsistency found while restoring state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt identity state: {0}")]
pub struct RestoreError(pub String);

/// The identity engine.
#[derive(Debug)]
pub struct Engine {
    settings: Settings,
    scheme: IdScheme,
    space: String,
    profiles: Vec<Profile>,
    /// Each profile's canonical profile (itself while live): one hop.
    canon: Vec<ProfileIdx>,
    /// Whether the profile is in `dirty`.
    marked: Vec<bool>,
    segment_ids: SegmentIds,
    idents: Vec<IdentRec>,
    /// Identifier values too long for their record.
    spill: Vec<u8>,
    index: Index,
    hasher: IdentHasher,
    names: Names,
    /// Key layouts of recent identify traits.
    shapes: shape::Shapes,
    order: u64,
    dirty: Vec<ProfileIdx>,
    suppressed: std::collections::HashSet<(TypeId, Box<str>)>,
    /// Whether [`Engine::process`] may take its shortcut (always, except in
    /// the tests that compare it with the general path).
    shortcuts: bool,
}

impl Engine {
    /// An empty engine for the space named `space` (part of `use_` ids).
    pub fn new(settings: Settings, scheme: IdScheme, space: &str) -> Engine {
        Engine {
            settings,
            scheme,
            space: space.to_owned(),
            profiles: Vec::new(),
            canon: Vec::new(),
            marked: Vec::new(),
            segment_ids: SegmentIds::default(),
            idents: Vec::new(),
            spill: Vec::new(),
            index: Index::default(),
            hasher: IdentHasher::new(),
            names: Names::default(),
            shapes: shape::Shapes::default(),
            order: 0,
            dirty: Vec::new(),
            suppressed: Default::default(),
            shortcuts: true,
        }
    }

    /// The identity settings, with the types added since.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Profiles ever created, merged-away ones included.
    pub fn profile_count(&self) -> usize {
        self.profiles.len()
    }

    /// Identifiers ever attached.
    pub fn identifier_count(&self) -> usize {
        self.idents.len()
    }

    /// The segment id of profile `p`.
    pub fn segment_id(&self, p: ProfileIdx) -> &str {
        self.segment_ids.get(p)
    }

    /// The live profile `p` resolves to (`p` itself while live).
    pub fn canonical(&self, p: ProfileIdx) -> ProfileIdx {
        self.canon[p as usize]
    }

    /// `(type name, value)` of an identifier.
    pub fn identifier(&self, i: IdentIdx) -> (&str, &str) {
        let r = &self.idents[i as usize];
        (self.settings.name(r.ty), r.value_str(&self.spill))
    }

    /// The profile's current traits in first-set order (removed ones left out).
    pub fn traits(&self, p: ProfileIdx) -> impl Iterator<Item = (&str, &Json)> {
        self.profiles[p as usize]
            .traits
            .iter()
            .filter(|t| !t.value.is_null())
            .map(|t| (self.names.get(t.name), &t.value))
    }

    /// Resolves an identifier to its canonical profile.
    pub fn lookup(&self, type_name: &str, value: &str) -> Option<ProfileIdx> {
        let t = self.settings.type_id(type_name)?;
        self.find(t, value)
            .map(|i| self.canon[self.idents[i as usize].owner as usize])
    }

    /// Processes one event, appending its effects to `fx`.
    pub fn process(&mut self, ev: &Event, fx: &mut Vec<Effect>) -> Outcome {
        if self.shortcuts {
            if let Some(out) = self.process_known(ev, fx) {
                return out;
            }
        }
        self.process_general(ev, fx)
    }

    /// Turns the shortcut of [`Engine::process`] off, for tests that compare
    /// it with the general path.
    #[doc(hidden)]
    pub fn without_shortcuts(mut self) -> Engine {
        self.shortcuts = false;
        self
    }

    /// The usual event, without building the general path's candidate list:
    /// its only identifiers can be `userId`, `anonymousId`, an identify or
    /// group call's `traits.email` and the ids of `context.device` (strings
    /// all), and they are all known on one profile (or there are none).
    /// `None`, with nothing changed, for any other event:
    /// [`Engine::process_general`] then does it all.
    #[inline]
    fn process_known(&mut self, ev: &Event, fx: &mut Vec<Effect>) -> Option<Outcome> {
        let has = ev.identity_sources();
        if has.integrations
            || has.context_traits
            || has.context_integrations
            || has.context_external_ids
            || !self.suppressed.is_empty()
            || !self.settings.custom.is_empty()
        {
            return None;
        }
        let b = self.settings.builtin;
        let traits = match ev.kind {
            EventType::Identify | EventType::Group => ev.body_ref(),
            _ => None,
        };
        let email = string_id(traits.and_then(|m| m.get("email")))?;
        // What `extract` would find, in its order: three distinct types, so
        // no repeats to drop. (Straight-line code: a loop over the three is
        // not unrolled, and its set-up cost as much as the lookups.)
        let mut owner: Option<ProfileIdx> = None;
        let found = [
            self.known_on(b.user_id, ev.user_id.as_deref(), &mut owner)?,
            self.known_on(b.anonymous_id, ev.anonymous_id.as_deref(), &mut owner)?,
            self.known_on(b.email, email, &mut owner)?,
        ];
        // A mobile event's device ids come next in `extract`'s order.
        let mut device_found = [None; 3];
        if has.context_device {
            let device = ev.context_device_ref().filter(|d| d.is_object());
            if let Some(ids) = device.and_then(|d| device_ids(&b, d)) {
                for ((t, v), slot) in ids.into_iter().zip(&mut device_found) {
                    *slot = self.known_on(t, string_id(v)?, &mut owner)?;
                }
            }
        }
        self.order += 1;
        let Some(c) = owner else {
            return Some(Outcome::default());
        };
        let ts = ev.timestamp;
        let seen = if has.context_device { 6 } else { 3 };
        for &i in found.iter().chain(&device_found).take(seen).flatten() {
            let r = &mut self.idents[i as usize];
            r.last_seen = r.last_seen.max(ts);
        }
        self.mark(c);
        if ev.kind == EventType::Identify && self.apply_traits(c, traits) {
            fx.push(Effect::Traits { profile: c });
        }
        Some(Outcome {
            segment: Some(c),
            canonical: Some(c),
            ..Outcome::default()
        })
    }

    /// One candidate of [`Engine::process_known`]: `Some(None)` when there
    /// is none (absent, empty or blocked), `Some(Some(i))` when it is the
    /// known identifier `i` on `owner` (set if still `None`), `None` when it
    /// is new or on another profile.
    #[inline(always)]
    fn known_on(
        &self,
        t: TypeId,
        v: Option<&str>,
        owner: &mut Option<ProfileIdx>,
    ) -> Option<Option<IdentIdx>> {
        let Some(v) = v else { return Some(None) };
        if v.is_empty() || self.settings.is_blocked(t, v) {
            return Some(None);
        }
        let i = self.find(t, v)?;
        let c = self.canon[self.idents[i as usize].owner as usize];
        if owner.is_some_and(|o| o != c) {
            return None;
        }
        *owner = Some(c);
        Some(Some(i))
    }

    /// [`Engine::process`] for any event.
    fn process_general(&mut self, ev: &Event, fx: &mut Vec<Effect>) -> Outcome {
        // Per-event scratch lives on the stack: almost every event has a
        // handful of identifiers and touches one or two profiles.
        let mut ids: Candidates<'_> = SmallVec::new();
        let found = extract(&mut self.settings, ev, &mut ids);
        let mut out = Outcome {
            new_types: found.new_types,
            ..Outcome::default()
        };
        if !self.suppressed.is_empty() {
            out.suppressed = self.suppressed_hit(&ids);
            if out.suppressed.is_some() {
                return out;
            }
        }
        self.order += 1;
        if ids.is_empty() {
            return out;
        }
        let ts = ev.timestamp;
        // Each candidate is hashed and looked up once: a refused attempt below
        // changes nothing, so what was found stays valid through the demotions,
        // and the hash is reused to index a new identifier.
        let mut look: SmallVec<[(u64, Option<IdentIdx>); 6]> = SmallVec::new();
        for (t, v) in &ids {
            let h = self.hash(*t, v);
            look.push((h, self.find_hashed(h, *t, v)));
        }
        // The usual event: every identifier known, all on one profile.
        if let Some(c) = self.sole_profile(&look) {
            for &(_, f) in &look {
                let r = &mut self.idents[f.expect("known") as usize];
                r.last_seen = r.last_seen.max(ts);
            }
            self.mark(c);
            out.segment = Some(c);
            out.canonical = Some(c);
        } else {
            self.resolve(ev.kind, &mut ids, &mut look, ts, fx, &mut out);
        }
        if ev.kind == EventType::Identify || out.merges > 0 {
            let target = out.canonical.expect("resolved");
            let changed = ev.kind == EventType::Identify && self.apply_traits(target, found.traits);
            if changed || out.merges > 0 {
                fx.push(Effect::Traits { profile: target });
            }
        }
        out
    }

    /// The profile every identifier of the event already belongs to, if there
    /// is one and none is new.
    #[inline]
    fn sole_profile(&self, look: &[(u64, Option<IdentIdx>)]) -> Option<ProfileIdx> {
        let canonical =
            |f: Option<IdentIdx>| f.map(|i| self.canon[self.idents[i as usize].owner as usize]);
        let c = canonical(look.first()?.1)?;
        look[1..]
            .iter()
            .all(|&(_, f)| canonical(f) == Some(c))
            .then_some(c)
    }

    /// SPEC §3.3's loop: find the profiles, merge or demote, attach.
    fn resolve(
        &mut self,
        kind: EventType,
        ids: &mut Candidates<'_>,
        look: &mut SmallVec<[(u64, Option<IdentIdx>); 6]>,
        ts: i64,
        fx: &mut Vec<Effect>,
        out: &mut Outcome,
    ) {
        let mut p: SmallVec<[ProfileIdx; 4]> = SmallVec::new();
        loop {
            p.clear();
            for &i in look.iter().filter_map(|(_, f)| f.as_ref()) {
                let c = self.canon[self.idents[i as usize].owner as usize];
                if !p.contains(&c) {
                    p.push(c);
                }
            }
            if p.is_empty() {
                let np = self.create(fx);
                for ((t, v), &(h, _)) in ids.iter().zip(look.iter()) {
                    self.attach_hashed(np, *t, v, h, ts, fx);
                }
                out.segment = Some(np);
                out.canonical = Some(np);
                return;
            }
            p.sort_unstable();
            // Alias calls never merge profiles (SPEC §3.1): an alias touching
            // several profiles is refused like a broken rule and goes through the
            // same demotion, so it resolves through its most trusted identifiers.
            // It breaks none of §4.4's rules, so no conflict is recorded.
            let refused = if kind == EventType::Alias && p.len() > 1 {
                Some(None)
            } else {
                self.check(&p, ids, look, ts).map(Some)
            };
            let Some(rule) = refused else {
                let target = p[0];
                for &other in &p[1..] {
                    self.merge(other, target, fx);
                }
                out.merges = p.len() as u32 - 1;
                for ((t, v), &(h, f)) in ids.iter().zip(look.iter()) {
                    match f {
                        Some(i) => {
                            let r = &mut self.idents[i as usize];
                            r.last_seen = r.last_seen.max(ts);
                        }
                        None => {
                            self.attach_hashed(target, *t, v, h, ts, fx);
                        }
                    }
                }
                self.mark(target);
                out.segment = Some(*p.last().expect("p is not empty"));
                out.canonical = Some(target);
                return;
            };
            // Drop the least trusted identifier; among equals, the later one.
            // Past the identifier cap the event must still resolve to the
            // profile (SPEC §3.2): drop new identifiers before known ones, or
            // a new user id next to a known anonymous id would start a profile.
            let new_first =
                rule == Some(Rule::IdentifierCap) && look.iter().any(|(_, f)| f.is_none());
            let mut worst: Option<usize> = None;
            for (k, (t, _)) in ids.iter().enumerate() {
                if new_first && look[k].1.is_some() {
                    continue;
                }
                let priority = self.settings.get(*t).priority;
                if worst.is_none_or(|w| priority >= self.settings.get(ids[w].0).priority) {
                    worst = Some(k);
                }
            }
            let worst = worst.expect("ids is not empty");
            let (t, v) = ids.remove(worst);
            look.remove(worst);
            if let Some(rule) = rule {
                fx.push(Effect::Conflict(Conflict {
                    ident_type: t,
                    value: v.into_owned(),
                    rule,
                    profiles: p.to_vec(),
                }));
            }
        }
    }

    /// Whether merging `p` and attaching `ids` would break a rule, and which.
    fn check(
        &self,
        p: &[ProfileIdx],
        ids: &[Candidate],
        look: &[(u64, Option<IdentIdx>)],
        ts: i64,
    ) -> Option<Rule> {
        let merging = p.len() > 1;
        let new_count = look.iter().filter(|(_, f)| f.is_none()).count();
        if !merging && new_count == 0 {
            return None;
        }
        let prof = |i: ProfileIdx| &self.profiles[i as usize];
        if merging {
            let total: u32 =
                prof(p[0]).merges + p[1..].iter().map(|&o| 1 + prof(o).merges).sum::<u32>();
            if total > MERGE_CAP {
                return Some(Rule::MergeCap);
            }
        }
        let sizes = p.iter().map(|&i| prof(i).idents.len());
        let total_ids = sizes.clone().sum::<usize>() + new_count;
        if total_ids > IDENTIFIER_CAP && total_ids > sizes.max().unwrap_or(0) {
            return Some(Rule::IdentifierCap);
        }
        // Types whose count can grow: those of new identifiers, and on a merge
        // every type the profiles hold.
        let mut types: SmallVec<[TypeId; 16]> = ids
            .iter()
            .zip(look)
            .filter(|(_, (_, f))| f.is_none())
            .map(|((t, _), _)| *t)
            .collect();
        if merging {
            for &pi in p {
                types.extend(prof(pi).idents.iter().map(|&i| self.idents[i as usize].ty));
            }
        }
        types.sort_unstable_by_key(|t| self.settings.get(*t).priority);
        types.dedup();
        for t in types {
            let s = self.settings.get(t);
            let since = s.window.micros().map_or(i64::MIN, |w| ts.saturating_sub(w));
            let counts = |pi: ProfileIdx| {
                prof(pi)
                    .idents
                    .iter()
                    .filter(|&&i| {
                        let r = &self.idents[i as usize];
                        r.ty == t
                            && (r.last_seen >= since || look.iter().any(|&(_, f)| f == Some(i)))
                    })
                    .count()
            };
            let fresh = ids
                .iter()
                .zip(look)
                .filter(|((it, _), (_, f))| *it == t && f.is_none())
                .count();
            let mut before = 0;
            let mut after = fresh;
            for &pi in p {
                let c = counts(pi);
                before = before.max(c);
                after += c;
            }
            if after > s.limit as usize && after > before {
                return Some(Rule::Limit(t));
            }
        }
        None
    }

    fn create(&mut self, fx: &mut Vec<Effect>) -> ProfileIdx {
        let idx = self.profiles.len() as ProfileIdx;
        self.profiles.push(Profile::default());
        self.canon.push(idx);
        self.marked.push(false);
        let mut buf = [0u8; 27];
        let (prefix, digits) = id_parts(self.scheme, &self.space, idx as u64 + 1, &mut buf);
        self.segment_ids.push(&[prefix, digits]);
        self.mark(idx);
        fx.push(Effect::Created { profile: idx });
        idx
    }

    fn attach(&mut self, p: ProfileIdx, t: TypeId, v: &str, ts: i64, fx: &mut Vec<Effect>) {
        let h = self.hash(t, v);
        self.attach_hashed(p, t, v, h, ts, fx);
    }

    /// [`Engine::attach`] with `h == self.hash(t, &v)` already computed.
    fn attach_hashed(
        &mut self,
        p: ProfileIdx,
        t: TypeId,
        v: &str,
        h: u64,
        ts: i64,
        fx: &mut Vec<Effect>,
    ) {
        let i = self.idents.len() as IdentIdx;
        if self.idents.len() == self.idents.capacity() {
            // Grow by half, not double: records are a cache line each,
            // and doubling would leave up to half of them unused.
            self.idents.reserve_exact((self.idents.len() / 2).max(64));
        }
        self.idents
            .push(IdentRec::new(t, v, p, ts, &mut self.spill));
        self.index.insert(h, i);
        self.profiles[p as usize].idents.push(i);
        fx.push(Effect::Attached {
            profile: p,
            ident: i,
        });
    }

    /// The index's hash of an identifier.
    #[inline]
    fn hash(&self, t: TypeId, v: &str) -> u64 {
        self.hasher.hash(t, v)
    }

    #[inline]
    fn find(&self, t: TypeId, v: &str) -> Option<IdentIdx> {
        self.find_hashed(self.hash(t, v), t, v)
    }

    #[inline(always)]
    fn find_hashed(&self, h: u64, t: TypeId, v: &str) -> Option<IdentIdx> {
        self.index.find(h, |j| {
            let r = &self.idents[j as usize];
            r.ty == t && same_bytes(r.value(&self.spill), v.as_bytes())
        })
    }

    /// Merges `from` (a live profile) into `into`.
    fn merge(&mut self, from: ProfileIdx, into: ProfileIdx, fx: &mut Vec<Effect>) {
        let mut moved = std::mem::take(&mut self.profiles[from as usize].members);
        moved.push(from);
        moved.sort_unstable();
        for &s in &moved {
            self.canon[s as usize] = into;
            self.mark(s);
            fx.push(Effect::Repointed {
                segment: s,
                canonical: into,
            });
        }
        // (`from` was among `moved`: re-pointed and marked.)
        let f = std::mem::take(&mut self.profiles[from as usize]);
        let f_merges = f.merges;
        let t = &mut self.profiles[into as usize];
        t.members.extend(moved);
        t.members.sort_unstable();
        t.idents.extend(f.idents);
        t.merges += 1 + f_merges;
        for tr in f.traits {
            match t.traits.iter_mut().find(|x| x.name == tr.name) {
                Some(x) if x.order >= tr.order => {}
                Some(x) => *x = tr,
                None => t.traits.push(tr),
            }
        }
        self.mark(into);
    }

    /// Applies an identify call's traits; returns whether any value changed.
    ///
    /// Traits are what `ps_spec::flatten::for_each_doc_leaf(body, "", ..)`
    /// gives, in its order, read straight from the tape: a leaf is compared
    /// with the stored value there, and its `serde_json` value is built only
    /// when it is new or changed. A flat member's name comes from its key
    /// without naming work in the usual case: the trait after the last one
    /// set has it (calls tend to send the same keys, in the order the
    /// profile first got them), or the engine has seen the key before
    /// ([`Names::of_key`]). Traits whose keys are laid out exactly as in a
    /// recent call are applied from that layout ([`shape::Shapes`]): the
    /// same members in the same order with the same names, without sorting
    /// the keys or looking them up.
    fn apply_traits(&mut self, p: ProfileIdx, traits: Option<JsonRef<'_>>) -> bool {
        let Some(body) = traits else { return false };
        let order = self.order;
        let mut m = shape::Members::new(body);
        let fits = m.read(body);
        let (names, hasher) = (&mut self.names, &self.hasher);
        let traits = &mut self.profiles[p as usize].traits;
        let mut changed = false;
        let mut hint = 0;
        // Keys laid out as in an earlier event: apply the members it says,
        // in map order, with the names it found.
        if fits {
            if let Some(steps) = self.shapes.find(&m) {
                // A profile's first traits: one allocation, not a few.
                if traits.is_empty() {
                    traits.reserve_exact(steps.len());
                }
                for step in steps {
                    match step {
                        shape::Step::Flat(i, id) => {
                            let value = m.list[*i as usize].1;
                            changed |= set_trait(traits, *id, &mut hint, value, order);
                        }
                        shape::Step::Object(i, prefix) => {
                            let value = m.list[*i as usize].1;
                            changed |= apply_object(
                                names, hasher, traits, &mut hint, value, prefix, order,
                            );
                        }
                    }
                }
                self.mark(p);
                return changed;
            }
        }
        body.for_each_sorted_member(|key, value| {
            if value.is_object() {
                let prefix = to_snake_case(key);
                changed |= apply_object(names, hasher, traits, &mut hint, value, &prefix, order);
                return;
            }
            let id = match traits.get(hint) {
                Some(x)
                    if names.is_snake(x.name)
                        && same_bytes(names.get(x.name).as_bytes(), key.as_bytes()) =>
                {
                    x.name
                }
                _ => match names.of_key(hasher, key) {
                    Some(id) => id,
                    None => return,
                },
            };
            changed |= set_trait(traits, id, &mut hint, value, order);
        });
        if fits {
            self.shapes.add(&m, &mut self.names, &self.hasher);
        }
        self.mark(p);
        changed
    }

    #[inline(always)]
    fn mark(&mut self, p: ProfileIdx) {
        let m = &mut self.marked[p as usize];
        if !*m {
            *m = true;
            self.dirty.push(p);
        }
    }

    /// Profiles whose [`ProfileRecord`] changed since the last call, in
    /// ascending order; clears the list.
    pub fn take_dirty(&mut self) -> Vec<ProfileIdx> {
        let mut d = std::mem::take(&mut self.dirty);
        for &p in &d {
            self.marked[p as usize] = false;
        }
        d.sort_unstable();
        d
    }

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
fn id_parts<'b>(
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
struct SegmentIds {
    text: String,
    /// Where each profile's id ends in `text` (it starts where the previous
    /// one ends).
    ends: Vec<u64>,
}

impl SegmentIds {
    /// Appends the next profile's id, given in parts.
    fn push(&mut self, parts: &[&str]) {
        for part in parts {
            self.text.push_str(part);
        }
        self.ends.push(self.text.len() as u64);
    }

    #[inline]
    fn get(&self, p: ProfileIdx) -> &str {
        let p = p as usize;
        let start = if p == 0 { 0 } else { self.ends[p - 1] as usize };
        &self.text[start..self.ends[p] as usize]
    }

    /// Makes room for `n` more ids of `bytes` bytes in all.
    fn reserve(&mut self, n: usize, bytes: usize) {
        self.ends.reserve_exact(n);
        self.text.reserve_exact(bytes);
    }
}

/// An identifier value for [`Engine::process_known`]: `Some(Some(s))` for a
/// string, `Some(None)` for no value or one that is not an identifier, and
/// `None` for a number, which is an identifier too (its text, owned): the
/// general path takes those events.
#[inline(always)]
fn string_id(v: Option<JsonRef<'_>>) -> Option<Option<&str>> {
    match v {
        None => Some(None),
        Some(v) => match v.as_str() {
            Some(s) => Some(Some(s)),
            None if v.is_number() => None,
            None => Some(None),
        },
    }
}

/// Sets trait `id` of a profile's `traits` to `leaf`, looking at `*hint`
/// first; returns whether a value changed. `*hint` moves past it.
#[inline]
fn set_trait(
    traits: &mut Vec<TraitRec>,
    id: NameId,
    hint: &mut usize,
    leaf: JsonRef<'_>,
    order: u64,
) -> bool {
    let at = match traits.get(*hint) {
        Some(x) if x.name == id => Some(*hint),
        _ => traits.iter().position(|x| x.name == id),
    };
    match at {
        Some(k) => {
            let x = &mut traits[k];
            x.order = order;
            *hint = k + 1;
            if leaf.eq_json(&x.value) {
                return false;
            }
            assign(&mut x.value, leaf);
            true
        }
        // An explicit null for a trait the profile lacks changes nothing
        // now, but is kept (as a removal) so a later merge does not bring
        // back an older value from the other profile.
        None => {
            traits.push(TraitRec {
                name: id,
                value: leaf.to_json(),
                order,
            });
            *hint = traits.len();
            leaf.kind() != Kind::Null
        }
    }
}

/// Sets the leaves of an object-valued trait member (named under `prefix`,
/// see `ps_spec::flatten`), looking at `*hint` first; returns whether a
/// value changed.
#[inline]
fn apply_object(
    names: &mut Names,
    hasher: &IdentHasher,
    traits: &mut Vec<TraitRec>,
    hint: &mut usize,
    value: JsonRef<'_>,
    prefix: &str,
    order: u64,
) -> bool {
    let mut changed = false;
    for_each_doc_leaf(value, prefix, |name, leaf| {
        if name.is_empty() {
            return;
        }
        let id = match traits.get(*hint) {
            Some(x) if same_bytes(names.get(x.name).as_bytes(), name.as_bytes()) => x.name,
            _ => names.id(hasher, name),
        };
        changed |= set_trait(traits, id, hint, leaf, order);
    });
    changed
}

/// `*dst = src.to_json()`, reusing a string's buffer.
#[inline]
fn assign(dst: &mut Json, src: JsonRef<'_>) {
    match (dst, src.kind()) {
        (Json::String(d), Kind::Str(s)) => {
            d.clear();
            d.push_str(s);
        }
        (d, _) => *d = src.to_json(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `apply_traits` as it was, on the `serde_json` map of the traits (the
    /// payload as `serde_json` reads it): names from `for_each_leaf`, values
    /// compared and cloned as `serde_json` values.
    fn apply_traits_reference(
        e: &mut Engine,
        p: ProfileIdx,
        body: Option<&serde_json::Map<String, Json>>,
    ) -> bool {
        let Some(body) = body else { return false };
        let order = e.order;
        let (names, hasher) = (&mut e.names, &e.hasher);
        let traits = &mut e.profiles[p as usize].traits;
        let mut changed = false;
        ps_spec::flatten::for_each_leaf(body, "", |name, leaf| {
            if name.is_empty() {
                return;
            }
            let id = names.id(hasher, name);
            match traits.iter_mut().find(|x| x.name == id) {
                Some(x) => {
                    if x.value != *leaf {
                        changed = true;
                        x.value = leaf.clone();
                    }
                    x.order = order;
                }
                None => {
                    changed |= !leaf.is_null();
                    traits.push(TraitRec {
                        name: id,
                        value: leaf.clone(),
                        order,
                    });
                }
            }
        });
        e.mark(p);
        changed
    }

    /// Trait updates read from the tape change exactly what the map version
    /// changed, report the same `changed`, and leave the same snapshot
    /// bytes: on traits with repeated and unsorted keys, keys that name the
    /// same trait (`planName`, `plan_name`), nested objects, arrays holding
    /// objects, and numbers `serde_json` tells apart (`1`, `1.0`, `-0`).
    #[test]
    fn tape_traits_equal_map_traits() {
        use crate::testgen::{key_text, Rng, Tree, NUMBERS};
        const KEYS: [&str; 16] = [
            "plan",
            "email",
            "planName",
            "plan_name",
            "a_b",
            "_x",
            "x_",
            "a__b",
            "",
            "$$",
            "Ü",
            "2fa",
            "n1",
            "A",
            "a",
            "address",
        ];
        const STRINGS: [&str; 5] = ["free", "pro", "", "Pro", "x"];
        fn value(r: &mut Rng, depth: u32) -> Tree {
            match r.below(if depth == 0 { 6 } else { 8 }) {
                0 => Tree::Leaf("null".into()),
                1 => Tree::Leaf(["true", "false"][r.below(2) as usize].into()),
                2 => Tree::Leaf(r.pick(&NUMBERS).into()),
                3 | 4 => {
                    let s = r.pick(&STRINGS);
                    Tree::Leaf(key_text(r, s))
                }
                5 => Tree::Array(
                    (0..r.below(3))
                        .map(|_| value(r, depth.saturating_sub(1)))
                        .collect(),
                ),
                _ => object(r, depth - 1),
            }
        }
        fn object(r: &mut Rng, depth: u32) -> Tree {
            let mut o = Tree::Object(Vec::new());
            for _ in 0..r.below(7) {
                let k = r.pick(&KEYS);
                let v = value(r, depth);
                o.put(r, k, v);
            }
            o
        }
        let mut r = Rng::new(0x2545_F491_4F6C_DD1D);
        let mut hits = 0;
        for round in 0..300 {
            let settings = || Settings::new(&Default::default()).unwrap();
            let (mut a, mut b) = (
                Engine::new(settings(), IdScheme::Sequential, "t"),
                Engine::new(settings(), IdScheme::Sequential, "t"),
            );
            let (pa, pb) = (a.create(&mut Vec::new()), b.create(&mut Vec::new()));
            // Names a store could hold that no key gives: a member under
            // `planName` still names `plan_name`.
            if round % 3 == 0 {
                for (e, p) in [(&mut a, pa), (&mut b, pb)] {
                    for n in ["planName", "A"] {
                        let name = e.names.id(&e.hasher, n);
                        e.profiles[p as usize].traits.push(TraitRec {
                            name,
                            value: Json::from("stored"),
                            order: 0,
                        });
                    }
                }
            }
            // Half the steps replay an earlier step's traits, so that the
            // engine applies them from a remembered key layout.
            let mut seen: Vec<String> = Vec::new();
            for step in 0..40 {
                let text = if !seen.is_empty() && r.below(2) == 0 {
                    seen[r.below(seen.len() as u64) as usize].clone()
                } else {
                    let traits = object(&mut r, 2).text();
                    format!(r#"{{"type":"identify","userId":"u","traits":{traits}}}"#)
                };
                seen.push(text.clone());
                let ev = ps_spec::parse_event_str(&text, &Default::default()).unwrap();
                a.order += 1;
                b.order += 1;
                let got = a.apply_traits(pa, ev.body_ref());
                let want = apply_traits_reference(&mut b, pb, ev.body());
                assert_eq!(got, want, "round {round}, step {step}: {text}");
                assert_eq!(
                    a.record(pa),
                    b.record(pb),
                    "round {round}, step {step}: {text}"
                );
                let (mut sa, mut sb) = (Vec::new(), Vec::new());
                a.encode_snapshot(0..1, &mut sa);
                b.encode_snapshot(0..1, &mut sb);
                assert_eq!(sa, sb, "round {round}, step {step}: {text}");
            }
            hits += a.shapes.hits;
        }
        assert!(hits > 1000, "{hits} events applied from a key layout");
    }

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
