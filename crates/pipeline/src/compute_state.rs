//! The stored form of the compute state (`_ps_compute`): a log. Each row
//! is a *layer* of one profile, `k` its profile number and `state` JSON:
//! `{"l": layer, "n": [name, …], "p": [path, …], "f": [[name number,
//! timestamp, message id, [[path number, value], …]], …], "v": {values last
//! emitted}, "t": {audience: transitions}, "c": changes, "s": {SQL traits'
//! values}}` (`"s"` only when there are some; a fact's fourth element only
//! when it holds values). `"n"` lists the event names of the facts and
//! `"p"` the paths (arrays of keys from the event's root) their values are
//! at; a fact names each by its place in the list.
//!
//! A commit appends one row per profile whose state changed, in the
//! batch's own transaction: the profile's head (`v`, `t`, `c`, `s`) and
//! only the facts it gained since its previous row ([`layers`]), so a
//! small commit writes what changed, not every fact of every profile it
//! touched, and deletes nothing. A profile's facts are the union of its
//! rows' and of the rows of profiles merged into it; its head is its
//! newest row's ([`load`]). The table is rewritten whole when its rows
//! outgrow four per profile, after a privacy deletion, and when
//! definitions changed or `compute --full` read the facts again.
//!
//! Older forms are read as well: a row with no `"l"` (one per profile,
//! written before the log), a name in place of its number (before `"n"`),
//! and a fourth element that is the reduced event object (before facts
//! were flat, with no `"p"`).
//!
//! Stored rather than rebuilt from the landed event tables at open: the
//! event tables hold flattened, typed columns (a value that did not fit its
//! column is NULL, colliding keys keep one value), so a rebuild could not
//! always read back what the evaluator read, and it would read every event
//! table at each start. See docs/DECISIONS.md.

use crate::compute::{cores, on_cores, Compute, ProfileState};
use crate::compute_fact::Interner;
use crate::error::{Error, Result};
use crate::state::COMPACT_SLACK;
use ps_compute::Fact;
use ps_identity::{Engine, ProfileIdx};
use ps_spec::Value;
use ps_warehouse::contract::{self as c, Col, Layout};
use ps_warehouse::{sql, Warehouse};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;

/// A fact as written: name number, timestamp, message id and, when it
/// holds values, (path number, value) pairs.
struct FactOut<'a> {
    name: usize,
    timestamp: i64,
    id: &'a str,
    values: Vec<(usize, &'a Json)>,
}

impl Serialize for FactOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(if self.values.is_empty() { 3 } else { 4 }))?;
        seq.serialize_element(&self.name)?;
        seq.serialize_element(&self.timestamp)?;
        seq.serialize_element(self.id)?;
        if !self.values.is_empty() {
            seq.serialize_element(&self.values)?;
        }
        seq.end()
    }
}

/// `state` as written: borrowed from the state, so encoding copies nothing
/// but the text.
#[derive(Serialize)]
struct Out<'a> {
    l: u64,
    n: Vec<&'a str>,
    p: Vec<&'a [String]>,
    f: Vec<FactOut<'a>>,
    v: &'a BTreeMap<String, Json>,
    t: &'a BTreeMap<String, u64>,
    c: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    s: &'a BTreeMap<String, Json>,
}

/// A fact's name as read: its number in `"n"`, or (written before the name
/// table) the name itself.
#[derive(Deserialize)]
#[serde(untagged)]
enum NameIn {
    Number(usize),
    Text(String),
}

/// A fact as read: name, timestamp, message id, and its values (absent:
/// none) as (path number, value) pairs or, written before facts were flat,
/// the reduced event object.
struct FactIn(NameIn, i64, String, Json);

