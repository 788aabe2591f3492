//! The ingest error type.

use std::path::{Path, PathBuf};

/// Why the server could not start, or stopped. Invalid *events* and bad
/// *requests* are not errors: they are answered (400, 401, 429) and counted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid setting `{setting}`: {message}")]
    Config { setting: String, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the inbox file {} is damaged: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("cannot listen on {addr}: {source} (set [server] listen, or pass --listen)")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pipeline(#[from] ps_pipeline::Error),
    #[error(transparent)]
    Warehouse(#[from] ps_warehouse::Error),
    #[error("{0}")]
    Runtime(String),
}

impl IngestError {
    pub fn io(path: &Path, source: std::io::Error) -> IngestError {
        IngestError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub fn config(setting: &str, message: impl Into<String>) -> IngestError {
        IngestError::Config {
            setting: setting.to_owned(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;
