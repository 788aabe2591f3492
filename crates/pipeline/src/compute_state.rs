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
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

/// `state` as stored.
pub(crate) fn encode(s: &ProfileState) -> String {
    let facts: Vec<Json> = s
        .facts
        .iter()
        .map(|f| json!([f.name, f.timestamp, f.message_id, f.event]))
        .collect();
    let mut j = json!({ "f": facts, "v": s.values, "t": s.transitions, "c": s.changes });
    if !s.sql.is_empty() {
        j["s"] = json!(s.sql);
    }
    j.to_string()
}

/// A stored `state` back; `None` if it is not one.
pub(crate) fn decode(text: &str) -> Option<ProfileState> {
    let j: Json = serde_json::from_str(text).ok()?;
    let mut facts = Vec::new();
    for f in j.get("f")?.as_array()? {
        let f = f.as_array()?;
        facts.push(Fact::new(
            f.first()?.as_str()?,
            f.get(1)?.as_i64()?,
            f.get(2)?.as_str()?,
            f.get(3)?.clone(),
        ));
    }
    let values: BTreeMap<String, Json> = serde_json::from_value(j.get("v")?.clone()).ok()?;
    let transitions: BTreeMap<String, u64> = serde_json::from_value(j.get("t")?.clone()).ok()?;
    let sql: BTreeMap<String, Json> = match j.get("s") {
        Some(s) => serde_json::from_value(s.clone()).ok()?,
        None => BTreeMap::new(),
    };
    Some(ProfileState {
        facts,
        values,
        transitions,
        changes: j.get("c")?.as_u64()?,
        sql,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
