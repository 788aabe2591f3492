//! `profiles-sync serve`: the HTTP Tracking API with continuous sync.
//!
//! All the work is in `ps_ingest`; this wires the config to it, prints where
//! it listens (tests and scripts read that line to find a port chosen with
//! `--listen 127.0.0.1:0`), and turns SIGTERM / Ctrl-C into a clean stop that
//! lands the inbox first.

use crate::config::{resolve_listen, Config};
use anyhow::{anyhow, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(crate) fn run(
    config: &Path,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
) -> Result<ExitCode> {
    let cfg = Config::load(config)?;
    let mut server = cfg.server.to_config()?;
    if let Some(l) = listen {
        server.listen = resolve_listen(&l).map_err(|m| anyhow!("invalid --listen: {m}"))?;
    }
    if let Some(d) = data_dir {
        server.data_dir = d;
    }
    let inbox = server.data_dir.join("inbox");
    let opts = ps_ingest::Options {
        server,
        space: cfg.space(),
        warehouse_url: cfg.warehouse.url.clone(),
    };
    let mut srv = ps_ingest::Server::start(opts).with_context(|| {
        format!(
            "starting the server (space {:?}, warehouse.url = {:?})",
            cfg.space, cfg.warehouse.url
        )
    })?;
    srv.watch_signals()?;
    eprintln!(
        "profiles-sync serve: listening on http://{} (space {:?}, warehouse {}, inbox {})",
        srv.local_addr(),
        cfg.space,
        cfg.warehouse.url,
        inbox.display()
    );
    let _ = std::io::stderr().flush();
    srv.wait_for_signal()?;
    eprintln!("profiles-sync serve: stopping; landing what is in the inbox…");
    let summary = srv.shutdown();
    if summary.events_left > 0 {
        eprintln!(
            "profiles-sync serve: stopped with {} events still in the inbox (see the log); they land at the next start",
            summary.events_left
        );
        return Ok(ExitCode::from(1));
    }
    eprintln!(
        "profiles-sync serve: stopped; {} events landed in {} syncs",
        summary.events_read, summary.syncs
    );
    Ok(ExitCode::SUCCESS)
}
