//! # ps-log: the replicated event log of a multi-node deployment
//!
//! ```text
//! serve ×N ─publish(space, records)─▶ EventLog ─reader(space, after)─▶ resolver (lease holder)
//!                                        └── lease(space): TTL, renew, revision (the fencing token)
//! ```
//!
//! [`EventLog`] is everything the rest of profiles-sync knows about the log:
//! publishing a space's events with per-event dedupe ids (answered once the
//! log has stored every one of them), reading a space's events in the log's
//! order from a sequence, and a per-space lease. It is small on purpose, so
//! another backend (Kafka, a partition keyed by space) can be added without
//! touching serve or the resolver. [`JetStream`] is the backend here: one
//! stream, a subject per space, and the leases in a key-value bucket.
//!
//! This is the only crate that depends on `async-nats`; it knows nothing of
//! events, warehouses or DuckDB: records are opaque bytes.

#![warn(missing_docs, unreachable_pub)]

mod error;
mod jetstream;
mod lease;

pub use bytes::Bytes;
pub use error::{Error, Result};
pub use jetstream::{JetStream, LEASES, STREAM};
pub use lease::Lease;
pub use ps_config::LogConfig;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What the log's operations return: a boxed future, so the log can be a
/// trait object (`Arc<dyn EventLog>` in serve's shared state).
pub type LogFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// One event to publish: its dedupe id within the space (the `messageId`)
/// and its bytes.
#[derive(Debug, Clone)]
pub struct Record {
    /// Unique within the space; a record published again with the same id
    /// inside the log's duplicate window is stored once.
    pub id: String,
    /// The event as the resolver will read it back.
    pub body: bytes::Bytes,
}

/// One stored event, as read back.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its position in the log; rises in the log's order, with gaps (other
    /// spaces' events share the sequence).
    pub seq: u64,
    /// The bytes it was published with.
    pub body: bytes::Bytes,
}

/// A replicated log of events, ordered per space, with a lease per space.
pub trait EventLog: Send + Sync + std::fmt::Debug {
    /// Stores `records` on the space's part of the log and returns once the
    /// log acknowledged every one (for JetStream: stored by a majority of
    /// the stream's replicas). An error means some may be stored and some
    /// not: the caller retries with the same ids and the duplicates are
    /// dropped by the log (within its window) and by the resolver's dedupe.
    fn publish<'a>(&'a self, space: &'a str, records: Vec<Record>) -> LogFuture<'a, ()>;

    /// A reader of the space's events whose sequence is above `after`, in
    /// the log's order.
    fn reader<'a>(&'a self, space: &'a str, after: u64) -> LogFuture<'a, Box<dyn LogReader>>;

    /// The sequence of the space's newest message, 0 when it has none. A
    /// reader that has delivered less while it gives nothing has stalled
    /// (its consumer was on a node that died, say).
    fn last_seq<'a>(&'a self, space: &'a str) -> LogFuture<'a, u64>;

    /// Takes the space's lease for `holder` if nobody holds it: `None` when
    /// someone does. The lease lapses unless renewed within
    /// [`EventLog::lease_ttl`].
    fn acquire<'a>(&'a self, space: &'a str, holder: &'a str) -> LogFuture<'a, Option<Lease>>;

    /// Extends the lease; [`Error::LeaseLost`] when it lapsed or someone
    /// else holds it now.
    fn renew<'a>(&'a self, lease: &'a mut Lease) -> LogFuture<'a, ()>;

    /// Gives the lease up (best effort: it lapses anyway).
    fn release<'a>(&'a self, lease: &'a Lease) -> LogFuture<'a, ()>;

    /// How long a lease lasts without renewal.
    fn lease_ttl(&self) -> Duration;
}

/// Reads one space's events in order ([`EventLog::reader`]).
pub trait LogReader: Send + std::fmt::Debug {
    /// Up to `max` next events: waits up to `wait` for the first one, then
    /// takes what follows without waiting long. Empty when nothing came.
    fn next(&mut self, max: usize, wait: Duration) -> LogFuture<'_, Vec<Entry>>;
}
