//! The embedded default warehouse: one DuckDB file.
//!
//! A batch's rows go in through a table function that reads their column
//! buffers (`row_scan`), other rows through DuckDB's Appender (figures in
//! BENCHMARKS.md), inside the same explicit transaction as the DDL,
//! the engine state and the materialization, so a load either lands whole or
//! not at all.

use crate::contract::TableSchema;
use crate::dialect::{literal, Dialect};
use crate::error::{Error, ErrorKind, Result};
use crate::read_only::{QueryAnswer, QueryLimits, ReadOnly};
use crate::rows::{value_cells, Cell, RowBuffer};
use crate::Warehouse;
use duckdb::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, StringBuilder, TimestampMicrosecondArray,
};
use duckdb::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use duckdb::arrow::error::ArrowError;
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::types::{TimeUnit as DuckTimeUnit, ValueRef};
use duckdb::Connection;
use ps_spec::{ColumnType, Value};
use std::path::Path;
use std::sync::Arc;

mod row_scan;

/// DuckDB's own worker threads, unless the URL says `?threads=N`. A sync
/// already keeps two threads of ours busy (reading, building rows) beside
/// the one that lands; DuckDB's default of one thread per core made its
/// workers fight them for the cores, and appends got slower, not faster
/// (`examples/duck_append.rs`; figures in BENCHMARKS.md, session 3).
pub const DEFAULT_THREADS: usize = 1;

/// Rows per row group of a database file, unless the URL says
/// `?row_group_size=N` (DuckDB's own default is 122,880). Every commit
/// checkpoints, and a checkpoint recompresses, whole, each row group that
/// got rows; most event tables of a space are smaller than one of DuckDB's
/// row groups, so each batch recompressed them from their first row. With
/// 4,096-row groups a batch's rows are compressed about once, as full row
/// groups while they are appended. 4,096 was the fastest size measured,
/// at a bigger file than DuckDB's default (BENCHMARKS.md, session 6).
pub const DEFAULT_ROW_GROUP_SIZE: usize = 4096;

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
    /// Opens what follows `duckdb://` in a warehouse URL: `PATH` (or
    /// `:memory:`), then optionally
    /// `?threads=N&memory_limit=SIZE&row_group_size=ROWS`.
    pub fn open_url(rest: &str) -> Result<DuckDb> {
        let config = |m: String| Error::new(ErrorKind::Config, format!("warehouse.url: {m}"));
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "warehouse.url `duckdb://` needs a file path, e.g. duckdb://profiles.duckdb",
            ));
        }
        let mut settings = vec![("threads", DEFAULT_THREADS.to_string())];
        let mut row_group_size = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("threads", n)) => {
                    if n.parse::<usize>().map_or(true, |n| n == 0) {
                        return Err(config(format!("threads={n:?} is not a positive number")));
                    }
                    settings[0].1 = n.to_owned();
                }
                Some(("memory_limit", v)) => settings.push(("memory_limit", literal(v))),
                Some(("row_group_size", n)) => match n.parse::<usize>() {
                    Ok(n) if n > 0 && n % 2048 == 0 && path != ":memory:" => {
                        row_group_size = Some(n)
                    }
                    _ => {
                        return Err(config(format!(
                            "row_group_size={n:?} is not a positive multiple of 2048 \
                             (DuckDB's vector size) on a database file"
                        )))
                    }
                },
                _ => {
                    return Err(config(format!(
                        "unknown DuckDB option {pair:?} \
                         (known: threads=N, memory_limit=SIZE, row_group_size=ROWS)"
                    )))
                }
            }
        }
        let mut db = if path == ":memory:" {
            DuckDb::open(path)?
        } else {
            DuckDb::attach(path, row_group_size.unwrap_or(DEFAULT_ROW_GROUP_SIZE))?
        };
        for (name, value) in settings {
            db.execute(&format!("SET {name} = {value}"))
                .map_err(|e| config(format!("{name}={value}: {e}")))?;
        }
        Ok(db)
    }

    /// Opens (creating) the database file at `path` as DuckDB does by default, or an in-memory database for `:memory:`.
    pub fn open(path: &str) -> Result<DuckDb> {
        Self::check_dir(path)?;
        let conn = if path == ":memory:" {
            Connection::open_in_memory()
        } else {
            Connection::open(path)
        }
        .map_err(|e| Error::new(ErrorKind::Connect, format!("{path}: {e}")))?;
        Self::with_connection(conn)
    }

    /// Opens the file `path` with row groups of `rows` rows for the data
    /// appended from now on. DuckDB keeps this per attachment, not in the
    /// file, and only `ATTACH` takes it: the file is attached to an
    /// in-memory database, under [`catalog_name`], and made the default.
    ///
    /// Why: see [`DEFAULT_ROW_GROUP_SIZE`].
    fn attach(path: &str, rows: usize) -> Result<DuckDb> {
        Self::check_dir(path)?;
        let name = catalog_name(path);
        let name = format!("\"{}\"", name.replace('"', "\"\""));
        let sql = format!(
            "ATTACH {} AS {name} (ROW_GROUP_SIZE {rows}); USE {name}",
            literal(path)
        );
        let conn = Connection::open_in_memory()
            .and_then(|c| c.execute_batch(&sql).map(|()| c))
            .map_err(|e| Error::new(ErrorKind::Connect, format!("{path}: {e}")))?;
        Self::with_connection(conn)
    }

    fn check_dir(path: &str) -> Result<()> {
        if path == ":memory:" {
            return Ok(());
        }
        match Path::new(path).parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => Err(Error::new(
                ErrorKind::Connect,
                format!(
                    "directory {} of DuckDB file {path} does not exist",
                    dir.display()
                ),
            )),
            _ => Ok(()),
        }
    }

    fn with_connection(conn: Connection) -> Result<DuckDb> {
        let catalog: String = conn
            .query_row("SELECT current_database()", [], |r| r.get(0))
            .map_err(|e| q(e, "SELECT current_database()"))?;
        row_scan::register(&conn).map_err(|e| q(e, row_scan::NAME))?;
        Ok(DuckDb {
            conn,
            dialect: Dialect::duckdb(&catalog),
        })
    }
}

