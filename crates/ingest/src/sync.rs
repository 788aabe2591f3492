//! The sync loop: drains the inbox into the warehouse.
//!
//! Runs on its own std thread because the warehouse and the `Space` are
//! synchronous (DuckDB) and a commit can take a second: on a tokio worker it
//! would stall every connection that worker serves.
//!
//! Every `sync_interval`, or sooner when the inbox passes its size trigger,
//! it reads the records after its position, runs each event through
//! `Space::add` (validation, dedupe, identity, rows), records the position
//! after them with `Batch::set_checkpoint("inbox", …)` and commits: rows,
//! engine state, materialization and inbox position land in one warehouse
//! transaction, so after any crash the warehouse's checkpoint says exactly
//! which records are in it — none is landed twice or skipped. Only after the
//! commit does the position move and landed segments get deleted.
//!
//! A failed commit leaves the `Space` ahead of the warehouse (its engine and
//! dedupe set saw the batch), so the loop drops it, reopens warehouse and
//! space from scratch with backoff, and resumes from the warehouse's
//! checkpoint.

use crate::control::Control;
use crate::inbox::{Checkpoint, EntryKind, ReadBatch, Reader, Record};
use crate::state::Shared;
use ps_http::prepare::{prepare, unchanged};
use ps_pipeline::{
    Batch, Driver, EventSource, Landed, Origin, RegulationKind, Space, SpaceConfig, Subject,
};
use ps_spec::time::now_micros;
use ps_spec::{Arrival, Refusal};
use ps_warehouse::Warehouse;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The checkpoint key the inbox position is stored under.
pub(crate) const CHECKPOINT_KEY: &str = "inbox";

/// What the loop did over its life, reported at shutdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncSummary {
    /// Syncs that committed.
    pub syncs: u64,
    /// Events committed to the warehouse (accepted or rejected rows).
    pub events_landed: u64,
    /// Events read from the inbox.
    pub events_read: u64,
    /// Events still in the inbox at exit (they land at the next start).
    pub events_left: u64,
}

/// Longest wait between two attempts to reopen a failed warehouse.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Most inbox bytes read into one batch (memory bound besides the events cap).
const MAX_BATCH_BYTES: u64 = 256 << 20;

/// The loop's state; see the module docs.
pub(crate) struct SyncLoop {
    pub(crate) url: String,
    pub(crate) space_cfg: SpaceConfig,
    pub(crate) open: Option<(Box<dyn Warehouse>, Space)>,
    pub(crate) reader: Reader,
    pub(crate) inbox_id: String,
    /// Lowest segment id that may still exist (everything below is deleted).
    pub(crate) first_kept: u64,
    pub(crate) shared: Arc<Shared>,
    pub(crate) interval: Duration,
    /// How long a read-only query may run: how long to wait for running
    /// ones before the warehouse is closed.
    pub(crate) query_timeout: Duration,
    pub(crate) max_events: u64,
    pub(crate) summary: SyncSummary,
    /// When windows and relative dates are next re-evaluated with the wall
    /// clock (`[compute] tick`); `None` until the space is open.
    pub(crate) next_tick: Option<Instant>,
}

impl std::fmt::Debug for SyncLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncLoop")
            .field("url", &self.url)
            .field("reader", &self.reader)
            .finish()
    }
}

