//! PostgreSQL: the first server warehouse.
//!
//! Rows are loaded with binary `COPY … FROM STDIN (FORMAT binary)` — the
//! fastest path PostgreSQL offers (figures in BENCHMARKS.md) — inside
//! the same transaction as the DDL, the engine state and the materialization.
//! Values are encoded by hand (`Cell`), so no per-row conversion into
//! driver types is needed.

use crate::contract::TableSchema;
use crate::dialect::{literal, quote, Dialect};
use crate::error::{Error, ErrorKind, Result};
use crate::read_only::{QueryAnswer, QueryLimits, ReadOnly};
use crate::rows::{value_cells, Cell, RowBuffer};
use crate::Warehouse;
use ::postgres::types::{FromSql, ToSql, Type};
use ::postgres::Client;
use ps_spec::Value;

mod tls;

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET: i64 = 946_684_800_000_000;

/// A PostgreSQL database reached over the network.
pub struct Postgres {
    client: Client,
    dialect: Dialect,
    /// For the connections of read-only queries.
    url: String,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").finish_non_exhaustive()
    }
}

fn classify(e: ::postgres::Error, sql: &str) -> Error {
    Error::new(kind_of(&e), e).with_statement(sql)
}

fn kind_of(e: &::postgres::Error) -> ErrorKind {
    // Class 08 (connection exception) and 57 (operator intervention: the
    // server shutting down or restarting) mean the transaction never
    // committed and a retry after reconnecting may succeed.
    let server_going = e
        .code()
        .is_some_and(|c| c.code().starts_with("08") || c.code().starts_with("57"));
    if e.is_closed() || server_going || (e.as_db_error().is_none() && is_io(e)) {
        ErrorKind::ConnectionLost
    } else {
        ErrorKind::Query
    }
}

fn is_io(e: &::postgres::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if s.is::<std::io::Error>() {
            return true;
        }
        src = s.source();
    }
    false
}

impl Postgres {
    /// Connects to `postgres://user:pass@host:port/db`, with TLS as the
    /// URL's `sslmode` and `sslrootcert` say (module `tls`). Wrong
    /// credentials, an unreachable host or a failed TLS handshake fail here,
    /// with the server's or the TLS layer's message.
    pub fn connect(url: &str) -> Result<Postgres> {
        let tls = tls::TlsSettings::from_url(url)?;
        let mut config: ::postgres::Config = tls
            .url
            .parse()
            .map_err(|e| Error::new(ErrorKind::Config, redact(url, &e)))?;
        config.ssl_mode(tls.driver_mode());
        let connector = tls.connector()?;
        let client = config.connect(connector).map_err(|e| {
            Error::new(
                ErrorKind::Connect,
                tls.explain(redact(url, &e), &error_text(&e), e.as_db_error()),
            )
        })?;
        let mut client = client;
        // Every start re-runs `CREATE INDEX IF NOT EXISTS`, whose "already
        // exists, skipping" notices would otherwise reach the log each time.
        client
            .batch_execute("SET client_min_messages TO warning")
            .map_err(|e| classify(e, "SET client_min_messages TO warning"))?;
        Ok(Postgres {
            client,
            dialect: Dialect::postgres(),
            url: url.to_owned(),
        })
    }
}

/// The connection error with the password kept out of it.
fn redact(url: &str, e: &::postgres::Error) -> String {
    let shown = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    };
    format!("{shown}: {}", error_text(e))
}

