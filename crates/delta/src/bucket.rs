//! The materialized tables' Delta files, bucketed by profile key, so a
//! commit rewrites only the buckets holding a row it changed.
//!
//! `id_graph`, `external_id_mapping` and `profile_traits` are changed by
//! SQL (`ps_materialize`'s delete-and-insert of the touched profiles), and
//! a Delta table without DataFusion takes no `DELETE`/`MERGE`. Rewriting
//! the whole table at every commit costs the size of the space, so each
//! of them is kept as `2^bits` buckets: a row belongs to the bucket given
//! by the first [`FINE_BITS`] bits of the MD5 of its key column (the
//! column [`ps_materialize::touched_rows`] finds changed rows by), and
//! every data file holds the rows of one bucket. Which file holds which
//! bucket is recorded in the working database (`_ps_delta.files`), in the
//! same transaction as the staged commit that adds the file.
//!
//! A touched refresh changes only rows whose key is one of the touched
//! keys (`ps_materialize::touched_rows` says which, while `_ps_keys` holds
//! them); their buckets are read when the statement runs. At the commit
//! those buckets are read back whole from the working database and
//! written as new files, and the Delta commit removes exactly the files
//! the record names for them: every other bucket's file already holds
//! exactly the working database's rows of that bucket, so the table
//! equals the working database's, as a whole rewrite would.
//!
//! Anything else that changes a materialized table's rows (a privacy
//! delete, `materialize --full`, an append), a record that does not match
//! the Delta log's files (a lake written before buckets, say), or a table
//! that outgrew its bucket count by a factor of four either way rewrites it
//! whole, into buckets again.
//!
//! MD5 (DuckDB's `md5`, a fixed function) rather than a hash of DuckDB's
//! or Rust's own: a row's bucket is stored, so it must not change with a
//! DuckDB or Rust version.

use crate::arrow::record_batch;
use crate::stage::{arrow_error, Change, Key};
use crate::Delta;
use deltalake::arrow::array::RecordBatch;
use deltalake::kernel::Add;
use deltalake::DeltaTable;
use futures::TryStreamExt as _;
use ps_materialize::TouchedRows;
use ps_spec::Value;
use ps_warehouse::contract::STATE_KEYS;
use ps_warehouse::{literal, quote, Error, ErrorKind, Result, TableSchema, Warehouse};
use std::collections::{BTreeMap, BTreeSet};

/// The finest bucketing: a key's bucket at `bits` is the first `bits` of
/// these (three hex digits of its MD5).
pub(crate) const FINE_BITS: u32 = 12;

/// Rows per bucket a table is bucketed for unless the URL says
/// `?bucket_rows=N`: small enough that a commit touching a few profiles
/// rewrites a small part of a large table, large enough that a table of a
/// million profiles stays within [`FINE_BITS`]' 4,096 files.
pub const DEFAULT_BUCKET_ROWS: u64 = 256;

/// Where the working database records each bucketed table's files.
const FILES_TABLE: &str = "files";

/// The SQL of a row's fine bucket (three hex digits) from its key column;
/// a NULL key counts as the empty string.
fn fine_sql(column: &str) -> String {
    format!(
        "left(md5(coalesce(CAST({} AS VARCHAR), '')), 3)",
        quote(column)
    )
}

fn fine(text: &str) -> Result<u16> {
    u16::from_str_radix(text, 16).map_err(|_| {
        Error::new(
            ErrorKind::Corrupt,
            format!("delta: bad bucket prefix {text:?}"),
        )
    })
}

/// The bucket bits for a table of `rows` rows: about `bucket_rows` rows a
/// bucket, at most `2^FINE_BITS` buckets.
pub(crate) fn bits_for(rows: u64, bucket_rows: u64) -> u32 {
    let buckets = rows / bucket_rows.max(1);
    if buckets < 2 {
        0
    } else {
        buckets.ilog2().min(FINE_BITS)
    }
}

