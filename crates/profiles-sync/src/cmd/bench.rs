//! `profiles-sync bench`: stage-by-stage throughput against the machine's floor.
//!
//! Passes over the same gzip file, in one process:
//! 1. **floor**: read + decompress + `serde_json` parse of every line, nothing
//!    else — the least any pipeline must do;
//! 2. **read**: read + decompress only;
//! 3. **pipeline**: the real `sync` into a fresh warehouse, with the time of
//!    each stage (parse+validate, identity, row building, landing,
//!    materialization) measured inside the pipeline;
//! 4. on DuckDB, two floors of DuckDB's own, each into a fresh file through
//!    the same `duckdb` crate: loading the input raw (`read_json_auto`, what
//!    a user compares against), and re-writing exactly the pipeline's
//!    output (`CREATE TABLE … AS SELECT` of every public table: the least
//!    any tool landing these rows must write). The pipeline's time and file
//!    size are printed as ratios to both. A third re-writes the same output
//!    in as many transactions as the run committed (`--commit-events`),
//!    with the pipeline's DuckDB settings: what DuckDB itself pays for
//!    commits of that size.
//!
//! Peak RSS is read from `/proc/self/status` (VmHWM), reset between passes
//! through `/proc/self/clear_refs`, so each pass reports its own peak.

use anyhow::{Context, Result};
use ps_pipeline::{input, sync_files, Space, SyncOptions};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize)]
struct Stage {
    stage: &'static str,
    seconds: f64,
    events_per_sec: f64,
    peak_rss_mb: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    events: u64,
    input_bytes: u64,
    warehouse: String,
    stages: Vec<Stage>,
    end_to_end_events_per_sec: f64,
    floor_events_per_sec: f64,
    ratio_to_floor: f64,
    /// The floor with the pipeline's own JSON parser instead of `serde_json`.
    tape_floor_events_per_sec: f64,
    ratio_to_tape_floor: f64,
    rows: std::collections::BTreeMap<String, u64>,
    /// Rows landed in all tables together (landed profile tables, event
    /// tables, conflicts, refusals; engine state not counted).
    rows_landed: u64,
    /// `rows_landed` over the landing stage's time (which includes writing
    /// the engine state): the warehouse's load rate as the pipeline sees it.
    landing_rows_per_sec: f64,
    profiles: u64,
    /// DuckDB's own floors, when the warehouse is a DuckDB file.
    #[serde(skip_serializing_if = "Option::is_none")]
    duckdb: Option<DuckFloors>,
    /// Computed-value changes landed (0 without `--definitions`).
    computed_changes: u64,
}

