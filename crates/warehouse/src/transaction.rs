//! One transaction, written once: [`transaction`] runs a caller's writes
//! between `begin` and `commit`, rolling back on failure; [`write_meta`] and
//! [`set_meta`] replace the space's `_ps_meta` record, whose sequence,
//! engine counters and input checkpoints are the exactly-once watermark:
//! written in the same transaction as the rows they account for, a crash
//! never leaves one without the other.

use crate::contract::{self as c, Col, Layout, TableSchema};
use crate::error::Result;
use crate::sql;
use crate::Warehouse;
use ps_spec::Value;

/// Runs `f` in one warehouse transaction: committed if it succeeds, rolled
/// back (best effort: the connection may be gone) if it fails.
pub fn transaction<T>(
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

/// The `_ps_meta` row `key = value`.
fn meta_row(layout: &Layout, key: &str, value: &str) -> Vec<Value> {
    let mut row = layout.row();
    row.set(Col::Key, Value::Str(key.to_owned()))
        .set(Col::Value, Value::Str(value.to_owned()));
    row.into_cells()
}

/// Replaces the whole `_ps_meta` record of `schema` with `meta`, inside the
/// caller's transaction.
pub fn write_meta<'a>(
    wh: &mut dyn Warehouse,
    schema: &str,
    meta: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<()> {
    let layout = Layout::of(c::STATE_META);
    let rows: Vec<Vec<Value>> = meta
        .into_iter()
        .map(|(k, v)| meta_row(&layout, k, v))
        .collect();
    let d = wh.dialect().clone();
    wh.execute(&sql::delete_all(&d, schema, c::STATE_META))?;
    wh.append(schema, &meta_table(), &rows)
}

/// Sets one `_ps_meta` key of `schema`, inside the caller's transaction.
pub fn set_meta(wh: &mut dyn Warehouse, schema: &str, key: &str, value: &str) -> Result<()> {
    let d = wh.dialect().clone();
    wh.execute(&sql::delete_where(
        &d,
        schema,
        c::STATE_META,
        &sql::eq(Col::Key, key),
    ))?;
    let layout = Layout::of(c::STATE_META);
    wh.append(schema, &meta_table(), &[meta_row(&layout, key, value)])
}

/// `_ps_meta` as the contract defines it (it never grows).
fn meta_table() -> TableSchema {
    c::fixed_table(c::STATE_META).expect("the contract has _ps_meta")
}