/// What a commit does to a bucketed table's files, recorded with it.
#[derive(Debug, Clone)]
pub(crate) enum BucketFiles {
    /// Every file replaced by `files` (bucket, path), at `bits`.
    Replace {
        bits: u32,
        files: Vec<(u16, String)>,
    },
    /// The files of `buckets` replaced by `files`, at the table's `bits`.
    Partial {
        bits: u32,
        buckets: BTreeSet<u16>,
        files: Vec<(u16, String)>,
    },
}

/// A bucketed table's staged change.
pub(crate) struct Bucketed {
    /// Every file of the table is removed.
    pub(crate) overwrite: bool,
    pub(crate) adds: Vec<Add>,
    /// The files removed (when not `overwrite`).
    pub(crate) removes: Vec<String>,
    pub(crate) files: BucketFiles,
}

impl Delta {
    fn files_table(&self) -> String {
        self.work
            .dialect()
            .table(crate::stage::STAGE_SCHEMA, FILES_TABLE)
    }

    /// Creates the file record if needed.
    pub(crate) fn ensure_files_table(&mut self) -> Result<()> {
        self.work.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} (space VARCHAR, tbl VARCHAR, bits INTEGER, \
             bucket INTEGER, path VARCHAR)",
            self.files_table()
        ))
    }

    /// Notes in the open transaction how `sql`, just run, changed the
    /// mirrored tables `changes`: a materialized table's touched refresh
    /// (one statement reading `_ps_keys`) by the fine buckets of the keys
    /// it touched, anything else as [`Changes::note`] does.
    ///
    /// [`Changes::note`]: crate::stage::Changes::note
    pub(crate) fn note_statement(&mut self, sql: &str, changes: Vec<(Key, Change)>) -> Result<()> {
        if self.tx.is_none() {
            return Ok(());
        }
        // One statement: a batch could hold another change of the table
        // besides the touched refresh.
        let single = changes.len() == 1 && !sql.trim().trim_end_matches(';').contains(';');
        for (key, change) in changes {
            let d = self.work.dialect();
            let rows = ps_materialize::touched_rows(d, &key.0, &key.1).filter(|_| {
                single && change == Change::Rows && sql.contains(&d.table(&key.0, STATE_KEYS))
            });
            match rows {
                Some(rows) => {
                    let fine = self.touched_fine(&rows)?;
                    if let Some(tx) = &mut self.tx {
                        tx.touch(key, fine);
                    }
                }
                None => {
                    if let Some(tx) = &mut self.tx {
                        tx.note(key, change);
                    }
                }
            }
        }
        Ok(())
    }

    /// The fine buckets of the keys `rows` names, now.
    fn touched_fine(&mut self, rows: &TouchedRows) -> Result<BTreeSet<u16>> {
        let sql = format!(
            "SELECT DISTINCT {} FROM ({}) AS touched(k)",
            fine_sql("k"),
            rows.keys
        );
        let mut out = BTreeSet::new();
        for r in self.work.query(&sql)? {
            if let [Value::Str(s)] = r.as_slice() {
                out.insert(fine(s)?);
            }
        }
        Ok(out)
    }

    /// The recorded files of `key`: `(bits, bucket, path)`.
    fn recorded(&mut self, key: &Key) -> Result<Vec<(u32, u16, String)>> {
        let rows = self.work.query(&format!(
            "SELECT bits, bucket, path FROM {} WHERE space = {} AND tbl = {}",
            self.files_table(),
            literal(&key.0),
            literal(&key.1)
        ))?;
        rows.into_iter()
            .map(|r| match r.as_slice() {
                [Value::Int(bits), Value::Int(bucket), Value::Str(path)] => {
                    Ok((*bits as u32, *bucket as u16, path.clone()))
                }
                _ => Err(Error::new(
                    ErrorKind::Corrupt,
                    "delta: a bad row in the file record",
                )),
            })
            .collect()
    }

    /// Writes the bucketed table `key`'s changed buckets (`touched`: the
    /// fine buckets of the keys its rows changed by; `None`: every bucket)
    /// as new files, returning what its commit does.
    pub(crate) fn write_bucketed(
        &mut self,
        key: &Key,
        table: &TableSchema,
        url: &url::Url,
        existing: Option<&DeltaTable>,
        column: &str,
        touched: Option<&BTreeSet<u16>>,
    ) -> Result<Bucketed> {
        let rows: u64 = match self
            .work
            .query(&format!(
                "SELECT count(*) FROM {}",
                self.work.dialect().table(&key.0, &key.1)
            ))?
            .first()
            .map(|r| r.as_slice())
        {
            Some([Value::Int(n)]) => *n as u64,
            _ => 0,
        };
        let want = bits_for(rows, self.bucket_rows);
        if let (Some(touched), Some(existing)) = (touched, existing) {
            if let Some(bits) = self.partial_bits(key, existing, want)? {
                let buckets: BTreeSet<u16> =
                    touched.iter().map(|f| f >> (FINE_BITS - bits)).collect();
                let recorded = self.recorded(key)?;
                let written = self.write_buckets(key, table, url, column, bits, Some(&buckets))?;
                let removes = recorded
                    .into_iter()
                    .filter(|(_, b, _)| buckets.contains(b))
                    .map(|(_, _, p)| p)
                    .collect();
                let (adds, files) = split(written);
                return Ok(Bucketed {
                    overwrite: false,
                    adds,
                    removes,
                    files: BucketFiles::Partial {
                        bits,
                        buckets,
                        files,
                    },
                });
            }
        }
        let written = self.write_buckets(key, table, url, column, want, None)?;
        let (adds, files) = split(written);
        Ok(Bucketed {
            overwrite: true,
            adds,
            removes: Vec::new(),
            files: BucketFiles::Replace { bits: want, files },
        })
    }

    /// The bits of `key`'s buckets if a commit may rewrite some of them:
    /// the record names exactly the Delta table's files, all at one bit
    /// count, within a factor of four of what its size asks (`want`).
    fn partial_bits(&mut self, key: &Key, existing: &DeltaTable, want: u32) -> Result<Option<u32>> {
        let recorded = self.recorded(key)?;
        let Some(&(bits, _, _)) = recorded.first() else {
            return Ok(None);
        };
        if recorded.iter().any(|(b, _, _)| *b != bits) || want.abs_diff(bits) >= 2 {
            return Ok(None);
        }
        let snapshot = existing
            .snapshot()
            .map_err(|e| crate::stage::delta_error("reading a snapshot", e))?;
        let in_log: BTreeSet<String> = self
            .rt
            .block_on(
                snapshot
                    .snapshot()
                    .file_views(existing.log_store().as_ref(), None)
                    .map_ok(|f| f.path().into_owned())
                    .try_collect(),
            )
            .map_err(|e| crate::stage::delta_error("listing files", e))?;
        let named: BTreeSet<String> = recorded.into_iter().map(|(_, _, p)| p).collect();
        if named != in_log {
            tracing::info!(
                space = key.0,
                table = key.1,
                "the Delta table's files are not the recorded buckets: rewriting it whole"
            );
            return Ok(None);
        }
        Ok(Some(bits))
    }

    /// Reads the rows of `buckets` (all rows: `None`) of `key` at `bits`
    /// from the working database and writes each bucket's rows as its own
    /// files; returns each file's bucket and add action.
    fn write_buckets(
        &mut self,
        key: &Key,
        table: &TableSchema,
        url: &url::Url,
        column: &str,
        bits: u32,
        buckets: Option<&BTreeSet<u16>>,
    ) -> Result<Vec<(u16, Add)>> {
        let shift = FINE_BITS - bits;
        let cols: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
        let mut sql = format!(
            "SELECT {}, {} AS _ps_fine FROM {}",
            cols.join(", "),
            fine_sql(column),
            self.work.dialect().table(&key.0, &key.1)
        );
        if let Some(buckets) = buckets {
            if buckets.is_empty() {
                return Ok(Vec::new());
            }
            let fines: Vec<String> = buckets
                .iter()
                .flat_map(|&b| (u32::from(b) << shift)..((u32::from(b) + 1) << shift))
                .map(|f| format!("'{f:03x}'"))
                .collect();
            sql.push_str(&format!(
                " WHERE {} IN ({})",
                fine_sql(column),
                fines.join(", ")
            ));
        }
        sql.push_str(" ORDER BY _ps_fine");
        let mut by_bucket: BTreeMap<u16, Vec<RecordBatch>> = BTreeMap::new();
        let mut rows: Vec<Vec<Value>> = Vec::new();
        let mut current: Option<u16> = None;
        let mut failed: Option<Error> = None;
        let mut flush = |bucket: u16, rows: &mut Vec<Vec<Value>>, failed: &mut Option<Error>| {
            if rows.is_empty() || failed.is_some() {
                rows.clear();
                return;
            }
            let batch = {
                let cells = ps_warehouse::rows::value_cells(rows);
                record_batch(table, 0..rows.len(), &cells)
            };
            match batch {
                Ok(b) => by_bucket.entry(bucket).or_default().push(b),
                Err(e) => *failed = Some(arrow_error(e)),
            }
            rows.clear();
        };
        self.work.for_each_row(&sql, &mut |mut r| {
            let bucket = match r.pop() {
                Some(Value::Str(s)) => match fine(&s) {
                    Ok(f) => f >> shift,
                    Err(e) => {
                        failed.get_or_insert(e);
                        return;
                    }
                },
                _ => 0,
            };
            if current.is_some_and(|c| c != bucket) || rows.len() == crate::stage::READ_CHUNK {
                flush(current.unwrap_or(bucket), &mut rows, &mut failed);
            }
            current = Some(bucket);
            rows.push(r);
        })?;
        if let Some(c) = current {
            flush(c, &mut rows, &mut failed);
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let mut out = Vec::new();
        for (bucket, batches) in by_bucket {
            for add in self.write_files(url, table, batches)? {
                out.push((bucket, add));
            }
        }
        Ok(out)
    }

    /// The SQL that records `files`' change to `key`'s file record.
    pub(crate) fn record_files_sql(&self, key: &Key, files: &BucketFiles) -> String {
        let t = self.files_table();
        let this = format!("space = {} AND tbl = {}", literal(&key.0), literal(&key.1));
        let (delete, bits, added) = match files {
            BucketFiles::Replace { bits, files } => {
                (format!("DELETE FROM {t} WHERE {this};"), *bits, files)
            }
            BucketFiles::Partial {
                bits,
                buckets,
                files,
            } => {
                let list: Vec<String> = buckets.iter().map(u16::to_string).collect();
                let delete = if list.is_empty() {
                    String::new()
                } else {
                    format!(
                        "DELETE FROM {t} WHERE {this} AND bucket IN ({});",
                        list.join(", ")
                    )
                };
                (delete, *bits, files)
            }
        };
        let mut sql = delete;
        if !added.is_empty() {
            let values: Vec<String> = added
                .iter()
                .map(|(b, p)| {
                    format!(
                        "({}, {}, {bits}, {b}, {})",
                        literal(&key.0),
                        literal(&key.1),
                        literal(p)
                    )
                })
                .collect();
            sql.push_str(&format!("INSERT INTO {t} VALUES {};", values.join(", ")));
        }
        sql
    }
}

fn split(written: Vec<(u16, Add)>) -> (Vec<Add>, Vec<(u16, String)>) {
    let files = written.iter().map(|(b, a)| (*b, a.path.clone())).collect();
    (written.into_iter().map(|(_, a)| a).collect(), files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_grow_with_the_table_up_to_the_fine_buckets() {
        assert_eq!(bits_for(0, 256), 0);
        assert_eq!(bits_for(511, 256), 0);
        assert_eq!(bits_for(512, 256), 1);
        assert_eq!(bits_for(256 * 1000, 256), 9);
        assert_eq!(bits_for(u64::MAX, 256), FINE_BITS);
        assert_eq!(bits_for(10, 0), 3);
    }
}
