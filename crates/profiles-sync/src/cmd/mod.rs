//! One module per subcommand.

pub(crate) mod admin;
pub(crate) mod bench;
pub(crate) mod bench_incremental;
pub(crate) mod compute;
pub(crate) mod export;
pub(crate) mod gen;
pub(crate) mod init;
pub(crate) mod materialize;
pub(crate) mod privacy;
pub(crate) mod profile;
pub(crate) mod query;
pub(crate) mod resolve;
pub(crate) mod serve;
pub(crate) mod sync;

use crate::config::Config;
use anyhow::{Context, Result};
use ps_pipeline::Space;
use ps_warehouse::Warehouse;
use std::path::Path;

/// Loads the config, opens the warehouse and the space.
pub(crate) fn open(config: &Path) -> Result<(Config, Box<dyn Warehouse>, Space)> {
    let cfg = crate::config::load(config)?;
    let mut wh = ps_warehouse::open(&cfg.warehouse.url)
        .with_context(|| format!("warehouse.url = {:?}", cfg.warehouse.url))?;
    let space = Space::open(wh.as_mut(), cfg.space()).context("opening the space")?;
    Ok((cfg, wh, space))
}
