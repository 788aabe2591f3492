//! Committing a batch: [`Space::prepare`] turns it into owned data
//! ([`Prepared`]), [`Prepared::land`] writes it in one warehouse
//! transaction — DDL, rows, engine state, `_ps_meta` (sequence and
//! checkpoints) and the materialization of the profiles it touched — and
//! [`Pending`] lands several batches in one transaction, writing what they
//! share once.

use crate::batch::Batch;
use crate::error::Result;
use crate::space::Space;
use crate::state::STATE_VERSION;
use crate::stats::SyncStats;
use ps_spec::Value;
use ps_warehouse::contract::{self as c, Col, Layout};
use ps_warehouse::{sql, transaction, write_meta, RowBuffer, Warehouse};
use std::collections::BTreeMap;
use std::time::Instant;

impl Space {
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
    pub fn prepare(&mut self, d: &ps_warehouse::Dialect, batch: Batch) -> Prepared {
        self.prepare_batch(d, batch, true)
    }

    /// [`Space::prepare`] for a batch that is not the last of its
    /// transaction ([`Pending`]): it carries rows only. The engine and
    /// compute state of the profiles it changed stay marked and are written
    /// by the transaction's last batch, from the state they have then, so
    /// a transaction writes each changed profile's state once. Computed
    /// values are evaluated there too, once per transaction: a value
    /// between two batches of one transaction is never committed, so
    /// evaluating it would only land snapshot rows no reader could have
    /// seen as current.
    pub fn prepare_part(&mut self, d: &ps_warehouse::Dialect, batch: Batch) -> Prepared {
        self.prepare_batch(d, batch, false)
    }

    /// The end of a transaction on its own, after its last events were
    /// prepared with [`Space::prepare_part`]: the computed values evaluated
    /// and the rows of their changes, and the engine and compute state of
    /// every profile the transaction changed, in a batch with no events at
    /// the load time of the batch before it. It lands the same rows as
    /// preparing that batch with [`Space::prepare`] would, and the last
    /// events can land while it is built ([`crate::driver::Driver::run`]).
    pub fn prepare_end(&mut self, d: &ps_warehouse::Dialect) -> Prepared {
        let batch = self.begin_batch(self.last_load);
        let mut p = self.prepare_batch(d, batch, true);
        p.stats.batches = 0;
        p
    }

