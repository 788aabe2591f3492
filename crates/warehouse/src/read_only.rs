//! Read-only queries: what `profiles-sync query` and `POST /admin/query` run.
//!
//! The admin token lets people look at their data; it must not hand them the
//! server's file system or a way to drop the space by accident. So a query
//! passes four fences, each enough for some statements and together enough
//! for all:
//!
//! 1. **One read statement.** The text may hold no `;` (trailing ones aside),
//!    so the database never sees a second statement — the `duckdb` crate would
//!    run every statement before the last one. Its first keyword must be one
//!    that reads (`SELECT`, `WITH`, `VALUES`, `FROM`, `TABLE`, `DESCRIBE`,
//!    `SHOW`, `SUMMARIZE`, `PIVOT`, `UNPIVOT`); anything else is refused with
//!    its keyword named, before it reaches the database.
//! 2. **A subquery.** The text runs as `SELECT * FROM (<text>) LIMIT n+1`, so
//!    whatever the first check missed must still parse as a query in the
//!    database's own grammar. The limit is the row limit, applied by the
//!    database.
//! 3. **A read-only transaction**: DuckDB's `BEGIN TRANSACTION READ ONLY`,
//!    PostgreSQL's `BEGIN READ ONLY`. A function that would write inside a
//!    query (`nextval`, `lo_import`) fails, and the transaction is rolled
//!    back whatever happens.
//! 4. **No way out of the database.** DuckDB runs with external access off
//!    (no file reads or writes, no `ATTACH`, no extension loading): set for
//!    the whole database the first time a read-only handle is taken. On
//!    PostgreSQL a user that may read or write server files (a superuser, or
//!    a member of `pg_read_server_files`, `pg_write_server_files` or
//!    `pg_execute_server_program`) runs the query as `pg_read_all_data`, and
//!    the few functions that could undo that or run text as a query
//!    (`set_config`, `query_to_xml`, …) are refused by name.
//!
//! Queries get a time limit (DuckDB: the connection is interrupted;
//! PostgreSQL: `statement_timeout`) and run on a connection of their own, so
//! a sync keeps landing while one runs.
//!
//! Connections are reused: a query takes an idle one (or opens one), and
//! gives it back when it ends well. The Profile API's lookups are a few
//! milliseconds of work each, and a fresh PostgreSQL connection (TCP,
//! authentication, the driver's runtime) or a fresh DuckDB clone (plus its
//! `USE`) would cost as much as the lookup. A connection that failed or ran
//! past its time limit is dropped rather than reused. Every fence above is
//! per query (the transaction, the role, the statement checks), so a reused
//! connection carries nothing from one query to the next.

use crate::error::{Error, ErrorKind, Result};
use ps_spec::Value;
use std::sync::Mutex;

/// How long a query may run ([`ErrorKind::Timeout`] past it) and how many
/// rows it may return; a server setting, so it is defined with the others.
pub use ps_config::QueryLimits;

/// A query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryAnswer {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// At most [`QueryLimits::max_rows`] rows.
    pub rows: Vec<Vec<Value>>,
    /// Whether the query had more rows than the limit.
    pub truncated: bool,
}

/// Runs read-only queries on a warehouse, each on a connection of its own;
/// taken with [`crate::Warehouse::read_only`].
///
/// It can be shared between threads. For DuckDB it keeps the database
/// open: drop it before the database is opened again in this process.
#[derive(Debug)]
pub struct ReadOnly {
    inner: Inner,
}

enum Inner {
    /// A connection to the same DuckDB database; queries run on clones of
    /// it, each of which `USE`s the catalog (a per-connection setting) once.
    DuckDb {
        base: Mutex<duckdb::Connection>,
        catalog: Option<String>,
        idle: Idle<duckdb::Connection>,
    },
    /// The URL to connect to, and the connections that are open.
    Postgres {
        url: String,
        idle: Idle<crate::postgres::Postgres>,
    },
}

/// Connections at rest between queries. At most [`MAX_IDLE`] are kept: more
/// queries than that at once open connections of their own, which close
/// when they end.
struct Idle<C>(Mutex<Vec<C>>);

/// Idle connections kept: the Profile API's handlers and the admin query
/// path rarely run more lookups at once on a 2-to-8-core server.
const MAX_IDLE: usize = 8;

impl<C> Idle<C> {
    fn new() -> Idle<C> {
        Idle(Mutex::new(Vec::new()))
    }

    /// Runs `f` on an idle connection, or on one `open` gives when none is
    /// idle, and keeps the connection for the next query if `f` succeeded.
    fn with<T>(
        &self,
        open: impl FnOnce() -> Result<C>,
        f: impl FnOnce(&mut C) -> Result<T>,
    ) -> Result<T> {
        let taken = self.0.lock().ok().and_then(|mut idle| idle.pop());
        let mut conn = match taken {
            Some(c) => c,
            None => open()?,
        };
        let out = f(&mut conn)?;
        if let Ok(mut idle) = self.0.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        Ok(out)
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Inner::DuckDb { .. } => "DuckDb",
            Inner::Postgres { .. } => "Postgres",
        })
    }
}

impl ReadOnly {
    pub(crate) fn duckdb(conn: duckdb::Connection, catalog: Option<String>) -> ReadOnly {
        ReadOnly {
            inner: Inner::DuckDb {
                base: Mutex::new(conn),
                catalog,
                idle: Idle::new(),
            },
        }
    }

