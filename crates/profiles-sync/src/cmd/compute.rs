//! `profiles-sync compute [--full | --check] [--as-of T]`

use anyhow::{bail, Result};
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(config: &Path, full: bool, check: bool, as_of: Option<i64>) -> Result<ExitCode> {
    let (cfg, mut wh, mut space) = super::open(config)?;
    if !space.computes() {
        bail!(
            "space {:?} has no computed traits or audiences ([[computed_traits]], [[audiences]])",
            cfg.space
        );
    }
    if check {
        let c = space
            .compute_check(wh.as_mut(), as_of)?
            .expect("the space computes");
        let at = ps_spec::time::format_iso(c.as_of);
        if c.differing == 0 {
            println!(
                "space {:?}: the computed values of {} profiles equal a recompute from the landed events at {at}",
                cfg.space, c.profiles
            );
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "space {:?}: {} of {} profiles differ from a recompute from the landed events at {at}",
            cfg.space, c.differing, c.profiles
        );
        for (k, n) in &c.by_key {
            println!("  {k}: {n} profiles");
        }
        println!("  e.g. {}", c.examples.join(", "));
        return Ok(ExitCode::from(1));
    }
    if full {
        let n = space
            .compute_full(wh.as_mut())?
            .expect("the space computes");
        space.set_as_of(as_of);
        let batch = space.begin_batch(ps_spec::time::now_micros());
        let stats = space.commit(wh.as_mut(), batch)?;
        println!(
            "space {:?}: recomputed {n} profiles from the landed events; {} changed",
            cfg.space, stats.computed_changes
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Each sync (and serve's tick) already re-evaluates what it touched.
    println!(
        "space {:?}: computed values follow each sync (--full recomputes them from the landed events, --check compares)",
        cfg.space
    );
    Ok(ExitCode::SUCCESS)
}
