//! Property tests: the engine against a naive reference model of SPEC §3.3 and
//! §3.4 written here from the spec (vectors, linear scans, no indexes), on
//! random streams over a handful of identifier values so that collisions,
//! merges and refused merges are frequent.

mod common;

use common::*;
use proptest::prelude::*;
use ps_identity::{Effect, IdentifierConfig, IdentityConfig, ProfileIdx};
use ps_spec::{Event, EventType};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

// ---------------------------------------------------------------- the model

#[derive(Debug, Clone)]
struct MType {
    name: &'static str,
    priority: u32,
    limit: usize,
    /// Window length in microseconds; `None` for ever.
    window: Option<i64>,
}

#[derive(Debug, Clone)]
struct MIdent {
    ty: usize,
    value: String,
    last_seen: i64,
}

#[derive(Debug, Clone)]
struct MProfile {
    canonical: usize,
    merges: u32,
    idents: Vec<MIdent>,
    /// (name, value or null for removed, order of the statement)
    traits: Vec<(String, Value, u64)>,
}

#[derive(Debug, Clone)]
enum MRule {
    Limit(usize),
    MergeCap,
    IdentifierCap,
}

#[derive(Debug)]
struct Model {
    types: Vec<MType>,
    profiles: Vec<MProfile>,
    order: u64,
}

#[derive(Debug, PartialEq, Eq)]
struct MOutcome {
    segment: Option<String>,
    canonical: Option<String>,
    new_types: Vec<String>,
    effects: Vec<String>,
}

fn sid(p: usize) -> String {
    format!("profile_{}", p + 1)
}

impl Model {
    /// Default settings (SPEC §3.2) for the types the streams use; `crm_id`
    /// is added on first sight, after every other type.
    fn new(anon: (usize, Option<i64>), email: (usize, Option<i64>)) -> Model {
        Model {
            types: vec![
                MType {
                    name: "user_id",
                    priority: 1,
                    limit: 1,
                    window: None,
                },
                MType {
                    name: "email",
                    priority: 2,
                    limit: email.0,
                    window: email.1,
                },
                MType {
                    name: "anonymous_id",
                    priority: 6,
                    limit: anon.0,
                    window: anon.1,
                },
            ],
            profiles: Vec::new(),
            order: 0,
        }
    }

    fn type_of(&mut self, name: &str, new_types: &mut Vec<String>) -> usize {
        if let Some(i) = self.types.iter().position(|t| t.name == name) {
            return i;
        }
        assert_eq!(name, "crm_id");
        new_types.push(name.to_owned());
        self.types.push(MType {
            name: "crm_id",
            priority: 11,
            limit: 5,
            window: None,
        });
        self.types.len() - 1
    }

    /// The live profile holding an identifier.
    fn owner(&self, ty: usize, value: &str) -> Option<usize> {
        (0..self.profiles.len()).find(|&p| {
            self.profiles[p].canonical == p
                && self.profiles[p]
                    .idents
                    .iter()
                    .any(|i| i.ty == ty && i.value == value)
        })
    }

