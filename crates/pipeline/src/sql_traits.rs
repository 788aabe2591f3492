//! SQL traits (issue 19): `[[sql_traits]]` queries the user writes, run on
//! the warehouse, whose rows set traits on the profiles they name.
//!
//! A query returns one identifier column, named `user_id`, `email` or
//! `anonymous_id`, and up to 25 trait columns (snake_case, not a column of
//! the profile tables nor a computed trait's or audience's key). Each row's
//! identifier is looked up in the identity graph: a known one gives its
//! canonical profile, whose SQL values become the row's cells (NULL removes
//! the trait); an unknown one is counted, never creates a profile. A
//! profile the query no longer returns keeps its last values. Values that
//! changed land like computed values (`crate::compute_rows`): a snapshot
//! row, an `identifies` row when `emit_identifies`, and audiences that read
//! the trait are re-evaluated.
//!
//! Queries run through `ps_warehouse::ReadOnly`, the fences of `query`: one
//! read statement, in a read-only transaction, with a time limit.

use crate::compute::Cause;
use crate::compute_backfill::json_of;
use crate::space::Space;
use ps_spec::naming::is_snake_case;
use ps_spec::Value;
use ps_warehouse::{contract as c, QueryLimits, Warehouse};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::time::Duration;

/// Trait columns a query may return.
pub(crate) const MAX_TRAIT_COLUMNS: usize = 25;

/// Rows a query may return; more is refused rather than cut, since a cut
/// would depend on the order the warehouse gives rows in.
const MAX_ROWS: usize = 5_000_000;

/// What one SQL trait's run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqlTraitRun {
    /// The `[[sql_traits]]` key.
    pub key: String,
    /// Rows the query returned.
    pub rows: usize,
    /// Rows whose identifier is known.
    pub matched: usize,
    /// Rows whose identifier no profile holds (counted, not created).
    pub unknown: usize,
    /// Profiles whose values changed.
    pub changed: usize,
    /// Why the query's values were not used (a bad query or result).
    pub error: Option<String>,
}

const ID_COLUMNS: [&str; 3] = ["user_id", "email", "anonymous_id"];

impl Space {
    /// Whether the space has `[[sql_traits]]`.
    pub fn has_sql_traits(&self) -> bool {
        self.compute
            .as_ref()
            .is_some_and(|c| !c.defs.sql_traits.is_empty())
    }

    /// Runs the SQL traits due at `now` (microseconds): each whose `every`
    /// has passed since its last run, or every one with `all`. The values
    /// land with the next commit, which also records when each ran.
    pub fn run_sql_traits(
        &mut self,
        wh: &mut dyn Warehouse,
        now: i64,
        all: bool,
    ) -> Vec<SqlTraitRun> {
        let Some(defs) = self.compute.as_ref().map(|c| c.defs.clone()) else {
            return Vec::new();
        };
        let due: Vec<_> = defs
            .sql_traits
            .iter()
            .filter(|t| {
                all || self
                    .meta
                    .get(&format!("sql_trait:{}", t.key))
                    .and_then(|s| s.parse::<i64>().ok())
                    .is_none_or(|last| now.saturating_sub(last) >= t.every.as_micros() as i64)
            })
            .collect();
        if due.is_empty() {
            return Vec::new();
        }
        let ro = match wh.read_only() {
            Ok(ro) => ro,
            Err(e) => {
                return due
                    .iter()
                    .map(|t| SqlTraitRun {
                        key: t.key.clone(),
                        error: Some(e.to_string()),
                        ..SqlTraitRun::default()
                    })
                    .collect()
            }
        };
        let limits = QueryLimits {
            timeout: Duration::from_secs(300),
            max_rows: MAX_ROWS,
        };
        let mut runs = Vec::new();
        for t in due {
            let mut run = SqlTraitRun {
                key: t.key.clone(),
                ..SqlTraitRun::default()
            };
            match ro.query(&t.query, &limits) {
                Err(e) => run.error = Some(e.to_string()),
                Ok(a) if a.truncated => {
                    run.error = Some(format!("returned more than {MAX_ROWS} rows"))
                }
                Ok(a) => match self.apply_sql_rows(&a.columns, a.rows, &mut run) {
                    Ok(()) => {}
                    Err(m) => run.error = Some(m),
                },
            }
            self.meta
                .insert(format!("sql_trait:{}", t.key), now.to_string());
            if let Some(e) = &run.error {
                tracing::warn!(sql_trait = %t.key, error = %e, "SQL trait not applied");
            }
            runs.push(run);
        }
        runs
    }

    /// Checks a query's columns and sets the values of its rows.
    fn apply_sql_rows(
        &mut self,
        columns: &[String],
        rows: Vec<Vec<Value>>,
        run: &mut SqlTraitRun,
    ) -> Result<(), String> {
        let Some(id_at) = columns
            .iter()
            .position(|c| ID_COLUMNS.contains(&c.as_str()))
        else {
            return Err(format!(
                "the query returns no identifier column (one of {})",
                ID_COLUMNS.join(", ")
            ));
        };
        let id_type = columns[id_at].clone();
        let traits: Vec<(usize, &String)> = columns
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != id_at)
            .collect();
        if traits.is_empty() || traits.len() > MAX_TRAIT_COLUMNS {
            return Err(format!(
                "the query returns {} trait columns (1 to {MAX_TRAIT_COLUMNS})",
                traits.len()
            ));
        }
        let reserved = c::reserved_trait_names();
        for (_, name) in &traits {
            if !is_snake_case(name) {
                return Err(format!("column {name:?} is not snake_case"));
            }
            if reserved.contains(&name.as_str()) || self.compute_keys.contains(name.as_str()) {
                return Err(format!(
                    "column {name:?} clashes with a column of the profile tables or a computed key"
                ));
            }
            if ID_COLUMNS.contains(&name.as_str()) {
                return Err(format!("column {name:?}: one identifier column per query"));
            }
        }
        // Several rows for one profile: the last by identifier value wins,
        // so the outcome never depends on the order rows come in.
        let mut found: Vec<(String, ps_identity::ProfileIdx, Vec<Value>)> = Vec::new();
        for mut r in rows {
            run.rows += 1;
            let id = match std::mem::replace(&mut r[id_at], Value::Null) {
                Value::Str(s) => s,
                Value::Int(i) => i.to_string(),
                _ => {
                    run.unknown += 1;
                    continue;
                }
            };
            match self.engine.lookup(&id_type, &id) {
                Some(p) => {
                    run.matched += 1;
                    found.push((id, p, r));
                }
                None => run.unknown += 1,
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let Some(compute) = &mut self.compute else {
            return Ok(());
        };
        let mut new: BTreeMap<ps_identity::ProfileIdx, BTreeMap<String, Json>> = BTreeMap::new();
        for (_, p, r) in found {
            let p = self.engine.canonical(p);
            let base = compute
                .profiles
                .get(&p)
                .map(|s| s.sql.clone())
                .unwrap_or_default();
            let vals = new.entry(p).or_insert(base);
            for (i, name) in &traits {
                match json_of(r[*i].clone()) {
                    Some(v) => vals.insert((*name).clone(), v),
                    None => vals.remove(*name),
                };
            }
        }
        for (p, vals) in new {
            let st = compute.profiles.entry(p).or_default();
            if st.sql != vals {
                st.sql = vals;
                compute.dirty.insert(p);
                compute.touch(p, Cause::SqlTrait);
                run.changed += 1;
            }
        }
        Ok(())
    }
}
