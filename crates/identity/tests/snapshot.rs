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
