//! Ad-hoc SQL against the warehouse, for `profiles-sync query`.
//!
//! While `serve` runs it holds the DuckDB file open for writing, and DuckDB
//! lets only one process do that, so a second process cannot open the file.
//! Queries therefore go through the running server (`POST /admin/query`,
//! answered on a connection of its own beside the sync's, so landing goes on
//! while a query runs) or, when no server runs, straight to the warehouse.
//! Either way they run through [`ps_warehouse::ReadOnly`]: one read
//! statement, a read-only transaction, no file access, and the time and row
//! limits of [`QueryLimits`].

use ps_spec::time::format_sql;
use ps_spec::Value;
use ps_warehouse::{QueryLimits, ReadOnly};
use serde_json::{json, Value as Json};

/// A query's answer as it travels: column names, rows as JSON, and whether
/// the row limit cut it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// Column names, in select order.
    pub columns: Vec<String>,
    /// Rows, each with one cell per column.
    pub rows: Vec<Vec<Json>>,
    /// The query had more rows than `[server] query_max_rows`.
    pub truncated: bool,
}

impl QueryResult {
    /// The `/admin/query` answer body: `{"columns", "rows", "truncated"}`.
    pub fn to_json(&self) -> Json {
        json!({ "columns": self.columns, "rows": self.rows, "truncated": self.truncated })
    }

    /// Reads a [`QueryResult::to_json`] body back (`None` if it is not one).
    pub fn from_json(v: &Json) -> Option<QueryResult> {
        let columns = v
            .get("columns")?
            .as_array()?
            .iter()
            .map(|c| c.as_str().unwrap_or("").to_owned())
            .collect();
        let rows = v
            .get("rows")?
            .as_array()?
            .iter()
            .map(|r| r.as_array().cloned().unwrap_or_default())
            .collect();
        let truncated = v.get("truncated").and_then(Json::as_bool).unwrap_or(false);
        Some(QueryResult {
            columns,
            rows,
            truncated,
        })
    }

    /// Tab-separated text with a header line; NULL prints as empty.
    pub fn to_tsv(&self) -> String {
        let mut out = String::new();
        if !self.columns.is_empty() {
            out.push_str(&self.columns.join("\t"));
            out.push('\n');
        }
        for r in &self.rows {
            let cells: Vec<String> = r
                .iter()
                .map(|c| match c {
                    Json::Null => String::new(),
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.push_str(&cells.join("\t"));
            out.push('\n');
        }
        out
    }
}

/// A cell as JSON: timestamps as warehouse text (`2022-05-02 14:01:00`).
pub(crate) fn cell(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Ts(t) => Json::String(format_sql(*t)),
    }
}

/// Runs one read-only statement within `limits`.
pub fn run_query(
    reader: &ReadOnly,
    sql: &str,
    limits: &QueryLimits,
) -> Result<QueryResult, ps_warehouse::Error> {
    let answer = reader.query(sql, limits)?;
    Ok(QueryResult {
        columns: answer.columns,
        rows: answer
            .rows
            .iter()
            .map(|r| r.iter().map(cell).collect())
            .collect(),
        truncated: answer.truncated,
    })
}
