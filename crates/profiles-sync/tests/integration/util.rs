//! Shared helpers: run the binary, read tables back as text.

use ps_spec::time::format_sql;
use ps_spec::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    // Read when the test runs (cargo sets it), not when it was built: a test
    // binary reused from the shared target directory may have been built in
    // a clone at another path.
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn golden_dir() -> PathBuf {
    repo_root().join("testdata/golden")
}

/// Which warehouse a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    DuckDb,
    Postgres,
}

pub const BACKENDS: [Backend; 2] = [Backend::DuckDb, Backend::Postgres];

/// The test PostgreSQL server, started by `scripts/test`. Missing is a
/// failure, never a skip: CI must not pass without testing PostgreSQL.
pub fn pg_admin_url() -> String {
    std::env::var("PROFILES_SYNC_TEST_PG_URL").expect(
        "PROFILES_SYNC_TEST_PG_URL is not set: run the tests with scripts/test, which starts a throwaway \
         PostgreSQL server (or export the URL of one)",
    )
}

/// A fresh database on the test server, returning its URL.
pub fn pg_fresh_database() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let admin = pg_admin_url();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let mut wh = ps_warehouse::open(&admin).unwrap();
    wh.execute(&format!("CREATE DATABASE {name}")).unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    format!("{base}/{name}")
}

/// A temp dir with a config whose warehouse is a fresh DuckDB file inside it
/// or a fresh PostgreSQL database.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    url: String,
    /// Environment variables the binary runs with (an S3 lake's credentials).
    envs: Vec<(String, String)>,
}

impl Env {
    /// Uses `base` (a config text) with its warehouse url replaced by a DuckDB file.
    pub fn new(base: &str) -> Env {
        Env::with_backend(base, Backend::DuckDb)
    }

