//! Computed traits and audiences in the flow (issue 19): after the identity
//! engine has placed an event on its canonical profile, the facts the
//! space's definitions need are kept per canonical profile; when the last
//! batch of a transaction is prepared, every profile the transaction
//! touched (by an event or a merge) is re-evaluated with `ps_compute`'s
//! reference evaluator at that batch's `as_of`, and each change lands as
//! rows (`Space::compute_rows`).
//!
//! **State.** Per canonical profile: the *facts* (each matching event's
//! name, timestamp, message id and only the values the definitions read),
//! kept sorted by (timestamp, message id) so the state, and the order the
//! evaluator sums floats in, never depend on arrival order; the values last
//! emitted (what `profile_traits` shows); the number of transitions per
//! audience and of emitted changes (for deterministic message ids).
//!
//! **Exact on merges.** When profile B merges into A, A's facts become the
//! union of both (count 2 + 3 = 5); B's emitted values go with B's
//! `profile_traits` row, which becomes `merged_to` A.
//!
//! **Incremental = full.** Values are never updated in place: a touched
//! profile's values are `ps_compute::computed_value` / `audience_members`
//! over all of its facts, which are the profile's matching events reduced to
//! the paths definitions read. The evaluator reads nothing else, so the
//! values equal a full recompute over all of the profile's events
//! (`crates/pipeline/tests/compute_model.rs`).

use crate::compute_fact::Interner;
use crate::config::Source;
use ps_compute::{
    audience_members, computed_value, explain, fact_name, Condition, Definitions, EventMatch,
    Expiry, Fact, Kind, Path, Profile,
};
use ps_identity::{Effect, Engine, Outcome, ProfileIdx};
use ps_spec::{Event, Value};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Why a profile is re-evaluated (the `cause` of a transition's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Cause {
    /// One of its events arrived.
    Event,
    /// Another profile merged into it.
    Merge,
    /// Time passed (`serve`'s tick).
    Tick,
    /// A definition is new or changed since the state was written: the
    /// profile was backfilled from the landed events.
    DefinitionChanged,
    /// `compute --full`: every profile recomputed from the landed events.
    Recompute,
    /// A SQL trait's query gave the profile new values.
    SqlTrait,
}

impl Cause {
    fn name(self) -> &'static str {
        match self {
            Cause::Event => "event",
            Cause::Merge => "merge",
            Cause::Tick => "tick",
            Cause::DefinitionChanged => "definition_changed",
            Cause::Recompute => "recompute",
            Cause::SqlTrait => "sql_trait",
        }
    }
}

/// One canonical profile's compute state.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ProfileState {
    /// Its matching events, reduced, sorted by (timestamp, message id).
    pub(crate) facts: Vec<Fact>,
    /// The values last emitted, by key (absent: NULL).
    pub(crate) values: BTreeMap<String, Json>,
    /// Transitions emitted per audience.
    pub(crate) transitions: BTreeMap<String, u64>,
    /// Changes emitted (numbers the `identifies` rows' message ids).
    pub(crate) changes: u64,
    /// Values SQL traits' queries gave, by column.
    pub(crate) sql: BTreeMap<String, Json>,
    /// Every fact it holds but `fresh` is in `_ps_compute` rows that load
    /// back into it, so its next row needs only `fresh`
    /// (`compute_state::layers`).
    pub(crate) logged: bool,
    /// Facts it gained since its last row, while `logged`.
    pub(crate) fresh: Vec<Fact>,
}

impl ProfileState {
    /// Adds `new`, sorted, to the facts.
    fn add_sorted(&mut self, new: Vec<Fact>) {
        // Most events arrive after the profile's latest: appending then
        // reads one fact, where a merge would move the whole history.
        match (self.facts.last(), new.first()) {
            (Some(x), Some(f)) if x.order() > f.order() => self.absorb(new),
            _ => self.facts.extend(new),
        }
    }

    fn absorb(&mut self, other: Vec<Fact>) {
        let mine = std::mem::take(&mut self.facts);
        let mut all = Vec::with_capacity(mine.len() + other.len());
        let (mut a, mut b) = (mine.into_iter().peekable(), other.into_iter().peekable());
        loop {
            let take_a = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => x.order() <= y.order(),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            all.push(if take_a { a.next() } else { b.next() }.expect("peeked"));
        }
        self.facts = all;
    }
}

