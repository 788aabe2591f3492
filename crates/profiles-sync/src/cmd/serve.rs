//! `profiles-sync serve`: the HTTP Tracking API with continuous sync.
//!
//! All the work is in `ps_ingest`; this wires the config to it, prints where
//! it listens (tests and scripts read that line to find a port chosen with
//! `--listen 127.0.0.1:0`), and turns SIGTERM / Ctrl-C into a clean stop that
//! lands the inbox first.

use crate::config::resolve_listen;
use anyhow::{anyhow, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(crate) fn run(
    config: &Path,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
) -> Result<ExitCode> {
    let cfg = crate::config::load(config)?;
    let mut server = cfg.server.to_config()?;
    server.profile_api = cfg.profile_api.to_config()?;
    if let Some(l) = listen {
        server.listen = resolve_listen(&l).map_err(|m| anyhow!("invalid --listen: {m}"))?;
    }
    match (data_dir, &cfg.server.data_dir) {
        (Some(d), _) => server.data_dir = d,
        (None, Some(_)) => {}
        (None, None) => server.data_dir = default_data_dir(&cfg.warehouse.url, &cfg.space),
    }
    let inbox = server.data_dir.join("inbox");
    let log = cfg.log.as_ref().map(|l| l.to_config()).transpose()?;
    let on_log = log.is_some();
    let opts = ps_ingest::Options {
        server,
        space: cfg.space(),
        warehouse_url: cfg.warehouse.url.clone(),
        log,
    };
    let mut srv = ps_ingest::Server::start(opts).with_context(|| {
        format!(
            "starting the server (space {:?}, warehouse.url = {:?})",
            cfg.space, cfg.warehouse.url
        )
    })?;
    srv.watch_signals()?;
    if on_log {
        eprintln!(
            "profiles-sync serve: listening on http://{} (space {:?}, publishing to the event log; `resolve` lands it)",
            srv.local_addr(),
            cfg.space
        );
        let _ = std::io::stderr().flush();
        srv.wait_for_signal()?;
        srv.shutdown();
        eprintln!("profiles-sync serve: stopped");
        return Ok(ExitCode::SUCCESS);
    }
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

/// Where the inbox goes when neither `[server] data_dir` nor `--data-dir`
/// says: beside a DuckDB file (`events.duckdb` → `events-data/`), else the
/// platform's data directory (`$XDG_DATA_HOME` or `~/.local/share`, then
/// `profiles-sync/<space>`), never silently the current directory. The
/// start-up line prints it.
fn default_data_dir(warehouse_url: &str, space: &str) -> PathBuf {
    if let Some(file) = warehouse_url
        .strip_prefix("duckdb://")
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|p| *p != ":memory:" && !p.is_empty())
    {
        let file = Path::new(file);
        let stem = file
            .file_stem()
            .map_or_else(|| "warehouse".into(), |s| s.to_string_lossy().into_owned());
        return file.with_file_name(format!("{stem}-data"));
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("profiles-sync").join(space)
}

#[cfg(test)]
mod tests {
    use super::default_data_dir;
    use std::path::PathBuf;

    #[test]
    fn the_inbox_goes_beside_a_duckdb_file_or_into_the_data_dir() {
        assert_eq!(
            default_data_dir("duckdb:///srv/wh/events.duckdb?threads=2", "s"),
            PathBuf::from("/srv/wh/events-data")
        );
        assert_eq!(
            default_data_dir("duckdb://events.duckdb", "s"),
            PathBuf::from("events-data")
        );
        let pg = default_data_dir("postgres://u:p@h/db", "my_space");
        assert!(pg.ends_with("profiles-sync/my_space"), "{}", pg.display());
    }
}
