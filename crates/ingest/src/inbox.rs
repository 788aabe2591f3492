//! The durable inbox: append-only segment files between the HTTP edge and the
//! sync loop.
//!
//! An HTTP request is acknowledged only once its events are on disk, so the
//! inbox is the one place where "200" becomes a promise. Each request becomes
//! one `Record`; records are appended to the active segment file
//! (`inbox/00000000000000000007.seg`) by a single writer thread that
//! group-commits: it takes every append queued while the previous `fsync`
//! ran, writes them together and syncs once for all of them (see
//! `writer`).
//!
//! On disk a record is framed as `len: u32 LE | crc32(body): u32 LE | body`,
//! so a crash in the middle of a write leaves a tail that fails its length
//! or checksum check; `recover` truncates it. Nothing after a torn record
//! can have been acknowledged, because acknowledgement waits for the `fsync`
//! that covers every earlier byte.
//!
//! A `Position` (`segment:offset`) says how far the warehouse has landed.
//! It is committed in the same warehouse transaction as the rows
//! (`Batch::set_checkpoint("inbox", …)`), together with the inbox's id, so a
//! restart replays exactly the records after it. Segments wholly before the
//! landed position are deleted.

use crate::error::{IngestError, Result};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Largest body a frame may claim; anything bigger is a torn or corrupt
/// length (requests are limited to well under this).
const MAX_RECORD: u32 = 64 << 20;
/// Bytes before a record's body: length and checksum.
pub(crate) const FRAME_HEADER: u64 = 8;
/// Version byte of the record body layout.
const RECORD_VERSION: u8 = 1;
/// Suffix of segment files.
const SEGMENT_EXT: &str = "seg";
/// File holding the inbox's id, written once when the inbox is created.
const ID_FILE: &str = "inbox.id";

/// A place in the inbox: a segment and a byte offset inside it, always on a
/// record boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Position {
    pub(crate) segment: u64,
    pub(crate) offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.segment, self.offset)
    }
}

/// The warehouse checkpoint: which inbox, and how far it has landed. Stored as
/// `<inbox id>/<segment>:<offset>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub(crate) inbox_id: String,
    pub(crate) position: Position,
}

impl Checkpoint {
    pub(crate) fn parse(s: &str) -> Option<Checkpoint> {
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

/// How an entry of a record is to be treated by the sync loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A JSON payload for `Space::add`, valid or not: `Space::add` refuses an
    /// invalid one again with the same reason and stores it in
    /// `rejected_events`, so the edge and the warehouse cannot disagree.
    Payload = 0,
    /// A payload over the per-event size limit, kept verbatim for
    /// `rejected_events` (`Space::add` does not check sizes).
    TooLarge = 1,
}

/// One event of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) kind: EntryKind,
    pub(crate) bytes: Vec<u8>,
}

/// What one HTTP request stored: when it arrived, the batch-level fields that
/// apply to all its events, and the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// Server receive time (µs since the epoch): the events' `receivedAt`.
    pub(crate) received_at: i64,
    /// `sentAt` of the batch body, for clock-skew correction.
    pub(crate) sent_at: Option<i64>,
    /// The write key the request authenticated with.
    pub(crate) write_key: Option<String>,
    /// Where it came from (`http 127.0.0.1 /v1/batch`), for `rejected_events`.
    pub(crate) place: String,
    /// The call of a single-call endpoint (`track` for `/v1/track`): the
    /// `type` of an event that has none.
    pub(crate) kind: Option<String>,
    /// The client's address: `context.ip` of client-library events.
    pub(crate) peer_ip: Option<String>,
    /// The batch's top-level `context` and `integrations` as a JSON object
    /// (`{"context": …}`), merged into each event; empty when there are none.
    pub(crate) shared: Vec<u8>,
    /// The events as the client sent them (see [`ps_http::prepare::prepare`] for
    /// what the sync loop adds before landing them).
    pub(crate) entries: Vec<Entry>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(b.len() as u16).to_le_bytes());
    out.extend_from_slice(b);
}

