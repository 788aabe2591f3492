//! The identity rules of SPEC §3, one scenario per test, run through the
//! engine with the sequential id scheme.
//!
//! Longer than 800 lines on purpose: the scenarios follow SPEC §3 in order
//! and share the event builders above them, so the file reads as the
//! spec's rule list; each test stands alone.

mod common;

use common::*;
use ps_identity::{
    Effect, Engine, IdScheme, IdentifierConfig, IdentityConfig, ProfileRecord, Rule, Settings,
};
use serde_json::{json, Value};

fn cfg_with(entries: Vec<IdentifierConfig>) -> IdentityConfig {
    IdentityConfig {
        identifiers: entries,
        ..IdentityConfig::default()
    }
}

fn big_anon_limit() -> IdentityConfig {
    cfg_with(vec![IdentifierConfig {
        type_name: "anonymous_id".into(),
        limit: Some(1_000_000),
        ..Default::default()
    }])
}

fn identify(msg: &str, t: i64, user: Option<&str>, anon: Option<&str>, traits: Value) -> Value {
    let mut v = json!({"type": "identify", "messageId": msg, "timestamp": at(t), "traits": traits});
    if let Some(u) = user {
        v["userId"] = json!(u);
    }
    if let Some(a) = anon {
        v["anonymousId"] = json!(a);
    }
    v
}

fn track(msg: &str, t: i64, user: Option<&str>, anon: Option<&str>, properties: Value) -> Value {
    let mut v = json!({"type": "track", "event": "Clicked", "messageId": msg, "timestamp": at(t), "properties": properties});
    if let Some(u) = user {
        v["userId"] = json!(u);
    }
    if let Some(a) = anon {
        v["anonymousId"] = json!(a);
    }
    v
}

fn page(msg: &str, t: i64, anon: &str) -> Value {
    json!({"type": "page", "messageId": msg, "timestamp": at(t), "anonymousId": anon})
}

fn conflict_text(s: &Step) -> Vec<&str> {
    s.text
        .iter()
        .filter(|t| t.starts_with("conflict"))
        .map(String::as_str)
        .collect()
}

/// SPEC §7, `golden/case-study.jsonl` verbatim.
const CASE_STUDY: &str = r#"{"type":"page","messageId":"event_1","anonymousId":"5285bc35-05ef-4d21","writeKey":"wk_source_1","timestamp":"2022-05-02T14:01:00Z","context":{"url":"twilio.com"}}
{"type":"identify","messageId":"event_2","anonymousId":"5285bc35-05ef-4d21","writeKey":"wk_source_1","timestamp":"2022-05-02T14:01:47Z","context":{"url":"twilio.com/try-twilio"},"traits":{"email":"jane.kim@segment.com"}}
{"type":"page","messageId":"event_3","anonymousId":"b50e18a5-1b8d-451c","writeKey":"wk_source_1","timestamp":"2022-06-22T10:47:15Z","context":{"url":"twilio.com/education"},"properties":{"email":"jane.kim@segment.com"}}
{"type":"identify","messageId":"event_4","anonymousId":"b50e18a5-1b8d-451c","writeKey":"wk_source_2","timestamp":"2022-06-22T10:48:00Z","context":{"url":"twilio.com/events/webinars"},"traits":{"email":"jane.kim@segment.com"}}"#;

#[test]
fn golden_case_study() {
    let mut e = Engine::new(
        Settings::new(&IdentityConfig::default()).unwrap(),
        IdScheme::Sequential,
        "case_study",
    );
    let steps: Vec<Step> = CASE_STUDY
        .lines()
        .map(|l| {
            run_event(
                &mut e,
                &ps_spec::parse_event_str(l, &Default::default()).unwrap(),
            )
        })
        .collect();
    let segs: Vec<_> = steps
        .iter()
        .map(|s| (seg(&e, s.outcome.segment), seg(&e, s.outcome.canonical)))
        .collect();
    let p = |s: &str| Some(s.to_owned());
    assert_eq!(
        segs,
        vec![
            (p("profile_1"), p("profile_1")),
            (p("profile_1"), p("profile_1")),
            (p("profile_2"), p("profile_2")),
            (p("profile_2"), p("profile_1")),
        ]
    );
    assert_eq!(
        steps[0].text,
        [
            "created profile_1",
            "attach profile_1 anonymous_id=5285bc35-05ef-4d21"
        ]
    );
    assert_eq!(
        steps[1].text,
        [
            "attach profile_1 email=jane.kim@segment.com",
            r#"traits profile_1 {"email":"jane.kim@segment.com"}"#
        ]
    );
    // The page's properties.email is not an identifier: a new profile.
    assert_eq!(
        steps[2].text,
        [
            "created profile_2",
            "attach profile_2 anonymous_id=b50e18a5-1b8d-451c"
        ]
    );
    assert_eq!(
        steps[3].text,
        [
            "repoint profile_2 -> profile_1",
            r#"traits profile_1 {"email":"jane.kim@segment.com"}"#
        ]
    );
    assert_eq!(
        steps[3].effects[0],
        Effect::Repointed {
            segment: 1,
            canonical: 0
        }
    );
    assert_eq!(steps[3].outcome.merges, 1);
    assert!(steps.iter().all(|s| s.conflicts().is_empty()));
    // Current state: id_graph.csv and external_id_mapping.csv.
    assert_eq!(e.canonical(0), 0);
    assert_eq!(e.canonical(1), 0);
    for (t, v) in [
        ("anonymous_id", "5285bc35-05ef-4d21"),
        ("email", "jane.kim@segment.com"),
        ("anonymous_id", "b50e18a5-1b8d-451c"),
    ] {
        assert_eq!(e.lookup(t, v), Some(0), "{t}={v}");
    }
    assert_eq!(traits_text(&e, 0), r#"{"email":"jane.kim@segment.com"}"#);
    assert_eq!(
        e.traits(1).count(),
        0,
        "a merged-away profile has no traits"
    );
}

#[test]
fn shared_laptop_second_user_gets_own_profile() {
    let mut e = default_engine();
    let a = run(&mut e, &identify("1", 0, Some("A"), Some("X"), json!({})));
    let b = run(&mut e, &identify("2", SEC, Some("B"), Some("X"), json!({})));
    assert_eq!(seg(&e, a.outcome.segment).as_deref(), Some("profile_1"));
    assert_eq!(seg(&e, b.outcome.segment).as_deref(), Some("profile_2"));
    assert_eq!(b.outcome.canonical, b.outcome.segment);
    assert_eq!(e.profile_count(), 2);
    let c = b.conflicts();
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].rule,
        Rule::Limit(e.settings().type_id("user_id").unwrap())
    );
    assert_eq!(
        conflict_text(&b),
        ["conflict limit:user_id anonymous_id=X [profile_1]"]
    );
    assert_eq!(
        b.text[1..],
        ["created profile_2", "attach profile_2 user_id=B"]
    );
    assert!(b.repoints().is_empty());
    assert_eq!(e.lookup("anonymous_id", "X"), Some(0));
    assert_eq!(e.lookup("user_id", "B"), Some(1));
}

