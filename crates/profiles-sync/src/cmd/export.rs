//! `profiles-sync export --format parquet DIR`

use anyhow::{Context, Result};
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(config: &Path, dir: &Path) -> Result<ExitCode> {
    // The space is opened (not just the warehouse) so a `delta://`
    // warehouse has published every staged commit and a missing space is
    // reported as such, not as an empty export.
    let (cfg, mut wh, _space) = super::open(config)?;
    let files = ps_delta::export_parquet(wh.as_mut(), &cfg.space, dir)
        .with_context(|| format!("exporting space {:?} to {}", cfg.space, dir.display()))?;
    for f in &files {
        println!("{}\t{} rows\t{}", f.table, f.rows, f.path.display());
    }
    Ok(ExitCode::SUCCESS)
}
