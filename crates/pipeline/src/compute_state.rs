//! The stored form of the compute state (`_ps_compute`): one row per
//! canonical profile with state, `k` its profile number and `state` JSON:
//! `{"f": [[name, timestamp, message id, reduced event], …], "v": {values
//! last emitted}, "t": {audience: transitions}, "c": changes, "s": {SQL
//! traits' values}}` (`"s"` only when there are some). A commit
//! replaces the rows of the profiles whose state changed (merged-away and
//! deleted ones lose theirs), in the batch's own transaction, so the state
//! always explains exactly the rows that landed.
//!
//! Stored rather than rebuilt from the landed event tables at open: the
//! event tables hold flattened, typed columns (a value that did not fit its
//! column is NULL, colliding keys keep one value), so a rebuild could not
//! always read back what the evaluator read, and it would read every event
//! table at each start. See docs/DECISIONS.md.

use crate::compute::ProfileState;
use ps_compute::Fact;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// `state` as written: borrowed from the state, so encoding copies nothing
/// but the text.
#[derive(Serialize)]
struct Out<'a> {
    f: Vec<(&'a str, i64, &'a str, &'a Json)>,
    v: &'a BTreeMap<String, Json>,
    t: &'a BTreeMap<String, u64>,
    c: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    s: &'a BTreeMap<String, Json>,
}

/// `state` as read.
#[derive(Deserialize)]
struct In {
    f: Vec<(String, i64, String, Json)>,
    v: BTreeMap<String, Json>,
    t: BTreeMap<String, u64>,
    c: u64,
    #[serde(default)]
    s: BTreeMap<String, Json>,
}

/// `state` as stored.
pub(crate) fn encode(s: &ProfileState) -> String {
    let out = Out {
        f: s.facts
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.timestamp,
                    f.message_id.as_str(),
                    &f.event,
                )
            })
            .collect(),
        v: &s.values,
        t: &s.transitions,
        c: s.changes,
        s: &s.sql,
    };
    serde_json::to_string(&out).expect("the state serializes")
}

/// A stored `state` back; `None` if it is not one.
pub(crate) fn decode(text: &str) -> Option<ProfileState> {
    let i: In = serde_json::from_str(text).ok()?;
    Some(ProfileState {
        facts: i
            .f
            .into_iter()
            .map(|(name, ts, id, event)| Fact::new(&name, ts, &id, event))
            .collect(),
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
        s.facts.push(Fact::new(
            "Order Completed",
            1_650_000_000_000_000,
            "m1",
            json!({"properties": {"revenue": 10.5, "c": ["a"]}}),
        ));
        s.values.insert("orders".into(), json!(1));
        s.values.insert("vip".into(), json!(false));
        s.transitions.insert("vip".into(), 2);
        s.changes = 3;
        assert_eq!(decode(&encode(&s)), Some(s.clone()));
        s.sql.insert("plan".into(), json!("pro"));
        assert_eq!(decode(&encode(&s)), Some(s));
        assert_eq!(decode("{}"), None);
    }
}
