//! Opening a warehouse from its URL: the one place that knows which
//! warehouses exist.

use crate::duckdb::DuckDb;
use crate::error::{Error, ErrorKind, Result};
use crate::postgres::Postgres;
use crate::Warehouse;
use std::sync::RwLock;

/// Opens a warehouse from the URL it is given (the whole URL, scheme included).
pub type Opener = fn(&str) -> Result<Box<dyn Warehouse>>;

/// Warehouses that live in crates of their own (which depend on this one,
/// so this crate cannot name them): URL prefix and opener.
static REGISTERED: RwLock<Vec<(&'static str, Opener)>> = RwLock::new(Vec::new());

/// Makes [`open`] hand URLs starting with `prefix` to `opener`: how a
/// warehouse kept out of this crate (the Delta Lake destination, `ps-delta`,
/// whose dependencies DuckDB-only builds should not pay for) becomes
/// reachable from every place that opens a warehouse by URL. Registering a
/// prefix again replaces its opener.
pub fn register(prefix: &'static str, opener: Opener) {
    let mut r = REGISTERED.write().unwrap_or_else(|e| e.into_inner());
    r.retain(|(p, _)| *p != prefix);
    r.push((prefix, opener));
}

/// Opens a warehouse from its URL: `duckdb://PATH[?threads=N&memory_limit=SIZE]` (or
/// `duckdb://:memory:`), `postgres://USER:PASS@HOST:PORT/DB`, or a URL
/// whose prefix a warehouse crate [`register`]ed.
pub fn open(url: &str) -> Result<Box<dyn Warehouse>> {
    let registered = REGISTERED
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(p, _)| url.starts_with(p))
        .map(|(_, o)| *o);
    if let Some(opener) = registered {
        return opener(url);
    }
    if let Some(rest) = url.strip_prefix("duckdb://") {
        return Ok(Box::new(DuckDb::open_url(rest)?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Box::new(Postgres::connect(url)?));
    }
    Err(Error::new(
        ErrorKind::Config,
        format!("warehouse.url {url:?} is not supported (expected duckdb://PATH or postgres://USER:PASS@HOST:PORT/DB)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ps_spec::Value;

    fn threads(url: &str) -> Result<i64> {
        let mut wh = open(url)?;
        match wh
            .query("SELECT current_setting('threads')")?
            .remove(0)
            .remove(0)
        {
            Value::Int(n) => Ok(n),
            other => panic!("threads is {other:?}"),
        }
    }

    #[test]
    fn duckdb_threads_default_to_one_and_the_url_can_say_otherwise() {
        assert_eq!(threads("duckdb://:memory:").unwrap(), 1);
        assert_eq!(threads("duckdb://:memory:?threads=2").unwrap(), 2);
        for bad in ["duckdb://:memory:?threads=0", "duckdb://:memory:?threads=x"] {
            let e = threads(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.to_string().contains("threads"), "{e}");
        }
        assert_eq!(
            threads("duckdb://:memory:?memory_limit=300MB&threads=3").unwrap(),
            3
        );
        let e = threads("duckdb://:memory:?memory_limit=lots").unwrap_err();
        assert!(e.to_string().contains("memory_limit"), "{e}");
        let e = threads("duckdb://:memory:?thread=2").unwrap_err();
        assert!(e.to_string().contains("unknown DuckDB option"), "{e}");
    }

    /// Row groups of the file's table `t` after a checkpoint.
    fn row_groups(url: &str, rows: usize) -> Result<i64> {
        let mut wh = open(url)?;
        wh.execute(&format!(
            "CREATE TABLE t AS SELECT range AS i, 'v' || range AS s FROM range({rows})"
        ))?;
        wh.execute("CHECKPOINT")?;
        match wh
            .query("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('t')")?
            .remove(0)
            .remove(0)
        {
            Value::Int(n) => Ok(n),
            other => panic!("row groups: {other:?}"),
        }
    }

    #[test]
    fn duckdb_row_group_size_defaults_to_4096_applies_to_the_file_and_bad_values_name_the_setting()
    {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| format!("duckdb://{}", dir.path().join(name).display());
        // Ours: 4,096-row groups, three for 10,000 rows.
        assert_eq!(row_groups(&file("default.duckdb"), 10_000).unwrap(), 3);
        // DuckDB's default, asked for: 10,000 rows fit one row group.
        let url = format!("{}?row_group_size=122880", file("duckdb-default.duckdb"));
        assert_eq!(row_groups(&url, 10_000).unwrap(), 1);
        // 2,048-row groups: five, and the file keeps its usual catalog name.
        let url = format!("{}?row_group_size=2048&threads=2", file("small.duckdb"));
        assert_eq!(row_groups(&url, 10_000).unwrap(), 5);
        let mut wh = open(&url).unwrap();
        assert_eq!(
            wh.query("SELECT current_database(), count(*) FROM t")
                .unwrap(),
            vec![vec![Value::Str("small".into()), Value::Int(10_000)]]
        );
        for bad in ["0", "1000", "x", "-2048"] {
            let e = open(&format!("{}?row_group_size={bad}", file("bad.duckdb")))
                .err()
                .expect("refused");
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.to_string().contains("row_group_size"), "{e}");
        }
        let e = open("duckdb://:memory:?row_group_size=2048")
            .err()
            .expect("refused");
        assert!(e.to_string().contains("row_group_size"), "{e}");
    }

    /// A file is attached under the name DuckDB gives a file it opens, so
    /// no file name is refused: not the reserved `main`, `temp` and
    /// `system`, nor `memory`, the name of the in-memory database it is
    /// attached to. A file written by a plain open (as before row groups
    /// had a default) is read back whole.
    #[test]
    fn duckdb_files_with_reserved_names_open_and_older_files_read_back() {
        let dir = tempfile::tempdir().unwrap();
        for (file, catalog) in [
            ("memory.duckdb", "memory_db"),
            ("main.duckdb", "main_db"),
            ("Temp.duckdb", "Temp_db"),
            ("system.duckdb", "system_db"),
            ("space.v2.duckdb", "space"),
        ] {
            let url = format!("duckdb://{}", dir.path().join(file).display());
            let mut wh = open(&url).unwrap_or_else(|e| panic!("{file}: {e}"));
            wh.execute("CREATE TABLE t AS SELECT 1 AS i").unwrap();
            assert_eq!(
                wh.query("SELECT current_database(), count(*) FROM t")
                    .unwrap(),
                vec![vec![Value::Str(catalog.into()), Value::Int(1)]],
                "{file}"
            );
        }
        let old = dir.path().join("old.duckdb");
        {
            let mut wh = crate::duckdb::DuckDb::open(old.to_str().unwrap()).unwrap();
            wh.execute("CREATE TABLE t AS SELECT range AS i FROM range(5000)")
                .unwrap();
        }
        let mut wh = open(&format!("duckdb://{}", old.display())).unwrap();
        assert_eq!(
            wh.query("SELECT count(*), sum(i) FROM t").unwrap(),
            vec![vec![Value::Int(5000), Value::Int(12_497_500)]]
        );
    }
}
