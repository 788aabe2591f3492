//! The sync loop's reader: records from the landed position up to the
//! durable end.

use crate::error::{Error, Result};
use crate::frame::{read_frame, Frame};
use crate::record::Record;
use crate::segment::segment_path;
use crate::Position;
use std::fs::{self, File};
use std::io::{self, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Reads records from the landed position up to the durable end, for the
/// sync loop. Its position only moves on when told ([`Reader::seek`]), so a
/// failed commit re-reads the same records.
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    pos: Position,
    file: Option<(u64, BufReader<File>, u64)>,
}

/// Records read in one go, and the position after them.
#[derive(Debug, Default)]
pub struct ReadBatch {
    /// The records, in inbox order.
    pub records: Vec<Record>,
    /// Their entries.
    pub events: u64,
    /// Their framed bytes.
    pub bytes: u64,
    /// The position after the last of them.
    pub end: Position,
}

impl Reader {
    /// A reader of the inbox in `dir`, starting at `pos`.
    pub fn new(dir: &Path, pos: Position) -> Reader {
        Reader {
            dir: dir.to_owned(),
            pos,
            file: None,
        }
    }

    /// Where the next [`Reader::read`] starts.
    pub fn position(&self) -> Position {
        self.pos
    }

    /// Moves the read position (after a commit, or back after a failed one).
    /// The open file is kept: [`Reader::read`] reopens it only when it is not
    /// already at the position.
    pub fn seek(&mut self, pos: Position) {
        self.pos = pos;
    }

    /// Reads whole records after the current position, stopping at `durable`
    /// (the end the writer has synced) or once `max_events` events or
    /// `max_bytes` bytes have been read. Does not move the position. A
    /// frame that is not good before `durable` is [`Error::Corrupt`]: the
    /// writer synced it whole.
    pub fn read(
        &mut self,
        durable: Position,
        max_events: u64,
        max_bytes: u64,
    ) -> Result<ReadBatch> {
        let mut out = ReadBatch {
            end: self.pos,
            ..ReadBatch::default()
        };
        while out.end < durable && out.events < max_events && out.bytes < max_bytes {
            let seg = out.end.segment;
            let path = segment_path(&self.dir, seg);
            let reopen =
                !matches!(&self.file, Some((s, _, at)) if *s == seg && *at == out.end.offset);
            if reopen {
                match File::open(&path) {
                    Ok(mut f) => {
                        f.seek(SeekFrom::Start(out.end.offset))
                            .map_err(|e| Error::io(&path, e))?;
                        self.file =
                            Some((seg, BufReader::with_capacity(1 << 20, f), out.end.offset));
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound && seg < durable.segment => {
                        // Segment ids are contiguous, but an empty segment
                        // may have been removed; skip to the next one.
                        out.end = Position {
                            segment: seg + 1,
                            offset: 0,
                        };
                        continue;
                    }
                    Err(e) => return Err(Error::io(&path, e)),
                }
            }
            let (_, r, at) = self.file.as_mut().expect("opened above");
            let limit = if seg == durable.segment {
                durable.offset - out.end.offset
            } else {
                let len = r
                    .get_ref()
                    .metadata()
                    .map_err(|e| Error::io(&path, e))?
                    .len();
                len.saturating_sub(out.end.offset)
            };
            match read_frame(r, limit).map_err(|e| Error::io(&path, e))? {
                Frame::Good(rec, size) => {
                    *at += size;
                    out.end.offset += size;
                    out.bytes += size;
                    out.events += rec.entries.len() as u64;
                    out.records.push(*rec);
                }
                Frame::End => {
                    // End of a finished segment: the writer moved on.
                    out.end = Position {
                        segment: seg + 1,
                        offset: 0,
                    };
                    self.file = None;
                }
                Frame::Torn(why) => {
                    return Err(Error::Corrupt {
                        path,
                        message: format!(
                            "{why} at offset {} inside the synced part of the inbox",
                            out.end.offset
                        ),
                    })
                }
            }
        }
        Ok(out)
    }

    /// Deletes segments wholly before `pos`: the warehouse has landed them.
    /// `first_kept` is the first segment not yet deleted; it moves on with
    /// each deletion.
    pub fn delete_landed(&self, pos: Position, first_kept: &mut u64) -> Result<()> {
        while *first_kept < pos.segment {
            let path = segment_path(&self.dir, *first_kept);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
            *first_kept += 1;
        }
        Ok(())
    }
}
