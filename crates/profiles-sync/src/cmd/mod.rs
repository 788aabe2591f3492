//! One module per subcommand.

pub mod admin;
pub mod bench;
pub mod bench_incremental;
pub mod gen;
pub mod materialize;
pub mod privacy;
pub mod query;
pub mod serve;
pub mod sync;

use crate::config::Config;
use anyhow::{Context, Result};
use ps_pipeline::Space;
use ps_warehouse::Warehouse;
use std::path::Path;

/// Loads the config, opens the warehouse and the space.
pub fn open(config: &Path) -> Result<(Config, Box<dyn Warehouse>, Space)> {
    let cfg = Config::load(config)?;
    let mut wh = ps_warehouse::open(&cfg.warehouse.url)
        .with_context(|| format!("warehouse.url = {:?}", cfg.warehouse.url))?;
    let space = Space::open(wh.as_mut(), cfg.space()).context("opening the space")?;
    Ok((cfg, wh, space))
}
