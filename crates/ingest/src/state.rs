//! State shared by the HTTP handlers, the inbox writer and the sync loop.

use crate::inbox::Position;
use crate::metrics::Metrics;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Mutex;

/// Counters and positions every part of the server reads; each is written by
/// exactly one of them (noted per field), so no lock orders are needed.
#[derive(Debug)]
pub struct Shared {
    /// End of the synced part of the inbox (writer).
    durable: Mutex<Position>,
    /// Events and framed bytes written but not yet landed (writer adds, sync
    /// loop subtracts): the inbox depth for metrics and back-pressure.
    pub inbox_events: AtomicU64,
    pub inbox_bytes: AtomicU64,
    /// Pending bytes that start a sync before its interval.
    pub sync_trigger_bytes: u64,
    /// Whether a wake-up is already queued for the sync loop, so the writer
    /// sends one per sync rather than one per group.
    pub wake_sent: AtomicBool,
    /// Set when the writer cannot make data durable any more (writer).
    writer_error: Mutex<Option<String>>,
    /// Last sync failure, cleared by the next success (sync loop).
    sync_error: Mutex<Option<String>>,
    pub metrics: Metrics,
}

impl Shared {
    pub fn new(durable: Position, events: u64, bytes: u64, sync_trigger_bytes: u64) -> Shared {
        Shared {
            durable: Mutex::new(durable),
            inbox_events: AtomicU64::new(events),
            inbox_bytes: AtomicU64::new(bytes),
            sync_trigger_bytes,
            wake_sent: AtomicBool::new(false),
            writer_error: Mutex::new(None),
            sync_error: Mutex::new(None),
            metrics: Metrics::default(),
        }
    }

    pub fn durable(&self) -> Position {
        *self.durable.lock().expect("durable lock")
    }

    pub fn set_durable(&self, p: Position) {
        *self.durable.lock().expect("durable lock") = p;
    }

    pub fn writer_failed(&self) -> Option<String> {
        self.writer_error.lock().expect("writer error lock").clone()
    }

    pub fn fail_writer(&self, why: String) {
        *self.writer_error.lock().expect("writer error lock") = Some(why);
    }

    pub fn sync_failed(&self) -> Option<String> {
        self.sync_error.lock().expect("sync error lock").clone()
    }

    pub fn set_sync_error(&self, e: Option<String>) {
        *self.sync_error.lock().expect("sync error lock") = e;
    }
}