    pub(crate) fn postgres(url: String) -> ReadOnly {
        ReadOnly {
            inner: Inner::Postgres {
                url,
                idle: Idle::new(),
            },
        }
    }

    /// How this warehouse spells SQL (names qualified as the warehouse's own
    /// [`crate::Warehouse::dialect`] qualifies them), for statements built
    /// to run here.
    pub fn dialect(&self) -> crate::Dialect {
        match &self.inner {
            Inner::DuckDb { catalog, .. } => crate::Dialect {
                catalog: catalog.clone(),
                ..crate::Dialect::duckdb("")
            },
            Inner::Postgres { .. } => crate::Dialect::postgres(),
        }
    }

    /// Runs one read statement within `limits`. A statement that is not a
    /// read, or that reaches outside the database, fails with
    /// [`ErrorKind::Refused`]; one that runs too long with
    /// [`ErrorKind::Timeout`]. Nothing in the warehouse changes either way.
    pub fn query(&self, sql: &str, limits: &QueryLimits) -> Result<QueryAnswer> {
        let sql = check(sql)?;
        let wrapped = wrap(sql, limits.max_rows);
        let mut answer = match &self.inner {
            Inner::DuckDb {
                base,
                catalog,
                idle,
            } => idle.with(
                || {
                    let base = base
                        .lock()
                        .map_err(|_| Error::new(ErrorKind::Query, "a query panicked"))?;
                    crate::duckdb::read_only_connection(&base, catalog.as_deref())
                },
                |conn| crate::duckdb::read_only_query(conn, &wrapped, limits),
            )?,
            Inner::Postgres { url, idle } => {
                crate::postgres::check_functions(sql)?;
                idle.with(
                    || crate::postgres::Postgres::connect(url),
                    |conn| conn.read_only_query(&wrapped, limits),
                )?
            }
        };
        answer.truncated = answer.rows.len() > limits.max_rows;
        answer.rows.truncate(limits.max_rows);
        Ok(answer)
    }
}

/// First keywords of the statements the query path runs.
const READ_KEYWORDS: &[&str] = &[
    "select",
    "with",
    "values",
    "from",
    "table",
    "describe",
    "show",
    "summarize",
    "pivot",
    "unpivot",
];

fn refused(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Refused, msg.into())
}

/// The statement without trailing `;` and blanks, if it is one read
/// statement; see the module docs.
pub(crate) fn check(sql: &str) -> Result<&str> {
    let sql = sql.trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    if sql.contains(';') {
        return Err(refused(
            "one statement at a time: the query may not contain ';' \
             (not even inside a string; use chr(59))",
        ));
    }
    match first_keyword(sql) {
        None => Err(refused("the query is empty")),
        Some(k) if READ_KEYWORDS.contains(&k.to_ascii_lowercase().as_str()) => Ok(sql),
        Some(k) => Err(refused(format!(
            "{} statements are refused: the query path only reads \
             (SELECT, WITH, VALUES, FROM, TABLE, DESCRIBE, SHOW, SUMMARIZE, PIVOT); \
             privacy requests have their own commands",
            k.to_ascii_uppercase()
        ))),
    }
}

/// The first word of `sql` after blanks, comments and opening parentheses.
fn first_keyword(sql: &str) -> Option<&str> {
    let mut rest = sql;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|k| !k.is_empty())
}

/// The statement as a subquery with the row limit (one row more, to tell
/// that there were more). The line breaks end a trailing `--` comment.
fn wrap(sql: &str, max_rows: usize) -> String {
    format!(
        "SELECT * FROM (\n{sql}\n) AS ps_query LIMIT {}",
        max_rows.saturating_add(1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pass_and_everything_else_is_refused_with_its_keyword() {
        for ok in [
            "SELECT 1",
            "select 1;",
            "  -- look\n/* here */ (SELECT 1)  ;; \n",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "FROM t",
            "DESCRIBE t",
            "values (1)",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for (bad, keyword) in [
            ("DROP SCHEMA s CASCADE", "DROP"),
            ("delete from t", "DELETE"),
            ("INSERT INTO t VALUES (1)", "INSERT"),
            ("COPY (SELECT 42) TO '/tmp/x'", "COPY"),
            ("ATTACH '/tmp/x.duckdb'", "ATTACH"),
            ("install httpfs", "INSTALL"),
            ("LOAD httpfs", "LOAD"),
            ("/* SELECT */ UPDATE t SET a = 1", "UPDATE"),
            ("SET memory_limit = '1MB'", "SET"),
            ("CALL checkpoint()", "CALL"),
            ("EXPLAIN SELECT 1", "EXPLAIN"),
        ] {
            let e = check(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Refused, "{bad}");
            assert!(e.to_string().contains(keyword), "{bad}: {e}");
        }
        for bad in [
            "SELECT 1; DROP SCHEMA s CASCADE",
            "SELECT ';'",
            "",
            " ; ",
            "-- only a comment",
        ] {
            assert_eq!(check(bad).unwrap_err().kind(), ErrorKind::Refused, "{bad}");
        }
    }

    #[test]
    fn the_wrapper_ends_a_trailing_line_comment_and_asks_one_row_more() {
        assert_eq!(
            wrap("SELECT 1 -- note", 10),
            "SELECT * FROM (\nSELECT 1 -- note\n) AS ps_query LIMIT 11"
        );
        assert!(wrap("SELECT 1", usize::MAX).ends_with(&usize::MAX.to_string()));
    }
}
