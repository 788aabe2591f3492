//! The inbox's error type.

use std::path::{Path, PathBuf};

/// Why an inbox file could not be read or written. A torn tail is not an
/// error: [`recover`](crate::recover) truncates it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file of the inbox failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An inbox file holds something no writer could have written, inside
    /// the part that was synced (not a torn tail, which recovery
    /// truncates).
    #[error("the inbox file {} is damaged: {message}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What was found, and where.
        message: String,
    },
}

impl Error {
    /// An [`Error::Io`] about `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