/// The error with its causes: the driver's own text is only a category
/// ("db error", "error performing TLS handshake"); what the server or the
/// TLS layer said is in the chain.
fn error_text(e: &::postgres::Error) -> String {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
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

/// One cell in PostgreSQL's binary COPY encoding: its length (-1 for NULL)
/// and its bytes. Values already have their column's type (the pipeline casts
/// them), so the column type is not consulted.
fn encode_cell(v: Cell<'_>, out: &mut Vec<u8>, sql: &str) -> Result<()> {
    let fixed = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as i32).to_be_bytes());
        out.extend_from_slice(b);
    };
    match v {
        Cell::Null => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Cell::Bool(b) => fixed(out, &[u8::from(b)]),
        Cell::Int(i) => fixed(out, &i.to_be_bytes()),
        Cell::Float(f) => fixed(out, &f.to_be_bytes()),
        Cell::Ts(t) => fixed(out, &(t - PG_EPOCH_OFFSET).to_be_bytes()),
        Cell::Str(s) => {
            let len = i32::try_from(s.len()).map_err(|_| {
                Error::new(ErrorKind::Query, "a text value is over 2 GB").with_statement(sql)
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    Ok(())
}

/// Any result cell, decoded by its column type.
struct Any(Value);

impl<'a> FromSql<'a> for Any {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Any, Box<dyn std::error::Error + Sync + Send>> {
        let be8 = |raw: &[u8]| -> Result<[u8; 8], Box<dyn std::error::Error + Sync + Send>> {
            Ok(raw.try_into().map_err(|_| "bad 8-byte value")?)
        };
        Ok(Any(match *ty {
            Type::BOOL => Value::Bool(raw.first().copied().unwrap_or(0) != 0),
            Type::INT8 => Value::Int(i64::from_be_bytes(be8(raw)?)),
            Type::INT4 => Value::Int(i64::from(i32::from_be_bytes(
                raw.try_into().map_err(|_| "bad int4")?,
            ))),
            Type::INT2 => Value::Int(i64::from(i16::from_be_bytes(
                raw.try_into().map_err(|_| "bad int2")?,
            ))),
            Type::FLOAT8 => Value::Float(f64::from_be_bytes(be8(raw)?)),
            Type::FLOAT4 => Value::Float(f64::from(f32::from_be_bytes(
                raw.try_into().map_err(|_| "bad float4")?,
            ))),
            Type::TIMESTAMP | Type::TIMESTAMPTZ => {
                Value::Ts(i64::from_be_bytes(be8(raw)?) + PG_EPOCH_OFFSET)
            }
            _ => Value::Str(text(raw)),
        }))
    }

    fn from_sql_null(_ty: &Type) -> Result<Any, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Any(Value::Null))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// Text cells are valid UTF-8 unless the server's encoding is not; the
/// strict check is several times faster than the lossy one on big results.
fn text(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(raw).into_owned(),
    }
}

impl Warehouse for Postgres {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    fn describe(&mut self, schema: &str) -> Result<Vec<TableSchema>> {
        let sql = format!(
            "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = {} ORDER BY table_name, ordinal_position",
            literal(schema)
        );
        let rows = self.query(&sql)?;
        crate::group_columns(rows)
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        self.client.batch_execute(sql).map_err(|e| classify(e, sql))
    }

    fn for_each_row(&mut self, sql: &str, f: &mut dyn FnMut(Vec<Value>)) -> Result<()> {
        use ::postgres::fallible_iterator::FallibleIterator;
        let mut rows = self
            .client
            .query_raw(sql, std::iter::empty::<&(dyn ToSql + Sync)>())
            .map_err(|e| classify(e, sql))?;
        while let Some(row) = rows.next().map_err(|e| classify(e, sql))? {
            let mut r = Vec::with_capacity(row.len());
            for i in 0..row.len() {
                let v: Any = row.try_get(i).map_err(|e| classify(e, sql))?;
                r.push(v.0);
            }
            f(r);
        }
        Ok(())
    }

    fn append(&mut self, schema: &str, table: &TableSchema, rows: &[Vec<Value>]) -> Result<()> {
        self.copy(schema, table, rows.len(), value_cells(rows))
    }

    fn append_buffer(&mut self, schema: &str, table: &TableSchema, rows: &RowBuffer) -> Result<()> {
        self.copy(schema, table, rows.len(), rows.cells(table))
    }

    fn read_only(&mut self) -> Result<ReadOnly> {
        Ok(ReadOnly::postgres(self.url.clone()))
    }
}

/// Functions a query may not name: those that change the role back (a
/// superuser's session may, whatever role it runs as), run text as a query,
/// signal other backends or touch server files and large objects. The check
/// is on the lower-cased text, so quoting does not hide a name; `U&`
/// identifiers, which could spell one with escapes, are refused too.
const REFUSED_FUNCTIONS: &[&str] = &[
    "set_config",
    "query_to_xml",
    "cursor_to_xml",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_",
    "pg_stat_file",
    "lo_",
    "dblink",
    "u&\"",
];

/// Refuses a query that names one of [`REFUSED_FUNCTIONS`].
pub(crate) fn check_functions(sql: &str) -> Result<()> {
    let lower = sql.to_ascii_lowercase();
    // A name counts where it starts a word: `hello_world` does not name `lo_`.
    let named = |f: &&&str| {
        lower.match_indices(**f).any(|(at, _)| {
            !lower[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
    };
    match REFUSED_FUNCTIONS.iter().find(named) {
        Some(f) => Err(Error::new(
            ErrorKind::Refused,
            format!(
                "the query path does not run `{}`: it could reach outside the database or \
                 change the role queries run as",
                f.trim_end_matches('_')
            ),
        )),
        None => Ok(()),
    }
}

impl Postgres {
    /// Runs `sql` (checked and wrapped by [`crate::read_only`]) in a
    /// `READ ONLY` transaction with `statement_timeout`, as
    /// `pg_read_all_data` when this user could otherwise reach server files.
    pub(crate) fn read_only_query(
        &mut self,
        sql: &str,
        limits: &QueryLimits,
    ) -> Result<QueryAnswer> {
        let ms = limits.timeout.as_millis().max(1);
        let setup = format!("BEGIN READ ONLY; SET LOCAL statement_timeout = {ms}");
        self.execute(&setup)?;
        let risky =
            "SELECT rolsuper OR pg_has_role(current_user, 'pg_read_server_files', 'MEMBER') \
                     OR pg_has_role(current_user, 'pg_write_server_files', 'MEMBER') \
                     OR pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER') \
                     FROM pg_roles WHERE rolname = current_user";
        if self.query(risky)? == vec![vec![Value::Bool(true)]] {
            self.execute("SET LOCAL ROLE pg_read_all_data")
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Refused,
                        format!(
                        "the warehouse user may read or write server files and cannot take the \
                         role pg_read_all_data for queries ({e}); grant it that role, or query \
                         as a user without file access"
                    ),
                    )
                })?;
        }
        let answer = self.read_rows(sql, limits);
        let _ = self.execute("ROLLBACK");
        answer
    }

    fn read_rows(&mut self, sql: &str, limits: &QueryLimits) -> Result<QueryAnswer> {
        use ::postgres::fallible_iterator::FallibleIterator;
        let fail = |e: ::postgres::Error| {
            let code = e.code().map(|c| c.code().to_owned()).unwrap_or_default();
            let text = error_text(&e);
            match code.as_str() {
                // query_canceled: the statement timeout.
                "57014" => Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the query ran past its time limit of {:?} ([query] timeout)",
                        limits.timeout
                    ),
                ),
                // read_only_sql_transaction, insufficient_privilege.
                "25006" | "42501" => Error::new(
                    ErrorKind::Refused,
                    format!("the query path only reads the space's tables: {text}"),
                ),
                // The user's own query: the server's message (a missing
                // column, a syntax error) is what they need to fix it.
                _ => Error::new(kind_of(&e), text).with_statement(sql),
            }
        };
        let stmt = self.client.prepare(sql).map_err(fail)?;
        let columns = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
        let mut rows = self
            .client
            .query_raw(&stmt, std::iter::empty::<&(dyn ToSql + Sync)>())
            .map_err(fail)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(fail)? {
            let mut r = Vec::with_capacity(row.len());
            for i in 0..row.len() {
                let v: Any = row.try_get(i).map_err(fail)?;
                r.push(v.0);
            }
            out.push(r);
        }
        Ok(QueryAnswer {
            columns,
            rows: out,
            truncated: false,
        })
    }
}