#[test]
fn second_user_id_with_known_email_starts_new_profile() {
    let mut e = default_engine();
    run(
        &mut e,
        &identify("1", 0, Some("A"), None, json!({"email": "m@x"})),
    );
    let b = run(
        &mut e,
        &identify("2", SEC, Some("B"), None, json!({"email": "m@x"})),
    );
    assert_eq!(
        conflict_text(&b),
        ["conflict limit:user_id email=m@x [profile_1]"]
    );
    assert_eq!(seg(&e, b.outcome.segment).as_deref(), Some("profile_2"));
    assert_eq!(e.lookup("email", "m@x"), Some(0));
    assert_eq!(e.lookup("user_id", "B"), Some(1));
    // B's traits still land on B's profile, email included (traits are not identifiers).
    assert_eq!(traits_text(&e, 1), r#"{"email":"m@x"}"#);
}

#[test]
fn anonymous_id_weekly_limit() {
    let cfg = cfg_with(vec![IdentifierConfig {
        type_name: "anonymous_id".into(),
        limit: Some(5),
        window: Some("weekly".into()),
        ..Default::default()
    }]);
    let mut e = engine(&cfg);
    for i in 0..5 {
        let s = run(
            &mut e,
            &track(
                &format!("m{i}"),
                i * SEC,
                Some("u"),
                Some(&format!("a{i}")),
                json!({}),
            ),
        );
        assert!(s.conflicts().is_empty());
        assert_eq!(s.outcome.canonical, Some(0));
    }
    // The sixth within the week: refused, the event still resolves to u's profile.
    let s = run(&mut e, &track("m5", DAY, Some("u"), Some("a5"), json!({})));
    assert_eq!(
        conflict_text(&s),
        ["conflict limit:anonymous_id anonymous_id=a5 [profile_1]"]
    );
    assert_eq!(s.outcome.segment, Some(0));
    assert_eq!(e.lookup("anonymous_id", "a5"), None);
    // A second before the week since a0 was last seen is over: still refused.
    let s = run(
        &mut e,
        &track("m6", 7 * DAY - SEC, Some("u"), Some("a5"), json!({})),
    );
    assert_eq!(s.conflicts().len(), 1, "{:?}", s.text);
    // After the week since a4 (the last of them) was last seen: accepted.
    let s = run(
        &mut e,
        &track("m7", 7 * DAY + 5 * SEC, Some("u"), Some("a5"), json!({})),
    );
    assert!(s.conflicts().is_empty(), "{:?}", s.text);
    assert_eq!(s.text, ["attach profile_1 anonymous_id=a5"]);
    assert_eq!(e.lookup("anonymous_id", "a5"), Some(0));
    // When only a0 and a1 have aged out, three in the window + one new is fine.
    let mut e2 = engine(&cfg);
    for i in 0..5 {
        run(
            &mut e2,
            &track(
                &format!("m{i}"),
                i * SEC,
                Some("u"),
                Some(&format!("a{i}")),
                json!({}),
            ),
        );
    }
    let s = run(
        &mut e2,
        &track("x", 7 * DAY + 2 * SEC, Some("u"), Some("a5"), json!({})),
    );
    assert!(s.conflicts().is_empty(), "{:?}", s.text);
    // Re-seeing old values refreshes them: a0..a3 seen again, then a new one is over the limit.
    for (i, a) in ["a0", "a1", "a2", "a3"].into_iter().enumerate() {
        run(
            &mut e,
            &track(
                &format!("r{i}"),
                12 * DAY + i as i64 * SEC,
                Some("u"),
                Some(a),
                json!({}),
            ),
        );
    }
    let s = run(
        &mut e,
        &track("m8", 12 * DAY + 10 * SEC, Some("u"), Some("a9"), json!({})),
    );
    assert_eq!(
        conflict_text(&s),
        ["conflict limit:anonymous_id anonymous_id=a9 [profile_1]"]
    );
}

#[test]
fn recommended_blocked_values_never_merge() {
    let cfg = IdentityConfig {
        use_recommended_blocked_values: true,
        ..IdentityConfig::default()
    };
    let mut e = engine(&cfg);
    for (i, blocked) in ["null", "0000", "-1", "anonymous", "0", "-"]
        .into_iter()
        .enumerate()
    {
        let a = run(
            &mut e,
            &identify(
                &format!("a{i}"),
                0,
                Some(&format!("A{i}")),
                Some(blocked),
                json!({}),
            ),
        );
        let b = run(
            &mut e,
            &identify(
                &format!("b{i}"),
                1,
                Some(&format!("B{i}")),
                Some(blocked),
                json!({}),
            ),
        );
        assert_ne!(a.outcome.canonical, b.outcome.canonical, "{blocked}");
        for s in [&a, &b] {
            assert!(s.conflicts().is_empty(), "{blocked}: {:?}", s.text);
            assert!(s.repoints().is_empty());
            assert!(
                !s.text
                    .iter()
                    .any(|t| t.starts_with("attach") && t.ends_with(&format!("={blocked}"))),
                "{:?}",
                s.text
            );
        }
        assert_eq!(e.lookup("anonymous_id", blocked), None);
    }
    // A value that only looks blocked is kept.
    let s = run(&mut e, &page("p", 2, "0001"));
    assert_eq!(
        s.text,
        ["created profile_13", "attach profile_13 anonymous_id=0001"]
    );
    // An event whose only identifier is blocked resolves to no profile.
    let s = run(&mut e, &page("q", 3, "null"));
    assert_eq!(s.outcome.segment, None);
    assert!(s.effects.is_empty());
    // Blocked for every type, user_id included.
    let s = run(
        &mut e,
        &identify("r", 4, Some("anonymous"), Some("real-anon"), json!({})),
    );
    assert_eq!(
        s.text,
        [
            "created profile_14",
            "attach profile_14 anonymous_id=real-anon"
        ]
    );

    // Off by default: the same values are identifiers and collide.
    let mut e = default_engine();
    run(
        &mut e,
        &identify("a", 0, Some("A"), Some("null"), json!({})),
    );
    let s = run(
        &mut e,
        &identify("b", 1, Some("B"), Some("null"), json!({})),
    );
    assert_eq!(
        conflict_text(&s),
        ["conflict limit:user_id anonymous_id=null [profile_1]"]
    );
}

#[test]
fn configured_blocked_values() {
    let cfg = cfg_with(vec![IdentifierConfig {
        type_name: "email".into(),
        blocked: vec!["test@example.com".into(), "/@test\\.invalid$/".into()],
        ..Default::default()
    }]);
    let mut e = engine(&cfg);
    let a = run(
        &mut e,
        &identify(
            "1",
            0,
            Some("A"),
            None,
            json!({"email": "test@example.com"}),
        ),
    );
    let b = run(
        &mut e,
        &identify(
            "2",
            1,
            Some("B"),
            None,
            json!({"email": "test@example.com"}),
        ),
    );
    let c = run(
        &mut e,
        &identify("3", 2, Some("C"), None, json!({"email": "x@test.invalid"})),
    );
    for s in [&a, &b, &c] {
        assert!(
            s.conflicts().is_empty() && s.repoints().is_empty(),
            "{:?}",
            s.text
        );
        assert_eq!(
            s.text.iter().filter(|t| t.starts_with("attach")).count(),
            1,
            "{:?}",
            s.text
        );
    }
    assert_eq!(e.lookup("email", "test@example.com"), None);
    // The blocked value is still a trait: it stays in the event's columns.
    assert_eq!(traits_text(&e, 0), r#"{"email":"test@example.com"}"#);
}

#[test]
fn custom_identifier_from_properties_and_traits() {
    let cfg = cfg_with(vec![IdentifierConfig {
        type_name: "app".into(),
        key: Some("appId".into()),
        ..Default::default()
    }]);
    let mut e = engine(&cfg);
    let a = run(
        &mut e,
        &track("1", 0, None, Some("a1"), json!({"appId": "X1"})),
    );
    assert_eq!(
        a.text,
        [
            "created profile_1",
            "attach profile_1 anonymous_id=a1",
            "attach profile_1 app=X1"
        ]
    );
    let b = run(
        &mut e,
        &identify("2", 1, None, Some("a2"), json!({"app_id": "X1"})),
    );
    assert_eq!(b.outcome.canonical, Some(0));
    assert_eq!(b.text[0], "attach profile_1 anonymous_id=a2");
    // context.traits on any call, either spelling.
    let c = run(
        &mut e,
        &json!({"type": "page", "messageId": "3", "timestamp": at(2), "anonymousId": "a3", "context": {"traits": {"appId": "X1"}}}),
    );
    assert_eq!(c.outcome.canonical, Some(0));
    // A track's traits-like keys elsewhere are not read: only properties.
    let d = run(
        &mut e,
        &json!({"type": "track", "event": "E", "messageId": "4", "timestamp": at(3), "anonymousId": "a4", "traits": {"appId": "X1"}}),
    );
    assert_eq!(d.outcome.canonical, Some(1));
    // An identify's properties are not read either.
    let f = run(
        &mut e,
        &json!({"type": "identify", "messageId": "5", "timestamp": at(4), "anonymousId": "a5", "properties": {"appId": "X1"}}),
    );
    assert_eq!(f.outcome.canonical, Some(2));
    // Numbers are identifiers as their decimal text.
    let g = run(
        &mut e,
        &track("6", 5, None, Some("a6"), json!({"app_id": 42})),
    );
    let h = run(
        &mut e,
        &track("7", 6, None, Some("a7"), json!({"appId": "42"})),
    );
    assert_eq!(g.outcome.canonical, h.outcome.canonical);
}

#[test]
fn external_ids_add_types_and_merge() {
    let mut e = default_engine();
    let ext = |id: &str, ty: &str, coll: &str| json!({"externalIds": [{"id": id, "type": ty, "collection": coll}]});
    let a = run(
        &mut e,
        &json!({"type": "track", "event": "E", "messageId": "1", "timestamp": at(0), "anonymousId": "a1", "context": ext("123", "CRM_ID", "users")}),
    );
    assert_eq!(a.outcome.new_types, ["crm_id"]);
    assert_eq!(
        a.text,
        [
            "created profile_1",
            "attach profile_1 anonymous_id=a1",
            "attach profile_1 crm_id=123"
        ]
    );
    assert_eq!(e.settings().added_types(), ["crm_id"]);
    let b = run(&mut e, &page("2", 1, "a2"));
    assert_eq!(b.outcome.canonical, Some(1));
    let c = run(
        &mut e,
        &json!({"type": "page", "messageId": "3", "timestamp": at(2), "anonymousId": "a2", "context": ext("123", "crm_id", "users")}),
    );
    assert!(c.outcome.new_types.is_empty());
    assert_eq!(c.repoints(), [(1, 0)]);
    assert_eq!(c.outcome.segment, Some(1));
    assert_eq!(c.outcome.canonical, Some(0));
    // Another collection is not a user identifier.
    let d = run(
        &mut e,
        &json!({"type": "page", "messageId": "4", "timestamp": at(3), "anonymousId": "a3", "context": ext("123", "crm_id", "accounts")}),
    );
    assert_eq!(d.outcome.canonical, Some(2));
    // The added type ranks below every configured one.
    let crm = e.settings().type_id("crm_id").unwrap();
    let max = e
        .settings()
        .types()
        .filter(|(t, _)| *t != crm)
        .map(|(_, s)| s.priority)
        .max()
        .unwrap();
    assert!(e.settings().get(crm).priority > max);
    assert_eq!(e.settings().get(crm).limit, 5);
}

#[test]
fn device_and_ga_identifiers() {
    let mut e = default_engine();
    let s = run(
        &mut e,
        &json!({"type": "track", "event": "E", "messageId": "1", "timestamp": at(0), "anonymousId": "a1",
            "context": {"device": {"type": "ios", "id": "dev1", "advertisingId": "ad1", "adTrackingEnabled": true, "token": "tok1"}},
            "integrations": {"Google Analytics": {"clientId": "ga1"}}}),
    );
    assert_eq!(
        s.text,
        [
            "created profile_1",
            "attach profile_1 anonymous_id=a1",
            "attach profile_1 ios.id=dev1",
            "attach profile_1 ios.idfa=ad1",
            "attach profile_1 ios.push_token=tok1",
            "attach profile_1 ga_client_id=ga1",
        ]
    );
    // Ad tracking off: no advertising id; android device; GA under context.
    let s = run(
        &mut e,
        &json!({"type": "track", "event": "E", "messageId": "2", "timestamp": at(1), "anonymousId": "a2",
            "context": {"device": {"type": "android", "id": "dev2", "advertisingId": "ad2", "adTrackingEnabled": false},
                        "integrations": {"Google Analytics": {"clientId": "ga2"}}}}),
    );
    assert_eq!(
        s.text,
        [
            "created profile_2",
            "attach profile_2 anonymous_id=a2",
            "attach profile_2 android.id=dev2",
            "attach profile_2 ga_client_id=ga2"
        ]
    );
}

#[test]
fn alias_never_merges_profiles() {
    let mut e = default_engine();
    run(&mut e, &identify("1", 0, Some("A"), Some("x"), json!({})));
    run(&mut e, &page("2", 1, "y"));
    // userId of profile_1, anonymousId (and previousId) of profile_2.
    let s = run(
        &mut e,
        &json!({"type": "alias", "messageId": "3", "timestamp": at(2), "userId": "A", "anonymousId": "y", "previousId": "y"}),
    );
    assert!(s.repoints().is_empty(), "alias merged: {:?}", s.text);
    assert_eq!(s.outcome.merges, 0);
    assert_eq!(e.canonical(1), 1);
    assert_eq!(e.lookup("anonymous_id", "y"), Some(1));
    // It resolves through its most trusted identifier.
    assert_eq!(s.outcome.segment, Some(0));
    // The reverse: the older profile's anonymous id with the newer one's user id.
    run(&mut e, &identify("4", 3, Some("B"), Some("z"), json!({})));
    let s = run(
        &mut e,
        &json!({"type": "alias", "messageId": "5", "timestamp": at(4), "userId": "B", "anonymousId": "x", "previousId": "x"}),
    );
    assert!(s.repoints().is_empty(), "alias merged: {:?}", s.text);
    assert_eq!(s.outcome.segment, Some(2));
    // An alias may still attach a new identifier to the one profile it touches.
    let s = run(
        &mut e,
        &json!({"type": "alias", "messageId": "6", "timestamp": at(5), "userId": "C", "anonymousId": "y", "previousId": "y"}),
    );
    assert_eq!(s.text, ["attach profile_2 user_id=C"]);
    // The same identifiers on an identify do merge.
    let s = run(&mut e, &identify("7", 6, Some("A"), Some("y"), json!({})));
    assert!(
        s.conflicts().len() == 1,
        "user ids A and C collide: {:?}",
        s.text
    );
    let s = run(&mut e, &page("8", 7, "w"));
    let w = s.outcome.canonical.unwrap();
    let s = run(&mut e, &track("9", 8, Some("A"), Some("w"), json!({})));
    assert_eq!(s.repoints(), [(w, 0)]);
}

#[test]
fn group_id_is_not_an_identifier() {
    let mut e = default_engine();
    let a = run(
        &mut e,
        &json!({"type": "group", "groupId": "acme", "messageId": "1", "timestamp": at(0), "anonymousId": "a1", "traits": {"name": "Acme"}}),
    );
    let b = run(
        &mut e,
        &json!({"type": "group", "groupId": "acme", "messageId": "2", "timestamp": at(1), "anonymousId": "a2", "traits": {"name": "Acme"}}),
    );
    assert_ne!(a.outcome.canonical, b.outcome.canonical);
    for s in [&a, &b] {
        assert!(!s.text.iter().any(|t| t.contains("acme")), "{:?}", s.text);
    }
    let names: Vec<String> = e.settings().types().map(|(_, t)| t.name.clone()).collect();
    for t in names {
        assert_eq!(e.lookup(&t, "acme"), None, "{t}");
    }
    // A group call's traits.email is an identifier, but its traits are not profile traits.
    let c = run(
        &mut e,
        &json!({"type": "group", "groupId": "acme", "messageId": "3", "timestamp": at(2), "anonymousId": "a1", "traits": {"email": "m@x"}}),
    );
    assert_eq!(c.text, ["attach profile_1 email=m@x"]);
    assert_eq!(e.traits(0).count(), 0);
}

#[test]
fn trait_rules() {
    let mut e = default_engine();
    let s = run(
        &mut e,
        &identify(
            "1",
            0,
            Some("A"),
            None,
            json!({"plan": "pro", "name": "Ann", "address": {"city": "Oslo"}, "firstName": "A"}),
        ),
    );
    assert_eq!(
        s.text.last().unwrap(),
        r#"traits profile_1 {"address_city":"Oslo","first_name":"A","name":"Ann","plan":"pro"}"#
    );
    // Last value wins; unchanged values produce no row.
    let s = run(
        &mut e,
        &identify("2", 1, Some("A"), None, json!({"plan": "team"})),
    );
    assert_eq!(
        s.text,
        [r#"traits profile_1 {"address_city":"Oslo","first_name":"A","name":"Ann","plan":"team"}"#]
    );
    let s = run(
        &mut e,
        &identify("3", 2, Some("A"), None, json!({"plan": "team"})),
    );
    assert!(s.text.is_empty(), "{:?}", s.text);
    // Explicit null removes; "" is a value.
    let s = run(
        &mut e,
        &identify("4", 3, Some("A"), None, json!({"plan": null, "name": ""})),
    );
    assert_eq!(
        s.text,
        [r#"traits profile_1 {"address_city":"Oslo","first_name":"A","name":""}"#]
    );
    // Null for an absent trait changes nothing.
    let s = run(
        &mut e,
        &identify(
            "5",
            4,
            Some("A"),
            None,
            json!({"plan": null, "other": null}),
        ),
    );
    assert!(s.text.is_empty(), "{:?}", s.text);
    // A removed trait comes back when set again.
    let s = run(
        &mut e,
        &identify("6", 5, Some("A"), None, json!({"plan": "free"})),
    );
    assert_eq!(
        s.text,
        [r#"traits profile_1 {"address_city":"Oslo","first_name":"A","name":"","plan":"free"}"#]
    );
    // Track calls never change traits.
    let s = run(
        &mut e,
        &track("7", 6, Some("A"), None, json!({"plan": "x"})),
    );
    assert!(s.text.is_empty(), "{:?}", s.text);
}

#[test]
fn trait_merge_takes_most_recent_value() {
    let mut e = default_engine();
    // profile_1 (older): plan=a then color set later; profile_2 (newer): plan=b set in between.
    run(
        &mut e,
        &identify("1", 0, None, Some("x"), json!({"plan": "a", "size": "s"})),
    );
    run(
        &mut e,
        &identify(
            "2",
            1,
            None,
            Some("y"),
            json!({"plan": "b", "size": "m", "tier": "gold"}),
        ),
    );
    run(
        &mut e,
        &identify(
            "3",
            2,
            None,
            Some("x"),
            json!({"color": "red", "size": null}),
        ),
    );
    // The newer profile removes tier afterwards.
    run(
        &mut e,
        &identify("4", 3, None, Some("y"), json!({"tier": null})),
    );
    let s = run(
        &mut e,
        &identify("5", 4, None, Some("x"), json!({"email": "m@x"})),
    );
    assert!(s.text.iter().any(|t| t == "attach profile_1 email=m@x"));
    let s = run(&mut e, &track("6", 5, None, Some("y"), json!({})));
    assert!(s.repoints().is_empty());
    // Merge: identify from y carrying x's email.
    let s = run(
        &mut e,
        &identify("7", 6, None, Some("y"), json!({"email": "m@x"})),
    );
    assert_eq!(s.repoints(), [(1, 0)]);
    // plan: b (set at 2) beats a (set at 1); size: null (removed at 3) beats m (2);
    // color from profile_1; tier removed at 4 stays removed.
    assert_eq!(
        s.text.last().unwrap(),
        r#"traits profile_1 {"color":"red","email":"m@x","plan":"b"}"#
    );
    assert_eq!(e.traits(1).count(), 0);
}

#[test]
fn trait_merge_null_on_never_set_trait_is_the_latest_word() {
    // profile_2 says plan=null after profile_1 set plan=a: the latest statement
    // about plan is the removal, whether or not profile_2 ever had a plan.
    let mut e = default_engine();
    run(
        &mut e,
        &identify(
            "1",
            0,
            None,
            Some("x"),
            json!({"plan": "a", "email": "m@x"}),
        ),
    );
    run(
        &mut e,
        &identify("2", 1, None, Some("y"), json!({"plan": null})),
    );
    let s = run(
        &mut e,
        &identify("3", 2, None, Some("y"), json!({"email": "m@x"})),
    );
    assert_eq!(s.repoints(), [(1, 0)]);
    assert_eq!(
        s.text.last().unwrap(),
        r#"traits profile_1 {"email":"m@x"}"#
    );
}

#[test]
fn merge_cap() {
    let mut e = engine(&big_anon_limit());
    run(
        &mut e,
        &identify("hub", 0, Some("main"), Some("a0"), json!({})),
    );
    let mut t = 1;
    for k in 1..=101 {
        let anon = format!("a{k}");
        let s = run(&mut e, &page(&format!("p{k}"), t, &anon));
        let own = s.outcome.canonical.unwrap();
        let s = run(
            &mut e,
            &track(
                &format!("t{k}"),
                t + 1,
                Some("main"),
                Some(&anon),
                json!({}),
            ),
        );
        t += 2;
        if k <= 100 {
            assert_eq!(s.repoints(), [(own, 0)], "merge {k}");
        } else {
            let own_seg = e.segment_id(own).to_owned();
            assert_eq!(
                conflict_text(&s),
                [format!(
                    "conflict merge_cap anonymous_id={anon} [profile_1,{own_seg}]"
                )]
            );
            assert!(s.repoints().is_empty());
            // The event still resolves, to the profile of its user id.
            assert_eq!(s.outcome.segment, Some(0));
            assert_eq!(s.outcome.canonical, Some(0));
            assert_eq!(e.lookup("anonymous_id", &anon), Some(own));
        }
    }
    assert_eq!(e.record(0).merges, 100);
    // Known identifiers of the capped profile still resolve to it.
    let s = run(&mut e, &page("later", t, "a50"));
    assert_eq!(s.outcome.canonical, Some(0));

    // Merges are counted across both sides: 60 + 1 + 60 > 100.
    let mut e = engine(&big_anon_limit());
    let mut t = 0;
    let mut hub = |e: &mut Engine, name: &str, n: usize| {
        run(
            e,
            &identify(
                &format!("{name}-0"),
                t,
                None,
                Some(&format!("{name}-a0")),
                json!({"email": format!("{name}@x")}),
            ),
        );
        for k in 1..=n {
            let anon = format!("{name}-a{k}");
            run(e, &page(&format!("{name}-p{k}"), t + 1, &anon));
            let s = run(
                e,
                &json!({"type": "page", "messageId": format!("{name}-m{k}"), "timestamp": at(t + 2), "anonymousId": anon,
                    "context": {"traits": {"email": format!("{name}@x")}}}),
            );
            assert_eq!(s.repoints().len(), 1);
            t += 3;
        }
    };
    hub(&mut e, "x", 60);
    hub(&mut e, "y", 60);
    let y = e.lookup("email", "y@x").unwrap();
    let s = run(
        &mut e,
        &json!({"type": "identify", "messageId": "join", "timestamp": at(1_000), "anonymousId": "x-a0",
            "traits": {"email": "x@x"}, "context": {"traits": {"email": "y@x"}}}),
    );
    assert!(s.repoints().is_empty(), "{:?}", s.text);
    let y_seg = e.segment_id(y).to_owned();
    // The demotion loop drops the least trusted identifier first, even one that
    // is not the cause (x-a0 belongs to the target), then the later email.
    assert_eq!(
        conflict_text(&s),
        [
            format!("conflict merge_cap anonymous_id=x-a0 [profile_1,{y_seg}]"),
            format!("conflict merge_cap email=y@x [profile_1,{y_seg}]")
        ]
    );
    assert_eq!(s.outcome.canonical, Some(0));
}

#[test]
fn identifier_cap() {
    let mut e = engine(&big_anon_limit());
    for k in 0..999 {
        let s = run(
            &mut e,
            &track(
                &format!("t{k}"),
                k,
                Some("u"),
                Some(&format!("a{k}")),
                json!({}),
            ),
        );
        assert!(s.conflicts().is_empty());
    }
    assert_eq!(e.record(0).idents.len(), 1000);
    let s = run(
        &mut e,
        &track("over", 1_000, Some("u"), Some("a999"), json!({})),
    );
    assert_eq!(
        conflict_text(&s),
        ["conflict identifier_cap anonymous_id=a999 [profile_1]"]
    );
    assert_eq!(s.outcome.segment, Some(0));
    assert_eq!(e.lookup("anonymous_id", "a999"), None);
    // Known identifiers still resolve to the full profile.
    let s = run(&mut e, &page("known", 1_001, "a5"));
    assert_eq!(s.outcome.canonical, Some(0));
    assert!(s.effects.is_empty());
    // A new identifier alone starts a new profile.
    let s = run(&mut e, &page("alone", 1_002, "a999"));
    assert_eq!(s.outcome.canonical, Some(1));
    assert_eq!(e.record(0).idents.len(), 1000);

    // A new, more trusted identifier with a known one of the full profile: the
    // new one is not attached and the event still resolves to the full profile
    // (it must not start a profile of its own).
    let mut e2 = engine(&big_anon_limit());
    for k in 0..1000 {
        let s = run(
            &mut e2,
            &json!({"type": "page", "messageId": format!("f{k}"), "timestamp": at(k), "anonymousId": format!("f{k}"),
                "context": {"traits": {"email": "full@x"}}}),
        );
        assert_eq!(s.outcome.canonical, Some(0), "{:?}", s.text);
    }
    assert_eq!(e2.record(0).idents.len(), 1000);
    let profiles = e2.profile_count();
    let s = run(
        &mut e2,
        &identify("u-new", 5_000, Some("U"), Some("f1"), json!({})),
    );
    assert_eq!(
        conflict_text(&s),
        ["conflict identifier_cap user_id=U [profile_1]"]
    );
    assert_eq!(s.outcome.canonical, Some(0), "{:?}", s.text);
    assert_eq!(e2.profile_count(), profiles);

    // A merge that would hold more than 1,000 identifiers is refused.
    let mut e = engine(&big_anon_limit());
    for name in ["x", "y"] {
        for k in 0..600 {
            run(
                &mut e,
                &identify(
                    &format!("{name}{k}"),
                    k,
                    None,
                    Some(&format!("{name}-a{k}")),
                    json!({"email": format!("{name}@x")}),
                ),
            );
        }
    }
    let y = e.lookup("email", "y@x").unwrap();
    let s = run(
        &mut e,
        &json!({"type": "identify", "messageId": "join", "timestamp": at(10_000), "anonymousId": "x-a0",
            "traits": {"email": "x@x"}, "context": {"traits": {"email": "y@x"}}}),
    );
    assert!(s.repoints().is_empty(), "{:?}", s.text);
    let c = s.conflicts();
    assert!(
        !c.is_empty() && c.iter().all(|c| c.rule == Rule::IdentifierCap),
        "{:?}",
        s.text
    );
    assert_eq!(c.last().unwrap().value, "y@x");
    assert_eq!(s.outcome.canonical, Some(0));
    assert_eq!(e.lookup("email", "y@x"), Some(y));
}

#[test]
fn demotion_drops_lowest_priority_later_first() {
    // Two emails and a user id colliding: the later email goes first.
    let mut e = default_engine();
    run(
        &mut e,
        &identify("1", 0, Some("A"), None, json!({"email": "a@x"})),
    );
    run(
        &mut e,
        &identify("2", 1, Some("B"), None, json!({"email": "b@x"})),
    );
    let s = run(
        &mut e,
        &json!({"type": "identify", "messageId": "3", "timestamp": at(2), "anonymousId": "n",
            "traits": {"email": "a@x"}, "context": {"traits": {"email": "b@x"}}}),
    );
    assert_eq!(
        conflict_text(&s),
        [
            "conflict limit:user_id anonymous_id=n [profile_1,profile_2]",
            "conflict limit:user_id email=b@x [profile_1,profile_2]"
        ]
    );
    assert_eq!(s.outcome.canonical, Some(0));
    assert!(s.repoints().is_empty());
}

#[test]
fn three_way_merge_segment_is_newest() {
    let mut e = default_engine();
    run(&mut e, &page("1", 0, "a"));
    run(&mut e, &page("2", 1, "b"));
    run(&mut e, &page("3", 2, "c"));
    // b into a first, so profile_2 already points at profile_1.
    run(
        &mut e,
        &identify("4", 3, None, Some("a"), json!({"email": "ab@x"})),
    );
    run(
        &mut e,
        &identify("5", 4, None, Some("b"), json!({"email": "ab@x"})),
    );
    let s = run(
        &mut e,
        &json!({"type": "identify", "messageId": "6", "timestamp": at(5), "anonymousId": "c", "traits": {"email": "ab@x"}}),
    );
    assert_eq!(
        s.text,
        [
            "repoint profile_3 -> profile_1",
            "traits profile_1 {\"email\":\"ab@x\"}"
        ]
    );
    assert_eq!(s.outcome.segment, Some(2));
    // Merging a profile that has members repoints every member (one hop).
    let mut e = default_engine();
    run(&mut e, &page("1", 0, "a"));
    run(&mut e, &page("2", 1, "b"));
    run(&mut e, &page("3", 2, "c"));
    run(
        &mut e,
        &identify("4", 3, None, Some("c"), json!({"email": "bc@x"})),
    );
    let s = run(
        &mut e,
        &identify("5", 4, None, Some("b"), json!({"email": "bc@x"})),
    );
    assert_eq!(s.repoints(), [(2, 1)]);
    let s = run(
        &mut e,
        &identify("6", 5, None, Some("b"), json!({"email": "ab@x"})),
    );
    assert!(s.repoints().is_empty());
    let s = run(
        &mut e,
        &json!({"type": "identify", "messageId": "7", "timestamp": at(6), "anonymousId": "a", "context": {"traits": {"email": "bc@x"}}}),
    );
    assert_eq!(
        s.text[..2],
        [
            "repoint profile_2 -> profile_1",
            "repoint profile_3 -> profile_1"
        ]
    );
    assert_eq!(s.outcome.segment, Some(1));
    assert_eq!((e.canonical(1), e.canonical(2)), (0, 0));
}

#[test]
fn restore_continues_like_an_uninterrupted_engine() {
    let weekly = cfg_with(vec![
        IdentifierConfig {
            type_name: "anonymous_id".into(),
            limit: Some(2),
            window: Some("weekly".into()),
            ..Default::default()
        },
        IdentifierConfig {
            type_name: "email".into(),
            limit: Some(2),
            window: Some("daily".into()),
            ..Default::default()
        },
    ]);
    let stream = |seed: u64, n: usize| -> Vec<ps_spec::Event> {
        random_stream(seed, n).iter().map(event).collect()
    };
    for seed in 0..40 {
        let events = stream(seed, 240);
        restore_check(
            &IdentityConfig::default(),
            &events,
            120,
            &format!("seed {seed}"),
        );
        restore_check(&weekly, &events, 120, &format!("weekly, seed {seed}"));
    }
    // At the very start and end too.
    restore_check(&IdentityConfig::default(), &stream(99, 50), 0, "start");
    restore_check(&IdentityConfig::default(), &stream(99, 50), 50, "end");
}

#[test]
fn restore_rejects_corrupt_state() {
    let mut e = default_engine();
    for v in random_stream(3, 40) {
        run(&mut e, &v);
    }
    let records: Vec<ProfileRecord> = (0..e.profile_count() as u32).map(|p| e.record(p)).collect();
    let settings = || Settings::new(&IdentityConfig::default()).unwrap();
    let mut gap = records.clone();
    gap.remove(0);
    assert!(Engine::restore(settings(), IdScheme::Sequential, "test", &e.meta(), gap).is_err());
    let mut dangling = records.clone();
    dangling[0].canonical = "profile_999".into();
    assert!(Engine::restore(
        settings(),
        IdScheme::Sequential,
        "test",
        &e.meta(),
        dangling
    )
    .is_err());
    // A two-hop chain: a merged-away profile pointing at another merged-away one.
    let mut e2 = default_engine();
    run(&mut e2, &page("1", 0, "a"));
    run(&mut e2, &page("2", 1, "b"));
    run(&mut e2, &page("3", 2, "c"));
    run(
        &mut e2,
        &identify("4", 3, None, Some("b"), json!({"email": "m@x"})),
    );
    run(
        &mut e2,
        &identify("5", 4, None, Some("c"), json!({"email": "m@x"})),
    );
    let mut chain: Vec<ProfileRecord> = (0..3).map(|p| e2.record(p)).collect();
    assert_eq!(chain[2].canonical, "profile_2");
    chain[1].canonical = "profile_1".into();
    let err =
        Engine::restore(settings(), IdScheme::Sequential, "test", &e2.meta(), chain).unwrap_err();
    assert!(err.to_string().contains("merged away"), "{err}");
    let mut twice = records.clone();
    let holder = twice.iter().position(|r| !r.idents.is_empty()).unwrap();
    let other = twice
        .iter()
        .rposition(|r| r.canonical == r.segment_id && r.ord as usize != holder)
        .unwrap();
    let dup = twice[holder].idents[0].clone();
    twice[other].idents.push(dup);
    assert!(Engine::restore(settings(), IdScheme::Sequential, "test", &e.meta(), twice).is_err());
}

#[test]
fn use_scheme_ids_are_deterministic() {
    let run_all = |space: &str| {
        let mut e = Engine::new(
            Settings::new(&IdentityConfig::default()).unwrap(),
            IdScheme::Use,
            space,
        );
        let mut out = Vec::new();
        for v in random_stream(11, 300) {
            let s = run(&mut e, &v);
            out.push(s.text);
        }
        for k in 0..60 {
            out.push(run(&mut e, &page(&format!("p{k}"), k, &format!("fresh{k}"))).text);
        }
        let ids: Vec<String> = (0..e.profile_count() as u32)
            .map(|p| e.segment_id(p).to_owned())
            .collect();
        (ids, out)
    };
    let (ids, out) = run_all("space_a");
    assert!(ids.len() > 10);
    for id in &ids {
        let rest = id.strip_prefix("use_").unwrap_or_else(|| panic!("{id}"));
        assert_eq!(rest.len(), 27, "{id}");
        assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    }
    let mut uniq = ids.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), ids.len());
    assert_eq!(run_all("space_a"), (ids.clone(), out));
    let (other, _) = run_all("space_b");
    assert!(other.iter().zip(&ids).all(|(a, b)| a != b));
    // Not a prefix of a counter: the first digits vary.
    let firsts: std::collections::HashSet<&str> = ids.iter().map(|i| &i[4..6]).collect();
    assert!(firsts.len() > ids.len() / 2);
    assert_eq!(
        ps_identity::engine::make_id(IdScheme::Sequential, "s", 7),
        "profile_7"
    );
}
