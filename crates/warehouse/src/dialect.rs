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
    pub double_type: &'static str,
    pub varchar_type: &'static str,
    /// Whether [`Dialect::create_index`] builds the contract's lookup
    /// indexes. PostgreSQL: yes, so a sync's materialization reads only the
    /// touched profiles' rows. DuckDB: no; its scans are columnar with zone
    /// maps, and ART indexes would slow every append and delete.
    pub lookup_indexes: bool,
}

impl Dialect {
    pub fn duckdb(catalog: &str) -> Dialect {
        Dialect {
            catalog: Some(catalog.to_owned()),
            double_type: "DOUBLE",
            varchar_type: "VARCHAR",
            lookup_indexes: false,
        }
    }

    pub fn postgres() -> Dialect {
        Dialect {
            catalog: None,
            double_type: "DOUBLE PRECISION",
            varchar_type: "TEXT",
            lookup_indexes: true,
        }
    }

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

    pub fn create_table(&self, schema: &str, t: &TableSchema) -> String {
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("{} {}", quote(&c.name), self.type_name(c.ty)))
            .collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({})",
            self.table(schema, &t.name),
            cols.join(", ")
        )
    }

    /// `CREATE INDEX IF NOT EXISTS` for one of the contract's lookup
    /// indexes, or `None` where this warehouse goes without.
    pub fn create_index(&self, schema: &str, table: &str, column: &str) -> Option<String> {
        self.lookup_indexes.then(|| {
            format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
                quote(&format!("{table}_{column}_idx")),
                self.table(schema, table),
                quote(column)
            )
        })
    }

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
