//! Definitions added or changed after events landed (issue 19): "computed
//! = full recompute" must hold for them too, so a start that finds a new or
//! changed definition backfills it from the landed event tables.
//!
//! `_ps_meta` keeps a record of what the stored compute state was built
//! for ([`Record`]): a fingerprint of each definition, the events the facts
//! hold and the paths they were reduced to, each with the events it was
//! read on (`compute_fact`). At open:
//!
//! - the same fingerprints: nothing to do;
//! - otherwise, if the stored facts already hold every event the
//!   definitions now read, and every path on every event it is now read on
//!   (a window or a threshold changed, a definition was removed), they are
//!   narrowed to what is read now;
//! - else the facts are read back from the landed event tables
//!   ([`landed_facts`]), and the stored facts' values win for the paths they
//!   hold (they are the event's own JSON, where a table holds a flattened,
//!   typed copy).
//!
//! Then every live profile is re-evaluated at the next commit with the cause
//! `definition_changed`: values that moved land as rows, and audience
//! membership differences as entered / exited rows. `compute --full` and
//! `--check` read every fact from the landed tables the same way.

use crate::compute::{Cause, Compute, ProfileState};
use crate::compute_fact::Interner;
use crate::error::{Error, Result};
use ps_compute::{EventMatch, Fact};
use ps_identity::{Engine, ProfileIdx};
use ps_spec::naming::{snake_case, to_snake_case};
use ps_spec::time::format_iso;
use ps_spec::Value;
use ps_warehouse::contract::{self as c, Catalog, TableSchema};
use ps_warehouse::{quote, Warehouse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// The `_ps_meta` key of the [`Record`].
pub(crate) const COMPUTE_META: &str = "compute";

/// Message ids of the rows compute emits start with this; those rows are
/// outputs, never facts.
const EMITTED_PREFIX: &str = "ps-compute-";

/// What the stored compute state was built for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// Fingerprint of each definition, by key.
    pub(crate) definitions: BTreeMap<String, String>,
    /// Event names the facts hold; `None` is every event.
    pub(crate) events: Option<BTreeSet<String>>,
    /// Paths the facts were reduced to.
    pub(crate) paths: Vec<Vec<String>>,
    /// Each path with the events it was read on; absent in records written
    /// before facts were narrowed per event name (every path was read on
    /// every event then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reads: Option<Vec<ReadOn>>,
    /// When values were last evaluated, microseconds.
    pub(crate) as_of: Option<i64>,
    /// The earliest and latest times the values held were evaluated at
    /// (`compute::Clock::span`); absent in records written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) span: Option<(i64, i64)>,
}

/// A path and the events it is read on, as a [`Record`] stores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ReadOn {
    /// Event names; `None` is every event.
    events: Option<BTreeSet<String>>,
    path: Vec<String>,
}

fn stored_match(events: &Option<BTreeSet<String>>) -> EventMatch {
    match events {
        None => EventMatch::All,
        Some(n) => EventMatch::Names(n.clone()),
    }
}

fn stored_events(m: &EventMatch) -> Option<BTreeSet<String>> {
    match m {
        EventMatch::All => None,
        EventMatch::Names(n) => Some(n.clone()),
    }
}

impl Record {
    fn names(&self) -> EventMatch {
        stored_match(&self.events)
    }

    /// Each path the stored facts hold, with the events it was read on.
    fn reads(&self) -> Vec<(EventMatch, Vec<String>)> {
        match &self.reads {
            Some(r) => r
                .iter()
                .map(|r| (stored_match(&r.events), r.path.clone()))
                .collect(),
            None => self
                .paths
                .iter()
                .map(|p| (self.names(), p.clone()))
                .collect(),
        }
    }
}

/// Whether the events `reads` read `path` on cover `events`.
fn read_on(reads: &[(EventMatch, Vec<String>)], path: &[String], events: &EventMatch) -> bool {
    let mut on = BTreeSet::new();
    for (m, _) in reads.iter().filter(|(_, p)| p[..] == *path) {
        match m {
            EventMatch::All => return true,
            EventMatch::Names(n) => on.extend(n.iter().cloned()),
        }
    }
    covers(&EventMatch::Names(on), events)
}