/// DuckDB doing the least work beside the pipeline (see the module doc).
#[derive(Debug, Serialize)]
struct DuckFloors {
    /// `read_json_auto` of the input into a fresh file, closed.
    raw_load_seconds: f64,
    /// `CREATE TABLE … AS SELECT` of every public table of the pipeline's
    /// file into a fresh file, closed.
    rewrite_seconds: f64,
    /// The pipeline's end-to-end time over each.
    ratio_to_raw_load: f64,
    ratio_to_rewrite: f64,
    /// The transactions the run committed in (`--commit-events`).
    transactions: u64,
    /// The same public tables re-written into a fresh file in that many
    /// transactions, each an equal share of every table, with the
    /// pipeline's own DuckDB settings; closed.
    rewrite_in_transactions_seconds: f64,
    ratio_to_rewrite_in_transactions: f64,
    /// The pipeline's file, and DuckDB's copy of its public tables.
    file_bytes: u64,
    rewrite_file_bytes: u64,
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn stage(name: &'static str, d: Duration, events: u64, peak: f64) -> Stage {
    let s = d.as_secs_f64();
    Stage {
        stage: name,
        seconds: s,
        // A stage that took no time (see "read+other") has no rate.
        events_per_sec: if s > 1e-6 { events as f64 / s } else { 0.0 },
        peak_rss_mb: peak,
    }
}

pub(crate) struct Args {
    pub(crate) events: u64,
    pub(crate) seed: u64,
    pub(crate) warehouse: Option<String>,
    pub(crate) input: Option<PathBuf>,
    pub(crate) json: bool,
    pub(crate) keep: bool,
    pub(crate) batch_events: usize,
    pub(crate) commit_events: usize,
    pub(crate) definitions: Option<PathBuf>,
    pub(crate) pairs: usize,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    // Flags and definitions are checked before a long generation.
    let definitions = definitions(&args)?;
    if args.pairs > 0 {
        anyhow::ensure!(
            definitions.is_some(),
            "--pairs compares runs with and without --definitions: give --definitions"
        );
        anyhow::ensure!(
            args.warehouse.is_none(),
            "--pairs runs into fresh DuckDB files of its own: leave out --warehouse"
        );
    }
    let dir = tempfile_dir()?;
    let input = match &args.input {
        Some(p) => p.clone(),
        None => {
            let p = dir.join("events.jsonl.gz");
            eprintln!("generating {} events (seed {})…", args.events, args.seed);
            super::gen::run(
                args.events,
                args.seed,
                3,
                p.to_str().context("utf-8 path")?,
                None,
            )?;
            p
        }
    };
    let input_s = input.to_str().context("utf-8 path")?.to_owned();
    let input_bytes = std::fs::metadata(&input)?.len();
    if args.pairs > 0 {
        let result = pairs(&dir, &input_s, &args, definitions);
        clean_up(&dir, &args);
        return result;
    }

    // Pass 1: read only.
    reset_peak();
    let t = Instant::now();
    let mut n = 0u64;
    input::read_lines(&input_s, |_| n += 1)?;
    let read = stage("read+decompress", t.elapsed(), n, peak_rss_mb());

    // Pass 2: the floor.
    reset_peak();
    let t = Instant::now();
    let mut parsed = 0u64;
    input::read_lines(&input_s, |line| {
        if serde_json::from_str::<serde_json::Value>(line).is_ok() {
            parsed += 1;
        }
    })?;
    let floor = stage("floor: read+parse JSON", t.elapsed(), n, peak_rss_mb());

    // Pass 2b: the same with the pipeline's own parser (a flat tape over
    // the line, `ps_spec::tape`), which is cheaper than building
    // `serde_json` values: the floor a pipeline built on it could reach.
    reset_peak();
    let t = Instant::now();
    let mut parsed_tape = 0u64;
    input::read_lines(&input_s, |line| {
        if ps_spec::tape::Doc::parse(line.to_owned()).is_ok() {
            parsed_tape += 1;
        }
    })?;
    let tape_floor = stage("floor: read+parse (tape)", t.elapsed(), n, peak_rss_mb());

