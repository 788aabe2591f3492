//! `profiles-sync resolve`: a resolver of a multi-node deployment. It
//! competes for the space's lease on the event log (`[log]`) and, while it
//! holds it, lands the space's events in the PostgreSQL warehouse; all the
//! work is in `ps_ingest::resolve`. SIGTERM or Ctrl-C stops it after the
//! batch in hand and gives the lease up.

use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub(crate) fn run(config: &Path, batch_events: Option<usize>) -> Result<ExitCode> {
    let cfg = crate::config::load(config)?;
    let Some(log) = &cfg.log else {
        bail!("invalid setting `log.url`: `resolve` reads the event log; add [log] url = \"nats://host:port,…\"");
    };
    let log = log.to_config()?;
    if !(cfg.warehouse.url.starts_with("postgres://")
        || cfg.warehouse.url.starts_with("postgresql://"))
    {
        bail!(
            "invalid setting `warehouse.url`: `resolve` needs PostgreSQL (postgres://…); \
             a DuckDB or Delta warehouse is one process's file and stays the single-node mode"
        );
    }
    let holder = format!(
        "{}-{}-{}",
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "host".into()),
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let opts = ps_ingest::resolve::ResolveOptions {
        space: cfg.space(),
        warehouse_url: cfg.warehouse.url.clone(),
        log,
        batch_events: batch_events.unwrap_or(cfg.sync.batch_events),
        holder: holder.clone(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(stop.clone())?;
    eprintln!(
        "profiles-sync resolve: {holder} competing for space {:?} (warehouse {})",
        cfg.space, cfg.warehouse.url
    );
    let summary = ps_ingest::resolve::run(&opts, &stop)
        .with_context(|| format!("resolving space {:?}", cfg.space))?;
    eprintln!(
        "profiles-sync resolve: stopped; {} terms, {} commits, {} events read",
        summary.terms, summary.commits, summary.events_read
    );
    Ok(ExitCode::SUCCESS)
}

/// Sets `stop` on SIGTERM or SIGINT.
fn watch_signals(stop: Arc<AtomicBool>) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot watch signals: {e}"))?;
    let (mut term, mut int) = {
        let _g = rt.enter();
        (
            signal(SignalKind::terminate()).map_err(|e| anyhow!("cannot watch signals: {e}"))?,
            signal(SignalKind::interrupt()).map_err(|e| anyhow!("cannot watch signals: {e}"))?,
        )
    };
    std::thread::Builder::new()
        .name("ps-signals".into())
        .spawn(move || {
            rt.block_on(async {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            });
            stop.store(true, Ordering::SeqCst);
        })
        .map_err(|e| anyhow!("cannot watch signals: {e}"))?;
    Ok(())
}
