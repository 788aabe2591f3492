//! Helpers shared by the identity engine's integration tests: events from JSON,
//! an engine with the sequential id scheme, and effects rendered as text with
//! profiles named by their segment ids and identifiers by `type=value`, so that
//! runs can be compared across engines (a restored engine numbers identifiers
//! differently).
#![allow(dead_code)]

use ps_identity::{
    Effect, Engine, EngineMeta, IdScheme, IdentityConfig, Outcome, ProfileIdx, ProfileRecord, Rule,
    Settings,
};
use ps_spec::{parse_event_str, Arrival, Event};
use serde_json::Value;
use std::collections::BTreeMap;

pub const SEC: i64 = 1_000_000;
pub const DAY: i64 = 86_400 * SEC;
/// 2022-05-02T00:00:00Z.
pub const T0: i64 = 1_651_449_600 * SEC;

/// An ISO-8601 timestamp `micros` after [`T0`].
pub fn at(micros: i64) -> String {
    ps_spec::time::format_iso(T0 + micros)
}

pub fn event(v: &Value) -> Event {
    parse_event_str(
        &v.to_string(),
        &Arrival {
            load_time: 0,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("invalid test event {v}: {e:?}"))
}

pub fn engine(cfg: &IdentityConfig) -> Engine {
    Engine::new(
        Settings::new(cfg).expect("valid settings"),
        IdScheme::Sequential,
        "test",
    )
}

pub fn default_engine() -> Engine {
    engine(&IdentityConfig::default())
}

/// One processed event.
#[derive(Debug, Clone)]
pub struct Step {
    pub outcome: Outcome,
    pub effects: Vec<Effect>,
    /// The effects rendered right after the event (trait snapshots included).
    pub text: Vec<String>,
}

impl Step {
    pub fn conflicts(&self) -> Vec<&ps_identity::Conflict> {
        self.effects
            .iter()
            .filter_map(|f| match f {
                Effect::Conflict(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    pub fn repoints(&self) -> Vec<(ProfileIdx, ProfileIdx)> {
        self.effects
            .iter()
            .filter_map(|f| match f {
                Effect::Repointed { segment, canonical } => Some((*segment, *canonical)),
                _ => None,
            })
            .collect()
    }
}

pub fn run_event(e: &mut Engine, ev: &Event) -> Step {
    let mut effects = Vec::new();
    let outcome = e.process(ev, &mut effects);
    let text = render(e, &effects);
    Step {
        outcome,
        effects,
        text,
    }
}

pub fn run(e: &mut Engine, v: &Value) -> Step {
    run_event(e, &event(v))
}

pub fn seg(e: &Engine, p: Option<ProfileIdx>) -> Option<String> {
    p.map(|p| e.segment_id(p).to_owned())
}

pub fn rule_name(e: &Engine, r: Rule) -> String {
    match r {
        Rule::Limit(t) => format!("limit:{}", e.settings().name(t)),
        Rule::MergeCap => "merge_cap".into(),
        Rule::IdentifierCap => "identifier_cap".into(),
    }
}

/// A profile's current traits as `{"name": value}` text, sorted by name.
pub fn traits_text(e: &Engine, p: ProfileIdx) -> String {
    let m: BTreeMap<&str, &Value> = e.traits(p).collect();
    serde_json::to_string(&m).expect("json")
}

pub fn render(e: &Engine, fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .map(|f| match f {
            Effect::Created { profile } => format!("created {}", e.segment_id(*profile)),
            Effect::Repointed { segment, canonical } => {
                format!(
                    "repoint {} -> {}",
                    e.segment_id(*segment),
                    e.segment_id(*canonical)
                )
            }
            Effect::Attached { profile, ident } => {
                let (t, v) = e.identifier(*ident);
                format!("attach {} {t}={v}", e.segment_id(*profile))
            }
            Effect::Traits { profile } => format!(
                "traits {} {}",
                e.segment_id(*profile),
                traits_text(e, *profile)
            ),
            Effect::Conflict(c) => {
                let mut ps: Vec<&str> = c.profiles.iter().map(|&p| e.segment_id(p)).collect();
                ps.sort_unstable();
                format!(
                    "conflict {} {}={} [{}]",
                    rule_name(e, c.rule),
                    e.settings().name(c.ident_type),
                    c.value,
                    ps.join(",")
                )
            }
        })
        .collect()
}

/// A tiny deterministic generator (xorshift64*). It stays hand-written on
/// purpose: the criterion benches and `examples/profile_engine.rs` build
/// their workloads from it, and the figures in BENCHMARKS.md were measured
/// on exactly those streams; another generator would change them.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        (self.next() >> 11) % n
    }

    /// True with probability `pct`%.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// A random stream over few identifier values: identifies, tracks, pages,
/// aliases and groups with many collisions, traits that change, get nulled and
/// emptied, and increasing timestamps.
pub fn random_stream(seed: u64, n: usize) -> Vec<Value> {
    use serde_json::json;
    let mut r = Rng::new(seed);
    let mut t = 0i64;
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        t += (r.below(3 * DAY as u64) as i64) + 1;
        let kind = ["identify", "track", "page", "alias", "group"][r.below(5) as usize];
        let mut ev = json!({"type": kind, "messageId": format!("m{k}"), "timestamp": at(t)});
        let user = r.chance(40).then(|| format!("u{}", r.below(4)));
        let anon = r.chance(80).then(|| format!("a{}", r.below(8)));
        if let Some(u) = &user {
            ev["userId"] = json!(u);
        }
        match (&anon, &user) {
            (Some(a), _) => ev["anonymousId"] = json!(a),
            (None, None) => ev["anonymousId"] = json!(format!("a{}", r.below(8))),
            _ => {}
        }
        if r.chance(30) {
            ev["context"] = json!({"traits": {"email": format!("e{}@x", r.below(4))}});
        }
        if r.chance(10) {
            let ext = json!([{"id": format!("c{}", r.below(3)), "type": "CRM_ID", "collection": "users"}]);
            if ev.get("context").is_none() {
                ev["context"] = json!({});
            }
            ev["context"]["externalIds"] = ext;
        }
        match kind {
            "identify" | "group" => {
                let mut traits = serde_json::Map::new();
                if r.chance(50) {
                    traits.insert("email".into(), json!(format!("e{}@x", r.below(4))));
                }
                for name in ["plan", "tier"] {
                    match r.below(6) {
                        0 => {
                            traits.insert(name.into(), json!(null));
                        }
                        1 => {
                            traits.insert(name.into(), json!(""));
                        }
                        2 | 3 => {
                            traits.insert(name.into(), json!(format!("{name}{}", r.below(3))));
                        }
                        _ => {}
                    }
                }
                ev["traits"] = Value::Object(traits);
                if kind == "group" {
                    ev["groupId"] = json!(format!("g{}", r.below(2)));
                }
            }
            "track" | "page" => {
                if kind == "track" {
                    ev["event"] = json!("Clicked");
                }
                if r.chance(30) {
                    ev["properties"] = json!({"email": format!("e{}@x", r.below(4))});
                }
            }
            _ => {
                if let Some(a) = &anon {
                    ev["previousId"] = json!(a);
                }
            }
        }
        out.push(ev);
    }
    out
}

/// Stored profile state, kept up to date from `take_dirty` the way the
/// warehouse does, round-tripped through JSON.
pub fn store(e: &mut Engine, stored: &mut BTreeMap<String, String>) {
    for p in e.take_dirty() {
        let r = e.record(p);
        stored.insert(r.segment_id.clone(), serde_json::to_string(&r).unwrap());
    }
}

/// Runs `events` through one engine, and through another that is stopped at
/// `split`, stored (incrementally, via `take_dirty`, through JSON) and restored:
/// the restored engine must continue exactly like the uninterrupted one.
pub fn restore_check(cfg: &IdentityConfig, events: &[Event], split: usize, label: &str) {
    let mut whole = engine(cfg);
    let mut expected = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        let s = run_event(&mut whole, ev);
        if i >= split {
            expected.push((
                seg(&whole, s.outcome.segment),
                seg(&whole, s.outcome.canonical),
                s.outcome.new_types,
                s.text,
            ));
        }
    }
    let mut first = engine(cfg);
    let mut stored = BTreeMap::new();
    for (i, ev) in events[..split].iter().enumerate() {
        run_event(&mut first, ev);
        if i % 7 == 3 {
            store(&mut first, &mut stored);
        }
    }
    store(&mut first, &mut stored);
    let records: Vec<ProfileRecord> = stored
        .values()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    // The dirty-tracked store equals a full dump.
    let full: Vec<ProfileRecord> = (0..first.profile_count() as u32)
        .map(|p| first.record(p))
        .collect();
    let mut sorted = records.clone();
    sorted.sort_by_key(|r| r.ord);
    assert_eq!(sorted, full, "{label}: take_dirty missed a change");
    let meta: EngineMeta =
        serde_json::from_str(&serde_json::to_string(&first.meta()).unwrap()).unwrap();
    let from_records = Engine::restore(
        Settings::new(cfg).unwrap(),
        IdScheme::Sequential,
        "test",
        &meta,
        records,
    )
    .expect("restore");
    // The binary snapshot, in chunks of 3 profiles stored in any order, holds
    // the same records and restores the same engine.
    let n = first.profile_count() as u32;
    let mut chunks: Vec<Vec<u8>> = (0..n.div_ceil(3))
        .map(|c| {
            let mut b = Vec::new();
            first.encode_snapshot(c * 3..(c * 3 + 3).min(n), &mut b);
            b
        })
        .collect();
    chunks.reverse();
    let decoded = Engine::decode_snapshot(chunks.iter().map(Vec::as_slice)).expect("decode");
    assert_eq!(decoded, full, "{label}: snapshot records differ");
    let from_snapshot = Engine::restore_snapshot(
        Settings::new(cfg).unwrap(),
        IdScheme::Sequential,
        "test",
        &meta,
        chunks.iter().map(Vec::as_slice),
    )
    .expect("restore_snapshot");
    for (how, mut restored) in [("records", from_records), ("snapshot", from_snapshot)] {
        assert_eq!(restored.profile_count(), first.profile_count());
        assert_eq!(restored.identifier_count(), first.identifier_count());
        let mut got = Vec::new();
        for ev in &events[split..] {
            let s = run_event(&mut restored, ev);
            got.push((
                seg(&restored, s.outcome.segment),
                seg(&restored, s.outcome.canonical),
                s.outcome.new_types,
                s.text,
            ));
        }
        for (i, (g, x)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(
                g,
                x,
                "{label}, event {} after restore from {how}",
                split + i
            );
        }
        assert_eq!(got.len(), expected.len());
    }
}

/// A realistic workload for the benchmark and the memory estimate: most events
/// are tracks and pages from known visitors (re-used anonymous ids), about 8%
/// identifies (a new user id, or an existing user on a new device, which
/// merges two profiles), about 4% first visits.
pub fn realistic_mix(seed: u64, n: usize) -> Vec<Value> {
    use serde_json::json;
    let mut r = Rng::new(seed);
    // (anonymous id, user index)
    let mut visitors: Vec<(String, Option<usize>)> = Vec::new();
    let mut users = 0usize;
    let mut t = 0i64;
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        t += r.below(200) as i64 * 1_000;
        let roll = r.below(100);
        let ts = at(t);
        let v = if visitors.len() < 100 || roll < 4 {
            let anon = format!("{:016x}-{k}", r.next());
            visitors.push((anon.clone(), None));
            json!({"type": "page", "messageId": format!("m{k}"), "timestamp": ts, "anonymousId": anon,
                   "name": "Home", "properties": {"url": "https://example.com/", "referrer": "https://search.example/"}})
        } else if roll < 12 {
            let vi = r.below(visitors.len() as u64) as usize;
            let user = match visitors[vi].1 {
                Some(u) => u,
                None => {
                    // One in five identifies is a known user on another device.
                    let u = if users > 0 && r.chance(20) {
                        r.below(users as u64) as usize
                    } else {
                        users += 1;
                        users - 1
                    };
                    visitors[vi].1 = Some(u);
                    u
                }
            };
            let plan = ["free", "pro", "team"][r.below(3) as usize];
            json!({"type": "identify", "messageId": format!("m{k}"), "timestamp": ts,
                   "anonymousId": visitors[vi].0, "userId": format!("user-{user}"),
                   "traits": {"email": format!("user{user}@example.com"), "name": format!("User {user}"),
                              "plan": plan, "logins": k}})
        } else {
            let vi = r.below(visitors.len() as u64) as usize;
            let (anon, user) = &visitors[vi];
            let mut v = json!({"type": "track", "event": "Product Viewed", "messageId": format!("m{k}"), "timestamp": ts,
                   "anonymousId": anon, "properties": {"sku": format!("sku-{}", r.below(500)), "price": 9.99},
                   "context": {"library": {"name": "analytics.js", "version": "2.11.1"}, "page": {"path": "/p"}}});
            if let Some(u) = user {
                v["userId"] = json!(format!("user-{u}"));
            }
            if roll >= 60 {
                v["type"] = json!("page");
                v["name"] = json!("Product");
            }
            v
        };
        out.push(v);
    }
    out
}

/// Runs every event through the engine, returning a count that depends on
/// the outcomes (so the work cannot be optimized away). Not inlined, so that
/// profilers attribute the engine's cost to one frame (the callgrind example
/// and the criterion bench share it).
#[inline(never)]
pub fn process_all(e: &mut Engine, events: &[Event], fx: &mut Vec<Effect>) -> u64 {
    let mut n = 0u64;
    for ev in events {
        fx.clear();
        let o = e.process(ev, fx);
        n += o.segment.is_some() as u64 + fx.len() as u64;
    }
    n
}
