//! The stored form of the compute state (`_ps_compute`): one row per
//! canonical profile with state, `k` its profile number and `state` JSON:
//! `{"p": [path, …], "f": [[name, timestamp, message id, [[path number,
//! value], …]], …], "v": {values last emitted}, "t": {audience:
//! transitions}, "c": changes, "s": {SQL traits' values}}` (`"s"` only when
//! there are some). `"p"` lists the paths (arrays of keys from the event's
//! root) the facts' values are at, and each value names its path by its
//! place in that list. A state written before facts were flat has `"f"`
//! entries whose fourth element is the reduced event object and no `"p"`;
//! it is read as well. A commit replaces the rows of the profiles whose
//! state changed (merged-away and deleted ones lose theirs), in the batch's
//! own transaction, so the state always explains exactly the rows that
//! landed.
//!
//! Stored rather than rebuilt from the landed event tables at open: the
//! event tables hold flattened, typed columns (a value that did not fit its
//! column is NULL, colliding keys keep one value), so a rebuild could not
//! always read back what the evaluator read, and it would read every event
//! table at each start. See docs/DECISIONS.md.

use crate::compute::ProfileState;
use crate::compute_fact::Interner;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A fact as written: name, timestamp, message id, (path number, value).
type FactOut<'a> = (&'a str, i64, &'a str, Vec<(usize, &'a Json)>);

/// `state` as written: borrowed from the state, so encoding copies nothing
/// but the text.
#[derive(Serialize)]
struct Out<'a> {
    p: Vec<&'a [String]>,
    f: Vec<FactOut<'a>>,
    v: &'a BTreeMap<String, Json>,
    t: &'a BTreeMap<String, u64>,
    c: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    s: &'a BTreeMap<String, Json>,
}

/// `state` as read.
#[derive(Deserialize)]
struct In {
    #[serde(default)]
    p: Vec<Vec<String>>,
    f: Vec<(String, i64, String, Json)>,
    v: BTreeMap<String, Json>,
    t: BTreeMap<String, u64>,
    c: u64,
    #[serde(default)]
    s: BTreeMap<String, Json>,
}

/// `state` as stored.
pub(crate) fn encode(s: &ProfileState) -> String {
    // Facts share their path pointers (`Interner`), so the pointer finds a
    // path already listed; equal contents are the fallback.
    let mut paths: Vec<&Arc<[String]>> = Vec::new();
    let mut f = Vec::with_capacity(s.facts.len());
    for fact in &s.facts {
        let mut values = Vec::with_capacity(fact.values().len());
        for (k, v) in fact.values() {
            let at = paths
                .iter()
                .position(|p| Arc::ptr_eq(p, k))
                .or_else(|| paths.iter().position(|p| p[..] == k[..]));
            let n = at.unwrap_or_else(|| {
                paths.push(k);
                paths.len() - 1
            });
            values.push((n, v));
        }
        f.push((&*fact.name, fact.timestamp, &*fact.message_id, values));
    }
    let out = Out {
        p: paths.iter().map(|p| &p[..]).collect(),
        f,
        v: &s.values,
        t: &s.transitions,
        c: s.changes,
        s: &s.sql,
    };
    serde_json::to_string(&out).expect("the state serializes")
}

/// A stored `state` back, its facts sharing `shared`'s names and paths;
/// `None` if it is not one.
pub(crate) fn decode(text: &str, shared: &mut Interner) -> Option<ProfileState> {
    let i: In = serde_json::from_str(text).ok()?;
    let keys: Vec<Arc<[String]>> = i.p.iter().map(|p| shared.key(p)).collect();
    let mut facts = Vec::with_capacity(i.f.len());
    for (name, ts, id, values) in i.f {
        let values = match values {
            Json::Array(pairs) => pairs
                .into_iter()
                .map(|pair| match pair {
                    Json::Array(mut kv) if kv.len() == 2 => {
                        let v = kv.pop()?;
                        let k = keys.get(usize::try_from(kv[0].as_u64()?).ok()?)?;
                        Some((k.clone(), v))
                    }
                    _ => None,
                })
                .collect::<Option<_>>()?,
            // Written before facts were flat: the reduced event object.
            event @ Json::Object(_) => shared.values_of(&event),
            _ => return None,
        };
        facts.push(shared.fact(&name, ts, &id, values));
    }
    Some(ProfileState {
        facts,
        values: i.v,
        transitions: i.t,
        changes: i.c,
        sql: i.s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let mut s = ProfileState::default();
        let path = |s: &str| s.split('.').map(str::to_owned).collect::<Vec<_>>();
        let mut shared = Interner::new(&[path("properties.c"), path("properties.revenue")]);
        let event = json!({"properties": {"revenue": 10.5, "c": ["a"], "other": 1}});
        let values = shared.values_of(&event);
        s.facts
            .push(shared.fact("Order Completed", 1_650_000_000_000_000, "m1", values));
        s.values.insert("orders".into(), json!(1));
        s.values.insert("vip".into(), json!(false));
        s.transitions.insert("vip".into(), 2);
        s.changes = 3;
        assert_eq!(decode(&encode(&s), &mut shared), Some(s.clone()));
        s.sql.insert("plan".into(), json!("pro"));
        assert_eq!(decode(&encode(&s), &mut shared), Some(s.clone()));
        assert_eq!(decode("{}", &mut shared), None);
        // A state written with reduced event objects reads the same.
        let old = r#"{"f":[["Order Completed",1650000000000000,"m1",{"properties":{"c":["a"],"revenue":10.5}}]],"v":{"orders":1,"vip":false},"t":{"vip":2},"c":3,"s":{"plan":"pro"}}"#;
        assert_eq!(decode(old, &mut shared), Some(s));
    }
}