/// The catalog name of the file `path` once attached: the one DuckDB gives
/// a file it opens (the file name up to its first `.`, with `_db` added to
/// the reserved `main`, `temp` and `system`), except that `memory` is taken
/// by the in-memory database the file is attached to, so it becomes
/// `memory_db` too.
fn catalog_name(path: &str) -> String {
    let file = Path::new(path)
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let base = file.split('.').next().unwrap_or_default();
    let base = if base.is_empty() { "warehouse" } else { base };
    if ["main", "temp", "system", "memory"]
        .iter()
        .any(|r| r.eq_ignore_ascii_case(base))
    {
        format!("{base}_db")
    } else {
        base.to_owned()
    }
}

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
            DuckTimeUnit::Second => t * 1_000_000,
            DuckTimeUnit::Millisecond => t * 1_000,
            DuckTimeUnit::Microsecond => t,
            DuckTimeUnit::Nanosecond => t / 1_000,
        }),
        ValueRef::Text(b) => Value::Str(match std::str::from_utf8(b) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        }),
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

    fn execute(&mut self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(|e| q(e, sql))
    }

    fn for_each_row(&mut self, sql: &str, f: &mut dyn FnMut(Vec<Value>)) -> Result<()> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| q(e, sql))?;
        let mut rows = stmt.query([]).map_err(|e| q(e, sql))?;
        let n = rows.as_ref().map_or(0, |s| s.column_count());
        while let Some(row) = rows.next().map_err(|e| q(e, sql))? {
            let mut r = Vec::with_capacity(n);
            for i in 0..n {
                r.push(from_ref(row.get_ref(i).map_err(|e| q(e, sql))?));
            }
            f(r);
        }
        Ok(())
    }

    fn append(&mut self, schema: &str, table: &TableSchema, rows: &[Vec<Value>]) -> Result<()> {
        let cells = value_cells(rows);
        let text = |r: usize| {
            rows[r]
                .iter()
                .map(|v| match v {
                    Value::Str(s) => s.len(),
                    _ => 0,
                })
                .sum()
        };
        self.append_batches(schema, table, &batch_ends(rows.len(), text), |range| {
            record_batch(table, range, &cells)
        })
    }

    fn append_buffer(&mut self, schema: &str, table: &TableSchema, rows: &RowBuffer) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let loan = row_scan::Loan::new(table, rows);
        let sql = format!(
            "INSERT INTO {} SELECT * FROM {}({})",
            self.dialect.table(schema, &table.name),
            row_scan::NAME,
            loan.token()
        );
        self.conn.execute(&sql, []).map_err(|e| q(e, &sql))?;
        drop(loan);
        Ok(())
    }

    fn read_only(&mut self) -> Result<ReadOnly> {
        // A global setting: DuckDB refuses to turn it back on while the
        // database runs, and keeps the attached file (and its WAL) usable.
        self.execute("SET enable_external_access = false")?;
        let conn = self
            .conn
            .try_clone()
            .map_err(|e| Error::new(ErrorKind::Connect, e))?;
        Ok(ReadOnly::duckdb(conn, self.dialect.catalog.clone()))
    }
}

