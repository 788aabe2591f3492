use crate::*;
use std::io::Cursor;

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
        assert_eq!(Record::decode(&bytes[8..]), Ok(r));
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

    /// Any bytes as a record body: decoded or refused with a reason, never
    /// a panic, and no allocation beyond the bytes given (lengths and the
    /// entry count are checked against what is left before anything is
    /// allocated). A body that decodes encodes back to itself.
    #[test]
    fn decode_takes_any_bytes(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        match Record::decode(&body) {
            Ok(r) => {
                proptest::prop_assert!(r.entries.len() <= body.len());
                proptest::prop_assert_eq!(&r.encode()[8..], &body[..]);
            }
            Err(e) => proptest::prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// The same over bodies that start as a record does, so the fields
    /// after the version byte are reached.
    #[test]
    fn decode_takes_any_bytes_after_a_good_head(
        n in 0usize..4,
        cut in 0usize..200,
        tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
    ) {
        let good = rec(n).encode();
        let mut body = good[8..8 + cut.min(good.len() - 8)].to_vec();
        body.extend_from_slice(&tail);
        match Record::decode(&body) {
            Ok(r) => proptest::prop_assert_eq!(&r.encode()[8..], &body[..]),
            Err(e) => proptest::prop_assert!(!e.to_string().is_empty()),
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

/// A body of `rec(n)` with its fields replaced at byte `at`.
fn body_with(n: usize, at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut body = rec(n).encode()[8..].to_vec();
    body[at..at + bytes.len()].copy_from_slice(bytes);
    body
}

#[test]
fn refusals_name_their_reason() {
    assert_eq!(
        Record::decode(&[]),
        Err(DecodeError::Short("the version byte"))
    );
    assert_eq!(Record::decode(&[2]), Err(DecodeError::Version(2)));
    // write_key is at 17: length 2, then "wk"; make it not UTF-8.
    assert_eq!(
        Record::decode(&body_with(0, 19, &[0xff, 0xfe])),
        Err(DecodeError::NotUtf8("write_key"))
    );
    let mut trailing = rec(1).encode()[8..].to_vec();
    trailing.push(0);
    assert_eq!(Record::decode(&trailing), Err(DecodeError::Trailing(1)));
    // A record without entries ends with its count: claim four billion.
    let mut many = rec(0).encode()[8..].to_vec();
    let n = many.len();
    many[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        Record::decode(&many),
        Err(DecodeError::TooManyEntries {
            count: u32::MAX,
            left: 0
        })
    );
    let mut kind = rec(1).encode()[8..].to_vec();
    let at = kind.len() - 5 - r#"{"i":0}"#.len();
    kind[at] = 7;
    assert_eq!(
        Record::decode(&kind),
        Err(DecodeError::EntryKind { index: 0, kind: 7 })
    );
    for e in [
        DecodeError::Short("x"),
        DecodeError::Version(9),
        DecodeError::Trailing(3),
    ] {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn long_text_is_cut_on_a_character_boundary() {
    let mut r = rec(1);
    // 'é' is two bytes: 32768 of them straddle the u16 limit.
    r.place = "é".repeat(32_768);
    let back = Record::decode(&r.encode()[8..]).expect("still UTF-8");
    assert_eq!(back.place, "é".repeat(32_767));
}

#[test]
fn scan_reads_frames_from_memory_and_stops_at_the_damage() {
    let frames: Vec<Vec<u8>> = [2, 0, 3].iter().map(|&n| rec(n).encode()).collect();
    let mut seg: Vec<u8> = frames.concat();
    let mut got = Vec::new();
    let s = scan(&mut Cursor::new(&seg), seg.len() as u64, |at, r, size| {
        got.push((at, r, size))
    })
    .unwrap();
    assert_eq!(
        s,
        Scanned {
            end: seg.len() as u64,
            torn: None
        }
    );
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].0, frames[0].len() as u64);
    let third = frames[0].len() + frames[1].len();
    seg[third + 9] ^= 1;
    let s = scan(&mut Cursor::new(&seg), seg.len() as u64, |_, _, _| {}).unwrap();
    assert_eq!(
        s,
        Scanned {
            end: third as u64,
            torn: Some(Torn::Checksum)
        }
    );
    let s = scan(&mut Cursor::new(&seg), third as u64 + 5, |_, _, _| {}).unwrap();
    assert_eq!(s.torn, Some(Torn::HeaderCutShort { left: 5 }));
    seg[third..third + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let s = scan(&mut Cursor::new(&seg), seg.len() as u64, |_, _, _| {}).unwrap();
    assert_eq!(s.torn, Some(Torn::ImpossibleLength(u32::MAX)));
}