    fn prepare_batch(
        &mut self,
        d: &ps_warehouse::Dialect,
        mut batch: Batch,
        last_of_transaction: bool,
    ) -> Prepared {
        let schema = self.cfg.space.clone();
        let t0 = std::time::Instant::now();
        // Rows take their `seq` when made, so a batch filled only after the
        // one before it was prepared (whose meta holds the `seq` it left
        // off at) holds no `seq` of an earlier batch.
        debug_assert!(
            batch.first_seq.is_none_or(|s| s >= meta_seq(&self.meta)),
            "a batch got rows before the batch before it was prepared"
        );
        if last_of_transaction {
            self.compute_rows(&mut batch);
        }
        let (compute_state, compute_whole) = match self.compute.as_mut() {
            Some(cs) if last_of_transaction => crate::compute_state::layers(cs),
            _ => (Vec::new(), false),
        };
        if self.compute.is_some() {
            self.timings.compute += t0.elapsed();
        }
        let dirty = if last_of_transaction {
            self.engine.take_dirty()
        } else {
            Vec::new()
        };
        // The engine-state log: a layer of the changed profiles, or the
        // whole state when the log has grown past twice the profiles (or
        // must forget a deleted profile), replacing every older layer.
        let mut state_rows = Vec::new();
        let mut clear_state = false;
        if last_of_transaction && (!dirty.is_empty() || self.compact_state) {
            let n = self.engine.profile_count() as u64;
            let layer = self.state_layer + 1;
            if self.compact_state
                || self.state_log + dirty.len() as u64 > 2 * n + crate::state::COMPACT_SLACK
            {
                state_rows = crate::state::encode_all(&self.engine, layer);
                clear_state = true;
                self.state_log = n;
                self.compact_state = false;
            } else {
                state_rows = crate::state::encode_dirty(&self.engine, layer, &dirty);
                self.state_log += dirty.len() as u64;
            }
            self.state_layer = layer;
        }
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
            (crate::state::LAYER_META, self.state_layer.to_string()),
            (crate::state::LOG_META, self.state_log.to_string()),
        ] {
            meta.insert(k.to_owned(), v);
        }
        // What the compute state is built for; without definitions the
        // state stops following events, so a later start must rebuild it.
        match &self.compute {
            Some(cs) => {
                meta.insert(
                    crate::compute_backfill::COMPUTE_META.to_owned(),
                    cs.record(),
                );
            }
            None => {
                meta.remove(crate::compute_backfill::COMPUTE_META);
            }
        }
        for (k, v) in &batch.checkpoints {
            meta.insert(k.clone(), v.clone());
        }
        if let Some(token) = batch.fence {
            meta.insert(ps_warehouse::FENCE_META.to_owned(), token.to_string());
        }
        if !batch.new_keys.is_empty() {
            let keys = crate::state::seen::encode(&batch.new_keys);
            let mut row = Layout::of(c::STATE_SEEN).row();
            row.set(Col::Batch, Value::Int(self.next_seq))
                .set(Col::Keys, Value::Str(keys));
            batch.push(c::STATE_SEEN, row.into_cells());
        }
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
            fence: batch.fence,
            d: d.clone(),
            events: batch.events,
            statements,
            appends,
            buffers,
            state_rows,
            clear_state,
            dirty_profiles: dirty.len(),
            profiles_table: table(c::STATE_PROFILES),
            compute_table: table(c::STATE_COMPUTE),
            compute_state,
            compute_whole,
            meta: meta.clone(),
            first_seq: batch.first_seq,
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
    pub(crate) fn trait_columns(&self) -> Vec<String> {
        let fixed = c::fixed_table(c::PROFILE_TRAITS_UPDATES).map_or(0, |t| t.columns.len());
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
        })?;
        Ok(())
    }
}

/// A batch ready to land ([`Space::prepare`]).
#[derive(Debug)]
pub struct Prepared {
    schema: String,
    /// The lease token the transaction is fenced by, checked first.
    fence: Option<u64>,
    d: ps_warehouse::Dialect,
    /// Events the batch admitted (commit sizes are counted in these).
    events: usize,
    /// Privacy deletes, then DDL for new tables and columns.
    statements: Vec<String>,
    appends: Vec<(ps_warehouse::TableSchema, Vec<Vec<Value>>)>,
    buffers: Vec<(ps_warehouse::TableSchema, RowBuffer)>,
    /// Engine-state log rows to append (one layer), and whether they
    /// replace the whole log (a compaction).
    state_rows: Vec<Vec<Value>>,
    clear_state: bool,
    dirty_profiles: usize,
    profiles_table: ps_warehouse::TableSchema,
    /// `_ps_compute`, the rows to append to it, and whether they replace
    /// every row (`compute_state::layers`).
    compute_table: ps_warehouse::TableSchema,
    compute_state: Vec<Vec<Value>>,
    compute_whole: bool,
    /// `_ps_meta`, replaced whole: sequence, engine counters, checkpoints.
    meta: BTreeMap<String, String>,
    /// The batch's first `seq` in the tables the materialized ones are
    /// built from, if it landed any.
    first_seq: Option<i64>,
    traits: Vec<String>,
    stats: SyncStats,
}

/// The next `seq` recorded in `_ps_meta` (1 for a new space).
pub(crate) fn meta_seq(meta: &BTreeMap<String, String>) -> i64 {
    meta.get("seq").and_then(|s| s.parse().ok()).unwrap_or(1)
}

/// What landing a batch did.
#[derive(Debug, Clone, Default)]
pub struct Landed {
    /// What the batch did.
    pub stats: SyncStats,
    /// Warehouse time without the materialization.
    pub load: std::time::Duration,
    /// Warehouse time of the materialization.
    pub materialize: std::time::Duration,
}