/// Whether every event `new` matches, `old` matches too.
fn covers(old: &EventMatch, new: &EventMatch) -> bool {
    match (old, new) {
        (EventMatch::All, _) => true,
        (EventMatch::Names(_), EventMatch::All) => false,
        (EventMatch::Names(o), EventMatch::Names(n)) => n.is_subset(o),
    }
}

impl Compute {
    /// The record of what the state is built for, as stored in `_ps_meta`.
    pub(crate) fn record(&self) -> String {
        let r = Record {
            definitions: self.fingerprints.clone(),
            events: stored_events(&self.names),
            paths: self.shared.paths(),
            reads: Some(
                self.reads
                    .iter()
                    .map(|(m, p)| ReadOn {
                        events: stored_events(m),
                        path: p.clone(),
                    })
                    .collect(),
            ),
            as_of: self.last_as_of,
            span: self.clock.span,
        };
        serde_json::to_string(&r).expect("a record serializes")
    }

    /// Brings the stored state up to the current definitions (see the
    /// module docs); `stored` is the `_ps_meta` record, absent for a space
    /// whose state predates it or that had no definitions.
    pub(crate) fn reconcile(
        &mut self,
        wh: &mut dyn Warehouse,
        schema: &str,
        catalog: &Catalog,
        engine: &Engine,
        stored: Option<&str>,
    ) -> Result<()> {
        let old: Record = match stored {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| Error::state(schema, format!("{COMPUTE_META} in _ps_meta: {e}")))?,
            None => Record::default_empty(),
        };
        self.last_as_of = old.as_of;
        if old.definitions == self.fingerprints {
            self.restore_clock(engine, old.span);
            return Ok(());
        }
        let new = self
            .fingerprints
            .iter()
            .filter(|(k, _)| !old.definitions.contains_key(*k))
            .count();
        let changed = self
            .fingerprints
            .iter()
            .filter(|(k, f)| old.definitions.get(*k).is_some_and(|o| o != *f))
            .count();
        let removed = old
            .definitions
            .keys()
            .filter(|k| !self.fingerprints.contains_key(*k))
            .count();
        let old_names = old.names();
        let old_reads = old.reads();
        let from_tables = !covers(&old_names, &self.names)
            || (self.reads.iter()).any(|(m, p)| !read_on(&old_reads, p, m));
        if from_tables {
            let mut landed =
                landed_facts(wh, schema, catalog, engine, &self.names, &mut self.shared)?;
            let mut old_shared = Interner::new(&old_reads);
            for (p, st) in self.profiles.iter_mut() {
                let facts = landed.remove(p).unwrap_or_default();
                st.facts = overlay(
                    facts,
                    std::mem::take(&mut st.facts),
                    &old_names,
                    &self.names,
                    &mut old_shared,
                    &mut self.shared,
                );
            }
            for (p, facts) in landed {
                self.profiles.insert(
                    p,
                    ProfileState {
                        facts,
                        ..ProfileState::default()
                    },
                );
            }
        } else {
            for st in self.profiles.values_mut() {
                let facts = std::mem::take(&mut st.facts);
                st.facts = facts
                    .into_iter()
                    .filter(|f| self.names.matches(&f.name))
                    .map(|f| self.shared.narrow(&f))
                    .collect();
            }
        }
        self.restore_clock(engine, old.span);
        let profiles = self.touch_live(engine, Cause::DefinitionChanged);
        self.dirty.extend(self.profiles.keys().copied());
        // The facts were narrowed or read again: rewrite the state whole.
        self.compact = true;
        tracing::info!(
            space = %schema,
            new,
            changed,
            removed,
            from_tables,
            profiles,
            "compute definitions changed: profiles re-evaluated at the next commit"
        );
        Ok(())
    }

    /// Marks every live profile (canonical, with identifiers) for
    /// re-evaluation; how many.
    pub(crate) fn touch_live(&mut self, engine: &Engine, cause: Cause) -> usize {
        let mut n = 0;
        for p in 0..engine.profile_count() as ProfileIdx {
            if engine.canonical(p) == p && !engine.identifiers_of(p).is_empty() {
                self.touch(p, cause);
                n += 1;
            }
        }
        n
    }
}

