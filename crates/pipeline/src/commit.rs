//! Committing a batch: [`Space::prepare`] turns it into owned data
//! ([`Prepared`]), [`Prepared::land`] writes it in one warehouse
//! transaction — DDL, rows, engine state, `_ps_meta` (sequence and
//! checkpoints) and the materialization of the profiles it touched.

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
    pub fn prepare(&mut self, d: &ps_warehouse::Dialect, mut batch: Batch) -> Prepared {
        let schema = self.cfg.space.clone();
        self.compute_rows(&mut batch);
        let keys = Layout::of(c::STATE_KEYS);
        let state = Layout::of(c::STATE_COMPUTE);
        let (mut compute_keys, mut compute_state) = (Vec::new(), Vec::new());
        if let Some(cs) = &mut self.compute {
            for p in std::mem::take(&mut cs.dirty) {
                compute_keys.push(key_row(&keys, p.to_string()));
                if let Some(st) = cs.profiles.get(&p) {
                    let mut row = state.row();
                    row.set(Col::K, Value::Str(p.to_string()))
                        .set(Col::State, Value::Str(crate::compute_state::encode(st)));
                    compute_state.push(row.into_cells());
                }
            }
        }
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
        if !batch.new_keys.is_empty() {
            let keys = crate::state::seen::encode(&batch.new_keys);
            let mut row = Layout::of(c::STATE_SEEN).row();
            row.set(Col::Batch, Value::Int(self.next_seq))
                .set(Col::Keys, Value::Str(keys));
            batch.push(c::STATE_SEEN, row.into_cells());
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
            keys_table: table(c::STATE_KEYS),
            compute_table: table(c::STATE_COMPUTE),
            compute_keys,
            compute_state,
            meta: meta.clone(),
            touched: batch
                .touched
                .iter()
                .map(|p| key_row(&keys, self.engine.segment_id(*p).to_owned()))
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
    pub(crate) fn trait_columns(&self) -> Vec<String> {
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
        })?;
        Ok(())
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
    keys_table: ps_warehouse::TableSchema,
    /// `_ps_compute`, and the profiles whose rows there are replaced by
    /// `compute_state`.
    compute_table: ps_warehouse::TableSchema,
    compute_keys: Vec<Vec<Value>>,
    compute_state: Vec<Vec<Value>>,
    /// `_ps_meta`, replaced whole: sequence, engine counters, checkpoints.
    meta: BTreeMap<String, String>,
    touched: Vec<Vec<Value>>,
    traits: Vec<String>,
    stats: SyncStats,
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
            keys_table,
            compute_table,
            compute_keys,
            compute_state,
            meta,
            touched,
            traits,
            stats,
        } = self;
        let clear_keys = d.empty_table(&schema, c::STATE_KEYS);
        let keys_layout = Layout::of(c::STATE_KEYS);
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
                    .map(|c| key_row(&keys_layout, c.to_string()))
                    .collect();
                wh.append(&schema, &keys_table, &keys)?;
                wh.execute(&sql::delete_listed_state_chunks(&d, &schema))?;
                wh.append(&schema, &profiles_table, &state_rows)?;
            }
            tracing::debug!(profiles = dirty_profiles, chunks = state_chunks.len(), elapsed = ?ts.elapsed(), "engine state written");
            if !compute_keys.is_empty() {
                // The compute state of changed profiles, replaced whole.
                wh.execute(&clear_keys)?;
                wh.append(&schema, &keys_table, &compute_keys)?;
                wh.execute(&sql::delete_listed_compute_state(&d, &schema))?;
                wh.append(&schema, &compute_table, &compute_state)?;
            }
            write_meta(wh, &schema, &meta)?;
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

/// A `_ps_keys` row: one key of a scratch list.
fn key_row(keys: &Layout, k: String) -> Vec<Value> {
    let mut row = keys.row();
    row.set(Col::K, Value::Str(k));
    row.into_cells()
}
