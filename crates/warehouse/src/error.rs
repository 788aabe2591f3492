//! The warehouse error type.

use std::fmt;

/// What went wrong talking to a warehouse, with the statement that failed when
/// there was one.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    statement: Option<String>,
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// Broad classes of failure, for callers deciding whether to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The warehouse could not be opened or reached (bad path, host, credentials).
    Connect,
    /// A connection that worked was lost; the transaction did not commit and
    /// may be retried.
    ConnectionLost,
    /// A statement failed.
    Query,
    /// The stored data is not what this version expects.
    Corrupt,
    /// The warehouse URL is not usable.
    Config,
    /// A read-only query was refused: it would write, or reach outside the
    /// database ([`crate::ReadOnly`]).
    Refused,
    /// A read-only query ran past its time limit and was cancelled.
    Timeout,
}

impl Error {
    /// An error of `kind` caused by `source`.
    pub fn new(
        kind: ErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error {
            kind,
            statement: None,
            source: source.into(),
        }
    }

    /// The error, naming the statement that failed.
    pub fn with_statement(mut self, sql: &str) -> Error {
        self.statement = Some(sql.to_owned());
        self
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The SQL that failed, if the error came from a statement.
    pub fn statement(&self) -> Option<&str> {
        self.statement.as_deref()
    }

    /// Whether retrying the whole transaction later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::ConnectionLost
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::Connect => "cannot open the warehouse",
            ErrorKind::ConnectionLost => "lost the warehouse connection",
            ErrorKind::Query => "warehouse statement failed",
            ErrorKind::Corrupt => "unexpected warehouse contents",
            ErrorKind::Config => "bad warehouse setting",
            ErrorKind::Refused => "query refused",
            ErrorKind::Timeout => "query cancelled",
        };
        write!(f, "{what}: {}", self.source)?;
        if let Some(s) = &self.statement {
            let short: String = s.chars().take(300).collect();
            write!(f, " (in: {short})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// The warehouse result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