impl Record {
    /// The record of a state built for no definition at all.
    fn default_empty() -> Record {
        Record {
            events: Some(BTreeSet::new()),
            ..Record::default()
        }
    }
}

/// The landed facts of one profile with the stored ones laid over them: a
/// landed fact takes the stored fact's values (present or absent) at the
/// paths read on its name both now (`shared`) and when the stored facts
/// were reduced (`old`); a stored fact the tables did not give back stays
/// if it is still read.
fn overlay(
    landed: Vec<Fact>,
    stored: Vec<Fact>,
    old_names: &EventMatch,
    names: &EventMatch,
    old: &mut Interner,
    shared: &mut Interner,
) -> Vec<Fact> {
    let mut stored: HashMap<Box<str>, Fact> = stored
        .into_iter()
        .filter(|f| old_names.matches(&f.name))
        .map(|f| (f.message_id.clone(), f))
        .collect();
    let mut out: Vec<Fact> = landed
        .into_iter()
        .map(|f| match stored.remove(&f.message_id) {
            None => f,
            Some(s) => {
                let was = old.paths_of(&s.name);
                let now = shared.paths_of(&s.name);
                let kept: Vec<&Arc<[String]>> =
                    now.iter().filter(|p| was.iter().any(|w| w == *p)).collect();
                let mut values: Vec<(Arc<[String]>, Json)> = f
                    .values()
                    .iter()
                    .filter(|(k, _)| !kept.iter().any(|p| k[..] == p[..]))
                    .cloned()
                    .collect();
                for p in kept {
                    if let Some(v) = s.get(p).filter(|v| !v.is_null()) {
                        values.push((p.clone(), v.clone()));
                    }
                }
                values.sort_by(|a, b| a.0.cmp(&b.0));
                shared.fact(&s.name, s.timestamp, &s.message_id, values.into())
            }
        })
        .collect();
    out.extend(
        stored
            .into_values()
            .filter(|f| names.matches(&f.name))
            .map(|f| shared.narrow(&f)),
    );
    out.sort_by(|a, b| a.order().cmp(&b.order()));
    out
}

fn get<'a>(event: &'a Json, path: &[String]) -> Option<&'a Json> {
    path.iter().try_fold(event, |v, k| v.get(k))
}

/// Sets `v` at `path`, making the objects on the way; a value already
/// there stays.
fn put(out: &mut Json, path: &[String], v: Json) {
    let mut at = out;
    for (i, k) in path.iter().enumerate() {
        let Json::Object(m) = at else { return };
        if i + 1 == path.len() {
            m.entry(k.clone()).or_insert(v);
            return;
        }
        at = m
            .entry(k.clone())
            .or_insert_with(|| Json::Object(Map::new()));
    }
}

/// The column a path's value lands in: a property of the event's own table
/// (`properties.product.category` → `product_category`) or a context column
/// (`context.page.url` → `context_page_url`), named as `ps_spec::flatten`
/// names them. `None` when the value was not kept: a property whose name a
/// standard column takes is dropped at landing.
fn column_of(path: &[String]) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let joined = |steps: &[String]| -> String {
        steps
            .iter()
            .map(|s| to_snake_case(s).into_owned())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("_")
    };
    match first.as_str() {
        "properties" => {
            let name = joined(rest);
            (!name.is_empty() && !c::reserved_event_columns().contains(&name.as_str()))
                .then_some(name)
        }
        "context" => {
            let name = joined(rest);
            (!name.is_empty()).then(|| format!("context_{name}"))
        }
        _ => None,
    }
}

