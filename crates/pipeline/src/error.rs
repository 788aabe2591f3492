//! The pipeline's error type.

use std::path::PathBuf;

/// Why a sync stopped. Invalid *events* are not errors: they are refused,
/// counted and reported, and the sync goes on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    /// The warehouse failed (see [`ps_warehouse::Error::is_transient`]).
    Warehouse(#[from] ps_warehouse::Error),
    #[error(transparent)]
    /// The identity settings are invalid.
    Settings(#[from] ps_identity::SettingsError),
    #[error("cannot read {path}: {source}")]
    /// An input file could not be read.
    Input {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The space's stored state cannot be used (made by another version,
    /// or damaged).
    #[error("the stored state of space {space:?} cannot be used: {message}")]
    State {
        /// The space.
        space: String,
        /// What is wrong with it.
        message: String,
    },
    /// An event source other than a file could not be read (serve's
    /// inbox, say); the text says what and why.
    #[error("cannot read the event source: {0}")]
    Source(String),
    /// A setting is invalid.
    #[error("invalid setting `{setting}`: {message}")]
    Config {
        /// The setting, as the configuration names it.
        setting: String,
        /// What is wrong with it.
        message: String,
    },
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

    /// Whether a newer lease holder's commit refused this one
    /// ([`crate::Batch::set_fence`]).
    pub fn is_fenced(&self) -> bool {
        matches!(self, Error::Warehouse(e) if e.kind() == ps_warehouse::ErrorKind::Fenced)
    }
}

/// The pipeline's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