impl Postgres {
    /// Binary COPY of `n` rows whose cells `cell(row, column)` gives.
    fn copy<'a>(
        &mut self,
        schema: &str,
        table: &TableSchema,
        n: usize,
        cell: impl Fn(usize, usize) -> Cell<'a>,
    ) -> Result<()> {
        use std::io::Write;
        if n == 0 {
            return Ok(());
        }
        let cols: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
        let sql = format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            self.dialect.table(schema, &table.name),
            cols.join(", ")
        );
        let width = i16::try_from(table.columns.len()).map_err(|_| {
            Error::new(ErrorKind::Query, "a table has more than 32767 columns").with_statement(&sql)
        })?;
        let mut writer = self.client.copy_in(&sql).map_err(|e| classify(e, &sql))?;
        // The stream is encoded here and written a megabyte at a time: the
        // driver's row writer entered its async runtime once per row, which
        // showed in profiles of a sync (BENCHMARKS.md).
        const FLUSH: usize = 1 << 20;
        let mut buf = Vec::with_capacity(FLUSH + 64 * 1024);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&[0; 8]); // flags, header extension length
        let mut failed = None;
        for r in 0..n {
            buf.extend_from_slice(&width.to_be_bytes());
            for i in 0..table.columns.len() {
                encode_cell(cell(r, i), &mut buf, &sql)?;
            }
            if buf.len() >= FLUSH {
                if let Err(e) = writer.write_all(&buf) {
                    failed = Some(e);
                    break;
                }
                buf.clear();
            }
        }
        if failed.is_none() {
            buf.extend_from_slice(&(-1i16).to_be_bytes());
            failed = writer.write_all(&buf).err();
        }
        match failed {
            // The driver's own error (a lost connection, say) comes from
            // `finish`; the io error only wraps it.
            Some(io) => Err(match writer.finish() {
                Err(e) => classify(e, &sql),
                Ok(_) => Error::new(ErrorKind::ConnectionLost, io).with_statement(&sql),
            }),
            None => writer.finish().map(drop).map_err(|e| classify(e, &sql)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_functions;
    use crate::ErrorKind;

    #[test]
    fn functions_that_reach_outside_or_change_the_role_are_refused_where_a_word_starts() {
        for bad in [
            "SELECT pg_read_file('/etc/hostname')",
            "SELECT set_config('role', 'postgres', true), 1",
            "SELECT \"SET_CONFIG\"('role', 'postgres', true)",
            "SELECT pg_catalog.query_to_xml('select 1', true, true, '')",
            "SELECT * FROM pg_ls_dir('.')",
            "SELECT lo_export(1, '/tmp/x')",
            "SELECT U&\"\\0073et_config\"('role', 'postgres', true)",
            "SELECT pg_terminate_backend(1)",
        ] {
            let e = check_functions(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Refused, "{bad}");
        }
        for ok in [
            "SELECT hello_world, solo_id FROM s.t",
            "SELECT * FROM s.my_set_config_table",
            "SELECT 'u&'",
        ] {
            assert!(check_functions(ok).is_ok(), "{ok}");
        }
    }
}