impl SyncLoop {
    /// Runs until [`Control::Shutdown`] (or every sender is gone).
    pub(crate) fn run(mut self, rx: Receiver<Control>) -> SyncSummary {
        let mut next = Instant::now();
        let mut backoff = Duration::from_millis(100);
        let mut retry_at: Option<Instant> = None;
        loop {
            let deadline = retry_at.unwrap_or(next);
            let wait = deadline.saturating_duration_since(Instant::now());
            // A zero wait still looks at the channel, so a shutdown is seen;
            // but a steady stream of queries must not starve the sync: once
            // the deadline has passed, the sync runs after the one query.
            match rx.recv_timeout(wait) {
                Ok(c @ (Control::Regulate { .. } | Control::Regulations { .. })) => {
                    self.answer(c);
                    if Instant::now() < deadline {
                        continue;
                    }
                }
                Ok(Control::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Control::Wake) => {
                    self.shared.wake_sent.store(false, Ordering::SeqCst);
                    if retry_at.is_some_and(|r| Instant::now() < r) {
                        continue;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= next {
                next = Instant::now() + self.interval;
            }
            // Land what was durable when this round began, in batches of at
            // most `sync_max_events`; events arriving meanwhile wait for the
            // next round, so under steady load a sync lands about one
            // interval's worth instead of chasing every new request with a
            // tiny transaction. A query or a shutdown waits at most one batch.
            let target = self.shared.durable();
            loop {
                match self.sync_once() {
                    Ok(true) => {
                        backoff = Duration::from_millis(100);
                        retry_at = None;
                        if self.reader.position() >= target {
                            break;
                        }
                        match rx.try_recv() {
                            Ok(c @ (Control::Regulate { .. } | Control::Regulations { .. })) => {
                                self.answer(c)
                            }
                            Ok(Control::Shutdown) => return self.drain(),
                            Ok(Control::Wake) => {
                                self.shared.wake_sent.store(false, Ordering::SeqCst)
                            }
                            Err(_) => {}
                        }
                    }
                    Ok(false) => {
                        retry_at = None;
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, retry_in = ?backoff, "sync failed; the events stay in the inbox");
                        self.shared.metrics.sync_failed();
                        self.shared.set_sync_error(Some(e));
                        retry_at = Some(Instant::now() + backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        break;
                    }
                }
            }
        }
        self.drain()
    }

    /// Lands whatever is left, for a clean stop. A warehouse that keeps
    /// failing does not hold the stop up for long: the inbox keeps the
    /// events, and they land at the next start.
    fn drain(mut self) -> SyncSummary {
        let mut failures = 0;
        while self.reader.position() < self.shared.durable() {
            match self.sync_once() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = %e, "sync failed while stopping");
                    if failures >= 3 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200 * failures));
                }
            }
        }
        self.summary.events_left = self.shared.inbox_events.load(Ordering::SeqCst);
        if self.summary.events_left > 0 {
            tracing::warn!(
                events = self.summary.events_left,
                "stopping with events in the inbox; they land at the next start"
            );
        }
        self.summary
    }

    /// Answers an admin request on the warehouse connection.
    fn answer(&mut self, c: Control) {
        match c {
            Control::Regulate {
                kind,
                subject,
                reply,
            } => {
                let _ = reply.send(self.regulate(kind, &subject));
            }
            Control::Regulations { reply } => {
                let _ = reply.send(self.regulations());
            }
            Control::Wake | Control::Shutdown => unreachable!("not an admin request"),
        }
    }

    fn regulate(
        &mut self,
        kind: RegulationKind,
        subject: &Subject,
    ) -> Result<serde_json::Value, String> {
        if self.open.is_none() {
            self.reopen()?;
        }
        let (wh, space) = self.open.as_mut().expect("opened above");
        match space.regulate(wh.as_mut(), kind, subject, now_micros()) {
            Ok(r) => Ok(r.to_json()),
            Err(e) => {
                // The engine may be ahead of the warehouse: start afresh.
                self.close();
                Err(e.to_string())
            }
        }
    }

    fn regulations(&mut self) -> Result<serde_json::Value, String> {
        if self.open.is_none() {
            self.reopen()?;
        }
        let (wh, space) = self.open.as_mut().expect("opened above");
        let list = space.regulations(wh.as_mut()).map_err(|e| e.to_string())?;
        Ok(serde_json::Value::Array(
            list.iter().map(|r| r.to_json()).collect(),
        ))
    }

    /// Drops the warehouse and the space (the space's memory may be ahead
    /// of the warehouse), after the queries running on it.
    fn close(&mut self) {
        self.shared
            .withdraw_reader(self.query_timeout + Duration::from_secs(1));
        self.open = None;
    }

    /// Opens warehouse and space again and trusts the warehouse's checkpoint
    /// for where to read: if a commit that reported failure did land, its
    /// records are not landed twice.
    fn reopen(&mut self) -> Result<(), String> {
        self.close();
        let mut wh = ps_warehouse::open(&self.url).map_err(|e| e.to_string())?;
        let space = Space::open(wh.as_mut(), self.space_cfg.clone()).map_err(|e| e.to_string())?;
        self.shared
            .set_reader(wh.read_only().map_err(|e| e.to_string())?);
        let cp = space.checkpoint(CHECKPOINT_KEY).and_then(Checkpoint::parse);
        if let Some(cp) = cp.filter(|c| c.inbox_id == self.inbox_id) {
            let at = self.reader.position();
            if cp.position > at {
                // Count what that commit took, to keep the depth gauges true.
                let skipped = self
                    .reader
                    .read(cp.position, u64::MAX, u64::MAX)
                    .map_err(|e| e.to_string())?;
                self.shared
                    .inbox_events
                    .fetch_sub(skipped.events, Ordering::SeqCst);
                self.shared
                    .inbox_bytes
                    .fetch_sub(skipped.bytes, Ordering::SeqCst);
                tracing::warn!(from = %at, to = %cp.position, "a commit reported as failed had landed; moving on");
            }
            self.reader.seek(cp.position);
        }
        tracing::info!("warehouse reopened");
        self.open = Some((wh, space));
        Ok(())
    }

    /// Lands one batch of records. `Ok(false)` when there was nothing to do.
    fn sync_once(&mut self) -> Result<bool, String> {
        if self.open.is_none() {
            self.reopen()?;
        }
        let (wh, space) = self.open.as_mut().expect("opened above");
        if let Some(every) = space.compute_tick_every() {
            // Members drop out of windowed audiences as their events age,
            // with no new event: every tick re-evaluates the profiles whose
            // values can have changed since (the expiry index), and the
            // step below lands what changed.
            let now = Instant::now();
            match self.next_tick {
                Some(t) if now < t => {}
                Some(_) => {
                    space.compute_tick(now_micros());
                    self.next_tick = Some(now + every);
                }
                None => self.next_tick = Some(now + every),
            }
        }
        if space.has_sql_traits() {
            // Each `[[sql_traits]]` query runs once its `every` has passed
            // (failures are logged with the trait's key); the step below
            // lands the values that changed.
            space.run_sql_traits(wh.as_mut(), ps_spec::time::now_micros(), false);
        }
        let mut source = InboxSource {
            reader: &mut self.reader,
            inbox_id: &self.inbox_id,
            shared: &self.shared,
            first_kept: &mut self.first_kept,
            summary: &mut self.summary,
            read: None,
        };
        let batch_events = usize::try_from(self.max_events).unwrap_or(usize::MAX);
        let driver = Driver {
            batch_events,
            commit_events: batch_events,
        };
        let stepped = driver.step(wh.as_mut(), space, &mut source);
        match stepped {
            Ok(landed) => Ok(landed.is_some()),
            Err(e) => {
                // The space's memory may be ahead of the warehouse now.
                self.close();
                Err(e.to_string())
            }
        }
    }
}

