//! Forgetting and suppression (SPEC §8) at the engine level.

mod common;

use common::*;
use ps_identity::{Engine, IdScheme, IdentityConfig, ProfileRecord, Settings};
use serde_json::json;

fn identify(msg: &str, user: &str, anon: &str, email: &str) -> serde_json::Value {
    json!({"type": "identify", "messageId": msg, "timestamp": at(1_000_000),
           "userId": user, "anonymousId": anon, "traits": {"email": email, "plan": "pro"}})
}

#[test]
fn forgetting_releases_identifiers_and_never_reuses_ids() {
    let mut e = default_engine();
    run(&mut e, &identify("1", "u1", "a1", "x@y.z"));
    // A second device merged in later: the forgotten profile has a member.
    run(
        &mut e,
        &json!({"type": "track", "event": "E", "messageId": "2",
        "timestamp": at(2_000_000), "anonymousId": "a2"}),
    );
    run(&mut e, &identify("3", "u1", "a2", "x@y.z"));
    run(&mut e, &identify("4", "u2", "b1", "other@y.z"));
    let p = e.lookup("user_id", "u1").unwrap();
    let mut segs: Vec<String> = e
        .segments_of(p)
        .iter()
        .map(|&s| e.segment_id(s).to_owned())
        .collect();
    segs.sort();
    assert_eq!(segs, ["profile_1", "profile_2"]);
    let f = e.forget(p);
    assert_eq!(f.segments, vec![0, 1]);
    let mut ids = f.identifiers.clone();
    ids.sort();
    assert_eq!(
        ids,
        [
            ("anonymous_id".to_owned(), "a1".to_owned()),
            ("anonymous_id".to_owned(), "a2".to_owned()),
            ("email".to_owned(), "x@y.z".to_owned()),
            ("user_id".to_owned(), "u1".to_owned()),
        ]
    );
    for (t, v) in &ids {
        assert_eq!(e.lookup(t, v), None, "{t}:{v} still resolves");
    }
    assert_eq!(e.traits(0).count(), 0);
    // The other profile is untouched.
    let other = e.lookup("user_id", "u2").unwrap();
    assert_eq!(e.segment_id(other), "profile_3");
    assert_eq!(e.lookup("email", "other@y.z"), Some(other));
    // The same user coming back gets a new profile, not an old id.
    let s = run(&mut e, &identify("5", "u1", "a1", "x@y.z"));
    assert_eq!(seg(&e, s.outcome.segment).as_deref(), Some("profile_4"));
    assert_eq!(s.outcome.merges, 0);
}

#[test]
fn forgotten_shells_restore_and_stay_empty() {
    let cfg = IdentityConfig::default();
    let mut e = default_engine();
    run(&mut e, &identify("1", "u1", "a1", "x@y.z"));
    run(&mut e, &identify("2", "u2", "b1", "w@y.z"));
    let p = e.lookup("user_id", "u1").unwrap();
    e.forget(p);
    let records: Vec<ProfileRecord> = (0..e.profile_count() as u32).map(|p| e.record(p)).collect();
    assert!(records[0].idents.is_empty() && records[0].traits.is_empty());
    let mut r = Engine::restore(
        Settings::new(&cfg).unwrap(),
        IdScheme::Sequential,
        "test",
        &e.meta(),
        records,
    )
    .unwrap();
    assert_eq!(r.lookup("user_id", "u1"), None);
    assert_eq!(r.lookup("user_id", "u2"), Some(1));
    let s = run(&mut r, &identify("3", "u1", "a1", "x@y.z"));
    assert_eq!(seg(&r, s.outcome.segment).as_deref(), Some("profile_3"));
}

#[test]
fn suppressed_identifiers_refuse_the_event_without_changing_state() {
    let mut e = default_engine();
    run(&mut e, &identify("1", "u1", "a1", "x@y.z"));
    assert!(e.suppress("email", "x@y.z"));
    assert!(!e.suppress("email", "x@y.z"));
    let before = e.meta();
    // The email arrives from a new device with no user id: refused.
    let s = run(
        &mut e,
        &json!({"type": "identify", "messageId": "2", "timestamp": at(2),
        "anonymousId": "a9", "traits": {"email": "x@y.z"}}),
    );
    assert_eq!(
        s.outcome.suppressed,
        Some(("email".to_owned(), "x@y.z".to_owned()))
    );
    assert!(s.effects.is_empty());
    assert_eq!(s.outcome.segment, None);
    assert_eq!(e.lookup("anonymous_id", "a9"), None);
    assert_eq!(e.meta(), before);
    // Events without it go through.
    let s = run(&mut e, &identify("3", "u2", "b1", "w@y.z"));
    assert!(s.outcome.suppressed.is_none());
    assert!(e.unsuppress("email", "x@y.z"));
    assert!(!e.unsuppress("email", "x@y.z"));
    let s = run(
        &mut e,
        &json!({"type": "identify", "messageId": "4", "timestamp": at(3),
        "anonymousId": "a9", "traits": {"email": "x@y.z"}}),
    );
    assert!(s.outcome.suppressed.is_none());
    assert_eq!(e.lookup("anonymous_id", "a9"), e.lookup("user_id", "u1"));
}

/// Identifier values of every length around the engine's inline limit (44
/// bytes; longer ones are stored apart) resolve, survive a restore from
/// records and from a snapshot, and are released by forgetting.
#[test]
fn long_identifiers_resolve_restore_and_forget() {
    let value = |n: usize, tag: char| -> String {
        (0..n)
            .map(|i| {
                if i == 0 {
                    tag
                } else {
                    (b'a' + (i % 26) as u8) as char
                }
            })
            .collect()
    };
    let mut events = Vec::new();
    for n in [1, 8, 16, 17, 43, 44, 45, 64, 200] {
        events.push(event(&identify(
            &format!("i{n}"),
            &value(n, 'u'),
            &value(n, 'a'),
            &format!("{}@x.y", value(n, 'e')),
        )));
        events.push(event(&json!({"type": "track", "event": "E",
            "messageId": format!("t{n}"), "timestamp": at(2_000_000),
            "anonymousId": value(n, 'a'), "userId": value(n, 'u')})));
    }
    restore_check(&IdentityConfig::default(), &events, 9, "long identifiers");
    let mut e = default_engine();
    for ev in &events {
        run_event(&mut e, ev);
    }
    for n in [1, 8, 16, 17, 43, 44, 45, 64, 200] {
        let p = e.lookup("user_id", &value(n, 'u')).expect("known");
        assert_eq!(e.lookup("anonymous_id", &value(n, 'a')), Some(p));
        let mut want = vec![
            ("user_id".to_owned(), value(n, 'u')),
            ("anonymous_id".to_owned(), value(n, 'a')),
            ("email".to_owned(), format!("{}@x.y", value(n, 'e'))),
        ];
        assert_eq!(e.identifiers_of(p), want, "length {n}");
        let mut got = e.forget(p).identifiers;
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(e.lookup("user_id", &value(n, 'u')), None);
        assert_eq!(e.lookup("email", &format!("{}@x.y", value(n, 'e'))), None);
    }
}