/// A change of one profile's computed values, to be landed as rows.
#[derive(Debug)]
pub(crate) struct Change {
    /// The profile; its values now are its state's `values` (absent:
    /// NULL).
    pub(crate) profile: ProfileIdx,
    /// The keys that changed, with their new value (`Null` when gone).
    pub(crate) changed: Vec<(String, Json)>,
    /// Audience transitions: key, entered (or exited), transition number,
    /// reason.
    pub(crate) transitions: Vec<(String, bool, u64, Json)>,
    /// Its change number.
    pub(crate) number: u64,
}

/// A space's compute state and definitions.
#[derive(Debug)]
pub(crate) struct Compute {
    pub(crate) defs: Arc<Definitions>,
    /// Events any definition looks at.
    pub(crate) names: EventMatch,
    /// Each path (from the event's root) a definition reads, with the
    /// events it is read on (sorted by path).
    pub(crate) reads: Vec<(EventMatch, Vec<String>)>,
    /// What facts share (names, paths).
    pub(crate) shared: Interner,
    /// A fingerprint of each definition by key (stored in `_ps_meta`, so a
    /// start sees which definitions are new or changed).
    pub(crate) fingerprints: BTreeMap<String, String>,
    /// When values were last evaluated (`compute --check` compares there).
    pub(crate) last_as_of: Option<i64>,
    /// Column value of each key: its kind (`None` for audiences).
    kinds: BTreeMap<String, Option<Kind>>,
    pub(crate) profiles: hashbrown::HashMap<ProfileIdx, ProfileState>,
    /// Facts observed since the last evaluation, each with the profile
    /// that was canonical when it arrived. They join their profiles' state
    /// together when the transaction's values are evaluated
    /// ([`Compute::settle`]): a profile's state is then found once per
    /// transaction, not once per event, and its facts come sorted.
    pending: Vec<(ProfileIdx, Fact)>,
    /// Profiles to re-evaluate at the transaction's end, with why. This
    /// and `dirty` change at every event: hashed (foldhash), and sorted
    /// where they are read, so output order stays deterministic.
    touched: hashbrown::HashMap<ProfileIdx, Cause>,
    /// Profiles whose state changed since the last commit (persisted then).
    pub(crate) dirty: hashbrown::HashSet<ProfileIdx>,
    /// A fixed evaluation time (`--as-of`); else each batch's load time.
    pub(crate) as_of: Option<i64>,
    /// Profiles the last evaluation re-evaluated.
    pub(crate) evaluated: u64,
    /// The source of every row compute emits (`[compute] source_id`).
    pub(crate) source: Arc<Source>,
    /// When each profile's values can next change with time alone.
    pub(crate) clock: Clock,
    /// Rows in `_ps_compute`, the newest row's layer number, and whether
    /// the next commit rewrites the table whole (`compute_state::layers`).
    pub(crate) log_rows: u64,
    pub(crate) layer: u64,
    pub(crate) compact: bool,
}

/// The expiry index: profiles by the earliest instant their values can
/// change with no new event (`ps_compute::Expiry`), so a tick re-evaluates
/// only those whose instant has come. Kept lazily: an evaluation only notes
/// the profile and the time its values hold at (`stale`); the next tick
/// computes their instants, then takes every profile due.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    expiry: Expiry,
    /// Profiles evaluated since their instant was computed, with the time
    /// their values hold at.
    stale: HashMap<ProfileIdx, i64>,
    /// (instant, profile), and each profile's instant.
    index: BTreeSet<(i64, ProfileIdx)>,
    at: HashMap<ProfileIdx, i64>,
    /// The earliest and latest `as_of` the values held were evaluated at
    /// (persisted in the `_ps_meta` record). A tick at a time before the
    /// latest re-evaluates every profile (time went back); a tick at or
    /// after it leaves every value equal to a recompute at the tick's time,
    /// so both become that time.
    pub(crate) span: Option<(i64, i64)>,
    /// A tick was asked for: the next evaluation takes the profiles due at
    /// its `as_of`.
    ticking: bool,
    /// Some profile was due when the tick was asked for.
    due: bool,
}

