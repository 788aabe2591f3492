//! A space's live state and the batch that turns events into rows.
//!
//! [`Space::open`] brings back everything a sync needs from the warehouse —
//! the catalog of tables and columns, the identity engine's state, the
//! sequence counter and the set of message ids already landed — so a sync that
//! follows another continues it exactly. [`Space::add`] runs one event through
//! validation, deduplication and the identity engine and appends its rows to a
//! [`Batch`]; [`Space::commit`] lands the batch in one warehouse transaction
//! together with the engine state and the materialized tables.
//!
//! If a commit fails the in-memory state is ahead of the warehouse, so the
//! `Space` must be dropped and opened again; [`Space::commit`] consumes the
//! batch and callers treat any error as fatal for this `Space`.

use crate::config::{Source, SpaceConfig};
use crate::error::{Error, Result};
use crate::state::RecoveryTimings;
use crate::stats::SyncStats;
use hashbrown::HashSet;
use ps_identity::{Effect, Engine, EngineMeta, IdScheme, ProfileIdx, Rule, Settings};
use ps_spec::flatten::for_each_doc_leaf;
use ps_spec::naming::snake_case;
use ps_spec::tape::JsonRef;
use ps_spec::{parse_doc, tape::Doc, Arrival, Cell, ColumnType, Event, EventType, Refusal, Value};
use ps_warehouse::contract::{self as c, Catalog, Ddl, TableId};
use ps_warehouse::{RowBuffer, Warehouse};
use serde_json::Value as Json;
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use std::time::Instant;

/// Version of the internal state layout, stored in `_ps_meta`. 2: engine
/// state in `_ps_profiles` as binary snapshot chunks (`crate::state`); 1 held
/// one JSON record per profile.
const STATE_VERSION: &str = "2";

/// `_ps_meta` key set to `1` once `_ps_seen` holds every dedupe key of the
/// space; spaces from before it get their keys from the event tables once.
const SEEN_META: &str = "seen";

/// Where a sync's time went, for `profiles-sync bench`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    pub parse: std::time::Duration,
    pub identity: std::time::Duration,
    pub rows: std::time::Duration,
    pub load: std::time::Duration,
    pub materialize: std::time::Duration,
}

impl Timings {
    pub fn add(&mut self, o: &Timings) {
        self.parse += o.parse;
        self.identity += o.identity;
        self.rows += o.rows;
        self.load += o.load;
        self.materialize += o.materialize;
    }
}

/// Rows waiting to be committed, with the changes they need.
#[derive(Debug, Default)]
pub struct Batch {
    load_time: i64,
    ddl: Vec<Ddl>,
    rows: BTreeMap<String, Vec<Vec<Value>>>,
    /// The event tables' rows, column by column, by `TableId::index`.
    buffers: Vec<RowBuffer>,
    touched: Vec<ProfileIdx>,
    pub stats: SyncStats,
    events: usize,
    checkpoints: Vec<(String, String)>,
    /// Statements run first in the commit's transaction (privacy deletes).
    pub(crate) statements: Vec<String>,
    /// Dedupe keys this batch added to `Space::seen`, persisted with it.
    new_keys: Vec<u128>,
}

impl Batch {
    /// Events accepted into this batch so far.
    pub fn len(&self) -> usize {
        self.events
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0 && self.rows.is_empty() && self.buffers.iter().all(RowBuffer::is_empty)
    }

    pub fn load_time(&self) -> i64 {
        self.load_time
    }

    /// Records an input position (an inbox offset, say) that commits in the
    /// same transaction as the batch's rows: after a crash, the stored
    /// checkpoint and the landed rows always agree. Read back with
    /// [`Space::checkpoint`]. Keys must not start with `_`.
    pub fn set_checkpoint(&mut self, key: &str, value: String) {
        assert!(
            !key.starts_with('_'),
            "checkpoint keys starting with _ are reserved"
        );
        let key = format!("cp:{key}");
        self.checkpoints.retain(|(k, _)| *k != key);
        self.checkpoints.push((key, value));
    }

    fn buffer(&mut self, table: TableId) -> &mut RowBuffer {
        let i = table.index();
        if self.buffers.len() <= i {
            self.buffers.resize_with(i + 1, RowBuffer::new);
        }
        &mut self.buffers[i]
    }

    pub(crate) fn push(&mut self, table: &str, row: Vec<Value>) {
        match self.rows.get_mut(table) {
            Some(v) => v.push(row),
            None => {
                self.rows.insert(table.to_owned(), vec![row]);
            }
        }
    }
}

/// Where an event came from, for refusal reports and `rejected_events`.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// `file.jsonl:12`, `http`, …
    pub place: &'a str,
    /// Source for events without a write key (`--source`).
    pub default_source: Option<usize>,
    /// Write key of the enclosing batch body or HTTP request.
    pub batch_write_key: Option<&'a str>,
}

/// The live state of one space.
#[derive(Debug)]
pub struct Space {
    pub(crate) cfg: SpaceConfig,
    pub(crate) engine: Engine,
    pub(crate) catalog: Catalog,
    pub(crate) seen: hashbrown::HashSet<u128>,
    next_seq: i64,
    last_load: i64,
    reserved_event: HashSet<&'static str>,
    reserved_traits: HashSet<&'static str>,
    /// Shared so each event can hold its source while rows are built.
    sources: Vec<std::sync::Arc<Source>>,
    /// Accumulated since open.
    pub timings: Timings,
    /// `_ps_meta` as of the last commit (checkpoints included).
    meta: BTreeMap<String, String>,
    /// Reused per event body: which columns it has written.
    scratch_written: Vec<bool>,
    /// Text of array/object leaves while they are written (`Cell::from_ref`).
    scratch_text: String,
    /// How long [`Space::open`] took, by part.
    pub recovery: RecoveryTimings,
}

pub(crate) fn state_err(space: &str, message: impl Into<String>) -> Error {
    Error::State {
        space: space.to_owned(),
        message: message.into(),
    }
}