impl Record {
    /// The framed bytes of the record, ready to append.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .entries
            .iter()
            .map(|e| e.bytes.len() + 5)
            .sum::<usize>()
            + 96
            + self.place.len()
            + self.shared.len();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&[0; FRAME_HEADER as usize]);
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.received_at.to_le_bytes());
        out.extend_from_slice(&self.sent_at.unwrap_or(i64::MIN).to_le_bytes());
        put_str(&mut out, self.write_key.as_deref().unwrap_or(""));
        put_str(&mut out, &self.place);
        put_str(&mut out, self.kind.as_deref().unwrap_or(""));
        put_str(&mut out, self.peer_ip.as_deref().unwrap_or(""));
        out.extend_from_slice(&(self.shared.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.shared);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            out.push(e.kind as u8);
            out.extend_from_slice(&(e.bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(&e.bytes);
        }
        let body_len = (out.len() - FRAME_HEADER as usize) as u32;
        let crc = crc32fast::hash(&out[FRAME_HEADER as usize..]);
        out[..4].copy_from_slice(&body_len.to_le_bytes());
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a body whose checksum already matched. `None` means a layout
    /// this version does not know, which a matching checksum makes a bug or a
    /// newer writer, not a torn write.
    pub(crate) fn decode(body: &[u8]) -> Option<Record> {
        let mut r = Cursor { b: body, at: 0 };
        if r.u8()? != RECORD_VERSION {
            return None;
        }
        let received_at = r.i64()?;
        let sent_at = Some(r.i64()?).filter(|&t| t != i64::MIN);
        let write_key = Some(r.str()?).filter(|s| !s.is_empty());
        let place = r.str()?;
        let kind = Some(r.str()?).filter(|s| !s.is_empty());
        let peer_ip = Some(r.str()?).filter(|s| !s.is_empty());
        let shared_len = r.u32()? as usize;
        let shared = r.take(shared_len)?.to_vec();
        let n = r.u32()? as usize;
        let mut entries = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let kind = match r.u8()? {
                0 => EntryKind::Payload,
                1 => EntryKind::TooLarge,
                _ => return None,
            };
            let len = r.u32()? as usize;
            entries.push(Entry {
                kind,
                bytes: r.take(len)?.to_vec(),
            });
        }
        (r.at == body.len()).then_some(Record {
            received_at,
            sent_at,
            write_key,
            place,
            kind,
            peer_ip,
            shared,
            entries,
        })
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn str(&mut self) -> Option<String> {
        let n = self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))? as usize;
        self.take(n)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// Outcome of reading one frame.
enum Frame {
    /// A good record and its framed size.
    Good(Box<Record>, u64),
    /// Clean end of data.
    End,
    /// A frame that is cut short or fails its checksum.
    Torn(&'static str),
}

/// Reads the frame at the reader's position. `limit` is how many bytes may be
/// read (the durable end, or the file's end during recovery).
fn read_frame(r: &mut impl Read, limit: u64) -> io::Result<Frame> {
    if limit == 0 {
        return Ok(Frame::End);
    }
    if limit < FRAME_HEADER {
        return Ok(Frame::Torn("a frame header cut short"));
    }
    let mut head = [0u8; FRAME_HEADER as usize];
    r.read_exact(&mut head)?;
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if len > MAX_RECORD {
        return Ok(Frame::Torn("an impossible record length"));
    }
    if u64::from(len) > limit - FRAME_HEADER {
        return Ok(Frame::Torn("a record cut short"));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body)?;
    if crc32fast::hash(&body) != crc {
        return Ok(Frame::Torn("a checksum mismatch"));
    }
    match Record::decode(&body) {
        Some(rec) => Ok(Frame::Good(Box::new(rec), FRAME_HEADER + u64::from(len))),
        None => Ok(Frame::Torn("an unknown record layout")),
    }
}

/// The path of segment `id` in `dir`.
pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.{SEGMENT_EXT}"))
}

/// The ids of the segment files in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| IngestError::io(dir, e))? {
        let entry = entry.map_err(|e| IngestError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(&format!(".{SEGMENT_EXT}")) {
            if let Ok(id) = stem.parse::<u64>() {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Makes a new directory entry durable: a file created and fsynced is not
/// guaranteed to survive a power cut until its directory is synced too.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| IngestError::io(dir, e))
}

/// What recovery found and decided.
#[derive(Debug, Clone)]
pub(crate) struct Recovered {
    /// The inbox's id (created with the inbox).
    pub(crate) inbox_id: String,
    /// Where the sync loop starts reading.
    pub(crate) start: Position,
    /// The segment the writer appends to next (new, empty).
    pub(crate) next_segment: u64,
    /// Records and bytes between `start` and the end of the inbox.
    pub(crate) pending_records: u64,
    pub(crate) pending_events: u64,
    pub(crate) pending_bytes: u64,
    /// Bytes cut off torn tails.
    pub(crate) truncated_bytes: u64,
}

/// Opens the inbox directory after a clean stop or a crash: truncates torn
/// tails, deletes segments the warehouse has landed, and decides where
/// reading resumes. `checkpoint` is what the warehouse committed last.
pub(crate) fn recover(dir: &Path, checkpoint: Option<&str>) -> Result<Recovered> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| IngestError::io(dir, e))?;
        // The new entries (`inbox/` and usually the data dir holding it) must
        // survive a power cut too: sync their parents.
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
        for p in [
            parent,
            parent
                .and_then(Path::parent)
                .filter(|p| !p.as_os_str().is_empty()),
        ]
        .into_iter()
        .flatten()
        {
            sync_dir(p)?;
        }
    }
    let id_path = dir.join(ID_FILE);
    let inbox_id = match fs::read_to_string(&id_path) {
        Ok(s) if !s.trim().is_empty() => s.trim().to_owned(),
        Ok(_) | Err(_) => {
            // A new inbox: name it so a checkpoint from another inbox (a
            // wiped or different data dir) is recognised as foreign.
            let id = ps_http::prepare::unique_id();
            let tmp = dir.join("inbox.id.tmp");
            fs::write(&tmp, &id).map_err(|e| IngestError::io(&tmp, e))?;
            File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| IngestError::io(&tmp, e))?;
            fs::rename(&tmp, &id_path).map_err(|e| IngestError::io(&id_path, e))?;
            sync_dir(dir)?;
            id
        }
    };
    let cp = checkpoint.and_then(Checkpoint::parse);
    let landed = match &cp {
        Some(c) if c.inbox_id == inbox_id => Some(c.position),
        Some(c) => {
            tracing::warn!(
                checkpoint = %c, inbox = %inbox_id,
                "the warehouse's inbox checkpoint belongs to another inbox; replaying this one from its start \
                 (events already landed are skipped by messageId)"
            );
            None
        }
        None => None,
    };
    let ids = list_segments(dir)?;
    let mut out = Recovered {
        inbox_id,
        start: landed.unwrap_or(Position {
            segment: ids.first().copied().unwrap_or(1),
            offset: 0,
        }),
        next_segment: 1,
        pending_records: 0,
        pending_events: 0,
        pending_bytes: 0,
        truncated_bytes: 0,
    };
    let mut max_id = landed.map_or(0, |p| p.segment);
    for id in ids {
        max_id = max_id.max(id);
        let path = segment_path(dir, id);
        if id < out.start.segment {
            fs::remove_file(&path).map_err(|e| IngestError::io(&path, e))?;
            continue;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| IngestError::io(&path, e))?;
        let len = file
            .metadata()
            .map_err(|e| IngestError::io(&path, e))?
            .len();
        let mut r = BufReader::with_capacity(1 << 20, &mut file);
        let mut at = 0u64;
        let mut torn = None;
        loop {
            match read_frame(&mut r, len - at).map_err(|e| IngestError::io(&path, e))? {
                Frame::Good(rec, size) => {
                    if id > out.start.segment || at >= out.start.offset {
                        out.pending_records += 1;
                        out.pending_events += rec.entries.len() as u64;
                        out.pending_bytes += size;
                    }
                    at += size;
                }
                Frame::End => break,
                Frame::Torn(why) => {
                    torn = Some(why);
                    break;
                }
            }
        }
        drop(r);
        if let Some(why) = torn {
            tracing::warn!(segment = %path.display(), at, dropped = len - at, "truncating a torn inbox tail ({why}); \
                 it holds no acknowledged event");
            file.set_len(at).map_err(|e| IngestError::io(&path, e))?;
            file.sync_all().map_err(|e| IngestError::io(&path, e))?;
            out.truncated_bytes += len - at;
        }
        if id == out.start.segment && out.start.offset > at {
            // The checkpoint lies past what survived (only possible if the
            // file was damaged outside our control); nothing there to replay.
            out.start.offset = at;
        }
    }
    out.next_segment = max_id + 1;
    Ok(out)
}

