//! SQL dialects: how the contract's names and types are spelled per warehouse.
//!
//! DuckDB and PostgreSQL agree on almost everything the product needs
//! (double-quoted identifiers, `DISTINCT ON`, `ALTER TABLE … ADD COLUMN`), so a
//! dialect is small: type names, and how to qualify a table name.

use crate::contract::{Ddl, TableSchema};
use ps_spec::ColumnType;

/// Quotes an identifier so reserved words and odd names survive.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Quotes a string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A warehouse's SQL spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialect {
    /// DuckDB qualifies with the database (catalog) name, because a schema
    /// named like the file (`profiles` in `profiles.duckdb`) would otherwise be
    /// ambiguous; PostgreSQL has no such need.
    pub catalog: Option<String>,
    /// The name of [`ColumnType::Double`].
    pub double_type: &'static str,
    /// The name of [`ColumnType::Varchar`].
    pub varchar_type: &'static str,
    /// A server database with row storage and MVCC (PostgreSQL), as opposed
    /// to an embedded columnar one (DuckDB): decides indexes and which
    /// columns name a compression.
    pub row_store: bool,
}

impl Dialect {
    /// DuckDB's, qualifying tables with database `catalog`.
    pub fn duckdb(catalog: &str) -> Dialect {
        Dialect {
            catalog: Some(catalog.to_owned()),
            double_type: "DOUBLE",
            varchar_type: "VARCHAR",
            row_store: false,
        }
    }

    /// PostgreSQL's.
    pub fn postgres() -> Dialect {
        Dialect {
            catalog: None,
            double_type: "DOUBLE PRECISION",
            varchar_type: "TEXT",
            row_store: true,
        }
    }

    /// The name of column type `t`.
    pub fn type_name(&self, t: ColumnType) -> &'static str {
        match t {
            ColumnType::Timestamp => "TIMESTAMP",
            ColumnType::Bigint => "BIGINT",
            ColumnType::Double => self.double_type,
            ColumnType::Boolean => "BOOLEAN",
            ColumnType::Varchar => self.varchar_type,
        }
    }

    /// `"catalog"."schema"` or `"schema"`.
    pub fn schema(&self, schema: &str) -> String {
        match &self.catalog {
            Some(c) => format!("{}.{}", quote(c), quote(schema)),
            None => quote(schema),
        }
    }

    /// A fully qualified table name.
    pub fn table(&self, schema: &str, table: &str) -> String {
        format!("{}.{}", self.schema(schema), quote(table))
    }

    /// `CREATE TABLE IF NOT EXISTS` for `t`. On DuckDB the
    /// [`LARGE_TEXT`](crate::contract::LARGE_TEXT) columns are compressed
    /// with zstd.
    pub fn create_table(&self, schema: &str, t: &TableSchema) -> String {
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| {
                let large =
                    !self.row_store && crate::contract::LARGE_TEXT.contains(&(&*t.name, &*c.name));
                let using = if large { " USING COMPRESSION zstd" } else { "" };
                format!("{} {}{using}", quote(&c.name), self.type_name(c.ty))
            })
            .collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({})",
            self.table(schema, &t.name),
            cols.join(", ")
        )
    }

    /// `CREATE INDEX IF NOT EXISTS` for one of the contract's lookup
    /// indexes, or `None` where this warehouse goes without. PostgreSQL: all
    /// of them, so a sync's materialization reads only the touched profiles'
    /// rows. DuckDB: only the [`POINT_INDEXES`](crate::contract::POINT_INDEXES).
    pub fn create_index(&self, schema: &str, table: &str, column: &str) -> Option<String> {
        let wanted = self.row_store || crate::contract::POINT_INDEXES.contains(&(table, column));
        wanted.then(|| {
            format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
                quote(&format!("{table}_{column}_idx")),
                self.table(schema, table),
                quote(column)
            )
        })
    }

    /// The statement that applies a [`Ddl`] change.
    pub fn ddl(&self, schema: &str, d: &Ddl) -> String {
        match d {
            Ddl::CreateTable(t) => self.create_table(schema, t),
            Ddl::AddColumn { table, column } => format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                self.table(schema, table),
                quote(&column.name),
                self.type_name(column.ty)
            ),
        }
    }
}