/// A landed cell as the JSON the event carried: numbers, strings and
/// booleans as they were, timestamps as ISO-8601 text. (Arrays and objects
/// land as JSON text and come back as that text.)
pub(crate) fn json_of(v: Value) -> Option<Json> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(Json::Bool(b)),
        Value::Int(i) => Some(Json::from(i)),
        Value::Float(f) => serde_json::Number::from_f64(f).map(Json::Number),
        Value::Str(s) => Some(Json::String(s)),
        Value::Ts(t) => Some(Json::String(format_iso(t))),
    }
}

/// One landed table read for facts: which of its columns hold which paths.
struct Read<'a> {
    table: &'a TableSchema,
    /// (path, column) for the paths this table holds.
    columns: Vec<(&'a Vec<String>, String)>,
}

impl<'a> Read<'a> {
    fn new(table: &'a TableSchema, paths: &'a [Vec<String>], properties: bool) -> Read<'a> {
        let columns = paths
            .iter()
            .filter(|p| properties || p.first().map(String::as_str) != Some("properties"))
            .filter_map(|p| {
                let col = column_of(p)?;
                table.position(&col).map(|_| (p, col))
            })
            .collect();
        Read { table, columns }
    }

    /// `SELECT id, segment_id, timestamp, <extra>, <path columns>`; calls
    /// `f(id, segment id, timestamp, extra cell, reduced event)` per row.
    fn each(
        &self,
        wh: &mut dyn Warehouse,
        schema: &str,
        extra: Option<&str>,
        f: &mut dyn FnMut(String, Option<String>, Option<i64>, Option<String>, Json),
    ) -> Result<()> {
        let mut cols = vec![quote("id"), quote("segment_id"), quote("timestamp")];
        cols.extend(extra.map(quote));
        cols.extend(self.columns.iter().map(|(_, c)| quote(c)));
        let sql = format!(
            "SELECT {} FROM {}",
            cols.join(", "),
            wh.dialect().table(schema, &self.table.name)
        );
        wh.for_each_row(&sql, &mut |r| {
            let mut r = r.into_iter();
            let text = |v: Option<Value>| match v {
                Some(Value::Str(s)) => Some(s),
                _ => None,
            };
            let id = text(r.next()).unwrap_or_default();
            let seg = text(r.next());
            let ts = match r.next() {
                Some(Value::Ts(t)) => Some(t),
                _ => None,
            };
            let extra = match extra {
                Some(_) => text(r.next()),
                None => None,
            };
            let mut event = Json::Object(Map::new());
            for ((path, _), v) in self.columns.iter().zip(r) {
                if let Some(v) = json_of(v) {
                    put(&mut event, path, v);
                }
            }
            f(id, seg, ts, extra, event);
        })?;
        Ok(())
    }
}

