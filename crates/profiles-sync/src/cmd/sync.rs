//! `profiles-sync sync FILES…`

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use ps_pipeline::{sync_files, SyncOptions};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// Files smaller than this finish before a bar would help.
const PROGRESS_MIN_BYTES: u64 = 16 << 20;

pub fn run(
    config: &Path,
    files: &[String],
    source: Option<String>,
    batch: Option<usize>,
    json: bool,
) -> Result<ExitCode> {
    let (cfg, mut wh, mut space) = super::open(config)?;
    let opts = SyncOptions {
        batch_events: batch.unwrap_or(cfg.sync.batch_events),
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
    let total: u64 = sizes.iter().sum();
    let bar = (total >= PROGRESS_MIN_BYTES).then(|| {
        let b = ProgressBar::new(total);
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
    let stats = sync_files(wh.as_mut(), &mut space, files, &opts, &mut |p| {
        if let Some(b) = &bar {
            if p.file_index != current {
                done_before += sizes[current];
                current = p.file_index;
            }
            b.set_position((done_before + p.bytes.min(sizes[current])).min(total));
            b.set_message(format!("{} events", p.events));
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
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
    Ok(ExitCode::SUCCESS)
}