impl Clock {
    fn forget(&mut self, p: ProfileIdx) {
        self.stale.remove(&p);
        if let Some(t) = self.at.remove(&p) {
            self.index.remove(&(t, p));
        }
    }

    fn evaluated(&mut self, p: ProfileIdx, as_of: i64) {
        self.forget(p);
        self.stale.insert(p, as_of);
    }

    /// Whether `as_of` is before a time values were evaluated at, where
    /// time matters at all.
    fn went_back(&self, as_of: i64) -> bool {
        !self.expiry.timeless() && self.span.is_some_and(|(_, hi)| as_of < hi)
    }

    fn widen(&mut self, as_of: i64) {
        self.span = Some(match self.span {
            None => (as_of, as_of),
            Some((lo, hi)) => (lo.min(as_of), hi.max(as_of)),
        });
    }
}

fn collect_condition(
    c: &Condition,
    names: &mut Vec<EventMatch>,
    reads: &mut Vec<(EventMatch, Path)>,
) {
    match c {
        Condition::Event {
            events, filters, ..
        } => {
            names.push(events.clone());
            reads.extend(filters.iter().map(|f| (events.clone(), f.path.clone())));
        }
        Condition::All(v) | Condition::Any(v) | Condition::None(v) => {
            v.iter().for_each(|c| collect_condition(c, names, reads))
        }
        Condition::Trait { .. } | Condition::Audience(_) => {}
    }
}

impl Compute {
    pub(crate) fn new(defs: Arc<Definitions>) -> Compute {
        let mut names = Vec::new();
        let mut reads = Vec::new();
        let mut kinds = BTreeMap::new();
        for t in &defs.traits {
            names.push(t.events.clone());
            let read = t.filters.iter().map(|f| &f.path).chain(&t.property);
            reads.extend(read.map(|p| (t.events.clone(), p.clone())));
            kinds.insert(t.key.clone(), Some(t.kind));
        }
        for a in &defs.audiences {
            collect_condition(&a.condition, &mut names, &mut reads);
            kinds.insert(a.key.clone(), None);
        }
        let names = if names.contains(&EventMatch::All) {
            EventMatch::All
        } else {
            EventMatch::Names(
                names
                    .into_iter()
                    .flat_map(|n| match n {
                        EventMatch::Names(n) => n,
                        EventMatch::All => BTreeSet::new(),
                    })
                    .collect(),
            )
        };
        let mut reads: Vec<(EventMatch, Vec<String>)> = reads
            .into_iter()
            .filter_map(|(m, p)| match p {
                Path::Keys(k) => Some((m, k)),
                Path::Timestamp => None,
            })
            .collect();
        reads.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        reads.dedup();
        let fingerprints = fingerprints(&defs);
        let defs_expiry = defs.clone();
        let s = &defs.settings.source_id;
        let source = Arc::new(Source {
            id: s.clone(),
            name: s.clone(),
            slug: s.clone(),
            write_key: String::new(),
        });
        Compute {
            defs,
            names,
            shared: Interner::new(&reads),
            reads,
            fingerprints,
            last_as_of: None,
            kinds,
            profiles: hashbrown::HashMap::new(),
            pending: Vec::new(),
            touched: hashbrown::HashMap::new(),
            dirty: hashbrown::HashSet::new(),
            as_of: None,
            evaluated: 0,
            source,
            clock: Clock {
                expiry: Expiry::new(&defs_expiry),
                ..Clock::default()
            },
            log_rows: 0,
            layer: 0,
            compact: false,
        }
    }