    fn extract(&mut self, ev: &Event, new_types: &mut Vec<String>) -> Vec<(usize, String)> {
        let mut ids: Vec<(usize, String)> = Vec::new();
        let mut push = |t: usize, v: Option<&str>| {
            if let Some(v) = v {
                if !v.is_empty() && !ids.iter().any(|(a, b)| *a == t && b == v) {
                    ids.push((t, v.to_owned()));
                }
            }
        };
        let p = ev.payload();
        push(0, p.get("userId").and_then(Value::as_str));
        push(2, p.get("anonymousId").and_then(Value::as_str));
        if matches!(ev.kind, EventType::Identify | EventType::Group) {
            push(
                1,
                p.get("traits")
                    .and_then(|t| t.get("email"))
                    .and_then(Value::as_str),
            );
        }
        push(
            1,
            p.get("context")
                .and_then(|c| c.get("traits"))
                .and_then(|t| t.get("email"))
                .and_then(Value::as_str),
        );
        let ext: Vec<(String, String)> = p
            .get("context")
            .and_then(|c| c.get("externalIds"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["type"].as_str().unwrap().to_lowercase(),
                            e["id"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (ty, id) in ext {
            let t = self.type_of(&ty, new_types);
            push(t, Some(&id));
        }
        ids
    }

    /// SPEC §3.3: would merging `ps` and attaching `ids` break a rule?
    fn broken(&self, ps: &[usize], ids: &[(usize, String)], ts: i64) -> Option<MRule> {
        if ps.len() > 1 {
            let total = self.profiles[ps[0]].merges
                + ps[1..]
                    .iter()
                    .map(|&o| 1 + self.profiles[o].merges)
                    .sum::<u32>();
            if total > 100 {
                return Some(MRule::MergeCap);
            }
        }
        let fresh: Vec<&(usize, String)> = ids
            .iter()
            .filter(|(t, v)| self.owner(*t, v).is_none())
            .collect();
        let held: usize = ps.iter().map(|&p| self.profiles[p].idents.len()).sum();
        if (ps.len() > 1 || !fresh.is_empty()) && held + fresh.len() > 1000 {
            return Some(MRule::IdentifierCap);
        }
        let mut by_priority: Vec<usize> = (0..self.types.len()).collect();
        by_priority.sort_by_key(|&t| self.types[t].priority);
        for t in by_priority {
            let ty = &self.types[t];
            let since = ty.window.map_or(i64::MIN, |w| ts - w);
            let in_event = |i: &MIdent| ids.iter().any(|(it, iv)| *it == i.ty && *iv == i.value);
            let counts: Vec<usize> = ps
                .iter()
                .map(|&p| {
                    self.profiles[p]
                        .idents
                        .iter()
                        .filter(|i| i.ty == t && (i.last_seen >= since || in_event(i)))
                        .count()
                })
                .collect();
            let after =
                counts.iter().sum::<usize>() + fresh.iter().filter(|(ft, _)| *ft == t).count();
            // A limit is broken when the result holds more than allowed, and
            // more than the profiles already held (a profile can be over its
            // windowed limit after re-seeing old values; that is not this
            // event's doing).
            if after > ty.limit && after > counts.iter().copied().max().unwrap_or(0) {
                return Some(MRule::Limit(t));
            }
        }
        None
    }

    fn visible_traits(&self, p: usize) -> String {
        let m: BTreeMap<&str, &Value> = self.profiles[p]
            .traits
            .iter()
            .filter(|(_, v, _)| !v.is_null())
            .map(|(n, v, _)| (n.as_str(), v))
            .collect();
        serde_json::to_string(&m).unwrap()
    }

    fn process(&mut self, ev: &Event) -> MOutcome {
        self.order += 1;
        let ts = ev.timestamp;
        let mut new_types = Vec::new();
        let mut ids = self.extract(ev, &mut new_types);
        let mut fx = Vec::new();
        let (segment, canonical, merges);
        loop {
            let mut ps: Vec<usize> = ids.iter().filter_map(|(t, v)| self.owner(*t, v)).collect();
            ps.sort();
            ps.dedup();
            if ps.is_empty() {
                let p = self.profiles.len();
                self.profiles.push(MProfile {
                    canonical: p,
                    merges: 0,
                    idents: Vec::new(),
                    traits: Vec::new(),
                });
                fx.push(format!("created {}", sid(p)));
                for (t, v) in ids.drain(..) {
                    fx.push(format!("attach {} {}={v}", sid(p), self.types[t].name));
                    self.profiles[p].idents.push(MIdent {
                        ty: t,
                        value: v,
                        last_seen: ts,
                    });
                }
                (segment, canonical, merges) = (p, p, 0);
                break;
            }
            let refusal = if ev.kind == EventType::Alias && ps.len() > 1 {
                Some(None)
            } else {
                self.broken(&ps, &ids, ts).map(Some)
            };
            match refusal {
                None => {
                    let target = ps[0];
                    for &other in &ps[1..] {
                        let moved: Vec<usize> = (0..self.profiles.len())
                            .filter(|&q| self.profiles[q].canonical == other)
                            .collect();
                        for q in moved {
                            self.profiles[q].canonical = target;
                            fx.push(format!("repoint {} -> {}", sid(q), sid(target)));
                        }
                        let o = std::mem::replace(
                            &mut self.profiles[other],
                            MProfile {
                                canonical: target,
                                merges: 0,
                                idents: Vec::new(),
                                traits: Vec::new(),
                            },
                        );
                        let t = &mut self.profiles[target];
                        t.merges += 1 + o.merges;
                        t.idents.extend(o.idents);
                        for (name, value, order) in o.traits {
                            match t.traits.iter_mut().find(|(n, _, _)| *n == name) {
                                Some(x) if x.2 > order => {}
                                Some(x) => *x = (name, value, order),
                                None => t.traits.push((name, value, order)),
                            }
                        }
                    }
                    for (t, v) in ids.drain(..) {
                        let prof = &mut self.profiles[target];
                        match prof.idents.iter_mut().find(|i| i.ty == t && i.value == v) {
                            Some(i) => i.last_seen = i.last_seen.max(ts),
                            None => {
                                fx.push(format!(
                                    "attach {} {}={v}",
                                    sid(target),
                                    self.types[t].name
                                ));
                                prof.idents.push(MIdent {
                                    ty: t,
                                    value: v,
                                    last_seen: ts,
                                });
                            }
                        }
                    }
                    (segment, canonical, merges) = (*ps.last().unwrap(), target, ps.len() - 1);
                    break;
                }
                Some(rule) => {
                    // Least trusted, later on ties; past the identifier cap, new
                    // identifiers go first (the event still resolves to the profile).
                    let is_new = |(t, v): &(usize, String)| self.owner(*t, v).is_none();
                    let new_first =
                        matches!(rule, Some(MRule::IdentifierCap)) && ids.iter().any(is_new);
                    let candidates: Vec<usize> = (0..ids.len())
                        .filter(|&k| !new_first || is_new(&ids[k]))
                        .collect();
                    let mut worst = candidates[0];
                    for &k in &candidates {
                        if self.types[ids[k].0].priority >= self.types[ids[worst].0].priority {
                            worst = k;
                        }
                    }
                    let (t, v) = ids.remove(worst);
                    if let Some(rule) = rule {
                        let rule = match rule {
                            MRule::Limit(lt) => format!("limit:{}", self.types[lt].name),
                            MRule::MergeCap => "merge_cap".into(),
                            MRule::IdentifierCap => "identifier_cap".into(),
                        };
                        let names: BTreeSet<String> = ps.iter().map(|&p| sid(p)).collect();
                        let names: Vec<String> = names.into_iter().collect();
                        fx.push(format!(
                            "conflict {rule} {}={v} [{}]",
                            self.types[t].name,
                            names.join(",")
                        ));
                    }
                }
            }
        }
        // SPEC §3.4: identify traits; an explicit null is a statement too.
        let mut changed = false;
        if ev.kind == EventType::Identify {
            if let Some(traits) = ev.payload().get("traits").and_then(Value::as_object) {
                let order = self.order;
                let prof = &mut self.profiles[canonical];
                for (name, value) in traits {
                    match prof.traits.iter_mut().find(|(n, _, _)| n == name) {
                        Some(x) => {
                            changed |= x.1 != *value;
                            x.1 = value.clone();
                            x.2 = order;
                        }
                        None => {
                            changed |= !value.is_null();
                            prof.traits.push((name.clone(), value.clone(), order));
                        }
                    }
                }
            }
        }
        if changed || merges > 0 {
            fx.push(format!(
                "traits {} {}",
                sid(canonical),
                self.visible_traits(canonical)
            ));
        }
        MOutcome {
            segment: Some(sid(segment)),
            canonical: Some(sid(canonical)),
            new_types,
            effects: fx,
        }
    }
}

// ---------------------------------------------------------------- streams

#[derive(Debug, Clone)]
struct Ev {
    kind: u8,
    user: Option<u8>,
    anon: Option<u8>,
    /// traits.email on identify/group, properties.email (not an identifier) on track/page.
    body_email: Option<u8>,
    ctx_email: Option<u8>,
    crm: Option<u8>,
    plan: u8,
    tier: u8,
    /// Seconds since the previous event.
    dt: u32,
}

fn ev_strategy() -> impl Strategy<Value = Ev> {
    (
        0u8..5,
        proptest::option::weighted(0.4, 0u8..3),
        proptest::option::weighted(0.8, 0u8..5),
        proptest::option::weighted(0.3, 0u8..3),
        proptest::option::weighted(0.2, 0u8..3),
        proptest::option::weighted(0.08, 0u8..2),
        0u8..6,
        0u8..6,
        prop_oneof![0u32..60, 0u32..(4 * 86_400)],
    )
        .prop_map(
            |(kind, user, anon, body_email, ctx_email, crm, plan, tier, dt)| Ev {
                kind,
                user,
                anon,
                body_email,
                ctx_email,
                crm,
                plan,
                tier,
                dt,
            },
        )
}

fn to_json(evs: &[Ev]) -> Vec<Value> {
    let mut t = 0i64;
    evs.iter()
        .enumerate()
        .map(|(k, e)| {
            t += (e.dt as i64 + 1) * SEC;
            let kind = ["identify", "track", "page", "alias", "group"][e.kind as usize];
            let mut v = json!({"type": kind, "messageId": format!("m{k}"), "timestamp": at(t)});
            let anon = if e.user.is_none() && e.anon.is_none() {
                Some(0)
            } else {
                e.anon
            };
            if let Some(u) = e.user {
                v["userId"] = json!(format!("u{u}"));
            }
            if let Some(a) = anon {
                v["anonymousId"] = json!(format!("a{a}"));
            }
            let mut context = Map::new();
            if let Some(m) = e.ctx_email {
                context.insert("traits".into(), json!({"email": format!("e{m}@x")}));
            }
            if let Some(c) = e.crm {
                context.insert(
                    "externalIds".into(),
                    json!([{"id": format!("c{c}"), "type": "CRM_ID", "collection": "users"}]),
                );
            }
            if !context.is_empty() {
                v["context"] = Value::Object(context);
            }
            let mut body = Map::new();
            if let Some(m) = e.body_email {
                body.insert("email".into(), json!(format!("e{m}@x")));
            }
            for (name, choice) in [("plan", e.plan), ("tier", e.tier)] {
                match choice {
                    0 => {
                        body.insert(name.into(), Value::Null);
                    }
                    1 => {
                        body.insert(name.into(), json!(""));
                    }
                    2 | 3 => {
                        body.insert(name.into(), json!(format!("{name}{}", choice - 2)));
                    }
                    _ => {}
                }
            }
            match kind {
                "identify" => v["traits"] = Value::Object(body),
                "group" => {
                    v["traits"] = Value::Object(body);
                    v["groupId"] = json!("g1");
                }
                "track" | "page" => {
                    if kind == "track" {
                        v["event"] = json!("Clicked");
                    }
                    v["properties"] = Value::Object(body);
                }
                _ => {
                    if let Some(a) = anon {
                        v["previousId"] = json!(format!("a{a}"));
                    }
                }
            }
            v
        })
        .collect()
}

fn windowed_cfg() -> IdentityConfig {
    IdentityConfig {
        identifiers: vec![
            IdentifierConfig {
                type_name: "anonymous_id".into(),
                limit: Some(2),
                window: Some("daily".into()),
                ..Default::default()
            },
            IdentifierConfig {
                type_name: "email".into(),
                limit: Some(2),
                window: Some("weekly".into()),
                ..Default::default()
            },
        ],
        ..IdentityConfig::default()
    }
}

// ---------------------------------------------------------------- checks

/// Runs the stream through the engine and the model, comparing event by event,
/// then checks the engine's invariants. Returns the engine's rendered output.
fn check_against_model(
    cfg: &IdentityConfig,
    mut model: Model,
    events: &[Event],
) -> Vec<(Option<String>, Vec<String>)> {
    let mut e = engine(cfg);
    let mut graph: HashMap<ProfileIdx, ProfileIdx> = HashMap::new();
    let mut out = Vec::new();
    for (k, ev) in events.iter().enumerate() {
        let s = run_event(&mut e, ev);
        let want = model.process(ev);
        let got = MOutcome {
            segment: seg(&e, s.outcome.segment),
            canonical: seg(&e, s.outcome.canonical),
            new_types: s.outcome.new_types.clone(),
            effects: s.text.clone(),
        };
        assert_eq!(got, want, "event {k}: {:?}", ev.payload());
        for f in &s.effects {
            match f {
                Effect::Created { profile } => {
                    assert!(graph.insert(*profile, *profile).is_none(), "created twice");
                }
                Effect::Repointed { segment, canonical } => {
                    assert!(graph.contains_key(segment));
                    graph.insert(*segment, *canonical);
                }
                _ => {}
            }
        }
        // The latest id_graph row of every segment id is its canonical id, one hop.
        assert_eq!(graph.len(), e.profile_count());
        for (&s, &c) in &graph {
            assert_eq!(c, e.canonical(s), "id_graph row of {}", e.segment_id(s));
            assert_eq!(
                e.canonical(c),
                c,
                "{} points at merged {}",
                e.segment_id(s),
                e.segment_id(c)
            );
        }
        out.push((got.segment, got.effects));
    }
    // Every identifier is owned by exactly one live profile, and no live
    // profile is over a limit (the windows here never shrink below these).
    let mut owners: HashMap<(String, String), ProfileIdx> = HashMap::new();
    for p in 0..e.profile_count() as ProfileIdx {
        let r = e.record(p);
        if e.canonical(p) != p {
            assert!(
                r.idents.is_empty(),
                "merged-away {} holds identifiers",
                r.segment_id
            );
            continue;
        }
        let mut per_type: HashMap<&str, usize> = HashMap::new();
        for (t, v, _) in &r.idents {
            assert!(
                owners.insert((t.clone(), v.clone()), p).is_none(),
                "{t}={v} owned twice"
            );
            assert_eq!(e.lookup(t, v), Some(p));
            *per_type.entry(t).or_default() += 1;
        }
        let windowed = cfg != &IdentityConfig::default();
        for (t, n) in per_type {
            let limit = if t == "user_id" { 1 } else { 5 };
            if !windowed || t == "user_id" || t == "crm_id" {
                assert!(n <= limit, "{} holds {n} {t}", r.segment_id);
            }
        }
        assert!(r.idents.len() <= 1000);
        // The model holds the same identifiers and traits.
        let mine: BTreeSet<(String, String)> = r
            .idents
            .iter()
            .map(|(t, v, _)| (t.clone(), v.clone()))
            .collect();
        let theirs: BTreeSet<(String, String)> = model.profiles[p as usize]
            .idents
            .iter()
            .map(|i| (model.types[i.ty].name.to_owned(), i.value.clone()))
            .collect();
        assert_eq!(mine, theirs, "identifiers of {}", r.segment_id);
        assert_eq!(
            traits_text(&e, p),
            model.visible_traits(p as usize),
            "traits of {}",
            r.segment_id
        );
    }
    assert_eq!(owners.len(), e.identifier_count());
    out
}

fn parse_all(evs: &[Ev]) -> Vec<Event> {
    to_json(evs).iter().map(event).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_model(evs in proptest::collection::vec(ev_strategy(), 1..80)) {
        let events = parse_all(&evs);
        let cfg = IdentityConfig::default();
        let first = check_against_model(&cfg, Model::new((5, None), (5, None)), &events);
        // Identical output on replay.
        let again = check_against_model(&cfg, Model::new((5, None), (5, None)), &events);
        prop_assert_eq!(first, again);
    }

    #[test]
    fn engine_matches_model_with_windows(evs in proptest::collection::vec(ev_strategy(), 1..80)) {
        let events = parse_all(&evs);
        check_against_model(&windowed_cfg(), Model::new((2, Some(DAY)), (2, Some(7 * DAY))), &events);
    }

    #[test]
    fn restore_anywhere(evs in proptest::collection::vec(ev_strategy(), 1..60), cut in 0.0f64..=1.0) {
        let events = parse_all(&evs);
        let split = ((events.len() as f64) * cut) as usize;
        restore_check(&IdentityConfig::default(), &events, split, "default");
        restore_check(&windowed_cfg(), &events, split, "windowed");
    }
}

/// The model itself, on the golden case study and the shared-laptop case,
/// so that agreement above means something.
#[test]
fn model_sanity() {
    let mut m = Model::new((5, None), (5, None));
    let evs: Vec<Event> = [
        json!({"type": "identify", "messageId": "1", "timestamp": at(0), "userId": "A", "anonymousId": "X"}),
        json!({"type": "identify", "messageId": "2", "timestamp": at(1), "userId": "B", "anonymousId": "X"}),
    ]
    .iter()
    .map(event)
    .collect();
    assert_eq!(
        m.process(&evs[0]).effects,
        [
            "created profile_1",
            "attach profile_1 user_id=A",
            "attach profile_1 anonymous_id=X"
        ]
    );
    assert_eq!(
        m.process(&evs[1]).effects,
        [
            "conflict limit:user_id anonymous_id=X [profile_1]",
            "created profile_2",
            "attach profile_2 user_id=B"
        ]
    );
}
