//! Fencing: when resolvers on several machines compete for a space's
//! lease, a holder that was paused or cut off may still try to commit after
//! a newer holder took over. Each commit of a lease holder carries its
//! lease's token (rising with every new holder) and, inside its transaction,
//! [`fence`] compares it with the token last committed (`_ps_meta`
//! [`FENCE_META`]): an older token fails the transaction with
//! [`ErrorKind::Fenced`], so nothing of it lands. The newest token is
//! written with the transaction's meta.
//!
//! The comparison and the write must not interleave with another
//! resolver's: on PostgreSQL the transaction first takes a transaction-level
//! advisory lock of the space, so commits of one space are serial, and the
//! read that follows sees every commit made before the lock was granted
//! (READ COMMITTED takes a snapshot per statement). DuckDB has one writer
//! per file, so the read alone is exact there.

use crate::contract::{self as c, Col};
use crate::dialect::literal;
use crate::error::{Error, ErrorKind, Result};
use crate::{sql, transaction, Warehouse};
use ps_spec::Value;

/// The `_ps_meta` key holding the token of the newest committed holder.
pub const FENCE_META: &str = "fence";

/// Inside the caller's transaction: fails with [`ErrorKind::Fenced`] if a
/// commit with a greater token than `token` has landed in `schema`.
pub fn fence(wh: &mut dyn Warehouse, schema: &str, token: u64) -> Result<()> {
    if wh.kind() == "postgres" {
        wh.execute(&format!(
            "SELECT pg_advisory_xact_lock(hashtext({}))",
            literal(&format!("profiles-sync fence {schema}"))
        ))?;
    }
    let d = wh.dialect().clone();
    let rows = wh.query(&sql::select_where_eq(
        &d,
        schema,
        c::STATE_META,
        &[Col::Value],
        Col::Key,
        FENCE_META,
    ))?;
    let stored = rows.first().and_then(|r| match r.first() {
        Some(Value::Str(s)) => s.parse::<u64>().ok(),
        _ => None,
    });
    match stored {
        Some(s) if s > token => Err(Error::new(
            ErrorKind::Fenced,
            format!("a newer lease holder (token {s}) has committed; this one holds token {token}"),
        )),
        _ => Ok(()),
    }
}

/// A transaction of its own that only checks and records `token`: a new
/// lease holder runs it before it reads the space's state, so any older
/// holder's later commit is refused, and the state it then reads is final
/// as far as older holders go.
pub fn fence_commit(wh: &mut dyn Warehouse, schema: &str, token: u64) -> Result<()> {
    transaction(wh, |wh| {
        fence(wh, schema, token)?;
        crate::set_meta(wh, schema, FENCE_META, &token.to_string())
    })
}