    /// Takes in one event the engine resolved: merges move the merged
    /// profiles' facts to their canonical profile, and the event's fact (if
    /// a definition looks at it) joins its canonical profile.
    pub(crate) fn observe(&mut self, engine: &Engine, ev: &Event, out: &Outcome, fx: &[Effect]) {
        for e in fx {
            if let Effect::Repointed { segment, .. } = e {
                self.merge_away(engine, *segment);
            }
        }
        let Some(p) = out.canonical.or(out.segment) else {
            return;
        };
        let p = engine.canonical(p);
        self.touch(p, Cause::Event);
        let name = fact_name(ev.kind.as_str(), ev.event.as_deref());
        if self.names.matches(name) {
            let fact =
                (self.shared).fact_on_tape(name, ev.timestamp, &ev.message_id, ev.root_ref());
            self.pending.push((p, fact));
        }
    }

    /// Moves the pending facts into their profiles' state, each to the
    /// profile canonical now (a merge since it arrived moved it to the
    /// survivor, as the merge moved the profile's other facts). Everything
    /// that reads facts settles first.
    pub(crate) fn settle(&mut self, engine: &Engine) {
        if self.pending.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        for (p, _) in pending.iter_mut() {
            *p = engine.canonical(*p);
        }
        // Message ids are unique (duplicates never reach compute), so the
        // order is total and an unstable sort gives one result.
        pending.sort_unstable_by(|a, b| (a.0, a.1.order()).cmp(&(b.0, b.1.order())));
        let mut rest = pending.into_iter().peekable();
        while let Some((p, first)) = rest.next() {
            let mut facts = vec![first];
            while let Some((_, f)) = rest.next_if(|(q, _)| *q == p) {
                facts.push(f);
            }
            let st = self.profiles.entry(p).or_default();
            if st.logged {
                st.fresh.extend(facts.iter().cloned());
            }
            st.add_sorted(facts);
            self.dirty.insert(p);
        }
    }

    pub(crate) fn touch(&mut self, p: ProfileIdx, cause: Cause) {
        let c = self.touched.entry(p).or_insert(cause);
        *c = (*c).max(cause);
    }

    /// `seg` was re-pointed: if it held state and no longer is canonical,
    /// its facts join its canonical profile.
    fn merge_away(&mut self, engine: &Engine, seg: ProfileIdx) {
        let c = engine.canonical(seg);
        if c == seg {
            return;
        }
        if let Some(gone) = self.profiles.remove(&seg) {
            let survivor = self.profiles.entry(c).or_default();
            // The merged-away profile's rows load into the survivor (by
            // canonical profile); what they lack is new to the survivor.
            if survivor.logged {
                let new = if gone.logged {
                    gone.fresh
                } else {
                    gone.facts.clone()
                };
                survivor.fresh.extend(new);
            }
            survivor.absorb(gone.facts);
            // SQL values of the merged-away profile hold until the next run
            // of their query, where the survivor has none of its own.
            for (k, v) in gone.sql {
                survivor.sql.entry(k).or_insert(v);
            }
            self.dirty.insert(seg);
            self.dirty.insert(c);
        }
        self.touched.remove(&seg);
        self.clock.forget(seg);
        self.touch(c, Cause::Merge);
    }

    /// Forgets the state of deleted profiles (privacy `delete`); the next
    /// commit rewrites `_ps_compute` without them.
    pub(crate) fn forget(&mut self, segments: &[ProfileIdx]) {
        self.compact = true;
        // A pending fact's profile was canonical when it arrived, so it is
        // one of the deleted profile's segments even if merged since.
        let gone: hashbrown::HashSet<ProfileIdx> = segments.iter().copied().collect();
        self.pending.retain(|(p, _)| !gone.contains(p));
        for s in segments {
            if self.profiles.remove(s).is_some() {
                self.dirty.insert(*s);
            }
            self.touched.remove(s);
            self.clock.forget(*s);
        }
    }

    /// `[compute] tick`.
    pub(crate) fn tick(&self) -> std::time::Duration {
        self.defs.settings.tick
    }

    /// Whether some profile waits for re-evaluation.
    pub(crate) fn pending(&self) -> bool {
        !self.touched.is_empty() || (self.clock.ticking && self.clock.due)
    }

