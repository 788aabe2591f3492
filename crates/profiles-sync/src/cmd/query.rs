//! `profiles-sync query SQL`: read the tables, even while `serve` runs.
//!
//! DuckDB lets one process hold a database file for writing, and `serve`
//! does. So the query first goes to the running server (`POST /admin/query`
//! with `[server] admin_token`), which answers it on its own connection; when
//! no server listens, the warehouse is opened directly.

use anyhow::{anyhow, bail, Context, Result};
use ps_ingest::QueryResult;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(config: &Path, sql: &str, json: bool, direct: bool) -> Result<ExitCode> {
    let cfg = crate::config::load(config)?;
    let server = cfg.server.to_config()?;
    let via_server = match (&server.admin_token, direct) {
        (Some(token), false) => through_server(server.listen, token, sql)?,
        _ => None,
    };
    let result = match via_server {
        Some(r) => r,
        None => {
            let mut wh = ps_warehouse::open(&cfg.warehouse.url).map_err(|e| {
                let hint = if e.to_string().to_lowercase().contains("lock") {
                    "; the file is in use — is `profiles-sync serve` running? Set [server] admin_token so queries go \
                     through it"
                } else {
                    ""
                };
                anyhow!("{e}{hint}")
            })
            .with_context(|| format!("warehouse.url = {:?}", cfg.warehouse.url))?;
            let reader = wh.read_only()?;
            ps_ingest::query::run_query(&reader, sql, &server.query)?
        }
    };
    if json {
        println!("{}", result.to_json());
    } else {
        print!("{}", result.to_tsv());
    }
    if result.truncated {
        eprintln!(
            "(the first {} rows: the query has more; [server] query_max_rows sets the limit)",
            result.rows.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the running server. `Ok(None)` when nothing listens there.
fn through_server(listen: SocketAddr, token: &str, sql: &str) -> Result<Option<QueryResult>> {
    let Some((addr, status, body)) =
        super::admin::request(listen, token, "POST", "/admin/query", sql.as_bytes())?
    else {
        return Ok(None);
    };
    if status != 200 {
        bail!(
            "the server at {addr} answered {status}: {}",
            super::admin::message(&body)
        );
    }
    QueryResult::from_json(&body)
        .map(Some)
        .ok_or_else(|| anyhow!("the server at {addr} sent an unexpected answer"))
}
