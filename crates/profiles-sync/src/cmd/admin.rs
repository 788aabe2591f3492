//! Talking to a running `serve` through its admin API.
//!
//! A DuckDB file can be held by one writer only, and a running server holds
//! it; commands that need the warehouse while `serve` runs (`query`,
//! `delete`, `suppress`, …) therefore ask the server first when
//! `[server] admin_token` is set, and open the warehouse themselves only when
//! nothing listens.

use anyhow::{anyhow, Result};
use ps_ingest::client::Client;
use serde_json::Value as Json;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Sends one admin request. `Ok(None)` when nothing listens at `listen`;
/// otherwise the address used, the status and the JSON body.
pub(crate) fn request(
    listen: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Option<(SocketAddr, u16, Json)>> {
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
        method,
        path,
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        body,
    ) {
        Ok(r) => r,
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionRefused) => return Ok(None),
        Err(e) => return Err(anyhow!("asking the server at {addr}: {e}")),
    };
    let json = resp.json();
    let json = if json.is_null() {
        Json::String(resp.text())
    } else {
        json
    };
    Ok(Some((addr, resp.status, json)))
}

/// The `message` of an error body, or the body itself.
pub(crate) fn message(body: &Json) -> String {
    body.get("message")
        .and_then(Json::as_str)
        .map_or_else(|| body.to_string(), str::to_owned)
}