impl Prepared {
    /// Events the batch admitted.
    pub fn events(&self) -> usize {
        self.events
    }

    /// Lands the batch in one warehouse transaction of its own: DDL, rows,
    /// engine state, meta (checkpoints included) and the materialization of
    /// the profiles it touched. A failure rolls all of it back.
    pub fn land(self, wh: &mut dyn Warehouse) -> Result<Landed> {
        let mut pending = Pending::default();
        pending.add(wh, self)?;
        let mut landed = pending.commit(wh)?;
        Ok(landed.pop().expect("one batch was added"))
    }
}

/// One warehouse transaction holding one or more batches.
///
/// A batch's rows are written when it is [added](Pending::add); what later
/// batches would write again — the compute state of changed profiles,
/// `_ps_meta`, and the materialization of touched profiles — is gathered
/// (the newest version of each) and written once, at [`Pending::commit`];
/// the engine state comes with the transaction's last batch only
/// ([`Space::prepare_part`]). A replay of a file can so land many batches
/// in one transaction and pay for state, materialization and DuckDB's
/// checkpoint once. It is exact: the last batch's state and meta are what
/// one batch holding all the events would have written, and
/// materialization recomputes each touched profile from the landed tables
/// whatever the batches did before.
///
/// On any error the transaction is rolled back and nothing of it lands;
/// the `Space` that prepared the batches is then ahead of the warehouse
/// and must be dropped, as with a single batch.
#[derive(Debug, Default)]
pub struct Pending {
    open: bool,
    events: usize,
    /// Each added batch's statistics and load time, in order.
    batches: Vec<Landed>,
    /// Engine-state log rows (only a transaction's last batch has any),
    /// and whether they replace the log.
    state: Vec<Vec<Value>>,
    clear_state: bool,
    dirty_profiles: usize,
    /// Compute-state log rows to append, and whether they replace the
    /// whole log.
    compute: Vec<Vec<Value>>,
    clear_compute: bool,
    meta: BTreeMap<String, String>,
    /// The first [`Prepared::first_seq`] of the transaction's batches
    /// (they are prepared in order): the materialization reads the
    /// transaction's rows from there on.
    first_seq: Option<i64>,
    /// From the newest batch.
    last: Option<Tail>,
}

/// What the newest batch says about the tables the commit writes.
#[derive(Debug)]
struct Tail {
    schema: String,
    d: ps_warehouse::Dialect,
    profiles_table: ps_warehouse::TableSchema,
    compute_table: ps_warehouse::TableSchema,
    traits: Vec<String>,
}

impl Pending {
    /// Events in the batches added since the last commit.
    pub fn events(&self) -> usize {
        self.events
    }

    /// Whether a transaction is open (a batch was added and not yet
    /// committed).
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Writes a batch's statements and rows into the open transaction,
    /// beginning one if none is open. On an error the transaction is rolled
    /// back.
    pub fn add(&mut self, wh: &mut dyn Warehouse, p: Prepared) -> Result<()> {
        if !self.open {
            wh.begin()?;
            self.open = true;
        }
        let r = self.write(wh, p);
        if r.is_err() {
            self.abort(wh);
        }
        r
    }