/// A connection of its own for read-only queries: a clone of `base` that
/// `USE`s the space's catalog.
pub(crate) fn read_only_connection(base: &Connection, catalog: Option<&str>) -> Result<Connection> {
    let conn = base
        .try_clone()
        .map_err(|e| Error::new(ErrorKind::Connect, e))?;
    if let Some(c) = catalog {
        let using = format!("USE {}", crate::dialect::quote(c));
        conn.execute_batch(&using).map_err(|e| q(e, &using))?;
    }
    Ok(conn)
}

/// Runs `sql` (already checked and wrapped by [`crate::read_only`]) in a
/// read-only transaction on `conn`, a connection no other thread uses,
/// interrupting it past `limits.timeout`.
pub(crate) fn read_only_query(
    conn: &Connection,
    sql: &str,
    limits: &QueryLimits,
) -> Result<QueryAnswer> {
    conn.execute_batch("BEGIN TRANSACTION READ ONLY")
        .map_err(|e| q(e, "BEGIN TRANSACTION READ ONLY"))?;
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let handle = conn.interrupt_handle();
        let fired = fired.clone();
        let timeout = limits.timeout;
        std::thread::Builder::new()
            .name("query-watchdog".into())
            .spawn(move || {
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(timeout)
                {
                    fired.store(true, std::sync::atomic::Ordering::SeqCst);
                    handle.interrupt();
                }
            })
            .map_err(|e| Error::new(ErrorKind::Query, e))?
    };
    let result = run_read(conn, sql);
    drop(done);
    let _ = watchdog.join();
    let _ = conn.execute_batch("ROLLBACK");
    // Timed out, even if the query ended as the interrupt landed: then the
    // interrupt may still be pending on the connection, and an error makes
    // the caller drop the connection instead of reusing it.
    if fired.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "the query ran past its time limit of {:?} ([query] timeout)",
                limits.timeout
            ),
        ));
    }
    result.map_err(|e| {
        let text = e.to_string();
        if text.contains("Permission Error") || text.contains("disabled by configuration")
        {
            Error::new(
                ErrorKind::Refused,
                format!("the query path does not read or write files, attach databases or load extensions: {text}"),
            )
        } else if text.contains("read-only mode") {
            Error::new(
                ErrorKind::Refused,
                format!("the query path does not write: {text}"),
            )
        } else {
            q(e, sql)
        }
    })
}

fn run_read(conn: &Connection, sql: &str) -> std::result::Result<QueryAnswer, duckdb::Error> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    let columns = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
    let n = columns.len();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut r = Vec::with_capacity(n);
        for i in 0..n {
            r.push(from_ref(row.get_ref(i)?));
        }
        out.push(r);
    }
    Ok(QueryAnswer {
        columns,
        rows: out,
        truncated: false,
    })
}

