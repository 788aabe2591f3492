//! Computed = full recompute: random streams (merges through identify calls,
//! late and future timestamps, duplicate message ids) landed in random batch
//! splits; after each commit every computed value of every profile equals
//! `ps_compute`'s evaluator over all of the profile's landed events at the
//! same `as_of`, with restarts (state read back from `_ps_compute`) between
//! some batches, and privacy deletes (the deleted profile's events leave the
//! model, its computed state and the rows compute emitted for it leave the
//! warehouse). (Definitions here match tracks and pages, which carry one
//! identifier each, so the test knows their profile without a model of
//! identity.)

use proptest::prelude::*;
use ps_compute::{audience_members, computed_value, fact_name, Definitions, Fact, Profile};
use ps_pipeline::{Batch, Origin, Pending, RegulationKind, Source, Space, SpaceConfig, Subject};
use ps_spec::Arrival;
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const DEFS: &str = r#"
[[computed_traits]]
key = "orders_10d"
kind = "count"
event = "Order Completed"
within = "10d"
[[computed_traits]]
key = "revenue"
kind = "sum"
event = "Order Completed"
property = "revenue"
[[computed_traits]]
key = "avg_revenue"
kind = "avg"
event = "Order Completed"
property = "revenue"
[[computed_traits]]
key = "low"
kind = "min"
event = "Order Completed"
property = "revenue"
within = "20d"
[[computed_traits]]
key = "high"
kind = "max"
event = "Order Completed"
property = "revenue"
where = [ { property = "currency", op = "not_equals", value = "GBP" } ]
[[computed_traits]]
key = "first_currency"
kind = "first"
event = "Order Completed"
property = "currency"
[[computed_traits]]
key = "last_currency"
kind = "last"
event = "Order Completed"
property = "currency"
within = "15d"
[[computed_traits]]
key = "top_currency"
kind = "most_frequent"
event = "Order Completed"
property = "currency"
[[computed_traits]]
key = "currencies"
kind = "unique_list"
events = ["Order Completed", "Page Viewed"]
property = "currency"
list_cap = 2
[[computed_traits]]
key = "n_currencies"
kind = "unique_count"
event = "Order Completed"
property = "currency"
[[computed_traits]]
key = "pages_7d"
kind = "count"
event = "Page Viewed"
within = "7d"
[[audiences]]
key = "big"
all = [
  { trait = "revenue", op = "gte", value = 6 },
  { event = "Order Completed", within = "10d" },
]
[[audiences]]
key = "quiet"
include_anonymous = true
none = [ { event = "Page Viewed", within = "3d" } ]
[[audiences]]
key = "big_and_quiet"
all = [ { audience = "big" }, { audience = "quiet" } ]
"#;

/// Another config, swapped in at some restarts: a changed window, a
/// definition without its filter, fewer paths per event (`currency` is read
/// on pages only, where [`DEFS`] reads it on orders too), so switching to
/// [`DEFS`] needs the landed tables (the stored orders hold no currency
/// though some page's do) and switching back only narrows the stored
/// facts.
const DEFS_OTHER: &str = r#"
[[computed_traits]]
key = "orders_10d"
kind = "count"
event = "Order Completed"
within = "5d"
[[computed_traits]]
key = "revenue"
kind = "sum"
event = "Order Completed"
property = "revenue"
[[computed_traits]]
key = "high"
kind = "max"
event = "Order Completed"
property = "revenue"
[[computed_traits]]
key = "orders_ever"
kind = "count"
event = "Order Completed"
[[computed_traits]]
key = "page_currencies"
kind = "unique_count"
event = "Page Viewed"
property = "currency"
[[audiences]]
key = "big"
all = [
  { trait = "revenue", op = "gte", value = 6 },
  { event = "Order Completed", within = "10d" },
]
[[audiences]]
key = "any_order"
include_anonymous = true
all = [ { trait = "orders_ever", op = "gte", value = 1 } ]
"#;

