//! One request's events as the inbox stores them: [`Record`], its body
//! layout, and why a body is refused ([`DecodeError`]).
//!
//! The body (after the frame header) is, little-endian throughout:
//!
//! ```text
//! version u8 (1) | received_at i64 | sent_at i64 (i64::MIN: none)
//! | write_key str | place str | kind str | peer_ip str     (str: len u16 | UTF-8)
//! | shared_len u32 | shared | count u32 | count × (kind u8 | len u32 | bytes)
//! ```
//!
//! An empty `write_key`, `kind` or `peer_ip` means none. Decoding is strict
//! (text must be UTF-8, nothing may follow the last entry), which makes the
//! layout canonical: a body that decodes encodes back to the same bytes.

use crate::frame::FRAME_HEADER;

/// Version byte of the record body layout.
const RECORD_VERSION: u8 = 1;
/// Fewest bytes one entry takes: its kind and its length.
const ENTRY_MIN: usize = 5;

/// How an entry of a record is to be treated by the sync loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A JSON payload for the pipeline's `Space::add`, valid or not: it
    /// refuses an invalid one again with the same reason and stores it in
    /// `rejected_events`, so the edge and the warehouse cannot disagree.
    Payload = 0,
    /// A payload over the per-event size limit, kept verbatim for
    /// `rejected_events` (`Space::add` does not check sizes).
    TooLarge = 1,
}

/// One event of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What the sync loop does with it.
    pub kind: EntryKind,
    /// The event's bytes as the client sent them.
    pub bytes: Vec<u8>,
}

/// What one HTTP request stored: when it arrived, the batch-level fields
/// that apply to all its events, and the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Server receive time (µs since the epoch): the events' `receivedAt`.
    pub received_at: i64,
    /// `sentAt` of the batch body, for clock-skew correction.
    pub sent_at: Option<i64>,
    /// The write key the request authenticated with.
    pub write_key: Option<String>,
    /// Where it came from (`http 127.0.0.1 /v1/batch`), for
    /// `rejected_events`.
    pub place: String,
    /// The call of a single-call endpoint (`track` for `/v1/track`): the
    /// `type` of an event that has none.
    pub kind: Option<String>,
    /// The client's address: `context.ip` of client-library events.
    pub peer_ip: Option<String>,
    /// The batch's top-level `context` and `integrations` as a JSON object
    /// (`{"context": …}`), merged into each event; empty when there are
    /// none.
    pub shared: Vec<u8>,
    /// The events as the client sent them (ps-http's `prepare` says what
    /// the sync loop adds before landing them).
    pub entries: Vec<Entry>,
}

/// Why a body whose checksum matched is not a record this build can read:
/// a bug or a newer writer, never a torn write. Every refusal says which
/// part of the body is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The first byte names a layout this build does not know.
    #[error("record layout version {0} (this build reads version {RECORD_VERSION})")]
    Version(u8),
    /// The body ends inside a field.
    #[error("the record ends inside {0}")]
    Short(&'static str),
    /// A text field is not UTF-8.
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    /// An entry's kind byte is neither payload (0) nor too large (1).
    #[error("entry {index} has the unknown kind {kind}")]
    EntryKind {
        /// The entry's index in the record.
        index: u32,
        /// The byte found.
        kind: u8,
    },
    /// The entry count cannot fit in the bytes left, each entry taking at
    /// least five; refused before anything is allocated for them.
    #[error("{count} entries claimed with only {left} bytes left")]
    TooManyEntries {
        /// The count read.
        count: u32,
        /// Bytes after the count.
        left: usize,
    },
    /// Bytes follow the last entry.
    #[error("{0} bytes after the last entry")]
    Trailing(usize),
}

/// Appends `s` as `len u16 | bytes`, cut to the longest prefix of at most
/// `u16::MAX` bytes that ends on a character boundary, so the stored text
/// is always UTF-8.
fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut n = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..n]);
}

impl Record {
    /// The framed bytes of the record (header and body), ready to append.
    /// Text fields longer than `u16::MAX` bytes are cut (on a character
    /// boundary); none the edge stores comes near that.
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .entries
            .iter()
            .map(|e| e.bytes.len() + ENTRY_MIN)
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

    /// Decodes a record body (the bytes after the frame header). Lengths
    /// and the entry count are checked against the bytes left before
    /// anything is allocated, so no body makes it allocate more than about
    /// its own size.
    pub fn decode(body: &[u8]) -> Result<Record, DecodeError> {
        let mut r = Cursor { b: body, at: 0 };
        let version = r.u8("the version byte")?;
        if version != RECORD_VERSION {
            return Err(DecodeError::Version(version));
        }
        let received_at = r.i64("received_at")?;
        let sent_at = Some(r.i64("sent_at")?).filter(|&t| t != i64::MIN);
        let write_key = Some(r.str("write_key")?).filter(|s| !s.is_empty());
        let place = r.str("place")?;
        let kind = Some(r.str("kind")?).filter(|s| !s.is_empty());
        let peer_ip = Some(r.str("peer_ip")?).filter(|s| !s.is_empty());
        let shared_len = r.u32("the shared fields' length")? as usize;
        let shared = r.take(shared_len, "the shared fields")?.to_vec();
        let count = r.u32("the entry count")?;
        let left = body.len() - r.at;
        if count as usize > left / ENTRY_MIN {
            return Err(DecodeError::TooManyEntries { count, left });
        }
        let mut entries = Vec::with_capacity(count as usize);
        for index in 0..count {
            let kind = match r.u8("an entry's kind")? {
                0 => EntryKind::Payload,
                1 => EntryKind::TooLarge,
                kind => return Err(DecodeError::EntryKind { index, kind }),
            };
            let len = r.u32("an entry's length")? as usize;
            entries.push(Entry {
                kind,
                bytes: r.take(len, "an entry's bytes")?.to_vec(),
            });
        }
        if r.at != body.len() {
            return Err(DecodeError::Trailing(body.len() - r.at));
        }
        Ok(Record {
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

/// Reads a body front to back; every read says what it was reading, for
/// [`DecodeError::Short`].
#[derive(Debug)]
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let s = self
            .at
            .checked_add(n)
            .and_then(|end| self.b.get(self.at..end))
            .ok_or(DecodeError::Short(what))?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        self.take(1, what).map(|b| b[0])
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.take(4, what)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        self.take(8, what)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn str(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let n = self
            .take(2, what)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))? as usize;
        let b = self.take(n, what)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::NotUtf8(what))
    }
}