impl DuckDb {
    /// Appends rows `0..ends.last()` that `batch` gives as Arrow batches,
    /// one per range between consecutive `ends` ([`batch_ends`]), then
    /// flushes.
    fn append_batches(
        &mut self,
        schema: &str,
        table: &TableSchema,
        ends: &[usize],
        batch: impl Fn(std::ops::Range<usize>) -> std::result::Result<RecordBatch, ArrowError>,
    ) -> Result<()> {
        if ends.is_empty() {
            return Ok(());
        }
        let what = format!("appending to {schema}.{}", table.name);
        let catalog = self.dialect.catalog.clone().unwrap_or_default();
        let mut app = self
            .conn
            .appender_to_catalog_and_db(&table.name, &catalog, schema)
            .map_err(|e| q(e, &what))?;
        // Rows are handed over column by column as Arrow arrays: DuckDB then
        // copies whole vectors instead of converting one cell at a time.
        let mut start = 0;
        for &end in ends {
            let batch = batch(start..end)
                .map_err(|e| Error::new(ErrorKind::Query, e).with_statement(&what))?;
            app.append_record_batch(batch).map_err(|e| q(e, &what))?;
            start = end;
        }
        app.flush().map_err(|e| q(e, &what))
    }
}

/// `arrays` (one per column of `table`, in order) as an Arrow batch.
fn batch_of(
    table: &TableSchema,
    arrays: Vec<ArrayRef>,
) -> std::result::Result<RecordBatch, ArrowError> {
    let fields: Vec<Field> = table
        .columns
        .iter()
        .map(|c| Field::new(c.name.as_str(), arrow_type(c.ty), true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}

/// The Arrow type a column of type `ty` is handed to DuckDB as.
fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Varchar => DataType::Utf8,
        ColumnType::Bigint => DataType::Int64,
        ColumnType::Double => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
    }
}

/// Rows per Arrow record batch handed to DuckDB's appender at most.
const BATCH_ROWS: usize = 64 * 1024;

/// Text per record batch at most: the batch is a copy of its rows' text,
/// and the engine-state rows of a large transaction (`_ps_profiles`, tens
/// of MB of base64 each commit on a large space) were copied whole at the
/// moment memory peaks.
const BATCH_TEXT_BYTES: usize = 8 << 20;

/// The ends of the record batches for `n` rows, row `r` holding `text(r)`
/// bytes of text: at most [`BATCH_ROWS`] rows and, unless one row alone is
/// larger, [`BATCH_TEXT_BYTES`] of text each.
fn batch_ends(n: usize, text: impl Fn(usize) -> usize) -> Vec<usize> {
    let mut ends = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for r in 0..n {
        let t = text(r);
        if r > start && (r - start == BATCH_ROWS || bytes + t > BATCH_TEXT_BYTES) {
            ends.push(r);
            (start, bytes) = (r, 0);
        }
        bytes += t;
    }
    if start < n {
        ends.push(n);
    }
    ends
}

