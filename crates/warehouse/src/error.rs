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
    /// The commit was refused because a newer lease holder has committed
    /// ([`crate::fence`]): this writer must stop writing.
    Fenced,
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
            ErrorKind::Fenced => "commit fenced off",
        };
        // Statements carry data values as literals (a privacy delete names
        // the subject's identifiers), and servers quote values back in
        // their messages (PostgreSQL's DETAIL: `Key (id)=(…)`, DuckDB's
        // `Could not convert string '…'`): an error that reaches a log line
        // shows neither. Connection errors keep their text: it names files
        // and hosts, never rows.
        if self.shows_source_as_is() {
            write!(f, "{what}: {}", self.source)?;
        } else {
            write!(f, "{what}: {}", redact_message(&chain_text(&*self.source)))?;
        }
        if let Some(s) = &self.statement {
            let short: String = redact_literals(s).chars().take(300).collect();
            write!(f, " (in: {short})")?;
        }
        Ok(())
    }
}

/// `sql` with the text of every string literal replaced by `…`, so the
/// statement's shape stays and its values go.
pub(crate) fn redact_literals(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut in_literal = false;
    while let Some(c) = chars.next() {
        if !in_literal {
            out.push(c);
            if c == '\'' {
                in_literal = true;
            }
        } else if c == '\'' {
            if chars.peek() == Some(&'\'') {
                // A doubled quote inside the literal.
                chars.next();
            } else {
                out.push('…');
                out.push('\'');
                in_literal = false;
            }
        }
    }
    if in_literal {
        out.push('…');
    }
    out
}

/// A server's error message without the parts that quote data values: its
/// `DETAIL` lines, and single-quoted strings.
fn redact_message(text: &str) -> String {
    let kept: Vec<&str> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("DETAIL:") {
                "DETAIL: (withheld: it may quote data values)"
            } else {
                l
            }
        })
        .collect();
    redact_literals(&kept.join("\n"))
}

impl Error {
    /// Whether the source's own text may be shown: it names files and
    /// hosts, never rows.
    fn shows_source_as_is(&self) -> bool {
        matches!(self.kind, ErrorKind::Connect | ErrorKind::Config)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The chain of a statement's error is already in the Display,
        // redacted; handing out the raw source would let a caller printing
        // the chain (`{:#}` of anyhow) show the values again.
        if self.shows_source_as_is() {
            Some(&*self.source)
        } else {
            None
        }
    }
}

/// `e` and its causes, each once (a driver's text is often only a
/// category, "db error", with what the server said in the cause).
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        src = s.source();
    }
    text
}

/// The warehouse result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_errors_carry_no_literal_values() {
        assert_eq!(
            redact_literals("DELETE FROM t WHERE v IN ('jane@x.org', 'o''brien') AND n = 3"),
            "DELETE FROM t WHERE v IN ('…', '…') AND n = 3"
        );
        assert_eq!(redact_literals("SELECT 'unterminated"), "SELECT '…");
        let e = Error::new(
            ErrorKind::Query,
            "ERROR: update or delete violates a foreign key\nDETAIL: Key (v)=(jane@x.org) is still referenced",
        )
        .with_statement("DELETE FROM t WHERE v = 'jane@x.org'");
        let shown = e.to_string();
        assert!(!shown.contains("jane"), "{shown}");
        assert!(
            shown.contains("foreign key") && shown.contains("DELETE FROM t"),
            "{shown}"
        );
        let c = Error::new(
            ErrorKind::Connect,
            "'/data/wh.duckdb': read-only file system",
        );
        assert!(c.to_string().contains("/data/wh.duckdb"));
    }
}
