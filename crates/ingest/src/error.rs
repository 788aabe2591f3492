//! The ingest error type.

/// Why the server could not start, or stopped. Invalid *events* and bad
/// *requests* are not errors: they are answered (400, 401, 429) and counted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A server setting is out of range or malformed.
    #[error(transparent)]
    Config(#[from] ps_config::SettingError),
    /// Reading, writing or recovering the inbox failed.
    #[error(transparent)]
    Inbox(#[from] ps_inbox::Error),
    /// The listening address cannot be bound.
    #[error("cannot listen on {addr}: {source} (set [server] listen, or pass --listen)")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Opening the space or landing events failed.
    #[error(transparent)]
    Pipeline(#[from] ps_pipeline::Error),
    /// Opening or using the warehouse failed.
    #[error(transparent)]
    Warehouse(#[from] ps_warehouse::Error),
    /// A thread or the async runtime could not be started or used.
    #[error("{0}")]
    Runtime(String),
}

/// The crate's result type.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;