const DAY: i64 = 86_400_000_000;
const AS_OF_DAY: i64 = 30;
const BASE: i64 = 1_650_000_000_000_000;

/// (kind: 0 order, 1 page, 2 identify with both ids; anon, user, day,
/// revenue, currency, message id)
type Ev = (u8, u8, u8, i64, Option<i64>, Option<u8>, u8);

fn payload(i: usize, e: &Ev) -> Json {
    let (kind, anon, user, day, revenue, currency, mid) = *e;
    let ts = ps_spec::time::format_iso(BASE + day * DAY + i as i64);
    let mut props = serde_json::Map::new();
    if let Some(r) = revenue {
        props.insert("revenue".into(), json!(r));
    }
    if let Some(c) = currency {
        props.insert(
            "currency".into(),
            json!(["USD", "EUR", "GBP"][c as usize % 3]),
        );
    }
    let mid = format!("m{mid}");
    let a = format!("a{}", anon % 5);
    let u = format!("u{}", user % 3);
    match kind % 3 {
        0 if anon % 2 == 0 => json!({"type": "track", "event": "Order Completed", "messageId": mid,
            "anonymousId": a, "timestamp": ts, "properties": props}),
        0 => json!({"type": "track", "event": "Order Completed", "messageId": mid,
            "userId": u, "timestamp": ts, "properties": props}),
        1 => json!({"type": "page", "messageId": mid, "anonymousId": a, "timestamp": ts,
            "properties": props}),
        _ => json!({"type": "identify", "messageId": mid, "anonymousId": a, "userId": u,
            "timestamp": ts}),
    }
}

const ORIGIN: Origin = Origin {
    place: "test",
    default_source: Some(0),
    batch_write_key: None,
};

/// Adds event `i` to `batch`; its payload joins `landed` (the model) unless
/// its message id was seen before.
fn add(
    space: &mut Space,
    batch: &mut Batch,
    (i, e): (usize, &Ev),
    seen: &mut BTreeSet<String>,
    landed: &mut Vec<Json>,
) {
    let p = payload(i, e);
    space
        .add_json(batch, Ok(p.clone()), None, ORIGIN, Arrival::default())
        .unwrap();
    if seen.insert(p["messageId"].as_str().unwrap().to_owned()) {
        landed.push(p);
    }
}

fn check(space: &Space, defs: &Definitions, landed: &[Json]) {
    check_at(space, defs, landed, BASE + AS_OF_DAY * DAY);
}

/// The profile a landed payload's identifier resolves to now (each landed
/// track or page has one identifier; an identify's user id has merged its
/// anonymous id into the same profile).
fn profile_of(engine: &ps_identity::Engine, p: &Json) -> Option<u32> {
    let (ty, v) = match (p.get("userId"), p.get("anonymousId")) {
        (Some(u), _) => ("user_id", u),
        (None, Some(a)) => ("anonymous_id", a),
        (None, None) => unreachable!(),
    };
    engine.lookup(ty, v.as_str().unwrap())
}

fn check_at(space: &Space, defs: &Definitions, landed: &[Json], as_of: i64) {
    let engine = space.engine();
    let mut facts: BTreeMap<u32, Vec<Fact>> = BTreeMap::new();
    let mut profiles = BTreeSet::new();
    for p in landed {
        let prof = profile_of(engine, p).expect("landed");
        profiles.insert(prof);
        if p["type"] == "identify" {
            continue;
        }
        let kind = p["type"].as_str().unwrap();
        let name = fact_name(kind, p.get("event").and_then(Json::as_str));
        let ts = ps_spec::time::parse_timestamp(p["timestamp"].as_str().unwrap()).unwrap();
        facts.entry(prof).or_default().push(Fact::new(
            name,
            ts,
            p["messageId"].as_str().unwrap(),
            p.clone(),
        ));
    }
    for prof in profiles {
        let mut fs = facts.remove(&prof).unwrap_or_default();
        fs.sort_by(|a, b| a.order().cmp(&b.order()));
        let got = space.computed_values(prof).cloned().unwrap_or_default();
        let mut traits = serde_json::Map::new();
        for t in &defs.traits {
            let want = computed_value(t, &fs, as_of);
            let have = got.get(&t.key).cloned().unwrap_or(Json::Null);
            assert_eq!(have, want, "{} of profile {prof}", t.key);
            if !want.is_null() {
                traits.insert(t.key.clone(), want);
            }
        }
        let identified = engine
            .identifiers_of(prof)
            .iter()
            .any(|(t, _)| t == "user_id" || t == "email");
        let members = audience_members(
            &defs.audiences,
            &Profile {
                traits,
                identified,
                facts: fs,
            },
            as_of,
        );
        for (k, m) in members {
            assert_eq!(
                got.get(&k) == Some(&Json::Bool(true)),
                m,
                "audience {k} of profile {prof}"
            );
        }
    }
}

