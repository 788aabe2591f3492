//! What the pipeline needs to know about a space: its name, its sources,
//! identity settings and computed traits. Defined in `ps-config` (read from
//! TOML and checked there, without a warehouse); re-exported here.

pub use ps_config::{Source, SpaceConfig};