/// The inbox as an [`EventSource`]: each batch is the records after the
/// landed position (up to the batch size and [`MAX_BATCH_BYTES`]), and its
/// checkpoint is the position after them; once it landed, the position
/// moves, landed segments are deleted and the depth gauges drop.
struct InboxSource<'a> {
    reader: &'a mut Reader,
    inbox_id: &'a str,
    shared: &'a Shared,
    first_kept: &'a mut u64,
    summary: &'a mut SyncSummary,
    /// The records of the batch being filled or landed, and when it began.
    read: Option<(ReadBatch, Instant)>,
}

impl EventSource for InboxSource<'_> {
    fn fill(
        &mut self,
        space: &mut Space,
        batch: &mut Batch,
        room: usize,
    ) -> ps_pipeline::Result<bool> {
        let durable = self.shared.durable();
        if self.reader.position() >= durable {
            return Ok(false);
        }
        let rb = self
            .reader
            .read(durable, room as u64, MAX_BATCH_BYTES)
            .map_err(|e| ps_pipeline::Error::Source(e.to_string()))?;
        if rb.end == self.reader.position() {
            return Ok(false);
        }
        let t0 = Instant::now();
        add_records(space, batch, &rb.records);
        let cp = Checkpoint {
            inbox_id: self.inbox_id.to_owned(),
            position: rb.end,
        };
        batch.set_checkpoint(CHECKPOINT_KEY, cp.to_string());
        self.read = Some((rb, t0));
        // More records may wait; the loop asks again after this batch.
        Ok(false)
    }

    fn landed(&mut self, landed: &Landed) -> ps_pipeline::Result<()> {
        let Some((rb, t0)) = self.read.take() else {
            return Ok(());
        };
        let stats = &landed.stats;
        let done = now_micros();
        let delays: Vec<(u64, u64)> = rb
            .records
            .iter()
            .map(|r| ((done - r.received_at).max(0) as u64, r.entries.len() as u64))
            .collect();
        let took = t0.elapsed();
        self.shared.metrics.sync_done(took, stats, &delays);
        self.shared
            .inbox_events
            .fetch_sub(rb.events, Ordering::SeqCst);
        self.shared
            .inbox_bytes
            .fetch_sub(rb.bytes, Ordering::SeqCst);
        self.shared.set_sync_error(None);
        self.reader.seek(rb.end);
        if let Err(e) = self.reader.delete_landed(rb.end, self.first_kept) {
            tracing::warn!(error = %e, "could not delete a landed inbox segment");
        }
        self.summary.syncs += 1;
        self.summary.events_read += stats.read;
        self.summary.events_landed += stats.landed;
        tracing::info!(
            events = stats.read, landed = stats.landed, duplicates = stats.duplicates,
            refused = stats.refused_total(), ms = took.as_millis() as u64, position = %rb.end,
            "synced"
        );
        Ok(())
    }
}

