//! Staging and publishing Delta commits (steps 1–4 of the crate docs).

use crate::arrow::{arrow_schema, delta_schema, delta_struct, record_batch, widen};
use crate::{s3, Delta, Lake};
use deltalake::arrow::array::RecordBatch;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, MetadataExt as _, Transaction};
use deltalake::operations::create::CreateBuilder;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter as _, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::TryStreamExt as _;
use ps_spec::Value;
use ps_warehouse::{
    literal, parse_type, Cell, Column, Error, ErrorKind, Result, TableSchema, Warehouse,
};
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;
use std::time::Instant;

/// `(schema, table)`.
pub(crate) type Key = (String, String);

/// Where staged commits are kept in the working database: a schema of its
/// own, so no space's `describe` lists it.
const STAGE_SCHEMA: &str = "_ps_delta";
const STAGE_TABLE: &str = "staged";
/// The lake a `delta+s3://` working database mirrors (one row).
const LAKE_TABLE: &str = "lake";

/// Rows per Arrow batch when a table is read back from the working
/// database to be rewritten.
const READ_CHUNK: usize = 64 * 1024;

/// How a statement changes a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Created or given columns: its Delta schema follows.
    Schema,
    /// Rows changed by SQL: the table is rewritten whole.
    Rows,
}

/// Whether `table` is one of the product's tables, mirrored into Delta; the
/// internal `_ps_*` tables (engine state, watermark, dedupe keys, scratch)
/// live only in the working database.
pub(crate) fn mirrored(table: &str) -> bool {
    !table.starts_with("_ps_")
}

/// The mirrored tables `sql` changes, and how. Every statement about the
/// contract's tables names them qualified and quoted (`ps_warehouse::sql`,
/// `ps_materialize`), which is what this reads.
pub(crate) fn changed_tables(sql: &str) -> Vec<(Key, Change)> {
    static STATEMENT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r#"(?i)\b(INSERT\s+INTO|DELETE\s+FROM|UPDATE|TRUNCATE(?:\s+TABLE)?|ALTER\s+TABLE|CREATE\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?)\s+((?:"(?:[^"]|"")*"\s*\.\s*)+"(?:[^"]|"")*")"#,
        )
        .expect("valid regex")
    });
    static IDENT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#""((?:[^"]|"")*)""#).expect("valid regex"));
    let mut out = Vec::new();
    for m in STATEMENT.captures_iter(sql) {
        let verb = m[1].to_ascii_uppercase();
        let names: Vec<String> = IDENT
            .captures_iter(&m[2])
            .map(|c| c[1].replace("\"\"", "\""))
            .collect();
        let [.., schema, table] = names.as_slice() else {
            continue;
        };
        if !mirrored(table) || schema == STAGE_SCHEMA {
            continue;
        }
        let change = if verb.starts_with("ALTER") || verb.starts_with("CREATE") {
            Change::Schema
        } else {
            Change::Rows
        };
        out.push(((schema.clone(), table.clone()), change));
    }
    out
}

/// What the open transaction changed.
#[derive(Default)]
pub(crate) struct Changes {
    appended: BTreeMap<Key, Vec<RecordBatch>>,
    rewritten: BTreeSet<Key>,
    schema: BTreeSet<Key>,
}

impl Changes {
    pub(crate) fn note(&mut self, key: Key, change: Change) {
        match change {
            Change::Schema => self.schema.insert(key),
            Change::Rows => self.rewritten.insert(key),
        };
    }

    /// Keeps `n` rows appended to `table` for its Delta commit.
    pub(crate) fn append<'a>(
        &mut self,
        schema: &str,
        table: &TableSchema,
        n: usize,
        cell: &impl Fn(usize, usize) -> Cell<'a>,
    ) -> Result<()> {
        if !mirrored(&table.name) || n == 0 {
            return Ok(());
        }
        let key = (schema.to_owned(), table.name.clone());
        if self.rewritten.contains(&key) {
            return Ok(());
        }
        let batches = self.appended.entry(key).or_default();
        let mut start = 0;
        while start < n {
            let end = n.min(start + READ_CHUNK);
            batches.push(record_batch(table, start..end, cell).map_err(arrow_error)?);
            start = end;
        }
        Ok(())
    }
}

