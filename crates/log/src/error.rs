//! The log's error type. Messages name settings and operations, never an
//! event's identifiers.

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log could not be reached or did not answer in time (no quorum,
    /// a leader election, a lost connection): retrying later may work.
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
    /// The lease lapsed or another holder took it.
    #[error("the lease of space {space:?} was lost")]
    LeaseLost {
        /// The space.
        space: String,
    },
    /// A setting is invalid.
    #[error("invalid setting `{setting}`: {message}")]
    Config {
        /// The setting, as the configuration names it.
        setting: String,
        /// What is wrong with it.
        message: String,
    },
    /// The log refused an operation for another reason.
    #[error("the event log refused {what}: {message}")]
    Refused {
        /// The operation.
        what: &'static str,
        /// The log's reason.
        message: String,
    },
}

impl From<ps_config::SettingError> for Error {
    fn from(e: ps_config::SettingError) -> Error {
        Error::Config {
            setting: e.setting,
            message: e.message,
        }
    }
}

impl Error {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }
}

/// The log's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