/// Every landed event `names` matches, as facts reduced to the paths of
/// `shared`, by
/// canonical profile (through the `segment_id` each row landed with).
/// Compute's own rows are left out. Tracks are read from `tracks` (names,
/// context) and their properties from their own tables; the other calls
/// from their table.
pub(crate) fn landed_facts(
    wh: &mut dyn Warehouse,
    schema: &str,
    catalog: &Catalog,
    engine: &Engine,
    names: &EventMatch,
    shared: &mut Interner,
) -> Result<HashMap<ProfileIdx, Vec<Fact>>> {
    let paths = shared.paths();
    let paths = &paths[..];
    let by_segment: HashMap<&str, ProfileIdx> = (0..engine.profile_count() as ProfileIdx)
        .map(|p| (engine.segment_id(p), p))
        .collect();
    let mut out: HashMap<ProfileIdx, Vec<Fact>> = HashMap::new();
    let mut add = |name: &str, id: String, seg: Option<String>, ts: Option<i64>, event: Json| {
        let (Some(seg), Some(ts)) = (seg, ts) else {
            return;
        };
        if id.starts_with(EMITTED_PREFIX) {
            return;
        }
        if let Some(p) = by_segment.get(seg.as_str()) {
            out.entry(engine.canonical(*p))
                .or_default()
                .push(shared.fact_of(name, ts, &id, &event));
        }
    };
    for (table, name) in [
        ("pages", "Page Viewed"),
        ("screens", "Screen Viewed"),
        ("identifies", "identify"),
        ("groups", "group"),
        ("aliases", "alias"),
    ] {
        let Some(t) = catalog.get(table) else {
            continue;
        };
        if !names.matches(name) {
            continue;
        }
        // identify and group carry `traits`, which no path reads.
        let read = Read::new(t, paths, matches!(table, "pages" | "screens"));
        read.each(wh, schema, None, &mut |id, seg, ts, _, ev| {
            add(name, id, seg, ts, ev)
        })?;
    }
    let wants_tracks = match names {
        EventMatch::All => true,
        EventMatch::Names(n) => n.iter().any(|n| {
            !matches!(
                n.as_str(),
                "Page Viewed" | "Screen Viewed" | "identify" | "group" | "alias"
            )
        }),
    };
    if let (true, Some(t)) = (wants_tracks, catalog.get("tracks")) {
        // (name, message id, segment id, timestamp, reduced event)
        type Track = (String, String, Option<String>, Option<i64>, Json);
        let mut tracks: Vec<Track> = Vec::new();
        Read::new(t, paths, false).each(
            wh,
            schema,
            Some("event_text"),
            &mut |id, seg, ts, name, ev| {
                let name = name.unwrap_or_default();
                if names.matches(&name) && !id.starts_with(EMITTED_PREFIX) {
                    tracks.push((name, id, seg, ts, ev));
                }
            },
        )?;
        // The properties, from each track's own table.
        let has_properties = paths
            .iter()
            .any(|p| p.first().map(String::as_str) == Some("properties"));
        if has_properties && !tracks.is_empty() {
            let at: HashMap<String, usize> = tracks
                .iter()
                .enumerate()
                .map(|(i, t)| (t.1.clone(), i))
                .collect();
            let own: BTreeSet<String> = tracks.iter().map(|t| snake_case(&t.0)).collect();
            let props: Vec<Vec<String>> = paths
                .iter()
                .filter(|p| p.first().map(String::as_str) == Some("properties"))
                .cloned()
                .collect();
            for name in own {
                let Some(t) = catalog
                    .get(&name)
                    .filter(|_| c::is_free_event_table_name(&name))
                else {
                    continue;
                };
                Read::new(t, &props, true).each(wh, schema, None, &mut |id, _, _, _, ev| {
                    if let Some(i) = at.get(&id) {
                        for p in &props {
                            if let Some(v) = get(&ev, p) {
                                put(&mut tracks[*i].4, p, v.clone());
                            }
                        }
                    }
                })?;
            }
        }
        for (name, id, seg, ts, ev) in tracks {
            add(&name, id, seg, ts, ev);
        }
    }
    for facts in out.values_mut() {
        facts.sort_by(|a, b| a.order().cmp(&b.order()));
    }
    Ok(out)
}

/// What `compute --check` found: the values a recompute from the landed
/// event tables gives, against the values stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComputeCheck {
    /// The time values were recomputed at.
    pub as_of: i64,
    /// Live profiles compared.
    pub profiles: usize,
    /// Profiles with at least one differing value.
    pub differing: usize,
    /// Differing profiles per key.
    pub by_key: BTreeMap<String, usize>,
    /// The segment ids of the first differing profiles (at most 10).
    pub examples: Vec<String>,
}

