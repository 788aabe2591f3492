//! `profiles-sync sync FILES…`

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use ps_pipeline::{sync_files, SyncOptions};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Files smaller than this finish before a bar would help.
const PROGRESS_MIN_BYTES: u64 = 16 << 20;

/// Transient warehouse failures retried before giving up (about 2 minutes).
const MAX_RETRIES: u32 = 12;

fn reopen(
    cfg: &crate::config::Config,
) -> Result<(Box<dyn ps_warehouse::Warehouse>, ps_pipeline::Space)> {
    let mut wh = ps_warehouse::open(&cfg.warehouse.url)?;
    let space = ps_pipeline::Space::open(wh.as_mut(), cfg.space())?;
    Ok((wh, space))
}

pub(crate) fn run(
    config: &Path,
    files: &[String],
    source: Option<String>,
    (batch, commit): (Option<usize>, Option<usize>),
    json: bool,
    as_of: Option<i64>,
) -> Result<ExitCode> {
    let (cfg, mut wh, mut space) = super::open(config)?;
    space.set_as_of(as_of);
    // Windows and relative dates age between runs: the first batch also
    // re-evaluates the profiles due by its time, so after the run every
    // computed value holds at `--as-of` (or at the run's time).
    space.compute_tick(as_of.unwrap_or_else(ps_spec::time::now_micros));
    let opts = SyncOptions {
        batch_events: batch.unwrap_or(cfg.sync.batch_events),
        commit_events: commit.unwrap_or(cfg.sync.commit_events),
        default_source: source,
    };
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| {
            if f == "-" {
                0
            } else {
                std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)
            }
        })
        .collect();
    let total_bytes: u64 = sizes.iter().sum();
    let bar = (total_bytes >= PROGRESS_MIN_BYTES).then(|| {
        let b = ProgressBar::new(total_bytes);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {percent}% {msg}",
            )
            .expect("valid template"),
        );
        b
    });
    let started = Instant::now();
    // Compressed files report uncompressed bytes; scale to the file size so the
    // bar still ends at 100%.
    let mut done_before = 0u64;
    let mut current = 0usize;
    // A lost warehouse connection (a PostgreSQL restart, say) is retried with
    // backoff: the space is reopened from what the warehouse committed and the
    // files are replayed from the start; events that already landed are
    // skipped as duplicates, so every event lands exactly once.
    let mut attempt = 0u32;
    let mut total = ps_pipeline::SyncStats::default();
    let stats = loop {
        let result = sync_files(wh.as_mut(), &mut space, files, &opts, &mut |p| {
            if let Some(b) = &bar {
                if p.file_index != current {
                    done_before += sizes[current];
                    current = p.file_index;
                }
                b.set_position((done_before + p.bytes.min(sizes[current])).min(total_bytes));
                b.set_message(format!("{} events", p.events));
            }
        });
        match result {
            Ok(s) => {
                total.merge(&s);
                break total;
            }
            Err(e)
                if e.is_transient() && attempt < MAX_RETRIES && !files.iter().any(|f| f == "-") =>
            {
                attempt += 1;
                let delay = Duration::from_millis(250u64 << attempt.min(6));
                tracing::warn!(error = %e, attempt, ?delay, "warehouse connection lost; retrying");
                eprintln!(
                    "warning: {e}; retrying in {delay:?} (attempt {attempt} of {MAX_RETRIES})"
                );
                std::thread::sleep(delay);
                match reopen(&cfg) {
                    Ok((w, mut s)) => {
                        s.set_as_of(as_of);
                        s.compute_tick(as_of.unwrap_or_else(ps_spec::time::now_micros));
                        wh = w;
                        space = s;
                    }
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "reopening the warehouse failed")
                    }
                }
                done_before = 0;
                current = 0;
            }
            Err(e) => return Err(e.into()),
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    // SQL traits run at the end of each sync, over what it landed; their
    // values commit as one more batch.
    let mut stats = stats;
    let mut sql_failed = false;
    if space.has_sql_traits() {
        let now = as_of.unwrap_or_else(ps_spec::time::now_micros);
        let runs = space.run_sql_traits(wh.as_mut(), now, true);
        let batch = space.begin_batch(ps_spec::time::now_micros());
        let landed = space.commit(wh.as_mut(), batch)?;
        stats.merge(&landed);
        for r in &runs {
            match &r.error {
                Some(e) => {
                    sql_failed = true;
                    eprintln!("error: sql_traits.{}: {e}", r.key);
                }
                None if !json => println!(
                    "sql_traits.{}: {} rows, {} matched, {} unknown identifiers, {} profiles changed",
                    r.key, r.rows, r.matched, r.unknown, r.changed
                ),
                None => {}
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if json {
        let refused: serde_json::Map<String, serde_json::Value> = stats
            .refused
            .iter()
            .map(|(k, (n, _))| (k.clone(), (*n).into()))
            .collect();
        let v = serde_json::json!({
            "read": stats.read, "landed": stats.landed, "duplicates": stats.duplicates,
            "refused": refused, "profiles_created": stats.profiles_created, "merges": stats.merges,
            "conflicts": stats.conflicts, "rows": stats.rows, "dropped": stats.dropped,
            "type_conflicts": stats.type_conflicts, "seconds": secs,
        });
        println!("{v}");
    } else {
        print!("{stats}");
        println!(
            "space {:?} in {} — {:.2}s, {:.0} events/s",
            cfg.space,
            wh.kind(),
            secs,
            stats.read as f64 / secs.max(1e-9)
        );
    }
    if sql_failed {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
