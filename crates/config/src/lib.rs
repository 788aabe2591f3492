//! # ps-config: the settings, and the file they come from
//!
//! What a space is (`space`: its sources, identity rules and computed
//! traits), what `serve` may do (`server`: listen address, limits, timeouts,
//! the Profile API's tokens), where a multi-node deployment's event log
//! is (`log`), and the TOML config file that gives both
//! (`file`), parsed and checked with every error naming the setting at
//! fault.
//!
//! Nothing here opens a warehouse or depends on one: the pipeline, `serve`
//! and the binary take these types from here, and the fuzz target `config`
//! (`crates/fuzz-targets`) runs [`Config::parse`] on arbitrary text without
//! building DuckDB.

#![warn(missing_docs, unreachable_pub)]

mod error;
pub mod file;
pub mod log;
pub mod server;
pub mod space;

pub use error::SettingError;
pub use file::{Config, DEFAULT_COMMIT_EVENTS};
pub use log::LogConfig;
pub use server::{Limits, ProfileApiConfig, QueryLimits, ServerConfig};
pub use space::{Source, SpaceConfig};
