//! # ps-ingest: the HTTP Tracking API and continuous sync (`profiles-sync serve`)
//!
//! ```text
//! HTTP (tokio/axum) ─▶ validate at the edge (ps_spec::validate_json)
//!     ─▶ inbox record ─▶ writer thread: append + one fsync per group ─▶ 200
//!     ─▶ sync thread, every sync_interval: read records ─▶ Space::add
//!        ─▶ Batch::set_checkpoint("inbox", position) ─▶ Space::commit
//!        (rows, engine state, materialization, inbox position: one transaction)
//!     ─▶ delete landed segments
//! ```
//!
//! Invariants:
//! - **200 means durable**: a request is answered only after its record is
//!   synced to disk (`writer`), so `kill -9` at any moment loses no
//!   acknowledged event.
//! - **The inbox position commits with the rows** (`sync`): after a crash
//!   the warehouse's checkpoint names exactly the records it holds, so no
//!   record lands twice or is skipped; message-id dedupe guards client
//!   retries on top of that.
//! - **Writes go through the sync thread only**: DuckDB is synchronous and
//!   single-writer, so rows, engine state and privacy requests
//!   (`/admin/regulations`, sent as a control message) are all handled
//!   there; the async side never blocks on it. Admin queries
//!   (`/admin/query`, [`query`]) do not wait for the sync thread: they run on
//!   a read-only connection of their own ([`ps_warehouse::ReadOnly`], kept in
//!   [`state::Shared`]) on a blocking task.
//!
//! The HTTP side is an `axum::Router` built in one place, `routes`: the
//! Tracking API (`tracking`, its bodies decoded under the limits and its
//! requests checked by `ps-http`), the settings document analytics.js loads first (`settings`),
//! `/health` and `/metrics` (`status`), all open to browsers of any origin
//! (`cors`), and the admin API (`admin`), which is not. Handlers share
//! `edge::AppState` and answer refusals as JSON `{"code", "message"}`, the
//! router's own 404 and 405 included.
//!
//! Main types: [`Server`] (started from [`Options`]: [`ServerConfig`], the
//! space and the warehouse URL) wires it all up and, on shutdown, returns a
//! [`SyncSummary`]; [`state::Shared`] holds the live counters and
//! [`metrics::Metrics`]; [`inbox`] is the on-disk log between the edge and the
//! sync; [`client`] is a minimal HTTP/1.1 client used by `profiles-sync
//! query`, the benchmark and the tests.

#![warn(missing_docs, unreachable_pub)]

mod admin;
pub mod client;
pub mod config;
mod control;
mod cors;
mod edge;
mod error;
mod http;
pub mod metrics;
pub mod profile_api;
mod publish;
pub mod query;
pub mod resolve;
mod routes;
mod settings;
pub mod state;
mod status;
mod sync;
mod tracking;
mod writer;

pub use config::{Limits, ProfileApiConfig, ServerConfig};
pub use error::{IngestError, Result};
pub use ps_inbox as inbox;
pub use query::QueryResult;
pub use sync::SyncSummary;

use crate::control::Control;
use crate::inbox::{Position, Reader, Segment};
use crate::state::Shared;
use crate::sync::{SyncLoop, CHECKPOINT_KEY};
use crate::writer::Append;
use ps_pipeline::{Space, SpaceConfig};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What `serve` needs: server settings, the space, and the warehouse URL.
#[derive(Debug, Clone)]
pub struct Options {
    /// Listening address, limits, inbox and sync settings.
    pub server: ServerConfig,
    /// The space: its sources and identity resolution settings.
    pub space: SpaceConfig,
    /// Where the rows land (`ps_warehouse::open` URL).
    pub warehouse_url: String,
    /// `[log]`: publish events to the replicated log instead of the local
    /// inbox. The server is then stateless: no inbox, no sync thread, no
    /// warehouse (`profiles-sync resolve` lands the log); the admin and
    /// Profile APIs answer 503.
    pub log: Option<ps_log::LogConfig>,
}

/// How long a stop waits for in-flight requests before closing anyway.
const HTTP_DRAIN: Duration = Duration::from_secs(10);

