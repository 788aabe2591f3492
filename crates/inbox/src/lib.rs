//! # ps-inbox: serve's durable inbox, without a warehouse
//!
//! An HTTP request is acknowledged only once its events are on disk, so the
//! inbox is the one place where "200" becomes a promise. Each request
//! becomes one [`Record`]; records are appended to the active segment file
//! (`inbox/00000000000000000007.seg`, a [`Segment`]) by a single writer
//! thread in `ps-ingest` that group-commits: it takes every append queued
//! while the previous `fsync` ran, writes them together and syncs once for
//! all of them.
//!
//! On disk a record is framed as `len: u32 LE | crc32(body): u32 LE | body`
//! ([`FRAME_HEADER`]), so a crash in the middle of a write leaves a tail
//! that fails its length or checksum check; [`recover`] truncates it.
//! Nothing after a torn record can have been acknowledged, because
//! acknowledgement waits for the `fsync` that covers every earlier byte.
//!
//! A [`Position`] (`segment:offset`) says how far the warehouse has landed.
//! The sync loop commits it in the same warehouse transaction as the rows
//! (as the checkpoint `inbox`), together with the inbox's id (a
//! [`Checkpoint`]), so a restart replays exactly the records after it; the
//! [`Reader`] reads them, and segments wholly before the landed position
//! are deleted.
//!
//! Everything that reads segment bytes goes through one function,
//! [`read_frame`] (and [`scan`], which repeats it to the end of a
//! segment), over any [`std::io::Read`]: recovery, the sync loop's reader,
//! and the fuzz target `inbox` (`crates/fuzz-targets`), which drives it on
//! bytes in memory. A frame or record it refuses always comes with a
//! reason ([`Torn`], [`DecodeError`]), no length or count read from the
//! bytes is trusted beyond the bytes there are, and text fields must be
//! UTF-8, so a record that decodes encodes back to the very same bytes.
//!
//! This crate knows nothing of events, HTTP or warehouses: `ps-ingest`
//! re-exports it as `ps_ingest::inbox`, and the fuzz build compiles it
//! without DuckDB.

#![warn(missing_docs, unreachable_pub)]

mod error;
mod frame;
mod reader;
mod record;
mod recover;
mod segment;
#[cfg(test)]
mod tests;

pub use error::{Error, Result};
pub use frame::{read_frame, scan, Frame, Scanned, Torn, FRAME_HEADER, MAX_RECORD};
pub use reader::{ReadBatch, Reader};
pub use record::{DecodeError, Entry, EntryKind, Record};
pub use recover::{recover, Recovered};
pub use segment::{list_segments, segment_path, sync_dir, AppendError, Segment};

use std::fmt;

/// A place in the inbox: a segment and a byte offset inside it, always on a
/// record boundary. Ordered by segment, then offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// The segment's id (its file name without `.seg`).
    pub segment: u64,
    /// Bytes from the start of the segment file.
    pub offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.segment, self.offset)
    }
}

/// The warehouse checkpoint: which inbox, and how far it has landed. Stored
/// as `<inbox id>/<segment>:<offset>` (its [`Display`](fmt::Display) form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The id written once when the inbox was created (`inbox.id`), so a
    /// checkpoint of another inbox is recognised as foreign.
    pub inbox_id: String,
    /// Everything before it has landed.
    pub position: Position,
}

impl Checkpoint {
    /// Reads the stored form back; `None` for anything else.
    pub fn parse(s: &str) -> Option<Checkpoint> {
        let (id, pos) = s.rsplit_once('/')?;
        let (seg, off) = pos.split_once(':')?;
        Some(Checkpoint {
            inbox_id: id.to_owned(),
            position: Position {
                segment: seg.parse().ok()?,
                offset: off.parse().ok()?,
            },
        })
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.inbox_id, self.position)
    }
}