    // Pass 3: the pipeline.
    let url = args
        .warehouse
        .clone()
        .unwrap_or_else(|| format!("duckdb://{}", dir.join("bench.duckdb").display()));
    reset_peak();
    let Run {
        total,
        close,
        stats,
        space,
        warehouse_kind,
    } = pipeline(&url, &input_s, &args, definitions)?;
    let peak = peak_rss_mb();
    let duck = match (&args.warehouse, warehouse_kind.as_str()) {
        (None, "duckdb") => Some(duckdb_floors(
            &dir,
            &input_s,
            &dir.join("bench.duckdb"),
            total,
            n.div_ceil(args.commit_events.max(1) as u64).max(1),
        )?),
        _ => None,
    };
    let tm = space.timings;
    let accounted =
        tm.parse + tm.identity + tm.rows + tm.compute + tm.load + tm.materialize + close;
    let e2e = n as f64 / total.as_secs_f64();
    let mut stages = vec![
        read,
        floor,
        tape_floor,
        stage("parse+validate", tm.parse, n, peak),
        stage("identity", tm.identity, n, peak),
        stage("rows (flatten, name, type)", tm.rows, n, peak),
        stage("computed traits, audiences", tm.compute, n, peak),
        stage("landing (warehouse load)", tm.load, n, peak),
        stage("materialization", tm.materialize, n, peak),
        stage("warehouse close", close, n, peak),
        // The reader thread (decompress + JSON) and the landing thread
        // overlap the main thread, so this residue is often zero: the
        // summed stages can exceed the wall time.
        stage("read+other", total.saturating_sub(accounted), n, peak),
    ];
    stages.push(stage("end to end", total, n, peak));
    let floor_eps = stages[1].events_per_sec;
    let tape_floor_eps = stages[2].events_per_sec;
    let rows_landed: u64 = stats.rows.values().sum();
    let report = Report {
        rows_landed,
        landing_rows_per_sec: rows_landed as f64 / tm.load.as_secs_f64().max(1e-9),
        events: n,
        input_bytes,
        warehouse: warehouse_kind,
        end_to_end_events_per_sec: e2e,
        floor_events_per_sec: floor_eps,
        ratio_to_floor: e2e / floor_eps,
        tape_floor_events_per_sec: tape_floor_eps,
        ratio_to_tape_floor: e2e / tape_floor_eps,
        rows: stats.rows.clone(),
        profiles: space.engine().profile_count() as u64,
        computed_changes: stats.computed_changes,
        stages,
        duckdb: duck,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} events, {:.1} MB input, warehouse {}",
            report.events,
            input_bytes as f64 / 1e6,
            report.warehouse
        );
        println!(
            "{:<30} {:>9} {:>14} {:>10}",
            "stage", "seconds", "events/s", "peak MB"
        );
        for s in &report.stages {
            println!(
                "{:<30} {:>9.3} {:>14.0} {:>10.0}",
                s.stage, s.seconds, s.events_per_sec, s.peak_rss_mb
            );
        }
        println!(
            "stages summed: {:.3} s in {:.3} s of wall time (reading and landing run on their own threads)",
            accounted.as_secs_f64(),
            total.as_secs_f64()
        );
        println!(
            "end to end = {:.0}% of the parse-only floor (serde_json), {:.0}% of the floor with the pipeline's own parser",
            report.ratio_to_floor * 100.0,
            report.ratio_to_tape_floor * 100.0
        );
        println!(
            "landing into {}: {} rows (all tables) in {:.3} s = {:.0} rows/s",
            report.warehouse,
            report.rows_landed,
            tm.load.as_secs_f64(),
            report.landing_rows_per_sec
        );
        if let Some(f) = &report.duckdb {
            println!(
                "DuckDB floors: raw load (read_json_auto) {:.3} s, re-writing this output {:.3} s \
                 -> end to end = {:.2}x the raw load, {:.2}x the re-write",
                f.raw_load_seconds, f.rewrite_seconds, f.ratio_to_raw_load, f.ratio_to_rewrite
            );
            println!(
                "DuckDB re-writing this output in the run's {} transaction(s), with the pipeline's \
                 DuckDB settings: {:.3} s -> end to end = {:.2}x",
                f.transactions,
                f.rewrite_in_transactions_seconds,
                f.ratio_to_rewrite_in_transactions
            );
            println!(
                "file: {:.1} MB, DuckDB's copy of its public tables {:.1} MB ({:.2}x)",
                f.file_bytes as f64 / 1e6,
                f.rewrite_file_bytes as f64 / 1e6,
                f.file_bytes as f64 / f.rewrite_file_bytes.max(1) as f64
            );
        }
        println!("profiles: {}", report.profiles);
        if args.definitions.is_some() {
            println!("computed-value changes: {}", report.computed_changes);
        }
        for (t, r) in &report.rows {
            println!("  {t}: {r}");
        }
    }
    clean_up(&dir, &args);
    Ok(ExitCode::SUCCESS)
}

