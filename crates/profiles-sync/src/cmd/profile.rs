//! `profiles-sync profile TYPE:VALUE`: the Profile API's lookups from the
//! command line. As `query` does, it asks the running server first
//! (`POST /admin/profile`, with `[server] admin_token`), because `serve`
//! holds the DuckDB file; when nothing listens, it reads the warehouse
//! itself through the same lookup layer
//! ([`ps_ingest::profile_api::lookup`]).

use anyhow::{anyhow, bail, Context, Result};
use ps_ingest::profile_api::lookup::{Identifier, LookupError, Profiles, Sections};
use serde_json::{json, Value as Json};
use std::path::Path;
use std::process::ExitCode;

/// Which sections the flags ask for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Show {
    pub(crate) traits: bool,
    pub(crate) external_ids: bool,
    pub(crate) events: bool,
    pub(crate) limit: usize,
}

impl Show {
    fn sections(self) -> Sections {
        let none = !(self.traits || self.external_ids || self.events);
        Sections {
            traits: self.traits || none,
            external_ids: self.external_ids || none,
            events: self.events,
            metadata: none,
            events_limit: self.limit.max(1),
        }
    }
}

pub(crate) fn run(
    config: &Path,
    id: &str,
    show: Show,
    json: bool,
    direct: bool,
) -> Result<ExitCode> {
    let cfg = crate::config::load(config)?;
    let server = cfg.server.to_config()?;
    let ident: Identifier = id.parse().map_err(|e: String| anyhow!(e))?;
    let sections = show.sections();
    let via_server = match (&server.admin_token, direct) {
        (Some(token), false) => through_server(server.listen, token, id, &sections)?,
        _ => None,
    };
    let answer = match via_server {
        Some(a) => a,
        None => {
            let mut wh = ps_warehouse::open(&cfg.warehouse.url)
                .map_err(|e| {
                    let hint = if e.to_string().to_lowercase().contains("lock") {
                        "; the file is in use — is `profiles-sync serve` running? Set [server] admin_token so lookups go through it"
                    } else {
                        ""
                    };
                    anyhow!("{e}{hint}")
                })
                .with_context(|| format!("warehouse.url = {:?}", cfg.warehouse.url))?;
            let reader = wh.read_only()?;
            match Profiles::new(&reader, &cfg.space, server.query).profile(&ident, &sections) {
                Ok(v) => Some(v),
                Err(LookupError::NotFound) => None,
                Err(e) => bail!("{e}"),
            }
        }
    };
    let Some(answer) = answer else {
        // The value stays out: error output ends up in logs.
        let id_type = id.split_once(':').map_or("identifier", |(t, _)| t);
        eprintln!("no profile holds this {id_type} in space {:?}", cfg.space);
        return Ok(ExitCode::from(1));
    };
    if json {
        println!("{answer}");
    } else {
        print!("{}", text(id, &answer));
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the running server: `Ok(None)` when nothing listens, `Ok(Some(None))`
/// when it knows no such profile.
fn through_server(
    listen: std::net::SocketAddr,
    token: &str,
    id: &str,
    s: &Sections,
) -> Result<Option<Option<Json>>> {
    let body = json!({
        "id": id,
        "traits": s.traits,
        "external_ids": s.external_ids,
        "events": s.events,
        "metadata": s.metadata,
        "events_limit": s.events_limit,
    });
    let Some((addr, status, body)) = super::admin::request(
        listen,
        token,
        "POST",
        "/admin/profile",
        body.to_string().as_bytes(),
    )?
    else {
        return Ok(None);
    };
    match status {
        200 => Ok(Some(Some(body))),
        404 if body.get("code").and_then(Json::as_str) == Some("not_found") => Ok(Some(None)),
        _ => bail!(
            "the server at {addr} answered {status}: {}",
            super::admin::message(&body)
        ),
    }
}

fn cell(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The answer as text, one section after the other.
fn text(id: &str, a: &Json) -> String {
    let mut out = format!("profile {} ({id})\n", cell(&a["segment_id"]));
    if let Some(t) = a.get("traits").and_then(Json::as_object) {
        out.push_str(&format!("traits ({}):\n", t.len()));
        for (k, v) in t {
            out.push_str(&format!("  {k}\t{}\n", cell(v)));
        }
    }
    if let Some(ids) = a.get("external_ids").and_then(Json::as_array) {
        out.push_str(&format!("external ids ({}):\n", ids.len()));
        for x in ids {
            out.push_str(&format!(
                "  {}\t{}\tfirst seen {} in {} from {}\n",
                cell(&x["type"]),
                cell(&x["id"]),
                cell(&x["created_at"]),
                cell(&x["first_message_id"]),
                cell(&x["source_id"])
            ));
        }
    }
    if let Some(evs) = a.get("events").and_then(Json::as_array) {
        let more = if a["more_events"] == json!(true) {
            ", more with --limit"
        } else {
            ""
        };
        out.push_str(&format!("events ({}, newest first{more}):\n", evs.len()));
        for e in evs {
            out.push_str(&format!(
                "  {}\t{}\t{}\t{}\t{}\n",
                cell(&e["timestamp"]),
                cell(&e["type"]),
                cell(&e["event"]),
                cell(&e["message_id"]),
                cell(&e["source_id"])
            ));
        }
    }
    if let Some(m) = a.get("metadata").and_then(Json::as_object) {
        out.push_str("metadata:\n");
        for (k, v) in m {
            out.push_str(&format!("  {k}\t{}\n", cell(v)));
        }
    }
    out
}
