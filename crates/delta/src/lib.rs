//! # ps-delta: the Delta Lake destination
//!
//! `delta://PATH` lands every Profiles Sync table as a Delta table under
//! `PATH/<space>/<table>`, readable by Databricks, Spark, Snowflake and
//! BigQuery external tables, DuckDB, Python `deltalake` and `polars`;
//! `delta+s3://BUCKET/PREFIX?work_dir=DIR` lands them under
//! `s3://BUCKET/PREFIX/<space>/<table>` (module `s3`), the working database
//! in the local `DIR`.
//!
//! The pipeline and `ps-materialize` speak SQL through the
//! [`Warehouse`] trait, and a Delta table takes no SQL. So a [`Delta`]
//! warehouse is a DuckDB *working database* (`PATH/_ps_work.duckdb`: the
//! engine state, the `_ps_meta` watermark, the dedupe keys and every table,
//! as on `duckdb://`) whose committed changes to the product's tables are
//! *mirrored* into the Delta tables, exactly once:
//!
//! 1. During a transaction the rows handed to `append`/`append_buffer` are
//!    kept (as Arrow batches), and statements are read for the tables they
//!    change: a table changed by SQL (`DELETE`, `INSERT … SELECT`: privacy
//!    deletes, the materialized tables) is rewritten whole from the working
//!    database; a table that only got rows gets them appended.
//! 2. Before the working database commits, each changed table's Parquet
//!    files are written (invisible to readers: no Delta log entry names
//!    them yet) and the Delta commit that will publish them (its add
//!    actions, the table's columns and the table's next *mirror version*)
//!    is *staged* in the working database, in the same transaction as the
//!    rows and the watermark.
//! 3. After the working database commits, each staged commit becomes one
//!    Delta commit per table carrying a `txn` action (app id
//!    `profiles-sync/<space>/<table>`, version = the mirror version).
//! 4. At open, and before the next transaction stages anything, staged
//!    commits whose version the Delta log does not hold yet are committed.
//!
//! A crash before step 2's commit leaves unreferenced Parquet files (vacuum
//! removes them) and nothing else; a crash after it is finished by step 4,
//! and the `txn` version makes publishing twice a no-op. Replaying a batch
//! never relies on rebuilding the same rows: what is published is exactly
//! what the working database committed.
//!
//! Tables rewritten whole replace every file of the table in one commit
//! (remove + add). The files they replace stay on storage for readers of
//! older versions until [`Delta`] vacuums them, past the URL's
//! `retention_hours` (Delta's own default, a week, unless it says
//! otherwise); privacy deletes leave storage then.

#![warn(missing_docs, unreachable_pub)]

mod arrow;
mod export;
mod s3;
mod stage;

pub use export::{export_parquet, Exported};

use ps_spec::Value;
use ps_warehouse::duckdb::DuckDb;
use ps_warehouse::{
    Dialect, Error, ErrorKind, ReadOnly, Result, RowBuffer, TableSchema, Warehouse,
};
use stage::{Changes, Staged};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The URL prefix of this warehouse.
pub const SCHEME: &str = "delta://";

/// How long files a commit removed stay on storage unless the URL says
/// `?retention_hours=N`: Delta's own default (`delta.deletedFileRetentionDuration`),
/// so readers of recent table versions keep working.
pub const DEFAULT_RETENTION_HOURS: u64 = 7 * 24;

/// The working database's file name inside the destination directory
/// (`delta://`) or the `work_dir` (`delta+s3://`).
pub const WORK_FILE: &str = "_ps_work.duckdb";

/// How often, at most, one table is vacuumed by a running process. Vacuum
/// lists the table's files; rewritten tables would otherwise list them at
/// every batch.
const VACUUM_EVERY: Duration = Duration::from_secs(600);

/// Files an appended table may gather before a commit compacts it: the
/// table is then rewritten from the working database into as few files as
/// the writer's target size gives (deltalake's `OPTIMIZE` needs
/// DataFusion, which this crate does without). Each sync commit appends one
/// file per table it touched, so a long-running `serve` would otherwise
/// leave a file per table per sync interval.
pub const COMPACT_AT_FILES: usize = 64;

/// How often, at most, one table is compacted by a running process, so a
/// large table is not rewritten every [`COMPACT_AT_FILES`] commits.
const COMPACT_EVERY: Duration = Duration::from_secs(600);

/// The URL prefix of the bucket form (`delta+s3://BUCKET/PREFIX?…`).
pub const S3_SCHEME: &str = s3::SCHEME;

/// Makes `ps_warehouse::open` open `delta://` and `delta+s3://` URLs.
pub fn register() {
    ps_warehouse::register(SCHEME, |url| Ok(Box::new(Delta::open_url(url)?)));
    ps_warehouse::register(S3_SCHEME, |url| Ok(Box::new(Delta::open_url(url)?)));
}