/// Removes the scratch directory unless asked to keep it or it is the
/// home of the user's own `--input`.
fn clean_up(dir: &Path, args: &Args) {
    if !args.keep && args.input.is_none() {
        let _ = std::fs::remove_dir_all(dir);
    } else {
        eprintln!("kept {}", dir.display());
    }
}

/// The definitions of `--definitions`, checked as a space's would be.
fn definitions(args: &Args) -> Result<Option<Arc<ps_compute::Definitions>>> {
    let Some(p) = &args.definitions else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    let raw: ps_compute::RawDefinitions =
        toml::from_str(&text).with_context(|| format!("{}", p.display()))?;
    let reserved = ps_warehouse::contract::reserved_trait_names();
    Ok(Some(Arc::new(ps_compute::Definitions::check(
        &raw, &reserved,
    )?)))
}

/// One pipeline pass: what it took and left.
struct Run {
    /// Open, sync and close together.
    total: Duration,
    close: Duration,
    stats: ps_pipeline::stats::SyncStats,
    space: Space,
    warehouse_kind: String,
}

/// The real `sync` of `input` into the warehouse at `url`, closed at the
/// end: DuckDB checkpoints what its WAL still holds when the database
/// closes, as at the end of every `sync`, so closing is part of the run.
fn pipeline(
    url: &str,
    input: &str,
    args: &Args,
    compute: Option<Arc<ps_compute::Definitions>>,
) -> Result<Run> {
    let space_cfg = ps_pipeline::SpaceConfig {
        space: "bench".into(),
        sources: ps_gen::sources(3)
            .into_iter()
            .map(ps_pipeline::Source::from)
            .collect(),
        identity: ps_identity::IdentityConfig::default(),
        compute,
    };
    let t = Instant::now();
    let mut wh = ps_warehouse::open(url)?;
    let mut space = Space::open(wh.as_mut(), space_cfg)?;
    let stats = sync_files(
        wh.as_mut(),
        &mut space,
        &[input.to_owned()],
        &SyncOptions {
            batch_events: args.batch_events,
            commit_events: args.commit_events,
            ..SyncOptions::default()
        },
        &mut |_| {},
    )?;
    let warehouse_kind = wh.kind().to_owned();
    let tc = Instant::now();
    drop(wh);
    let close = tc.elapsed();
    Ok(Run {
        total: t.elapsed(),
        close,
        stats,
        space,
        warehouse_kind,
    })
}