impl<'de> Deserialize<'de> for FactIn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FactIn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a fact: [name, timestamp, message id, values?]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<FactIn, A::Error> {
                use serde::de::Error;
                let name = a
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let ts = a
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                let id = a
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(2, &self))?;
                let values = a.next_element()?.unwrap_or(Json::Array(Vec::new()));
                Ok(FactIn(name, ts, id, values))
            }
        }
        d.deserialize_seq(V)
    }
}

/// `state` as read.
#[derive(Deserialize)]
struct In {
    #[serde(default)]
    l: u64,
    #[serde(default)]
    n: Vec<String>,
    #[serde(default)]
    p: Vec<Vec<String>>,
    f: Vec<FactIn>,
    v: BTreeMap<String, Json>,
    t: BTreeMap<String, u64>,
    c: u64,
    #[serde(default)]
    s: BTreeMap<String, Json>,
}

/// The place of `x` in `list`, added if missing. Facts share their names
/// and path pointers (`Interner`), so the pointer finds one already
/// listed; equal contents are the fallback.
fn number<'a, T: ?Sized + PartialEq>(list: &mut Vec<&'a Arc<T>>, x: &'a Arc<T>) -> usize {
    list.iter()
        .position(|p| Arc::ptr_eq(p, x))
        .or_else(|| list.iter().position(|p| ***p == **x))
        .unwrap_or_else(|| {
            list.push(x);
            list.len() - 1
        })
}

/// Rows from which [`layers`] encodes on several threads.
const PARALLEL_ROWS: usize = 2048;

/// The rows to append to `_ps_compute` for the profiles whose state
/// changed since the last commit (`Compute::dirty`), and whether they
/// replace every row: a row per profile holding its head and only the
/// facts it gained since its last row, or, when the table rewrites whole
/// (`Compute::compact`, or the rows outgrew four per profile), every
/// profile's whole state.
pub(crate) fn layers(cs: &mut Compute) -> (Vec<Vec<Value>>, bool) {
    let dirty = std::mem::take(&mut cs.dirty);
    let live = cs.profiles.len() as u64;
    let whole = cs.compact || cs.log_rows + dirty.len() as u64 > 4 * live + COMPACT_SLACK;
    let keys: Vec<ProfileIdx> = if whole {
        let mut all: Vec<ProfileIdx> = cs.profiles.keys().copied().collect();
        all.sort_unstable();
        all
    } else {
        let mut dirty: Vec<ProfileIdx> = dirty.into_iter().collect();
        dirty.sort_unstable();
        dirty
    };
    cs.layer += 1;
    let layer = cs.layer;
    // A profile with no state left was merged away (its rows load into the survivor) or
    // deleted (which rewrites the table whole).
    let mut jobs: Vec<Job> = Vec::with_capacity(keys.len());
    for p in keys {
        if let Some(st) = cs.profiles.get_mut(&p) {
            let fresh = std::mem::take(&mut st.fresh);
            jobs.push((p, fresh, whole || !st.logged));
            st.logged = true;
        }
    }
    // Encoding is most of a large commit's own work and runs while the
    // landing thread waits for this batch, so large ones are split over
    // the machine's cores.
    let threads = if jobs.len() < PARALLEL_ROWS {
        1
    } else {
        cores()
    };
    let rows = rows_of(&cs.profiles, jobs, layer, threads);
    if whole {
        cs.log_rows = rows.len() as u64;
        cs.compact = false;
    } else {
        cs.log_rows += rows.len() as u64;
    }
    (rows, whole)
}

/// What a row holds: its profile, the facts gained since its last row,
/// and whether the row holds every fact instead.
type Job = (ProfileIdx, Vec<Fact>, bool);