/// Identity of a refused event: where it was and what it said.
pub(crate) fn rejected_key(origin: &str, payload: &str) -> u128 {
    let mut h = Sha1::new();
    h.update(b"rejected\0");
    h.update(origin.as_bytes());
    h.update(b"\0");
    h.update(payload.as_bytes());
    let d = h.finalize();
    u128::from_le_bytes(d[..16].try_into().expect("16 bytes"))
}

/// The dedupe keys stored in `_ps_seen`, compacting its rows when commits
/// have left many.
fn load_seen(
    wh: &mut dyn Warehouse,
    schema: &str,
    catalog: &Catalog,
) -> Result<hashbrown::HashSet<u128>> {
    use crate::state::seen;
    let d = wh.dialect().clone();
    let mut set = hashbrown::HashSet::new();
    let (mut rows, mut bad, mut buf) = (0usize, false, Vec::new());
    wh.for_each_row(
        &format!("SELECT keys FROM {}", d.table(schema, c::STATE_SEEN)),
        &mut |r| {
            rows += 1;
            match r.first() {
                Some(Value::Str(cell)) => {
                    bad |= seen::decode(cell, &mut buf, &mut set).is_none();
                }
                _ => bad = true,
            }
        },
    )?;
    if bad {
        return Err(state_err(
            schema,
            format!("{} holds a row that is not packed keys", c::STATE_SEEN),
        ));
    }
    if rows > seen::COMPACT_ABOVE {
        let keys: Vec<u128> = set.iter().copied().collect();
        write_seen(wh, schema, catalog, &keys, false)?;
    }
    Ok(set)
}

/// The dedupe keys of a space from before `_ps_seen`: every landed message
/// id and refused payload, hashed, and the keys of events deleted by privacy
/// requests (`_ps_forgotten`, where those spaces kept them); written to
/// `_ps_seen` once so later starts read them from there.
fn seen_from_tables(
    wh: &mut dyn Warehouse,
    schema: &str,
    catalog: &Catalog,
) -> Result<hashbrown::HashSet<u128>> {
    let d = wh.dialect().clone();
    let mut keys = Vec::new();
    for t in c::CALL_TABLES {
        if catalog.get(t).is_some() {
            wh.for_each_row(
                &format!("SELECT id FROM {}", d.table(schema, t)),
                &mut |r| {
                    if let Some(Value::Str(id)) = r.first() {
                        keys.push(message_key(id));
                    }
                },
            )?;
        }
    }
    // Refused events are remembered too, so replaying a file does not
    // record its refusals twice.
    wh.for_each_row(
        &format!(
            "SELECT origin, payload FROM {}",
            d.table(schema, c::REJECTED_EVENTS)
        ),
        &mut |r| {
            if let Some(Value::Str(o)) = r.first() {
                let p = match r.get(1) {
                    Some(Value::Str(p)) => p.as_str(),
                    _ => "",
                };
                keys.push(rejected_key(o, p));
            }
        },
    )?;
    if catalog.get(c::STATE_FORGOTTEN).is_some() {
        let mut bad = None;
        wh.for_each_row(
            &format!("SELECT k FROM {}", d.table(schema, c::STATE_FORGOTTEN)),
            &mut |r| {
                if let Some(Value::Str(k)) = r.first() {
                    match u128::from_str_radix(k, 16) {
                        Ok(k) => keys.push(k),
                        Err(_) => bad = Some(k.clone()),
                    }
                }
            },
        )?;
        if let Some(k) = bad {
            return Err(state_err(schema, format!("bad key {k:?} in _ps_forgotten")));
        }
    }
    keys.sort_unstable();
    keys.dedup();
    if !keys.is_empty() {
        write_seen(wh, schema, catalog, &keys, true)?;
    }
    let mut set = hashbrown::HashSet::with_capacity(keys.len());
    set.extend(keys);
    Ok(set)
}

/// Replaces `_ps_seen` with `keys` in rows of [`crate::state::seen::PER_ROW`],
/// in one transaction; `mark` also records in `_ps_meta` that the table is
/// complete.
fn write_seen(
    wh: &mut dyn Warehouse,
    schema: &str,
    catalog: &Catalog,
    keys: &[u128],
    mark: bool,
) -> Result<()> {
    use crate::state::seen;
    let d = wh.dialect().clone();
    let table = |name: &str| {
        catalog
            .get(name)
            .cloned()
            .ok_or_else(|| state_err(schema, format!("table {name} is missing")))
    };
    let (seen_table, meta_table) = (table(c::STATE_SEEN)?, table(c::STATE_META)?);
    let rows: Vec<Vec<Value>> = keys
        .chunks(seen::PER_ROW)
        .enumerate()
        .map(|(i, part)| vec![Value::Int(i as i64), Value::Str(seen::encode(part))])
        .collect();
    transaction(wh, |wh| {
        wh.execute(&format!("DELETE FROM {}", d.table(schema, c::STATE_SEEN)))?;
        wh.append(schema, &seen_table, &rows)?;
        if mark {
            wh.execute(&format!(
                "DELETE FROM {} WHERE key = {}",
                d.table(schema, c::STATE_META),
                ps_warehouse::literal(SEEN_META)
            ))?;
            wh.append(
                schema,
                &meta_table,
                &[vec![Value::Str(SEEN_META.into()), Value::Str("1".into())]],
            )?;
        }
        Ok(())
    })
}

/// Loads the suppressions (`_ps_suppressions`, written by `crate::privacy`)
/// into the engine at [`Space::open`]. (The keys of
/// deleted events need nothing here: they stay in `_ps_seen`.)
fn load_suppressions(wh: &mut dyn Warehouse, schema: &str, engine: &mut Engine) -> Result<()> {
    let d = wh.dialect().clone();
    for r in wh.query(&format!(
        "SELECT external_id_type, external_id_value FROM {}",
        d.table(schema, c::STATE_SUPPRESSIONS)
    ))? {
        if let (Some(Value::Str(t)), Some(Value::Str(v))) = (r.first(), r.get(1)) {
            engine.suppress(t, v);
        }
    }
    Ok(())
}

