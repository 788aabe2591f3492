//! Opening a space: its schema made (or completed) in the warehouse, and
//! everything a sync needs restored from it: the catalog of tables and
//! columns, the `_ps_meta` record (sequence, checkpoints, engine counters),
//! the identity engine's snapshot, the dedupe keys and the suppressions.

use crate::config::SpaceConfig;
use crate::dedupe::Seen;
use crate::error::{Error, Result};
use crate::space::{Layouts, Space, Timings};
use crate::state::seen::{message_key, rejected_key};
use crate::state::{RecoveryTimings, SEEN_META, STATE_VERSION};
use ps_identity::{Engine, EngineMeta, Settings};
use ps_spec::Value;
use ps_warehouse::contract::{self as c, Catalog, Col, Layout};
use ps_warehouse::{set_meta, sql, transaction, Warehouse};
use std::collections::BTreeMap;
use std::time::Instant;

/// The dedupe keys stored in `_ps_seen`, compacting its rows when commits
/// have left many.
fn load_seen(wh: &mut dyn Warehouse, schema: &str, catalog: &Catalog) -> Result<Seen> {
    let mut set = Seen::default();
    let rows = for_each_seen_row(wh, schema, &mut |keys| set.extend(keys.iter().copied()))?;
    if rows > crate::state::seen::COMPACT_ABOVE {
        // Rewritten as stored, all 16 bytes of each key, which the set
        // does not keep (`dedupe`): read again, as compactions are rare.
        let mut all = Vec::new();
        for_each_seen_row(wh, schema, &mut |keys| all.extend_from_slice(keys))?;
        all.sort_unstable();
        all.dedup();
        write_seen(wh, schema, catalog, &all, false)?;
    }
    Ok(set)
}

/// Hands `f` the keys of each `_ps_seen` row; returns the rows read.
fn for_each_seen_row(
    wh: &mut dyn Warehouse,
    schema: &str,
    f: &mut dyn FnMut(&[u128]),
) -> Result<usize> {
    use crate::state::seen;
    let d = wh.dialect().clone();
    let (mut rows, mut bad, mut buf, mut keys) = (0usize, false, Vec::new(), Vec::new());
    wh.for_each_row(
        &sql::select(&d, schema, c::STATE_SEEN, &[Col::Keys]),
        &mut |r| {
            rows += 1;
            match r.first() {
                Some(Value::Str(cell)) => {
                    keys.clear();
                    bad |= seen::decode(cell, &mut buf, &mut keys).is_none();
                    f(&keys);
                }
                _ => bad = true,
            }
        },
    )?;
    if bad {
        return Err(Error::state(
            schema,
            format!("{} holds a row that is not packed keys", c::STATE_SEEN),
        ));
    }
    Ok(rows)
}