/// `--pairs N`: what `--definitions` costs, as issue 19 states its bar
/// (end-to-end events/s with the definitions over the same run without).
/// Runs on this machine vary by more than that cost, so each pair runs
/// one without and one with, back to back into fresh DuckDB files, and
/// the median of the pairs' ratios is the figure.
fn pairs(
    dir: &Path,
    input: &str,
    args: &Args,
    with: Option<Arc<ps_compute::Definitions>>,
) -> Result<ExitCode> {
    let run = |i: usize, defs: Option<Arc<ps_compute::Definitions>>, name: &str| {
        let path = dir.join(format!("pair-{i}-{name}.duckdb"));
        reset_peak();
        let run = pipeline(&format!("duckdb://{}", path.display()), input, args, defs)?;
        let peak = peak_rss_mb();
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(path.with_extension("duckdb.wal"));
        anyhow::Ok((run.total.as_secs_f64(), peak))
    };
    let mut ratios = Vec::new();
    let mut rows = Vec::new();
    if !args.json {
        println!(
            "{:<5} {:>12} {:>9} {:>12} {:>9} {:>7}",
            "pair", "without (s)", "peak MB", "with (s)", "peak MB", "ratio"
        );
    }
    for i in 1..=args.pairs {
        let (without, peak_without) = run(i, None, "without")?;
        let (with_s, peak_with) = run(i, with.clone(), "with")?;
        // Events/s with over events/s without, for the same events.
        let ratio = without / with_s;
        ratios.push(ratio);
        if !args.json {
            println!(
                "{i:<5} {without:>12.3} {peak_without:>9.0} {with_s:>12.3} {peak_with:>9.0} {:>6.1}%",
                ratio * 100.0
            );
        }
        rows.push(serde_json::json!({
            "without_seconds": without,
            "with_seconds": with_s,
            "without_peak_rss_mb": peak_without,
            "with_peak_rss_mb": peak_with,
            "ratio": ratio,
        }));
    }
    let median = median(&mut ratios);
    if args.json {
        let report = serde_json::json!({"pairs": rows, "median_ratio": median});
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "median ratio of end-to-end events/s, with definitions over without: {:.1}%",
            median * 100.0
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The median of `xs` (the mean of the middle two for an even count).
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => xs[n / 2],
        _ => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// DuckDB's floors beside a pipeline run that took `total` in
/// `transactions` commits and left its file at `ours` (closed). The raw
/// load and the re-write run with DuckDB's own defaults — a thread per
/// core and its own row-group size — as a user loading by hand would; the
/// re-write in the run's transactions with the pipeline's settings.
fn duckdb_floors(
    dir: &Path,
    input: &str,
    ours: &Path,
    total: Duration,
    transactions: u64,
) -> Result<DuckFloors> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fresh = |name: &str| -> Result<(PathBuf, Box<dyn ps_warehouse::Warehouse>)> {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let url = format!(
            "duckdb://{}?threads={threads}&row_group_size=122880",
            path.display()
        );
        Ok((path, ps_warehouse::open(&url)?))
    };

    let (raw_path, mut raw) = fresh("raw.duckdb")?;
    let t = Instant::now();
    raw.execute(&format!(
        "CREATE TABLE raw AS SELECT * FROM read_json_auto({}, format = 'newline_delimited', ignore_errors = true)",
        ps_warehouse::literal(input)
    ))
    .context("DuckDB's raw load of the input")?;
    drop(raw);
    let raw_load = t.elapsed();
    let _ = std::fs::remove_file(&raw_path);

    let (copy_path, mut copy) = fresh("copy.duckdb")?;
    attach_source(copy.as_mut(), ours)?;
    let tables = copy.query(
        "SELECT table_schema, table_name FROM information_schema.tables \
         WHERE table_catalog = 'src' AND table_name NOT LIKE '\\_ps\\_%' ESCAPE '\\' \
         ORDER BY 1, 2",
    )?;
    let mut statements = Vec::new();
    for r in &tables {
        if let [ps_spec::Value::Str(schema), ps_spec::Value::Str(table)] = r.as_slice() {
            statements.push(format!(
                "CREATE SCHEMA IF NOT EXISTS {s}; CREATE TABLE {s}.{t} AS SELECT * FROM src.{s}.{t}",
                s = ps_warehouse::quote(schema),
                t = ps_warehouse::quote(table)
            ));
        }
    }
    let t = Instant::now();
    for sql in &statements {
        copy.execute(sql)?;
    }
    copy.execute("DETACH src")?;
    drop(copy);
    let rewrite = t.elapsed();
    let file_bytes = std::fs::metadata(ours)?.len();
    let rewrite_file_bytes = std::fs::metadata(&copy_path)?.len();
    let _ = std::fs::remove_file(&copy_path);
    let in_transactions = rewrite_in_transactions(dir, ours, &tables, transactions)?;
    Ok(DuckFloors {
        raw_load_seconds: raw_load.as_secs_f64(),
        rewrite_seconds: rewrite.as_secs_f64(),
        ratio_to_raw_load: total.as_secs_f64() / raw_load.as_secs_f64(),
        ratio_to_rewrite: total.as_secs_f64() / rewrite.as_secs_f64(),
        transactions,
        rewrite_in_transactions_seconds: in_transactions.as_secs_f64(),
        ratio_to_rewrite_in_transactions: total.as_secs_f64() / in_transactions.as_secs_f64(),
        file_bytes,
        rewrite_file_bytes,
    })
}

/// DuckDB re-writing the public `tables` of the file at `ours` into a
/// fresh file in `transactions` commits, each taking an equal share of
/// every table's rows in `rowid` order, as the run's commits took the
/// events in order; with the settings the pipeline opens a DuckDB file
/// with. Small commits cost DuckDB itself far more per row than large
/// ones (each goes through its write-ahead log, then a checkpoint), so the
/// pipeline's time at a given `--commit-events` is compared with DuckDB's
/// at the same commit size. Returns the time, the file closed.
fn rewrite_in_transactions(
    dir: &Path,
    ours: &Path,
    tables: &[Vec<ps_spec::Value>],
    transactions: u64,
) -> Result<Duration> {
    let path = dir.join("copy-in-transactions.duckdb");
    let _ = std::fs::remove_file(&path);
    let mut copy = ps_warehouse::open(&format!("duckdb://{}", path.display()))?;
    attach_source(copy.as_mut(), ours)?;
    let int = |wh: &mut dyn ps_warehouse::Warehouse, sql: String| -> Result<u64> {
        match wh.query(&sql)?.first().and_then(|r| r.first()) {
            Some(ps_spec::Value::Int(n)) => Ok(*n as u64),
            other => anyhow::bail!("{sql}: {other:?}"),
        }
    };
    // Each table's rowid range: materialized tables may have gaps where
    // rows were deleted.
    let mut shares = Vec::new();
    for r in tables {
        if let [ps_spec::Value::Str(schema), ps_spec::Value::Str(table)] = r.as_slice() {
            let (s, t) = (ps_warehouse::quote(schema), ps_warehouse::quote(table));
            let end = int(
                &mut *copy,
                format!("SELECT coalesce(max(rowid) + 1, 0) FROM src.{s}.{t}"),
            )?;
            shares.push((s, t, end));
        }
    }
    let t = Instant::now();
    for (s, t, _) in &shares {
        copy.execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {s}; CREATE TABLE {s}.{t} AS SELECT * FROM src.{s}.{t} LIMIT 0"
        ))?;
    }
    for i in 0..transactions {
        copy.begin()?;
        for (s, t, end) in &shares {
            let (lo, hi) = (end * i / transactions, end * (i + 1) / transactions);
            if hi > lo {
                copy.execute(&format!(
                    "INSERT INTO {s}.{t} SELECT * FROM src.{s}.{t} WHERE rowid >= {lo} AND rowid < {hi}"
                ))?;
            }
        }
        copy.commit()?;
    }
    let elapsed = t.elapsed();
    // Every row copied once: the shares cover each table's rowids.
    for (s, t, _) in &shares {
        let (theirs, ours) = (
            int(&mut *copy, format!("SELECT count(*) FROM {s}.{t}"))?,
            int(&mut *copy, format!("SELECT count(*) FROM src.{s}.{t}"))?,
        );
        anyhow::ensure!(
            theirs == ours,
            "re-writing {s}.{t} in transactions copied {theirs} of {ours} rows"
        );
    }
    copy.execute("DETACH src")?;
    let t = Instant::now();
    drop(copy);
    let elapsed = elapsed + t.elapsed();
    let _ = std::fs::remove_file(&path);
    Ok(elapsed)
}

/// Attaches the pipeline's file `ours`, read-only, as `src`.
fn attach_source(copy: &mut dyn ps_warehouse::Warehouse, ours: &Path) -> Result<()> {
    copy.execute(&format!(
        "ATTACH {} AS src (READ_ONLY)",
        ps_warehouse::literal(&ours.display().to_string())
    ))?;
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let base = std::env::temp_dir().join(format!("profiles-sync-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base)?;
    Ok(Path::new(&base).to_path_buf())
}