pub(crate) fn message_key(id: &str) -> u128 {
    let d = Sha1::digest(id.as_bytes());
    u128::from_le_bytes(d[..16].try_into().expect("16 bytes"))
}

impl Space {
    /// Opens (creating if needed) the space's schema and restores its state.
    pub fn open(wh: &mut dyn Warehouse, cfg: SpaceConfig) -> Result<Space> {
        let t_open = Instant::now();
        let mut recovery = RecoveryTimings::default();
        validate_space_name(&cfg.space)?;
        let settings = Settings::new(&cfg.identity)?;
        let schema = cfg.space.clone();
        let mut tables = wh.describe(&schema)?;
        if tables.iter().any(|t| t.name == c::STATE_META) {
            crate::state::check_version(wh, &schema, STATE_VERSION)?;
        }
        // A new space gets every table; an older one the tables added since.
        let missing: Vec<_> = c::fixed_tables()
            .into_iter()
            .filter(|t| !tables.iter().any(|h| h.name == t.name))
            .collect();
        if !missing.is_empty() {
            transaction(wh, |wh| {
                wh.execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {}",
                    wh.dialect().schema(&schema)
                ))?;
                for t in &missing {
                    let sql = wh.dialect().create_table(&schema, t);
                    wh.execute(&sql)?;
                }
                Ok(())
            })?;
            tables = wh.describe(&schema)?;
        }
        // Idempotent, so spaces created before the indexes existed get them.
        let index_ddl: Vec<String> = c::LOOKUP_INDEXES
            .iter()
            .filter_map(|(t, col)| wh.dialect().create_index(&schema, t, col))
            .collect();
        if !index_ddl.is_empty() {
            transaction(wh, |wh| {
                for sql in &index_ddl {
                    wh.execute(sql)?;
                }
                Ok(())
            })?;
        }
        let catalog = Catalog::from_tables(tables);
        for t in c::fixed_tables() {
            let have = catalog
                .get(&t.name)
                .ok_or_else(|| state_err(&schema, format!("table {} is missing", t.name)))?;
            if have.columns.len() < t.columns.len()
                || have.columns[..t.columns.len()] != t.columns[..]
            {
                return Err(state_err(
                    &schema,
                    format!("table {} does not have the expected columns", t.name),
                ));
            }
        }
        let d = wh.dialect().clone();
        let mut meta: BTreeMap<String, String> = BTreeMap::new();
        for r in wh.query(&format!(
            "SELECT key, value FROM {}",
            d.table(&schema, c::STATE_META)
        ))? {
            if let (Some(Value::Str(k)), Some(Value::Str(v))) = (r.first(), r.get(1)) {
                meta.insert(k.clone(), v.clone());
            }
        }
        if let Some(v) = meta.get("version") {
            if v != STATE_VERSION {
                return Err(state_err(
                    &schema,
                    format!("state version {v} is not supported (expected {STATE_VERSION})"),
                ));
            }
        }
        if let Some(s) = meta.get("id_scheme") {
            let want = format!("{:?}", cfg.identity.id_scheme).to_lowercase();
            if *s != want {
                return Err(Error::Config {
                    setting: "identity.id_scheme".into(),
                    message: format!("space {schema:?} was created with id_scheme {s:?}; it cannot change to {want:?}"),
                });
            }
        }
        let engine_meta: EngineMeta = match meta.get("engine") {
            Some(j) => serde_json::from_str(j)
                .map_err(|e| state_err(&schema, format!("engine meta: {e}")))?,
            None => EngineMeta::default(),
        };
        let t = Instant::now();
        // Streamed and decoded row by row: holding the text rows and their
        // bytes at once doubled the peak memory of a restart.
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut bad = None;
        wh.for_each_row(
            &format!("SELECT state FROM {}", d.table(&schema, c::STATE_PROFILES)),
            &mut |r| {
                let td = Instant::now();
                match crate::state::decode_row(r) {
                    Ok(b) => chunks.push(b),
                    Err(m) => bad = Some(m),
                }
                recovery.decode += td.elapsed();
            },
        )?;
        if let Some(m) = bad {
            return Err(state_err(&schema, m));
        }
        recovery.fetch = t.elapsed() - recovery.decode;
        let t = Instant::now();
        let engine = Engine::restore_snapshot(
            settings,
            cfg.identity.id_scheme,
            &schema,
            &engine_meta,
            chunks.iter().map(Vec::as_slice),
        )
        .map_err(|e| state_err(&schema, e.to_string()))?;
        drop(chunks);
        recovery.restore = t.elapsed();
        let t = Instant::now();
        let seen = if meta.get(SEEN_META).map(String::as_str) == Some("1") {
            load_seen(wh, &schema, &catalog)?
        } else {
            let seen = seen_from_tables(wh, &schema, &catalog)?;
            // From here on `_ps_seen` holds every key (a new space's none);
            // the space's meta says so with its next commit.
            meta.insert(SEEN_META.to_owned(), "1".to_owned());
            seen
        };
        recovery.dedupe = t.elapsed();
        let mut engine = engine;
        load_suppressions(wh, &schema, &mut engine)?;
        let next_seq = meta.get("seq").and_then(|s| s.parse().ok()).unwrap_or(1);
        let last_load = meta
            .get("last_load")
            .and_then(|s| s.parse().ok())
            .unwrap_or(i64::MIN);
        let recovery = RecoveryTimings {
            total: t_open.elapsed(),
            ..recovery
        };
        tracing::info!(
            space = %schema,
            profiles = engine.profile_count(),
            dedupe_keys = seen.len(),
            seconds = recovery.total.as_secs_f64(),
            fetch = recovery.fetch.as_secs_f64(),
            restore = recovery.restore.as_secs_f64(),
            dedupe = recovery.dedupe.as_secs_f64(),
            "state recovered"
        );
        Ok(Space {
            sources: cfg
                .sources
                .iter()
                .cloned()
                .map(std::sync::Arc::new)
                .collect(),
            cfg,
            engine,
            catalog,
            seen,
            next_seq,
            last_load,
            reserved_event: c::reserved_event_columns().iter().copied().collect(),
            reserved_traits: c::reserved_trait_names().into_iter().collect(),
            timings: Timings::default(),
            meta,
            scratch_written: Vec::new(),
            scratch_text: String::new(),
            recovery,
        })
    }

    /// A checkpoint committed with an earlier batch ([`Batch::set_checkpoint`]).
    pub fn checkpoint(&self, key: &str) -> Option<&str> {
        self.meta.get(&format!("cp:{key}")).map(String::as_str)
    }

    pub fn config(&self) -> &SpaceConfig {
        &self.cfg
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Starts a batch whose rows carry `load_time` as `uuid_ts`, kept
    /// non-decreasing across batches even if the clock steps back.
    pub fn begin_batch(&mut self, load_time: i64) -> Batch {
        let load_time = load_time.max(self.last_load);
        Batch {
            load_time,
            ..Batch::default()
        }
    }

    /// [`Space::add`] of a payload held as a `serde_json` value (the HTTP
    /// server's, which it amends before the pipeline sees it).
    pub fn add_json(
        &mut self,
        batch: &mut Batch,
        payload: std::result::Result<Json, String>,
        raw: Option<&[u8]>,
        origin: Origin<'_>,
        arrival: Arrival,
    ) -> std::result::Result<(), Refusal> {
        let doc = payload.map(|j| Doc::parse(j.to_string()).expect("serde_json writes JSON"));
        self.add(batch, doc, raw, origin, arrival)
    }

    /// Validates, deduplicates and resolves one payload, adding its rows to
    /// `batch`. A refusal is counted in the batch, and also returned.
    pub fn add(
        &mut self,
        batch: &mut Batch,
        payload: std::result::Result<Doc, String>,
        raw: Option<&[u8]>,
        origin: Origin<'_>,
        arrival: Arrival,
    ) -> std::result::Result<(), Refusal> {
        batch.stats.read += 1;
        let t0 = Instant::now();
        let arrival = Arrival {
            load_time: batch.load_time,
            ..arrival
        };
        let parsed = match payload {
            Err(e) => Err((Refusal::MalformedJson(e), None)),
            Ok(doc) => parse_doc(doc, &arrival, raw).map_err(|(r, d)| (r, Some(d))),
        };
        let resolved = parsed.and_then(|ev| {
            let source = match ev.write_key.as_deref().or(origin.batch_write_key) {
                Some(k) => self
                    .cfg
                    .source_by_key(k)
                    .ok_or_else(|| Refusal::UnknownWriteKey(k.to_owned())),
                None => origin.default_source.ok_or(Refusal::NoSource),
            };
            match source {
                Ok(s) => Ok((ev, s)),
                Err(r) => Err((r, Some(ev.into_doc()))),
            }
        });
        self.timings.parse += t0.elapsed();
        let (ev, source) = match resolved {
            Ok(x) => x,
            Err((refusal, json)) => {
                batch
                    .stats
                    .refuse(refusal.code(), origin.place.to_owned(), refusal.to_string());
                let src = origin
                    .batch_write_key
                    .and_then(|k| self.cfg.source_by_key(k))
                    .or(origin.default_source)
                    .map(|i| self.cfg.sources[i].id.clone());
                let text = match (raw, json) {
                    (Some(r), _) => Some(String::from_utf8_lossy(r).into_owned()),
                    // As `serde_json` writes it (keys sorted), as always.
                    (None, Some(d)) => Some(d.root().to_json().to_string()),
                    (None, None) => None,
                };
                self.reject(batch, src, origin.place, &refusal, text);
                return Err(refusal);
            }
        };
        let key = message_key(&ev.message_id);
        if !self.seen.insert(key) {
            batch.stats.duplicates += 1;
            return Ok(());
        }
        batch.new_keys.push(key);
        self.land(batch, &ev, source, origin.place)
    }

    /// Records a refused event in `rejected_events`.
    pub fn reject(
        &mut self,
        batch: &mut Batch,
        source: Option<String>,
        place: &str,
        r: &Refusal,
        payload: Option<String>,
    ) {
        let key = rejected_key(place, payload.as_deref().unwrap_or(""));
        if !self.seen.insert(key) {
            return;
        }
        batch.new_keys.push(key);
        let row = vec![
            Value::Ts(batch.load_time),
            Value::Ts(batch.load_time),
            source.map_or(Value::Null, Value::Str),
            Value::Str(place.to_owned()),
            Value::Str(r.code().to_owned()),
            Value::Str(r.to_string()),
            payload.map_or(Value::Null, Value::Str),
        ];
        batch.push(c::REJECTED_EVENTS, row);
        *batch
            .stats
            .rows
            .entry(c::REJECTED_EVENTS.to_owned())
            .or_default() += 1;
    }

    fn land(
        &mut self,
        batch: &mut Batch,
        ev: &Event,
        source: usize,
        place: &str,
    ) -> std::result::Result<(), Refusal> {
        let mut fx = Vec::new();
        let t0 = Instant::now();
        let outcome = self.engine.process(ev, &mut fx);
        let t1 = Instant::now();
        self.timings.identity += t1 - t0;
        if let Some((t, _)) = outcome.suppressed {
            // Refused and stored nowhere (not even in rejected_events, which
            // would keep the very data suppression is about). Forgetting its
            // message id lets a replay after `unsuppress` land it.
            let key = message_key(&ev.message_id);
            self.seen.remove(&key);
            if batch.new_keys.last() == Some(&key) {
                batch.new_keys.pop();
            }
            let r = Refusal::Suppressed(t);
            batch
                .stats
                .refuse(r.code(), place.to_owned(), r.to_string());
            return Err(r);
        }
        batch.events += 1;
        batch.stats.landed += 1;
        batch.stats.merges += u64::from(outcome.merges);
        batch.stats.new_identifier_types.extend(outcome.new_types);
        // Cheap: sources are few; cloning keeps the borrow checker out of the
        // row builders, which need `&mut self`.
        let src = self.sources[source].clone();
        for e in &fx {
            self.effect_row(batch, ev, &src, e);
        }
        let seg = outcome
            .segment
            .map(|p| self.engine.segment_id(p).to_owned());
        self.event_rows(batch, ev, seg.as_deref(), &src);
        self.timings.rows += t1.elapsed();
        Ok(())
    }

    fn common(&mut self, batch: &Batch, ev: &Event, src: &Source) -> (i64, Vec<Value>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let opt = |s: Option<&str>| s.map_or(Value::Null, |s| Value::Str(s.to_owned()));
        (
            seq,
            vec![
                Value::Int(seq),
                Value::Ts(batch.load_time),
                Value::Ts(ev.timestamp),
                Value::Ts(ev.received_at),
                Value::Str(ev.message_id.clone()),
                Value::Str(ev.kind.as_str().to_owned()),
                opt(ev.display_name()),
                Value::Str(src.id.clone()),
                Value::Str(src.name.clone()),
                Value::Str(src.slug.clone()),
            ],
        )
    }

    fn effect_row(&mut self, batch: &mut Batch, ev: &Event, src: &Source, e: &Effect) {
        let sid = |s: &Self, p: ProfileIdx| Value::Str(s.engine.segment_id(p).to_owned());
        match e {
            Effect::Created { profile }
            | Effect::Repointed {
                segment: profile, ..
            } => {
                let canonical = match e {
                    Effect::Repointed { canonical, .. } => *canonical,
                    _ => *profile,
                };
                if matches!(e, Effect::Created { .. }) {
                    batch.stats.profiles_created += 1;
                }
                let (seq, common) = self.common(batch, ev, src);
                let mut row = vec![
                    Value::Str(seq.to_string()),
                    sid(self, *profile),
                    sid(self, canonical),
                ];
                row.extend(common);
                batch.push(c::ID_GRAPH_UPDATES, row);
                batch.touched.push(*profile);
                *batch
                    .stats
                    .rows
                    .entry(c::ID_GRAPH_UPDATES.to_owned())
                    .or_default() += 1;
            }
            Effect::Attached { profile, ident } => {
                let (ty, value) = self.engine.identifier(*ident);
                let mut h = Sha1::new();
                h.update(ty.as_bytes());
                h.update(value.as_bytes());
                let head = [
                    sid(self, *profile),
                    Value::Str(ty.to_owned()),
                    Value::Str(value.to_owned()),
                    Value::Str(hex::encode(h.finalize())),
                ];
                let (seq, common) = self.common(batch, ev, src);
                let mut row = vec![Value::Str(seq.to_string())];
                row.extend(head);
                row.extend(common);
                batch.push(c::EXTERNAL_ID_MAPPING_UPDATES, row);
                batch.touched.push(*profile);
                *batch
                    .stats
                    .rows
                    .entry(c::EXTERNAL_ID_MAPPING_UPDATES.to_owned())
                    .or_default() += 1;
            }
            Effect::Traits { profile } => {
                let (seq, common) = self.common(batch, ev, src);
                let mut row = vec![Value::Str(seq.to_string()), sid(self, *profile)];
                row.extend(common);
                let known = |t| self.catalog.id(t).expect("open checks the fixed tables");
                let (updates, current) =
                    (known(c::PROFILE_TRAITS_UPDATES), known(c::PROFILE_TRAITS));
                for (name, v) in self.engine.traits(*profile) {
                    if self.reserved_traits.contains(name) {
                        *batch
                            .stats
                            .dropped
                            .entry("reserved_trait_name".into())
                            .or_default() += 1;
                        continue;
                    }
                    let value = Value::from_json(v);
                    let Some(ty) = value.column_type() else {
                        continue;
                    };
                    let (pos, have) =
                        self.catalog
                            .ensure_column_in(updates, name, ty, &mut batch.ddl);
                    self.catalog
                        .ensure_column_in(current, name, have, &mut batch.ddl);
                    put(
                        &mut row,
                        pos,
                        value,
                        have,
                        c::PROFILE_TRAITS_UPDATES,
                        name,
                        &mut batch.stats,
                    );
                }
                batch.push(c::PROFILE_TRAITS_UPDATES, row);
                batch.touched.push(*profile);
                *batch
                    .stats
                    .rows
                    .entry(c::PROFILE_TRAITS_UPDATES.to_owned())
                    .or_default() += 1;
            }
            Effect::Conflict(conflict) => {
                let rule = match conflict.rule {
                    Rule::Limit(t) => format!("limit:{}", self.engine.settings().name(t)),
                    Rule::MergeCap => "merge_cap".to_owned(),
                    Rule::IdentifierCap => "identifier_cap".to_owned(),
                };
                *batch.stats.conflicts.entry(rule.clone()).or_default() += 1;
                let seq = self.next_seq;
                self.next_seq += 1;
                let ids: Vec<&str> = conflict
                    .profiles
                    .iter()
                    .map(|p| self.engine.segment_id(*p))
                    .collect();
                let row = vec![
                    Value::Str(seq.to_string()),
                    Value::Int(seq),
                    Value::Ts(batch.load_time),
                    Value::Ts(ev.timestamp),
                    Value::Str(ev.message_id.clone()),
                    Value::Str(ev.kind.as_str().to_owned()),
                    Value::Str(src.id.clone()),
                    Value::Str(self.engine.settings().name(conflict.ident_type).to_owned()),
                    Value::Str(conflict.value.clone()),
                    Value::Str(rule),
                    Value::Str(ids.join(",")),
                ];
                batch.push(c::IDENTITY_CONFLICTS, row);
                *batch
                    .stats
                    .rows
                    .entry(c::IDENTITY_CONFLICTS.to_owned())
                    .or_default() += 1;
            }
        }
    }

    /// The event's row in its call table and, for a track, in its own
    /// table. `context` is walked once for both rows: it is most of an
    /// event's leaves. The rows are written straight into the batch's
    /// column buffers (`ps_warehouse::rows`), cell by cell.
    fn event_rows(&mut self, batch: &mut Batch, ev: &Event, seg: Option<&str>, src: &Source) {
        let mut tables: [Option<TableId>; 2] = [None, None];
        tables[0] = Some(self.start_row(batch, ev.kind.table(), ev, seg, src));
        if ev.kind == EventType::Track {
            let own = snake_case(ev.event.as_deref().unwrap_or_default());
            if c::is_free_event_table_name(&own) {
                tables[1] = Some(self.start_row(batch, &own, ev, seg, src));
            } else {
                *batch
                    .stats
                    .dropped
                    .entry("event_table_name_refused".into())
                    .or_default() += 1;
            }
        }
        let mut scratch = std::mem::take(&mut self.scratch_text);
        if let Some(ctx) = ev.context_ref() {
            for_each_doc_leaf(ctx, "context", |name, leaf| {
                let cell = Cell::from_ref(leaf, &mut scratch);
                for tid in tables.iter().flatten() {
                    let _ = self.put_cell(batch, *tid, name, cell);
                }
            });
        }
        // A track's properties go to its own table only (`tracks` holds the
        // call's common columns), every other call's body to its table.
        let body_table = match ev.kind {
            EventType::Track => tables[1],
            _ => tables[0],
        };
        if let (Some(tid), Some(b)) = (body_table, ev.body_ref()) {
            self.put_body(batch, tid, b, &mut scratch);
        }
        self.scratch_text = scratch;
        for tid in tables.into_iter().flatten() {
            batch.buffer(tid).end_row();
            let t = self.catalog.table(tid).name.as_str();
            match batch.stats.rows.get_mut(t) {
                Some(n) => *n += 1,
                None => {
                    batch.stats.rows.insert(t.to_owned(), 1);
                }
            }
        }
    }

    /// Starts a row of `table` with its standard columns filled.
    fn start_row(
        &mut self,
        batch: &mut Batch,
        table: &str,
        ev: &Event,
        seg: Option<&str>,
        src: &Source,
    ) -> TableId {
        let std = c::event_standard_columns(table);
        let tid = self.catalog.ensure_table(table, std, &mut batch.ddl);
        fn s(v: Option<&str>) -> Cell<'_> {
            v.map_or(Cell::Null, Cell::Str)
        }
        let ts = |v: Option<i64>| v.map_or(Cell::Null, Cell::Ts);
        let own_name;
        let mut cells = [Cell::Null; 13];
        cells[..10].copy_from_slice(&[
            Cell::Str(&ev.message_id),
            s(seg),
            Cell::Str(&src.id),
            s(ev.anonymous_id.as_deref()),
            s(ev.user_id.as_deref()),
            Cell::Ts(ev.received_at),
            ts(ev.sent_at),
            Cell::Ts(ev.timestamp),
            ts(ev.original_timestamp),
            Cell::Ts(batch.load_time),
        ]);
        let n = match table {
            "pages" | "screens" => {
                cells[10] = s(ev.name.as_deref());
                cells[11] = s(ev.category.as_deref());
                12
            }
            "groups" => {
                cells[10] = s(ev.group_id.as_deref());
                11
            }
            "aliases" => {
                cells[10] = s(ev.previous_id.as_deref());
                11
            }
            "identifies" => 10,
            _ => {
                let name = ev.event.as_deref().unwrap_or_default();
                own_name = snake_case(name);
                cells[10] = Cell::Str(&own_name);
                cells[11] = Cell::Str(name);
                12
            }
        };
        debug_assert_eq!(n, std.len());
        let buf = batch.buffer(tid);
        for (i, (cell, (_, ty))) in cells[..n].iter().zip(std).enumerate() {
            buf.set(i, *ty, *cell);
        }
        tid
    }

    /// The payload's own fields (properties or traits), flattened into the
    /// row being built in `tid`.
    fn put_body(
        &mut self,
        batch: &mut Batch,
        tid: TableId,
        body: JsonRef<'_>,
        scratch: &mut String,
    ) {
        // Columns this body already wrote: a second key that names the same
        // column is a collision (last one wins, counted).
        let mut written = std::mem::take(&mut self.scratch_written);
        written.clear();
        for_each_doc_leaf(body, "", |name, leaf| {
            if name.is_empty() {
                *batch.stats.dropped.entry("empty_name".into()).or_default() += 1;
            } else if self.reserved_event.contains(name) {
                *batch
                    .stats
                    .dropped
                    .entry("reserved_column_name".into())
                    .or_default() += 1;
            } else if let Some(pos) = self.put_cell(batch, tid, name, Cell::from_ref(leaf, scratch))
            {
                if written.len() <= pos {
                    written.resize(pos + 1, false);
                }
                if std::mem::replace(&mut written[pos], true) {
                    *batch
                        .stats
                        .dropped
                        .entry("name_collision".into())
                        .or_default() += 1;
                }
            }
        });
        self.scratch_written = written;
    }

    /// Writes `cell` into column `name` of the row being built in `tid`,
    /// adding the column (typed by the cell) if it is new, and casting to
    /// the column's type if it is not. Returns the column's position.
    fn put_cell(
        &mut self,
        batch: &mut Batch,
        tid: TableId,
        name: &str,
        cell: Cell<'_>,
    ) -> Option<usize> {
        let Some(ty) = cell.column_type() else {
            // A null only matters for a column that already exists, where the
            // cell is NULL anyway — unless an earlier key of this payload filled it.
            let pos = self.catalog.position_in(tid, name)?;
            let have = self.catalog.table(tid).columns[pos].ty;
            batch.buffer(tid).set(pos, have, Cell::Null);
            return Some(pos);
        };
        let (pos, have) = self.catalog.ensure_column_in(tid, name, ty, &mut batch.ddl);
        let mut cast = String::new();
        let stored = match cell.cast(have, &mut cast) {
            Some(c) => c,
            None => {
                let t = &self.catalog.table(tid).name;
                *batch
                    .stats
                    .type_conflicts
                    .entry(format!("{t}.{name}"))
                    .or_default() += 1;
                Cell::Null
            }
        };
        batch.buffer(tid).set(pos, have, stored);
        Some(pos)
    }

    /// Lands the batch: DDL, rows, engine state, sequence and materialization,
    /// all in one transaction.
    pub fn commit(&mut self, wh: &mut dyn Warehouse, batch: Batch) -> Result<SyncStats> {
        let d = wh.dialect().clone();
        let prepared = self.prepare(&d, batch);
        let landed = prepared.land(wh)?;
        self.account(&landed);
        Ok(landed.stats)
    }

    /// Everything [`Space::commit`] does before touching the warehouse: the
    /// batch's rows, the engine records of changed profiles, the new meta
    /// and the touched keys, as owned data. [`Prepared::land`] can then run
    /// on another thread while this `Space` builds the next batch. From here
    /// on the `Space` assumes the batch lands: if landing fails, drop it.
    pub fn prepare(&mut self, d: &ps_warehouse::Dialect, mut batch: Batch) -> Prepared {
        let schema = self.cfg.space.clone();
        let dirty = self.engine.take_dirty();
        batch.touched.sort_unstable();
        batch.touched.dedup();
        batch.stats.batches = 1;
        let mut meta = self.meta.clone();
        for (k, v) in [
            ("version", STATE_VERSION.to_owned()),
            ("seq", self.next_seq.to_string()),
            ("last_load", batch.load_time.to_string()),
            (
                "id_scheme",
                format!("{:?}", self.cfg.identity.id_scheme).to_lowercase(),
            ),
            (
                "engine",
                serde_json::to_string(&self.engine.meta()).expect("meta serializes"),
            ),
        ] {
            meta.insert(k.to_owned(), v);
        }
        for (k, v) in &batch.checkpoints {
            meta.insert(k.clone(), v.clone());
        }
        if !batch.new_keys.is_empty() {
            let keys = crate::state::seen::encode(&batch.new_keys);
            batch.push(
                c::STATE_SEEN,
                vec![Value::Int(self.next_seq), Value::Str(keys)],
            );
        }
        let state_chunks = crate::state::chunks_of(&dirty);
        let state_rows = crate::state::encode_chunks(&self.engine, &state_chunks);
        let table = |name: &str| {
            self.catalog
                .get(name)
                .expect("catalog knows every table it made")
                .clone()
        };
        let mut statements = std::mem::take(&mut batch.statements);
        statements.extend(batch.ddl.iter().map(|x| d.ddl(&schema, x)));
        let appends = std::mem::take(&mut batch.rows)
            .into_iter()
            .map(|(t, rows)| (table(&t), rows))
            .collect();
        let buffers: Vec<(ps_warehouse::TableSchema, RowBuffer)> =
            std::mem::take(&mut batch.buffers)
                .into_iter()
                .enumerate()
                .filter(|(_, b)| !b.is_empty())
                .map(|(i, b)| {
                    let t = self.catalog.tables_by_index()[i].clone();
                    (t, b)
                })
                .collect();
        tracing::debug!(
            events = batch.events,
            event_rows = buffers.iter().map(|(_, b)| b.len()).sum::<usize>(),
            event_row_bytes = buffers.iter().map(|(_, b)| b.heap_bytes()).sum::<usize>(),
            "batch prepared"
        );
        let prepared = Prepared {
            d: d.clone(),
            statements,
            appends,
            buffers,
            state_chunks,
            state_rows,
            dirty_profiles: dirty.len(),
            profiles_table: table(c::STATE_PROFILES),
            meta_table: table(c::STATE_META),
            keys_table: table(c::STATE_KEYS),
            meta_rows: meta
                .iter()
                .map(|(k, v)| vec![Value::Str(k.clone()), Value::Str(v.clone())])
                .collect(),
            touched: batch
                .touched
                .iter()
                .map(|p| vec![Value::Str(self.engine.segment_id(*p).to_owned())])
                .collect(),
            traits: self.trait_columns(),
            stats: std::mem::take(&mut batch.stats),
            schema,
        };
        self.meta = meta;
        self.last_load = batch.load_time;
        prepared
    }

    /// Adds a landed batch's warehouse times to [`Space::timings`].
    pub fn account(&mut self, landed: &Landed) {
        self.timings.materialize += landed.materialize;
        self.timings.load += landed.load;
    }

    /// The trait columns of `profile_traits_updates` (everything after its
    /// fixed columns), which `profile_traits` mirrors.
    fn trait_columns(&self) -> Vec<String> {
        let fixed = c::fixed_tables()
            .into_iter()
            .find(|t| t.name == c::PROFILE_TRAITS_UPDATES)
            .map_or(0, |t| t.columns.len());
        self.catalog
            .get(c::PROFILE_TRAITS_UPDATES)
            .map(|t| {
                t.columns
                    .iter()
                    .skip(fixed)
                    .map(|c| c.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Rebuilds the materialized tables from the landed tables alone.
    pub fn materialize_full(&self, wh: &mut dyn Warehouse) -> Result<()> {
        let schema = &self.cfg.space;
        let d = wh.dialect().clone();
        let traits = self.trait_columns();
        transaction(wh, |wh| {
            for sql in ps_materialize::statements(&d, schema, &traits, ps_materialize::Scope::Full)
            {
                wh.execute(&sql)?;
            }
            Ok(())
        })
    }
}

/// Runs `f` in one warehouse transaction: committed if it succeeds, rolled
/// back (best effort: the connection may be gone) if it fails.
pub(crate) fn transaction<T>(
    wh: &mut dyn Warehouse,
    f: impl FnOnce(&mut dyn Warehouse) -> Result<T>,
) -> Result<T> {
    wh.begin()?;
    match f(&mut *wh) {
        Ok(v) => {
            wh.commit()?;
            Ok(v)
        }
        Err(e) => {
            let _ = wh.rollback();
            Err(e)
        }
    }
}

/// Puts a value into its column, casting to the column's type; a value that
/// does not fit is stored as NULL and counted.
fn put(
    row: &mut Vec<Value>,
    pos: usize,
    value: Value,
    have: ColumnType,
    table: &str,
    name: &str,
    stats: &mut SyncStats,
) {
    if row.len() <= pos {
        row.resize(pos + 1, Value::Null);
    }
    row[pos] = match value.cast(have) {
        Some(v) => v,
        None => {
            *stats
                .type_conflicts
                .entry(format!("{table}.{name}"))
                .or_default() += 1;
            Value::Null
        }
    };
}

/// A space name becomes a schema name: keep it to what every warehouse
/// accepts unquoted, so users can type it in SQL.
fn validate_space_name(s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(Error::Config {
            setting: "space".into(),
            message: format!(
                "{s:?} must be 1-63 characters of a-z, 0-9 and _, not starting with a digit"
            ),
        })
    }
}

impl Space {
    /// The scheme profile ids are made with.
    pub fn id_scheme(&self) -> IdScheme {
        self.cfg.identity.id_scheme
    }
}

/// A batch ready to land ([`Space::prepare`]).
#[derive(Debug)]
pub struct Prepared {
    schema: String,
    d: ps_warehouse::Dialect,
    /// Privacy deletes, then DDL for new tables and columns.
    statements: Vec<String>,
    appends: Vec<(ps_warehouse::TableSchema, Vec<Vec<Value>>)>,
    buffers: Vec<(ps_warehouse::TableSchema, RowBuffer)>,
    state_chunks: Vec<u32>,
    state_rows: Vec<Vec<Value>>,
    dirty_profiles: usize,
    profiles_table: ps_warehouse::TableSchema,
    meta_table: ps_warehouse::TableSchema,
    keys_table: ps_warehouse::TableSchema,
    meta_rows: Vec<Vec<Value>>,
    touched: Vec<Vec<Value>>,
    traits: Vec<String>,
    stats: SyncStats,
}

/// What landing a batch did.
#[derive(Debug, Clone, Default)]
pub struct Landed {
    pub stats: SyncStats,
    /// Warehouse time without the materialization.
    pub load: std::time::Duration,
    pub materialize: std::time::Duration,
}

impl Prepared {
    /// Lands the batch in one warehouse transaction: DDL, rows, engine
    /// state, meta (checkpoints included) and the materialization of the
    /// profiles it touched. A failure rolls all of it back.
    pub fn land(self, wh: &mut dyn Warehouse) -> Result<Landed> {
        let Prepared {
            schema,
            d,
            statements,
            appends,
            buffers,
            state_chunks,
            state_rows,
            dirty_profiles,
            profiles_table,
            meta_table,
            keys_table,
            meta_rows,
            touched,
            traits,
            stats,
        } = self;
        let clear_keys = d.empty_table(&schema, c::STATE_KEYS);
        let t0 = Instant::now();
        let mut t_mat = std::time::Duration::ZERO;
        transaction(wh, |wh| {
            for sql in &statements {
                wh.execute(sql)?;
            }
            // Each table's rows are freed as soon as the warehouse has them:
            // the warehouse holds its own copy until the commit, and two
            // batches are in memory at once (one landing, one being built).
            for (t, rows) in appends {
                let ta = Instant::now();
                wh.append(&schema, &t, &rows)?;
                tracing::debug!(table = %t.name, rows = rows.len(), columns = t.columns.len(), elapsed = ?ta.elapsed(), "appended");
            }
            for (t, rows) in buffers {
                let ta = Instant::now();
                wh.append_buffer(&schema, &t, &rows)?;
                tracing::debug!(table = %t.name, rows = rows.len(), columns = t.columns.len(), elapsed = ?ta.elapsed(), "appended");
            }
            let ts = Instant::now();
            if !state_chunks.is_empty() {
                // The chunks holding a changed profile are replaced whole.
                wh.execute(&clear_keys)?;
                let keys: Vec<Vec<Value>> = state_chunks
                    .iter()
                    .map(|c| vec![Value::Str(c.to_string())])
                    .collect();
                wh.append(&schema, &keys_table, &keys)?;
                wh.execute(&format!(
                    "DELETE FROM {} WHERE chunk IN (SELECT CAST(k AS BIGINT) FROM {})",
                    d.table(&schema, c::STATE_PROFILES),
                    d.table(&schema, c::STATE_KEYS)
                ))?;
                wh.append(&schema, &profiles_table, &state_rows)?;
            }
            tracing::debug!(profiles = dirty_profiles, chunks = state_chunks.len(), elapsed = ?ts.elapsed(), "engine state written");
            wh.execute(&format!("DELETE FROM {}", d.table(&schema, c::STATE_META)))?;
            wh.append(&schema, &meta_table, &meta_rows)?;
            if !touched.is_empty() {
                let tm = Instant::now();
                wh.execute(&clear_keys)?;
                wh.append(&schema, &keys_table, &touched)?;
                if let Some(sql) = d.refresh_statistics(&schema, c::STATE_KEYS) {
                    wh.execute(&sql)?;
                }
                for sql in
                    ps_materialize::statements(&d, &schema, &traits, ps_materialize::Scope::Touched)
                {
                    wh.execute(&sql)?;
                }
                wh.execute(&clear_keys)?;
                t_mat = tm.elapsed();
            }
            Ok(())
        })?;
        Ok(Landed {
            stats,
            load: t0.elapsed() - t_mat,
            materialize: t_mat,
        })
    }
}
