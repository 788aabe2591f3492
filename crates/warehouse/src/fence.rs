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
            "SELECT pg_advisory_xact_lock({})",
            lock_key(schema)
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

/// The PostgreSQL advisory lock key of `schema`'s fence (a `bigint`
/// expression).
fn lock_key(schema: &str) -> String {
    format!(
        "hashtext({})::bigint",
        literal(&format!("profiles-sync fence {schema}"))
    )
}

/// On PostgreSQL, the server process ids of the sessions other than this
/// one that hold `schema`'s fence lock: each is inside a fenced transaction
/// (a lease holder's commit). Empty elsewhere.
pub fn fence_holders(wh: &mut dyn Warehouse, schema: &str) -> Result<Vec<i64>> {
    if wh.kind() != "postgres" {
        return Ok(Vec::new());
    }
    // `pg_locks` shows a one-`bigint` advisory lock as its high half in
    // `classid`, its low half in `objid` and 1 in `objsubid`.
    let rows = wh.query(&format!(
        "SELECT l.pid FROM pg_locks l, (SELECT {} AS k) key \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND l.classid::bigint = (key.k >> 32) & 4294967295 \
         AND l.objid::bigint = key.k & 4294967295 \
         AND l.pid <> pg_backend_pid() ORDER BY 1",
        lock_key(schema)
    ))?;
    Ok(rows
        .iter()
        .filter_map(|r| match r.first() {
            Some(Value::Int(p)) => Some(*p),
            _ => None,
        })
        .collect())
}

/// For a new lease holder, before it opens the space: on PostgreSQL, waits
/// up to `grace` for the other sessions holding `schema`'s fence lock to
/// end their transactions, then terminates them (`pg_terminate_backend`);
/// returns how many it terminated. Such a session is an older holder's,
/// inside a commit: if that holder is paused (a stop signal, a VM freeze,
/// a long GC), the lock it holds would keep the new holder's fencing commit
/// waiting for as long as the pause lasts. Its transaction is doomed anyway
/// (its lease has lapsed, so its own check before committing or the fence
/// refuses it) and rolls back whole. A no-op elsewhere: DuckDB has one
/// writer per file.
pub fn end_older_holders(
    wh: &mut dyn Warehouse,
    schema: &str,
    grace: std::time::Duration,
) -> Result<usize> {
    let deadline = std::time::Instant::now() + grace;
    loop {
        let holders = fence_holders(wh, schema)?;
        if holders.is_empty() {
            return Ok(0);
        }
        if std::time::Instant::now() >= deadline {
            let list: Vec<String> = holders.iter().map(i64::to_string).collect();
            let ended = wh.query(&format!(
                "SELECT pg_terminate_backend(p) FROM unnest(ARRAY[{}]::integer[]) AS p",
                list.join(", ")
            ))?;
            return Ok(ended
                .iter()
                .filter(|r| matches!(r.first(), Some(Value::Bool(true))))
                .count());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
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