/// The dedupe keys of a space from before `_ps_seen`: every landed message
/// id and refused payload, hashed, and the keys of events deleted by privacy
/// requests (`_ps_forgotten`, where those spaces kept them); written to
/// `_ps_seen` once so later starts read them from there.
fn seen_from_tables(wh: &mut dyn Warehouse, schema: &str, catalog: &Catalog) -> Result<Seen> {
    let d = wh.dialect().clone();
    let mut keys = Vec::new();
    for t in c::CALL_TABLES {
        if catalog.get(t).is_some() {
            wh.for_each_row(&sql::select(&d, schema, t, &[Col::Id]), &mut |r| {
                if let Some(Value::Str(id)) = r.first() {
                    keys.push(message_key(id));
                }
            })?;
        }
    }
    // Refused events are remembered too, so replaying a file does not
    // record its refusals twice.
    wh.for_each_row(
        &sql::select(&d, schema, c::REJECTED_EVENTS, &[Col::Origin, Col::Payload]),
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
            &sql::select(&d, schema, c::STATE_FORGOTTEN, &[Col::K]),
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
            return Err(Error::state(
                schema,
                format!("bad key {k:?} in _ps_forgotten"),
            ));
        }
    }
    keys.sort_unstable();
    keys.dedup();
    if !keys.is_empty() {
        write_seen(wh, schema, catalog, &keys, true)?;
    }
    let mut set = Seen::default();
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
            .ok_or_else(|| Error::state(schema, format!("table {name} is missing")))
    };
    let seen_table = table(c::STATE_SEEN)?;
    let layout = Layout::of(c::STATE_SEEN);
    let rows: Vec<Vec<Value>> = keys
        .chunks(seen::PER_ROW)
        .enumerate()
        .map(|(i, part)| {
            let mut row = layout.row();
            row.set(Col::Batch, Value::Int(i as i64))
                .set(Col::Keys, Value::Str(seen::encode(part)));
            row.into_cells()
        })
        .collect();
    transaction(wh, |wh| {
        wh.execute(&sql::delete_all(&d, schema, c::STATE_SEEN))?;
        wh.append(schema, &seen_table, &rows)?;
        if mark {
            set_meta(wh, schema, SEEN_META, "1")?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Loads the suppressions (`_ps_suppressions`, written by privacy requests)
/// into the engine at [`Space::open`]. (The keys of
/// deleted events need nothing here: they stay in `_ps_seen`.)
fn load_suppressions(wh: &mut dyn Warehouse, schema: &str, engine: &mut Engine) -> Result<()> {
    let d = wh.dialect().clone();
    for r in wh.query(&sql::select(
        &d,
        schema,
        c::STATE_SUPPRESSIONS,
        &[Col::ExternalIdType, Col::ExternalIdValue],
    ))? {
        if let (Some(Value::Str(t)), Some(Value::Str(v))) = (r.first(), r.get(1)) {
            engine.suppress(t, v);
        }
    }
    Ok(())
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
                let d = wh.dialect().clone();
                wh.execute(&sql::create_schema(&d, &schema))?;
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
                .ok_or_else(|| Error::state(&schema, format!("table {} is missing", t.name)))?;
            if have.columns.len() < t.columns.len()
                || have.columns[..t.columns.len()] != t.columns[..]
            {
                return Err(Error::state(
                    &schema,
                    format!("table {} does not have the expected columns", t.name),
                ));
            }
        }
        let d = wh.dialect().clone();
        let mut meta: BTreeMap<String, String> = BTreeMap::new();
        for r in wh.query(&sql::select(
            &d,
            &schema,
            c::STATE_META,
            &[Col::Key, Col::Value],
        ))? {
            if let (Some(Value::Str(k)), Some(Value::Str(v))) = (r.first(), r.get(1)) {
                meta.insert(k.clone(), v.clone());
            }
        }
        if let Some(v) = meta.get("version").cloned() {
            if v == crate::state::MIGRATES_FROM {
                migrate_state_log(wh, &schema, &mut meta)?;
            } else if v != STATE_VERSION {
                return Err(Error::state(
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
                .map_err(|e| Error::state(&schema, format!("engine meta: {e}")))?,
            None => EngineMeta::default(),
        };
        let t = Instant::now();
        // Streamed and decoded row by row: holding the text rows and their
        // bytes at once doubled the peak memory of a restart.
        let mut chunks: Vec<(i64, Vec<u8>)> = Vec::new();
        let mut bad = None;
        wh.for_each_row(
            &sql::select(&d, &schema, c::STATE_PROFILES, &[Col::Chunk, Col::State]),
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
            return Err(Error::state(&schema, m));
        }
        recovery.fetch = t.elapsed() - recovery.decode;
        let t = Instant::now();
        let log: Vec<(i64, &[u8])> = chunks.iter().map(|(l, b)| (*l, b.as_slice())).collect();
        let engine = ps_identity::newest_cover(&log)
            .and_then(|cover| {
                Engine::restore_snapshot(
                    settings,
                    cfg.identity.id_scheme,
                    &schema,
                    &engine_meta,
                    cover.iter().map(|c| &**c),
                )
            })
            .map_err(|e| Error::state(&schema, e.to_string()))?;
        drop(log);
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
        let next_seq = crate::commit::meta_seq(&meta);
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
        let cfg_compute = cfg.compute.clone();
        let mut compute = cfg_compute.clone().map(crate::compute::Compute::new);
        if let Some(c) = &mut compute {
            crate::compute_state::load(wh, &schema, &engine, c)?;
            c.reconcile(
                wh,
                &schema,
                &catalog,
                &engine,
                meta.get(crate::compute_backfill::COMPUTE_META)
                    .map(String::as_str),
            )?;
        }
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
            state_layer: meta
                .get(crate::state::LAYER_META)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            state_log: meta
                .get(crate::state::LOG_META)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            compact_state: false,
            meta,
            scratch_written: Vec::new(),
            scratch_text: String::new(),
            layouts: Layouts::new(),
            recovery,
            compute_keys: cfg_compute
                .iter()
                .flat_map(|d| {
                    d.traits
                        .iter()
                        .map(|t| t.key.clone())
                        .chain(d.audiences.iter().map(|a| a.key.clone()))
                })
                .collect(),
            compute,
        })
    }
}

/// Moves a space from state version 2 (one row per fixed chunk of
/// profiles, `chunk` its number) to the log of version 3: its rows are one
/// complete layer, so they all become layer 0. One transaction, so a crash
/// leaves either layout whole.
fn migrate_state_log(
    wh: &mut dyn Warehouse,
    schema: &str,
    meta: &mut BTreeMap<String, String>,
) -> Result<()> {
    let d = wh.dialect().clone();
    let profiles = wh.query(&sql::count(&d, schema, c::STATE_PROFILES, None))?;
    let rows = match profiles.first().and_then(|r| r.first()) {
        Some(Value::Int(n)) => *n,
        _ => 0,
    };
    transaction(wh, |wh| {
        wh.execute(&sql::state_rows_to_layer_zero(&d, schema))?;
        set_meta(wh, schema, "version", STATE_VERSION)
    })?;
    meta.insert("version".to_owned(), STATE_VERSION.to_owned());
    // Each version-2 row held up to CHUNK profiles.
    meta.insert(
        crate::state::LOG_META.to_owned(),
        (rows.max(0) as u64 * u64::from(crate::state::CHUNK)).to_string(),
    );
    tracing::info!(space = %schema, "engine state moved to the version-3 log layout");
    Ok(())
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