/// The rows `rows` as an Arrow batch in the table's column order and types.
fn record_batch<'a>(
    table: &TableSchema,
    rows: std::ops::Range<usize>,
    cell: &impl Fn(usize, usize) -> Cell<'a>,
) -> std::result::Result<RecordBatch, ArrowError> {
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
    let n = rows.len();
    for (i, col) in table.columns.iter().enumerate() {
        let array: ArrayRef = match col.ty {
            ColumnType::Varchar => {
                let mut b = StringBuilder::with_capacity(n, n * 16);
                for r in rows.clone() {
                    match cell(r, i) {
                        Cell::Str(s) => b.append_value(s),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Bigint => {
                let a: Int64Array = rows
                    .clone()
                    .map(|r| match cell(r, i) {
                        Cell::Int(v) => Some(v),
                        _ => None,
                    })
                    .collect();
                Arc::new(a)
            }
            ColumnType::Double => {
                let a: Float64Array = rows
                    .clone()
                    .map(|r| match cell(r, i) {
                        Cell::Float(v) => Some(v),
                        _ => None,
                    })
                    .collect();
                Arc::new(a)
            }
            ColumnType::Boolean => {
                let a: BooleanArray = rows
                    .clone()
                    .map(|r| match cell(r, i) {
                        Cell::Bool(v) => Some(v),
                        _ => None,
                    })
                    .collect();
                Arc::new(a)
            }
            ColumnType::Timestamp => {
                let a: TimestampMicrosecondArray = rows
                    .clone()
                    .map(|r| match cell(r, i) {
                        Cell::Ts(v) => Some(v),
                        _ => None,
                    })
                    .collect();
                Arc::new(a)
            }
        };
        arrays.push(array);
    }
    batch_of(table, arrays)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract as c;
    use ColumnType as T;

    /// Rows of more text than one record batch takes are split by text
    /// and by row count, and land whole and in order.
    #[test]
    fn appends_split_by_text_and_rows_land_every_row() {
        let big = "x".repeat(BATCH_TEXT_BYTES / 3 + 1);
        let rows: Vec<Vec<Value>> = (0..7)
            .map(|i| vec![Value::Int(i), Value::Str(big.clone())])
            .collect();
        // Two rows a batch: a third would pass the bound.
        let third = BATCH_TEXT_BYTES / 3 + 1;
        assert_eq!(batch_ends(7, |_| third), vec![2, 4, 6, 7]);
        assert_eq!(
            batch_ends(1, |_| BATCH_TEXT_BYTES + 1),
            vec![1],
            "one row alone may be larger"
        );
        assert_eq!(
            batch_ends(BATCH_ROWS + 5, |_| 0),
            vec![BATCH_ROWS, BATCH_ROWS + 5]
        );
        assert!(batch_ends(0, |_| 1).is_empty());

        let mut db = DuckDb::open(":memory:").unwrap();
        db.execute("CREATE SCHEMA s").unwrap();
        let t = TableSchema::new("t", &[("i", T::Bigint), ("s", T::Varchar)]);
        db.execute(&db.dialect().create_table("s", &t)).unwrap();
        db.append("s", &t, &rows).unwrap();
        let got = db
            .query("SELECT i, length(s) FROM s.t ORDER BY rowid")
            .unwrap();
        let want: Vec<Vec<Value>> = (0..7)
            .map(|i| vec![Value::Int(i), Value::Int(big.len() as i64)])
            .collect();
        assert_eq!(got, want);
    }

    /// The state logs' text columns are stored with zstd in a database
    /// file, and the other columns keep DuckDB's own choice.
    #[test]
    fn large_state_texts_are_compressed_with_zstd() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.duckdb");
        let mut db = DuckDb::open_url(path.to_str().unwrap()).unwrap();
        db.execute("CREATE SCHEMA s").unwrap();
        let t = c::fixed_table(c::STATE_COMPUTE).unwrap();
        let ddl = db.dialect().create_table("s", &t);
        db.execute(&ddl).unwrap();
        let rows: Vec<Vec<Value>> = (0..5000)
            .map(|i| {
                vec![
                    Value::Str(format!("k{i}")),
                    Value::Str(format!("{{\"f\":[{i}]}}").repeat(20)),
                ]
            })
            .collect();
        db.append("s", &t, &rows).unwrap();
        db.execute("CHECKPOINT").unwrap();
        let got = db
            .query(
                "SELECT DISTINCT column_name, compression FROM pragma_storage_info('s._ps_compute') \
                 WHERE segment_type = 'VARCHAR' ORDER BY 1",
            )
            .unwrap();
        let zstd: Vec<&Vec<Value>> = got
            .iter()
            .filter(|r| r[1] == Value::Str("ZSTD".into()))
            .collect();
        assert!(!zstd.is_empty(), "{got:?}");
        assert!(
            zstd.iter().all(|r| r[0] == Value::Str("state".into())),
            "{got:?}"
        );
        let ps = Dialect::postgres().create_table("s", &t);
        assert!(!ps.contains("COMPRESSION"), "{ps}");
    }

    /// A buffer lands through the scan exactly as its cells read, for
    /// every type, NULLs in the middle and at the end, a cell written
    /// twice, a column first written late, a column that stops early, a
    /// column never written, and more rows than one of DuckDB's vectors
    /// (2,048), ending inside one.
    #[test]
    fn a_buffer_lands_through_the_scan_as_its_cells_read() {
        let table = TableSchema::new(
            "t",
            &[
                ("s", T::Varchar),
                ("i", T::Bigint),
                ("f", T::Double),
                ("b", T::Boolean),
                ("ts", T::Timestamp),
                ("late", T::Varchar),
                ("never", T::Varchar),
            ],
        );
        let n = 5000usize;
        let mut buf = RowBuffer::new();
        let texts = ["", "a", "héllo", "a longer string than twelve bytes"];
        for r in 0..n {
            if r % 3 != 0 {
                buf.set(0, T::Varchar, Cell::Str(texts[r % texts.len()]));
            }
            if r % 5 == 1 {
                buf.set(0, T::Varchar, Cell::Str("replaced"));
            }
            // Stops inside the second vector: later rows are NULL.
            if r < 2100 && r % 4 != 2 {
                buf.set(1, T::Bigint, Cell::Int(r as i64 - 20));
                buf.set(4, T::Timestamp, Cell::Ts(r as i64 * 1_000_000));
            }
            if r % 2 == 0 {
                buf.set(2, T::Double, Cell::Float(r as f64 / 3.0));
                buf.set(3, T::Boolean, Cell::Bool(r % 4 == 0));
            }
            if (3000..4500).contains(&r) {
                buf.set(5, T::Varchar, Cell::Str(&"x".repeat(r % 40)));
            }
            buf.end_row();
        }
        let mut db = DuckDb::open(":memory:").unwrap();
        db.execute("CREATE SCHEMA s").unwrap();
        db.execute(&db.dialect().create_table("s", &table)).unwrap();
        db.append_buffer("s", &table, &buf).unwrap();
        db.append_buffer("s", &table, &RowBuffer::new()).unwrap();
        let got = db.query("SELECT * FROM s.t ORDER BY rowid").unwrap();
        let cells = buf.cells(&table);
        let want: Vec<Vec<Value>> = (0..n)
            .map(|r| {
                (0..table.columns.len())
                    .map(|i| cells(r, i).to_value())
                    .collect()
            })
            .collect();
        assert_eq!(got.len(), n);
        for (r, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "row {r}");
        }
    }

    /// Another connection (a read-only query's) cannot bind the scan to a
    /// buffer lent by the landing thread, even while the loan lasts.
    #[test]
    fn only_the_lending_thread_binds_the_scan() {
        let table = TableSchema::new("t", &[("s", T::Varchar)]);
        let mut buf = RowBuffer::new();
        buf.set(0, T::Varchar, Cell::Str("secret"));
        buf.end_row();
        let db = DuckDb::open(":memory:").unwrap();
        let other = db.conn.try_clone().unwrap();
        let loan = row_scan::Loan::new(&table, &buf);
        let sql = format!("SELECT * FROM {}({})", row_scan::NAME, loan.token());
        let sql2 = sql.clone();
        let err = std::thread::scope(|s| {
            s.spawn(move || other.query_row(&sql2, [], |r| r.get::<_, String>(0)))
                .join()
                .unwrap()
        })
        .unwrap_err();
        assert!(err.to_string().contains("no rows lent"), "{err}");
        let mine: String = db.conn.query_row(&sql, [], |r| r.get(0)).unwrap();
        assert_eq!(mine, "secret");
        drop(loan);
        assert!(db
            .conn
            .query_row(&sql, [], |r| r.get::<_, String>(0))
            .is_err());
    }
}