impl crate::space::Space {
    /// Recomputes every live profile's computed values from the landed
    /// event tables at `as_of` (default: when values were last evaluated)
    /// and compares them with the values stored, changing nothing. `None`
    /// without definitions.
    pub fn compute_check(
        &self,
        wh: &mut dyn Warehouse,
        as_of: Option<i64>,
    ) -> Result<Option<ComputeCheck>> {
        let Some(c) = &self.compute else {
            return Ok(None);
        };
        let as_of = as_of
            .or(c.last_as_of)
            .unwrap_or_else(ps_spec::time::now_micros);
        let mut landed = landed_facts(
            wh,
            &self.cfg.space,
            &self.catalog,
            &self.engine,
            &c.names,
            &mut Interner::new(&c.reads),
        )?;
        let mut out = ComputeCheck {
            as_of,
            ..ComputeCheck::default()
        };
        let none = BTreeMap::new();
        for p in 0..self.engine.profile_count() as ProfileIdx {
            if self.engine.canonical(p) != p || self.engine.identifiers_of(p).is_empty() {
                continue;
            }
            out.profiles += 1;
            let stored = c.profiles.get(&p).map_or(&none, |s| &s.values);
            let facts = landed.remove(&p).unwrap_or_default();
            let sql = c.profiles.get(&p).map_or(&none, |s| &s.sql);
            let (values, _, _) =
                Compute::evaluate_profile(&c.defs, &self.engine, p, facts, sql, stored, as_of);
            let mut differs = false;
            for k in c.fingerprints.keys() {
                if values.get(k) != stored.get(k) {
                    *out.by_key.entry(k.clone()).or_default() += 1;
                    differs = true;
                }
            }
            if differs {
                out.differing += 1;
                if out.examples.len() < 10 {
                    out.examples.push(self.engine.segment_id(p).to_owned());
                }
            }
        }
        Ok(Some(out))
    }

    /// Rebuilds every profile's facts from the landed event tables alone;
    /// the next commit re-evaluates every live profile (cause `recompute`)
    /// and lands what changed. The number of profiles, `None` without
    /// definitions.
    pub fn compute_full(&mut self, wh: &mut dyn Warehouse) -> Result<Option<usize>> {
        let Some(c) = &mut self.compute else {
            return Ok(None);
        };
        let mut landed = landed_facts(
            wh,
            &self.cfg.space,
            &self.catalog,
            &self.engine,
            &c.names,
            &mut c.shared,
        )?;
        for (p, st) in c.profiles.iter_mut() {
            st.facts = landed.remove(p).unwrap_or_default();
        }
        for (p, facts) in landed {
            c.profiles.insert(
                p,
                ProfileState {
                    facts,
                    ..ProfileState::default()
                },
            );
        }
        // Facts of events not landed yet (this transaction's) go on top.
        c.settle(&self.engine);
        c.dirty.extend(c.profiles.keys().copied());
        c.compact = true;
        Ok(Some(c.touch_live(&self.engine, Cause::Recompute)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn columns_are_named_as_flattening_names_them() {
        assert_eq!(
            column_of(&path(&["properties", "revenue"])).as_deref(),
            Some("revenue")
        );
        assert_eq!(
            column_of(&path(&["properties", "product", "categoryName"])).as_deref(),
            Some("product_category_name")
        );
        assert_eq!(
            column_of(&path(&["context", "page", "url"])).as_deref(),
            Some("context_page_url")
        );
        // Dropped at landing: a standard column has the name.
        assert_eq!(column_of(&path(&["properties", "name"])), None);
    }

    #[test]
    fn stored_values_win_at_the_paths_they_hold() {
        let p_rev = path(&["properties", "revenue"]);
        let p_cur = path(&["properties", "currency"]);
        let mut shared = Interner::reading_all(&[p_cur.clone(), p_rev.clone()]);
        // The stored facts were reduced to `revenue` alone.
        let mut old = Interner::reading_all(std::slice::from_ref(&p_rev));
        let event = serde_json::json!({"properties": {"revenue": 10.0, "currency": "USD"}});
        let landed = vec![shared.fact_of("Order Completed", 5, "m1", &event)];
        let stored = vec![
            Fact::new(
                "Order Completed",
                5,
                "m1",
                serde_json::json!({"properties": {"revenue": 10}}),
            ),
            Fact::new("Order Completed", 3, "m0", serde_json::json!({})),
        ];
        let names = EventMatch::Names(["Order Completed".to_owned()].into());
        let out = overlay(landed, stored, &names, &names, &mut old, &mut shared);
        assert_eq!(out.len(), 2);
        assert_eq!(&*out[0].message_id, "m0");
        let expected = serde_json::json!({"properties": {"revenue": 10, "currency": "USD"}});
        assert_eq!(
            out[1],
            shared.fact_of("Order Completed", 5, "m1", &expected)
        );
    }
}