/// Where the Delta tables are.
#[derive(Debug)]
enum Lake {
    /// `delta://DIR`: `DIR/<space>/<table>`, the working database beside them.
    Dir(PathBuf),
    /// `delta+s3://`: `s3://BUCKET/PREFIX/<space>/<table>`.
    S3(s3::Bucket),
}

/// A Delta Lake destination: a DuckDB working database mirrored into Delta
/// tables (see the crate docs).
pub struct Delta {
    work: DuckDb,
    lake: Lake,
    rt: tokio::runtime::Runtime,
    /// What the open transaction changed, `None` outside one.
    tx: Option<Changes>,
    /// Staged commits that may not be in the Delta log yet.
    unpublished: Vec<Staged>,
    retention: Duration,
    vacuumed: HashMap<(String, String), Instant>,
    /// When each table was last compacted, and how many files it had then.
    compacted: HashMap<(String, String), (Instant, usize)>,
    /// The Delta tables as last loaded or committed, by `(schema, table)`.
    tables: HashMap<(String, String), deltalake::DeltaTable>,
    /// The `txn` version each table's Delta log is known to hold (this
    /// process committed or read it). The commit right after it needs no
    /// look at the log: reading a txn version replays the log since its
    /// last checkpoint, a request per commit file on object storage.
    logged: HashMap<(String, String), i64>,
}

impl std::fmt::Debug for Delta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delta").field("lake", &self.lake).finish()
    }
}

fn config(message: String) -> Error {
    Error::new(ErrorKind::Config, format!("warehouse.url: {message}"))
}

/// A `delta+s3://` URL's options, as the URL gave them.
#[derive(Default)]
struct Options {
    retention_hours: Option<u64>,
    endpoint: Option<String>,
    work_dir: Option<String>,
}

impl Options {
    /// Reads `query` (`key=value&…`), refusing an option `known` lacks by
    /// its name (never its value, which might be a secret put in the
    /// wrong place).
    fn parse(query: &str, known: &[&str]) -> Result<Options> {
        let mut o = Options::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !known.contains(&key) {
                let known: Vec<String> = known.iter().map(|k| format!("{k}=")).collect();
                return Err(config(format!(
                    "unknown Delta option {key:?} (known: {})",
                    known.join(", ")
                )));
            }
            match key {
                "retention_hours" => {
                    o.retention_hours = Some(value.parse().map_err(|_| {
                        config(format!(
                            "retention_hours={value:?} is not a whole number of hours"
                        ))
                    })?)
                }
                "endpoint" => o.endpoint = Some(value.to_owned()),
                "work_dir" => o.work_dir = Some(value.to_owned()),
                _ => unreachable!("every known option is read"),
            }
        }
        Ok(o)
    }
}

/// `dir` made absolute and created (its parent must exist).
fn local_dir(dir: &str, what: &str) -> Result<PathBuf> {
    let path = std::path::absolute(dir).map_err(|e| config(format!("{what} {dir}: {e}")))?;
    std::fs::create_dir_all(&path).map_err(|e| {
        Error::new(
            ErrorKind::Connect,
            format!("cannot create the {what} {}: {e}", path.display()),
        )
    })?;
    Ok(path)
}

