//! The TOML configuration file: [`ps_config::Config`] (its format, parsing
//! and checks live in `ps-config`, which the fuzz target `config` runs
//! without a warehouse), read with the trait names this warehouse contract
//! reserves.

use anyhow::Result;
use std::path::Path;

pub(crate) use ps_config::file::resolve_listen;
pub(crate) use ps_config::Config;

/// Reads and checks the config file at `path`.
pub(crate) fn load(path: &Path) -> Result<Config> {
    Config::load(path, &ps_warehouse::contract::reserved_trait_names())
}