    pub fn with_backend(base: &str, backend: Backend) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            Backend::DuckDb => format!("duckdb://{}", dir.path().join("wh.duckdb").display()),
            Backend::Postgres => pg_fresh_database(),
        };
        let text = replace_url(base, &url);
        let config = dir.path().join("profiles-sync.toml");
        std::fs::write(&config, text).unwrap();
        Env {
            dir,
            config,
            url,
            envs: Vec::new(),
        }
    }

    /// `base` with its warehouse url replaced by `url` (a warehouse the
    /// test manages itself, such as a private PostgreSQL cluster).
    pub fn with_url(base: &str, url: &str) -> Env {
        Env::in_temp_dir(base, |_| url.to_owned(), &[])
    }

    /// Uses `base` with its warehouse url replaced by a Delta Lake
    /// directory (`delta://`) inside the temp dir.
    pub fn delta(base: &str) -> Env {
        Env::in_temp_dir(
            base,
            |dir| format!("delta://{}", dir.join("lake").display()),
            &[],
        )
    }

    /// `base` with a `delta+s3://` warehouse: the lake at `bucket/lake` on
    /// the S3 server at `endpoint`, the working database in this test's
    /// directory, `envs` (credentials, region) given to every run.
    pub fn delta_s3(base: &str, endpoint: &str, bucket: &str, envs: &[(&str, &str)]) -> Env {
        Env::in_temp_dir(
            base,
            |dir| {
                format!(
                    "delta+s3://{bucket}/lake?endpoint={endpoint}&work_dir={}",
                    dir.join("work").display()
                )
            },
            envs,
        )
    }

    /// `base` in a fresh temp dir with its warehouse url replaced by
    /// `url(temp dir)`, and `envs` given to every run.
    fn in_temp_dir(base: &str, url: impl FnOnce(&Path) -> String, envs: &[(&str, &str)]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let url = url(dir.path());
        let config = dir.path().join("profiles-sync.toml");
        std::fs::write(&config, replace_url(base, &url)).unwrap();
        Env {
            dir,
            config,
            url,
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    pub fn golden() -> Env {
        Env::golden_on(Backend::DuckDb)
    }

    pub fn golden_on(backend: Backend) -> Env {
        Env::with_backend(
            &std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap(),
            backend,
        )
    }

    /// A fully qualified table name in this warehouse's dialect.
    pub fn table(&self, schema: &str, table: &str) -> String {
        let wh = ps_warehouse::open(&self.url).unwrap();
        wh.dialect().table(schema, table)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The binary with this environment's config and variables.
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_profiles-sync"));
        c.arg("--config").arg(&self.config);
        c.envs(self.envs.iter().map(|(k, v)| (k, v)));
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "profiles-sync {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Rows of a query, each cell as golden-CSV text (NULL is empty).
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let mut wh = ps_warehouse::open(&self.url()).unwrap();
        wh.query(sql)
            .unwrap()
            .into_iter()
            .map(|r| r.iter().map(cell).collect())
            .collect()
    }

    /// The `_ps_meta` value of `key` in `schema` (the sync watermark, the
    /// state version, the lease fence…), if set; a key stored twice fails.
    pub fn meta(&self, schema: &str, key: &str) -> Option<String> {
        let table = self.table(schema, "_ps_meta");
        let rows = self.query(&format!("SELECT value FROM {table} WHERE key = '{key}'"));
        assert!(rows.len() <= 1, "{key} is in _ps_meta {} times", rows.len());
        rows.into_iter().next().map(|mut r| r.remove(0))
    }

    /// Every table of a schema (except internal ones), each as sorted rows of
    /// all columns but `uuid_ts` and `received_at` (load times).
    pub fn dump(&self, schema: &str) -> BTreeMap<String, Vec<String>> {
        dump_url(&self.url, schema)
    }
}

/// [`Env::dump`] of any warehouse URL.
pub fn dump_url(url: &str, schema: &str) -> BTreeMap<String, Vec<String>> {
    // Sync metadata (which records the load time) is not
    // part of what a replay must reproduce.
    // `_ps_seen` is grouped by commit, so only its set of keys must match.
    // `_ps_profiles` is a log whose layers depend on where commits fell,
    // so only the state it resolves to must match.
    let mut out: BTreeMap<String, Vec<String>> = table_rows(url, schema, |t| {
        t != "_ps_meta" && t != "_ps_seen" && t != "_ps_profiles"
    })
    .into_iter()
    .map(|(t, (cols, rows))| {
        let mut lines: Vec<String> = rows.iter().map(|r| r.join("|")).collect();
        lines.sort();
        (format!("{t}({})", cols.join(",")), lines)
    })
    .collect();
    let mut keys = seen_keys(url, schema);
    keys.sort_unstable();
    out.insert(
        "_ps_seen(keys)".into(),
        keys.iter().map(|k| format!("{k:032x}")).collect(),
    );
    out.insert("_ps_profiles(records)".into(), engine_records(url, schema));
    out
}

/// Waits until `schema` at `url` dumps ([`dump_url`]) equal to `want` (a
/// reference run's dump), at most `limit`; past it fails naming the tables
/// that differ, with a few of their differing rows and `context()` (what
/// the processes logged, say).
pub fn wait_dump_equal(
    url: &str,
    schema: &str,
    want: &BTreeMap<String, Vec<String>>,
    limit: Duration,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + limit;
    loop {
        // Before the first commit the tables do not exist yet.
        let got = std::panic::catch_unwind(|| dump_url(url, schema)).ok();
        if got.as_ref() == Some(want) {
            return;
        }
        if Instant::now() > deadline {
            let got = got.unwrap_or_default();
            let differ: Vec<String> = want
                .iter()
                .filter(|(t, rows)| got.get(*t) != Some(rows))
                .map(|(t, rows)| {
                    let have = got.get(t).cloned().unwrap_or_default();
                    let only = |a: &[String], b: &[String]| -> Vec<String> {
                        a.iter()
                            .filter(|r| !b.contains(r))
                            .take(3)
                            .cloned()
                            .collect()
                    };
                    format!(
                        "{t}: {} rows, want {}; only in the reference: {:#?}; only here: {:#?}",
                        have.len(),
                        rows.len(),
                        only(rows, &have),
                        only(&have, rows)
                    )
                })
                .chain(
                    got.keys()
                        .filter(|t| !want.contains_key(*t))
                        .map(|t| format!("{t}: not in the reference")),
                )
                .collect();
            panic!("the tables differ: {differ:#?}\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The engine state `schema._ps_profiles` holds: each profile's record
/// from the newest layer of the log holding it, one line per profile.
pub fn engine_records(url: &str, schema: &str) -> Vec<String> {
    let mut wh = ps_warehouse::open(url).unwrap();
    let sql = format!(
        "SELECT chunk, state FROM {}",
        wh.dialect().table(schema, "_ps_profiles")
    );
    let log: Vec<(i64, Vec<u8>)> = wh
        .query(&sql)
        .unwrap()
        .into_iter()
        .map(|r| ps_pipeline::state::decode_row(r).expect("_ps_profiles holds snapshot chunks"))
        .collect();
    let refs: Vec<(i64, &[u8])> = log.iter().map(|(l, b)| (*l, b.as_slice())).collect();
    let cover = ps_identity::newest_cover(&refs).expect("the log resolves");
    ps_identity::Engine::decode_snapshot(cover.iter().map(|c| &**c))
        .expect("the resolved chunks decode")
        .iter()
        .map(|r| format!("{r:?}"))
        .collect()
}

/// Every dedupe key in `schema._ps_seen`.
pub fn seen_keys(url: &str, schema: &str) -> Vec<u128> {
    let mut wh = ps_warehouse::open(url).unwrap();
    let sql = format!(
        "SELECT keys FROM {}",
        wh.dialect().table(schema, "_ps_seen")
    );
    let mut keys = Vec::new();
    for r in wh.query(&sql).unwrap() {
        let Some(ps_spec::Value::Str(cell)) = r.first() else {
            panic!("_ps_seen row without keys: {r:?}");
        };
        ps_pipeline::state::seen::decode(cell, &mut Vec::new(), &mut keys)
            .expect("_ps_seen holds packed keys");
    }
    keys
}

/// Every table of `schema` that `keep` accepts: its quoted columns (all but
/// the load times `uuid_ts` and `received_at`) and its rows, cells as text,
/// sorted.
pub fn table_rows(
    url: &str,
    schema: &str,
    keep: impl Fn(&str) -> bool,
) -> BTreeMap<String, (Vec<String>, Vec<Vec<String>>)> {
    let mut wh = ps_warehouse::open(url).unwrap();
    let d = wh.dialect().clone();
    let mut out = BTreeMap::new();
    for t in wh.describe(schema).unwrap() {
        if !keep(&t.name) {
            continue;
        }
        let cols: Vec<String> = t
            .columns
            .iter()
            .filter(|c| c.name != "uuid_ts" && c.name != "received_at")
            .map(|c| ps_warehouse::quote(&c.name))
            .collect();
        let mut rows: Vec<Vec<String>> = wh
            .query(&format!(
                "SELECT {} FROM {}",
                cols.join(", "),
                d.table(schema, &t.name)
            ))
            .unwrap()
            .iter()
            .map(|r| r.iter().map(cell).collect())
            .collect();
        rows.sort();
        out.insert(t.name, (cols, rows));
    }
    out
}

fn replace_url(text: &str, url: &str) -> String {
    let mut out = String::new();
    let mut replaced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("url") && !replaced {
            out.push_str(&format!("url = {url:?}\n"));
            replaced = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        out.push_str(&format!("\n[warehouse]\nurl = {url:?}\n"));
    }
    out
}

pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f:?}"),
        Value::Str(s) => s.clone(),
        Value::Ts(t) => format_sql(*t),
    }
}

/// Reads a CSV file (RFC 4180: fields with commas or quotes are quoted):
/// its header and rows; an empty field is NULL.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// A config for streams from `profiles-sync gen` (sources `source_1..3`,
/// write keys `wk_source_1..3`), space `gen`, sequential ids.
pub fn gen_config(url: &str) -> String {
    let mut s = format!(
        "space = \"gen\"\n[warehouse]\nurl = {url:?}\n[identity]\nid_scheme = \"sequential\"\n"
    );
    for n in 1..=3 {
        s.push_str(&format!(
            "[[sources]]\nid = \"source_{n}\"\nname = \"Source {n}\"\nslug = \"source-{n}\"\nwrite_key = \"wk_source_{n}\"\n"
        ));
    }
    s
}

/// Asserts that the warehouse at `url` holds the case study's expected
/// tables (`testdata/golden/expected/*.csv`), row for row, every column.
pub fn assert_golden_tables(url: &str, label: &str) {
    let checked = assert_expected_tables(url, &golden_dir().join("expected"), label);
    assert_eq!(checked, 8, "{label}: every expected table was compared");
}

/// Asserts that `case_study` at `url` holds each `<table>.csv` of `dir`:
/// its columns, row for row (as a set); how many tables were compared.
/// With `PROFILES_SYNC_BLESS=1` the files are rewritten with what the
/// warehouse holds instead (to be reviewed before they are committed).
pub fn assert_expected_tables(url: &str, dir: &Path, label: &str) -> usize {
    let mut wh = ps_warehouse::open(url).unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let table = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let (header, mut want) = read_csv(&path);
        let cols: Vec<String> = header.iter().map(|c| ps_warehouse::quote(c)).collect();
        let sql = format!(
            "SELECT {} FROM {}",
            cols.join(", "),
            wh.dialect().table("case_study", &table)
        );
        let mut got: Vec<Vec<String>> = wh
            .query(&sql)
            .unwrap()
            .iter()
            .map(|r| r.iter().map(cell).collect())
            .collect();
        want.sort();
        got.sort();
        if std::env::var_os("PROFILES_SYNC_BLESS").is_some() {
            let mut w = csv::Writer::from_path(&path).unwrap();
            w.write_record(&header).unwrap();
            for r in &got {
                w.write_record(r).unwrap();
            }
            w.flush().unwrap();
        } else {
            assert_eq!(got, want, "{label}: table {table} ({})", header.join(","));
        }
        checked += 1;
    }
    checked
}

/// `profiles-sync gen` of `events` events (seed `seed`, the 3 sources of
/// [`gen_config`]) into a file of `env`'s directory.
pub fn generated(env: &Env, events: u64, seed: u64) -> PathBuf {
    let out = env.dir.path().join(format!("gen-{seed}.jsonl"));
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_profiles-sync"))
        .args(["gen", "--events", &events.to_string(), "--seed"])
        .arg(seed.to_string())
        .args(["--sources", "3", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
