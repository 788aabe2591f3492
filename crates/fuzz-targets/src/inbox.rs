//! The fuzz target `inbox`: bytes read as an inbox segment through
//! [`ps_inbox::scan`] (frames, then records), the very function recovery
//! and the sync loop's reader use, on bytes in memory.
//!
//! Three readings of each input:
//!
//! - as a segment: the good frames are contiguous from the start, each
//!   re-encodes to exactly its bytes, and reading stops at the first frame
//!   that is not good, with a reason, or at the end;
//! - as one record body ([`Record::decode`]): refused with a reason, or
//!   decoded into a record that encodes back to the same bytes;
//! - as a recipe for a damaged segment: the input after four control bytes
//!   becomes records, which are encoded into a segment that is then cut
//!   short or has one byte changed where the control bytes say; reading it
//!   back keeps exactly the records wholly before the damage, as recovery
//!   must.

use ps_inbox::{scan, Entry, EntryKind, Record, Scanned, FRAME_HEADER};
use std::io::Cursor;

/// Most records a recipe makes.
const MAX_RECORDS: usize = 16;

/// One input, read the three ways above.
pub fn inbox(data: &[u8]) {
    as_segment(data);
    as_body(data);
    as_recipe(data);
}

/// Reads `seg` to its end, returning what [`scan`] found and the records
/// it handed over, after checking what must hold of any bytes.
fn read_segment(seg: &[u8]) -> (Scanned, Vec<Record>) {
    let mut records = Vec::new();
    let mut next = 0u64;
    let scanned = scan(&mut Cursor::new(seg), seg.len() as u64, |at, rec, size| {
        assert_eq!(at, next, "frames are not contiguous");
        assert!(size > FRAME_HEADER, "a good frame without a body");
        let end = usize::try_from(at + size).expect("in memory");
        assert_eq!(
            rec.encode(),
            seg[at as usize..end],
            "a good frame re-encodes to other bytes"
        );
        next = at + size;
        records.push(rec);
    })
    .expect("reading memory cannot fail");
    assert_eq!(
        scanned.end, next,
        "the end is not after the last good frame"
    );
    match &scanned.torn {
        None => assert_eq!(
            scanned.end,
            seg.len() as u64,
            "stopped early without a reason"
        ),
        Some(why) => {
            assert!(scanned.end < seg.len() as u64, "torn after the end");
            assert!(!why.to_string().is_empty(), "a torn frame without a reason");
        }
    }
    (scanned, records)
}

fn as_segment(data: &[u8]) {
    read_segment(data);
}

fn as_body(data: &[u8]) {
    match Record::decode(data) {
        Ok(rec) => {
            assert!(
                rec.entries.len() <= data.len() / 5,
                "more entries than the bytes hold"
            );
            assert_eq!(
                rec.encode()[FRAME_HEADER as usize..],
                *data,
                "a decoded body re-encodes to other bytes"
            );
        }
        Err(e) => assert!(!e.to_string().is_empty(), "a refusal without a reason"),
    }
}

/// A record made from one part of a recipe: `\n` splits it into a head
/// (the write key, and the shared fields when it starts with `{`) and the
/// entries.
fn record(i: usize, part: &[u8]) -> Record {
    let mut fields = part.split(|&b| b == b'\n');
    let head = fields.next().unwrap_or_default();
    let text = String::from_utf8_lossy(&head[..head.len().min(40)]).into_owned();
    Record {
        received_at: (i as i64) * 1_000_003 - part.len() as i64,
        sent_at: (part.len() % 3 == 1).then_some(part.len() as i64 - 7),
        write_key: Some(text).filter(|t| !t.is_empty()),
        place: format!("http fuzz /v1/batch {i}"),
        kind: (i % 2 == 1).then(|| "track".to_owned()),
        peer_ip: i.is_multiple_of(3).then(|| "127.0.0.1".to_owned()),
        shared: if head.first() == Some(&b'{') {
            head.to_vec()
        } else {
            Vec::new()
        },
        entries: fields
            .map(|b| Entry {
                kind: if b.len() % 5 == 4 {
                    EntryKind::TooLarge
                } else {
                    EntryKind::Payload
                },
                bytes: b.to_vec(),
            })
            .collect(),
    }
}

fn as_recipe(data: &[u8]) {
    let Some((ctl, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let records: Vec<Record> = rest
        .split(|&b| b == 0xff)
        .take(MAX_RECORDS)
        .enumerate()
        .map(|(i, part)| record(i, part))
        .collect();
    let mut seg = Vec::new();
    let mut ends = Vec::new();
    for rec in &records {
        let framed = rec.encode();
        let back = Record::decode(&framed[FRAME_HEADER as usize..]);
        assert_eq!(back.as_ref(), Ok(rec), "decode(encode(r)) is not r");
        seg.extend_from_slice(&framed);
        ends.push(seg.len());
    }
    let (all, read) = read_segment(&seg);
    assert_eq!((all.end, all.torn), (seg.len() as u64, None));
    assert_eq!(read, records, "a written segment reads back otherwise");

    let cut = ctl[0] & 1 == 0;
    let at = usize::from(u16::from_le_bytes([ctl[1], ctl[2]])) % seg.len();
    if cut {
        seg.truncate(at);
    } else {
        seg[at] ^= ctl[3].max(1);
    }
    // The frames wholly before the damaged byte (or the cut) survive.
    let kept = ends.iter().take_while(|&&end| end <= at).count();
    let kept_end = if kept == 0 { 0 } else { ends[kept - 1] };
    let (scanned, read) = read_segment(&seg);
    assert_eq!(
        read,
        records[..kept],
        "recovery keeps other records than those before the damage"
    );
    assert_eq!(scanned.end, kept_end as u64, "recovery cuts elsewhere");
    // A cut on a frame boundary is a clean end; any other damage is torn.
    assert_eq!(
        scanned.torn.is_none(),
        cut && at == kept_end,
        "damage not seen, or a clean end called torn: {:?}",
        scanned.torn
    );
}
