//! `Engine::process` takes shortcuts for the usual event; these tests run the
//! same streams through an engine without them (`without_shortcuts`: the
//! general path only) and require identical outcomes, effects, records and
//! meta after every event.

mod common;

use common::*;
use ps_identity::{Engine, IdentifierConfig, IdentityConfig};
use serde_json::{json, Value};

fn configs() -> Vec<(&'static str, IdentityConfig)> {
    vec![
        ("default", IdentityConfig::default()),
        (
            "recommended blocked",
            IdentityConfig {
                use_recommended_blocked_values: true,
                ..Default::default()
            },
        ),
        (
            "blocked email, weekly anonymous limit",
            IdentityConfig {
                identifiers: vec![
                    IdentifierConfig {
                        type_name: "email".into(),
                        blocked: vec!["e1@x".into(), "/^user1.*/".into()],
                        ..Default::default()
                    },
                    IdentifierConfig {
                        type_name: "anonymous_id".into(),
                        limit: Some(3),
                        window: Some("weekly".into()),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
        ),
        (
            "custom identifier",
            IdentityConfig {
                identifiers: vec![IdentifierConfig {
                    type_name: "plan".into(),
                    key: Some("plan".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
        ),
    ]
}

/// A full dump of the engine's state, as text.
fn state(e: &Engine) -> String {
    let records: Vec<_> = (0..e.profile_count() as u32).map(|p| e.record(p)).collect();
    format!("{:?} {records:?}", e.meta())
}

fn compare(label: &str, cfg: &IdentityConfig, stream: &[Value]) {
    let mut fast = engine(cfg);
    let mut slow = engine(cfg).without_shortcuts();
    for (k, v) in stream.iter().enumerate() {
        let ev = event(v);
        let (a, b) = (run_event(&mut fast, &ev), run_event(&mut slow, &ev));
        assert_eq!(
            (&a.outcome, &a.text),
            (&b.outcome, &b.text),
            "{label}: event {k} {v}"
        );
        if k % 97 == 0 {
            assert_eq!(state(&fast), state(&slow), "{label}: after event {k}");
            assert_eq!(fast.take_dirty(), slow.take_dirty(), "{label}: event {k}");
        }
    }
    assert_eq!(state(&fast), state(&slow), "{label}: at the end");
    assert_eq!(fast.take_dirty(), slow.take_dirty(), "{label}: at the end");
}

/// Events the shortcut must recognize or turn down: numeric, empty and
/// non-string emails, group calls, explicit nulls, empty identifiers.
fn odd_events(seed: u64, n: usize) -> Vec<Value> {
    let mut r = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let kind = ["identify", "track", "page", "group", "alias", "screen"][r.below(6) as usize];
        let mut ev = json!({"type": kind, "messageId": format!("m{k}"), "timestamp": at(k as i64 * DAY / 3)});
        match r.below(4) {
            0 => ev["userId"] = json!(format!("u{}", r.below(5))),
            1 => {
                let a = ["a0", "a1", "0000", "null"][r.below(4) as usize];
                ev["anonymousId"] = json!(a);
            }
            _ => {
                let u = ["u0", "u1", "", "-1"][r.below(4) as usize];
                ev["userId"] = json!(u);
                ev["anonymousId"] = json!(format!("a{}", r.below(3)));
            }
        }
        let email = match r.below(7) {
            0 => json!(r.below(3)),
            1 => json!(""),
            2 => json!(null),
            3 => json!(["e0@x"]),
            _ => json!(format!("e{}@x", r.below(3))),
        };
        let plan = [json!("free"), json!("pro"), json!(null)][r.below(3) as usize].clone();
        let mut traits = json!({"plan": plan, "n": r.below(4)});
        if r.chance(70) {
            traits["email"] = email;
        }
        match kind {
            "identify" | "group" => {
                ev["traits"] = traits;
                if kind == "group" {
                    ev["groupId"] = json!("g");
                }
            }
            "track" => {
                ev["event"] = json!("E");
                ev["properties"] = traits;
            }
            "alias" => ev["previousId"] = json!("a0"),
            _ => ev["properties"] = traits,
        }
        if r.chance(10) {
            ev["context"] = json!({"traits": {"email": format!("e{}@x", r.below(3))}});
        }
        if r.chance(5) {
            ev["integrations"] = json!({"Google Analytics": {"clientId": "ga1"}});
        }
        if r.chance(40) {
            ev["context"]["device"] = device(&mut r);
        }
        out.push(ev);
    }
    out
}

/// A `context.device` the shortcut must read as `extract` does: platforms
/// in any case and unknown ones, numeric, empty and missing ids, ad ids
/// with and without ad tracking (and the all-zero one recommended settings
/// block), tokens; now and then not an object at all.
fn device(r: &mut Rng) -> Value {
    if r.chance(5) {
        return json!("iPhone");
    }
    let ty = ["android", "ios", "iOS", "Android", "web", ""][r.below(6) as usize];
    let mut d = json!({"type": ty, "manufacturer": "Acme"});
    match r.below(8) {
        0 => d["id"] = json!(r.below(3)),
        1 => d["id"] = json!(""),
        2 => d["id"] = json!(null),
        3 => {}
        _ => d["id"] = json!(format!("d{}", r.below(4))),
    }
    if r.chance(60) {
        d["advertisingId"] = match r.below(4) {
            0 => json!("00000000-0000-0000-0000-000000000000"),
            1 => json!(7),
            _ => json!(format!("ad{}", r.below(3))),
        };
    }
    if r.chance(70) {
        d["adTrackingEnabled"] =
            [json!(true), json!(false), json!("true")][r.below(3) as usize].clone();
    }
    if r.chance(50) {
        d["token"] = json!(format!("t{}", r.below(3)));
    }
    d
}

#[test]
fn shortcut_equals_general_path() {
    for (label, cfg) in configs() {
        for seed in 0..4 {
            compare(label, &cfg, &random_stream(seed, 1_500));
            compare(label, &cfg, &odd_events(seed, 1_500));
        }
        compare(label, &cfg, &realistic_mix(3, 30_000));
    }
}
