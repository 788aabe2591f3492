//! The pipeline's error type.

use std::path::PathBuf;

/// Why a sync stopped. Invalid *events* are not errors: they are refused,
/// counted and reported, and the sync goes on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Warehouse(#[from] ps_warehouse::Error),
    #[error(transparent)]
    Settings(#[from] ps_identity::SettingsError),
    #[error("cannot read {path}: {source}")]
    Input {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the stored state of space {space:?} cannot be used: {message}")]
    State { space: String, message: String },
    #[error("invalid setting `{setting}`: {message}")]
    Config { setting: String, message: String },
}

impl Error {
    /// The stored state of `space` cannot be used, because of `message`.
    pub(crate) fn state(space: &str, message: impl Into<String>) -> Error {
        Error::State {
            space: space.to_owned(),
            message: message.into(),
        }
    }

    /// Whether retrying the same batch later may succeed (a lost connection).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Warehouse(e) if e.is_transient())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
