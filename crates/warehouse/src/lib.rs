//! # ps-warehouse: where the tables live
//!
//! The [`contract`] module defines every table the product lands; the
//! [`Warehouse`] trait is the one seam between the pipeline and a database, and
//! each warehouse is a module behind it ([`duckdb`], [`postgres`]). The
//! pipeline never knows which one it talks to: it asks the catalog for columns,
//! hands over rows in contract order, and runs the SQL that
//! `ps-materialize` writes through [`Warehouse::execute`].
//!
//! A warehouse offers transactions, and the pipeline puts everything a batch
//! changes — rows, new columns, engine state, checkpoint, materialization — in
//! one of them.

pub mod contract;
pub mod dialect;
pub mod duckdb;
mod error;
pub mod postgres;
mod read_only;
pub mod rows;

pub use contract::{Catalog, Column, Ddl, TableId, TableSchema};
pub use dialect::{literal, quote, Dialect};
pub use error::{Error, ErrorKind, Result};
pub use read_only::{QueryAnswer, QueryLimits, ReadOnly};
pub use rows::{Cell, ColumnBuf, RowBuffer};

use ps_spec::{ColumnType, Value};

/// A database that holds a space's tables.
pub trait Warehouse: Send {
    /// `"duckdb"` or `"postgres"`, for logs and summaries.
    fn kind(&self) -> &'static str;
    fn dialect(&self) -> &Dialect;
    /// The tables of `schema` with their columns in table order.
    fn describe(&mut self, schema: &str) -> Result<Vec<TableSchema>>;
    fn begin(&mut self) -> Result<()>;
    fn commit(&mut self) -> Result<()>;
    fn rollback(&mut self) -> Result<()>;
    /// Runs one or more statements that return nothing.
    fn execute(&mut self, sql: &str) -> Result<()>;
    /// Runs a query and returns all its rows (for small results and state).
    fn query(&mut self, sql: &str) -> Result<Vec<Vec<Value>>>;
    /// Runs a query and hands each row to `f` as it arrives, for results
    /// too big to hold twice (the engine state and dedupe keys at start-up):
    /// nothing but the current row is buffered on this side.
    fn for_each_row(&mut self, sql: &str, f: &mut dyn FnMut(Vec<Value>)) -> Result<()>;
    /// Bulk-loads rows into a table; a row shorter than the table is padded
    /// with NULLs (columns added later in the same batch).
    fn append(&mut self, schema: &str, table: &TableSchema, rows: &[Vec<Value>]) -> Result<()>;
    /// Bulk-loads rows kept column by column (the event tables' rows).
    fn append_buffer(&mut self, schema: &str, table: &TableSchema, rows: &RowBuffer) -> Result<()>;
    /// A handle that runs read-only queries on connections of its own (see
    /// [`ReadOnly`]). On DuckDB this turns external access off for the
    /// whole database, for good: nothing the sync does needs it.
    fn read_only(&mut self) -> Result<ReadOnly>;
}