    fn write(&mut self, wh: &mut dyn Warehouse, p: Prepared) -> Result<()> {
        let t0 = Instant::now();
        let schema = &p.schema;
        if let Some(token) = p.fence {
            ps_warehouse::fence(wh, schema, token)?;
        }
        for sql in &p.statements {
            wh.execute(sql)?;
        }
        // Each table's rows are freed as soon as the warehouse has them:
        // the warehouse holds its own copy until the commit, and two
        // batches are in memory at once (one landing, one being built).
        for (t, rows) in p.appends {
            let ta = Instant::now();
            wh.append(schema, &t, &rows)?;
            tracing::debug!(table = %t.name, rows = rows.len(), columns = t.columns.len(), elapsed = ?ta.elapsed(), "appended");
        }
        for (t, rows) in p.buffers {
            let ta = Instant::now();
            wh.append_buffer(schema, &t, &rows)?;
            tracing::debug!(table = %t.name, rows = rows.len(), columns = t.columns.len(), elapsed = ?ta.elapsed(), "appended");
        }
        self.events += p.events;
        self.state.extend(p.state_rows);
        self.clear_state |= p.clear_state;
        self.dirty_profiles += p.dirty_profiles;
        if p.compute_whole {
            self.compute.clear();
            self.clear_compute = true;
        }
        self.compute.extend(p.compute_state);
        self.meta = p.meta;
        self.first_seq = self.first_seq.or(p.first_seq);
        self.last = Some(Tail {
            schema: p.schema,
            d: p.d,
            profiles_table: p.profiles_table,
            compute_table: p.compute_table,
            traits: p.traits,
        });
        self.batches.push(Landed {
            stats: p.stats,
            load: t0.elapsed(),
            materialize: std::time::Duration::ZERO,
        });
        Ok(())
    }

    /// Writes the gathered engine state, compute state, meta and the
    /// materialization of touched profiles, and commits. Returns each
    /// added batch's [`Landed`], in order (the commit's own time counts
    /// to the last). With nothing added, does nothing. On an error the
    /// transaction is rolled back.
    pub fn commit(&mut self, wh: &mut dyn Warehouse) -> Result<Vec<Landed>> {
        if !self.open {
            return Ok(Vec::new());
        }
        let t0 = Instant::now();
        match self
            .finish(wh)
            .and_then(|t_mat| wh.commit().map(|()| t_mat))
        {
            Ok(t_mat) => {
                let mut done = std::mem::take(self);
                if let Some(last) = done.batches.last_mut() {
                    last.load += t0.elapsed() - t_mat;
                    last.materialize = t_mat;
                }
                Ok(done.batches)
            }
            Err(e) => {
                self.abort(wh);
                Err(e.into())
            }
        }
    }

    /// Rolls back (best effort: the connection may be gone) and forgets
    /// the batches.
    fn abort(&mut self, wh: &mut dyn Warehouse) {
        let _ = wh.rollback();
        *self = Pending::default();
    }

    /// The writes [`Pending::commit`] makes before `COMMIT`; returns the
    /// materialization's time.
    fn finish(&mut self, wh: &mut dyn Warehouse) -> ps_warehouse::Result<std::time::Duration> {
        let Some(tail) = &self.last else {
            return Ok(std::time::Duration::ZERO);
        };
        let (schema, d) = (&tail.schema, &tail.d);
        let ts = Instant::now();
        // The engine state is a log: a commit appends the changed
        // profiles, and deletes (the whole log) only when it compacts.
        if self.clear_state {
            wh.execute(&sql::delete_all(d, schema, c::STATE_PROFILES))?;
        }
        if !self.state.is_empty() {
            let rows = std::mem::take(&mut self.state);
            wh.append(schema, &tail.profiles_table, &rows)?;
        }
        tracing::debug!(profiles = self.dirty_profiles, elapsed = ?ts.elapsed(), "engine state written");
        // The compute state is a log too (`compute_state`).
        if self.clear_compute {
            wh.execute(&sql::delete_all(d, schema, c::STATE_COMPUTE))?;
        }
        if !self.compute.is_empty() {
            let rows = std::mem::take(&mut self.compute);
            wh.append(schema, &tail.compute_table, &rows)?;
        }
        write_meta(wh, schema, &self.meta)?;
        let mut t_mat = std::time::Duration::ZERO;
        if let Some(seq) = self.first_seq {
            let tm = Instant::now();
            let scope = ps_materialize::Scope::Since(seq);
            for sql in ps_materialize::statements(d, schema, &tail.traits, scope) {
                wh.execute(&sql)?;
            }
            t_mat = tm.elapsed();
        }
        Ok(t_mat)
    }
}