/// Runs every entry of the records through the space (the inbox's, and the
/// event log's in `profiles-sync resolve`).
pub(crate) fn add_records(space: &mut Space, batch: &mut Batch, records: &[Record]) {
    let mut place = String::new();
    for rec in records {
        // The batch's shared context, applied to each event as the edge did.
        let shared = match serde_json::from_slice::<serde_json::Value>(&rec.shared) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            _ => None,
        };
        let arrival = Arrival {
            received_at: Some(rec.received_at),
            batch_sent_at: rec.sent_at,
            load_time: 0,
        };
        for (i, e) in rec.entries.iter().enumerate() {
            place.clear();
            place.push_str(&rec.place);
            if rec.entries.len() > 1 {
                place.push_str(&format!(" #{i}"));
            }
            match e.kind {
                EntryKind::Payload => {
                    let origin = Origin {
                        place: &place,
                        default_source: None,
                        batch_write_key: rec.write_key.as_deref(),
                    };
                    if let Some(doc) = unchanged(
                        &e.bytes,
                        rec.kind.as_deref(),
                        shared.as_ref(),
                        rec.peer_ip.as_deref(),
                    ) {
                        let _ = space.add(batch, Ok(doc), Some(&e.bytes), origin, arrival);
                        continue;
                    }
                    let payload = serde_json::from_slice(&e.bytes)
                        .map(|mut j: serde_json::Value| {
                            if let serde_json::Value::Object(o) = &mut j {
                                prepare(
                                    o,
                                    rec.kind.as_deref(),
                                    shared.as_ref(),
                                    rec.peer_ip.as_deref(),
                                );
                            }
                            j
                        })
                        .map_err(|e| e.to_string());
                    let _ = space.add_json(batch, payload, Some(&e.bytes), origin, arrival);
                }
                EntryKind::TooLarge => {
                    let refusal = Refusal::TooLarge(e.bytes.len());
                    batch.stats.read += 1;
                    batch
                        .stats
                        .refuse(refusal.code(), place.clone(), refusal.to_string());
                    let cfg = space.config();
                    let source = rec
                        .write_key
                        .as_deref()
                        .and_then(|k| cfg.source_by_key(k))
                        .map(|i| cfg.sources[i].id.clone());
                    let text = String::from_utf8_lossy(&e.bytes).into_owned();
                    space.reject(batch, source, &place, &refusal, Some(text));
                }
            }
        }
    }
}