/// Opens a warehouse from its URL: `duckdb://PATH[?threads=N&memory_limit=SIZE]` (or
/// `duckdb://:memory:`), or `postgres://USER:PASS@HOST:PORT/DB`.
pub fn open(url: &str) -> Result<Box<dyn Warehouse>> {
    if let Some(rest) = url.strip_prefix("duckdb://") {
        return Ok(Box::new(duckdb::DuckDb::open_url(rest)?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Box::new(crate::postgres::Postgres::connect(url)?));
    }
    Err(Error::new(
        ErrorKind::Config,
        format!("warehouse.url {url:?} is not supported (expected duckdb://PATH or postgres://USER:PASS@HOST:PORT/DB)"),
    ))
}

/// Maps an `information_schema` type name to a column type.
pub fn parse_type(s: &str) -> Option<ColumnType> {
    let s = s.to_ascii_lowercase();
    Some(match s.as_str() {
        "timestamp" | "timestamp without time zone" => ColumnType::Timestamp,
        "bigint" | "int8" | "integer" | "int4" => ColumnType::Bigint,
        "double" | "double precision" | "float8" => ColumnType::Double,
        "boolean" | "bool" => ColumnType::Boolean,
        "varchar" | "text" | "character varying" => ColumnType::Varchar,
        _ => return None,
    })
}

/// Groups `(table, column, type)` rows into table schemas.
fn group_columns(rows: Vec<Vec<Value>>) -> Result<Vec<TableSchema>> {
    let mut out: Vec<TableSchema> = Vec::new();
    for r in rows {
        let (Some(Value::Str(t)), Some(Value::Str(c)), Some(Value::Str(ty))) =
            (r.first(), r.get(1), r.get(2))
        else {
            return Err(Error::new(
                ErrorKind::Corrupt,
                "unexpected information_schema row",
            ));
        };
        let ty = parse_type(ty).ok_or_else(|| {
            Error::new(
                ErrorKind::Corrupt,
                format!("column {t}.{c} has type {ty}, which this version does not create"),
            )
        })?;
        match out.last_mut() {
            Some(last) if &last.name == t => last.columns.push(Column {
                name: c.clone(),
                ty,
            }),
            _ => out.push(TableSchema {
                name: t.clone(),
                columns: vec![Column {
                    name: c.clone(),
                    ty,
                }],
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod url_tests {
    use super::*;

    fn threads(url: &str) -> Result<i64> {
        let mut wh = open(url)?;
        match wh
            .query("SELECT current_setting('threads')")?
            .remove(0)
            .remove(0)
        {
            Value::Int(n) => Ok(n),
            other => panic!("threads is {other:?}"),
        }
    }

    #[test]
    fn duckdb_threads_default_to_one_and_the_url_can_say_otherwise() {
        assert_eq!(threads("duckdb://:memory:").unwrap(), 1);
        assert_eq!(threads("duckdb://:memory:?threads=2").unwrap(), 2);
        for bad in ["duckdb://:memory:?threads=0", "duckdb://:memory:?threads=x"] {
            let e = threads(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.to_string().contains("threads"), "{e}");
        }
        assert_eq!(
            threads("duckdb://:memory:?memory_limit=300MB&threads=3").unwrap(),
            3
        );
        let e = threads("duckdb://:memory:?memory_limit=lots").unwrap_err();
        assert!(e.to_string().contains("memory_limit"), "{e}");
        let e = threads("duckdb://:memory:?thread=2").unwrap_err();
        assert!(e.to_string().contains("unknown DuckDB option"), "{e}");
    }

    /// Row groups of the file's table `t` after a checkpoint.
    fn row_groups(url: &str, rows: usize) -> Result<i64> {
        let mut wh = open(url)?;
        wh.execute(&format!(
            "CREATE TABLE t AS SELECT range AS i, 'v' || range AS s FROM range({rows})"
        ))?;
        wh.execute("CHECKPOINT")?;
        match wh
            .query("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('t')")?
            .remove(0)
            .remove(0)
        {
            Value::Int(n) => Ok(n),
            other => panic!("row groups: {other:?}"),
        }
    }

    #[test]
    fn duckdb_row_group_size_defaults_to_4096_applies_to_the_file_and_bad_values_name_the_setting()
    {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| format!("duckdb://{}", dir.path().join(name).display());
        // Ours: 4,096-row groups, three for 10,000 rows.
        assert_eq!(row_groups(&file("default.duckdb"), 10_000).unwrap(), 3);
        // DuckDB's default, asked for: 10,000 rows fit one row group.
        let url = format!("{}?row_group_size=122880", file("duckdb-default.duckdb"));
        assert_eq!(row_groups(&url, 10_000).unwrap(), 1);
        // 2,048-row groups: five, and the file keeps its usual catalog name.
        let url = format!("{}?row_group_size=2048&threads=2", file("small.duckdb"));
        assert_eq!(row_groups(&url, 10_000).unwrap(), 5);
        let mut wh = open(&url).unwrap();
        assert_eq!(
            wh.query("SELECT current_database(), count(*) FROM t")
                .unwrap(),
            vec![vec![Value::Str("small".into()), Value::Int(10_000)]]
        );
        for bad in ["0", "1000", "x", "-2048"] {
            let e = open(&format!("{}?row_group_size={bad}", file("bad.duckdb")))
                .err()
                .expect("refused");
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.to_string().contains("row_group_size"), "{e}");
        }
        let e = open("duckdb://:memory:?row_group_size=2048")
            .err()
            .expect("refused");
        assert!(e.to_string().contains("row_group_size"), "{e}");
    }

    /// A file is attached under the name DuckDB gives a file it opens, so
    /// no file name is refused: not the reserved `main`, `temp` and
    /// `system`, nor `memory`, the name of the in-memory database it is
    /// attached to. A file written by a plain open (as before row groups
    /// had a default) is read back whole.
    #[test]
    fn duckdb_files_with_reserved_names_open_and_older_files_read_back() {
        let dir = tempfile::tempdir().unwrap();
        for (file, catalog) in [
            ("memory.duckdb", "memory_db"),
            ("main.duckdb", "main_db"),
            ("Temp.duckdb", "Temp_db"),
            ("system.duckdb", "system_db"),
            ("space.v2.duckdb", "space"),
        ] {
            let url = format!("duckdb://{}", dir.path().join(file).display());
            let mut wh = open(&url).unwrap_or_else(|e| panic!("{file}: {e}"));
            wh.execute("CREATE TABLE t AS SELECT 1 AS i").unwrap();
            assert_eq!(
                wh.query("SELECT current_database(), count(*) FROM t")
                    .unwrap(),
                vec![vec![Value::Str(catalog.into()), Value::Int(1)]],
                "{file}"
            );
        }
        let old = dir.path().join("old.duckdb");
        {
            let mut wh = crate::duckdb::DuckDb::open(old.to_str().unwrap()).unwrap();
            wh.execute("CREATE TABLE t AS SELECT range AS i FROM range(5000)")
                .unwrap();
        }
        let mut wh = open(&format!("duckdb://{}", old.display())).unwrap();
        assert_eq!(
            wh.query("SELECT count(*), sum(i) FROM t").unwrap(),
            vec![vec![Value::Int(5000), Value::Int(12_497_500)]]
        );
    }
}
