//! `profiles-sync delete | suppress | unsuppress TYPE:VALUE` and
//! `profiles-sync regulations` (SPEC §8).
//!
//! Like `query`, these go through a running server when `[server]
//! admin_token` is set (it holds the warehouse), and open the warehouse
//! directly otherwise.

use anyhow::{anyhow, bail, Context, Result};
use ps_pipeline::{Regulation, RegulationKind, Subject};
use serde_json::{json, Value as Json};
use std::path::Path;
use std::process::ExitCode;

/// Exit code of a request whose subject was not found.
const NOT_FOUND: u8 = 3;

pub(crate) fn regulate(
    config: &Path,
    kind: RegulationKind,
    subject: &str,
    as_json: bool,
) -> Result<ExitCode> {
    let subject: Subject = subject
        .parse()
        .map_err(|e: String| anyhow!("subject: {e}"))?;
    let cfg = crate::config::load(config)?;
    let server = cfg.server.to_config()?;
    let reg = match server
        .admin_token
        .as_deref()
        .map(|token| {
            let body = json!({"type": kind.as_str(), "subject": format!("{}:{}", subject.type_name, subject.value)});
            super::admin::request(
                server.listen,
                token,
                "POST",
                "/admin/regulations",
                body.to_string().as_bytes(),
            )
        })
        .transpose()?
        .flatten()
    {
        Some((addr, status, body)) => match body.get("regulation") {
            Some(r) if status == 200 || status == 404 => r.clone(),
            _ => bail!(
                "the server at {addr} answered {status}: {}",
                super::admin::message(&body)
            ),
        },
        None => {
            let (_, mut wh, mut space) = super::open(config)?;
            let now = ps_spec::time::now_micros();
            space
                .regulate(wh.as_mut(), kind, &subject, now)
                .context("carrying out the request")?
                .to_json()
        }
    };
    print_one(&reg, as_json);
    if reg.get("status").and_then(Json::as_str) == Some("finished") {
        Ok(ExitCode::SUCCESS)
    } else {
        // Without the subject: a suppression records it in clear, and error
        // output ends up in logs.
        eprintln!(
            "error: {} of a {}: {} (recorded as {})",
            kind.as_str(),
            subject.type_name,
            reg["message"].as_str().unwrap_or("not found"),
            reg["id"].as_str().unwrap_or("?")
        );
        Ok(ExitCode::from(NOT_FOUND))
    }
}

pub(crate) fn list(config: &Path, as_json: bool) -> Result<ExitCode> {
    let cfg = crate::config::load(config)?;
    let server = cfg.server.to_config()?;
    let via_server = match server.admin_token.as_deref() {
        Some(token) => {
            super::admin::request(server.listen, token, "GET", "/admin/regulations", b"")?
        }
        None => None,
    };
    let regs: Vec<Json> = match via_server {
        Some((addr, 200, body)) => body
            .get("regulations")
            .and_then(Json::as_array)
            .cloned()
            .ok_or_else(|| anyhow!("the server at {addr} sent an unexpected answer"))?,
        Some((addr, status, body)) => bail!(
            "the server at {addr} answered {status}: {}",
            super::admin::message(&body)
        ),
        None => {
            let (_, mut wh, space) = super::open(config)?;
            space
                .regulations(wh.as_mut())?
                .iter()
                .map(Regulation::to_json)
                .collect()
        }
    };
    if as_json {
        println!("{}", Json::Array(regs));
    } else if regs.is_empty() {
        println!("no requests yet");
    } else {
        for r in &regs {
            print_one(r, false);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_one(r: &Json, as_json: bool) {
    if as_json {
        println!("{r}");
        return;
    }
    let s = |k: &str| r.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
    let mut line = format!(
        "{}  {:<10} {:<40} {:<9} {}",
        s("id"),
        s("type"),
        s("subject"),
        s("status"),
        s("requested_at")
    );
    if !s("message").is_empty() {
        line.push_str(&format!("  {}", s("message")));
    }
    if let Some(rows) = r.get("rows_deleted").and_then(Json::as_object) {
        if !rows.is_empty() {
            let parts: Vec<String> = rows.iter().map(|(t, n)| format!("{t} {n}")).collect();
            line.push_str(&format!(" ({})", parts.join(", ")));
        }
    }
    println!("{line}");
}