/// One table's Delta commit, staged in the working database.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    schema: String,
    table: String,
    /// The table's mirror version: its `txn` version in the Delta log.
    version: i64,
    /// Replaces every file of the table (else adds to them).
    overwrite: bool,
    /// The table's columns after the commit.
    columns: TableSchema,
    adds: Vec<Add>,
}

fn arrow_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorKind::Query, e)
}

fn delta_error(what: &str, e: DeltaTableError) -> Error {
    Error::new(ErrorKind::Query, s3::scrub(format!("delta: {what}: {e}")))
}

fn corrupt(what: &str) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("delta: staged commit with a bad {what}"),
    )
}

/// The `txn` application id of a table.
fn app_id(schema: &str, table: &str) -> String {
    format!("profiles-sync/{schema}/{table}")
}

impl Delta {
    fn stage_table(&self) -> String {
        self.work.dialect().table(STAGE_SCHEMA, STAGE_TABLE)
    }

    /// The location of the Delta table `table` of `schema` (for a
    /// directory, created: deltalake's local store wants it to exist).
    pub(crate) fn table_url(&self, schema: &str, table: &str) -> Result<url::Url> {
        let dir = match &self.lake {
            Lake::S3(bucket) => return Ok(bucket.table_url(schema, table)),
            Lake::Dir(root) => root.join(schema).join(table),
        };
        std::fs::create_dir_all(&dir).map_err(|e| {
            Error::new(
                ErrorKind::Query,
                format!("delta: cannot create {}: {e}", dir.display()),
            )
        })?;
        url::Url::from_directory_path(&dir).map_err(|()| {
            Error::new(
                ErrorKind::Config,
                format!("delta: {} is not an absolute path", dir.display()),
            )
        })
    }

    /// What every table location is opened with (`object_store` options;
    /// credentials stay in the environment).
    pub(crate) fn storage_options(&self) -> HashMap<String, String> {
        match &self.lake {
            Lake::Dir(_) => HashMap::new(),
            Lake::S3(bucket) => bucket.options.clone(),
        }
    }

