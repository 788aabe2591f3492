//! The binary snapshot (`Engine::encode_snapshot` / `restore_snapshot`):
//! every kind of trait value survives, chunking does not matter, and corrupt
//! or incomplete snapshots are refused. (`restore_check` in `common` also runs
//! every restore scenario of `rules.rs` and `model.rs` through snapshots.)

mod common;

use common::*;
use ps_identity::{Engine, IdScheme, IdentityConfig, Settings};
use serde_json::json;

fn settings() -> Settings {
    Settings::new(&IdentityConfig::default()).unwrap()
}

fn chunks(e: &Engine, size: u32) -> Vec<Vec<u8>> {
    let n = e.profile_count() as u32;
    (0..n.div_ceil(size))
        .map(|c| {
            let mut b = Vec::new();
            e.encode_snapshot(c * size..(c * size + size).min(n), &mut b);
            b
        })
        .collect()
}

fn records(e: &Engine) -> Vec<ps_identity::ProfileRecord> {
    (0..e.profile_count() as u32).map(|p| e.record(p)).collect()
}

fn sample() -> Engine {
    let mut e = default_engine();
    let traits = json!({
        "email": "a@x", "name": "Zoë ✓", "n": -5, "big": u64::MAX, "f": 1.5, "whole": 2.0,
        "yes": true, "no": false, "tags": ["a", 1, null, {"k": [2.25]}],
        "address": {"city": "Paris", "zip": "75001"}, "gone": null, "": "empty name dropped",
    });
    run(
        &mut e,
        &json!({"type": "identify", "messageId": "1", "timestamp": at(0), "userId": "u1",
                "anonymousId": "a1", "traits": traits}),
    );
    run(
        &mut e,
        &json!({"type": "page", "messageId": "2", "timestamp": at(-1_000_000), "anonymousId": "a2"}),
    );
    // A merge, and an identifier type added by context.externalIds.
    run(
        &mut e,
        &json!({"type": "identify", "messageId": "3", "timestamp": at(5), "userId": "u1",
                "anonymousId": "a2", "traits": {"n": 7},
                "context": {"externalIds": [{"id": "x-9", "type": "crm_id", "collection": "users", "encoding": "none"}]}}),
    );
    for v in random_stream(5, 60) {
        run(&mut e, &v);
    }
    e
}

