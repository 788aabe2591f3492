//! Ad-hoc SQL against the warehouse, for `profiles-sync query`.
//!
//! While `serve` runs it holds the DuckDB file open for writing, and DuckDB
//! lets only one process do that, so a second process cannot open the file.
//! Queries therefore go through the running server (`POST /admin/query`,
//! answered on the sync thread between two batches, on the connection that
//! already holds the file) or, when no server runs, straight to the file.

use ps_spec::time::format_sql;
use ps_spec::Value;
use ps_warehouse::Warehouse;
use serde_json::{json, Value as Json};

/// A query's answer: column names (when the warehouse can tell them) and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Json>>,
}

impl QueryResult {
    pub fn to_json(&self) -> Json {
        json!({ "columns": self.columns, "rows": self.rows })
    }

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
        Some(QueryResult { columns, rows })
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
pub fn cell(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Ts(t) => Json::String(format_sql(*t)),
    }
}

/// Runs one statement. Column names come from DuckDB's `DESCRIBE` of the
/// query when it is a query (the warehouse trait returns bare rows).
pub fn run_query(wh: &mut dyn Warehouse, sql: &str) -> Result<QueryResult, String> {
    let sql = sql.trim().trim_end_matches(';');
    let columns = if wh.kind() == "duckdb" {
        wh.query(&format!("DESCRIBE {sql}"))
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| match r.first() {
                        Some(Value::Str(s)) => Some(s.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let rows = wh.query(sql).map_err(|e| e.to_string())?;
    Ok(QueryResult {
        columns,
        rows: rows.iter().map(|r| r.iter().map(cell).collect()).collect(),
    })
}