    /// The Delta table at `url`, `None` before its first commit.
    async fn load(
        url: &url::Url,
        options: HashMap<String, String>,
    ) -> std::result::Result<Option<DeltaTable>, DeltaTableError> {
        let builder = DeltaTableBuilder::from_url(url.clone())?.with_storage_options(options);
        // Loading a location without a log makes the kernel log an error,
        // so the log is looked for first.
        if !builder.build_storage()?.is_delta_table_location().await? {
            return Ok(None);
        }
        let mut table = builder.build()?;
        match table.load().await {
            Ok(()) => Ok(Some(table)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The Delta table of `key` as this process last committed it (this
    /// process is its only writer: the working database's file lock says
    /// so), loaded once; `None` before its first commit.
    fn cached(&mut self, key: &Key, url: &url::Url) -> Result<Option<DeltaTable>> {
        if let Some(t) = self.tables.get(key) {
            return Ok(Some(t.clone()));
        }
        let t = self
            .rt
            .block_on(Self::load(url, self.storage_options()))
            .map_err(|e| delta_error("loading a table", e))?;
        if let Some(t) = &t {
            self.tables.insert(key.clone(), t.clone());
        }
        Ok(t)
    }

    /// Step 2: writes the changed tables' files and stages their commits
    /// in the working database, inside its open transaction.
    pub(crate) fn stage(&mut self, changes: Changes) -> Result<Vec<Staged>> {
        let Changes {
            mut appended,
            rewritten,
            schema,
        } = changes;
        let keys: BTreeSet<Key> = appended
            .keys()
            .chain(&rewritten)
            .chain(&schema)
            .cloned()
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut described: BTreeMap<String, Vec<TableSchema>> = BTreeMap::new();
        let mut last = self.staged_versions()?;
        let mut staged = Vec::new();
        for key in keys {
            if !described.contains_key(&key.0) {
                let tables = self.work.describe(&key.0)?;
                described.insert(key.0.clone(), tables);
            }
            let Some(table) = described[&key.0].iter().find(|t| t.name == key.1).cloned() else {
                continue;
            };
            let url = self.table_url(&key.0, &key.1)?;
            let existing = self.cached(&key, &url)?;
            let compact = !rewritten.contains(&key) && self.compaction_due(&key, &existing)?;
            let overwrite = rewritten.contains(&key) || compact;
            let batches = if overwrite {
                self.read_table(&key.0, &table)?
            } else {
                appended
                    .remove(&key)
                    .unwrap_or_default()
                    .iter()
                    .map(|b| widen(b, &table))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(arrow_error)?
            };
            if !overwrite && batches.is_empty() {
                if let Some(t) = &existing {
                    if same_columns(t, &table)? {
                        continue;
                    }
                }
            }
            // The staged record is the authority once there is one; the
            // log is asked only for a table this working database has not
            // staged yet (a lake written before, say).
            let version = match (last.remove(&key), &existing) {
                (Some(v), _) => v + 1,
                (None, Some(t)) => {
                    self.rt
                        .block_on(
                            t.snapshot()
                                .map_err(|e| delta_error("reading a snapshot", e))?
                                .transaction_version(
                                    t.log_store().as_ref(),
                                    app_id(&key.0, &key.1),
                                ),
                        )
                        .map_err(|e| delta_error("reading a txn version", e))?
                        .unwrap_or(0)
                        + 1
                }
                (None, None) => 1,
            };
            let adds = self.write_files(&url, &table, batches)?;
            if compact {
                self.compacted
                    .insert(key.clone(), (Instant::now(), adds.len()));
            }
            staged.push(Staged {
                schema: key.0,
                table: key.1,
                version,
                overwrite,
                columns: table,
                adds,
            });
        }
        self.record(&staged)?;
        Ok(staged)
    }

    /// Whether the appended table `key` has gathered [`COMPACT_AT_FILES`]
    /// files since it was last compacted, and was not compacted within
    /// [`COMPACT_EVERY`]: its commit then rewrites it whole (the rows
    /// appended in this transaction included), and the vacuum that follows
    /// an overwrite removes the small files once past the retention.
    ///
    /// [`COMPACT_AT_FILES`]: crate::COMPACT_AT_FILES
    /// [`COMPACT_EVERY`]: crate::COMPACT_EVERY
    fn compaction_due(&self, key: &Key, existing: &Option<DeltaTable>) -> Result<bool> {
        let Some(t) = existing else {
            return Ok(false);
        };
        let files = t
            .snapshot()
            .map_err(|e| delta_error("reading a snapshot", e))?
            .log_data()
            .num_files();
        let (last, base) = match self.compacted.get(key) {
            Some((at, base)) => (Some(*at), *base),
            None => (None, 0),
        };
        // Counting from the files the last rewrite wrote keeps a table
        // whose rewrite needs many files from being compacted at every
        // commit.
        Ok(files >= base + crate::COMPACT_AT_FILES
            && last.is_none_or(|at| at.elapsed() >= crate::COMPACT_EVERY))
    }

    /// Every row of `schema.table` in the working database, as it stands in
    /// the open transaction.
    fn read_table(&mut self, schema: &str, table: &TableSchema) -> Result<Vec<RecordBatch>> {
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| ps_warehouse::quote(&c.name))
            .collect();
        let sql = format!(
            "SELECT {} FROM {}",
            cols.join(", "),
            self.work.dialect().table(schema, &table.name)
        );
        let mut rows: Vec<Vec<Value>> = Vec::new();
        let mut batches = Vec::new();
        let mut failed = None;
        self.work.for_each_row(&sql, &mut |r| {
            rows.push(r);
            if rows.len() == READ_CHUNK && failed.is_none() {
                let batch = {
                    let cells = ps_warehouse::rows::value_cells(&rows);
                    record_batch(table, 0..rows.len(), &cells)
                };
                match batch {
                    Ok(b) => batches.push(b),
                    Err(e) => failed = Some(e),
                }
                rows.clear();
            }
        })?;
        if let Some(e) = failed {
            return Err(arrow_error(e));
        }
        if !rows.is_empty() {
            let cells = ps_warehouse::rows::value_cells(&rows);
            batches.push(record_batch(table, 0..rows.len(), &cells).map_err(arrow_error)?);
        }
        Ok(batches)
    }

    /// Writes `batches` as Parquet files of the table at `url`, returning
    /// their add actions (no Delta log entry names them yet).
    fn write_files(
        &self,
        url: &url::Url,
        table: &TableSchema,
        batches: Vec<RecordBatch>,
    ) -> Result<Vec<Add>> {
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        self.rt
            .block_on(async {
                let mut writer = RecordBatchWriter::try_new(
                    url.as_str(),
                    arrow_schema(table),
                    None,
                    Some(self.storage_options()),
                )?;
                for b in batches {
                    writer.write(b).await?;
                }
                writer.flush().await
            })
            .map_err(|e| delta_error("writing files", e))
    }

    /// Stages `staged` in the working database (replacing each table's
    /// previous staged commit).
    fn record(&mut self, staged: &[Staged]) -> Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        let t = self.stage_table();
        let mut sql = String::new();
        for s in staged {
            let columns: Vec<[String; 2]> = s
                .columns
                .columns
                .iter()
                .map(|c| {
                    [
                        c.name.clone(),
                        self.work.dialect().type_name(c.ty).to_owned(),
                    ]
                })
                .collect();
            let adds = serde_json::to_string(&s.adds).map_err(arrow_error)?;
            let columns = serde_json::to_string(&columns).map_err(arrow_error)?;
            sql.push_str(&format!(
                "DELETE FROM {t} WHERE space = {} AND tbl = {};\
                 INSERT INTO {t} VALUES ({}, {}, {}, {}, {}, {});",
                literal(&s.schema),
                literal(&s.table),
                literal(&s.schema),
                literal(&s.table),
                s.version,
                s.overwrite,
                literal(&columns),
                literal(&adds),
            ));
        }
        self.work.execute(&sql)
    }

    /// Creates the staging table if needed.
    fn ensure_stage_table(&mut self) -> Result<()> {
        let d = self.work.dialect().clone();
        self.work.execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE IF NOT EXISTS {} \
             (space VARCHAR, tbl VARCHAR, version BIGINT, overwrite BOOLEAN, \
             columns VARCHAR, adds VARCHAR)",
            d.schema(STAGE_SCHEMA),
            self.stage_table()
        ))
    }

