//! Plain Parquet files of a space's tables, from any warehouse, for loaders
//! that take files (Snowflake `COPY INTO`, `bq load`, Spark, DuckDB).

use crate::arrow::{arrow_schema, record_batch};
use deltalake::parquet::arrow::ArrowWriter;
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::WriterProperties;
use ps_spec::Value;
use ps_warehouse::{quote, Error, ErrorKind, Result, Warehouse};
use std::path::{Path, PathBuf};

/// Rows per Arrow batch (and at most per row group) while exporting.
const CHUNK: usize = 64 * 1024;

/// One exported table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The table's name.
    pub table: String,
    /// The file written.
    pub path: PathBuf,
    /// Its rows.
    pub rows: usize,
}

fn io(what: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Query,
        format!("export to {}: {e}", what.display()),
    )
}

/// Writes every product table of `schema` (not the internal `_ps_*` ones)
/// as `dir/<table>.parquet`, typed as the Delta tables are, and returns
/// what it wrote. Each file is written beside its final name and renamed
/// into place, so a reader never sees half a file.
pub fn export_parquet(wh: &mut dyn Warehouse, schema: &str, dir: &Path) -> Result<Vec<Exported>> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let d = wh.dialect().clone();
    let mut out = Vec::new();
    for table in wh.describe(schema)? {
        if !crate::stage::mirrored(&table.name) {
            continue;
        }
        let path = dir.join(format!("{}.parquet", table.name));
        let partial = dir.join(format!(".{}.parquet.partial", table.name));
        let file = std::fs::File::create(&partial).map_err(|e| io(&partial, e))?;
        let props = WriterProperties::builder()
            // Snappy, as the Delta tables' files: what deltalake's parquet is built with.
            .set_compression(Compression::SNAPPY)
            .build();
        let mut writer = ArrowWriter::try_new(file, arrow_schema(&table), Some(props))
            .map_err(|e| io(&partial, e))?;
        let cols: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
        let sql = format!(
            "SELECT {} FROM {}",
            cols.join(", "),
            d.table(schema, &table.name)
        );
        let mut rows: Vec<Vec<Value>> = Vec::new();
        let mut total = 0;
        let mut failed: Option<Error> = None;
        let mut flush = |rows: &mut Vec<Vec<Value>>, failed: &mut Option<Error>| {
            if rows.is_empty() || failed.is_some() {
                return;
            }
            let batch = {
                let cells = ps_warehouse::rows::value_cells(rows);
                record_batch(&table, 0..rows.len(), &cells)
            };
            if let Err(e) = batch
                .map_err(|e| io(&partial, e))
                .and_then(|b| writer.write(&b).map_err(|e| io(&partial, e)))
            {
                *failed = Some(e);
            }
            rows.clear();
        };
        wh.for_each_row(&sql, &mut |r| {
            rows.push(r);
            total += 1;
            if rows.len() == CHUNK {
                flush(&mut rows, &mut failed);
            }
        })?;
        flush(&mut rows, &mut failed);
        if let Some(e) = failed {
            return Err(e);
        }
        writer.close().map_err(|e| io(&partial, e))?;
        std::fs::rename(&partial, &path).map_err(|e| io(&path, e))?;
        out.push(Exported {
            table: table.name,
            path,
            rows: total,
        });
    }
    Ok(out)
}