/// Rows of the space's tables whose `segment_id` is one of `segs`; with
/// `compute_only`, only the rows compute emitted (`event_source_id`).
fn rows_of(
    space: &Space,
    wh: &mut dyn ps_warehouse::Warehouse,
    segs: &[String],
    compute_only: bool,
) -> i64 {
    let d = wh.dialect().clone();
    let segs_in: Vec<String> = segs.iter().map(|s| ps_warehouse::literal(s)).collect();
    let tables: Vec<(String, bool)> = space
        .catalog()
        .tables()
        .filter(|t| t.position("segment_id").is_some())
        .map(|t| (t.name.clone(), t.position("event_source_id").is_some()))
        .collect();
    let mut n = 0;
    for (t, sourced) in tables {
        if compute_only && !sourced {
            continue;
        }
        let mut sql = format!(
            "SELECT COUNT(*) FROM {} WHERE segment_id IN ({})",
            d.table("model", &t),
            segs_in.join(", ")
        );
        if compute_only {
            sql.push_str(" AND event_source_id = 'ps-compute'");
        }
        match wh.query(&sql).unwrap()[0][0] {
            ps_spec::Value::Int(c) => n += c,
            ref v => panic!("count of {t}: {v:?}"),
        }
    }
    n
}

/// A privacy `delete` of user `u{user}` (after a commit): the profile's
/// events leave `landed` (the model), and every row of its segments leaves
/// the warehouse, compute's rows among them. Returns the compute rows the
/// profile had before (0 when the user is not known).
fn delete_user(
    space: &mut Space,
    wh: &mut dyn ps_warehouse::Warehouse,
    landed: &mut Vec<Json>,
    user: u8,
) -> i64 {
    let engine = space.engine();
    let Some(p) = engine.lookup("user_id", &format!("u{user}")) else {
        return 0;
    };
    let segs: Vec<String> = engine
        .segments_of(p)
        .iter()
        .map(|&s| engine.segment_id(s).to_owned())
        .collect();
    landed.retain(|ev| profile_of(engine, ev) != Some(p));
    let before = rows_of(space, wh, &segs, true);
    let subject: Subject = format!("user_id:u{user}").parse().unwrap();
    let reg = space
        .regulate(wh, RegulationKind::Delete, &subject, BASE)
        .unwrap();
    assert_eq!(reg.status, "finished", "{reg:?}");
    assert_eq!(
        space.computed_values(p),
        None,
        "values of deleted profile {p}"
    );
    assert_eq!(
        rows_of(space, wh, &segs, false),
        0,
        "rows of deleted profile {p}"
    );
    before
}

fn config(text: &str) -> (Definitions, SpaceConfig) {
    let raw: ps_compute::RawDefinitions = toml::from_str(text).unwrap();
    let defs = Definitions::check(&raw, &[]).unwrap();
    let cfg = SpaceConfig {
        space: "model".into(),
        sources: vec![Source {
            id: "s".into(),
            name: "S".into(),
            slug: "s".into(),
            write_key: "wk".into(),
        }],
        identity: Default::default(),
        compute: Some(Arc::new(defs.clone())),
    };
    (defs, cfg)
}