/// A running server: HTTP listener, inbox writer thread and sync thread.
/// Stop it with [`Server::shutdown`] (dropping it stops it too).
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    http: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    stop_http: Option<tokio::sync::oneshot::Sender<()>>,
    writer_tx: mpsc::Sender<Append>,
    control: mpsc::Sender<Control>,
    writer: Option<JoinHandle<()>>,
    sync: Option<JoinHandle<SyncSummary>>,
    /// SIGTERM and SIGINT once [`Server::watch_signals`] took them over.
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// Opens the warehouse and the space, recovers the inbox (truncating a
    /// torn tail, skipping what the warehouse already landed), starts the
    /// writer and sync threads, and listens. Returns once requests can be
    /// served; events recovered from the inbox land in the first sync.
    pub fn start(opts: Options) -> Result<Server> {
        opts.server.validate()?;
        if let Some(log) = opts.log.clone() {
            return Server::start_on_log(opts, log);
        }
        let cfg = opts.server.clone();
        // The warehouse first: its checkpoint decides where the inbox resumes
        // and which segment ids are taken, and a warehouse in use by another
        // process (DuckDB's file lock) stops us before we touch the inbox.
        let mut wh = ps_warehouse::open(&opts.warehouse_url)?;
        let space = Space::open(wh.as_mut(), opts.space.clone())?;
        let reader = wh.read_only()?;
        let inbox_dir = cfg.data_dir.join("inbox");
        let rec = inbox::recover(&inbox_dir, space.checkpoint(CHECKPOINT_KEY))?;
        if rec.pending_events > 0 || rec.truncated_bytes > 0 {
            tracing::info!(
                events = rec.pending_events,
                records = rec.pending_records,
                truncated_bytes = rec.truncated_bytes,
                "recovered the inbox; un-landed events land in the first sync"
            );
        }
        let segment = Segment::create(&inbox_dir, rec.next_segment)?;
        let shared = Arc::new(Shared::new(
            Position {
                segment: segment.id,
                offset: 0,
            },
            rec.pending_events,
            rec.pending_bytes,
            cfg.sync_trigger_bytes,
        ));
        shared.set_reader(reader);
        let (writer_tx, writer_rx) = mpsc::channel::<Append>();
        let (control, control_rx) = mpsc::channel::<Control>();
        let writer = {
            let (dir, shared, control) = (inbox_dir.clone(), shared.clone(), control.clone());
            let seg_bytes = cfg.segment_bytes;
            std::thread::Builder::new()
                .name("ps-inbox-writer".into())
                .spawn(move || writer::run(dir, segment, seg_bytes, writer_rx, shared, control))
                .map_err(|e| IngestError::Runtime(format!("cannot start the inbox writer: {e}")))?
        };
        let sync_loop = SyncLoop {
            url: opts.warehouse_url.clone(),
            space_cfg: opts.space.clone(),
            open: Some((wh, space)),
            reader: Reader::new(&inbox_dir, rec.start),
            inbox_id: rec.inbox_id.clone(),
            first_kept: rec.start.segment,
            shared: shared.clone(),
            interval: cfg.sync_interval,
            query_timeout: cfg.query.timeout,
            max_events: cfg.sync_max_events,
            summary: SyncSummary::default(),
            next_tick: None,
        };
        let sync = std::thread::Builder::new()
            .name("ps-sync".into())
            .spawn(move || sync_loop.run(control_rx))
            .map_err(|e| IngestError::Runtime(format!("cannot start the sync thread: {e}")))?;
        let server = Server {
            addr: cfg.listen,
            shared,
            runtime: None,
            http: None,
            stop_http: None,
            writer_tx,
            control,
            writer: Some(writer),
            sync: Some(sync),
            signals: None,
        };
        // From here on a failure must still stop the threads: `server` does
        // that when dropped.
        server.listen(&opts, runtime()?, None)
    }

    /// [`Server::start`] with `[log]`: connects to the log (its stream and
    /// lease bucket are made if missing) and listens; nothing local.
    fn start_on_log(opts: Options, log: ps_log::LogConfig) -> Result<Server> {
        let rt = runtime()?;
        let js = rt
            .block_on(ps_log::JetStream::connect(&log))
            .map_err(|e| IngestError::Runtime(format!("cannot use the event log: {e}")))?;
        let shared = Arc::new(Shared::new(
            Position {
                segment: 0,
                offset: 0,
            },
            0,
            0,
            opts.server.sync_trigger_bytes,
        ));
        // Nothing receives these: the handlers publish to the log, and the
        // privacy requests that would go to a sync thread are refused.
        let (writer_tx, _) = mpsc::channel::<Append>();
        let (control, _) = mpsc::channel::<Control>();
        let server = Server {
            addr: opts.server.listen,
            shared,
            runtime: None,
            http: None,
            stop_http: None,
            writer_tx,
            control,
            writer: None,
            sync: None,
            signals: None,
        };
        let log: Arc<dyn ps_log::EventLog> = Arc::new(js);
        server.listen(
            &opts,
            rt,
            Some((
                log,
                opts.log
                    .as_ref()
                    .map_or(Duration::from_secs(5), |l| l.ack_timeout),
            )),
        )
    }

    /// Binds the listener and serves the router on `runtime`.
    fn listen(
        mut self,
        opts: &Options,
        runtime: tokio::runtime::Runtime,
        log: Option<(Arc<dyn ps_log::EventLog>, Duration)>,
    ) -> Result<Server> {
        let cfg = opts.server.clone();
        let std_listener =
            std::net::TcpListener::bind(cfg.listen).map_err(|e| IngestError::Bind {
                addr: cfg.listen,
                source: e,
            })?;
        self.addr = std_listener.local_addr().map_err(|e| IngestError::Bind {
            addr: cfg.listen,
            source: e,
        })?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| IngestError::Bind {
                addr: cfg.listen,
                source: e,
            })?;
        let sources = opts
            .space
            .sources
            .iter()
            .map(|s| (s.write_key.clone(), s.id.clone()))
            .collect();
        let (log, log_ack_timeout) = match log {
            Some((l, t)) => (Some(l), t),
            None => (None, Duration::ZERO),
        };
        let state = Arc::new(edge::AppState {
            cfg: cfg.clone(),
            sources,
            shared: self.shared.clone(),
            writer: self.writer_tx.clone(),
            control: self.control.clone(),
            log,
            log_ack_timeout,
            query_slots: tokio::sync::Semaphore::new(edge::QUERY_SLOTS),
            space: opts.space.space.clone(),
            class_keys: edge::ClassKeys::of(opts.space.compute.as_deref()),
            profile_rate: profile_api::rate::RateLimit::new(cfg.profile_api.rate_limit),
            profile_slots: tokio::sync::Semaphore::new(edge::PROFILE_SLOTS),
        });
        let app = routes::router(state);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).map_err(|e| IngestError::Bind {
                addr: cfg.listen,
                source: e,
            })?
        };
        let http = runtime.spawn(async move {
            http::serve(listener, app, &cfg, async {
                let _ = stop_rx.await;
            })
            .await;
            Ok(())
        });
        self.runtime = Some(runtime);
        self.http = Some(http);
        self.stop_http = Some(stop_tx);
        tracing::info!(addr = %self.addr, "listening");
        Ok(self)
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Live counters (inbox depth, metrics).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Takes over SIGTERM and SIGINT (Ctrl-C) for [`Server::wait_for_signal`].
    /// Call it right after start: from then on the signals no longer kill the
    /// process, so one that arrives early is not lost. A program embedding the
    /// server without calling it keeps its own signal handling.
    pub fn watch_signals(&mut self) -> Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        if self.signals.is_some() {
            return Ok(());
        }
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| IngestError::Runtime("the server is stopped".into()))?;
        let _guard = rt.enter();
        let sig =
            |k| signal(k).map_err(|e| IngestError::Runtime(format!("cannot watch signals: {e}")));
        self.signals = Some((sig(SignalKind::terminate())?, sig(SignalKind::interrupt())?));
        Ok(())
    }

    /// Blocks until SIGTERM or Ctrl-C (SIGINT).
    pub fn wait_for_signal(&mut self) -> Result<()> {
        self.watch_signals()?;
        let (Some(rt), Some((term, int))) = (self.runtime.as_ref(), self.signals.as_mut()) else {
            return Ok(());
        };
        rt.block_on(async {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = int.recv() => tracing::info!("SIGINT"),
            }
        });
        Ok(())
    }

    /// Stops cleanly: stops accepting, lets in-flight requests finish, makes
    /// the inbox durable, lands everything in it, and joins the threads.
    pub fn shutdown(mut self) -> SyncSummary {
        self.stop()
    }

    fn stop(&mut self) -> SyncSummary {
        if let (Some(rt), Some(stop)) = (self.runtime.as_ref(), self.stop_http.take()) {
            let _ = stop.send(());
            if let Some(h) = self.http.take() {
                let done = rt.block_on(async { tokio::time::timeout(HTTP_DRAIN, h).await });
                if done.is_err() {
                    tracing::warn!("in-flight requests did not finish in time; closing them");
                }
            }
        }
        self.signals = None;
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
        // Every request that got a 200 is already synced; the writer finishes
        // what is queued (answering nobody, as the connections are closed).
        let _ = self.writer_tx.send(Append::Close);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        let _ = self.control.send(Control::Shutdown);
        let summary = self
            .sync
            .take()
            .and_then(|s| s.join().ok())
            .unwrap_or_default();
        tracing::info!(
            syncs = summary.syncs,
            landed = summary.events_landed,
            left = summary.events_left,
            "stopped"
        );
        summary
    }
}

/// The async runtime the HTTP side (and the log's connection) runs on.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ps-http")
        .enable_all()
        .build()
        .map_err(|e| IngestError::Runtime(format!("cannot start the async runtime: {e}")))
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.sync.is_some() || self.runtime.is_some() {
            self.stop();
        }
    }
}