    /// Asks for a tick: the next evaluation also re-evaluates every profile
    /// whose values can have changed with time alone by its `as_of`.
    /// Whether one is due by `now` (or the fixed `as_of`), so a batch with
    /// no events must still commit.
    pub(crate) fn request_tick(&mut self, engine: &Engine, now: i64) -> bool {
        self.settle(engine);
        self.clock.ticking = true;
        self.reindex(engine);
        let at = self.as_of.unwrap_or(now);
        let back = self.clock.went_back(at);
        self.clock.due = back || self.clock.index.first().is_some_and(|(t, _)| *t <= at);
        self.clock.due
    }

    /// Computes the instant of every profile evaluated since the last
    /// tick (see [`Clock`]).
    fn reindex(&mut self, engine: &Engine) {
        let clock = &mut self.clock;
        if clock.expiry.timeless() {
            clock.stale.clear();
            return;
        }
        for (p, as_of) in std::mem::take(&mut clock.stale) {
            let st = self.profiles.get(&p);
            let mut traits = Map::new();
            for k in clock.expiry.trait_keys() {
                let v = st
                    .and_then(|s| s.values.get(k).or_else(|| s.sql.get(k)))
                    .or_else(|| engine.traits(p).find(|(t, _)| *t == k).map(|(_, v)| v));
                if let Some(v) = v {
                    traits.insert(k.to_owned(), v.clone());
                }
            }
            let facts = st.map_or(&[][..], |s| &s.facts[..]);
            if let Some(t) = clock.expiry.next_change(&traits, facts, as_of) {
                clock.index.insert((t, p));
                clock.at.insert(p, t);
            }
        }
    }

    /// Marks the profiles due at `as_of` for re-evaluation (a tick), or
    /// every profile that can have values when time went back.
    fn take_due(&mut self, engine: &Engine, as_of: i64) {
        self.reindex(engine);
        let back = self.clock.went_back(as_of);
        let due: Vec<ProfileIdx> = if back {
            self.clock.index.clear();
            self.clock.at.clear();
            let mut all: BTreeSet<ProfileIdx> = self.profiles.keys().copied().collect();
            if self.clock.expiry.reads_trait_times() {
                all.extend(live(engine));
            }
            all.into_iter().collect()
        } else {
            let mut due = Vec::new();
            while let Some(&(t, p)) = self.clock.index.first() {
                if t > as_of {
                    break;
                }
                self.clock.index.pop_first();
                self.clock.at.remove(&p);
                due.push(p);
            }
            due
        };
        for p in due {
            self.touch(p, Cause::Tick);
        }
    }

    /// After a restart: every profile that can have values is noted as
    /// evaluated at the earliest time the stored values hold at, so the
    /// first tick computes instants no later than the true ones. A state
    /// whose times are unknown is re-evaluated whole at the first tick.
    pub(crate) fn restore_clock(&mut self, engine: &Engine, span: Option<(i64, i64)>) {
        let span = match span {
            Some(s) => Some(s),
            None if self.profiles.is_empty() => None,
            None => Some((i64::MIN, i64::MAX)),
        };
        self.clock.span = span;
        let Some((lo, _)) = span else { return };
        let mut all: Vec<ProfileIdx> = self.profiles.keys().copied().collect();
        if self.clock.expiry.reads_trait_times() {
            all.extend(live(engine));
        }
        for p in all {
            self.clock.stale.insert(p, lo);
        }
    }

    /// The values last emitted for `p`'s canonical profile.
    pub(crate) fn values(&self, engine: &Engine, p: ProfileIdx) -> Option<&BTreeMap<String, Json>> {
        self.profiles
            .get(&engine.canonical(p))
            .map(|s| &s.values)
            .filter(|v| !v.is_empty())
    }

