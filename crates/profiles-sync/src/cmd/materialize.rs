//! `profiles-sync materialize [--full] [--as-of T]`

use anyhow::{bail, Result};
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(config: &Path, full: bool, as_of: Option<i64>) -> Result<ExitCode> {
    let (cfg, mut wh, mut space) = super::open(config)?;
    if let Some(at) = as_of {
        // Computed values age with time alone: a tick at `at` re-evaluates
        // the profiles due by then and lands their changes in one commit,
        // which refreshes what they touched (docs/DECISIONS.md).
        if !space.computes() {
            bail!(
                "--as-of: space {:?} has no computed traits or audiences ([[computed_traits]], [[audiences]])",
                cfg.space
            );
        }
        space.set_as_of(Some(at));
        space.compute_tick(at);
        let batch = space.begin_batch(ps_spec::time::now_micros());
        let stats = space.commit(wh.as_mut(), batch)?;
        println!(
            "space {:?}: computed values brought to {}: {} profiles re-evaluated, {} changed",
            cfg.space,
            ps_spec::time::format_iso(at),
            stats.computed_evaluated,
            stats.computed_changes
        );
    }
    // Every sync already refreshes what it touched, so without --full there
    // is nothing stale to do; both forms end with the tables up to date.
    if full {
        space.materialize_full(wh.as_mut())?;
        println!("rebuilt id_graph, external_id_mapping and profile_traits of space {:?} from the landed tables", cfg.space);
    } else if as_of.is_none() {
        println!(
            "space {:?} is up to date (each sync refreshes what it changed; use --full to rebuild)",
            cfg.space
        );
    }
    Ok(ExitCode::SUCCESS)
}
