//! # ps-warehouse: where the tables live
//!
//! The last step of the flow before `ps-materialize`: the pipeline hands
//! rows here, and here they become tables in DuckDB or PostgreSQL.
//!
//! - [`contract`] defines every table the product lands ([`TableSchema`],
//!   [`contract::fixed_tables`]), the names rows are built by ([`Col`],
//!   [`Layout`], [`Row`]) and the [`Catalog`] of columns added at run time.
//! - [`sql`] writes the statements about those tables and [`Dialect`] spells
//!   names, types and DDL per warehouse; no other crate writes SQL about the
//!   contract's tables except `ps-materialize` (the materialization).
//! - [`rows`] keeps the event tables' rows column by column ([`RowBuffer`]).
//! - The [`Warehouse`] trait is the one seam between the pipeline and a
//!   database: describe, execute, query, append, and transactions; each
//!   warehouse is a module behind it ([`duckdb`], [`postgres`]), chosen by
//!   URL in [`open`].
//! - [`transaction()`] runs a batch's writes in one transaction, and
//!   [`write_meta`] writes the space's `_ps_meta` record (sequence,
//!   checkpoints) inside it: the rows of a batch and the position they
//!   account for commit together or not at all.
//! - [`fence`] refuses a commit from a writer whose lease token is older
//!   than the one last committed (several resolvers, one space).

#![warn(missing_docs, unreachable_pub)]

pub mod contract;
pub mod dialect;
pub mod duckdb;
mod error;
mod fence;
pub mod postgres;
mod read_only;
pub mod rows;
pub mod sql;
mod transaction;
mod url;

pub use contract::{Catalog, Col, Column, Ddl, Layout, Row, TableId, TableSchema};
pub use dialect::{literal, quote, Dialect};
pub use error::{Error, ErrorKind, Result};
pub use fence::{end_older_holders, fence, fence_commit, fence_holders, FENCE_META};
pub use read_only::{QueryAnswer, QueryLimits, ReadOnly};
pub use rows::{Cell, ColumnBuf, RowBuffer};
pub use transaction::{set_meta, transaction, write_meta};
pub use url::{open, register, Opener};

use ps_spec::{ColumnType, Value};

/// A database that holds a space's tables.
///
/// A warehouse must describe a schema, run statements and queries, and
/// bulk-load rows; transactions and whole-result queries are spelled once,
/// here, on top of those (SQL's `BEGIN TRANSACTION`, `COMMIT` and `ROLLBACK`
/// mean the same in DuckDB and PostgreSQL).
pub trait Warehouse: Send {
    /// `"duckdb"` or `"postgres"`, for logs and summaries.
    fn kind(&self) -> &'static str;
    /// How this warehouse spells SQL.
    fn dialect(&self) -> &Dialect;
    /// The tables of `schema` with their columns in table order.
    fn describe(&mut self, schema: &str) -> Result<Vec<TableSchema>>;
    /// Starts a transaction ([`transaction()`] runs one).
    fn begin(&mut self) -> Result<()> {
        self.execute("BEGIN TRANSACTION")
    }
    /// Commits the open transaction.
    fn commit(&mut self) -> Result<()> {
        self.execute("COMMIT")
    }
    /// Rolls the open transaction back.
    fn rollback(&mut self) -> Result<()> {
        self.execute("ROLLBACK")
    }
    /// Runs one or more statements that return nothing.
    fn execute(&mut self, sql: &str) -> Result<()>;
    /// Runs a query and returns all its rows (for small results and state).
    fn query(&mut self, sql: &str) -> Result<Vec<Vec<Value>>> {
        let mut out = Vec::new();
        self.for_each_row(sql, &mut |r| out.push(r))?;
        Ok(out)
    }
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