    /// The current values of `p` at `as_of`, from its facts, its custom
    /// traits, SQL traits and identifiers (the reference evaluator's input).
    /// SQL traits are values of their own, and traits audiences may read.
    pub(crate) fn evaluate_profile(
        defs: &Definitions,
        engine: &Engine,
        p: ProfileIdx,
        facts: Vec<Fact>,
        sql: &BTreeMap<String, Json>,
        prev: &BTreeMap<String, Json>,
        as_of: i64,
    ) -> (BTreeMap<String, Json>, Profile, BTreeMap<String, bool>) {
        let mut values = sql.clone();
        for t in &defs.traits {
            let v = computed_value(t, &facts, as_of);
            if !v.is_null() {
                values.insert(t.key.clone(), v);
            }
        }
        let mut traits: Map<String, Json> = engine
            .traits(p)
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect();
        for (k, v) in &values {
            traits.insert(k.clone(), v.clone());
        }
        let identified = engine
            .identifiers_of(p)
            .iter()
            .any(|(t, _)| t == "user_id" || t == "email");
        let profile = Profile {
            traits,
            identified,
            facts,
        };
        let members = audience_members(&defs.audiences, &profile, as_of);
        for a in &defs.audiences {
            let member = members.get(&a.key).copied().unwrap_or(false);
            if member || prev.contains_key(&a.key) {
                values.insert(a.key.clone(), Json::Bool(member));
            }
        }
        (values, profile, members)
    }

    /// Re-evaluates the touched profiles at `as_of`; the changes, by
    /// profile number.
    pub(crate) fn evaluate(&mut self, engine: &Engine, as_of: i64) -> Vec<Change> {
        self.settle(engine);
        let ticking = std::mem::take(&mut self.clock.ticking);
        self.clock.due = false;
        if ticking {
            self.take_due(engine, as_of);
        }
        // Each profile is evaluated from its own state alone, so the
        // states are taken out and evaluated on the machine's cores (the
        // end of a transaction is serial work the landing thread waits
        // for), then put back in profile order.
        let mut touched: Vec<(ProfileIdx, Cause)> = self
            .touched
            .drain()
            .map(|(p, cause)| (engine.canonical(p), cause))
            .collect();
        touched.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        touched.dedup_by_key(|(p, _)| *p);
        self.evaluated = touched.len() as u64;
        self.last_as_of = Some(as_of);
        let jobs: Vec<(ProfileIdx, Cause, ProfileState)> = touched
            .into_iter()
            .map(|(p, cause)| (p, cause, self.profiles.remove(&p).unwrap_or_default()))
            .collect();
        let (defs, kinds) = (&*self.defs, &self.kinds);
        let run = |jobs: Vec<(ProfileIdx, Cause, ProfileState)>| -> Vec<(ProfileIdx, ProfileState, Option<Change>)> {
            jobs.into_iter()
                .map(|(p, cause, st)| {
                    let (st, change) = evaluate_one(defs, kinds, engine, p, cause, st, as_of);
                    (p, st, change)
                })
                .collect()
        };
        let done = on_cores(jobs, cores(), run);
        let mut changes = Vec::new();
        for (p, st, change) in done {
            if let Some(ch) = change {
                self.dirty.insert(p);
                changes.push(ch);
            }
            if st != ProfileState::default() {
                self.profiles.insert(p, st);
            }
            self.clock.evaluated(p, as_of);
        }
        if ticking {
            // Every profile not re-evaluated had no instant of change up to
            // `as_of`: all values now hold at `as_of`.
            self.clock.span = Some((as_of, as_of));
        } else if self.evaluated > 0 {
            self.clock.widen(as_of);
        }
        changes
    }

    /// The column value of a computed key: count / unique_count BIGINT,
    /// sum / avg / min / max DOUBLE, unique_list JSON text, audiences
    /// BOOLEAN, first / last / most_frequent the property's own type.
    pub(crate) fn cell(&self, key: &str, v: &Json) -> Value {
        match (self.kinds.get(key), v) {
            (_, Json::Null) => Value::Null,
            (Some(Some(Kind::Count | Kind::UniqueCount)), v) => {
                v.as_i64().map_or(Value::Null, Value::Int)
            }
            (Some(Some(Kind::Sum | Kind::Avg | Kind::Min | Kind::Max)), v) => {
                v.as_f64().map_or(Value::Null, Value::Float)
            }
            (Some(Some(Kind::UniqueList)), v) => Value::Str(v.to_string()),
            (Some(None), Json::Bool(b)) => Value::Bool(*b),
            (_, v) => Value::from_json(v),
        }
    }
}