impl Delta {
    /// Opens `delta://PATH[?retention_hours=N]`: the directory `PATH`
    /// (created if missing, its parent must exist) holds the working
    /// database and one directory per space; or
    /// `delta+s3://BUCKET[/PREFIX]?work_dir=DIR[&endpoint=URL][&retention_hours=N]`:
    /// the tables are `s3://BUCKET/PREFIX/<space>/<table>` and the working
    /// database is in the local directory `DIR` (credentials and region
    /// from the standard AWS environment variables). Staged commits the
    /// Delta log lacks are published before this returns.
    pub fn open_url(url: &str) -> Result<Delta> {
        if let Some(rest) = url.strip_prefix(s3::SCHEME) {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let o = Options::parse(query, &["work_dir", "endpoint", "retention_hours"])?;
            let bucket = s3::Bucket::new(path, o.endpoint.as_deref()).map_err(config)?;
            let Some(work_dir) = o.work_dir.filter(|d| !d.is_empty()) else {
                return Err(config(
                    "`delta+s3://` needs work_dir=DIR: a local directory for the working \
                     database (engine state, watermark, staged commits), kept as long as the lake"
                        .into(),
                ));
            };
            let work_dir = local_dir(&work_dir, "work directory")?;
            s3::register_scheme();
            return Delta::open(Lake::S3(bucket), &work_dir, o.retention_hours);
        }
        let rest = url
            .strip_prefix(SCHEME)
            .ok_or_else(|| config(format!("{url:?} is not a delta:// URL")))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(config(
                "`delta://` needs a directory, e.g. delta:///data/profiles".into(),
            ));
        }
        let o = Options::parse(query, &["retention_hours"])?;
        let root = local_dir(path, "delta directory")?;
        Delta::open(Lake::Dir(root.clone()), &root, o.retention_hours)
    }

    fn open(lake: Lake, work_dir: &Path, retention_hours: Option<u64>) -> Result<Delta> {
        let work = DuckDb::open_url(&work_dir.join(WORK_FILE).display().to_string())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorKind::Connect, e))?;
        let retention_hours = retention_hours.unwrap_or(DEFAULT_RETENTION_HOURS);
        let mut delta = Delta {
            work,
            lake,
            rt,
            tx: None,
            unpublished: Vec::new(),
            retention: Duration::from_secs(retention_hours * 3600),
            vacuumed: HashMap::new(),
            compacted: HashMap::new(),
            tables: HashMap::new(),
            logged: HashMap::new(),
        };
        if let Lake::S3(bucket) = &delta.lake {
            let root = bucket.root.to_string();
            delta.bind_work_dir(&root)?;
        }
        delta.unpublished = delta.staged()?;
        delta.publish()?;
        Ok(delta)
    }
}

impl Warehouse for Delta {
    fn kind(&self) -> &'static str {
        "delta"
    }

    fn dialect(&self) -> &Dialect {
        self.work.dialect()
    }

    fn describe(&mut self, schema: &str) -> Result<Vec<TableSchema>> {
        self.work.describe(schema)
    }

    fn begin(&mut self) -> Result<()> {
        // A staged commit must reach the Delta log before another
        // transaction stages the same table again.
        self.publish()?;
        self.work.begin()?;
        self.tx = Some(Changes::default());
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        let Some(changes) = self.tx.take() else {
            return self.work.commit();
        };
        let staged = match self.stage(changes) {
            Ok(s) => s,
            Err(e) => {
                let _ = self.work.rollback();
                return Err(e);
            }
        };
        self.work.commit()?;
        self.unpublished = staged;
        self.publish()
    }

    fn rollback(&mut self) -> Result<()> {
        self.tx = None;
        self.work.rollback()
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        let touched = stage::changed_tables(sql);
        if touched.is_empty() {
            return self.work.execute(sql);
        }
        // Outside a transaction a change is its own transaction, mirrored
        // like any other.
        let implicit = self.tx.is_none();
        if implicit {
            self.begin()?;
        }
        let run = self.work.execute(sql);
        if let Some(tx) = &mut self.tx {
            for (key, kind) in touched {
                tx.note(key, kind);
            }
        }
        match (implicit, run) {
            (true, Ok(())) => self.commit(),
            (true, Err(e)) => {
                let _ = self.rollback();
                Err(e)
            }
            (false, run) => run,
        }
    }

    fn for_each_row(&mut self, sql: &str, f: &mut dyn FnMut(Vec<Value>)) -> Result<()> {
        self.work.for_each_row(sql, f)
    }

    fn append(&mut self, schema: &str, table: &TableSchema, rows: &[Vec<Value>]) -> Result<()> {
        let implicit = self.tx.is_none() && stage::mirrored(&table.name);
        if implicit {
            self.begin()?;
        }
        let run = self.work.append(schema, table, rows).and_then(|()| {
            if let Some(tx) = &mut self.tx {
                let cells = ps_warehouse::rows::value_cells(rows);
                tx.append(schema, table, rows.len(), &cells)?;
            }
            Ok(())
        });
        self.finish_implicit(implicit, run)
    }

    fn append_buffer(&mut self, schema: &str, table: &TableSchema, rows: &RowBuffer) -> Result<()> {
        let implicit = self.tx.is_none() && stage::mirrored(&table.name);
        if implicit {
            self.begin()?;
        }
        let run = self.work.append_buffer(schema, table, rows).and_then(|()| {
            if let Some(tx) = &mut self.tx {
                let cells = rows.cells(table);
                tx.append(schema, table, rows.len(), &cells)?;
            }
            Ok(())
        });
        self.finish_implicit(implicit, run)
    }

    fn read_only(&mut self) -> Result<ReadOnly> {
        self.work.read_only()
    }
}

impl Delta {
    fn finish_implicit(&mut self, implicit: bool, run: Result<()>) -> Result<()> {
        match (implicit, run) {
            (true, Ok(())) => self.commit(),
            (true, Err(e)) => {
                let _ = self.rollback();
                Err(e)
            }
            (false, run) => run,
        }
    }
}