/// Reads records from the landed position up to the durable end, for the
/// sync loop. Its position only moves on when told ([`Reader::seek`]), so a
/// failed commit re-reads the same records.
#[derive(Debug)]
pub(crate) struct Reader {
    dir: PathBuf,
    pos: Position,
    file: Option<(u64, BufReader<File>, u64)>,
}

/// Records read in one go, and the position after them.
#[derive(Debug, Default)]
pub(crate) struct ReadBatch {
    pub(crate) records: Vec<Record>,
    pub(crate) events: u64,
    pub(crate) bytes: u64,
    pub(crate) end: Position,
}

impl Reader {
    pub(crate) fn new(dir: &Path, pos: Position) -> Reader {
        Reader {
            dir: dir.to_owned(),
            pos,
            file: None,
        }
    }

    pub(crate) fn position(&self) -> Position {
        self.pos
    }

    /// Moves the read position (after a commit, or back after a failed one).
    /// The open file is kept: [`Reader::read`] reopens it only when it is not
    /// already at the position.
    pub(crate) fn seek(&mut self, pos: Position) {
        self.pos = pos;
    }

    /// Reads whole records after the current position, stopping at `durable`
    /// (the end the writer has synced) or once `max_events` events or
    /// `max_bytes` bytes have been read. Does not move the position.
    pub(crate) fn read(
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
                            .map_err(|e| IngestError::io(&path, e))?;
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
                    Err(e) => return Err(IngestError::io(&path, e)),
                }
            }
            let (_, r, at) = self.file.as_mut().expect("opened above");
            let limit = if seg == durable.segment {
                durable.offset - out.end.offset
            } else {
                let len = r
                    .get_ref()
                    .metadata()
                    .map_err(|e| IngestError::io(&path, e))?
                    .len();
                len.saturating_sub(out.end.offset)
            };
            match read_frame(r, limit).map_err(|e| IngestError::io(&path, e))? {
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
                    return Err(IngestError::Corrupt {
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
    pub(crate) fn delete_landed(&self, pos: Position, first_kept: &mut u64) -> Result<()> {
        while *first_kept < pos.segment {
            let path = segment_path(&self.dir, *first_kept);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(IngestError::io(&path, e)),
            }
            *first_kept += 1;
        }
        Ok(())
    }
}

/// The active segment the writer appends to.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) id: u64,
    pub(crate) file: File,
    pub(crate) len: u64,
    path: PathBuf,
}