/// The machine's cores, at most four.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// `f` over `items` cut into one run of consecutive items per thread, on
/// `threads` threads; the results in the items' order.
pub(crate) fn on_cores<I: Send, O: Send>(
    mut items: Vec<I>,
    threads: usize,
    f: impl Fn(Vec<I>) -> Vec<O> + Sync,
) -> Vec<O> {
    if threads < 2 || items.len() < 2 {
        return f(items);
    }
    let size = items.len().div_ceil(threads);
    let mut parts = Vec::with_capacity(threads);
    while items.len() > size {
        let rest = items.split_off(size);
        parts.push(std::mem::replace(&mut items, rest));
    }
    parts.push(items);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| s.spawn(move || f(part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("compute work does not panic"))
            .collect()
    })
}

/// Re-evaluates profile `p` from its state `st` at `as_of` (see
/// [`Compute::evaluate`]): its new state, and the change to land if any
/// value moved.
fn evaluate_one(
    defs: &Definitions,
    kinds: &BTreeMap<String, Option<Kind>>,
    engine: &Engine,
    p: ProfileIdx,
    cause: Cause,
    mut st: ProfileState,
    as_of: i64,
) -> (ProfileState, Option<Change>) {
    let facts = std::mem::take(&mut st.facts);
    let (mut values, profile, members) =
        Compute::evaluate_profile(defs, engine, p, facts, &st.sql, &st.values, as_of);
    // A removed definition stops updating and its last value stays
    // (issue 19), so the snapshot rows keep showing it.
    for (k, v) in &st.values {
        if !kinds.contains_key(k) {
            values.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let mut changed = Vec::new();
    let keys: BTreeSet<&String> = values.keys().chain(st.values.keys()).collect();
    for k in keys {
        let (old, new) = (st.values.get(k), values.get(k));
        if old != new {
            changed.push((k.clone(), new.cloned().unwrap_or(Json::Null)));
        }
    }
    let mut transitions = Vec::new();
    for a in &defs.audiences {
        let was = st.values.get(&a.key) == Some(&Json::Bool(true));
        let is = members.get(&a.key).copied().unwrap_or(false);
        if was != is {
            let n = st.transitions.entry(a.key.clone()).or_default();
            *n += 1;
            let mut reason = explain(a, &profile, &members, as_of);
            if let Some(o) = reason.as_object_mut() {
                o.insert("cause".into(), Json::from(cause.name()));
                o.insert("as_of".into(), Json::from(ps_spec::time::format_iso(as_of)));
            }
            transitions.push((a.key.clone(), is, *n, reason));
        }
    }
    st.facts = profile.facts;
    if changed.is_empty() {
        return (st, None);
    }
    st.changes += 1;
    st.values = values;
    let change = Change {
        profile: p,
        changed,
        transitions,
        number: st.changes,
    };
    (st, Some(change))
}

/// Every live profile: canonical, with identifiers.
pub(crate) fn live(engine: &Engine) -> impl Iterator<Item = ProfileIdx> + '_ {
    (0..engine.profile_count() as ProfileIdx)
        .filter(move |p| engine.canonical(*p) == *p && !engine.identifiers_of(*p).is_empty())
}

/// A fingerprint of each computed trait and audience: a hash of its checked
/// form, which holds everything its values depend on (an audience's
/// references to traits and audiences are by key, and those have their own).
fn fingerprints(defs: &Definitions) -> BTreeMap<String, String> {
    use sha1::{Digest, Sha1};
    let hash = |text: String| hex::encode(Sha1::digest(text.as_bytes()));
    defs.traits
        .iter()
        .map(|t| (t.key.clone(), hash(format!("{t:?}"))))
        .chain(
            defs.audiences
                .iter()
                .map(|a| (a.key.clone(), hash(format!("{a:?}")))),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::on_cores;

    #[test]
    fn work_on_cores_comes_back_in_order() {
        for n in [0, 1, 2, 7, 10] {
            let items: Vec<u32> = (0..n).collect();
            let want: Vec<u32> = items.iter().map(|i| i * 2).collect();
            for threads in [1, 2, 3, 4, 16] {
                let got = on_cores(items.clone(), threads, |part| {
                    part.into_iter().map(|i| i * 2).collect()
                });
                assert_eq!(got, want, "{n} items on {threads} threads");
            }
        }
    }
}
