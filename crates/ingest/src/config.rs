//! Server settings (`[server]` in the config file) and the parsers for their
//! human-friendly forms (`"1s"`, `"512MB"`). They live in `ps-config`, which
//! checks them without a warehouse (the fuzz target `config` runs it);
//! re-exported here for the server's users.

pub use ps_config::server::*;