    /// Ties a `delta+s3://` working database to its lake: the first open
    /// records `root`, a later one with another lake is refused. The
    /// staged commits and mirror versions it holds are that lake's, and
    /// its dedupe keys and watermark say what that lake holds.
    pub(crate) fn bind_work_dir(&mut self, root: &str) -> Result<()> {
        let d = self.work.dialect().clone();
        let t = d.table(STAGE_SCHEMA, LAKE_TABLE);
        self.work.execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE IF NOT EXISTS {t} (root VARCHAR)",
            d.schema(STAGE_SCHEMA)
        ))?;
        let rows = self.work.query(&format!("SELECT root FROM {t}"))?;
        match rows.first().and_then(|r| r.first()) {
            None => self
                .work
                .execute(&format!("INSERT INTO {t} VALUES ({})", literal(root))),
            Some(Value::Str(bound)) if bound == root => Ok(()),
            Some(Value::Str(bound)) => Err(Error::new(
                ErrorKind::Config,
                format!(
                    "warehouse.url: work_dir holds the working database of the lake {bound}, \
                     not {root}: give each lake a work_dir of its own"
                ),
            )),
            Some(_) => Err(corrupt("lake row")),
        }
    }

    /// Each table's last staged mirror version.
    fn staged_versions(&mut self) -> Result<BTreeMap<Key, i64>> {
        self.ensure_stage_table()?;
        let rows = self.work.query(&format!(
            "SELECT space, tbl, version FROM {}",
            self.stage_table()
        ))?;
        let mut out = BTreeMap::new();
        for r in rows {
            if let [Value::Str(s), Value::Str(t), Value::Int(v)] = r.as_slice() {
                out.insert((s.clone(), t.clone()), *v);
            }
        }
        Ok(out)
    }

    /// Every staged commit (step 4 publishes those the log lacks).
    pub(crate) fn staged(&mut self) -> Result<Vec<Staged>> {
        self.ensure_stage_table()?;
        let rows = self.work.query(&format!(
            "SELECT space, tbl, version, overwrite, columns, adds FROM {} ORDER BY space, tbl",
            self.stage_table()
        ))?;
        rows.into_iter()
            .map(|r| {
                let [Value::Str(schema), Value::Str(table), Value::Int(version), Value::Bool(overwrite), Value::Str(columns), Value::Str(adds)] =
                    <[Value; 6]>::try_from(r).map_err(|_| corrupt("row"))?
                else {
                    return Err(corrupt("row"));
                };
                let columns: Vec<[String; 2]> =
                    serde_json::from_str(&columns).map_err(|_| corrupt("column list"))?;
                let columns = columns
                    .into_iter()
                    .map(|[name, ty]| {
                        Ok(Column {
                            name,
                            ty: parse_type(&ty).ok_or_else(|| corrupt("column type"))?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Staged {
                    columns: TableSchema {
                        name: table.clone(),
                        columns,
                    },
                    adds: serde_json::from_str(&adds).map_err(|_| corrupt("add list"))?,
                    schema,
                    table,
                    version,
                    overwrite,
                })
            })
            .collect()
    }

    /// Step 3/4: commits every unpublished staged commit the Delta log does
    /// not hold yet, then vacuums the tables it rewrote.
    pub(crate) fn publish(&mut self) -> Result<()> {
        while let Some(s) = self.unpublished.first().cloned() {
            let key = (s.schema.clone(), s.table.clone());
            let url = self.table_url(&s.schema, &s.table)?;
            let retention = self.retention;
            let due = s.overwrite
                && self
                    .vacuumed
                    .get(&key)
                    .is_none_or(|t| t.elapsed() >= crate::VACUUM_EVERY);
            let existing = self.cached(&key, &url)?;
            let options = self.storage_options();
            let known = self.logged.get(&key).copied();
            match self.rt.block_on(publish_one(
                existing, &url, options, &s, known, retention, due,
            )) {
                Ok((table, vacuumed)) => {
                    self.tables.insert(key.clone(), table);
                    self.logged
                        .insert(key.clone(), known.map_or(s.version, |v| v.max(s.version)));
                    if vacuumed {
                        self.vacuumed.insert(key, Instant::now());
                    }
                }
                Err(e) => {
                    // Whether the commit landed is unknown: the next
                    // attempt loads the table and asks its log.
                    self.tables.remove(&key);
                    self.logged.remove(&key);
                    return Err(delta_error("committing", e));
                }
            }
            self.unpublished.remove(0);
        }
        Ok(())
    }
}

/// Whether the Delta table has exactly `table`'s columns.
fn same_columns(t: &DeltaTable, table: &TableSchema) -> Result<bool> {
    let have = t
        .snapshot()
        .map_err(|e| delta_error("reading a snapshot", e))?
        .schema();
    let want = delta_schema(table);
    Ok(have.fields().len() == want.len()
        && have
            .fields()
            .zip(&want)
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type()))
}

/// Commits `s` to the table `existing` (`None`: creates it at `url`)
/// unless its log holds the version already (`known`: the txn version the
/// log is known to hold; the log is read only when that does not settle
/// it), vacuuming it after a commit if `vacuum` says so; returns the table
/// as it then stands and whether it was vacuumed.
async fn publish_one(
    existing: Option<DeltaTable>,
    url: &url::Url,
    options: HashMap<String, String>,
    s: &Staged,
    known: Option<i64>,
    retention: std::time::Duration,
    vacuum: bool,
) -> std::result::Result<(DeltaTable, bool), DeltaTableError> {
    let app = app_id(&s.schema, &s.table);
    let props = || {
        CommitProperties::default().with_application_transaction(Transaction::new(&app, s.version))
    };
    let adds = s.adds.iter().cloned().map(Action::Add);
    let Some(mut table) = existing else {
        return CreateBuilder::new()
            .with_location(url.as_str())
            .with_storage_options(options)
            .with_table_name(&s.table)
            .with_columns(delta_schema(&s.columns))
            .with_actions(adds)
            .with_commit_properties(props())
            .await
            .map(|t| (t, false));
    };
    let snapshot = table.snapshot()?;
    // This process is the table's only writer, so a log known to hold
    // the previous version holds nothing newer.
    let logged = match known {
        Some(v) if v + 1 >= s.version => Some(v),
        _ => {
            snapshot
                .transaction_version(table.log_store().as_ref(), &app)
                .await?
        }
    };
    if logged.is_some_and(|v| v >= s.version) {
        return Ok((table, false));
    }
    let mut actions = Vec::new();
    let schema = delta_struct(&s.columns)?;
    if snapshot.schema().as_ref() != &schema {
        let metadata = snapshot.metadata().clone().with_schema(&schema)?;
        actions.push(Action::Metadata(metadata));
    }
    if s.overwrite {
        let removes: Vec<Action> = snapshot
            .snapshot()
            .file_views(table.log_store().as_ref(), None)
            .map_ok(|f| Action::Remove(f.remove_action(true)))
            .try_collect()
            .await?;
        actions.extend(removes);
    }
    actions.extend(adds);
    let mode = if s.overwrite {
        SaveMode::Overwrite
    } else {
        SaveMode::Append
    };
    let finalized = CommitBuilder::from(props())
        .with_actions(actions)
        .build(
            Some(snapshot),
            table.log_store(),
            DeltaOperation::Write {
                mode,
                partition_by: None,
                predicate: None,
            },
        )
        .await?;
    table.state = Some(finalized.snapshot());
    if vacuum {
        let hours = retention.as_secs() / 3600;
        // deltalake keeps a file removed *at* now minus the retention (its
        // comparison is strict); one millisecond less makes the retention
        // inclusive, so with `retention_hours=0` a file removed by the
        // commit just made (in the same millisecond) goes too.
        let period = chrono::Duration::hours(hours as i64) - chrono::Duration::milliseconds(1);
        let (vacuumed, _) = table
            .vacuum()
            .with_retention_period(period)
            .with_enforce_retention_duration(false)
            // Full: also the files of commits a crash kept from being
            // staged, which no log entry names.
            .with_mode(VacuumMode::Full)
            .await?;
        return Ok((vacuumed, true));
    }
    Ok((table, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str, t: &str) -> Key {
        (s.to_owned(), t.to_owned())
    }

    /// Statements as `ps_warehouse::sql`, the DDL and `ps_materialize`
    /// write them: qualified, quoted names, several per call.
    #[test]
    fn changed_tables_reads_the_tables_statements_change() {
        let sql = r#"DELETE FROM "w"."s"."id_graph" WHERE segment_id IN (SELECT segment_id FROM "w"."s"."id_graph_updates" WHERE seq >= 5);
            INSERT INTO "w"."s"."id_graph" (segment_id) SELECT DISTINCT ON (segment_id) segment_id FROM "w"."s"."id_graph_updates";
            ALTER TABLE "w"."s"."pages" ADD COLUMN "context_x" VARCHAR;
            CREATE TABLE IF NOT EXISTS "w"."s"."order ""big""" ("id" VARCHAR);
            DELETE FROM "w"."s"."_ps_meta";
            CREATE TABLE IF NOT EXISTS "w"."_ps_delta"."staged" (space VARCHAR);
            update "w"."s"."tracks" SET x = 1;
            SELECT * FROM "w"."s"."identifies""#;
        assert_eq!(
            changed_tables(sql),
            vec![
                (key("s", "id_graph"), Change::Rows),
                (key("s", "id_graph"), Change::Rows),
                (key("s", "pages"), Change::Schema),
                (key("s", "order \"big\""), Change::Schema),
                (key("s", "tracks"), Change::Rows),
            ]
        );
        assert!(changed_tables("SELECT 1; CHECKPOINT").is_empty());
    }
}
