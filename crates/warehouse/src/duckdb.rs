//! The embedded default warehouse: one DuckDB file.
//!
//! Rows go in through DuckDB's Appender (about a million rows a second into a
//! file on these machines), inside the same explicit transaction as the DDL,
//! the engine state and the materialization, so a load either lands whole or
//! not at all.

use crate::contract::TableSchema;
use crate::dialect::{literal, Dialect};
use crate::error::{Error, ErrorKind, Result};
use crate::Warehouse;
use duckdb::types::{TimeUnit, ToSqlOutput, ValueRef};
use duckdb::{Connection, ToSql};
use ps_spec::Value;
use std::path::Path;

/// A DuckDB file (or an in-memory database for `duckdb://:memory:`).
pub struct DuckDb {
    conn: Connection,
    dialect: Dialect,
}

impl std::fmt::Debug for DuckDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuckDb")
            .field("catalog", &self.dialect.catalog)
            .finish()
    }
}

fn q(e: duckdb::Error, sql: &str) -> Error {
    Error::new(ErrorKind::Query, e).with_statement(sql)
}

impl DuckDb {
    pub fn open(path: &str) -> Result<DuckDb> {
        let conn = if path == ":memory:" {
            Connection::open_in_memory()
        } else {
            if let Some(dir) = Path::new(path).parent() {
                if !dir.as_os_str().is_empty() && !dir.exists() {
                    return Err(Error::new(
                        ErrorKind::Connect,
                        format!(
                            "directory {} of DuckDB file {path} does not exist",
                            dir.display()
                        ),
                    ));
                }
            }
            Connection::open(path)
        }
        .map_err(|e| Error::new(ErrorKind::Connect, format!("{path}: {e}")))?;
        let catalog: String = conn
            .query_row("SELECT current_database()", [], |r| r.get(0))
            .map_err(|e| q(e, "SELECT current_database()"))?;
        Ok(DuckDb {
            conn,
            dialect: Dialect::duckdb(&catalog),
        })
    }
}

/// One cell handed to the Appender without copying strings.
struct Cell<'a>(&'a Value);

impl ToSql for Cell<'_> {
    fn to_sql(&self) -> duckdb::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Boolean(*b),
            Value::Int(i) => ValueRef::BigInt(*i),
            Value::Float(f) => ValueRef::Double(*f),
            Value::Str(s) => ValueRef::Text(s.as_bytes()),
            Value::Ts(t) => ValueRef::Timestamp(TimeUnit::Microsecond, *t),
        }))
    }
}

static NULL: Value = Value::Null;

fn from_ref(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Boolean(b) => Value::Bool(b),
        ValueRef::TinyInt(i) => Value::Int(i.into()),
        ValueRef::SmallInt(i) => Value::Int(i.into()),
        ValueRef::Int(i) => Value::Int(i.into()),
        ValueRef::BigInt(i) => Value::Int(i),
        ValueRef::HugeInt(i) => Value::Int(i as i64),
        ValueRef::UTinyInt(i) => Value::Int(i.into()),
        ValueRef::USmallInt(i) => Value::Int(i.into()),
        ValueRef::UInt(i) => Value::Int(i.into()),
        ValueRef::UBigInt(i) => Value::Int(i as i64),
        ValueRef::Float(f) => Value::Float(f.into()),
        ValueRef::Double(f) => Value::Float(f),
        ValueRef::Timestamp(unit, t) => Value::Ts(match unit {
            TimeUnit::Second => t * 1_000_000,
            TimeUnit::Millisecond => t * 1_000,
            TimeUnit::Microsecond => t,
            TimeUnit::Nanosecond => t / 1_000,
        }),
        ValueRef::Text(b) => Value::Str(String::from_utf8_lossy(b).into_owned()),
        other => Value::Str(format!("{other:?}")),
    }
}

impl Warehouse for DuckDb {
    fn kind(&self) -> &'static str {
        "duckdb"
    }

    fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    fn describe(&mut self, schema: &str) -> Result<Vec<TableSchema>> {
        let catalog = self.dialect.catalog.clone().unwrap_or_default();
        let sql = format!(
            "SELECT table_name, column_name, data_type FROM information_schema.columns \
             WHERE table_schema = {} AND table_catalog = {} ORDER BY table_name, ordinal_position",
            literal(schema),
            literal(&catalog)
        );
        let rows = self.query(&sql)?;
        crate::group_columns(rows)
    }

    fn begin(&mut self) -> Result<()> {
        self.execute("BEGIN TRANSACTION")
    }

    fn commit(&mut self) -> Result<()> {
        self.execute("COMMIT")
    }

    fn rollback(&mut self) -> Result<()> {
        self.execute("ROLLBACK")
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(|e| q(e, sql))
    }

    fn query(&mut self, sql: &str) -> Result<Vec<Vec<Value>>> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| q(e, sql))?;
        let mut rows = stmt.query([]).map_err(|e| q(e, sql))?;
        let n = rows.as_ref().map_or(0, |s| s.column_count());
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| q(e, sql))? {
            let mut r = Vec::with_capacity(n);
            for i in 0..n {
                r.push(from_ref(row.get_ref(i).map_err(|e| q(e, sql))?));
            }
            out.push(r);
        }
        Ok(out)
    }

    fn append(&mut self, schema: &str, table: &TableSchema, rows: &[Vec<Value>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let what = format!("appending to {schema}.{}", table.name);
        let catalog = self.dialect.catalog.clone().unwrap_or_default();
        let mut app = self
            .conn
            .appender_to_catalog_and_db(&table.name, &catalog, schema)
            .map_err(|e| q(e, &what))?;
        let width = table.columns.len();
        let mut cells: Vec<Cell<'_>> = Vec::with_capacity(width);
        for row in rows {
            cells.clear();
            cells.extend(row.iter().take(width).map(Cell));
            while cells.len() < width {
                cells.push(Cell(&NULL));
            }
            app.append_row(duckdb::appender_params_from_iter(cells.iter()))
                .map_err(|e| q(e, &what))?;
        }
        app.flush().map_err(|e| q(e, &what))
    }
}