/// The `_ps_compute` rows of `jobs`, in order, encoded on `threads`
/// threads.
fn rows_of(
    profiles: &hashbrown::HashMap<ProfileIdx, ProfileState>,
    jobs: Vec<Job>,
    layer: u64,
    threads: usize,
) -> Vec<Vec<Value>> {
    on_cores(jobs, threads, |jobs| {
        let layout = Layout::of(c::STATE_COMPUTE);
        jobs.iter()
            .map(|(p, fresh, full)| {
                let st = &profiles[p];
                let facts = if *full { &st.facts[..] } else { &fresh[..] };
                let mut row = layout.row();
                row.set(Col::K, Value::Str(p.to_string()))
                    .set(Col::State, Value::Str(encode(layer, st, facts)));
                row.into_cells()
            })
            .collect()
    })
}

/// One row's `state`: layer `layer`, the head of `s` and `facts`.
pub(crate) fn encode(layer: u64, s: &ProfileState, facts: &[Fact]) -> String {
    let mut names: Vec<&Arc<str>> = Vec::new();
    let mut paths: Vec<&Arc<[String]>> = Vec::new();
    let mut f = Vec::with_capacity(facts.len());
    for fact in facts {
        let values = fact
            .values()
            .iter()
            .map(|(k, v)| (number(&mut paths, k), v))
            .collect();
        f.push(FactOut {
            name: number(&mut names, &fact.name),
            timestamp: fact.timestamp,
            id: &fact.message_id,
            values,
        });
    }
    let out = Out {
        l: layer,
        n: names.iter().map(|n| &n[..]).collect(),
        p: paths.iter().map(|p| &p[..]).collect(),
        f,
        v: &s.values,
        t: &s.transitions,
        c: s.changes,
        s: &s.sql,
    };
    serde_json::to_string(&out).expect("the state serializes")
}

/// A stored `state` back, with its layer, its facts sharing `shared`'s
/// names and paths; `None` if it is not one.
pub(crate) fn decode(text: &str, shared: &mut Interner) -> Option<(u64, ProfileState)> {
    let i: In = serde_json::from_str(text).ok()?;
    let keys: Vec<Arc<[String]>> = i.p.iter().map(|p| shared.key(p)).collect();
    let names: Vec<Arc<str>> = i.n.iter().map(|n| shared.name(n)).collect();
    let mut facts = Vec::with_capacity(i.f.len());
    for FactIn(name, ts, id, values) in i.f {
        let name = match name {
            NameIn::Number(n) => names.get(n)?.clone(),
            NameIn::Text(t) => shared.name(&t),
        };
        let fact = match values {
            Json::Array(pairs) => {
                let values = pairs
                    .into_iter()
                    .map(|pair| match pair {
                        Json::Array(mut kv) if kv.len() == 2 => {
                            let v = kv.pop()?;
                            let k = keys.get(usize::try_from(kv[0].as_u64()?).ok()?)?;
                            Some((k.clone(), v))
                        }
                        _ => None,
                    })
                    .collect::<Option<_>>()?;
                Fact::reduced(name, ts, &id, values)
            }
            // Written before facts were flat: the reduced event object.
            event @ Json::Object(_) => shared.fact_of(&name, ts, &id, &event),
            _ => return None,
        };
        facts.push(fact);
    }
    let state = ProfileState {
        facts,
        values: i.v,
        transitions: i.t,
        changes: i.c,
        sql: i.s,
        ..ProfileState::default()
    };
    Some((i.l, state))
}

