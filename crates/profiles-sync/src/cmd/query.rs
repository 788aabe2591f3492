//! `profiles-sync query SQL`: read the tables, even while `serve` runs.
//!
//! DuckDB lets one process hold a database file for writing, and `serve`
//! does. So the query first goes to the running server (`POST /admin/query`
//! with `[server] admin_token`), which answers it on its own connection; when
//! no server listens, the warehouse is opened directly.

use crate::config::Config;
use anyhow::{anyhow, bail, Context, Result};
use ps_ingest::client::Client;
use ps_ingest::QueryResult;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

pub fn run(config: &Path, sql: &str, json: bool, direct: bool) -> Result<ExitCode> {
    let cfg = Config::load(config)?;
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
            ps_ingest::query::run_query(wh.as_mut(), sql).map_err(|e| anyhow!(e))?
        }
    };
    if json {
        println!("{}", result.to_json());
    } else {
        print!("{}", result.to_tsv());
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the running server. `Ok(None)` when nothing listens there.
fn through_server(listen: SocketAddr, token: &str, sql: &str) -> Result<Option<QueryResult>> {
    // A server bound to every interface is reached on loopback.
    let addr = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port())
        }
        _ => listen,
    };
    let mut client = Client::new(addr).with_timeout(Duration::from_secs(300));
    let auth = format!("Bearer {token}");
    let resp = match client.request(
        "POST",
        "/admin/query",
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        sql.as_bytes(),
    ) {
        Ok(r) => r,
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionRefused) => return Ok(None),
        Err(e) => return Err(anyhow!("asking the server at {addr}: {e}")),
    };
    let body = resp.json();
    if resp.status != 200 {
        let msg = body
            .get("message")
            .and_then(|m| m.as_str())
            .map_or_else(|| resp.text(), str::to_owned);
        bail!("the server at {addr} answered {}: {msg}", resp.status);
    }
    QueryResult::from_json(&body)
        .map(Some)
        .ok_or_else(|| anyhow!("the server at {addr} sent an unexpected answer"))
}
