//! State shared by the HTTP handlers, the inbox writer and the sync loop.

use crate::inbox::Position;
use crate::metrics::Metrics;
use ps_warehouse::ReadOnly;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counters and positions every part of the server reads; each is written by
/// exactly one of them (noted per field), so no lock orders are needed.
#[derive(Debug)]
pub struct Shared {
    /// End of the synced part of the inbox (writer).
    durable: Mutex<Position>,
    /// Events and framed bytes written but not yet landed (writer adds, sync
    /// loop subtracts): the inbox depth for metrics and back-pressure.
    pub inbox_events: AtomicU64,
    pub(crate) inbox_bytes: AtomicU64,
    /// Pending bytes that start a sync before its interval.
    pub(crate) sync_trigger_bytes: u64,
    /// Whether a wake-up is already queued for the sync loop, so the writer
    /// sends one per sync rather than one per group.
    pub(crate) wake_sent: AtomicBool,
    /// Set when the writer cannot make data durable any more (writer).
    writer_error: Mutex<Option<String>>,
    /// Set while the writer's last group could not be written but nothing
    /// was damaged (a full disk): requests get 503 with `Retry-After` and
    /// the next group tries again (writer).
    writer_stall: Mutex<Option<String>>,
    /// Last sync failure, cleared by the next success (sync loop).
    sync_error: Mutex<Option<String>>,
    /// Read-only queries on the open warehouse (sync loop; `None` while it
    /// is closed).
    reader: Mutex<Option<Arc<ReadOnly>>>,
    /// Counters and histograms served at `/metrics`.
    pub metrics: Metrics,
}

impl Shared {
    pub(crate) fn new(
        durable: Position,
        events: u64,
        bytes: u64,
        sync_trigger_bytes: u64,
    ) -> Shared {
        Shared {
            durable: Mutex::new(durable),
            inbox_events: AtomicU64::new(events),
            inbox_bytes: AtomicU64::new(bytes),
            sync_trigger_bytes,
            wake_sent: AtomicBool::new(false),
            writer_error: Mutex::new(None),
            writer_stall: Mutex::new(None),
            sync_error: Mutex::new(None),
            reader: Mutex::new(None),
            metrics: Metrics::default(),
        }
    }

    pub(crate) fn durable(&self) -> Position {
        *self.durable.lock().expect("durable lock")
    }

    pub(crate) fn set_durable(&self, p: Position) {
        *self.durable.lock().expect("durable lock") = p;
    }

    pub(crate) fn writer_failed(&self) -> Option<String> {
        self.writer_error.lock().expect("writer error lock").clone()
    }

    pub(crate) fn fail_writer(&self, why: String) {
        *self.writer_error.lock().expect("writer error lock") = Some(why);
    }

    /// Why the last group could not be written, while that lasts.
    pub(crate) fn writer_stalled(&self) -> Option<String> {
        self.writer_stall.lock().expect("writer stall lock").clone()
    }

    /// Sets or clears the stall; true when this changes whether the writer
    /// is stalled (so the change is logged once, not per group).
    pub(crate) fn set_writer_stall(&self, why: Option<String>) -> bool {
        let mut s = self.writer_stall.lock().expect("writer stall lock");
        let changed = s.is_some() != why.is_some();
        *s = why;
        changed
    }

    pub(crate) fn sync_failed(&self) -> Option<String> {
        self.sync_error.lock().expect("sync error lock").clone()
    }

    pub(crate) fn set_sync_error(&self, e: Option<String>) {
        *self.sync_error.lock().expect("sync error lock") = e;
    }

    /// The read-only query handle, while the warehouse is open.
    pub(crate) fn reader(&self) -> Option<Arc<ReadOnly>> {
        self.reader.lock().expect("reader lock").clone()
    }

    /// Publishes the handle of a warehouse just opened.
    pub(crate) fn set_reader(&self, r: ReadOnly) {
        *self.reader.lock().expect("reader lock") = Some(Arc::new(r));
    }

    /// Withdraws the handle before the warehouse closes, waiting up to
    /// `wait` for queries still running on it: a DuckDB file must not be
    /// opened again in this process while a query keeps the old database.
    pub(crate) fn withdraw_reader(&self, wait: Duration) {
        let Some(r) = self.reader.lock().expect("reader lock").take() else {
            return;
        };
        let until = Instant::now() + wait;
        while Arc::strong_count(&r) > 1 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