/// A group of records a segment could not take.
#[derive(Debug)]
pub(crate) struct AppendError {
    pub(crate) error: IngestError,
    /// The segment was cut back to its length before the group: nothing of
    /// the group is in the file, so appending may go on once the cause (a
    /// full disk) is gone. False when even cutting back failed.
    pub(crate) cut_back: bool,
}

impl Segment {
    /// Creates segment `id` (empty) and makes its directory entry durable.
    pub(crate) fn create(dir: &Path, id: u64) -> Result<Segment> {
        let path = segment_path(dir, id);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| IngestError::io(&path, e))?;
        sync_dir(dir)?;
        Ok(Segment {
            id,
            file,
            len: 0,
            path,
        })
    }

    /// Appends framed records. On error the segment is cut back to where it
    /// was, so a failed group leaves no half-written frame before the next;
    /// [`AppendError::cut_back`] says whether that worked.
    pub(crate) fn append(&mut self, parts: &[&[u8]]) -> std::result::Result<(), AppendError> {
        let mut written = 0u64;
        let res = (|| -> io::Result<()> {
            for p in parts {
                self.file.write_all(p)?;
                written += p.len() as u64;
            }
            Ok(())
        })();
        match res {
            Ok(()) => {
                self.len += written;
                Ok(())
            }
            Err(e) => {
                let cut_back = self.file.set_len(self.len).is_ok()
                    && self.file.seek(SeekFrom::Start(self.len)).is_ok();
                Err(AppendError {
                    error: IngestError::io(&self.path, e),
                    cut_back,
                })
            }
        }
    }

    /// `fdatasync`: the appended bytes survive a crash of the process or the
    /// machine once this returns.
    pub(crate) fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| IngestError::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: usize) -> Record {
        Record {
            received_at: 1_700_000_000_000_000,
            sent_at: if n.is_multiple_of(2) { Some(5) } else { None },
            write_key: Some("wk".into()),
            place: "http test".into(),
            kind: (n == 1).then(|| "track".to_owned()),
            peer_ip: Some("127.0.0.1".into()),
            shared: if n == 3 {
                br#"{"context":{"a":1}}"#.to_vec()
            } else {
                Vec::new()
            },
            entries: (0..n)
                .map(|i| Entry {
                    kind: if i == 1 {
                        EntryKind::TooLarge
                    } else {
                        EntryKind::Payload
                    },
                    bytes: format!("{{\"i\":{i}}}").into_bytes(),
                })
                .collect(),
        }
    }

    #[test]
    fn record_round_trip() {
        for n in [0, 1, 3] {
            let r = rec(n);
            let bytes = r.encode();
            assert_eq!(Record::decode(&bytes[8..]), Some(r));
        }
        let cp = Checkpoint {
            inbox_id: "abc-1".into(),
            position: Position {
                segment: 3,
                offset: 99,
            },
        };
        assert_eq!(Checkpoint::parse(&cp.to_string()), Some(cp));
        assert_eq!(Checkpoint::parse("garbage"), None);
    }

    #[test]
    fn torn_tail_is_truncated_and_replay_resumes_at_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let r0 = recover(d, None).unwrap();
        assert_eq!(r0.next_segment, 1);
        let mut seg = Segment::create(d, r0.next_segment).unwrap();
        let a = rec(2).encode();
        let b = rec(3).encode();
        seg.append(&[&a, &b]).unwrap();
        seg.sync().unwrap();
        // A torn third record: half of its bytes.
        let c = rec(4).encode();
        seg.append(&[&c[..c.len() / 2]]).unwrap();
        drop(seg);
        let r1 = recover(d, None).unwrap();
        assert_eq!(r1.truncated_bytes, (c.len() / 2) as u64);
        assert_eq!(r1.pending_records, 2);
        assert_eq!(r1.pending_events, 5);
        assert_eq!(r1.next_segment, 2);
        assert_eq!(
            std::fs::metadata(segment_path(d, 1)).unwrap().len(),
            (a.len() + b.len()) as u64
        );
        // The checkpoint after the first record: only the second is pending.
        let cp = Checkpoint {
            inbox_id: r1.inbox_id.clone(),
            position: Position {
                segment: 1,
                offset: a.len() as u64,
            },
        };
        let r2 = recover(d, Some(&cp.to_string())).unwrap();
        assert_eq!((r2.pending_records, r2.start), (1, cp.position));
        let mut reader = Reader::new(d, r2.start);
        let durable = Position {
            segment: r2.next_segment,
            offset: 0,
        };
        let got = reader.read(durable, 100, u64::MAX).unwrap();
        assert_eq!(got.records, vec![rec(3)]);
        assert_eq!(
            got.end,
            Position {
                segment: 2,
                offset: 0
            }
        );
        // A checkpoint from another inbox is ignored: replay from the start.
        let foreign = recover(d, Some("other/9:0")).unwrap();
        assert_eq!(
            foreign.start,
            Position {
                segment: 1,
                offset: 0
            }
        );
        assert_eq!(
            foreign.next_segment, 2,
            "ids keep growing past every segment seen"
        );
    }

    #[test]
    fn corrupt_byte_in_the_middle_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        recover(d, None).unwrap();
        let mut seg = Segment::create(d, 1).unwrap();
        let a = rec(1).encode();
        seg.append(&[&a, &a]).unwrap();
        seg.sync().unwrap();
        drop(seg);
        let mut bytes = std::fs::read(segment_path(d, 1)).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0xff;
        std::fs::write(segment_path(d, 1), &bytes).unwrap();
        let r = recover(d, None).unwrap();
        assert_eq!(r.pending_records, 1);
        assert_eq!(r.truncated_bytes, a.len() as u64);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any bytes as a record body: decoded or refused, never a panic,
        /// and no allocation beyond the bytes given (lengths are checked
        /// against what is left before anything is allocated).
        #[test]
        fn decode_takes_any_bytes(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            if let Some(r) = Record::decode(&body) {
                proptest::prop_assert!(r.entries.len() <= body.len());
            }
        }

        /// A segment cut short or with one byte changed anywhere: recovery
        /// keeps exactly the records wholly before the damage, truncates the
        /// rest with a count of the bytes dropped, and reads back the kept
        /// records unchanged.
        #[test]
        fn damaged_segment_keeps_the_records_before_the_damage(
            sizes in proptest::collection::vec(0usize..5, 1..6),
            at in 0.0f64..1.0,
            flip in proptest::prelude::any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            recover(d, None).unwrap();
            let mut seg = Segment::create(d, 1).unwrap();
            let frames: Vec<Vec<u8>> = sizes.iter().map(|&n| rec(n).encode()).collect();
            let parts: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
            seg.append(&parts).unwrap();
            seg.sync().unwrap();
            drop(seg);
            let path = segment_path(d, 1);
            let mut bytes = std::fs::read(&path).unwrap();
            let cut = ((bytes.len() as f64) * at) as usize;
            if flip {
                bytes[cut] ^= 0x5a;
            } else {
                bytes.truncate(cut);
            }
            std::fs::write(&path, &bytes).unwrap();
            // The records that end before the damaged byte survive.
            let mut end = 0;
            let kept = frames
                .iter()
                .take_while(|f| {
                    end += f.len();
                    end <= cut
                })
                .count();
            let kept_len: usize = frames[..kept].iter().map(Vec::len).sum();
            let r = recover(d, None).unwrap();
            proptest::prop_assert_eq!(r.pending_records, kept as u64);
            proptest::prop_assert_eq!(r.truncated_bytes, (bytes.len() - kept_len) as u64);
            let durable = Position { segment: r.next_segment, offset: 0 };
            let got = Reader::new(d, r.start).read(durable, 100, u64::MAX).unwrap();
            let want: Vec<Record> = sizes[..kept].iter().map(|&n| rec(n)).collect();
            proptest::prop_assert_eq!(got.records, want);
        }
    }
}