/// The space opened (again) on `wh`, as of day [`AS_OF_DAY`].
fn open(wh: &mut dyn ps_warehouse::Warehouse, cfg: &SpaceConfig) -> Space {
    let mut space = Space::open(wh, cfg.clone()).unwrap();
    space.set_as_of(Some(BASE + AS_OF_DAY * DAY));
    space
}

/// A DuckDB warehouse in a temp dir (removed when the guard drops) and the
/// space opened on it, as of day [`AS_OF_DAY`].
fn fresh(cfg: &SpaceConfig) -> (tempfile::TempDir, Box<dyn ps_warehouse::Warehouse>, Space) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("duckdb://{}", dir.path().join("wh.duckdb").display());
    let mut wh = ps_warehouse::open(&url).unwrap();
    let space = open(wh.as_mut(), cfg);
    (dir, wh, space)
}

/// `switch`: some restarts come back with the other definitions (added,
/// changed and removed ones), which are backfilled from the landed events;
/// after the next commit every value equals a full recompute with the
/// definitions of the moment. A cut in `parts` ends a batch but not its
/// transaction (`Space::prepare_part`, as a file replay lands many batches
/// in one transaction): values are evaluated at the transaction's end,
/// which a third of the commits prepare apart (`Space::prepare_end`).
/// After the commit at cut `i`, each `(i, k)` in `deletes` deletes user
/// `u{k}` (a privacy request); later events of its identifiers make a new
/// profile, whose values count only them.
fn run(events: &[Ev], cuts: &[usize], parts: &[usize], switch: bool, deletes: &[(usize, u8)]) {
    let configs = [config(DEFS), config(DEFS_OTHER)];
    let mut current = 0;
    let (mut defs, mut cfg) = configs[current].clone();
    let (_dir, mut wh, mut space) = fresh(&cfg);
    let d = wh.dialect().clone();
    let mut pending = Pending::default();
    let mut landed: Vec<Json> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut batch = space.begin_batch(BASE);
    for (i, e) in events.iter().enumerate() {
        add(&mut space, &mut batch, (i, e), &mut seen, &mut landed);
        if cuts.contains(&i) && parts.contains(&i) {
            let part = space.prepare_part(&d, batch);
            pending.add(wh.as_mut(), part).unwrap();
            batch = space.begin_batch(BASE);
        } else if cuts.contains(&i) {
            if i % 3 == 0 {
                // As a file replay with definitions ends a transaction:
                // its end prepared apart, after its last events.
                let part = space.prepare_part(&d, batch);
                pending.add(wh.as_mut(), part).unwrap();
                pending.add(wh.as_mut(), space.prepare_end(&d)).unwrap();
            } else {
                let last = space.prepare(&d, batch);
                pending.add(wh.as_mut(), last).unwrap();
            }
            pending.commit(wh.as_mut()).unwrap();
            check(&space, &defs, &landed);
            for &(_, k) in deletes.iter().filter(|(at, _)| *at == i) {
                delete_user(&mut space, wh.as_mut(), &mut landed, k);
                check(&space, &defs, &landed);
            }
            if i % 2 == 0 {
                // A restart: the state comes back from the warehouse.
                let switched = switch && i % 4 == 0;
                if switched {
                    current = 1 - current;
                    (defs, cfg) = configs[current].clone();
                }
                space = open(wh.as_mut(), &cfg);
                if switched {
                    // Re-evaluated at the next commit, with no event.
                    let empty = space.begin_batch(BASE);
                    space.commit(wh.as_mut(), empty).unwrap();
                }
                check(&space, &defs, &landed);
            }
            batch = space.begin_batch(BASE);
        }
    }
    let last = space.prepare(&d, batch);
    pending.add(wh.as_mut(), last).unwrap();
    pending.commit(wh.as_mut()).unwrap();
    check(&space, &defs, &landed);
    // Ticks: later (windows age), once back in time, and across a restart;
    // after each, every value equals a full recompute at the tick's time.
    for (n, day) in [33, 38, 34, 45, 61, 75].into_iter().enumerate() {
        if n == 3 {
            space = Space::open(wh.as_mut(), cfg.clone()).unwrap();
        }
        let at = BASE + day * DAY;
        space.set_as_of(Some(at));
        space.compute_tick(at);
        let empty = space.begin_batch(BASE);
        space.commit(wh.as_mut(), empty).unwrap();
        check_at(&space, &defs, &landed, at);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn computed_values_equal_a_full_recompute(
        events in prop::collection::vec(
            (0u8..3, 0u8..5, 0u8..3, 0i64..40, prop::option::of(0i64..5),
             prop::option::of(0u8..3), 0u8..40),
            1..40,
        ),
        cuts in prop::collection::vec(0usize..40, 0..8),
        parts in prop::collection::vec(0usize..40, 0..4),
        switch in any::<bool>(),
        deletes in prop::collection::vec((0usize..40, 0u8..3), 0..3),
    ) {
        run(&events, &cuts, &parts, switch, &deletes);
    }
}

/// Definitions swapped at restarts after events of every kind landed:
/// orders and pages before the first switch (to the other definitions,
/// which read fewer paths per event), more events, then back (`currency`
/// on orders is read again and comes from the landed tables).
#[test]
fn definitions_swapped_after_events_landed_equal_a_full_recompute() {
    let mut events: Vec<Ev> = Vec::new();
    for i in 0..24u8 {
        let kind = i % 3;
        events.push((
            kind,
            i % 5,
            i % 3,
            i64::from(i) + 5,
            Some(i64::from(i % 4)),
            Some(i % 3),
            i,
        ));
    }
    run(&events, &[3, 4, 8, 12, 16, 23], &[], true, &[]);
}

/// A tick re-evaluates only the profiles with something that ages out by
/// its time (the expiry index), and values still equal a full recompute.
#[test]
fn ticks_re_evaluate_only_the_profiles_due() {
    let (defs, cfg) = config(DEFS);
    let (_dir, mut wh, mut space) = fresh(&cfg);
    // Orders (users u0, u1, u2; odd anon = by user id) at days 1, 25, 28;
    // identifies alone for anonymous a0 / user u0. As of day 30 the windows
    // (10, 15, 20 days for orders) of u0's order have all passed; u1's
    // first ends at day 35, u2's at day 38.
    let events: Vec<Ev> = vec![
        (0, 1, 0, 1, Some(5), Some(0), 1),
        (0, 1, 1, 25, Some(7), Some(1), 2),
        (0, 1, 2, 28, Some(9), Some(0), 3),
        (2, 0, 0, 2, None, None, 4),
    ];
    let at = |day: i64| BASE + day * DAY;
    let mut batch = space.begin_batch(BASE);
    let (mut seen, mut landed) = (BTreeSet::new(), Vec::new());
    for (i, e) in events.iter().enumerate() {
        add(&mut space, &mut batch, (i, e), &mut seen, &mut landed);
    }
    let stats = space.commit(wh.as_mut(), batch).unwrap();
    check_at(&space, &defs, &landed, at(30));
    assert!(stats.computed_evaluated >= 3, "{stats:?}");
    let tick = |space: &mut Space, wh: &mut dyn ps_warehouse::Warehouse, day: i64| {
        space.set_as_of(Some(at(day)));
        let due = space.compute_tick(at(day));
        let empty = space.begin_batch(BASE);
        let stats = space.commit(wh, empty).unwrap();
        (due, stats.computed_evaluated, stats.computed_changes)
    };
    // Nothing ages out by day 34.
    assert_eq!(tick(&mut space, wh.as_mut(), 34), (false, 0, 0));
    check_at(&space, &defs, &landed, at(34));
    // Day 36: u1's order left the 10-day window; only u1 is re-evaluated.
    assert_eq!(tick(&mut space, wh.as_mut(), 36), (true, 1, 1));
    check_at(&space, &defs, &landed, at(36));
    // After a restart the index is rebuilt from the stored state: day 39
    // takes u2 (its window ended at day 38) and not u1 (next at day 40).
    space = Space::open(wh.as_mut(), cfg.clone()).unwrap();
    assert_eq!(tick(&mut space, wh.as_mut(), 39), (true, 1, 1));
    check_at(&space, &defs, &landed, at(39));
    // Far later: u1 and u2 have windows still open (20-day `low`), u0 none.
    assert_eq!(tick(&mut space, wh.as_mut(), 60).1, 2);
    check_at(&space, &defs, &landed, at(60));
    assert_eq!(tick(&mut space, wh.as_mut(), 90), (false, 0, 0));
    // Back in time: every profile with state is re-evaluated.
    let (due, evaluated, _) = tick(&mut space, wh.as_mut(), 31);
    assert!(due && evaluated >= 3, "{evaluated}");
    check_at(&space, &defs, &landed, at(31));
}

/// A privacy delete on a space with definitions: the deleted profile's
/// computed state and the rows compute emitted for it (audience entered,
/// identifies, snapshots) are gone, the other profiles keep theirs, a replay
/// of its old events stays deduplicated, and its identifiers' new events
/// start a profile whose values count only them, across a restart.
#[test]
fn a_deleted_profile_loses_its_computed_state_and_emitted_rows() {
    let (defs, cfg) = config(DEFS);
    let (_dir, mut wh, mut space) = fresh(&cfg);
    let mut landed = Vec::new();
    let mut seen = BTreeSet::new();
    let mut land = |space: &mut Space,
                    wh: &mut dyn ps_warehouse::Warehouse,
                    evs: &[Ev],
                    landed: &mut Vec<Json>| {
        let mut batch = space.begin_batch(BASE);
        for (i, e) in evs.iter().enumerate() {
            add(space, &mut batch, (i, e), &mut seen, landed);
        }
        space.commit(wh, batch).unwrap();
    };
    // u0 orders twice (revenue 8: "big"), then its anonymous a0 is merged
    // in and views a page; u1 orders once (revenue 7: "big" too).
    let first: Vec<Ev> = vec![
        (0, 1, 0, 25, Some(4), Some(0), 1),
        (0, 1, 0, 26, Some(4), Some(1), 2),
        (2, 0, 0, 27, None, None, 3),
        (1, 0, 0, 28, None, Some(2), 4),
        (0, 1, 1, 27, Some(7), Some(0), 5),
    ];
    land(&mut space, wh.as_mut(), &first, &mut landed);
    check(&space, &defs, &landed);
    let u1 = space.engine().lookup("user_id", "u1").unwrap();
    assert_eq!(space.computed_values(u1).unwrap()["big"], json!(true));
    let deleted = delete_user(&mut space, wh.as_mut(), &mut landed, 0);
    // Entered "big", an identifies row and a snapshot per change at least.
    assert!(
        deleted >= 2,
        "compute rows of u0 before the delete: {deleted}"
    );
    assert_eq!(landed.len(), 1, "only u1's order is left");
    check(&space, &defs, &landed);
    assert_eq!(space.computed_values(u1).unwrap()["big"], json!(true));
    // Across a restart the state comes back without the deleted profile.
    space = open(wh.as_mut(), &cfg);
    check(&space, &defs, &landed);
    // The old order replayed is still deduplicated; a new one counts alone.
    let again: Vec<Ev> = vec![
        (0, 1, 0, 25, Some(4), Some(0), 1),
        (0, 1, 0, 29, Some(1), Some(1), 6),
    ];
    land(&mut space, wh.as_mut(), &again, &mut landed);
    check(&space, &defs, &landed);
    let u0 = space.engine().lookup("user_id", "u0").unwrap();
    let values = space.computed_values(u0).unwrap();
    assert_eq!(values["revenue"], json!(1.0));
    assert_eq!(values.get("big"), None, "never a member: {values:?}");
}
