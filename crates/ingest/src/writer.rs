//! The inbox writer: one thread that appends records and group-commits them.
//!
//! Request handlers hand over encoded records through a channel and wait for
//! the answer. The thread takes the first queued append, then every other one
//! already queued, writes them all and calls `fdatasync` once; only then does
//! it answer each of them. While that `fsync` runs, new requests queue up and
//! become the next group, so one sync serves every request that arrived during
//! the previous one: durability costs one disk flush per group, not per
//! request, and throughput grows with concurrency instead of collapsing.

use crate::control::Control;
use crate::inbox::{Position, Segment};
use crate::state::Shared;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

/// Where a request waits for its record to be synced.
pub(crate) type Done = tokio::sync::oneshot::Sender<Result<(), String>>;

/// A request to make a record durable.
#[derive(Debug)]
pub(crate) enum Append {
    Record {
        /// The framed record ([`crate::inbox::Record::encode`]).
        bytes: Vec<u8>,
        events: u64,
        /// Answered once the bytes are synced (or could not be).
        done: Done,
    },
    /// Stop after everything queued before this.
    Close,
}

/// Most bytes written in one group: bounds the latency of the group's
/// requests, and the memory held while syncing.
const MAX_GROUP_BYTES: usize = 16 << 20;

/// What became of a group.
enum Written {
    /// On disk and synced: acknowledge it.
    Synced,
    /// Not in the file at all (a full disk): refuse it, carry on.
    Refused(String),
    /// Possibly half-written or not durable: refuse it and stop writing.
    Failed(String),
}

fn write_group(
    dir: &Path,
    segment: &mut Segment,
    segment_bytes: u64,
    group: &[(Vec<u8>, u64, Done)],
    shared: &Shared,
) -> Written {
    if segment.len >= segment_bytes {
        // Everything in the old segment is already synced: each group is
        // synced before its requests are answered. A segment that cannot be
        // created leaves the old one in place, untouched.
        match Segment::create(dir, segment.id + 1) {
            Ok(s) => *segment = s,
            Err(e) => return Written::Refused(e.to_string()),
        }
        shared.set_durable(Position {
            segment: segment.id,
            offset: 0,
        });
    }
    let parts: Vec<&[u8]> = group.iter().map(|(b, _, _)| b.as_slice()).collect();
    if let Err(e) = segment.append(&parts) {
        return if e.cut_back {
            Written::Refused(e.error.to_string())
        } else {
            Written::Failed(e.error.to_string())
        };
    }
    match segment.sync() {
        Ok(()) => Written::Synced,
        Err(e) => Written::Failed(e.to_string()),
    }
}

/// Runs the writer until [`Append::Close`] (or every sender is gone).
pub(crate) fn run(
    dir: PathBuf,
    mut segment: Segment,
    segment_bytes: u64,
    rx: Receiver<Append>,
    shared: Arc<Shared>,
    control: Sender<Control>,
) {
    let mut group: Vec<(Vec<u8>, u64, Done)> = Vec::new();
    let mut closing = false;
    while !closing {
        group.clear();
        match rx.recv() {
            Ok(Append::Record {
                bytes,
                events,
                done,
            }) => group.push((bytes, events, done)),
            Ok(Append::Close) | Err(_) => break,
        }
        let mut size = group[0].0.len();
        while size < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(Append::Record {
                    bytes,
                    events,
                    done,
                }) => {
                    size += bytes.len();
                    group.push((bytes, events, done));
                }
                Ok(Append::Close) => {
                    closing = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if let Some(why) = shared.writer_failed() {
            for (_, _, done) in group.drain(..) {
                let _ = done.send(Err(why.clone()));
            }
            continue;
        }
        let t0 = Instant::now();
        match write_group(&dir, &mut segment, segment_bytes, &group, &shared) {
            Written::Synced => {
                if shared.set_writer_stall(None) {
                    tracing::info!("the inbox can write again");
                }
                let events: u64 = group.iter().map(|(_, n, _)| *n).sum();
                let bytes = group.iter().map(|(b, _, _)| b.len() as u64).sum::<u64>();
                shared.inbox_events.fetch_add(events, Ordering::SeqCst);
                let pending = shared.inbox_bytes.fetch_add(bytes, Ordering::SeqCst) + bytes;
                shared.set_durable(Position {
                    segment: segment.id,
                    offset: segment.len,
                });
                shared
                    .metrics
                    .record_group(group.len() as u64, t0.elapsed());
                for (_, _, done) in group.drain(..) {
                    let _ = done.send(Ok(()));
                }
                // Past the size threshold, the sync loop starts early instead
                // of waiting for its interval.
                if pending >= shared.sync_trigger_bytes
                    && !shared.wake_sent.swap(true, Ordering::SeqCst)
                {
                    let _ = control.send(Control::Wake);
                }
            }
            Written::Refused(why) => {
                // Nothing of the group reached the file: its requests are
                // refused (503, retry later) and the next group tries again,
                // so the inbox recovers by itself when space returns.
                if shared.set_writer_stall(Some(why.clone())) {
                    tracing::warn!(error = %why, "the inbox cannot write; refusing events until it can");
                }
                for (_, _, done) in group.drain(..) {
                    let _ = done.send(Err(why.clone()));
                }
            }
            Written::Failed(why) => {
                // A failed fsync leaves the page cache in an unknown state
                // (Linux may drop the dirty pages), and a write that could
                // not be cut back leaves a partial frame: nothing more is
                // acknowledged until a restart re-reads the inbox from disk.
                tracing::error!(error = %why, "inbox write failed; refusing new events until restart");
                shared.fail_writer(why.clone());
                for (_, _, done) in group.drain(..) {
                    let _ = done.send(Err(why.clone()));
                }
            }
        }
    }
    // Anything still queued after Close is answered with an error, not left
    // hanging.
    while let Ok(a) = rx.try_recv() {
        if let Append::Record { done, .. } = a {
            let _ = done.send(Err("the server is shutting down".into()));
        }
    }
}
