//! Frames: `len u32 LE | crc32(body) u32 LE | body`, read one at a time
//! ([`read_frame`]) or to the end of a segment ([`scan`]).

use crate::record::{DecodeError, Record};
use std::io::{self, Read};

/// Bytes before a record's body: its length and checksum.
pub const FRAME_HEADER: u64 = 8;
/// Largest body a frame may claim; anything bigger is a torn or corrupt
/// length (requests are limited to well under this).
pub const MAX_RECORD: u32 = 64 << 20;

/// Why a frame is not a good record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Torn {
    /// Fewer bytes left than a frame header takes.
    #[error("a frame header cut short ({left} of {FRAME_HEADER} bytes)")]
    HeaderCutShort {
        /// The bytes there were.
        left: u64,
    },
    /// A length over [`MAX_RECORD`].
    #[error("an impossible record length ({0} bytes)")]
    ImpossibleLength(u32),
    /// A length past the end of the bytes there are.
    #[error("a record cut short ({len} bytes claimed, {left} there)")]
    CutShort {
        /// The length claimed.
        len: u32,
        /// The bytes after the header.
        left: u64,
    },
    /// The body does not match its checksum.
    #[error("a checksum mismatch")]
    Checksum,
    /// The checksum matches but the body is not a record this build reads.
    #[error("an unknown record layout: {0}")]
    Layout(DecodeError),
}

/// Outcome of reading one frame.
#[derive(Debug)]
pub enum Frame {
    /// A good record and its framed size (header included).
    Good(Box<Record>, u64),
    /// No bytes left: a clean end.
    End,
    /// A frame that is cut short, fails its checksum or does not decode.
    Torn(Torn),
}

/// Reads the frame at the reader's position. `limit` is how many bytes may
/// be read (the durable end, or the file's end during recovery); no length
/// read from the frame is trusted past it, so nothing larger than `limit`
/// is allocated. An error is the reader's own (a file shorter than
/// `limit`, say), never the bytes'.
pub fn read_frame(r: &mut impl Read, limit: u64) -> io::Result<Frame> {
    if limit == 0 {
        return Ok(Frame::End);
    }
    if limit < FRAME_HEADER {
        return Ok(Frame::Torn(Torn::HeaderCutShort { left: limit }));
    }
    let mut head = [0u8; FRAME_HEADER as usize];
    r.read_exact(&mut head)?;
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if len > MAX_RECORD {
        return Ok(Frame::Torn(Torn::ImpossibleLength(len)));
    }
    let left = limit - FRAME_HEADER;
    if u64::from(len) > left {
        return Ok(Frame::Torn(Torn::CutShort { len, left }));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body)?;
    if crc32fast::hash(&body) != crc {
        return Ok(Frame::Torn(Torn::Checksum));
    }
    match Record::decode(&body) {
        Ok(rec) => Ok(Frame::Good(Box::new(rec), FRAME_HEADER + u64::from(len))),
        Err(e) => Ok(Frame::Torn(Torn::Layout(e))),
    }
}

/// What [`scan`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// The bytes of the good frames from the start: where a torn tail
    /// begins, or the whole length.
    pub end: u64,
    /// Why the frame at `end` is not good, when there are bytes after it.
    pub torn: Option<Torn>,
}

/// Reads the frames of a segment of `len` bytes from its start, handing
/// each good record to `each` with its offset and framed size, until the
/// end or the first frame that is not good. Recovery keeps exactly the
/// frames this hands over and cuts the rest.
pub fn scan(
    r: &mut impl Read,
    len: u64,
    mut each: impl FnMut(u64, Record, u64),
) -> io::Result<Scanned> {
    let mut at = 0u64;
    loop {
        match read_frame(r, len - at)? {
            Frame::Good(rec, size) => {
                each(at, *rec, size);
                at += size;
            }
            Frame::End => {
                return Ok(Scanned {
                    end: at,
                    torn: None,
                })
            }
            Frame::Torn(why) => {
                return Ok(Scanned {
                    end: at,
                    torn: Some(why),
                })
            }
        }
    }
}