/// Reads `_ps_compute` back into `cs`: each row's facts join the profile
/// its key is canonical in now (a merged-away profile's rows load into the
/// survivor), the head (values, transitions, changes, SQL values) comes
/// from the profile's own newest row, and a fact written twice (a profile
/// rewrote whole what a merged-away one's rows hold) is kept once.
pub(crate) fn load(
    wh: &mut dyn Warehouse,
    schema: &str,
    engine: &Engine,
    cs: &mut Compute,
) -> Result<()> {
    let d = wh.dialect().clone();
    let mut heads: HashMap<ProfileIdx, u64> = HashMap::new();
    let mut bad = None;
    wh.for_each_row(
        &sql::select(&d, schema, c::STATE_COMPUTE, &[Col::K, Col::State]),
        &mut |r| {
            let (Some(Value::Str(k)), Some(Value::Str(s))) = (r.first(), r.get(1)) else {
                bad = Some(String::new());
                return;
            };
            let p = k
                .parse::<ProfileIdx>()
                .ok()
                .filter(|p| (*p as usize) < engine.profile_count());
            let (Some(p), Some((layer, st))) = (p, decode(s, &mut cs.shared)) else {
                bad = Some(k.clone());
                return;
            };
            cs.log_rows += 1;
            cs.layer = cs.layer.max(layer);
            let canonical = engine.canonical(p);
            let into = cs.profiles.entry(canonical).or_default();
            into.facts.extend(st.facts);
            if p == canonical && heads.get(&p).is_none_or(|l| layer >= *l) {
                heads.insert(p, layer);
                into.values = st.values;
                into.transitions = st.transitions;
                into.changes = st.changes;
                into.sql = st.sql;
            }
        },
    )?;
    if let Some(k) = bad {
        return Err(Error::state(
            schema,
            format!("{} holds a bad row {k:?}", c::STATE_COMPUTE),
        ));
    }
    for st in cs.profiles.values_mut() {
        st.facts.sort_by(|a, b| a.order().cmp(&b.order()));
        st.facts.dedup_by(|a, b| a.order() == b.order());
        st.logged = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let mut s = ProfileState::default();
        let path = |s: &str| s.split('.').map(str::to_owned).collect::<Vec<_>>();
        let mut shared = Interner::reading_all(&[path("properties.c"), path("properties.revenue")]);
        let event = json!({"properties": {"revenue": 10.5, "c": ["a"], "other": 1}});
        s.facts
            .push(shared.fact_of("Order Completed", 1_650_000_000_000_000, "m1", &event));
        s.values.insert("orders".into(), json!(1));
        s.values.insert("vip".into(), json!(false));
        s.transitions.insert("vip".into(), 2);
        s.changes = 3;
        let whole = |s: &ProfileState, l| encode(l, s, &s.facts);
        assert_eq!(decode(&whole(&s, 7), &mut shared), Some((7, s.clone())));
        s.sql.insert("plan".into(), json!("pro"));
        assert_eq!(decode(&whole(&s, 1), &mut shared), Some((1, s.clone())));
        assert_eq!(decode("{}", &mut shared), None);
        // A state written with reduced event objects (and before layers)
        // reads the same.
        let old = r#"{"f":[["Order Completed",1650000000000000,"m1",{"properties":{"c":["a"],"revenue":10.5}}]],"v":{"orders":1,"vip":false},"t":{"vip":2},"c":3,"s":{"plan":"pro"}}"#;
        assert_eq!(decode(old, &mut shared), Some((0, s.clone())));
        // Names are listed once; a fact with no values has no fourth element.
        let more = [
            ("Page Viewed", 2, "m2"),
            ("Order Completed", 3, "m3"),
            ("Page Viewed", 4, "m4"),
        ];
        for (name, ts, id) in more {
            s.facts.push(shared.fact(name, ts, id, Box::new([])));
        }
        let text = whole(&s, 2);
        assert!(
            text.contains(r#""n":["Order Completed","Page Viewed"]"#),
            "{text}"
        );
        assert!(text.contains(r#"[1,2,"m2"]"#), "{text}");
        assert_eq!(decode(&text, &mut shared), Some((2, s.clone())));
        // A layer holds the facts given, with the whole head.
        let layer = encode(3, &s, &s.facts[1..2]);
        let (l, back) = decode(&layer, &mut shared).unwrap();
        assert_eq!(
            (l, &back.facts[..], &back.values),
            (3, &s.facts[1..2], &s.values)
        );
    }

    fn facts_per_row(rows: &[Vec<Value>], shared: &mut Interner) -> Vec<(String, usize)> {
        rows.iter()
            .map(|r| match (&r[0], &r[1]) {
                (Value::Str(k), Value::Str(s)) => {
                    (k.clone(), decode(s, shared).unwrap().1.facts.len())
                }
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn layers_hold_new_facts_until_the_log_outgrows_its_profiles() {
        let raw: ps_compute::RawDefinitions = toml::from_str(
            "[[computed_traits]]\nkey = \"pages\"\nkind = \"count\"\nevent = \"Page Viewed\"\n",
        )
        .unwrap();
        let defs = ps_compute::Definitions::check(&raw, &[]).unwrap();
        let mut cs = Compute::new(Arc::new(defs));
        let add = |cs: &mut Compute, p: ProfileIdx, id: &str| {
            let f = cs.shared.fact("Page Viewed", 1, id, Box::new([]));
            let st = cs.profiles.entry(p).or_default();
            if st.logged {
                st.fresh.push(f.clone());
            }
            st.facts.push(f);
            cs.dirty.insert(p);
        };
        for p in 0..2 {
            for i in 0..3 {
                add(&mut cs, p, &format!("m{p}-{i}"));
            }
        }
        // Never written: every fact.
        let (rows, whole) = layers(&mut cs);
        assert!(!whole);
        let got = facts_per_row(&rows, &mut cs.shared);
        assert_eq!(got, [("0".to_owned(), 3), ("1".to_owned(), 3)]);
        assert_eq!(cs.log_rows, 2);
        // Written: only what is new, and only for the changed profile.
        add(&mut cs, 0, "m0-3");
        let (rows, whole) = layers(&mut cs);
        assert!(!whole);
        assert_eq!(facts_per_row(&rows, &mut cs.shared), [("0".to_owned(), 1)]);
        assert_eq!(cs.log_rows, 3);
        // A log past four rows per profile is rewritten whole.
        cs.log_rows = 4 * 2 + COMPACT_SLACK;
        add(&mut cs, 1, "m1-3");
        let (rows, whole) = layers(&mut cs);
        assert!(whole);
        let got = facts_per_row(&rows, &mut cs.shared);
        assert_eq!(got, [("0".to_owned(), 4), ("1".to_owned(), 4)]);
        assert_eq!(cs.log_rows, 2);
        // So is it when asked (a deletion, a backfill), changed or not.
        cs.compact = true;
        let (rows, whole) = layers(&mut cs);
        assert!(whole && !cs.compact);
        assert_eq!(rows.len(), 2);
        assert!(cs
            .profiles
            .values()
            .all(|st| st.logged && st.fresh.is_empty()));
    }

    #[test]
    fn rows_are_the_same_on_any_number_of_threads() {
        let mut shared = Interner::new(&[]);
        let mut profiles = hashbrown::HashMap::new();
        let mut jobs = Vec::new();
        for p in 0..7u32 {
            let mut st = ProfileState::default();
            for i in 0..=p {
                let id = format!("m{p}-{i}");
                st.facts
                    .push(shared.fact("Page Viewed", i64::from(i), &id, Box::new([])));
            }
            st.changes = u64::from(p);
            let fresh = st.facts[p as usize..].to_vec();
            profiles.insert(p, st);
            jobs.push((p, fresh, p % 2 == 0));
        }
        let one = rows_of(&profiles, jobs.clone(), 5, 1);
        assert_eq!(one.len(), 7);
        for threads in [2, 3, 4, 8] {
            assert_eq!(
                rows_of(&profiles, jobs.clone(), 5, threads),
                one,
                "{threads} threads"
            );
        }
        // A whole row holds every fact, another only the fresh ones.
        let mut facts = |row: &Vec<Value>| match &row[1] {
            Value::Str(s) => decode(s, &mut shared).unwrap().1.facts.len(),
            _ => unreachable!(),
        };
        assert_eq!((facts(&one[4]), facts(&one[5])), (5, 1));
    }
}
