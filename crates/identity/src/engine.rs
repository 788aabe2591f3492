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

// Lower modules first: the engine's pieces, which import nothing from here.
mod effect;
mod hasher;
mod index;
mod names;
mod record;
mod segment_id;
mod shape;
mod stored;
mod traits;
// Methods of `Engine` kept beside it: its persistent state, binary
// snapshots and privacy requests.
mod persist;
mod privacy;
mod snapshot;
#[cfg(test)]
mod tests;

pub use effect::{Conflict, Effect, Forgotten, IdentIdx, Outcome, ProfileIdx, Rule};
pub use segment_id::make_id;
pub use snapshot::newest_cover;
pub use stored::{EngineMeta, ProfileRecord, RestoreError};

use crate::bytes::same_bytes;
use crate::extract::{device_ids, extract, Candidate, Candidates};
use crate::settings::{IdScheme, Settings, TypeId, IDENTIFIER_CAP, MERGE_CAP};
use hasher::IdentHasher;
use index::Index;
use names::Names;
use ps_spec::naming::to_snake_case;
use ps_spec::tape::JsonRef;
use ps_spec::{Event, EventType};
use record::{IdentRec, Profile};
use segment_id::{id_parts, SegmentIds};
use serde_json::Value as Json;
use smallvec::SmallVec;
use traits::{apply_object, set_trait};

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