#[test]
fn every_value_and_any_chunking_round_trips() {
    let e = sample();
    let want = records(&e);
    assert!(want[0].traits.iter().any(|(n, _, _)| n == "tags"));
    for size in [1, 2, 7, 64, 10_000] {
        let mut c = chunks(&e, size);
        c.reverse();
        let got = Engine::decode_snapshot(c.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(got, want, "chunks of {size}");
        let r = Engine::restore_snapshot(
            settings(),
            IdScheme::Sequential,
            "test",
            &e.meta(),
            c.iter().map(Vec::as_slice),
        )
        .unwrap();
        assert_eq!(records(&r), want, "chunks of {size}");
        assert_eq!(r.lookup("crm_id", "x-9"), e.lookup("crm_id", "x-9"));
    }
}

#[test]
fn empty_engine() {
    let e = default_engine();
    let r = Engine::restore_snapshot(settings(), IdScheme::Sequential, "t", &e.meta(), []).unwrap();
    assert_eq!(r.profile_count(), 0);
}

#[test]
fn corrupt_snapshots_are_refused() {
    let e = sample();
    let c = chunks(&e, 1);
    assert!(c.len() >= 3);
    let restore = |parts: Vec<Vec<u8>>| {
        Engine::restore_snapshot(
            settings(),
            IdScheme::Sequential,
            "test",
            &e.meta(),
            parts.iter().map(Vec::as_slice),
        )
    };
    // A missing chunk, a chunk stored twice.
    let mut gap = c.clone();
    gap.remove(1);
    assert!(restore(gap).unwrap_err().to_string().contains("missing"));
    // The last chunk lost: only the engine's profile count can tell.
    let mut short = c.clone();
    short.pop();
    let err = restore(short).unwrap_err().to_string();
    assert!(err.contains("profiles but the engine had"), "{err}");
    let mut twice = c.clone();
    twice.push(c[1].clone());
    assert!(restore(twice).is_err());
    // Truncated, extended, unknown format.
    for i in 0..c.len() {
        let mut t = c.clone();
        let len = t[i].len();
        t[i].truncate(len - 1);
        assert!(restore(t).is_err(), "truncated chunk {i}");
        let mut x = c.clone();
        x[i].push(0);
        assert!(restore(x).is_err(), "extended chunk {i}");
    }
    let mut f = c.clone();
    f[0][0] = 99;
    assert!(restore(f).unwrap_err().to_string().contains("format"));
    // Every single-byte change is either refused or decodes to something;
    // it never panics.
    for i in 0..c[0].len() {
        let mut m = c.clone();
        m[0][i] ^= 0x55;
        let _ = restore(m);
    }
}

/// The chunks of maximal runs of `dirty` profiles (ascending), at most
/// `cap` profiles each: what a commit appends to the state log.
fn runs(e: &Engine, dirty: &[u32], cap: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < dirty.len() {
        let start = dirty[i];
        let mut end = start + 1;
        i += 1;
        while i < dirty.len() && dirty[i] == end && ((end - start) as usize) < cap {
            end += 1;
            i += 1;
        }
        let mut b = Vec::new();
        e.encode_snapshot(start..end, &mut b);
        out.push(b);
    }
    out
}

/// A log of layers — a full snapshot, then after each slice of a random
/// stream only the changed profiles' chunks — restores to the engine that
/// wrote it, whatever order the rows come back in: each profile comes from
/// the newest layer holding it, partly replaced chunks are cut.
#[test]
fn a_log_of_changed_profiles_restores_the_newest_state() {
    let stream = random_stream(11, 400);
    for cap in [1usize, 3, 64] {
        let mut e = sample();
        e.take_dirty();
        let mut log: Vec<(i64, Vec<u8>)> = chunks(&e, 5).into_iter().map(|c| (0, c)).collect();
        for (layer, part) in stream.chunks(37).enumerate() {
            for v in part {
                run(&mut e, v);
            }
            let dirty = e.take_dirty();
            for c in runs(&e, &dirty, cap) {
                log.push((layer as i64 + 1, c));
            }
            let mut shuffled: Vec<(i64, &[u8])> =
                log.iter().map(|(l, c)| (*l, c.as_slice())).collect();
            shuffled.reverse();
            let cover = ps_identity::newest_cover(&shuffled).unwrap();
            let r = Engine::restore_snapshot(
                settings(),
                IdScheme::Sequential,
                "test",
                &e.meta(),
                cover.iter().map(|c| &**c),
            )
            .unwrap();
            assert_eq!(records(&r), records(&e), "cap {cap}, layer {layer}");
        }
        assert!(log.len() > 20, "the log grew");
    }
}

/// A cut chunk is refused like any other when its source is corrupt, and
/// a profile no layer holds is reported missing.
#[test]
fn a_log_with_a_hole_is_refused() {
    let e = sample();
    let c = chunks(&e, 2);
    assert!(c.len() >= 3);
    let log: Vec<(i64, &[u8])> = c
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, c)| (0, c.as_slice()))
        .collect();
    let cover = ps_identity::newest_cover(&log).unwrap();
    let err = Engine::restore_snapshot(
        settings(),
        IdScheme::Sequential,
        "test",
        &e.meta(),
        cover.iter().map(|c| &**c),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("missing"), "{err}");
    let mut bad = c[0].clone();
    bad.truncate(bad.len() / 2);
    let mut e2 = c.clone();
    e2[0] = bad;
    let newer = {
        let mut b = Vec::new();
        e.encode_snapshot(1..2, &mut b);
        b
    };
    let log: Vec<(i64, &[u8])> = e2
        .iter()
        .map(|c| (0, c.as_slice()))
        .chain([(1, newer.as_slice())])
        .collect();
    assert!(ps_identity::newest_cover(&log).is_err());
}
